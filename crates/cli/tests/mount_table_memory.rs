//! The host's mount table costs its text and no more: `hostready check` on a `mountinfo` just
//! under the 4 MiB cap, made of lines with a thousand two-byte options each (the shape that
//! costs a list of owned entries some twenty times the text), stays within the same check's
//! peak on a one-line table plus the text and 1 MiB, inside a real memory cgroup with the
//! DaemonSet's limit; and the answers are the same as on the one-line table.

// The test builds a fake host on this machine directly.
#![allow(clippy::disallowed_methods)]

use hostready_testkit::fakehost::{FakeHost, init_process};
use hostready_testkit::memcg::{self, MemCgroup, OVER_FLOOR_KIB};
use serde_json::Value;
use util::{finding, hostready};

mod util;

/// Propagation reads every kept line; the data path only complete ones.
const PROFILE: &str = "name: t\nrequirements:\n  - mount_propagation: {path: /var/lib/t}\n  - data_path: {path: /var/lib/t, forbid_options: [noexec]}\n";

/// The last line: the mount holding the data path, shared, without `noexec`.
const HOLDER: &str = "9999 22 253:9 / /var/lib/t rw,relatime shared:9 - xfs /dev/vdt rw\n";

fn check(h: &FakeHost, profile: &std::path::Path) -> memcg::Measured {
    let mut c = hostready();
    c.args(["check", "-o", "json", "-p"])
        .arg(profile)
        .arg("--root")
        .arg(&h.root)
        .arg("--proc")
        .arg(&h.proc);
    let m = MemCgroup::new(memcg::daemonset_limit()).run_command(&mut c);
    assert_eq!(m.oom_kills, 0);
    m
}

fn answers(m: &memcg::Measured) -> Vec<(String, String)> {
    let json: Value = serde_json::from_slice(&m.output.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&m.output.stderr));
    });
    ["mount.propagation", "path./var/lib/t"]
        .iter()
        .map(|id| {
            let f = finding(&json, id);
            (
                f["status"].as_str().unwrap().to_string(),
                f["evidence"]["mount"].to_string(),
            )
        })
        .collect()
}

#[test]
fn a_mount_table_at_the_cap_costs_its_text_not_its_entries() {
    let h = FakeHost::new();
    init_process(&h.proc);
    h.file("/var/lib/t/.keep", "");
    let profile = h.dir.path().join("t.yaml");
    std::fs::write(&profile, PROFILE).unwrap();
    h.proc_file(
        "/1/mountinfo",
        &format!("22 1 253:0 / / rw shared:1 - ext4 /dev/vda rw\n{HOLDER}"),
    );
    let small = check(&h, &profile);

    let options = vec!["a"; 1000].join(",");
    let mut t = String::from("22 1 253:0 / / rw shared:1 - ext4 /dev/vda rw\n");
    let mut id = 100;
    while t.len() + HOLDER.len() + 2 * options.len() + 64 < 4 << 20 {
        t.push_str(&format!(
            "{id} 22 0:{id} / /m/{id} {options} shared:{id} - tmpfs t {options}\n"
        ));
        id += 1;
    }
    t.push_str(HOLDER);
    assert!(
        t.len() > (4 << 20) - (8 << 10) && t.len() <= 4 << 20,
        "{}",
        t.len()
    );
    h.proc_file("/1/mountinfo", &t);
    let big = check(&h, &profile);

    assert_eq!(answers(&big), answers(&small));
    assert_eq!(answers(&big)[0].0, "pass", "{:?}", answers(&big));
    let text_kib = t.len() as u64 / 1024;
    let bound = small.max_rss_kib + text_kib + OVER_FLOOR_KIB;
    assert!(
        big.max_rss_kib <= bound,
        "peak RSS {} KiB on {} lines ({text_kib} KiB), bound {bound} KiB (one line: {} KiB)",
        big.max_rss_kib,
        id - 100,
        small.max_rss_kib
    );
    eprintln!(
        "mountinfo of {} bytes, {} lines of 2,000 options: peak RSS {:.1} MiB (two-line table: {:.1} MiB)",
        t.len(),
        id - 100,
        big.max_rss_mib(),
        small.max_rss_mib()
    );
}
