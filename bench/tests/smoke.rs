//! The benchmark harness, proven on every scenario and every stack at a small scale: each client
//! receives every event of its board exactly once, in order for minim (except what the bare
//! relay's clients miss while their node restarts: it keeps nothing to catch them up from), every
//! command the scenarios send is one the rules accept, and every figure the report needs is there. Nothing is
//! timed here (CI machines are noisy); `scripts/bench` measures.

use minim_bench::procs::Programs;
use minim_bench::scenarios::Scale;
use minim_bench::stack::{Stack, Topology};
use minim_bench::{Selection, report, run};
use std::path::PathBuf;

fn programs() -> Programs {
    let programs = Programs {
        minim: minim_tests::minim_binary().to_owned(),
        bare: PathBuf::from(env!("CARGO_BIN_EXE_bare-broadcast")),
        socketio_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("socketio"),
        node: PathBuf::from("node"),
    };
    programs.check(&Stack::ALL).expect("scripts/test installs Node.js and the socket.io baseline's packages");
    programs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_on_every_stack_delivers_each_event_exactly_once() {
    let scale = Scale::smoke();
    let last_rate = *scale.rates.last().expect("the smoke ladder has steps");
    let outcomes = run(&programs(), &scale, &Selection::everything(), |_| {}).await.expect("the run completes");

    let runs: Vec<_> = outcomes.iter().map(|o| (o.scenario, o.stack, o.topology)).collect();
    for stack in Stack::ALL {
        assert!(runs.contains(&("town_hall", stack, Topology::OneNode)), "{runs:?}");
        assert!(runs.contains(&("mini_m_hour", stack, Topology::TwoNodesRedis)), "{runs:?}");
        assert!(runs.contains(&("idle_capacity", stack, Topology::OneNode)), "{runs:?}");
        assert!(runs.contains(&("reconnect_storm", stack, Topology::TwoNodesRedis)), "{runs:?}");
    }
    assert!(runs.contains(&("mini_m_hour", Stack::Minim, Topology::OneNode)), "{runs:?}");

    for o in &outcomes {
        let what = format!("{} / {} / {}", o.scenario, o.stack.label(), o.topology.label());
        let t = &o.tally;
        if o.stack == Stack::Bare && o.scenario == "reconnect_storm" {
            assert_eq!((t.duplicated, t.out_of_order), (0, 0), "{what}: {t:?}");
        } else {
            assert_eq!((t.lost, t.duplicated, t.out_of_order), (0, 0, 0), "{what}: {t:?}");
        }
        assert_eq!(o.extra["client_failures"], serde_json::json!([]), "{what}: {}", o.extra);
        assert!(o.setup_per_second > 0.0, "{what}");
        assert!(o.cost.peak_rss_mb > 0.0, "{what}: {:?}", o.cost);
        if o.topology == Topology::TwoNodesRedis || o.stack == Stack::SocketIo {
            assert!(o.cost.redis_peak_rss_mb > 0.0, "{what}: Redis is measured too: {:?}", o.cost);
        }
        if o.scenario == "idle_capacity" {
            assert_eq!(o.extra["still_connected"], o.clients, "{what}: {}", o.extra);
            assert!(o.extra["rss_per_connection_kb"].as_f64().is_some(), "{what}");
            continue;
        }
        // The scenarios only send what the rules accept, so every command produced events and
        // every client got them all.
        assert_eq!(t.rejected, 0, "{what}: {}", o.extra);
        assert!(t.accepted > 0 && t.deliveries >= t.accepted, "{what}: {t:?}");
        assert!(t.latency.samples > 0 && t.latency.p50_ms > 0.0, "{what}: {t:?}");
        if o.scenario == "mini_m_hour" {
            // Small rates: every step is sustained (on its first try, or its second on a bad
            // moment of a busy CI machine), so the ladder reaches the last one and reports it.
            assert_eq!(o.extra["sustained"], true, "{what}: {}", o.extra);
            assert_eq!(o.offered_per_second, Some(last_rate), "{what}: {}", o.extra);
            let steps = o.extra["steps"].as_array().map_or(0, Vec::len);
            assert!((2..=4).contains(&steps), "{what}: {}", o.extra);
            // minim's appends to its store are counted in every step (from its stage timings): on
            // one node at most one per command accepted (on two, an append that found another
            // node's first is tried again); the baselines have none to count.
            for step in o.extra["steps"].as_array().into_iter().flatten() {
                let (all, slow) = (step["store_appends"].as_f64(), step["store_appends_slow"].as_f64());
                if o.stack == Stack::Minim {
                    let accepted = step["accepted"].as_f64().unwrap_or(0.0);
                    let all = all.unwrap_or_else(|| panic!("{what}: appends counted: {step}"));
                    let most = if o.topology == Topology::OneNode { accepted } else { f64::INFINITY };
                    assert!(all > 0.0 && all <= most, "{what}: {all} appends for {accepted} commands: {step}");
                    assert!(slow.is_some_and(|slow| (0.0..=all).contains(&slow)), "{what}: {step}");
                } else {
                    assert_eq!((all, slow), (None, None), "{what}: {step}");
                }
            }
        }
    }

    for storm in outcomes.iter().filter(|o| o.scenario == "reconnect_storm") {
        let what = storm.stack.label();
        let back = storm.extra["all_resynced_after_restart_seconds"].as_f64();
        assert!(back.is_some_and(|s| s > 0.0), "{what}: every client came back: {}", storm.extra);
        if storm.stack.has_rules() {
            // minim's clients resumed from their last event, socket.io's took a snapshot.
            assert!(storm.tally.caught_up > 0, "{what}: the restarted node's clients caught up: {:?}", storm.tally);
        }
    }

    let ratios = report::ratios(&outcomes);
    let minims = || ratios.iter().filter(|r| r.stack == Stack::Minim);
    assert!(minims().any(|r| r.baseline == Stack::Bare && r.delivery_rate.is_some()));
    assert!(minims().any(|r| r.baseline == Stack::SocketIo && r.delivery_rate.is_some()));
    let headroom = ratios.iter().any(|r| r.stack == Stack::Bare && r.baseline == Stack::SocketIo);
    assert!(headroom && ratios.iter().all(|r| r.stack == Stack::Minim || r.delivery_rate.is_some()), "{ratios:?}");
    for baseline in [Stack::Bare, Stack::SocketIo] {
        let storm = minims().any(|r| r.baseline == baseline && r.resync_time.is_some_and(|t| t > 0.0));
        assert!(storm, "{baseline:?}: the storm's time to come back is compared");
    }
    // Every stack sustained every step, so the p99s are compared at the last one too.
    let equal = report::equal_load(&outcomes);
    for baseline in [Stack::Bare, Stack::SocketIo] {
        let found =
            equal.iter().any(|e| e.baseline == baseline && e.offered_per_second == last_rate && e.minim_p99_ms > 0.0);
        assert!(found, "{baseline:?}: no p99 compared at {last_rate} ev/s");
    }
}
