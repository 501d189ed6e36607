//! The host's mount table as each of its users sees it, on fake hosts: which malformed
//! `mountinfo` lines the propagation and cgroup checks keep and which the data-path and
//! raw-disk checks skip (pinned before the two parsers became one, and unchanged since), and
//! that one run reads pid 1's `mountinfo` once whichever checks ask.

// Tests build fake hosts on this machine directly.
#![allow(clippy::disallowed_methods)]

use hostready_checks::Facts;
use hostready_checks::checks::data_path::{self, DataPath};
use hostready_checks::checks::{cgroup, mount};
use hostready_checks::finding::{Outcome, Status};
use hostready_host::{Host, ProcSource};
use hostready_testkit::fakehost::FakeHost;

/// A good root, then one line per kind of damage a fake or broken procfs may show: a mount ID
/// that is no number, a device that is no `major:minor`, an empty filesystem type, too few
/// fields before the separator, no separator. Each names a mount under `/var/lib`.
const DAMAGED: &str = "\
22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
x 22 253:0 / /var/lib/id rw shared:2 - xfs /dev/vdb rw
40 22 a:b / /var/lib/dev rw shared:3 - xfs /dev/vdc rw
41 22 253:2 / /var/lib/fstype rw shared:4 -  /dev/vdd rw
42 22 253:3 / /var/lib/short - xfs /dev/vde rw
43 22 253:4 / /var/lib/nosep rw shared:6 xfs /dev/vdf rw
";

fn host(mountinfo: &str) -> FakeHost {
    let h = FakeHost::new();
    h.proc_file("/1/mountinfo", mountinfo);
    for d in ["id", "dev", "fstype", "short", "nosep"] {
        h.file(&format!("/var/lib/{d}/.keep"), "");
    }
    h
}

/// Runs `f` on the facts of `h`.
fn on(h: &FakeHost, f: impl FnOnce(&Facts<'_>) -> Outcome) -> Outcome {
    let host = Host::open(&h.root, ProcSource::At(h.proc.clone())).unwrap();
    let facts = Facts::new(&host, "/usr/bin");
    f(&facts)
}

fn on_xfs(path: &str) -> DataPath {
    DataPath {
        path: path.into(),
        filesystems: vec!["xfs".into()],
        min_free_gib: None,
        forbid_options: Vec::new(),
    }
}

/// The propagation check keeps a line whose ID, device or filesystem type does not parse (it
/// reads only the mount point and the optional fields), and skips a line without the
/// separator or with too few fields.
#[test]
fn propagation_keeps_lines_with_unparsed_id_device_or_type() {
    let h = host(DAMAGED);
    for (d, peer) in [
        ("id", "shared:2"),
        ("dev", "shared:3"),
        ("fstype", "shared:4"),
    ] {
        let path = format!("/var/lib/{d}");
        let o = on(&h, |f| mount::propagation(&path, f));
        assert_eq!(o.status, Status::Pass, "{o:#?}");
        assert_eq!(o.evidence.get("mount"), Some(path.as_str()), "{o:#?}");
        assert_eq!(o.evidence.get("optional fields"), Some(peer), "{o:#?}");
    }
    for d in ["short", "nosep"] {
        let path = format!("/var/lib/{d}");
        let o = on(&h, |f| mount::propagation(&path, f));
        assert_eq!(o.evidence.get("mount"), Some("/"), "{d}: {o:#?}");
    }
}

/// The data-path check skips every damaged line: the path is judged by the good root mount.
#[test]
fn data_path_skips_every_damaged_line() {
    let h = host(DAMAGED);
    for d in ["id", "dev", "fstype", "short", "nosep"] {
        let o = on(&h, |f| {
            data_path::check(&on_xfs(&format!("/var/lib/{d}")), f)
        });
        assert_eq!(o.status, Status::Fail, "{d}: {o:#?}");
        assert_eq!(
            o.evidence.get("mount"),
            Some("/dev/vda1 on / (ext4)"),
            "{d}: {o:#?}"
        );
    }
}

/// The cgroup check keeps a cgroup2 line at `/sys/fs/cgroup` whose ID or device does not
/// parse, as it did before the parsers were one; a line without the separator is skipped.
#[test]
fn cgroup_layout_keeps_lines_with_unparsed_id_or_device() {
    for bad in [
        "x 22 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        "29 22 0-26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
    ] {
        let h = host(&format!("{DAMAGED}{bad}"));
        let o = on(&h, |f| cgroup::check(Some(2), &[], f));
        assert_eq!(o.status, Status::Pass, "{bad}: {o:#?}");
        assert_eq!(o.evidence.get("kubelet sees"), Some("cgroup v2"), "{o:#?}");
    }
    let h = host(&format!(
        "{DAMAGED}29 22 0:26 / /sys/fs/cgroup rw cgroup2 cgroup2 rw\n"
    ));
    let o = on(&h, |f| cgroup::check(Some(2), &[], f));
    assert_eq!(o.status, Status::Fail, "{o:#?}");
}

/// One run reads pid 1's `mountinfo` once: the checks that judge by the device (data paths,
/// raw disks) and those that read peer groups and types (propagation, cgroup) share the table.
/// Regression: `Facts` read it twice, once per parser; here the file changes between the first
/// check and the second, and the second still sees the table the first read.
#[test]
fn one_run_reads_mountinfo_once() {
    let h = host("22 1 254:1 / / rw shared:1 - ext4 /dev/vda1 rw\n");
    let host = Host::open(&h.root, ProcSource::At(h.proc.clone())).unwrap();
    let facts = Facts::new(&host, "/usr/bin");
    let o = mount::propagation("/var/lib/id", &facts);
    assert_eq!(o.status, Status::Pass, "{o:#?}");
    h.proc_file("/1/mountinfo", "22 1 254:1 / / rw - xfs /dev/vda1 rw\n");
    let o = data_path::check(&on_xfs("/var/lib/id"), &facts);
    assert_eq!(o.status, Status::Fail, "{o:#?}");
    assert_eq!(o.evidence.get("mount"), Some("/dev/vda1 on / (ext4)"));
    let o = cgroup::check(None, &[], &facts);
    assert!(o.message.contains("no cgroup hierarchy"), "{o:#?}");
    // A new run reads the new table.
    let facts = Facts::new(&host, "/usr/bin");
    let o = data_path::check(&on_xfs("/var/lib/id"), &facts);
    assert_eq!(o.status, Status::Pass, "{o:#?}");
    let o = mount::propagation("/var/lib/id", &facts);
    assert_eq!(o.status, Status::Fail, "{o:#?}");
}
