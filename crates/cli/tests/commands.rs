//! Command checks and `--verify-runs` through the real binary: NPD exit-code semantics,
//! timeouts that return on time, and nothing left running afterwards.

// Tests build fake hosts and read fixtures on this machine directly.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use util::{finding, hostready, run_json};

mod util;

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn run_profile(profile: &Path) -> (i32, Value, Duration) {
    let start = Instant::now();
    let (code, json) = run_json(
        hostready()
            .args(["check", "--output", "json", "--profile"])
            .arg(profile),
    );
    (code, json, start.elapsed())
}

/// Returns the pids of live processes whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<u32> {
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmd = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let state = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            String::from_utf8_lossy(&cmd).contains(marker) && !state.contains(") Z ")
        })
        .collect()
}

#[test]
fn npd_exit_codes_map_to_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let ok = script(dir.path(), "ok", "echo disk sdb healthy; exit 0");
    let bad = script(
        dir.path(),
        "bad",
        "echo disk sdb has 12 pending sectors; exit 1",
    );
    let odd = script(dir.path(), "odd", "echo cannot query SMART; exit 3");
    let envy = script(dir.path(), "envy", "echo \"mode=$MODE path=$PATH\"; exit 0");
    let profile = dir.path().join("p.yaml");
    fs::write(
        &profile,
        format!(
            "name: mine\nrequirements:\n  - id: custom.ok\n    command: [\"{}\"]\n  - id: custom.bad\n    command: [\"{}\", \"--dev\", \"sdb\"]\n    timeout: 5s\n  - id: custom.odd\n    command: [\"{}\"]\n    level: recommended\n  - id: custom.env\n    command: [\"{}\"]\n    env: {{MODE: strict}}\n",
            ok.display(),
            bad.display(),
            odd.display(),
            envy.display()
        ),
    )
    .unwrap();
    let (code, json, _) = run_profile(&profile);
    assert_eq!(code, 1);
    let f = finding(&json, "custom.ok");
    assert_eq!(f["status"], "pass");
    assert_eq!(f["message"], "disk sdb healthy");
    let f = finding(&json, "custom.bad");
    assert_eq!(f["status"], "fail");
    assert_eq!(f["message"], "disk sdb has 12 pending sectors");
    assert!(
        f["evidence"]["command"]
            .as_str()
            .unwrap()
            .ends_with("bad --dev sdb"),
        "{f:#}"
    );
    assert_eq!(f["evidence"]["exit"], "exit code 1");
    assert_eq!(finding(&json, "custom.odd")["status"], "unknown");
    let f = finding(&json, "custom.env");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .starts_with("mode=strict path="),
        "{f:#}"
    );
}

#[test]
fn timeouts_return_on_time_and_leave_nothing_running() {
    let dir = tempfile::tempdir().unwrap();
    let marker = format!("hostready-timeout-test-{}", std::process::id());
    // Ignores SIGTERM and leaves a grandchild holding the pipes: the runner must still return.
    let hang = script(
        dir.path(),
        &marker,
        "trap '' TERM; sleep 600 & sleep 600; wait",
    );
    let profile = dir.path().join("p.yaml");
    fs::write(
        &profile,
        format!(
            "name: mine\nrequirements:\n  - id: custom.hang\n    command: [\"{h}\"]\n    timeout: 300ms\n  - id: custom.hang-fails\n    command: [\"{h}\", \"again\"]\n    timeout: 300ms\n    on_timeout: fail\n",
            h = hang.display()
        ),
    )
    .unwrap();
    let (code, json, took) = run_profile(&profile);
    assert_eq!(code, 1);
    let f = finding(&json, "custom.hang");
    assert_eq!(f["status"], "unknown", "{f:#}");
    assert!(
        f["message"].as_str().unwrap().contains("timed out"),
        "{f:#}"
    );
    assert_eq!(finding(&json, "custom.hang-fails")["status"], "fail");
    // Both ran concurrently within deadline + grace; generous bound for a loaded machine.
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_eq!(
        processes_with(&marker),
        Vec::<u32>::new(),
        "probe processes outlived hostready"
    );
}

#[test]
fn built_in_checks_start_no_runner_but_verify_runs_does() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("p.yaml");
    fs::write(&profile, "name: mine\nrequirements:\n  - executable: sh\n").unwrap();
    let (_, json, _) = run_profile(&profile);
    assert!(
        finding(&json, "exe.sh")["evidence"]
            .get("verified with")
            .is_none()
    );
    let (_, json) = run_json(hostready().args([
        "check",
        "-o",
        "json",
        "--verify-runs",
        "-p",
        "longhorn-utils",
    ]));
    let grep = finding(&json, "exe.grep");
    assert_eq!(grep["status"], "pass", "{grep:#}");
    assert!(
        grep["evidence"]["verified with"]
            .as_str()
            .unwrap()
            .ends_with("grep --version"),
        "{grep:#}"
    );
    assert_eq!(grep["evidence"]["exit"], "exit code 0");
}
