//! The process dies mid-meeting (SIGKILL) and comes back on the same data directory: every
//! accepted event is still there, clients resume from where they were, and a running timebox
//! still ends on time.

use minim_shared::wire::ServerMessage;
use minim_shared::{Command, Event, Phase, Private, Settings, Timer, TopicId, Viewer};
use minim_tests::{Client, Server};

#[actix_rt::test]
async fn a_killed_server_restarts_with_the_board_intact_and_clients_resume() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path())?;
    let api = server.api();
    let settings = Settings { timebox_ms: 3_000, ..Settings::default() };
    let created = api.create_board("Crash", settings).await?;
    let f = api.join(&created.board, &created.links.facilitator, "Facilitator").await?;
    let p = api.join(&created.board, &created.links.participant, "Participant").await?;
    let ws = server.ws_url(&created.board);
    let mut facilitator = Client::connect(&ws, &f.token, None).await?;
    let mut participant = Client::connect(&ws, &p.token, None).await?;

    participant.ok(Command::AddTopic { text: Private::new("first") }).await?;
    facilitator.ok(Command::AddTopic { text: Private::new("second") }).await?;
    facilitator.ok(Command::ChangePhase { to: Phase::Voting }).await?;
    participant.ok(Command::PlaceVote { topic: TopicId(2) }).await?;
    facilitator.ok(Command::ChangePhase { to: Phase::Discussing }).await?;
    let head = facilitator.ok(Command::StartTimer).await?;
    participant.sync_to(head).await?;
    let before = (facilitator.board.clone(), participant.board.clone());

    server.kill();

    let server = Server::start(dir.path())?;
    let ws = server.ws_url(&created.board);
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
    let newcomer = api_join_and_connect(&server, &created).await?;
    assert_eq!(newcomer.board.view_for(Viewer::Public).topics, facilitator.board.view_for(Viewer::Public).topics);
    Ok(())
}

async fn api_join_and_connect(server: &Server, created: &minim_tests::Created) -> anyhow::Result<Client> {
    let joined = server.api().join(&created.board, &created.links.participant, "Late").await?;
    Client::connect(&server.ws_url(&created.board), &joined.token, None).await
}

#[actix_rt::test]
async fn sigterm_tells_clients_to_reconnect_and_exits_cleanly() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path())?;
    let api = server.api();
    let created = api.create_board("Shutdown", Settings::default()).await?;
    let f = api.join(&created.board, &created.links.facilitator, "Facilitator").await?;
    let mut client = Client::connect(&server.ws_url(&created.board), &f.token, None).await?;
    let status = std::thread::spawn(move || server.terminate());
    let (code, _) = client.closed().await?;
    assert!(client.received.iter().any(|m| matches!(m, ServerMessage::Reconnect { .. })), "told to reconnect");
    assert_eq!(code, 1012, "closed with 'service restart'");
    assert!(status.join().expect("terminate thread")?.success());
    Ok(())
}
