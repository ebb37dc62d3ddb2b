//! The `minim` binary: parse configuration, set up logging, serve until SIGINT or SIGTERM.

use clap::Parser;
use minim_server::config::{Config, LogFormat};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// Every event allocates a few short-lived buffers on one worker and frees them on another;
/// mimalloc does that with about a tenth less CPU per event than the system allocator, for about
/// 10 kB more per idle connection (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stdout);
    match config.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    actix_web::rt::System::new().block_on(async move {
        let shutdown = CancellationToken::new();
        let on_signal = shutdown.clone();
        actix_web::rt::spawn(async move {
            wait_for_signal().await;
            on_signal.cancel();
        });
        minim_server::run(config, shutdown).await
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    // Failing to install a handler leaves the default (terminate), which is still a way to stop.
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}
