//! Finding and signalling everything one probe started, wherever it went.
//!
//! A probe's processes are found by four rules, applied to the processes created since the
//! probe's main process (the pid window of [`procfs::pids_since`]) until nothing changes:
//! 1. its process group: `pgrp == leader` (the pgid stays reserved while the unreaped leader
//!    or any member exists, so it cannot name another group);
//! 2. descendants: `ppid` is already a member;
//! 3. orphans: the runner's process is a child subreaper (`PR_SET_CHILD_SUBREAPER`), so a process
//!    whose parent died — a `setsid -f` escapee, the grandchild of a double fork — is re-parented
//!    to *us* instead of init. Such a process (`ppid == our pid`, not a probe's main process)
//!    belongs to this probe if its environment carries this probe's token
//!    (`HOSTREADY_PROBE_TOKEN`, inherited across fork/exec/setsid);
//! 4. an orphan without any token (it cleared its environment) is attributed to this probe only
//!    when no other probe is running, since it could then have come from no other probe.
//!
//! Every member must also have started after the main process (`starttime` check), and is
//! signalled through a pidfd opened against its `(pid, starttime)` identity, so a recycled pid is
//! never signalled. Zombie orphans found on the way are reaped here, since as subreaper we are
//! their parent and nobody else will.

use std::collections::{HashMap, HashSet};

use rustix::process::{Pid, Signal, WaitOptions};

use crate::outcome::KillLog;
use crate::procfs::{self, ProcStat, Token, Tracked};
use crate::runner::Shared;

/// The processes of one probe run, as far as they have been seen.
#[derive(Debug)]
pub(crate) struct Tree<'a> {
    shared: &'a Shared,
    leader: i32,
    leader_start: u64,
    token: &'a str,
    tracked: HashMap<i32, Tracked>,
    sent: HashSet<(i32, i32)>,
    /// The last scan saw no member at all, alive, dying or dead (see [`Tree::settled`]).
    settled: bool,
    /// Everything signalled, in the order first seen.
    pub(crate) killed: KillLog,
}

impl<'a> Tree<'a> {
    pub(crate) fn new(
        shared: &'a Shared,
        leader: i32,
        leader_start: u64,
        token: &'a str,
    ) -> Tree<'a> {
        Tree {
            shared,
            leader,
            leader_start,
            token,
            tracked: HashMap::new(),
            sent: HashSet::new(),
            settled: false,
            killed: KillLog::default(),
        }
    }

    /// Returns the probe's live processes other than its main process, reaping zombie orphans.
    pub(crate) fn scan(&mut self) -> Vec<ProcStat> {
        // The lock makes "is this a probe's main process?" and the reaping of zombie orphans
        // atomic with respect to spawns, which register their main process under it, and keeps
        // every other sweep from reaping while this one looks (see `settled`).
        let leaders = crate::runner::leaders();
        let stats: Vec<ProcStat> = procfs::pids_since(self.leader)
            .into_iter()
            .filter(|&p| p != self.leader)
            .filter_map(procfs::read_stat)
            .filter(|s| s.starttime >= self.leader_start)
            .collect();
        self.settled = true;
        if stats.is_empty() {
            return Vec::new();
        }
        let me = self.shared.me;
        let sole = crate::runner::ACTIVE.load(std::sync::atomic::Ordering::SeqCst) <= 1;
        let mut members: HashSet<i32> = HashSet::from([self.leader]);
        let mut is_member = vec![false; stats.len()];
        let mut tokens: HashMap<i32, Token> = HashMap::new();
        loop {
            let mut changed = false;
            for (i, s) in stats.iter().enumerate() {
                if is_member[i] {
                    continue;
                }
                let member = s.pgrp == self.leader
                    || members.contains(&s.ppid)
                    || (s.ppid == me
                        && !leaders.contains(&s.pid)
                        && match *tokens.entry(s.pid).or_insert_with(|| {
                            procfs::token_of(s.pid, crate::runner::TOKEN_VAR, self.token)
                        }) {
                            Token::Ours => true,
                            Token::Other => false,
                            // A zombie's environ reads empty: it is dead and ours to reap anyway.
                            Token::Missing => sole || s.state == 'Z',
                        });
                if member {
                    members.insert(s.pid);
                    is_member[i] = true;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        // Any member seen — alive, a zombie, or one that dies before its pidfd opens — may have
        // forked a child after the pid window was read; only a scan that sees no member at all
        // proves the run has none left (a fork-and-exit chain otherwise slips through).
        self.settled = !is_member.iter().any(|&m| m);
        let mut live = Vec::new();
        for (i, s) in stats.into_iter().enumerate() {
            if !is_member[i] {
                continue;
            }
            if s.state == 'Z' || s.state == 'X' {
                if s.ppid == me && !leaders.contains(&s.pid) {
                    if let Some(pid) = Pid::from_raw(s.pid) {
                        let _ = rustix::process::waitpid(Some(pid), WaitOptions::NOHANG);
                    }
                }
                continue;
            }
            if let std::collections::hash_map::Entry::Vacant(slot) = self.tracked.entry(s.pid) {
                match Tracked::open(&s) {
                    Some(t) => {
                        slot.insert(t);
                    }
                    None => continue,
                }
            }
            live.push(s);
        }
        live
    }

    /// Returns true if and only if the last scan saw no member at all: then, and only then, an
    /// empty scan means the run has nothing left (see the comment in `scan`).
    pub(crate) fn settled(&self) -> bool {
        self.settled
    }

    /// Sends `sig` to the main process's group and to every process in `live`, once each; the
    /// group gets `SIGKILL` on every call (a group kill is atomic with respect to fork, so a
    /// chain that stays in the group is ended by it, whatever the scans missed).
    pub(crate) fn signal(&mut self, live: &[ProcStat], sig: Signal) {
        if self.sent.insert((-self.leader, sig.as_raw())) || sig == Signal::KILL {
            if let Some(pg) = Pid::from_raw(self.leader) {
                // The whole group at once, including members forked since the last scan (later
                // members are found by the scan and signalled one by one below).
                let _ = rustix::process::kill_process_group(pg, sig);
            }
        }
        for s in live {
            if !self.sent.insert((s.pid, sig.as_raw())) {
                continue;
            }
            if let Some(t) = self.tracked.get(&s.pid) {
                t.signal(sig);
                self.killed.record(s.pid, || s.comm.clone());
            }
        }
    }

    /// Hands over the identity of each process in `live`, for later re-checks.
    pub(crate) fn take_tracked(&mut self, live: &[ProcStat]) -> Vec<Tracked> {
        live.iter()
            .filter_map(|s| self.tracked.remove(&s.pid))
            .collect()
    }
}
