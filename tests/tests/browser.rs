//! The browser app in real headless Chromium against a real `minim`: a facilitator and two
//! participants in separate browsers run a short meeting while the room's projector follows;
//! reloads, a cut network and hostile topic text.

use minim_tests::browser::{Browser, Driver};
use minim_tests::proxy::Proxy;
use minim_tests::{Server, web_dir};
use std::time::Duration;

const XSS: &str = "<script>alert(1)</script><img src=x onerror=alert(1)>";

fn check_app_is_built() {
    assert!(
        web_dir().join("index.html").exists() && web_dir().join("minim_bg.wasm").exists(),
        "the browser app is not built in {}: run scripts/build-client (scripts/test does)",
        web_dir().display()
    );
}

/// Opens a link and joins with `name` (if the page asks for one); waits for the board.
async fn join(browser: &Browser, link: &str, name: &str) -> anyhow::Result<()> {
    browser.open(link).await?;
    browser.fill("[data-test=display-name]", name).await?;
    browser.click("[data-test=join]").await?;
    browser.find("[data-test=board]").await?;
    browser.until_attr("[data-test=connection]", "data-state", "connected", |s| s == "connected").await
}

async fn add_topic(browser: &Browser, text: &str) -> anyhow::Result<()> {
    browser.fill("[data-test=new-topic]", text).await?;
    browser.click("[data-test=add-topic]").await?;
    browser.until_text("[data-test=topic-text]", &format!("own topic {text:?} shown"), |t| t == text).await
}

async fn click_in_topic(browser: &Browser, topic_text: &str, button: &str) -> anyhow::Result<()> {
    let id = browser.topic_id(topic_text).await?;
    browser.click(&format!("[data-test=topic][data-topic-id='{id}'] [data-test={button}]")).await
}

async fn countdown_ms(browser: &Browser) -> anyhow::Result<u64> {
    let ms = browser.attr("[data-test=countdown]", "data-remaining-ms").await?;
    ms.and_then(|v| v.parse().ok()).ok_or_else(|| anyhow::anyhow!("countdown without data-remaining-ms"))
}

#[actix_rt::test]
async fn a_remote_group_runs_a_meeting_in_real_browsers() -> anyhow::Result<()> {
    check_app_is_built();
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path())?;
    let driver = Driver::start().await?;
    let (fay, bo, cy, room) =
        (driver.browser().await?, driver.browser().await?, driver.browser().await?, driver.browser().await?);

    let settings = minim_shared::Settings { timebox_ms: 3_000, ..Default::default() };
    let created = server.api().create_board("Thursday Mini-M", settings).await?;
    let (participant_link, projector_link) = (&created.links.participant, &created.links.projector);
    join(&fay, &created.links.facilitator, "Fay").await?;
    fay.find("[data-test=facilitator-controls]").await?;
    join(&bo, participant_link, "Bo").await?;
    join(&cy, participant_link, "Cy").await?;
    room.open(projector_link).await?;
    room.find("[data-test=projector]").await?;
    assert!(!bo.exists("[data-test=facilitator-controls]").await?, "participants get no facilitator controls");

    // Everyone adds topics at once; they appear on every screen; the hostile one is just text.
    add_topic(&fay, "Skip-level bypasses me").await?;
    add_topic(&bo, "Team burning out").await?;
    add_topic(&cy, XSS).await?;
    for screen in [&fay, &bo, &cy, &room] {
        for text in ["Skip-level bypasses me", "Team burning out", XSS] {
            screen.until_text("[data-test=topic-text]", &format!("{text:?} everywhere"), |t| t == text).await?;
        }
        assert!(!screen.alert_open().await, "the script in a topic never runs");
    }
    let injected = cy
        .script("return document.querySelectorAll('[data-test=topic-text] img, [data-test=topic-text] script').length")
        .await?;
    assert_eq!(injected, 0, "no element was created from topic text");

    // Voting: three votes each, never more.
    fay.click("[data-test=phase-next]").await?;
    for screen in [&bo, &cy] {
        screen.until_attr("[data-test=board]", "data-phase", "voting", |p| p == "voting").await?;
    }
    for _ in 0..3 {
        click_in_topic(&bo, "Team burning out", "vote").await?;
    }
    bo.until_text("[data-test=votes-left]", "no votes left", |t| t.contains('0')).await?;
    let fourth = bo.all("[data-test=vote]").await?;
    let mut refused = false;
    for button in fourth {
        if button.is_enabled().await? {
            button.click().await?;
            bo.until_text("[data-test=error]", "the over-budget message", |t| t.contains("votes")).await?;
            refused = true;
            break;
        }
    }
    let id = bo.topic_id("Team burning out").await?;
    bo.until_text(&format!("[data-test=topic][data-topic-id='{id}'] [data-test=my-votes]"), "3 votes", |t| {
        t.contains('3')
    })
    .await?;
    eprintln!("fourth vote: {}", if refused { "refused by the server" } else { "buttons disabled" });
    click_in_topic(&cy, "Skip-level bypasses me", "vote").await?;
    click_in_topic(&fay, "Skip-level bypasses me", "vote").await?;

    // Discussing: the top topic is current on every screen, and every screen counts down.
    fay.click("[data-test=phase-next]").await?;
    for screen in [&fay, &bo, &cy] {
        let what = "the top topic under discussion";
        screen
            .until_text("[data-test=column-discussing] [data-test=topic-text]", what, |t| t == "Team burning out")
            .await?;
    }
    fay.click("[data-test=start-timer]").await?;
    let mut remaining = vec![];
    for screen in [&fay, &bo, &cy, &room] {
        screen.find("[data-test=countdown]").await?;
        screen
            .until_attr("[data-test=countdown]", "data-remaining-ms", "a running countdown", |v| {
                v.parse::<u64>().is_ok_and(|ms| ms > 0)
            })
            .await?;
        remaining.push(countdown_ms(screen).await?);
    }
    let spread = remaining.iter().max().unwrap() - remaining.iter().min().unwrap();
    assert!(spread < 2_000, "every screen counts down to the same deadline: {remaining:?}");

    // Time is up: the check-in reaches every participant, and the tally reaches everyone.
    for screen in [&fay, &bo, &cy] {
        screen.find("[data-test=check-in] [data-test=answer-up]").await?;
    }
    bo.click("[data-test=answer-up]").await?;
    cy.click("[data-test=answer-down]").await?;
    fay.click("[data-test=answer-down]").await?;
    for screen in [&fay, &bo, &cy, &room] {
        screen.until_text("[data-test=tally-up]", "1 up", |t| t.contains('1')).await?;
        screen.until_text("[data-test=tally-down]", "2 down", |t| t.contains('2')).await?;
    }

    // A takeaway and an action item for Bo; move on and wrap up.
    fay.fill("[data-test=takeaway]", "Ask for a contractor budget").await?;
    fay.click("[data-test=save-takeaway]").await?;
    fay.fill("[data-test=action-text]", "Draft the budget ask").await?;
    let owner = fay
        .script("const o=[...document.querySelectorAll('[data-test=action-owner] option')].find(o=>o.textContent.includes('Bo')); return o ? o.value : null")
        .await?;
    let owner = owner.as_str().ok_or_else(|| anyhow::anyhow!("Bo is not a possible owner"))?.to_owned();
    fay.script(&format!(
        "const s=document.querySelector('[data-test=action-owner]'); s.value='{owner}'; s.dispatchEvent(new Event('change', {{bubbles:true}})); s.dispatchEvent(new Event('input', {{bubbles:true}}));"
    ))
    .await?;
    fay.click("[data-test=add-action]").await?;
    for screen in [&bo, &cy] {
        screen
            .until_text("[data-test=action-item]", "the action item everywhere", |t| t.contains("Draft the budget ask"))
            .await?;
    }
    fay.click("[data-test=move-on]").await?;
    fay.click("[data-test=phase-next]").await?;
    fay.find("[data-test=wrap-up]").await?;
    let markdown = fay
        .web
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(document.querySelector('[data-test=download-markdown]').href).then(r => r.text()).then(done, e => done('ERROR ' + e));",
            vec![],
        )
        .await?;
    let markdown = markdown.as_str().unwrap_or_default();
    assert!(
        markdown.contains("Team burning out") && markdown.contains("Draft the budget ask") && markdown.contains("Bo"),
        "{markdown}"
    );
    assert!(markdown.contains("Ask for a contractor budget"), "{markdown}");

    // The projector followed along and never offered a control.
    room.until_attr("[data-test=projector]", "data-phase", "wrap-up on the projector", |p| p == "wrap_up").await?;
    assert!(
        !room.exists("button, input, textarea, select, [data-test=facilitator-controls]").await?,
        "the projector has no controls"
    );
    for screen in [&fay, &bo, &cy, &room] {
        assert!(!screen.alert_open().await);
    }
    let logs = server.logs().join("\n");
    assert!(!logs.contains("burning out") && !logs.contains("Draft the budget"), "topic text reached the log");
    for b in [fay, bo, cy, room] {
        b.close().await;
    }
    Ok(())
}

#[actix_rt::test]
async fn a_facilitator_creates_a_board_from_the_start_page() -> anyhow::Result<()> {
    check_app_is_built();
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path())?;
    let driver = Driver::start().await?;
    let fay = driver.browser().await?;
    fay.open(&server.url).await?;
    fay.fill("[data-test=board-title]", "Thursday Mini-M").await?;
    fay.fill("[data-test=votes-per-person]", "2").await?;
    fay.fill("[data-test=max-votes-per-topic]", "2").await?;
    fay.fill("[data-test=timebox-minutes]", "0.5").await?;
    fay.click("[data-test=create-board]").await?;
    let links = [
        fay.text("[data-test=facilitator-link]").await?,
        fay.text("[data-test=participant-link]").await?,
        fay.text("[data-test=projector-link]").await?,
    ];
    for link in &links {
        assert!(link.starts_with(&server.url) && link.contains("/b/") && link.contains("#k="), "{link}");
    }
    let modules = fay.script("return document.querySelectorAll('svg[data-test=qr] *').length").await?;
    assert!(modules.as_u64().unwrap_or(0) > 0, "the QR code is drawn");
    fay.click("[data-test=open-facilitator]").await?;
    fay.fill("[data-test=display-name]", "Fay").await?;
    fay.click("[data-test=join]").await?;
    fay.find("[data-test=facilitator-controls]").await?;
    fay.until_text("[data-test=phase]", "the board's phase", |t| !t.is_empty()).await?;
    // The settings chosen on the start page are the board's: two votes each.
    add_topic(&fay, "Settings check").await?;
    fay.click("[data-test=phase-next]").await?;
    fay.until_text("[data-test=votes-left]", "2 votes to place", |t| t.contains('2')).await?;

    // A link shared too widely is replaced: the old one stops working.
    fay.click("[data-test=new-participant-link]").await?;
    let question = fay.confirm_dialog().await?;
    assert!(question.starts_with("Replace the participant link?"), "{question}");
    let new = fay.text("[data-test=participant-link]").await?;
    assert!(new.starts_with(&server.url) && new != links[1], "{new}");
    let board = minim_shared::BoardId(links[1].split("/b/").nth(1).and_then(|r| r.split('#').next()).unwrap().into());
    let refused = server.api().try_join(&board, &links[1], "Late").await?.expect_err("the old link");
    assert_eq!(refused.status, 403);
    server.api().join(&board, &new, "On time").await?;
    fay.close().await;
    Ok(())
}

#[actix_rt::test]
async fn the_projector_curtain_hides_and_restores_the_board() -> anyhow::Result<()> {
    check_app_is_built();
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path())?;
    let created = server.api().create_board("Curtain", minim_shared::Settings::default()).await?;
    let driver = Driver::start().await?;
    let room = driver.browser().await?;
    room.open(&created.links.projector).await?;
    room.find("[data-test=projector]").await?;
    room.until_attr("[data-test=curtain]", "data-state", "curtain open", |s| s == "off").await?;
    let body = room.find("body").await?;
    body.send_keys("b").await?;
    room.until_attr("[data-test=curtain]", "data-state", "curtain closed by key", |s| s == "on").await?;
    body.send_keys("b").await?;
    room.until_attr("[data-test=curtain]", "data-state", "curtain opened by key", |s| s == "off").await?;
    room.click("[data-test=projector]").await?;
    room.until_attr("[data-test=curtain]", "data-state", "curtain closed by click", |s| s == "on").await?;
    room.click("[data-test=curtain]").await?;
    room.until_attr("[data-test=curtain]", "data-state", "curtain opened by click", |s| s == "off").await?;
    room.close().await;
    Ok(())
}

#[actix_rt::test]
async fn a_reload_keeps_identity_and_votes_and_a_cut_network_catches_up() -> anyhow::Result<()> {
    check_app_is_built();
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path())?;
    let created = server.api().create_board("Reconnect", minim_shared::Settings::default()).await?;
    let proxy = Proxy::start(server.addr()).await?;
    let driver = Driver::start().await?;
    let (fay, bo) = (driver.browser().await?, driver.browser().await?);
    join(&fay, &created.links.facilitator, "Fay").await?;
    // Bo reaches the server through a link the test can cut.
    join(&bo, &proxy.url_for(&created.links.participant), "Bo").await?;
    add_topic(&fay, "First").await?;
    add_topic(&bo, "Second").await?;
    fay.click("[data-test=phase-next]").await?;
    bo.until_attr("[data-test=board]", "data-phase", "voting", |p| p == "voting").await?;
    click_in_topic(&bo, "First", "vote").await?;
    click_in_topic(&bo, "First", "vote").await?;
    let id = bo.topic_id("First").await?;
    let my_votes = format!("[data-test=topic][data-topic-id='{id}'] [data-test=my-votes]");
    bo.until_text(&my_votes, "2 votes", |t| t.contains('2')).await?;

    // Reload: same person, same votes, no join form.
    bo.web.refresh().await?;
    bo.find("[data-test=board]").await?;
    assert!(!bo.exists("[data-test=display-name]").await?, "no second join");
    bo.until_text(&my_votes, "still 2 votes after reload", |t| t.contains('2')).await?;
    bo.until_text("[data-test=votes-left]", "1 vote left", |t| t.contains('1')).await?;
    bo.until_text("[data-test=topic-text]", "still knows its own topic", |t| t == "Second").await?;

    // The network to Bo goes down; the meeting goes on; it comes back and Bo catches up.
    proxy.cut();
    bo.until_attr("[data-test=connection]", "data-state", "shows it is offline", |s| s != "connected").await?;
    fay.click("[data-test=phase-next]").await?;
    fay.click("[data-test=start-timer]").await?;
    let head = fay.seq().await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.restore();
    bo.until_attr("[data-test=connection]", "data-state", "reconnected", |s| s == "connected").await?;
    bo.until_seq(head).await?;
    bo.until_attr("[data-test=board]", "data-phase", "discussing after catching up", |p| p == "discussing").await?;
    bo.find("[data-test=countdown]").await?;
    fay.close().await;
    bo.close().await;
    Ok(())
}

#[actix_rt::test]
async fn the_facilitator_removes_someone_hands_over_and_the_new_one_deletes_the_board() -> anyhow::Result<()> {
    check_app_is_built();
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path())?;
    let driver = Driver::start().await?;
    let (fay, bo, cy) = (driver.browser().await?, driver.browser().await?, driver.browser().await?);
    let created = server.api().create_board("Thursday Mini-M", minim_shared::Settings::default()).await?;
    join(&fay, &created.links.facilitator, "Fay").await?;
    join(&bo, &created.links.participant, "Bo").await?;
    join(&cy, &created.links.participant, "Cy").await?;
    fay.until("Fay sees three people", || async { Ok(fay.all("[data-test=person]").await?.len() == 3) }).await?;

    // Fay takes Cy off the board, after confirming; nobody else has a Remove button.
    assert!(!bo.exists("[data-test=remove-person]").await?, "only the facilitator may remove people");
    let mut removed = false;
    for person in fay.all("[data-test=person]").await? {
        if person.text().await?.contains("Cy") {
            person.find(fantoccini::Locator::Css("[data-test=remove-person]")).await?.click().await?;
            removed = true;
        }
    }
    assert!(removed, "Cy has a Remove button");
    let question = fay.confirm_dialog().await?;
    assert!(question.starts_with("Remove this person from the board?"), "{question}");
    cy.until("Cy is told", || async { Ok(cy.page_text().await?.contains("no longer on this board")) }).await?;
    fay.until("Cy is gone from the list", || async { Ok(fay.all("[data-test=person]").await?.len() == 2) }).await?;

    // Fay hands the role to Bo: Bo gets the controls, Fay loses them.
    assert!(!bo.exists("[data-test=facilitator-controls]").await?);
    fay.click("[data-test=hand-over]").await?;
    let question = fay.confirm_dialog().await?;
    assert!(question.starts_with("Make this person the facilitator?"), "{question}");
    bo.find("[data-test=facilitator-controls]").await?;
    fay.until("Fay has no controls", || async { Ok(!fay.exists("[data-test=facilitator-controls]").await?) }).await?;

    // After the wrap-up, Bo deletes the board for everyone.
    add_topic(&bo, "Delegating without losing touch").await?;
    assert!(!bo.exists("[data-test=delete-board]").await?, "not during the meeting");
    for phase in ["voting", "discussing", "wrap_up"] {
        bo.click("[data-test=phase-next]").await?;
        bo.until_attr("[data-test=board]", "data-phase", phase, |p| p == phase).await?;
    }
    bo.click("[data-test=delete-board]").await?;
    let question = bo.confirm_dialog().await?;
    assert!(question.contains("cannot be undone"), "{question}");
    for screen in [&fay, &bo] {
        screen
            .until("the screen says so", || async { Ok(screen.page_text().await?.contains("This board was deleted.")) })
            .await?;
    }
    let refused = server.api().try_join(&created.board, &created.links.participant, "Late").await?;
    assert_eq!(refused.expect_err("deleted").status, 410);
    Ok(())
}
