//! The start page (`/`): create a board with its settings, then hand out its three links (each
//! copyable, with what it is for), a QR code of the participant link, and a way in as facilitator.

use crate::api::{self, Links};
use crate::app::Errors;
use crate::views::qr::QrCode;
use crate::views::rx;
use leptos::prelude::*;
use leptos::task::spawn_local;
use minim_shared::settings::{MAX_TITLE_CHARS, MAX_VOTES_PER_PERSON};
use minim_shared::{Settings, present};

#[component]
pub fn StartPage() -> AnyView {
    let created: RwSignal<Option<Links>> = RwSignal::new(None);
    view! {
        <main class="page start">
            <header class="start-hero">
                <p class="brand">"minim"</p>
                <h1>"A calm Lean Coffee board for your Mini-M"</h1>
                <p class="lede">
                    "Everyone adds topics, everyone votes, and you talk through what matters most in short timeboxes. "
                    "Nobody sees who wrote which topic."
                </p>
            </header>
            {rx(move || match created.get() {
                None => view! { <CreateForm created/> }.into_any(),
                Some(links) => view! { <LinksPanel links/> }.into_any(),
            })}
        </main>
    }
    .into_any()
}

#[component]
fn CreateForm(created: RwSignal<Option<Links>>) -> AnyView {
    let errors = expect_context::<Errors>();
    let defaults = Settings::default();
    let title = RwSignal::new(String::new());
    let votes = RwSignal::new(defaults.votes_per_person.to_string());
    let per_topic = RwSignal::new(defaults.max_votes_per_topic.to_string());
    let minutes = RwSignal::new((defaults.timebox_ms / 60_000).to_string());
    let hide_topics = RwSignal::new(defaults.hide_topics_until_revealed);
    let hide_totals = RwSignal::new(defaults.hide_totals_until_voting_closes);
    let busy = RwSignal::new(false);

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let count = |s: RwSignal<String>| s.get_untracked().trim().parse::<u32>().ok();
        let (Some(v), Some(p)) = (count(votes), count(per_topic)) else {
            errors.show("Votes must be whole numbers.");
            return;
        };
        let Some(timebox_ms) = present::parse_minutes(&minutes.get_untracked()) else {
            errors.show("The timebox must be a number of minutes, such as 5 or 2.5.");
            return;
        };
        let settings = Settings {
            votes_per_person: v,
            max_votes_per_topic: p,
            timebox_ms,
            extension_ms: None,
            hide_topics_until_revealed: hide_topics.get_untracked(),
            hide_totals_until_voting_closes: hide_totals.get_untracked(),
        };
        if let Some(problem) = settings.problem() {
            errors.show(problem);
            return;
        }
        busy.set(true);
        let title = title.get_untracked();
        spawn_local(async move {
            match api::create_board(&title, &settings).await {
                Ok(answer) => {
                    errors.clear();
                    created.set(Some(answer.links));
                }
                Err(e) => errors.show(e.message),
            }
            busy.set(false);
        });
    };

    view! {
        <form class="card create-form" on:submit=submit>
            <h2>"Start a meeting"</h2>
            <div class="field">
                <label for="board-title">"Meeting title"</label>
                <input
                    id="board-title"
                    type="text"
                    data-test="board-title"
                    required
                    maxlength=MAX_TITLE_CHARS
                    placeholder="Thursday Mini-M"
                    autocomplete="off"
                    prop:value=rx(move || title.get())
                    on:input=move |ev| title.set(event_target_value(&ev))
                />
            </div>
            <fieldset class="settings">
                <legend>"How the meeting runs"</legend>
                <div class="settings-grid">
                    <NumberField id="votes-per-person" label="Votes per person" value=votes min="1" max=MAX_VOTES_PER_PERSON.to_string()/>
                    <NumberField
                        id="max-votes-per-topic"
                        label="Most votes on one topic"
                        value=per_topic
                        min="1"
                        max=MAX_VOTES_PER_PERSON.to_string()
                    />
                    <NumberField id="timebox-minutes" label="Timebox (minutes)" value=minutes min="0.1" max="60" decimal=true/>
                </div>
                <div class="check">
                    <input
                        id="hide-topics"
                        type="checkbox"
                        data-test="hide-topics"
                        prop:checked=rx(move || hide_topics.get())
                        on:change=move |ev| hide_topics.set(event_target_checked(&ev))
                    />
                    <label for="hide-topics">
                        "Hide topics until I reveal them"
                        <span class="help">"Everyone writes without being swayed by the others' topics."</span>
                    </label>
                </div>
                <div class="check">
                    <input
                        id="hide-totals"
                        type="checkbox"
                        data-test="hide-totals"
                        prop:checked=rx(move || hide_totals.get())
                        on:change=move |ev| hide_totals.set(event_target_checked(&ev))
                    />
                    <label for="hide-totals">
                        "Hide vote totals until voting closes"
                        <span class="help">"Each person still sees their own votes."</span>
                    </label>
                </div>
            </fieldset>
            <button type="submit" class="btn primary large" data-test="create-board" disabled=rx(move || busy.get())>
                {rx(move || if busy.get() { "Creating…" } else { "Create board" })}
            </button>
        </form>
    }
    .into_any()
}

#[component]
fn LinksPanel(links: Links) -> AnyView {
    let facilitator = links.facilitator.clone();
    view! {
        <section class="card links" aria-labelledby="links-title">
            <h2 id="links-title">"Your board is ready"</h2>
            <LinkRow
                title="Facilitator link"
                help="Keep this one to yourself: it lets whoever holds it run the meeting."
                url=links.facilitator.clone()
                test="facilitator-link"
            />
            <div class="participant-row">
                <LinkRow
                    title="Participant link"
                    help="Share this with the group. Anyone with it can join and add topics."
                    url=links.participant.clone()
                    test="participant-link"
                />
                <figure class="qr-figure">
                    <QrCode url=links.participant.clone()/>
                    <figcaption>"Scan to join as a participant"</figcaption>
                </figure>
            </div>
            <LinkRow
                title="Projector link"
                help="Open this on the room's screen: a read-only view with the current topic and timer."
                url=links.projector.clone()
                test="projector-link"
            />
            <a class="btn primary large" href=facilitator data-test="open-facilitator">
                "Open as facilitator"
            </a>
        </section>
    }
    .into_any()
}

#[component]
pub fn LinkRow(title: &'static str, help: &'static str, url: String, test: &'static str) -> AnyView {
    // None: not tried; Some(true): copied; Some(false): no clipboard here (plain HTTP).
    let copied = RwSignal::new(None::<bool>);
    let id = format!("{test}-label");
    let to_copy = url.clone();
    let copy = move |_| {
        copied.set(Some(crate::browser::copy_to_clipboard(&to_copy)));
        set_timeout(move || copied.set(None), std::time::Duration::from_secs(3));
    };
    view! {
        <div class="link-row">
            <h3 id=id.clone()>{title}</h3>
            <p class="help">{help}</p>
            <div class="link-line">
                <code class="link" data-test=test aria-labelledby=id>{url}</code>
                <button type="button" class="btn" on:click=copy>
                    {rx(move || match copied.get() {
                        None => "Copy",
                        Some(true) => "Copied ✓",
                        Some(false) => "Select the link to copy it",
                    })}
                </button>
            </div>
        </div>
    }
    .into_any()
}

/// A labelled number input bound to `value`; `id` is also its `data-test` name. `decimal` allows
/// fractions (any step) and asks phones for a decimal keypad.
#[component]
fn NumberField(
    id: &'static str,
    label: &'static str,
    value: RwSignal<String>,
    #[prop(into)] min: String,
    #[prop(into)] max: String,
    #[prop(optional)] decimal: bool,
) -> AnyView {
    view! {
        <div class="field">
            <label for=id>{label}</label>
            <input
                id=id
                type="number"
                inputmode=if decimal { "decimal" } else { "numeric" }
                step=if decimal { "any" } else { "1" }
                min=min
                max=max
                data-test=id
                prop:value=rx(move || value.get())
                on:input=move |ev| value.set(event_target_value(&ev))
            />
        </div>
    }
    .into_any()
}
