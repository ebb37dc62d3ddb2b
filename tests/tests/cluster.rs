//! Several `minim` nodes sharing boards through one real `redis-server`, each node a real
//! process, each client a real WebSocket: people spread over the nodes see one meeting in one
//! order, a client may join or reconnect through any node, racing votes never exceed a budget, a
//! node that dies loses nothing, a timebox ends exactly once however many nodes watch it, and a
//! board left idle past its retention is gone.
//!
//! Besides what each client folded, the tests read the log the nodes stored in Redis
//! (`minim:{<board>}:events`) and check that every client received exactly that log, as it may
//! see it.

use anyhow::Context;
use futures_util::future::join_all;
use minim_shared::settings::MIN_TIMEBOX_MS;
use minim_shared::wire::{ClientMessage, ErrorCode, Identity, ServerMessage};
use minim_shared::{
    Answer, Board, BoardId, Command, Event, Phase, Private, RejectCode, Role, Seq, Sequenced, Settings, Timer, TopicId,
    Viewer,
};
use minim_tests::cluster::{Cluster, RedisServer};
use minim_tests::{Client, Refusal};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[actix_rt::test]
async fn clients_spread_over_three_nodes_see_one_meeting_in_one_order() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let cluster = Cluster::start(&redis, 3)?;
    let created = cluster.create_board(0, Settings::default()).await?;
    let (board, links) = (&created.board, &created.links);

    // A projector on every node; the facilitator on node 0 and on a second screen on node 2; two
    // participants on each node.
    let mut projectors = vec![];
    for node in 0..3 {
        projectors.push(cluster.enter(node, board, &links.projector, "Projector").await?.1);
    }
    let (f, first_screen) = cluster.enter(0, board, &links.facilitator, "Facilitator").await?;
    let f_id = f.person.expect("the facilitator is a person");
    // Node 2 has folded the facilitator's arrival before the second screen connects there (joining
    // on one node and connecting at once to another is a test of its own, below).
    until(&mut projectors[2], |b| b.people.contains_key(&f_id)).await?;
    let second_screen = Client::connect(&cluster.node(2).ws_url(board), &f.token, None).await?;
    let mut facilitator = vec![first_screen, second_screen];
    let mut people = vec![];
    for k in 0..6 {
        people.push(cluster.enter(k % 3, board, &links.participant, &format!("Participant {k}")).await?.1);
    }
    // Everyone is connected: from here on, every client receives every event.
    let start = people[5].board.seq;

    // Seven people add two topics each, all at the same time, through three nodes.
    let adding = people.iter_mut().chain([&mut facilitator[0]]).enumerate().map(|(k, c)| async move {
        c.ok(Command::AddTopic { text: Private::new(format!("Topic {k}a")) }).await?;
        c.ok(Command::AddTopic { text: Private::new(format!("Topic {k}b")) }).await
    });
    let head = highest(join_all(adding).await)?;
    for c in every_mut([&mut facilitator, &mut people, &mut projectors]) {
        c.sync_to(head).await?;
        assert_eq!(c.board.topics.len(), 14, "every screen on every node shows every topic");
    }
    for p in &people {
        assert_eq!(
            p.board.topics.values().filter(|t| t.author.is_some()).count(),
            2,
            "each sees only their own authorship"
        );
    }

    // Voting opens; people vote once their screen (and so their node) shows it, as in the app.
    let head = facilitator[0].ok(Command::ChangePhase { to: Phase::Voting }).await?;
    for c in every_mut([&mut facilitator, &mut people, &mut projectors]) {
        c.sync_to(head).await?;
    }

    // Seven people vote at the same time through three nodes: three votes each, two on one topic.
    let topic = |n: u32| TopicId(n % 14 + 1);
    let ballots: Vec<[TopicId; 3]> = (0..7).map(|i| [topic(2 * i), topic(2 * i + 5), topic(2 * i)]).collect();
    let voting = people.iter_mut().chain([&mut facilitator[0]]).zip(&ballots).map(|(c, ballot)| async move {
        let mut last = Seq::ZERO;
        for topic in ballot {
            last = c.ok(Command::PlaceVote { topic: *topic }).await?;
        }
        Ok::<_, anyhow::Error>(last)
    });
    highest(join_all(voting).await)?;

    // Voting closes (the facilitator's node may not have folded every vote yet; it must count them all).
    let head = facilitator[0].ok(Command::ChangePhase { to: Phase::Discussing }).await?;
    let mut expected: BTreeMap<TopicId, u32> = (1..=14).map(|t| (TopicId(t), 0)).collect();
    for topic in ballots.iter().flatten() {
        *expected.entry(*topic).or_default() += 1;
    }
    for c in every_mut([&mut facilitator, &mut people, &mut projectors]) {
        c.sync_to(head).await?;
        let totals: BTreeMap<TopicId, u32> = c.board.topics.values().map(|t| (t.id, t.votes)).collect();
        assert_eq!(totals, expected, "every vote from every node is counted, once");
    }

    // The same board everywhere: identical for the same view, and the same public part for all.
    for p in &projectors {
        assert_eq!(p.board, projectors[0].board, "the projectors on the three nodes show the same board");
    }
    assert_eq!(facilitator[1].board, facilitator[0].board, "the facilitator's two screens agree");
    assert_eq!(facilitator[0].board.votes_used(f_id), 3, "and know the facilitator's own votes");
    for c in every([&facilitator, &people, &projectors]) {
        assert_eq!(c.board.view_for(Viewer::Public), projectors[0].board, "apart from each person's own part");
    }

    // The same events in the same order: identical for the same view, the same public copies for
    // all, and for each client exactly the log stored in Redis as that client may see it.
    let reference = events_after(&projectors[0], start);
    // 14 topics, voting opens, 21 votes, voting closes: totals revealed, the top topic selected.
    assert_eq!(reference.len(), 14 + 1 + 21 + 3, "the projector saw the whole meeting");
    for p in &projectors {
        assert_eq!(events_after(p, start), reference, "every projector received the same events in the same order");
    }
    assert_eq!(events_after(&facilitator[1], start), events_after(&facilitator[0], start));
    let log = stored_log(&redis, board).await?;
    for c in every([&facilitator, &people, &projectors]) {
        assert_eq!(public(events_after(c, start)), reference, "{:?} saw the same public events", c.identity);
        assert_received_the_log(c, &log);
    }

    // A newcomer's snapshot on any node is the board each of them folded.
    for node in 0..3 {
        let ws = cluster.node(node).ws_url(board);
        for c in every([&facilitator, &people, &projectors]) {
            let fresh = Client::connect(&ws, &c.token, None).await?;
            assert_eq!(fresh.board, c.board, "node {node}'s snapshot for {:?} is what it folded", c.identity);
            fresh.close().await;
        }
    }
    Ok(())
}

#[actix_rt::test]
async fn someone_who_joins_through_one_node_can_connect_through_another_at_once() -> anyhow::Result<()> {
    // Behind a load balancer the join (HTTP) and the WebSocket may land on different nodes. The
    // board is live on all of them, and Redis is busy with other boards' announcements, so the
    // node the WebSocket lands on may not have heard of the join yet.
    let redis = RedisServer::start().await?;
    let cluster = Cluster::start(&redis, 3)?;
    let created = cluster.create_board(0, Settings::default()).await?;
    let (board, links) = (&created.board, &created.links);
    let mut watchers = projectors_on_every_node(&cluster, board, &links.projector).await?;

    for k in 0..6 {
        let (join_node, ws_node) = (k % 3, (k + 1) % 3);
        delay_announcements(&redis).await?;
        let joined = cluster.api(join_node).join(board, &links.participant, &format!("Person {k}")).await?;
        let person = joined.person.expect("a participant is a person");
        let client = Client::connect(&cluster.node(ws_node).ws_url(board), &joined.token, None)
            .await
            .with_context(|| format!("{person:?} joined through node {join_node}, then connected to node {ws_node}"))?;
        assert_eq!(client.identity, Identity::Person { person, role: Role::Participant });
        assert!(client.board.people.contains_key(&person), "joined on node {join_node}, welcomed on node {ws_node}");
    }
    for w in &mut watchers {
        until(w, |b| b.people.len() == 6).await?;
    }
    Ok(())
}

#[actix_rt::test]
async fn a_client_that_moves_to_another_node_carries_on_from_where_it_was() -> anyhow::Result<()> {
    // A dropped connection comes back through the load balancer, which may pick a node that has not
    // heard of the client's latest change yet (Redis is busy with other boards' announcements); the
    // client must carry on from there, not go back.
    let redis = RedisServer::start().await?;
    let cluster = Cluster::start(&redis, 3)?;
    let created = cluster.create_board(0, Settings::default()).await?;
    let (board, links) = (&created.board, &created.links);
    let mut watchers = projectors_on_every_node(&cluster, board, &links.projector).await?;
    let (_, mut facilitator) = cluster.enter(0, board, &links.facilitator, "Facilitator").await?;
    for w in &mut watchers {
        w.sync_to(facilitator.board.seq).await?;
    }

    // Six moves, twice round the nodes, each right after a change (a new timebox length).
    for k in 0..6 {
        let (from, to) = (k % 3, (k + 1) % 3);
        let settings = Settings { timebox_ms: 60_000 + k as u64 * 1_000, ..Settings::default() };
        delay_announcements(&redis).await?;
        let seq = facilitator.ok(Command::ChangeSettings { settings }).await?;
        facilitator = resume(facilitator, &cluster.node(to).ws_url(board)).await?;
        assert!(
            facilitator.board.seq >= seq,
            "moved from node {from} to node {to} after {seq}, and was taken back to {}",
            facilitator.board.seq
        );
        assert_eq!(snapshots(&facilitator), 1, "moved from node {from} to node {to}: events only, no new snapshot");
    }
    let log = stored_log(&redis, board).await?;
    assert_received_the_log(&facilitator, &log);
    assert_eq!(facilitator.board.settings.timebox_ms, 65_000);
    Ok(())
}

#[actix_rt::test]
async fn racing_votes_from_three_nodes_never_exceed_the_budget() -> anyhow::Result<()> {
    let budget = 3;
    let settings = Settings {
        votes_per_person: budget,
        max_votes_per_topic: budget,
        hide_totals_until_voting_closes: false,
        ..Settings::default()
    };
    let redis = RedisServer::start().await?;
    let cluster = Cluster::start(&redis, 3)?;
    let created = cluster.create_board(0, settings).await?;
    let (board, links) = (&created.board, &created.links);
    let (_, mut facilitator) = cluster.enter(0, board, &links.facilitator, "Facilitator").await?;
    let mut watchers = projectors_on_every_node(&cluster, board, &links.projector).await?;
    for k in 0..3 {
        facilitator.ok(Command::AddTopic { text: Private::new(format!("Topic {k}")) }).await?;
    }
    facilitator.ok(Command::ChangePhase { to: Phase::Voting }).await?;

    for round in 1..=5 {
        // A new participant, open in three tabs that landed on three different nodes.
        let home = round as usize % 3;
        let (joined, first_tab) = cluster.enter(home, board, &links.participant, &format!("Voter {round}")).await?;
        let voter = joined.person.expect("a participant is a person");
        for w in &mut watchers {
            until(w, |b| b.people.contains_key(&voter)).await?;
        }
        let mut tabs = vec![first_tab];
        for node in [(home + 1) % 3, (home + 2) % 3] {
            tabs.push(Client::connect(&cluster.node(node).ws_url(board), &joined.token, None).await?);
        }

        // Every tab fires one vote more than the whole budget: one from each tab in turn, all sent
        // before any answer is read, so the three nodes decide them at the same time.
        for n in 0..=budget {
            for (i, tab) in tabs.iter_mut().enumerate() {
                post(tab, n as u64, Command::PlaceVote { topic: TopicId((i as u32 + n) % 3 + 1) }).await?;
            }
        }
        let mut answers = vec![];
        for tab_answers in join_all(tabs.iter_mut().map(|tab| answers_to(tab, budget as usize + 1))).await {
            answers.extend(tab_answers?);
        }
        let accepted: Vec<Seq> = answers.iter().filter_map(|a| a.as_ref().ok().copied()).collect();
        assert_eq!(accepted.len(), budget as usize, "round {round}: exactly the budget is accepted: {answers:?}");
        for refusal in answers.iter().filter_map(|a| a.as_ref().err()) {
            assert_eq!(refusal.code, ErrorCode::Rule(RejectCode::VoteLimit), "round {round}: {refusal:?}");
            assert!(refusal.message.contains("all 3 of your votes"), "round {round}: {}", refusal.message);
        }

        // Every screen on every node agrees, and so does the log in Redis.
        let head = *accepted.iter().max().expect("some votes were accepted");
        for c in tabs.iter_mut().chain(&mut watchers).chain([&mut facilitator]) {
            c.sync_to(head).await?;
        }
        for tab in &tabs {
            assert_eq!(
                tab.board.votes_used(voter),
                budget,
                "round {round}: the voter's every tab shows the budget used"
            );
            assert_eq!(tab.board, tabs[0].board);
        }
        let total: u32 = watchers[0].board.topics.values().map(|t| t.votes).sum();
        assert_eq!(total, budget * round, "round {round}: the room sees every voter's budget and no more");
        for w in &watchers {
            assert_eq!(w.board, watchers[0].board);
        }
        assert_eq!(facilitator.board.view_for(Viewer::Public), watchers[0].board);
        let log = stored_log(&redis, board).await?;
        let stored = log.iter().filter(|e| matches!(e.event, Event::VotePlaced { person: Some(p), .. } if p == voter));
        assert_eq!(stored.count(), budget as usize, "round {round}: the log holds exactly the budget");
        for tab in tabs {
            tab.close().await;
        }
    }
    Ok(())
}

#[actix_rt::test]
async fn a_node_killed_mid_meeting_loses_nothing_and_its_clients_carry_on_elsewhere() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let mut cluster = Cluster::start(&redis, 3)?;
    let created = cluster.create_board(0, Settings::default()).await?;
    let (board, links) = (&created.board, &created.links);
    let (f, mut facilitator) = cluster.enter(0, board, &links.facilitator, "Facilitator").await?;
    let (_, mut cy) = cluster.enter(2, board, &links.participant, "Cy").await?;
    // Node 1 serves Ana, Bo and the projector in the room.
    let (a, mut ana) = cluster.enter(1, board, &links.participant, "Ana").await?;
    let (_, mut bo) = cluster.enter(1, board, &links.participant, "Bo").await?;
    let (_, mut projector) = cluster.enter(1, board, &links.projector, "Projector").await?;

    let adding = [&mut facilitator, &mut cy, &mut ana, &mut bo]
        .into_iter()
        .enumerate()
        .map(|(k, c)| async move { c.ok(Command::AddTopic { text: Private::new(format!("Topic {k}")) }).await });
    highest(join_all(adding).await)?;
    let head = facilitator.ok(Command::ChangePhase { to: Phase::Voting }).await?;
    for c in [&mut cy, &mut ana, &mut bo, &mut projector] {
        c.sync_to(head).await?;
    }
    let [t1, t2, t3, t4] = [TopicId(1), TopicId(2), TopicId(3), TopicId(4)];
    ana.ok(Command::PlaceVote { topic: t1 }).await?;
    bo.ok(Command::PlaceVote { topic: t2 }).await?;

    // Node 1 dies (SIGKILL) while people on nodes 0 and 2 are voting; a new node takes its place.
    let voting = [(&mut facilitator, [t1, t3]), (&mut cy, [t3, t4])].map(|(c, votes)| async move {
        let mut last = Seq::ZERO;
        for topic in votes {
            last = c.ok(Command::PlaceVote { topic }).await?;
        }
        Ok::<_, anyhow::Error>(last)
    });
    let (votes, killed) = tokio::join!(join_all(voting), async { cluster.kill_and_restart(1) });
    killed?;
    highest(votes)?;
    for c in [&mut ana, &mut bo, &mut projector] {
        until_connection_lost(c).await?;
    }

    // The meeting goes on without them.
    facilitator.ok(Command::PlaceVote { topic: t2 }).await?;
    let head = cy.ok(Command::PlaceVote { topic: t2 }).await?;
    let away = [ana.board.seq, bo.board.seq, projector.board.seq];
    assert!(away.iter().all(|left_at| *left_at < head), "they missed events while away: {away:?} < {head}");

    // They come back through other nodes, resuming from what they had folded: exactly the events
    // they missed, no snapshot, no gap, no duplicate.
    let mut ana = resume(ana, &cluster.node(0).ws_url(board)).await?;
    let mut bo = resume(bo, &cluster.node(2).ws_url(board)).await?;
    let mut projector = resume(projector, &cluster.node(1).ws_url(board)).await?;
    for (c, left_at) in [&mut ana, &mut bo, &mut projector].into_iter().zip(away) {
        c.sync_to(head).await?;
        assert_eq!(snapshots(c), 1, "{:?} caught up from {left_at} with events, not a snapshot", c.identity);
    }
    let a_id = a.person.expect("Ana is a person");
    assert_eq!(ana.board.votes_used(a_id), 1, "Ana's vote before the crash is still hers");

    // And they carry on: votes through their new nodes, then voting closes.
    let voting = [(&mut ana, [t3, t4]), (&mut bo, [t4, t4])].map(|(c, votes)| async move {
        let mut last = Seq::ZERO;
        for topic in votes {
            last = c.ok(Command::PlaceVote { topic }).await?;
        }
        Ok::<_, anyhow::Error>(last)
    });
    highest(join_all(voting).await)?;
    let head = facilitator.ok(Command::ChangePhase { to: Phase::Discussing }).await?;
    for c in [&mut facilitator, &mut cy, &mut ana, &mut bo, &mut projector] {
        c.sync_to(head).await?;
    }
    for c in [&facilitator, &cy, &ana, &bo] {
        assert_eq!(c.board.view_for(Viewer::Public), projector.board, "{:?} sees the room's board", c.identity);
    }
    let totals: Vec<u32> = projector.board.topics.values().map(|t| t.votes).collect();
    assert_eq!(totals, vec![2, 3, 3, 4], "all twelve votes, from before, during and after the crash");
    assert_eq!(ana.board.votes_used(a_id), 3);
    assert_eq!(facilitator.board.votes_used(f.person.expect("a person")), 3);

    // Every client received exactly the stored log, across both of its connections; a newcomer on
    // any node, the new one included, gets the same board.
    let log = stored_log(&redis, board).await?;
    for c in [&facilitator, &cy, &ana, &bo, &projector] {
        assert_received_the_log(c, &log);
    }
    for node in 0..3 {
        let fresh = Client::connect(&cluster.node(node).ws_url(board), &projector.token, None).await?;
        assert_eq!(fresh.board, projector.board, "node {node} serves the same board");
    }
    Ok(())
}

#[actix_rt::test]
async fn a_timebox_ends_exactly_once_however_many_nodes_watch_it() -> anyhow::Result<()> {
    let settings = Settings { timebox_ms: MIN_TIMEBOX_MS, extension_ms: Some(MIN_TIMEBOX_MS), ..Settings::default() };
    let redis = RedisServer::start().await?;
    let cluster = Cluster::start(&redis, 3)?;
    let created = cluster.create_board(0, settings).await?;
    let (board, links) = (&created.board, &created.links);
    let (_, facilitator) = cluster.enter(0, board, &links.facilitator, "Facilitator").await?;
    let (_, on_1) = cluster.enter(1, board, &links.participant, "On node 1").await?;
    let (_, on_2) = cluster.enter(2, board, &links.participant, "On node 2").await?;
    let mut people = vec![facilitator, on_1, on_2];
    let mut projectors = vec![];
    for node in 0..3 {
        projectors.push(cluster.enter(node, board, &links.projector, "Projector").await?.1);
    }
    let topic = people[1].ok(Command::AddTopic { text: Private::new("Topic") }).await?;
    people[0].sync_to(topic).await?;
    people[0].ok(Command::ChangePhase { to: Phase::Voting }).await?;
    people[0].ok(Command::ChangePhase { to: Phase::Discussing }).await?;

    // Three one-second timeboxes in a row; the board is live on all three nodes, and each of them
    // races to record the end of each one.
    for round in 1..=3 {
        let set = if round == 1 { Command::StartTimer } else { Command::ExtendTimer };
        people[0].ok(set).await?;
        for c in every_mut([&mut people, &mut projectors]) {
            until_ends_seen(c, round).await?;
        }
        // The check-in opened on every node: answers from nodes 1 and 2; then everyone is at the
        // same head, past any second record of the same end.
        people[1].ok(Command::AnswerCheckIn { answer: Answer::Up }).await?;
        let head = people[2].ok(Command::AnswerCheckIn { answer: Answer::Down }).await?;
        for c in every_mut([&mut people, &mut projectors]) {
            c.sync_to(head).await?;
            assert_eq!(timebox_ends(c), round, "{:?} saw each timebox end exactly once", c.identity);
            let tally = c.board.check_in.as_ref().expect("the check-in is open");
            assert_eq!((tally.up, tally.down), (1, 1));
        }
    }

    let log = stored_log(&redis, board).await?;
    assert_each_timebox_ended_once(&log, 3);
    for c in every([&people, &projectors]) {
        assert_received_the_log(c, &log);
    }
    Ok(())
}

#[actix_rt::test]
async fn a_timebox_still_ends_once_when_the_facilitators_node_dies_before_the_deadline() -> anyhow::Result<()> {
    // Two seconds: ample for the kill to land before the deadline, even on a busy machine.
    let settings = Settings { timebox_ms: 2_000, ..Settings::default() };
    let redis = RedisServer::start().await?;
    let mut cluster = Cluster::start(&redis, 3)?;
    let created = cluster.create_board(0, settings).await?;
    let (board, links) = (&created.board, &created.links);
    let (_, mut facilitator) = cluster.enter(0, board, &links.facilitator, "Facilitator").await?;
    let mut survivors = vec![];
    for node in [1, 2] {
        survivors.push(cluster.enter(node, board, &links.participant, &format!("On node {node}")).await?.1);
        survivors.push(cluster.enter(node, board, &links.projector, "Projector").await?.1);
    }
    let topic = survivors[0].ok(Command::AddTopic { text: Private::new("Topic") }).await?;
    facilitator.sync_to(topic).await?;
    facilitator.ok(Command::ChangePhase { to: Phase::Voting }).await?;
    facilitator.ok(Command::ChangePhase { to: Phase::Discussing }).await?;

    // The facilitator starts the timer, and their node dies at once.
    facilitator.ok(Command::StartTimer).await?;
    let deadline = facilitator.board.deadline().expect("the timer runs");
    cluster.nodes[0].kill();
    assert!(now_ms() < deadline.0, "node 0 died before the deadline");

    // Nodes 1 and 2 end the timebox, once.
    for c in &mut survivors {
        until_ends_seen(c, 1).await?;
        assert_eq!(c.board.timer, Timer::Expired);
    }

    // The facilitator comes back through node 1 and finds it ended; the meeting goes on.
    until_connection_lost(&mut facilitator).await?;
    let mut facilitator = resume(facilitator, &cluster.node(1).ws_url(board)).await?;
    assert_eq!(facilitator.board.timer, Timer::Expired);
    survivors[0].ok(Command::AnswerCheckIn { answer: Answer::Up }).await?;
    survivors[2].ok(Command::AnswerCheckIn { answer: Answer::Sideways }).await?;
    let head = facilitator.ok(Command::MoveOn).await?;
    for c in survivors.iter_mut().chain([&mut facilitator]) {
        c.sync_to(head).await?;
        assert_eq!(timebox_ends(c), 1, "{:?} saw the timebox end exactly once", c.identity);
    }

    let log = stored_log(&redis, board).await?;
    assert_each_timebox_ended_once(&log, 1);
    for c in survivors.iter().chain([&facilitator]) {
        assert_received_the_log(c, &log);
    }
    Ok(())
}

#[actix_rt::test]
async fn a_board_left_idle_past_its_retention_is_gone_from_redis() -> anyhow::Result<()> {
    let retention_ms = 3_000;
    let redis = RedisServer::start().await?;
    let cluster = Cluster::start_with(&redis, 2, &["--retention", "3s"])?;
    let created = cluster.create_board(0, Settings::default()).await?;
    let (board, links) = (&created.board, &created.links);

    // Created: every key of the board expires within the retention.
    let keys = board_keys(&redis, board).await?;
    for suffix in ["meta", "events"] {
        assert!(keys.contains(&format!("minim:{{{}}}:{suffix}", board.0)), "the board has a {suffix} key: {keys:?}");
    }
    for (key, ttl) in pttls(&redis, &keys).await? {
        assert!(ttl > 0 && ttl <= retention_ms, "{key} expires within the retention: {ttl} ms");
    }

    // Changed through both nodes: still within the retention and its hundredth of slack.
    let slack_ms = retention_ms / 100;
    let (_, mut facilitator) = cluster.enter(0, board, &links.facilitator, "Facilitator").await?;
    let (_, mut participant) = cluster.enter(1, board, &links.participant, "Participant").await?;
    participant.ok(Command::AddTopic { text: Private::new("First") }).await?;
    let keys = board_keys(&redis, board).await?;
    let ttls = pttls(&redis, &keys).await?;
    for (key, ttl) in &ttls {
        assert!(*ttl > 0 && *ttl <= retention_ms + slack_ms, "{key} expires within the retention: {ttl} ms");
    }

    // A second later the clocks have run down by about that much; a change sets them back to the
    // whole retention.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = pttls(&redis, &keys).await?;
    facilitator.ok(Command::AddTopic { text: Private::new("Second") }).await?;
    let after = pttls(&redis, &keys).await?;
    for ((key, before), (_, after)) in before.iter().zip(&after) {
        assert!(*before <= retention_ms + slack_ms - 500, "{key} ran down: {before} ms");
        assert!(*after > *before + 500 && *after <= retention_ms + slack_ms, "{key} refreshed: {before} -> {after} ms");
    }

    // Everyone leaves, and the board is left alone past its retention.
    facilitator.close().await;
    participant.close().await;
    wait_out_retention(&redis, board).await?;
    assert_eq!(board_keys(&redis, board).await?, Vec::<String>::new(), "every key of the board expired");

    // The board is gone on every node, even those that still hold it in memory, and stays gone.
    for node in 0..2 {
        let refusal = cluster
            .api(node)
            .try_join(board, &links.participant, "Late")
            .await?
            .err()
            .unwrap_or_else(|| panic!("node {node} let someone join an expired board"));
        assert_eq!((refusal.status, refusal.code), (404, ErrorCode::BoardNotFound), "node {node}: {refusal:?}");
    }
    assert_eq!(board_keys(&redis, board).await?, Vec::<String>::new(), "nothing stored the board again");
    Ok(())
}

#[actix_rt::test]
async fn a_board_still_open_when_its_retention_passes_is_gone_for_its_screens_too() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let cluster = Cluster::start_with(&redis, 2, &["--retention", "3s"])?;
    let created = cluster.create_board(0, Settings::default()).await?;
    let (board, links) = (&created.board, &created.links);
    let (_, mut facilitator) = cluster.enter(0, board, &links.facilitator, "Facilitator").await?;
    let (_, mut projector) = cluster.enter(1, board, &links.projector, "Projector").await?;
    let last_change = facilitator.ok(Command::AddTopic { text: Private::new("Left open") }).await?;
    projector.sync_to(last_change).await?;

    // The screens stay open, but nothing changes for longer than the retention.
    wait_out_retention(&redis, board).await?;
    assert_eq!(board_keys(&redis, board).await?, Vec::<String>::new(), "every key of the board expired");

    // The nodes still hold the board, but do not store it again: the next change is refused, and
    // the screen on the other node is told too.
    // (Sending may fail if node 0 has told the facilitator already and closed: being told is what counts.)
    let _ = post(&mut facilitator, 0, Command::AddTopic { text: Private::new("Too late") }).await;
    let told =
        facilitator.wait_for(|m| matches!(m, ServerMessage::Rejected { .. } | ServerMessage::Error { .. })).await?;
    let (ServerMessage::Rejected { code, .. } | ServerMessage::Error { code, .. }) = &told else { unreachable!() };
    assert_eq!(*code, ErrorCode::BoardNotFound, "the facilitator learns the board is gone: {told:?}");
    let told = projector.next_error().await?;
    assert!(
        matches!(told, ServerMessage::Error { code: ErrorCode::BoardNotFound, .. }),
        "the projector learns the board is gone: {told:?}"
    );
    assert_eq!(board_keys(&redis, board).await?, Vec::<String>::new(), "nothing stored the board again");
    Ok(())
}

// ----- Helpers -----

/// The clients of several groups, one after the other.
fn every<const N: usize>(groups: [&Vec<Client>; N]) -> impl Iterator<Item = &Client> {
    groups.into_iter().flatten()
}

fn every_mut<const N: usize>(groups: [&mut Vec<Client>; N]) -> impl Iterator<Item = &mut Client> {
    groups.into_iter().flatten()
}

/// The highest sequence number among answers, failing if any failed.
fn highest(results: Vec<anyhow::Result<Seq>>) -> anyhow::Result<Seq> {
    let mut head = Seq::ZERO;
    for result in results {
        head = head.max(result?);
    }
    Ok(head)
}

/// Reads (and folds) until `client`'s board satisfies `f`.
/// A projector screen on each node of the cluster, following `board`.
async fn projectors_on_every_node(cluster: &Cluster, board: &BoardId, link: &str) -> anyhow::Result<Vec<Client>> {
    let mut screens = vec![];
    for node in 0..cluster.nodes.len() {
        screens.push(cluster.enter(node, board, link, "Projector").await?.1);
    }
    Ok(screens)
}

async fn until(client: &mut Client, f: impl Fn(&Board) -> bool) -> anyhow::Result<()> {
    while !f(&client.board) {
        client.next().await?;
    }
    Ok(())
}

/// Ids for commands sent with [`post`], far from those `Client::send` hands out.
const POSTED: u64 = 1_000_000;

/// Sends a command without waiting for its answer; `n` numbers it among this client's posts.
async fn post(client: &mut Client, n: u64, command: Command) -> anyhow::Result<()> {
    let message = ClientMessage::Command { id: POSTED + n, command };
    client.send_raw(serde_json::to_string(&message)?).await
}

/// Reads until each of the first `n` posted commands is answered; the answers in the order posted.
async fn answers_to(client: &mut Client, n: usize) -> anyhow::Result<Vec<Result<Seq, Refusal>>> {
    let mut answers = BTreeMap::new();
    while answers.len() < n {
        let (id, answer) = match client.next().await? {
            ServerMessage::Accepted { id, seq } => (id, Ok(seq)),
            ServerMessage::Rejected { id, code, message } => (id, Err(Refusal { code, message })),
            _ => continue,
        };
        assert!((POSTED..POSTED + n as u64).contains(&id), "an answer to command {id}, never posted");
        assert!(answers.insert(id, answer).is_none(), "command {id} was answered twice");
    }
    Ok(answers.into_values().collect())
}

/// Reads (and folds) what a dead node had sent until its connection drops.
async fn until_connection_lost(client: &mut Client) -> anyhow::Result<()> {
    loop {
        if let Err(e) = client.next().await {
            let e = e.to_string();
            anyhow::ensure!(!e.contains("no message within"), "the connection outlived its node");
            anyhow::ensure!(!e.contains("gap or duplicate"), "{e}");
            return Ok(());
        }
    }
}

/// Connects `client`'s token to `ws`, resuming from the board it folded; the new client keeps
/// everything the old connection received, so its whole history can be checked.
async fn resume(client: Client, ws: &str) -> anyhow::Result<Client> {
    let mut resumed = Client::connect(ws, &client.token, Some(&client.board)).await?;
    let mut received = client.received;
    received.append(&mut resumed.received);
    resumed.received = received;
    Ok(resumed)
}

fn snapshots(client: &Client) -> usize {
    client.received.iter().filter(|m| matches!(m, ServerMessage::Snapshot { .. })).count()
}

/// How many `TimeboxEnded` events `client` received.
fn timebox_ends(client: &Client) -> usize {
    events_after(client, Seq::ZERO).iter().filter(|e| matches!(e.event, Event::TimeboxEnded { .. })).count()
}

/// Reads until `client` has received `n` `TimeboxEnded` events.
async fn until_ends_seen(client: &mut Client, n: usize) -> anyhow::Result<()> {
    while timebox_ends(client) < n {
        client.next().await?;
    }
    Ok(())
}

/// The events `client` received with a sequence number above `seq`, in the order received.
fn events_after(client: &Client, seq: Seq) -> Vec<Sequenced> {
    client
        .received
        .iter()
        .filter_map(|m| match m {
            ServerMessage::Event(e) if e.seq > seq => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// Events as someone with no private part in them sees them.
fn public(events: Vec<Sequenced>) -> Vec<Sequenced> {
    events.into_iter().map(|e| Sequenced { seq: e.seq, event: e.event.visible_to(Viewer::Public) }).collect()
}

fn viewer(client: &Client) -> Viewer {
    match client.identity {
        Identity::Person { person, .. } => Viewer::Person(person),
        Identity::Projector => Viewer::Public,
    }
}

/// What `client` received is exactly `log` as it may see it, up to the log's head: each snapshot
/// is the log's board at that point, and every following event is the next one in the log, in
/// the copy meant for this client.
fn assert_received_the_log(client: &Client, log: &[Sequenced]) {
    let viewer = viewer(client);
    let mut at: Option<Seq> = None;
    for message in &client.received {
        match message {
            ServerMessage::Snapshot { board } => {
                let expected = Board::replay(&log[..board.seq.0 as usize]).view_for(viewer);
                assert_eq!(**board, expected, "{viewer:?}'s snapshot at {} is the log's board", board.seq);
                at = Some(board.seq);
            }
            ServerMessage::Event(e) => {
                if let Some(at) = at {
                    assert_eq!(e.seq, at.next(), "{viewer:?} received events in order, without gaps");
                }
                let stored = &log[e.seq.0 as usize - 1];
                assert_eq!(e.event, stored.event.visible_to(viewer), "{viewer:?}'s copy of event {}", e.seq);
                at = Some(e.seq);
            }
            _ => {}
        }
    }
    assert_eq!(at, log.last().map(|e| e.seq), "{viewer:?} reached the head of the log");
}

/// `log` ends exactly `n` timeboxes, and never one that was not running.
fn assert_each_timebox_ended_once(log: &[Sequenced], n: usize) {
    let mut running = false;
    let mut ends = 0;
    for e in log {
        match e.event {
            Event::TimerStarted { .. } | Event::TimerResumed { .. } | Event::TimerExtended { .. } => running = true,
            Event::TimerPaused { .. } | Event::TimerStopped | Event::TopicDiscussed { .. } => running = false,
            Event::TimeboxEnded { .. } => {
                assert!(running, "a second end of the same timebox at {}", e.seq);
                running = false;
                ends += 1;
            }
            _ => {}
        }
    }
    assert_eq!(ends, n, "the log in Redis holds each end once");
}

/// The board's log as stored in Redis (index `i` holds seq `i + 1`).
async fn stored_log(redis: &RedisServer, board: &BoardId) -> anyhow::Result<Vec<Sequenced>> {
    let mut conn = redis.connection().await?;
    let lines: Vec<String> =
        redis::cmd("LRANGE").arg(format!("minim:{{{}}}:events", board.0)).arg(0).arg(-1).query_async(&mut conn).await?;
    let log = lines.iter().map(|line| serde_json::from_str(line)).collect::<Result<Vec<Sequenced>, _>>()?;
    for (i, e) in log.iter().enumerate() {
        assert_eq!(e.seq, Seq(i as u64 + 1), "the stored log is in order");
    }
    Ok(log)
}

/// Every key Redis holds for the board, sorted.
async fn board_keys(redis: &RedisServer, board: &BoardId) -> anyhow::Result<Vec<String>> {
    let mut conn = redis.connection().await?;
    let mut keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("minim:{{{}}}:*", board.0)).query_async(&mut conn).await?;
    keys.sort();
    Ok(keys)
}

/// Each key's remaining time to live in milliseconds (-1: none, -2: no such key).
async fn pttls(redis: &RedisServer, keys: &[String]) -> anyhow::Result<Vec<(String, i64)>> {
    let mut conn = redis.connection().await?;
    let mut ttls = vec![];
    for key in keys {
        let ttl: i64 = redis::cmd("PTTL").arg(key).query_async(&mut conn).await?;
        ttls.push((key.clone(), ttl));
    }
    Ok(ttls)
}

/// Sleeps until every key of the board has passed its time to live. Nothing can be awaited for an
/// expiry: this waits the longest remaining time to live, plus a little for Redis to act on it.
async fn wait_out_retention(redis: &RedisServer, board: &BoardId) -> anyhow::Result<()> {
    let keys = board_keys(redis, board).await?;
    let remaining = pttls(redis, &keys).await?.into_iter().map(|(_, ttl)| ttl).max().unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(remaining.max(0) as u64 + 300)).await;
    Ok(())
}

/// Puts a burst of other boards' announcements ahead of whatever comes next on the nodes'
/// subscriptions, as a busy Redis would: the nodes hear of the next change a little late.
async fn delay_announcements(redis: &RedisServer) -> anyhow::Result<()> {
    let mut conn = redis.connection().await?;
    let mut burst = redis::pipe();
    for i in 0..20_000 {
        burst.cmd("PUBLISH").arg(format!("minim:fanout:{:032x}", i)).arg("{}").ignore();
    }
    let () = burst.query_async(&mut conn).await?;
    Ok(())
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_millis() as u64
}
