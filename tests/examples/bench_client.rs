//! Benchmark of the browser app: its size over the wire and how soon a board shows.
//!
//! Run by `scripts/bench-client` (which builds the app first). Prints a table and writes
//! `target/bench-client.json`. Times come from the page itself: `performance.mark
//! ("minim:board-rendered")` relative to navigation start, in headless Chromium on localhost.

use minim_tests::browser::Driver;
use minim_tests::{Server, web_dir};
use std::io::Write;

/// Page loads measured per case; the median is reported.
const RUNS: usize = 9;

/// Size after `gzip -9`, as the server sends it to browsers.
fn gzipped(path: &std::path::Path) -> anyhow::Result<usize> {
    let out = std::process::Command::new("gzip").arg("-9c").arg(path).output()?;
    anyhow::ensure!(out.status.success(), "gzip failed on {}", path.display());
    Ok(out.stdout.len())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[actix_rt::main]
async fn main() -> anyhow::Result<()> {
    let web = web_dir();
    let wasm = gzipped(&web.join("minim_bg.wasm"))?;
    let js = gzipped(&web.join("minim.js"))?;
    let raw_wasm = std::fs::metadata(web.join("minim_bg.wasm"))?.len();

    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path())?;
    let created = server.api().create_board("Bench", minim_shared::Settings::default()).await?;
    let driver = Driver::start().await?;
    let browser = driver.browser().await?;
    let rendered_at =
        "const m = performance.getEntriesByName('minim:board-rendered'); return m.length ? m[0].startTime : null";

    // A participant who already joined opens the link (a reload): page, app, session, board.
    browser.open(&created.links.participant).await?;
    browser.fill("[data-test=display-name]", "Bench").await?;
    browser.click("[data-test=join]").await?;
    browser.find("[data-test=board]").await?;
    let mut participant = vec![];
    let mut projector = vec![];
    // Links of one board differ only in their `#k=` fragment, and a fragment-only navigation does
    // not load the page again: a blank page in between makes every run a real load.
    for _ in 0..RUNS {
        browser.open("about:blank").await?;
        browser.open(&created.links.participant).await?;
        browser.until("the board mark", || async { Ok(!browser.script(rendered_at).await?.is_null()) }).await?;
        participant.push(browser.script(rendered_at).await?.as_f64().unwrap_or(f64::NAN));
        browser.open("about:blank").await?;
        browser.open(&created.links.projector).await?;
        browser.until("the board mark", || async { Ok(!browser.script(rendered_at).await?.is_null()) }).await?;
        projector.push(browser.script(rendered_at).await?.as_f64().unwrap_or(f64::NAN));
    }
    browser.close().await;

    // A first visit: a fresh browser profile each time (nothing cached), the projector link.
    let mut first_visit = vec![];
    for _ in 0..RUNS {
        let fresh = driver.browser().await?;
        fresh.open(&created.links.projector).await?;
        fresh.until("the board mark", || async { Ok(!fresh.script(rendered_at).await?.is_null()) }).await?;
        first_visit.push(fresh.script(rendered_at).await?.as_f64().unwrap_or(f64::NAN));
        fresh.close().await;
    }

    let (p, r, f) = (median(participant.clone()), median(projector.clone()), median(first_visit.clone()));
    println!("| measure | value |");
    println!("|---|---|");
    println!("| .wasm, raw | {:.1} KB |", raw_wasm as f64 / 1000.0);
    println!("| .wasm, gzip -9 | {:.1} KB |", wasm as f64 / 1000.0);
    println!("| JS glue, gzip -9 | {:.1} KB |", js as f64 / 1000.0);
    println!("| .wasm + JS, gzip -9 (budget 250 KB) | {:.1} KB |", (wasm + js) as f64 / 1000.0);
    println!("| runs, participant (ms) | {participant:.0?} |");
    println!("| runs, projector (ms) | {projector:.0?} |");
    println!("| board rendered after opening a participant link (joined before), median of {RUNS} | {p:.0} ms |");
    println!("| board rendered after opening the projector link, median of {RUNS} | {r:.0} ms |");
    println!("| runs, first visit (ms) | {first_visit:.0?} |");
    println!(
        "| board rendered on a first visit (fresh browser profile, projector link), median of {RUNS} | {f:.0} ms |"
    );
    let json = serde_json::json!({
        "wasm_gzip_bytes": wasm, "js_gzip_bytes": js, "wasm_raw_bytes": raw_wasm,
        "participant_render_ms": participant, "projector_render_ms": projector,
        "participant_render_ms_median": p, "projector_render_ms_median": r,
        "first_visit_render_ms": first_visit, "first_visit_render_ms_median": f,
    });
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-client.json");
    std::fs::File::create(&path)?.write_all(serde_json::to_string_pretty(&json)?.as_bytes())?;
    eprintln!("wrote {}", path.display());
    Ok(())
}
