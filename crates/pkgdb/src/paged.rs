//! Lookups in rpm's Berkeley DB (`Packages` + index files) and NDB (`Packages.db`) databases,
//! read page by page through the already-opened, rooted descriptor.
//!
//! A name or path lookup in a Berkeley DB database goes through rpm's own hash index files
//! beside `Packages` — `Name` and `Providename` for a name (every package provides its own
//! name), `Basenames` for a path — exactly as the SQLite path uses its index tables: only the
//! records they name are fetched from `Packages` (one hash bucket each), and each is parsed
//! and verified. When the index files are absent or name nothing that answers, every header is
//! checked by a streaming scan; when they disagree with `Packages` the scan runs too, with a
//! note naming the damaged index. Never is the whole file read into memory.
//!
//! An NDB lookup goes through `Index.db` beside `Packages.db` ([`crate::ndb_index`]) by the
//! same rules, with one difference: rpm treats `Index.db` as derived data (it rebuilds it when
//! its generation disagrees with `Packages.db`'s), so an index that is missing, stale, damaged
//! or contradicts `Packages.db` is not the database's corruption: every header answers
//! instead, with a note saying which. Damage in `Packages.db` itself stays corrupt.
//!
//! Memory bound (see `docs/pkgdb-memory.md`): one page buffer per open walk, one header blob
//! at a time (at most [`MAX_BLOB`](crate::pages::MAX_BLOB), checked before allocation), the
//! record numbers of the looked-up keys (8 bytes per package listed), one bit per page of
//! `Packages` for a scan, plus the matching packages themselves.

use std::fs::File;
use std::path::Path;

use hostready_host::{FileKind, FsError, Root};

use crate::bdb::{HashDb, Stop};
use crate::header::Header;
use crate::locks::{LockHolder, Probe, holders_of};
use crate::ndb_index::{IndexDb, TAG_BASENAMES, TAG_NAME, TAG_PROVIDENAME, Trouble};
use crate::pages::{FileSource, ReadError, Source};
use crate::rpm::{
    Candidates, IndexTrouble, Indexed, contradiction, describe_holders, finish, header_error,
    index_keys, matches, package_from, rpm_lock_holders, to_package, to_package_light,
    verify_indexed,
};
use crate::{Database, DbError, DbKind, Note, Package, Scope, Want, ndb};

/// Reads one Berkeley DB or NDB database for `want`.
pub(crate) fn open(
    root: &Root,
    path: &Path,
    kind: DbKind,
    locks: &[LockHolder],
    want: Want,
    files: bool,
) -> Database {
    let mut holders = Vec::new();
    let opened = open_file(root, path, &mut holders, locks);
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
    let (contents, scope) = match opened {
        Err(e) => (Err(e), Scope::All),
        Ok((file, len)) => {
            let src = FileSource { file: &file, len };
            let r = Reader {
                root,
                path,
                kind,
                files,
            };
            if kind == DbKind::RpmBdb {
                r.bdb(&src, want, &mut notes)
            } else {
                r.ndb(&src, want, &mut notes)
            }
        }
    };
    finish(kind, path, contents, scope, notes, holders)
}

/// Opens `path` inside the root as a regular file and notes who holds locks on it.
fn open_file(
    root: &Root,
    path: &Path,
    holders: &mut Vec<LockHolder>,
    locks: &[LockHolder],
) -> Result<(File, u64), DbError> {
    let fs_err = |source| DbError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = root.open_file(path).map_err(fs_err)?;
    let meta = file.metadata().map_err(|e| fs_err(io_err(root, path, e)))?;
    if !meta.is_file() {
        return Err(fs_err(io_err(
            root,
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"),
        )));
    }
    // From the host's lock table, or F_OFD_GETLK on the descriptor without a procfs.
    *holders = holders_of(locks, &file, &meta, Probe::WholeFile);
    if let Some(dir) = path.parent() {
        holders.extend(rpm_lock_holders(root, dir, locks));
    }
    Ok((file, meta.len()))
}

fn io_err(root: &Root, path: &Path, e: std::io::Error) -> FsError {
    FsError {
        path: path.to_path_buf(),
        root: root.location().to_path_buf(),
        source: e,
    }
}

/// One database being read: where it is, for errors.
struct Reader<'a> {
    root: &'a Root,
    path: &'a Path,
    kind: DbKind,
    /// False: drop each package's file list and provides once its header is read (listing).
    files: bool,
}

type Walk<'f> = crate::bdb::Visit<'f, DbError>;

impl Reader<'_> {
    /// Turns a read error into the database's error.
    fn error(&self, e: ReadError, file: &Path) -> DbError {
        match e {
            ReadError::Parse(p) => DbError::Corrupt {
                what: p.what,
                file: file.to_path_buf(),
                offset: Some(p.offset),
            },
            ReadError::TooLarge { what, offset } => DbError::TooLarge {
                what,
                file: file.to_path_buf(),
                offset: Some(offset),
            },
            ReadError::Io { source, .. } => DbError::Read {
                path: file.to_path_buf(),
                source: io_err(self.root, file, source),
            },
        }
    }

    /// Checks every record a walk yields against `want`, keeping only the matches as packages
    /// (and, for a name or path, building no package for the others).
    fn stream(
        &self,
        want: Want,
        walk: impl FnOnce(Walk) -> Result<(), Stop<DbError>>,
    ) -> (Result<Vec<Package>, DbError>, Scope) {
        let (kind, path) = (self.kind, self.path);
        let mut out = Vec::new();
        let mut records = 0usize;
        let r = walk(&mut |offset, blob| {
            records += 1;
            let p = match want {
                Want::All if self.files => to_package(blob, offset, kind, path),
                Want::All => to_package_light(blob, offset, kind, path),
                _ => {
                    let fail = |e| Stop::Caller(header_error(e, offset, kind, path));
                    let h = Header::parse(blob).map_err(fail)?;
                    if !matches(&h, want).map_err(fail)? {
                        return Ok(());
                    }
                    // Parsed once: its digests are not checked a second time.
                    package_from(&h, offset, kind, path).map(|mut p| {
                        if !self.files {
                            crate::rpm::forget_files(&mut p);
                        }
                        p
                    })
                }
            };
            out.push(p.map_err(Stop::Caller)?);
            Ok(())
        });
        match r {
            Ok(()) => {
                let scope = match want {
                    Want::All => Scope::All,
                    _ => Scope::Scan { records },
                };
                (Ok(out), scope)
            }
            Err(Stop::Caller(e)) => (Err(e), Scope::All),
            Err(Stop::Read(e)) => (Err(self.error(e, path)), Scope::All),
        }
    }

    /// Answers `want` from a Berkeley DB `Packages`: through rpm's index files when they are
    /// there and consistent with it, else by a streaming scan.
    fn bdb<S: Source + ?Sized>(
        &self,
        src: &S,
        want: Want,
        notes: &mut Vec<Note>,
    ) -> (Result<Vec<Package>, DbError>, Scope) {
        let db = match HashDb::open(src) {
            Ok(db) => db,
            Err(e) => return (Err(self.error(e, self.path)), Scope::All),
        };
        let Some((table, keys)) = index_keys(want) else {
            return self.stream(want, |f| db.scan_packages(f));
        };
        match self.indexed(&db, table, &keys, want) {
            Ok(Some(Indexed::Answer(found))) => (Ok(found), Scope::Index),
            // The index names nothing that answers: only every header can say "not there", and
            // a header that does answer is one the index lost — a contradiction, so corrupt.
            Ok(Some(Indexed::NoAnswer(_))) => {
                let (res, scope) = self.stream(want, |f| db.scan_packages(f));
                match res {
                    Ok(found) if found.iter().any(|p| answers(want, p)) => (
                        Err(contradiction(
                            self.path,
                            format!(
                                "{table} index does not list {}, which Packages holds",
                                found
                                    .iter()
                                    .map(|p| format!("{} {}", p.name, p.evr))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        )),
                        scope,
                    ),
                    res => (res, scope),
                }
            }
            // No index files (older or minimal databases): every header answers.
            Ok(None) => self.stream(want, |f| db.scan_packages(f)),
            Err(IndexTrouble::Corrupt(e)) => (Err(e), Scope::Index),
            Err(IndexTrouble::Unreadable(why)) => {
                notes.push(Note {
                    file: self.path.to_path_buf(),
                    message: format!(
                        "rpm's {why}; answered from every package header instead \
                         (`rpm --rebuilddb` rebuilds the indexes: back up the directory first)"
                    ),
                    unreliable: false,
                });
                self.stream(want, |f| db.scan_packages(f))
            }
        }
    }

    /// Returns the record numbers index file `table` lists under `keys`, sorted; `None` when
    /// the file is absent (older or minimal databases: then only a scan can answer).
    fn index_records(&self, table: &str, keys: &[&str]) -> Result<Option<Vec<u32>>, IndexTrouble> {
        let Some(dir) = self.path.parent() else {
            return Ok(None);
        };
        let file = dir.join(table);
        // An index hostready may not open is no evidence about the records: scan instead. An
        // index whose bytes are damaged is damage: corrupt, as SQLite's would be.
        let bad = |why: String| IndexTrouble::Unreadable(format!("{table} index {why}"));
        let damaged = |what: String, offset: Option<u64>| {
            IndexTrouble::Corrupt(DbError::Corrupt {
                what: format!("rpm's {table} index {what}"),
                file: file.clone(),
                offset,
            })
        };
        match self.root.stat(&file) {
            Ok(st) if st.kind == FileKind::File => {}
            Ok(st) => return Err(bad(format!("is a {:?}, not a regular file", st.kind))),
            Err(e) if e.source.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(bad(format!("cannot be opened ({e})"))),
        }
        let opened = self
            .root
            .open_file(&file)
            .map_err(|e| bad(format!("cannot be opened ({e})")))?;
        let meta = opened
            .metadata()
            .map_err(|e| bad(format!("cannot be read ({e})")))?;
        if !meta.is_file() {
            return Err(bad("is not a regular file".into()));
        }
        let src = FileSource {
            file: &opened,
            len: meta.len(),
        };
        let idx = HashDb::open(&src).map_err(|e| damaged(format!("cannot be read: {e}"), None))?;
        let mut out = Vec::new();
        for key in keys {
            // rpm stores the empty key as one NUL byte (`bdbro_idxdbGet`).
            let k: &[u8] = if key.is_empty() {
                b"\0"
            } else {
                key.as_bytes()
            };
            match idx.get(k, false) {
                Ok(None) => {}
                Ok(Some((at, value))) => match idx.index_records(&value) {
                    Some(recs) => out.extend(recs),
                    None => {
                        return Err(damaged(
                            format!(
                                "holds a value of {} bytes for {key:?}, not (record, index) pairs",
                                value.len()
                            ),
                            Some(at),
                        ));
                    }
                },
                Err(e) => return Err(damaged(format!("cannot be read: {e}"), None)),
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(Some(out))
    }

    /// Returns the verified matches the index files lead to, or the records they named when
    /// none answers the lookup (then only a full scan can say "not there"); `None` when the
    /// index file is absent.
    ///
    /// The candidates are held to the same rules as SQLite's ([`verify_indexed`]).
    fn indexed<S: Source + ?Sized>(
        &self,
        db: &HashDb<S>,
        table: &str,
        keys: &[&str],
        want: Want,
    ) -> Result<Option<Indexed>, IndexTrouble> {
        let (kind, path) = (self.kind, self.path);
        if !db.default_hash() {
            // Records cannot be looked up by number without the hash function: only a scan.
            return Err(IndexTrouble::Unreadable(
                "index files cannot be followed: Packages was written with a hash function \
                 other than Berkeley DB's default"
                    .into(),
            ));
        }
        let Some(primary) = self.index_records(table, keys)? else {
            return Ok(None);
        };
        let provides = match want {
            Want::Name { .. } => self.index_records("Providename", keys)?.unwrap_or_default(),
            _ => Vec::new(),
        };
        let wide = |v: Vec<u32>| v.into_iter().map(u64::from).collect();
        verify_indexed(
            Candidates {
                primary: wide(primary),
                provides: wide(provides),
                table,
                keys,
                unit: "record ",
            },
            want,
            kind,
            path,
            // Record numbers come from index values of four bytes: they fit a u32.
            |hnum| match db.get(&db.record_key(hnum as u32), true) {
                Ok(found) => Ok(found),
                // A record the index led to is damaged: a scan would find the same damage.
                Err(e) => Err(self.error(e, path)),
            },
        )
        .map(Some)
    }
}

impl Reader<'_> {
    /// Answers `want` from an NDB `Packages.db`: through `Index.db` when it is there, current
    /// and consistent with it, else by a streaming scan with a note saying why.
    fn ndb<S: Source + ?Sized>(
        &self,
        src: &S,
        want: Want,
        notes: &mut Vec<Note>,
    ) -> (Result<Vec<Package>, DbError>, Scope) {
        let scan = |r: &Self| r.stream(want, |f| ndb::scan_source(src, f));
        let Some((table, keys)) = index_keys(want) else {
            return scan(self);
        };
        let index_file = self.path.parent().map_or_else(
            || Path::new("Index.db").to_path_buf(),
            |d| d.join("Index.db"),
        );
        let why = match self.ndb_indexed(src, &index_file, table, &keys, want) {
            Ok(Indexed::Answer(found)) => return (Ok(found), Scope::Index),
            Ok(Indexed::NoAnswer(_)) => {
                // Only every header can say "not there"; one that answers is a row the index
                // lost, reported (with the scan's answer, which does not depend on it).
                let (res, scope) = scan(self);
                if let Ok(found) = &res {
                    if found.iter().any(|p| answers(want, p)) {
                        notes.push(Note {
                            file: index_file,
                            message: format!(
                                "rpm's Index.db does not list {} under its {table} index, which \
                                 Packages.db holds: the index is damaged; answered from every \
                                 package header instead (`rpm --rebuilddb` rebuilds it)",
                                found
                                    .iter()
                                    .map(|p| format!("{} {}", p.name, p.evr))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                            unreliable: false,
                        });
                    }
                }
                return (res, scope);
            }
            Err(why) => why,
        };
        let (res, scope) = scan(self);
        // Damage in Packages.db itself is what the scan reports; the index is then beside
        // the point.
        if res.is_ok() {
            notes.push(Note {
                file: index_file,
                message: format!(
                    "rpm's Index.db {why}; answered from every package header instead{}",
                    if why.starts_with("is missing") {
                        ""
                    } else {
                        " (rpm rebuilds it on its next write; `rpm --rebuilddb` now)"
                    }
                ),
                unreliable: false,
            });
        }
        (res, scope)
    }

    /// Looks `keys` up in `Index.db` and verifies what it names against `Packages.db`; the
    /// error says why the index could not answer, for the note.
    fn ndb_indexed<S: Source + ?Sized>(
        &self,
        src: &S,
        index_file: &Path,
        table: &str,
        keys: &[&str],
        want: Want,
    ) -> Result<Indexed, String> {
        let (kind, path) = (self.kind, self.path);
        let generation = ndb::head(src)
            .map_err(|e| format!("cannot be used: {e}"))?
            .generation;
        match self.root.stat(index_file) {
            Ok(st) if st.kind == FileKind::File => {}
            Ok(st) => return Err(format!("is a {:?}, not a regular file", st.kind)),
            Err(e) if e.source.kind() == std::io::ErrorKind::NotFound => {
                return Err("is missing".into());
            }
            Err(e) => return Err(format!("cannot be opened ({e})")),
        }
        let opened = self
            .root
            .open_file(index_file)
            .map_err(|e| format!("cannot be opened ({e})"))?;
        let meta = opened
            .metadata()
            .map_err(|e| format!("cannot be read ({e})"))?;
        if !meta.is_file() {
            return Err("is not a regular file".into());
        }
        let isrc = FileSource {
            file: &opened,
            len: meta.len(),
        };
        let tag = if table == "Name" {
            TAG_NAME
        } else {
            TAG_BASENAMES
        };
        let tags: &[u32] = match want {
            Want::Name { .. } => &[TAG_NAME, TAG_PROVIDENAME],
            _ => &[TAG_BASENAMES],
        };
        let trouble = |t: Trouble| t.to_string();
        let idx = IndexDb::open(&isrc, generation, tags).map_err(trouble)?;
        let list = |tag: u32| -> Result<Vec<u64>, String> {
            let mut out = Vec::new();
            for key in keys {
                out.extend(
                    idx.get(tag, key.as_bytes())
                        .map_err(trouble)?
                        .into_iter()
                        .map(|(pkg, _)| u64::from(pkg)),
                );
            }
            out.sort_unstable();
            out.dedup();
            Ok(out)
        };
        let primary = list(tag)?;
        let provides = match want {
            Want::Name { .. } => list(TAG_PROVIDENAME)?,
            _ => Vec::new(),
        };
        let mut wanted: Vec<u32> = primary.iter().chain(&provides).map(|&p| p as u32).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let located = ndb::locate(src, &wanted)
            .map_err(|e| format!("cannot be followed: Packages.db's slots cannot be read ({e})"))?;
        verify_indexed(
            Candidates {
                primary,
                provides,
                table,
                keys,
                unit: "package ",
            },
            want,
            kind,
            path,
            // Package indexes come from 4-byte index words: they fit a u32.
            |pkg| {
                located
                    .fetch(src, pkg as u32)
                    .map_err(|e| self.error(e, path))
            },
        )
        .map_err(|t| match t {
            IndexTrouble::Corrupt(e) => format!("disagrees with Packages.db: {e}"),
            IndexTrouble::Unreadable(why) => why,
        })
    }
}

/// Returns true if and only if `p`, a record that matched `want`'s keys, answers the lookup.
fn answers(want: Want, p: &Package) -> bool {
    match want {
        Want::Name { query, .. } => crate::name_matches(query, p),
        _ => true,
    }
}
