//! Finding rpm databases under a root and turning their header blobs into [`Package`]s.
//!
//! Distros keep the database in `/var/lib/rpm` (RHEL, CentOS, Fedora < 36 and, as a symlink,
//! newer ones), `/usr/lib/sysimage/rpm` (SUSE, Fedora >= 36) or `/usr/share/rpm` (some
//! immutable hosts); each is resolved inside the root, so a symlink between them is one place.
//!
//! A lookup of one name or path ([`Want`]) reads a SQLite database through rpm's own index
//! tables and verifies every candidate against its header; it reads every header when the
//! index names nothing (one that contradicts `Packages` is corrupt) (BDB and NDB are always
//! read whole: their indexes are separate files, and only a full read is known to be fast
//! enough there).

use std::collections::HashSet;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use hostready_host::{FileKind, Root};

use crate::header::{Header, HeaderError, tag};
use crate::locks::{LockHolder, Probe, held_on, holders_of};
use crate::sqlite::Opened;
use crate::{Database, DbError, DbKind, Note, Package, Scope, Want, bdb, ndb, sqlite};

/// Where distros keep the rpm database.
pub const RPM_DIRS: [&str; 3] = ["/var/lib/rpm", "/usr/lib/sysimage/rpm", "/usr/share/rpm"];

/// Database file names, in the order rpm >= 4.16 prefers them.
const FILES: [(&str, DbKind); 3] = [
    ("rpmdb.sqlite", DbKind::RpmSqlite),
    ("Packages.db", DbKind::RpmNdb),
    ("Packages", DbKind::RpmBdb),
];

/// Largest BDB or NDB file read (a full Fedora or RHEL desktop is a few hundred MiB at most).
const MAX_DB_BYTES: u64 = 2 << 30;

/// Opens every rpm database found under the root.
pub(crate) fn open_all(root: &Root, locks: &[LockHolder], want: Want) -> Vec<Database> {
    let mut seen = HashSet::new();
    let mut dbs = Vec::new();
    for dir in RPM_DIRS {
        let Ok(resolved) = root.resolve(dir) else {
            continue;
        };
        if !seen.insert(resolved.path.clone()) {
            continue;
        }
        for (name, kind) in FILES {
            let path = resolved.path.join(name);
            if root.stat(&path).is_ok_and(|s| s.kind == FileKind::File) {
                dbs.push(open_one_for(root, &path, kind, locks, want));
            }
        }
    }
    dbs
}

/// Reads one rpm database file of a known kind.
pub fn open_one(root: &Root, path: &Path, kind: DbKind, locks: &[LockHolder]) -> Database {
    open_one_for(root, path, kind, locks, Want::All)
}

fn open_one_for(
    root: &Root,
    path: &Path,
    kind: DbKind,
    locks: &[LockHolder],
    want: Want,
) -> Database {
    let (records, notes, holders) = match kind {
        DbKind::RpmSqlite => {
            let r = sqlite::open_db(root, path, locks);
            let mut notes = r.notes;
            let (contents, scope) = match r.db {
                Ok(db) => {
                    let (contents, scope) = sqlite_lookup(&db, path, want, &mut notes);
                    (db.finish().and(contents), scope)
                }
                Err(e) => (Err(e), Scope::All),
            };
            return finish(kind, path, contents, scope, notes, r.holders);
        }
        _ => {
            let mut holders = Vec::new();
            let records = read_file(root, path, &mut holders, locks).and_then(|bytes| {
                let parsed = if kind == DbKind::RpmBdb {
                    bdb::parse(&bytes)
                } else {
                    ndb::parse(&bytes)
                };
                parsed.map_err(|e| DbError::Corrupt {
                    what: e.what,
                    file: path.to_path_buf(),
                    offset: Some(e.offset),
                })
            });
            let mut notes = Vec::new();
            if !holders.is_empty() {
                let writing = holders.iter().any(|h| h.mode == "WRITE");
                notes.push(Note {
                    file: path.to_path_buf(),
                    message: format!(
                        "locked by {}: read without waiting{}",
                        describe_holders(&holders),
                        if writing {
                            "; this format is written in place without a journal, so a write \
                             in progress may make the answer inconsistent"
                        } else {
                            ""
                        }
                    ),
                    unreliable: writing,
                });
            }
            (records, notes, holders)
        }
    };
    let (contents, scope) = match records {
        Ok(recs) => scan(&recs, kind, path, want),
        Err(e) => (Err(e), Scope::All),
    };
    finish(kind, path, contents, scope, notes, holders)
}

fn finish(
    kind: DbKind,
    path: &Path,
    contents: Result<Vec<Package>, DbError>,
    scope: Scope,
    mut notes: Vec<Note>,
    holders: Vec<LockHolder>,
) -> Database {
    if contents.as_ref().is_err_and(|e| e.is_corrupt()) {
        notes.push(Note {
            file: path.to_path_buf(),
            message: crate::CORRUPT_ADVICE.into(),
            unreliable: true,
        });
    }
    Database {
        kind,
        path: path.to_path_buf(),
        contents,
        notes,
        // Each holder once, whichever files and ranges it locks.
        lock_holders: crate::locks::dedup(holders),
        scope,
    }
}

/// Answers `want` from one SQLite rpmdb: through the index table when it names a record that
/// answers, else from every record, one at a time.
///
/// rpm writes a record and its index rows in one SQLite transaction, so in a sound database
/// they always agree. Any disagreement — an index row naming a missing record or one of
/// another name, a record of the wanted name or path that the index does not list — is
/// corruption (`rpm -q` itself would answer from the bad index, "not installed" included),
/// reported as such with the row, never papered over by the full read's answer. Only an index
/// that cannot be read at all (a table missing, not a damaged page) is worked around, with a
/// note.
fn sqlite_lookup(
    db: &Opened,
    path: &Path,
    want: Want,
    notes: &mut Vec<Note>,
) -> (Result<Vec<Package>, DbError>, Scope) {
    let basenames: Vec<&str>;
    let (table, keys): (&str, &[&str]) = match want {
        Want::All => return sqlite_scan(db, path, want, None),
        Want::Name { keys, .. } => ("Name", keys),
        Want::Paths(wanted) => {
            let mut b: Vec<&str> = wanted
                .iter()
                .map(|w| w.rsplit_once('/').map_or(w.as_str(), |(_, b)| b))
                .collect();
            b.dedup();
            basenames = b;
            ("Basenames", &basenames)
        }
    };
    match indexed(db, table, keys, path, want) {
        Ok(Indexed::Answer(found)) => (Ok(found), Scope::Index),
        Ok(Indexed::NoAnswer(listed)) => sqlite_scan(db, path, want, Some((table, &listed))),
        Err(IndexTrouble::Corrupt(e)) => (Err(e), Scope::Index),
        Err(IndexTrouble::Unreadable(why)) => {
            notes.push(Note {
                file: path.to_path_buf(),
                message: format!(
                    "rpm's {table} index cannot be read ({why}); answered from every package \
                     header instead (`rpm --rebuilddb` rebuilds the indexes: back up the \
                     directory first)"
                ),
                unreliable: false,
            });
            sqlite_scan(db, path, want, None)
        }
    }
}

/// What the index table said.
enum Indexed {
    /// Verified records that answer the lookup.
    Answer(Vec<Package>),
    /// No record it names answers; these are the `hnum`s it names (sorted), which a full read
    /// must find to be the only candidates.
    NoAnswer(Vec<u64>),
}

/// Why an index answer was not used.
enum IndexTrouble {
    /// A record the index led to is corrupt, or the index contradicts the records.
    Corrupt(DbError),
    /// The index table cannot be queried (missing, not damaged): read every record instead.
    Unreadable(String),
}

/// An index/record contradiction in a SQLite rpmdb, located by row.
fn contradiction(path: &Path, what: String) -> DbError {
    DbError::Corrupt {
        what: format!("{what}: rpm's index and its records disagree"),
        file: path.to_path_buf(),
        offset: None,
    }
}

/// Returns the verified matches the index leads to, or the candidates it named when none of
/// them answers (then only a full read can say "not there").
///
/// A name is looked up in `Name` and in `Providename` (rpm gives every package a provide of its
/// own name), so one lost index row is caught without a full read: a record of that name found
/// through one table and not the other is a contradiction.
fn indexed(
    db: &Opened,
    table: &str,
    keys: &[&str],
    path: &Path,
    want: Want,
) -> Result<Indexed, IndexTrouble> {
    let kind = DbKind::RpmSqlite;
    let failed = |e: rusqlite::Error| {
        if sqlite::is_corrupt(&e) {
            IndexTrouble::Corrupt(db.error(e))
        } else {
            IndexTrouble::Unreadable(e.to_string())
        }
    };
    let primary = db.index(table, keys).map_err(failed)?;
    let provides = match want {
        Want::Name { .. } => db.index("Providename", keys).map_err(failed)?,
        _ => Vec::new(),
    };
    let mut hnums = primary.clone();
    hnums.extend(&provides);
    hnums.sort_unstable();
    hnums.dedup();
    let mut out = Vec::new();
    for hnum in hnums {
        // One candidate's blob in memory at a time, however many rows the index holds.
        let Some(blob) = db.blob(hnum).map_err(IndexTrouble::Corrupt)? else {
            let via = if primary.binary_search(&hnum).is_ok() {
                table
            } else {
                "Providename"
            };
            return Err(IndexTrouble::Corrupt(contradiction(
                path,
                format!("rpm's {via} index names row hnum={hnum}, which is not in Packages"),
            )));
        };
        let header = Header::parse(&blob)
            .map_err(|e| IndexTrouble::Corrupt(header_error(e, hnum, kind, path)))?;
        let hit = matches(&header, want)
            .map_err(|e| IndexTrouble::Corrupt(header_error(e, hnum, kind, path)))?;
        let listed = primary.binary_search(&hnum).is_ok();
        if let Want::Name { .. } = want {
            // Name is keyed by the exact name: it must list exactly the records of that name.
            // (Basenames share keys across directories, so a miss there is normal.)
            let named = || header.string(tag::NAME).ok().flatten().unwrap_or_default();
            if listed && !hit {
                return Err(IndexTrouble::Corrupt(contradiction(
                    path,
                    format!(
                        "rpm's Name index lists row hnum={hnum} under {}, but that header is \
                         named {:?}",
                        keys_text(keys),
                        named()
                    ),
                )));
            }
            if hit && !listed {
                return Err(IndexTrouble::Corrupt(contradiction(
                    path,
                    format!(
                        "rpm's Name index lacks row hnum={hnum}, whose header is named {:?} \
                         (Providename lists it)",
                        named()
                    ),
                )));
            }
        }
        if hit {
            out.push(to_package(&blob, hnum, kind, path).map_err(IndexTrouble::Corrupt)?);
        }
    }
    let answers = match want {
        Want::Name { query, .. } => out.iter().any(|p| crate::name_matches(query, p)),
        _ => !out.is_empty(),
    };
    Ok(if answers {
        Indexed::Answer(out)
    } else {
        Indexed::NoAnswer(primary)
    })
}

/// `"curl"` or `"curl.x86_64" or "curl"`.
fn keys_text(keys: &[&str]) -> String {
    keys.iter()
        .map(|k| format!("{k:?}"))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// Reads every record of a SQLite rpmdb, one blob at a time, keeping what `want` matches.
/// With `index`, each match must be among the `hnum`s that index table named for the lookup:
/// one it did not name is a record the index lost.
fn sqlite_scan(
    db: &Opened,
    path: &Path,
    want: Want,
    index: Option<(&str, &[u64])>,
) -> (Result<Vec<Package>, DbError>, Scope) {
    let kind = DbKind::RpmSqlite;
    let mut out = Vec::new();
    let records = db.each(|hnum, blob| {
        let hit = match want {
            Want::All => true,
            _ => Header::parse(blob)
                .and_then(|h| matches(&h, want))
                .map_err(|e| header_error(e, hnum, kind, path))?,
        };
        if !hit {
            return Ok(());
        }
        if let Some((table, listed)) = index {
            if listed.binary_search(&hnum).is_err() {
                let p = to_package(blob, hnum, kind, path)?;
                let what = match want {
                    Want::Paths(w) => format!("owns {}", w.join(" or ")),
                    _ => format!("is named {:?}", p.name),
                };
                return Err(contradiction(
                    path,
                    format!("rpm's {table} index lacks row hnum={hnum}, whose header {what}"),
                ));
            }
        }
        out.push(to_package(blob, hnum, kind, path)?);
        Ok(())
    });
    match (records, want) {
        (Ok(_), Want::All) => (Ok(out), Scope::All),
        (Ok(records), _) => (Ok(out), Scope::Scan { records }),
        (Err(e), _) => (Err(e), Scope::All),
    }
}

/// Returns true if and only if the header can be what `want` looks for.
fn matches(h: &Header, want: Want) -> Result<bool, HeaderError> {
    match want {
        Want::All => Ok(true),
        Want::Name { keys, .. } => h.name_is_one_of(keys),
        Want::Paths(wanted) => h.owns_any(wanted),
    }
}

/// Parses every record, turning only those `want` matches into packages.
fn scan(
    recs: &[(u64, Vec<u8>)],
    kind: DbKind,
    path: &Path,
    want: Want,
) -> (Result<Vec<Package>, DbError>, Scope) {
    if let Want::All = want {
        let all = recs
            .iter()
            .map(|(offset, blob)| to_package(blob, *offset, kind, path))
            .collect();
        return (all, Scope::All);
    }
    let mut out = Vec::new();
    for (offset, blob) in recs {
        let hit = Header::parse(blob)
            .and_then(|h| matches(&h, want))
            .map_err(|e| header_error(e, *offset, kind, path));
        match hit {
            Ok(true) => match to_package(blob, *offset, kind, path) {
                Ok(p) => out.push(p),
                Err(e) => return (Err(e), Scope::All),
            },
            Ok(false) => {}
            Err(e) => return (Err(e), Scope::All),
        }
    }
    (
        Ok(out),
        Scope::Scan {
            records: recs.len(),
        },
    )
}

fn read_file(
    root: &Root,
    path: &Path,
    holders: &mut Vec<LockHolder>,
    locks: &[LockHolder],
) -> Result<Vec<u8>, DbError> {
    let fs_err = |source| DbError::Read {
        path: path.to_path_buf(),
        source,
    };
    let io_err = |e: std::io::Error| {
        fs_err(hostready_host::FsError {
            path: path.to_path_buf(),
            root: root.location().to_path_buf(),
            source: e,
        })
    };
    let file = root.open_file(path).map_err(fs_err)?;
    let meta = file.metadata().map_err(io_err)?;
    *holders = held_on(locks, meta.dev(), meta.ino());
    if let Some(dir) = path.parent() {
        holders.extend(rpm_lock_holders(root, dir, locks));
    }
    let mut bytes = Vec::with_capacity(meta.len().min(MAX_DB_BYTES) as usize);
    file.take(MAX_DB_BYTES)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    Ok(bytes)
}

/// Holders of rpm's own transaction lock files in the database directory (`.rpm.lock`, which
/// every rpm transaction locks whole, and `.dbenv.lock` of the BDB backend): from the host's
/// lock table, or from `F_OFD_GETLK` on the file when the table has none. Each holder once.
pub(crate) fn rpm_lock_holders(root: &Root, dir: &Path, locks: &[LockHolder]) -> Vec<LockHolder> {
    let mut out = Vec::new();
    for name in [".rpm.lock", ".dbenv.lock"] {
        let Ok(file) = root.open_file(dir.join(name)) else {
            continue;
        };
        // Only a regular file: a lock file swapped for something else is not probed.
        if let Some(m) = file.metadata().ok().filter(|m| m.is_file()) {
            out.extend(holders_of(locks, &file, &m, Probe::WholeFile));
        }
    }
    crate::locks::dedup(out)
}

/// "pid 4711 (POSIX WRITE), an OFD lock (READ)", each holder once.
pub(crate) fn describe_holders(holders: &[LockHolder]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for h in crate::locks::dedup(holders.to_vec()) {
        let who = match h.pid {
            -1 => format!("an open file description lock ({} {})", h.class, h.mode),
            0 => format!(
                "a process outside this PID namespace ({} {})",
                h.class, h.mode
            ),
            pid => format!("pid {pid} ({} {})", h.class, h.mode),
        };
        if !parts.contains(&who) {
            parts.push(who);
        }
    }
    parts.join(", ")
}

/// Turns one header blob into a package record; `offset` says where the record lives.
fn to_package(blob: &[u8], offset: u64, kind: DbKind, path: &Path) -> Result<Package, DbError> {
    let info = Header::parse(blob)
        .and_then(|h| h.info())
        .map_err(|e| header_error(e, offset, kind, path))?;
    let evr = match info.epoch {
        Some(e) => format!("{e}:{}-{}", info.version, info.release),
        None => format!("{}-{}", info.version, info.release),
    };
    Ok(Package {
        name: info.name,
        epoch: info.epoch,
        version: info.version,
        release: info.release,
        arch: info.arch,
        evr,
        installed: true,
        state: "installed".into(),
        db: kind,
        db_path: PathBuf::from(path),
        files: info.files,
        provides: info.provides,
    })
}

/// A corrupt header, located by SQLite row or byte offset.
fn header_error(e: HeaderError, offset: u64, kind: DbKind, path: &Path) -> DbError {
    let (record, offset) = if kind == DbKind::RpmSqlite {
        (format!("row hnum={offset}"), None)
    } else {
        (format!("record at byte {offset}"), Some(offset))
    };
    DbError::Corrupt {
        what: format!(
            "package header of {record}: {} (header byte {})",
            e.what, e.offset
        ),
        file: path.to_path_buf(),
        offset,
    }
}
