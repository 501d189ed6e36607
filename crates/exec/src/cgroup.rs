//! One cgroup per probe run: where hostready's own cgroup is, creating a probe's cgroup below
//! it, listing its members, killing all of them without a fork race, and removing it.
//!
//! Why a cgroup: every process a probe starts is created in the probe's cgroup and stays there
//! whatever it does to its environment, session, process group or parent (only writing another
//! cgroup's `cgroup.procs`, which needs write access to that cgroup, moves it out). So
//! membership is exact — no token, no parent chain, no pid window — and reading `cgroup.procs`
//! costs in proportion to the probe's own processes, not to what else runs on the host.
//!
//! Two kinds, tried in this order by [`CgroupPolicy::Auto`]:
//! - **cgroup v2** with `cgroup.kill` (Linux 5.14+): writing `1` kills every member, and the
//!   kernel also kills what a member forks concurrently.
//! - **cgroup v1 `pids`**: writing `0` to `pids.max` makes every further `fork` of a member fail
//!   (`EAGAIN`), so the member set can only shrink; then every listed member is sent `SIGKILL`.
//!   Chosen over the v1 `freezer` because freezing can hang in `FREEZING` behind a task in
//!   uninterruptible sleep, and a frozen v1 task does not act on `SIGKILL` until thawed.
//!
//! The cgroup is created below hostready's own cgroup (from `/proc/self/cgroup` and the cgroup
//! mount's root in `/proc/self/mountinfo`, so it also works in a container's cgroup namespace
//! or bind-mounted hierarchy), named `hostready-<pid>-<n>`. Where none is writable (a
//! DaemonSet's usual read-only `/sys/fs/cgroup`), the runner falls back to the `/proc` sweep
//! (`sweep.rs`). The two small procfs formats are parsed here by hand: the `procfs` crate would
//! add a large dependency for two lines of each.

// The runner's own cgroup (cgroupfs, created, written and removed to contain probes) and this process's /proc/self/{cgroup,mountinfo}: never the inspected host.
#![allow(clippy::disallowed_methods)]

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{Mode, OFlags};

/// Which cgroups the runner may create for its probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupPolicy {
    /// cgroup v2 if writable and it has `cgroup.kill`, else cgroup v1 `pids`, else none.
    Auto,
    /// Only cgroup v2 (else none).
    V2,
    /// Only cgroup v1 `pids` (else none).
    V1Pids,
    /// Never: every probe is tracked by the `/proc` sweep.
    Off,
}

/// How the runner contains its probes, as decided by [`Runner::new`](crate::Runner::new).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Containment {
    /// Each probe in its own cgroup v2 below `parent`, killed with `cgroup.kill`.
    CgroupV2 {
        /// hostready's own cgroup directory.
        parent: PathBuf,
    },
    /// Each probe in its own cgroup v1 `pids` cgroup below `parent`, forks stopped with
    /// `pids.max = 0` before the kill.
    CgroupV1Pids {
        /// hostready's own `pids` cgroup directory.
        parent: PathBuf,
    },
    /// No writable cgroup: the `/proc` sweep (process group, parent chain, token).
    ProcScan,
}

impl Containment {
    /// Returns the directory below which probe cgroups are created, if any.
    pub fn parent(&self) -> Option<&Path> {
        match self {
            Containment::CgroupV2 { parent } | Containment::CgroupV1Pids { parent } => Some(parent),
            Containment::ProcScan => None,
        }
    }

    /// Decides the containment for `policy` on this host, removing what dead earlier runs of
    /// hostready left below the chosen parent.
    pub(crate) fn detect(policy: CgroupPolicy) -> Containment {
        let v2 = || own_dir(Kind::V2).filter(|d| usable(d, Kind::V2));
        let v1 = || own_dir(Kind::V1Pids).filter(|d| usable(d, Kind::V1Pids));
        let c = match policy {
            CgroupPolicy::Off => None,
            CgroupPolicy::V2 => v2().map(|parent| Containment::CgroupV2 { parent }),
            CgroupPolicy::V1Pids => v1().map(|parent| Containment::CgroupV1Pids { parent }),
            CgroupPolicy::Auto => v2()
                .map(|parent| Containment::CgroupV2 { parent })
                .or_else(|| v1().map(|parent| Containment::CgroupV1Pids { parent })),
        };
        let c = c.unwrap_or(Containment::ProcScan);
        if let Some(p) = c.parent() {
            remove_stale(p, c.kind());
        }
        c
    }

    fn kind(&self) -> Kind {
        match self {
            Containment::CgroupV1Pids { .. } => Kind::V1Pids,
            _ => Kind::V2,
        }
    }

    /// Creates the cgroup of one probe run, or `None` without cgroups or if it cannot be made.
    pub(crate) fn create(&self) -> Option<ProbeCgroup> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let parent = self.parent()?;
        let name = format!(
            "hostready-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        ProbeCgroup::create(parent.join(name), self.kind()).ok()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    V2,
    V1Pids,
}

/// Returns this process's cgroup directory in the hierarchy of `kind`, if it is mounted and
/// visible here.
fn own_dir(kind: Kind) -> Option<PathBuf> {
    let cgroup = fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = cgroup.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (id, ctrls, path) = (f.next()?, f.next()?, f.next()?);
        let hit = match kind {
            Kind::V2 => id == "0" && ctrls.is_empty(),
            Kind::V1Pids => ctrls.split(',').any(|c| c == "pids"),
        };
        hit.then(|| path.to_string())
    })?;
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
    mountinfo.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        let (root, mnt) = (unescape(pre.get(3)?), unescape(pre.get(4)?));
        let ok = match kind {
            Kind::V2 => *post.first()? == "cgroup2",
            Kind::V1Pids => {
                *post.first()? == "cgroup" && post.get(2)?.split(',').any(|o| o == "pids")
            }
        };
        if !ok {
            return None;
        }
        // The mount shows the hierarchy from `root` down; our cgroup must be inside it.
        let rel = Path::new(&path).strip_prefix(&root).ok()?;
        Some(Path::new(&mnt).join(rel))
    })
}

/// Undoes mountinfo's octal escapes (`\040` for a space, ...).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Returns true if and only if a probe cgroup can be created below `dir` and has the files the
/// kill needs (`cgroup.kill` on v2, `pids.max` on v1).
fn usable(dir: &Path, kind: Kind) -> bool {
    let probe = dir.join(format!("hostready-{}-check", std::process::id()));
    if fs::create_dir(&probe).is_err() {
        return false;
    }
    let file = match kind {
        Kind::V2 => "cgroup.kill",
        Kind::V1Pids => "pids.max",
    };
    let ok = probe.join(file).exists() && probe.join("cgroup.procs").exists();
    let _ = fs::remove_dir(&probe);
    ok
}

/// Kills and removes `hostready-<pid>-*` cgroups of processes that no longer exist (a crashed or
/// OOM-killed hostready); best effort: what cannot be removed now is retried by the next start.
fn remove_stale(parent: &Path, kind: Kind) {
    let Ok(dir) = fs::read_dir(parent) else {
        return;
    };
    for e in dir.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("hostready-")) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let cg = ProbeCgroup {
            dir: e.path(),
            kind,
            forks_stopped: false,
        };
        cg.kill_all();
        let _ = fs::remove_dir(&cg.dir);
    }
}

/// The cgroup of one probe run. Removing it is explicit ([`ProbeCgroup::remove`]); a cgroup that
/// still has members when its run ends travels with the stuck instance and is removed later.
#[derive(Debug)]
pub(crate) struct ProbeCgroup {
    dir: PathBuf,
    kind: Kind,
    forks_stopped: bool,
}

impl ProbeCgroup {
    fn create(dir: PathBuf, kind: Kind) -> io::Result<ProbeCgroup> {
        fs::create_dir(&dir)?;
        Ok(ProbeCgroup {
            dir,
            kind,
            forks_stopped: false,
        })
    }

    /// Opens `cgroup.procs` for writing: the child writes `0` to it between fork and exec to
    /// move itself in (see `confine.rs`), so the probe never runs a single instruction outside.
    pub(crate) fn procs_for_child(&self) -> io::Result<OwnedFd> {
        Ok(rustix::fs::open(
            self.dir.join("cgroup.procs"),
            OFlags::WRONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )?)
    }

    /// Returns the pids of the members (thread-group ids; zombies are not listed).
    pub(crate) fn pids(&self) -> Vec<i32> {
        fs::read_to_string(self.dir.join("cgroup.procs"))
            .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// Returns true if and only if the cgroup has no member.
    pub(crate) fn is_empty(&self) -> bool {
        self.pids().is_empty()
    }

    /// Kills every member without a fork race: `cgroup.kill` on v2; on v1 `pids.max = 0` (no
    /// member can fork any more), then `SIGKILL` to each member listed. A listed pid is
    /// signalled through a pidfd and only if it is still listed after the pidfd was opened, so
    /// a pid reused by a process outside is never signalled.
    pub(crate) fn kill_all(&self) -> bool {
        match self.kind {
            Kind::V2 => fs::write(self.dir.join("cgroup.kill"), "1").is_ok(),
            Kind::V1Pids => {
                let stopped = fs::write(self.dir.join("pids.max"), "0").is_ok();
                self.signal_members(rustix::process::Signal::KILL);
                stopped
            }
        }
    }

    /// Makes every further fork of a member fail (v1); on v2 `cgroup.kill` needs no such step.
    pub(crate) fn stop_forks(&mut self) {
        if self.kind == Kind::V1Pids && !self.forks_stopped {
            self.forks_stopped = fs::write(self.dir.join("pids.max"), "0").is_ok();
        }
    }

    /// Sends `sig` to every member now listed, by pidfd, re-checking membership after the open.
    pub(crate) fn signal_members(&self, sig: rustix::process::Signal) {
        let fds: Vec<(i32, OwnedFd)> = self
            .pids()
            .into_iter()
            .filter_map(|p| {
                let pid = rustix::process::Pid::from_raw(p)?;
                let fd =
                    rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()?;
                Some((p, fd))
            })
            .collect();
        let still: HashSet<i32> = self.pids().into_iter().collect();
        for (p, fd) in fds {
            if still.contains(&p) {
                let _ = rustix::process::pidfd_send_signal(&fd, sig);
            }
        }
    }

    /// Removes the cgroup; fails (`EBUSY`) while it has members. Right after the last member
    /// died the kernel may still be releasing it, so an empty cgroup is retried for up to 50 ms.
    pub(crate) fn remove(&self) -> io::Result<()> {
        let mut tries = 0;
        loop {
            match fs::remove_dir(&self.dir) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) if tries < 50 && self.is_empty() => {
                    let _ = e;
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                r => return r,
            }
        }
    }
}

impl Drop for ProbeCgroup {
    /// Last resort: a cgroup whose owner is dropped is removed if it is empty by now.
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_mountinfo_octal() {
        assert_eq!(unescape(r"/sys/fs/cgroup/a\040b"), "/sys/fs/cgroup/a b");
        assert_eq!(unescape(r"/x\\y"), r"/x\\y");
        assert_eq!(unescape("/plain"), "/plain");
    }

    #[test]
    fn finds_own_cgroup_where_one_is_mounted() {
        // On this project's CI machine both hierarchies are mounted (hybrid v1 + unified v2).
        let v1 = own_dir(Kind::V1Pids).expect("a v1 pids hierarchy is mounted");
        assert!(v1.join("cgroup.procs").exists(), "{v1:?}");
        let me = std::process::id().to_string();
        let listed = fs::read_to_string(v1.join("cgroup.procs")).unwrap();
        assert!(listed.lines().any(|l| l == me), "{v1:?} does not list us");
    }
}
