//! A locked database is always reported as locked, with or without a procfs of the host:
//! `sqlite3` holding an EXCLUSIVE lock on `rpmdb.sqlite` (as in the incident: every `rpm -q`
//! waits behind it), and a POSIX lock on rpm's `.rpm.lock`. Without a procfs the holder comes
//! from `F_OFD_GETLK` on the open descriptor; with one, from `/proc/locks`; either way each
//! holder is listed once, and nothing waits.

// Tests build fake hosts and read fixtures on this machine directly.
#![allow(clippy::disallowed_methods)]

mod util;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hostready_host::Root;
use hostready_pkgdb::{Answer, DbKind, query_with_proc};
use hostready_testkit::process::{Reaped, hold_sqlite_exclusive};

fn sqlite_db(a: &Answer) -> &hostready_pkgdb::Database {
    a.dbs.iter().find(|d| d.kind == DbKind::RpmSqlite).unwrap()
}

fn notes(a: &Answer) -> String {
    let n: Vec<&str> = a.lookup.notes.iter().map(|n| n.message.as_str()).collect();
    n.join("\n")
}

#[test]
fn exclusive_sqlite_lock_is_reported_without_and_with_a_procfs() {
    let dir = tempfile::tempdir().unwrap();
    util::install(dir.path(), &util::built_rpms(3));
    let holder = hold_sqlite_exclusive(&dir.path().join("var/lib/rpm/rpmdb.sqlite"), "");
    let pid = i64::from(holder.pid());
    let root = Root::open(dir.path()).unwrap();

    // No procfs (`--root DIR`, no DIR/proc): F_OFD_GETLK on the open descriptor.
    let started = Instant::now();
    let a = query_with_proc(&root, None, "hralpha");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "waited on the lock"
    );
    assert!(a.lookup.installed(), "the last written state still answers");
    let db = sqlite_db(&a);
    let pids: Vec<i64> = db.lock_holders.iter().map(|h| h.pid).collect();
    assert_eq!(pids, [pid], "{:#?}", db.lock_holders);
    assert_eq!(db.lock_holders[0].mode, "WRITE");
    assert!(
        notes(&a).contains(&format!("locked by pid {pid} (POSIX WRITE)")),
        "{}",
        notes(&a)
    );

    // The host's procfs: /proc/locks lists two ranges of the holder; it is named once.
    let proc = Root::open("/proc").unwrap();
    let a = query_with_proc(&root, Some(&proc), "hralpha");
    let db = sqlite_db(&a);
    let pids: Vec<i64> = db.lock_holders.iter().map(|h| h.pid).collect();
    assert_eq!(pids, [pid], "{:#?}", db.lock_holders);
    assert_eq!(
        notes(&a).matches(&format!("pid {pid} ")).count(),
        1,
        "{}",
        notes(&a)
    );

    // Released: nothing is reported any more.
    drop(holder);
    let a = query_with_proc(&root, None, "hralpha");
    assert!(sqlite_db(&a).lock_holders.is_empty());
    assert!(!notes(&a).contains("locked by"), "{}", notes(&a));
}

#[test]
fn rpm_transaction_lock_is_reported_without_a_procfs() {
    let dir = tempfile::tempdir().unwrap();
    util::install(dir.path(), &util::built_rpms(3));
    // rpm's transaction lock, as rpmlock.c takes it: a POSIX write lock over the whole file.
    // Held by another process, which F_OFD_GETLK names by pid.
    let lock = dir.path().join("var/lib/rpm/.rpm.lock");
    std::fs::write(&lock, b"").unwrap();
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(
            "import fcntl, sys; f = open(sys.argv[1], 'r+'); fcntl.lockf(f, fcntl.LOCK_EX); \
             print('locked', flush=True); sys.stdin.read()",
        )
        .arg(&lock)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line, "locked\n");
    let pid = i64::from(child.id());
    let _holder = Reaped(child);
    let root = Root::open(dir.path()).unwrap();
    let a = query_with_proc(&root, None, "hrbeta");
    let db = sqlite_db(&a);
    let pids: Vec<i64> = db.lock_holders.iter().map(|h| h.pid).collect();
    assert_eq!(pids, [pid], "{:#?}", db.lock_holders);
    assert!(notes(&a).contains(&format!("locked by pid {pid} (POSIX WRITE)")));
}
