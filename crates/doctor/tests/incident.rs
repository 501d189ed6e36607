//! The incident replayed with real rpm: an rpmdb made by Debian's `rpm`, a process holding an
//! exclusive SQLite lock on it, and two dozen `rpm -q` that wait behind it forever (rpm retries
//! SQLITE_BUSY without end), started by a stand-in for longhorn-manager.

// Tests build fake hosts and read fixtures on this machine directly.
#![allow(clippy::disallowed_methods)]

mod util;

use std::time::{Duration, Instant};

use hostready_doctor::Status;
use hostready_testkit::process::{Group, count_argv0, hold_sqlite_exclusive, marker, need};
use hostready_testkit::wait_until;
use util::diagnose_here;

#[test]
fn rpm_queries_piled_up_behind_an_exclusive_rpmdb_lock() {
    need("/usr/bin/rpm");
    need("/usr/bin/sqlite3");
    let root = tempfile::tempdir().unwrap();
    let r = root.path().to_str().unwrap().to_string();
    let db = hostready_testkit::rpmdb::init_empty(root.path());
    assert!(db.exists());

    let holder = hold_sqlite_exclusive(&db, "SELECT count(*) FROM Packages;");
    let hp = holder.pid();

    // The stand-in for longhorn-manager: starts 24 queries and never reaps or kills them.
    let manager = marker("longhorn-manager-");
    let g = Group::bash(
        &manager,
        &format!(
            "for i in $(seq 24); do rpm --root {r} --dbpath /var/lib/rpm -q open-iscsi & done; wait"
        ),
    );
    // Each query has the database open and polls for the lock every 100 ms.
    let waiting = || {
        let r = diagnose_here(10);
        r.locked_files
            .iter()
            .find(|l| l.path.as_deref() == db.to_str())
            .map_or(0, |l| l.openers.len())
    };
    assert!(
        wait_until(|| waiting() == 24),
        "rpm queries did not pile up"
    );
    assert!(count_argv0("rpm") >= 24);

    let start = Instant::now();
    let report = diagnose_here(10);
    let took = start.elapsed();
    assert!(took < Duration::from_secs(10), "doctor took {took:?}");

    // The pile: command, count, parent, memory.
    let pile = report
        .pileups
        .iter()
        .find(|p| p.parent_chain.contains(&manager))
        .unwrap_or_else(|| panic!("no pile: {:#?}", report.findings));
    assert_eq!(pile.count, 24);
    assert!(pile.command.starts_with("rpm --root"), "{}", pile.command);
    assert!(pile.command.ends_with("-q open-iscsi"), "{}", pile.command);
    assert!(
        pile.parent_chain
            .contains(&format!("{manager}({})", g.pid()))
    );
    assert_eq!(pile.waiting_on_lock, 24);
    let kb = pile.private_kb.unwrap();
    assert!(kb > 24 * 100, "private memory {kb} kB");
    let f = report
        .findings
        .iter()
        .find(|f| f.id.starts_with("doctor.pileup.rpm") && f.message.contains(&manager))
        .unwrap();
    assert_eq!(f.status, Status::Fail);
    assert!(
        f.message.contains("24 wait on a file lock"),
        "{}",
        f.message
    );
    assert!(
        f.remediation
            .as_ref()
            .is_some_and(|r| r.notes.iter().any(|n| n.contains("#10019")))
    );
    assert_eq!(f.evidence.get("count"), Some("24"));
    assert_eq!(f.evidence.get("waiting on a lock"), Some("24"));

    // The lock: holder pid, file, and the fix.
    let lock = report
        .findings
        .iter()
        .find(|f| {
            f.id.starts_with("doctor.lock.rpmdb.sqlite") && f.message.contains(db.to_str().unwrap())
        })
        .unwrap_or_else(|| panic!("no lock finding: {:#?}", report.findings));
    assert_eq!(lock.status, Status::Fail);
    assert!(
        lock.message
            .contains(&format!("SQLite exclusive lock held by pid {hp} (sqlite3")),
        "{}",
        lock.message
    );
    assert!(
        lock.message.contains("24 process(es) wait (rpm --root"),
        "{}",
        lock.message
    );
    let fix = lock.remediation.as_ref().expect("a remediation");
    assert!(
        fix.commands
            .iter()
            .any(|r| r.contains(&format!("kill {hp}"))),
        "{fix:?}"
    );
    assert!(
        fix.notes.iter().any(|r| r.contains("rpm --rebuilddb")),
        "{fix:?}"
    );
    assert_eq!(lock.evidence.get("file"), db.to_str());
    assert!(
        lock.evidence
            .get("lock holder")
            .is_some_and(|h| h.starts_with(&format!("pid {hp} (sqlite3"))),
        "{lock:#?}"
    );
    assert_eq!(lock.evidence.get("sqlite lock"), Some("exclusive"));

    // Memory accounts for the pile.
    let mem = report
        .findings
        .iter()
        .find(|f| f.id == "doctor.memory")
        .unwrap();
    assert!(
        mem.message.contains("flagged pile-ups hold"),
        "{}",
        mem.message
    );
    eprintln!(
        "doctor took {took:?}; pile: {}; lock: {}",
        f.message, lock.message
    );
}
