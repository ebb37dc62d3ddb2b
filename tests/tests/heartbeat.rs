//! Heartbeats: a client that answers the server's pings stays connected however quiet it is; one
//! that stops answering is disconnected with the idle close code, and the others see it leave.

use minim_shared::wire::{ServerMessage, close};
use minim_shared::{Command, PersonId, Private, Settings};
use minim_tests::TestBoard;
use std::time::{Duration, Instant};

#[actix_rt::test]
async fn a_silent_client_is_disconnected_and_a_quiet_live_one_is_not() -> anyhow::Result<()> {
    let room = TestBoard::open_with(&["--client-timeout-secs", "3"], "Heartbeat", Settings::default()).await?;
    let (_, mut live) = room.facilitator("F").await?;
    let connected_at = Instant::now();
    let (_, mut silent) = room.participant("P").await?;
    live.wait_for(|m| matches!(m, ServerMessage::Presence { connected } if connected.len() == 2)).await?;

    // The silent client stops reading, so it never answers a ping. The live one only reads
    // (answering pings as any WebSocket client does) and says nothing itself.
    live.wait_for(|m| matches!(m, ServerMessage::Presence { connected } if connected == &[PersonId(1)])).await?;
    let waited = connected_at.elapsed();
    assert!(waited >= Duration::from_secs(3), "not dropped before its timeout: {waited:?}");

    let (code, reason) = silent.closed().await?;
    assert_eq!(code, close::IDLE, "closed as idle ({reason})");

    // Well past the timeout, the live client is still connected and can act.
    tokio::time::sleep(Duration::from_secs(2)).await;
    live.ok(Command::AddTopic { text: Private::new("still here") }).await?;
    Ok(())
}
