//! A topic card (text only, never an author) with what this viewer may do with it, and the
//! add-topic form. Buttons appear only when [`present::allowed`] says the rules would accept them;
//! voting buttons stay during voting so that a vote past the limit explains itself in the error
//! place.

use crate::connection::Live;
use crate::views::facilitator::NotesFocus;
use crate::views::{ActionItems, Takeaway, list, maybe, memo, rx};
use leptos::prelude::*;
use minim_shared::present;
use minim_shared::settings::MAX_TOPIC_CHARS;
use minim_shared::{Command, Phase, Private, TopicId, TopicStatus};

/// Where a card is shown.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CardPlace {
    Queue,
    Current,
    Done,
}

/// The topic's text as shown: its words, or the placeholder of a hidden topic.
#[derive(Clone, PartialEq, Eq, Debug)]
struct Shown {
    text: Option<String>,
    hidden: bool,
    mine: bool,
    votes: u32,
    status: TopicStatus,
}

#[component]
pub fn TopicCard(live: Live, id: TopicId, place: CardPlace) -> AnyView {
    let board = live.board;
    let shown = memo(move || {
        let me = live.me();
        board.with(|b| {
            b.topics.get(&id).map(|t| Shown {
                text: t.text.as_ref().map(|x| x.as_str().to_owned()),
                hidden: t.hidden,
                mine: present::is_mine(t, me),
                votes: t.votes,
                status: t.status,
            })
        })
    });
    let phase = memo(move || board.with(|b| b.phase));
    let totals_public = memo(move || board.with(|b| b.totals_public()));
    let facilitator = memo(move || live.is_facilitator());
    let my_votes = memo(move || {
        let me = live.me();
        board.with(|b| me.map_or(0, |p| b.votes_on(p, id)))
    });
    let can_change = memo(move || {
        let me = live.me();
        board.with(|b| present::may_change_topic(b, me, id))
    });
    let can_select = memo(move || board.with(|b| present::may_select(b, id)));
    let can_merge = memo(move || {
        facilitator.get()
            && board.with(|b| {
                let queued_and_visible =
                    b.topics.get(&id).is_some_and(|t| t.status == TopicStatus::Queued && !t.hidden);
                let phase_ok = matches!(b.phase, Phase::Gathering | Phase::Voting | Phase::Discussing);
                queued_and_visible && phase_ok && !present::merge_targets(b, id).is_empty()
            })
    });

    let focus = use_context::<NotesFocus>().unwrap_or(NotesFocus(RwSignal::new(None)));
    let editing = RwSignal::new(false);
    let draft = RwSignal::new(String::new());
    let start_edit = move |_| {
        draft.set(shown.get_untracked().and_then(|s| s.text).unwrap_or_default());
        editing.set(true);
    };
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let text = Private::new(draft.get_untracked());
        live.send_then(Command::EditTopic { topic: id, text }, move |ok| {
            if ok {
                editing.set(false);
            }
        });
    };
    let edit_id = format!("edit-topic-{id}");

    let card_class = move || {
        let mut class = String::from("card topic");
        match place {
            CardPlace::Queue => class.push_str(" topic-queued"),
            CardPlace::Current => class.push_str(" topic-current"),
            CardPlace::Done => class.push_str(" topic-done"),
        }
        if shown.with(|s| s.as_ref().is_some_and(|s| s.mine)) {
            class.push_str(" mine");
        }
        if shown.with(|s| s.as_ref().is_some_and(|s| s.text.is_none())) {
            class.push_str(" concealed");
        }
        class
    };

    let text_view = move || -> AnyView {
        let s = shown.get();
        match s.as_ref().and_then(|s| s.text.clone()) {
            Some(text) => view! { <p class="topic-text" data-test="topic-text">{text}</p> }.into_any(),
            None => view! {
                <p class="topic-text placeholder" data-test="topic-text">"A topic is being written…"</p>
            }
            .into_any(),
        }
    };

    let edit_form = {
        let edit_id = edit_id.clone();
        move || -> AnyView {
            view! {
                <form class="edit-form" on:submit=save>
                    <label class="sr-only" for=edit_id.clone()>"Topic text"</label>
                    <input
                        id=edit_id.clone()
                        type="text"
                        data-test="edit-topic-text"
                        maxlength=MAX_TOPIC_CHARS
                        required
                        prop:value=rx(move || draft.get())
                        on:input=move |ev| draft.set(event_target_value(&ev))
                    />
                    <div class="row">
                        <button type="submit" class="btn primary small" data-test="save-topic">"Save"</button>
                        <button type="button" class="btn ghost small" on:click=move |_| editing.set(false)>"Cancel"</button>
                    </div>
                </form>
            }
            .into_any()
        }
    };

    let badges = move || -> AnyView {
        let Some(s) = shown.get() else { return ().into_any() };
        let yours = maybe(s.mine, || view! { <span class="tag tag-yours">"yours"</span> }.into_any());
        let hidden = maybe(s.hidden && s.text.is_some(), || {
            view! { <span class="tag">"hidden until revealed"</span> }.into_any()
        });
        let total = maybe(totals_public.get() && phase.get() != Phase::Gathering, || {
            view! {
                <span class="total">
                    <span data-test="topic-votes">{s.votes}</span>
                    {if s.votes == 1 { " vote" } else { " votes" }}
                </span>
            }
            .into_any()
        });
        view! { <div class="card-meta">{total}{yours}{hidden}</div> }.into_any()
    };

    let voting = move || {
        let show = phase.get() == Phase::Voting && place == CardPlace::Queue && live.me().is_some();
        maybe(show, || {
            view! {
                <div class="vote-row" role="group" aria-label="Your votes on this topic">
                    <button
                        type="button"
                        class="btn vote-btn"
                        data-test="unvote"
                        aria-label="Take back one of your votes"
                        on:click=move |_| live.send(Command::RemoveVote { topic: id })
                    >
                        "−"
                    </button>
                    <span class="my-votes-box">
                        <span class="pips" aria-hidden="true">{rx(move || "●".repeat(my_votes.get() as usize))}</span>
                        <span class="my-votes-label">
                            "Your votes: " <strong data-test="my-votes">{rx(move || my_votes.get())}</strong>
                        </span>
                    </span>
                    <button
                        type="button"
                        class="btn vote-btn"
                        data-test="vote"
                        aria-label="Add one of your votes"
                        on:click=move |_| live.send(Command::PlaceVote { topic: id })
                    >
                        "+"
                    </button>
                </div>
            }
            .into_any()
        })
    };

    let actions = move || {
        let queue = place == CardPlace::Queue;
        let (edit, withdraw) = (queue && can_change.get(), queue && can_change.get());
        let discuss = queue && facilitator.get() && can_select.get();
        let merge = queue && can_merge.get();
        let notes = place == CardPlace::Done && facilitator.get();
        let mine = shown.with(|s| s.as_ref().is_some_and(|s| s.mine));
        maybe(edit || withdraw || discuss || merge || notes, || {
            view! {
                <div class="card-actions">
                    {maybe(discuss, || {
                        view! {
                            <button
                                type="button"
                                class="btn small"
                                data-test="discuss-topic"
                                on:click=move |_| live.send(Command::SelectTopic { topic: id })
                            >
                                "Discuss this"
                            </button>
                        }
                        .into_any()
                    })}
                    {maybe(edit, || {
                        view! {
                            <button type="button" class="btn ghost small" data-test="edit-topic" on:click=start_edit>
                                "Edit"
                            </button>
                        }
                        .into_any()
                    })}
                    {maybe(withdraw, || {
                        view! {
                            <button
                                type="button"
                                class="btn ghost small danger"
                                data-test="withdraw-topic"
                                on:click=move |_| live.send(Command::RemoveTopic { topic: id })
                            >
                                {if mine { "Withdraw" } else { "Remove" }}
                            </button>
                        }
                        .into_any()
                    })}
                    {maybe(notes, || {
                        view! {
                            <button type="button" class="btn ghost small" on:click=move |_| focus.0.set(Some(id))>
                                "Edit notes"
                            </button>
                        }
                        .into_any()
                    })}
                    {maybe(merge, || view! { <MergeControl live id/> }.into_any())}
                </div>
            }
            .into_any()
        })
    };

    let outcome = maybe(place != CardPlace::Queue, || {
        view! {
            <Takeaway live topic=id/>
            <ActionItems live topic=id removable=facilitator.get_untracked()/>
        }
        .into_any()
    });

    view! {
        <article class=card_class data-test="topic" data-topic-id=id.0.to_string()>
            {rx(move || if editing.get() { edit_form().into_any() } else { text_view().into_any() })}
            {badges}
            {voting}
            {actions}
            {outcome}
        </article>
    }
    .into_any()
}

/// The facilitator's "merge into" picker on a waiting topic.
#[component]
fn MergeControl(live: Live, id: TopicId) -> AnyView {
    let targets = memo(move || {
        live.board.with(|b| {
            present::merge_targets(b, id)
                .into_iter()
                .map(|t| (t.id, t.text.as_ref().map(|x| x.as_str().to_owned()).unwrap_or_default()))
                .collect::<Vec<_>>()
        })
    });
    let chosen = RwSignal::new(String::new());
    let select_id = format!("merge-{id}");
    let errors = expect_context::<crate::app::Errors>();
    let merge = move |_| match chosen.get_untracked().parse::<u32>() {
        Ok(into) => live.send(Command::MergeTopics { from: id, into: TopicId(into), text: None }),
        Err(_) => errors.show("Choose the topic to merge this one into."),
    };
    view! {
        <div class="merge">
            <label class="sr-only" for=select_id.clone()>"Merge this topic into"</label>
            <select
                id=select_id
                data-test="merge-into"
                on:change=move |ev| chosen.set(event_target_value(&ev))
            >
                <option value="" selected=rx(move || chosen.get().is_empty())>"Merge into…"</option>
                {rx(move || {
                    list(targets.get(), |(tid, text)| {
                        let value = tid.0.to_string();
                        let selected = value.clone();
                        view! {
                            <option value=value selected=rx(move || chosen.get() == selected)>
                                {present_short(&text)}
                            </option>
                        }
                        .into_any()
                    })
                })}
            </select>
            <button type="button" class="btn small" data-test="merge" on:click=merge>"Merge"</button>
        </div>
    }
    .into_any()
}

/// A topic's text cut for a picker.
fn present_short(text: &str) -> String {
    match text.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// The add-topic form (while gathering), with a character counter.
#[component]
pub fn AddTopicForm(live: Live) -> AnyView {
    let text = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let left = move || present::chars_left(&text.get(), MAX_TOPIC_CHARS);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        let command = Command::AddTopic { text: Private::new(text.get_untracked()) };
        live.send_then(command, move |ok| {
            busy.set(false);
            if ok {
                text.set(String::new());
            }
        });
    };
    view! {
        <form class="card add-topic" on:submit=submit>
            <label for="new-topic" class="add-topic-label">"Add a topic"</label>
            <div class="add-topic-row">
                <input
                    id="new-topic"
                    type="text"
                    data-test="new-topic"
                    maxlength=MAX_TOPIC_CHARS
                    placeholder="What would you like to talk about?"
                    autocomplete="off"
                    aria-describedby="new-topic-count"
                    prop:value=rx(move || text.get())
                    on:input=move |ev| text.set(event_target_value(&ev))
                />
                <button type="submit" class="btn primary" data-test="add-topic">"Add topic"</button>
            </div>
            <p id="new-topic-count" class=rx(move || if left() < 20 { "counter low" } else { "counter" })>
                {rx(move || format!("{} characters left", left().max(0)))}
            </p>
        </form>
    }
    .into_any()
}
