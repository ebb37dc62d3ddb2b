//! The minim browser app (placeholder; the real app follows).
use leptos::prelude::*;

fn main() {
    mount_to_body(|| view! { <p>"minim"</p> });
}
