//! The app's root: picks the page from the address (`/` or `/b/<board>#k=<key>`) and holds the one
//! place where every error appears (`[data-test=error]`).

use crate::views::{self, rx};
use leptos::prelude::*;
use minim_shared::present;

/// The one error message on screen. Everything that fails (a rejected command, an `error` from the
/// server, an HTTP error body, a lost connection) reports here.
#[derive(Clone, Copy)]
pub struct Errors {
    message: RwSignal<Option<String>>,
    /// Set by the projector view: its screen has no buttons, so no dismiss button either.
    pub projector: RwSignal<bool>,
}

impl Errors {
    pub fn show(&self, message: impl Into<String>) {
        self.message.set(Some(message.into()));
    }

    pub fn clear(&self) {
        if self.message.with_untracked(Option::is_some) {
            self.message.set(None);
        }
    }

    pub fn message(&self) -> Option<String> {
        self.message.get()
    }
}

/// What the address asks for.
#[derive(Clone, PartialEq, Eq, Debug)]
enum Route {
    Start,
    Board { board: String, key: Option<String> },
    NotFound,
}

fn route() -> Route {
    let path = crate::browser::path();
    if path == "/" || path.is_empty() || path == "/index.html" {
        return Route::Start;
    }
    match present::board_from_path(&path) {
        Some(board) => Route::Board {
            board: board.to_owned(),
            key: present::key_from_fragment(&crate::browser::fragment()).map(str::to_owned),
        },
        None => Route::NotFound,
    }
}

#[component]
pub fn App() -> AnyView {
    let errors = Errors { message: RwSignal::new(None), projector: RwSignal::new(false) };
    provide_context(errors);
    let page = match route() {
        Route::Start => view! { <views::start::StartPage/> }.into_any(),
        Route::Board { board, key } => view! { <views::join::BoardPage board key/> }.into_any(),
        Route::NotFound => view! {
            <main class="page narrow">
                <h1>"Nothing here"</h1>
                <p>"This address is not a minim board. "<a href="/">"Start a new board"</a>"."</p>
            </main>
        }
        .into_any(),
    };
    view! {
        <ErrorBar/>
        {page}
    }
    .into_any()
}

/// The error place: a bar with the message (`[data-test=error]` holds the message alone), hidden
/// when there is none.
#[component]
fn ErrorBar() -> AnyView {
    let errors = expect_context::<Errors>();
    view! {
        <div class="error-bar" hidden=rx(move || errors.message().is_none())>
            <p class="error-text" role="alert" data-test="error">
                {rx(move || errors.message().unwrap_or_default())}
            </p>
            {rx(move || {
                views::maybe(!errors.projector.get(), || {
                    view! {
                        <button
                            type="button"
                            class="error-dismiss"
                            aria-label="Dismiss this message"
                            on:click=move |_| errors.clear()
                        >
                            "×"
                        </button>
                    }
                    .into_any()
                })
            })}
        </div>
    }
    .into_any()
}
