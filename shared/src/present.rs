//! Presentation logic for the browser app, kept pure so it is tested natively: countdown math and
//! its spoken announcements, the clock-offset estimator, reconnect backoff, the board's columns,
//! name look-ups, what a viewer may do or see, link parsing, and the Markdown wrap-up export.
//!
//! Nothing here touches a clock, the DOM or randomness: time, jitter and dates come in as
//! arguments. The browser calls these and renders the results; the rules themselves stay in
//! [`crate::decide`], which [`allowed`] reuses so the buttons offered match what the server accepts.

use crate::board::{Board, Person, Topic, TopicStatus};
use crate::event::{Answer, Phase, Role, Timer};
use crate::ids::{PersonId, TopicId, UnixMillis};
use std::collections::VecDeque;
use std::fmt::Write as _;

// ----- Time: the countdown and the clock offset -----

/// The server's clock now, estimated from the local clock and the offset (server − local).
pub fn server_now(local_now_ms: u64, offset_ms: i64) -> UnixMillis {
    UnixMillis(local_now_ms.saturating_add_signed(offset_ms))
}

/// Milliseconds left on `timer`, never negative: counts down to the absolute deadline as corrected
/// by the clock offset; a paused timer shows what was left, an idle one the whole timebox, an
/// expired one zero.
pub fn remaining_ms(timer: &Timer, timebox_ms: u64, local_now_ms: u64, offset_ms: i64) -> u64 {
    match *timer {
        Timer::Running { deadline } => server_now(local_now_ms, offset_ms).until(deadline),
        Timer::Paused { remaining_ms } => remaining_ms,
        Timer::Idle => timebox_ms,
        Timer::Expired => 0,
    }
}

/// `m:ss`, rounding up to the whole second so the display reads `0:00` exactly when time is up.
pub fn format_clock(ms: u64) -> String {
    let secs = ms.div_ceil(1000);
    format!("{}:{:02}", secs / 60, secs % 60)
}

/// A duration in words for screen readers: "4 minutes", "1 minute 30 seconds", "30 seconds".
pub fn spoken_duration(ms: u64) -> String {
    let secs = ms.div_ceil(1000);
    let (m, s) = (secs / 60, secs % 60);
    let unit = |n: u64, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
    match (m, s) {
        (0, s) => unit(s, "second"),
        (m, 0) => unit(m, "minute"),
        (m, s) => format!("{} {}", unit(m, "minute"), unit(s, "second")),
    }
}

/// How many round trips the clock estimator remembers.
pub const CLOCK_SAMPLES: usize = 8;

/// One ping/pong measurement.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ClockSample {
    pub round_trip_ms: u64,
    /// Server clock minus local clock.
    pub offset_ms: i64,
}

/// Estimates the offset between the server's clock and this one, NTP-style: each ping/pong gives
/// `offset = server_time − (sent + received) / 2`; the sample with the shortest round trip among
/// the last [`CLOCK_SAMPLES`] is trusted most, because its midpoint is the least uncertain.
#[derive(Clone, Debug, Default)]
pub struct ClockSync {
    samples: VecDeque<ClockSample>,
}

impl ClockSync {
    pub fn new() -> ClockSync {
        ClockSync::default()
    }

    /// Records a pong: the ping left at local `sent_ms`, the pong arrived at local `received_ms`,
    /// and carried the server's `server_time`. Samples with the clock going backwards are ignored.
    pub fn add(&mut self, sent_ms: u64, received_ms: u64, server_time: UnixMillis) {
        let Some(round_trip_ms) = received_ms.checked_sub(sent_ms) else {
            return;
        };
        let midpoint = sent_ms as i128 + round_trip_ms as i128 / 2;
        let offset_ms = (server_time.0 as i128 - midpoint).clamp(i64::MIN as i128, i64::MAX as i128) as i64;
        if self.samples.len() == CLOCK_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back(ClockSample { round_trip_ms, offset_ms });
    }

    /// The best sample so far, if any.
    pub fn best(&self) -> Option<ClockSample> {
        self.samples.iter().copied().min_by_key(|s| s.round_trip_ms)
    }

    /// Server clock minus local clock, in milliseconds (zero before the first pong).
    pub fn offset_ms(&self) -> i64 {
        self.best().map_or(0, |s| s.offset_ms)
    }
}

/// The first reconnect delay.
pub const BACKOFF_START_MS: u64 = 500;
/// The longest reconnect delay.
pub const BACKOFF_MAX_MS: u64 = 10_000;

/// How long to wait before reconnect attempt number `attempt` (0 for the first): 0.5 s doubling to
/// 10 s, shortened by up to a quarter by `jitter` (a random number in `0..1`) so that a room full
/// of laptops does not reconnect in lockstep after a server restart.
pub fn backoff_ms(attempt: u32, jitter: f64) -> u64 {
    let base = BACKOFF_START_MS.saturating_mul(1u64 << attempt.min(20)).min(BACKOFF_MAX_MS);
    let cut = (base as f64 * 0.25 * jitter.clamp(0.0, 1.0)) as u64;
    base - cut
}

/// What the timer's screen-reader companion says, and only at moments that matter: when the timer
/// starts, resumes or pauses, at each whole minute, at 30 seconds left and when time is up. Feed it
/// every tick; it remembers the previous one.
#[derive(Clone, Debug, Default)]
pub struct Announcer {
    last: Option<(Timer, u64)>,
}

impl Announcer {
    pub fn new() -> Announcer {
        Announcer::default()
    }

    /// The sentence to announce for this tick, if this tick is a meaningful moment.
    pub fn tick(&mut self, timer: &Timer, remaining_ms: u64) -> Option<String> {
        let last = self.last.replace((*timer, remaining_ms));
        let secs = remaining_ms.div_ceil(1000);
        match (last.map(|(t, ms)| (t, ms.div_ceil(1000))), timer) {
            // The first tick only sets the scene: someone opening the page mid-timebox is told once.
            (None, Timer::Running { .. }) => Some(format!("{} left.", spoken_duration(remaining_ms))),
            (None, _) => None,
            (Some((Timer::Running { .. }, before)), Timer::Running { .. }) => {
                if secs > before {
                    Some(format!("Extended: {} left.", spoken_duration(remaining_ms)))
                } else if secs == 0 || secs == before {
                    None
                } else if before > 30 && secs <= 30 && secs > 0 && !secs.is_multiple_of(60) {
                    Some("30 seconds left.".into())
                } else if secs / 60 < before.div_ceil(60) && secs.is_multiple_of(60) {
                    Some(format!("{} left.", spoken_duration(remaining_ms)))
                } else {
                    None
                }
            }
            (Some((Timer::Paused { .. }, _)), Timer::Running { .. }) => {
                Some(format!("Timer resumed: {} left.", spoken_duration(remaining_ms)))
            }
            (Some(_), Timer::Running { .. }) => Some(format!("Timer started: {}.", spoken_duration(remaining_ms))),
            (Some((Timer::Paused { .. }, _)), Timer::Paused { .. }) => None,
            (Some(_), Timer::Paused { .. }) => {
                Some(format!("Timer paused with {} left.", spoken_duration(remaining_ms)))
            }
            (Some((Timer::Expired, _)), Timer::Expired) => None,
            (Some(_), Timer::Expired) => Some("Time is up. Check in: keep going, either way, or move on.".into()),
            (Some((Timer::Idle, _)), Timer::Idle) => None,
            (Some(_), Timer::Idle) => Some("Timer stopped.".into()),
        }
    }
}

// ----- The board as the views show it -----

/// Human names of the phases, for headings.
pub fn phase_title(phase: Phase) -> &'static str {
    match phase {
        Phase::Gathering => "Gathering topics",
        Phase::Voting => "Voting",
        Phase::Discussing => "Discussing",
        Phase::WrapUp => "Wrap-up",
        Phase::Closed => "Closed",
    }
}

/// The phase as the DOM names it (`wrap_up`), the same spelling as on the wire.
pub fn phase_slug(phase: Phase) -> &'static str {
    match phase {
        Phase::Gathering => "gathering",
        Phase::Voting => "voting",
        Phase::Discussing => "discussing",
        Phase::WrapUp => "wrap_up",
        Phase::Closed => "closed",
    }
}

/// One sentence telling a person what to do now.
pub fn phase_hint(phase: Phase, facilitator: bool) -> &'static str {
    match (phase, facilitator) {
        (Phase::Gathering, false) => "Add the topics you would like to talk about. Nobody sees who wrote what.",
        (Phase::Gathering, true) => "Everyone adds topics. Start voting when the ideas slow down.",
        (Phase::Voting, _) => "Place your votes on the topics you most want to discuss.",
        (Phase::Discussing, false) => "Topics are discussed in vote order, one timebox at a time.",
        (Phase::Discussing, true) => "Start the timer, and check in with the group when time is up.",
        (Phase::WrapUp, _) => "Review the takeaways and action items.",
        (Phase::Closed, _) => "The meeting is closed. Thank you!",
    }
}

/// The three columns of the board, as topic ids in display order.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Columns {
    /// Waiting, in discussion order ([`Board::queue`]).
    pub todo: Vec<TopicId>,
    /// Under discussion now.
    pub current: Option<TopicId>,
    /// Discussed, see [`discussed_in_order`].
    pub done: Vec<TopicId>,
}

pub fn columns(board: &Board) -> Columns {
    Columns {
        todo: board.queue().iter().map(|t| t.id).collect(),
        current: board.current_topic(),
        done: discussed_in_order(board).iter().map(|t| t.id).collect(),
    }
}

/// Discussed topics in the order they were discussed.
pub fn discussed_in_order(board: &Board) -> Vec<&Topic> {
    board.discussed()
}

/// Most votes first, older first on ties (ids are unique, so an unstable sort is exact).
fn vote_order(a: &&Topic, b: &&Topic) -> std::cmp::Ordering {
    b.votes.cmp(&a.votes).then(a.id.cmp(&b.id))
}

/// Whether `topic` was written by `me` (only an author's own copy carries the author).
pub fn is_mine(topic: &Topic, me: Option<PersonId>) -> bool {
    me.is_some() && topic.author == me
}

/// A person's display name, or a neutral stand-in for an id the board does not know.
pub fn person_name(board: &Board, id: PersonId) -> &str {
    board.people.get(&id).map_or("Someone", |p| p.name.as_str())
}

/// People for lists and pickers: the facilitator first, then by name (ignoring ASCII case: full
/// Unicode case folding would bring its tables into the browser app), then id.
pub fn people_by_name(board: &Board) -> Vec<&Person> {
    let mut people: Vec<&Person> = board.people.values().collect();
    people.sort_unstable_by_key(|p| (p.role != Role::Facilitator, p.name.to_ascii_lowercase(), p.id));
    people
}

/// Whether `person` may edit or withdraw `topic` now: its author while it waits (gathering or
/// voting), the facilitator any topic they can see. The views offer Edit/Withdraw only then.
///
/// This mirrors the rule in [`crate::decide`] (a test holds the two together) instead of calling
/// it, so that the browser app does not carry every rule and message of the meeting.
pub fn may_change_topic(board: &Board, person: Option<PersonId>, topic: TopicId) -> bool {
    let (Some(person), Some(t)) = (person, board.topics.get(&topic)) else { return false };
    if board.phase == Phase::Closed || !board.people.contains_key(&person) {
        return false;
    }
    if board.is_facilitator(person) {
        return !t.hidden || t.author == Some(person);
    }
    t.author == Some(person)
        && matches!(board.phase, Phase::Gathering | Phase::Voting)
        && t.status == TopicStatus::Queued
}

/// Whether the facilitator may pick `topic` for discussion now (mirrors [`crate::decide`]).
pub fn may_select(board: &Board, topic: TopicId) -> bool {
    board.phase == Phase::Discussing && board.topics.get(&topic).is_some_and(|t| t.status == TopicStatus::Queued)
}

/// The topics `from` could be merged into: visible, not yet discussed, not itself.
pub fn merge_targets(board: &Board, from: TopicId) -> Vec<&Topic> {
    let mut targets: Vec<&Topic> = board
        .topics
        .values()
        .filter(|t| t.id != from && t.text.is_some() && !t.hidden && t.status != TopicStatus::Discussed)
        .collect();
    targets.sort_unstable_by(vote_order);
    targets
}

/// This person's check-in answer, if the check-in is open and they answered.
pub fn my_answer(board: &Board, me: Option<PersonId>) -> Option<Answer> {
    board.check_in.as_ref()?.answers.get(&me?).copied()
}

/// Whether the check-in's counts are shown: always to the facilitator (and the projector), to
/// others once they answered, so nobody is swayed before answering.
pub fn show_tally(board: &Board, me: Option<PersonId>, facilitator: bool) -> bool {
    board.check_in.is_some() && (facilitator || my_answer(board, me).is_some())
}

/// Minutes as typed (`5`, `0.5`, `2,5`) in milliseconds, rounded to the millisecond; `None` when
/// it is not a plain non-negative decimal number.
pub fn parse_minutes(text: &str) -> Option<u64> {
    let text = text.trim();
    let (whole, fraction) = match text.split_once(['.', ',']) {
        Some((w, f)) => (w, f),
        None => (text, ""),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) || whole.len() > 6 {
        return None;
    }
    let whole_ms = if whole.is_empty() { 0 } else { whole.parse::<u64>().ok()? * 60_000 };
    // 60 000 ms per minute: five decimals of a minute are below a millisecond.
    let mut fraction_ms = 0u64;
    let mut scale = 6_000u64;
    for b in fraction.bytes().take(6) {
        fraction_ms += u64::from(b - b'0') * scale;
        scale /= 10;
    }
    Some(whole_ms + fraction_ms)
}

/// Characters still allowed in a field (negative when over).
pub fn chars_left(text: &str, max_chars: usize) -> i64 {
    max_chars as i64 - text.chars().count() as i64
}

// ----- Links -----

/// The board id in a page path `/b/<board>` (a trailing slash is tolerated).
pub fn board_from_path(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/b/")?;
    let id = rest.strip_suffix('/').unwrap_or(rest);
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

/// The link key in a page fragment `#k=<key>` (other `&`-separated parameters are ignored).
pub fn key_from_fragment(fragment: &str) -> Option<&str> {
    let fragment = fragment.strip_prefix('#').unwrap_or(fragment);
    fragment.split('&').find_map(|part| part.strip_prefix("k=")).filter(|k| !k.is_empty())
}

/// The WebSocket address of a board on the page's own host.
pub fn websocket_url(page_protocol: &str, host: &str, board: &str) -> String {
    let scheme = if page_protocol == "https:" { "wss" } else { "ws" };
    format!("{scheme}://{host}/api/boards/{board}/ws")
}

// ----- The wrap-up export -----

/// The calendar date (`YYYY-MM-DD`) of a moment, given the local time zone's offset from UTC
/// in minutes (east positive).
pub fn calendar_date(unix_ms: i64, utc_offset_minutes: i64) -> String {
    let days = (unix_ms + utc_offset_minutes * 60_000).div_euclid(86_400_000);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Escapes what Markdown would otherwise read as markup or raw HTML, so that what people wrote
/// stays text wherever the export is pasted.
fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '|' | '~') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The meeting's wrap-up as Markdown: the title, the date, then each discussed topic in order with
/// its takeaway and its action items (`- [ ] text — owner (due YYYY-MM-DD)`). Authors are never
/// part of it.
pub fn wrap_up_markdown(board: &Board, date: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n\n{date}\n", md(&board.title));
    let topics = discussed_in_order(board);
    if topics.is_empty() {
        out.push_str("No topics were discussed.\n");
    }
    for (n, topic) in topics.iter().enumerate() {
        let text = topic.text.as_deref().map_or_else(|| "(a hidden topic)".to_owned(), md);
        let _ = writeln!(out, "## {}. {text}\n", n + 1);
        match topic.takeaway.as_deref() {
            Some(takeaway) => {
                out.push_str("**Takeaway:**\n\n");
                for line in takeaway.lines() {
                    let _ = writeln!(out, "> {}", md(line));
                }
                out.push('\n');
            }
            None => out.push_str("No takeaway recorded.\n\n"),
        }
        let items: Vec<_> = board.action_items_for(topic.id).collect();
        if !items.is_empty() {
            out.push_str("**Action items:**\n\n");
            for item in items {
                let _ = write!(out, "- [ ] {} — {}", md(&item.text), md(person_name(board, item.owner)));
                if let Some(due) = &item.due {
                    let _ = write!(out, " (due {due})");
                }
                out.push('\n');
            }
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{Actor, Command};
    use crate::decide::decide;
    use crate::settings::Settings;
    use crate::text::Private;

    #[test]
    fn remaining_counts_down_to_the_corrected_deadline_and_never_below_zero() {
        let running = Timer::Running { deadline: UnixMillis(100_000) };
        assert_eq!(remaining_ms(&running, 300_000, 40_000, 0), 60_000);
        // The local clock is 5 s behind the server: 5 s less remain.
        assert_eq!(remaining_ms(&running, 300_000, 40_000, 5_000), 55_000);
        assert_eq!(remaining_ms(&running, 300_000, 40_000, -5_000), 65_000);
        assert_eq!(remaining_ms(&running, 300_000, 200_000, 0), 0);
        assert_eq!(remaining_ms(&Timer::Paused { remaining_ms: 1_234 }, 300_000, 1, 0), 1_234);
        assert_eq!(remaining_ms(&Timer::Idle, 300_000, 1, 0), 300_000);
        assert_eq!(remaining_ms(&Timer::Expired, 300_000, 1, 0), 0);
        assert_eq!(server_now(10, -20), UnixMillis(0), "saturates instead of wrapping");
    }

    #[test]
    fn clock_format_rounds_up_to_whole_seconds() {
        assert_eq!(format_clock(300_000), "5:00");
        assert_eq!(format_clock(299_001), "5:00");
        assert_eq!(format_clock(299_000), "4:59");
        assert_eq!(format_clock(61_000), "1:01");
        assert_eq!(format_clock(1), "0:01");
        assert_eq!(format_clock(0), "0:00");
        assert_eq!(format_clock(3_600_000), "60:00");
    }

    #[test]
    fn durations_are_spoken_in_words() {
        assert_eq!(spoken_duration(300_000), "5 minutes");
        assert_eq!(spoken_duration(60_000), "1 minute");
        assert_eq!(spoken_duration(90_000), "1 minute 30 seconds");
        assert_eq!(spoken_duration(1_000), "1 second");
        assert_eq!(spoken_duration(0), "0 seconds");
    }

    #[test]
    fn clock_sync_trusts_the_shortest_round_trip_of_the_last_eight() {
        let mut c = ClockSync::new();
        assert_eq!(c.offset_ms(), 0);
        // Sent at 1000, back at 1100 (midpoint 1050), server said 2050: offset +1000.
        c.add(1_000, 1_100, UnixMillis(2_050));
        assert_eq!(c.offset_ms(), 1_000);
        // A slower round trip with a different answer does not win.
        c.add(2_000, 2_400, UnixMillis(2_500));
        assert_eq!(c.offset_ms(), 1_000);
        // A faster one does.
        c.add(3_000, 3_020, UnixMillis(2_990));
        assert_eq!(c.offset_ms(), -20);
        assert_eq!(c.best().map(|s| s.round_trip_ms), Some(20));
        // Eight slower samples push the fast one out.
        for i in 0..CLOCK_SAMPLES as u64 {
            c.add(10_000 + i, 10_050 + i, UnixMillis(10_525 + i));
        }
        assert_eq!(c.offset_ms(), 500);
        // A sample with time going backwards is ignored.
        c.add(5_000, 4_000, UnixMillis(0));
        assert_eq!(c.offset_ms(), 500);
    }

    #[test]
    fn backoff_doubles_from_half_a_second_to_ten_with_jitter_below() {
        let plain: Vec<u64> = (0..8).map(|n| backoff_ms(n, 0.0)).collect();
        assert_eq!(plain, [500, 1_000, 2_000, 4_000, 8_000, 10_000, 10_000, 10_000]);
        assert_eq!(backoff_ms(0, 1.0), 375);
        assert_eq!(backoff_ms(40, 0.5), 8_750);
        assert!(backoff_ms(u32::MAX, 2.0) >= 7_500);
    }

    #[test]
    fn announcements_only_at_meaningful_moments() {
        let run = Timer::Running { deadline: UnixMillis(1) };
        let mut a = Announcer::new();
        assert_eq!(a.tick(&Timer::Idle, 300_000), None);
        assert_eq!(a.tick(&run, 300_000).as_deref(), Some("Timer started: 5 minutes."));
        assert_eq!(a.tick(&run, 299_750), None);
        assert_eq!(a.tick(&run, 240_250), None);
        assert_eq!(a.tick(&run, 240_000).as_deref(), Some("4 minutes left."));
        assert_eq!(a.tick(&run, 239_750), None);
        // Skipping ticks (a background tab) still announces a crossed minute once.
        assert_eq!(a.tick(&run, 119_000), None, "not on a whole minute: quiet");
        assert_eq!(a.tick(&run, 60_000).as_deref(), Some("1 minute left."));
        assert_eq!(a.tick(&run, 30_200), None);
        assert_eq!(a.tick(&run, 30_000).as_deref(), Some("30 seconds left."));
        assert_eq!(a.tick(&run, 29_000), None);
        assert_eq!(a.tick(&run, 0), None, "running at zero waits for the server's time-up");
        assert_eq!(
            a.tick(&Timer::Expired, 0).as_deref(),
            Some("Time is up. Check in: keep going, either way, or move on.")
        );
        assert_eq!(a.tick(&Timer::Expired, 0), None);
        assert_eq!(a.tick(&run, 300_000).as_deref(), Some("Timer started: 5 minutes."));
        assert_eq!(a.tick(&run, 400_000).as_deref(), Some("Extended: 6 minutes 40 seconds left."));
        let paused = Timer::Paused { remaining_ms: 90_000 };
        assert_eq!(a.tick(&paused, 90_000).as_deref(), Some("Timer paused with 1 minute 30 seconds left."));
        assert_eq!(a.tick(&paused, 90_000), None);
        assert_eq!(a.tick(&run, 90_000).as_deref(), Some("Timer resumed: 1 minute 30 seconds left."));
        assert_eq!(a.tick(&Timer::Idle, 300_000).as_deref(), Some("Timer stopped."));
        let mut late = Announcer::new();
        assert_eq!(late.tick(&run, 125_000).as_deref(), Some("2 minutes 5 seconds left."));
    }

    fn meeting() -> (Board, PersonId, PersonId) {
        let mut b = Board::default();
        let settings = Settings { hide_totals_until_voting_closes: false, ..Settings::default() };
        let now = UnixMillis(1_000);
        b.execute(Actor::System, &Command::CreateBoard { title: Private::new("Thursday <Mini-M>"), settings }, now)
            .unwrap();
        let join = |b: &mut Board, name: &str, role| {
            b.execute(Actor::System, &Command::Join { name: Private::new(name), role }, now).unwrap();
            PersonId(b.last_person)
        };
        let fac = join(&mut b, "Fay", Role::Facilitator);
        let ada = join(&mut b, "ada", Role::Participant);
        join(&mut b, "Bo", Role::Participant);
        for (who, text) in [(ada, "Hiring"), (ada, "Burnout *again*"), (fac, "Budget")] {
            b.execute(Actor::Person(who), &Command::AddTopic { text: Private::new(text) }, now).unwrap();
        }
        (b, fac, ada)
    }

    fn run(b: &mut Board, who: PersonId, c: Command) {
        b.execute(Actor::Person(who), &c, UnixMillis(2_000)).unwrap();
    }

    #[test]
    fn columns_follow_votes_and_age() {
        let (mut b, fac, ada) = meeting();
        run(&mut b, fac, Command::ChangePhase { to: Phase::Voting });
        run(&mut b, ada, Command::PlaceVote { topic: TopicId(3) });
        run(&mut b, fac, Command::PlaceVote { topic: TopicId(2) });
        run(&mut b, fac, Command::PlaceVote { topic: TopicId(2) });
        assert_eq!(
            columns(&b),
            Columns { todo: vec![TopicId(2), TopicId(3), TopicId(1)], current: None, done: vec![] }
        );
        run(&mut b, fac, Command::ChangePhase { to: Phase::Discussing });
        assert_eq!(columns(&b).current, Some(TopicId(2)));
        run(&mut b, fac, Command::MoveOn);
        run(&mut b, fac, Command::MoveOn);
        assert_eq!(
            columns(&b),
            Columns { todo: vec![], current: Some(TopicId(1)), done: vec![TopicId(2), TopicId(3)] }
        );
    }

    #[test]
    fn names_and_people_order() {
        let (b, _, ada) = meeting();
        assert_eq!(person_name(&b, ada), "ada");
        assert_eq!(person_name(&b, PersonId(99)), "Someone");
        let order: Vec<&str> = people_by_name(&b).iter().map(|p| p.name.as_str()).collect();
        assert_eq!(order, ["Fay", "ada", "Bo"]);
        let view = b.view_for(crate::Viewer::Person(ada));
        assert!(is_mine(&view.topics[&TopicId(1)], Some(ada)));
        assert!(!is_mine(&view.topics[&TopicId(3)], Some(ada)), "the facilitator's topic is not ada's");
        assert!(!is_mine(&view.topics[&TopicId(3)], None));
    }

    /// The button helpers agree with `decide` on every viewer's copy, through a whole meeting
    /// with hidden topics.
    #[test]
    fn may_helpers_agree_with_the_rules_through_a_meeting() {
        let (mut b, fac, ada) = meeting();
        let hide = Settings { hide_topics_until_revealed: true, ..b.settings.clone() };
        run(&mut b, fac, Command::ChangeSettings { settings: hide });
        run(&mut b, ada, Command::AddTopic { text: Private::new("Hidden one") });
        let check = |b: &Board| {
            for person in b.people.keys().copied() {
                let view = b.view_for(crate::Viewer::Person(person));
                for topic in b.topics.keys().copied() {
                    let edit = Command::EditTopic { topic, text: Private::new("x") };
                    let ok = |c: &Command| decide(&view, Actor::Person(person), c, UnixMillis(3_000)).is_ok();
                    let phase = view.phase;
                    assert_eq!(
                        may_change_topic(&view, Some(person), topic),
                        ok(&edit),
                        "{phase:?} {person:?} {topic:?}"
                    );
                    assert_eq!(
                        may_change_topic(&view, Some(person), topic),
                        ok(&Command::RemoveTopic { topic }),
                        "{phase:?} {person:?} {topic:?}"
                    );
                    if view.is_facilitator(person) {
                        assert_eq!(
                            may_select(&view, topic),
                            ok(&Command::SelectTopic { topic }),
                            "{phase:?} {topic:?}"
                        );
                    }
                }
                assert!(!may_change_topic(&view, None, TopicId(1)), "the projector may change nothing");
            }
        };
        check(&b);
        run(&mut b, fac, Command::ChangePhase { to: Phase::Voting });
        check(&b);
        run(&mut b, ada, Command::PlaceVote { topic: TopicId(4) });
        run(&mut b, fac, Command::ChangePhase { to: Phase::Discussing });
        check(&b);
        run(&mut b, fac, Command::MoveOn);
        check(&b);
        run(&mut b, fac, Command::ChangePhase { to: Phase::WrapUp });
        check(&b);
        run(&mut b, fac, Command::ChangePhase { to: Phase::Closed });
        check(&b);
    }

    #[test]
    fn merge_targets_skip_self_hidden_and_discussed() {
        let (b, _, _) = meeting();
        let ids: Vec<TopicId> = merge_targets(&b, TopicId(1)).iter().map(|t| t.id).collect();
        assert_eq!(ids, [TopicId(2), TopicId(3)]);
    }

    #[test]
    fn tally_shows_to_the_facilitator_and_to_those_who_answered() {
        let (mut b, fac, ada) = meeting();
        run(&mut b, fac, Command::ChangePhase { to: Phase::Voting });
        run(&mut b, fac, Command::ChangePhase { to: Phase::Discussing });
        assert!(!show_tally(&b, Some(ada), false), "no check-in open");
        run(&mut b, fac, Command::StartTimer);
        b.execute(Actor::System, &Command::EndTimebox, UnixMillis(u64::MAX)).unwrap();
        assert!(show_tally(&b, Some(fac), true));
        assert!(!show_tally(&b, Some(ada), false));
        run(&mut b, ada, Command::AnswerCheckIn { answer: Answer::Down });
        assert_eq!(my_answer(&b, Some(ada)), Some(Answer::Down));
        assert!(show_tally(&b, Some(ada), false));
        assert_eq!(my_answer(&b, None), None);
    }

    #[test]
    fn links_are_parsed() {
        assert_eq!(board_from_path("/b/abc123"), Some("abc123"));
        assert_eq!(board_from_path("/b/abc123/"), Some("abc123"));
        assert_eq!(board_from_path("/b/"), None);
        assert_eq!(board_from_path("/b/a/b"), None);
        assert_eq!(board_from_path("/"), None);
        assert_eq!(key_from_fragment("#k=xyz"), Some("xyz"));
        assert_eq!(key_from_fragment("#x=1&k=xyz"), Some("xyz"));
        assert_eq!(key_from_fragment("#k="), None);
        assert_eq!(key_from_fragment(""), None);
        assert_eq!(websocket_url("https:", "m.example:8443", "b1"), "wss://m.example:8443/api/boards/b1/ws");
        assert_eq!(websocket_url("http:", "127.0.0.1:80", "b1"), "ws://127.0.0.1:80/api/boards/b1/ws");
    }

    #[test]
    fn calendar_dates() {
        assert_eq!(calendar_date(0, 0), "1970-01-01");
        assert_eq!(calendar_date(951_782_400_000, 0), "2000-02-29");
        assert_eq!(calendar_date(1_795_262_400_000, 0), "2026-11-21");
        // 23:30 UTC is already the next day two hours east.
        assert_eq!(calendar_date(1_795_303_800_000, 120), "2026-11-22");
        assert_eq!(calendar_date(-1, 0), "1969-12-31");
    }

    #[test]
    fn minutes_are_parsed_without_floats() {
        assert_eq!(parse_minutes("5"), Some(300_000));
        assert_eq!(parse_minutes(" 0.1 "), Some(6_000));
        assert_eq!(parse_minutes("2,5"), Some(150_000));
        assert_eq!(parse_minutes(".25"), Some(15_000));
        assert_eq!(parse_minutes("1."), Some(60_000));
        assert_eq!(parse_minutes("0.00001"), Some(0), "below a millisecond");
        for bad in ["", ".", "-1", "1e3", "abc", "1.2.3", "9999999"] {
            assert_eq!(parse_minutes(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn chars_left_counts_characters() {
        assert_eq!(chars_left("éé", 5), 3);
        assert_eq!(chars_left("abcdef", 5), -1);
    }

    #[test]
    fn the_wrap_up_lists_discussed_topics_with_takeaways_and_action_items_but_no_authors() {
        let (mut b, fac, ada) = meeting();
        run(&mut b, fac, Command::ChangePhase { to: Phase::Voting });
        run(&mut b, ada, Command::PlaceVote { topic: TopicId(2) });
        run(&mut b, fac, Command::ChangePhase { to: Phase::Discussing });
        run(&mut b, fac, Command::SetTakeaway { topic: TopicId(2), text: Private::new("Rest.\nTalk to HR.") });
        let item = |text: &str, owner, due: Option<&str>| Command::AddActionItem {
            topic: TopicId(2),
            text: Private::new(text),
            owner,
            due: due.map(str::to_owned),
        };
        run(&mut b, fac, item("Book a day off", ada, Some("2026-12-01")));
        run(&mut b, fac, item("Ask about [budget]", fac, None));
        run(&mut b, fac, Command::MoveOn);
        run(&mut b, fac, Command::ChangePhase { to: Phase::WrapUp });
        let md = wrap_up_markdown(&b, "2026-11-21");
        assert_eq!(
            md,
            "# Thursday \\<Mini-M\\>\n\n2026-11-21\n\n\
             ## 1. Burnout \\*again\\*\n\n\
             **Takeaway:**\n\n> Rest.\n> Talk to HR.\n\n\
             **Action items:**\n\n\
             - [ ] Book a day off — ada (due 2026-12-01)\n\
             - [ ] Ask about \\[budget\\] — Fay\n\n\
             ## 2. Hiring\n\nNo takeaway recorded.\n\n"
        );
        assert!(!md.contains("— Bo"), "people without items do not appear");
    }

    #[test]
    fn an_empty_wrap_up_says_so() {
        let (b, _, _) = meeting();
        assert_eq!(
            wrap_up_markdown(&b, "2026-11-21"),
            "# Thursday \\<Mini-M\\>\n\n2026-11-21\n\nNo topics were discussed.\n"
        );
    }

    #[test]
    fn phases_have_titles_slugs_and_hints() {
        for p in Phase::ALL {
            assert_eq!(serde_json::to_value(p).unwrap(), phase_slug(p));
            assert!(!phase_title(p).is_empty() && !phase_hint(p, true).is_empty());
        }
    }
}
