//! The four scenarios, each run against every stack it applies to.
//!
//! 1. [`town_hall`]: one board, everyone votes within a window while the facilitator then runs
//!    the timer and the check-in.
//! 2. [`mini_m_hour`]: many boards of 8 in every stage of a meeting; the offered rate steps up
//!    until delivery p99 passes [`P99_TARGET_MS`] (or events are lost, or the rate is not met).
//! 3. [`reconnect_storm`]: a node restarted under load; time until every client that was on it
//!    has come back and caught up, and nothing lost or doubled (the bare relay keeps nothing to
//!    catch up from: its clients miss what was sent while they were away).
//! 4. [`idle_capacity`]: thousands of idle connections: memory per connection, heartbeat CPU.
//!
//! Every command is scheduled on an open-loop timeline ([`play`]): a slow server does not slow
//! the offered load down, so its queueing shows up as latency.

use crate::client::Client;
use crate::clock::{Micros, now};
use crate::measure::{self, Tally};
use crate::procs::{Programs, Usage};
use crate::setup::{self, Room};
use crate::stack::{ANSWERS, Deployment, Stack, Topology, topic_text};
use anyhow::{Context, bail};
use minim_shared::{Command, Phase, Settings, TopicId};
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// The Mini-M hour's latency target: the highest rate at which p99 stays under this is sustained.
pub const P99_TARGET_MS: f64 = 50.0;
/// A step is sustained only if the stack accepted at least this share of the offered rate.
const MIN_ACHIEVED_SHARE: f64 = 0.9;
/// minim lets one connection send 10 messages a second; the generator stays under it.
const MAX_SEAT_RATE: f64 = 9.0;
/// How many times a rate step is run before the ladder stops there. On this machine a single
/// stretch now and then misses the latency target for every stack at a rate the same stack
/// sustains before and after it (the machine's own hiccups), so a step that misses gets one more
/// try; a step that lost, doubled or reordered an event gets none.
const STEP_ATTEMPTS: u32 = 2;
/// After the ladder misses a rate, how many times the gap between the highest rate sustained and
/// the one missed is halved. The ladder's rungs are 1,000 to 4,000 ev/s apart where stacks reach
/// their ceilings, so without this a ceiling, and a ratio of two of them, would be known only to
/// within a rung (up to a quarter).
const REFINEMENTS: u32 = 2;
/// A gap this small, as a share of the highest rate sustained, is not halved any more.
const RESOLUTION: f64 = 0.05;
/// Rates tried between the ladder's rungs are multiples of this.
const RATE_GRAIN: f64 = 250.0;
/// How long a stretch may take to deliver what was sent once sending stops.
pub const DRAIN_PATIENCE: Duration = Duration::from_secs(15);
/// How long a setup may take to agree on the boards' state.
const SETTLE_PATIENCE: Duration = Duration::from_secs(60);
/// An append to minim's store that takes longer than this holds up its board by as much as a
/// step's whole latency budget: the Mini-M hour counts them per step (a disk that stalls shows
/// there, not only in the p99), from the stage timings minim's `/metrics` gives.
const SLOW_APPEND: &str = "0.05";

/// How big and how long: `quick`, `full`, or the CI's small proof that the harness works.
#[derive(Clone, Debug, Serialize)]
pub struct Scale {
    pub name: &'static str,
    pub town_hall_participants: usize,
    /// Everyone's votes land within this window.
    pub vote_window: Duration,
    pub mini_m_boards: usize,
    /// Mini-M hour: offered rates (events per second) tried in order, and how long each runs.
    pub rates: Vec<f64>,
    pub step: Duration,
    /// Mini-M hour on one node too (bare and minim): the one-node comparison.
    pub mini_m_one_node: bool,
    pub storm_clients: usize,
    pub storm_rate: f64,
    pub idle_connections: usize,
    pub idle_window: Duration,
}

impl Scale {
    pub fn quick() -> Scale {
        Scale {
            name: "quick",
            town_hall_participants: 2000,
            vote_window: Duration::from_secs(10),
            mini_m_boards: 1000,
            rates: [0.25, 0.5, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 16.0, 20.0, 24.0, 32.0, 40.0, 48.0]
                .map(|k| k * 1000.0)
                .into(),
            step: Duration::from_secs(4),
            mini_m_one_node: false,
            storm_clients: 5000,
            storm_rate: 1000.0,
            idle_connections: 10_000,
            idle_window: Duration::from_secs(20),
        }
    }

    pub fn full() -> Scale {
        Scale {
            name: "full",
            rates: [
                0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 14.0, 16.0,
                20.0, 24.0, 28.0, 32.0, 40.0, 48.0,
            ]
            .map(|k| k * 1000.0)
            .into(),
            step: Duration::from_secs(10),
            mini_m_one_node: true,
            idle_window: Duration::from_secs(60),
            ..Scale::quick()
        }
    }

    /// The CI's: every scenario, every stack, small and short; only correctness is checked.
    pub fn smoke() -> Scale {
        Scale {
            name: "smoke",
            town_hall_participants: 40,
            vote_window: Duration::from_secs(2),
            mini_m_boards: 12,
            rates: vec![100.0, 200.0],
            step: Duration::from_secs(2),
            mini_m_one_node: true,
            storm_clients: 80,
            storm_rate: 40.0,
            idle_connections: 200,
            idle_window: Duration::from_secs(3),
        }
    }
}

/// What the server processes spent during a measured stretch.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Cost {
    /// The stack's own processes (every node), CPU seconds.
    pub cpu_seconds: f64,
    /// The same, as a share of one core over the stretch.
    pub cpu_percent: f64,
    /// The largest resident memory of one node during the stretch, MB.
    pub peak_rss_mb: f64,
    /// Redis, when the topology has it.
    pub redis_cpu_seconds: f64,
    pub redis_peak_rss_mb: f64,
    /// How long the stack's threads were ready to run but waited for a CPU, in ms per second of
    /// the stretch (summed over threads and nodes): how crowded the two shared cores were for it.
    pub waited_ms_per_second: f64,
    /// Redis's CPU as a share of one core, and its wait, when the topology has it.
    pub redis_cpu_percent: f64,
    pub redis_waited_ms_per_second: f64,
    /// The load generator itself (this process), which shares the machine: its CPU, as a share
    /// of one core, and its threads' wait for a CPU.
    pub generator_cpu_percent: f64,
    pub generator_waited_ms_per_second: f64,
}

/// Samples the deployment's processes while a stretch runs.
struct Meter {
    pids: Vec<u32>,
    redis: Option<u32>,
    start: Vec<Usage>,
    redis_start: Usage,
    generator_start: Usage,
    started: Instant,
    peak: Arc<std::sync::Mutex<(u64, u64)>>,
    /// Ends the sampler (so does dropping it).
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Meter {
    fn start(deployment: &Deployment) -> Meter {
        let pids: Vec<u32> = deployment.nodes.iter().map(|n| n.pid()).collect();
        let redis = deployment.redis_pid();
        let peak = Arc::new(std::sync::Mutex::new((0u64, 0u64)));
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let (sampled, sampled_redis, sink) = (pids.clone(), redis, peak.clone());
        tokio::spawn(async move {
            loop {
                let node = sampled.iter().map(|&p| Usage::of(p).rss).max().unwrap_or(0);
                let redis = sampled_redis.map_or(0, |p| Usage::of(p).rss);
                {
                    let mut peak = sink.lock().expect("not poisoned");
                    *peak = (peak.0.max(node), peak.1.max(redis));
                }
                tokio::select! {
                    _ = &mut rx => return,
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        });
        Meter {
            start: pids.iter().map(|&p| Usage::of(p)).collect(),
            redis_start: redis.map(Usage::of).unwrap_or_default(),
            generator_start: Usage::of(std::process::id()),
            pids,
            redis,
            started: Instant::now(),
            peak,
            stop: Some(tx),
        }
    }

    fn finish(mut self) -> Cost {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let now: Vec<Usage> = self.pids.iter().map(|&p| Usage::of(p)).collect();
        let nodes = |f: fn(&Usage) -> Duration| -> Duration {
            now.iter().zip(&self.start).map(|(n, s)| f(n).saturating_sub(f(s))).sum()
        };
        let since = |now: Usage, start: &Usage| Usage {
            cpu: now.cpu.saturating_sub(start.cpu),
            waited: now.waited.saturating_sub(start.waited),
            ..now
        };
        let redis = since(self.redis.map(Usage::of).unwrap_or_default(), &self.redis_start);
        let generator = since(Usage::of(std::process::id()), &self.generator_start);
        let (peak, redis_peak) = *self.peak.lock().expect("not poisoned");
        let elapsed = self.started.elapsed().as_secs_f64();
        // Milliseconds per second of the stretch; a tenth of that is a share of one core in %.
        let per_second = |d: Duration| 1e3 * d.as_secs_f64() / elapsed;
        let cpu = nodes(|u| u.cpu);
        Cost {
            cpu_seconds: cpu.as_secs_f64(),
            cpu_percent: per_second(cpu) / 10.0,
            peak_rss_mb: peak as f64 / 1e6,
            redis_cpu_seconds: redis.cpu.as_secs_f64(),
            redis_peak_rss_mb: redis_peak as f64 / 1e6,
            waited_ms_per_second: per_second(nodes(|u| u.waited)),
            redis_cpu_percent: per_second(redis.cpu) / 10.0,
            redis_waited_ms_per_second: per_second(redis.waited),
            generator_cpu_percent: per_second(generator.cpu) / 10.0,
            generator_waited_ms_per_second: per_second(generator.waited),
        }
    }
}

/// One stack's result in one scenario (or one step of it).
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    pub scenario: &'static str,
    pub stack: Stack,
    pub topology: Topology,
    pub clients: usize,
    /// Connections set up per second (minim: joining through the HTTP API included).
    pub setup_per_second: f64,
    /// The offered rate, events per second, where the scenario sets one.
    pub offered_per_second: Option<f64>,
    pub tally: Tally,
    pub cost: Cost,
    /// Figures particular to the scenario (idle memory, storm timings, the rate search's steps).
    pub extra: serde_json::Value,
}

impl Outcome {
    /// Zero loss, zero duplication, and for minim everything in order.
    pub fn is_exact(&self) -> bool {
        self.tally.lost == 0 && self.tally.duplicated == 0 && self.tally.out_of_order == 0
    }

    /// Whether the outcome fails the run: anything inexact from minim, the stack under test, or
    /// from the bare broadcast, which drops nothing by construction (a loss there is the
    /// harness's), except what its clients miss while away in the reconnect storm (it keeps
    /// nothing to catch up from). From socket.io, a doubled or reordered event does, but not one
    /// still undelivered when the patience ran out: driven past what it keeps up with (a town
    /// hall), socket.io falls behind, and that is its result, reported beside the others.
    pub fn fails_the_run(&self) -> bool {
        let t = &self.tally;
        match self.stack {
            Stack::SocketIo => t.duplicated > 0 || t.out_of_order > 0,
            // The relay keeps nothing, so a client that was away misses what was sent meanwhile.
            Stack::Bare if self.scenario == "reconnect_storm" => t.duplicated > 0,
            Stack::Minim | Stack::Bare => !self.is_exact(),
        }
    }

    /// "scenario / stack / topology", as the progress lines, the medians and the errors name it.
    pub fn name(&self) -> String {
        format!("{} / {} / {}", self.scenario, self.stack.label(), self.topology.label())
    }
}

/// A command to send at `at` (from the start of the timeline) by one seat of one room.
struct Planned {
    at: Duration,
    room: usize,
    seat: usize,
    command: Command,
}

/// Sends a timeline of commands as scheduled. Returns how many could not be handed to their client.
async fn play(rooms: &[Room], plan: impl IntoIterator<Item = Planned>) -> u64 {
    let start = now();
    let mut unsent = 0;
    for p in plan {
        let at = start.plus(p.at);
        if at > now() {
            tokio::time::sleep_until(at.instant().into()).await;
        }
        if !rooms[p.room].seats[p.seat].send(p.command, at) {
            unsent += 1;
        }
    }
    unsent
}

/// Plays `plan` on the rooms, waits for the deliveries, and counts what happened and what the
/// servers spent meanwhile.
async fn measure_plan(
    stack: Stack,
    deployment: &Deployment,
    rooms: &[Room],
    start_keys: &[u64],
    plan: Vec<Planned>,
) -> (u64, Cost, Tally) {
    let meter = Meter::start(deployment);
    let unsent = play(rooms, plan).await;
    drain(stack, rooms, DRAIN_PATIENCE).await;
    let cost = meter.finish();
    let records = measure::collect(rooms, start_keys).await;
    (unsent, cost, measure::tally(stack, &records))
}

/// minim's appends to its store (every node's), and how many took longer than [`SLOW_APPEND`].
#[derive(Clone, Copy, Debug, PartialEq)]
struct Appends {
    all: f64,
    slow: f64,
}

impl Appends {
    /// So far, from the stage timings in minim's `/metrics`; `None` for the baselines (they
    /// store nothing, or nothing that says so).
    async fn so_far(stack: Stack, deployment: &Deployment) -> Option<Appends> {
        if stack != Stack::Minim {
            return None;
        }
        let all = setup::counter(deployment, r#"minim_stage_seconds_count{stage="stored"}"#).await?;
        let quick = format!(r#"minim_stage_seconds_bucket{{stage="stored",le="{SLOW_APPEND}"}}"#);
        let quick = setup::counter(deployment, &quick).await?;
        Some(Appends { all, slow: all - quick })
    }

    fn since(self, before: Appends) -> Appends {
        Appends { all: self.all - before.all, slow: self.slow - before.slow }
    }
}

/// Whether every room's commands are answered and delivered to every seat. A command still
/// waiting for its answer (a store that stalls holds up a round of them) has its events on the
/// way: some seats may already have them, and they would count as lost at the others.
fn drained(stack: Stack, rooms: &[Room]) -> bool {
    rooms.iter().all(|room| {
        let sent = room.log.sent.lock().expect("not poisoned");
        if stack.has_rules() {
            let head = sent.iter().map(|s| s.key).max().unwrap_or(0);
            room.seats.iter().all(|s| s.state.unanswered.load(Relaxed) == 0 && s.state.last_key.load(Relaxed) >= head)
        } else {
            room.seats.iter().all(|s| s.state.count.load(Relaxed) >= sent.len() as u64)
        }
    })
}

/// A steady `rate` (events per second) for `duration`: the actors take turns, each with its next
/// command, so every actor sends at the same pace.
fn steady_plan(actors: &mut [(usize, usize, Script)], rate: f64, duration: Duration) -> Vec<Planned> {
    let n = actors.len();
    let interval = Duration::from_secs_f64(1.0 / rate);
    (0..(rate * duration.as_secs_f64()) as usize)
        .map(|i| {
            let (room, seat, script) = &mut actors[i % n];
            Planned { at: interval * i as u32, room: *room, seat: *seat, command: script.next() }
        })
        .collect()
}

/// Waits until every command sent to a room is answered and every seat has what it was answered
/// with (or until patience runs out: the rest counts as lost).
async fn drain(stack: Stack, rooms: &[Room], patience: Duration) {
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline {
        if drained(stack, rooms) {
            // Anything else in flight (system events such as a timebox ending) lands meanwhile.
            tokio::time::sleep(Duration::from_millis(200)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn failures(rooms: &[Room]) -> Vec<String> {
    rooms
        .iter()
        .flat_map(|r| r.seats.iter().enumerate().map(move |(i, s)| (r, i, s)))
        .filter_map(|(r, i, s)| {
            s.state.failure.lock().expect("not poisoned").clone().map(|f| format!("{} seat {i}: {f}", r.name))
        })
        .take(5)
        .collect()
}

/// A small deterministic generator, so runs are repeatable without a dependency.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn within(&mut self, window: Duration) -> Duration {
        Duration::from_micros(self.below(window.as_micros().max(1) as u64))
    }
}

/// Setup commands run one at a time by one seat, each waiting for its answer.
async fn prepare(client: &Client, commands: impl IntoIterator<Item = Command>) -> anyhow::Result<()> {
    for command in commands {
        client.request(command).await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------

/// Town hall: one board, everyone votes three times within the window; then the facilitator
/// opens the discussion and runs a short timebox, everyone answers the check-in, and the
/// facilitator moves on and runs the timer again.
pub async fn town_hall(stack: Stack, programs: &Programs, scale: &Scale) -> anyhow::Result<Outcome> {
    let deployment = Deployment::start(stack, Topology::OneNode, programs).await?;
    let participants = scale.town_hall_participants;
    let timebox = Duration::from_secs(1);
    let settings = Settings { timebox_ms: timebox.as_millis() as u64, ..Settings::default() };
    let (rooms, setup_rate) = setup::open_rooms(&deployment, 1, participants + 1, &settings, |_, _| 0).await?;
    const TOPICS: u32 = 10;
    if stack.has_rules() {
        let topics = (1..=TOPICS).map(|n| Command::AddTopic { text: topic_text(0, n) });
        prepare(&rooms[0].seats[0], topics.chain([Command::ChangePhase { to: Phase::Voting }])).await?;
    }
    setup::settle(&rooms, SETTLE_PATIENCE).await?;
    let start_keys = measure::heads(&rooms);

    let mut dice = Dice(0x5EED_7041);
    let mut plan = Vec::new();
    let window = scale.vote_window;
    for seat in 1..=participants {
        let first = dice.below(TOPICS as u64) as u32;
        for k in 0..3 {
            let topic = TopicId((first + k * 3) % TOPICS + 1);
            plan.push(Planned { at: dice.within(window), room: 0, seat, command: Command::PlaceVote { topic } });
        }
    }
    // Then the discussion: the facilitator's commands a beat apart, the check-in after the timebox.
    let fac = |at: Duration, command| Planned { at, room: 0, seat: 0, command };
    let open = window + Duration::from_millis(500);
    let timer_start = open + Duration::from_millis(500);
    let check_in = timer_start + timebox + Duration::from_millis(700);
    let check_in_window = window / 2;
    plan.push(fac(open, Command::ChangePhase { to: Phase::Discussing }));
    plan.push(fac(timer_start, Command::StartTimer));
    for seat in 1..=participants {
        let answer = ANSWERS[dice.below(3) as usize];
        plan.push(Planned {
            at: check_in + dice.within(check_in_window),
            room: 0,
            seat,
            command: Command::AnswerCheckIn { answer },
        });
    }
    let after = check_in + check_in_window + Duration::from_millis(500);
    for (i, command) in
        [Command::MoveOn, Command::StartTimer, Command::PauseTimer, Command::ResumeTimer, Command::StopTimer]
            .into_iter()
            .enumerate()
    {
        plan.push(fac(after + Duration::from_millis(300) * i as u32, command));
    }
    plan.sort_by_key(|p| p.at);

    let (unsent, cost, tally) = measure_plan(stack, &deployment, &rooms, &start_keys, plan).await;
    let problems = failures(&rooms);
    let codes = rooms[0].log.rejection_codes.lock().expect("not poisoned").clone();
    let resynced = setup::counter(&deployment, "minim_clients_resynced_total").await;
    Ok(Outcome {
        scenario: "town_hall",
        stack,
        topology: Topology::OneNode,
        clients: participants + 1,
        setup_per_second: setup_rate,
        offered_per_second: None,
        tally,
        cost,
        extra: serde_json::json!({
            "unsent": unsent, "client_failures": problems, "rejection_codes": codes,
            // minim drops a client that falls too far behind from the fan-out and resyncs it.
            "server_resynced_clients": resynced,
        }),
    })
}

// ---------------------------------------------------------------------------------------------

/// What one seat does during the Mini-M hour, by its board's stage.
enum Script {
    /// Gathering: add topics up to the limit, then reword one's own.
    Topics { author: u32, added: u32, own: Vec<TopicId>, turn: usize },
    /// Voting: three votes placed, then taken back, round and round (never over the budget).
    Votes { topics: [TopicId; 3], turn: usize },
    /// Discussing, the facilitator: pause, resume, extend, round and round.
    Timer { turn: usize },
}

impl Script {
    fn next(&mut self) -> Command {
        match self {
            Script::Topics { author, added, own, turn } => {
                if (*added as usize) < minim_shared::settings::MAX_TOPICS_PER_PERSON {
                    *added += 1;
                    Command::AddTopic { text: topic_text(*author, *added) }
                } else {
                    *turn += 1;
                    let topic = own[*turn % own.len()];
                    Command::EditTopic { topic, text: topic_text(*author, *turn as u32) }
                }
            }
            Script::Votes { topics, turn } => {
                let topic = topics[*turn % 3];
                let place = *turn % 6 < 3;
                *turn += 1;
                if place { Command::PlaceVote { topic } } else { Command::RemoveVote { topic } }
            }
            Script::Timer { turn } => {
                *turn += 1;
                match *turn % 3 {
                    1 => Command::PauseTimer,
                    2 => Command::ResumeTimer,
                    _ => Command::ExtendTimer,
                }
            }
        }
    }
}

/// The stage a board is in during the Mini-M hour: a third each.
fn stage(board: usize) -> Phase {
    [Phase::Gathering, Phase::Voting, Phase::Discussing][board % 3]
}

/// Sets each board up in its stage; returns every acting seat's script.
async fn stage_boards(stack: Stack, rooms: &[Room]) -> anyhow::Result<Vec<(usize, usize, Script)>> {
    const SEATS_TOPICS: u32 = 2;
    let mut actors = Vec::new();
    for (b, room) in rooms.iter().enumerate() {
        let seats = room.seats.len();
        match stage(b) {
            Phase::Gathering => {
                // Each seat brings two topics first, one seat at a time, so the topics' numbers are known.
                for seat in 0..seats {
                    let mut own = Vec::new();
                    for n in 1..=SEATS_TOPICS {
                        if stack.has_rules() {
                            room.seats[seat].request(Command::AddTopic { text: topic_text(seat as u32, n) }).await?;
                        }
                        own.push(TopicId((seat as u32) * SEATS_TOPICS + n));
                    }
                    actors.push((b, seat, Script::Topics { author: seat as u32, added: SEATS_TOPICS, own, turn: 0 }));
                }
            }
            Phase::Voting => {
                if stack.has_rules() {
                    let topics = (1..=6).map(|n| Command::AddTopic { text: topic_text(0, n) });
                    prepare(&room.seats[0], topics.chain([Command::ChangePhase { to: Phase::Voting }])).await?;
                }
                for seat in 0..seats {
                    let s = seat as u32;
                    let topics = [TopicId(s % 6 + 1), TopicId((s + 2) % 6 + 1), TopicId((s + 4) % 6 + 1)];
                    actors.push((b, seat, Script::Votes { topics, turn: 0 }));
                }
            }
            _ => {
                if stack.has_rules() {
                    let topics = (1..=3).map(|n| Command::AddTopic { text: topic_text(0, n) });
                    let phases = [Phase::Voting, Phase::Discussing].map(|to| Command::ChangePhase { to });
                    prepare(&room.seats[0], topics.chain(phases).chain([Command::StartTimer])).await?;
                }
                actors.push((b, 0, Script::Timer { turn: 0 }));
            }
        }
    }
    Ok(actors)
}

/// What a step's try settled.
#[derive(Debug, PartialEq)]
enum Step {
    Sustained,
    /// Missed the targets; the same rate once more.
    Again,
    /// Missed the targets in every try.
    Missed,
    /// Lost, doubled or reordered an event: the search ends here.
    Inexact,
}

/// A sustained try settles its rate; one that missed the targets is tried again, up to
/// [`STEP_ATTEMPTS`] times in all; one that lost or doubled an event ends the search at once.
fn next_step(sustained: bool, exact: bool, attempt: u32) -> Step {
    match (sustained, exact) {
        (_, false) => Step::Inexact,
        (true, true) => Step::Sustained,
        (false, true) if attempt < STEP_ATTEMPTS => Step::Again,
        (false, true) => Step::Missed,
    }
}

/// The Mini-M hour's search for a stack's highest sustained rate: up the scale's ladder until a
/// rate is missed, then the gap between the highest rate sustained and that one is halved
/// ([`REFINEMENTS`], [`RESOLUTION`]).
#[derive(Debug)]
struct Search<'a> {
    ladder: &'a [f64],
    /// The next rung, while climbing.
    rung: usize,
    sustained: Option<f64>,
    missed: Option<f64>,
    refinements: u32,
}

impl<'a> Search<'a> {
    fn new(ladder: &'a [f64]) -> Search<'a> {
        Search { ladder, rung: 0, sustained: None, missed: None, refinements: 0 }
    }

    /// The rate to try next, if any.
    fn rate(&self) -> Option<f64> {
        let Some(missed) = self.missed else { return self.ladder.get(self.rung).copied() };
        // Nothing sustained: there is no gap to halve.
        let sustained = self.sustained?;
        if self.refinements >= REFINEMENTS || missed - sustained <= sustained * RESOLUTION {
            return None;
        }
        let middle = ((sustained + missed) / 2.0 / RATE_GRAIN).round() * RATE_GRAIN;
        (sustained < middle && middle < missed).then_some(middle)
    }

    /// What the tries of `rate` (the one [`Search::rate`] gave) came to.
    fn settle(&mut self, rate: f64, sustained: bool) {
        match self.missed {
            None => self.rung += 1,
            Some(_) => self.refinements += 1,
        }
        if sustained {
            self.sustained = Some(rate);
        } else {
            self.missed = Some(rate);
        }
    }
}

/// Mini-M hour: boards of 8 in every stage; the offered rate steps up until a step is not
/// sustained in [`STEP_ATTEMPTS`] tries, then narrows in on the highest sustained rate
/// ([`Search`]). The outcome is the highest sustained step (or the first, marked, if none was).
pub async fn mini_m_hour(
    stack: Stack,
    topology: Topology,
    programs: &Programs,
    scale: &Scale,
) -> anyhow::Result<Outcome> {
    let deployment = Deployment::start(stack, topology, programs).await?;
    let settings = Settings { timebox_ms: minim_shared::settings::MAX_TIMEBOX_MS, ..Settings::default() };
    // Two nodes: half of each board's seats on each, so every event crosses Redis.
    let (rooms, setup_rate) = setup::open_rooms(&deployment, scale.mini_m_boards, 8, &settings, |b, s| b + s).await?;
    let mut actors = stage_boards(stack, &rooms).await.context("while setting the boards up")?;
    setup::settle(&rooms, SETTLE_PATIENCE).await?;
    let mut dice = Dice(0x3141_5926);
    // Everyone in a shuffled order, so each step's commands are spread over boards and seats.
    for i in (1..actors.len()).rev() {
        actors.swap(i, dice.below(i as u64 + 1) as usize);
    }
    let mut steps = Vec::new();
    let mut best: Option<Outcome> = None;
    let mut search = Search::new(&scale.rates);
    let mut attempt = 1;
    while let Some(rate) = search.rate() {
        let rate = rate.min(MAX_SEAT_RATE * actors.len() as f64);
        let start_keys = measure::heads(&rooms);
        let plan = steady_plan(&mut actors, rate, scale.step);
        let appends_before = Appends::so_far(stack, &deployment).await;
        let (unsent, cost, tally) = measure_plan(stack, &deployment, &rooms, &start_keys, plan).await;
        let appends =
            Appends::so_far(stack, &deployment).await.zip(appends_before).map(|(now, before)| now.since(before));
        let achieved = tally.events_per_second / rate;
        let sustained = tally.latency.p99_ms < P99_TARGET_MS
            && achieved >= MIN_ACHIEVED_SHARE
            && tally.lost == 0
            && tally.duplicated == 0
            && unsent == 0;
        steps.push(serde_json::json!({
            "offered_per_second": rate, "attempt": attempt, "between_rungs": search.missed.is_some(),
            "events_per_second": tally.events_per_second,
            "deliveries_per_second": tally.deliveries_per_second, "p50_ms": tally.latency.p50_ms,
            "p99_ms": tally.latency.p99_ms, "lost": tally.lost, "duplicated": tally.duplicated,
            "accepted": tally.accepted, "rejected": tally.rejected, "unsent": unsent, "sustained": sustained,
            "cpu_percent": cost.cpu_percent,
            "redis_cpu_percent": cost.redis_cpu_percent,
            "waited_ms_per_second": cost.waited_ms_per_second,
            "redis_waited_ms_per_second": cost.redis_waited_ms_per_second,
            "generator_cpu_percent": cost.generator_cpu_percent,
            "generator_waited_ms_per_second": cost.generator_waited_ms_per_second,
            "p99_authors_node_ms": tally.by_node.as_ref().map(|b| b.authors_node.p99_ms),
            "p99_other_node_ms": tally.by_node.as_ref().map(|b| b.other_node.p99_ms),
            "store_appends": appends.map(|a| a.all), "store_appends_slow": appends.map(|a| a.slow),
        }));
        let outcome = Outcome {
            scenario: "mini_m_hour",
            stack,
            topology,
            clients: rooms.len() * 8,
            setup_per_second: setup_rate,
            offered_per_second: Some(rate),
            tally,
            cost,
            extra: serde_json::Value::Null,
        };
        let exact = outcome.is_exact();
        if sustained || best.is_none() {
            best = Some(Outcome { extra: serde_json::json!({ "sustained": sustained }), ..outcome });
        }
        match next_step(sustained, exact, attempt) {
            Step::Again => attempt += 1,
            Step::Sustained | Step::Missed => {
                search.settle(rate, sustained);
                attempt = 1;
            }
            Step::Inexact => break,
        }
        // Let queues empty before the next stretch.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut best = best.context("at least one rate was tried")?;
    let sustained = best.extra["sustained"].clone();
    let resynced = setup::counter(&deployment, "minim_clients_resynced_total").await;
    best.extra = serde_json::json!({
        "sustained": sustained, "steps": steps, "client_failures": failures(&rooms),
        "server_resynced_clients": resynced,
    });
    Ok(best)
}

// ---------------------------------------------------------------------------------------------

/// Reconnect storm: two nodes through Redis, each board's seats split over both; votes keep
/// coming from the seats on the node that stays while the other node restarts (SIGTERM, so that
/// minim tells its clients when to come back, then started again on the same port). A client is
/// back when it has reconnected and caught up: minim's resume from their last event, socket.io's
/// take the snapshot its server sends every joining client, the bare relay's only reconnect.
pub async fn reconnect_storm(stack: Stack, programs: &Programs, scale: &Scale) -> anyhow::Result<Outcome> {
    let mut deployment = Deployment::start(stack, Topology::TwoNodesRedis, programs).await?;
    let boards = scale.storm_clients.div_ceil(8);
    // Seats 0-3 on node 0 (restarted), 4-7 on node 1.
    let (rooms, setup_rate) =
        setup::open_rooms(&deployment, boards, 8, &Settings::default(), |_, seat| seat / 4).await?;
    if stack.has_rules() {
        for room in &rooms {
            let topics = (1..=6).map(|n| Command::AddTopic { text: topic_text(0, n) });
            prepare(&room.seats[0], topics.chain([Command::ChangePhase { to: Phase::Voting }])).await?;
        }
    }
    setup::settle(&rooms, SETTLE_PATIENCE).await?;
    let start_keys = measure::heads(&rooms);
    let mut actors: Vec<(usize, usize, Script)> = Vec::new();
    for b in 0..rooms.len() {
        for seat in 4..8u32 {
            let topics = [TopicId(seat % 6 + 1), TopicId((seat + 2) % 6 + 1), TopicId((seat + 4) % 6 + 1)];
            actors.push((b, seat as usize, Script::Votes { topics, turn: 0 }));
        }
    }
    let rate = scale.storm_rate.min(MAX_SEAT_RATE * actors.len() as f64);
    // Long enough to cover the restart and the catch-up, with traffic before and after.
    let plan = steady_plan(&mut actors, rate, Duration::from_secs(12));
    let meter = Meter::start(&deployment);
    let traffic = {
        let rooms = &rooms;
        async move { play(rooms, plan).await }
    };
    let storm = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let began = now();
        // The traffic is played on this same task, so the restart must not block it.
        deployment.nodes[0].restart().await?;
        let back = now();
        let moved: Vec<&Client> = rooms.iter().flat_map(|r| &r.seats[..4]).collect();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let done = moved.iter().all(|c| {
                c.state.reconnects.load(Relaxed) >= 1
                    && c.state.connected.load(Relaxed)
                    && c.state.synced_at.load(Relaxed) >= back.0
            });
            if done {
                break;
            }
            if Instant::now() > deadline {
                bail!("not every client resumed within 60 s of the restart");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let last_synced = moved.iter().map(|c| c.state.synced_at.load(Relaxed)).max().unwrap_or(back.0);
        Ok::<_, anyhow::Error>((began, back, Micros(last_synced), moved.len()))
    };
    let (unsent, storm) = tokio::join!(traffic, storm);
    let (began, back, last_synced, moved) = storm?;
    // The relay's clients never get what they missed: waiting for it would only wait out the
    // patience.
    drain(stack, &rooms, if stack.has_rules() { DRAIN_PATIENCE } else { Duration::from_secs(1) }).await;
    let cost = meter.finish();
    let records = measure::collect(&rooms, &start_keys).await;
    let tally = measure::tally(stack, &records);
    Ok(Outcome {
        scenario: "reconnect_storm",
        stack,
        topology: Topology::TwoNodesRedis,
        clients: rooms.len() * 8,
        setup_per_second: setup_rate,
        offered_per_second: Some(rate),
        tally,
        cost,
        extra: serde_json::json!({
            "clients_on_restarted_node": moved,
            "node_down_seconds": back.since(began).as_secs_f64(),
            "all_resynced_after_restart_seconds": last_synced.since(began).as_secs_f64(),
            "all_resynced_after_node_back_seconds": last_synced.since(back).as_secs_f64(),
            "unsent": unsent,
            "client_failures": failures(&rooms),
        }),
    })
}

// ---------------------------------------------------------------------------------------------

/// Idle capacity: connections that only answer heartbeats. Memory per connection (boards of 8,
/// their state included) and the CPU the heartbeats cost.
pub async fn idle_capacity(stack: Stack, programs: &Programs, scale: &Scale) -> anyhow::Result<Outcome> {
    let deployment = Deployment::start(stack, Topology::OneNode, programs).await?;
    let node = &deployment.nodes[0];
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = node.usage();
    let boards = scale.idle_connections.div_ceil(8);
    let (rooms, setup_rate) = setup::open_rooms(&deployment, boards, 8, &Settings::default(), |_, _| 0).await?;
    setup::settle(&rooms, SETTLE_PATIENCE).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let connected = node.usage();
    let meter = Meter::start(&deployment);
    tokio::time::sleep(scale.idle_window).await;
    let cost = meter.finish();
    let after = node.usage();
    let connections = rooms.len() * 8;
    let per_connection = connected.rss.saturating_sub(before.rss) as f64 / connections as f64;
    let still_connected = rooms.iter().flat_map(|r| &r.seats).filter(|c| c.state.connected.load(Relaxed)).count();
    let idle_cpu = after.cpu.saturating_sub(connected.cpu).as_secs_f64();
    Ok(Outcome {
        scenario: "idle_capacity",
        stack,
        topology: Topology::OneNode,
        clients: connections,
        setup_per_second: setup_rate,
        offered_per_second: None,
        tally: Tally::default(),
        cost,
        extra: serde_json::json!({
            "rss_before_mb": before.rss as f64 / 1e6,
            "rss_connected_mb": connected.rss as f64 / 1e6,
            "rss_per_connection_kb": per_connection / 1e3,
            "idle_window_seconds": scale.idle_window.as_secs_f64(),
            "idle_cpu_percent": 100.0 * idle_cpu / scale.idle_window.as_secs_f64(),
            "idle_cpu_us_per_connection_per_second": 1e6 * idle_cpu / scale.idle_window.as_secs_f64() / connections as f64,
            "still_connected": still_connected,
            "client_failures": failures(&rooms),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{BoardLog, ClientState, Sent};

    #[test]
    fn a_stretch_is_over_once_every_command_is_answered_and_every_seat_has_its_events() {
        let seat = |last_key: u64| {
            let state = Arc::new(ClientState::default());
            state.last_key.store(last_key, Relaxed);
            Client { ops: tokio::sync::mpsc::channel(1).0, state, node: 0 }
        };
        let room = Room { name: "board".into(), log: Arc::new(BoardLog::default()), seats: vec![seat(5), seat(5)] };
        room.log.sent.lock().unwrap().push(Sent { key: 5, at: Micros(0), node: 0 });
        let rooms = [room];
        let seats = &rooms[0].seats;
        assert!(drained(Stack::Minim, &rooms));
        // A command is still waiting for its answer (a stalled store holds it up), and its event
        // has reached one seat only: not over, or the other seat would count it as lost.
        seats[0].state.unanswered.store(1, Relaxed);
        seats[1].state.last_key.store(6, Relaxed);
        assert!(!drained(Stack::Minim, &rooms));
        // Answered: the answer's key is the head every seat must reach.
        seats[0].state.unanswered.store(0, Relaxed);
        rooms[0].log.sent.lock().unwrap().push(Sent { key: 6, at: Micros(1), node: 0 });
        assert!(!drained(Stack::Minim, &rooms), "one seat has not got it yet");
        seats[0].state.last_key.store(6, Relaxed);
        assert!(drained(Stack::Minim, &rooms));
    }

    #[test]
    fn a_missed_step_is_tried_once_more_and_a_lossy_one_never() {
        assert_eq!(next_step(true, true, 1), Step::Sustained);
        assert_eq!(next_step(true, true, 2), Step::Sustained, "a step sustained on its second try counts");
        assert_eq!(next_step(false, true, 1), Step::Again);
        assert_eq!(next_step(false, true, STEP_ATTEMPTS), Step::Missed);
        assert_eq!(next_step(false, false, 1), Step::Inexact, "losing an event is not the machine's hiccup");
    }

    /// The rates a search tries when the stack sustains everything below `ceiling`.
    fn tried(ladder: &[f64], ceiling: f64) -> Vec<f64> {
        let mut search = Search::new(ladder);
        let mut tried = Vec::new();
        while let Some(rate) = search.rate() {
            assert!(tried.len() < 50, "the search ends: {tried:?}");
            tried.push(rate);
            search.settle(rate, rate < ceiling);
        }
        tried
    }

    #[test]
    fn the_search_climbs_the_ladder_then_halves_the_gap_above_the_highest_rate_sustained() {
        let full = Scale::full().rates;
        let k = |rates: &[f64]| rates.iter().map(|r| r / 1000.0).collect::<Vec<_>>();
        let climb = |to: f64| k(&full).into_iter().take_while(|r| *r <= to).collect::<Vec<_>>();
        // Sustains 4,600: misses 5,000, then sustains 4,500, then misses 4,750 (two halvings).
        assert_eq!(k(&tried(&full, 4600.0)), [climb(5.0), vec![4.5, 4.75]].concat());
        // Sustains 11,999: misses 12,000 and 11,500; one halving leaves 500 over 11,000, under 5%.
        assert_eq!(k(&tried(&full, 11_999.0)), [climb(12.0), vec![11.5]].concat());
        // A wide rung: sustains 15,200 between 14,000 and 16,000.
        assert_eq!(k(&tried(&full, 15_200.0)), [climb(16.0), vec![15.0, 15.5]].concat());
        // Nothing sustained: nothing to halve.
        assert_eq!(k(&tried(&full, 100.0)), [0.25]);
        // Rungs already closer than the grain (the smoke scale) or all sustained: the ladder alone.
        assert_eq!(tried(&Scale::smoke().rates, 150.0), [100.0, 200.0]);
        assert_eq!(tried(&Scale::smoke().rates, 1e9), [100.0, 200.0]);
    }
}
