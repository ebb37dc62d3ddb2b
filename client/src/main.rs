//! The minim browser app: a Leptos app rendered in the browser (client-side only).
//!
//! | module | what it holds |
//! |---|---|
//! | [`app`] | the routes (start page, board link) and the one place errors appear |
//! | [`api`] | the HTTP API: create a board, join one through its link |
//! | [`session`] | the session kept in `localStorage` per board |
//! | [`connection`] | the WebSocket: hello, folding events, reconnecting with backoff, clock sync |
//! | [`browser`] | small wrappers around the browser's clock, location and performance marks |
//! | [`views`] | the pages and their parts |
//!
//! The logic that needs no browser lives in [`minim_shared::present`], where it is unit-tested.

mod api;
mod app;
mod browser;
mod connection;
mod session;
mod views;

fn main() {
    leptos::mount::mount_to_body(app::App);
}
