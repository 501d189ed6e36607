//! A sandboxed probe (a program of an untrusted root, as `--verify-runs` starts them) cannot
//! act outside its root: a fake `iscsiadm`, run by the root's own static busybox, tries to
//! write outside by `chdir("..")`, through `/proc/1/root` (a real procfs is mounted in the root,
//! as the host's is under `/host/proc` in a DaemonSet), by `chroot` again, `mknod` and `chown`.
//! Nothing appears outside, the writes it may do land inside the root, and it ran as uid 65534
//! with no capability at all and `no_new_privs`. A control run of the same script the way
//! `--verify-runs` used to start it (`chroot(8)` as root) shows the attempts do work there.

// Tests build fake hosts and read fixtures on this machine directly.
#![allow(clippy::disallowed_methods)]

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hostready_exec::{Exit, Outcome, ProbeSpec, Runner, RunnerConfig, Sandbox, StartError};
use support::serial;

const BUSYBOX: &str = "/bin/busybox";

/// A temporary root with a static busybox as `/bin/sh`, a world-writable `/tmp`, and a procfs
/// mounted at `/proc`; unmounted and removed on drop.
struct HostileRoot {
    dir: tempfile::TempDir,
    proc_mounted: bool,
}

impl HostileRoot {
    fn new(iscsiadm: &str) -> HostileRoot {
        assert!(
            Path::new(BUSYBOX).exists(),
            "needs a static busybox at {BUSYBOX} (scripts/setup installs busybox-static)"
        );
        let dir = tempfile::Builder::new()
            .prefix("hrx-root-")
            .tempdir()
            .unwrap();
        let r = dir.path();
        fs::set_permissions(r, fs::Permissions::from_mode(0o755)).unwrap();
        for d in ["bin", "usr/sbin", "tmp", "proc", "dev"] {
            fs::create_dir_all(r.join(d)).unwrap();
        }
        fs::set_permissions(r.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
        fs::copy(BUSYBOX, r.join("bin/busybox")).unwrap();
        std::os::unix::fs::symlink("busybox", r.join("bin/sh")).unwrap();
        let exe = r.join("usr/sbin/iscsiadm");
        fs::write(&exe, format!("#!/bin/sh\n{iscsiadm}\n")).unwrap();
        fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
        let mut root = HostileRoot {
            dir,
            proc_mounted: false,
        };
        let st = Command::new("/bin/mount")
            .args(["-t", "proc", "proc"])
            .arg(root.path().join("proc"))
            .status()
            .unwrap();
        assert!(st.success(), "cannot mount a procfs in the test root");
        root.proc_mounted = true;
        root
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for HostileRoot {
    fn drop(&mut self) {
        if self.proc_mounted {
            let _ = Command::new("/bin/umount")
                .arg("-l")
                .arg(self.dir.path().join("proc"))
                .status();
        }
    }
}

/// The escape attempts; each writes `$1` (a unique name) somewhere it believes is outside.
fn hostile_script(name: &str) -> String {
    format!(
        r#"B=/bin/busybox
N={name}
cd /
i=0; while [ $i -lt 40 ]; do cd ..; i=$((i+1)); done
echo cwd > ./tmp/$N.cwd
echo abs > /tmp/$N.abs
echo proc > /proc/1/root/tmp/$N.proc1 2>/dev/null
echo proc > /proc/self/root/../../tmp/$N.procself 2>/dev/null
$B mkdir -p /tmp/jail/bin
$B cp $B /tmp/jail/bin/busybox
$B chroot /tmp/jail /bin/busybox true 2>/dev/null && echo CHROOT-WORKED
$B mknod /tmp/$N.null c 1 3 2>/dev/null && echo MKNOD-WORKED
$B chown 0:0 /tmp/$N.abs 2>/dev/null && echo CHOWN-WORKED
$B grep -E '^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):' /proc/self/status
echo "iscsiadm version 2.1.8"
exit 0"#
    )
}

fn runner() -> Runner {
    Runner::new(RunnerConfig {
        kill_grace: Duration::from_millis(200),
        reap_wait: Duration::from_millis(500),
        ..RunnerConfig::default()
    })
}

fn status_field<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in {out}"))
        .trim()
}

#[test]
fn untrusted_root_program_cannot_write_outside_and_runs_without_privileges() {
    let _g = serial();
    let name = format!("hrx-escape-{}", std::process::id());
    let root = HostileRoot::new(&hostile_script(&name));
    let outside = [
        PathBuf::from(format!("/tmp/{name}.cwd")),
        PathBuf::from(format!("/tmp/{name}.abs")),
        PathBuf::from(format!("/tmp/{name}.proc1")),
        PathBuf::from(format!("/tmp/{name}.procself")),
        PathBuf::from(format!("/tmp/{name}.null")),
    ];
    let r = runner();
    for round in 0..3 {
        let mut spec = ProbeSpec::new(
            "verify.iscsiadm",
            "/usr/sbin/iscsiadm",
            ["--version"],
            Duration::from_secs(10),
        );
        spec.sandbox = Some(Sandbox::unprivileged(Some(root.path())));
        let res = r.run(&spec);
        let out = res.stdout.text().into_owned();
        assert_eq!(
            res.outcome.exit(),
            Some(Exit::Code(0)),
            "round {round}: {res:?}"
        );
        assert!(out.contains("iscsiadm version 2.1.8"), "{out}");
        for p in &outside {
            assert!(
                !p.exists(),
                "round {round}: {} was written outside",
                p.display()
            );
        }
        // The writes it could make stayed inside the root (its /tmp is world-writable).
        let inside = root.path().join(format!("tmp/{name}.abs"));
        assert!(inside.exists(), "the script did not run: {out}");
        for forbidden in ["CHROOT-WORKED", "MKNOD-WORKED", "CHOWN-WORKED"] {
            assert!(!out.contains(forbidden), "round {round}: {out}");
        }
        assert!(
            status_field(&out, "Uid")
                .split_whitespace()
                .all(|u| u == "65534"),
            "{out}"
        );
        assert!(
            status_field(&out, "Gid")
                .split_whitespace()
                .all(|g| g == "65534"),
            "{out}"
        );
        assert_eq!(status_field(&out, "Groups"), "", "{out}");
        for cap in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            assert_eq!(status_field(&out, cap), "0000000000000000", "{cap}: {out}");
        }
        assert_eq!(status_field(&out, "NoNewPrivs"), "1", "{out}");
        assert!(res.leftovers.is_empty(), "{res:?}");
        let _ = fs::remove_file(inside);
        let _ = fs::remove_file(root.path().join(format!("tmp/{name}.cwd")));
    }

    // Control: as root under chroot(8), what the old `--verify-runs` did, the same script does
    // get through (here /proc/1/root happens to be refused even to root, the rest is not).
    let control = r.run(&ProbeSpec::new(
        "control",
        "/usr/sbin/chroot",
        [root.path().to_str().unwrap(), "/usr/sbin/iscsiadm"],
        Duration::from_secs(10),
    ));
    let out = control.stdout.text();
    for worked in ["CHROOT-WORKED", "MKNOD-WORKED", "CHOWN-WORKED"] {
        assert!(out.contains(worked), "control: {out}");
    }
    assert!(
        !status_field(&out, "CapBnd").starts_with("0000000000000000"),
        "{out}"
    );
}

#[test]
fn a_sandbox_as_root_is_refused_before_anything_starts() {
    let _g = serial();
    let r = runner();
    let mut spec = ProbeSpec::new("s", "/bin/true", Vec::<&str>::new(), Duration::from_secs(5));
    spec.sandbox = Some(Sandbox {
        root: None,
        uid: 0,
        gid: 65534,
    });
    let res = r.run(&spec);
    assert!(
        matches!(res.outcome, Outcome::NotStarted(StartError::Confine(_))),
        "{res:?}"
    );
}

#[test]
fn a_sandboxed_probe_still_times_out_and_is_killed() {
    let _g = serial();
    let root = HostileRoot::new("/bin/busybox sleep 30 &\nexec /bin/busybox sleep 30");
    let r = runner();
    let mut spec = ProbeSpec::new(
        "verify.slow",
        "/usr/sbin/iscsiadm",
        Vec::<&str>::new(),
        Duration::from_millis(300),
    );
    spec.sandbox = Some(Sandbox::unprivileged(Some(root.path())));
    let res = r.run(&spec);
    assert!(matches!(res.outcome, Outcome::TimedOut { .. }), "{res:?}");
    assert!(res.leftovers.is_empty(), "{res:?}");
    // The sandbox was not a way out of the runner: nothing of the root is still running.
    let marker = root.path().to_string_lossy().into_owned();
    let left: Vec<i32> = fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| {
            fs::read_link(format!("/proc/{p}/root")).is_ok_and(|l| l.to_string_lossy() == marker)
        })
        .collect();
    assert!(left.is_empty(), "processes in the root left: {left:?}");
}
