//! Damage is not absence: a header with one byte changed fails its `SHA256HEADER` /
//! `SHA1HEADER` digest, in every format (BDB, NDB, SQLite go through one header parser), and
//! is reported as corrupt with the file and record, never as "not installed". For BDB and
//! SQLite, Debian's own rpm reads the same modified copy and computes the very same digests.
//!
//! The fixtures are read in place and copied into temp roots before any byte is changed.

// Tests build fake hosts and read fixtures on this machine directly.
#![allow(clippy::disallowed_methods)]

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;

use hostready_host::Root;
use hostready_pkgdb::{DbKind, open_host_databases, open_rpm_file, query_with_proc};
use hostready_testkit::FIXTURES;
use hostready_testkit::fakehost::rpmdb_root as root_with;

/// Returns the offset of the only occurrence of `needle` in `hay`.
fn only(hay: &[u8], needle: &[u8]) -> usize {
    let hits: Vec<usize> = hay
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "{:?} found at {hits:?}",
        String::from_utf8_lossy(needle)
    );
    hits[0]
}

/// Asserts that asking for `name` in the root is a corrupt answer naming the digest, and
/// returns the error text of the database.
fn assert_digest_bad(dir: &Path, file: &str, kind: DbKind, name: &str) -> String {
    let root = Root::open(dir).unwrap();
    let path = Path::new("/var/lib/rpm").join(file);
    // The full read of the file.
    let d = open_rpm_file(&root, &path, kind, &[]);
    let err = d
        .contents
        .as_ref()
        .expect_err("a full read of a damaged header");
    assert!(err.is_corrupt(), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("header digest BAD"), "{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    // The lookup of one name: never "not installed".
    let answer = query_with_proc(&root, None, name);
    assert!(!answer.lookup.installed(), "{name}");
    assert!(
        !answer.lookup.complete,
        "{name}: a damaged header is not absence"
    );
    let unreadable = answer.lookup.unreadable.join("\n");
    assert!(unreadable.contains("header digest BAD"), "{unreadable}");
    assert!(unreadable.contains("corrupt: "), "{unreadable}");
    // The list of everything says the same.
    let all = open_host_databases(&root).list();
    assert!(!all.unreadable.is_empty() && !all.complete);
    eprintln!("{msg}");
    msg
}

/// Runs Debian's rpm on the database directory and returns what it says about digests:
/// `(expected, computed)` of its "Header SHA256 digest: BAD (Expected A != B)" line.
fn rpm_says(dbdir: &Path, backend: &str, args: &[&str]) -> (String, String) {
    let out = Command::new("rpm")
        .arg("--dbpath")
        .arg(dbdir)
        .args(["--define", &format!("_db_backend {backend}")])
        .args(args)
        .output()
        .expect("rpm (scripts/setup installs the rpm package)");
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.starts_with("Header SHA256 digest: BAD (Expected "))
        .unwrap_or_else(|| panic!("rpm did not report a bad SHA256 digest:\n{err}"));
    let rest = line
        .trim_start_matches("Header SHA256 digest: BAD (Expected ")
        .trim_end_matches(')');
    let (expected, computed) = rest.split_once(" != ").unwrap();
    (expected.to_string(), computed.to_string())
}

#[test]
fn bdb_header_with_one_byte_changed_is_corrupt_as_rpm_says() {
    let mut bytes = std::fs::read(Path::new(FIXTURES).join("libuuid-bdb/Packages")).unwrap();
    // The NAME string of the only header: "libuuid" becomes "mibuuid", so a parser that
    // trusted the bytes would answer "libuuid is not installed".
    let at = only(&bytes, b"libuuid\x002.32.1\x00");
    bytes[at] ^= 0x01;
    let dir = root_with("Packages", &bytes);
    let msg = assert_digest_bad(dir.path(), "Packages", DbKind::RpmBdb, "libuuid");
    assert!(msg.contains("record at byte"), "{msg}");
    let (expected, computed) = rpm_says(&dir.path().join("var/lib/rpm"), "bdb_ro", &["-qa"]);
    assert!(
        msg.contains(&format!(
            "SHA256 header digest BAD: stored {expected}, computed {computed}"
        )),
        "rpm: expected {expected} != {computed}; hostready: {msg}"
    );
}

#[test]
fn bdb_fixture_digests_verify() {
    // The unmodified fixture carries both digests and they match (rpm agrees: no BAD line).
    let root = Root::open(Path::new(FIXTURES).join("libuuid-bdb").parent().unwrap()).unwrap();
    let d = open_rpm_file(
        &root,
        Path::new("/libuuid-bdb/Packages"),
        DbKind::RpmBdb,
        &[],
    );
    let pkgs = d.contents.unwrap();
    assert_eq!(pkgs.len(), 1);
    let out = Command::new("rpm")
        .args(["--dbpath", &format!("{FIXTURES}/libuuid-bdb")])
        .args(["--define", "_db_backend bdb_ro", "-qa"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("BAD"));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("libuuid-2.32.1"));
}

/// Changes one byte of the NAME string of `name`'s header inside a copy of a SQLite rpmdb,
/// leaving the index tables as they are; returns the copy's root.
fn sqlite_with_damaged_name(src: &Path, name: &str) -> tempfile::TempDir {
    let dir = root_with("rpmdb.sqlite", &std::fs::read(src).unwrap());
    let db = dir.path().join("var/lib/rpm/rpmdb.sqlite");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let (hnum, mut blob): (i64, Vec<u8>) = conn
        .query_row(
            "SELECT Packages.hnum, blob FROM Packages JOIN Name ON Name.hnum = Packages.hnum \
             WHERE Name.key = ?1",
            [name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let il = u32::from_be_bytes(blob[..4].try_into().unwrap()) as usize;
    let data = 8 + il * 16;
    let mut needle = name.as_bytes().to_vec();
    needle.push(0);
    let at = data
        + blob[data..]
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap();
    blob[at] ^= 0x01;
    conn.execute(
        "UPDATE Packages SET blob = ?1 WHERE hnum = ?2",
        rusqlite::params![blob, hnum],
    )
    .unwrap();
    drop(conn);
    dir
}

#[test]
fn sqlite_header_with_one_byte_changed_is_corrupt_as_rpm_says() {
    let src = Path::new(FIXTURES).join("cbl-mariner-2.0-sqlite/rpmdb.sqlite");
    let dir = sqlite_with_damaged_name(&src, "curl");
    let msg = assert_digest_bad(dir.path(), "rpmdb.sqlite", DbKind::RpmSqlite, "curl");
    assert!(msg.contains("row hnum="), "{msg}");
    let (expected, computed) = rpm_says(&dir.path().join("var/lib/rpm"), "sqlite", &["-qa"]);
    assert!(
        msg.contains(&format!("stored {expected}, computed {computed}")),
        "rpm: expected {expected} != {computed}; hostready: {msg}"
    );
}

#[test]
fn sqlite_written_by_rpm_with_one_byte_changed_is_corrupt() {
    let good = tempfile::tempdir().unwrap();
    util::install(good.path(), &util::built_rpms(3));
    let dir = sqlite_with_damaged_name(&good.path().join("var/lib/rpm/rpmdb.sqlite"), "hrbeta");
    let msg = assert_digest_bad(dir.path(), "rpmdb.sqlite", DbKind::RpmSqlite, "hrbeta");
    let (expected, computed) = rpm_says(&dir.path().join("var/lib/rpm"), "sqlite", &["-qa"]);
    assert!(
        msg.contains(&format!("stored {expected}, computed {computed}")),
        "{msg}"
    );
}

#[test]
fn ndb_header_with_one_byte_changed_is_corrupt() {
    // Debian's rpm has no NDB backend, so this one is ours alone; the digest is the same code.
    let mut bytes = std::fs::read(Path::new(FIXTURES).join("sle15-bci-ndb/Packages.db")).unwrap();
    let root = Root::open(Path::new(FIXTURES)).unwrap();
    let good = open_rpm_file(
        &root,
        Path::new("/sle15-bci-ndb/Packages.db"),
        DbKind::RpmNdb,
        &[],
    );
    let pkgs = good.contents.unwrap();
    assert!(pkgs.iter().any(|p| p.name == "bash"));
    // bash's NAME, VERSION and RELEASE strings stand together in its header's data.
    let bash = pkgs.iter().find(|p| p.name == "bash").unwrap();
    let needle: Vec<u8> = [&bash.name, &bash.version, &bash.release]
        .iter()
        .flat_map(|s| s.bytes().chain([0]))
        .collect();
    let at = only(&bytes, &needle);
    bytes[at] ^= 0x01;
    // NDB checksums each blob itself (Adler-32 in the blob's tail), which would catch the
    // change before the header is parsed: recompute it, as a writer that scribbled through
    // rpm's own code path would have, so the header digest is what must catch it.
    fix_ndb_checksum(&mut bytes, at);
    let dir = root_with("Packages.db", &bytes);
    let msg = assert_digest_bad(dir.path(), "Packages.db", DbKind::RpmNdb, "bash");
    assert!(msg.contains("record at byte"), "{msg}");
}

/// Rewrites the Adler-32 in the tail of the NDB blob holding byte `at` (layout: 16-byte blob
/// header `"BlbS"`, pkg, generation, length; the header blob; zero padding to a 16-byte
/// block; a 12-byte tail: Adler-32 of everything before it, length, `"BlbE"`).
fn fix_ndb_checksum(b: &mut [u8], at: usize) {
    let le = |b: &[u8], i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
    let start = (0..=at & !15)
        .rev()
        .step_by(16)
        .find(|&i| &b[i..i + 4] == b"BlbS")
        .unwrap();
    let len = le(b, start + 12) as usize;
    let end = (start + 16 + len + 12).div_ceil(16) * 16;
    let tail = end - 12;
    assert_eq!(&b[tail + 8..tail + 12], b"BlbE");
    assert_eq!(le(b, tail + 4) as usize, len);
    let (mut s1, mut s2) = (1u32, 0u32);
    for &x in &b[start..tail] {
        s1 = (s1 + u32::from(x)) % 65521;
        s2 = (s2 + s1) % 65521;
    }
    b[tail..tail + 4].copy_from_slice(&((s2 << 16) | s1).to_le_bytes());
}

#[test]
fn every_fixture_header_carries_a_digest_that_matches() {
    // Guards the verification itself: headers that lacked digests would verify vacuously.
    for (rel, kind) in [
        ("libuuid-bdb/Packages", DbKind::RpmBdb),
        ("sle15-bci-ndb/Packages.db", DbKind::RpmNdb),
        ("cbl-mariner-2.0-sqlite/rpmdb.sqlite", DbKind::RpmSqlite),
    ] {
        let root = Root::open(FIXTURES).unwrap();
        let d = open_rpm_file(&root, &PathBuf::from("/").join(rel), kind, &[]);
        let n = d.contents.as_ref().map(Vec::len).unwrap();
        assert!(n > 0, "{rel}");
        // And each holds a SHA256HEADER digest (tag 273) somewhere: check the raw bytes for
        // the index entry (tag 273, type 6 = string, count 1), at least once per package.
        let bytes = std::fs::read(Path::new(FIXTURES).join(rel)).unwrap();
        let mut entry = 273u32.to_be_bytes().to_vec();
        entry.extend(6u32.to_be_bytes());
        let found = bytes.windows(8).filter(|w| *w == entry.as_slice()).count();
        assert!(
            found >= n,
            "{rel}: {found} SHA256HEADER entries for {n} packages"
        );
    }
}
