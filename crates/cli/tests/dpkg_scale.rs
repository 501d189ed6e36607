//! dpkg at scale: `hostready pkg list|query|owner` and `hostready check -p iscsi` on dpkg
//! databases of 10 MB and 50 MB (this machine's own `status` stanzas repeated under new names,
//! with a file list per package), each run inside a real cgroup-v1 memory cgroup with the
//! DaemonSet's own limit (read from `deploy/manifests/daemonset.yaml`). Lookups must peak at
//! 16 MiB RSS or less (the check: at most 1 MiB above the same check on this machine's own
//! status, its floor being the binary's and the profiles') and not grow with the database;
//! every answer must equal what `dpkg-query --admindir` reads from the same directory.

// Tests build fake hosts and read fixtures on this machine directly.
#![allow(clippy::disallowed_methods)]

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use hostready_testkit::memcg::{Measured, MemCgroup};
use serde_json::Value;

/// The limit `pkg list` runs under: listing a 50 MB status peaks at ~37 MiB (every package
/// is printed), above the DaemonSet's limit — the agent never lists; the lookups run under
/// the DaemonSet's own limit.
const LIST_LIMIT: u64 = 48 << 20;
/// The most a lookup may peak at, in KiB.
const LOOKUP_MAX_KIB: u64 = 16 << 10;
/// How much a lookup's peak may grow from the 10 MB to the 50 MB database, in KiB: "flat"
/// with room for allocator noise.
const FLAT_KIB: u64 = 1 << 10;

/// A generated dpkg root.
struct Big {
    dir: tempfile::TempDir,
    status_bytes: u64,
    stanzas: usize,
    /// A package from the middle of the file, and the file only it owns.
    mid: String,
    mid_file: String,
}

impl Big {
    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn admin(&self) -> PathBuf {
        self.root().join("var/lib/dpkg")
    }
}

/// Returns the value of `field` in a stanza, if it has one on a line of its own.
fn field<'a>(stanza: &'a str, field: &str) -> Option<&'a str> {
    stanza.lines().find_map(|l| {
        l.strip_prefix(field)
            .and_then(|r| r.strip_prefix(':'))
            .map(str::trim)
    })
}

/// Builds a dpkg root whose `status` is at least `target` bytes: copy 0 of this machine's
/// stanzas keeps their names, copy N renames each package `NAME-hrN`. Every package that is
/// not `not-installed` gets a list naming `/usr/share/hr/N/NAME` (as `NAME:ARCH.list` for
/// `Multi-Arch: same`, as dpkg names them). One `open-iscsi` stanza at the end makes `check`
/// read the whole file to explain a missing `iscsiadm`. Deterministic for a given machine.
fn build(target: u64) -> Big {
    let template = fs::read_to_string("/var/lib/dpkg/status").expect("a Debian test machine");
    let stanzas: Vec<&str> = template
        .split("\n\n")
        .map(str::trim)
        .filter(|s| !s.is_empty() && field(s, "Package") != Some("open-iscsi"))
        .collect();
    assert!(
        stanzas.len() > 100,
        "this machine's dpkg status is too small"
    );
    let dir = tempfile::tempdir().unwrap();
    let admin = dir.path().join("var/lib/dpkg");
    fs::create_dir_all(admin.join("info")).unwrap();
    fs::create_dir_all(admin.join("updates")).unwrap();
    fs::write(admin.join("available"), "").unwrap();
    // The multi-arch layout of info/ (`pkg:arch.list`), as on every dpkg since 1.16.
    fs::write(admin.join("info/format"), "1\n").unwrap();
    fs::create_dir_all(dir.path().join("etc")).unwrap();
    fs::write(
        dir.path().join("etc/os-release"),
        "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
    )
    .unwrap();
    let mut out = BufWriter::new(File::create(admin.join("status")).unwrap());
    let (mut written, mut count, mut copy) = (0u64, 0, 0);
    let mut names = Vec::new();
    while written < target {
        for s in &stanzas {
            let name = field(s, "Package").unwrap();
            let new = if copy == 0 {
                name.to_string()
            } else {
                format!("{name}-hr{copy}")
            };
            let (_, rest) = s.split_once('\n').unwrap();
            let text = format!("Package: {new}\n{rest}\n\n");
            out.write_all(text.as_bytes()).unwrap();
            written += text.len() as u64;
            count += 1;
            if field(s, "Status").is_some_and(|st| st.ends_with("not-installed")) {
                continue;
            }
            let arch = field(s, "Architecture").unwrap_or("");
            let list = if field(s, "Multi-Arch") == Some("same") {
                format!("{new}:{arch}.list")
            } else {
                format!("{new}.list")
            };
            fs::write(
                admin.join("info").join(list),
                format!("/.\n/usr\n/usr/share\n/usr/share/hr/{copy}\n/usr/share/hr/{copy}/{new}\n"),
            )
            .unwrap();
            names.push((new, copy));
        }
        copy += 1;
    }
    let iscsi = "Package: open-iscsi\nStatus: install ok installed\nPriority: optional\n\
Section: net\nInstalled-Size: 1100\nMaintainer: Debian iSCSI Maintainers <x@example.org>\n\
Architecture: amd64\nVersion: 2.1.8-1\nDescription: iSCSI initiator tools\n";
    out.write_all(iscsi.as_bytes()).unwrap();
    out.flush().unwrap();
    fs::write(
        admin.join("info/open-iscsi.list"),
        "/.\n/usr\n/usr/sbin\n/usr/sbin/iscsiadm\n",
    )
    .unwrap();
    let (mid, mid_copy) = names[names.len() / 2].clone();
    Big {
        status_bytes: written + iscsi.len() as u64,
        stanzas: count + 1,
        mid_file: format!("/usr/share/hr/{mid_copy}/{mid}"),
        mid,
        dir,
    }
}

fn hostready(big: &Big, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hostready"));
    c.args(args)
        .arg("--root")
        .arg(big.root())
        .args(["--proc", "none"]);
    c
}

fn dpkg_query(big: &Big, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new("dpkg-query")
        .arg("--admindir")
        .arg(big.admin())
        .args(args)
        .output()
        .expect("dpkg-query (a Debian test machine)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        eprintln!(
            "dpkg-query {args:?}: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (out.status.code(), text)
}

fn json(m: &Measured) -> Value {
    serde_json::from_slice(&m.output.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {m:?}\nstderr: {}",
            String::from_utf8_lossy(&m.output.stderr)
        )
    })
}

/// Peak RSS of each lookup, in KiB: query, owner, check.
fn lookups(big: &Big, cg: &MemCgroup) -> [u64; 3] {
    // query: the state and version dpkg-query -s prints.
    let m = cg.run_command(&mut hostready(
        big,
        &["pkg", "query", &big.mid, "--output", "json"],
    ));
    assert_eq!((m.exit_code, m.oom_kills), (Some(0), 0), "{m:?}");
    let v = json(&m);
    let p = &v["packages"][0];
    let (code, text) = dpkg_query(big, &["-s", &big.mid]);
    assert_eq!(code, Some(0));
    assert_eq!(field(&text, "Status"), p["state"].as_str(), "{text}");
    assert_eq!(field(&text, "Version"), p["evr"].as_str(), "{text}");
    assert_eq!(v["databases"][0]["packages"], big.stanzas, "{v:#}");
    let query = m.max_rss_kib;

    // owner: the same packages dpkg-query -S names.
    let m = cg.run_command(&mut hostready(
        big,
        &["pkg", "owner", &big.mid_file, "--output", "json"],
    ));
    assert_eq!((m.exit_code, m.oom_kills), (Some(0), 0), "{m:?}");
    let v = json(&m);
    let ours: Vec<&str> = v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    let (code, text) = dpkg_query(big, &["-S", &big.mid_file]);
    assert_eq!(code, Some(0));
    let theirs: Vec<&str> = text
        .lines()
        .flat_map(|l| l.rsplit_once(": ").unwrap().0.split(", "))
        .map(|n| n.split(':').next().unwrap())
        .collect();
    assert_eq!(ours, theirs);
    let owner = m.max_rss_kib;

    // check: iscsiadm is missing, and the database (read to the end) says open-iscsi is
    // recorded as installed, as dpkg-query does.
    let m = cg.run_command(&mut hostready(big, &["check", "-p", "iscsi", "-o", "json"]));
    assert_eq!(m.oom_kills, 0, "{m:?}");
    assert_eq!(m.exit_code, Some(1), "{m:?}");
    let v = json(&m);
    let text = v.to_string();
    assert!(
        text.contains("open-iscsi 2.1.8-1 is recorded as installed (dpkg)"),
        "{v:#}"
    );
    let (code, _) = dpkg_query(big, &["-s", "open-iscsi"]);
    assert_eq!(code, Some(0));
    [query, owner, m.max_rss_kib]
}

/// `pkg list`: every record dpkg-query -W shows; its peak RSS in KiB.
fn list(big: &Big, cg: &MemCgroup) -> u64 {
    let m = cg.run_command(&mut hostready(big, &["pkg", "list", "--output", "json"]));
    assert_eq!((m.exit_code, m.oom_kills), (Some(0), 0), "{m:?}");
    let v = json(&m);
    let mut ours: Vec<String> = v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| !p["state"].as_str().unwrap().ends_with("not-installed"))
        .map(|p| {
            format!(
                "{} {} {} {}",
                p["name"].as_str().unwrap(),
                p["evr"].as_str().unwrap(),
                p["arch"].as_str().unwrap(),
                p["state"].as_str().unwrap()
            )
        })
        .collect();
    ours.sort();
    let (code, text) = dpkg_query(
        big,
        &[
            "-W",
            "-f",
            "${Package} ${Version} ${Architecture} ${Status}\\n",
        ],
    );
    assert_eq!(code, Some(0));
    let mut theirs: Vec<String> = text
        .lines()
        .filter(|l| !l.ends_with("not-installed"))
        .map(str::to_string)
        .collect();
    theirs.sort();
    assert_eq!(ours.len(), theirs.len());
    assert!(ours == theirs, "pkg list differs from dpkg-query -W");
    m.max_rss_kib
}

#[test]
fn dpkg_lookups_stay_small_and_flat_as_status_grows() {
    // The check's own floor: the same check on one copy of this machine's status. Its peak is
    // the binary's and the built-in profiles', which grow with the code (16.4 MiB in a debug
    // build once issue 13's profiles landed); what the database may add is FLAT_KIB.
    let tiny = build(1);
    let check_floor = lookups(
        &tiny,
        &MemCgroup::new(hostready_testkit::memcg::daemonset_limit()),
    )[2];
    let mut rows = Vec::new();
    for mb in [10, 50] {
        let big = build(mb << 20);
        if std::env::var_os("KEEP").is_some() {
            eprintln!("{}", big.root().display());
            std::mem::forget(big);
            continue;
        }
        let cg = MemCgroup::new(hostready_testkit::memcg::daemonset_limit());
        let [query, owner, check] = lookups(&big, &cg);
        let list = list(&big, &MemCgroup::new(LIST_LIMIT));
        eprintln!(
            "status {} bytes, {} stanzas: peak RSS KiB query {query}, owner {owner}, \
             check {check}, list {list}",
            big.status_bytes, big.stanzas
        );
        for (what, kib) in [("query", query), ("owner", owner)] {
            assert!(kib <= LOOKUP_MAX_KIB, "{what} at {mb} MB: {kib} KiB");
        }
        assert!(
            check <= check_floor.max(LOOKUP_MAX_KIB) + FLAT_KIB,
            "check at {mb} MB: {check} KiB (on this machine's own status: {check_floor} KiB)"
        );
        rows.push(([query, owner, check], list, big.stanzas));
    }
    let (small, large) = (&rows[0], &rows[1]);
    for (i, what) in ["query", "owner", "check"].iter().enumerate() {
        assert!(
            large.0[i] <= small.0[i] + FLAT_KIB,
            "{what} grew from {} KiB to {} KiB",
            small.0[i],
            large.0[i]
        );
    }
    // A listing holds one record per stanza (the answer it prints): its growth per extra
    // stanza stays within a small record's size.
    let per_stanza = (large.1.saturating_sub(small.1)) * 1024 / (large.2 - small.2) as u64;
    assert!(
        per_stanza <= 1024,
        "list grows {per_stanza} bytes per stanza"
    );
}
