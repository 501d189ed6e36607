//! Database-format health from a file's first bytes and its length, without reading its
//! records: which rpm format a file is, and whether its header agrees with its size (magic,
//! page size, page or slot counts). Cheap enough to run on every database doctor sees, and
//! precise about *why* a file is damaged; the full readers ([`crate::open_host_databases`])
//! then find what only reading every record finds.
//!
//! References: SQLite file format <https://www.sqlite.org/fileformat2.html>; Berkeley DB
//! `dbmeta.h` (`DBMETA`: magic at 12, pagesize at 20, last_pgno at 32); rpm
//! `lib/backend/ndb/rpmpkg.c`.

use crate::DbKind;

/// How much of a database file [`header_health`] looks at: NDB's slot pages live up front.
pub const HEAD_BYTES: usize = 64 << 10;

/// The on-disk formats of an rpm database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Sqlite,
    BerkeleyDb,
    Ndb,
}

/// The database file names in an rpm directory ([`crate::RPM_DIRS`]) and their formats, in the
/// order rpm >= 4.16 prefers them.
pub const RPM_FILES: [(&str, Format); 3] = [
    ("rpmdb.sqlite", Format::Sqlite),
    ("Packages.db", Format::Ndb),
    ("Packages", Format::BerkeleyDb),
];

/// Berkeley DB's hash and btree metadata magics (`dbinc/db_page.h`), in either byte order.
const BDB_HASH: u32 = 0x0006_1561;
const BDB_BTREE: u32 = 0x0005_3162;

impl Format {
    /// Returns the kind of database a file of this format holds.
    pub fn kind(self) -> DbKind {
        match self {
            Format::Sqlite => DbKind::RpmSqlite,
            Format::BerkeleyDb => DbKind::RpmBdb,
            Format::Ndb => DbKind::RpmNdb,
        }
    }

    /// Returns the format whose magic `head` starts with, or `None` (zeroed, overwritten, or
    /// not a database).
    pub fn detect(head: &[u8]) -> Option<Format> {
        if head.starts_with(b"SQLite format 3\0") {
            return Some(Format::Sqlite);
        }
        if head.starts_with(b"RpmP") {
            return Some(Format::Ndb);
        }
        let magic: [u8; 4] = head.get(12..16)?.try_into().ok()?;
        [u32::from_le_bytes(magic), u32::from_be_bytes(magic)]
            .iter()
            .any(|m| matches!(*m, BDB_HASH | BDB_BTREE))
            .then_some(Format::BerkeleyDb)
    }
}

/// Judges an rpm database file from its first bytes ([`HEAD_BYTES`] at most) and its length:
/// `Ok` with a description (`"12 pages of 4096 bytes"`), or `Err` with why it is damaged, in
/// the format's terms.
pub fn header_health(format: Format, head: &[u8], size: u64) -> Result<String, String> {
    if size == 0 {
        return Err("empty file (0 bytes)".into());
    }
    if head.iter().all(|b| *b == 0) {
        return Err("the header is all zero bytes".into());
    }
    match format {
        Format::Sqlite => {
            if head.len() < 100 || &head[..16] != b"SQLite format 3\0" {
                return Err("no SQLite header (\"SQLite format 3\")".into());
            }
            let raw = u16::from_be_bytes([head[16], head[17]]) as u64;
            let page = if raw == 1 { 65536 } else { raw };
            if page < 512 || !page.is_power_of_two() {
                return Err(format!("invalid page size {raw}"));
            }
            if size % page != 0 {
                return Err(format!(
                    "length {size} is not a whole number of {page}-byte pages (truncated)"
                ));
            }
            let change = u32::from_be_bytes(head[24..28].try_into().unwrap_or_default());
            let valid_for = u32::from_be_bytes(head[92..96].try_into().unwrap_or_default());
            let pages = u32::from_be_bytes(head[28..32].try_into().unwrap_or_default()) as u64;
            if change == valid_for && pages > 0 && pages * page > size {
                return Err(format!(
                    "header says {pages} pages of {page} bytes, file has {} (truncated)",
                    size / page
                ));
            }
            Ok(format!("{} pages of {page} bytes", size / page))
        }
        Format::BerkeleyDb => {
            if head.len() < 36 {
                return Err("shorter than a Berkeley DB metadata page".into());
            }
            let word = |o: usize| head[o..o + 4].try_into().unwrap_or_default();
            let (le, be) = (u32::from_le_bytes(word(12)), u32::from_be_bytes(word(12)));
            let from = if le == BDB_HASH || le == BDB_BTREE {
                u32::from_le_bytes
            } else if be == BDB_HASH || be == BDB_BTREE {
                u32::from_be_bytes
            } else {
                return Err(format!("no Berkeley DB magic (found {le:#x})"));
            };
            let page = from(word(20)) as u64;
            let last = from(word(32)) as u64;
            if page < 512 || !page.is_power_of_two() {
                return Err(format!("invalid page size {page}"));
            }
            if (last + 1) * page > size {
                return Err(format!(
                    "metadata says {} pages of {page} bytes, file has {} (truncated)",
                    last + 1,
                    size / page
                ));
            }
            Ok(format!("{} pages of {page} bytes", last + 1))
        }
        Format::Ndb => {
            if head.len() < 16 || &head[..4] != b"RpmP" {
                return Err("no NDB header (\"RpmP\")".into());
            }
            // rpm lib/backend/ndb/rpmpkg.c: a 32-byte header, then `slotnpages` pages of 4096
            // bytes holding 16-byte slots ("Slot", pkgidx, blkoff, blkcnt) in 16-byte blocks.
            let word =
                |o: usize| u32::from_le_bytes(head[o..o + 4].try_into().unwrap_or_default()) as u64;
            let slot_pages = word(12);
            if slot_pages == 0 || slot_pages * 4096 > size {
                return Err(format!(
                    "header says {slot_pages} slot pages, file is {size} bytes (truncated)"
                ));
            }
            let slots_end = (slot_pages as usize * 4096).min(head.len());
            let mut end = 0;
            for o in (32..slots_end.saturating_sub(15)).step_by(16) {
                if &head[o..o + 4] == b"Slot" && word(o + 4) != 0 {
                    end = end.max((word(o + 8) + word(o + 12)) * 16);
                }
            }
            if end > size {
                return Err(format!(
                    "slots point to byte {end}, file is {size} bytes (truncated)"
                ));
            }
            Ok(format!("{slot_pages} slot pages"))
        }
    }
}

#[cfg(test)]
// tests read fixtures and build fake hosts directly.
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;
    use std::path::Path;

    fn fixture(rel: &str) -> Vec<u8> {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/fixtures/rpmdb")
                .join(rel),
        )
        .unwrap()
    }

    #[test]
    fn real_databases_are_whole() {
        for (rel, format) in [
            ("cbl-mariner-2.0-sqlite/rpmdb.sqlite", Format::Sqlite),
            ("libuuid-bdb/Packages", Format::BerkeleyDb),
            ("sle15-bci-ndb/Packages.db", Format::Ndb),
        ] {
            let b = fixture(rel);
            let r = header_health(format, &b[..HEAD_BYTES.min(b.len())], b.len() as u64);
            assert!(r.is_ok(), "{rel}: {r:?}");
        }
    }

    #[test]
    fn truncated_and_zeroed_databases_are_damaged() {
        for (rel, format) in [
            ("cbl-mariner-2.0-sqlite/rpmdb.sqlite", Format::Sqlite),
            ("libuuid-bdb/Packages", Format::BerkeleyDb),
            ("sle15-bci-ndb/Packages.db", Format::Ndb),
        ] {
            let b = fixture(rel);
            assert!(
                header_health(format, &b[..HEAD_BYTES.min(b.len())], 4096 * 3 - 5).is_err(),
                "{rel}"
            );
            assert!(
                header_health(format, &[0; 100], b.len() as u64).is_err(),
                "{rel}"
            );
            assert!(header_health(format, &b[..100], 0).is_err(), "{rel}");
        }
        // A whole number of pages, but fewer than the header counts.
        let b = fixture("cbl-mariner-2.0-sqlite/rpmdb.sqlite");
        let e = header_health(Format::Sqlite, &b[..100], 4096 * 10).unwrap_err();
        assert!(e.contains("truncated"), "{e}");
    }

    #[test]
    fn formats_are_told_by_their_magic() {
        for (rel, format) in [
            ("cbl-mariner-2.0-sqlite/rpmdb.sqlite", Format::Sqlite),
            ("libuuid-bdb/Packages", Format::BerkeleyDb),
            ("sle15-bci-ndb/Packages.db", Format::Ndb),
        ] {
            let b = fixture(rel);
            assert_eq!(
                Format::detect(&b[..HEAD_BYTES.min(b.len())]),
                Some(format),
                "{rel}"
            );
        }
        assert_eq!(Format::detect(&[0; 100]), None);
        assert_eq!(Format::detect(b"SQLite"), None);
        assert_eq!(Format::Ndb.kind(), DbKind::RpmNdb);
    }
}
