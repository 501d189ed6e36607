//! `hostready pkg` end to end: exit codes scripts rely on and the JSON shape, against host
//! roots built in temp dirs (dpkg text databases, and a copy of the CBL-Mariner rpmdb).

// Tests build fake hosts and read fixtures on this machine directly, not a host's root.
#![allow(clippy::disallowed_methods)]

use std::path::Path;
use std::process::Output;

use hostready_testkit::process::sqlite3;
use hostready_testkit::{MARINER, fakehost};

mod util;

const STATUS: &str = "Package: open-iscsi\nStatus: install ok installed\nArchitecture: amd64\n\
Version: 2.1.8-1\n\nPackage: nfs-common\nStatus: install ok half-installed\nArchitecture: amd64\n\
Version: 1:2.6.2-4\n";

fn hostready(root: &Path, args: &[&str]) -> Output {
    util::on_root(root, &[&["pkg"][..], args].concat())
}

fn dpkg_root(status: &str) -> tempfile::TempDir {
    fakehost::dpkg_root(
        status,
        &[("open-iscsi", "/.\n/usr\n/usr/sbin\n/usr/sbin/iscsiadm\n")],
    )
}

#[test]
fn query_exit_codes() {
    let dir = dpkg_root(STATUS);
    assert_eq!(
        hostready(dir.path(), &["query", "open-iscsi"])
            .status
            .code(),
        Some(0)
    );
    // Half-installed is recorded, but not installed.
    assert_eq!(
        hostready(dir.path(), &["query", "nfs-common"])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        hostready(dir.path(), &["query", "cryptsetup"])
            .status
            .code(),
        Some(1)
    );
    // Corrupt is not absent.
    std::fs::write(dir.path().join("var/lib/dpkg/status"), "Package: x\n\0\0\0").unwrap();
    let out = hostready(dir.path(), &["query", "cryptsetup"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("corrupt: ") && err.contains("rpm --rebuilddb"),
        "{err}"
    );
    // No database at all.
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(
        hostready(empty.path(), &["query", "x"]).status.code(),
        Some(2)
    );
}

#[test]
fn owner_and_json_shape() {
    let dir = dpkg_root(STATUS);
    let out = hostready(
        dir.path(),
        &["owner", "/usr/sbin/iscsiadm", "--output", "json"],
    );
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let p = &v["packages"][0];
    assert_eq!(p["name"], "open-iscsi");
    assert_eq!(p["epoch"], serde_json::Value::Null);
    assert_eq!(p["version"], "2.1.8");
    assert_eq!(p["release"], "1");
    assert_eq!(p["arch"], "amd64");
    assert_eq!(p["db"], "dpkg");
    assert_eq!(
        hostready(dir.path(), &["owner", "/usr/sbin/nope"])
            .status
            .code(),
        Some(1)
    );
    let yaml = hostready(dir.path(), &["list", "--output", "yaml"]);
    assert_eq!(yaml.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&yaml.stdout).contains("name: nfs-common"));
}

#[test]
fn rpm_sqlite_root() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("var/lib/rpm");
    std::fs::create_dir_all(&db).unwrap();
    std::fs::copy(MARINER, db.join("rpmdb.sqlite")).unwrap();
    let out = hostready(dir.path(), &["query", "curl", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["packages"][0]["release"], "6.cm2");
    assert_eq!(v["packages"][0]["db"], "rpm-sqlite");
    let out = hostready(dir.path(), &["owner", "/usr/bin/curl"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("curl"));
    let list = hostready(dir.path(), &["list", "--output", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(v["packages"].as_array().unwrap().len(), 129);
}

#[test]
fn rpm_sqlite_index_and_its_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("var/lib/rpm");
    std::fs::create_dir_all(&db).unwrap();
    std::fs::copy(MARINER, db.join("rpmdb.sqlite")).unwrap();
    let json = |args: &[&str]| -> (Option<i32>, serde_json::Value, String) {
        let out = hostready(dir.path(), args);
        let v = serde_json::from_slice(&out.stdout).unwrap();
        (
            out.status.code(),
            v,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, v, _) = json(&["query", "curl", "--output", "json"]);
    assert_eq!(code, Some(0));
    assert_eq!(v["databases"][0]["read"], "index");
    // A miss is confirmed by checking every header, which also counts them.
    let (code, v, _) = json(&["query", "no-such-package", "--output", "json"]);
    assert_eq!(code, Some(1));
    assert_eq!(v["databases"][0]["read"], "scan");
    assert_eq!(v["databases"][0]["packages"], 129);
    // An index that lost the row contradicts the records (rpm -q would say "not installed"):
    // corrupt, exit 2, never an answer. Owner lookups through Basenames are unaffected.
    sqlite3(
        &db.join("rpmdb.sqlite"),
        "DELETE FROM Name WHERE key = 'curl';",
    );
    let (code, v, err) = json(&["query", "curl", "--output", "json"]);
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(v["databases"][0]["status"], "corrupt");
    assert_eq!(v["answer"], "unknown");
    assert!(err.contains("rpm's Name index lacks row hnum="), "{err}");
    let (code, v, _) = json(&["owner", "/usr/bin/curl", "--output", "json"]);
    assert_eq!(code, Some(0));
    assert_eq!(v["databases"][0]["read"], "index");
}

#[test]
fn questions_no_database_can_answer_are_usage_errors() {
    let dir = dpkg_root(STATUS);
    for args in [
        &["query", ""][..],
        &["query", "open iscsi"],
        &["owner", ""],
        &["owner", "usr/sbin/iscsiadm"],
        &["owner", "./iscsiadm"],
    ] {
        let out = hostready(dir.path(), args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(
            err.contains("cannot be empty")
                || err.contains("is not a package name")
                || err.contains("is relative"),
            "{args:?}: {err}"
        );
    }
}
