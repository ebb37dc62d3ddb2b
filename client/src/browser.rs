//! Thin wrappers around the browser: the local clock, the page's location, randomness for
//! jitter, the local date, and the performance mark a benchmark waits for.

use std::cell::Cell;

/// The local clock, in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    js_sys::Date::now().max(0.0) as u64
}

/// Asks the person to confirm something that cannot be undone (the browser's own dialog).
pub fn confirm(question: &str) -> bool {
    web_sys::window().and_then(|w| w.confirm_with_message(question).ok()).unwrap_or(false)
}

/// A random number in `0..1` (for reconnect jitter; not for anything secret).
pub fn random() -> f64 {
    js_sys::Math::random()
}

/// Today's date in the local time zone, `YYYY-MM-DD`.
pub fn today() -> String {
    // getTimezoneOffset is minutes *west* of UTC.
    let offset = -(js_sys::Date::new_0().get_timezone_offset() as i64);
    minim_shared::present::calendar_date(now_ms() as i64, offset)
}

fn location() -> Option<web_sys::Location> {
    web_sys::window().map(|w| w.location())
}

/// The page's path, e.g. `/b/abc`.
pub fn path() -> String {
    location().and_then(|l| l.pathname().ok()).unwrap_or_default()
}

/// The page's fragment, e.g. `#k=...`.
pub fn fragment() -> String {
    location().and_then(|l| l.hash().ok()).unwrap_or_default()
}

/// `http:` or `https:`.
pub fn protocol() -> String {
    location().and_then(|l| l.protocol().ok()).unwrap_or_default()
}

/// The page's host with its port.
pub fn host() -> String {
    location().and_then(|l| l.host().ok()).unwrap_or_default()
}

thread_local! {
    static BOARD_RENDERED: Cell<bool> = const { Cell::new(false) };
}

/// Marks `minim:board-rendered` once per page load, the first time a board is on screen.
pub fn mark_board_rendered() {
    if BOARD_RENDERED.with(|done| done.replace(true)) {
        return;
    }
    if let Some(perf) = web_sys::window().and_then(|w| w.performance()) {
        let _ = perf.mark("minim:board-rendered");
    }
}

/// Copies text to the clipboard (best effort: browsers allow it only on secure pages).
pub fn copy_to_clipboard(text: &str) -> bool {
    let Some(window) = web_sys::window() else { return false };
    let clipboard = window.navigator().clipboard();
    // Where the Clipboard API is missing (plain-HTTP pages) the getter returns undefined.
    if wasm_bindgen::JsValue::from(clipboard.clone()).is_undefined() {
        return false;
    }
    let _ = clipboard.write_text(text);
    true
}
