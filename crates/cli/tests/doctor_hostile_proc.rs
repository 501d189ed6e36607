//! `hostready doctor --proc DIR` on a directory someone else wrote: its magic-looking links
//! are never followed out of it, and values that cannot be true are `unknown`, never a verdict.

// Tests build fake hosts and read fixtures on this machine directly.
#![allow(clippy::disallowed_methods)]

mod util;

use std::process::Command;

use hostready_testkit::fakehost::{FakeProc, IDLE_PSI};
use serde_json::Value;
use util::{doctor_on, finding, run_json};

const MEMINFO: &str = "MemTotal:       16000000 kB\nMemAvailable:   12000000 kB\n";
const PSI: &str = IDLE_PSI;

#[test]
fn fd_and_exe_links_of_a_plain_proc_directory_are_never_followed() {
    // Outside the fake procfs: a directory whose entry `3` links to a FIFO (the canary) and
    // an "executable". The fake pid's `fd` and `exe` link there, and the lock table names the
    // pid, so a doctor that followed links would list, readlink and stat them.
    let outside = tempfile::tempdir().unwrap();
    let canary = outside.path().join("canary.fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&canary)
            .status()
            .unwrap()
            .success()
    );
    std::os::unix::fs::symlink(&canary, outside.path().join("3")).unwrap();
    std::fs::write(outside.path().join("exe"), "").unwrap();
    let proc = FakeProc::with(
        MEMINFO,
        PSI,
        "1: POSIX  ADVISORY  WRITE 4242 08:01:1234 0 EOF\n",
    );
    proc.process(1, 1, "systemd", 'S', &["/sbin/init"], 500);
    let d = proc.process(4242, 1, "rpm", 'S', &["rpm", "-q", "x"], 500);
    std::os::unix::fs::symlink(outside.path(), d.join("fd")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("exe"), d.join("exe")).unwrap();
    let root = tempfile::tempdir().unwrap();

    let work = tempfile::tempdir().unwrap();
    let trace = work.path().join("trace");
    let out = Command::new("strace")
        .args(["-f", "-qq", "-y", "-o"])
        .arg(&trace)
        .args([
            "-e",
            "trace=open,openat,openat2,readlink,readlinkat,stat,lstat,newfstatat,statx,getdents64,access,faccessat,faccessat2",
        ])
        .arg(env!("CARGO_BIN_EXE_hostready"))
        .args(["doctor", "-o", "json", "--root"])
        .arg(root.path())
        .arg("--proc")
        .arg(proc.path())
        .output()
        .expect("strace is installed (scripts/setup)");
    let json: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}; stderr: {}", String::from_utf8_lossy(&out.stderr)));
    let trace = std::fs::read_to_string(&trace).unwrap();
    let outside_path = outside.path().to_str().unwrap();
    for l in trace.lines() {
        assert!(
            !l.contains(outside_path),
            "touched outside the --proc directory: {l}"
        );
        for name in ["\"4242/fd\"", "\"4242/exe\"", "\"fd\"", "\"exe\""] {
            assert!(
                !l.contains(name),
                "followed a link of a plain directory: {l}"
            );
        }
    }
    // Doctor did read the fake procfs (the trace is not empty of it).
    assert!(trace.contains("4242"), "{trace}");

    let why = json["links_unknown"]
        .as_str()
        .unwrap_or_else(|| panic!("{json:#}"));
    assert!(why.contains("is not a procfs"), "{why}");
    let locks = finding(&json, "doctor.locks");
    assert_eq!(locks["status"], "unknown", "{locks:#}");
    assert!(
        locks["evidence"]["open files"]
            .as_str()
            .unwrap()
            .starts_with("unknown: "),
        "{locks:#}"
    );
    assert_eq!(json["locked_files"][0]["path"], Value::Null, "{json:#}");
}

#[test]
fn impossible_memory_figures_are_unknown_not_a_pass() {
    // The outside tester's procfs: no memory at all, 2^64-1 kB available, PSI `nan`.
    let proc = FakeProc::with(
        &format!("MemTotal:       0 kB\nMemAvailable:   {} kB\n", u64::MAX),
        "some avg10=nan avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
        "",
    );
    proc.process(1, 1, "systemd", 'S', &["/sbin/init"], 500);
    let root = tempfile::tempdir().unwrap();
    let run = |proc: &FakeProc| run_json(&mut doctor_on(root.path(), proc.path(), &["-o", "json"]));
    let (_, json) = run(&proc);
    let mem = finding(&json, "doctor.memory");
    assert_eq!(mem["status"], "unknown", "{mem:#}");
    assert_eq!(
        mem["message"],
        "/proc/meminfo: impossible values: MemTotal is 0 kB"
    );
    assert!(!mem["message"].as_str().unwrap().contains("MiB"), "{mem:#}");
    // The table says so, and does not call the host healthy.
    let out = doctor_on(root.path(), proc.path(), &[]).output().unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.lines().any(|l| l.starts_with("UNKN doctor.memory ")
            && l.ends_with("  /proc/meminfo: impossible values: MemTotal is 0 kB")),
        "{table}"
    );
    assert!(
        table.contains("INCOMPLETE: ") && !table.contains("HEALTHY"),
        "{table}"
    );

    // Sound meminfo, PSI `nan`: still unknown, naming the PSI value.
    std::fs::write(proc.path().join("meminfo"), MEMINFO).unwrap();
    let (_, json) = run(&proc);
    let mem = finding(&json, "doctor.memory");
    assert_eq!(mem["status"], "unknown", "{mem:#}");
    assert!(
        mem["message"].as_str().unwrap().contains("avg10=nan"),
        "{mem:#}"
    );

    // More available than there is.
    std::fs::write(
        proc.path().join("meminfo"),
        "MemTotal: 1000 kB\nMemAvailable: 5000 kB\n",
    )
    .unwrap();
    std::fs::write(proc.path().join("pressure/memory"), PSI).unwrap();
    let (_, json) = run(&proc);
    let mem = finding(&json, "doctor.memory");
    assert_eq!(mem["status"], "unknown", "{mem:#}");
    assert!(
        mem["message"]
            .as_str()
            .unwrap()
            .contains("MemAvailable 5000 kB is more than MemTotal 1000 kB"),
        "{mem:#}"
    );

    // And sound figures still pass.
    std::fs::write(proc.path().join("meminfo"), MEMINFO).unwrap();
    let (_, json) = run(&proc);
    assert_eq!(
        finding(&json, "doctor.memory")["status"],
        "pass",
        "{json:#}"
    );
}

#[test]
fn an_oversized_lock_table_is_unknown_not_read_whole() {
    // 5 MiB of well-formed lock lines: more than any kernel writes, and more than doctor
    // holds in memory for it.
    let line = "1: POSIX  ADVISORY  WRITE 4242 08:01:1234 0 EOF\n";
    let proc = FakeProc::with(MEMINFO, PSI, &line.repeat((5 << 20) / line.len()));
    proc.process(1, 1, "systemd", 'S', &["/sbin/init"], 500);
    let root = tempfile::tempdir().unwrap();
    let (_, json) = run_json(&mut doctor_on(root.path(), proc.path(), &["-o", "json"]));
    let locks = finding(&json, "doctor.locks");
    assert_eq!(locks["status"], "unknown", "{locks:#}");
    assert!(
        locks["message"]
            .as_str()
            .unwrap()
            .contains("longer than 4194304 bytes"),
        "{locks:#}"
    );
    assert_eq!(json["locked_files"], serde_json::json!([]));
}
