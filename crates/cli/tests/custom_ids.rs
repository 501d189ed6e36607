//! A requirement's id is only its name: what is checked, how a failure is explained and
//! whether `--verify-runs` runs it follow the requirement's kind (`kind`/`subject` in the
//! report), whatever `id:` a profile gives it (docs/profiles.md allows any). Regression tests
//! for the custom-id bug: an executable with its own id lost the package-database explanation
//! and `--verify-runs`, because both were keyed on the `exe.` id prefix.

// Tests build fake hosts and read fixtures on this machine directly, not a host's root.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use serde_json::Value;
use util::{finding, hostready, run_json};

mod util;

/// A Debian root whose dpkg database records open-iscsi as installed while `iscsiadm` is
/// gone, and a profile that asks for `iscsiadm` under its own id (and for a recommended
/// `dmsetup`, also missing).
fn reinstall_case() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path().join("root");
    fs::create_dir_all(r.join("var/lib/dpkg/info")).unwrap();
    fs::create_dir_all(r.join("etc")).unwrap();
    fs::create_dir_all(r.join("usr/sbin")).unwrap();
    fs::write(r.join("etc/os-release"), "ID=debian\nVERSION_ID=\"12\"\n").unwrap();
    fs::write(
        r.join("var/lib/dpkg/status"),
        "Package: open-iscsi\nStatus: install ok installed\nMaintainer: m\n\
         Architecture: amd64\nVersion: 2.1.8-1\nDescription: iSCSI initiator tools\n",
    )
    .unwrap();
    fs::write(
        r.join("var/lib/dpkg/info/open-iscsi.list"),
        "/.\n/usr/sbin/iscsiadm\n",
    )
    .unwrap();
    let profile = dir.path().join("site.yaml");
    fs::write(
        &profile,
        "name: site\nrequirements:\n  - id: site.initiator\n    executable: iscsiadm\n  \
         - executable: dmsetup\n    level: recommended\n",
    )
    .unwrap();
    (dir, profile)
}

fn check(root: &Path, profile: &Path, extra: &[&str]) -> std::process::Command {
    let mut cmd = hostready();
    cmd.arg("check")
        .arg("-p")
        .arg(profile)
        .arg("--root")
        .arg(root)
        .args(["--proc", "none", "--path", "/usr/sbin:/usr/bin:/bin"])
        .args(extra);
    cmd
}

#[test]
fn a_custom_id_keeps_the_package_database_explanation() {
    let (dir, profile) = reinstall_case();
    let root = dir.path().join("root");
    let (code, json) = run_json(&mut check(&root, &profile, &["-o", "json"]));
    assert_eq!(code, 1, "{json:#}");
    let f = finding(&json, "site.initiator");
    assert_eq!(f["kind"], "executable", "{f:#}");
    assert_eq!(f["subject"], "iscsiadm", "{f:#}");
    assert_eq!(f["status"], "fail");
    let said = f["evidence"]["package database"]
        .as_str()
        .unwrap_or_else(|| {
            panic!("no package-database explanation: {f:#}");
        });
    assert!(
        said.contains("open-iscsi 2.1.8-1 is recorded as installed"),
        "{said}"
    );
    assert_eq!(
        f["remediation"]["commands"],
        serde_json::json!(["apt-get install --reinstall -y open-iscsi"])
    );
    // The recommended executable warns (the level rule), and the report groups both under
    // the profile that asked for them.
    assert_eq!(finding(&json, "exe.dmsetup")["status"], "warn");
    let group = &json["by_profile"][0];
    assert_eq!(group["profile"], "site");
    assert_eq!(group["condition"], "SiteReady");
    assert_eq!(group["ok"], false);
    assert_eq!(
        group["findings"],
        serde_json::json!(["site.initiator", "exe.dmsetup"])
    );
    // YAML carries the same fields.
    let out = check(&root, &profile, &["-o", "yaml"]).output().unwrap();
    let yaml = String::from_utf8_lossy(&out.stdout);
    assert!(
        yaml.contains("kind: executable") && yaml.contains("subject: iscsiadm"),
        "{yaml}"
    );
}

/// Text output counts in the singular where there is one: `1 warning`, never `1 warnings`.
#[test]
fn one_warning_is_counted_in_the_singular() {
    let (dir, profile) = reinstall_case();
    let out = check(&dir.path().join("root"), &profile, &[])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("NOT READY: 0 passed, 1 warning, 1 failed, 0 unknown"),
        "{text}"
    );
}

/// A root whose `iscsiadm` is a script run by the root's own static busybox.
fn runnable_root(dir: &Path) -> PathBuf {
    let busybox = Path::new("/bin/busybox");
    assert!(
        busybox.exists(),
        "needs a static busybox at /bin/busybox (scripts/setup installs busybox-static)"
    );
    let r = dir.join("root");
    for d in ["bin", "usr/sbin", "etc"] {
        fs::create_dir_all(r.join(d)).unwrap();
    }
    // The verification runs as uid 65534 inside the root: it must be able to enter it.
    for p in [dir, r.as_path()] {
        fs::set_permissions(p, fs::Permissions::from_mode(0o755)).unwrap();
    }
    fs::write(r.join("etc/os-release"), "ID=debian\nVERSION_ID=\"12\"\n").unwrap();
    fs::copy(busybox, r.join("bin/busybox")).unwrap();
    symlink("busybox", r.join("bin/sh")).unwrap();
    let exe = r.join("usr/sbin/iscsiadm");
    fs::write(&exe, "#!/bin/sh\necho iscsiadm version 2.1.8\nexit 0\n").unwrap();
    fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
    r
}

#[test]
fn a_custom_id_is_verified_by_verify_runs_and_the_table_shows_what_ran() {
    let dir = tempfile::Builder::new()
        .prefix("hr-custom-id-")
        .tempdir()
        .unwrap();
    let root = runnable_root(dir.path());
    let profile = dir.path().join("site.yaml");
    fs::write(
        &profile,
        "name: site\nrequirements:\n  - id: site.initiator\n    executable: iscsiadm\n",
    )
    .unwrap();
    let (code, json) = run_json(&mut check(
        &root,
        &profile,
        &["--verify-runs", "-o", "json"],
    ));
    assert_eq!(code, 0, "{json:#}");
    let f = finding(&json, "site.initiator");
    assert_eq!(f["status"], "pass", "{f:#}");
    let how = f["evidence"]["verified with"].as_str().unwrap_or_else(|| {
        panic!("not verified: {f:#}");
    });
    assert!(how.ends_with("/usr/sbin/iscsiadm --version"), "{how}");
    let probe: &Value = &f["probe"];
    assert_eq!(probe["outcome"], "exited", "{f:#}");
    assert_eq!(probe["exit_code"], 0, "{f:#}");
    assert_eq!(probe["deadline"], "5s", "{f:#}");
    // The table shows the run under the passing row, without -v.
    let out = check(&root, &profile, &["--verify-runs"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().any(|l| l.trim_start().starts_with("ran: ")
            && l.ends_with("/usr/sbin/iscsiadm --version: exit code 0")),
        "{text}"
    );
    // Without --verify-runs nothing ran, and the table says nothing of a run.
    let out = check(&root, &profile, &[]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("ran: "), "{text}");
}
