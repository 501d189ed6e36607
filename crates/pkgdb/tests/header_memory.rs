//! The header parser's memory stays within a small multiple of its input: at the peak, at most
//! `BOUND_PER_BYTE` bytes live per header byte plus `SLACK` — on every real header of the
//! SQLite fixture and of a database Debian's rpm wrote, on their mutations, and on hostile
//! headers built to expand (a long dirname shared by thousands of one-letter basenames, arrays
//! of empty strings). The fuzz target `header` (crates/pkgdb/fuzz) asserts the same bound on
//! whatever libFuzzer invents; this test holds it in CI.
//!
//! One test in its own binary, so the counting allocator sees only this thread's work.

// Tests build fake hosts and read fixtures on this machine directly.
#![allow(clippy::disallowed_methods)]

mod util;

use hostready_pkgdb::Header;
use hostready_testkit::counting_alloc::{self, Counting};

/// The same numbers as the fuzz target's.
const BOUND_PER_BYTE: usize = 64;
const SLACK: usize = 16 << 10;

#[global_allocator]
static ALLOC: Counting = Counting;

/// Parses and reads `blob` as every caller does; returns the peak bytes live meanwhile.
fn peak_of(blob: &[u8]) -> usize {
    let wanted = ["/usr/bin/bash".to_string(), "/a".to_string()];
    let ((), peak) = counting_alloc::peak_of(|| {
        if let Ok(h) = Header::parse(blob) {
            let _ = h.info();
            let _ = h.name_is_one_of(&["bash", "x"]);
            let _ = h.owns_any(&wanted);
        }
    });
    peak
}

/// A header of (tag, type, count, data) entries, data laid out aligned.
fn build(entries: &[(u32, u32, u32, Vec<u8>)]) -> Vec<u8> {
    let (mut index, mut data) = (Vec::new(), Vec::<u8>::new());
    for (tag, kind, count, bytes) in entries {
        while *kind == 4 && data.len() % 4 != 0 {
            data.push(0);
        }
        for v in [*tag, *kind, data.len() as u32, *count] {
            index.extend(v.to_be_bytes());
        }
        data.extend(bytes);
    }
    let mut blob = (entries.len() as u32).to_be_bytes().to_vec();
    blob.extend((data.len() as u32).to_be_bytes());
    blob.extend(index);
    blob.extend(data);
    blob
}

fn strings(n: usize, s: &str) -> Vec<u8> {
    let mut v = Vec::new();
    for _ in 0..n {
        v.extend(s.as_bytes());
        v.push(0);
    }
    v
}

/// Hostile headers: each expands as far as the parser lets it.
fn hostile() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (dir_len, n) in [(30, 20_000), (200, 5_000), (2_000, 2_000), (60_000, 100)] {
        let dir = format!("/{}/", "d".repeat(dir_len));
        out.push((
            format!("{n} one-letter basenames under one {dir_len}-byte dirname"),
            build(&[
                (1000, 6, 1, strings(1, "x")),
                (1118, 8, 1, strings(1, &dir)),
                (1117, 8, n as u32, strings(n, "a")),
                (1116, 4, n as u32, vec![0; 4 * n]),
            ]),
        ));
    }
    out.push((
        "60000 empty provides".into(),
        build(&[
            (1000, 6, 1, strings(1, "x")),
            (1047, 8, 60_000, vec![0; 60_000]),
        ]),
    ));
    out.push((
        "60000 empty basenames and dirnames".into(),
        build(&[
            (1000, 6, 1, strings(1, "x")),
            (1118, 8, 60_000, vec![0; 60_000]),
            (1117, 8, 60_000, vec![0; 60_000]),
            (1116, 4, 60_000, vec![0; 4 * 60_000]),
        ]),
    ));
    out
}

fn real() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let rpm = tempfile::tempdir().unwrap();
    util::install(rpm.path(), &util::built_rpms(3));
    let dbs = [
        std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/fixtures/rpmdb/cbl-mariner-2.0-sqlite/rpmdb.sqlite"
        )),
        rpm.path().join("var/lib/rpm/rpmdb.sqlite"),
    ];
    for db in dbs {
        let conn = rusqlite::Connection::open_with_flags(
            format!("file:{}?immutable=1", db.display()),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
        )
        .unwrap();
        let mut stmt = conn.prepare("SELECT hnum, blob FROM Packages").unwrap();
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
            .unwrap();
        for row in rows {
            let (hnum, blob) = row.unwrap();
            out.push((format!("{} hnum {hnum}", db.display()), blob));
        }
    }
    out
}

#[test]
fn header_parser_memory_is_a_small_multiple_of_its_input() {
    let mut cases = real();
    assert!(cases.len() > 129, "{} real headers", cases.len());
    // Mutations of the three smallest real headers: every index byte three ways, and 64
    // truncations each.
    let mut small: Vec<Vec<u8>> = cases.iter().map(|(_, b)| b.clone()).collect();
    small.sort_by_key(Vec::len);
    for blob in small.iter().take(3) {
        let il = u32::from_be_bytes(blob[..4].try_into().unwrap()) as usize;
        for i in 0..(8 + il * 16).min(blob.len()) {
            for v in [0u8, 0xff, blob[i] ^ 0x80] {
                let mut m = blob.clone();
                m[i] = v;
                cases.push((format!("mutation at {i}"), m));
            }
        }
        for n in (0..blob.len()).step_by(blob.len() / 64 + 1) {
            cases.push((format!("truncated to {n}"), blob[..n].to_vec()));
        }
    }
    cases.extend(hostile());
    let mut worst = (0.0f64, String::new());
    for (what, blob) in &cases {
        let peak = peak_of(blob);
        assert!(
            peak <= BOUND_PER_BYTE * blob.len() + SLACK,
            "{what}: a {}-byte header made {peak} bytes live at once",
            blob.len()
        );
        let ratio = peak as f64 / blob.len().max(1) as f64;
        if ratio > worst.0 && blob.len() > 4096 {
            worst = (ratio, what.clone());
        }
    }
    eprintln!(
        "{} headers; worst peak/input over 4 KiB: {:.1}x ({})",
        cases.len(),
        worst.0,
        worst.1
    );
}
