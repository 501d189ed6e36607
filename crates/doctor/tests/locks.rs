//! Real lock holders and waiters: `flock(1)` with blocked waiters (the kernel's `->` lines) and
//! `sqlite3` holding an EXCLUSIVE lock while other `sqlite3` processes poll behind it.

// Tests build fake hosts and read fixtures on this machine directly.
#![allow(clippy::disallowed_methods)]

mod util;

use std::process::{Command, Stdio};

use hostready_doctor::Status;
use hostready_testkit::process::{Group, hold_sqlite_exclusive, marker, need};
use hostready_testkit::wait_until;
use util::diagnose_here;

fn blocked_waiters(ino: u64) -> usize {
    std::fs::read_to_string("/proc/locks")
        .unwrap()
        .lines()
        .filter(|l| l.contains("->") && l.contains(&format!(":{ino} ")))
        .count()
}

#[test]
fn flock_holder_and_blocked_waiters_are_named() {
    need("/usr/bin/flock");
    let dir = tempfile::tempdir().unwrap();
    let name = marker("hrdlock");
    let file = dir.path().join(&name);
    std::fs::write(&file, b"").unwrap();
    let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&file).unwrap());
    let f = file.display();
    let _g = Group::bash(
        &marker("hrdlocker"),
        &format!(
            "flock {f} sleep 1000 & sleep 0.3; for i in 1 2 3; do flock {f} true & done; wait"
        ),
    );
    assert!(
        wait_until(|| blocked_waiters(ino) == 3),
        "waiters did not block"
    );

    let report = diagnose_here(10);
    let locked = report
        .locked_files
        .iter()
        .find(|l| l.ino == ino)
        .expect("the file is in the lock table");
    assert_eq!(locked.path.as_deref(), Some(file.to_str().unwrap()));
    assert_eq!(locked.blocked.len(), 3);
    let finding = report
        .findings
        .iter()
        .find(|x| x.id == format!("doctor.lock.{name}"))
        .unwrap_or_else(|| panic!("{:#?}", report.findings));
    assert_eq!(finding.status, Status::Fail);
    assert!(
        finding.message.contains("FLOCK write lock held by pid"),
        "{}",
        finding.message
    );
    assert!(
        finding.message.contains("3 process(es) wait"),
        "{}",
        finding.message
    );
}

#[test]
fn sqlite_exclusive_holder_and_polling_waiters() {
    need("/usr/bin/sqlite3");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(format!("{}.db", marker("hrdsq")));
    let ok = Command::new("sqlite3")
        .arg(&db)
        .arg("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .status()
        .unwrap();
    assert!(ok.success());

    let holder = hold_sqlite_exclusive(&db, "SELECT 1;");
    let hp = holder.pid();

    // Two readers that retry SQLITE_BUSY for ten minutes: they poll, never block in the kernel.
    // Descriptors are read for groups of pile-up size, so the pile-up size here is 2.
    let mut waiters = Vec::new();
    for _ in 0..2 {
        let mut c = Command::new("sqlite3");
        c.arg(&db)
            .arg(".timeout 600000")
            .arg("SELECT count(*) FROM t;")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        waiters.push(Group::spawn(&mut c));
    }
    let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&db).unwrap());
    assert!(wait_until(|| {
        let r = diagnose_here(2);
        r.locked_files
            .iter()
            .any(|l| l.ino == ino && l.openers.len() == 2)
    }));
    let report = diagnose_here(2);
    let f = report
        .findings
        .iter()
        .find(|f| f.id.starts_with("doctor.lock.") && f.message.contains(db.to_str().unwrap()))
        .unwrap_or_else(|| panic!("{:#?}", report.findings));
    assert_eq!(f.status, Status::Fail);
    assert!(
        f.message
            .contains(&format!("SQLite exclusive lock held by pid {hp}")),
        "{}",
        f.message
    );
    assert!(f.message.contains("2 process(es) wait"), "{}", f.message);
    assert_eq!(f.evidence.get("sqlite lock"), Some("exclusive"), "{f:#?}");
}
