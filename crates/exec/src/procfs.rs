//! Reading `/proc` for the runner: one process's `stat` line, the pids created since a given pid,
//! a process's probe token, and signalling a process by identity rather than by number.
//!
//! A pid is only a number that the kernel hands out again once the process is reaped, so the
//! runner identifies a process by `(pid, starttime)` (field 22 of `/proc/<pid>/stat`, clock ticks
//! since boot) and signals it through a pidfd opened *before* re-checking that identity: if the
//! starttime still matches after `pidfd_open`, the pidfd refers to the process that was seen, and
//! every later signal through it reaches that process or nobody (see pidfd_open(2)).
//!
//! The files are read and parsed by `hostready_host::procfs` (its `live` readers of this
//! process's own `/proc`); this file owns what the runner makes of them.

use std::os::fd::OwnedFd;

use hostready_host::procfs::{environ_value, live};
use rustix::process::{Pid, PidfdFlags, Signal};

/// The fields of `/proc/<pid>/stat` the runner uses: `pid`, `comm`, `state`, `ppid`, `pgrp`
/// and `starttime` of the host crate's one `stat` parser.
pub(crate) type ProcStat = hostready_host::procfs::Stat;

/// Returns the parsed `/proc/<pid>/stat`, or `None` when the process is gone.
pub(crate) fn read_stat(pid: i32) -> Option<ProcStat> {
    live::read_stat(pid)
}

/// Returns `/proc/<pid>/comm` without its newline, or an empty string when the process is gone.
pub(crate) fn read_comm(pid: i32) -> String {
    live::read_comm(pid).unwrap_or_default()
}

/// Returns every pid that may have been allocated at or after `first`, in allocation order.
///
/// Linux hands out pids cyclically (`idr_alloc_cyclic`), so a descendant of a process created
/// as `first` has a pid in `first..=ns_last_pid`, or, if the counter wrapped at `pid_max`, in
/// `first..` plus `..=ns_last_pid`. Scanning only that window keeps a sweep's cost proportional
/// to the processes created while the probe ran, not to the size of the host. The window is only
/// wrong if the counter passed `first` again within one probe (`pid_max` forks, 4 million by
/// default), which a probe's deadline makes implausible; then the sweep sees too few candidates,
/// and the process-group kill still covers the group.
pub(crate) fn pids_since(first: i32) -> Vec<i32> {
    let last = live::ns_last_pid();
    if let Some(last) = last {
        if last >= first && last - first < 64 {
            return (first..=last).collect();
        }
    }
    let Some(all) = live::pids() else {
        return Vec::new();
    };
    let mut pids: Vec<i32> = all
        .into_iter()
        .filter(|&p| match last {
            Some(last) if last >= first => (first..=last).contains(&p),
            // Wrapped: first.. up to pid_max, then the low pids up to last.
            Some(last) => p >= first || p <= last,
            None => true,
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// Returns the pid the kernel allocated last in this pid namespace.
pub(crate) fn ns_last_pid() -> Option<i32> {
    live::ns_last_pid()
}

/// Returns the pids that may exist among those allocated after `prev` up to `now` (cyclic:
/// after `pid_max` allocation starts again from the bottom). A short interval is probed pid
/// by pid, a long one (or one that wrapped) by listing `/proc`.
pub(crate) fn pids_allocated_after(prev: i32, now: i32) -> Vec<i32> {
    if now == prev {
        return Vec::new();
    }
    if now > prev && now - prev <= 256 {
        // The caller reads each one's `stat`, which fails for the ones already gone.
        return (prev + 1..=now).collect();
    }
    let Some(all) = live::pids() else {
        return Vec::new();
    };
    all.into_iter()
        .filter(|&p| {
            if now > prev {
                p > prev && p <= now
            } else {
                p > prev || p <= now
            }
        })
        .collect()
}

/// Returns true if and only if `pid` may have been allocated at or after `first`, given the
/// last allocated pid `last` (unknown: assume it may).
pub(crate) fn in_window(pid: i32, first: i32, last: Option<i32>) -> bool {
    match last {
        Some(last) if last >= first => (first..=last).contains(&pid),
        Some(last) => pid >= first || pid <= last,
        None => true,
    }
}

/// Which probe a process's environment says it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token {
    /// It carries this probe's token.
    Ours,
    /// It carries another probe's token.
    Other,
    /// No token: cleared environment, unreadable, or a zombie (whose environ is empty).
    Missing,
}

/// Reads `/proc/<pid>/environ` and compares its `var=` entry with `value`.
pub(crate) fn token_of(pid: i32, var: &str, value: &str) -> Token {
    let Some(env) = live::read_environ(pid) else {
        return Token::Missing;
    };
    match environ_value(&env, var) {
        Some(v) if v == value.as_bytes() => Token::Ours,
        Some(_) => Token::Other,
        None => Token::Missing,
    }
}

/// A process identified by `(pid, starttime)`, with a pidfd when the kernel has them (5.3+).
#[derive(Debug)]
pub(crate) struct Tracked {
    pub pid: i32,
    pub starttime: u64,
    pidfd: Option<OwnedFd>,
}

impl Tracked {
    /// Returns a handle on the process `seen` describes, or `None` if that process is gone.
    ///
    /// Opens the pidfd first and re-reads the starttime afterwards, so a pid reused between the
    /// scan and now is detected instead of signalled.
    pub(crate) fn open(seen: &ProcStat) -> Option<Tracked> {
        let pidfd = Pid::from_raw(seen.pid)
            .and_then(|p| rustix::process::pidfd_open(p, PidfdFlags::empty()).ok());
        let now = read_stat(seen.pid)?;
        (now.starttime == seen.starttime).then_some(Tracked {
            pid: seen.pid,
            starttime: seen.starttime,
            pidfd,
        })
    }

    /// Sends `sig`; errors (already gone) are ignored because the caller re-scans anyway.
    pub(crate) fn signal(&self, sig: Signal) {
        match &self.pidfd {
            Some(fd) => {
                let _ = rustix::process::pidfd_send_signal(fd, sig);
            }
            None => {
                // No pidfd (kernel < 5.3): re-check the identity right before kill(2); the
                // remaining window is the few microseconds between the two calls.
                if self.stat().is_some() {
                    if let Some(pid) = Pid::from_raw(self.pid) {
                        let _ = rustix::process::kill_process(pid, sig);
                    }
                }
            }
        }
    }

    /// Returns the current stat if this is still the same process, else `None`.
    pub(crate) fn stat(&self) -> Option<ProcStat> {
        read_stat(self.pid).filter(|s| s.starttime == self.starttime)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_stat() {
        let me = std::process::id() as i32;
        let st = read_stat(me).unwrap();
        assert_eq!(st.pid, me);
        assert!(matches!(st.state, 'R' | 'S'));
    }

    #[test]
    fn window_contains_a_fresh_child() {
        let me = std::process::id() as i32;
        let mut child = std::process::Command::new("/bin/sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let window = pids_since(me.min(pid));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(window.contains(&pid), "{pid} not in {window:?}");
    }
}
