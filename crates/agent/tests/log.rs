//! The agent's logs, from the real `hostready-agent` process: `--log-format json` is one JSON
//! object per line with timestamp, level, target, message and the event's fields; `RUST_LOG`
//! selects levels (debug events only when asked); kube-client's own events come through the
//! same subscriber; and logging holds no more memory after ten times as many cycles.
//!
//! The API server is a loopback port nothing listens on: every request fails at connect, which
//! makes kube-client log its `HTTP` span, `requesting` (debug) and `failed with error` (error)
//! with no cluster needed.

// Tests build fake hosts and read fixtures on this machine directly, not a host's root.
#![allow(clippy::disallowed_methods)]

use std::path::Path;
use std::process::{Command, Output};

use hostready_testkit::loopback::refused_kubeconfig as kubeconfig;
use hostready_testkit::memcg::MemCgroup;
use serde_json::Value;

/// An agent command for one node on an empty root, with `RUST_LOG` as given (removed if None).
fn agent(dir: &Path, rust_log: Option<&str>, extra: &[&str]) -> Command {
    let root = dir.join("root");
    std::fs::create_dir_all(&root).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hostready-agent"));
    cmd.arg("--kubeconfig")
        .arg(kubeconfig(dir))
        .args(["--node-name", "n1", "--proc", "none", "-p", "iscsi"])
        .args(["--metrics-addr", "none", "--api-backoff-cap", "10ms"])
        .args(extra)
        .arg("--root")
        .arg(&root);
    match rust_log {
        Some(v) => cmd.env("RUST_LOG", v),
        None => cmd.env_remove("RUST_LOG"),
    };
    cmd
}

/// Runs the agent `--once` (it cannot publish: exit 1) and returns its output.
fn once(rust_log: Option<&str>, extra: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["--once"];
    args.extend_from_slice(extra);
    let out = agent(dir.path(), rust_log, &args).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn json_logs_are_one_object_per_line_with_level_target_message_and_fields() {
    let out = once(Some("debug"), &["--log-format", "json"]);
    let text = String::from_utf8(out.stderr).unwrap();
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: not JSON: {l:?}")))
        .collect();
    assert!(events.len() >= 3, "{text}");
    for e in &events {
        let ts = e["timestamp"].as_str().unwrap_or_else(|| panic!("{e}"));
        // RFC 3339 in UTC: 2026-12-01T11:39:33.104063Z
        assert!(
            ts.len() >= 20 && ts.ends_with('Z') && &ts[10..11] == "T",
            "{e}"
        );
        assert!(
            ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&e["level"].as_str().unwrap()),
            "{e}"
        );
        assert!(e["target"].is_string(), "{e}");
        assert!(e["message"].is_string(), "{e}");
    }
    let find = |target: &str, level: &str, message: &str| {
        events
            .iter()
            .find(|e| {
                e["target"] == target
                    && e["level"] == level
                    && e["message"].as_str().unwrap().contains(message)
            })
            .unwrap_or_else(|| panic!("no {level} {target}: {message}... in\n{text}"))
    };
    find("hostready_agent", "INFO", "agent for node n1");
    find("hostready_agent", "WARN", "publishing failed");
    // kube-client's own events, with the fields of the span they happen in.
    let requesting = find("kube_client::client::builder", "DEBUG", "requesting");
    assert_eq!(requesting["span"]["name"], "HTTP", "{requesting}");
    assert_eq!(requesting["span"]["http.method"], "GET", "{requesting}");
    assert!(
        requesting["span"]["http.url"]
            .as_str()
            .unwrap()
            .ends_with("/api/v1/nodes/n1"),
        "{requesting}"
    );
    // An event's own fields sit beside `message` (tower's buffer logs `service.ready`).
    assert!(
        events
            .iter()
            .any(|e| e["service.ready"].is_boolean() && e["message"].is_string()),
        "no event with its own fields in\n{text}"
    );
}

#[test]
fn text_logs_show_info_by_default_and_debug_only_with_rust_log() {
    let quiet = String::from_utf8(once(None, &[]).stderr).unwrap();
    assert!(
        quiet
            .lines()
            .any(|l| l.contains(" INFO hostready_agent: agent for node n1")),
        "{quiet}"
    );
    assert!(
        !quiet.contains("DEBUG"),
        "debug events by default:\n{quiet}"
    );
    // kube's failure is an error event: shown by default, no longer lost.
    assert!(
        quiet
            .lines()
            .any(|l| l.contains("ERROR kube_client") && l.contains("failed with error")),
        "{quiet}"
    );
    for l in quiet.lines() {
        assert!(!l.starts_with('{'), "JSON without --log-format json: {l}");
    }

    let loud = String::from_utf8(once(Some("debug"), &["--log-format", "text"]).stderr).unwrap();
    assert!(
        loud.lines()
            .any(|l| l.contains("DEBUG") && l.contains("kube_client") && l.contains("requesting")),
        "{loud}"
    );
    assert!(
        loud.lines()
            .any(|l| l.contains("DEBUG hostready_agent: logging Text to stderr")),
        "{loud}"
    );

    // A filter naming one target: kube's debug events, not the agent's.
    let kube = String::from_utf8(once(Some("info,kube_client=debug"), &[]).stderr).unwrap();
    assert!(kube.contains("requesting"), "{kube}");
    assert!(!kube.contains("DEBUG hostready_agent"), "{kube}");
}

#[test]
fn an_invalid_rust_log_is_refused_at_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = agent(dir.path(), Some("kube=chatty"), &["--once"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("RUST_LOG=\"kube=chatty\" is not a valid log filter"),
        "{err}"
    );
}

#[test]
fn trace_logging_for_ten_times_the_cycles_holds_no_more_memory() {
    // Every cycle fails to publish and logs at every level, kube's and hyper's trace included
    // (about 75 lines, 17 KB a cycle): 40 cycles write about 0.7 MB, 400 about 7 MB. Logging
    // writes each event through, so the peak resident memory of the longer run is the
    // shorter's; a buffer or a record of events would add megabytes.
    let peak = |cycles: &str| {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = agent(
            dir.path(),
            Some("trace"),
            &[
                "--log-format",
                "json",
                "--interval",
                "50ms",
                "--max-cycles",
                cycles,
            ],
        );
        let m = MemCgroup::new(64 << 20).run_command(&mut cmd);
        assert_eq!(m.oom_kills, 0);
        assert_eq!(m.exit_code, Some(0), "{m:?}");
        let lines = m.output.stderr.iter().filter(|&&b| b == b'\n').count();
        eprintln!(
            "{cycles} cycles: {lines} log lines, {} bytes, peak RSS {:.1} MiB",
            m.output.stderr.len(),
            m.max_rss_mib()
        );
        (m.max_rss_kib, m.output.stderr.len())
    };
    let (short, short_bytes) = peak("40");
    let (long, long_bytes) = peak("400");
    assert!(
        long_bytes > 5 * short_bytes,
        "{short_bytes} vs {long_bytes}"
    );
    assert!(
        long <= short + 1024,
        "peak RSS grew with the log: {short} KiB after 40 cycles, {long} KiB after 400"
    );
}
