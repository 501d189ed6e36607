//! Which processes belong to one probe run: the members of its cgroup where it has one, else
//! what the `/proc` sweep attributes to it (`sweep.rs`). Both answer the same questions for the
//! run loop in `probe.rs`: who is alive, is that answer conclusive, signal them all.

use std::collections::{HashMap, HashSet};
use std::fs;

use rustix::process::{Pid, Signal, WaitOptions};

use crate::cgroup::ProbeCgroup;
use crate::outcome::Killed;
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
            Members::Cgroup(c) => live
                .iter()
                .filter_map(|s| c.tracked.remove(&s.pid).map(|(_, t)| t))
                .collect(),
            Members::Sweep(t) => t.take_tracked(live),
        }
    }

    /// Returns everything signalled, in the order first seen.
    pub(crate) fn take_killed(&mut self) -> Vec<Killed> {
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
/// only) and the `stat` of members not seen before; its cost never depends on what else runs.
#[derive(Debug)]
pub(crate) struct CgroupTree {
    cg: ProbeCgroup,
    leader: i32,
    me: i32,
    tracked: HashMap<i32, (ProcStat, Tracked)>,
    sent: HashSet<(i32, i32)>,
    sent_group_term: bool,
    empty: bool,
    killed: Vec<Killed>,
}

impl CgroupTree {
    pub(crate) fn new(cg: ProbeCgroup, leader: i32, me: i32) -> CgroupTree {
        CgroupTree {
            cg,
            leader,
            me,
            tracked: HashMap::new(),
            sent: HashSet::new(),
            sent_group_term: false,
            empty: false,
            killed: Vec::new(),
        }
    }

    fn scan(&mut self) -> Vec<ProcStat> {
        reap_orphans(self.me);
        let listed: HashSet<i32> = self
            .cg
            .pids()
            .into_iter()
            .filter(|&p| p != self.leader)
            .collect();
        self.empty = listed.is_empty();
        self.tracked.retain(|p, _| listed.contains(p));
        let mut fresh = Vec::new();
        for &p in &listed {
            if self.tracked.contains_key(&p) {
                continue;
            }
            // Gone or a zombie: still listed means not settled (checked again next scan).
            let Some(st) = procfs::read_stat(p).filter(|s| s.state != 'Z' && s.state != 'X') else {
                continue;
            };
            if let Some(t) = Tracked::open(&st) {
                fresh.push((st, t));
            }
        }
        if !fresh.is_empty() {
            // Listed again after the pidfd was opened: the pidfd is of a member (a pid freed
            // and reused between the two reads would belong to a process outside).
            let again: HashSet<i32> = self.cg.pids().into_iter().collect();
            for (st, t) in fresh {
                if again.contains(&st.pid) {
                    self.tracked.insert(st.pid, (st, t));
                }
            }
        }
        let mut live: Vec<ProcStat> = self.tracked.values().map(|(s, _)| s.clone()).collect();
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
            if let Some((_, t)) = self.tracked.get(&s.pid) {
                t.signal(sig);
                if !self.killed.iter().any(|k| k.pid == s.pid) {
                    self.killed.push(Killed {
                        pid: s.pid,
                        comm: s.comm.clone(),
                    });
                }
            }
        }
    }
}

/// Reaps zombie children of this process that are no probe's main process: orphans of probes,
/// re-parented here because this process is a child subreaper (or pid 1 of a container). Reads
/// `/proc/self/task/*/children` (this process's direct children only), under the lock that
/// spawns register their main processes under.
pub(crate) fn reap_orphans(me: i32) {
    let leaders = crate::runner::leaders();
    let Ok(tasks) = fs::read_dir("/proc/self/task") else {
        return;
    };
    for t in tasks.flatten() {
        let Ok(children) = fs::read_to_string(t.path().join("children")) else {
            continue;
        };
        for p in children
            .split_ascii_whitespace()
            .filter_map(|c| c.parse::<i32>().ok())
        {
            if leaders.contains(&p) {
                continue;
            }
            let zombie = procfs::read_stat(p).is_some_and(|s| s.state == 'Z' && s.ppid == me);
            if zombie {
                if let Some(pid) = Pid::from_raw(p) {
                    let _ = rustix::process::waitpid(Some(pid), WaitOptions::NOHANG);
                }
            }
        }
    }
}

/// Returns true if and only if `/proc/self/task/<tid>/children` exists (`CONFIG_PROC_CHILDREN`),
/// which the cgroup mode needs to find zombie orphans without the sweep.
pub(crate) fn children_listed() -> bool {
    fs::read_dir("/proc/self/task")
        .ok()
        .and_then(|mut d| d.next())
        .and_then(|e| e.ok())
        .is_some_and(|e| e.path().join("children").exists())
}
