//! `hostready --log-format` and `RUST_LOG` on the CLI: `cluster` talks to the API through
//! kube-client, whose events reach stderr through the same subscriber as the agent's, while
//! the data on stdout is untouched.

// Tests build fake hosts and read fixtures on this machine directly, not a host's root.
#![allow(clippy::disallowed_methods)]

use hostready_testkit::loopback::refused_kubeconfig as kubeconfig;
use util::hostready;

mod util;

#[test]
fn cluster_logs_kube_client_events_as_json_lines_with_rust_log_debug() {
    let dir = tempfile::tempdir().unwrap();
    let out = hostready()
        .args(["--log-format", "json", "cluster", "--kubeconfig"])
        .arg(kubeconfig(dir.path()))
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(out.stdout.is_empty());
    // The last line is the CLI's own error; every log line before it is one JSON object.
    let (last, logs) = err
        .trim_end()
        .lines()
        .collect::<Vec<_>>()
        .split_last()
        .map(|(l, r)| (*l, r.to_vec()))
        .unwrap();
    assert!(
        last.starts_with("hostready: error: cannot list nodes"),
        "{err}"
    );
    let events: Vec<serde_json::Value> = logs
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    let requesting = events
        .iter()
        .find(|e| e["target"] == "kube_client::client::builder" && e["message"] == "requesting")
        .unwrap_or_else(|| panic!("no kube request event in\n{err}"));
    assert_eq!(requesting["level"], "DEBUG");
    assert_eq!(requesting["span"]["http.method"], "GET");
}

#[test]
fn without_rust_log_debug_events_stay_out_and_the_flag_goes_after_the_subcommand_too() {
    let dir = tempfile::tempdir().unwrap();
    let out = hostready()
        .args(["cluster", "--log-format", "text", "--kubeconfig"])
        .arg(kubeconfig(dir.path()))
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("DEBUG"), "{err}");
    assert!(!err.contains("requesting"), "{err}");
    assert!(err.contains("ERROR kube_client"), "{err}");
}

/// `check`, `pkg`, `doctor`, `profiles` set logging up only when RUST_LOG asks for something
/// (start-up time, issue 14); what RUST_LOG does to them must stay as it was: an invalid
/// filter is refused (exit 2, naming it) before anything runs, and `debug` logs the set-up.
#[test]
fn rust_log_is_still_honoured_by_commands_that_log_nothing_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    for args in [
        &["pkg", "query", "bash", "--proc", "none", "--root", root][..],
        &["profiles"][..],
        &["check", "--proc", "none", "--root", root][..],
    ] {
        let out = hostready()
            .args(args)
            .env("RUST_LOG", "hostready_agent=loud")
            .output()
            .unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(
            err.contains("RUST_LOG=\"hostready_agent=loud\" is not a valid log filter"),
            "{args:?}: {err}"
        );

        let out = hostready()
            .args(args)
            .env("RUST_LOG", "debug")
            .output()
            .unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(
            err.contains("DEBUG hostready_agent: logging Text to stderr, filter \"debug\""),
            "{args:?}: {err}"
        );

        // Unset, empty or blank: `info`, and nothing of the agent's is logged.
        for value in [None, Some(""), Some("  ")] {
            let mut cmd = hostready();
            cmd.args(args);
            match value {
                Some(v) => cmd.env("RUST_LOG", v),
                None => cmd.env_remove("RUST_LOG"),
            };
            let out = cmd.output().unwrap();
            let err = String::from_utf8(out.stderr).unwrap();
            assert!(
                !err.contains("hostready_agent"),
                "{args:?} {value:?}: {err}"
            );
            assert!(!err.contains("log filter"), "{args:?} {value:?}: {err}");
        }
    }
}
