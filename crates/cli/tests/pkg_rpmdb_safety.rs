//! `hostready pkg` on damaged, contradictory, locked and hostile rpm databases, end to end:
//! damage is exit 2 "corrupt", never 1 "not installed"; a lock is reported without a procfs;
//! and a `rpmdb.sqlite` symlink out of the root is never opened outside it (checked with
//! `strace`, as the hostile-root suite does).

// Tests build fake hosts and read fixtures on this machine directly.
#![allow(clippy::disallowed_methods)]

use std::path::Path;
use std::process::{Command, Output};

use hostready_testkit::FIXTURES;
use hostready_testkit::fakehost::rpmdb_root as root_with;
use hostready_testkit::process::{hold_sqlite_exclusive, sqlite3};

fn pkg(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hostready"))
        .arg("pkg")
        .args(args)
        .arg("--root")
        .arg(root)
        .output()
        .unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout {:?} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn bdb_header_with_one_byte_changed_is_exit_2_not_not_installed() {
    let mut bytes = std::fs::read(Path::new(FIXTURES).join("libuuid-bdb/Packages")).unwrap();
    let needle = b"libuuid\x002.32.1\x00";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    bytes[at] ^= 0x01; // "mibuuid"
    let dir = root_with("Packages", &bytes);
    let out = pkg(dir.path(), &["query", "libuuid"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("corrupt: "), "{err}");
    assert!(err.contains("SHA256 header digest BAD"), "{err}");
    assert!(err.contains("/var/lib/rpm/Packages"), "{err}");
    // And the name the damage produced is not "installed" either.
    let out = pkg(dir.path(), &["query", "mibuuid"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn sqlite_name_index_pointing_at_another_header_is_exit_2() {
    let mut bytes = Vec::new();
    std::fs::File::open(Path::new(FIXTURES).join("cbl-mariner-2.0-sqlite/rpmdb.sqlite"))
        .and_then(|mut f| std::io::Read::read_to_end(&mut f, &mut bytes))
        .unwrap();
    let dir = root_with("rpmdb.sqlite", &bytes);
    let db = dir.path().join("var/lib/rpm/rpmdb.sqlite");
    sqlite3(
        &db,
        "UPDATE Name SET hnum = (SELECT hnum FROM Name WHERE key = 'bash') WHERE key = 'curl';",
    );
    let out = pkg(dir.path(), &["query", "curl", "--output", "json"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let v = json(&out);
    assert_eq!(v["answer"], "unknown");
    assert_eq!(v["complete"], false);
    assert_eq!(v["databases"][0]["status"], "corrupt");
    let e = v["databases"][0]["error"].as_str().unwrap();
    assert!(e.contains("rpm's index and its records disagree"), "{e}");
}

#[test]
fn exclusive_lock_is_reported_on_a_root_without_procfs_and_holders_once_with_one() {
    let bytes =
        std::fs::read(Path::new(FIXTURES).join("cbl-mariner-2.0-sqlite/rpmdb.sqlite")).unwrap();
    let dir = root_with("rpmdb.sqlite", &bytes);
    assert!(!dir.path().join("proc").exists());
    let holder = hold_sqlite_exclusive(&dir.path().join("var/lib/rpm/rpmdb.sqlite"), "");
    let pid = holder.pid();
    // Default --proc is ROOT/proc, which does not exist here.
    let out = pkg(dir.path(), &["query", "curl", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let v = json(&out);
    assert_eq!(v["databases"][0]["lock_holders"], serde_json::json!([pid]));
    let notes = v["notes"].to_string();
    assert!(
        notes.contains(&format!("locked by pid {pid} (POSIX WRITE)")),
        "{notes}"
    );
    // The machine's own procfs: /proc/locks has two ranges of the holder; it is listed once.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hostready"));
    cmd.args([
        "pkg", "query", "curl", "--output", "json", "--proc", "/proc", "--root",
    ])
    .arg(dir.path());
    let v = json(&cmd.output().unwrap());
    assert_eq!(v["databases"][0]["lock_holders"], serde_json::json!([pid]));
    drop(holder);
}

#[test]
fn rpmdb_symlink_out_of_the_root_is_never_opened_outside_it() {
    let mariner = Path::new(FIXTURES).join("cbl-mariner-2.0-sqlite/rpmdb.sqlite");
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("rpmdb.sqlite");
    std::fs::copy(&mariner, &target).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rpm = dir.path().join("var/lib/rpm");
    std::fs::create_dir_all(&rpm).unwrap();
    std::os::unix::fs::symlink(&target, rpm.join("rpmdb.sqlite")).unwrap();
    // The link's target, read inside the root: a database of the root's own.
    let inside = dir.path().join(target.strip_prefix("/").unwrap());
    std::fs::create_dir_all(inside.parent().unwrap()).unwrap();
    std::fs::copy(&mariner, &inside).unwrap();
    let run = |trace: &Path| {
        Command::new("strace")
            .args(["-f", "-qq", "-e", "trace=%file,%desc", "-o"])
            .arg(trace)
            .arg(env!("CARGO_BIN_EXE_hostready"))
            .args(["pkg", "query", "curl", "--root"])
            .arg(dir.path())
            .output()
            .expect("strace (scripts/setup installs it)")
    };
    let escapes = |trace: &Path| -> Vec<String> {
        let outside = outside.path().to_str().unwrap();
        std::fs::read_to_string(trace)
            .unwrap()
            .lines()
            // Reading a link's text names the outside path without going there.
            .filter(|l| l.contains(outside) && !l.contains("readlink"))
            .map(str::to_string)
            .collect()
    };
    // Runs the query under strace and asserts its exit code and that nothing was opened
    // outside the root.
    let run_opening_nothing_outside = |trace: &Path, code: i32| {
        let out = run(trace);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            escapes(trace).is_empty(),
            "opened outside the root: {:#?}",
            escapes(trace)
        );
    };
    let trace = dir.path().join("trace");
    run_opening_nothing_outside(&trace, 0);
    // With nothing at that path inside the root there is no database: exit 2, still nothing
    // opened outside.
    std::fs::remove_file(&inside).unwrap();
    run_opening_nothing_outside(&trace, 2);
}
