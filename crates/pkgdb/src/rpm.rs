//! Finding rpm databases under a root and turning their header blobs into [`Package`]s.
//!
//! Distros keep the database in `/var/lib/rpm` (RHEL, CentOS, Fedora < 36 and, as a symlink,
//! newer ones), `/usr/lib/sysimage/rpm` (SUSE, Fedora >= 36) or `/usr/share/rpm` (some
//! immutable hosts); each is resolved inside the root, so a symlink between them is one place.

use std::collections::HashSet;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use hostready_host::{FileKind, Root};

use crate::header::Header;
use crate::locks::{LockHolder, held_on};
use crate::{Database, DbError, DbKind, Note, Package, bdb, ndb, sqlite};

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
pub(crate) fn open_all(root: &Root, locks: &[LockHolder]) -> Vec<Database> {
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
                dbs.push(open_one(root, &path, kind, locks));
            }
        }
    }
    dbs
}

/// Reads one rpm database file of a known kind.
pub fn open_one(root: &Root, path: &Path, kind: DbKind, locks: &[LockHolder]) -> Database {
    let (records, mut notes, holders) = match kind {
        DbKind::RpmSqlite => {
            let r = sqlite::read(root, path, locks);
            (r.records, r.notes, r.holders)
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
    let contents = records.and_then(|recs| {
        recs.iter()
            .map(|(offset, blob)| to_package(blob, *offset, kind, path))
            .collect::<Result<Vec<_>, _>>()
    });
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
    }
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

/// Turns one header blob into a package record; `offset` says where the record lives.
fn to_package(blob: &[u8], offset: u64, kind: DbKind, path: &Path) -> Result<Package, DbError> {
    let info = Header::parse(blob).and_then(|h| h.info()).map_err(|e| {
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
    })?;
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
