//! The board for participants and the facilitator: a header (title, phase, connection, votes left,
//! people), the check-in prompt when a timebox ends, the facilitator's controls, the add-topic
//! form while gathering, and three columns (To discuss, Discussing, Done). In wrap-up the columns
//! sit inside the wrap-up section with its Markdown download.

use crate::connection::Live;
use crate::views::facilitator::{FacilitatorControls, NotesFocus, NotesPanel};
use crate::views::topic::{AddTopicForm, CardPlace, TopicCard};
use crate::views::wrap_up::WrapUp;
use crate::views::{
    ConnectionIndicator, Countdown, Tally, answer_label, confirm_button, list, mark_when_rendered, maybe, memo, rx,
    start_clock,
};
use leptos::prelude::*;
use minim_shared::present::{self, Columns};
use minim_shared::{Answer, Command, Phase, Role, TopicId};

#[component]
pub fn BoardView(live: Live) -> AnyView {
    provide_context(live);
    provide_context(NotesFocus(RwSignal::new(None)));
    start_clock(live);
    mark_when_rendered(live);
    let created = memo(move || live.board.with(|b| b.created));
    (move || {
        if created.get() {
            view! { <BoardScreen live/> }.into_any()
        } else {
            view! {
                <main class="page narrow">
                    <div class="loading-head">
                        <p class="brand">"minim"</p>
                        <ConnectionIndicator live/>
                    </div>
                    <p class="loading">"Loading the board…"</p>
                </main>
            }
            .into_any()
        }
    })
    .into_any()
}

#[component]
fn BoardScreen(live: Live) -> AnyView {
    let board = live.board;
    let phase = memo(move || board.with(|b| b.phase));
    let facilitator = memo(move || live.is_facilitator());
    let check_in_open = memo(move || board.with(|b| b.check_in.is_some()));
    let wrapping_up = memo(move || matches!(phase.get(), Phase::WrapUp | Phase::Closed));
    view! {
        <div
            class=rx(move || format!("board phase-{}", present::phase_slug(phase.get())))
            data-test="board"
            data-phase=rx(move || present::phase_slug(phase.get()))
            data-seq=rx(move || board.with(|b| b.seq.0.to_string()))
        >
            <BoardHeader live phase facilitator/>
            <main class="board-main">
                {rx(move || maybe(facilitator.get(), || view! { <FacilitatorControls live/> }.into_any()))}
                {rx(move || maybe(check_in_open.get(), || view! { <CheckInPrompt live facilitator/> }.into_any()))}
                {rx(move || maybe(phase.get() == Phase::Gathering, || view! { <AddTopicForm live/> }.into_any()))}
                {rx(move || {
                    if wrapping_up.get() {
                        view! {
                            <WrapUp live>
                                <ColumnsView live facilitator/>
                            </WrapUp>
                        }
                            .into_any()
                    } else {
                        view! { <ColumnsView live facilitator/> }.into_any()
                    }
                })}
            </main>
        </div>
    }
    .into_any()
}

#[component]
fn BoardHeader(live: Live, phase: Memo<Phase>, facilitator: Memo<bool>) -> AnyView {
    let board = live.board;
    let title = memo(move || board.with(|b| b.title.as_str().to_owned()));
    let votes_left = memo(move || {
        let me = live.me();
        board.with(|b| me.map(|p| (b.votes_left(p), b.settings.votes_per_person)))
    });
    view! {
        <header class="board-header">
            <div class="header-top">
                <p class="brand" aria-hidden="true">"minim"</p>
                <h1 class="board-title">{rx(move || title.get())}</h1>
                <div class="header-status">
                    <span class="phase-badge" data-test="phase">
                        {rx(move || present::phase_title(phase.get()))}
                    </span>
                    <ConnectionIndicator live/>
                </div>
            </div>
            <div class="header-sub">
                <p class="hint">{rx(move || present::phase_hint(phase.get(), facilitator.get()))}</p>
                {rx(move || {
                    let left = votes_left.get().filter(|_| phase.get() == Phase::Voting);
                    maybe(left.is_some(), || {
                        let (left, of) = left.unwrap_or_default();
                        view! {
                            <p class="votes-left" data-test="votes-left" title=format!("You have {of} votes in all")>
                                <strong>{left}</strong>
                                {if left == 1 { " vote left" } else { " votes left" }}
                            </p>
                        }
                        .into_any()
                    })
                })}
                <People live facilitator/>
            </div>
        </header>
    }
    .into_any()
}

const HAND_OVER_QUESTION: &str = "Make this person the facilitator? You become a participant, and the facilitator \
                                  link stops working.";
const REMOVE_QUESTION: &str = "Remove this person from the board? Their connection closes and their session stops \
                               working. Anyone with the participant link can still join again.";

/// Who is on the board and who is connected now; the facilitator can take someone off it.
#[component]
fn People(live: Live, facilitator: Memo<bool>) -> AnyView {
    let people = memo(move || {
        // Read here so that the list is drawn again (with or without its buttons) when it changes.
        facilitator.track();
        let online = live.presence.get();
        let me = live.me();
        live.board.with(|b| {
            present::people_by_name(b)
                .into_iter()
                .map(|p| {
                    (
                        p.id,
                        p.name.as_str().to_owned(),
                        p.role == Role::Facilitator,
                        online.contains(&p.id),
                        me == Some(p.id),
                    )
                })
                .collect::<Vec<_>>()
        })
    });
    let here = move || people.with(|p| p.iter().filter(|x| x.3).count());
    view! {
        <div class="people-wrap">
            <h2 class="sr-only">"People"</h2>
            <p class="people-count">
                {rx(move || format!("{} here of {}", here(), people.with(Vec::len)))}
            </p>
            <ul class="people" data-test="people">
                {rx(move || {
                    list(people.get(), |(id, name, is_facilitator, connected, is_me)| {
                        let can_remove = facilitator.get_untracked() && !is_facilitator && !is_me;
                        let remove = move || {
                            let (hand_over, remove) = (Command::HandOver { to: id }, Command::RemovePerson { person: id });
                            view! {
                                {confirm_button(live, "hand-over", "btn ghost small", "Make facilitator", HAND_OVER_QUESTION, hand_over)}
                                {confirm_button(live, "remove-person", "btn ghost small", "Remove", REMOVE_QUESTION, remove)}
                            }
                            .into_any()
                        };
                        view! {
                            <li
                                class=if connected { "person online" } else { "person" }
                                data-test="person"
                                data-connected=if connected { "true" } else { "false" }
                            >
                                <span class="presence-dot" aria-hidden="true"></span>
                                <span class="person-name">{name}</span>
                                {maybe(is_me, || view! { <span class="tag">"you"</span> }.into_any())}
                                {maybe(is_facilitator, || view! { <span class="tag">"facilitator"</span> }.into_any())}
                                {maybe(can_remove, remove)}
                                <span class="sr-only">{if connected { ", connected" } else { ", not connected" }}</span>
                            </li>
                        }
                        .into_any()
                    })
                })}
            </ul>
        </div>
    }
    .into_any()
}

/// The check-in when a timebox ends: everyone answers; counts show once you answered (always for
/// the facilitator).
#[component]
fn CheckInPrompt(live: Live, facilitator: Memo<bool>) -> AnyView {
    let board = live.board;
    let mine = memo(move || {
        let me = live.me();
        board.with(|b| present::my_answer(b, me))
    });
    let show_tally = memo(move || {
        let me = live.me();
        board.with(|b| present::show_tally(b, me, facilitator.get()))
    });
    let is_person = memo(move || live.me().is_some());
    let answer_button = move |answer: Answer, test: &'static str| {
        let (icon, label) = answer_label(answer);
        view! {
            <button
                type="button"
                class=rx(move || if mine.get() == Some(answer) { "btn answer chosen" } else { "btn answer" })
                data-test=test
                aria-pressed=rx(move || if mine.get() == Some(answer) { "true" } else { "false" })
                on:click=move |_| live.send(Command::AnswerCheckIn { answer })
            >
                <span class="answer-icon" aria-hidden="true">{icon}</span>
                <span>{label}</span>
            </button>
        }
        .into_any()
    };
    view! {
        <section
            class="check-in"
            data-test="check-in"
            aria-labelledby="check-in-title"
            aria-live="assertive"
            aria-relevant="additions"
        >
            <h2 id="check-in-title">"Time is up. Keep going on this topic?"</h2>
            {rx(move || {
                maybe(is_person.get(), || {
                    view! {
                        <div class="answers" role="group" aria-label="Your answer">
                            {answer_button(Answer::Up, "answer-up")}
                            {answer_button(Answer::Sideways, "answer-sideways")}
                            {answer_button(Answer::Down, "answer-down")}
                        </div>
                    }
                    .into_any()
                })
            })}
            {rx(move || {
                if show_tally.get() {
                    view! { <Tally live/> }.into_any()
                } else {
                    view! { <p class="help">"The counts appear once you have answered."</p> }.into_any()
                }
            })}
        </section>
    }
    .into_any()
}

/// The three columns.
#[component]
fn ColumnsView(live: Live, facilitator: Memo<bool>) -> AnyView {
    let board = live.board;
    let columns = memo(move || board.with(present::columns));
    let todo = move || columns.with(|c| c.todo.clone());
    let done = move || columns.with(|c| c.done.clone());
    let current = memo(move || columns.with(|c: &Columns| c.current));
    let phase = memo(move || board.with(|b| b.phase));
    view! {
        <div class="columns">
            <section class="column column-todo" data-test="column-todo" aria-labelledby="col-todo-title">
                <h2 id="col-todo-title" class="column-title">
                    {rx(move || if matches!(phase.get(), Phase::WrapUp | Phase::Closed) { "Not discussed" } else { "To discuss" })}
                    <span class="count">{rx(move || columns.with(|c| c.todo.len()))}</span>
                </h2>
                {rx(move || {
                    maybe(columns.with(|c| c.todo.is_empty()), || view! { <p class="empty">{empty_todo(phase.get())}</p> }.into_any())
                })}
                <ol class="cards">
                    <For
                        each=todo
                        key=|id: &TopicId| *id
                        children=move |id| view! { <li><TopicCard live id place=CardPlace::Queue/></li> }.into_any()
                    />
                </ol>
            </section>
            <section class="column column-discussing" data-test="column-discussing" aria-labelledby="col-now-title">
                <h2 id="col-now-title" class="column-title">"Discussing"</h2>
                {rx(move || match current.get() {
                    Some(id) => view! {
                        <div class="current">
                            <TopicCard live id place=CardPlace::Current/>
                            <Countdown live/>
                        </div>
                    }
                    .into_any(),
                    None => view! { <p class="empty">{empty_current(phase.get())}</p> }.into_any(),
                })}
                {rx(move || maybe(facilitator.get(), || view! { <NotesPanel live/> }.into_any()))}
            </section>
            <section class="column column-done" data-test="column-done" aria-labelledby="col-done-title">
                <h2 id="col-done-title" class="column-title">
                    "Done" <span class="count">{rx(move || columns.with(|c| c.done.len()))}</span>
                </h2>
                {rx(move || {
                    maybe(columns.with(|c| c.done.is_empty()), || view! { <p class="empty">"Discussed topics land here."</p> }.into_any())
                })}
                <ol class="cards">
                    <For
                        each=done
                        key=|id: &TopicId| *id
                        children=move |id| view! { <li><TopicCard live id place=CardPlace::Done/></li> }.into_any()
                    />
                </ol>
            </section>
        </div>
    }
    .into_any()
}

fn empty_todo(phase: Phase) -> &'static str {
    match phase {
        Phase::Gathering => "No topics yet. Add the first one above.",
        Phase::WrapUp | Phase::Closed => "Every topic was discussed.",
        _ => "No topics are waiting.",
    }
}

fn empty_current(phase: Phase) -> &'static str {
    match phase {
        Phase::Gathering | Phase::Voting => "Discussion starts after voting.",
        Phase::Discussing => "No topic is under discussion.",
        Phase::WrapUp | Phase::Closed => "The discussion is over.",
    }
}
