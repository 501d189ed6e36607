//! The agent's incremental diagnosis (`diagnose_keeping`, reusing the command lines of the
//! previous scan) gives the report a full diagnosis gives, on one fake procfs changed between
//! passes: processes that exit, new ones, a pid reused by a new process, a process that execs
//! (a new name; the same name with a new argument range), a pile that grows.

// Tests build fake procfs trees directly.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::path::Path;

use hostready_doctor::proc::{KEPT_ENTRY_BYTES, Kept};
use hostready_doctor::{Options, Report, Thresholds};
use hostready_host::{Host, ProcSource};
use hostready_testkit::fakehost::FakeProc;

fn options() -> Options {
    Options {
        thresholds: Thresholds {
            min_count: 10,
            min_age_secs: 60,
            ..Thresholds::default()
        },
        full_read: false,
    }
}

fn host(root: &Path, proc: &FakeProc) -> Host {
    Host::open(root, ProcSource::At(proc.path().into())).unwrap()
}

fn json(r: &Report) -> serde_json::Value {
    serde_json::to_value(r).unwrap()
}

/// Diagnoses once from scratch and once with `kept`, and asserts the two reports are equal.
fn both(root: &Path, proc: &FakeProc, kept: &mut Kept) -> Report {
    let h = host(root, proc);
    let full = hostready_doctor::diagnose(&h, &options());
    let incremental = hostready_doctor::diagnose_keeping(&h, &options(), Some(kept));
    assert_eq!(json(&full), json(&incremental));
    full
}

/// Rewrites `pid`'s `stat` as a current kernel writes it, all 52 fields, with the command
/// line at `arg_start..arg_end` (fields 48 and 49).
fn stat_with_args(proc: &FakeProc, pid: u32, ppid: u32, comm: &str, age: u64, args: (u64, u64)) {
    let start = (1000 - age) * 100;
    let line = format!(
        "{pid} ({comm}) S {ppid} {pid} {pid} 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 {start} 12537856 600 18446744073709551615 1 1 1 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 {} {} 0 0 0\n",
        args.0, args.1
    );
    fs::write(proc.path().join(format!("{pid}/stat")), line).unwrap();
}

fn set_cmdline(proc: &FakeProc, pid: u32, argv: &[&str]) {
    let mut text = argv.join("\0");
    text.push('\0');
    fs::write(proc.path().join(format!("{pid}/cmdline")), text).unwrap();
}

fn pile_of<'a>(r: &'a Report, command: &str) -> Option<&'a hostready_doctor::pileup::Group> {
    r.pileups.iter().find(|g| g.command == command)
}

#[test]
fn an_incremental_diagnosis_equals_a_full_one_as_processes_come_go_and_exec() {
    let root = tempfile::tempdir().unwrap();
    let proc = FakeProc::new();
    proc.process(1, 0, "systemd", 'S', &["/sbin/init"], 999);
    proc.process(
        40,
        1,
        "longhorn-manage",
        'S',
        &["longhorn-manager", "daemon"],
        900,
    );
    for pid in 100..124 {
        proc.process(
            pid,
            40,
            "rpm",
            'S',
            &["rpm", "-q", "iscsi-initiator-utils"],
            300,
        );
    }
    for pid in 300..312 {
        proc.process(pid, 1, "sleep", 'S', &["sleep", "900"], 500);
    }
    let mut kept = Kept::default();
    let r = both(root.path(), &proc, &mut kept);
    assert_eq!(
        pile_of(&r, "rpm -q iscsi-initiator-utils").map(|g| g.count),
        Some(24)
    );
    assert_eq!(pile_of(&r, "sleep N").map(|g| g.count), Some(12));
    assert!(!kept.is_empty(), "the first pass keeps what it read");
    // Unchanged: the kept lines are used, and the report is the same.
    both(root.path(), &proc, &mut kept);

    // Processes exit: their lines are dropped.
    let before = kept.len();
    for pid in 100..104 {
        fs::remove_dir_all(proc.path().join(pid.to_string())).unwrap();
    }
    let r = both(root.path(), &proc, &mut kept);
    assert_eq!(kept.len(), before - 4);
    assert_eq!(
        pile_of(&r, "rpm -q iscsi-initiator-utils").map(|g| g.count),
        Some(20)
    );

    // New ones arrive, and the pile grows.
    for pid in 124..140 {
        proc.process(
            pid,
            40,
            "rpm",
            'S',
            &["rpm", "-q", "iscsi-initiator-utils"],
            100,
        );
    }
    let r = both(root.path(), &proc, &mut kept);
    assert_eq!(
        pile_of(&r, "rpm -q iscsi-initiator-utils").map(|g| g.count),
        Some(36)
    );

    // A pid reused by a new process (a new start time) with another command line of the
    // same name: read anew, so the old pile loses it and the sleepers' pile gains nothing.
    fs::remove_dir_all(proc.path().join("300")).unwrap();
    proc.process(300, 1, "sleep", 'S', &["sleep", "infinity"], 200);
    let r = both(root.path(), &proc, &mut kept);
    assert_eq!(pile_of(&r, "sleep N").map(|g| g.count), Some(11));

    // A process that execs: a new name, same pid and start time.
    fs::remove_dir_all(proc.path().join("301")).unwrap();
    proc.process(
        301,
        40,
        "rpm",
        'S',
        &["rpm", "-q", "iscsi-initiator-utils"],
        500,
    );
    let r = both(root.path(), &proc, &mut kept);
    assert_eq!(pile_of(&r, "sleep N").map(|g| g.count), Some(10));
    assert_eq!(
        pile_of(&r, "rpm -q iscsi-initiator-utils").map(|g| g.count),
        Some(37)
    );

    // An exec of the same name (rpm runs rpm again): only the argument range moved.
    for pid in 104..124 {
        stat_with_args(&proc, pid, 40, "rpm", 300, (1000, 1030));
    }
    both(root.path(), &proc, &mut kept);
    for pid in 104..114 {
        stat_with_args(&proc, pid, 40, "rpm", 300, (2000, 2020));
        set_cmdline(&proc, pid, &["rpm", "-q", "open-iscsi"]);
    }
    let r = both(root.path(), &proc, &mut kept);
    assert_eq!(pile_of(&r, "rpm -q open-iscsi").map(|g| g.count), Some(10));
    assert_eq!(
        pile_of(&r, "rpm -q iscsi-initiator-utils").map(|g| g.count),
        Some(27)
    );

    // The parent chain's names are kept lines too: the parent replaced under the same pid.
    fs::remove_dir_all(proc.path().join("40")).unwrap();
    proc.process(40, 1, "containerd", 'S', &["containerd"], 800);
    let r = both(root.path(), &proc, &mut kept);
    let chain = &pile_of(&r, "rpm -q open-iscsi").unwrap().parent_chain;
    assert!(chain.contains("containerd(40)"), "{chain}");

    // A pile that went away: the same report, with nothing kept of it.
    for pid in 104..140 {
        let _ = fs::remove_dir_all(proc.path().join(pid.to_string()));
    }
    let _ = fs::remove_dir_all(proc.path().join("301"));
    let r = both(root.path(), &proc, &mut kept);
    assert!(r.pileups.iter().all(|g| !g.command.starts_with("rpm")));
    assert!(kept.bytes() >= kept.len() * KEPT_ENTRY_BYTES);
}
