//! The exit codes of every `hostready` subcommand, decided in one place (the table is in the
//! README, "Exit codes"):
//!
//! - **0** yes: everything required passed (warnings allowed, unless `--strict`);
//! - **1** no: something required failed (`check`, `doctor`), the package is not installed
//!   (`pkg`), a node is not ready (`cluster`), `agent --once` could not publish;
//! - **2** hostready cannot tell: something required is unknown and nothing failed, a database
//!   cannot answer, or hostready itself could not run (bad flags, unreadable root, a mistake in a
//!   profile, no cluster).
//!
//! It is the rule the agent applies to a profile's node condition (`False` for a required
//! failure, else `Unknown` for a required unknown, else `True`; warnings never fail it), so
//! `check`'s exit code and the agent's condition for the same host always agree.

use std::process::ExitCode;

use hostready_checks::{Finding, Level, Status};

/// The answer a run gives, before it becomes a process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Exit 0.
    Yes,
    /// Exit 1.
    No,
    /// Exit 2.
    CannotTell,
}

impl From<Verdict> for ExitCode {
    fn from(v: Verdict) -> ExitCode {
        ExitCode::from(v.code())
    }
}

impl Verdict {
    /// Returns the process exit code: 0, 1 or 2.
    pub fn code(self) -> u8 {
        match self {
            Verdict::Yes => 0,
            Verdict::No => 1,
            Verdict::CannotTell => 2,
        }
    }
}

/// The `--strict` flag of `check` and `doctor`, defined once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
pub struct StrictArgs {
    /// Exit 1 on a warning too, as on a failure (default: warnings are shown and exit 0).
    #[arg(long)]
    pub strict: bool,
}

/// Returns the verdict on `findings`: [`Verdict::No`] if a required one failed (or, with
/// `strict`, any warned), else [`Verdict::CannotTell`] if a required one is unknown, else
/// [`Verdict::Yes`].
pub fn of_findings(findings: &[Finding], strict: bool) -> Verdict {
    let required = |s: Status| {
        findings
            .iter()
            .any(|f| f.level == Level::Required && f.status == s)
    };
    if required(Status::Fail) || (strict && findings.iter().any(|f| f.status == Status::Warn)) {
        Verdict::No
    } else if required(Status::Unknown) {
        Verdict::CannotTell
    } else {
        Verdict::Yes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A finding at `level` with `status` (built by doctor's constructor, so that a field added
    /// to `Finding` later does not touch this test).
    fn f(level: Level, status: Status) -> Finding {
        let mut f = hostready_doctor::finding::new("exe.x", status, "m");
        f.level = level;
        f
    }

    #[test]
    fn fail_beats_unknown_beats_warn() {
        use Level::{Recommended as Rec, Required as Req};
        use Status::{Fail, Pass, Unknown, Warn};
        for (findings, strict, want) in [
            (vec![f(Req, Pass)], false, Verdict::Yes),
            (vec![], false, Verdict::Yes),
            (vec![f(Req, Pass), f(Rec, Warn)], false, Verdict::Yes),
            (vec![f(Req, Pass), f(Rec, Warn)], true, Verdict::No),
            (vec![f(Req, Warn)], false, Verdict::Yes),
            (
                vec![f(Req, Unknown), f(Req, Pass)],
                false,
                Verdict::CannotTell,
            ),
            (vec![f(Req, Unknown), f(Req, Fail)], false, Verdict::No),
            (vec![f(Rec, Unknown)], false, Verdict::Yes),
            (vec![f(Req, Unknown), f(Rec, Warn)], true, Verdict::No),
        ] {
            assert_eq!(
                of_findings(&findings, strict),
                want,
                "{findings:?} strict={strict}"
            );
        }
        assert_eq!(Verdict::CannotTell.code(), 2);
    }
}
