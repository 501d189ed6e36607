//! The few checks that start a process — command checks and the opt-in "does it actually
//! start" verification of found executables — run together under one bounded runner, after
//! every file-reading check has finished, so a slow probe never delays the rest.

use std::path::Path;
use std::time::Duration;

use hostready_exec::{Outcome as RunOutcome, ProbeResult, ProbeSpec, Runner};

use crate::checks::command;
use crate::finding::{Finding, Level, Status};

/// How a run may start processes.
#[derive(Debug)]
pub struct Probing<'r> {
    pub runner: &'r Runner,
    /// Also run `<exe> --version` (or the like) for every executable found.
    pub verify_executables: bool,
    /// The host root, when it is not `/`: verification then runs inside it with `chroot_program`.
    pub root: Option<&'r Path>,
    /// The `chroot` program to enter a non-`/` root with, if there is one.
    pub chroot_program: Option<&'r Path>,
}

/// How long a version probe may take: they print and exit at once.
pub const VERIFY_TIMEOUT: Duration = Duration::from_secs(5);

/// Returns arguments that make `exe` print its version and exit 0, for the executables
/// hostready's built-in profiles know; unknown programs are not run (no safe guess exists).
pub fn version_args(exe: &str) -> Option<&'static [&'static str]> {
    Some(match exe {
        "iscsiadm" | "cryptsetup" | "dmsetup" | "bash" | "curl" | "findmnt" | "grep" | "lsblk" => {
            &["--version"]
        }
        "mount.nfs" | "mount.nfs4" | "blkid" => &["-V"],
        "nvme" => &["version"],
        // mawk and gawk disagree on version flags; running an empty program works for both.
        "awk" => &["BEGIN { exit 0 }"],
        _ => return None,
    })
}

/// Builds the verification spec for a passing `exe.*` finding, or `None` if it cannot be run.
pub fn verify_spec(f: &Finding, probing: &Probing<'_>) -> Option<ProbeSpec> {
    let name = f.id.strip_prefix("exe.")?;
    if f.status != Status::Pass {
        return None;
    }
    let args = version_args(name)?;
    let path = f
        .evidence
        .get("resolved")
        .or_else(|| f.evidence.get("path"))?;
    let id = format!("verify.{name}");
    Some(match (probing.root, probing.chroot_program) {
        (None, _) => ProbeSpec::new(id, path, args.iter().copied(), VERIFY_TIMEOUT),
        (Some(root), Some(chroot)) => {
            let mut argv = vec![root.as_os_str().to_os_string(), path.into()];
            argv.extend(args.iter().map(Into::into));
            ProbeSpec::new(id, chroot, argv, VERIFY_TIMEOUT)
        }
        (Some(_), None) => return None,
    })
}

/// Amends a passing executable finding with its verification run: a program that is found
/// but does not start fails (or warns when recommended); an undecided run downgrades to warn.
pub fn apply_verification(f: &mut Finding, r: &ProbeResult) {
    f.evidence.add("verified with", r.command.to_string());
    command::describe(r, &mut f.evidence);
    let failed = match &r.outcome {
        RunOutcome::Exited(e) if e.code() == Some(0) => return,
        RunOutcome::Exited(e) => Some(e.to_string()),
        RunOutcome::NotStarted(e) => Some(e.to_string()),
        _ => None,
    };
    match failed {
        Some(why) => {
            f.status = if f.level == Level::Required {
                Status::Fail
            } else {
                Status::Warn
            };
            f.message = format!("{} but does not start: {why}", f.message);
        }
        None => {
            f.status = Status::Warn;
            f.message = format!(
                "{}, but whether it starts is undecided: {}",
                f.message,
                r.npd_verdict(command::MAX_MESSAGE).message
            );
        }
    }
}
