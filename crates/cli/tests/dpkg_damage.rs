//! Damage read as absence, dpkg's part: a `status` cut mid-stanza (what dpkg refuses with "end
//! of file during value of field"), an empty `status` beside the packages' file lists, and a
//! `Status` whose words are garbage are `corrupt` (exit 2), and `check` says the database is
//! corrupt instead of telling the operator to install a package that may well be installed.

// Tests build fake hosts and read fixtures on this machine directly, not a host's root.
#![allow(clippy::disallowed_methods)]

use std::path::Path;

use hostready_testkit::fakehost;
use serde_json::Value;
use util::on_root as hostready;

mod util;

const GOOD: &str = "Package: open-iscsi\nStatus: install ok installed\nMaintainer: m\n\
Architecture: amd64\nVersion: 2.1.8-1\nDepends: libc6 (>= 2.34), libisns0 (>= 0.96-4~)\n\
Description: iSCSI initiator tools\n\nPackage: libc6\nStatus: install ok installed\n\
Maintainer: m\nArchitecture: amd64\nMulti-Arch: same\nVersion: 2.36-9+deb12u4\n\
Description: GNU C Library\n";

/// A Debian root whose dpkg `status` is `status`, with the packages' file lists.
fn root(status: &str) -> tempfile::TempDir {
    let dir = fakehost::dpkg_root(
        status,
        &[
            ("open-iscsi", "/.\n/usr/sbin/iscsiadm\n"),
            ("libc6:amd64", "/.\n/usr/lib/x86_64-linux-gnu/libc.so.6\n"),
        ],
    );
    fakehost::write(
        dir.path(),
        "etc/os-release",
        "ID=debian\nVERSION_ID=\"12\"\n",
    );
    dir
}

/// The `exe.iscsiadm` finding of `check -p iscsi`.
fn iscsiadm(root: &Path) -> Value {
    let out = hostready(root, &["check", "-p", "iscsi", "-o", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut found = None;
    let mut stack = vec![&v];
    while let Some(x) = stack.pop() {
        match x {
            Value::Object(m) if m.get("id").and_then(Value::as_str) == Some("exe.iscsiadm") => {
                found = Some(x.clone());
            }
            Value::Object(m) => stack.extend(m.values()),
            Value::Array(a) => stack.extend(a),
            _ => {}
        }
    }
    found.unwrap_or_else(|| panic!("no exe.iscsiadm in {v:#}"))
}

fn assert_corrupt(root: &Path, why: &str) {
    for args in [
        &["pkg", "query", "open-iscsi"][..],
        &["pkg", "query", "cryptsetup"],
    ] {
        let out = hostready(root, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("corrupt: ") && err.contains(why),
            "{args:?}: {err}"
        );
        assert!(!String::from_utf8_lossy(&out.stdout).contains("not installed"));
    }
    let out = hostready(root, &["pkg", "owner", "/usr/sbin/iscsiadm"]);
    assert_eq!(out.status.code(), Some(2));
    let f = iscsiadm(root);
    let fix = &f["remediation"];
    let summary = fix["summary"].as_str().unwrap();
    assert!(
        summary.contains("is corrupt") && !summary.starts_with("install"),
        "{f:#}"
    );
    // No command to run: installing is not the fix.
    assert!(
        fix["commands"].as_array().is_none_or(Vec::is_empty),
        "{f:#}"
    );
    let ev = f["evidence"]["package database"].as_str().unwrap();
    assert!(ev.contains("corrupt") && ev.contains(why), "{f:#}");
}

#[test]
fn a_status_cut_mid_stanza_is_corrupt_not_absent() {
    // Cut inside libc6's Version value, as a write interrupted mid-file leaves it.
    let cut = &GOOD[..GOOD.find("2.36-9").unwrap() + 3];
    assert_corrupt(
        root(cut).path(),
        "end of file during value of field \"Version\"",
    );
    // Cut inside the field name.
    let cut = &GOOD[..GOOD.find("Multi-Arch").unwrap() + 4];
    assert_corrupt(root(cut).path(), "end of file after field name");
}

#[test]
fn an_empty_status_beside_file_lists_is_corrupt() {
    assert_corrupt(root("").path(), "status lists no package");
    // With no file lists either, an empty status is a root where nothing was ever installed.
    let dir = root("");
    std::fs::remove_dir_all(dir.path().join("var/lib/dpkg/info")).unwrap();
    let out = hostready(dir.path(), &["pkg", "query", "open-iscsi"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let f = iscsiadm(dir.path());
    assert!(
        f["remediation"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("install open-iscsi"),
        "{f:#}"
    );
}

#[test]
fn garbage_status_words_are_corrupt_naming_the_stanza_and_offset() {
    let at = GOOD.find("Package: libc6").unwrap();
    for (from, to, word) in [
        (
            "install ok installed\nMaintainer: m\nArchitecture: amd64\nMulti",
            "install ok instaled\nMaintainer: m\nArchitecture: amd64\nMulti",
            "third (state)",
        ),
        (
            "install ok installed\nMaintainer: m\nArchitecture: amd64\nMulti",
            "install ko installed\nMaintainer: m\nArchitecture: amd64\nMulti",
            "second (error flag)",
        ),
        (
            "install ok installed\nMaintainer: m\nArchitecture: amd64\nMulti",
            "keep ok installed\nMaintainer: m\nArchitecture: amd64\nMulti",
            "first (want)",
        ),
    ] {
        let status = GOOD.replacen(from, to, 1);
        let dir = root(&status);
        assert_corrupt(dir.path(), &format!("not a dpkg {word} word"));
        let out = hostready(dir.path(), &["pkg", "query", "libc6"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("package libc6 has malformed Status")
                && err.contains(&format!("at byte {at}")),
            "{err}"
        );
    }
}
