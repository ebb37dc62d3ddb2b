//! Clients that drop away and come back: they receive exactly what they missed (or a snapshot
//! when that is smaller), never a gap or a duplicate, and end with the same board as everyone.

use minim_shared::wire::ServerMessage;
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
