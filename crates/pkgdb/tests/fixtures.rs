//! The three public rpm databases in `shared/fixtures/rpmdb`, read in place. Expected values
//! are go-rpmdb's own test oracle for these exact files (`pkg/rpmdb_testcase_test.go`,
//! `pkg/rpmdb_test.go`), themselves `rpm -qa` output on those distros.

use std::path::Path;

use hostready_host::Root;
use hostready_pkgdb::{Database, DbKind, open_rpm_file};
use hostready_testkit::FIXTURES;

fn open(dir: &str, file: &str, kind: DbKind) -> Database {
    let root = Root::open(Path::new(FIXTURES).join(dir)).unwrap();
    open_rpm_file(&root, Path::new("/").join(file).as_path(), kind, &[])
}

#[test]
fn bdb_libuuid_rhel8() {
    let db = open("libuuid-bdb", "Packages", DbKind::RpmBdb);
    let pkgs = db.contents.as_ref().unwrap();
    let names: Vec<&str> = pkgs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["libuuid"]);
    let p = &pkgs[0];
    assert_eq!(
        (
            p.version.as_str(),
            p.release.as_str(),
            p.arch.as_str(),
            p.epoch
        ),
        ("2.32.1", "42.el8_8", "x86_64", None)
    );
    assert_eq!(
        p.files,
        [
            "/usr/lib/.build-id",
            "/usr/lib/.build-id/df/ef6a880adac817216ab9866779a0725e017647",
            "/usr/lib64/libuuid.so.1",
            "/usr/lib64/libuuid.so.1.3.0",
            "/usr/share/licenses/libuuid",
            "/usr/share/licenses/libuuid/COPYING",
            "/usr/share/licenses/libuuid/COPYING.BSD-3",
        ]
    );
    assert!(
        p.provides
            .iter()
            .any(|x| x == "libuuid.so.1(UUID_2.31)(64bit)")
    );
}

#[test]
fn ndb_sle15_bci() {
    let db = open("sle15-bci-ndb", "Packages.db", DbKind::RpmNdb);
    let pkgs = db.contents.as_ref().unwrap();
    let nvra: Vec<String> = pkgs
        .iter()
        .map(|p| format!("{}-{}-{}.{}", p.name, p.version, p.release, p.arch))
        .collect();
    assert_eq!(nvra.len(), 35, "{nvra:?}");
    assert_eq!(nvra[0], "system-user-root-20190513-3.3.1.noarch");
    assert_eq!(nvra[2], "glibc-2.31-9.3.2.x86_64");
    assert_eq!(nvra[13], "bash-4.4-19.6.1.x86_64");
    assert_eq!(nvra[34], "rpm-ndb-4.14.3-40.1.x86_64");
    let bash = pkgs.iter().find(|p| p.name == "bash").unwrap();
    assert!(
        bash.files.iter().any(|f| f == "/usr/bin/bash"),
        "{:?}",
        bash.files
    );
}

#[test]
fn sqlite_cbl_mariner2() {
    let db = open("cbl-mariner-2.0-sqlite", "rpmdb.sqlite", DbKind::RpmSqlite);
    let pkgs = db.contents.as_ref().unwrap();
    let curl = pkgs.iter().find(|p| p.name == "curl").unwrap();
    assert_eq!(
        (
            curl.version.as_str(),
            curl.release.as_str(),
            curl.arch.as_str()
        ),
        ("7.76.0", "6.cm2", "x86_64")
    );
    assert_eq!(
        curl.files,
        [
            "/usr/bin/curl",
            "/usr/bin/curl-config",
            "/usr/share/licenses/curl",
            "/usr/share/licenses/curl/COPYING",
            "/usr/share/man/man1/curl-config.1.gz",
            "/usr/share/man/man1/curl.1.gz",
        ]
    );
    eprintln!("mariner: {} packages", pkgs.len());
    assert!(db.notes.is_empty(), "{:?}", db.notes);
}
