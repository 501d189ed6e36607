//! The bounded runner: the only way hostready starts a process, with guarantees that make a
//! stuck or misbehaving probe a finding instead of an incident.
//!
//! ```no_run
//! use std::time::Duration;
//! use hostready_exec::{ProbeSpec, Runner, RunnerConfig, Outcome};
//!
//! let runner = Runner::new(RunnerConfig::default());
//! let spec = ProbeSpec::new("custom.disk-alive", "/usr/local/bin/check-disk", ["--dev", "sdb"], Duration::from_secs(5));
//! let result = runner.run(&spec);
//! let verdict = result.npd_verdict(hostready_exec::NPD_MAX_OUTPUT);
//! println!("{}: {:?} {}", result.command, verdict.verdict, verdict.message);
//! ```
//!
//! # Guarantees
//! - **No shell.** An absolute program and an explicit argv; `env_clear()` plus an allow-list
//!   (read once from the runner's environment) plus the spec's own variables and
//!   [`TOKEN_VAR`]; stdin is `/dev/null`; the probe leads its own process group.
//! - **Bounded output.** stdout and stderr are drained concurrently by one `poll(2)` loop;
//!   the first `output_cap` bytes of each are kept and the rest only counted.
//! - **Deadline, then the whole tree.** At the deadline the process group and every known
//!   descendant get `SIGTERM`, after `kill_grace` `SIGKILL`, and every child is reaped.
//! - **Bounded waiting.** After `SIGKILL` the runner waits at most `reap_wait`; a process that
//!   still lives (uninterruptible sleep, frozen) is reported as a [`StuckProcess`] with its
//!   pid, `/proc` state and start, never waited on, and its pipes are never read blockingly.
//! - **Nothing outlives a probe.** Each probe runs in its own cgroup where one can be created
//!   (v2 with `cgroup.kill`, else v1 `pids`; entered between fork and exec, removed after the
//!   run; see `cgroup.rs`), so descendants are found and killed whatever they do to their
//!   session, group, parent or environment, also when the main process exits normally. Without
//!   a writable cgroup the `/proc` sweep finds those that left the group (`setsid -f`, double
//!   fork) — the process is a child subreaper, and orphans carry the probe's token. See
//!   [`Containment`] and `sweep.rs` for the limits of each.
//! - **Probes yield the CPU to the runner**: they start at nice 10 (`probe_nice`), so deadlines
//!   hold on a saturated machine.
//! - **Untrusted programs run unprivileged** when the spec has a [`Sandbox`]: chroot, uid/gid
//!   65534, no groups, no capabilities in any set, `no_new_privs` (`confine.rs`, the crate's
//!   only `unsafe`).
//! - **One live instance per probe id.** While an earlier instance lives, `run` returns
//!   [`Outcome::StillRunning`] ("stuck since ..., pid ..., state D") and starts nothing.
//! - **A global cap** (`max_concurrent`): `run` returns [`Outcome::Busy`], `run_many` queues
//!   within the probes' own deadlines; [`Runner::spawn`] runs a probe on its own thread.
//! - **Every result records** the command line, exit code or signal, duration, and output heads
//!   with their total sizes ([`ProbeResult`]).
//!
//! # The subreaper, and processes of this process
//! [`Runner::new`] makes the whole process a child subreaper (`PR_SET_CHILD_SUBREAPER`), so any
//! orphaned grandchild of *any* child of this process is re-parented here and reaped by the
//! runner's sweeps. A zombie child of this process that is not a runner's main process is taken
//! for such an orphan and reaped, so processes that embed the runner should start children only
//! through it (a `std::process::Child` spawned elsewhere could find its exit status taken).
//! Several runners in one process are safe with each other (the registry of main processes is
//! process-wide), but each has its own cap and its own record of live instances: use one.
//!
//! # How a probe's processes are identified
//! With a cgroup: by membership (`cgroup.procs`), each member signalled through a pidfd that was
//! opened while it was listed and checked still listed afterwards. Without: by process group,
//! by parent chain, and — for orphans re-parented to this process — by the per-run value of
//! [`TOKEN_VAR`] in their environment; only processes created after the probe's main process
//! are considered (pids are allocated cyclically; `sweep.rs` and `procfs.rs` explain the
//! window), and each is signalled through a pidfd opened against its `(pid, starttime)`, so a
//! recycled pid is never signalled.
//!
//! # Known limits
//! - Without a cgroup: a descendant that is orphaned and either forges another token or clears
//!   its environment while another probe is running cannot be attributed, and is left alone
//!   (never killed by the wrong probe); and the two whole-window scans of a run cost in
//!   proportion to what the host created since the probe started (docs/bench-exec.md).
//! - Kernels without `pidfd_open` (before 5.3): the main process is polled every 10 ms and other
//!   processes are signalled with `kill(2)` right after re-checking their start time (a window
//!   of microseconds instead of none). Not exercised by the tests, which run on 6.x.
//! - A member can leave its cgroup only by writing another cgroup's `cgroup.procs`, which needs
//!   write access there (a root probe has it); such a process is then out of the runner's reach.

mod cgroup;
mod confine;
mod members;
mod npd;
mod outcome;
mod probe;
mod procfs;
mod runner;
mod spec;
mod sweep;

pub use cgroup::{CgroupPolicy, Containment};
pub use npd::{NPD_MAX_OUTPUT, NpdVerdict, Verdict};
pub use outcome::{
    Captured, Exit, Killed, NAMED_KILLED, Outcome, ProbeResult, StartError, StuckProcess,
};
pub use runner::{ProbeHandle, Runner, RunnerConfig, TOKEN_VAR};
pub use spec::{CommandLine, ProbeSpec, Sandbox};
