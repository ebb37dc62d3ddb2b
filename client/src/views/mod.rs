//! The pages and the parts they share.
//!
//! | module | what it shows |
//! |---|---|
//! | [`start`] | `/`: create a board, then its three links and a QR code |
//! | [`join`] | `/b/<board>`: the join form, then the board or the projector view |
//! | [`board`] | the board for participants and the facilitator: header, columns, check-in |
//! | [`topic`] | a topic card and the add-topic form |
//! | [`facilitator`] | the facilitator's controls and notes (takeaway, action items) |
//! | [`wrap_up`] | the wrap-up section and its Markdown download |
//! | [`projector`] | the read-only room screen with its privacy curtain |
//! | [`qr`] | a QR code drawn as SVG elements |
//!
//! Everything people wrote is rendered as text nodes; nothing here builds HTML from strings.

pub mod board;
pub mod facilitator;
pub mod join;
pub mod projector;
pub mod qr;
pub mod start;
pub mod topic;
pub mod wrap_up;

use crate::connection::Live;
use leptos::prelude::*;
use minim_shared::present::{self, Announcer};
use minim_shared::{ActionItemId, Answer, Timer, TopicId};
use std::time::Duration;

/// A view or nothing. Views are type-erased ([`AnyView`]) wherever they are chosen at run time:
/// every such place then shares one rendering path, which keeps the WebAssembly small.
/// A button for something that cannot be undone: it sends `command` once the person confirms
/// `question` in the browser's dialog.
pub fn confirm_button(
    live: Live,
    test: &'static str,
    class: &'static str,
    label: &'static str,
    question: &'static str,
    command: minim_shared::Command,
) -> AnyView {
    view! {
        <button
            type="button"
            class=class
            data-test=test
            on:click=move |_| {
                if crate::browser::confirm(question) {
                    live.send(command.clone());
                }
            }
        >
            {label}
        </button>
    }
    .into_any()
}

pub fn maybe(show: bool, view: impl FnOnce() -> AnyView) -> AnyView {
    if show { view() } else { ().into_any() }
}

/// A list rendered afresh when it changes (for short lists whose items hold no state).
pub fn list<T>(items: Vec<T>, item: impl Fn(T) -> AnyView) -> AnyView {
    items.into_iter().map(item).collect::<Vec<_>>().into_any()
}

/// The always-visible connection state.
#[component]
pub fn ConnectionIndicator(live: Live) -> AnyView {
    let state = live.state;
    view! {
        <span
            class=rx(move || format!("conn conn-{}", state.get().attr()))
            data-test="connection"
            data-state=rx(move || state.get().attr())
            role="status"
        >
            <span class="conn-dot" aria-hidden="true"></span>
            <span class="conn-label">{rx(move || state.get().label())}</span>
        </span>
    }
    .into_any()
}

/// Keeps `live.now_ms` ticking every 250 ms while the calling view lives, and at once when the
/// tab comes back to the foreground.
pub fn start_clock(live: Live) {
    let tick = move || live.now_ms.set(crate::browser::now_ms());
    if let Ok(handle) = set_interval_with_handle(tick, Duration::from_millis(250)) {
        on_cleanup(move || handle.clear());
    }
    let visible = window_event_listener(leptos::ev::visibilitychange, move |_| tick());
    on_cleanup(move || visible.remove());
}

/// Marks the first render of a folded board (for the benchmark) once the board has arrived.
pub fn mark_when_rendered(live: Live) {
    Effect::new(move |_| {
        if live.board.with(|b| b.created) {
            crate::browser::mark_board_rendered();
        }
    });
}

/// The countdown of the current timebox: `m:ss` to the server's deadline, corrected by the clock
/// offset, with a screen-reader companion that speaks only at moments that matter.
#[component]
pub fn Countdown(live: Live) -> AnyView {
    let board = live.board;
    let timer = memo(move || board.with(|b| b.timer));
    let remaining = memo(move || {
        let timebox = board.with(|b| b.settings.timebox_ms);
        present::remaining_ms(&timer.get(), timebox, live.now_ms.get(), live.offset_ms.get())
    });
    let announcer = StoredValue::new(Announcer::new());
    let spoken = RwSignal::new(String::new());
    Effect::new(move |_| {
        let (timer, remaining) = (timer.get(), remaining.get());
        if let Some(sentence) = announcer.try_update_value(|a| a.tick(&timer, remaining)).flatten() {
            spoken.set(sentence);
        }
    });
    let state_class = move || match timer.get() {
        Timer::Running { .. } if remaining.get() <= 60_000 => "timer running ending",
        Timer::Running { .. } => "timer running",
        Timer::Paused { .. } => "timer paused",
        Timer::Expired => "timer expired",
        Timer::Idle => "timer idle",
    };
    let state_label = move || match timer.get() {
        Timer::Running { .. } => "left",
        Timer::Paused { .. } => "Paused",
        Timer::Expired => "Time is up",
        Timer::Idle => "Timer not started",
    };
    view! {
        <div class=state_class>
            <div
                class="countdown"
                role="timer"
                aria-label="Time left in this timebox"
                data-test="countdown"
                data-remaining-ms=rx(move || remaining.get().to_string())
            >
                {rx(move || present::format_clock(remaining.get()))}
            </div>
            <div class="timer-state">{state_label}</div>
            <div class="sr-only" aria-live="polite">
                {rx(move || spoken.get())}
            </div>
        </div>
    }
    .into_any()
}

/// The check-in counts.
#[component]
pub fn Tally(live: Live) -> AnyView {
    let counts = memo(move || live.board.with(|b| b.check_in.as_ref().map(|c| (c.up, c.sideways, c.down))));
    let n = move |pick: fn((u32, u32, u32)) -> u32| move || counts.get().map(pick).unwrap_or(0).to_string();
    view! {
        <div class="tally" data-test="tally" role="group" aria-label="Check-in so far">
            <span class="tally-item">
                <span aria-hidden="true">"👍 "</span>
                <strong data-test="tally-up">{n(|c| c.0)}</strong>
                " keep going"
            </span>
            <span class="tally-item">
                <span aria-hidden="true">"✋ "</span>
                <strong data-test="tally-sideways">{n(|c| c.1)}</strong>
                " either way"
            </span>
            <span class="tally-item">
                <span aria-hidden="true">"👎 "</span>
                <strong data-test="tally-down">{n(|c| c.2)}</strong>
                " move on"
            </span>
        </div>
    }
    .into_any()
}

/// The label of a check-in answer.
pub fn answer_label(answer: Answer) -> (&'static str, &'static str) {
    match answer {
        Answer::Up => ("👍", "Keep going"),
        Answer::Sideways => ("✋", "Either way"),
        Answer::Down => ("👎", "Move on"),
    }
}

/// A topic's takeaway, if it has one.
#[component]
pub fn Takeaway(live: Live, topic: TopicId) -> AnyView {
    let text = memo(move || {
        live.board.with(|b| b.topics.get(&topic).and_then(|t| t.takeaway.as_ref().map(|x| x.as_str().to_owned())))
    });
    (move || {
        let text = text.get();
        maybe(text.is_some(), || {
            view! {
                <div class="takeaway">
                    <h4 class="mini-heading">"Takeaway"</h4>
                    <p class="multiline">{text}</p>
                </div>
            }
            .into_any()
        })
    })
    .into_any()
}

/// A topic's action items; the facilitator may remove them (`removable`).
#[component]
pub fn ActionItems(live: Live, topic: TopicId, removable: bool) -> AnyView {
    let items = memo(move || {
        live.board.with(|b| {
            b.action_items_for(topic)
                .map(|a| {
                    let owner = present::person_name(b, a.owner).to_owned();
                    (a.id, a.text.as_str().to_owned(), owner, a.due.clone())
                })
                .collect::<Vec<_>>()
        })
    });
    let remove = move |id: ActionItemId| live.send(minim_shared::Command::RemoveActionItem { id });
    let item = move |(id, text, owner, due): (ActionItemId, String, String, Option<String>)| {
        let label = format!("Remove action item: {text}");
        let due = due.map(|d| format!(" (due {d})")).unwrap_or_default();
        view! {
            <li class="action-item" data-test="action-item">
                <span class="check" aria-hidden="true">"☐"</span>
                <span class="action-body">
                    <span class="action-text">{text}</span>
                    <span class="action-owner">{format!(" — {owner}")}</span>
                    <span class="action-due">{due}</span>
                </span>
                {maybe(removable, || {
                    view! {
                        <button
                            type="button"
                            class="btn small ghost"
                            data-test="remove-action"
                            aria-label=label
                            on:click=move |_| remove(id)
                        >
                            "Remove"
                        </button>
                    }
                    .into_any()
                })}
            </li>
        }
        .into_any()
    };
    (move || {
        let all = items.get();
        maybe(!all.is_empty(), || {
            view! {
                <div class="action-items">
                    <h4 class="mini-heading">"Action items"</h4>
                    <ul class="action-list">{list(all, item)}</ul>
                </div>
            }
            .into_any()
        })
    })
    .into_any()
}

/// A memo whose computation is boxed, so that every memo of one type shares one compiled copy of
/// the reactive machinery (a generic closure per memo would each bring its own).
pub fn memo<T: PartialEq + Send + Sync + 'static>(f: impl Fn() -> T + Send + Sync + 'static) -> Memo<T> {
    let f: Box<dyn Fn() -> T + Send + Sync> = Box::new(f);
    Memo::new(move |_| f())
}

/// A reactive value for a view (a text, an attribute, a child), boxed for the same reason.
pub fn rx<T: 'static>(f: impl Fn() -> T + Send + 'static) -> Box<dyn FnMut() -> T + Send> {
    Box::new(f)
}
