//! Redis misbehaving under a running cluster of real `minim` nodes: it goes down and comes back
//! with its data, it comes back empty, it loses a pub/sub message, it drops the nodes'
//! subscriptions, it holds every publish. In every case the WebSocket connections stay open, nothing
//! accepted is lost, and every client (on every node) ends with the same board, with no gap and no
//! duplicate on the way (the harness's client fails on either).

use anyhow::{Context, bail, ensure};
use minim_shared::wire::{ErrorCode, ServerMessage};
use minim_shared::{
    Board, BoardId, Command, Event, PersonId, Phase, Private, Role, Seq, Sequenced, Settings, TopicId, Viewer,
};
use minim_tests::cluster::{Cluster, RedisServer, wait_for_status};
use minim_tests::{Client, Joined, PATIENCE, Server};
use std::time::{Duration, Instant};

/// Every live board with connected clients is checked against Redis at least this often.
const PERIODIC_CHECK: Duration = Duration::from_secs(5);
/// Scheduling slack on a busy test machine, on top of a promised delay.
const SLACK: Duration = Duration::from_millis(1_500);
/// How long a node waits for Redis to answer a command before it counts as failed (the
/// server's `RESPONSE_TIMEOUT`).
const REDIS_ANSWER_TIMEOUT: Duration = Duration::from_secs(2);
/// "Right away": well under the periodic check, so only gap detection (or reading the log on
/// subscribing again) can explain it.
const RIGHT_AWAY: Duration = Duration::from_secs(2);

#[actix_rt::test]
async fn while_redis_is_down_commands_are_refused_and_when_it_is_back_nothing_was_lost() -> anyhow::Result<()> {
    let mut redis = RedisServer::start_persistent().await?;
    let cluster = Cluster::start(&redis, 2)?;
    let created = cluster.create_board(0, Settings::default()).await?;
    let board = &created.board;
    let (f, mut facilitator) = cluster.enter(0, board, &created.links.facilitator, "Facilitator").await?;
    let (p, mut participant) = cluster.enter(1, board, &created.links.participant, "Participant").await?;
    facilitator.ok(Command::AddTopic { text: text("Written before the outage") }).await?;
    let head = participant.ok(Command::AddTopic { text: text("Also before the outage") }).await?;
    facilitator.sync_to(head).await?;
    cluster.wait_ready(200).await?;
    let before = (facilitator.board.clone(), participant.board.clone());
    let epoch = get(&redis, &key(board, "epoch")).await?.context("a stored board has an epoch")?;

    // Redis goes away. The nodes stay alive, say they are not ready, and keep every connection.
    redis.kill();
    cluster.wait_ready(503).await?;
    for node in &cluster.nodes {
        assert_eq!(node.api().get("/healthz").await?.0, 200, "{} is alive while Redis is down", node.url);
    }
    let refusals = [
        facilitator.refused(Command::AddTopic { text: text("Written during the outage") }).await?,
        participant.refused(Command::AddTopic { text: text("Also during the outage") }).await?,
        facilitator.refused(Command::ChangePhase { to: Phase::Voting }).await?,
    ];
    for refusal in &refusals {
        assert_eq!(refusal.code, ErrorCode::Unavailable, "{refusal:?}");
        assert!(refusal.message.to_lowercase().contains("nothing was changed"), "a clear message: {}", refusal.message);
    }
    match cluster.api(1).try_join(board, &created.links.participant, "Latecomer").await? {
        Ok(_) => bail!("a join was accepted while Redis was down"),
        Err(e) => assert_eq!((e.status, e.code), (503, ErrorCode::Unavailable), "{e:?}"),
    }
    assert_eq!(facilitator.board, before.0, "nothing changed on any screen");
    assert_eq!(participant.board, before.1);

    // Redis comes back with its data; the nodes notice by themselves (none is restarted).
    redis.start_again().await?;
    cluster.wait_ready(200).await?;
    assert_eq!(get(&redis, &key(board, "epoch")).await?, Some(epoch), "the same incarnation of the board");
    let stored = stored_log(&redis, board).await?;
    assert_eq!(
        Board::replay(&stored).view_for(Viewer::Person(person(&f))),
        before.0,
        "everything accepted before the outage is still in Redis, and nothing else"
    );

    // The very commands refused during the outage now succeed, on the same connections.
    facilitator.ok(Command::AddTopic { text: text("Written during the outage") }).await?;
    participant.ok(Command::AddTopic { text: text("Also during the outage") }).await?;
    facilitator.ok(Command::ChangePhase { to: Phase::Voting }).await?;
    let head = participant.ok(Command::PlaceVote { topic: TopicId(1) }).await?;
    facilitator.sync_to(head).await?;
    participant.sync_to(facilitator.board.seq).await?;
    assert_eq!(facilitator.board.topics.len(), 4);
    for (id, topic) in &before.0.topics {
        assert_eq!(facilitator.board.topics[id].text, topic.text, "topic {id} from before the outage is intact");
    }
    assert_eq!(facilitator.board.view_for(Viewer::Public), participant.board.view_for(Viewer::Public));
    let fresh = Client::connect(&cluster.node(1).ws_url(board), &f.token, None).await?;
    assert_eq!(fresh.board, facilitator.board, "a fresh client sees what the facilitator sees");
    let fresh = Client::connect(&cluster.node(0).ws_url(board), &p.token, None).await?;
    assert_eq!(fresh.board, participant.board);
    let stored = stored_log(&redis, board).await?;
    assert_eq!(Board::replay(&stored).view_for(Viewer::Person(person(&f))), facilitator.board);

    // The outage is on the record of every node; with the data kept, nothing had to be restored.
    for node in &cluster.nodes {
        let errors = node.api().metric("minim_redis_errors_total").await?;
        assert!(errors.is_some_and(|n| n > 0.0), "{} counted the outage: {errors:?}", node.url);
        assert_eq!(node.api().metric("minim_boards_restored_total").await?, Some(0.0), "{}", node.url);
    }
    Ok(())
}

#[actix_rt::test]
async fn a_redis_that_comes_back_empty_is_refilled_from_the_live_board_and_no_client_diverges() -> anyhow::Result<()> {
    let mut redis = RedisServer::start().await?;
    let cluster = Cluster::start(&redis, 2)?;
    let created = cluster.create_board(0, Settings::default()).await?;
    let board = &created.board;
    let (f, mut facilitator) = cluster.enter(0, board, &created.links.facilitator, "Facilitator").await?;
    let (a, mut ana) = cluster.enter(1, board, &created.links.participant, "Ana").await?;
    let (b, mut ben) = cluster.enter(0, board, &created.links.participant, "Ben").await?;

    // A meeting in progress: topics gathered, voting under way.
    facilitator.ok(Command::AddTopic { text: text("Roadmap") }).await?;
    ana.ok(Command::AddTopic { text: text("On-call load") }).await?;
    ben.ok(Command::AddTopic { text: text("Hiring") }).await?;
    facilitator.ok(Command::ChangePhase { to: Phase::Voting }).await?;
    ana.ok(Command::PlaceVote { topic: TopicId(2) }).await?;
    let head = ben.ok(Command::PlaceVote { topic: TopicId(2) }).await?;
    for client in [&mut facilitator, &mut ana, &mut ben] {
        client.sync_to(head).await?;
    }
    let old_epoch = get(&redis, &key(board, "epoch")).await?.context("a stored board has an epoch")?;
    let votes_before = (facilitator.board.votes_used(person(&f)), ana.board.votes_used(person(&a)));

    // Redis loses everything.
    redis.start_empty().await?;

    // The meeting goes on: a node that has not noticed yet may ask to try again, but not for long.
    ok_eventually(&mut facilitator, Command::PlaceVote { topic: TopicId(1) }).await?;
    ok_eventually(&mut ana, Command::PlaceVote { topic: TopicId(3) }).await?;
    let head = ok_eventually(&mut facilitator, Command::ChangePhase { to: Phase::Discussing }).await?;
    for client in [&mut facilitator, &mut ana, &mut ben] {
        client.sync_to(head).await?;
    }
    assert_eq!(
        (facilitator.board.votes_used(person(&f)), ana.board.votes_used(person(&a))),
        (votes_before.0 + 1, votes_before.1 + 1),
        "each vote counted once, refused attempts changed nothing"
    );
    assert_eq!(facilitator.board.current_topic(), Some(TopicId(2)), "the most voted topic is discussed first");

    // Every client, on either node, has the same board; fresh connections on the other node agree.
    let public = facilitator.board.view_for(Viewer::Public);
    assert_eq!(ana.board.view_for(Viewer::Public), public, "Ana (node B) is not left diverged");
    assert_eq!(ben.board.view_for(Viewer::Public), public, "Ben (node A) is not left diverged");
    for (joined, client, other_node) in [(&f, &facilitator, 1), (&a, &ana, 0), (&b, &ben, 1)] {
        let fresh = Client::connect(&cluster.node(other_node).ws_url(board), &joined.token, None).await?;
        assert_eq!(fresh.board, client.board, "a fresh connection sees what the live one folded");
    }

    // The board is stored in Redis again, as a new incarnation, and can be joined again.
    for part in ["meta", "events", "epoch"] {
        assert!(exists(&redis, &key(board, part)).await?, "the board's {part} key is back in Redis");
    }
    let new_epoch = get(&redis, &key(board, "epoch")).await?;
    assert!(new_epoch.is_some_and(|e| e != old_epoch), "stored again under a new epoch");
    let (_, late) = cluster.enter(1, board, &created.links.participant, "Latecomer").await?;
    facilitator.sync_to(late.board.seq).await?;
    assert_eq!(late.board.view_for(Viewer::Public), facilitator.board.view_for(Viewer::Public));
    let stored = stored_log(&redis, board).await?;
    assert_eq!(
        Board::replay(&stored).view_for(Viewer::Person(person(&f))),
        facilitator.board,
        "Redis holds the whole board, from its creation to the latest join"
    );

    let mut restored = 0.0;
    for node in &cluster.nodes {
        restored += node.api().metric("minim_boards_restored_total").await?.context("the restore counter exists")?;
    }
    assert!(restored >= 1.0, "some node counted storing the board again");
    Ok(())
}

#[actix_rt::test]
async fn an_event_nobody_announced_reaches_every_node_by_the_periodic_check_or_at_once_by_gap_detection()
-> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let cluster = Cluster::start(&redis, 2)?;
    let created = cluster.create_board(0, Settings::default()).await?;
    let board = &created.board;
    let (f, mut facilitator) = cluster.enter(0, board, &created.links.facilitator, "Facilitator").await?;
    let (p, mut participant) = cluster.enter(1, board, &created.links.participant, "Participant").await?;
    let head = facilitator.ok(Command::AddTopic { text: text("Announced as usual") }).await?;
    participant.sync_to(head).await?;
    let repaired_before =
        cluster.node(1).api().metric("minim_fanout_gaps_repaired_total").await?.context("gap counter")?;

    // An event lands in the board's log, appended as a node would, but published to nobody.
    let topic = TopicId(facilitator.board.last_topic + 1);
    let unannounced = Event::TopicAdded {
        topic,
        author: Some(person(&p)),
        text: Some(text("Appended behind the nodes' backs")),
        hidden: false,
    };
    let missed = append_unannounced(&redis, board, head, unannounced).await?;
    let since = Instant::now();
    let (on_a, on_b) =
        tokio::join!(arrival(&mut facilitator, missed.seq, since), arrival(&mut participant, missed.seq, since));
    let (on_a, on_b) = (on_a?, on_b?);
    println!("the unannounced event reached node A's client after {on_a:?}, node B's after {on_b:?}");
    for (node, took) in [("A", on_a), ("B", on_b)] {
        assert!(took <= PERIODIC_CHECK + SLACK, "node {node} found the event after {took:?}");
    }
    // Each got it as they may see it: only its author learns the topic is theirs.
    assert_eq!(last_event(&facilitator), Some(&visible(&missed, &f)));
    assert_eq!(last_event(&participant), Some(&visible(&missed, &p)));
    assert_eq!(participant.board.topics[&topic].author, Some(person(&p)));

    // Another unannounced event, then at once an ordinary command through node A: node A finds the
    // log ahead of it, and node B sees a seq it did not expect and reads what it missed, at once.
    for round in 1..=2 {
        let newcomer = Event::PersonJoined {
            person: PersonId(facilitator.board.last_person + 1),
            name: text(&format!("Unannounced {round}")),
            role: Role::Participant,
        };
        let missed = append_unannounced(&redis, board, facilitator.board.seq, newcomer).await?;
        let sent = Instant::now();
        let head = facilitator.ok(Command::AddTopic { text: text(&format!("Right after {round}")) }).await?;
        assert_eq!(head, missed.seq.next(), "node A stored its event after the one it had missed");
        participant.sync_to(head).await?;
        let took = sent.elapsed();
        assert!(took < RIGHT_AWAY, "round {round}: node B repaired the gap after {took:?}, not at once");
        assert_eq!(event_seqs(&participant).rev().take(2).collect::<Vec<_>>(), vec![head, missed.seq], "in order");
        assert_eq!(participant.board.people.len(), 2 + round);
    }
    let repaired = cluster.node(1).api().metric("minim_fanout_gaps_repaired_total").await?.context("gap counter")?;
    assert!(repaired > repaired_before, "node B counted its repairs: {repaired_before} -> {repaired}");

    // Nothing came twice: one more command through node B, and everyone reads up to it.
    let head = participant.ok(Command::AddTopic { text: text("The last word") }).await?;
    facilitator.sync_to(head).await?;
    assert_eq!(facilitator.board.view_for(Viewer::Public), participant.board.view_for(Viewer::Public));
    let fresh = Client::connect(&cluster.node(0).ws_url(board), &p.token, None).await?;
    assert_eq!(fresh.board, participant.board);
    Ok(())
}

#[actix_rt::test]
async fn an_append_whose_answer_came_too_late_reaches_every_client_through_its_announcement() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let cluster = Cluster::start(&redis, 2)?;
    let created = cluster.create_board(0, Settings::default()).await?;
    let board = &created.board;
    let (_, mut facilitator) = cluster.enter(0, board, &created.links.facilitator, "Facilitator").await?;
    let (_, mut beside) = cluster.enter(0, board, &created.links.participant, "On the same node").await?;
    let (_, mut across) = cluster.enter(1, board, &created.links.participant, "On the other node").await?;
    let head = facilitator.ok(Command::AddTopic { text: text("Before the pause") }).await?;
    for client in [&mut beside, &mut across] {
        client.sync_to(head).await?;
    }
    let repaired_before =
        cluster.node(0).api().metric("minim_fanout_gaps_repaired_total").await?.context("gap counter")?;

    // Redis holds every write for longer than a node waits for an answer, then carries it out:
    // the node answers "unavailable", and the append lands (and is announced) afterwards.
    let pause = REDIS_ANSWER_TIMEOUT + Duration::from_millis(700);
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(pause.as_millis() as u64)
        .arg("WRITE")
        .query_async(&mut redis.connection().await?)
        .await?;
    let paused = Instant::now();
    let answer = facilitator.send(Command::AddTopic { text: text("Answered too late") }).await?;
    ensure!(matches!(&answer, Err(r) if r.code == ErrorCode::Unavailable), "the node gave up waiting: {answer:?}");

    // Everyone gets it soon after the pause, the author's own node included: the node hears its
    // own announcement and sees its board does not hold that event yet.
    let landed = head.next();
    for (who, client) in [("the author", &mut facilitator), ("beside", &mut beside), ("across", &mut across)] {
        let took = arrival(client, landed, paused).await?;
        println!("{who} got the late append {took:?} after the pause began");
        ensure!(took < pause + RIGHT_AWAY, "{who} got the late append only after {took:?}");
        ensure!(
            client.board.topics.values().any(|t| t.text.as_ref().map(Private::as_str) == Some("Answered too late")),
            "{who} has the late topic"
        );
    }
    // Through the announcement, not the periodic check of the log (which counts a repair).
    let repaired = cluster.node(0).api().metric("minim_fanout_gaps_repaired_total").await?.context("gap counter")?;
    ensure!(repaired == repaired_before, "node A found the event by reading the log: {repaired_before} -> {repaired}");
    ensure!(stored_log(&redis, board).await?.len() as u64 == landed.0, "stored once");

    // And the board carries on from there.
    let next = facilitator.ok(Command::AddTopic { text: text("After the pause") }).await?;
    ensure!(next == landed.next());
    across.sync_to(next).await?;
    ensure!(across.board.view_for(Viewer::Public) == facilitator.board.view_for(Viewer::Public));
    Ok(())
}

#[actix_rt::test]
async fn when_the_subscriptions_are_killed_mid_meeting_node_b_still_gets_every_event_in_order() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let cluster = Cluster::start(&redis, 2)?;
    let created = cluster.create_board(0, Settings::default()).await?;
    let board = &created.board;
    let (_, mut facilitator) = cluster.enter(0, board, &created.links.facilitator, "Facilitator").await?;
    let (p, mut participant) = cluster.enter(1, board, &created.links.participant, "Participant").await?;
    for node in &cluster.nodes {
        wait_for_metric(node, "minim_fanout_up", "1", |v| v == 1.0).await?;
    }
    let repaired_before = cluster.node(1).api().metric("minim_fanout_gaps_repaired_total").await?.unwrap_or(0.0);

    // Commands keep flowing through node A; a third of the way in, Redis drops every subscription.
    let mut killed = 0;
    let mut head = Seq::ZERO;
    for i in 0..=24 {
        if i == 8 {
            killed = kill_subscriptions(&redis).await?;
        }
        if i % 3 == 0 {
            head = facilitator.ok(Command::AddTopic { text: text(&format!("Topic {i}")) }).await?;
        } else {
            cluster.api(0).join(board, &created.links.participant, &format!("Person {i}")).await?;
        }
    }
    assert!(killed >= 2, "each node had a subscription to kill (killed {killed})");

    // Node B's client gets every event, in order (the harness fails on a gap or a duplicate).
    participant.sync_to(head).await?;
    assert_eq!(participant.board.people.len(), 2 + 16, "every join reached node B");
    assert_eq!(participant.board.topics.len(), 9, "every topic reached node B");
    wait_for_status(cluster.node(1), "/readyz", 200).await?;
    let repaired = cluster.node(1).api().metric("minim_fanout_gaps_repaired_total").await?.unwrap_or(0.0);
    println!("node B repaired {} gap(s) after losing its subscription", repaired - repaired_before);

    // The last event before a quiet spell: no later announcement will reveal that node B missed
    // it, so node B must read the log as soon as it has subscribed again, not at its next check.
    for round in 1..=2 {
        for node in &cluster.nodes {
            wait_for_metric(node, "minim_fanout_up", "1", |v| v == 1.0).await?;
        }
        assert!(kill_subscriptions(&redis).await? >= 2, "round {round}: each node had a subscription to kill");
        let sent = Instant::now();
        let edit = text(&format!("Topic 0, edited {round}"));
        let head = facilitator.ok(Command::EditTopic { topic: TopicId(1), text: edit.clone() }).await?;
        participant.sync_to(head).await?;
        let took = sent.elapsed();
        println!("round {round}: node B's client had the missed event after {took:?}");
        assert!(took < RIGHT_AWAY, "round {round}: node B read what it missed after {took:?}, not on resubscribing");
        assert_eq!(participant.board.topics[&TopicId(1)].text, Some(edit));
    }
    wait_for_status(cluster.node(1), "/readyz", 200).await?;

    // Both nodes carry on as before.
    let head = participant.ok(Command::AddTopic { text: text("After the reconnect") }).await?;
    facilitator.sync_to(head).await?;
    assert_eq!(facilitator.board.view_for(Viewer::Public), participant.board.view_for(Viewer::Public));
    let fresh = Client::connect(&cluster.node(1).ws_url(board), &p.token, None).await?;
    assert_eq!(fresh.board, participant.board);
    Ok(())
}

#[actix_rt::test]
async fn the_fanout_probe_reports_up_and_lag_and_recovers_after_the_subscription_is_killed() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let cluster = Cluster::start(&redis, 1)?;
    let node = cluster.node(0);

    // Steady state: the probe comes back, quickly.
    cluster.wait_ready(200).await?;
    wait_for_metric(node, "minim_fanout_up", "1", |v| v == 1.0).await?;
    let lag = wait_for_metric(node, "minim_fanout_lag_seconds", "under a second", |v| (0.0..1.0).contains(&v)).await?;
    println!("steady state: fanout up, lag {lag} s");

    // The subscription is killed under the node: it notices and subscribes again.
    let old = subscribed_clients(&redis).await?;
    ensure!(!old.is_empty(), "the node has a subscription in Redis");
    assert!(kill_subscriptions(&redis).await? >= 1);
    let deadline = Instant::now() + PATIENCE;
    let mut went_down = false;
    loop {
        let up = node.api().metric("minim_fanout_up").await?;
        went_down |= up == Some(0.0);
        let resubscribed = subscribed_clients(&redis).await?.iter().any(|id| !old.contains(id));
        if up == Some(1.0) && resubscribed {
            break;
        }
        if Instant::now() > deadline {
            bail!("the node did not subscribe again and report fanout up within {PATIENCE:?} (up: {up:?})");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("after the kill: fanout_up was seen at 0: {went_down}; subscribed again");

    // Its probes really go through the new subscription: still up longer than a probe may take.
    stays(node, "minim_fanout_up", 1.0, Duration::from_secs(4)).await?;
    wait_for_metric(node, "minim_fanout_lag_seconds", "under a second", |v| (0.0..1.0).contains(&v)).await?;
    wait_for_status(node, "/readyz", 200).await?;
    Ok(())
}

#[actix_rt::test]
async fn a_redis_that_holds_every_publish_is_noticed_by_the_probe() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let cluster = Cluster::start(&redis, 1)?;
    let node = cluster.node(0);
    wait_for_metric(node, "minim_fanout_up", "1", |v| v == 1.0).await?;

    // Redis holds every PUBLISH while its connections stay open: no probe makes the round trip.
    let mut conn = redis.connection().await?;
    let _: String = redis::cmd("CLIENT").arg("PAUSE").arg(60_000).arg("WRITE").query_async(&mut conn).await?;
    wait_for_metric(node, "minim_fanout_up", "0", |v| v == 0.0).await?;
    wait_for_status(node, "/readyz", 503).await?;
    assert_eq!(node.api().get("/healthz").await?.0, 200);

    // Delivery resumes: the node is up and ready again by itself.
    let _: String = redis::cmd("CLIENT").arg("UNPAUSE").query_async(&mut conn).await?;
    wait_for_metric(node, "minim_fanout_up", "1", |v| v == 1.0).await?;
    wait_for_status(node, "/readyz", 200).await?;
    Ok(())
}

// ----- Helpers -----

fn text(s: &str) -> Private {
    Private::new(s)
}

fn person(joined: &Joined) -> PersonId {
    joined.person.expect("joined as a person")
}

/// Sends a command until it is accepted, while it is refused only as `unavailable`.
async fn ok_eventually(client: &mut Client, command: Command) -> anyhow::Result<Seq> {
    let deadline = Instant::now() + PATIENCE;
    for attempt in 1.. {
        match client.send(command.clone()).await? {
            Ok(seq) => {
                println!("{} accepted at attempt {attempt}", command.kind());
                return Ok(seq);
            }
            Err(refusal) if refusal.code == ErrorCode::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(refusal) => bail!("{} was refused: {refusal:?}", command.kind()),
        }
    }
    unreachable!("the loop returns")
}

/// How long after `since` the client had folded `seq`.
async fn arrival(client: &mut Client, seq: Seq, since: Instant) -> anyhow::Result<Duration> {
    client.sync_to(seq).await?;
    Ok(since.elapsed())
}

fn event_seqs(client: &Client) -> impl DoubleEndedIterator<Item = Seq> + '_ {
    client.received.iter().filter_map(|m| match m {
        ServerMessage::Event(e) => Some(e.seq),
        _ => None,
    })
}

fn last_event(client: &Client) -> Option<&Sequenced> {
    client.received.iter().rev().find_map(|m| match m {
        ServerMessage::Event(e) => Some(e),
        _ => None,
    })
}

/// The copy of a stored event that `joined`'s person receives.
fn visible(stored: &Sequenced, joined: &Joined) -> Sequenced {
    Sequenced { seq: stored.seq, event: stored.event.visible_to(Viewer::Person(person(joined))) }
}

/// One of a board's Redis keys (`meta`, `events`, `epoch`).
fn key(board: &BoardId, part: &str) -> String {
    format!("minim:{{{}}}:{part}", board.0)
}

async fn get(redis: &RedisServer, key: &str) -> anyhow::Result<Option<String>> {
    Ok(redis::cmd("GET").arg(key).query_async(&mut redis.connection().await?).await?)
}

async fn exists(redis: &RedisServer, key: &str) -> anyhow::Result<bool> {
    Ok(redis::cmd("EXISTS").arg(key).query_async(&mut redis.connection().await?).await?)
}

/// The board's whole log as stored in Redis, checked to be in order.
async fn stored_log(redis: &RedisServer, board: &BoardId) -> anyhow::Result<Vec<Sequenced>> {
    let lines: Vec<String> = redis::cmd("LRANGE")
        .arg(key(board, "events"))
        .arg(0)
        .arg(-1)
        .query_async(&mut redis.connection().await?)
        .await?;
    let events = lines.iter().map(|l| serde_json::from_str(l)).collect::<Result<Vec<Sequenced>, _>>()?;
    for (i, e) in events.iter().enumerate() {
        ensure!(e.seq == Seq(i as u64 + 1), "the log in Redis holds {} at index {i}", e.seq);
    }
    Ok(events)
}

/// Appends one event to the board's log with the nodes' own discipline (only if the log is exactly
/// `after` long) but publishes nothing: a pub/sub message every node missed.
async fn append_unannounced(
    redis: &RedisServer,
    board: &BoardId,
    after: Seq,
    event: Event,
) -> anyhow::Result<Sequenced> {
    let sequenced = Sequenced { seq: after.next(), event };
    let script = redis::Script::new(
        "if redis.call('LLEN', KEYS[1]) ~= tonumber(ARGV[1]) then return -1 end \
         return redis.call('RPUSH', KEYS[1], ARGV[2])",
    );
    let mut invocation = script.key(key(board, "events"));
    invocation.arg(after.0).arg(serde_json::to_string(&sequenced)?);
    let length: i64 = invocation.invoke_async(&mut redis.connection().await?).await?;
    ensure!(length == sequenced.seq.0 as i64, "the log was not at {after} (the script answered {length})");
    Ok(sequenced)
}

/// Ids of the Redis clients subscribed to anything.
async fn subscribed_clients(redis: &RedisServer) -> anyhow::Result<Vec<u64>> {
    let list: String = redis::cmd("CLIENT").arg("LIST").query_async(&mut redis.connection().await?).await?;
    Ok(list
        .lines()
        .filter_map(|line| {
            let field = |name: &str| line.split(' ').find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='));
            let subscribed = ["sub", "psub", "ssub"].iter().any(|n| field(n).is_some_and(|v| v != "0"));
            subscribed.then(|| field("id")?.parse().ok()).flatten()
        })
        .collect())
}

/// Drops every subscription connection: `CLIENT KILL TYPE pubsub`, and by id any subscribed client
/// that type does not cover (a RESP3 connection with subscriptions counts as a normal client).
/// Returns how many connections were killed.
async fn kill_subscriptions(redis: &RedisServer) -> anyhow::Result<u64> {
    let mut conn = redis.connection().await?;
    let mut killed: u64 = redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub").query_async(&mut conn).await?;
    for id in subscribed_clients(redis).await? {
        let n: u64 = redis::cmd("CLIENT").arg("KILL").arg("ID").arg(id).query_async(&mut conn).await?;
        killed += n;
    }
    Ok(killed)
}

/// Polls a metric until `ok` holds; returns the value that satisfied it.
async fn wait_for_metric(node: &Server, name: &str, what: &str, ok: impl Fn(f64) -> bool) -> anyhow::Result<f64> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let value = node.api().metric(name).await?;
        if let Some(v) = value
            && ok(v)
        {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("{} {name} was not {what} within {PATIENCE:?} (last: {value:?})", node.url);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Checks that a metric keeps `value` for the whole of `period`.
async fn stays(node: &Server, name: &str, value: f64, period: Duration) -> anyhow::Result<()> {
    let until = Instant::now() + period;
    while Instant::now() < until {
        let now = node.api().metric(name).await?;
        ensure!(now == Some(value), "{} {name} left {value}: {now:?}", node.url);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
