//! One probe run from spawn to reaped: output drained with a cap, the deadline, the
//! TERM → grace → KILL escalation for the whole tree, and the bounded wait after it.
//!
//! Everything happens in one poll(2) loop on the two pipes (non-blocking) and the main
//! process's pidfd, so no step can block: a process stuck in the kernel that holds a pipe open
//! only makes the loop stop at its deadline, and the pipes are closed behind it
//! (node-problem-detector blocks forever right there: its issues #1050, #726, #941).

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use rustix::event::{PollFd, PollFlags};
use rustix::fs::OFlags;
use rustix::process::{Pid, PidfdFlags, Signal, WaitId, WaitIdOptions};

use crate::RunnerConfig;
use crate::cgroup::ProbeCgroup;
use crate::confine::ChildSetup;
use crate::members::{CgroupTree, Members};
use crate::outcome::{Captured, Exit, Outcome, ProbeResult, StartError, StuckProcess};
use crate::procfs::{self, ProcStat, Tracked};
use crate::runner::{Shared, StuckInstance, TOKEN_VAR};
use crate::spec::{CommandLine, ProbeSpec};
use crate::sweep::Tree;

/// How often the loop re-scans while it waits for killed processes to die, and how often it
/// checks the main process when the kernel has no pidfds.
const TICK: Duration = Duration::from_millis(10);
/// At most this many reads per stream per wake-up, so a flood cannot starve the deadline check.
const READS_PER_WAKE: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    Term { until: Instant },
    Kill { until: Instant },
}

/// Runs `spec` to the end and returns its result, plus what is left alive if anything is:
/// start ([`spawn`]), supervise ([`supervise`]: output, deadline, escalation), then account
/// for what is left ([`conclude`]).
pub(crate) fn execute(
    shared: &Shared,
    spec: &ProbeSpec,
    started: SystemTime,
) -> (ProbeResult, Option<StuckInstance>) {
    let t0 = Instant::now();
    let mut result = ProbeResult {
        id: spec.id.clone(),
        command: spec.command_line(),
        sandbox: spec.sandbox.clone(),
        started,
        duration: Duration::ZERO,
        outcome: Outcome::Busy { max_concurrent: 0 },
        stdout: Captured::default(),
        stderr: Captured::default(),
        cleaned_up: Vec::new(),
        cleaned_up_total: 0,
        leftovers: Vec::new(),
    };
    if !spec.program.is_absolute() {
        result.outcome = Outcome::NotStarted(StartError::RelativeProgram(spec.program.clone()));
        return (result, None);
    }
    let token = shared.next_token();
    let (mut child, cgroup) = match spawn(shared, spec, &token, &result.command) {
        Ok(started) => started,
        Err(e) => {
            result.outcome = Outcome::NotStarted(e);
            result.duration = t0.elapsed();
            return (result, None);
        }
    };
    let pid = child.id() as i32;
    shared.set_running_pid(&spec.id, pid);
    // The child is unreaped, so its pid (and pgid) cannot be reused while we hold it.
    let rpid = Pid::from_raw(pid).expect("spawned child has a positive pid");
    let pidfd = rustix::process::pidfd_open(rpid, PidfdFlags::empty()).ok();
    let leader_start = procfs::read_stat(pid).map_or(0, |s| s.starttime);
    let mut pipes = Pipes {
        out: child.stdout.take().map(nonblocking),
        err: child.stderr.take().map(nonblocking),
        buf: vec![0u8; 64 * 1024],
        cap: shared.cfg.output_cap,
    };
    let mut tree = match cgroup {
        Some(cg) => Members::Cgroup(CgroupTree::new(cg, pid, shared.me)),
        None => Members::Sweep(Tree::new(shared, pid, leader_start, &token)),
    };
    let end = supervise(
        &shared.cfg,
        &mut tree,
        &mut pipes,
        rpid,
        pidfd,
        t0 + spec.timeout,
        &mut result,
    );
    // Whatever is still in the pipes now was written before everyone died (or by a stuck
    // holder): take it without waiting, then close our ends.
    pipes.drain(&mut result);
    drop(pipes);
    let stuck = conclude(child, tree, end, &mut result);
    result.duration = t0.elapsed();
    (result, stuck)
}

/// Starts the probe's main process, in a cgroup of its own where one can be made (the child
/// moves itself in before exec), else to be tracked by the sweep; registered as a leader.
fn spawn(
    shared: &Shared,
    spec: &ProbeSpec,
    token: &str,
    command: &CommandLine,
) -> Result<(Child, Option<ProbeCgroup>), StartError> {
    let build = |setup: ChildSetup| {
        let mut cmd = Command::new(&spec.program);
        cmd.args(&spec.args)
            .env_clear()
            .envs(shared.base_env.iter().map(|(k, v)| (k, v)))
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .env(TOKEN_VAR, token)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so the deadline can signal the whole group at once.
            .process_group(0);
        setup.install(&mut cmd);
        cmd
    };
    let mut cgroup: Option<ProbeCgroup> = shared.containment.create();
    let procs_fd = cgroup.as_ref().and_then(|c| c.procs_for_child().ok());
    if procs_fd.is_none() {
        cgroup = None;
    }
    let nice = shared.cfg.probe_nice;
    let setup = ChildSetup::new(procs_fd, nice, spec.sandbox.as_ref())?;
    let in_cgroup = setup.uses_cgroup();
    let mut cmd = build(setup);
    // Registering the main process under the lock keeps the sweep of a concurrent probe from
    // mistaking it for an orphan (and reaping it).
    let mut leaders = crate::runner::leaders();
    let mut spawned = cmd.spawn();
    if spawned.is_err() && in_cgroup {
        // The move into the cgroup may be what failed (a v2 parent that gained controllers, a
        // cgroup removed under us): run it once more, tracked by the sweep instead. A failed
        // exec ran nothing, so the retry repeats no effect of the probe.
        cgroup = None;
        spawned = build(ChildSetup::new(None, nice, spec.sandbox.as_ref())?).spawn();
    }
    match spawned {
        Ok(c) => {
            leaders.insert(c.id() as i32);
            Ok((c, cgroup))
        }
        Err(source) => Err(StartError::Spawn {
            command: command.to_string(),
            source,
        }),
    }
}

/// How supervision ended: whether the deadline was hit and `SIGKILL` needed, whether the main
/// process exited, and the processes still alive (empty unless the wait ran out).
struct Ending {
    timed_out: bool,
    escalated: bool,
    leader_exited: bool,
    live: Vec<ProcStat>,
}

/// The one loop: drains the pipes, watches the main process, and at the deadline (or once
/// the main process exited leaving others) takes the whole tree through TERM → grace → KILL,
/// then waits at most `reap_wait` for it to die.
fn supervise(
    cfg: &RunnerConfig,
    tree: &mut Members<'_>,
    pipes: &mut Pipes,
    rpid: Pid,
    mut pidfd: Option<OwnedFd>,
    deadline: Instant,
    result: &mut ProbeResult,
) -> Ending {
    let mut phase = Phase::Running;
    let mut end = Ending {
        timed_out: false,
        escalated: false,
        leader_exited: false,
        live: Vec::new(),
    };
    let mut pipes_deadline: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if !end.leader_exited && exited(rpid) {
            end.leader_exited = true;
            pidfd = None; // stays readable from now on; polling it would spin
        }
        if end.leader_exited || phase != Phase::Running {
            end.live = tree.scan();
        }
        let all_gone = end.leader_exited && end.live.is_empty() && tree.settled();
        if all_gone {
            if pipes.closed() {
                break;
            }
            // Every process we know of is dead but a pipe is still open: someone we could not
            // attribute holds it. Read on for a bounded time, then close it behind them.
            let until = *pipes_deadline.get_or_insert(now + cfg.reap_wait);
            if now >= until {
                break;
            }
        } else if !escalate(&mut phase, &mut end, cfg, tree, now, deadline) {
            break;
        }
        let wake = match phase {
            _ if all_gone => pipes_deadline.unwrap_or(now),
            Phase::Running if pidfd.is_some() && !end.leader_exited => deadline,
            Phase::Running => deadline.min(now + TICK),
            Phase::Term { until } | Phase::Kill { until } => until.min(now + TICK),
        };
        pipes.wait_and_drain(pidfd.as_ref(), wake, result);
    }
    end
}

/// Takes the step of the TERM → grace → KILL escalation that `now` calls for, signalling
/// every live process of the tree; returns false once the wait after `SIGKILL` has run out.
fn escalate(
    phase: &mut Phase,
    end: &mut Ending,
    cfg: &RunnerConfig,
    tree: &mut Members<'_>,
    now: Instant,
    deadline: Instant,
) -> bool {
    match *phase {
        Phase::Running if end.leader_exited => {
            // Finished, but left something running: nothing outlives the probe.
            tree.signal(&end.live, Signal::TERM);
            *phase = Phase::Term {
                until: now + cfg.kill_grace,
            };
        }
        Phase::Running if now >= deadline => {
            end.timed_out = true;
            end.live = tree.scan();
            tree.signal(&end.live, Signal::TERM);
            *phase = Phase::Term {
                until: now + cfg.kill_grace,
            };
        }
        Phase::Running => {}
        Phase::Term { until } if now >= until => {
            end.escalated = true;
            tree.signal(&end.live, Signal::KILL);
            *phase = Phase::Kill {
                until: now + cfg.reap_wait,
            };
        }
        Phase::Term { .. } => tree.signal(&end.live, Signal::TERM),
        Phase::Kill { until } => {
            tree.signal(&end.live, Signal::KILL);
            if now >= until {
                return false;
            }
        }
    }
    true
}

/// Fills in the outcome and what was killed or is left alive, reaps the main process if it
/// exited, removes an emptied cgroup, and hands whatever still lives to a [`StuckInstance`].
fn conclude(
    child: Child,
    mut tree: Members<'_>,
    end: Ending,
    result: &mut ProbeResult,
) -> Option<StuckInstance> {
    let mut child = child;
    let pid = child.id() as i32;
    let exit = if end.leader_exited {
        let status = child.wait().map(Exit::from_status).ok();
        crate::runner::leaders().remove(&pid);
        status
    } else {
        None
    };
    let killed = tree.take_killed();
    result.cleaned_up = killed.named;
    result.cleaned_up_total = killed.total;
    let mut stuck_procs: Vec<Tracked> = tree.take_tracked(&end.live);
    let cgroup = tree.into_cgroup();
    let since = result.started;
    result.leftovers = end
        .live
        .iter()
        .map(|s| {
            // Read now: a cgroup scan does not read per-process files, and the state matters.
            let now = procfs::read_stat(s.pid);
            StuckProcess {
                pid: s.pid,
                comm: now
                    .as_ref()
                    .map_or_else(|| s.comm.clone(), |n| n.comm.clone()),
                state: now.map_or(s.state, |n| n.state),
                since,
            }
        })
        .collect();
    let mut stuck_leader = None;
    if !end.leader_exited {
        let st = procfs::read_stat(pid);
        result.leftovers.insert(
            0,
            StuckProcess {
                pid,
                comm: st.as_ref().map_or_else(String::new, |s| s.comm.clone()),
                state: st.as_ref().map_or('?', |s| s.state),
                since,
            },
        );
        stuck_leader = Some(child);
    }
    result.outcome = if end.timed_out {
        Outcome::TimedOut {
            exit,
            escalated_to_kill: end.escalated,
        }
    } else {
        // Not timed out means the main process exited.
        Outcome::Exited(exit.unwrap_or(Exit::Signal(0)))
    };
    let cgroup = settle_cgroup(cgroup, &mut result.leftovers, since);
    (!result.leftovers.is_empty()).then(|| {
        stuck_procs.retain(|t| t.pid != pid);
        StuckInstance::new(stuck_leader, stuck_procs, result.leftovers.clone(), cgroup)
    })
}

/// Removes the run's cgroup if nothing is left in it; one with members left (listed in
/// `leftovers`, also those nobody could track) goes with the stuck instance.
fn settle_cgroup(
    cgroup: Option<ProbeCgroup>,
    leftovers: &mut Vec<StuckProcess>,
    since: SystemTime,
) -> Option<ProbeCgroup> {
    match cgroup {
        Some(cg) if leftovers.is_empty() => match cg.remove() {
            Ok(()) => None,
            Err(_) => {
                // Members nobody could track (they died or appeared as the wait ran out).
                for st in cg.pids().into_iter().filter_map(procfs::read_stat) {
                    leftovers.push(StuckProcess {
                        pid: st.pid,
                        comm: st.comm,
                        state: st.state,
                        since,
                    });
                }
                Some(cg)
            }
        },
        other => other,
    }
}

/// Returns true if and only if the child `pid` has terminated (it stays a zombie: `WNOWAIT`).
fn exited(pid: Pid) -> bool {
    matches!(
        rustix::process::waitid(
            WaitId::Pid(pid),
            WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT
        ),
        Ok(Some(_))
    )
}

fn nonblocking(fd: impl Into<OwnedFd>) -> OwnedFd {
    let fd = fd.into();
    if let Ok(flags) = rustix::fs::fcntl_getfl(&fd) {
        let _ = rustix::fs::fcntl_setfl(&fd, flags | OFlags::NONBLOCK);
    }
    fd
}

/// The probe's stdout and stderr (non-blocking, `None` once at EOF), the read buffer, and the
/// cap on what is kept of each stream.
struct Pipes {
    out: Option<OwnedFd>,
    err: Option<OwnedFd>,
    buf: Vec<u8>,
    cap: usize,
}

impl Pipes {
    fn closed(&self) -> bool {
        self.out.is_none() && self.err.is_none()
    }

    /// Polls the open pipes (and the pidfd) until `wake` at the latest, then drains what is
    /// ready.
    fn wait_and_drain(&mut self, pidfd: Option<&OwnedFd>, wake: Instant, result: &mut ProbeResult) {
        let timeout = wake.saturating_duration_since(Instant::now());
        let ts = rustix::event::Timespec {
            tv_sec: timeout.as_secs() as _,
            tv_nsec: timeout.subsec_nanos() as _,
        };
        let mut fds = Vec::with_capacity(3);
        for fd in [self.out.as_ref(), self.err.as_ref(), pidfd]
            .into_iter()
            .flatten()
        {
            fds.push(PollFd::new(fd, PollFlags::IN));
        }
        if fds.is_empty() {
            std::thread::sleep(timeout);
            return;
        }
        if rustix::event::poll(&mut fds, Some(&ts)).is_err() {
            return; // EINTR: the caller loops
        }
        drop(fds);
        self.drain(result);
    }

    /// Reads what is available of both streams without blocking.
    fn drain(&mut self, result: &mut ProbeResult) {
        drain(&mut self.out, &mut self.buf, self.cap, &mut result.stdout);
        drain(&mut self.err, &mut self.buf, self.cap, &mut result.stderr);
    }
}

/// Reads what is available without blocking; closes the stream on EOF.
fn drain(fd: &mut Option<OwnedFd>, buf: &mut [u8], cap: usize, into: &mut Captured) {
    let Some(f) = fd.as_ref() else { return };
    for _ in 0..READS_PER_WAKE {
        match rustix::io::read(f.as_fd(), &mut *buf) {
            Ok(0) => {
                *fd = None;
                return;
            }
            Ok(n) => into.push(&buf[..n], cap),
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) => return,
            Err(_) => {
                *fd = None;
                return;
            }
        }
    }
}
