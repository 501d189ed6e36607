//! Finding rpm databases under a root and turning their header blobs into [`Package`]s.
//!
//! Distros keep the database in `/var/lib/rpm` (RHEL, CentOS, Fedora < 36 and, as a symlink,
//! newer ones), `/usr/lib/sysimage/rpm` (SUSE, Fedora >= 36) or `/usr/share/rpm` (some
//! immutable hosts); each is resolved inside the root, so a symlink between them is one place.
//!
//! A lookup of one name or path ([`Want`]) reads a SQLite database through rpm's own index
//! tables and verifies every candidate against its header; it reads every header when the
//! index names nothing; an index that contradicts `Packages` is corrupt. Berkeley DB and NDB
//! files are read page by page through the open descriptor, never whole (see `paged`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use hostready_host::{FileKind, Root};

use crate::header::{Header, HeaderError, tag};
use crate::locks::{LockHolder, Probe, holders_of};
use crate::sqlite::Opened;
use crate::{Database, DbError, DbKind, Note, Package, Scope, Want, sqlite};

/// Where distros keep the rpm database.
pub const RPM_DIRS: [&str; 3] = ["/var/lib/rpm", "/usr/lib/sysimage/rpm", "/usr/share/rpm"];

/// Opens every rpm database found under the root.
///
/// `files` false drops every package's file list and provides as soon as its header is read
/// (listing: memory grows with the number of packages, not with their headers).
pub(crate) fn open_all(
    root: &Root,
    locks: &[LockHolder],
    want: Want,
    files: bool,
) -> Vec<Database> {
    let mut seen = HashSet::new();
    let mut dbs = Vec::new();
    for dir in RPM_DIRS {
        let Ok(resolved) = root.resolve(dir) else {
            continue;
        };
        if !seen.insert(resolved.path.clone()) {
            continue;
        }
        for (name, format) in crate::health::RPM_FILES {
            let kind = format.kind();
            let path = resolved.path.join(name);
            if root.stat(&path).is_ok_and(|s| s.kind == FileKind::File) {
                dbs.push(open_one_for(root, &path, kind, locks, want, files));
            }
        }
    }
    dbs
}

/// Reads one rpm database file of a known kind.
pub fn open_one(root: &Root, path: &Path, kind: DbKind, locks: &[LockHolder]) -> Database {
    open_one_for(root, path, kind, locks, Want::All, true)
}

fn open_one_for(
    root: &Root,
    path: &Path,
    kind: DbKind,
    locks: &[LockHolder],
    want: Want,
    files: bool,
) -> Database {
    match kind {
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
            let contents = contents.map(|mut pkgs| {
                if !files {
                    pkgs.iter_mut().for_each(forget_files);
                }
                pkgs
            });
            finish(kind, path, contents, scope, notes, r.holders)
        }
        _ => crate::paged::open(root, path, kind, locks, want, files),
    }
}

pub(crate) fn finish(
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
    let Some((table, keys)) = index_keys(want) else {
        return sqlite_scan(db, path, want, None);
    };
    match indexed(db, table, &keys, path, want) {
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

/// Returns the index a lookup consults and the keys it asks it for: `Name` with every name the
/// query could mean, or `Basenames` with each path's last component; `None` for a listing.
pub(crate) fn index_keys<'a>(want: Want<'a>) -> Option<(&'static str, Vec<&'a str>)> {
    match want {
        Want::All => None,
        Want::Name { keys, .. } => Some(("Name", keys.to_vec())),
        Want::Paths(wanted) => {
            let mut b: Vec<&str> = wanted
                .iter()
                .map(|w| w.rsplit_once('/').map_or(w.as_str(), |(_, b)| b))
                .collect();
            b.dedup();
            Some(("Basenames", b))
        }
    }
}

/// What the index table said.
pub(crate) enum Indexed {
    /// Verified records that answer the lookup.
    Answer(Vec<Package>),
    /// No record it names answers; these are the `hnum`s it names (sorted), which a full read
    /// must find to be the only candidates.
    NoAnswer(Vec<u64>),
}

/// Why an index answer was not used.
pub(crate) enum IndexTrouble {
    /// A record the index led to is corrupt, or the index contradicts the records.
    Corrupt(DbError),
    /// The index table cannot be queried (missing, not damaged): read every record instead.
    Unreadable(String),
}

/// An index/record contradiction in an rpmdb (SQLite: located by row; Berkeley DB: by record).
pub(crate) fn contradiction(path: &Path, what: String) -> DbError {
    DbError::Corrupt {
        what: format!("{what}: rpm's index and its records disagree"),
        file: path.to_path_buf(),
        offset: None,
    }
}

/// Returns the verified matches the index leads to, or the candidates it named when none of
/// them answers (then only a full read can say "not there").
///
/// The candidates are held to [`verify_indexed`]'s rules.
fn indexed(
    db: &Opened,
    table: &str,
    keys: &[&str],
    path: &Path,
    want: Want,
) -> Result<Indexed, IndexTrouble> {
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
    // SQLite has no byte offsets: a record is located by its row, which errors report.
    verify_indexed(
        Candidates {
            primary,
            provides,
            table,
            keys,
            unit: "row hnum=",
        },
        want,
        DbKind::RpmSqlite,
        path,
        |hnum| Ok(db.blob(hnum)?.map(|blob| (hnum, blob))),
    )
}

/// The records an index named for one lookup.
pub(crate) struct Candidates<'a> {
    /// What the lookup's own index (`table`) lists under `keys`, sorted.
    pub(crate) primary: Vec<u64>,
    /// What `Providename` lists under the same keys (name lookups only).
    pub(crate) provides: Vec<u64>,
    pub(crate) table: &'a str,
    pub(crate) keys: &'a [&'a str],
    /// How a record number is spelled in messages: `row hnum=` (SQLite), `record ` (BDB).
    pub(crate) unit: &'a str,
}

/// Verifies every record an index named against its header, one blob in memory at a time, by
/// the one rule set every rpm backend's index is held to; `fetch` returns a record's byte
/// offset (or row) and blob, or `None` when `Packages` lacks it.
///
/// A name is looked up in `Name` and in `Providename` (rpm gives every package a provide of its
/// own name), so one lost index row is caught without a full read: a record of that name found
/// through one table and not the other is a contradiction, as is a record the index names that
/// `Packages` lacks, or a `Name` entry whose header has another name. Each is corrupt.
pub(crate) fn verify_indexed(
    c: Candidates,
    want: Want,
    kind: DbKind,
    path: &Path,
    mut fetch: impl FnMut(u64) -> Result<Option<(u64, Vec<u8>)>, DbError>,
) -> Result<Indexed, IndexTrouble> {
    let Candidates {
        primary,
        provides,
        table,
        keys,
        unit,
    } = c;
    let mut hnums = primary.clone();
    hnums.extend(&provides);
    hnums.sort_unstable();
    hnums.dedup();
    let mut out = Vec::new();
    for hnum in hnums {
        let listed = primary.binary_search(&hnum).is_ok();
        let Some((offset, blob)) = fetch(hnum).map_err(IndexTrouble::Corrupt)? else {
            let via = if listed { table } else { "Providename" };
            return Err(IndexTrouble::Corrupt(contradiction(
                path,
                format!("rpm's {via} index names {unit}{hnum}, which is not in Packages"),
            )));
        };
        let header = Header::parse(&blob)
            .map_err(|e| IndexTrouble::Corrupt(header_error(e, offset, kind, path)))?;
        let hit = matches(&header, want)
            .map_err(|e| IndexTrouble::Corrupt(header_error(e, offset, kind, path)))?;
        if let Want::Name { .. } = want {
            // Name is keyed by the exact name: it must list exactly the records of that name.
            // (Basenames share keys across directories, so a miss there is normal.)
            let named = || header.string(tag::NAME).ok().flatten().unwrap_or_default();
            if listed && !hit {
                return Err(IndexTrouble::Corrupt(contradiction(
                    path,
                    format!(
                        "rpm's Name index lists {unit}{hnum} under {}, but that header is \
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
                        "rpm's Name index lacks {unit}{hnum}, whose header is named {:?} \
                         (Providename lists it)",
                        named()
                    ),
                )));
            }
        }
        if hit {
            out.push(package_from(&header, offset, kind, path).map_err(IndexTrouble::Corrupt)?);
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
pub(crate) fn matches(h: &Header, want: Want) -> Result<bool, HeaderError> {
    match want {
        Want::All => Ok(true),
        Want::Name { keys, .. } => h.name_is_one_of(keys),
        Want::Paths(wanted) => h.owns_any(wanted),
    }
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

/// Drops a package's file list and provides (kept only where a lookup needs them).
pub(crate) fn forget_files(p: &mut Package) {
    p.files = Vec::new();
    p.provides = Vec::new();
}

/// Turns one header blob into a package record without its file list or provides (listing:
/// the file-list tags are not even decoded, so a listing's memory follows the number of
/// packages, never the size of their headers; lookups by path still check those tags).
pub(crate) fn to_package_light(
    blob: &[u8],
    offset: u64,
    kind: DbKind,
    path: &Path,
) -> Result<Package, DbError> {
    use crate::header::tag;
    let fail = |e| header_error(e, offset, kind, path);
    let h = Header::parse(blob).map_err(fail)?;
    let name = h.string(tag::NAME).map_err(fail)?.ok_or_else(|| {
        fail(HeaderError {
            what: "no NAME tag".into(),
            offset: 0,
        })
    })?;
    let info = crate::header::RpmInfo {
        name,
        epoch: h.u32s(tag::EPOCH).map_err(fail)?.first().copied(),
        version: h.string(tag::VERSION).map_err(fail)?.unwrap_or_default(),
        release: h.string(tag::RELEASE).map_err(fail)?.unwrap_or_default(),
        arch: h.string(tag::ARCH).map_err(fail)?.unwrap_or_default(),
        files: Vec::new(),
        provides: Vec::new(),
    };
    Ok(package_of(info, kind, path))
}

/// Turns one header blob into a package record; `offset` says where the record lives.
pub(crate) fn to_package(
    blob: &[u8],
    offset: u64,
    kind: DbKind,
    path: &Path,
) -> Result<Package, DbError> {
    let h = Header::parse(blob).map_err(|e| header_error(e, offset, kind, path))?;
    package_from(&h, offset, kind, path)
}

/// Turns a header already parsed (and its digests checked) into a package record: parsing a
/// blob checks its SHA-1 and SHA-256 digests, most of a lookup's work, so a lookup that
/// parsed it to match does not parse it again.
pub(crate) fn package_from(
    h: &Header,
    offset: u64,
    kind: DbKind,
    path: &Path,
) -> Result<Package, DbError> {
    let info = h.info().map_err(|e| header_error(e, offset, kind, path))?;
    Ok(package_of(info, kind, path))
}

fn package_of(info: crate::header::RpmInfo, kind: DbKind, path: &Path) -> Package {
    let evr = match info.epoch {
        Some(e) => format!("{e}:{}-{}", info.version, info.release),
        None => format!("{}-{}", info.version, info.release),
    };
    Package {
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
    }
}

/// A corrupt header, located by SQLite row or byte offset.
pub(crate) fn header_error(e: HeaderError, offset: u64, kind: DbKind, path: &Path) -> DbError {
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
