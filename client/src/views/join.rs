//! A board's link (`/b/<board>#k=<key>`): reuse the stored session, or join. The server says what
//! the key grants: a projector key joins at once (it needs no name); a person's key asks for a
//! display name first. Then the board, or
//! the projector view for the projector grant. A refused session (close code 4401) brings the
//! join form back with the server's message.

use crate::api::{self, Grant};
use crate::app::Errors;
use crate::connection::{ConnState, Connection};
use crate::session::{self, StoredSession};
use crate::views::board::BoardView;
use crate::views::projector::ProjectorView;
use crate::views::rx;
use leptos::prelude::*;
use leptos::task::spawn_local;
use minim_shared::settings::MAX_NAME_CHARS;

/// Where joining stands.
#[derive(Clone, PartialEq, Debug)]
enum Stage {
    /// Asking the server what the key grants.
    Probing,
    NeedName,
    /// The link has no key, or the key is not one of this board's.
    BadLink,
    Joined(StoredSession),
}

#[component]
pub fn BoardPage(board: String, key: Option<String>) -> AnyView {
    let errors = expect_context::<Errors>();
    let stored = session::load(&board).filter(|s| key.is_none() || s.key.is_none() || s.key == key);
    let stage = RwSignal::new(match (stored, &key) {
        (Some(s), _) => Stage::Joined(s),
        (None, Some(_)) => Stage::Probing,
        (None, None) => Stage::BadLink,
    });

    let board_id = board.clone();
    let probe_key = key.clone();
    let probe = move || {
        let (board, Some(key)) = (board_id.clone(), probe_key.clone()) else { return };
        spawn_local(async move {
            let joined = match api::link_grant(&board, &key).await {
                // The projector needs no name: straight in.
                Ok(Grant::Projector) => api::join(&board, &key, "").await,
                Ok(_) => return stage.set(Stage::NeedName),
                Err(e) => Err(e),
            };
            match joined {
                Ok(joined) => stage.set(Stage::Joined(StoredSession::from_joined(joined, &key))),
                Err(e) if e.status == 403 || e.status == 404 => {
                    errors.show(e.message);
                    stage.set(Stage::BadLink);
                }
                Err(e) => {
                    errors.show(e.message);
                    stage.set(Stage::NeedName);
                }
            }
        });
    };
    if stage.get_untracked() == Stage::Probing {
        probe();
    }

    let board_for_views = board.clone();
    (move || match stage.get() {
        Stage::Probing => view! {
            <main class="page narrow">
                <p class="loading">"Opening the board…"</p>
            </main>
        }
        .into_any(),
        Stage::BadLink => view! {
            <main class="page narrow">
                <div class="card">
                    <h1>"This link does not open a board"</h1>
                    <p>"Ask the facilitator for the link again, or "<a href="/">"start a new board"</a>"."</p>
                </div>
            </main>
        }
        .into_any(),
        Stage::NeedName => {
            view! { <JoinForm board=board_for_views.clone() key=key.clone().unwrap_or_default() stage/> }.into_any()
        }
        Stage::Joined(session) => {
            let board = board_for_views.clone();
            let grant = session.grant;
            let forget = board.clone();
            let live = Connection::open(&board, session.token.clone(), errors, move |message| {
                session::clear(&forget);
                errors.show(message);
                stage.set(Stage::NeedName);
            });
            on_cleanup(move || live.stop());
            if grant == Grant::Projector {
                view! { <ProjectorView live/> }.into_any()
            } else {
                view! { <BoardView live/> }.into_any()
            }
        }
    })
    .into_any()
}

#[component]
fn JoinForm(board: String, key: String, stage: RwSignal<Stage>) -> AnyView {
    let errors = expect_context::<Errors>();
    let name = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        let (board, key, name) = (board.clone(), key.clone(), name.get_untracked());
        spawn_local(async move {
            match api::join(&board, &key, &name).await {
                Ok(joined) => {
                    errors.clear();
                    let stored = StoredSession::from_joined(joined, &key);
                    session::save(&board, &stored);
                    stage.set(Stage::Joined(stored));
                }
                Err(e) => errors.show(e.message),
            }
            busy.set(false);
        });
    };
    view! {
        <main class="page narrow">
            <header class="join-head">
                <p class="brand">"minim"</p>
                <span class="conn conn-offline" data-test="connection" data-state=ConnState::Offline.attr()>
                    <span class="conn-dot" aria-hidden="true"></span>
                    <span class="conn-label">"Not joined yet"</span>
                </span>
            </header>
            <form class="card join-form" on:submit=submit>
                <h1>"Join the meeting"</h1>
                <p class="lede">
                    "Topics are anonymous: nobody sees who wrote what. Your name appears in the list of people and on action items you own."
                </p>
                <div class="field">
                    <label for="display-name">"Your name"</label>
                    <input
                        id="display-name"
                        type="text"
                        data-test="display-name"
                        required
                        maxlength=MAX_NAME_CHARS
                        autocomplete="nickname"
                        autofocus
                        prop:value=rx(move || name.get())
                        on:input=move |ev| name.set(event_target_value(&ev))
                    />
                </div>
                <button type="submit" class="btn primary large" data-test="join" disabled=rx(move || busy.get())>
                    {rx(move || if busy.get() { "Joining…" } else { "Join" })}
                </button>
            </form>
        </main>
    }
    .into_any()
}
