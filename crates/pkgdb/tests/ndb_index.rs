//! NDB lookups through `Index.db`: `query` and `owner` answer from the index (read `index`)
//! with the same packages a full scan finds, and fall back to the scan, with a note saying
//! which, when the index is missing, stale, damaged, or contradicts `Packages.db`.
//!
//! The databases come from `hostready_testkit::rpmdb` (real SLE 15 and RHEL 8 headers renamed
//! into distinct packages, an `Index.db` in rpm's layout); each test damages its own copy.
//! Debian's rpm cannot read NDB ("invalid %_db_backend: ndb"): `crates/cli/tests/pkg_scale.rs`
//! compares these answers with rpm's reading of a Berkeley DB holding the same headers.

// Tests build fake hosts and read generated databases on this machine directly.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};

use hostready_host::Root;
use hostready_pkgdb::{Answer, Scope, owner_with_proc, query_with_proc};
use hostready_testkit::FIXTURES;
use hostready_testkit::ndb_index::{entries, index_db};
use hostready_testkit::rpmdb::{Format, Generated, generate};

const DB: &str = "usr/lib/sysimage/rpm";

/// A copy of the generated 10 MB NDB root (Packages.db and Index.db) that a test may damage.
fn copy() -> (tempfile::TempDir, Generated) {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rpmdb-scale");
    let g = generate(&cache, Format::Ndb, 10, Path::new(FIXTURES));
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join(DB);
    std::fs::create_dir_all(&db).expect("mkdir");
    for f in ["Packages.db", "Index.db"] {
        std::fs::copy(g.db_dir.join(f), db.join(f)).expect("copy database");
    }
    let copy = Generated {
        root: tmp.path().to_path_buf(),
        db_dir: db,
        ..g
    };
    (tmp, copy)
}

fn index_path(g: &Generated) -> PathBuf {
    g.db_dir.join("Index.db")
}

/// Packages.db's records as the full scan reads them: (offset, header blob).
fn records(g: &Generated) -> Vec<(u64, Vec<u8>)> {
    hostready_pkgdb::parse_ndb(&std::fs::read(g.db_dir.join("Packages.db")).unwrap()).unwrap()
}

fn blobs(g: &Generated) -> Vec<Vec<u8>> {
    records(g).into_iter().map(|(_, b)| b).collect()
}

/// Whether the header `blob` is the package `name` (its Name tag, 1000).
fn is_named(blob: &[u8], name: &str) -> bool {
    hostready_pkgdb::Header::parse(blob)
        .unwrap()
        .string(1000)
        .unwrap()
        .as_deref()
        == Some(name)
}

/// The package number (the index's key: a 1-based position in Packages.db) of `name`.
fn package_number(blobs: &[Vec<u8>], name: &str) -> u32 {
    blobs.iter().position(|b| is_named(b, name)).unwrap() as u32 + 1
}

fn query(g: &Generated, name: &str) -> Answer {
    query_with_proc(&Root::open(&g.root).unwrap(), None, name)
}

fn owner(g: &Generated, path: &str) -> Answer {
    owner_with_proc(&Root::open(&g.root).unwrap(), None, path)
}

fn nevras(a: &Answer) -> Vec<String> {
    let mut v: Vec<String> = a
        .lookup
        .packages
        .iter()
        .map(|p| format!("{}-{}.{}", p.name, p.evr, p.arch))
        .collect();
    v.sort();
    v
}

fn scope(a: &Answer) -> Scope {
    a.dbs[0].scope
}

fn notes(a: &Answer) -> String {
    a.lookup
        .notes
        .iter()
        .map(|n| format!("{}: {}", n.file.display(), n.message))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `a` came from the full scan, found exactly `nevra`, and has a note containing `note`.
fn assert_scanned_with_note(a: &Answer, nevra: &str, note: &str) {
    assert!(
        matches!(scope(a), Scope::Scan { .. }),
        "{:?}",
        a.dbs[0].scope
    );
    assert_eq!(nevras(a), vec![nevra.to_string()]);
    assert!(notes(a).contains(note), "{}", notes(a));
}

/// A package past the middle with a file of its own, and that file.
fn sample(g: &Generated) -> (String, String, String) {
    let p = g.packages[g.packages.len() / 2..]
        .iter()
        .find(|p| p.own_file.is_some())
        .expect("a package with a file of its own");
    (
        p.name.clone(),
        p.nevra.clone(),
        p.own_file.clone().unwrap_or_default(),
    )
}

#[test]
fn query_and_owner_answer_from_index_db_as_a_full_scan_does() {
    let (_tmp, g) = copy();
    let (name, nevra, file) = sample(&g);
    let q = query(&g, &name);
    assert_eq!(scope(&q), Scope::Index, "{:?}", q.dbs[0]);
    assert_eq!(nevras(&q), vec![nevra.clone()]);
    assert!(
        q.lookup.complete && q.lookup.notes.is_empty(),
        "{}",
        notes(&q)
    );
    let o = owner(&g, &file);
    assert_eq!(scope(&o), Scope::Index, "{:?}", o.dbs[0]);
    assert_eq!(nevras(&o), vec![nevra.clone()]);
    // The very same answers, files included, from every header.
    std::fs::remove_file(index_path(&g)).unwrap();
    let (qs, os) = (query(&g, &name), owner(&g, &file));
    assert!(matches!(scope(&qs), Scope::Scan { .. }));
    assert_eq!(
        format!("{:?}", qs.lookup.packages),
        format!("{:?}", q.lookup.packages)
    );
    assert_eq!(
        format!("{:?}", os.lookup.packages),
        format!("{:?}", o.lookup.packages)
    );
}

#[test]
fn every_package_is_found_through_the_index_by_name_and_by_its_own_file() {
    let (_tmp, g) = copy();
    for p in g.packages.iter().step_by(7) {
        let q = query(&g, &p.name);
        assert_eq!(scope(&q), Scope::Index, "{}", p.name);
        assert_eq!(nevras(&q), vec![p.nevra.clone()], "{}", p.name);
        if let Some(f) = &p.own_file {
            let o = owner(&g, f);
            assert_eq!(scope(&o), Scope::Index, "{f}");
            assert_eq!(nevras(&o), vec![p.nevra.clone()], "{f}");
        }
    }
}

#[test]
fn a_missing_index_db_is_a_scan_with_a_note() {
    let (_tmp, g) = copy();
    let (name, nevra, _) = sample(&g);
    std::fs::remove_file(index_path(&g)).unwrap();
    let q = query(&g, &name);
    assert_scanned_with_note(&q, &nevra, "Index.db is missing");
    assert!(q.lookup.complete);
}

#[test]
fn a_stale_index_db_is_not_read_and_says_so() {
    let (_tmp, g) = copy();
    let (name, nevra, file) = sample(&g);
    // The container's user generation: the Packages.db generation it was synced to.
    let mut b = std::fs::read(index_path(&g)).unwrap();
    b[20..24].copy_from_slice(&7u32.to_le_bytes());
    std::fs::write(index_path(&g), &b).unwrap();
    for a in [query(&g, &name), owner(&g, &file)] {
        assert_scanned_with_note(
            &a,
            &nevra,
            "is stale (built for Packages.db generation 7, which is now at 1)",
        );
    }
}

#[test]
fn a_damaged_index_db_is_a_scan_with_a_note_never_a_wrong_answer() {
    let (_tmp, g) = copy();
    let (name, nevra, _) = sample(&g);
    let mut b = std::fs::read(index_path(&g)).unwrap();
    // The first index blob (Name) starts at page 1: its "RpmI" magic.
    b[4096..4100].copy_from_slice(b"\0\0\0\0");
    std::fs::write(index_path(&g), &b).unwrap();
    assert_scanned_with_note(&query(&g, &name), &nevra, "Index.db is damaged");
    // Slot pages overwritten: the container itself.
    b[4096..4100].copy_from_slice(b"RpmI");
    b[48..52].copy_from_slice(b"XXXX");
    std::fs::write(index_path(&g), &b).unwrap();
    assert!(notes(&query(&g, &name)).contains("slot without"));
}

#[test]
fn an_index_that_lost_a_package_still_finds_it_and_says_the_index_is_damaged() {
    let (_tmp, g) = copy();
    let (name, nevra, file) = sample(&g);
    let blobs = blobs(&g);
    let lost = package_number(&blobs, &name);
    let kept: Vec<_> = entries(&blobs)
        .into_iter()
        .filter(|e| e.2 != lost)
        .collect();
    std::fs::write(index_path(&g), index_db(&kept, 1)).unwrap();
    for a in [query(&g, &name), owner(&g, &file)] {
        assert_scanned_with_note(&a, &nevra, "does not list");
    }
    // Only its Name entry lost: Providename still lists it, a contradiction caught without
    // a scan of every header being needed to notice.
    let kept: Vec<_> = entries(&blobs)
        .into_iter()
        .filter(|e| !(e.0 == 1000 && e.2 == lost))
        .collect();
    std::fs::write(index_path(&g), index_db(&kept, 1)).unwrap();
    let q = query(&g, &name);
    assert_eq!(nevras(&q), vec![nevra]);
    assert!(
        notes(&q).contains("disagrees with Packages.db"),
        "{}",
        notes(&q)
    );
}

#[test]
fn an_index_naming_the_wrong_package_is_caught() {
    let (_tmp, g) = copy();
    let (name, nevra, _) = sample(&g);
    let blobs = blobs(&g);
    // Every Name entry points at the next package.
    let n = blobs.len() as u32;
    let shifted: Vec<_> = entries(&blobs)
        .into_iter()
        .map(|mut e| {
            if e.0 == 1000 {
                e.2 = e.2 % n + 1;
            }
            e
        })
        .collect();
    std::fs::write(index_path(&g), index_db(&shifted, 1)).unwrap();
    assert_scanned_with_note(&query(&g, &name), &nevra, "disagrees with Packages.db");
}

#[test]
fn not_installed_is_decided_by_every_header_even_with_an_index() {
    let (_tmp, g) = copy();
    let q = query(&g, "no-such-package");
    assert!(q.lookup.packages.is_empty());
    assert_eq!(
        scope(&q),
        Scope::Scan {
            records: g.packages.len()
        }
    );
    assert!(
        q.lookup.complete && q.lookup.notes.is_empty(),
        "{}",
        notes(&q)
    );
}

#[test]
fn damage_in_packages_db_stays_corrupt_whatever_the_index_says() {
    let (_tmp, g) = copy();
    let (name, _, _) = sample(&g);
    let at = records(&g)
        .into_iter()
        .find(|(_, b)| is_named(b, &name))
        .unwrap()
        .0;
    let mut b = std::fs::read(g.db_dir.join("Packages.db")).unwrap();
    // A byte of the blob: its checksum no longer matches.
    b[at as usize + 40] ^= 0xff;
    std::fs::write(g.db_dir.join("Packages.db"), &b).unwrap();
    let q = query(&g, &name);
    assert!(q.lookup.packages.is_empty());
    assert!(!q.lookup.complete);
    let e = q.dbs[0].contents.as_ref().unwrap_err();
    assert!(e.is_corrupt() && e.to_string().contains("checksum"), "{e}");
}

#[test]
fn the_in_memory_lookup_finds_each_key_and_checks_the_generation() {
    let (_tmp, g) = copy();
    let blobs = blobs(&g);
    let index = std::fs::read(index_path(&g)).unwrap();
    let (name, _, _) = sample(&g);
    let pkg = package_number(&blobs, &name);
    assert_eq!(
        hostready_pkgdb::lookup_ndb_index(&index, 1, 1000, name.as_bytes()).unwrap(),
        vec![(pkg, 0)]
    );
    assert!(
        hostready_pkgdb::lookup_ndb_index(&index, 1, 1000, b"no-such-package")
            .unwrap()
            .is_empty()
    );
    let e = hostready_pkgdb::lookup_ndb_index(&index, 2, 1000, name.as_bytes()).unwrap_err();
    assert!(e.what.contains("stale"), "{e}");
    // Truncated anywhere: an error naming where, never a panic.
    for cut in [0, 31, 4095, 4200, index.len() / 2] {
        assert!(
            hostready_pkgdb::lookup_ndb_index(&index[..cut], 1, 1000, name.as_bytes()).is_err()
        );
    }
}
