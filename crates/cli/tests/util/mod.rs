//! Helpers shared by the CLI's integration tests: run the real binary, read its JSON report.

// Each test file uses a different subset of these.
#![allow(dead_code)]

pub mod schema;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// Returns a command for the `hostready` binary under test.
pub fn hostready() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hostready"))
}

/// Runs `hostready ARGS --root ROOT --proc none` to its end.
pub fn on_root(root: &Path, args: &[&str]) -> Output {
    hostready()
        .args(args)
        .arg("--root")
        .arg(root)
        .args(["--proc", "none"])
        .output()
        .expect("run hostready")
}

/// Returns `hostready doctor ARGS --root ROOT --proc PROC`, to run.
pub fn doctor_on(root: &Path, proc: &Path, args: &[&str]) -> Command {
    let mut cmd = hostready();
    cmd.arg("doctor")
        .args(args)
        .arg("--root")
        .arg(root)
        .arg("--proc")
        .arg(proc);
    cmd
}

/// Runs `cmd`, which must print a JSON report, and returns its exit code and the report.
pub fn run_json(cmd: &mut Command) -> (i32, Value) {
    let out = cmd.output().expect("run hostready");
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: no JSON report; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().expect("exit code"), json)
}

/// Returns the finding `id` of a report, failing the test with the report when it is absent.
pub fn finding<'a>(json: &'a Value, id: &str) -> &'a Value {
    json["findings"]
        .as_array()
        .expect("findings array")
        .iter()
        .find(|f| f["id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {json:#}"))
}
