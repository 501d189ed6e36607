//! Damaged copies of the real rpm databases (../shared/fixtures/rpmdb) in a temporary host root:
//! truncated, zeroed headers, and damage past the header that only a full read finds.

// Tests build fake hosts and read fixtures on this machine directly.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};

use hostready_doctor::{Options, Status, pkgdb, proc::Snapshot};
use hostready_host::{Host, ProcSource, Root};
use hostready_testkit::fakehost::{fixture, rpmdb_root};

const FORMATS: [(&str, &str, &str); 3] = [
    (
        "cbl-mariner-2.0-sqlite/rpmdb.sqlite",
        "rpmdb.sqlite",
        "sqlite",
    ),
    ("libuuid-bdb/Packages", "Packages", "bdb"),
    ("sle15-bci-ndb/Packages.db", "Packages.db", "ndb"),
];

/// Builds a host root whose /var/lib/rpm holds `bytes` as `name`.
fn host_with(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = rpmdb_root(name, bytes);
    let root = dir.path().to_path_buf();
    (dir, root)
}

fn finding_for(root: &Path, fmt: &str) -> hostready_doctor::Finding {
    let host = Host::open(root, ProcSource::Disabled).unwrap();
    let report = hostready_doctor::diagnose(&host, &Options::default());
    assert!(report.no_proc.is_some());
    report
        .findings
        .into_iter()
        .find(|f| f.id == format!("doctor.pkgdb.rpm-{fmt}"))
        .expect("a finding for the database")
}

#[test]
fn intact_databases_pass() {
    for (rel, name, fmt) in FORMATS {
        let (_d, root) = host_with(name, &fixture(rel));
        let f = finding_for(&root, fmt);
        assert_eq!(f.status, Status::Pass, "{rel}: {f:#?}");
        assert!(
            f.evidence
                .get("full read")
                .is_some_and(|e| e.contains("package records")),
            "{f:#?}"
        );
    }
}

#[test]
fn truncated_databases_are_corrupt() {
    for (rel, name, fmt) in FORMATS {
        let b = fixture(rel);
        let (_d, root) = host_with(name, &b[..b.len() / 2 + 7]);
        let f = finding_for(&root, fmt);
        assert_eq!(f.status, Status::Fail, "{rel}: {f:#?}");
        assert!(f.message.contains("damaged"), "{}", f.message);
        let fix = f.remediation.as_ref().expect("a remediation");
        assert!(fix.commands.iter().any(|r| r.contains("cp -a")), "{fix:?}");
        assert!(
            fix.commands.iter().any(|r| r.contains("rpm --rebuilddb")),
            "{fix:?}"
        );
        assert!(
            f.evidence
                .get("size")
                .is_some_and(|s| s == format!("{} bytes", b.len() / 2 + 7)),
            "{f:#?}"
        );
    }
}

#[test]
fn zeroed_databases_are_corrupt() {
    for (rel, name, fmt) in FORMATS {
        let b = vec![0u8; fixture(rel).len()];
        let (_d, root) = host_with(name, &b);
        let f = finding_for(&root, fmt);
        assert_eq!(f.status, Status::Fail, "{rel}: {f:#?}");
        assert!(f.message.contains("all zero"), "{}", f.message);
    }
}

#[test]
fn damage_past_the_header_is_found_by_the_full_read() {
    // Zero the second half of every page after the first: the header still looks whole.
    let mut b = fixture("cbl-mariner-2.0-sqlite/rpmdb.sqlite");
    for page in b.chunks_mut(4096).skip(1) {
        let half = page.len() / 2;
        page[half..].fill(0xa5);
    }
    let (_d, root) = host_with("rpmdb.sqlite", &b);
    let f = finding_for(&root, "sqlite");
    assert_eq!(f.status, Status::Fail, "{f:#?}");
    assert!(f.evidence.get("full read").is_some(), "{f:#?}");
}

#[test]
fn berkeley_db_environment_without_rpm_is_stale() {
    let (_d, root) = host_with("Packages", &fixture("libuuid-bdb/Packages"));
    for n in ["__db.001", "__db.002", "__db.003"] {
        std::fs::write(root.join("var/lib/rpm").join(n), [1u8; 64]).unwrap();
    }
    let r = Root::open(&root).unwrap();
    // With a process table that has no rpm in it: stale.
    let f = pkgdb::findings(&r, Some(&Snapshot::default()), true);
    let env = f
        .iter()
        .find(|f| f.id == "doctor.pkgdb.bdb-environment")
        .unwrap();
    assert_eq!(env.status, Status::Warn);
    assert!(env.message.contains("BDB0113"));
    let fix = env.remediation.as_ref().expect("a remediation");
    assert!(
        fix.commands
            .iter()
            .any(|r| r.contains("rm -f /var/lib/rpm/__db.*")),
        "{fix:?}"
    );
    assert!(
        fix.notes.iter().any(|r| r.contains("only while no rpm")),
        "{fix:?}"
    );
    assert_eq!(
        env.evidence.get("environment files"),
        Some("__db.001 __db.002 __db.003")
    );
    // Without procfs doctor cannot tell.
    let f = pkgdb::findings(&r, None, true);
    let env = f
        .iter()
        .find(|f| f.id == "doctor.pkgdb.bdb-environment")
        .unwrap();
    assert_eq!(env.status, Status::Unknown);
}
