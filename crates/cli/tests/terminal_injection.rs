//! Host-written text never drives the terminal: a process whose argv holds ANSI escapes and
//! newlines (any user can start one), a root whose os-release `PRETTY_NAME` holds them, and a
//! command probe that prints them. Through the real binary, table output: the raw bytes never
//! appear, their escaped forms (`\x1b`, `\n`, `\r`) do. (JSON and YAML: `src/output.rs` tests.)

// Tests build fake hosts and read fixtures on this machine directly.
#![allow(clippy::disallowed_methods)]

mod util;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use hostready_testkit::process::{Group, count_argv0};
use hostready_testkit::wait_until;
use util::hostready;

/// A forged verdict: green `PASS`, then a new line that looks like a finding, a carriage
/// return that would overwrite the line, and a right-to-left override.
const FORGED: &str = "\x1b[32mPASS\x1b[0m\nPASS exe.forged  all good\r\u{202e}kcab";

/// Asserts that `out` holds none of FORGED's raw controls and its escaped form.
fn assert_escaped(out: &str) {
    assert!(
        !out.contains('\x1b'),
        "raw ESC reached the terminal:\n{out}"
    );
    assert!(!out.contains('\r'), "raw CR reached the terminal:\n{out}");
    assert!(
        !out.contains('\u{202e}'),
        "raw bidi override reached the terminal:\n{out}"
    );
    assert!(
        !out.lines().any(|l| l.starts_with("PASS exe.forged")),
        "a forged finding line:\n{out}"
    );
    assert!(
        out.contains(r"\x1b[32mPASS\x1b[0m\nPASS exe.forged  all good\r\u{202e}kcab"),
        "escaped form missing:\n{out}"
    );
}

#[test]
fn doctor_escapes_a_hostile_process_command_line() {
    // Unique per run, so another test's processes never count.
    let argv0 = format!("{FORGED}-{}", std::process::id());
    let mut children = Vec::new();
    for _ in 0..4 {
        let child = Command::new("/bin/sleep")
            .arg0(&argv0)
            .arg("1000")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        children.push(Group { child });
    }
    assert!(
        wait_until(|| count_argv0(argv0.as_bytes()) == 4),
        "sleepers did not start"
    );
    let root = tempfile::tempdir().unwrap();
    let out = hostready()
        .args([
            "doctor",
            // A small pile is a warning: exit 1 only with --strict (the README's exit codes).
            "--strict",
            "--pile-min-count",
            "4",
            "--pile-min-age",
            "0",
            "--proc",
            "/proc",
            "--root",
        ])
        .arg(root.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "the pile is found: {text}");
    assert!(text.contains("doctor.pileup."), "{text}");
    assert_escaped(&text);
    drop(children);
    assert!(
        wait_until(|| count_argv0(argv0.as_bytes()) == 0),
        "sleepers left behind"
    );
}

#[test]
fn check_escapes_a_hostile_pretty_name() {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("etc")).unwrap();
    // os-release is one line per key; the forged "line" is a raw ESC, CR and bidi override
    // in the value, and a literal backslash-n (os-release's own escaping is not newlines).
    fs::write(
        root.path().join("etc/os-release"),
        "ID=debian\nPRETTY_NAME=\"\x1b[32mREADY\x1b[0m\rPASS exe.forged \u{202e}kcab\"\n",
    )
    .unwrap();
    let out = hostready()
        .args(["check", "--proc", "none", "--root"])
        .arg(root.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let header = text.lines().next().unwrap_or_default();
    assert!(header.starts_with("host "), "{text}");
    assert!(
        !text.contains('\x1b') && !text.contains('\r') && !text.contains('\u{202e}'),
        "{text}"
    );
    assert!(
        header.contains(r"\x1b[32mREADY\x1b[0m\rPASS exe.forged \u{202e}kcab"),
        "{header}"
    );
}

#[test]
fn check_escapes_a_probes_output() {
    let dir = tempfile::tempdir().unwrap();
    let probe = dir.path().join("probe");
    fs::write(
        &probe,
        "#!/bin/sh\nprintf '\\033[32mPASS\\033[0m\\nPASS exe.forged  all good\\r\\342\\200\\256kcab\\n'\nexit 1\n",
    )
    .unwrap();
    fs::set_permissions(&probe, fs::Permissions::from_mode(0o755)).unwrap();
    let profile = dir.path().join("p.yaml");
    fs::write(
        &profile,
        format!(
            "name: hostile\nrequirements:\n  - id: custom.hostile\n    command: [\"{}\"]\n    timeout: 5s\n",
            probe.display()
        ),
    )
    .unwrap();
    let out = hostready()
        .args(["check", "--profile"])
        .arg(&profile)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("custom.hostile"), "{text}");
    assert_escaped(&text);
}

#[test]
fn errors_on_stderr_are_escaped() {
    // The error names the file; its name is the host's.
    let dir = tempfile::tempdir().unwrap();
    let name = dir.path().join("log\x1b[2J\nPASS");
    let out = hostready()
        .args(["doctor", "--explain"])
        .arg(&name)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!err.contains('\x1b') && err.lines().count() == 1, "{err}");
    assert!(err.contains(r"log\x1b[2J\nPASS"), "{err}");
}
