//! `minim-bench`: runs the benchmark scenarios and prints the table; `--json` writes the results.
//! `scripts/bench` builds everything and runs this (see BENCHMARKS.md).

use anyhow::Context;
use clap::Parser;
use minim_bench::procs::{Programs, raise_fd_limit};
use minim_bench::report::{self, Machine, Report};
use minim_bench::scenarios::{self, Outcome, Scale};
use minim_bench::stack::{Stack, Topology};
use minim_bench::{Selection, run};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(about = "Load generator: minim side by side with a bare broadcast and socket.io")]
struct Args {
    /// The full version (finer rate steps, longer stretches, Mini-M hour on one node too).
    #[arg(long)]
    full: bool,
    /// The CI's small scale (proves the harness; its timings mean nothing).
    #[arg(long, conflicts_with = "full")]
    smoke: bool,
    /// Only these scenarios (town_hall, mini_m_hour, reconnect_storm, idle_capacity).
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<String>,
    /// Only these stacks (minim, bare, socketio).
    #[arg(long, value_delimiter = ',')]
    stacks: Vec<Stack>,
    /// Mini-M hour: only these topologies (one_node, two_nodes_redis).
    #[arg(long, value_delimiter = ',')]
    topologies: Vec<Topology>,
    /// Mini-M hour: try these offered rates (events per second) instead of the scale's ladder.
    #[arg(long, value_delimiter = ',')]
    rates: Vec<f64>,
    /// Run everything this many times and report the medians too.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
    repeat: u32,
    /// Where to write the results as JSON.
    #[arg(long, default_value = "target/bench/results.json")]
    json: PathBuf,
    /// Only measure how steadily the disk syncs a small write, for this many seconds, and print it
    /// (what minim on one node waits for before anyone sees an event).
    #[arg(long, value_name = "SECONDS")]
    disk_probe: Option<u64>,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(seconds) = args.disk_probe {
        let seen =
            tokio::task::spawn_blocking(move || minim_bench::disk::probe(Duration::from_secs(seconds))).await??;
        println!("{seen}");
        return Ok(());
    }
    let limit = raise_fd_limit().context("while raising the open-file limit")?;
    let scale = if args.full {
        Scale::full()
    } else if args.smoke {
        Scale::smoke()
    } else {
        Scale::quick()
    };
    let mut scale = scale;
    if !args.rates.is_empty() {
        scale.rates = args.rates.clone();
    }
    let mut selection = Selection::everything();
    if !args.scenarios.is_empty() {
        for s in &args.scenarios {
            anyhow::ensure!(Selection::SCENARIOS.contains(&s.as_str()), "unknown scenario {s:?}");
        }
        selection.scenarios = args.scenarios.clone();
    }
    if !args.topologies.is_empty() {
        // The quick scale runs the Mini-M hour on two nodes only: asking it for one node alone
        // would run nothing of it, silently.
        anyhow::ensure!(
            scale.mini_m_one_node || args.topologies.contains(&Topology::TwoNodesRedis),
            "the quick scale runs the Mini-M hour on two nodes only; add --full for one node"
        );
        selection.topologies = args.topologies.clone();
    }
    if !args.stacks.is_empty() {
        selection.stacks = args.stacks.clone();
    }
    let programs = Programs::beside_me()?;
    programs.check(&selection.stacks)?;
    eprintln!("open-file limit {limit}; {} scale", scale.name);
    let mut runs = Vec::new();
    for i in 1..=args.repeat {
        eprintln!("run {i} of {}", args.repeat);
        let outcomes = run(&programs, &scale, &selection, |o| {
            eprintln!(
                "{}: {:.0} deliveries/s, p99 {:.2} ms, lost {}, dup {}",
                o.name(),
                o.tally.deliveries_per_second,
                o.tally.latency.p99_ms,
                o.tally.lost,
                o.tally.duplicated
            )
        })
        .await?;
        runs.push(report::Run::of(outcomes));
    }
    let date = std::process::Command::new("date").arg("-u").arg("+%Y-%m-%dT%H:%MZ").output()?;
    let report = Report {
        date: String::from_utf8_lossy(&date.stdout).trim().to_owned(),
        machine: Machine::here(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        scale,
        medians: report::medians(&runs),
        runs,
    };
    println!("{}", report::table(&report));
    if let Some(dir) = args.json.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.json, serde_json::to_string_pretty(&report)?)?;
    eprintln!("results written to {}", args.json.display());
    let patience = scenarios::DRAIN_PATIENCE.as_secs();
    let behind = report::inexact(&report.runs, |o| !o.fails_the_run());
    if !behind.is_empty() {
        eprintln!(
            "a baseline fell behind, or (the bare relay, in the reconnect storm) had nothing to catch its clients \
             up from: events not delivered within {patience} s of the end of the offered load are counted as lost \
             in its figures (a result, not a fault of the run):\n{}",
            behind.join("\n")
        );
    }
    let inexact = report::inexact(&report.runs, Outcome::fails_the_run);
    anyhow::ensure!(
        inexact.is_empty(),
        "events lost (not delivered within {patience} s of the end of the offered load), duplicated or reordered:\n{}",
        inexact.join("\n")
    );
    Ok(())
}
