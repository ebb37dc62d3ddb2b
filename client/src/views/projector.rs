//! The projector view: read-only, for the room's screen. No controls, no names, nothing personal;
//! huge type. The current topic and the countdown dominate; the queue (with totals when public)
//! is smaller; the check-in tally shows while it is open. A privacy curtain (`b`, Space, or a
//! click anywhere) blanks the whole screen, and the same brings it back.

use crate::app::Errors;
use crate::connection::Live;
use crate::views::{ConnectionIndicator, Countdown, Tally, list, mark_when_rendered, maybe, memo, rx, start_clock};
use leptos::prelude::*;
use minim_shared::present;
use minim_shared::{Phase, TopicId};

/// How many waiting topics the discussion screen lists.
const UP_NEXT: usize = 5;

#[component]
pub fn ProjectorView(live: Live) -> AnyView {
    expect_context::<Errors>().projector.set(true);
    start_clock(live);
    mark_when_rendered(live);
    let curtain = RwSignal::new(false);
    let keys = window_event_listener(leptos::ev::keydown, move |ev| {
        let key = ev.key();
        if (key == "b" || key == "B" || key == " ") && !ev.ctrl_key() && !ev.meta_key() && !ev.alt_key() {
            ev.prevent_default();
            curtain.update(|on| *on = !*on);
        }
    });
    on_cleanup(move || keys.remove());

    let board = live.board;
    let created = memo(move || board.with(|b| b.created));
    let phase = memo(move || board.with(|b| b.phase));
    let title = memo(move || board.with(|b| b.title.as_str().to_owned()));
    view! {
        <div
            class=rx(move || format!("projector phase-{}", present::phase_slug(phase.get())))
            data-test="projector"
            data-phase=rx(move || present::phase_slug(phase.get()))
            on:click=move |_| curtain.update(|on| *on = !*on)
        >
            <div class="curtain" data-test="curtain" data-state=rx(move || if curtain.get() { "on" } else { "off" }) hidden=rx(move || !curtain.get())>
                <span class="curtain-mark">"minim — paused"</span>
            </div>
            <div class="projector-screen" hidden=rx(move || curtain.get())>
                <header class="projector-head">
                    <p class="brand">"minim"</p>
                    <h1 class="projector-title">{rx(move || title.get())}</h1>
                    <span class="phase-badge" data-test="phase">{rx(move || present::phase_title(phase.get()))}</span>
                    <ConnectionIndicator live/>
                </header>
                {rx(move || {
                    if !created.get() {
                        return view! { <p class="projector-loading">"Waiting for the board…"</p> }.into_any();
                    }
                    match phase.get() {
                        Phase::Gathering | Phase::Voting => view! { <ProjectorTopics live/> }.into_any(),
                        Phase::Discussing => view! { <ProjectorDiscussion live/> }.into_any(),
                        Phase::WrapUp | Phase::Closed => view! { <ProjectorWrapUp live/> }.into_any(),
                    }
                })}
            </div>
        </div>
    }
    .into_any()
}

/// A topic as the room sees it: its text (or the hidden placeholder) and its total when public.
#[component]
fn ProjectorTopic(live: Live, id: TopicId) -> AnyView {
    let shown = memo(move || {
        live.board.with(|b| {
            let t = b.topics.get(&id)?;
            let votes = (b.totals_public() && b.phase != Phase::Gathering).then_some(t.votes);
            Some((t.text.as_ref().map(|x| x.as_str().to_owned()), votes))
        })
    });
    view! {
        <li class="p-topic" data-test="topic" data-topic-id=id.0.to_string()>
            {rx(move || match shown.get().and_then(|s| s.0) {
                Some(text) => view! { <span class="p-topic-text" data-test="topic-text">{text}</span> }.into_any(),
                None => view! {
                    <span class="p-topic-text placeholder" data-test="topic-text">"A topic is being written…"</span>
                }
                .into_any(),
            })}
            {rx(move || {
                let votes = shown.get().and_then(|s| s.1);
                maybe(votes.is_some(), || {
                    let votes = votes.unwrap_or_default();
                    view! {
                        <span class="p-votes">
                            <span data-test="topic-votes">{votes}</span>
                            <span class="p-votes-unit">{if votes == 1 { " vote" } else { " votes" }}</span>
                        </span>
                    }
                    .into_any()
                })
            })}
        </li>
    }
    .into_any()
}

#[component]
fn ProjectorTopics(live: Live) -> AnyView {
    let board = live.board;
    let ids = memo(move || board.with(|b| b.queue().iter().map(|t| t.id).collect::<Vec<_>>()));
    let phase = memo(move || board.with(|b| b.phase));
    let heading = move || match phase.get() {
        Phase::Gathering => "Add your topics",
        _ => "Vote for what you most want to discuss",
    };
    view! {
        <main class="projector-topics">
            <h2 class="p-heading">
                {heading}
                <span class="p-count">{rx(move || {
                    let n = ids.with(Vec::len);
                    format!("{n} {}", if n == 1 { "topic" } else { "topics" })
                })}</span>
            </h2>
            <ol class="p-topic-grid">
                {rx(move || list(ids.get(), move |id| view! { <ProjectorTopic live id/> }.into_any()))}
            </ol>
        </main>
    }
    .into_any()
}

#[component]
fn ProjectorDiscussion(live: Live) -> AnyView {
    let board = live.board;
    let current = memo(move || {
        board.with(|b| {
            let id = b.current_topic()?;
            Some((id, b.topics.get(&id)?.text.as_ref().map(|x| x.as_str().to_owned()).unwrap_or_default()))
        })
    });
    let up_next = memo(move || board.with(|b| b.queue().iter().take(UP_NEXT).map(|t| t.id).collect::<Vec<_>>()));
    let check_in = memo(move || board.with(|b| b.check_in.is_some()));
    view! {
        <main class="projector-discussion">
            <section class="p-now" aria-label="Under discussion">
                {rx(move || match current.get() {
                    Some((id, text)) => view! {
                        <div class="p-current" data-test="topic" data-topic-id=id.0.to_string()>
                            <p class="p-label">"Now discussing"</p>
                            <p class="p-current-text" data-test="topic-text">{text}</p>
                        </div>
                        <Countdown live/>
                    }
                    .into_any(),
                    None => view! { <p class="p-current-text">"Choosing the next topic…"</p> }.into_any(),
                })}
                {rx(move || {
                    maybe(check_in.get(), || {
                        view! {
                            <div class="p-check-in">
                                <p class="p-label">"Check-in: keep going?"</p>
                                <Tally live/>
                            </div>
                        }
                        .into_any()
                    })
                })}
            </section>
            <aside class="p-next" aria-label="Up next">
                <h2 class="p-label">"Up next"</h2>
                {rx(move || maybe(up_next.with(Vec::is_empty), || view! { <p class="p-empty">"No more topics waiting."</p> }.into_any()))}
                <ol class="p-topic-list">
                    {rx(move || list(up_next.get(), move |id| view! { <ProjectorTopic live id/> }.into_any()))}
                </ol>
            </aside>
        </main>
    }
    .into_any()
}

#[component]
fn ProjectorWrapUp(live: Live) -> AnyView {
    let board = live.board;
    let done = memo(move || {
        board.with(|b| {
            present::discussed_in_order(b)
                .iter()
                .map(|t| {
                    let items: Vec<String> = b
                        .action_items_for(t.id)
                        .map(|a| {
                            let mut line = format!("{} — {}", a.text.as_str(), present::person_name(b, a.owner));
                            if let Some(due) = &a.due {
                                line.push_str(&format!(" (due {due})"));
                            }
                            line
                        })
                        .collect();
                    (
                        t.id,
                        t.text.as_ref().map(|x| x.as_str().to_owned()).unwrap_or_default(),
                        t.takeaway.as_ref().map(|x| x.as_str().to_owned()),
                        items,
                    )
                })
                .collect::<Vec<_>>()
        })
    });
    view! {
        <main class="projector-wrap-up">
            <h2 class="p-heading">"What we take away"</h2>
            {rx(move || maybe(done.with(Vec::is_empty), || view! { <p class="p-empty">"No topics were discussed."</p> }.into_any()))}
            <ol class="p-done-list">
                {rx(move || {
                    list(done.get(), |(id, text, takeaway, items)| {
                        let has_takeaway = takeaway.is_some();
                        view! {
                            <li class="p-done" data-test="topic" data-topic-id=id.0.to_string()>
                                <p class="p-done-text" data-test="topic-text">{text}</p>
                                {maybe(has_takeaway, || view! { <p class="p-takeaway multiline">{takeaway}</p> }.into_any())}
                                <ul class="p-actions">
                                    {list(items, |line| view! { <li>{"☐ "}{line}</li> }.into_any())}
                                </ul>
                            </li>
                        }
                        .into_any()
                    })
                })}
            </ol>
        </main>
    }
    .into_any()
}
