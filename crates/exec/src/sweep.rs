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
    /// `ns_last_pid` at the last scan: the next scan reads only the pids allocated since
    /// (`None`: no scan yet, or unreadable, so the whole window is read).
    last_pid: Option<i32>,
    /// Pids whose `stat` is read again by every scan: members and the undecided.
    pending: HashSet<i32>,
    /// Pids decided for good not to be this probe's (see `scan`); never read again unless the
    /// pid is allocated anew.
    others: HashSet<i32>,
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
            last_pid: None,
            pending: HashSet::new(),
            others: HashSet::new(),
            killed: KillLog::default(),
        }
    }

    /// Returns the probe's live processes other than its main process, reaping zombie orphans.
    ///
    /// Scans are incremental (see `candidates`), except that "nothing left" is only ever
    /// concluded from a scan of the whole window: a pid is allocated a moment before its process
    /// shows in `/proc`, so an incremental scan can miss a child being created right then.
    pub(crate) fn scan(&mut self) -> Vec<ProcStat> {
        let incremental = self.last_pid.is_some();
        let live = self.scan_once();
        if self.settled && incremental {
            self.last_pid = None;
            return self.scan_once();
        }
        live
    }

    fn scan_once(&mut self) -> Vec<ProcStat> {
        // The lock makes "is this a probe's main process?" and the reaping of zombie orphans
        // atomic with respect to spawns, which register their main process under it, and keeps
        // every other sweep from reaping while this one looks (see `settled`).
        let leaders = crate::runner::leaders();
        let stats: Vec<ProcStat> = self
            .candidates()
            .into_iter()
            .filter(|&p| p != self.leader)
            .filter_map(procfs::read_stat)
            .filter(|s| s.starttime >= self.leader_start)
            .collect();
        self.settled = true;
        self.pending.clear();
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
        self.sort_out_others(&stats, &is_member, &tokens);
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

    /// Returns the pids to read: on the first scan the whole window since the main process;
    /// then only the pids allocated since the last scan plus the pending ones. Pids are
    /// allocated cyclically, so everything created between two reads of `ns_last_pid` lies
    /// between the two values; a pid there that was decided "not ours" may be a new process and
    /// is decided again. This keeps a scan's cost to the probe's own processes and what the
    /// host created in one tick, instead of everything created since the probe started.
    fn candidates(&mut self) -> Vec<i32> {
        let now = procfs::ns_last_pid();
        let out = match (self.last_pid, now) {
            (Some(prev), Some(now)) => {
                let fresh = procfs::pids_allocated_after(prev, now);
                for p in &fresh {
                    self.others.remove(p);
                }
                let mut c: Vec<i32> = self.pending.iter().copied().collect();
                c.extend(fresh.into_iter().filter(|p| !self.pending.contains(p)));
                c
            }
            _ => {
                self.others.clear();
                procfs::pids_since(self.leader)
            }
        };
        self.last_pid = now;
        out
    }

    /// Records what this scan decided: members and undecided processes stay pending; a
    /// non-member is "not ours" for good when its parent is (or predates the probe), or when it
    /// is an orphan of ours carrying another probe's token. Anything else (a parent that died
    /// while we looked, a token-less orphan while other probes run) is read again next scan.
    fn sort_out_others(
        &mut self,
        stats: &[ProcStat],
        is_member: &[bool],
        tokens: &HashMap<i32, Token>,
    ) {
        let me = self.shared.me;
        let seen: HashSet<i32> = stats.iter().map(|s| s.pid).collect();
        let mut other = vec![false; stats.len()];
        loop {
            let mut changed = false;
            for (i, s) in stats.iter().enumerate() {
                if is_member[i] || other[i] {
                    continue;
                }
                let decided = if s.ppid == me {
                    tokens.get(&s.pid) == Some(&Token::Other)
                } else {
                    self.others.contains(&s.ppid)
                        || (!seen.contains(&s.ppid)
                            && !self.pending.contains(&s.ppid)
                            && !procfs::in_window(s.ppid, self.leader, self.last_pid))
                };
                if decided {
                    other[i] = true;
                    self.others.insert(s.pid);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        for (i, s) in stats.iter().enumerate() {
            let dead = s.state == 'Z' || s.state == 'X';
            if !other[i] && !dead {
                self.pending.insert(s.pid);
            }
        }
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
