//! # minim-server
//!
//! All of minim's IO around the pure board in `minim-shared`.
//!
//! | module | role |
//! |---|---|
//! | [`config`] | flags and environment |
//! | [`http`] | API routes: create, join, WebSocket upgrade, health |
//! | [`admission`] | which WebSocket upgrades are let in: origin, connections per address |
//! | [`web`] | the browser app's files and the security headers |
//! | [`session`] | one WebSocket connection: hello, commands, heartbeat, following its board |
//! | [`outbox`] | what a connection writes: one mailbox the board, its answers and the session put messages in, in one order |
//! | [`board_task`] | [`board_task::BoardHub`] and one task per live board, which owns its state |
//! | [`store`] | the [`store::EventLog`] seam: the embedded on-disk log, or Redis |
//! | [`fanout`] | with Redis: hearing other nodes' appends through pub/sub, and probing that |
//! | [`auth`] | link keys and session tokens |
//! | [`metrics`] | operational counters for `/metrics` (nothing from a board in them) |
//! | [`clock`] | the wall clock handed to the rules |
//!
//! Nothing here logs what people wrote or their names: logs carry board ids, connection numbers,
//! command kinds and error codes.

pub mod admission;
pub mod auth;
pub mod board_task;
pub mod clock;
pub mod config;
pub mod fanout;
pub mod http;
pub mod metrics;
pub mod outbox;
pub mod session;
pub mod store;
pub mod web;

use actix_web::{App, HttpServer};
use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long in-flight HTTP requests get to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Deletes boards whose retention has passed, now and then (the Redis store expires them by itself).
async fn delete_expired_boards(hub: Arc<board_task::BoardHub>, retention: Duration, shutdown: CancellationToken) {
    // Often enough that a board outlives its retention by at most a quarter of it (or an hour).
    let every = (retention / 4).clamp(Duration::from_millis(250), Duration::from_secs(3600));
    let mut ticks = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                if let Err(e) = hub.delete_expired(retention).await {
                    tracing::error!(error = %e, "could not delete expired boards; trying again later");
                }
            }
            () = shutdown.cancelled() => return,
        }
    }
}

/// Runs the server until `shutdown` is cancelled, then tells clients to reconnect and stops.
pub async fn run(config: config::Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("while creating the data directory {}", config.data_dir.display()))?;
    let tokens = auth::Tokens::load_or_create(config.secret.as_ref(), &config.data_dir)?.with_ttl(config.session_ttl);
    let metrics = Arc::new(metrics::Metrics::default());
    let (hub, fanout) = match &config.redis_url {
        Some(url) => {
            let redis = Arc::new(store::redis::RedisLog::connect(
                &url.0,
                store::redis::PREFIX,
                config.retention,
                metrics.clone(),
            )?);
            let hub = board_task::BoardHub::new(redis.clone(), metrics, shutdown.clone());
            let fanout = fanout::Starter::new(redis, hub.clone(), shutdown.clone())?;
            if config.secret.is_none() {
                tracing::info!(
                    "every node serving these boards must share the signing secret: give each the same \
                     MINIM_SECRET, or the same data directory"
                );
            }
            (hub, Some(Arc::new(fanout)))
        }
        None => {
            let disk = Arc::new(store::disk::DiskLog::open(&config.data_dir)?);
            (board_task::BoardHub::new(disk, metrics, shutdown.clone()), None)
        }
    };
    tokio::spawn(delete_expired_boards(hub.clone(), config.retention, shutdown.clone()));
    let app = actix_web::web::Data::new(web::WebApp::load(&config.web_dir)?);

    // Bind first so that port 0 resolves before the public URL is derived from it.
    let listener =
        std::net::TcpListener::bind(config.bind).with_context(|| format!("while binding {}", config.bind))?;
    let addr = listener.local_addr()?;
    let public_url =
        config.public_url.clone().unwrap_or_else(|| format!("http://{addr}")).trim_end_matches('/').to_owned();
    let client_timeout = Duration::from_secs(config.client_timeout_secs);
    let state = actix_web::web::Data::new(http::AppState {
        hub,
        tokens,
        public_url: public_url.clone(),
        shutdown: shutdown.clone(),
        client_timeout,
        admission: admission::Admission::new(
            &public_url,
            config.allowed_origins.clone(),
            config.client_ip_header.clone(),
            config.max_connections_per_address,
        ),
    });

    let mut server = HttpServer::new(move || {
        // This runs on each worker thread as it starts; the first to start runs the subscription.
        if let Some(fanout) = &fanout {
            fanout.start_here();
        }
        App::new()
            .wrap(web::security_headers())
            .app_data(state.clone())
            .app_data(app.clone())
            .configure(http::routes)
            .configure(web::routes)
    })
    .disable_signals()
    // Events are small frames that must leave at once: without this, Nagle's algorithm holds a
    // frame back until the previous one is acknowledged (up to 40 ms with delayed ACKs), which
    // the benchmarks showed as a p99 of ~40 ms at any load.
    .tcp_nodelay(true)
    .shutdown_timeout(SHUTDOWN_GRACE.as_secs())
    .listen(listener)?;
    if let Some(workers) = config.workers {
        server = server.workers(workers.get());
    }
    let server = server.run();
    let store = if config.redis_url.is_some() { "redis" } else { "disk" };
    tracing::info!(%addr, data_dir = %config.data_dir.display(), store, "minim listening on http://{addr}");

    let handle = server.handle();
    let stopper = async move {
        shutdown.cancelled().await;
        tracing::info!("shutting down: asking clients to reconnect");
        // Sessions see the cancellation and send `reconnect`; give them a moment to flush it.
        tokio::time::sleep(Duration::from_millis(200)).await;
        handle.stop(true).await;
    };
    let (result, ()) = tokio::join!(server, stopper);
    result.context("while serving")?;
    Ok(())
}
