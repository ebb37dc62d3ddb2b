//! Bad input gets a clear, typed error and changes nothing: facilitator actions from others,
//! malformed and oversized frames, unknown boards, forged and misdirected tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use minim_shared::wire::{ErrorCode, ServerMessage, close};
use minim_shared::{BoardId, Command, Phase, Private, RejectCode, Settings, TopicId};
use minim_tests::{Client, Server, TestBoard};
use tokio_tungstenite::tungstenite::Message;

struct Meeting {
    room: TestBoard,
    facilitator: Client,
    participant: Client,
    participant_token: String,
}

async fn meeting() -> anyhow::Result<Meeting> {
    let room = TestBoard::open(Settings::default()).await?;
    let (_, mut facilitator) = room.facilitator("Facilitator").await?;
    let (p, participant) = room.participant("Participant").await?;
    facilitator.ok(Command::AddTopic { text: Private::new("a topic") }).await?;
    Ok(Meeting { room, facilitator, participant, participant_token: p.token.0 })
}

impl Meeting {
    fn ws(&self) -> String {
        self.room.ws()
    }

    /// The board as a brand-new facilitator connection sees it: proof of what the server holds.
    async fn head(&self) -> anyhow::Result<minim_shared::Seq> {
        Ok(self.room.facilitator("Facilitator").await?.1.board.seq)
    }
}

fn every_facilitator_command() -> Vec<Command> {
    let t = TopicId(1);
    vec![
        Command::ChangeSettings { settings: Settings::default() },
        Command::ChangePhase { to: Phase::Voting },
        Command::RevealTopics,
        Command::MergeTopics { from: t, into: TopicId(2), text: None },
        Command::SelectTopic { topic: t },
        Command::StartTimer,
        Command::PauseTimer,
        Command::ResumeTimer,
        Command::ExtendTimer,
        Command::StopTimer,
        Command::MoveOn,
        Command::SetTakeaway { topic: t, text: Private::new("x") },
        Command::AddActionItem { topic: t, text: Private::new("x"), owner: minim_shared::PersonId(2), due: None },
        Command::RemoveActionItem { id: minim_shared::ActionItemId(1) },
        Command::EditTopic { topic: t, text: Private::new("not mine") },
        Command::RemoveTopic { topic: t },
        Command::CreateBoard { title: Private::new("x"), settings: Settings::default() },
        Command::Join { name: Private::new("x"), role: minim_shared::Role::Facilitator },
        Command::EndTimebox,
    ]
}

#[actix_rt::test]
async fn a_participant_cannot_run_facilitator_actions_and_nothing_changes() -> anyhow::Result<()> {
    let mut m = meeting().await?;
    let before = m.head().await?;
    for command in every_facilitator_command() {
        let kind = command.kind();
        let refusal = m.participant.refused(command).await?;
        assert_eq!(refusal.code, ErrorCode::Rule(RejectCode::Forbidden), "{kind}");
        assert!(!refusal.message.is_empty());
    }
    assert_eq!(m.head().await?, before, "the board did not change");
    Ok(())
}

#[actix_rt::test]
async fn the_projector_link_can_change_nothing() -> anyhow::Result<()> {
    let m = meeting().await?;
    let joined = m.room.server.api().join(&m.room.created.board, &m.room.created.links.projector, "ignored").await?;
    assert_eq!(joined.person, None);
    let mut projector = Client::connect(&m.ws(), &joined.token, None).await?;
    assert_eq!(projector.board.topics[&TopicId(1)].author, None);
    let before = m.head().await?;
    for command in
        [Command::AddTopic { text: Private::new("x") }, Command::PlaceVote { topic: TopicId(1) }, Command::StartTimer]
    {
        let refusal = projector.refused(command).await?;
        assert_eq!(refusal.code, ErrorCode::Rule(RejectCode::Forbidden));
        assert!(refusal.message.contains("read-only"));
    }
    assert_eq!(m.head().await?, before);
    Ok(())
}

#[actix_rt::test]
async fn malformed_messages_get_a_typed_error_and_the_connection_stays_usable() -> anyhow::Result<()> {
    let mut m = meeting().await?;
    let before = m.head().await?;
    let bad = [
        "{not json".to_owned(),
        r#"{"type":"launch_missiles"}"#.to_owned(),
        r#"{"type":"command","id":1,"command":{"type":"add_topic"}}"#.to_owned(),
        r#"{"type":"command","id":1,"command":{"type":"add_topic","text":"x","author":1}}"#.to_owned(),
        r#"{"type":"command","id":"one","command":{"type":"start_timer"}}"#.to_owned(),
        "[]".to_owned(),
    ];
    for text in bad {
        m.participant.send_raw(text.clone()).await?;
        match m.participant.next_error().await? {
            ServerMessage::Error { code: ErrorCode::BadMessage, message } => assert!(!message.is_empty()),
            other => panic!("{text}: expected bad_message, got {other:?}"),
        }
    }
    m.participant.send_message(Message::binary(vec![1u8, 2, 3])).await?;
    assert!(matches!(m.participant.next_error().await?, ServerMessage::Error { code: ErrorCode::BadMessage, .. }));
    m.participant.send_raw(r#"{"type":"hello","protocol":1,"token":"x"}"#).await?;
    assert!(matches!(m.participant.next_error().await?, ServerMessage::Error { code: ErrorCode::NotHello, .. }));
    assert_eq!(m.head().await?, before, "none of it changed the board");

    // Still usable.
    m.participant.ok(Command::AddTopic { text: Private::new("after the noise") }).await?;
    m.participant.send_raw(r#"{"type":"ping","id":7}"#).await?;
    assert!(matches!(
        m.participant.wait_for(|msg| matches!(msg, ServerMessage::Pong { .. })).await?,
        ServerMessage::Pong { id: 7, .. }
    ));
    Ok(())
}

#[actix_rt::test]
async fn an_oversized_frame_is_refused_with_a_clear_close() -> anyhow::Result<()> {
    let mut m = meeting().await?;
    let before = m.head().await?;
    let huge =
        format!(r#"{{"type":"command","id":1,"command":{{"type":"add_topic","text":"{}"}}}}"#, "x".repeat(64 * 1024));
    m.participant.send_raw(huge).await?;
    let (code, _) = m.participant.closed().await?;
    assert_eq!(code, 1009, "message too big");
    assert!(
        m.participant.received.iter().any(|msg| matches!(msg, ServerMessage::Error { code: ErrorCode::TooLarge, .. }))
    );
    assert_eq!(m.head().await?, before);
    // Long but within the frame limit: a rule refuses it with words.
    let mut facilitator = m.facilitator;
    let long = facilitator.refused(Command::AddTopic { text: Private::new("y".repeat(2_000)) }).await?;
    assert_eq!(long.code, ErrorCode::Rule(RejectCode::Invalid));
    assert!(long.message.contains("280"), "{}", long.message);
    Ok(())
}

async fn refused_at_hello(ws: &str, token: &str) -> anyhow::Result<ErrorCode> {
    let err = match Client::connect(ws, token, None).await {
        Ok(_) => anyhow::bail!("connected with a bad token"),
        Err(e) => e.to_string(),
    };
    // The harness reports "refused: <code>: <message>".
    let code = if err.contains("Unauthorized") {
        ErrorCode::Unauthorized
    } else if err.contains("BoardNotFound") {
        ErrorCode::BoardNotFound
    } else if err.contains("UnsupportedProtocol") {
        ErrorCode::UnsupportedProtocol
    } else {
        anyhow::bail!("unexpected refusal: {err}")
    };
    Ok(code)
}

fn tamper(token: &str, f: impl FnOnce(&mut serde_json::Value)) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: serde_json::Value = serde_json::from_slice(&B64.decode(parts[1]).expect("base64")).expect("json");
    f(&mut claims);
    format!("{}.{}.{}", parts[0], B64.encode(claims.to_string()), parts[2])
}

#[actix_rt::test]
async fn forged_and_misdirected_tokens_are_refused() -> anyhow::Result<()> {
    let m = meeting().await?;
    let ws = m.ws();
    let participant = &m.participant_token;

    // Garbage, a tampered claim (participant → facilitator), `alg: none`, another server's secret.
    assert_eq!(refused_at_hello(&ws, "not-a-token").await?, ErrorCode::Unauthorized);
    let promoted = tamper(participant, |c| {
        c["person"] = 1.into();
        c["grant"] = "facilitator".into();
    });
    assert_eq!(refused_at_hello(&ws, &promoted).await?, ErrorCode::Unauthorized);
    let payload = participant.split('.').nth(1).expect("payload");
    let none = format!("{}.{}.", B64.encode(r#"{"alg":"none","typ":"JWT"}"#), payload);
    assert_eq!(refused_at_hello(&ws, &none).await?, ErrorCode::Unauthorized);
    let expired = tamper(participant, |c| c["exp"] = 1_000_000.into());
    assert_eq!(refused_at_hello(&ws, &expired).await?, ErrorCode::Unauthorized);

    let other_dir = tempfile::tempdir()?;
    let other = Server::start(other_dir.path())?;
    let elsewhere = other.api().create_board("Elsewhere", Settings::default()).await?;
    let foreign = other.api().join(&elsewhere.board, &elsewhere.links.facilitator, "Mallory").await?;
    assert_eq!(refused_at_hello(&ws, &foreign.token.0).await?, ErrorCode::Unauthorized, "another server's secret");

    // A real token of this server, but for another board.
    let second = m.room.server.api().create_board("Second", Settings::default()).await?;
    let second_token = m.room.server.api().join(&second.board, &second.links.facilitator, "F").await?.token.0;
    assert_eq!(refused_at_hello(&ws, &second_token).await?, ErrorCode::Unauthorized);

    // And the close code says so.
    let (mut socket, _) = tokio_tungstenite::connect_async(&ws).await?;
    use futures_util::{SinkExt, StreamExt};
    socket.send(Message::text(format!(r#"{{"type":"hello","protocol":1,"token":"{promoted}"}}"#))).await?;
    let mut close_code = None;
    while let Some(Ok(frame)) = socket.next().await {
        if let Message::Close(Some(c)) = frame {
            close_code = Some(u16::from(c.code));
        }
    }
    assert_eq!(close_code, Some(close::UNAUTHORIZED));
    Ok(())
}

#[actix_rt::test]
async fn unknown_boards_wrong_links_and_wrong_protocols_are_refused() -> anyhow::Result<()> {
    let m = meeting().await?;
    let api = m.room.server.api();
    let nowhere = BoardId("0".repeat(32));
    let e = api.try_join(&nowhere, &m.room.created.links.participant, "X").await?.expect_err("no such board");
    assert_eq!((e.status, e.code), (404, ErrorCode::BoardNotFound));
    let e = api
        .try_join(&BoardId("not-a-board-id".into()), &m.room.created.links.participant, "X")
        .await?
        .expect_err("not an id");
    assert_eq!((e.status, e.code), (404, ErrorCode::BoardNotFound));
    let wrong_key = format!("{}#k={}", m.room.created.links.participant, "f".repeat(32));
    let e = api.try_join(&m.room.created.board, &wrong_key, "X").await?.expect_err("wrong key");
    assert_eq!((e.status, e.code), (403, ErrorCode::Unauthorized));
    let e = api
        .try_join(&m.room.created.board, &m.room.created.links.participant, " \u{202e} ")
        .await?
        .expect_err("empty name");
    assert_eq!((e.status, e.code), (422, ErrorCode::Rule(RejectCode::Invalid)));

    // The WebSocket of a board that does not exist.
    let ws = m.room.server.ws_url(&nowhere);
    assert!(
        refused_at_hello(&ws, &m.participant_token).await.is_ok_and(|c| c == ErrorCode::Unauthorized),
        "a token names its board"
    );

    // A client speaking another protocol version.
    let (mut socket, _) = tokio_tungstenite::connect_async(m.ws()).await?;
    use futures_util::{SinkExt, StreamExt};
    let hello = format!(r#"{{"type":"hello","protocol":99,"token":"{}"}}"#, m.participant_token);
    socket.send(Message::text(hello)).await?;
    let mut saw = (None, None);
    while let Some(Ok(frame)) = socket.next().await {
        match frame {
            Message::Text(t) => saw.0 = Some(serde_json::from_str::<ServerMessage>(&t)?),
            Message::Close(Some(c)) => saw.1 = Some(u16::from(c.code)),
            _ => {}
        }
    }
    assert!(matches!(saw.0, Some(ServerMessage::Error { code: ErrorCode::UnsupportedProtocol, .. })));
    assert_eq!(saw.1, Some(close::UNSUPPORTED_PROTOCOL));
    Ok(())
}

#[actix_rt::test]
async fn a_page_on_another_site_cannot_open_a_websocket_with_a_visitors_session() -> anyhow::Result<()> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let m = meeting().await?;
    let before = m.head().await?;
    let upgrade = |origin: &str| {
        let mut request = m.ws().into_client_request().expect("a ws URL");
        request.headers_mut().insert("Origin", origin.parse().expect("a header value"));
        tokio_tungstenite::connect_async(request)
    };

    // Another site's page: refused before any WebSocket exists, with the reason.
    match upgrade("https://evil.example").await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403);
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).into_owned();
            assert!(body.contains("origin is not allowed"), "{body}");
        }
        Ok(_) => anyhow::bail!("a foreign origin opened a WebSocket"),
        Err(other) => anyhow::bail!("expected an HTTP refusal, got {other}"),
    }

    // The service's own pages may, and then still need a token.
    let own = m.room.server.url.clone();
    let (mut socket, _) = upgrade(&own).await?;
    futures_util::SinkExt::close(&mut socket).await?;
    assert_eq!(m.head().await?, before, "nothing changed");
    Ok(())
}

#[actix_rt::test]
async fn a_flood_of_messages_closes_the_connection_with_a_clear_code_and_the_meeting_goes_on() -> anyhow::Result<()> {
    use minim_shared::wire::{ClientMessage, MESSAGE_BURST};
    let mut m = meeting().await?;
    let before = m.head().await?;
    // Far more than the burst, as fast as the socket takes them; half of them commands.
    for id in 0..u64::from(MESSAGE_BURST) * 3 {
        let message = if id % 2 == 0 {
            ClientMessage::Ping { id }
        } else {
            ClientMessage::Command { id, command: Command::PlaceVote { topic: TopicId(1) } }
        };
        if m.participant.send_raw(serde_json::to_string(&message)?).await.is_err() {
            break; // already closed
        }
    }
    let (code, reason) = m.participant.closed().await?;
    assert_eq!(code, close::TOO_MANY, "{reason}");
    let error = m.participant.received.iter().find_map(|msg| match msg {
        ServerMessage::Error { code, message } => Some((*code, message.clone())),
        _ => None,
    });
    let (error, message) = error.expect("an error before the close");
    assert_eq!(error, ErrorCode::TooMany);
    assert!(message.contains("Too many messages"), "{message}");

    // Only what was admitted before the flood was cut off happened: at most the vote budget.
    let (_, view) = m.room.facilitator("Facilitator").await?;
    let votes: u32 = view.board.topics.values().map(|t| t.votes).sum();
    assert!(votes <= Settings::default().votes_per_person, "{votes} votes");
    assert!(m.head().await? >= before);
    // The others' meeting goes on, and the flooder can come back.
    m.facilitator.ok(Command::AddTopic { text: Private::new("after the flood") }).await?;
    Client::connect(&m.ws(), &m.participant_token, None).await?;
    Ok(())
}

#[actix_rt::test]
async fn one_address_cannot_open_more_than_its_share_of_connections() -> anyhow::Result<()> {
    let room = TestBoard::open_with(&["--max-connections-per-address", "3"], "Limits", Settings::default()).await?;
    let (_, first) = room.facilitator("Facilitator").await?;
    let (p, _second) = room.participant("Participant").await?;
    let _third = Client::connect(&room.ws(), &p.token, None).await?;

    // The fourth from the same address is refused before it becomes a WebSocket.
    match tokio_tungstenite::connect_async(room.ws()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).into_owned();
            assert!(body.contains("too_many") && body.contains("Too many connections"), "{body}");
        }
        Ok(_) => anyhow::bail!("a fourth connection was let in"),
        Err(other) => anyhow::bail!("expected an HTTP refusal, got {other}"),
    }

    // A closed connection frees its place.
    first.close().await;
    let deadline = tokio::time::Instant::now() + minim_tests::PATIENCE;
    loop {
        match Client::connect(&room.ws(), &p.token, None).await {
            Ok(_) => break,
            // The server notices the close a moment after the client sends it.
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e.context("the freed place was never given back")),
        }
    }
    Ok(())
}

#[actix_rt::test]
async fn a_live_connection_is_closed_when_its_session_ends() -> anyhow::Result<()> {
    let room = TestBoard::open_with(&["--session-ttl", "2s"], "Short sessions", Settings::default()).await?;
    let (joined, mut participant) = room.participant("Participant").await?;
    let ends_at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(joined.expires_at);
    assert!(ends_at <= std::time::SystemTime::now() + std::time::Duration::from_secs(3), "a 2 s session");

    // Nothing to do with activity: the connection is closed when the token's time is up.
    let (code, reason) = participant.closed().await?;
    assert_eq!(code, close::UNAUTHORIZED, "{reason}");
    assert!(std::time::SystemTime::now() + std::time::Duration::from_millis(500) >= ends_at, "not early");
    let ended = participant.received.iter().any(|m| {
        matches!(m, ServerMessage::Error { code: ErrorCode::Unauthorized, message } if message.contains("session has ended"))
    });
    assert!(ended, "told why: {:?}", participant.received.last());
    Ok(())
}

#[actix_rt::test]
async fn someone_the_facilitator_removes_is_disconnected_and_their_session_stops_working() -> anyhow::Result<()> {
    let mut m = meeting().await?;
    let (_, mut other) = m.room.participant("Other").await?;
    let removed = match m.participant.identity {
        minim_shared::wire::Identity::Person { person, .. } => person,
        _ => anyhow::bail!("a participant is a person"),
    };

    // Only the facilitator may, and only someone else.
    let refusal = other.refused(Command::RemovePerson { person: removed }).await?;
    assert_eq!(refusal.code, ErrorCode::Rule(RejectCode::Forbidden));
    let seq = m.facilitator.ok(Command::RemovePerson { person: removed }).await?;

    // Their connection is closed, with the reason; everyone else sees them gone.
    let (code, reason) = m.participant.closed().await?;
    assert_eq!(code, close::UNAUTHORIZED, "{reason}");
    other.sync_to(seq).await?;
    assert!(!other.board.people.contains_key(&removed));

    // Their token no longer opens the board.
    assert_eq!(refused_at_hello(&m.ws(), &m.participant_token).await?, ErrorCode::Unauthorized);
    // The meeting goes on for the others.
    let seq = other.ok(Command::AddTopic { text: Private::new("still here") }).await?;
    m.facilitator.sync_to(seq).await?;
    Ok(())
}

#[actix_rt::test]
async fn after_a_handover_the_old_facilitator_and_the_facilitator_link_lose_the_role() -> anyhow::Result<()> {
    let mut m = meeting().await?;
    let (fran, ana) = match (m.facilitator.identity, m.participant.identity) {
        (
            minim_shared::wire::Identity::Person { person: f, .. },
            minim_shared::wire::Identity::Person { person: a, .. },
        ) => (f, a),
        _ => anyhow::bail!("people"),
    };
    let seq = m.facilitator.ok(Command::HandOver { to: ana }).await?;
    m.participant.sync_to(seq).await?;
    assert_eq!(m.participant.board.facilitator(), Some(ana));

    // The new facilitator facilitates; the old one cannot any more.
    m.participant.ok(Command::ChangePhase { to: Phase::Voting }).await?;
    let refusal = m.facilitator.refused(Command::ChangePhase { to: Phase::Gathering }).await?;
    assert_eq!(refusal.code, ErrorCode::Rule(RejectCode::Forbidden));

    // Reconnecting, each is welcomed in their new role, whatever their token says.
    let again = Client::connect(&m.ws(), &m.participant_token, None).await?;
    assert_eq!(
        again.identity,
        minim_shared::wire::Identity::Person { person: ana, role: minim_shared::Role::Facilitator }
    );
    let f = m.facilitator.token.clone();
    let old = Client::connect(&m.ws(), &f, None).await?;
    assert_eq!(
        old.identity,
        minim_shared::wire::Identity::Person { person: fran, role: minim_shared::Role::Participant }
    );

    // Whoever holds the facilitator link is no longer the facilitator: the link stops working.
    let link = &m.room.created.links.facilitator;
    let refused = m.room.server.api().try_join(&m.room.created.board, link, "Fran").await?.expect_err("retired");
    assert_eq!((refused.status, refused.code), (403, ErrorCode::Unauthorized));
    Ok(())
}

#[actix_rt::test]
async fn the_facilitator_replaces_the_participant_link_and_the_old_one_stops_working() -> anyhow::Result<()> {
    let mut m = meeting().await?;
    let (board, api) = (m.room.created.board.clone(), m.room.server.api());
    let old = m.room.created.links.participant.clone();
    let facilitator_token = m.facilitator.token.clone();

    // Only the facilitator's session may.
    let refused = api.new_participant_link(&board, &m.participant_token).await?.expect_err("a participant");
    assert_eq!((refused.status, refused.code), (422, ErrorCode::Rule(RejectCode::Forbidden)));
    let refused = api.new_participant_link(&board, "not.a.token").await?.expect_err("forged");
    assert_eq!((refused.status, refused.code), (401, ErrorCode::Unauthorized));

    let new = api.new_participant_link(&board, &facilitator_token).await?.expect("the facilitator's");
    assert_ne!(new, old);
    assert!(new.starts_with(&format!("{}/b/{board}#k=", m.room.server.url)), "{new}");

    // The old link no longer lets anyone in; the new one does; who is on the board stays.
    let refused = api.try_join(&board, &old, "Latecomer").await?.expect_err("the old link");
    assert_eq!((refused.status, refused.code), (403, ErrorCode::Unauthorized));
    let joined = api.join(&board, &new, "Newcomer").await?;
    Client::connect(&m.ws(), &joined.token, None).await?;
    let seq = m.participant.ok(Command::AddTopic { text: Private::new("still on the board") }).await?;
    m.facilitator.sync_to(seq).await?;
    // Nobody learns the new key from the board: the event only says it happened.
    let rotated = m.facilitator.received.iter().any(|msg| {
        matches!(msg, ServerMessage::Event(e) if e.event == minim_shared::Event::ParticipantLinkRotated { key_sha256: None })
    });
    assert!(rotated, "everyone sees that the link was replaced");
    Ok(())
}

#[actix_rt::test]
async fn tokens_signed_with_the_real_secret_but_wrong_in_any_claim_or_algorithm_are_refused() -> anyhow::Result<()> {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    let m = meeting().await?;
    let ws = m.ws();
    // The server's own secret, as an attacker who stole it would have it: only the checks stand.
    let secret = hex::decode(std::fs::read_to_string(m.room.dir.path().join("secret.key"))?.trim())?;
    let key = EncodingKey::from_secret(&secret);
    let payload = m.participant_token.split('.').nth(1).expect("payload");
    let genuine: serde_json::Value = serde_json::from_slice(&B64.decode(payload)?)?;
    let sign = |alg: Algorithm, change: &dyn Fn(&mut serde_json::Value)| {
        let mut claims = genuine.clone();
        change(&mut claims);
        encode(&Header::new(alg), &claims, &key).expect("signing")
    };

    // The control: re-signed unchanged, it is accepted (so the refusals below are the checks').
    Client::connect(&ws, sign(Algorithm::HS256, &|_| {}), None).await?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let wrong: [(&str, String); 6] = [
        ("another audience", sign(Algorithm::HS256, &|c| c["aud"] = "another-app".into())),
        ("another issuer", sign(Algorithm::HS256, &|c| c["iss"] = "mallory".into())),
        ("expired beyond the leeway", sign(Algorithm::HS256, &|c| c["exp"] = (now - 120).into())),
        ("no expiry", sign(Algorithm::HS256, &|c| drop(c.as_object_mut().map(|o| o.remove("exp"))))),
        ("another algorithm (HS512)", sign(Algorithm::HS512, &|_| {})),
        ("another algorithm (HS384)", sign(Algorithm::HS384, &|_| {})),
    ];
    for (what, token) in wrong {
        assert_eq!(refused_at_hello(&ws, &token).await?, ErrorCode::Unauthorized, "{what}");
    }
    Ok(())
}
