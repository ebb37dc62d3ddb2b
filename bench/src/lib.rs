//! # minim-bench
//!
//! The load a real organisation puts on minim, measured side by side with what people would pick
//! instead. Not part of the product: `scripts/bench` runs it, `BENCHMARKS.md` keeps its figures,
//! and `bench/tests/smoke.rs` runs every scenario small in CI to prove the harness counts right.
//!
//! - [`stack`]: the three stacks (minim, the bare broadcast, socket.io) and how a client speaks to each.
//! - [`procs`]: their server processes, and the CPU and memory the kernel says they used.
//! - [`client`]: one simulated participant over a real WebSocket, timestamping every delivery.
//! - [`setup`]: boards full of connected clients; waiting until they agree.
//! - [`scenarios`]: town hall, Mini-M hour, reconnect storm, idle capacity.
//! - [`measure`]: latency percentiles, rates, and what each client lost or got twice.
//! - [`report`]: the table, the ratios and the JSON.
//! - [`disk`]: how steadily the disk syncs a small write (`--disk-probe`), which minim on one node
//!   waits for and the baselines do not.
//!
//! The baselines live beside it: `src/bin/bare-broadcast.rs` and `socketio/`.

pub mod client;
pub mod clock;
pub mod disk;
pub mod measure;
pub mod procs;
pub mod report;
pub mod scenarios;
pub mod setup;
pub mod stack;

use scenarios::{Outcome, Scale};
use stack::{Stack, Topology};

/// Which scenarios, stacks and (for the Mini-M hour) topologies to run.
#[derive(Clone, Debug)]
pub struct Selection {
    pub scenarios: Vec<String>,
    pub stacks: Vec<Stack>,
    pub topologies: Vec<Topology>,
}

impl Selection {
    pub const SCENARIOS: [&'static str; 4] = ["town_hall", "mini_m_hour", "reconnect_storm", "idle_capacity"];

    pub fn everything() -> Selection {
        Selection {
            scenarios: Selection::SCENARIOS.map(String::from).into(),
            stacks: Stack::ALL.into(),
            topologies: Topology::ALL.into(),
        }
    }

    fn wants(&self, scenario: &str) -> bool {
        self.scenarios.iter().any(|s| s == scenario)
    }
}

/// Runs the selected scenarios, one stack at a time (never two at once: they share the machine).
/// `progress` hears about each outcome as it lands.
pub async fn run(
    programs: &procs::Programs,
    scale: &Scale,
    selection: &Selection,
    mut progress: impl FnMut(&Outcome),
) -> anyhow::Result<Vec<Outcome>> {
    use anyhow::Context;
    let mut outcomes = Vec::new();
    let mut record = |o: Outcome, outcomes: &mut Vec<Outcome>| {
        progress(&o);
        outcomes.push(o);
    };
    if selection.wants("town_hall") {
        for &stack in &selection.stacks {
            let o = scenarios::town_hall(stack, programs, scale)
                .await
                .with_context(|| format!("town hall, {}", stack.label()))?;
            record(o, &mut outcomes);
        }
    }
    if selection.wants("mini_m_hour") {
        let mut runs = vec![Topology::TwoNodesRedis];
        if scale.mini_m_one_node {
            runs.push(Topology::OneNode);
        }
        for topology in runs.into_iter().filter(|t| selection.topologies.contains(t)) {
            for &stack in &selection.stacks {
                // socket.io is compared on two nodes, the topology teams would run it in.
                if stack == Stack::SocketIo && topology == Topology::OneNode {
                    continue;
                }
                let o = scenarios::mini_m_hour(stack, topology, programs, scale)
                    .await
                    .with_context(|| format!("Mini-M hour, {}, {}", stack.label(), topology.label()))?;
                record(o, &mut outcomes);
            }
        }
    }
    if selection.wants("reconnect_storm") {
        for &stack in &selection.stacks {
            let o = scenarios::reconnect_storm(stack, programs, scale)
                .await
                .with_context(|| format!("reconnect storm, {}", stack.label()))?;
            record(o, &mut outcomes);
        }
    }
    if selection.wants("idle_capacity") {
        for &stack in &selection.stacks {
            let o = scenarios::idle_capacity(stack, programs, scale)
                .await
                .with_context(|| format!("idle capacity, {}", stack.label()))?;
            record(o, &mut outcomes);
        }
    }
    Ok(outcomes)
}
