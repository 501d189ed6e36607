//! A node out of process ids is the incident's own state (thousands of stuck `rpm -q`), so
//! `hostready pkg owner` and `hostready doctor` must still answer there: the dpkg owner lookup
//! searches the file lists and checks `status` on threads of its own, doctor's scan of a
//! procfs with 1,000 processes or more reads on two, and a thread the kernel refuses is one
//! worker fewer, never a panic (which, with the release build's `panic = "abort"`, would kill
//! the agent's whole process). The probes of `check --verify-runs` (and of the agent's
//! command checks) run on the runner's worker threads the same way, and a process the system
//! refuses to start says nothing of the program. Run in a pids cgroup (v1) whose limit is the
//! one process that is already there, so every `clone` of a thread fails with EAGAIN.

// Tests build fake hosts and a cgroup on this machine directly, not a host's root.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hostready_testkit::fakehost::{self, FakeProc};

/// A pids cgroup of this test, removed when dropped (after the process in it has ended).
struct PidsCgroup(PathBuf);

impl PidsCgroup {
    fn new(max: u32) -> PidsCgroup {
        let base = Path::new("/sys/fs/cgroup/pids");
        assert!(
            base.join("cgroup.procs").exists(),
            "this test needs the cgroup v1 pids controller at {} (and root)",
            base.display()
        );
        let dir = base.join(format!("hostready-test-pids-{}", std::process::id()));
        fs::create_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        fs::write(dir.join("pids.max"), max.to_string()).unwrap();
        PidsCgroup(dir)
    }

    /// Runs `program ARGS` inside: a shell moves itself in, then execs it (same process).
    fn run(&self, program: &str, args: &[&str]) -> Output {
        Command::new("sh")
            .arg("-c")
            .arg("echo $$ > \"$0/cgroup.procs\" && exec \"$@\"")
            .arg(&self.0)
            .arg(program)
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.0);
    }
}

#[test]
fn pkg_owner_answers_when_no_thread_can_be_started() {
    let status = "Package: open-iscsi\nStatus: install ok installed\nMaintainer: m\n\
Architecture: amd64\nVersion: 2.1.8-1\nDescription: iSCSI initiator tools\n\n\
Package: libc6\nStatus: install ok installed\nMaintainer: m\nArchitecture: amd64\n\
Multi-Arch: same\nVersion: 2.36-9+deb12u4\nDescription: GNU C Library\n";
    let root = fakehost::dpkg_root(
        status,
        &[
            ("open-iscsi", "/.\n/usr/sbin/iscsiadm\n"),
            ("libc6:amd64", "/.\n/usr/lib/x86_64-linux-gnu/libc.so.6\n"),
        ],
    );
    let cg = PidsCgroup::new(1);
    // The limit holds: a shell in the cgroup cannot start a second process.
    let fork = cg.run("sh", &["-c", "/bin/true"]);
    assert!(
        !fork.status.success(),
        "pids.max=1 let a second process start: {fork:?}"
    );
    let root_arg = root.path().to_str().unwrap();
    let out = cg.run(
        env!("CARGO_BIN_EXE_hostready"),
        &[
            "pkg",
            "owner",
            "/usr/sbin/iscsiadm",
            "--root",
            root_arg,
            "--proc",
            "none",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(
        stdout.contains("open-iscsi"),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(!stdout.contains("libc6"), "stdout: {stdout}");
}

#[test]
fn doctor_scans_a_thousand_processes_when_no_thread_can_be_started() {
    let root = tempfile::tempdir().unwrap();
    let proc = FakeProc::new();
    proc.process(1, 0, "systemd", 'S', &["/sbin/init"], 100);
    // Past hostready_doctor::proc::PARALLEL_MIN (1,000), so the scan asks for a second thread.
    for pid in 100..1200 {
        proc.process(pid, 1, "bash", 'S', &["-bash"], 500);
    }
    let args = [
        "doctor",
        "-o",
        "json",
        "--root",
        root.path().to_str().unwrap(),
        "--proc",
        proc.path().to_str().unwrap(),
    ];
    let free = Command::new(env!("CARGO_BIN_EXE_hostready"))
        .args(args)
        .output()
        .unwrap();
    let cg = PidsCgroup::new(1);
    let out = cg.run(env!("CARGO_BIN_EXE_hostready"), &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // 1,100 shells are a pile (exit 1): the same verdict as without the limit, not an abort.
    assert_eq!(out.status.code(), free.status.code(), "stderr: {stderr}");
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let want: serde_json::Value = serde_json::from_slice(&free.stdout).unwrap();
    assert_eq!(json["ok"], want["ok"], "{json:#}");
    assert_eq!(json["findings"], want["findings"], "{json:#}");
}

#[test]
fn check_verify_runs_says_undecided_when_no_process_can_be_started() {
    // This machine's own executables (util-linux's `lsblk` and `blkid` are on every host
    // the suite runs on): each found one is verified by running it, on the runner's threads.
    let cg = PidsCgroup::new(1);
    let out = cg.run(env!("CARGO_BIN_EXE_hostready"), &["check", "--verify-runs"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // A verdict (ready or not), not an abort or a panic.
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{:?}\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
    assert!(
        stdout.contains("lsblk found at")
            && stdout.contains("whether it starts is undecided: the system refused to start"),
        "stdout: {stdout}"
    );
    // Never "does not start": the program was not tried.
    assert!(!stdout.contains("but does not start"), "stdout: {stdout}");
}
