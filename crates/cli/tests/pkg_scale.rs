//! `hostready pkg list|query|owner` and `check -p iscsi` on large real rpm databases, run inside
//! a real memory cgroup with the DaemonSet's own limit: peak RSS stays under 16 MiB and flat
//! from 10 MB to 150 MB, and every answer equals what Debian's rpm (`bdb_ro` backend) reads
//! from the same file.
//!
//! The databases come from `hostready_testkit::rpmdb` (Berkeley DB written by `db5.3_load`
//! with rpm's `Name`/`Basenames`/`Providename` index files; NDB with the same headers), cached
//! under `target/tmp/rpmdb-scale` so repeated runs skip generation. Debian's rpm has no NDB
//! backend ("invalid %_db_backend: ndb"), so the NDB answers (through its `Index.db`) are
//! compared with rpm's reading of the Berkeley DB file that holds the very same headers.

// Tests build fake hosts and read fixtures on this machine directly.
#![allow(clippy::disallowed_methods)]

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;

use hostready_testkit::FIXTURES;
use hostready_testkit::memcg::{Measured, MemCgroup};
use hostready_testkit::rpmdb::{Format, Generated, generate};
use serde_json::Value;

/// Database sizes, MB: a small host, a typical RHEL 7/8 host, a large one.
const SIZES: [u64; 3] = [10, 50, 150];
/// Peak RSS allowed for any run (the bound), KiB.
const BOUND_KIB: u64 = 16 * 1024;
/// What `pkg list` may add to its floor: it keeps every package it prints.
const LIST_OVER_FLOOR_KIB: u64 = 4 * 1024;
/// How much more a lookup on the 150 MB database may use than on the 10 MB one: "flat" means
/// allocator noise, not a share of the file.
const FLAT_SLACK_KIB: u64 = 1024;

fn cache() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("rpmdb-scale")
}

/// Runs hostready with `args` on `root` under the DaemonSet's limit; returns the measurement
/// and the JSON report.
fn hostready(root: &Path, args: &[&str]) -> (Measured, Value) {
    let cg = MemCgroup::new(hostready_testkit::memcg::daemonset_limit());
    let mut cmd = util::hostready();
    cmd.args(args)
        .arg("--root")
        .arg(root)
        .args(["--proc", "none", "--output", "json"]);
    let m = cg.run_command(&mut cmd);
    assert_eq!(
        m.oom_kills, 0,
        "{args:?} was OOM-killed under the DaemonSet's limit"
    );
    let json: Value = serde_json::from_slice(&m.output.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: {e}: no JSON; stderr: {}",
            String::from_utf8_lossy(&m.output.stderr)
        )
    });
    (m, json)
}

/// `name-version-release.arch` of every package in a report, sorted.
fn nevras(json: &Value) -> Vec<String> {
    let mut v: Vec<String> = json["packages"]
        .as_array()
        .expect("packages array")
        .iter()
        .map(|p| {
            format!(
                "{}-{}-{}.{}",
                p["name"].as_str().unwrap_or_default(),
                p["version"].as_str().unwrap_or_default(),
                p["release"].as_str().unwrap_or_default(),
                p["arch"].as_str().unwrap_or_default()
            )
        })
        .collect();
    v.sort();
    v
}

/// What Debian's rpm, reading the Berkeley DB database of `g` with `bdb_ro`, prints for
/// `args` (sorted lines; "not installed"/"not owned" lines dropped).
fn rpm(g: &Generated, args: &[&str]) -> Vec<String> {
    let out = Command::new("rpm")
        .args(["--define", "_db_backend bdb_ro", "--root"])
        .arg(&g.root)
        .args(["--dbpath", "/var/lib/rpm"])
        .args(args)
        .output()
        .expect("Debian's rpm (scripts/setup installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut v: Vec<String> = text
        .lines()
        .filter(|l| !l.contains("is not installed") && !l.contains("not owned"))
        .map(String::from)
        .collect();
    v.sort();
    v
}

/// Peak RSS of every lookup, KiB, per database size.
#[derive(Debug, Default)]
struct Peaks {
    query: Vec<u64>,
    owner: Vec<u64>,
    missing: Vec<u64>,
    list: Vec<u64>,
    check: Vec<u64>,
}

/// Runs every lookup on `g` (answers checked against `reference`, rpm's reading of the same
/// headers) and records peak RSS.
fn measure(g: &Generated, reference: &Generated, format: Format, peaks: &mut Peaks) {
    let mib = g.db_bytes / 1_000_000;
    let pkg = g.packages[g.packages.len() / 2..]
        .iter()
        .find(|p| p.own_file.is_some())
        .expect("a package with a file of its own");
    let file = pkg.own_file.as_deref().unwrap_or_default();
    let kind = match format {
        Format::Bdb => "rpm-bdb",
        Format::Ndb => "rpm-ndb",
    };

    let (m, json) = hostready(&g.root, &["pkg", "query", &pkg.name]);
    assert_eq!(m.exit_code, Some(0), "query {}: {json:#}", pkg.name);
    assert_eq!(
        nevras(&json),
        rpm(reference, &["-q", &pkg.name]),
        "query {}",
        pkg.name
    );
    assert_eq!(json["databases"][0]["kind"], kind);
    // Answered from rpm's Name index (BDB: the Name file; NDB: Index.db), not by reading
    // every header.
    assert_eq!(json["databases"][0]["read"], "index", "{json:#}");
    assert_eq!(json["notes"].as_array().map(Vec::len), Some(0), "{json:#}");
    peaks.query.push(m.max_rss_kib);

    let (m, json) = hostready(&g.root, &["pkg", "owner", file]);
    assert_eq!(m.exit_code, Some(0), "owner {file}: {json:#}");
    assert_eq!(
        nevras(&json),
        rpm(reference, &["-qf", file]),
        "owner {file}"
    );
    assert_eq!(json["databases"][0]["read"], "index", "{json:#}");
    peaks.owner.push(m.max_rss_kib);

    // Not installed: the index names nothing, so every header is checked (streaming scan).
    let (m, json) = hostready(&g.root, &["pkg", "query", "no-such-package"]);
    assert_eq!(m.exit_code, Some(1), "{json:#}");
    assert_eq!(json["complete"], true, "{json:#}");
    assert_eq!(json["databases"][0]["read"], "scan", "{json:#}");
    assert_eq!(
        json["databases"][0]["packages"].as_u64(),
        Some(g.packages.len() as u64)
    );
    peaks.missing.push(m.max_rss_kib);

    let (m, json) = hostready(&g.root, &["pkg", "list"]);
    assert_eq!(m.exit_code, Some(0), "list");
    let listed = nevras(&json);
    assert_eq!(listed.len(), g.packages.len());
    assert_eq!(listed, rpm(reference, &["-qa"]), "list ({mib} MB {kind})");
    peaks.list.push(m.max_rss_kib);

    // `check` consults the database to explain the missing iscsiadm (the root's os-release
    // names the distribution, so the package to look up): not installed, decided by a
    // streaming scan of every header, within the same bound.
    let (m, json) = hostready(&g.root, &["check", "-p", "iscsi"]);
    assert_eq!(m.exit_code, Some(1), "check -p iscsi: {json:#}");
    let report = json.to_string();
    assert!(
        report.contains(&format!("is not installed ({kind})")),
        "check did not consult the {kind} database: {json:#}"
    );
    peaks.check.push(m.max_rss_kib);

    eprintln!(
        "{kind} {} bytes, {} packages: peak RSS KiB query {} owner {} missing {} list {} check {}",
        g.db_bytes,
        g.packages.len(),
        peaks.query.last().unwrap_or(&0),
        peaks.owner.last().unwrap_or(&0),
        peaks.missing.last().unwrap_or(&0),
        peaks.list.last().unwrap_or(&0),
        peaks.check.last().unwrap_or(&0),
    );
}

/// The same command's peak on an empty root (no database): the floor the bound is over.
fn floor_kib(args: &[&str]) -> u64 {
    let empty = tempfile::tempdir().unwrap();
    hostready(empty.path(), args).0.max_rss_kib
}

fn assert_bounded(peaks: &Peaks, kind: &str) {
    for (what, v, args) in [
        ("query", &peaks.query, &["pkg", "query", "bash"][..]),
        ("owner", &peaks.owner, &["pkg", "owner", "/usr/bin/bash"]),
        (
            "query (missing)",
            &peaks.missing,
            &["pkg", "query", "no-such-package"],
        ),
        ("list", &peaks.list, &["pkg", "list"]),
        ("check -p iscsi", &peaks.check, &["check", "-p", "iscsi"]),
    ] {
        let floor = floor_kib(args);
        let mut bound = hostready_testkit::memcg::bound_kib(floor, BOUND_KIB);
        if what == "list" {
            // list holds every package's name, version, release and arch to print them, in
            // order (3,903 on 150 MB: ~2 MiB over its floor); only the lookups are flat.
            bound = bound.max(floor + LIST_OVER_FLOOR_KIB);
        }
        for (kib, mb) in v.iter().zip(SIZES) {
            assert!(
                *kib <= bound,
                "{kind} {what} on {mb} MB peaked at {kib} KiB, over {bound} KiB (empty root: {floor} KiB)"
            );
        }
    }
    // Lookups must not grow with the database (list holds every package, so it may grow with
    // their number, within the bound above).
    for (what, v) in [
        ("query", &peaks.query),
        ("owner", &peaks.owner),
        ("query (missing)", &peaks.missing),
        ("check -p iscsi", &peaks.check),
    ] {
        let (small, large) = (v[0], v[v.len() - 1]);
        assert!(
            large <= small + FLAT_SLACK_KIB,
            "{kind} {what}: {small} KiB at {} MB but {large} KiB at {} MB: not flat",
            SIZES[0],
            SIZES[SIZES.len() - 1]
        );
    }
}

#[test]
fn bdb_lookups_stay_small_and_flat_and_agree_with_rpm() {
    let mut peaks = Peaks::default();
    for mb in SIZES {
        let g = generate(&cache(), Format::Bdb, mb, Path::new(FIXTURES));
        assert!(g.db_bytes >= mb * 1_000_000, "{} bytes", g.db_bytes);
        measure(&g, &g, Format::Bdb, &mut peaks);
    }
    assert_bounded(&peaks, "rpm-bdb");
}

#[test]
fn ndb_lookups_stay_small_and_flat_and_agree_with_rpm() {
    let mut peaks = Peaks::default();
    for mb in SIZES {
        let g = generate(&cache(), Format::Ndb, mb, Path::new(FIXTURES));
        assert!(g.db_bytes >= mb * 1_000_000, "{} bytes", g.db_bytes);
        // The same headers in a Berkeley DB file, which Debian's rpm can read.
        let reference = generate(&cache(), Format::Bdb, mb, Path::new(FIXTURES));
        assert_eq!(reference.packages, g.packages);
        measure(&g, &reference, Format::Ndb, &mut peaks);
    }
    assert_bounded(&peaks, "rpm-ndb");
}

/// Copies the 10 MB Berkeley DB root into a temporary directory that a test may damage.
fn damageable_bdb() -> (tempfile::TempDir, Generated) {
    let g = generate(&cache(), Format::Bdb, 10, Path::new(FIXTURES));
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("var/lib/rpm");
    std::fs::create_dir_all(&db).expect("mkdir");
    for f in ["Packages", "Name", "Basenames", "Providename"] {
        std::fs::copy(g.db_dir.join(f), db.join(f)).expect("copy database");
    }
    let copy = Generated {
        root: tmp.path().to_path_buf(),
        db_dir: db,
        ..g
    };
    (tmp, copy)
}

#[test]
fn bdb_without_index_files_answers_by_streaming_scan() {
    let (_tmp, g) = damageable_bdb();
    for f in ["Name", "Basenames", "Providename"] {
        std::fs::remove_file(g.db_dir.join(f)).expect("remove index");
    }
    let pkg = &g.packages[g.packages.len() / 2];
    let (m, json) = hostready(&g.root, &["pkg", "query", &pkg.name]);
    assert_eq!(m.exit_code, Some(0), "{json:#}");
    assert_eq!(nevras(&json), std::slice::from_ref(&pkg.nevra));
    assert_eq!(json["databases"][0]["read"], "scan", "{json:#}");
    assert_eq!(json["notes"].as_array().map(Vec::len), Some(0), "{json:#}");
}

#[test]
fn bdb_name_index_pointing_at_another_record_is_corrupt_never_absent() {
    let (_tmp, g) = damageable_bdb();
    let (a, b) = (&g.packages[10], &g.packages[20]);
    // Name says `a` is record 21 (b's): the header there has another name.
    let mut value = 21u32.to_le_bytes().to_vec();
    value.extend_from_slice(&0u32.to_le_bytes());
    let name = g.db_dir.join("Name");
    std::fs::remove_file(&name).expect("remove Name");
    hostready_testkit::rpmdb::db_load(&name, std::iter::once((a.name.clone().into_bytes(), value)));
    // As for SQLite (issue 10): the index contradicts the records, so neither "installed" nor
    // "not installed" can be trusted: corrupt, exit 2.
    let (m, json) = hostready(&g.root, &["pkg", "query", &a.name]);
    assert_eq!(m.exit_code, Some(2), "{json:#}");
    assert_eq!(json["answer"], "unknown", "{json:#}");
    assert_eq!(json["databases"][0]["status"], "corrupt", "{json:#}");
    let text = json.to_string();
    // Whichever contradiction is met first: record 21 named for another name, or record 11
    // (found through Providename) missing from Name.
    assert!(
        text.contains("Name index names record 21") || text.contains("Name index lacks record 11"),
        "{json:#}"
    );
    assert_ne!(a.name, b.name);
}

#[test]
fn bdb_zeroed_packages_page_is_corrupt_never_absent() {
    let (_tmp, g) = damageable_bdb();
    let packages = g.db_dir.join("Packages");
    let mut bytes = std::fs::read(&packages).expect("read Packages");
    // A page in the middle of the file: a bucket or overflow page every walk must reach.
    let page = bytes.len() / 4096 / 2;
    bytes[page * 4096..(page + 1) * 4096].fill(0);
    std::fs::write(&packages, bytes).expect("write Packages");
    let (m, json) = hostready(&g.root, &["pkg", "query", "no-such-package"]);
    assert_eq!(m.exit_code, Some(2), "{json:#}");
    assert_eq!(json["answer"], "unknown");
    assert_eq!(json["databases"][0]["status"], "corrupt", "{json:#}");
}
