//! Nothing confidential outlives its retention: the facilitator deletes a board at once, or it is
//! deleted when its retention ends, from the data directory or from Redis; every connection is
//! told and closed, and every link answers that the board was deleted.

use minim_shared::wire::{ErrorCode, ServerMessage, close};
use minim_shared::{Command, Phase, Private, RejectCode, Settings};
use minim_tests::cluster::{Cluster, RedisServer};
use minim_tests::{Client, PATIENCE, TestBoard};
use std::time::{Duration, Instant};

const SECRET_TOPIC: &str = "My manager takes credit for my team's work";

#[actix_rt::test]
async fn the_facilitator_deletes_the_board_and_nothing_of_it_remains() -> anyhow::Result<()> {
    let room = TestBoard::open(Settings::default()).await?;
    let (_, mut facilitator) = room.facilitator("Facilitator").await?;
    let (p, mut participant) = room.participant("Quentin Quill").await?;
    participant.ok(Command::AddTopic { text: Private::new(SECRET_TOPIC) }).await?;
    let projector = room.server.api().join(&room.created.board, &room.created.links.projector, "").await?;
    let mut screen = Client::connect(&room.ws(), &projector.token, None).await?;

    // Only the facilitator may.
    let refusal = participant.refused(Command::DeleteBoard).await?;
    assert_eq!(refusal.code, ErrorCode::Rule(RejectCode::Forbidden));
    facilitator.ok(Command::DeleteBoard).await?;

    // Every connection is told why and closed.
    for client in [&mut facilitator, &mut participant, &mut screen] {
        let (code, reason) = client.closed().await?;
        assert_eq!(code, close::BOARD_DELETED, "{reason}");
        assert!(told_deleted(client), "{:?}", client.received.last());
    }
    // Every link and every session answers "deleted".
    for link in [&room.created.links.facilitator, &room.created.links.participant, &room.created.links.projector] {
        let refused = room.server.api().try_join(&room.created.board, link, "Again").await?.expect_err("deleted");
        assert_eq!((refused.status, refused.code), (410, ErrorCode::BoardDeleted));
    }
    let err = Client::connect(&room.ws(), &p.token, None).await.err().expect("deleted").to_string();
    assert!(err.contains("BoardDeleted"), "{err}");

    // On disk: nothing but an empty tombstone. In the logs: none of what was said.
    assert_eq!(files_under(&room.dir.path().join("boards")), vec![format!("{}.deleted", room.created.board)]);
    let logs = room.server.logs().join("\n");
    assert!(!logs.contains(SECRET_TOPIC) && !logs.contains("Quentin"), "{logs}");
    Ok(())
}

#[actix_rt::test]
async fn a_board_is_deleted_when_its_retention_ends_after_it_closed() -> anyhow::Result<()> {
    let room = TestBoard::open_with(&["--retention", "2s"], "Short-lived", Settings::default()).await?;
    let (_, mut facilitator) = room.facilitator("Facilitator").await?;
    facilitator.ok(Command::AddTopic { text: Private::new(SECRET_TOPIC) }).await?;
    for to in [Phase::Voting, Phase::Discussing, Phase::WrapUp, Phase::Closed] {
        facilitator.ok(Command::ChangePhase { to }).await?;
    }
    let closed_at = Instant::now();
    facilitator.close().await;
    let board_dir = room.dir.path().join("boards").join(&room.created.board.0);
    assert!(board_dir.exists(), "kept while its retention runs");

    // Within the retention and a sweep (a quarter of it), the board is gone from the disk.
    let deadline = closed_at + PATIENCE;
    while board_dir.exists() {
        assert!(Instant::now() < deadline, "the board outlived its retention by {PATIENCE:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(closed_at.elapsed() >= Duration::from_secs(2), "not before its retention ended");
    let refused = room
        .server
        .api()
        .try_join(&room.created.board, &room.created.links.participant, "Late")
        .await?
        .expect_err("gone");
    assert_eq!((refused.status, refused.code), (410, ErrorCode::BoardDeleted));
    Ok(())
}

#[actix_rt::test]
async fn a_board_deleted_through_one_node_is_gone_from_redis_and_from_every_node() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let cluster = Cluster::start(&redis, 2)?;
    let created = cluster.create_board(0, Settings::default()).await?;
    let (_, mut facilitator) = cluster.enter(0, &created.board, &created.links.facilitator, "Facilitator").await?;
    let (p, mut participant) = cluster.enter(1, &created.board, &created.links.participant, "Participant").await?;
    let seq = participant.ok(Command::AddTopic { text: Private::new(SECRET_TOPIC) }).await?;
    facilitator.sync_to(seq).await?;

    facilitator.ok(Command::DeleteBoard).await?;
    // The other node's client is told as well: its node heard of the deletion and let go.
    let (code, reason) = participant.closed().await?;
    assert_eq!(code, close::BOARD_DELETED, "{reason}");
    assert!(told_deleted(&participant));

    // Redis holds only the content-free tombstone, and no node stores the board again.
    let mut conn = redis.connection().await?;
    let keys: Vec<String> = redis::cmd("KEYS").arg("minim:*").query_async(&mut conn).await?;
    assert_eq!(keys, vec![format!("minim:{{{}}}:deleted", created.board)]);
    for node in 0..2 {
        let refused = cluster.api(node).try_join(&created.board, &created.links.participant, "x").await?;
        assert_eq!(refused.expect_err("deleted").code, ErrorCode::BoardDeleted);
        let err = Client::connect(&cluster.node(node).ws_url(&created.board), &p.token, None).await;
        assert!(err.err().expect("deleted").to_string().contains("BoardDeleted"));
    }
    Ok(())
}

fn told_deleted(client: &Client) -> bool {
    client.received.iter().any(|m| {
        matches!(m, ServerMessage::Error { code: ErrorCode::BoardDeleted, message } if message == "This board was deleted.")
    })
}

fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("the boards directory")
        .map(|e| e.expect("an entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
