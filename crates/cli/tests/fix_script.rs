//! `hostready check --fix-script`: the script it prints, run for real. A full copy of the
//! debootstrap root (`hostready_testkit::debroot`) with Longhorn's iSCSI, NFS and encryption
//! packages purged gets the script of `check --root COPY`; the script runs chrooted in the
//! copy, installs the packages from Debian's archive, and the check then passes them; a
//! second run installs nothing and appends nothing.
//!
//! Modules cannot load in a chroot (its kernel is this machine's, its /lib/modules a fake
//! one), and systemd is not running there: the test asserts what the script persisted
//! (`/etc/modules-load.d/hostready.conf`, the enabled unit) and that it said the loads and
//! the start are not in effect now (exit 1), not that they happened.
//!
//! The chroot runs in its own mount and PID namespaces (`unshare --mount --pid --fork`):
//! its /proc, /dev and resolv.conf mounts exist only there, and every process in it dies with
//! it, so nothing is left mounted or running even when the test panics — the copy is only
//! removed when nothing is mounted under it.

// Tests build fake hosts and a root copy on this machine directly.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hostready_testkit::debroot::debroot;
use hostready_testkit::fakehost::{init_process, write};
use serde_json::Value;
use util::{finding, hostready, run_json};

mod util;

/// The fake kernel release the copy's module tree and the fake procfs agree on (not this
/// machine's, so nothing in the chroot can load a module by accident).
const RELEASE: &str = "6.1.0-99-amd64";
const PROFILES: [&str; 3] = ["iscsi", "nfs-client", "encryption"];
/// What Debian's packages put there, and which package the remediation names for each.
const EXES: [(&str, &str); 3] = [
    ("exe.iscsiadm", "open-iscsi"),
    ("exe.mount.nfs", "nfs-common"),
    ("exe.cryptsetup", "cryptsetup"),
];
const MODULES: &str = "iscsi_tcp\nnfs\nnfsv4\ndm_crypt\n";

/// A full copy (`cp -a`) of the Debian root and a fake procfs beside it, in a temp dir
/// removed on drop — unless something is still mounted under it, which is then left alone
/// and named (removing through a bind-mounted /dev would delete this machine's devices).
struct Scratch {
    dir: Option<tempfile::TempDir>,
    root: PathBuf,
    proc: PathBuf,
}

impl Scratch {
    fn new() -> Scratch {
        let base = debroot();
        let dir = tempfile::tempdir().unwrap();
        let need = du_kib(base) * 2;
        let avail = avail_kib(dir.path());
        assert!(
            avail > need,
            "a full copy of {} needs {need} KiB free beside it, {} has {avail} KiB",
            base.display(),
            dir.path().display()
        );
        let root = dir.path().join("root");
        // A real copy, not hard links: dpkg and apt rewrite files in the copy in place.
        let st = Command::new("cp")
            .args(["-a", "--reflink=auto"])
            .arg(base)
            .arg(&root)
            .status()
            .unwrap();
        assert!(st.success(), "cp -a {} {}", base.display(), root.display());
        let proc = dir.path().join("proc");
        Scratch {
            dir: Some(dir),
            root,
            proc,
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.root.join(p.trim_start_matches('/'))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let dir = self.dir.take().unwrap();
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let prefix = dir.path().to_str().unwrap().to_string();
        if mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .any(|m| m.starts_with(&prefix))
        {
            eprintln!("fix_script: something is mounted under {prefix}; left in place",);
            let _ = dir.keep();
        }
    }
}

fn du_kib(p: &Path) -> u64 {
    let out = Command::new("du").arg("-sk").arg(p).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.split_whitespace().next().unwrap().parse().unwrap()
}

fn avail_kib(p: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-k"])
        .arg(p)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines().nth(1).unwrap().trim().parse().unwrap()
}

/// Runs `argv` chrooted in `root`, with /proc, /dev and this machine's resolv.conf mounted in a
/// mount namespace of its own and a PID namespace whose processes all die with it; bounded by
/// 15 minutes (apt downloads from Debian's archive).
fn in_chroot(root: &Path, argv: &[&str]) -> Output {
    // Mounting happens inside the namespace, so a small sh does it; the script under test is
    // then exec'd as the namespace's first process's only work.
    const SETUP: &str = r#"set -eu
r=$1; shift
mount -t proc proc "$r/proc"
mount --rbind /dev "$r/dev"
mount --bind /etc/resolv.conf "$r/etc/resolv.conf"
exec chroot "$r" "$@""#;
    Command::new("timeout")
        .args([
            "900",
            "unshare",
            "--mount",
            "--pid",
            "--fork",
            "--propagation",
            "private",
        ])
        .args(["/bin/sh", "-c", SETUP, "sh"])
        .arg(root)
        .args(argv)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("LANG", "C")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The copy with the packages purged, a kernel module tree for [`RELEASE`] with the modules
/// as files that are not loaded, and a procfs that says so (systemd as pid 1, nothing
/// listening, no nfs4).
fn prepared() -> Scratch {
    let s = Scratch::new();
    // Debian's way of keeping maintainer scripts from starting daemons in a chroot.
    write(&s.root, "/usr/sbin/policy-rc.d", "#!/bin/sh\nexit 101\n");
    Command::new("chmod")
        .arg("755")
        .arg(s.path("/usr/sbin/policy-rc.d"))
        .status()
        .unwrap();
    let resolv = s.path("/etc/resolv.conf");
    if resolv.is_symlink() || !resolv.exists() {
        let _ = fs::remove_file(&resolv);
        fs::write(&resolv, "").unwrap();
    }
    let out = in_chroot(
        &s.root,
        &[
            "dpkg",
            "--purge",
            "open-iscsi",
            "nfs-common",
            "cryptsetup",
            "cryptsetup-bin",
        ],
    );
    assert!(out.status.success(), "dpkg --purge: {}", text(&out.stderr));
    let m = format!("/lib/modules/{RELEASE}");
    let files = [
        "kernel/drivers/scsi/iscsi_tcp.ko.xz",
        "kernel/fs/nfs/nfs.ko.xz",
        "kernel/fs/nfs/nfsv4.ko.xz",
        "kernel/drivers/md/dm-crypt.ko.xz",
    ];
    let mut dep = String::new();
    for f in files {
        write(&s.root, &format!("{m}/{f}"), "");
        dep.push_str(&format!("{f}:\n"));
    }
    write(&s.root, &format!("{m}/modules.dep"), &dep);
    write(&s.root, &format!("{m}/modules.builtin"), "");
    write(
        &s.root,
        &format!("/boot/config-{RELEASE}"),
        "CONFIG_MODULES=y\nCONFIG_ISCSI_TCP=m\nCONFIG_NFS_FS=m\nCONFIG_NFS_V4=m\nCONFIG_DM_CRYPT=m\n",
    );
    let p = &s.proc;
    write(p, "sys/kernel/osrelease", format!("{RELEASE}\n"));
    write(p, "sys/kernel/hostname", "fixhost\n");
    write(p, "modules", "");
    write(p, "filesystems", "nodev\tsysfs\n\text4\n");
    init_process(p);
    write(
        p,
        "1/net/unix",
        "Num       RefCount Protocol Flags    Type St Inode Path\n",
    );
    s
}

/// `hostready check` of the scratch root with every profile of `PROFILES`.
fn check_cmd(s: &Scratch) -> Command {
    let mut cmd = hostready();
    cmd.arg("check")
        .arg("--root")
        .arg(&s.root)
        .arg("--proc")
        .arg(&s.proc);
    for p in PROFILES {
        cmd.args(["-p", p]);
    }
    cmd
}

fn check(s: &Scratch, extra: &[&str]) -> Output {
    check_cmd(s).args(extra).output().unwrap()
}

fn check_json(s: &Scratch) -> (i32, Value) {
    run_json(check_cmd(s).args(["-o", "json"]))
}

/// Panics saying the network is missing when apt could not reach Debian's archive.
fn assert_archive_reached(out: &Output) {
    let err = text(&out.stderr) + &text(&out.stdout);
    for sign in [
        "Could not resolve",
        "Temporary failure resolving",
        "Failed to fetch",
        "Unable to connect",
    ] {
        assert!(
            !err.contains(sign),
            "the fix script's apt-get could not reach Debian's archive (deb.debian.org): this \
             test needs the network to it ({sign:?}):\n{err}"
        );
    }
}

#[test]
fn the_script_fixes_a_debian_root_and_a_second_run_changes_nothing() {
    let s = prepared();
    let (code, before) = check_json(&s);
    assert_eq!(code, 1);
    for (id, package) in EXES {
        let f = finding(&before, id);
        assert_eq!(f["status"], "fail", "{f:#}");
        assert_eq!(f["remediation"]["package"], package, "{f:#}");
    }
    for id in [
        "kmod.iscsi_tcp",
        "kmod.nfs",
        "kmod.dm_crypt",
        "nfs.client",
        "svc.iscsid",
    ] {
        assert_eq!(finding(&before, id)["status"], "fail", "{id}: {before:#}");
    }

    let out = check(&s, &["--fix-script"]);
    // The exit code is the check's.
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let script = text(&out.stdout);
    assert!(script.starts_with("#!/bin/sh\n# hostready fix script: REVIEW BEFORE RUNNING.\n"));
    assert!(
        script.contains("# Host: fixhost, Debian GNU/Linux 12 (bookworm), kernel 6.1.0-99-amd64"),
        "{script}"
    );
    assert!(
        script.contains("# Profiles: iscsi, nfs-client, encryption\n"),
        "{script}"
    );
    for package in ["open-iscsi", "nfs-common", "cryptsetup"] {
        assert!(
            script.contains(&format!("apt-get install -y '{package}'\n")),
            "{script}"
        );
    }
    // nfs.client's fix is the nfsv4 module's.
    assert!(
        script.contains("# nfs.client: load nfsv4 now and at every boot\n"),
        "{script}"
    );
    assert!(
        script.contains("# svc.iscsid: enable iscsid at boot and start it\n"),
        "{script}"
    );
    fs::write(s.path("/tmp/hostready-fix.sh"), &script).unwrap();

    let first = in_chroot(&s.root, &["/bin/sh", "/tmp/hostready-fix.sh"]);
    assert_archive_reached(&first);
    let err = text(&first.stderr);
    // Modules cannot load in a chroot, and systemd does not run there: said, and exit 1.
    assert_eq!(
        first.status.code(),
        Some(1),
        "{err}\n{}",
        text(&first.stdout)
    );
    for package in ["open-iscsi", "nfs-common", "cryptsetup"] {
        assert!(
            err.contains(&format!("hostready-fix: installing {package}\n")),
            "{err}"
        );
    }
    for m in MODULES.lines() {
        assert!(
            err.contains(&format!("not in effect now: {m} did not load")),
            "{m}: {err}"
        );
    }
    // No systemctl in this minimal root, or systemd not running in the chroot: either way said.
    assert!(
        err.contains("not in effect now: no systemctl here: enable and start iscsid")
            || err.contains("not in effect now: systemd is not running here: iscsid starts"),
        "{err}"
    );
    assert_eq!(
        fs::read_to_string(s.path("/etc/modules-load.d/hostready.conf")).unwrap(),
        MODULES
    );

    // The check now finds what the script installed.
    let (_, after) = check_json(&s);
    for (id, _) in EXES {
        assert_eq!(finding(&after, id)["status"], "pass", "{id}: {after:#}");
    }
    assert_eq!(finding(&after, "exe.dmsetup")["status"], "pass");

    // A second run: the same script installs nothing and appends nothing.
    let status = fs::read(s.path("/var/lib/dpkg/status")).unwrap();
    let dpkg_log = fs::read(s.path("/var/log/dpkg.log")).unwrap_or_default();
    let second = in_chroot(&s.root, &["/bin/sh", "/tmp/hostready-fix.sh"]);
    let err2 = text(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{err2}");
    assert!(!err2.contains("installing"), "{err2}");
    assert!(!err2.contains("added "), "{err2}");
    assert!(err2.contains("hostready-fix: nothing changed\n"), "{err2}");
    assert!(
        !text(&second.stdout).contains("Reading package lists"),
        "apt ran again: {}",
        text(&second.stdout)
    );
    assert_eq!(fs::read(s.path("/var/lib/dpkg/status")).unwrap(), status);
    assert_eq!(
        fs::read(s.path("/var/log/dpkg.log")).unwrap_or_default(),
        dpkg_log
    );
    assert_eq!(
        fs::read_to_string(s.path("/etc/modules-load.d/hostready.conf")).unwrap(),
        MODULES
    );
}

/// The plan is the script; its data is the report, which -o json prints without the flag.
#[test]
fn fix_script_has_no_json_form() {
    let dir = tempfile::tempdir().unwrap();
    for format in ["json", "yaml"] {
        let out = hostready()
            .args([
                "check",
                "--fix-script",
                "-o",
                format,
                "--proc",
                "none",
                "--root",
            ])
            .arg(dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(out.stdout.is_empty());
        assert!(
            text(&out.stderr)
                .contains("--fix-script prints a shell script and has no JSON or YAML form"),
            "{}",
            text(&out.stderr)
        );
    }
}

/// On a host where everything passes, the script says so and changes nothing; exit 0.
#[test]
fn a_ready_host_gets_a_script_that_does_nothing() {
    let out = hostready()
        .args(["check", "-p", "encryption", "--fix-script", "--root"])
        .arg(debroot())
        .args(["--proc", "none"])
        .output()
        .unwrap();
    let script = text(&out.stdout);
    // Without a procfs the module is unknown: planned as nothing, and said.
    assert!(
        script.contains("# kmod.dm_crypt: could not be checked, so nothing is planned:"),
        "{script}"
    );
    // It runs on this machine, so first: nothing in it but comments and the helpers every
    // script has (those of an empty plan's script).
    let empty = hostready_checks::fix::shell::render(
        &hostready_checks::fix::FixPlan::default(),
        &hostready_checks::fix::Header {
            version: String::new(),
            host: String::new(),
            profiles: vec![],
            date: String::new(),
            path: hostready_host::exe::DEFAULT_PATH.into(),
        },
    );
    let code = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(str::to_string)
            .collect()
    };
    assert_eq!(code(&script), code(&empty), "{script}");
    let run = Command::new("/bin/sh")
        .arg("-c")
        .arg(&script)
        .env_clear()
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert_eq!(text(&run.stderr), "hostready-fix: nothing changed\n");
    assert_eq!(
        out.status.code(),
        Some(2),
        "the check's exit: a required unknown"
    );
}
