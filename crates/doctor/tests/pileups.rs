//! Synthetic pile-ups of real processes: sleepers under a marker parent, orphans whose parent
//! exited, zombies whose parent never reaps.

// Tests build fake hosts and read fixtures on this machine directly.
#![allow(clippy::disallowed_methods)]

mod util;

use hostready_doctor::Status;
use hostready_testkit::process::{Group, count_argv0, marker};
use hostready_testkit::wait_until;
use util::diagnose_here;

#[test]
fn thirty_sleepers_are_a_pileup_with_their_parent() {
    let parent = marker("hrdparent");
    let child = marker("hrdsleep");
    let g = Group::bash(
        &parent,
        &format!("for i in $(seq 30); do (exec -a {child} sleep 1000) & done; wait"),
    );
    assert!(
        wait_until(|| count_argv0(&child) == 30),
        "sleepers did not start"
    );

    let report = diagnose_here(10);
    let pile = report
        .pileups
        .iter()
        .find(|p| p.command.starts_with(&child))
        .unwrap_or_else(|| panic!("no pile-up for {child}: {:#?}", report.findings));
    assert_eq!(pile.count, 30);
    assert_eq!(pile.states.get(&'S'), Some(&30));
    assert_eq!(pile.orphans, 0);
    assert_eq!(pile.parents, 1);
    assert!(
        pile.parent_chain
            .contains(&format!("{parent}({})", g.pid())),
        "{}",
        pile.parent_chain
    );
    assert!(pile.private_kb.is_some_and(|kb| kb > 0));
    let f = report
        .findings
        .iter()
        .find(|f| f.message.contains(&child))
        .expect("a finding names the pile");
    assert!(f.id.starts_with("doctor.pileup.sleep"), "{}", f.id);
    assert_eq!(f.status, Status::Warn);
    assert!(
        f.message.starts_with("30 identical processes"),
        "{}",
        f.message
    );
    assert!(
        f.remediation
            .as_ref()
            .is_some_and(|r| !r.summary.is_empty()),
        "{f:#?}"
    );

    // Below the count threshold it is not a pile-up.
    let report = diagnose_here(31);
    assert!(!report.pileups.iter().any(|p| p.command.starts_with(&child)));
}

#[test]
fn orphans_are_counted_once_their_parent_is_gone() {
    let child = marker("hrdorphan");
    let mut g = Group::bash(
        &marker("hrdgone"),
        &format!("for i in $(seq 12); do (exec -a {child} sleep 1000) & done"),
    );
    assert!(wait_until(|| count_argv0(&child) == 12));
    g.child.wait().unwrap(); // the parent exits; its sleepers are reparented
    let report = diagnose_here(10);
    let pile = report
        .pileups
        .iter()
        .find(|p| p.command.starts_with(&child))
        .expect("orphan pile-up");
    assert_eq!(pile.orphans, 12, "{pile:?}");
    let f = report
        .findings
        .iter()
        .find(|f| f.message.contains(&child))
        .unwrap();
    assert!(
        f.remediation
            .as_ref()
            .is_some_and(|r| r.notes.iter().any(|n| n.contains("orphans"))),
        "{f:#?}"
    );
    assert_eq!(f.evidence.get("orphans"), Some("12"));
    // The drop guard kills the orphans through their process group.
}

#[test]
fn unreaped_children_are_a_zombie_pileup() {
    // Zombies keep only their name (comm), so give the children a unique one: a copy of sleep.
    let dir = tempfile::tempdir().unwrap();
    let name = marker("z");
    let exe = dir.path().join(&name);
    std::fs::copy("/bin/sleep", &exe).unwrap();
    let parent = marker("hrdnoreap");
    // `exec` replaces bash with sleep, which never waits for the children it inherits.
    let g = Group::bash(
        &parent,
        &format!(
            "for i in $(seq 12); do {} 1 & done; exec -a {parent} sleep 1000",
            exe.display()
        ),
    );
    let zombies = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| {
                std::fs::read_to_string(e.path().join("stat"))
                    .is_ok_and(|s| s.contains(&format!("({name}) Z")))
            })
            .count()
    };
    assert!(wait_until(|| zombies() == 12), "zombies did not appear");
    let report = diagnose_here(10);
    let pile = report
        .pileups
        .iter()
        .find(|p| p.exe == format!("[{name}]"))
        .expect("zombie pile-up");
    assert_eq!(pile.zombies, 12);
    assert!(pile.parent_chain.contains(&format!("({})", g.pid())));
    let f = report
        .findings
        .iter()
        .find(|f| f.id == format!("doctor.zombies.{name}"))
        .expect("zombie finding");
    assert_eq!(f.status, Status::Warn);
    assert!(
        f.remediation
            .as_ref()
            .is_some_and(|r| r.summary.contains(&g.pid().to_string())),
        "{f:#?}"
    );
}
