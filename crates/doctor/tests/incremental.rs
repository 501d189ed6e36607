//! The agent's incremental diagnosis (`diagnose_keeping`, reusing the command lines and the
//! process directories of the previous scan) gives the report a full diagnosis gives, on one
//! fake procfs changed between passes: processes that exit, new ones, a pid reused by a new
//! process, a process that execs (a new name; the same name with a new argument range), a pile
//! that grows; members that change state (D, zombie), memory or parent while they keep their
//! identity. And on this machine's procfs, with real sleepers that exit, arrive and exec.

// Tests build fake procfs trees directly.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::path::Path;

use hostready_doctor::proc::{KEPT_ENTRY_BYTES, Kept};
use hostready_doctor::{Options, Report, Thresholds};
use hostready_host::{Host, ProcSource};
use hostready_testkit::fakehost::FakeProc;
use hostready_testkit::process::{Group, count_argv0, marker};
use hostready_testkit::wait_until;

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

/// Rewrites `pid`'s `stat` in place (same start time, so the same identity) with `state`,
/// parent `ppid` and `rss` resident pages.
fn restat(proc: &FakeProc, pid: u32, ppid: u32, comm: &str, state: char, rss: u64, age: u64) {
    let start = (1000 - age) * 100;
    let line = format!(
        "{pid} ({comm}) {state} {ppid} {pid} {pid} 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 {start} 12537856 {rss} 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
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

/// What a kept entry never stands for: `stat` is read every pass (through the kept directory),
/// so a member that changes state, memory or parent without changing identity is reported as a
/// full scan reports it. Each step below changes only `stat` (and the memory files) in place:
/// a scan that trusted anything of `stat` from the pass before would report the old value.
#[test]
fn states_memory_and_parents_are_read_every_pass() {
    let root = tempfile::tempdir().unwrap();
    let proc = FakeProc::new();
    proc.process(1, 0, "systemd", 'S', &["/sbin/init"], 999);
    proc.process(40, 1, "longhorn-manage", 'S', &["longhorn-manager"], 900);
    proc.process(41, 1, "kubelet", 'S', &["kubelet"], 900);
    for pid in 100..120 {
        proc.process(pid, 40, "rpm", 'S', &["rpm", "-q", "open-iscsi"], 300);
    }
    let mut kept = Kept::default();
    let pile = |r: &Report| pile_of(r, "rpm -q open-iscsi").cloned().unwrap();
    let r = both(root.path(), &proc, &mut kept);
    assert_eq!(pile(&r).states.get(&'S'), Some(&20));
    both(root.path(), &proc, &mut kept);
    // The fast path is what is tested: the second pass read `stat` through kept directories.
    assert!(
        kept.dirs() >= 23,
        "no process directory kept ({}): openat2 missing?",
        kept.dirs()
    );

    // D state: the pile fails (d_state >= min_count) and says so.
    for pid in 100..112 {
        restat(&proc, pid, 40, "rpm", 'D', 600, 300);
    }
    let r = both(root.path(), &proc, &mut kept);
    assert_eq!(pile(&r).states.get(&'D'), Some(&12));
    let f = r
        .findings
        .iter()
        .find(|f| f.id.starts_with("doctor.pileup.rpm"))
        .unwrap();
    assert_eq!(f.evidence.get("in d state"), Some("12"));

    // Memory: resident pages in stat and private memory in smaps_rollup grow.
    for pid in 100..120 {
        restat(&proc, pid, 40, "rpm", 'S', 6000, 300);
        fs::write(
            proc.path().join(format!("{pid}/smaps_rollup")),
            "Rss: 24000 kB\nPrivate_Clean: 40 kB\nPrivate_Dirty: 20000 kB\n",
        )
        .unwrap();
    }
    let r = both(root.path(), &proc, &mut kept);
    assert_eq!(pile(&r).rss_kb, 20 * 6000 * 4);
    assert_eq!(pile(&r).private_kb, Some(20 * 20040));

    // Reparenting: half the pile's parent exits (they are orphans of pid 1), then another
    // parent adopts the rest (a subreaper): the chain follows.
    for pid in 100..110 {
        restat(&proc, pid, 1, "rpm", 'S', 6000, 300);
    }
    let r = both(root.path(), &proc, &mut kept);
    assert_eq!((pile(&r).orphans, pile(&r).parents), (10, 2));
    for pid in 100..120 {
        restat(&proc, pid, 41, "rpm", 'S', 6000, 300);
    }
    let r = both(root.path(), &proc, &mut kept);
    assert_eq!((pile(&r).orphans, pile(&r).parents), (0, 1));
    assert!(
        pile(&r).parent_chain.contains("kubelet(41)"),
        "{}",
        pile(&r).parent_chain
    );

    // Zombies: dead members keep their pid and start time but lose their command line.
    for pid in 100..112 {
        restat(&proc, pid, 41, "rpm", 'Z', 0, 300);
        fs::write(proc.path().join(format!("{pid}/cmdline")), "").unwrap();
    }
    let r = both(root.path(), &proc, &mut kept);
    assert!(
        r.pileups
            .iter()
            .any(|g| g.exe == "[rpm]" && g.zombies == 12)
    );

    // And back: the pids are reaped and reused by new rpm processes, read anew.
    for pid in 100..112 {
        fs::remove_dir_all(proc.path().join(pid.to_string())).unwrap();
        proc.process(pid, 40, "rpm", 'S', &["rpm", "-q", "open-iscsi"], 100);
    }
    let r = both(root.path(), &proc, &mut kept);
    assert_eq!(pile(&r).count, 20);
    assert!(r.pileups.iter().all(|g| g.exe != "[rpm]"));
}

/// Diagnoses this machine from scratch and with `kept`, and returns the two reports' piles
/// of `command` (other processes on the machine change between the two scans; the test's own
/// do not).
fn both_here(command: &str, kept: &mut Kept) -> (serde_json::Value, serde_json::Value) {
    let host = Host::open("/", ProcSource::At("/proc".into())).unwrap();
    let opts = Options {
        thresholds: Thresholds {
            min_count: 10,
            min_age_secs: 0,
            ..Thresholds::default()
        },
        full_read: false,
    };
    // Ages are counted from each scan's own start: a second may pass between the two.
    let pick = |r: Report| {
        let mut g = r
            .pileups
            .into_iter()
            .find(|g| g.command == command)
            .map(|g| serde_json::to_value(g).unwrap())
            .unwrap_or(serde_json::Value::Null);
        if let Some(o) = g.as_object_mut() {
            o.remove("oldest_age_secs");
            o.remove("newest_age_secs");
        }
        g
    };
    let full = pick(hostready_doctor::diagnose(&host, &opts));
    let incremental = pick(hostready_doctor::diagnose_keeping(&host, &opts, Some(kept)));
    (full, incremental)
}

/// On the real procfs, where a kept directory is bound to its process: sleepers that exit,
/// arrive under another parent, and a process that execs into the pile (a new name and a new
/// command line under the same pid and start time). Pid reuse is not provoked here (it needs
/// the machine's pid counter to wrap); the fake procfs tests above cover it.
#[test]
fn real_sleepers_that_exit_arrive_and_exec_are_reported_as_a_full_scan_does() {
    let child = marker("hrdkeep");
    let fifo_dir = tempfile::tempdir().unwrap();
    let fifo = fifo_dir.path().join("go");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let parent = marker("hrdkeeper");
    let g = Group::bash(
        &parent,
        &format!("for i in $(seq 12); do (exec -a {child} sleep 1000) & done; wait"),
    );
    assert!(
        wait_until(|| count_argv0(&child) == 12),
        "sleepers did not start"
    );
    let command = format!("{child} N");
    let mut kept = Kept::default();
    let (full, inc) = both_here(&command, &mut kept);
    assert_eq!(full["count"], 12, "{full}");
    assert_eq!(full, inc);
    let (full, inc) = both_here(&command, &mut kept);
    assert_eq!(full, inc);
    assert!(kept.dirs() > 12, "kept {} directories", kept.dirs());

    // Two exit (killed; the parent's `wait` reaps them).
    let pids: Vec<u64> = full["pids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect();
    for pid in &pids[..2] {
        assert!(
            std::process::Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status()
                .unwrap()
                .success()
        );
    }
    assert!(wait_until(|| count_argv0(&child) == 10));
    let (full, inc) = both_here(&command, &mut kept);
    assert_eq!(full["count"], 10, "{full}");
    assert_eq!(full, inc);

    // Arrivals under another parent, and one process that execs into the pile when told.
    let other = marker("hrdkeepmore");
    let _more = Group::bash(
        &other,
        &format!(
            "for i in $(seq 3); do (exec -a {child} sleep 1000) & done; (read x < {f}; exec -a {child} sleep 1000) & wait",
            f = fifo.display()
        ),
    );
    assert!(wait_until(|| count_argv0(&child) == 13));
    let (full, inc) = both_here(&command, &mut kept);
    assert_eq!(
        (full["count"].clone(), full["parents"].clone()),
        (13.into(), 2.into()),
        "{full}"
    );
    assert_eq!(full, inc);
    std::fs::write(&fifo, "go\n").unwrap();
    assert!(
        wait_until(|| count_argv0(&child) == 14),
        "the reader did not exec"
    );
    let (full, inc) = both_here(&command, &mut kept);
    assert_eq!(full["count"], 14, "{full}");
    assert_eq!(full, inc);
    drop(g);
}

/// A container's procfs (its own pid namespace): pid 2 is whatever the container started
/// second, and its children are ordinary processes; a kernel thread is known by the kernel's
/// flag (`PF_KTHREAD` in field 9), whatever its pid.
#[test]
fn pid_2_of_a_pid_namespace_and_its_children_are_processes() {
    let root = tempfile::tempdir().unwrap();
    let proc = FakeProc::new();
    proc.process(1, 0, "pause", 'S', &["/pause"], 999);
    proc.process(
        2,
        1,
        "longhorn-manage",
        'S',
        &["longhorn-manager", "daemon"],
        900,
    );
    for pid in 10..22 {
        proc.process(pid, 2, "rpm", 'S', &["rpm", "-q", "nfs-utils"], 300);
    }
    // A kernel thread (as a host's procfs shows one) under pid 2: PF_KTHREAD set.
    let k = proc.process(30, 2, "kworker/0:1", 'I', &[], 500);
    fs::write(
        k.join("stat"),
        "30 (kworker/0:1) I 2 0 0 0 -1 69238880 0 0 0 0 0 0 0 0 20 0 1 0 50000 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
    )
    .unwrap();
    let mut kept = Kept::default();
    for _ in 0..2 {
        let r = both(root.path(), &proc, &mut kept);
        assert_eq!(r.processes, 14, "pid 1, pid 2 and its 12 children");
        let pile = pile_of(&r, "rpm -q nfs-utils").expect("the children of pid 2 are a pile");
        assert_eq!(pile.count, 12);
        assert!(
            pile.parent_chain.contains("longhorn-manager(2)"),
            "{}",
            pile.parent_chain
        );
    }
}
