//! The wrap-up: a summary of the meeting around the columns, and the Markdown download (a Blob
//! object URL of [`present::wrap_up_markdown`], renewed whenever the board changes).

use crate::connection::Live;
use crate::views::{memo, rx};
use leptos::prelude::*;
use minim_shared::present;

/// An object URL for `text` as a Markdown file.
fn markdown_url(text: &str) -> Option<String> {
    let parts = js_sys::Array::of1(&wasm_bindgen::JsValue::from_str(text));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type("text/markdown;charset=utf-8");
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options).ok()?;
    web_sys::Url::create_object_url_with_blob(&blob).ok()
}

#[component]
pub fn WrapUp(live: Live, children: Children) -> AnyView {
    let board = live.board;
    let today = crate::browser::today();
    let markdown = memo(move || board.with(|b| present::wrap_up_markdown(b, &today)));
    let summary = memo(move || board.with(|b| (b.discussed().len(), b.action_items.len())));
    let href = RwSignal::new(String::new());
    Effect::new(move |_| {
        let url = markdown.with(|m| markdown_url(m)).unwrap_or_default();
        let old = href.get_untracked();
        href.set(url);
        if !old.is_empty() {
            let _ = web_sys::Url::revoke_object_url(&old);
        }
    });
    on_cleanup(move || {
        let old = href.try_get_untracked().unwrap_or_default();
        if !old.is_empty() {
            let _ = web_sys::Url::revoke_object_url(&old);
        }
    });
    view! {
        <section class="wrap-up" data-test="wrap-up" aria-labelledby="wrap-up-title">
            <div class="wrap-up-head">
                <div>
                    <h2 id="wrap-up-title">"Wrap-up"</h2>
                    <p class="help">
                        {rx(move || {
                            let (topics, items) = summary.get();
                            format!(
                                "{topics} {} discussed, {items} action {}.",
                                if topics == 1 { "topic" } else { "topics" },
                                if items == 1 { "item" } else { "items" },
                            )
                        })}
                    </p>
                </div>
                <a class="btn primary" data-test="download-markdown" download="minim-wrap-up.md" href=rx(move || href.get())>
                    "Download Markdown"
                </a>
            </div>
            {children()}
        </section>
    }
    .into_any()
}
