//! `kernel.config` on fake hosts built file by file: required options `y` or `m` (alternatives
//! included), forbidden options not set, and unknown — naming every place tried — when no
//! kernel config can be read.

// Tests build fake hosts on this machine directly.
#![allow(clippy::disallowed_methods)]

use hostready_checks::Facts;
use hostready_checks::checks::kernel;
use hostready_checks::finding::{Outcome, Status};
use hostready_host::{Host, ProcSource};
use hostready_testkit::fakehost::FakeHost;

const RELEASE: &str = "6.1.0-18-amd64";

/// A stock-Debian-like excerpt: namespaces and cgroups built in, the netfilter matches and
/// overlayfs as modules, one option not set, one option with a value.
const CONFIG: &str = "\
#
# Automatically generated file; DO NOT EDIT.
#
CONFIG_NAMESPACES=y
CONFIG_NET_NS=y
CONFIG_PID_NS=y
CONFIG_CGROUPS=y
CONFIG_MEMCG=y
CONFIG_NETFILTER_XT_TARGET_REDIRECT=m
CONFIG_NETFILTER_XT_MATCH_COMMENT=m
CONFIG_OVERLAY_FS=m
# CONFIG_AUFS_FS is not set
CONFIG_NR_CPUS=8192
CONFIG_SECCOMP=y
";

/// A Debian host with kernel 6.1.0, its config at `/boot/config-<release>`.
fn debian() -> FakeHost {
    let h = FakeHost::new();
    h.file("/etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n");
    h.proc_file("/sys/kernel/osrelease", &format!("{RELEASE}\n"));
    h.file(&format!("/boot/config-{RELEASE}"), CONFIG);
    h
}

fn check(h: &FakeHost, require: &[&str], forbid: &[&str]) -> Outcome {
    let host = Host::open(&h.root, ProcSource::At(h.proc.clone())).unwrap();
    let facts = Facts::new(&host, "/usr/bin");
    let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    kernel::config(&own(require), &own(forbid), &facts)
}

fn assert_status(o: &Outcome, s: Status) {
    assert_eq!(o.status, s, "{o:#?}");
}

#[test]
fn built_in_and_module_options_pass() {
    let h = debian();
    let o = check(
        &h,
        &[
            "CONFIG_NAMESPACES",
            "CONFIG_NET_NS",
            "CONFIG_NETFILTER_XT_MATCH_COMMENT",
        ],
        &["CONFIG_AUFS_FS"],
    );
    assert_status(&o, Status::Pass);
    let source = format!("/boot/config-{RELEASE}");
    assert_eq!(o.evidence.get("config source"), Some(source.as_str()));
    assert_eq!(o.evidence.get("CONFIG_NET_NS"), Some("y"));
    assert_eq!(
        o.evidence.get("CONFIG_NETFILTER_XT_MATCH_COMMENT"),
        Some("m")
    );
    assert_eq!(o.evidence.get("CONFIG_AUFS_FS"), Some("not set"));
    assert!(
        o.message.contains("3 required option(s) y or m")
            && o.message.contains("none of 1 forbidden")
            && o.message.contains(&source),
        "{o:#?}"
    );
    assert!(o.remediation.is_none(), "{o:#?}");
}

#[test]
fn one_alternative_is_enough() {
    let h = debian();
    // system-validators' alias: the option's old name is absent, the new one is a module.
    let o = check(
        &h,
        &["CONFIG_IP_NF_TARGET_REDIRECT|CONFIG_NETFILTER_XT_TARGET_REDIRECT"],
        &[],
    );
    assert_status(&o, Status::Pass);
    assert_eq!(
        o.evidence.get("CONFIG_NETFILTER_XT_TARGET_REDIRECT"),
        Some("m")
    );
    // Only the alternative that satisfied it is shown.
    assert_eq!(o.evidence.get("CONFIG_IP_NF_TARGET_REDIRECT"), None);
    let o = check(&h, &["CONFIG_OVERLAYFS_FS|CONFIG_AUFS_FS"], &[]);
    assert_status(&o, Status::Fail);
    assert!(
        o.message
            .contains("CONFIG_OVERLAYFS_FS not set or CONFIG_AUFS_FS not set"),
        "{o:#?}"
    );
}

#[test]
fn missing_required_options_fail_naming_each() {
    let h = debian();
    let o = check(
        &h,
        &[
            "CONFIG_NET_NS",
            "CONFIG_CGROUP_BPF",
            "CONFIG_AUFS_FS",
            "CONFIG_NR_CPUS",
        ],
        &[],
    );
    assert_status(&o, Status::Fail);
    // Absent from the file, "is not set", and a value that is neither y nor m.
    for part in [
        "CONFIG_CGROUP_BPF not set",
        "CONFIG_AUFS_FS not set",
        "CONFIG_NR_CPUS 8192",
    ] {
        assert!(o.message.contains(part), "{part}: {o:#?}");
    }
    assert!(!o.message.contains("CONFIG_NET_NS"), "{o:#?}");
    assert_eq!(o.evidence.get("CONFIG_CGROUP_BPF"), Some("not set"));
    let fix = o.remediation.as_ref().expect("a fix");
    assert!(fix.summary.contains("kernel built with"), "{fix:#?}");
    assert!(
        fix.notes
            .iter()
            .any(|n| n.contains("no module load, sysctl")),
        "{fix:#?}"
    );
}

#[test]
fn forbidden_options_set_fail() {
    let h = debian();
    let o = check(
        &h,
        &["CONFIG_NET_NS"],
        &["CONFIG_OVERLAY_FS", "CONFIG_SECCOMP"],
    );
    assert_status(&o, Status::Fail);
    assert!(
        o.message
            .contains("forbidden but set: CONFIG_OVERLAY_FS=m, CONFIG_SECCOMP=y"),
        "{o:#?}"
    );
    assert!(!o.message.contains("not built"), "{o:#?}");
    // A value other than y or m does not count as set (system-validators' rule).
    let o = check(&h, &[], &["CONFIG_NR_CPUS", "CONFIG_AUFS_FS"]);
    assert_status(&o, Status::Pass);
}

#[test]
fn no_config_is_unknown_naming_what_was_tried() {
    let h = FakeHost::new();
    h.proc_file("/sys/kernel/osrelease", &format!("{RELEASE}\n"));
    let o = check(&h, &["CONFIG_NET_NS"], &[]);
    assert_status(&o, Status::Unknown);
    for tried in [
        format!("/boot/config-{RELEASE}"),
        format!("/lib/modules/{RELEASE}/config"),
        "/proc/config.gz".to_string(),
    ] {
        assert!(o.message.contains(&tried), "{tried}: {o:#?}");
    }
    // A config of another release is not this kernel's.
    h.file("/boot/config-5.10.0-28-amd64", CONFIG);
    assert_status(&check(&h, &["CONFIG_NET_NS"], &[]), Status::Unknown);
    // Without a release, no file name can be formed: unknown, saying so.
    let h = FakeHost::new();
    let o = check(&h, &["CONFIG_NET_NS"], &[]);
    assert_status(&o, Status::Unknown);
    assert!(o.message.contains("osrelease"), "{o:#?}");
    // /lib/modules/<release>/config (Fedora, Arch ship it there) is read when /boot has none.
    let h = FakeHost::new();
    h.proc_file("/sys/kernel/osrelease", &format!("{RELEASE}\n"));
    h.file(&format!("/lib/modules/{RELEASE}/config"), CONFIG);
    assert_status(&check(&h, &["CONFIG_NET_NS"], &[]), Status::Pass);
}
