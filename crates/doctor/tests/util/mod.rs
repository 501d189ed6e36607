//! Real processes for doctor's tests, each started in its own process group and killed (and
//! reaped) by a drop guard, so a failing assertion never leaves sleepers behind.

#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hostready_doctor::{Options, Report, Thresholds};
use hostready_host::{Host, ProcSource};

/// A child in its own process group; dropping it kills the whole group and reaps the child.
pub struct Group {
    pub child: Child,
}

impl Group {
    /// Starts `bash -c script` (argv[0] = `name`) as the leader of a new process group.
    pub fn bash(name: &str, script: &str) -> Group {
        let child = Command::new("/bin/bash")
            .arg0(name)
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("spawn bash");
        Group { child }
    }

    /// Starts `cmd` as the leader of a new process group.
    pub fn spawn(mut cmd: Command) -> Group {
        let child = cmd.process_group(0).spawn().expect("spawn");
        Group { child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(pgid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Returns a lowercase marker unique to this test process and call, so concurrent tests on
/// this machine never share a group (digits would be normalised away, so letters only).
pub fn marker(prefix: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut v = (u64::from(std::process::id()) << 16) | n;
    let mut s = String::from(prefix);
    for _ in 0..8 {
        s.push((b'a' + (v % 26) as u8) as char);
        v /= 26;
    }
    s
}

/// Polls `cond` every 50 ms for up to 30 s; returns whether it came true.
pub fn wait_for(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Counts live processes whose argv[0] is `name`.
pub fn count_argv0(name: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .map(|c| c.split(|b| *b == 0).next() == Some(name.as_bytes()))
                .unwrap_or(false)
        })
        .count()
}

/// Diagnoses this machine (`/` with its `/proc`) with pile-up thresholds `count` and age 0.
pub fn diagnose_here(count: usize) -> Report {
    let host = Host::open("/", ProcSource::At("/proc".into())).unwrap();
    hostready_doctor::diagnose(
        &host,
        &Options {
            thresholds: Thresholds {
                min_count: count,
                min_age_secs: 0,
                ..Thresholds::default()
            },
        },
    )
}

/// Returns true if and only if `path` exists and is executable.
pub fn have(path: &str) -> bool {
    Path::new(path).exists()
}

/// Starts `sqlite3 DB` holding an exclusive lock (`PRAGMA locking_mode=EXCLUSIVE; BEGIN
/// EXCLUSIVE;` then `then`) until the returned group is dropped, and waits until the kernel's
/// lock table shows its write lock.
pub fn hold_sqlite_exclusive(db: &std::path::Path, then: &str) -> Group {
    use std::io::Write;
    let mut cmd = Command::new("sqlite3");
    cmd.arg(db)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut holder = Group::spawn(cmd);
    // stdin stays open inside the child handle: closing it would end sqlite3 and its lock.
    holder
        .child
        .stdin
        .as_mut()
        .expect("piped stdin")
        .write_all(format!("PRAGMA locking_mode=EXCLUSIVE; BEGIN EXCLUSIVE; {then}\n").as_bytes())
        .expect("write to sqlite3");
    let pid = holder.pid();
    assert!(
        wait_for(|| std::fs::read_to_string("/proc/locks")
            .unwrap()
            .contains(&format!("WRITE {pid} "))),
        "sqlite3 took no lock on {}",
        db.display()
    );
    holder
}
