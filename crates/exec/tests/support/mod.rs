//! Shared by the runner's integration tests: a per-round scratch directory whose path is a
//! unique marker, finding processes by that marker through /proc, and a guard that kills and
//! reaps every marked process (and thaws a frozen cgroup) even when an assertion fails.

// Tests build fake hosts and read fixtures on this machine directly, not a host's root.
#![allow(clippy::disallowed_methods)]
#![allow(dead_code)]

pub mod load;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, WaitOptions};

/// Serialises the tests of one binary: fd and memory figures are per process.
static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A scratch directory named by a unique marker, with a copy of `sleep` inside it so every
/// sleeper's command line (and exe) names the marker even if it clears its environment.
pub struct Scratch {
    pub dir: tempfile::TempDir,
    pub marker: String,
    /// A v1 freezer cgroup to thaw and remove on drop.
    pub freezer: Option<PathBuf>,
}

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix(&format!("hrx-{name}-"))
            .tempdir()
            .unwrap();
        let marker = dir.path().to_str().unwrap().to_string();
        fs::copy("/bin/sleep", dir.path().join("sleep")).unwrap();
        Scratch {
            dir,
            marker,
            freezer: None,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The copied `sleep`.
    pub fn sleep(&self) -> String {
        self.path("sleep").to_str().unwrap().to_string()
    }

    /// Writes an executable `/bin/sh` script and returns its path.
    pub fn script(&self, name: &str, body: &str) -> String {
        let p = self.path(name);
        fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        p.to_str().unwrap().to_string()
    }

    /// Processes whose command line or environment names the marker, zombies excluded
    /// (their command line is empty; see `zombie_children`).
    pub fn procs(&self) -> Vec<(i32, char, String)> {
        marked(&self.marker)
    }

    /// Kills and reaps everything marked; bounded.
    pub fn cleanup(&self) {
        if let Some(cg) = &self.freezer {
            let _ = fs::write(cg.join("freezer.state"), "THAWED");
        }
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let left = self.procs();
            for (pid, _, _) in &left {
                if let Some(p) = Pid::from_raw(*pid) {
                    let _ = rustix::process::kill_process(p, Signal::KILL);
                }
            }
            reap_zombie_children();
            if left.is_empty() || Instant::now() > until {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(cg) = &self.freezer {
            let _ = fs::remove_dir(cg);
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.cleanup();
    }
}

pub fn marked(marker: &str) -> Vec<(i32, char, String)> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let cmd = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let env = fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let hit = |b: &[u8]| b.windows(marker.len()).any(|w| w == marker.as_bytes());
        if hit(&cmd) || hit(&env) {
            let state = stat_state(pid).unwrap_or('?');
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            out.push((pid, state, cmd));
        }
    }
    out
}

fn stat_state(pid: i32) -> Option<char> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s[s.rfind(')')? + 1..].trim_start().chars().next()
}

fn stat_ppid(pid: i32) -> Option<i32> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s[s.rfind(')')? + 1..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Zombie children of this test process (a subreaper, so orphans land here).
pub fn zombie_children() -> Vec<i32> {
    let me = std::process::id() as i32;
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| stat_ppid(p) == Some(me) && stat_state(p) == Some('Z'))
        .collect()
}

fn reap_zombie_children() {
    for p in zombie_children() {
        if let Some(pid) = Pid::from_raw(p) {
            let _ = rustix::process::waitpid(Some(pid), WaitOptions::NOHANG);
        }
    }
}

pub fn fd_count() -> usize {
    fs::read_dir("/proc/self/fd").unwrap().count()
}

pub fn rss_kib() -> u64 {
    hostready_testkit::process::rss_kib(std::process::id()).unwrap()
}

/// The per-round invariants: nothing marked alive, no zombie children, fds and memory flat.
pub struct Baseline {
    fds: usize,
    rss: u64,
}

impl Baseline {
    pub fn take() -> Baseline {
        Baseline {
            fds: fd_count(),
            rss: rss_kib(),
        }
    }

    pub fn check(&self, scratch: &Scratch, round: usize) {
        let left = scratch.procs();
        assert!(left.is_empty(), "round {round}: processes left: {left:?}");
        let z = zombie_children();
        assert!(z.is_empty(), "round {round}: zombie children left: {z:?}");
        let fds = fd_count();
        assert!(
            fds <= self.fds,
            "round {round}: fds grew from {} to {fds}",
            self.fds
        );
        let rss = rss_kib();
        assert!(
            rss <= self.rss + 16 * 1024,
            "round {round}: VmRSS grew from {} KiB to {rss} KiB",
            self.rss
        );
    }
}

/// Returns true if and only if a cgroup v1 freezer hierarchy is mounted and writable here.
pub fn freezer_v1() -> Option<PathBuf> {
    let root = Path::new("/sys/fs/cgroup/freezer");
    let probe = root.join(format!("hrx-probe-{}", std::process::id()));
    fs::create_dir(&probe).ok()?;
    let ok = probe.join("freezer.state").exists();
    let _ = fs::remove_dir(&probe);
    ok.then(|| root.to_path_buf())
}

/// The probe cgroups of this test process still present below `parent` (`hostready-<pid>-*`).
pub fn cgroups_left(parent: Option<&Path>) -> Vec<PathBuf> {
    let Some(parent) = parent else {
        return Vec::new();
    };
    let prefix = format!("hostready-{}-", std::process::id());
    fs::read_dir(parent)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}
