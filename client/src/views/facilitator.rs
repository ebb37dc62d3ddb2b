//! The facilitator's tools: phase changes, revealing topics and the timer (one control bar), and
//! the notes panel for one topic at a time (its takeaway and action items).

use crate::app::Errors;
use crate::connection::Live;
use crate::views::{confirm_button, list, maybe, memo, rx};
use leptos::prelude::*;
use minim_shared::present;
use minim_shared::settings::{MAX_ACTION_ITEM_CHARS, MAX_TAKEAWAY_CHARS};
use minim_shared::{Command, PersonId, Phase, Private, Timer, TopicId};

/// The discussed topic whose notes the facilitator is editing when no topic is under discussion.
#[derive(Clone, Copy)]
pub struct NotesFocus(pub RwSignal<Option<TopicId>>);

fn next_label(phase: Phase) -> &'static str {
    match phase {
        Phase::Gathering => "Start voting →",
        Phase::Voting => "Start discussing →",
        Phase::Discussing => "Wrap up →",
        Phase::WrapUp => "Close the meeting",
        Phase::Closed => "",
    }
}

fn back_label(phase: Phase) -> &'static str {
    match phase {
        Phase::Voting => "← Back to gathering",
        Phase::Discussing => "← Back to voting",
        Phase::WrapUp => "← Back to discussing",
        Phase::Closed => "Reopen the wrap-up",
        Phase::Gathering => "",
    }
}

const DELETE_QUESTION: &str = "Delete this board and everything on it for everyone, now? This cannot be undone. \
                               Download the wrap-up first if the group wants to keep it.";

const NEW_LINK_QUESTION: &str = "Replace the participant link? The old link stops working for anyone who has not \
                                 joined yet; people on the board stay.";

/// A new participant link (the old one stops working), shown with its QR code.
#[component]
fn NewParticipantLink(live: Live) -> AnyView {
    let errors = expect_context::<Errors>();
    let link = RwSignal::new(None::<String>);
    let replace = move |_| {
        let board = present::board_from_path(&crate::browser::path()).map(str::to_owned);
        let (Some(board), Some(token)) = (board, live.token()) else { return };
        if !crate::browser::confirm(NEW_LINK_QUESTION) {
            return;
        }
        leptos::task::spawn_local(async move {
            match crate::api::new_participant_link(&board, token).await {
                Ok(new) => link.set(Some(new)),
                Err(e) => errors.show(e.message),
            }
        });
    };
    view! {
        <button type="button" class="btn ghost" data-test="new-participant-link" on:click=replace>
            "New participant link"
        </button>
        {rx(move || match link.get() {
            Some(url) => view! {
                <div class="participant-row">
                    <crate::views::start::LinkRow
                        title="New participant link"
                        help="The old link no longer works. Share this one."
                        url=url.clone()
                        test="participant-link"
                    />
                    <figure class="qr-figure">
                        <crate::views::qr::QrCode url/>
                    </figure>
                </div>
            }
            .into_any(),
            None => ().into_any(),
        })}
    }
    .into_any()
}

#[component]
pub fn FacilitatorControls(live: Live) -> AnyView {
    let board = live.board;
    let phase = memo(move || board.with(|b| b.phase));
    let any_hidden = memo(move || board.with(|b| b.topics.values().any(|t| t.hidden)));
    let timer = memo(move || board.with(|b| b.timer));
    let has_current = memo(move || board.with(|b| b.current_topic().is_some()));
    let extension_min = memo(move || board.with(|b| b.settings.extension_ms()));
    let go = move |to: Option<Phase>| {
        if let Some(to) = to {
            live.send(Command::ChangePhase { to });
        }
    };
    let button = move |test: &'static str, label: String, class: &'static str, command: Command| {
        view! {
            <button type="button" class=class data-test=test on:click=move |_| live.send(command.clone())>
                {label}
            </button>
        }
        .into_any()
    };
    let timer_buttons = move || {
        if phase.get() != Phase::Discussing || !has_current.get() {
            return ().into_any();
        }
        let extend = format!("+ {}", present::spoken_duration(extension_min.get()));
        let buttons = match timer.get() {
            Timer::Idle => vec![button("start-timer", "▶ Start timer".into(), "btn primary", Command::StartTimer)],
            Timer::Running { .. } => vec![
                button("pause-timer", "❚❚ Pause".into(), "btn", Command::PauseTimer),
                button("extend-timer", extend, "btn", Command::ExtendTimer),
                button("stop-timer", "■ Stop".into(), "btn ghost", Command::StopTimer),
            ],
            Timer::Paused { .. } => vec![
                button("resume-timer", "▶ Resume".into(), "btn primary", Command::ResumeTimer),
                button("extend-timer", extend, "btn", Command::ExtendTimer),
                button("stop-timer", "■ Stop".into(), "btn ghost", Command::StopTimer),
            ],
            Timer::Expired => vec![
                button("extend-timer", extend, "btn", Command::ExtendTimer),
                button("stop-timer", "■ Stop".into(), "btn ghost", Command::StopTimer),
            ],
        };
        view! {
            <div class="control-group" role="group" aria-label="Timer">
                {buttons}
                {button("move-on", "Next topic →".into(), "btn primary", Command::MoveOn)}
            </div>
        }
        .into_any()
    };
    view! {
        <section class="facilitator-controls" data-test="facilitator-controls" aria-label="Facilitator controls">
            <h2 class="controls-title">"You are facilitating"</h2>
            <div class="control-group" role="group" aria-label="Meeting phase">
                {rx(move || {
                    let p = phase.get();
                    maybe(p.previous().is_some(), || {
                        view! {
                            <button type="button" class="btn ghost" data-test="phase-back" on:click=move |_| go(p.previous())>
                                {back_label(p)}
                            </button>
                        }
                        .into_any()
                    })
                })}
                {rx(move || {
                    let p = phase.get();
                    maybe(p.next().is_some(), || {
                        view! {
                            <button
                                type="button"
                                class=if p == Phase::Discussing { "btn" } else { "btn primary" }
                                data-test="phase-next"
                                on:click=move |_| go(p.next())
                            >
                                {next_label(p)}
                            </button>
                        }
                        .into_any()
                    })
                })}
                {rx(move || {
                    maybe(any_hidden.get(), || {
                        view! {
                            <button type="button" class="btn" data-test="reveal-topics" on:click=move |_| live.send(Command::RevealTopics)>
                                "Reveal topics"
                            </button>
                        }
                        .into_any()
                    })
                })}
                {rx(move || {
                    // What was said stays in the group: after the meeting, the facilitator can make
                    // sure it does not linger either.
                    maybe(phase.get() >= Phase::WrapUp, || {
                        confirm_button(
                            live,
                            "delete-board",
                            "btn ghost",
                            "Delete the board now",
                            DELETE_QUESTION,
                            Command::DeleteBoard,
                        )
                    })
                })}
            </div>
            {timer_buttons}
            <div class="control-group" role="group" aria-label="Links">
                <NewParticipantLink live/>
            </div>
        </section>
    }
    .into_any()
}

/// The takeaway and action-item editor for the topic under discussion, or (between topics and in
/// the wrap-up) for the discussed topic the facilitator picked.
#[component]
pub fn NotesPanel(live: Live) -> AnyView {
    let board = live.board;
    let focus = expect_context::<NotesFocus>();
    // A newly selected topic takes the notes over from a discussed one picked earlier.
    let current = memo(move || board.with(|b| b.current_topic()));
    Effect::new(move |_| {
        current.track();
        focus.0.set(None);
    });
    let topic = memo(move || {
        board.with(|b| {
            if !matches!(b.phase, Phase::Discussing | Phase::WrapUp) {
                return None;
            }
            let chosen = focus
                .0
                .get()
                .filter(|t| b.topics.get(t).is_some_and(|t| t.status != minim_shared::TopicStatus::Queued));
            let first_done = || present::discussed_in_order(b).first().map(|t| t.id);
            let id = chosen.or(b.current_topic()).or_else(first_done)?;
            let text = b.topics.get(&id)?.text.as_ref().map(|x| x.as_str().to_owned()).unwrap_or_default();
            Some((id, text))
        })
    });
    (move || {
        let Some((id, text)) = topic.get() else { return ().into_any() };
        view! {
                <section class="card notes" aria-labelledby="notes-title">
                    <h3 id="notes-title" class="notes-title">
                        <span class="mini-heading">"Notes for"</span>
                        <span class="notes-topic">{text}</span>
                    </h3>
                    <TakeawayEditor live topic=id/>
                    <ActionItemForm live topic=id/>
                </section>
        }
        .into_any()
    })
    .into_any()
}

#[component]
fn TakeawayEditor(live: Live, topic: TopicId) -> AnyView {
    let saved = memo(move || {
        live.board.with(|b| b.topics.get(&topic).and_then(|t| t.takeaway.as_ref().map(|x| x.as_str().to_owned())))
    });
    let draft = RwSignal::new(saved.get_untracked().unwrap_or_default());
    // A save (ours, from another tab) replaces the draft with what the board now holds.
    Effect::new(move |_| draft.set(saved.get().unwrap_or_default()));
    let dirty = move || saved.get().unwrap_or_default() != draft.get();
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        live.send(Command::SetTakeaway { topic, text: Private::new(draft.get_untracked()) });
    };
    view! {
        <form class="takeaway-form" on:submit=save>
            <label for="takeaway">"Takeaway"</label>
            <textarea
                id="takeaway"
                data-test="takeaway"
                rows="3"
                maxlength=MAX_TAKEAWAY_CHARS
                placeholder="What did the group take from this?"
                prop:value=rx(move || draft.get())
                on:input=move |ev| draft.set(event_target_value(&ev))
            ></textarea>
            <div class="row">
                <button type="submit" class="btn primary small" data-test="save-takeaway">"Save takeaway"</button>
                <span class="help" aria-live="polite">{rx(move || if dirty() { "Not saved yet" } else { "" })}</span>
            </div>
        </form>
    }
    .into_any()
}

#[component]
fn ActionItemForm(live: Live, topic: TopicId) -> AnyView {
    let errors = expect_context::<Errors>();
    let people = memo(move || {
        live.board.with(|b| {
            present::people_by_name(b).into_iter().map(|p| (p.id, p.name.as_str().to_owned())).collect::<Vec<_>>()
        })
    });
    let text = RwSignal::new(String::new());
    let owner = RwSignal::new(String::new());
    let due = RwSignal::new(String::new());
    let chosen_owner = move || {
        let raw = owner.get();
        if raw.is_empty() {
            people.with(|p| p.first().map(|(id, _)| id.0.to_string()).unwrap_or_default())
        } else {
            raw
        }
    };
    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Ok(owner_id) = chosen_owner().parse::<u32>() else {
            errors.show("Choose who owns this action item.");
            return;
        };
        let due_date = due.get_untracked();
        let command = Command::AddActionItem {
            topic,
            text: Private::new(text.get_untracked()),
            owner: PersonId(owner_id),
            due: (!due_date.is_empty()).then_some(due_date),
        };
        live.send_then(command, move |ok| {
            if ok {
                text.set(String::new());
                due.set(String::new());
            }
        });
    };
    view! {
        <form class="action-form" on:submit=add>
            <fieldset>
                <legend>"Add an action item"</legend>
                <div class="field">
                    <label for="action-text">"What will be done"</label>
                    <input
                        id="action-text"
                        type="text"
                        data-test="action-text"
                        maxlength=MAX_ACTION_ITEM_CHARS
                        autocomplete="off"
                        prop:value=rx(move || text.get())
                        on:input=move |ev| text.set(event_target_value(&ev))
                    />
                </div>
                <div class="action-form-row">
                    <div class="field">
                        <label for="action-owner">"Owner"</label>
                        <select id="action-owner" data-test="action-owner" on:change=move |ev| owner.set(event_target_value(&ev))>
                            {rx(move || {
                                list(people.get(), |(id, name)| {
                                    let value = id.0.to_string();
                                    let mine = value.clone();
                                    view! {
                                        <option value=value selected=rx(move || chosen_owner() == mine)>
                                            {name}
                                        </option>
                                    }
                                    .into_any()
                                })
                            })}
                        </select>
                    </div>
                    <div class="field">
                        <label for="action-due">"Due (optional)"</label>
                        <input
                            id="action-due"
                            type="date"
                            data-test="action-due"
                            prop:value=rx(move || due.get())
                            on:input=move |ev| due.set(event_target_value(&ev))
                        />
                    </div>
                </div>
                <button type="submit" class="btn small" data-test="add-action">"Add action item"</button>
            </fieldset>
        </form>
    }
    .into_any()
}
