//! Clients that drop away and come back: they receive exactly what they missed (or a snapshot
//! when that is smaller), never a gap or a duplicate, and end with the same board as everyone.

use anyhow::Context;
use minim_shared::settings::{MAX_TOPIC_CHARS, MAX_TOPICS, MAX_TOPICS_PER_PERSON};
use minim_shared::wire::{ClientMessage, ServerMessage};
use minim_shared::{Command, Phase, Private, Settings, TopicId, Viewer};
use minim_tests::{Client, TestBoard};

#[actix_rt::test]
async fn a_client_that_reconnects_gets_exactly_the_events_it_missed() -> anyhow::Result<()> {
    let room = TestBoard::open(Settings::default()).await?;
    let (_, mut facilitator) = room.facilitator("Facilitator").await?;
    let (p, mut participant) = room.participant("Participant").await?;
    participant.ok(Command::AddTopic { text: Private::new("mine") }).await?;

    // The participant goes away; the others keep working.
    let left_at = participant.board.clone();
    participant.close().await;
    for i in 0..5 {
        facilitator.ok(Command::AddTopic { text: Private::new(format!("topic {i}")) }).await?;
    }
    facilitator.ok(Command::ChangePhase { to: Phase::Voting }).await?;
    let head = facilitator.ok(Command::PlaceVote { topic: TopicId(2) }).await?;

    // Back, with the last sequence number it saw: exactly the missed events, in order.
    let mut back = Client::connect(&room.ws(), &p.token, Some(&left_at)).await?;
    let seqs: Vec<u64> = back
        .received
        .iter()
        .filter_map(|m| match m {
            ServerMessage::Event(e) => Some(e.seq.0),
            _ => None,
        })
        .collect();
    assert_eq!(seqs, ((left_at.seq.0 + 1)..=head.0).collect::<Vec<_>>());
    assert!(
        !back.received.iter().any(|m| matches!(m, ServerMessage::Snapshot { .. })),
        "a short gap is filled with events"
    );
    assert_eq!(back.board.view_for(Viewer::Public), facilitator.board.view_for(Viewer::Public));
    assert_eq!(back.board.topics[&TopicId(1)].author, left_at.topics[&TopicId(1)].author, "still knows its own topic");

    // It carries on as before.
    back.ok(Command::PlaceVote { topic: TopicId(1) }).await?;
    facilitator.sync_to(back.board.seq).await?;
    Ok(())
}

#[actix_rt::test]
async fn a_client_far_behind_gets_a_snapshot_and_a_new_client_gets_one_too() -> anyhow::Result<()> {
    let room = TestBoard::open(Settings::default()).await?;
    let (f, mut facilitator) = room.facilitator("Facilitator").await?;
    let early = facilitator.board.clone();
    let ws = room.ws();

    // Many people join: far more events than a catch-up replays one by one.
    for i in 0..300 {
        room.server.api().join(&room.created.board, &room.created.links.participant, &format!("Person {i}")).await?;
    }
    facilitator.sync_to(minim_shared::Seq(early.seq.0 + 300)).await?;

    let behind = Client::connect(&ws, &f.token, Some(&early)).await?;
    assert!(matches!(behind.received[1], ServerMessage::Snapshot { .. }), "far behind: a snapshot");
    assert_eq!(behind.board, facilitator.board);

    let fresh = Client::connect(&ws, &f.token, None).await?;
    assert!(matches!(fresh.received[1], ServerMessage::Snapshot { .. }));
    assert_eq!(fresh.board, facilitator.board);
    Ok(())
}

#[actix_rt::test]
async fn a_client_from_the_future_is_resynced_with_a_snapshot() -> anyhow::Result<()> {
    let room = TestBoard::open(Settings::default()).await?;
    let (f, client) = room.facilitator("Facilitator").await?;
    let mut confused = client.board;
    confused.seq = minim_shared::Seq(confused.seq.0 + 1_000);
    let client = Client::connect(&room.ws(), &f.token, Some(&confused)).await?;
    assert!(matches!(client.received[1], ServerMessage::Snapshot { .. }));
    assert_eq!(client.board.seq.0, 2);
    Ok(())
}

/// A connection for a reader that stalls: tiny TCP segments and receive buffer keep what the
/// server's socket holds for it small (about 135 kB here, against megabytes on loopback
/// otherwise), so that the board's queue for it fills soon after.
async fn stalling_connection(addr: std::net::SocketAddr) -> anyhow::Result<tokio::net::TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.set_tcp_mss(536)?;
    socket.set_recv_buffer_size(4096)?;
    socket.connect(&addr.into())?;
    socket.set_nonblocking(true)?;
    Ok(tokio::net::TcpStream::from_std(socket.into())?)
}

/// Every topic the board takes, each as long as it may be, from as many `people` as that needs:
/// enough to fill a client's socket buffers while it reads nothing.
async fn fill_with_long_topics(people: &mut [Client]) -> anyhow::Result<()> {
    let long_topic = "\u{1f642}".repeat(MAX_TOPIC_CHARS);
    let writers = people.iter_mut().take(MAX_TOPICS / MAX_TOPICS_PER_PERSON);
    futures_util::future::try_join_all(writers.map(|writer| async {
        for _ in 0..MAX_TOPICS_PER_PERSON {
            writer.ok(Command::AddTopic { text: Private::new(long_topic.clone()) }).await?;
        }
        anyhow::Ok(())
    }))
    .await?;
    Ok(())
}

/// The server's count of clients that fell behind and were resynced.
async fn resynced(room: &TestBoard) -> anyhow::Result<f64> {
    room.server.api().metric("minim_clients_resynced_total").await?.context("no minim_clients_resynced_total")
}

#[actix_rt::test]
async fn a_client_that_stops_reading_is_dropped_by_the_board_and_still_gets_everything_in_order() -> anyhow::Result<()>
{
    let room = TestBoard::open(Settings::default()).await?;
    let (_, mut facilitator) = room.facilitator("Facilitator").await?;
    let (joined, _) = room.participant("Slow reader").await?;
    let tcp = stalling_connection(room.server.addr()).await?;
    let mut slow = Client::connect_over(tcp, &room.ws(), &joined.token, None).await?;
    let before = resynced(&room).await?;
    let mut people = Vec::new();
    for i in 0..96 {
        people.push(room.participant(&format!("Voter {i}")).await?.1);
    }

    // While the slow one reads nothing: long topics, to fill the sockets' buffers, then far more
    // votes than the board queues for one client (1,024). Each person stays within its message
    // allowance (a burst of 40).
    fill_with_long_topics(&mut people).await?;
    facilitator.ok(Command::ChangePhase { to: Phase::Voting }).await?;
    futures_util::future::try_join_all(people.iter_mut().map(|voter| async {
        for _ in 0..14 {
            voter.ok(Command::PlaceVote { topic: TopicId(1) }).await?;
            voter.ok(Command::RemoveVote { topic: TopicId(1) }).await?;
        }
        anyhow::Ok(())
    }))
    .await?;
    let head = people.iter().map(|p| p.board.seq).max().expect("people");
    assert!(resynced(&room).await? > before, "the board dropped the slow reader's queue");

    // It reads again: events in order without a gap or a duplicate (`next` checks), or a snapshot,
    // and it ends on the board everyone else has.
    slow.sync_to(head).await?;
    facilitator.sync_to(head).await?;
    assert_eq!(slow.board.view_for(Viewer::Public), facilitator.board.view_for(Viewer::Public));
    // The same connection all along, still usable.
    slow.ok(Command::PlaceVote { topic: TopicId(1) }).await?;
    Ok(())
}

#[actix_rt::test]
async fn a_client_that_keeps_sending_but_reads_nothing_is_let_go_and_resumes_with_nothing_lost() -> anyhow::Result<()> {
    let room = TestBoard::open(Settings::default()).await?;
    let (_, mut facilitator) = room.facilitator("Facilitator").await?;
    let (joined, _) = room.participant("Deaf sender").await?;
    let tcp = stalling_connection(room.server.addr()).await?;
    let mut deaf = Client::connect_over(tcp, &room.ws(), &joined.token, None).await?;
    let mut people = Vec::new();
    for i in 0..MAX_TOPICS / MAX_TOPICS_PER_PERSON {
        people.push(room.participant(&format!("Writer {i}")).await?.1);
    }
    fill_with_long_topics(&mut people).await?;
    let head = people.iter().map(|p| p.board.seq).max().expect("people");

    // Its sockets are full. It keeps sending commands, within its allowance (a burst of 40, then
    // 10 a second), and reads none of the answers: each is a refusal (no voting while topics are
    // collected), so only answers pile up, until the server lets it go.
    let connections = || async { room.server.api().metric("minim_connections").await?.context("no minim_connections") };
    let connected = connections().await?;
    let mut sent = 0;
    while connections().await? == connected {
        anyhow::ensure!(sent < 256, "still connected after {sent} commands whose answers it never read");
        if sent >= 30 {
            tokio::time::sleep(std::time::Duration::from_millis(120)).await;
        }
        let command = ClientMessage::Command { id: 1_000 + sent, command: Command::RemoveVote { topic: TopicId(1) } };
        deaf.send_raw(serde_json::to_string(&command)?).await?;
        sent += 1;
    }
    assert!(sent > 100, "let go after {sent} commands: sooner than 128 unread answers");

    // It reads again: everything written before, in order, then the end, with no error or close
    // frame (it was not refused for sending too fast).
    while deaf.next_or_end().await?.is_some() {}
    let answered =
        deaf.received.iter().filter(|m| matches!(m, ServerMessage::Rejected { id, .. } if *id >= 1_000)).count();
    assert!(answered < sent as usize, "{answered} answers to {sent} commands: the last were never taken in");
    assert!(!deaf.received.iter().any(|m| matches!(m, ServerMessage::Error { .. })), "{:?}", deaf.received.last());

    // Back from where it got to, with nothing lost.
    let mut back = Client::connect(&room.ws(), &joined.token, Some(&deaf.board)).await?;
    back.sync_to(head).await?;
    facilitator.sync_to(head).await?;
    assert_eq!(back.board.view_for(Viewer::Public), facilitator.board.view_for(Viewer::Public));
    back.refused(Command::RemoveVote { topic: TopicId(1) }).await?;
    Ok(())
}
