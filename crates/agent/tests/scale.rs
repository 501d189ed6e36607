//! Scale run: hundreds of agent processes against one real API server, bounded in time.
//! Ignored by default; the figures in docs/agent.md come from:
//!
//! ```sh
//! cargo test --release -p hostready-agent --test scale -- --ignored --nocapture
//! HOSTREADY_SCALE_AGENTS=50 HOSTREADY_SCALE_SECS=60 cargo test ...   # smaller
//! ```
//!
//! Time is compressed: each agent checks every 2 s with a 10 s heartbeat, so a two-minute run
//! holds the steady state of many heartbeats. Writes are counted by the API server itself
//! (`apiserver_request_total` for APPLY on nodes/status and POST on events) and scaled to the
//! shipped defaults (heartbeat 5m) per node per hour.

// Tests build fake hosts and read fixtures on this machine directly.
#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use hostready_testkit::process::rss_kib;

#[test]
#[ignore = "minutes long and hundreds of processes; run for the figures in docs/agent.md"]
fn hundreds_of_agents_against_one_api_server() {
    let var = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(d)
    };
    let agents = var("HOSTREADY_SCALE_AGENTS", 200);
    let secs = var("HOSTREADY_SCALE_SECS", 120);
    let heartbeat = 10.0;
    let env = KubeEnv::start();
    let client = env.client();
    let host = TestHost::debian_with_longhorn_packages();
    let names: Vec<String> = (0..agents).map(|i| format!("scale-{i:03}")).collect();
    for n in &names {
        create_node_with_kubelet_conditions(&client, n);
    }
    let apply = [
        "resource=\"nodes\"",
        "subresource=\"status\"",
        "verb=\"APPLY\"",
    ];
    let events = ["resource=\"events\"", "verb=\"POST\""];
    let started = Instant::now();
    let procs: Vec<Agent> = names
        .iter()
        .map(|n| {
            Agent::start(
                &env.kubeconfig,
                &host.args(
                    n,
                    &[
                        "-p",
                        "iscsi",
                        "-p",
                        "nfs-client",
                        "--interval",
                        "2s",
                        "--heartbeat",
                        "10s",
                        "--metrics-addr",
                        "none",
                    ],
                ),
            )
        })
        .collect();
    let spawn_took = started.elapsed();
    // Let every agent publish its first state (and its appearance events), then measure.
    wait_for("every node's conditions", Duration::from_secs(120), || {
        names
            .iter()
            .all(|n| condition(&client, n, "IscsiReady").is_some())
            .then_some(())
    });
    std::thread::sleep(Duration::from_secs(15));
    let (a0, e0, t0) = (
        api_requests(&env.client(), &apply),
        api_requests(&env.client(), &events),
        Instant::now(),
    );
    let mut rss: BTreeMap<u32, u64> = BTreeMap::new();
    while t0.elapsed() < Duration::from_secs(secs) {
        for p in &procs {
            if let Some(r) = rss_kib(p.child.id()) {
                let e = rss.entry(p.child.id()).or_default();
                *e = (*e).max(r);
            }
        }
        std::thread::sleep(Duration::from_secs(5));
    }
    let window = t0.elapsed().as_secs_f64();
    let (a1, e1) = (
        api_requests(&env.client(), &apply),
        api_requests(&env.client(), &events),
    );
    let alive = procs
        .iter()
        .filter(|p| std::fs::metadata(format!("/proc/{}", p.child.id())).is_ok())
        .count();
    let per_node_per_hb = (a1 - a0) / agents as f64 / (window / heartbeat);
    let peaks: Vec<u64> = rss.values().copied().collect();
    let mean = peaks.iter().sum::<u64>() as f64 / peaks.len().max(1) as f64;
    eprintln!(
        "scale: {agents} agents started in {spawn_took:?}, {alive} alive; window {window:.0}s: {} condition applies, {} events => {:.2} applies per node per heartbeat, i.e. {:.1} writes per node per hour at the 5m default; agent RSS peak KiB mean {mean:.0} max {}",
        a1 - a0,
        e1 - e0,
        per_node_per_hb,
        per_node_per_hb * 12.0,
        peaks.iter().max().unwrap_or(&0),
    );
    assert_eq!(alive as u64, agents);
    assert!(e1 - e0 == 0.0, "no events in steady state");
    // At most one write per heartbeat per node (plus slack for jitter at the window's edges).
    assert!(per_node_per_hb <= 1.3, "{per_node_per_hb}");
    drop(procs);
}
