//! The run's results: a table a person reads, the ratios the targets are stated in, and the JSON a
//! script compares.

use crate::scenarios::{Outcome, P99_TARGET_MS, Scale};
use crate::stack::{Stack, Topology};
use serde::Serialize;
use std::fmt::Write;

/// Everything the runs of one invocation measured, and their medians.
#[derive(Serialize)]
pub struct Report {
    pub date: String,
    pub machine: Machine,
    pub command: String,
    pub scale: Scale,
    pub runs: Vec<Run>,
    /// Medians over the runs (with one run, that run's figures).
    pub medians: Vec<Median>,
}

/// One run of every selected scenario.
#[derive(Serialize)]
pub struct Run {
    pub outcomes: Vec<Outcome>,
    pub ratios: Vec<Ratio>,
    /// minim's Mini-M hour p99 beside each baseline's at every offered rate both sustained.
    pub equal_load: Vec<EqualLoad>,
}

impl Run {
    pub fn of(outcomes: Vec<Outcome>) -> Run {
        Run { ratios: ratios(&outcomes), equal_load: equal_load(&outcomes), outcomes }
    }
}

/// The median of one figure over the runs.
#[derive(Serialize, Debug, PartialEq)]
pub struct Median {
    pub what: String,
    pub median: f64,
    pub runs: Vec<f64>,
    /// How the table prints it.
    #[serde(skip)]
    pub shown: Shown,
}

/// How a figure is printed. Ratios go to a thousandth, rounded towards missing their target (a
/// rate ratio down, a p99 ratio up), so that a printed ratio never reads as reaching a target it
/// missed: at two decimals, 2.9996× printed as 3.00× beside "met: no".
#[derive(Debug, PartialEq, Clone, Copy)]
pub enum Shown {
    Figure,
    RateRatio,
    P99Ratio,
}

impl Shown {
    fn text(self, v: f64) -> String {
        match self {
            Shown::Figure => format!("{v:.2}"),
            Shown::RateRatio => format!("{:.3}", (v * 1000.0).floor() / 1000.0),
            Shown::P99Ratio => format!("{:.3}", (v * 1000.0).ceil() / 1000.0),
        }
    }
}

/// Medians, over the runs, of each outcome's delivery rate and p99 and of each ratio.
pub fn medians(runs: &[Run]) -> Vec<Median> {
    let mut figures: Vec<(String, Shown, Vec<f64>)> = Vec::new();
    let mut add = |what: String, shown: Shown, value: Option<f64>| {
        let Some(value) = value else { return };
        match figures.iter_mut().find(|(w, _, _)| *w == what) {
            Some((_, _, values)) => values.push(value),
            None => figures.push((what, shown, vec![value])),
        }
    };
    for run in runs {
        for o in &run.outcomes {
            let name = o.name();
            if o.scenario != "idle_capacity" {
                add(format!("{name}: deliveries/s"), Shown::Figure, Some(o.tally.deliveries_per_second));
                add(format!("{name}: p99 ms"), Shown::Figure, Some(o.tally.latency.p99_ms));
            }
            for key in ["rss_per_connection_kb", "idle_cpu_percent", "all_resynced_after_restart_seconds"] {
                add(format!("{name}: {key}"), Shown::Figure, o.extra[key].as_f64());
            }
        }
        for r in &run.ratios {
            let name = format!("{} / {} ({}, {})", r.stack.label(), r.baseline.label(), r.topology.label(), r.what);
            add(format!("{name}: delivery rate"), Shown::RateRatio, r.delivery_rate);
            add(format!("{name}: p99"), Shown::P99Ratio, r.p99);
            add(format!("{name}: resync time"), Shown::P99Ratio, r.resync_time);
        }
        for e in &run.equal_load {
            let (base, topology, rate) = (e.baseline.label(), e.topology.label(), e.offered_per_second);
            add(
                format!("minim / {base} ({topology}, Mini-M hour at {rate:.0} ev/s): p99"),
                Shown::P99Ratio,
                Some(e.p99),
            );
        }
    }
    figures
        .into_iter()
        .map(|(what, shown, runs)| {
            let mut sorted = runs.clone();
            sorted.sort_by(f64::total_cmp);
            let mid = sorted.len() / 2;
            let median = if sorted.len() % 2 == 1 { sorted[mid] } else { (sorted[mid - 1] + sorted[mid]) / 2.0 };
            Median { what, median, runs, shown }
        })
        .collect()
}

#[derive(Serialize)]
pub struct Machine {
    pub cpu_model: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub kernel: String,
}

impl Machine {
    pub fn here() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, m)| m.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let kib: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_owned();
        Machine {
            cpu_model,
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            memory_gib: kib / 1024.0 / 1024.0,
            kernel,
        }
    }
}

/// minim against a baseline, as the targets state it (and the bare broadcast against socket.io).
#[derive(Serialize, Debug)]
pub struct Ratio {
    pub what: String,
    /// Whose figures are over the baseline's: minim's, but for the headroom row (the bare
    /// broadcast's over socket.io's: the most any server could reach against socket.io here).
    pub stack: Stack,
    pub baseline: Stack,
    pub topology: Topology,
    /// The stack's sustained delivery rate over the baseline's.
    pub delivery_rate: Option<f64>,
    /// The stack's p99 over the baseline's, at the highest offered rate both sustained.
    pub p99: Option<f64>,
    /// That common rate (events per second), when there is one.
    pub at_offered_per_second: Option<f64>,
    /// The reconnect storm: the time until every client of the restarted node was back (and for
    /// minim and socket.io, caught up), minim's over the baseline's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resync_time: Option<f64>,
    pub target: String,
    pub met: Option<bool>,
}

/// The ratios the targets are stated in, from whatever outcomes the run has.
pub fn ratios(outcomes: &[Outcome]) -> Vec<Ratio> {
    let find = |scenario: &str, stack: Stack, topology: Topology| {
        outcomes.iter().find(|o| o.scenario == scenario && o.stack == stack && o.topology == topology)
    };
    let mut ratios = Vec::new();
    for topology in [Topology::OneNode, Topology::TwoNodesRedis] {
        let Some(minim) = find("mini_m_hour", Stack::Minim, topology) else { continue };
        for (baseline, rate_target, p99_target) in [(Stack::Bare, 0.7, 1.5), (Stack::SocketIo, 3.0, 1.0)] {
            let Some(base) = find("mini_m_hour", baseline, topology) else { continue };
            let delivery_rate = sustained_rate(base).and_then(|b| Some(sustained_rate(minim)? / b));
            let common = common_step(minim, base);
            let p99 = common.as_ref().map(|(_, m, b)| m / b);
            let met = delivery_rate.map(|r| r >= rate_target && p99.is_none_or(|p| p <= p99_target));
            let target = if baseline == Stack::Bare {
                format!("rate ≥ {rate_target}×, p99 ≤ {p99_target}×")
            } else {
                format!("rate ≥ {rate_target}×, p99 no worse")
            };
            ratios.push(Ratio {
                what: "Mini-M hour: sustained delivery rate (p99 < 50 ms)".into(),
                stack: Stack::Minim,
                baseline,
                topology,
                delivery_rate,
                p99,
                at_offered_per_second: common.map(|(rate, _, _)| rate),
                resync_time: None,
                target,
                met,
            });
        }
    }
    // The headroom against socket.io: the bare broadcast does less for an event than any server
    // that keeps a board can, so its own ratio is the most minim's could be on this machine.
    let two = Topology::TwoNodesRedis;
    if let (Some(bare), Some(socketio)) =
        (find("mini_m_hour", Stack::Bare, two), find("mini_m_hour", Stack::SocketIo, two))
    {
        let common = common_step(bare, socketio);
        ratios.push(Ratio {
            what: "Mini-M hour: sustained delivery rate (p99 < 50 ms), the headroom".into(),
            stack: Stack::Bare,
            baseline: Stack::SocketIo,
            topology: two,
            delivery_rate: sustained_rate(socketio).and_then(|s| Some(sustained_rate(bare)? / s)),
            p99: common.map(|(_, b, s)| b / s),
            at_offered_per_second: common.map(|(rate, _, _)| rate),
            resync_time: None,
            target: "(no target: the most minim's ratio could be)".into(),
            met: None,
        });
    }
    // Scenarios that offer every stack the same load: no target, the ratios say how minim held it.
    let same_load = [
        ("town_hall", Topology::OneNode, "Town hall: the same offered load"),
        ("reconnect_storm", Topology::TwoNodesRedis, "Reconnect storm: the same offered load, one node restarted"),
    ];
    let back = |o: &Outcome| o.extra["all_resynced_after_restart_seconds"].as_f64().filter(|s| *s > 0.0);
    for (scenario, topology, what) in same_load {
        let Some(minim) = find(scenario, Stack::Minim, topology) else { continue };
        for baseline in [Stack::Bare, Stack::SocketIo] {
            let Some(base) = find(scenario, baseline, topology) else { continue };
            let (m, b) = (&minim.tally, &base.tally);
            ratios.push(Ratio {
                what: what.into(),
                stack: Stack::Minim,
                baseline,
                topology,
                delivery_rate: (b.deliveries_per_second > 0.0)
                    .then(|| m.deliveries_per_second / b.deliveries_per_second),
                p99: (b.latency.p99_ms > 0.0).then(|| m.latency.p99_ms / b.latency.p99_ms),
                at_offered_per_second: None,
                // Only the storm records it.
                resync_time: back(minim).zip(back(base)).map(|(m, b)| m / b),
                target: "(no target; the same load for all)".into(),
                met: None,
            });
        }
    }
    ratios
}

/// minim's Mini-M hour p99 beside a baseline's at one offered rate both sustained (in the same run).
/// The targets compare the p99s at the highest such rate; these show the gap at every load.
#[derive(Serialize)]
pub struct EqualLoad {
    pub baseline: Stack,
    pub topology: Topology,
    pub offered_per_second: f64,
    pub minim_p99_ms: f64,
    pub baseline_p99_ms: f64,
    /// minim's p99 over the baseline's.
    pub p99: f64,
}

/// Every offered rate that minim and a baseline both sustained in the Mini-M hour, in order.
pub fn equal_load(outcomes: &[Outcome]) -> Vec<EqualLoad> {
    let mut found = Vec::new();
    for o in outcomes.iter().filter(|o| o.scenario == "mini_m_hour" && o.stack == Stack::Minim) {
        let baselines =
            outcomes.iter().filter(|b| b.scenario == o.scenario && b.stack != o.stack && b.topology == o.topology);
        for base in baselines {
            found.extend(shared_steps(o, base).into_iter().filter(|(_, _, b)| *b > 0.0).map(|(rate, m, b)| {
                EqualLoad {
                    baseline: base.stack,
                    topology: o.topology,
                    offered_per_second: rate,
                    minim_p99_ms: m,
                    baseline_p99_ms: b,
                    p99: m / b,
                }
            }));
        }
    }
    found
}

/// The delivery rate of the highest sustained step, if any step was sustained.
fn sustained_rate(o: &Outcome) -> Option<f64> {
    (o.extra["sustained"] == true).then_some(o.tally.deliveries_per_second)
}

/// The highest offered rate both sustained, with each one's p99 there.
fn common_step(a: &Outcome, b: &Outcome) -> Option<(f64, f64, f64)> {
    shared_steps(a, b).pop()
}

/// The offered rates both sustained, lowest first, with each one's p99 there (a retried step's
/// sustained try, as only one try of a step can be).
fn shared_steps(a: &Outcome, b: &Outcome) -> Vec<(f64, f64, f64)> {
    let steps = |o: &Outcome| -> Vec<(f64, f64)> {
        o.extra["steps"]
            .as_array()
            .map(|s| {
                s.iter()
                    .filter(|s| s["sustained"] == true)
                    .filter_map(|s| Some((s["offered_per_second"].as_f64()?, s["p99_ms"].as_f64()?)))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (sa, sb) = (steps(a), steps(b));
    let mut shared: Vec<(f64, f64, f64)> = sa
        .iter()
        .filter_map(|(rate, pa)| sb.iter().find(|(r, _)| r == rate).map(|(_, pb)| (*rate, *pa, *pb)))
        .collect();
    shared.sort_by(|x, y| x.0.total_cmp(&y.0));
    shared
}

/// The report as a person reads it (Markdown tables): each run, then the medians.
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    let m = &report.machine;
    let _ = writeln!(out, "minim benchmarks ({} scale), {}", report.scale.name, report.date);
    let _ = writeln!(out, "machine: {} cores, {:.1} GiB, {} (kernel {})", m.cores, m.memory_gib, m.cpu_model, m.kernel);
    let _ = writeln!(out, "command: {}\n", report.command);
    for (i, run) in report.runs.iter().enumerate() {
        if report.runs.len() > 1 {
            let _ = writeln!(out, "\n## Run {} of {}\n", i + 1, report.runs.len());
        }
        run_table(&mut out, run);
    }
    if report.runs.len() > 1 {
        let _ = writeln!(out, "\n## Medians of {} runs\n", report.runs.len());
        let _ = writeln!(out, "| figure | median | runs |");
        let _ = writeln!(out, "|---|---|---|");
        for m in &report.medians {
            let runs: Vec<String> = m.runs.iter().map(|v| m.shown.text(*v)).collect();
            let _ = writeln!(out, "| {} | {} | {} |", m.what, m.shown.text(m.median), runs.join(", "));
        }
    }
    out
}

fn run_table(out: &mut String, run: &Run) {
    let _ = writeln!(
        out,
        "| scenario | stack | topology | clients | setup conn/s | offered ev/s | events/s | deliveries/s | p50 ms | p99 ms | p99.9 ms | max ms | lost | dup | rejected | server CPU % | peak RSS MB | Redis CPU s |"
    );
    let _ = writeln!(out, "|{}", "---|".repeat(18));
    for o in &run.outcomes {
        let t = &o.tally;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.0} | {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.1} | {} | {} | {} | {:.0} | {:.0} | {:.1} |",
            o.scenario,
            o.stack.label(),
            o.topology.label(),
            o.clients,
            o.setup_per_second,
            o.offered_per_second.map_or("-".into(), |r| format!("{r:.0}")),
            t.events_per_second,
            t.deliveries_per_second,
            t.latency.p50_ms,
            t.latency.p99_ms,
            t.latency.p999_ms,
            t.latency.max_ms,
            t.lost,
            t.duplicated,
            t.rejected,
            o.cost.cpu_percent,
            o.cost.peak_rss_mb,
            o.cost.redis_cpu_seconds,
        );
    }
    for o in run.outcomes.iter().filter(|o| o.scenario == "mini_m_hour") {
        let _ = writeln!(
            out,
            "\nMini-M hour steps, {} on {} (sustained: p99 < {P99_TARGET_MS} ms, ≥90% of the offered rate accepted, nothing lost; a step that misses is tried once more; after the first rate missed, the gap below it is halved up to twice):",
            o.stack.label(),
            o.topology.label()
        );
        let _ = writeln!(
            out,
            "| offered ev/s | try | events/s | deliveries/s | p50 ms | p99 ms | p99 ms: author's node / other | CPU %: server / Redis / load generator | waited for a CPU, ms/s: server / Redis / load generator | appends to the store: all / over 50 ms | sustained |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|");
        for s in o.extra["steps"].as_array().into_iter().flatten() {
            let _ = writeln!(
                out,
                "| {:.0} | {} | {:.0} | {:.0} | {:.2} | {:.2} | {} | {:.0} / {:.0} / {:.0} | {:.0} / {:.0} / {:.0} | {} | {} |",
                s["offered_per_second"].as_f64().unwrap_or(0.0),
                s["attempt"].as_u64().unwrap_or(1),
                s["events_per_second"].as_f64().unwrap_or(0.0),
                s["deliveries_per_second"].as_f64().unwrap_or(0.0),
                s["p50_ms"].as_f64().unwrap_or(0.0),
                s["p99_ms"].as_f64().unwrap_or(0.0),
                match (s["p99_authors_node_ms"].as_f64(), s["p99_other_node_ms"].as_f64()) {
                    (Some(own), Some(other)) => format!("{own:.2} / {other:.2}"),
                    _ => "-".into(),
                },
                s["cpu_percent"].as_f64().unwrap_or(0.0),
                s["redis_cpu_percent"].as_f64().unwrap_or(0.0),
                s["generator_cpu_percent"].as_f64().unwrap_or(0.0),
                s["waited_ms_per_second"].as_f64().unwrap_or(0.0),
                s["redis_waited_ms_per_second"].as_f64().unwrap_or(0.0),
                s["generator_waited_ms_per_second"].as_f64().unwrap_or(0.0),
                match (s["store_appends"].as_f64(), s["store_appends_slow"].as_f64()) {
                    (Some(all), Some(slow)) => format!("{all:.0} / {slow:.0}"),
                    _ => "-".into(),
                },
                if s["sustained"] == true { "yes" } else { "no" },
            );
        }
    }
    for o in run.outcomes.iter().filter(|o| o.scenario == "idle_capacity") {
        let e = &o.extra;
        let _ = writeln!(
            out,
            "\nIdle, {}: {} connections, {:.1} kB per connection, heartbeat CPU {:.2}% ({:.2} µs per connection per second), {} still connected",
            o.stack.label(),
            o.clients,
            e["rss_per_connection_kb"].as_f64().unwrap_or(0.0),
            e["idle_cpu_percent"].as_f64().unwrap_or(0.0),
            e["idle_cpu_us_per_connection_per_second"].as_f64().unwrap_or(0.0),
            e["still_connected"],
        );
    }
    for o in run.outcomes.iter().filter(|o| o.scenario == "reconnect_storm") {
        let e = &o.extra;
        let (back, lost) = if o.stack.has_rules() {
            ("resynced", "lost")
        } else {
            ("reconnected (the relay keeps nothing to catch up from)", "missed while away")
        };
        let _ = writeln!(
            out,
            "\nReconnect storm, {}: {} clients, {} on the restarted node; node down {:.2} s; every client {back} {:.2} s after the restart began ({:.2} s after the node was back); {lost} {}, duplicated {}, out of order {}",
            o.stack.label(),
            o.clients,
            e["clients_on_restarted_node"],
            e["node_down_seconds"].as_f64().unwrap_or(0.0),
            e["all_resynced_after_restart_seconds"].as_f64().unwrap_or(0.0),
            e["all_resynced_after_node_back_seconds"].as_f64().unwrap_or(0.0),
            o.tally.lost,
            o.tally.duplicated,
            o.tally.out_of_order,
        );
    }
    if !run.ratios.is_empty() {
        let _ = writeln!(
            out,
            "\n| stack | vs | topology | scenario | delivery rate | p99 | at offered ev/s | resync time | target | met |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
        for r in &run.ratios {
            let x = |v: Option<f64>, shown: Shown| v.map_or("-".into(), |v| format!("{}×", shown.text(v)));
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.stack.label(),
                r.baseline.label(),
                r.topology.label(),
                r.what,
                x(r.delivery_rate, Shown::RateRatio),
                x(r.p99, Shown::P99Ratio),
                r.at_offered_per_second.map_or("-".into(), |v| format!("{v:.0}")),
                x(r.resync_time, Shown::P99Ratio),
                r.target,
                r.met.map_or("-", |m| if m { "yes" } else { "no" }),
            );
        }
    }
    if !run.equal_load.is_empty() {
        let _ = writeln!(out, "\nMini-M hour p99 at equal load (every offered rate both sustained):");
        let _ = writeln!(out, "| minim vs | topology | offered ev/s | minim p99 ms | baseline p99 ms | p99 |");
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        for e in &run.equal_load {
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {:.2} | {:.2} | {}× |",
                e.baseline.label(),
                e.topology.label(),
                e.offered_per_second,
                e.minim_p99_ms,
                e.baseline_p99_ms,
                Shown::P99Ratio.text(e.p99),
            );
        }
    }
}

/// Every outcome `of` picks that lost, doubled or reordered an event, named with its run, scenario,
/// stack and topology, so that a baseline that fell too far behind (socket.io in a town hall) is
/// told apart from a fault of the harness or of minim.
pub fn inexact(runs: &[Run], of: impl Fn(&Outcome) -> bool) -> Vec<String> {
    let outcomes = runs.iter().enumerate().flat_map(|(i, run)| run.outcomes.iter().map(move |o| (i + 1, o)));
    outcomes
        .filter(|(_, o)| of(o) && !o.is_exact())
        .map(|(run, o)| {
            let t = &o.tally;
            format!(
                "run {run}, {}: lost {}, duplicated {}, out of order {}",
                o.name(),
                t.lost,
                t.duplicated,
                t.out_of_order
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_are_the_middle_run_or_the_mean_of_the_middle_two() {
        let ratio = |rate: f64| Ratio {
            what: "Mini-M".into(),
            stack: Stack::Minim,
            baseline: Stack::Bare,
            topology: Topology::TwoNodesRedis,
            delivery_rate: Some(rate),
            p99: None,
            at_offered_per_second: None,
            resync_time: None,
            target: String::new(),
            met: None,
        };
        let runs: Vec<Run> =
            [0.6, 0.9, 0.5].map(|r| Run { outcomes: vec![], ratios: vec![ratio(r)], equal_load: vec![] }).into();
        let m = medians(&runs);
        assert_eq!(m.len(), 1, "a missing p99 is no figure: {m:?}");
        assert_eq!((m[0].median, m[0].runs.clone()), (0.6, vec![0.6, 0.9, 0.5]));
        assert_eq!(medians(&runs[..2])[0].median, 0.75);
    }

    fn hour(stack: Stack, topology: Topology, steps: serde_json::Value) -> Outcome {
        Outcome {
            scenario: "mini_m_hour",
            stack,
            topology,
            clients: 16,
            setup_per_second: 0.0,
            offered_per_second: None,
            tally: Default::default(),
            cost: Default::default(),
            extra: serde_json::json!({ "sustained": true, "steps": steps }),
        }
    }

    #[test]
    fn p99s_are_compared_at_every_rate_both_sustained_and_only_there() {
        // (offered ev/s, p99 ms, sustained) for each try, as the Mini-M hour records them.
        let steps = |tries: &[(f64, f64, bool)]| -> serde_json::Value {
            let step = |&(rate, p99, sustained): &(f64, f64, bool)| serde_json::json!({ "offered_per_second": rate, "p99_ms": p99, "sustained": sustained });
            tries.iter().map(step).collect()
        };
        let (one, two) = (Topology::OneNode, Topology::TwoNodesRedis);
        let outcomes = [
            // The retried 6,000 counts with its sustained try; minim missed 7,000 twice.
            hour(
                Stack::Minim,
                one,
                steps(&[
                    (5000.0, 7.0, true),
                    (6000.0, 80.0, false),
                    (6000.0, 6.0, true),
                    (7000.0, 90.0, false),
                    (7000.0, 95.0, false),
                ]),
            ),
            hour(
                Stack::Bare,
                one,
                steps(&[(4000.0, 1.0, true), (5000.0, 2.0, true), (6000.0, 3.0, true), (7000.0, 3.5, true)]),
            ),
            // Another topology's baseline is not compared with this minim.
            hour(Stack::SocketIo, two, steps(&[(5000.0, 9.0, true)])),
        ];
        let found: Vec<(Stack, f64, f64, f64, f64)> = equal_load(&outcomes)
            .iter()
            .map(|e| (e.baseline, e.offered_per_second, e.minim_p99_ms, e.baseline_p99_ms, e.p99))
            .collect();
        assert_eq!(found, vec![(Stack::Bare, 5000.0, 7.0, 2.0, 3.5), (Stack::Bare, 6000.0, 6.0, 3.0, 2.0)]);
        assert_eq!(common_step(&outcomes[0], &outcomes[1]), Some((6000.0, 6.0, 3.0)));
        let run = Run::of(outcomes.into());
        let medians = medians(&[run]);
        let at_5000 = medians.iter().find(|m| m.what.contains("at 5000 ev/s")).expect("a median per rate");
        assert_eq!((at_5000.median, at_5000.shown), (3.5, Shown::P99Ratio));
    }

    #[test]
    fn the_bare_broadcasts_own_ratio_to_socketio_is_the_headroom_beside_minims() {
        let two = Topology::TwoNodesRedis;
        let at = |rate: f64, deliveries: f64, stack| {
            let step = serde_json::json!([{ "offered_per_second": rate, "p99_ms": 20.0, "sustained": true }]);
            let mut o = hour(stack, two, step);
            o.tally.deliveries_per_second = deliveries;
            o
        };
        let outcomes = [
            at(7000.0, 56_000.0, Stack::Minim),
            at(9000.0, 72_000.0, Stack::Bare),
            at(3000.0, 24_000.0, Stack::SocketIo),
        ];
        let ratios = ratios(&outcomes);
        let of = |stack, baseline| {
            ratios.iter().find(|r| r.stack == stack && r.baseline == baseline).and_then(|r| r.delivery_rate)
        };
        assert_eq!(of(Stack::Minim, Stack::SocketIo), Some(56_000.0 / 24_000.0));
        assert_eq!(of(Stack::Minim, Stack::Bare), Some(56_000.0 / 72_000.0));
        assert_eq!(of(Stack::Bare, Stack::SocketIo), Some(3.0), "the most minim's could be");
        let headroom = ratios.iter().find(|r| r.stack == Stack::Bare).unwrap();
        assert_eq!(headroom.met, None, "no target of its own");
    }

    #[test]
    fn a_ratio_is_printed_rounded_towards_missing_its_target() {
        assert_eq!(Shown::RateRatio.text(2.9996), "2.999");
        assert_eq!(Shown::RateRatio.text(3.0), "3.000");
        assert_eq!(Shown::RateRatio.text(0.7149), "0.714");
        assert_eq!(Shown::P99Ratio.text(1.5004), "1.501");
        assert_eq!(Shown::P99Ratio.text(1.5), "1.500");
        assert_eq!(Shown::Figure.text(95_932.578), "95932.58");
    }

    #[test]
    fn outcomes_that_lost_an_event_are_named_with_their_run_and_only_a_baseline_falling_behind_passes() {
        let exact = hour(Stack::Minim, Topology::OneNode, serde_json::json!([]));
        let mut late = hour(Stack::SocketIo, Topology::TwoNodesRedis, serde_json::json!([]));
        late.scenario = "town_hall";
        late.tally.lost = 1232;
        let run = |outcomes| Run { outcomes, ratios: vec![], equal_load: vec![] };
        let mut doubled = hour(Stack::SocketIo, Topology::TwoNodesRedis, serde_json::json!([]));
        doubled.tally.duplicated = 3;
        let mut minim_late = late.clone();
        minim_late.stack = Stack::Minim;
        minim_late.tally.lost = 1;
        let runs = [run(vec![exact.clone()]), run(vec![exact, late, doubled, minim_late])];
        assert_eq!(
            inexact(&runs, |_| true),
            [
                "run 2, town_hall / socket.io / 2 nodes + Redis: lost 1232, duplicated 0, out of order 0",
                "run 2, mini_m_hour / socket.io / 2 nodes + Redis: lost 0, duplicated 3, out of order 0",
                "run 2, town_hall / minim / 2 nodes + Redis: lost 1, duplicated 0, out of order 0"
            ]
        );
        // socket.io falling behind is its result; its doubling an event, or minim losing one, is not.
        assert_eq!(
            inexact(&runs, Outcome::fails_the_run),
            [
                "run 2, mini_m_hour / socket.io / 2 nodes + Redis: lost 0, duplicated 3, out of order 0",
                "run 2, town_hall / minim / 2 nodes + Redis: lost 1, duplicated 0, out of order 0"
            ]
        );
        assert!(inexact(&runs[..1], |_| true).is_empty());
    }
}
