//! `hostready check` on a genuine Debian root made by debootstrap with Longhorn's packages
//! (`scripts/debroot`, cached under `.cache/`), and on copies of it with pieces removed.
//!
//! Copies are hard-link trees (`cp -al`, `hostready_testkit::debroot::Copy`), so making one
//! costs a second, not 300 MB; a file the test changes is first replaced by a private copy so
//! the cached root stays intact.

// Tests build fake hosts and read fixtures on this machine directly.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use hostready_testkit::debroot::{Copy, debroot};
use serde_json::Value;
use util::{finding, hostready, run_json};

mod util;

fn check(root: &Path, profiles: &[&str]) -> (i32, Value) {
    let mut cmd = hostready();
    cmd.args(["check", "--output", "json", "--proc", "none", "--root"])
        .arg(root);
    for p in profiles {
        cmd.args(["--profile", p]);
    }
    run_json(&mut cmd)
}

const EXES: [&str; 4] = [
    "exe.iscsiadm",
    "exe.mount.nfs",
    "exe.cryptsetup",
    "exe.dmsetup",
];

#[test]
fn longhorn_executables_pass_on_a_real_debian_root() {
    let (_, json) = check(debroot(), &["longhorn"]);
    assert_eq!(json["host"]["family"], "debian");
    for id in EXES {
        let f = finding(&json, id);
        assert_eq!(f["status"], "pass", "{f:#}");
        assert!(
            f["evidence"]["runs"]
                .as_str()
                .unwrap()
                .contains("interpreter"),
            "{f:#}"
        );
    }
    // Without a procfs, process and kernel facts are unknown, never guessed.
    assert_eq!(finding(&json, "svc.iscsid")["status"], "unknown");
    assert_eq!(finding(&json, "kmod.iscsi_tcp")["status"], "unknown");
}

#[test]
fn removed_iscsiadm_fails_with_reinstall_advice_from_dpkg() {
    let c = Copy::new();
    fs::remove_file(c.path("/usr/sbin/iscsiadm")).unwrap();
    let (code, json) = check(&c.root, &["iscsi"]);
    assert_eq!(code, 1);
    let f = finding(&json, "exe.iscsiadm");
    assert_eq!(f["status"], "fail");
    assert_eq!(f["remediation"]["package"], "open-iscsi");
    // dpkg still records open-iscsi as installed: the fix is a reinstall.
    assert!(
        f["evidence"]["package database"]
            .as_str()
            .unwrap()
            .contains("recorded as installed"),
        "{f:#}"
    );
    assert_eq!(
        f["remediation"]["commands"][0],
        "apt-get install --reinstall -y open-iscsi"
    );
}

#[test]
fn removed_packages_fail_with_debian_install_commands() {
    let c = Copy::new();
    for p in [
        "/usr/sbin/mount.nfs",
        "/usr/sbin/mount.nfs4",
        "/usr/sbin/cryptsetup",
        "/usr/sbin/dmsetup",
    ] {
        let _ = fs::remove_file(c.path(p));
    }
    // Make dpkg forget nfs-common, as if it were purged.
    let status = c.unshare("/var/lib/dpkg/status");
    let text = fs::read_to_string(&status).unwrap();
    let kept: Vec<&str> = text
        .split("\n\n")
        .filter(|stanza| !stanza.starts_with("Package: nfs-common\n"))
        .collect();
    fs::write(&status, kept.join("\n\n")).unwrap();
    let (_, json) = check(&c.root, &["nfs-client", "encryption"]);
    let nfs = finding(&json, "exe.mount.nfs");
    assert_eq!(nfs["status"], "fail");
    assert_eq!(
        nfs["remediation"]["commands"][0],
        "apt-get update && apt-get install -y nfs-common"
    );
    assert!(
        nfs["evidence"]["package database"]
            .as_str()
            .unwrap()
            .contains("not installed"),
        "{nfs:#}"
    );
    assert_eq!(
        finding(&json, "exe.cryptsetup")["remediation"]["package"],
        "cryptsetup"
    );
    assert_eq!(
        finding(&json, "exe.dmsetup")["remediation"]["package"],
        "dmsetup"
    );
}

#[test]
fn missing_dynamic_loader_and_execute_bit_are_reported() {
    let c = Copy::new();
    let mode = c.unshare("/usr/sbin/cryptsetup");
    fs::set_permissions(&mode, fs::Permissions::from_mode(0o644)).unwrap();
    for p in [
        "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        "/usr/lib64/ld-linux-x86-64.so.2",
    ] {
        let _ = fs::remove_file(c.path(p));
    }
    let (_, json) = check(&c.root, &["encryption", "iscsi"]);
    let crypt = finding(&json, "exe.cryptsetup");
    assert_eq!(crypt["status"], "fail");
    assert!(
        crypt["evidence"]["passed over"]
            .as_str()
            .unwrap()
            .contains("no execute bit"),
        "{crypt:#}"
    );
    if std::env::consts::ARCH == "x86_64" {
        let iscsi = finding(&json, "exe.iscsiadm");
        assert_eq!(iscsi["status"], "warn", "{iscsi:#}");
        assert!(
            iscsi["message"].as_str().unwrap().contains("ld-linux"),
            "{iscsi:#}"
        );
    }
}

#[test]
fn verify_runs_starts_each_executable_inside_the_root() {
    let c = Copy::new();
    // GNU false exits 1 even for --version: present, runnable-looking, but it does not work.
    fs::remove_file(c.path("/usr/sbin/iscsiadm")).unwrap();
    fs::copy(c.path("/usr/bin/false"), c.path("/usr/sbin/iscsiadm")).unwrap();
    let (_, json) = run_json(
        hostready()
            .args([
                "check",
                "-o",
                "json",
                "--proc",
                "none",
                "--verify-runs",
                "-p",
                "encryption",
            ])
            .args(["-p", "iscsi", "--root"])
            .arg(&c.root),
    );
    let crypt = finding(&json, "exe.cryptsetup");
    assert_eq!(crypt["status"], "pass", "{crypt:#}");
    assert!(
        crypt["evidence"]["verified with"]
            .as_str()
            .unwrap()
            .contains("chroot"),
        "{crypt:#}"
    );
    let iscsi = finding(&json, "exe.iscsiadm");
    assert_eq!(iscsi["status"], "fail", "{iscsi:#}");
    assert!(
        iscsi["message"]
            .as_str()
            .unwrap()
            .contains("does not start: exit code 1"),
        "{iscsi:#}"
    );
}
