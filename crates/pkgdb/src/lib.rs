//! Package databases read with no lock taken, no process started and nothing written: dpkg's
//! `status` (+ `status.d/`) and `info/*.list`, and rpm's three on-disk formats (SQLite
//! `rpmdb.sqlite`, Berkeley DB hash `Packages`, NDB `Packages.db`).
//!
//! hostready uses this only to *explain* a failed requirement (which package ships the missing
//! `iscsiadm`, is it recorded as installed while its file is gone), never to decide one.
//!
//! # API for callers (`check`, `doctor`, the CLI)
//! - [`list_host`]`(&Host)`: every package, without file lists (bounded by the package
//!   count, not the database size); what `pkg list` shows.
//! - [`open_host`]`(&Host)` (or [`open_host_databases`]`(&Root)` without a procfs, so without
//!   lock holders) finds and reads every database under the root. It never fails: each
//!   [`Database`] carries its packages or the [`DbError`] that stopped it.
//! - [`Databases::kinds`]: which database kinds exist on this host (none on most immutable hosts).
//! - [`Databases::query`]`(name)`: every record of a package by name (`name`, `name.arch`,
//!   `name:arch`), installed or not, plus whether the answer is [`Lookup::complete`].
//! - [`Databases::owner_of`]`(path)`: every package owning a path (the path as given and as
//!   resolved inside the root).
//! - [`Databases::list`]: every package of every readable database.
//! - [`query_host`]`(&Host, name)` and [`owner_host`]`(&Host, path)` (or [`query_with_proc`],
//!   [`owner_with_proc`]): the same answers as [`Databases::query`] and [`Databases::owner_of`],
//!   reading only what one lookup needs (rpm's SQLite index tables, a byte search of dpkg's
//!   files), with a full read of any database whose index cannot be trusted for the answer.
//!
//! - [`health`]: which rpm format a file is and whether its header agrees with its length
//!   ([`health::header_health`]), the rpm file names ([`health::RPM_FILES`]) under
//!   [`RPM_DIRS`]: database-format health without a full read (doctor's file findings).
//!
//! A [`Lookup`] that is not complete means some database could not be read reliably (corrupt,
//! unreadable, locked mid-write): "not found" is then *not* "not installed".

mod bdb;
mod dpkg;
mod header;
pub mod health;
mod locks;
mod ndb;
mod ndb_index;
mod ofd_lock;
mod paged;
mod pages;
mod rpm;
mod sqlite;
mod sqlite_vfs;

use std::path::{Path, PathBuf};

use hostready_host::{FsError, Host, Root};
use serde::Serialize;

pub use bdb::{parse as parse_bdb, scan as scan_bdb};
pub use dpkg::{check_status as check_dpkg_status, parse_status as parse_dpkg_status};
pub use header::{Header, HeaderError, RpmInfo};
pub use locks::{LockHolder, parse_proc_locks};
pub use ndb::{parse as parse_ndb, scan as scan_ndb};
pub use ndb_index::lookup as lookup_ndb_index;
pub use rpm::{RPM_DIRS, open_one as open_rpm_file};

/// Remediation text shared by every corrupt-database report.
pub const CORRUPT_ADVICE: &str = "back up the whole database directory before repairing: \
`rpm --rebuilddb` rebuilds from the records it can still read and can silently drop packages \
(for dpkg, restore /var/lib/dpkg/status from /var/backups/dpkg.status.*)";

/// The kind of database a package record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DbKind {
    Dpkg,
    RpmSqlite,
    RpmBdb,
    RpmNdb,
}

impl DbKind {
    /// Returns the name used in output: `dpkg`, `rpm-sqlite`, `rpm-bdb`, `rpm-ndb`.
    pub fn as_str(self) -> &'static str {
        match self {
            DbKind::Dpkg => "dpkg",
            DbKind::RpmSqlite => "rpm-sqlite",
            DbKind::RpmBdb => "rpm-bdb",
            DbKind::RpmNdb => "rpm-ndb",
        }
    }
}

/// Why a database (or part of it) could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The bytes are inconsistent: truncated, zeroed, scribbled. Never means "not installed".
    #[error("corrupt: {what} ({file}{})", offset.map(|o| format!(" at byte {o}")).unwrap_or_default())]
    Corrupt {
        what: String,
        /// The database file, inside the root.
        file: PathBuf,
        offset: Option<u64>,
    },
    /// The file could not be opened or read.
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: FsError,
    },
    /// SQLite refused to read the file for a reason other than corruption.
    #[error("SQLite cannot read {path}{}", if *locked { " (it is locked by another process)" } else { "" })]
    Sqlite {
        path: PathBuf,
        locked: bool,
        #[source]
        source: rusqlite::Error,
    },
    /// The file changed identity while being read (replaced or a symlink swapped under us).
    #[error("{path} was replaced while it was being read")]
    Replaced { path: PathBuf },
    /// A record (or the file) is larger than hostready reads within its memory bound, though
    /// not larger than rpm accepts: the database cannot be answered for, so "unknown".
    #[error("too large to read within hostready's memory bound: {what} ({file}{})", offset.map(|o| format!(" at byte {o}")).unwrap_or_default())]
    TooLarge {
        what: String,
        file: PathBuf,
        offset: Option<u64>,
    },
}

impl DbError {
    /// Returns true if and only if this error says the database bytes are inconsistent.
    pub fn is_corrupt(&self) -> bool {
        match self {
            DbError::Corrupt { .. } => true,
            DbError::Sqlite { source, .. } => sqlite::is_corrupt(source),
            _ => false,
        }
    }
}

/// Where and why the bytes of a BDB, NDB or dpkg file are inconsistent (parsers of raw bytes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} (byte {offset})")]
pub struct ParseError {
    pub what: String,
    /// Byte offset in the file.
    pub offset: u64,
}

impl ParseError {
    /// Says what is wrong at byte `offset`.
    pub(crate) fn at(what: impl Into<String>, offset: usize) -> ParseError {
        ParseError {
            what: what.into(),
            offset: offset as u64,
        }
    }
}

/// One package record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Package {
    pub name: String,
    pub epoch: Option<u32>,
    /// Upstream version (dpkg: without epoch and revision).
    pub version: String,
    /// rpm release, or dpkg's Debian revision; empty where there is none.
    pub release: String,
    /// Architecture; empty for rpm pseudo-packages (`gpg-pubkey`).
    pub arch: String,
    /// The version as the package manager prints it (`1:2.3-4.el9`).
    pub evr: String,
    /// True if and only if the package is fully installed (dpkg: "install ok installed").
    pub installed: bool,
    /// The package manager's state: dpkg's `Status` field, `installed` for rpm.
    pub state: String,
    /// Which kind of database holds this record.
    pub db: DbKind,
    /// The database file or directory, inside the root.
    pub db_path: PathBuf,
    /// Files owned (rpm: from the header; dpkg: filled only by owner lookups).
    #[serde(skip)]
    pub files: Vec<String>,
    #[serde(skip)]
    pub provides: Vec<String>,
}

/// A statement about how far a database's contents can be trusted right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    /// The database file it is about, inside the root.
    pub file: PathBuf,
    pub message: String,
    /// True if and only if "not found" in this database cannot be trusted because of it.
    pub unreliable: bool,
}

/// One database found under the root.
#[derive(Debug)]
pub struct Database {
    pub kind: DbKind,
    /// The database file (dpkg: the `status` file), inside the root, symlinks resolved.
    pub path: PathBuf,
    /// Every record, or why none could be read.
    pub contents: Result<Vec<Package>, DbError>,
    /// Locks held by others, journals, stale WALs.
    pub notes: Vec<Note>,
    /// Processes holding a lock on the database file, from the host's `/proc/locks`.
    pub lock_holders: Vec<LockHolder>,
    /// How much of the database `contents` covers.
    pub scope: Scope,
}

/// How much of a database was read: all of it, or only what one lookup needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// `contents` holds every record.
    All,
    /// Every record was checked against the lookup; `contents` holds the matches only.
    Scan {
        /// How many records the database holds.
        records: usize,
    },
    /// rpm's own index table named the candidates; `contents` holds the ones that, parsed,
    /// really match.
    Index,
    /// A byte search found the candidates (dpkg stanzas, file lists); `contents` holds the
    /// ones that, parsed, really match.
    Search,
}

impl Scope {
    /// Returns how many records the database holds, when this read learned it.
    pub fn records(self, contents: &Result<Vec<Package>, DbError>) -> Option<usize> {
        match (self, contents) {
            (Scope::All, Ok(p)) => Some(p.len()),
            (Scope::Scan { records }, Ok(_)) => Some(records),
            _ => None,
        }
    }
}

/// What one lookup reads: everything, one package name, or the owners of some paths.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Want<'a> {
    All,
    /// Every name a query could mean (see [`name_keys`]) and the query itself.
    Name {
        keys: &'a [&'a str],
        query: &'a str,
    },
    /// Absolute paths, as package databases spell them.
    Paths(&'a [String]),
}

/// The answer to one lookup together with the databases consulted for it.
#[derive(Debug)]
pub struct Answer {
    pub lookup: Lookup,
    /// Every database found; `contents` holds what this lookup read (see [`Database::scope`]).
    pub dbs: Vec<Database>,
}

impl Database {
    /// Returns true if and only if a "not found" answer from this database can be trusted.
    pub fn reliable(&self) -> bool {
        self.contents.is_ok() && !self.notes.iter().any(|n| n.unreliable)
    }
}

/// Every package database of one host.
#[derive(Debug)]
pub struct Databases<'r> {
    root: &'r Root,
    pub dbs: Vec<Database>,
}

/// The answer to a query or owner lookup.
#[derive(Debug, Default, Serialize)]
pub struct Lookup {
    /// Matching records (installed or not: check [`Package::installed`]).
    pub packages: Vec<Package>,
    /// Databases that could not be read, as "kind path: error".
    pub unreadable: Vec<String>,
    /// Locks, journals and other caveats of the databases consulted.
    pub notes: Vec<Note>,
    /// True if and only if at least one database exists and every one was read reliably.
    pub complete: bool,
}

impl Lookup {
    /// Returns true if and only if some matching record is fully installed.
    pub fn installed(&self) -> bool {
        self.packages.iter().any(|p| p.installed)
    }
}

/// Finds and reads every package database under `root`, without lock-holder information.
pub fn open_host_databases(root: &Root) -> Databases<'_> {
    open_with_proc(root, None)
}

/// Finds and reads every package database of `host`, naming lock holders from its procfs.
pub fn open_host(host: &Host) -> Databases<'_> {
    open_with_proc(host.fs(), host.proc().ok())
}

/// Finds and reads every database under `root`; `proc` (if any) supplies `/proc/locks`.
pub fn open_with_proc<'r>(root: &'r Root, proc: Option<&Root>) -> Databases<'r> {
    Databases {
        root,
        dbs: open_for(root, proc, Want::All),
    }
}

/// Answers [`Databases::query`] for `name`, reading only what it needs from each database.
pub fn query_host(host: &Host, name: &str) -> Answer {
    query_with_proc(host.fs(), host.proc().ok(), name)
}

/// Answers [`Databases::owner_of`] for `path`, reading only what it needs from each database.
pub fn owner_host(host: &Host, path: impl AsRef<Path>) -> Answer {
    owner_with_proc(host.fs(), host.proc().ok(), path)
}

/// Like [`query_host`], with the host as a root and an optional procfs for lock holders.
///
/// Every database found is consulted. An rpm SQLite database answers from its `Name` index
/// (every candidate verified by parsing its header, digests included); a dpkg database from
/// the stanzas a byte search finds. When either finds nothing, the whole database is read.
/// An rpm index that contradicts the records (a row naming a missing record or one of another
/// name, a record of that name it does not list) makes the database corrupt, so a damaged
/// index never turns into "not installed".
pub fn query_with_proc(root: &Root, proc: Option<&Root>, name: &str) -> Answer {
    let keys = name_keys(name);
    let dbs = open_for(
        root,
        proc,
        Want::Name {
            keys: &keys,
            query: name,
        },
    );
    let lookup = lookup(&dbs, |_, p| name_matches(name, p));
    Answer { lookup, dbs }
}

/// Like [`owner_host`], with the host as a root and an optional procfs for lock holders.
///
/// An rpm SQLite database answers from its `Basenames` index (every candidate verified against
/// its header's file list), reading every header when the index names no owner (an owner the
/// index does not list makes the database corrupt); dpkg's file lists are searched bytewise, and only the packages
/// owning the path are parsed from `status`.
pub fn owner_with_proc(root: &Root, proc: Option<&Root>, path: impl AsRef<Path>) -> Answer {
    let wanted = wanted_paths(root, path.as_ref());
    let dbs = open_for(root, proc, Want::Paths(&wanted));
    // Every record in `contents` was already matched against the file lists.
    let lookup = lookup(&dbs, |_, _| true);
    Answer { lookup, dbs }
}

/// Like [`open_host`] followed by [`Databases::list`], without keeping any package's file
/// list or provides: memory grows with the number of packages only (a few hundred bytes
/// each), never with the size of their headers. `pkg list` uses this.
pub fn list_host(host: &Host) -> Answer {
    list_with_proc(host.fs(), host.proc().ok())
}

/// Like [`list_host`], with the host as a root and an optional procfs for lock holders.
///
/// The packages move into [`Lookup::packages`] instead of being copied there: each
/// [`Database`] keeps only its record count ([`Scope::Scan`]: every record matched), so a
/// listing holds each package once.
pub fn list_with_proc(root: &Root, proc: Option<&Root>) -> Answer {
    let mut dbs = open_for_with(root, proc, Want::All, false);
    let mut packages = Vec::new();
    for db in &mut dbs {
        if let Ok(pkgs) = &mut db.contents {
            db.scope = Scope::Scan {
                records: pkgs.len(),
            };
            if packages.is_empty() {
                packages = std::mem::take(pkgs);
            } else {
                packages.append(pkgs);
            }
        }
    }
    let mut lookup = lookup(&dbs, |_, _| true);
    lookup.packages = packages;
    Answer { lookup, dbs }
}

fn open_for(root: &Root, proc: Option<&Root>, want: Want) -> Vec<Database> {
    open_for_with(root, proc, want, true)
}

/// Opens every database for `want`; `files` says whether rpm packages keep their file lists
/// and provides.
fn open_for_with(root: &Root, proc: Option<&Root>, want: Want, files: bool) -> Vec<Database> {
    let locks = proc
        .and_then(|p| p.read_to_string("locks").ok())
        .map(|t| parse_proc_locks(&t))
        .unwrap_or_default();
    let mut dbs = Vec::new();
    if let Some(db) = dpkg::open(root, want) {
        dbs.push(db);
    }
    dbs.extend(rpm::open_all(root, &locks, want, files));
    dbs
}

/// Returns every package name a query could mean: itself, and itself without a trailing
/// `.arch` (rpm) or `:arch` (dpkg) at any dot or colon (arches contain neither).
pub(crate) fn name_keys(query: &str) -> Vec<&str> {
    let mut keys = vec![query];
    keys.extend(
        query
            .char_indices()
            .filter(|&(i, c)| (c == '.' || c == ':') && i > 0)
            .map(|(i, _)| &query[..i]),
    );
    keys
}

/// Returns true if and only if `query` names `p`: `name`, `name.arch` or `name:arch`.
pub(crate) fn name_matches(query: &str, p: &Package) -> bool {
    p.name == query
        || (!p.arch.is_empty()
            && query
                .strip_prefix(p.name.as_str())
                .and_then(|r| r.strip_prefix('.').or_else(|| r.strip_prefix(':')))
                == Some(p.arch.as_str()))
}

/// The path as given and as resolved inside the root, spelled as package databases do.
fn wanted_paths(root: &Root, path: &Path) -> Vec<String> {
    let mut wanted = vec![normalize(path)];
    if let Some(real) = resolve_in_root(root, path).filter(|r| !wanted.contains(r)) {
        wanted.push(real);
    }
    wanted
}

/// Collects matching records, caveats and unreadable databases into one answer.
fn lookup(dbs: &[Database], keep: impl Fn(&Database, &Package) -> bool) -> Lookup {
    let mut out = Lookup {
        complete: !dbs.is_empty(),
        ..Lookup::default()
    };
    for db in dbs {
        out.notes.extend(db.notes.iter().cloned());
        if !db.reliable() {
            out.complete = false;
        }
        match &db.contents {
            Ok(pkgs) => out
                .packages
                .extend(pkgs.iter().filter(|p| keep(db, p)).cloned()),
            Err(e) => out.unreadable.push(format!(
                "{} {}: {}",
                db.kind.as_str(),
                db.path.display(),
                error_chain(e)
            )),
        }
    }
    out
}

impl<'r> Databases<'r> {
    /// Returns the kinds of database present, in a stable order, without duplicates.
    pub fn kinds(&self) -> Vec<DbKind> {
        let mut k: Vec<DbKind> = self.dbs.iter().map(|d| d.kind).collect();
        k.sort();
        k.dedup();
        k
    }

    /// Returns every record of every database, with the caveats of all of them.
    pub fn list(&self) -> Lookup {
        self.lookup(|_, _| true)
    }

    /// Returns every record named `name` (also accepted: `name.arch` for rpm, `name:arch` for dpkg).
    pub fn query(&self, name: &str) -> Lookup {
        self.lookup(|_, p| name_matches(name, p))
    }

    /// Returns every package that owns `path`, matched as given and as resolved in the root.
    pub fn owner_of(&self, path: impl AsRef<Path>) -> Lookup {
        let wanted = wanted_paths(self.root, path.as_ref());
        let mut out = self.lookup(|db, p| match db.kind {
            DbKind::Dpkg => false,
            _ => p.files.iter().any(|f| wanted.iter().any(|w| w == f)),
        });
        for db in &self.dbs {
            if let (DbKind::Dpkg, Ok(pkgs)) = (db.kind, &db.contents) {
                match dpkg::owners(self.root, pkgs, &wanted) {
                    Ok(found) => out.packages.extend(found),
                    Err(e) => {
                        out.unreadable.push(format!("dpkg file lists: {e}"));
                        out.complete = false;
                    }
                }
            }
        }
        out
    }

    fn lookup(&self, keep: impl Fn(&Database, &Package) -> bool) -> Lookup {
        lookup(&self.dbs, keep)
    }
}

/// Returns the dpkg packages whose installation did not finish (`half-installed`, `unpacked`,
/// `half-configured`, `triggers-awaited`, `triggers-pending`, or `reinst-required`), from
/// `status` streamed; none where there is no dpkg database. For explaining a found executable
/// (issue 13): read once per run, then [`dpkg_owners_among`] per executable.
pub fn dpkg_unsettled(root: &Root) -> Result<Vec<Package>, DbError> {
    dpkg::unsettled(root)
}

/// Returns which of `pkgs` (dpkg records, such as [`dpkg_unsettled`]'s) own `path`, matched as
/// given and as resolved in the root, reading only those packages' file lists.
pub fn dpkg_owners_among(
    root: &Root,
    pkgs: &[Package],
    path: impl AsRef<Path>,
) -> Result<Vec<Package>, DbError> {
    if pkgs.is_empty() {
        return Ok(Vec::new());
    }
    dpkg::owners_among(root, pkgs, &wanted_paths(root, path.as_ref()))
}

/// Formats an error with its sources, `a: b: c`.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Makes `path` absolute and drops `.` and `..` lexically, as package databases spell paths.
fn normalize(path: &Path) -> String {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in path.components() {
        match c {
            std::path::Component::Normal(n) => parts.push(n),
            std::path::Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    let mut s = String::new();
    for p in parts {
        s.push('/');
        s.push_str(&p.to_string_lossy());
    }
    if s.is_empty() { "/".into() } else { s }
}

/// Resolves the directory part of `path` inside the root (the last component stays as is, so a
/// symlink that a package ships is found under its own name).
fn resolve_in_root(root: &Root, path: &Path) -> Option<String> {
    let norm = PathBuf::from(normalize(path));
    let parent = norm.parent()?;
    let name = norm.file_name()?;
    let dir = root.resolve(parent).ok()?;
    Some(normalize(&dir.path.join(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_spells_paths_as_databases_do() {
        assert_eq!(normalize(Path::new("usr/./bin/../sbin/x")), "/usr/sbin/x");
        assert_eq!(normalize(Path::new("/")), "/");
    }

    #[test]
    fn name_keys_cover_every_arch_suffix() {
        assert_eq!(name_keys("curl"), ["curl"]);
        assert_eq!(
            name_keys("python3.11.x86_64"),
            ["python3.11.x86_64", "python3", "python3.11"]
        );
        assert_eq!(name_keys("libc6:amd64"), ["libc6:amd64", "libc6"]);
        assert_eq!(name_keys(".x"), [".x"]);
    }
}
