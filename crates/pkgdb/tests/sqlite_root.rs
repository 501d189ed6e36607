//! The SQLite rpmdb is read through the descriptor opened inside `--root`, never by a path that
//! SQLite would resolve again on this machine: a `rpmdb.sqlite` symlink to a file outside the
//! root, and a `var/lib/rpm` swapped for a symlink to an outside directory while queries run,
//! never make an answer come from the database outside.
//!
//! Inside the roots: a database Debian's rpm wrote (`hralpha`, `hrbeta`, `hrpkg0..2`); outside:
//! a copy of the CBL-Mariner database (`curl`, `bash`, ...), so the source of any answer shows.

// Tests build fake hosts and read fixtures on this machine directly.
#![allow(clippy::disallowed_methods)]

mod util;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use hostready_host::Root;
use hostready_pkgdb::query_with_proc;
use hostready_testkit::MARINER;

/// A directory outside every root holding a Mariner rpmdb, and its absolute path.
fn outside_db() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rpm/rpmdb.sqlite");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    std::fs::copy(MARINER, &db).unwrap();
    (dir, db)
}

/// Watches a file with inotify for any open or read, by anyone (this test process included).
struct Watch(rustix::fd::OwnedFd);

impl Watch {
    fn new(path: &Path) -> Watch {
        use rustix::fs::inotify;
        let fd =
            inotify::init(inotify::CreateFlags::NONBLOCK | inotify::CreateFlags::CLOEXEC).unwrap();
        inotify::add_watch(
            &fd,
            path,
            inotify::WatchFlags::OPEN | inotify::WatchFlags::ACCESS,
        )
        .unwrap();
        Watch(fd)
    }

    /// Returns true if and only if the file was opened or read since the watch began.
    fn touched(&self) -> bool {
        let mut buf = [0u8; 4096];
        match rustix::io::read(&self.0, &mut buf) {
            Ok(n) => n > 0,
            Err(rustix::io::Errno::AGAIN) => false,
            Err(e) => panic!("inotify read: {e}"),
        }
    }
}

/// Installs the test packages into `root`'s own `/var/lib/rpm` with Debian's rpm.
fn inside_db(root: &Path) {
    util::install(root, &util::built_rpms(3));
}

#[test]
fn rpmdb_symlink_to_a_file_outside_is_resolved_inside_the_root() {
    let (_out, outside) = outside_db();
    let dir = tempfile::tempdir().unwrap();
    // The same absolute path, inside the root, holds the root's own database.
    let staging = tempfile::tempdir().unwrap();
    inside_db(staging.path());
    let inner = dir.path().join(outside.strip_prefix("/").unwrap());
    std::fs::create_dir_all(inner.parent().unwrap()).unwrap();
    std::fs::copy(staging.path().join("var/lib/rpm/rpmdb.sqlite"), &inner).unwrap();
    let rpmdir = dir.path().join("var/lib/rpm");
    std::fs::create_dir_all(&rpmdir).unwrap();
    std::os::unix::fs::symlink(&outside, rpmdir.join("rpmdb.sqlite")).unwrap();

    let watch = Watch::new(&outside);
    let root = Root::open(dir.path()).unwrap();
    let curl = query_with_proc(&root, None, "curl");
    assert!(!watch.touched(), "the database outside the root was opened");
    assert!(
        !curl.lookup.installed(),
        "answered from the database outside the root: {:?}",
        curl.lookup
    );
    assert!(curl.lookup.complete, "{:?}", curl.lookup);
    let alpha = query_with_proc(&root, None, "hralpha");
    assert!(alpha.lookup.installed(), "{:?}", alpha.lookup);

    // With nothing at that path inside the root, there is no database at all (never the
    // outside one).
    std::fs::remove_file(&inner).unwrap();
    let curl = query_with_proc(&root, None, "curl");
    assert!(!curl.lookup.installed() && !curl.lookup.complete);
    assert!(curl.dbs.is_empty(), "{:?}", curl.dbs);
}

#[test]
fn rpm_dir_swapped_for_a_symlink_while_queries_run_never_reads_outside() {
    let (_out, outside) = outside_db();
    let dir = tempfile::tempdir().unwrap();
    inside_db(dir.path());
    let lib = dir.path().join("var/lib");
    let rpm = lib.join("rpm");
    let other = lib.join("rpm.other");
    std::os::unix::fs::symlink(outside.parent().unwrap(), &other).unwrap();

    let swapper = Swapper::start(rpm, other);
    let watch = Watch::new(&outside);
    let root = Root::open(dir.path()).unwrap();
    let (mut inside_answers, mut outside_answers) = (0, Vec::new());
    let started = std::time::Instant::now();
    let mut queries = 0;
    // Enough queries, and enough swaps during them, whatever else loads the machine.
    while queries < 600 || swapper.swaps() < 300 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "{queries} queries, {} swaps in 60 s",
            swapper.swaps()
        );
        let name = if queries % 2 == 0 { "curl" } else { "hralpha" };
        queries += 1;
        let a = query_with_proc(&root, None, name);
        if a.lookup.installed() {
            match name {
                "curl" => outside_answers.push(format!("{:?}", a.lookup.packages)),
                _ => inside_answers += 1,
            }
        }
        // Whatever the timing, an answer from the outside database would name Mariner's
        // packages; nothing else may.
        for p in &a.lookup.packages {
            assert!(p.name.starts_with("hr"), "outside package {p:?}");
        }
    }
    let swaps = swapper.stop();
    assert!(!watch.touched(), "the database outside the root was opened");
    assert!(
        outside_answers.is_empty(),
        "answers from outside the root: {outside_answers:?}"
    );
    // The root's own database answers once the swapping stops (during it, most answers are
    // "replaced while being read": the path no longer led to the file read, so unknown).
    assert!(query_with_proc(&root, None, "hralpha").lookup.installed());
    eprintln!(
        "{swaps} swaps, {inside_answers} of {} inside answers",
        queries / 2
    );
}

/// Swaps two paths with renameat2(RENAME_EXCHANGE) in a loop on its own thread, until stopped
/// or dropped (so a failing assertion still stops and joins it), leaving them as they were.
struct Swapper {
    stop: Arc<AtomicBool>,
    swaps: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Swapper {
    fn start(a: std::path::PathBuf, b: std::path::PathBuf) -> Swapper {
        let stop = Arc::new(AtomicBool::new(false));
        let swaps = Arc::new(AtomicUsize::new(0));
        let exchange = move || {
            rustix::fs::renameat_with(
                rustix::fs::CWD,
                &a,
                rustix::fs::CWD,
                &b,
                rustix::fs::RenameFlags::EXCHANGE,
            )
            .unwrap()
        };
        let thread = {
            let (stop, swaps) = (stop.clone(), swaps.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    exchange();
                    swaps.fetch_add(1, Ordering::Relaxed);
                    // Each state lasts a fraction of a query, so every step of one meets both.
                    std::thread::sleep(std::time::Duration::from_micros(150));
                }
                if swaps.load(Ordering::Relaxed) % 2 == 1 {
                    exchange();
                }
            })
        };
        Swapper {
            stop,
            swaps,
            thread: Some(thread),
        }
    }

    fn swaps(&self) -> usize {
        self.swaps.load(Ordering::Relaxed)
    }

    /// Stops and joins the thread; returns how many swaps it made.
    fn stop(mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.swaps()
    }
}

impl Drop for Swapper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
