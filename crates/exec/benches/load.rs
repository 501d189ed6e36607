//! Reported probe durations under issue 10's load: 20 worker processes at once (each like one
//! `hostready check`: one default runner, one probe that forks 1,000 sleepers, 5 s timeout),
//! once per containment. The bound is timeout + grace + reap wait = 7.5 s.
//!
//! `cargo bench -p hostready-exec --bench load` (all of v2, v1-pids, off), or name some:
//! `cargo bench -p hostready-exec --bench load -- off v2`. Figures: docs/bench-exec.md.

// Tests build fake hosts and read fixtures on this machine directly.
#![allow(clippy::disallowed_methods)]

#[path = "../tests/support/load.rs"]
mod load;

use std::path::Path;
use std::time::Duration;

use hostready_exec::CgroupPolicy;

const WORKERS: usize = 20;
const SLEEPERS: usize = 1000;

fn main() {
    if std::env::var_os(load::DIR_VAR).is_some() {
        load::worker_main();
        return;
    }
    let asked: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let policies: Vec<CgroupPolicy> = [CgroupPolicy::V2, CgroupPolicy::V1Pids, CgroupPolicy::Off]
        .into_iter()
        .filter(|p| asked.is_empty() || asked.iter().any(|a| a == load::policy_name(*p)))
        .collect();
    let exe = std::env::current_exe().unwrap();
    println!("| containment | workers | sleepers killed | min | median | max | over 7.5 s |");
    println!("|---|---|---|---|---|---|---|");
    for p in policies {
        let dir = tempfile::Builder::new()
            .prefix("hrx-bench-load-")
            .tempdir()
            .unwrap();
        std::fs::copy("/bin/sleep", dir.path().join("sleep")).unwrap();
        load::write_script(dir.path());
        let children = load::start(&exe, &[], WORKERS, SLEEPERS, p, dir.path());
        let mut reports = load::collect(children, Duration::from_secs(180));
        cleanup(dir.path());
        reports.sort_by_key(|r| r.duration);
        let n = reports.len();
        assert!(n > 0, "no worker reported");
        let over = reports
            .iter()
            .filter(|r| r.duration > Duration::from_millis(7500))
            .count();
        let killed: usize = reports.iter().map(|r| r.killed).sum();
        println!(
            "| {} | {n} | {killed} | {:.2} s | {:.2} s | {:.2} s | {over} |",
            load::policy_name(p),
            reports[0].duration.as_secs_f64(),
            reports[n / 2].duration.as_secs_f64(),
            reports[n - 1].duration.as_secs_f64(),
        );
    }
}

/// Kills whatever still names the scratch directory (nothing, if the runner did its job).
fn cleanup(dir: &Path) {
    let marker = dir.to_string_lossy().into_owned();
    let mut left = 0;
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if cmd.windows(marker.len()).any(|w| w == marker.as_bytes()) {
            left += 1;
            let _ = std::process::Command::new("/bin/kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
    if left > 0 {
        eprintln!("{left} processes of the load were left and have been killed");
    }
}
