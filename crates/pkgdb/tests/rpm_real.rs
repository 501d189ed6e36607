//! rpm databases written during the test by Debian's real `rpm`: hostready's answers equal
//! `rpm -qa` / `rpm -qf` on the same database, and a lock holder makes `rpm -q` wait while
//! hostready answers at once, writing nothing.

// Tests build fake hosts and read fixtures on this machine directly.
#![allow(clippy::disallowed_methods)]

mod util;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use hostready_host::Root;
use hostready_pkgdb::{DbKind, open_host_databases, open_with_proc};
use hostready_testkit::process::{Reaped, hold_sqlite_exclusive};
use util::{built_rpms, install, rpm};

const EXTRA: usize = 3;

fn fresh_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    install(dir.path(), &built_rpms(EXTRA));
    dir
}

fn rpm_qa(root: &Path) -> Vec<String> {
    let out = rpm(root)
        .args([
            "-qa",
            "--qf",
            "%{NAME} %{EPOCH} %{VERSION} %{RELEASE} %{ARCH}\\n",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut v: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

#[test]
fn list_equals_rpm_qa() {
    let dir = fresh_root();
    let root = Root::open(dir.path()).unwrap();
    let dbs = open_host_databases(&root);
    assert_eq!(dbs.kinds(), [DbKind::RpmSqlite]);
    let listing = dbs.list();
    assert!(listing.complete, "{:?}", listing.notes);
    let mut ours: Vec<String> = listing
        .packages
        .iter()
        .map(|p| {
            let epoch = p.epoch.map_or("(none)".to_string(), |e| e.to_string());
            format!("{} {epoch} {} {} {}", p.name, p.version, p.release, p.arch)
        })
        .collect();
    ours.sort();
    assert_eq!(ours, rpm_qa(dir.path()));
    assert!(ours.contains(&"hrbeta 2 3.1 7.el9 noarch".to_string()));
}

#[test]
fn owner_equals_rpm_qf() {
    let dir = fresh_root();
    let root = Root::open(dir.path()).unwrap();
    let dbs = open_host_databases(&root);
    let paths = [
        "/usr/bin/hralpha",
        "/usr/bin/hrbeta",
        "/usr/share/hrshared/README",
        "/usr/share/hr/file1",
        "/usr/bin/nobody-owns-this",
    ];
    for path in paths {
        let out = rpm(dir.path())
            .args(["-qf", "--qf", "%{NAME}\\n", path])
            .output()
            .unwrap();
        let mut theirs: Vec<String> = if out.status.success() {
            String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect()
        } else {
            Vec::new()
        };
        theirs.sort();
        let lookup = dbs.owner_of(path);
        assert!(lookup.complete);
        let mut ours: Vec<String> = lookup.packages.iter().map(|p| p.name.clone()).collect();
        ours.sort();
        assert_eq!(ours, theirs, "{path}");
    }
    assert_eq!(dbs.owner_of("/usr/share/hrshared/README").packages.len(), 2);
}

#[test]
fn symlinked_database_directory_is_found_inside_the_root() {
    // SUSE: /var/lib/rpm -> ../../usr/lib/sysimage/rpm; an absolute link resolves in the root.
    let dir = fresh_root();
    let sysimage = dir.path().join("usr/lib/sysimage");
    std::fs::create_dir_all(&sysimage).unwrap();
    std::fs::rename(dir.path().join("var/lib/rpm"), sysimage.join("rpm")).unwrap();
    std::os::unix::fs::symlink("/usr/lib/sysimage/rpm", dir.path().join("var/lib/rpm")).unwrap();
    let root = Root::open(dir.path()).unwrap();
    let dbs = open_host_databases(&root);
    assert_eq!(dbs.dbs.len(), 1, "one database, found through two names");
    assert_eq!(
        dbs.dbs[0].path,
        Path::new("/usr/lib/sysimage/rpm/rpmdb.sqlite")
    );
    assert!(dbs.query("hralpha").installed());
}

/// Name, size and modification time of everything in a directory.
fn snapshot(dir: &Path) -> BTreeMap<String, (u64, std::time::SystemTime)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                (m.len(), m.modified().unwrap()),
            )
        })
        .collect()
}

#[test]
fn locked_database_answers_at_once_while_rpm_waits_and_nothing_is_written() {
    let dir = fresh_root();
    let dbdir = dir.path().join("var/lib/rpm");
    let db = dbdir.join("rpmdb.sqlite");
    // The incident: a process holding an exclusive SQLite lock on the rpmdb.
    let holder = hold_sqlite_exclusive(&db, "SELECT count(*) FROM Packages;");
    let before = snapshot(&dbdir);

    let root = Root::open(dir.path()).unwrap();
    let proc = Root::open("/proc").unwrap();
    let started = Instant::now();
    let dbs = open_with_proc(&root, Some(&proc));
    let lookup = dbs.query("hralpha");
    let took = started.elapsed();
    eprintln!("locked query took {took:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(lookup.installed());
    let pid = i64::from(holder.pid());
    assert!(dbs.dbs[0].lock_holders.iter().any(|h| h.pid == pid));
    assert!(
        lookup
            .notes
            .iter()
            .any(|n| n.message.contains(&format!("locked by pid {pid}"))),
        "{:?}",
        lookup.notes
    );

    // Meanwhile the real rpm waits (it retries SQLITE_BUSY without end).
    let mut q = Reaped(
        rpm(dir.path())
            .args(["-q", "hralpha"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        q.0.try_wait().unwrap().is_none(),
        "rpm -q finished despite the lock"
    );
    drop(q);

    assert_eq!(
        snapshot(&dbdir),
        before,
        "hostready changed the database directory"
    );
    drop(holder);
}

#[test]
fn reading_never_creates_or_changes_files() {
    let dir = fresh_root();
    let dbdir = dir.path().join("var/lib/rpm");
    // Leave only the database file, as after a clean shutdown: no -wal/-shm may appear.
    for side in ["rpmdb.sqlite-wal", "rpmdb.sqlite-shm"] {
        let _ = std::fs::remove_file(dbdir.join(side));
    }
    let before = snapshot(&dbdir);
    let root = Root::open(dir.path()).unwrap();
    let dbs = open_host_databases(&root);
    assert!(dbs.query("hrbeta").installed());
    assert_eq!(snapshot(&dbdir), before);
}

#[test]
fn hot_journal_makes_not_found_unreliable() {
    let dir = fresh_root();
    let dbdir = dir.path().join("var/lib/rpm");
    let mut journal = vec![0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7];
    journal.resize(512, 0);
    std::fs::write(dbdir.join("rpmdb.sqlite-journal"), journal).unwrap();
    let root = Root::open(dir.path()).unwrap();
    let lookup = open_host_databases(&root).query("not-there");
    assert!(
        !lookup.complete,
        "a hot journal must make 'not found' unreliable"
    );
    assert!(lookup.notes.iter().any(|n| n.message.contains("journal")));
}
