//! What a probe run produced: the result record, its outcome, captured output, and the
//! description of a process that could not be killed.

use std::fmt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::spec::{CommandLine, Sandbox};

/// The record of one attempt to run a probe. Every variant carries the command line, the wall
/// clock start and the duration, so a report can always say what was (or was not) run.
#[derive(Debug)]
pub struct ProbeResult {
    /// The probe's id (`custom.disk-alive`).
    pub id: String,
    /// The program and argv, exactly as executed (no shell involved).
    pub command: CommandLine,
    /// The sandbox it ran in, if the spec asked for one (a program of an untrusted root).
    pub sandbox: Option<Sandbox>,
    /// When the attempt started (wall clock).
    pub started: SystemTime,
    /// How long the attempt took, including killing and reaping.
    pub duration: Duration,
    /// What happened.
    pub outcome: Outcome,
    /// The head of standard output, up to the runner's cap, and its total size.
    pub stdout: Captured,
    /// The head of standard error, up to the runner's cap, and its total size.
    pub stderr: Captured,
    /// Descendants that were still alive when the probe's main process ended or its deadline
    /// passed (including ones that left the process group or session), and were killed: the
    /// first [`NAMED_KILLED`] of them, so a probe that forked thousands costs a bounded record.
    pub cleaned_up: Vec<Killed>,
    /// How many descendants were killed in all (`cleaned_up` names at most [`NAMED_KILLED`]).
    pub cleaned_up_total: usize,
    /// Processes of this run that were still alive when the bounded wait after `SIGKILL` ran out
    /// (uninterruptible sleep, frozen). The probe is not started again while any of them lives.
    pub leftovers: Vec<StuckProcess>,
}

/// How one probe attempt ended.
#[derive(Debug)]
pub enum Outcome {
    /// The program exited (or was killed by someone else) before its deadline.
    Exited(Exit),
    /// The deadline passed; the group was sent `SIGTERM`, then `SIGKILL` after the grace period.
    TimedOut {
        /// How the main process finally ended, or `None` if it never died (see `leftovers`).
        exit: Option<Exit>,
        /// True if and only if `SIGTERM` was not enough and `SIGKILL` was sent.
        escalated_to_kill: bool,
    },
    /// Not started: an earlier instance of the same probe is still alive.
    StillRunning(StuckProcess),
    /// Not started: the runner's global cap on concurrent probes was reached.
    Busy {
        /// The cap in force.
        max_concurrent: usize,
    },
    /// Not started: the program could not be executed.
    NotStarted(StartError),
}

impl Outcome {
    /// Returns the exit of the main process, if it ran and ended.
    pub fn exit(&self) -> Option<Exit> {
        match self {
            Outcome::Exited(e) => Some(*e),
            Outcome::TimedOut { exit, .. } => *exit,
            _ => None,
        }
    }
}

/// Why a probe could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The runner only executes absolute paths, never a PATH search or a shell string.
    #[error("program {0:?} is not an absolute path")]
    RelativeProgram(PathBuf),
    /// The probe's sandbox cannot be set up here (it would run as root, or hostready lacks the
    /// capabilities to drop them); nothing was started.
    #[error("cannot confine the probe: {0}")]
    Confine(String),
    /// fork/exec failed (missing file, no execute bit, bad interpreter, ...).
    #[error("cannot start {command}")]
    Spawn {
        /// The command line that failed.
        command: String,
        /// The error from the spawn.
        #[source]
        source: std::io::Error,
    },
}

impl StartError {
    /// Returns the system's refusal to start any process now — no pid, thread or memory left,
    /// no descriptor (`EAGAIN`, `ENOMEM`, `EMFILE`, `ENFILE`) — which says nothing of the
    /// program itself: a node out of pids (the incident's own state) must not read as "this
    /// executable does not start".
    pub fn system_refusal(&self) -> Option<&std::io::Error> {
        use rustix::io::Errno;
        let StartError::Spawn { source, .. } = self else {
            return None;
        };
        matches!(
            Errno::from_io_error(source)?,
            Errno::AGAIN | Errno::NOMEM | Errno::MFILE | Errno::NFILE
        )
        .then_some(source)
    }
}

/// How a process ended: an exit code, or the signal that killed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// `exit(code)`.
    Code(i32),
    /// Killed by this signal number.
    Signal(i32),
}

impl Exit {
    pub(crate) fn from_status(status: ExitStatus) -> Exit {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(c), _) => Exit::Code(c),
            (None, Some(s)) => Exit::Signal(s),
            // Neither: cannot happen for a waited-for, terminated child; report it as raw.
            (None, None) => Exit::Code(status.into_raw()),
        }
    }

    /// Returns the exit code, or `None` if a signal ended the process.
    pub fn code(self) -> Option<i32> {
        match self {
            Exit::Code(c) => Some(c),
            Exit::Signal(_) => None,
        }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit code {c}"),
            Exit::Signal(9) => f.write_str("killed by SIGKILL"),
            Exit::Signal(15) => f.write_str("killed by SIGTERM"),
            Exit::Signal(s) => write!(f, "killed by signal {s}"),
        }
    }
}

/// The first bytes of an output stream and how much there was in all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captured {
    /// At most the runner's `output_cap` bytes from the start of the stream.
    pub head: Vec<u8>,
    /// Every byte read, kept or not.
    pub total_bytes: u64,
}

impl Captured {
    /// Returns true if and only if more was written than was kept.
    pub fn truncated(&self) -> bool {
        self.total_bytes > self.head.len() as u64
    }

    /// Appends `data`, keeping at most `cap` bytes in `head`.
    pub(crate) fn push(&mut self, data: &[u8], cap: usize) {
        self.total_bytes += data.len() as u64;
        let room = cap.saturating_sub(self.head.len());
        self.head.extend_from_slice(&data[..room.min(data.len())]);
    }

    /// Returns the head as text, replacing invalid UTF-8.
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.head)
    }
}

/// A process that outlived the bounded wait after `SIGKILL`, or an earlier instance of a probe
/// that is still alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StuckProcess {
    /// Its pid (valid while it lives; the runner re-checks identity by start time).
    pub pid: i32,
    /// Its `comm` (the kernel's 15-byte process name).
    pub comm: String,
    /// The state letter from `/proc/<pid>/stat`: `D` uninterruptible sleep, `Z`, `T`, ...
    pub state: char,
    /// When the probe run that started it began.
    pub since: SystemTime,
}

impl fmt::Display for StuckProcess {
    /// Formats as `stuck since 2026-01-02T14:02:00Z, pid 4711 (rpm), state D`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stuck since {}, pid {} ({}), state {}",
            Utc(self.since),
            self.pid,
            self.comm,
            self.state
        )
    }
}

/// At most this many killed descendants are named in a [`ProbeResult`]; the rest are counted.
pub const NAMED_KILLED: usize = 32;

/// The record of what a run killed: the first [`NAMED_KILLED`] by pid and name, all counted.
#[derive(Debug, Default)]
pub(crate) struct KillLog {
    seen: std::collections::HashSet<i32>,
    pub named: Vec<Killed>,
    pub total: usize,
}

impl KillLog {
    /// Records `pid` once; `comm` is only asked for while names are still kept.
    pub(crate) fn record(&mut self, pid: i32, comm: impl FnOnce() -> String) {
        if !self.seen.insert(pid) {
            return;
        }
        self.total += 1;
        if self.named.len() < NAMED_KILLED {
            self.named.push(Killed { pid, comm: comm() });
        }
    }
}

/// A descendant that the runner killed after the main process ended or the deadline passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Killed {
    /// Its pid at the time.
    pub pid: i32,
    /// Its `comm`.
    pub comm: String,
}

/// Formats a `SystemTime` as RFC 3339 UTC to the second, without a date-time dependency.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Utc(pub SystemTime);

impl fmt::Display for Utc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_keeps_head_and_counts_rest() {
        let mut c = Captured::default();
        c.push(b"hello ", 8);
        c.push(b"world", 8);
        assert_eq!(c.head, b"hello wo");
        assert_eq!(c.total_bytes, 11);
        assert!(c.truncated());
    }

    #[test]
    fn utc_formats_known_instants() {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(Utc(t).to_string(), "2023-11-14T22:13:20Z");
        assert_eq!(Utc(UNIX_EPOCH).to_string(), "1970-01-01T00:00:00Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(Utc(leap).to_string(), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn exit_displays_signals_by_name() {
        assert_eq!(Exit::Signal(9).to_string(), "killed by SIGKILL");
        assert_eq!(Exit::Code(3).to_string(), "exit code 3");
    }

    #[test]
    fn only_the_systems_refusals_say_nothing_of_the_program() {
        let spawn = |errno: rustix::io::Errno| StartError::Spawn {
            command: "/usr/sbin/iscsiadm --version".into(),
            source: std::io::Error::from_raw_os_error(errno.raw_os_error()),
        };
        use rustix::io::Errno;
        for refused in [Errno::AGAIN, Errno::NOMEM, Errno::MFILE, Errno::NFILE] {
            assert!(spawn(refused).system_refusal().is_some(), "{refused:?}");
        }
        // What the program or its file is to blame for is not a refusal.
        for own in [Errno::NOENT, Errno::ACCESS, Errno::NOEXEC, Errno::TXTBSY] {
            assert!(spawn(own).system_refusal().is_none(), "{own:?}");
        }
        assert!(
            StartError::Confine("no caps".into())
                .system_refusal()
                .is_none()
        );
        let other = std::io::Error::other("not an errno");
        let e = StartError::Spawn {
            command: "x".into(),
            source: other,
        };
        assert!(e.system_refusal().is_none());
    }
}
