//! The kernel-side families of issue 13 through the real binary: `hostready check -p` with a
//! test profile (`crates/checks/tests/kernel-side.yaml`) on this machine, each finding held
//! to what this machine's files say and the report and profile listing to their JSON
//! schemas; and the same families on a hostile root of 1 GiB files under a real memory
//! cgroup.

// Tests read this machine's /proc and /sys directly to know what the checks should find.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::path::Path;

use hostready_testkit::fakehost::FakeHost;
use hostready_testkit::memcg::MemCgroup;
use serde_json::Value;
use util::{finding, hostready, run_json};

mod util;

const PROFILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../checks/tests/kernel-side.yaml"
);

fn assert_valid(name: &str, doc: &Value) {
    util::schema::assert_valid(name, doc, name);
}

fn status(f: &Value) -> &str {
    f["status"].as_str().unwrap()
}

fn message(f: &Value) -> &str {
    f["message"].as_str().unwrap()
}

/// Returns true if and only if this machine's `/sys/fs/cgroup` is cgroup2 (the last mount
/// there in pid 1's mount table), and whether a cgroup2 is mounted anywhere.
fn cgroup2_here() -> (bool, bool) {
    let t = fs::read_to_string("/proc/1/mountinfo").unwrap();
    let mut at_root = false;
    let mut anywhere = false;
    for l in t.lines() {
        let (left, right) = l.split_once(" - ").unwrap();
        let point = left.split(' ').nth(4).unwrap();
        let fstype = right.split(' ').next().unwrap();
        anywhere |= fstype == "cgroup2";
        if point == "/sys/fs/cgroup" {
            at_root = fstype == "cgroup2";
        }
    }
    (at_root, anywhere)
}

#[test]
fn kernel_side_profile_on_this_machine() {
    let (code, json) = run_json(hostready().args(["check", "-o", "json", "-p", PROFILE]));
    assert_valid("check", &json);
    let read = |p: &str| {
        fs::read_to_string(p)
            .ok()
            .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
    };

    let f = finding(&json, "sysctl.net.ipv4.ip_forward");
    assert_eq!(f["kind"], "sysctl");
    assert_eq!(f["subject"], "net.ipv4.ip_forward");
    match read("/proc/sys/net/ipv4/ip_forward").as_deref() {
        Some("1") => assert_ne!(status(f), "unknown", "{f:#}"),
        Some(v) => {
            assert_eq!(status(f), "fail", "{f:#}");
            assert!(
                message(f).contains(&format!("is {v}; 1 is needed")),
                "{f:#}"
            );
        }
        None => assert_eq!(status(f), "unknown", "{f:#}"),
    }
    let f = finding(&json, "sysctl.net.ipv4.ip_local_port_range");
    let here = read("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    assert_eq!(status(f) == "pass", here == "32768 60999", "{f:#}");

    let f = finding(&json, "cgroup");
    let (v2, cgroup2_somewhere) = cgroup2_here();
    if v2 {
        assert_ne!(status(f), "unknown", "{f:#}");
    } else {
        assert_eq!(status(f), "fail", "{f:#}");
        assert!(
            message(f).contains("cgroup v1") && message(f).contains("failCgroupV1: false"),
            "{f:#}"
        );
        assert_eq!(message(f).contains("hybrid"), cgroup2_somewhere, "{f:#}");
    }

    let f = finding(&json, "swap");
    let swaps = fs::read_to_string("/proc/swaps").unwrap();
    let active = swaps.lines().skip(1).any(|l| !l.trim().is_empty());
    assert_eq!(status(f), if active { "fail" } else { "pass" }, "{f:#}");

    let f = finding(&json, "kmod.nvme_core.multipath");
    assert_eq!(f["kind"], "module_parameter");
    assert_eq!(f["subject"], "nvme_core.multipath");
    match read("/sys/module/nvme_core/parameters/multipath").as_deref() {
        Some("N") => assert_ne!(status(f), "fail", "{f:#}"),
        Some(_) => assert_eq!(status(f), "warn", "{f:#}"),
        // Not loaded here: never a pass without a value to read or a boot setting.
        None => assert_ne!(status(f), "pass", "{f:#}"),
    }

    let f = finding(&json, "kmod.drbd.version");
    if !Path::new("/sys/module/drbd").exists() && !Path::new("/proc/drbd").exists() {
        assert!(matches!(status(f), "unknown" | "warn"), "{f:#}");
    }
    let required_met = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["level"] == "required")
        .all(|f| matches!(status(f), "pass" | "warn"));
    assert_eq!(code, if required_met { 0 } else { 1 });

    // The profile as `hostready profiles FILE -o json` lists it.
    let (_, listing) = run_json(hostready().args(["profiles", PROFILE, "-o", "json"]));
    assert_valid("profiles", &listing);
    let text = listing.to_string();
    for key in [
        "\"sysctl\"",
        "\"cgroup\"",
        "\"swap\"",
        "\"module_parameter\"",
        "\"module_version\"",
    ] {
        assert!(text.contains(key), "{key}: {listing:#}");
    }
}

/// A fake host whose every file the kernel-side families read is absent (`bombs: false`) or
/// a 1 GiB sparse file (`true`).
fn host(bombs: bool) -> FakeHost {
    let h = FakeHost::new();
    h.file("/etc/os-release", "ID=debian\n");
    h.proc_file("/sys/kernel/osrelease", "6.1.0-18-amd64\n");
    h.proc_file(
        "/1/mountinfo",
        "29 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
    );
    fs::create_dir_all(h.root.join("sys/module/loop")).unwrap();
    if bombs {
        let big = |base: &Path, p: &str| {
            let f = base.join(p.trim_start_matches('/'));
            fs::create_dir_all(f.parent().unwrap()).unwrap();
            fs::File::create(&f).unwrap().set_len(1 << 30).unwrap();
        };
        for p in [
            "/sys/net/ipv4/ip_forward",
            "/swaps",
            "/cmdline",
            "/drbd",
            "/modules",
        ] {
            big(&h.proc, p);
        }
        for p in [
            "/etc/sysctl.d/50-big.conf",
            "/etc/sysctl.conf",
            "/etc/modprobe.d/big.conf",
            "/sys/fs/cgroup/cgroup.controllers",
            "/sys/module/nvme_core/parameters/multipath",
            "/sys/module/drbd/version",
        ] {
            big(&h.root, p);
        }
    }
    h
}

fn measured(h: &FakeHost) -> hostready_testkit::memcg::Measured {
    let m = MemCgroup::new(hostready_testkit::memcg::daemonset_limit()).run_command(
        hostready()
            .args(["check", "-o", "json", "-p", PROFILE, "--root"])
            .arg(&h.root)
            .arg("--proc")
            .arg(&h.proc),
    );
    assert_eq!(m.oom_kills, 0);
    m
}

/// Every reader of the five families is bounded: 1 GiB files where each looks are refused
/// by name, never read, and the peak RSS stays within an ordinary host's plus 4 MiB.
#[test]
fn kernel_side_readers_are_bounded_under_a_memory_cgroup() {
    let bound = measured(&host(false)).max_rss_kib + (4 << 10);
    let h = host(true);
    let m = measured(&h);
    let json: Value = serde_json::from_slice(&m.output.stdout)
        .unwrap_or_else(|e| panic!("{e}; stderr {}", String::from_utf8_lossy(&m.output.stderr)));
    for id in [
        "sysctl.net.ipv4.ip_forward",
        "cgroup",
        "swap",
        "kmod.nvme_core.multipath",
        "kmod.drbd.version",
    ] {
        let f = finding(&json, id);
        assert_eq!(status(f), "unknown", "{f:#}");
    }
    let ip = finding(&json, "sysctl.net.ipv4.ip_forward");
    assert!(
        message(ip).contains("/proc/sys/net/ipv4/ip_forward"),
        "{ip:#}"
    );
    assert!(message(finding(&json, "swap")).contains("/proc/swaps"));
    assert!(
        m.max_rss_kib <= bound,
        "peak RSS {:.1} MiB > {:.1} MiB (an ordinary host's + 4)",
        m.max_rss_mib(),
        bound as f64 / 1024.0
    );
    eprintln!(
        "kernel-side 1 GiB files: peak RSS {:.1} MiB (bound {:.1} MiB: an ordinary host's + 4)",
        m.max_rss_mib(),
        bound as f64 / 1024.0
    );
}

/// Returns this machine's kernel config as hostready should find it, read by the test itself:
/// `/boot/config-<release>`, `/lib/modules/<release>/config`, else `/proc/config.gz` through
/// `zcat`; `None` when there is none.
fn kernel_config_here() -> Option<(String, String)> {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let release = release.trim();
    for path in [
        format!("/boot/config-{release}"),
        format!("/lib/modules/{release}/config"),
    ] {
        if let Ok(text) = fs::read_to_string(&path) {
            return Some((path, text));
        }
    }
    if !Path::new("/proc/config.gz").exists() {
        return None;
    }
    let out = std::process::Command::new("zcat")
        .arg("/proc/config.gz")
        .output()
        .expect("zcat runs");
    assert!(out.status.success(), "zcat /proc/config.gz: {out:?}");
    Some((
        "/proc/config.gz".into(),
        String::from_utf8(out.stdout).unwrap(),
    ))
}

/// The value of `option` in a `.config` text as Kconfig reads it: the last assignment,
/// `not set` when absent or commented out.
fn config_value(text: &str, option: &str) -> String {
    let mut value = "not set".to_string();
    for line in text.lines() {
        if let Some(v) = line.strip_prefix(option).and_then(|r| r.strip_prefix('=')) {
            value = v.trim().to_string();
        } else if line.trim() == format!("# {option} is not set") {
            value = "not set".into();
        }
    }
    value
}

#[test]
fn kubernetes_node_kernel_config_on_this_machine() {
    let (_, json) = run_json(hostready().args(["check", "-o", "json", "-p", "kubernetes-node"]));
    assert_valid("check", &json);
    let (_, listing) = run_json(hostready().args(["profiles", "kubernetes-node", "-o", "json"]));
    assert_valid("profiles", &listing);
    let here = kernel_config_here();
    let mut seen = 0;
    for r in listing[0]["requirements"].as_array().unwrap() {
        let Some(k) = r["check"].get("kernel_config") else {
            continue;
        };
        seen += 1;
        let id = r["id"].as_str().unwrap();
        let f = finding(&json, id);
        assert_eq!(f["kind"], "kernel_config", "{f:#}");
        assert!(f.get("subject").is_none(), "{f:#}");
        let Some((source, text)) = &here else {
            assert_eq!(status(f), "unknown", "{f:#}");
            assert!(message(f).contains("/proc/config.gz"), "{f:#}");
            continue;
        };
        assert_eq!(f["evidence"]["config source"], source.as_str(), "{f:#}");
        let enabled = |o: &str| matches!(config_value(text, o).as_str(), "y" | "m");
        let mut ok = true;
        for entry in k["require"].as_array().unwrap() {
            let entry = entry.as_str().unwrap();
            let met = entry.split('|').any(enabled);
            ok &= met;
            // Each option the finding shows has the value the test read.
            for o in entry.split('|') {
                if let Some(v) = f["evidence"].get(o) {
                    assert_eq!(v, config_value(text, o).as_str(), "{o}: {f:#}");
                }
            }
            assert_eq!(
                message(f).contains(&format!("{} ", entry.split('|').next().unwrap())),
                !met,
                "{entry}: {f:#}"
            );
        }
        for o in k["forbid"].as_array().unwrap() {
            ok &= !enabled(o.as_str().unwrap());
        }
        let want = match (ok, r["level"].as_str().unwrap()) {
            (true, _) => "pass",
            (false, "required") => "fail",
            (false, _) => "warn",
        };
        assert_eq!(status(f), want, "{id}: {f:#}");
    }
    assert_eq!(
        seen, 2,
        "kernel.config and kernel.config.optional: {listing:#}"
    );
}
