//! A whole Lean Coffee meeting against a real `minim` process: a facilitator and three
//! participants, each a real WebSocket client.

use minim_shared::wire::{ErrorCode, ServerMessage};
use minim_shared::{Answer, Command, Event, Phase, Private, RejectCode, Settings, Timer, TopicId, TopicStatus, Viewer};
use minim_tests::TestBoard;

fn text(s: &str) -> Private {
    Private::new(s)
}

#[actix_rt::test]
async fn a_facilitator_and_three_participants_run_a_whole_meeting() -> anyhow::Result<()> {
    let settings = Settings { timebox_ms: 1_500, extension_ms: Some(1_000), ..Settings::default() };
    let room = TestBoard::open_with(&[], "Thursday Mini-M", settings).await?;
    let (ada, mut facilitator) = room.facilitator("Adaline").await?;
    let mut people = vec![];
    for name in ["Borislav", "Cyrille", "Dimitra"] {
        people.push(room.participant(name).await?.1);
    }
    let [bo, cy, di] = &mut people[..] else { unreachable!("three participants") };

    // Everyone adds topics at the same time.
    let t_ada = facilitator.ok(Command::AddTopic { text: text("Skip-level asks me to bypass my manager") }).await?;
    bo.ok(Command::AddTopic { text: text("Hiring freeze, team burning out") }).await?;
    cy.ok(Command::AddTopic { text: text("Peer takes credit for my team's work") }).await?;
    let head = di.ok(Command::AddTopic { text: text("Giving feedback upward") }).await?;
    for c in [&mut facilitator, &mut *bo, &mut *cy, &mut *di] {
        c.sync_to(head).await?;
        assert_eq!(c.board.topics.len(), 4, "every screen shows every topic");
        let with_author = c.board.topics.values().filter(|t| t.author.is_some()).count();
        assert_eq!(with_author, 1, "each person sees only their own topic's author");
    }
    assert!(t_ada.0 > 0);

    // Only the facilitator moves the meeting on.
    let refusal = bo.refused(Command::ChangePhase { to: Phase::Voting }).await?;
    assert_eq!(refusal.code, ErrorCode::Rule(RejectCode::Forbidden));
    facilitator.ok(Command::ChangePhase { to: Phase::Voting }).await?;

    // Votes: three each, at most three on one topic; totals hidden until voting closes.
    let [t1, t2, t3, t4] = [TopicId(1), TopicId(2), TopicId(3), TopicId(4)];
    for (client, votes) in
        [(&mut facilitator, [t2, t2, t3]), (&mut *bo, [t2, t3, t3]), (&mut *cy, [t3, t1, t2]), (&mut *di, [t4, t2, t1])]
    {
        for topic in votes {
            client.ok(Command::PlaceVote { topic }).await?;
        }
    }
    let over = bo.refused(Command::PlaceVote { topic: t4 }).await?;
    assert_eq!(over.code, ErrorCode::Rule(RejectCode::VoteLimit));
    assert!(over.message.contains("all 3 of your votes"), "a clear message: {}", over.message);
    di.sync_to(facilitator.board.seq).await?;
    assert_eq!(di.board.topics[&t2].votes, 1, "while voting, Di sees only her own vote on topic 2");
    assert_eq!(di.board.votes_left(minim_shared::PersonId(4)), 0);

    // Voting closes: totals revealed, the top topic (most votes, older first) is selected.
    let head = facilitator.ok(Command::ChangePhase { to: Phase::Discussing }).await?;
    for c in [&mut facilitator, &mut *bo, &mut *cy, &mut *di] {
        c.sync_to(head).await?;
        let order: Vec<TopicId> = c.board.queue().iter().map(|t| t.id).collect();
        assert_eq!(c.board.current_topic(), Some(t2), "topic 2 has 5 votes");
        assert_eq!(order, vec![t3, t1, t4], "then 4 votes, then 2, then 1");
        assert_eq!(c.board.topics[&t2].votes, 5);
    }

    // The timer: start, pause, resume, extend; deadlines are absolute and the same everywhere.
    facilitator.ok(Command::StartTimer).await?;
    let Timer::Running { deadline } = facilitator.board.timer else { panic!("running") };
    facilitator.ok(Command::PauseTimer).await?;
    assert!(matches!(facilitator.board.timer, Timer::Paused { remaining_ms } if remaining_ms <= 1_500));
    assert_eq!(cy.refused(Command::ResumeTimer).await?.code, ErrorCode::Rule(RejectCode::Forbidden));
    facilitator.ok(Command::ResumeTimer).await?;
    let head = facilitator.ok(Command::ExtendTimer).await?;
    let Timer::Running { deadline: extended } = facilitator.board.timer else { panic!("running") };
    assert!(extended.0 >= deadline.0 + 1_000 - 1_500, "the extension moved the deadline later");
    for c in [&mut *bo, &mut *cy, &mut *di] {
        c.sync_to(head).await?;
        assert_eq!(c.board.timer, facilitator.board.timer, "every screen counts down to the same deadline");
    }

    // Time runs out on the server: the check-in opens on every screen.
    for c in [&mut facilitator, &mut *bo, &mut *cy, &mut *di] {
        c.wait_for(|m| matches!(m, ServerMessage::Event(e) if matches!(e.event, Event::TimeboxEnded { .. }))).await?;
        assert!(c.board.check_in.is_some());
    }
    facilitator.ok(Command::AnswerCheckIn { answer: Answer::Down }).await?;
    bo.ok(Command::AnswerCheckIn { answer: Answer::Down }).await?;
    cy.ok(Command::AnswerCheckIn { answer: Answer::Up }).await?;
    let head = di.ok(Command::AnswerCheckIn { answer: Answer::Sideways }).await?;
    for c in [&mut facilitator, &mut *bo, &mut *cy, &mut *di] {
        c.sync_to(head).await?;
        let tally = c.board.check_in.as_ref().expect("open");
        assert_eq!((tally.up, tally.sideways, tally.down), (1, 1, 2), "everyone sees the tally");
        assert!(tally.answers.len() <= 1, "but only their own answer");
    }

    // Thumbs down: a takeaway, an action item, and on to the next topic.
    facilitator.ok(Command::SetTakeaway { topic: t2, text: text("Ask for a temporary contractor budget") }).await?;
    let bo_id = bo.board.people.values().find(|p| p.name.as_str() == "Borislav").map(|p| p.id).expect("Bo");
    facilitator
        .ok(Command::AddActionItem {
            topic: t2,
            text: text("Draft the budget ask"),
            owner: bo_id,
            due: Some("2026-12-01".into()),
        })
        .await?;
    let not_a_date = facilitator
        .refused(Command::AddActionItem { topic: t2, text: text("x"), owner: bo_id, due: Some("next week".into()) })
        .await?;
    assert_eq!(not_a_date.code, ErrorCode::Rule(RejectCode::Invalid));
    facilitator.ok(Command::MoveOn).await?;
    assert_eq!(facilitator.board.current_topic(), Some(t3));
    assert_eq!(facilitator.board.topics[&t2].status, TopicStatus::Discussed);

    // Pick another topic instead of the top one, then finish the meeting.
    facilitator.ok(Command::SelectTopic { topic: t4 }).await?;
    assert_eq!(facilitator.board.topics[&t3].status, TopicStatus::Queued);
    facilitator.ok(Command::MoveOn).await?;
    facilitator.ok(Command::ChangePhase { to: Phase::WrapUp }).await?;
    let head = facilitator.ok(Command::ChangePhase { to: Phase::Closed }).await?;

    // Wrap-up: every screen lists the same discussed topics, takeaways and action items.
    for c in [&mut *bo, &mut *cy, &mut *di] {
        c.sync_to(head).await?;
        assert_eq!(c.board.phase, Phase::Closed);
        let discussed: Vec<TopicId> = c.board.discussed().iter().map(|t| t.id).collect();
        assert_eq!(discussed, vec![t2, t4, t3], "in the order discussed; topic 3 was current when wrap-up began");
        assert_eq!(c.board.topics[&t2].takeaway.as_deref(), Some("Ask for a temporary contractor budget"));
        let items: Vec<_> =
            c.board.action_items_for(t2).map(|a| (a.text.as_str().to_owned(), a.owner, a.due.clone())).collect();
        assert_eq!(items, vec![("Draft the budget ask".to_owned(), bo_id, Some("2026-12-01".to_owned()))]);
        assert_eq!(
            c.board.view_for(Viewer::Public),
            facilitator.board.view_for(Viewer::Public),
            "every screen folded the same board, apart from each person's own private part"
        );
    }
    assert_eq!(
        bo.refused(Command::AddTopic { text: text("late") }).await?.code,
        ErrorCode::Rule(RejectCode::WrongPhase)
    );

    // Nothing anyone wrote, and no name or token, reached the logs.
    let logs = room.server.logs().join("\n");
    for secret in [
        "Skip-level",
        "burning out",
        "credit",
        "feedback upward",
        "contractor",
        "Draft the budget",
        "Thursday",
        "Adaline",
        "Borislav",
        "Cyrille",
        "Dimitra",
        &ada.token.0,
    ] {
        assert!(!logs.contains(secret), "the log mentions {secret:?}");
    }
    Ok(())
}
