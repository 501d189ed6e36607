//! rpm's SQLite backend (`rpmdb.sqlite`, rpm >= 4.16): table `Packages(hnum, blob)`, and the
//! index tables rpm keeps beside it (`Name`, `Basenames`, `Providename`, ...: `key, hnum, idx`,
//! each with an index on `key`), which a lookup of one name or path reads first.
//!
//! Opened through a real SQLite (rusqlite, bundled) as a read-only, *immutable* URI
//! (`mode=ro&immutable=1`): SQLite then takes no file lock, never waits on one, and never
//! creates, reads or deletes `-journal`, `-wal` or `-shm` files. That is exactly what "never
//! block, never write" needs, and its cost is that SQLite no longer protects us from a writer:
//! so before trusting the answer we look ourselves for what immutable mode ignores — lock
//! holders (the host's lock table, or `F_OFD_GETLK` on SQLite's lock bytes without a procfs,
//! see [`crate::locks`]), a hot rollback journal (the file may hold half a
//! transaction), a non-empty WAL (committed changes we do not see) — and say so in notes.
//!
//! Which file SQLite reads: the one [`Root`] opened, never a path. SQLite's own unix VFS
//! opens by name and resolves symlinks itself, outside the root (a `rpmdb.sqlite` symlink to
//! a file outside, or a `var/lib/rpm` swapped for a symlink between our check and SQLite's
//! open, would make it read a database outside `--root`). [`crate::sqlite_vfs`] gives SQLite
//! the descriptor we opened inside the root and verified (a regular file, its header, its
//! locks); SQLite opens no other file, so the journal and WAL are looked at only here, through
//! the root. After reading, the path is resolved inside the root again and must still lead to
//! the same inode: a database replaced meanwhile is [`DbError::Replaced`], never answered from.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use hostready_host::Root;
use rusqlite::Connection;
use rusqlite::types::ValueRef;

use crate::locks::{LockHolder, Probe, holders_of};
use crate::{DbError, Note};

/// The largest header rpm reads (`headerMaxbytes` in lib/header.c): a larger blob is corrupt.
const MAX_HEADER_BYTES: i64 = 256 << 20;

/// First bytes of every rollback journal with a valid header (a hot journal).
const JOURNAL_MAGIC: [u8; 8] = [0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7];

/// One SQLite rpmdb opened for reading, and what we learned about its state on the way.
#[derive(Debug)]
pub(crate) struct SqliteRead<'r> {
    pub db: Result<Opened<'r>, DbError>,
    pub notes: Vec<Note>,
    pub holders: Vec<LockHolder>,
}

/// An open, immutable, read-only connection to an rpmdb, and the file it must stay.
#[derive(Debug)]
pub(crate) struct Opened<'r> {
    conn: Connection,
    /// The descriptor SQLite reads (a duplicate of it), opened inside the root.
    file: std::fs::File,
    root: &'r Root,
    /// Inside the root, for messages.
    path: PathBuf,
    dev: u64,
    ino: u64,
    locked: bool,
}

pub(crate) fn is_corrupt(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    )
}

/// Opens the rpmdb at `path` (inside the root, symlinks resolved) after checking its header,
/// its journal and WAL and its lock holders; reads no record yet.
pub(crate) fn open_db<'r>(root: &'r Root, path: &Path, locks: &[LockHolder]) -> SqliteRead<'r> {
    let mut notes = Vec::new();
    let mut holders = Vec::new();
    let db = (|| {
        let mut file = root.open_file(path).map_err(|source| DbError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let meta = file.metadata().map_err(|e| read_err(root, path, e))?;
        let mut found = holders_of(locks, &file, &meta, Probe::Sqlite);
        if let Some(dir) = path.parent() {
            found.extend(crate::rpm::rpm_lock_holders(root, dir, locks));
        }
        holders = crate::locks::dedup(found);
        check_header(&mut file, meta.len(), path)?;
        notes.extend(side_files(root, path, !holders.is_empty()));
        if !holders.is_empty() {
            notes.push(Note {
                file: path.to_path_buf(),
                message: format!(
                    "locked by {}: read without waiting, from the last state written to the file",
                    crate::rpm::describe_holders(&holders)
                ),
                unreliable: false,
            });
        }
        let locked = !holders.is_empty();
        let conn = open(&file).map_err(|e| sqlite_error(path, &file, locked, e))?;
        Ok(Opened {
            conn,
            file,
            root,
            path: path.to_path_buf(),
            dev: meta.dev(),
            ino: meta.ino(),
            locked,
        })
    })();
    SqliteRead { db, notes, holders }
}

impl Opened<'_> {
    /// Calls `f` with each `(hnum, blob)` of `Packages` in `hnum` order, one blob in memory at a
    /// time (borrowed from SQLite's row, never all of them), and returns how many there were.
    /// A blob larger than rpm allows a header to be is corrupt, and is never loaded.
    pub(crate) fn each(
        &self,
        mut f: impl FnMut(u64, &[u8]) -> Result<(), DbError>,
    ) -> Result<usize, DbError> {
        let mut n = 0;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT hnum, length(blob), CASE WHEN length(blob) <= ?1 THEN blob END \
                 FROM Packages ORDER BY hnum",
            )
            .map_err(|e| self.error(e))?;
        let mut rows = stmt.query([MAX_HEADER_BYTES]).map_err(|e| self.error(e))?;
        while let Some(row) = rows.next().map_err(|e| self.error(e))? {
            let hnum = row.get::<_, i64>(0).map_err(|e| self.error(e))? as u64;
            let len = row.get::<_, Option<i64>>(1).map_err(|e| self.error(e))?;
            let blob = row.get_ref(2).map_err(|e| self.error(e))?;
            f(hnum, self.blob_bytes(hnum, len, blob)?)?;
            n += 1;
        }
        Ok(n)
    }

    /// Returns the blob of row `hnum`, `None` when `Packages` has no such row.
    pub(crate) fn blob(&self, hnum: u64) -> Result<Option<Vec<u8>>, DbError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT length(blob), CASE WHEN length(blob) <= ?2 THEN blob END \
                 FROM Packages WHERE hnum = ?1",
            )
            .map_err(|e| self.error(e))?;
        let mut rows = stmt
            .query(rusqlite::params![hnum as i64, MAX_HEADER_BYTES])
            .map_err(|e| self.error(e))?;
        let Some(row) = rows.next().map_err(|e| self.error(e))? else {
            return Ok(None);
        };
        let len = row.get::<_, Option<i64>>(0).map_err(|e| self.error(e))?;
        let blob = row.get_ref(1).map_err(|e| self.error(e))?;
        Ok(Some(self.blob_bytes(hnum, len, blob)?.to_vec()))
    }

    /// Checks that a `Packages.blob` value is a blob rpm could have written.
    fn blob_bytes<'v>(
        &self,
        hnum: u64,
        len: Option<i64>,
        blob: ValueRef<'v>,
    ) -> Result<&'v [u8], DbError> {
        let corrupt = |what: String| DbError::Corrupt {
            what: format!("package header of row hnum={hnum}: {what}"),
            file: self.path.clone(),
            offset: None,
        };
        match blob {
            ValueRef::Blob(b) => Ok(b),
            _ if len.is_some_and(|l| l > MAX_HEADER_BYTES) => Err(corrupt(format!(
                "{} bytes, more than rpm allows a header ({MAX_HEADER_BYTES})",
                len.unwrap_or_default()
            ))),
            other => Err(corrupt(format!(
                "a {:?} value where rpm stores a header blob",
                other.data_type()
            ))),
        }
    }

    /// Returns the `hnum`s rpm's index table `table` (`Name`, `Basenames`, ...: rows of
    /// `key, hnum, idx`) lists under any of `keys`, in order, without duplicates.
    pub(crate) fn index(&self, table: &str, keys: &[&str]) -> rusqlite::Result<Vec<u64>> {
        let mut hnums = Vec::new();
        let mut stmt = self.conn.prepare(&format!(
            "SELECT DISTINCT hnum FROM '{table}' WHERE key = ?1"
        ))?;
        for key in keys {
            for h in stmt.query_map([key], |r| r.get::<_, i64>(0))? {
                hnums.push(h? as u64);
            }
        }
        hnums.sort_unstable();
        hnums.dedup();
        Ok(hnums)
    }

    /// Checks that the path still leads, inside the root, to the inode SQLite read, and closes
    /// the connection: an answer from a database replaced meanwhile is not given.
    pub(crate) fn finish(self) -> Result<(), DbError> {
        let now = self
            .root
            .open_file(&self.path)
            .ok()
            .and_then(|f| f.metadata().ok());
        match now {
            Some(m) if m.dev() == self.dev && m.ino() == self.ino => Ok(()),
            _ => Err(DbError::Replaced { path: self.path }),
        }
    }

    /// Turns a SQLite error on this database into a [`DbError`] naming it.
    pub(crate) fn error(&self, source: rusqlite::Error) -> DbError {
        sqlite_error(&self.path, &self.file, self.locked, source)
    }
}

/// Corruption (with SQLite's own account of where) or another SQLite failure.
fn sqlite_error(
    path: &Path,
    file: &std::fs::File,
    locked: bool,
    source: rusqlite::Error,
) -> DbError {
    if is_corrupt(&source) {
        DbError::Corrupt {
            what: format!("SQLite: {source}{}", integrity_detail(file)),
            file: path.to_path_buf(),
            offset: None,
        }
    } else {
        DbError::Sqlite {
            path: path.to_path_buf(),
            locked,
            source,
        }
    }
}

fn read_err(root: &Root, path: &Path, e: std::io::Error) -> DbError {
    DbError::Read {
        path: path.to_path_buf(),
        source: hostready_host::FsError {
            path: path.to_path_buf(),
            root: root.location().to_path_buf(),
            source: e,
        },
    }
}

/// Checks the 100-byte SQLite header ourselves: SQLite in immutable mode trusts the file size,
/// and a zeroed or truncated file deserves a precise message.
fn check_header(file: &mut std::fs::File, len: u64, path: &Path) -> Result<(), DbError> {
    let corrupt = |what: String, offset| DbError::Corrupt {
        what,
        file: path.to_path_buf(),
        offset: Some(offset),
    };
    let mut h = [0u8; 100];
    if len < 100 {
        return Err(corrupt(
            format!("{len} bytes, shorter than the 100-byte SQLite header"),
            len,
        ));
    }
    file.read_exact(&mut h)
        .map_err(|e| corrupt(format!("cannot read the SQLite header: {e}"), 0))?;
    if &h[..16] != b"SQLite format 3\0" {
        return Err(corrupt(
            "no SQLite magic (header zeroed or overwritten)".into(),
            0,
        ));
    }
    let page = match u16::from_be_bytes([h[16], h[17]]) {
        1 => 65536,
        p if p >= 512 && p.is_power_of_two() => u64::from(p),
        p => return Err(corrupt(format!("invalid page size {p}"), 16)),
    };
    let pages = u64::from(u32::from_be_bytes([h[28], h[29], h[30], h[31]]));
    let counter = &h[24..28];
    let valid_for = &h[92..96];
    // The in-header size is only meaningful when "version-valid-for" matches the change counter.
    if counter == valid_for && pages * page > len {
        return Err(corrupt(
            format!(
                "truncated: header says {pages} pages of {page} bytes ({} bytes), file has {len}",
                pages * page
            ),
            len,
        ));
    }
    if len % page != 0 {
        return Err(corrupt(
            format!("file size {len} is not a multiple of the page size {page}"),
            len,
        ));
    }
    Ok(())
}

/// Looks at the journal and WAL beside the database — the state immutable mode ignores.
fn side_files(root: &Root, path: &Path, locked: bool) -> Vec<Note> {
    let mut notes = Vec::new();
    let side = |suffix: &str| -> PathBuf {
        let mut s = path.as_os_str().to_os_string();
        s.push(suffix);
        PathBuf::from(s)
    };
    let journal = side("-journal");
    if let Ok(mut f) = root.open_file(&journal) {
        let mut magic = [0u8; 8];
        if f.read_exact(&mut magic).is_ok() && magic == JOURNAL_MAGIC {
            notes.push(Note {
                file: journal.clone(),
                message: if locked {
                    "a write transaction is in progress (hot rollback journal): the database \
                     file may hold half of it, so answers may be inconsistent"
                        .into()
                } else {
                    "a hot rollback journal is left over from an interrupted write: the database \
                     file may hold half a transaction until rpm rolls it back"
                        .into()
                },
                unreliable: true,
            });
        }
    }
    let wal = side("-wal");
    if let Some(st) = root.stat(&wal).ok().filter(|st| st.size > 32) {
        notes.push(Note {
            file: wal,
            message: format!(
                "write-ahead log holds {} bytes of changes not yet copied into the database \
                 file; they are not seen here, so the answer may be out of date",
                st.size
            ),
            unreliable: true,
        });
    }
    notes
}

/// Asks SQLite where the damage is (`PRAGMA quick_check`), for the error message only.
fn integrity_detail(file: &std::fs::File) -> String {
    let run = || -> rusqlite::Result<Vec<String>> {
        let conn = open(file)?;
        let mut stmt = conn.prepare("PRAGMA quick_check(3)")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.collect()
    };
    match run() {
        Ok(lines) if !lines.is_empty() && lines != ["ok"] => {
            format!(
                " ({})",
                lines
                    .join("; ")
                    .replace("*** in database main ***", "")
                    .replace('\n', " ")
                    .trim()
            )
        }
        _ => String::new(),
    }
}

/// Opens an immutable, read-only connection on the descriptor (see [`crate::sqlite_vfs`]).
fn open(file: &std::fs::File) -> rusqlite::Result<Connection> {
    let conn = crate::sqlite_vfs::open(file)?;
    // Immutable mode takes no lock, so there is nothing to wait for; zero makes sure.
    conn.busy_timeout(std::time::Duration::ZERO)?;
    Ok(conn)
}
