//! The deployment of docker-compose.yml, with real processes: a persistent `redis-server`, two
//! `minim` nodes sharing it, and `nginx` running the repository's `deploy/nginx.conf` in front.
//! Everything goes through the proxy: a meeting whose sockets are spread over both nodes, then one
//! node killed mid-meeting, which costs its clients a reconnect and nothing else.

use anyhow::Context;
use minim_shared::api::Links;
use minim_shared::wire::{ClientMessage, ServerMessage};
use minim_shared::{Board, Command, Phase, Private, Settings, TopicId, Viewer};
use minim_tests::cluster::{Cluster, RedisServer};
use minim_tests::nginx::Nginx;
use minim_tests::{Client, Server};

const NAMES: [&str; 5] =
    ["Fenna Facilitator", "Piotr Participant", "Qiana Participant", "Rasmus Participant", "Saoirse Participant"];

fn topic(i: usize) -> String {
    format!("Confidential topic number {i}")
}

/// The open WebSockets of one node, from its own `/metrics`.
async fn connections(node: &Server) -> anyhow::Result<u32> {
    let connections = node.api().metric("minim_connections").await?.context("no minim_connections")?;
    Ok(connections as u32)
}

/// Whether the client's socket still works: a ping through it gets its pong.
async fn answers(client: &mut Client) -> bool {
    let ping = serde_json::to_string(&ClientMessage::Ping { id: 1 }).expect("json");
    client.send_raw(ping).await.is_ok() && client.wait_for(|m| matches!(m, ServerMessage::Pong { .. })).await.is_ok()
}

/// Brings every client to the newest sequence number any of them has seen, checks that they all
/// folded the same board (apart from each person's own private part) and returns it.
async fn same_board_everywhere(clients: &mut [Client]) -> anyhow::Result<Board> {
    let head = clients.iter().map(|c| c.board.seq).max().expect("clients");
    for client in clients.iter_mut() {
        client.sync_to(head).await?;
    }
    let board = clients[0].board.view_for(Viewer::Public);
    for client in clients.iter() {
        assert_eq!(client.board.view_for(Viewer::Public), board, "every client folded the same board");
    }
    Ok(board)
}

#[actix_rt::test]
async fn two_nodes_behind_nginx_run_a_meeting_and_survive_losing_one() -> anyhow::Result<()> {
    let redis = RedisServer::start_persistent().await?;
    let mut cluster = Cluster::start(&redis, 2)?;
    let proxy = Nginx::start(&[cluster.node(0).addr(), cluster.node(1).addr()]).await?;
    let api = proxy.api();
    assert_eq!(api.get("/readyz").await?.0, 200, "ready, through the proxy");
    assert_eq!(api.get("/metrics").await?.0, 404, "metrics are scraped on each node, not through the proxy");

    let created = api.create_board("Deploy Mini-M", Settings::default()).await?;
    let board = &created.board;
    let ws = proxy.ws_url(board);
    // Everyone joins, then everyone connects: consecutive sockets go round robin to either node.
    let mut joined = vec![];
    for (i, name) in NAMES.iter().enumerate() {
        let link = if i == 0 { &created.links.facilitator } else { &created.links.participant };
        joined.push(api.join(board, link, name).await?);
    }
    let mut clients = vec![];
    for j in &joined {
        clients.push(Client::connect(&ws, &j.token, None).await?);
    }

    // The sockets are spread over both nodes.
    let on_each = [connections(cluster.node(0)).await?, connections(cluster.node(1)).await?];
    assert_eq!(on_each[0] + on_each[1], NAMES.len() as u32, "every socket is open on a node: {on_each:?}");
    assert!(on_each[0] > 0 && on_each[1] > 0, "round robin used both nodes: {on_each:?}");

    // Everyone adds a topic and places two of their three votes on topic 3.
    for (i, client) in clients.iter_mut().enumerate() {
        client.ok(Command::AddTopic { text: Private::new(topic(i + 1)) }).await?;
    }
    clients[0].ok(Command::ChangePhase { to: Phase::Voting }).await?;
    for client in &mut clients {
        client.ok(Command::PlaceVote { topic: TopicId(3) }).await?;
        client.ok(Command::PlaceVote { topic: TopicId(3) }).await?;
    }
    let before = same_board_everywhere(&mut clients).await?;
    assert_eq!(before.topics.len(), NAMES.len());
    assert_eq!(before.phase, Phase::Voting);

    // Node 0 dies. Exactly its clients lose their socket; they reconnect through the proxy (which
    // now reaches node 1) from where they were, and get nothing new because nothing was lost.
    cluster.nodes[0].kill();
    let mut reconnected = 0;
    for (client, j) in clients.iter_mut().zip(&joined) {
        if answers(client).await {
            continue;
        }
        let board_before = client.board.clone();
        *client = Client::connect(&ws, &j.token, Some(&board_before)).await?;
        assert_eq!(client.board, board_before, "the reconnected client has exactly what it had");
        reconnected += 1;
    }
    assert_eq!(reconnected, on_each[0], "the clients of the killed node, and only they, reconnected");
    assert_eq!(connections(cluster.node(1)).await?, NAMES.len() as u32, "all sockets are on node 1 now");
    for _ in 0..4 {
        assert_eq!(api.get("/readyz").await?.0, 200, "the proxy skips the dead node");
    }

    // The meeting goes on, through the proxy: a newcomer joins, everyone places a last vote, and
    // the facilitator closes the voting. Every screen shows every command.
    let late = api.join(board, &created.links.participant, "Late Participant").await?;
    clients.push(Client::connect(&ws, &late.token, None).await?);
    for (i, client) in clients.iter_mut().take(NAMES.len()).enumerate() {
        client.ok(Command::PlaceVote { topic: TopicId(i as u32 + 1) }).await?;
    }
    clients[0].ok(Command::ChangePhase { to: Phase::Discussing }).await?;
    let after = same_board_everywhere(&mut clients).await?;
    assert_eq!(after.people.len(), NAMES.len() + 1);
    assert_eq!(after.topics[&TopicId(3)].votes, 11, "two votes each and one of its own, all counted");
    assert_eq!(after.topics.values().map(|t| t.votes).sum::<u32>(), 15, "three votes each, none lost or doubled");
    assert_eq!(after.current_topic(), Some(TopicId(3)), "the most voted topic is discussed first");

    // The proxy's logs have the requests and sockets, and nothing confidential.
    let log = proxy.access_log() + &proxy.errors();
    assert!(log.contains(&format!("POST /api/boards/{board}/join")), "the log has the joins:\n{log}");
    assert!(log.contains(&format!("GET /api/boards/{board}/ws")), "and the sockets that closed:\n{log}");
    let links = &created.links;
    let keys = [&links.facilitator, &links.participant, &links.projector].map(|l| Links::key(l).expect("a key").0);
    let tokens = joined.iter().chain([&late]).map(|j| j.token.0.clone());
    let texts = (1..=NAMES.len()).map(topic).chain(NAMES.iter().map(|n| n.to_string()));
    for secret in keys.into_iter().chain(tokens).chain(texts).chain(["Deploy Mini-M".into(), "Late".into()]) {
        assert!(!log.contains(&secret), "the proxy's log mentions {secret:?}");
    }
    Ok(())
}
