//! What operators look at: liveness, readiness (the store takes writes) and metrics, which count
//! what happens without carrying anything from a board.

use minim_shared::{Command, Phase, Private, Settings};
use minim_tests::TestBoard;

fn value(metrics: &str, line_start: &str) -> Option<f64> {
    metrics.lines().find(|l| l.starts_with(line_start)).and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[actix_rt::test]
async fn health_readiness_and_metrics_tell_the_truth_and_nothing_confidential() -> anyhow::Result<()> {
    let room = TestBoard::open(Settings::default()).await?;
    let api = room.server.api();
    assert_eq!(api.get("/healthz").await?.0, 200);
    assert_eq!(api.get("/readyz").await?.0, 200);

    let (facilitator_join, mut facilitator) = room.facilitator("Philippa Facilitator").await?;
    let (_, mut participant) = room.participant("Quentin Participant").await?;
    facilitator.ok(Command::AddTopic { text: Private::new("A very confidential topic") }).await?;
    participant.refused(Command::ChangePhase { to: Phase::Voting }).await?;

    let (status, metrics) = api.get("/metrics").await?;
    assert_eq!(status, 200);
    assert!(value(&metrics, "minim_events_total ").is_some_and(|n| n >= 4.0), "{metrics}");
    assert!(value(&metrics, "minim_appends_total ").is_some_and(|n| n >= 1.0), "{metrics}");
    assert_eq!(value(&metrics, "minim_connections "), Some(2.0), "{metrics}");
    assert_eq!(value(&metrics, "minim_boards_created_total "), Some(1.0));
    assert_eq!(value(&metrics, "minim_commands_accepted_total "), Some(1.0));
    assert_eq!(value(&metrics, "minim_commands_rejected_total{code=\"forbidden\"} "), Some(1.0), "{metrics}");
    assert_eq!(value(&metrics, "minim_live_boards "), Some(1.0));
    // Where the two commands spent their time: each waited for its board and was answered; the
    // accepted one was stored; answers and events waited for a writer (each connection's first
    // message is among the sampled ones).
    let stage = |name: &str| value(&metrics, &format!("minim_stage_seconds_count{{stage=\"{name}\"}} "));
    assert_eq!(stage("queued"), Some(2.0), "{metrics}");
    assert_eq!(stage("answered"), Some(2.0), "{metrics}");
    assert!(stage("stored").is_some_and(|n| n >= 1.0), "{metrics}");
    assert!(stage("written").is_some_and(|n| n >= 2.0), "{metrics}");
    let within_a_second = value(&metrics, "minim_stage_seconds_bucket{stage=\"answered\",le=\"1\"} ");
    assert_eq!(within_a_second, Some(2.0), "{metrics}");
    for secret in ["confidential", "Philippa", "Quentin", &room.created.board.0, &facilitator_join.token.0] {
        assert!(!metrics.contains(secret), "metrics mention {secret:?}");
    }

    // The store goes away under the running node: not ready, while still alive.
    let boards = room.dir.path().join("boards");
    std::fs::remove_dir_all(&boards)?;
    let (status, body) = api.get("/readyz").await?;
    assert_eq!(status, 503, "{body}");
    assert_eq!(api.get("/healthz").await?.0, 200);
    std::fs::create_dir_all(&boards)?;
    assert_eq!(api.get("/readyz").await?.0, 200, "ready again once the store is back");
    Ok(())
}
