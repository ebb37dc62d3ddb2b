//! The process dies mid-meeting (SIGKILL) and comes back on the same data directory: every
//! accepted event is still there, clients resume from where they were, and a running timebox
//! still ends on time.

use minim_shared::wire::ServerMessage;
use minim_shared::{Command, Event, Phase, Private, Settings, Timer, TopicId, Viewer};
use minim_tests::{Client, TestBoard};

#[actix_rt::test]
async fn a_killed_server_restarts_with_the_board_intact_and_clients_resume() -> anyhow::Result<()> {
    let mut room = TestBoard::open(Settings { timebox_ms: 3_000, ..Settings::default() }).await?;
    let (f, mut facilitator) = room.facilitator("Facilitator").await?;
    let (p, mut participant) = room.participant("Participant").await?;

    participant.ok(Command::AddTopic { text: Private::new("first") }).await?;
    facilitator.ok(Command::AddTopic { text: Private::new("second") }).await?;
    facilitator.ok(Command::ChangePhase { to: Phase::Voting }).await?;
    participant.ok(Command::PlaceVote { topic: TopicId(2) }).await?;
    facilitator.ok(Command::ChangePhase { to: Phase::Discussing }).await?;
    let head = facilitator.ok(Command::StartTimer).await?;
    participant.sync_to(head).await?;
    let before = (facilitator.board.clone(), participant.board.clone());

    room.kill_and_restart()?;

    let ws = room.ws();
    let mut facilitator = Client::connect(&ws, &f.token, Some(&before.0)).await?;
    let mut participant = Client::connect(&ws, &p.token, Some(&before.1)).await?;
    assert_eq!(facilitator.board, before.0, "nothing accepted was lost");
    assert_eq!(participant.board, before.1);
    assert!(matches!(facilitator.board.timer, Timer::Running { .. }));

    // The timebox set before the crash still ends, once, on the restarted server.
    participant
        .wait_for(|m| matches!(m, ServerMessage::Event(e) if matches!(e.event, Event::TimeboxEnded { .. })))
        .await?;
    facilitator.sync_to(participant.board.seq).await?;
    assert_eq!(facilitator.board.timer, Timer::Expired);
    facilitator.ok(Command::MoveOn).await?;
    participant.sync_to(facilitator.board.seq).await?;
    assert_eq!(participant.board.view_for(Viewer::Public), facilitator.board.view_for(Viewer::Public));

    // A client that never saw the crash joins fresh and sees the same board.
    let (_, newcomer) = room.participant("Late").await?;
    assert_eq!(newcomer.board.view_for(Viewer::Public).topics, facilitator.board.view_for(Viewer::Public).topics);
    Ok(())
}

#[actix_rt::test]
async fn sigterm_tells_clients_to_reconnect_and_exits_cleanly() -> anyhow::Result<()> {
    let room = TestBoard::open(Settings::default()).await?;
    let (_, mut client) = room.facilitator("Facilitator").await?;
    let status = std::thread::spawn(move || room.server.terminate());
    let (code, _) = client.closed().await?;
    assert!(client.received.iter().any(|m| matches!(m, ServerMessage::Reconnect { .. })), "told to reconnect");
    assert_eq!(code, 1012, "closed with 'service restart'");
    assert!(status.join().expect("terminate thread")?.success());
    Ok(())
}
