//! The agent's memory over many cycles that include hung probes, against a real API server.
//! Ignored by default (minutes); the figures in docs/agent.md come from:
//!
//! ```sh
//! cargo test --release -p hostready-agent --test soak -- --ignored --nocapture
//! HOSTREADY_SOAK_CYCLES=1000 cargo test ...   # a shorter run
//! ```
//!
//! Each cycle checks the `iscsi` and `nfs-client` profiles on a Debian root and runs two
//! command checks: one that exits at once and one that ignores SIGTERM and sleeps, so it hits
//! its 10 ms deadline and has to be killed with SIGKILL every cycle. Conditions are rewritten
//! every second (heartbeat 1s) to keep the API client busy.

// Tests build fake hosts and read fixtures on this machine directly.
#![allow(clippy::disallowed_methods)]

mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::*;
use hostready_testkit::process::rss_kib;

fn cycles(metrics: &str) -> u64 {
    let (_, text) = http_get(metrics, "/metrics");
    text.lines()
        .find(|l| l.starts_with("hostready_check_cycles_total "))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .unwrap_or(0.0) as u64
}

#[test]
#[ignore = "minutes long; run for the figures in docs/agent.md"]
fn rss_stays_flat_over_many_cycles_with_hung_probes() {
    let n: u64 = std::env::var("HOSTREADY_SOAK_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let env = KubeEnv::start();
    let client = env.client();
    create_node_with_kubelet_conditions(&client, "soak");
    let host = TestHost::debian_with_longhorn_packages();
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("soak.yaml"),
        r#"name: soak
condition: SoakReady
include: [iscsi, nfs-client]
requirements:
  - id: probe.hung
    command: ["/bin/sh", "-c", "trap '' TERM; sleep 60"]
    timeout: 10ms
    on_timeout: fail
  - id: probe.ok
    command: ["/bin/true"]
    timeout: 1s
"#,
    )
    .unwrap();
    let cfg = dir.path().join("agent.yaml");
    fs::write(
        &cfg,
        "profiles: [./soak.yaml]\ninterval: 1ms\nheartbeat: 1s\n",
    )
    .unwrap();
    let max = n.to_string();
    let mut agent = Agent::start(
        &env.kubeconfig,
        &host.args(
            "soak",
            &[
                "--config",
                cfg.to_str().unwrap(),
                "--max-cycles",
                &max,
                "--probe-kill-grace",
                "5ms",
                "--metrics-addr",
                "127.0.0.1:0",
            ],
        ),
    );
    let pid = agent.child.id();
    let metrics = agent.metrics_addr();
    let start = Instant::now();
    // (cycle, rss KiB) samples.
    let mut samples: Vec<(u64, u64)> = Vec::new();
    while agent.child.try_wait().unwrap().is_none() {
        if let (Some(rss), c) = (rss_kib(pid), cycles(&metrics)) {
            samples.push((c, rss));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let took = start.elapsed();
    let status = agent.child.wait().unwrap();
    assert!(status.success(), "{}", agent.log_text());
    let warm = n / 10;
    let steady: Vec<&(u64, u64)> = samples.iter().filter(|(c, _)| *c >= warm).collect();
    let first = steady.first().map_or(0, |s| s.1);
    let last = steady.last().map_or(0, |s| s.1);
    let peak = samples.iter().map(|s| s.1).max().unwrap_or(0);
    let steady_max = steady.iter().map(|s| s.1).max().unwrap_or(0);
    let steady_min = steady.iter().map(|s| s.1).min().unwrap_or(0);
    eprintln!(
        "soak: {n} cycles in {took:?} ({:.1} ms/cycle); RSS KiB: peak {peak}, after {warm} cycles {first}, at the end {last}, steady min {steady_min} max {steady_max}; {} samples",
        took.as_secs_f64() * 1000.0 / n as f64,
        samples.len()
    );
    let text = agent.log_text();
    assert!(!text.contains("panicked"), "{text}");
    assert!(peak <= 16 * 1024, "peak RSS {peak} KiB over 16 MiB");
    assert!(
        steady_max.saturating_sub(steady_min) <= 1024,
        "RSS grew by more than 1 MiB in steady state: {steady_min}..{steady_max} KiB"
    );
    // No probe outlived the agent.
    let leftovers: Vec<String> = fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let s = fs::read_to_string(e.path().join("cmdline")).ok()?;
            s.contains("trap '' TERM; sleep 60").then_some(s)
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
