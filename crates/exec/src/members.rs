//! Which processes belong to one probe run: the members of its cgroup where it has one, else
//! what the `/proc` sweep attributes to it (`sweep.rs`). Both answer the same questions for the
//! run loop in `probe.rs`: who is alive, is that answer conclusive, signal them all.

use std::collections::{HashMap, HashSet};
use std::os::fd::OwnedFd;

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::process::{Pid, PidfdFlags, Signal, WaitOptions};

use crate::cgroup::ProbeCgroup;
use crate::outcome::KillLog;
use crate::procfs::{self, ProcStat, Tracked};
use crate::sweep::Tree;

/// The processes of one run, found by cgroup or by sweep.
#[derive(Debug)]
pub(crate) enum Members<'a> {
    Cgroup(CgroupTree),
    Sweep(Tree<'a>),
}

impl Members<'_> {
    /// Returns the live processes other than the main process (reaping zombie orphans).
    pub(crate) fn scan(&mut self) -> Vec<ProcStat> {
        // A scan that only found the dead (zombies it reaped, processes that died while it
        // looked) is repeated at once, a few times, rather than a tick later.
        for _ in 0..4 {
            let live = match self {
                Members::Cgroup(c) => c.scan(),
                Members::Sweep(t) => t.scan(),
            };
            if !live.is_empty() || self.settled() {
                return live;
            }
        }
        Vec::new()
    }

    /// Returns true if and only if the last scan's "nothing alive" can be trusted: the cgroup
    /// was empty, or the sweep saw no member at all (not even one that died while it looked).
    pub(crate) fn settled(&self) -> bool {
        match self {
            Members::Cgroup(c) => c.empty,
            Members::Sweep(t) => t.settled(),
        }
    }

    /// Sends `sig` to everything of the run (see each kind for how).
    pub(crate) fn signal(&mut self, live: &[ProcStat], sig: Signal) {
        match self {
            Members::Cgroup(c) => c.signal(live, sig),
            Members::Sweep(t) => t.signal(live, sig),
        }
    }

    /// Hands over the identity of each process in `live`, for later re-checks.
    pub(crate) fn take_tracked(&mut self, live: &[ProcStat]) -> Vec<Tracked> {
        match self {
            Members::Cgroup(c) => c.take_tracked(live),
            Members::Sweep(t) => t.take_tracked(live),
        }
    }

    /// Returns everything signalled, in the order first seen.
    pub(crate) fn take_killed(&mut self) -> KillLog {
        match self {
            Members::Cgroup(c) => std::mem::take(&mut c.killed),
            Members::Sweep(t) => std::mem::take(&mut t.killed),
        }
    }

    /// Returns the run's cgroup, if it has one.
    pub(crate) fn into_cgroup(self) -> Option<ProbeCgroup> {
        match self {
            Members::Cgroup(c) => Some(c.cg),
            Members::Sweep(_) => None,
        }
    }
}

/// The members of a probe's cgroup. A scan reads `cgroup.procs` (the probe's own processes
/// only) and opens a pidfd for each member not seen before; it reads no per-process `/proc`
/// file (those cost most under load), so the [`ProcStat`]s it returns carry only the pid and
/// the main process as group: `comm` and `state` are read when they are reported.
#[derive(Debug)]
pub(crate) struct CgroupTree {
    cg: ProbeCgroup,
    leader: i32,
    me: i32,
    /// A pidfd per member seen, opened while it was listed and checked still listed after.
    tracked: HashMap<i32, OwnedFd>,
    /// Pidfds of members no longer listed that have not yet been seen to exit: the kernel
    /// takes a task off `cgroup.procs` a moment before it becomes a zombie and re-parents its
    /// children, so an empty listing only settles the run once each of these has exited.
    leaving: Vec<OwnedFd>,
    sent: HashSet<(i32, i32)>,
    sent_group_term: bool,
    empty: bool,
    killed: KillLog,
}

impl CgroupTree {
    pub(crate) fn new(cg: ProbeCgroup, leader: i32, me: i32) -> CgroupTree {
        CgroupTree {
            cg,
            leader,
            me,
            tracked: HashMap::new(),
            leaving: Vec::new(),
            sent: HashSet::new(),
            sent_group_term: false,
            empty: false,
            killed: KillLog::default(),
        }
    }

    fn scan(&mut self) -> Vec<ProcStat> {
        let listed: HashSet<i32> = self
            .cg
            .pids()
            .into_iter()
            .filter(|&p| p != self.leader)
            .collect();
        let gone: Vec<i32> = self
            .tracked
            .keys()
            .copied()
            .filter(|p| !listed.contains(p))
            .collect();
        for p in gone {
            if let Some(fd) = self.tracked.remove(&p) {
                self.leaving.push(fd);
            }
        }
        // A pidfd reads as ready once its process has exited (and its children re-parented).
        self.leaving.retain(|fd| {
            let mut pfd = [PollFd::new(fd, PollFlags::IN)];
            let ready = rustix::event::poll(&mut pfd, Some(&Timespec::default())).unwrap_or(1);
            ready == 0
        });
        self.empty = listed.is_empty() && self.leaving.is_empty();
        // After the listing and the exits: every zombie orphan of what has gone exists by now.
        reap_orphans(self.me);
        let mut fresh = Vec::new();
        for &p in &listed {
            if self.tracked.contains_key(&p) {
                continue;
            }
            if let Some(fd) = Pid::from_raw(p)
                .and_then(|pid| rustix::process::pidfd_open(pid, PidfdFlags::empty()).ok())
            {
                fresh.push((p, fd));
            }
        }
        if !fresh.is_empty() {
            // Listed again after the pidfd was opened: the pidfd is of a member (a pid freed
            // and reused between the two reads would belong to a process outside).
            let again: HashSet<i32> = self.cg.pids().into_iter().collect();
            for (p, fd) in fresh {
                if again.contains(&p) {
                    self.tracked.insert(p, fd);
                }
            }
        }
        let mut live: Vec<ProcStat> = self
            .tracked
            .keys()
            .map(|&pid| ProcStat {
                pid,
                comm: String::new(),
                state: '?',
                ppid: 0,
                pgrp: 0,
                flags: 0,
                utime: 0,
                stime: 0,
                starttime: 0,
                vsize: 0,
                rss_pages: 0,
                arg_range: None,
            })
            .collect();
        live.sort_by_key(|s| s.pid);
        live
    }

    /// `SIGTERM`: the main process's group once, then each member once. `SIGKILL`: the whole
    /// cgroup at once, every time (`cgroup.kill`, or `pids.max = 0` and each member), plus the
    /// group, so nothing forked since the last scan survives the next.
    fn signal(&mut self, live: &[ProcStat], sig: Signal) {
        let pg = Pid::from_raw(self.leader);
        if sig == Signal::KILL {
            self.cg.stop_forks();
            self.cg.kill_all();
            if let Some(pg) = pg {
                let _ = rustix::process::kill_process_group(pg, sig);
            }
        } else if !self.sent_group_term {
            self.sent_group_term = true;
            if let Some(pg) = pg {
                let _ = rustix::process::kill_process_group(pg, sig);
            }
        }
        for s in live {
            if !self.sent.insert((s.pid, sig.as_raw())) {
                continue;
            }
            if let Some(fd) = self.tracked.get(&s.pid) {
                let _ = rustix::process::pidfd_send_signal(fd, sig);
                self.killed.record(s.pid, || procfs::read_comm(s.pid));
            }
        }
    }

    /// Hands over an identity for each member in `live` that is still there (read now: they
    /// are few, the ones that outlived the bounded wait).
    fn take_tracked(&mut self, live: &[ProcStat]) -> Vec<Tracked> {
        live.iter()
            .filter_map(|s| {
                self.tracked.remove(&s.pid)?;
                Tracked::open(&procfs::read_stat(s.pid)?)
            })
            .collect()
    }
}

/// Reaps zombie children of this process that are no probe's main process: orphans of probes,
/// re-parented here because this process is a child subreaper (or pid 1 of a container). Reads
/// `/proc/self/task/*/children` (this process's direct children only) and makes one
/// non-blocking `waitpid` per child, under the lock that spawns register their main processes
/// under (so a main process is never reaped here).
pub(crate) fn reap_orphans(_me: i32) {
    let leaders = crate::runner::leaders();
    for p in hostready_host::procfs::live::own_children().unwrap_or_default() {
        if leaders.contains(&p) {
            continue;
        }
        if let Some(pid) = Pid::from_raw(p) {
            let _ = rustix::process::waitpid(Some(pid), WaitOptions::NOHANG);
        }
    }
}

/// Returns true if and only if `/proc/self/task/<tid>/children` exists (`CONFIG_PROC_CHILDREN`),
/// which the cgroup mode needs to find zombie orphans without the sweep.
pub(crate) fn children_listed() -> bool {
    hostready_host::procfs::live::own_children().is_some()
}
