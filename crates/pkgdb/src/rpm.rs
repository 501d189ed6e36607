//! Finding rpm databases under a root and turning their header blobs into [`Package`]s.
//!
//! Distros keep the database in `/var/lib/rpm` (RHEL, CentOS, Fedora < 36 and, as a symlink,
//! newer ones), `/usr/lib/sysimage/rpm` (SUSE, Fedora >= 36) or `/usr/share/rpm` (some
//! immutable hosts); each is resolved inside the root, so a symlink between them is one place.
//!
//! A lookup of one name or path ([`Want`]) reads a SQLite database through rpm's own index
//! tables and verifies every candidate against its header; it reads every header when the
//! index names nothing or disagrees with `Packages`. Berkeley DB and NDB files are read page
//! by page through the open descriptor, never whole (see `paged`).

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use hostready_host::{FileKind, Root};

use crate::header::{Header, HeaderError};
use crate::locks::{LockHolder, held_on};
use crate::sqlite::Opened;
use crate::{Database, DbError, DbKind, Note, Package, Scope, Want, sqlite};

/// Where distros keep the rpm database.
pub const RPM_DIRS: [&str; 3] = ["/var/lib/rpm", "/usr/lib/sysimage/rpm", "/usr/share/rpm"];

/// Database file names, in the order rpm >= 4.16 prefers them.
const FILES: [(&str, DbKind); 3] = [
    ("rpmdb.sqlite", DbKind::RpmSqlite),
    ("Packages.db", DbKind::RpmNdb),
    ("Packages", DbKind::RpmBdb),
];

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
        for (name, kind) in FILES {
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
        lock_holders: holders,
        scope,
    }
}

/// Answers `want` from one SQLite rpmdb: through the index table when it is consistent with
/// `Packages`, else from every record (with a note saying why, when the index is at fault).
fn sqlite_lookup(
    db: &Opened,
    path: &Path,
    want: Want,
    notes: &mut Vec<Note>,
) -> (Result<Vec<Package>, DbError>, Scope) {
    let kind = DbKind::RpmSqlite;
    let basenames: Vec<&str>;
    let (table, keys): (&str, &[&str]) = match want {
        Want::All => {
            return match db.all() {
                Ok(recs) => scan(&recs, kind, path, want),
                Err(e) => (Err(e), Scope::All),
            };
        }
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
    match indexed(db, table, keys, kind, path, want) {
        Ok(Some(found)) => return (Ok(found), Scope::Index),
        Ok(None) => {}
        Err(IndexTrouble::Corrupt(e)) => return (Err(e), Scope::Index),
        Err(IndexTrouble::Inconsistent(why)) => notes.push(Note {
            file: path.to_path_buf(),
            message: format!(
                "rpm's {table} index {why}; answered from every package header instead \
                 (`rpm --rebuilddb` rebuilds the indexes: back up the directory first)"
            ),
            unreliable: false,
        }),
    }
    match db.all() {
        Ok(recs) => scan(&recs, kind, path, want),
        Err(e) => (Err(e), Scope::All),
    }
}

/// Why an index answer was not used.
pub(crate) enum IndexTrouble {
    /// A record the index led to is corrupt: that is the answer, as a full read would find it.
    Corrupt(DbError),
    /// The index cannot be read or disagrees with `Packages`: read every record instead.
    Inconsistent(String),
}

/// Returns the verified matches the index leads to; `None` when it leads to none that answers
/// the lookup (then only a full read can say "not there").
///
/// A name is looked up in `Name` and in `Providename` (rpm gives every package a provide of its
/// own name), so one lost index row cannot hide a package: a record of that name found through
/// one table and not the other means the indexes are damaged, and every header is read.
fn indexed(
    db: &Opened,
    table: &str,
    keys: &[&str],
    kind: DbKind,
    path: &Path,
    want: Want,
) -> Result<Option<Vec<Package>>, IndexTrouble> {
    let unreadable =
        |e: rusqlite::Error| IndexTrouble::Inconsistent(format!("cannot be read ({e})"));
    let primary = db.index(table, keys).map_err(unreadable)?;
    let provides = match want {
        Want::Name { .. } => db.index("Providename", keys).map_err(unreadable)?,
        _ => Vec::new(),
    };
    let mut hnums = primary.clone();
    hnums.extend(&provides);
    hnums.sort_unstable();
    hnums.dedup();
    if hnums.is_empty() {
        return Ok(None);
    }
    let blobs = db.blobs(&hnums).map_err(unreadable)?;
    if let Some((hnum, _)) = blobs.iter().find(|(_, b)| b.is_none()) {
        return Err(IndexTrouble::Inconsistent(format!(
            "names hnum {hnum}, which is not in Packages"
        )));
    }
    let mut out = Vec::new();
    for (hnum, blob) in blobs {
        let Some(blob) = blob else { continue };
        let header = Header::parse(&blob)
            .map_err(|e| IndexTrouble::Corrupt(header_error(e, hnum, kind, path)))?;
        let hit = matches(&header, want)
            .map_err(|e| IndexTrouble::Corrupt(header_error(e, hnum, kind, path)))?;
        let listed = primary.binary_search(&hnum).is_ok();
        if let Want::Name { .. } = want {
            // Name is keyed by the exact name: it must list exactly the records of that name.
            // (Basenames share keys across directories, so a miss there is normal.)
            if listed && !hit {
                return Err(IndexTrouble::Inconsistent(format!(
                    "names hnum {hnum}, whose header has another name"
                )));
            }
            if hit && !listed {
                return Err(IndexTrouble::Inconsistent(format!(
                    "lacks hnum {hnum}, whose header has this name (Providename lists it)"
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
    Ok(answers.then_some(out))
}

/// Returns true if and only if the header can be what `want` looks for.
pub(crate) fn matches(h: &Header, want: Want) -> Result<bool, HeaderError> {
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

/// Holders of rpm's own transaction lock files in the database directory.
pub(crate) fn rpm_lock_holders(root: &Root, dir: &Path, locks: &[LockHolder]) -> Vec<LockHolder> {
    if locks.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for name in [".rpm.lock", ".dbenv.lock"] {
        if let Some(m) = root
            .open_file(dir.join(name))
            .ok()
            .and_then(|f| f.metadata().ok())
        {
            out.extend(held_on(locks, m.dev(), m.ino()));
        }
    }
    out
}

/// "pid 4711 (POSIX WRITE), pid 99 (FLOCK READ)".
pub(crate) fn describe_holders(holders: &[LockHolder]) -> String {
    let mut parts: Vec<String> = holders
        .iter()
        .map(|h| format!("pid {} ({} {})", h.pid, h.class, h.mode))
        .collect();
    parts.dedup();
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
    let info = Header::parse(blob)
        .and_then(|h| h.info())
        .map_err(|e| header_error(e, offset, kind, path))?;
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
