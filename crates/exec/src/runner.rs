//! The runner: configuration, admission (one live instance per probe id, a global cap), the
//! bookkeeping of stuck instances, and running many probes at once on threads.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ffi::OsString;
use std::process::Child;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use rustix::process::{Pid, Signal, WaitOptions};

use crate::cgroup::{CgroupPolicy, Containment, ProbeCgroup};
use crate::outcome::{Captured, Outcome, ProbeResult, StuckProcess};
use crate::probe;
use crate::procfs::{self, Tracked};
use crate::spec::ProbeSpec;

/// The environment variable every probe (and so every descendant that keeps its environment)
/// carries, with a value unique to the run; it attributes orphans to their probe.
pub const TOKEN_VAR: &str = "HOSTREADY_PROBE_TOKEN";

/// Main processes of every runner in this process, spawned and not yet reaped by their run.
///
/// Process-wide, not per runner: the subreaper property is process-wide, so a sweep must never
/// mistake the main process of *any* runner for an orphan (and reap it under its run's feet).
/// Spawning registers under this lock, and sweeps decide and reap under it.
pub(crate) static LEADERS: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

/// Probes running now, in all runners of this process (for attributing token-less orphans).
pub(crate) static ACTIVE: AtomicUsize = AtomicUsize::new(0);

pub(crate) fn leaders() -> MutexGuard<'static, BTreeSet<i32>> {
    LEADERS.lock().unwrap_or_else(|e| e.into_inner())
}

/// How the runner bounds its probes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerConfig {
    /// At most this many probes run at once; further `run` calls get [`Outcome::Busy`].
    pub max_concurrent: usize,
    /// Time between `SIGTERM` and `SIGKILL` once a deadline has passed.
    pub kill_grace: Duration,
    /// How long to wait for killed processes to die (and for pipes to close) before reporting
    /// them as stuck instead of waiting on.
    pub reap_wait: Duration,
    /// Bytes of stdout and of stderr kept per run; the rest is counted and discarded.
    pub output_cap: usize,
    /// Variables copied from the runner's own environment (read once, by [`Runner::new`]).
    pub env_allow: Vec<String>,
    /// Makes this process a child subreaper, so descendants that escape their parent are
    /// re-parented to it and can be found, killed and reaped. On by default; see the crate docs.
    pub subreaper: bool,
    /// The nice value probes start with (0 keeps the runner's own). 10 by default: the runner
    /// that must kill a probe at its deadline then keeps the CPU ahead of the probe and of
    /// everything it forks, however busy they keep the machine.
    pub probe_nice: i32,
    /// Which cgroups each probe may be put in (its own, below this process's cgroup); see
    /// [`Containment`]. `Auto` by default: v2, else v1 `pids`, else the `/proc` sweep.
    pub cgroup: CgroupPolicy,
}

impl Default for RunnerConfig {
    /// node-problem-detector's concurrency (3), a 500 ms grace, a 2 s bounded reap, 64 KiB of
    /// output per stream, and `PATH`, `LANG`, `LC_ALL`, `TZ` from the environment.
    fn default() -> RunnerConfig {
        RunnerConfig {
            max_concurrent: 3,
            kill_grace: Duration::from_millis(500),
            reap_wait: Duration::from_secs(2),
            output_cap: 64 * 1024,
            env_allow: ["PATH", "LANG", "LC_ALL", "TZ"].map(String::from).to_vec(),
            subreaper: true,
            probe_nice: 10,
            cgroup: CgroupPolicy::Auto,
        }
    }
}

/// Runs probes under the guarantees in the crate docs. Cheap to clone; clones share state
/// (the cap, the live instances), so use one runner per process.
#[derive(Debug, Clone)]
pub struct Runner {
    shared: Arc<Shared>,
}

/// A probe running on its own thread, or already run where no thread could be started; see
/// [`Runner::spawn`].
#[derive(Debug)]
pub struct ProbeHandle {
    inner: Handle,
}

#[derive(Debug)]
enum Handle {
    Thread(JoinHandle<ProbeResult>),
    Done(Box<ProbeResult>),
}

impl ProbeHandle {
    /// Returns true if and only if the probe has finished and `join` will not wait.
    pub fn is_finished(&self) -> bool {
        match &self.inner {
            Handle::Thread(t) => t.is_finished(),
            Handle::Done(_) => true,
        }
    }

    /// Waits for the result (bounded by the probe's timeout + grace + reap wait).
    pub fn join(self) -> ProbeResult {
        match self.inner {
            Handle::Thread(t) => t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            Handle::Done(r) => *r,
        }
    }
}

impl Runner {
    /// Returns a runner; with `config.subreaper`, makes this process a child subreaper.
    pub fn new(config: RunnerConfig) -> Runner {
        if config.subreaper {
            // Best effort: where it fails (kernels before 3.4) the sweep still finds the
            // descendants that stayed in the probe's pid window, and nobody asks which it was.
            let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
        }
        let base_env = config
            .env_allow
            .iter()
            .filter_map(|k| std::env::var_os(k).map(|v| (OsString::from(k), v)))
            .collect();
        // Without `/proc/<tid>/children` zombie orphans could only be found by the sweep.
        let containment = if crate::members::children_listed() {
            Containment::detect(config.cgroup)
        } else {
            Containment::ProcScan
        };
        Runner {
            shared: Arc::new(Shared {
                containment,
                me: rustix::process::getpid().as_raw_nonzero().get(),
                seq: AtomicU64::new(0),
                base_env,
                state: Mutex::new(State::default()),
                freed: Condvar::new(),
                cfg: config,
            }),
        }
    }

    /// Returns the configuration.
    pub fn config(&self) -> &RunnerConfig {
        &self.shared.cfg
    }

    /// Returns how probes are contained: each in its own cgroup (which kind, below which
    /// directory), or tracked by the `/proc` sweep where no cgroup can be created.
    pub fn containment(&self) -> &Containment {
        &self.shared.containment
    }

    /// Runs one probe on the calling thread and returns when it has ended, been killed and
    /// reaped, or been given up as stuck: within `timeout + kill_grace + reap_wait` plus
    /// scheduling slack. Returns [`Outcome::Busy`] at once if the global cap is reached and
    /// [`Outcome::StillRunning`] if an earlier instance of `spec.id` is alive.
    pub fn run(&self, spec: &ProbeSpec) -> ProbeResult {
        self.run_admitted(spec, None)
    }

    /// Runs `spec` on a new thread, so the caller's other work goes on; where the system
    /// refuses a thread (a node out of pids, the incident's own state), on the calling thread
    /// before returning — never a panic, which the release build's `panic = "abort"` would
    /// turn into the death of the whole agent.
    pub fn spawn(&self, spec: ProbeSpec) -> ProbeHandle {
        let runner = self.clone();
        let spec = Arc::new(spec);
        let on_thread = spec.clone();
        let inner = match std::thread::Builder::new().spawn(move || runner.run(&on_thread)) {
            Ok(t) => Handle::Thread(t),
            Err(_) => Handle::Done(Box::new(self.run(&spec))),
        };
        ProbeHandle { inner }
    }

    /// Runs all `specs`, at most `max_concurrent` at a time, and returns their results in order.
    /// A probe waits for a free slot for at most its own timeout, then is reported as
    /// [`Outcome::Busy`], so the whole call is bounded by the specs' budgets.
    pub fn run_many(&self, specs: &[ProbeSpec]) -> Vec<ProbeResult> {
        let next = AtomicUsize::new(0);
        let results: Vec<Mutex<Option<ProbeResult>>> =
            specs.iter().map(|_| Mutex::new(None)).collect();
        let workers = self.shared.cfg.max_concurrent.clamp(1, specs.len().max(1));
        let work = || {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(spec) = specs.get(i) else { break };
                let r = self.run_admitted(spec, Some(Instant::now() + spec.timeout));
                *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
            }
        };
        std::thread::scope(|s| {
            // The calling thread is one of the workers. A thread the system refuses (a node
            // out of pids: the incident itself) is one worker fewer, never a panic.
            for _ in 1..workers {
                if std::thread::Builder::new().spawn_scoped(s, work).is_err() {
                    break;
                }
            }
            work();
        });
        results
            .into_iter()
            .map(|m| {
                m.into_inner()
                    .unwrap_or_else(|e| e.into_inner())
                    .expect("every spec ran")
            })
            .collect()
    }

    /// Returns the probes with an instance still alive after being killed, and one process each.
    pub fn stuck(&self) -> Vec<(String, StuckProcess)> {
        let mut state = self.shared.lock();
        let me = self.shared.me;
        let mut out = Vec::new();
        state.live.retain(|id, live| match live {
            Live::Stuck(inst) => match inst.refresh(me) {
                Some(p) => {
                    out.push((id.clone(), p));
                    true
                }
                None => false,
            },
            Live::Running { .. } => true,
        });
        out
    }

    /// Re-checks stuck instances: kills again, reaps what died, forgets what is gone. Call it
    /// now and then (the agent does each period); `run` and `stuck` do it for their probes.
    pub fn reap(&self) {
        let _ = self.stuck();
    }

    fn run_admitted(&self, spec: &ProbeSpec, wait_until: Option<Instant>) -> ProbeResult {
        let started = SystemTime::now();
        let not_run = |outcome| ProbeResult {
            id: spec.id.clone(),
            command: spec.command_line(),
            sandbox: spec.sandbox.clone(),
            started,
            duration: Duration::ZERO,
            outcome,
            stdout: Captured::default(),
            stderr: Captured::default(),
            cleaned_up: Vec::new(),
            cleaned_up_total: 0,
            leftovers: Vec::new(),
        };
        let max = self.shared.cfg.max_concurrent;
        let mut state = self.shared.lock();
        loop {
            if let Some(live) = state.live.get_mut(&spec.id) {
                let busy_with = match live {
                    Live::Running { since, pid } => {
                        let st = procfs::read_stat(*pid);
                        Some(StuckProcess {
                            pid: *pid,
                            comm: st.as_ref().map_or_else(String::new, |s| s.comm.clone()),
                            state: st.map_or('?', |s| s.state),
                            since: *since,
                        })
                    }
                    Live::Stuck(inst) => inst.refresh(self.shared.me),
                };
                match busy_with {
                    Some(p) => return not_run(Outcome::StillRunning(p)),
                    None => {
                        state.live.remove(&spec.id);
                    }
                }
            }
            if state.active < max {
                break;
            }
            let Some(until) = wait_until else {
                return not_run(Outcome::Busy {
                    max_concurrent: max,
                });
            };
            let now = Instant::now();
            if now >= until {
                return not_run(Outcome::Busy {
                    max_concurrent: max,
                });
            }
            state = self
                .shared
                .freed
                .wait_timeout(state, until - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        state.active += 1;
        ACTIVE.fetch_add(1, Ordering::SeqCst);
        state.live.insert(
            spec.id.clone(),
            Live::Running {
                since: started,
                pid: 0,
            },
        );
        drop(state);
        let mut slot = Slot {
            shared: &self.shared,
            id: &spec.id,
            stuck: None,
        };
        let (result, stuck) = probe::execute(&self.shared, spec, started);
        slot.stuck = stuck;
        drop(slot);
        result
    }
}

/// Frees the slot on every path out of a run, a panic included.
struct Slot<'a> {
    shared: &'a Shared,
    id: &'a str,
    stuck: Option<StuckInstance>,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.active -= 1;
        ACTIVE.fetch_sub(1, Ordering::SeqCst);
        match self.stuck.take() {
            Some(inst) => {
                state.live.insert(self.id.to_string(), Live::Stuck(inst));
            }
            None => {
                state.live.remove(self.id);
            }
        }
        drop(state);
        self.shared.freed.notify_all();
    }
}

/// State shared by clones of a runner and its probe threads.
#[derive(Debug)]
pub(crate) struct Shared {
    pub cfg: RunnerConfig,
    pub containment: Containment,
    pub me: i32,
    seq: AtomicU64,
    pub base_env: Vec<(OsString, OsString)>,
    state: Mutex<State>,
    freed: Condvar,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent-enough bookkeeping; keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn next_token(&self) -> String {
        format!("{}.{}", self.me, self.seq.fetch_add(1, Ordering::Relaxed))
    }

    pub(crate) fn set_running_pid(&self, id: &str, pid: i32) {
        if let Some(Live::Running { pid: p, .. }) = self.lock().live.get_mut(id) {
            *p = pid;
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct State {
    /// Probes running now.
    pub active: usize,
    /// Probe ids with a live instance.
    live: HashMap<String, Live>,
}

#[derive(Debug)]
enum Live {
    Running { since: SystemTime, pid: i32 },
    Stuck(StuckInstance),
}

/// What is left of a run whose processes outlived the bounded wait.
#[derive(Debug)]
pub(crate) struct StuckInstance {
    leader: Option<Child>,
    procs: Vec<Tracked>,
    reported: Vec<StuckProcess>,
    /// The run's cgroup, removed once it is empty.
    cgroup: Option<ProbeCgroup>,
}

impl StuckInstance {
    pub(crate) fn new(
        leader: Option<Child>,
        procs: Vec<Tracked>,
        reported: Vec<StuckProcess>,
        cgroup: Option<ProbeCgroup>,
    ) -> StuckInstance {
        StuckInstance {
            leader,
            procs,
            reported,
            cgroup,
        }
    }

    /// Kills again, reaps what has died, and returns a process still alive, if any.
    fn refresh(&mut self, me: i32) -> Option<StuckProcess> {
        if let Some(child) = &mut self.leader {
            let _ = child.kill();
            if let Ok(Some(_)) = child.try_wait() {
                leaders().remove(&(child.id() as i32));
                self.leader = None;
            }
        }
        self.procs.retain(|t| {
            t.signal(Signal::KILL);
            match t.stat() {
                None => false,
                Some(s) if s.state == 'Z' || s.state == 'X' => {
                    if s.ppid == me {
                        if let Some(pid) = Pid::from_raw(t.pid) {
                            let _ = rustix::process::waitpid(Some(pid), WaitOptions::NOHANG);
                        }
                    }
                    false
                }
                Some(_) => true,
            }
        });
        let alive: HashSet<i32> = self
            .leader
            .as_ref()
            .map(|c| c.id() as i32)
            .into_iter()
            .chain(self.procs.iter().map(|t| t.pid))
            .collect();
        if let Some(first) = self.reported.iter().find(|p| alive.contains(&p.pid)) {
            let st = procfs::read_stat(first.pid);
            return Some(StuckProcess {
                state: st.map_or(first.state, |s| s.state),
                ..first.clone()
            });
        }
        // Everything reported is gone; the cgroup may still hold what was never seen.
        let cg = self.cgroup.as_ref()?;
        cg.kill_all();
        crate::members::reap_orphans(me);
        let since = self.reported.first().map(|p| p.since)?;
        match cg.pids().into_iter().find_map(procfs::read_stat) {
            Some(st) => Some(StuckProcess {
                pid: st.pid,
                comm: st.comm,
                state: st.state,
                since,
            }),
            None => {
                let _ = cg.remove();
                self.cgroup = None;
                None
            }
        }
    }
}
