//! The few checks that start a process — command checks and the opt-in "does it actually
//! start" verification of found executables — run together under one bounded runner, after
//! every file-reading check has finished, so a slow probe never delays the rest.
//!
//! A verification run starts a program of the *host root*, which may be an untrusted image:
//! it runs in a sandbox ([`Sandbox`]), never with hostready's privileges — `chroot` into the
//! root, uid and gid 65534 with no supplementary groups, every capability dropped (bounding set
//! included) and `no_new_privs`, in its own cgroup where there is one. The same holds for `/`.

use std::path::Path;
use std::time::Duration;

use hostready_exec::{Outcome as RunOutcome, ProbeResult, ProbeSpec, Runner, Sandbox, StartError};

use crate::checks::command;
use crate::finding::{Finding, Status};

/// How a run may start processes.
#[derive(Debug)]
pub struct Probing<'r> {
    pub runner: &'r Runner,
    /// Also run `<exe> --version` (or the like) for every executable found.
    pub verify_executables: bool,
    /// The host root, when it is not `/`: verification then runs chrooted inside it (the
    /// sandbox chroots itself before dropping privileges, which `chroot(8)` run as an
    /// unprivileged user could not).
    pub root: Option<&'r Path>,
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

/// Builds the verification spec for a passing executable finding (whatever its id), or `None`
/// if it cannot be run.
pub fn verify_spec(f: &Finding, probing: &Probing<'_>) -> Option<ProbeSpec> {
    let name = f.subject.executable()?;
    // A path given as the executable (`/usr/sbin/iscsiadm`) is known by its file name.
    let name = name.rsplit('/').next().unwrap_or(name);
    if f.status != Status::Pass {
        return None;
    }
    let args = version_args(name)?;
    let path = f
        .evidence
        .get("resolved")
        .or_else(|| f.evidence.get("path"))?;
    let id = format!("verify.{}", f.id);
    // `path` is the program's path inside the root, which is `/` after the chroot.
    let mut spec = ProbeSpec::new(id, path, args.iter().copied(), VERIFY_TIMEOUT);
    spec.sandbox = Some(Sandbox::unprivileged(probing.root.map(Path::to_path_buf)));
    Some(spec)
}

/// Says how a verification run was confined, for its evidence.
fn confinement(s: &Sandbox) -> String {
    let root = s
        .root
        .as_ref()
        .map_or(String::new(), |r| format!("chroot {}, ", r.display()));
    format!(
        "{root}as uid {} gid {}, no capabilities, no_new_privs",
        s.uid, s.gid
    )
}

/// Amends a passing executable finding with its verification run: a program that is found
/// but does not start fails (or warns when recommended); an undecided run downgrades to warn.
pub fn apply_verification(f: &mut Finding, r: &ProbeResult) {
    let how = r
        .sandbox
        .as_ref()
        .map_or_else(|| "with hostready's privileges".to_string(), confinement);
    // How first, the command last (its shell-quoted form may hold anything).
    f.evidence
        .add("verified with", format!("{how}: {}", r.command));
    command::describe(r, &mut f.evidence);
    f.probe = Some(command::probe_run(r, VERIFY_TIMEOUT));
    // The system started no process at all (out of pids, memory or descriptors): nothing was
    // learnt of the program.
    if let RunOutcome::NotStarted(e) = &r.outcome
        && let Some(why) = e.system_refusal()
    {
        f.status = Status::Warn;
        f.message = format!(
            "{}, but whether it starts is undecided: the system refused to start any process \
             ({why}: out of pids, memory or descriptors?)",
            f.message
        );
        return;
    }
    let failed = match &r.outcome {
        RunOutcome::Exited(e) if e.code() == Some(0) => return,
        RunOutcome::Exited(e) => Some(e.to_string()),
        // The sandbox could not be set up here (hostready itself lacks the capabilities): the
        // program was not tried, so whether it starts is undecided, not failed.
        RunOutcome::NotStarted(StartError::Confine(_)) => None,
        RunOutcome::NotStarted(e) => Some(e.to_string()),
        _ => None,
    };
    match failed {
        Some(why) => {
            f.status = f.level.status(Status::Fail);
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

#[cfg(test)]
// tests read fixtures and build fake hosts directly.
#[allow(clippy::disallowed_methods)]
mod tests {
    //! `--verify-runs` on an untrusted root, through the functions `check` uses: the root's own
    //! `iscsiadm` (a script run by the root's static busybox) tries to write outside the root;
    //! nothing appears outside, and the finding still reports the run and how it was confined.

    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    use hostready_exec::RunnerConfig;

    use super::*;
    use crate::finding::{Evidence, Level, ProbeEnd, Subject};

    fn hostile_root(script: &str) -> tempfile::TempDir {
        let busybox = Path::new("/bin/busybox");
        assert!(
            busybox.exists(),
            "needs a static busybox at /bin/busybox (scripts/setup installs busybox-static)"
        );
        let dir = tempfile::Builder::new()
            .prefix("hr-verify-")
            .tempdir()
            .unwrap();
        let r = dir.path();
        fs::set_permissions(r, fs::Permissions::from_mode(0o755)).unwrap();
        for d in ["bin", "usr/sbin", "tmp"] {
            fs::create_dir_all(r.join(d)).unwrap();
        }
        fs::set_permissions(r.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
        hostready_testkit::process::copy_executable(busybox, &r.join("bin/busybox"));
        std::os::unix::fs::symlink("busybox", r.join("bin/sh")).unwrap();
        hostready_testkit::process::write_executable(
            &r.join("usr/sbin/iscsiadm"),
            format!("#!/bin/sh\n{script}\n").as_bytes(),
        );
        dir
    }

    fn found(path: &str) -> Finding {
        let mut evidence = Evidence::default();
        evidence.add("path", path);
        Finding {
            id: "exe.iscsiadm".into(),
            profile: "iscsi".into(),
            level: Level::Required,
            status: Status::Pass,
            message: format!("iscsiadm found at {path}"),
            evidence,
            remediation: None,
            subject: Subject::Executable("iscsiadm".into()),
            probe: None,
        }
    }

    #[test]
    fn verification_in_an_untrusted_root_stays_inside_and_is_reported() {
        let name = format!("hr-verify-escape-{}", std::process::id());
        let root = hostile_root(&format!(
            "cd /; i=0; while [ $i -lt 40 ]; do cd ..; i=$((i+1)); done\n\
             echo x > ./tmp/{name}\necho x > /tmp/{name}.abs\n\
             /bin/busybox mknod /tmp/{name}.dev c 1 3 2>/dev/null && echo MKNOD-WORKED\n\
             echo iscsiadm version 2.1.8 $(/bin/busybox id -u)\nexit 0"
        ));
        let runner = Runner::new(RunnerConfig::default());
        let probing = Probing {
            runner: &runner,
            verify_executables: true,
            root: Some(root.path()),
        };
        let mut f = found("/usr/sbin/iscsiadm");
        let spec = verify_spec(&f, &probing).expect("iscsiadm is verified");
        let r = runner.run(&spec);
        apply_verification(&mut f, &r);
        assert_eq!(f.status, Status::Pass, "{f:?}");
        let how = f.evidence.get("verified with").unwrap();
        assert!(
            how.contains(&format!("chroot {}", root.path().display()))
                && how.contains("uid 65534")
                && how.contains("no capabilities")
                && how.ends_with("/usr/sbin/iscsiadm --version"),
            "{how}"
        );
        let out = r.stdout.text();
        assert_eq!(out.trim(), "iscsiadm version 2.1.8 65534", "{r:?}");
        for outside in [
            format!("/tmp/{name}"),
            format!("/tmp/{name}.abs"),
            format!("/tmp/{name}.dev"),
        ] {
            assert!(!Path::new(&outside).exists(), "{outside} written outside");
        }
        assert!(root.path().join(format!("tmp/{name}.abs")).exists());
    }

    #[test]
    fn a_program_that_fails_in_the_sandbox_still_fails_the_finding() {
        let root = hostile_root("echo broken >&2\nexit 1");
        let runner = Runner::new(RunnerConfig::default());
        let probing = Probing {
            runner: &runner,
            verify_executables: true,
            root: Some(root.path()),
        };
        let mut f = found("/usr/sbin/iscsiadm");
        let r = runner.run(&verify_spec(&f, &probing).unwrap());
        apply_verification(&mut f, &r);
        assert_eq!(f.status, Status::Fail, "{f:?}");
        assert!(f.message.contains("does not start: exit code 1"), "{f:?}");
        let run = f.probe.as_ref().expect("the run is recorded as data");
        assert_eq!(
            run.end,
            ProbeEnd::Exited {
                exit_code: Some(1),
                signal: None
            }
        );
        assert!(
            run.command.ends_with("/usr/sbin/iscsiadm --version"),
            "{run:?}"
        );
    }

    /// Regression: verification followed the `exe.` id prefix, so an executable requirement
    /// with its own `id:` (docs/profiles.md allows one) was silently never verified.
    #[test]
    fn an_executable_with_a_custom_id_is_verified() {
        let root = hostile_root("echo iscsiadm version 2.1.8\nexit 0");
        let runner = Runner::new(RunnerConfig::default());
        let probing = Probing {
            runner: &runner,
            verify_executables: true,
            root: Some(root.path()),
        };
        let mut f = found("/usr/sbin/iscsiadm");
        f.id = "site.initiator".into();
        let spec = verify_spec(&f, &probing).expect("verified by its kind, not its id");
        let r = runner.run(&spec);
        apply_verification(&mut f, &r);
        assert_eq!(f.status, Status::Pass, "{f:?}");
        assert!(f.evidence.get("verified with").is_some(), "{f:?}");
        assert_eq!(
            f.probe.map(|p| p.end),
            Some(ProbeEnd::Exited {
                exit_code: Some(0),
                signal: None
            })
        );
        // A recommended executable that does not start warns: the level rule of evaluation.
        let broken = hostile_root("exit 3");
        let probing = Probing {
            root: Some(broken.path()),
            ..probing
        };
        let mut f = found("/usr/sbin/iscsiadm");
        f.level = Level::Recommended;
        let r = runner.run(&verify_spec(&f, &probing).unwrap());
        apply_verification(&mut f, &r);
        assert_eq!(f.status, Status::Warn, "{f:?}");
    }
}
