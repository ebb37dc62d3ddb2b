//! A QR code drawn as SVG elements: one `<path>` with a unit square per dark module, built from
//! the `qrcode` crate's module grid (no SVG markup strings).

use leptos::prelude::*;
use std::fmt::Write as _;

/// Modules of light margin around the code, as the standard asks.
const QUIET_ZONE: usize = 4;

/// The path data of the dark modules of `url`'s QR code, and the side of its square in modules.
fn modules(url: &str) -> Option<(String, usize)> {
    let code = qrcode::QrCode::new(url.as_bytes()).ok()?;
    let width = code.width();
    let mut d = String::new();
    for (i, color) in code.to_colors().iter().enumerate() {
        if *color == qrcode::Color::Dark {
            let (x, y) = (i % width + QUIET_ZONE, i / width + QUIET_ZONE);
            let _ = write!(d, "M{x} {y}h1v1h-1z");
        }
    }
    Some((d, width + 2 * QUIET_ZONE))
}

#[component]
pub fn QrCode(url: String) -> AnyView {
    let Some((d, side)) = modules(&url) else {
        return view! { <p class="help">"This link is too long for a QR code."</p> }.into_any();
    };
    view! {
        <svg
            class="qr"
            data-test="qr"
            viewBox=format!("0 0 {side} {side}")
            role="img"
            aria-label="QR code of the participant link"
            shape-rendering="crispEdges"
        >
            <rect class="qr-light" width=side height=side></rect>
            <path class="qr-dark" d=d></path>
        </svg>
    }
    .into_any()
}
