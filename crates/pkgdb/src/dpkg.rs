//! dpkg's database: `var/lib/dpkg/status` (plus `status.d/*`, one file per package as on
//! distroless images) and the per-package file lists `info/<pkg>[:<arch>].list`.
//!
//! dpkg replaces `status` atomically (write `status-new`, rename), so reading it needs no lock;
//! dpkg's own lock (`lock-frontend`, `lock`) guards writers against each other, not readers.
//!
//! Every file is streamed, never read whole (a large host's `status` is tens of MB):
//! - `status` and `status.d/*` go through [`stanza::read`], one line at a time through a
//!   64 KiB buffer, checking every stanza as dpkg's parser would, and building a [`Package`]
//!   only for the stanzas a lookup keeps (a query: the name asked about; an owner lookup: the
//!   packages whose lists name the path; a listing: all). A damaged stanza anywhere makes the
//!   database corrupt, as it makes dpkg refuse it, so damage never reads as "not installed".
//! - `info/` is listed one entry at a time, and each `*.list` searched for the wanted paths'
//!   bytes through a reused 64 KiB buffer, on a few threads at once ([`lists`]).
//! - An owner lookup checks `status` on a thread of its own while the lists are searched,
//!   noting in a fixed-size index where each package's stanza may be ([`segments`]); once the
//!   owners are known, only the parts of `status` that may hold their stanzas are parsed
//!   again, through the same open file.
//!
//! Memory bound of a query: two 64 KiB buffers, 4 KiB per kept field of the stanza being read,
//! plus the records of the answer itself. Of an owner lookup: one 64 KiB buffer and 32 entry
//! names (8 KiB) per list-searching thread (at most [`lists::MAX_THREADS`]), the status
//! thread's 64 KiB buffer and 20 KiB of fields, the 129 KiB index, one directory-listing
//! buffer, each thread's stack and allocator arena, and the answer's records: a fixed bound
//! under 1 MiB (measured in `docs/bench-pkg.md`), independent of the size of `status`, of the
//! number of packages and of list files. A listing holds one [`Package`] per stanza (a few
//! hundred bytes each), the answer it prints.

mod lines;
mod lists;
mod segments;
mod stanza;

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use hostready_host::{FileKind, FsError, Root};
use memchr::memmem;

use crate::{Database, DbError, DbKind, Note, Package, ParseError, Scope, Want};
use lists::{ListHit, search_list};
use segments::Segments;

const DPKG_DIR: &str = "/var/lib/dpkg";

/// Largest `info/*.list` searched (the biggest real ones are a few MiB): a bigger one (a sparse
/// file, say) would take time without bound, though never memory.
const MAX_LIST_BYTES: u64 = 64 << 20;

/// Finds the dpkg database under the root and reads what `want` needs; `None` when there is none.
pub(crate) fn open(root: &Root, want: Want) -> Option<Database> {
    let dir = root.resolve(DPKG_DIR).ok()?.path;
    let status = dir.join("status");
    let status_d = dir.join("status.d");
    let has_status = root.stat(&status).is_ok_and(|s| s.kind == FileKind::File);
    let has_d = root.stat(&status_d).is_ok_and(|s| s.kind == FileKind::Dir);
    if !has_status && !has_d {
        return None;
    }
    let db = Db {
        root,
        info: dir.join("info"),
        status: has_status.then(|| status.clone()),
        status_d: has_d.then(|| status_d.clone()),
    };
    let path = if has_status { status } else { status_d };
    let mut notes = Vec::new();
    let mut scope = Scope::All;
    let contents = (|| -> Result<Vec<Package>, DbError> {
        match want {
            Want::All => db.read(|_| true).map(|(pkgs, _)| pkgs),
            Want::Name { keys, .. } => {
                let (pkgs, records) = db.read(|n| keys.contains(&n))?;
                scope = Scope::Scan { records };
                Ok(pkgs)
            }
            Want::Paths(wanted) => {
                // `status` is checked beside the list search; an error in a list comes first,
                // then one in `status`, as when they were read one after the other.
                // A thread the system refuses (a node out of pids, a pod at its pids limit:
                // the incident's own state) is no error: the check then runs here, after the
                // search, as it did before it had a thread of its own.
                let (hits, checked) = std::thread::scope(|s| {
                    let checked = std::thread::Builder::new()
                        .spawn_scoped(s, || db.check_status())
                        .ok();
                    let hits = lists::search(root, &db.info, wanted, lists::threads(), &|_| {});
                    let checked = match checked {
                        Some(t) => t
                            .join()
                            .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                        None => db.check_status(),
                    };
                    (hits, checked)
                });
                let hits = hits?;
                let names: HashSet<&str> = hits.iter().map(ListHit::package).collect();
                let (pkgs, records) = db.read_checked(checked?, &names)?;
                scope = Scope::Scan { records };
                Ok(owners_from(root, &db.info, &hits, &pkgs))
            }
        }
    })();
    if contents.as_ref().is_err_and(|e| e.is_corrupt()) {
        notes.push(Note {
            file: path.clone(),
            message: crate::CORRUPT_ADVICE.into(),
            unreliable: true,
        });
        scope = Scope::All;
    }
    Some(Database {
        kind: DbKind::Dpkg,
        path,
        contents,
        notes,
        lock_holders: Vec::new(),
        scope,
    })
}

/// The files of one dpkg database, inside the root.
struct Db<'r> {
    root: &'r Root,
    info: PathBuf,
    status: Option<PathBuf>,
    status_d: Option<PathBuf>,
}

impl Db<'_> {
    /// Reads `status` and every `status.d/*` (without `.md5sums`, in directory order), checking
    /// every stanza; returns the packages whose name `keep` accepts and how many stanzas there
    /// are in all.
    fn read(&self, keep: impl Fn(&str) -> bool) -> Result<(Vec<Package>, usize), DbError> {
        let mut pkgs = Vec::new();
        let mut records = 0;
        if let Some(status) = &self.status {
            let n = read_file(self.root, status, true, &keep, &mut pkgs)?;
            self.not_emptied(status, n)?;
            records += n;
        }
        records += self.read_status_d(&keep, &mut pkgs)?;
        Ok((pkgs, records))
    }

    /// Checks every stanza of `status`, building no record but the index of where each
    /// package's stanza may be; `None` when there is no `status`.
    fn check_status(&self) -> Result<Option<Checked>, DbError> {
        let Some(status) = &self.status else {
            return Ok(None);
        };
        let file = open_regular(self.root, status)?;
        let size = file
            .metadata()
            .map_err(|e| read_error(self.root, status, e))?
            .len();
        let mut index = Segments::new(size);
        let count = stanza::read(&file, true, |s| {
            index.add(s.offset, s.package);
            Ok(())
        })
        .map_err(|e| stanza_error(self.root, status, 0, e))?;
        Ok(Some(Checked { file, index, count }))
    }

    /// Like [`Db::read`] for the packages named `names`, `status` having been checked already:
    /// only the parts of it that may hold their stanzas are parsed, through the file checked.
    fn read_checked(
        &self,
        checked: Option<Checked>,
        names: &HashSet<&str>,
    ) -> Result<(Vec<Package>, usize), DbError> {
        let keep = |n: &str| names.contains(n);
        let mut pkgs = Vec::new();
        let mut records = 0;
        if let (Some(status), Some(c)) = (&self.status, checked) {
            for (start, end) in c.index.ranges(names.iter().copied()) {
                let part = Part {
                    file: &c.file,
                    at: start,
                    end,
                };
                stanza::read(part, true, |s| {
                    if keep(s.package) {
                        pkgs.push(package(s, status));
                    }
                    Ok(())
                })
                .map_err(|e| stanza_error(self.root, status, start, e))?;
            }
            self.not_emptied(status, c.count)?;
            records += c.count;
        }
        records += self.read_status_d(&keep, &mut pkgs)?;
        Ok((pkgs, records))
    }

    /// dpkg writes an empty `status` only where no package was ever installed, and then there
    /// are no file lists. Beside lists it is damage (a lost or zeroed write).
    fn not_emptied(&self, status: &Path, stanzas: usize) -> Result<(), DbError> {
        if stanzas == 0 && any_list(self.root, &self.info)? {
            return Err(DbError::Corrupt {
                what: "status lists no package, yet info/ holds package file lists \
                       (emptied or lost)"
                    .into(),
                file: status.to_path_buf(),
                offset: None,
            });
        }
        Ok(())
    }

    /// Reads every `status.d/*` (without `.md5sums`, in directory order), pushing the packages
    /// `keep` accepts; returns how many stanzas they hold.
    fn read_status_d(
        &self,
        keep: &impl Fn(&str) -> bool,
        pkgs: &mut Vec<Package>,
    ) -> Result<usize, DbError> {
        let mut records = 0;
        if let Some(status_d) = &self.status_d {
            each_entry(self.root, status_d, |name, _| {
                if name.as_bytes().ends_with(b".md5sums") {
                    return Ok(true);
                }
                let p = status_d.join(name);
                match self.root.stat(&p) {
                    // A subdirectory or a vanished entry is not a package; a device is bad
                    // input, refused by `read_file`.
                    Ok(s) if s.kind == FileKind::Dir => return Ok(true),
                    Err(e) if e.is_not_found() => return Ok(true),
                    _ => {}
                }
                records += read_file(self.root, &p, false, keep, pkgs)?;
                Ok(true)
            })?;
        }
        Ok(records)
    }
}

/// `status` checked whole, still open, with the index of where each package's stanza may be.
struct Checked {
    file: File,
    index: Segments,
    count: usize,
}

/// The bytes `at..end` of an open file, read with `pread` (the file's own position is not
/// used), so a part of `status` is parsed from the very file that was checked.
struct Part<'f> {
    file: &'f File,
    at: u64,
    end: u64,
}

impl Read for Part<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = usize::try_from(self.end - self.at).unwrap_or(usize::MAX);
        let want = buf.len().min(left);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

/// The error of reading stanzas of `path` from byte `base` on.
fn stanza_error(root: &Root, path: &Path, base: u64, e: stanza::ReadError) -> DbError {
    match e {
        stanza::ReadError::Parse(e) => DbError::Corrupt {
            what: e.what,
            file: path.to_path_buf(),
            offset: Some(base + e.offset),
        },
        stanza::ReadError::Io(source) => read_error(root, path, source),
    }
}

/// Streams one status file, pushing the kept packages; returns how many stanzas it holds.
fn read_file(
    root: &Root,
    path: &Path,
    need_status: bool,
    keep: &impl Fn(&str) -> bool,
    out: &mut Vec<Package>,
) -> Result<usize, DbError> {
    let file = open_regular(root, path)?;
    stanza::read(file, need_status, |s| {
        if keep(s.package) {
            out.push(package(s, path));
        }
        Ok(())
    })
    .map_err(|e| stanza_error(root, path, 0, e))
}

fn package(s: &stanza::Stanza, file: &Path) -> Package {
    let state = s.status.unwrap_or("install ok installed");
    let words: Vec<&str> = state.split_ascii_whitespace().collect();
    // "hold ok installed" and "deinstall ok installed" are fully installed too: the first
    // word is only the wanted selection. Anything not "ok installed" is not.
    let installed = words.get(1) == Some(&"ok") && words.get(2) == Some(&"installed");
    let (epoch, version, release) = split_version(s.version);
    Package {
        name: s.package.to_string(),
        epoch,
        version,
        release,
        arch: s.arch.to_string(),
        evr: s.version.to_string(),
        installed,
        state: words.join(" "),
        db: DbKind::Dpkg,
        db_path: file.to_path_buf(),
        files: Vec::new(),
        // dpkg's Provides are not kept: no lookup uses them, and a record stays small.
        provides: Vec::new(),
    }
}

/// Parses a whole dpkg status file held in memory, as [`open`] reads one from disk (fuzzing
/// and tests). `need_status` is false for `status.d` files, which carry no `Status` field and
/// list installed packages only.
pub fn parse_status(
    bytes: &[u8],
    file: &Path,
    need_status: bool,
) -> Result<Vec<Package>, ParseError> {
    let mut out = Vec::new();
    stanza::read(bytes, need_status, |s| {
        out.push(package(s, file));
        Ok(())
    })
    .map_err(|e| match e {
        stanza::ReadError::Parse(e) => e,
        // Reading a slice cannot fail.
        stanza::ReadError::Io(e) => ParseError::at(e.to_string(), 0),
    })?;
    Ok(out)
}

/// Checks a whole dpkg status file held in memory as [`open`] checks one, building no record;
/// returns how many stanzas it holds. Its memory does not depend on the input (fuzzing holds
/// it to that).
pub fn check_status(bytes: &[u8], need_status: bool) -> Result<usize, ParseError> {
    stanza::read(bytes, need_status, |_| Ok(())).map_err(|e| match e {
        stanza::ReadError::Parse(e) => e,
        stanza::ReadError::Io(e) => ParseError::at(e.to_string(), 0),
    })
}

/// Splits a Debian version `[epoch:]upstream[-revision]`.
fn split_version(v: &str) -> (Option<u32>, String, String) {
    let (epoch, rest) = match v.split_once(':') {
        Some((e, r)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => {
            (e.parse().ok(), r)
        }
        _ => (None, v),
    };
    match rest.rsplit_once('-') {
        Some((u, r)) => (epoch, u.to_string(), r.to_string()),
        None => (epoch, rest.to_string(), String::new()),
    }
}

/// Opens a regular file inside the root for streaming; anything else (a device, a FIFO, a
/// directory) is refused before it is opened for reading, and checked again once open.
fn open_regular(root: &Root, path: &Path) -> Result<File, DbError> {
    let not_regular = || {
        read_error(
            root,
            path,
            io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
        )
    };
    // `open_file` looks at the type through O_PATH first: a device or FIFO is refused unopened.
    let file = root.open_file(path).map_err(|source| DbError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    match file.metadata() {
        Ok(m) if m.is_file() => Ok(file),
        Ok(_) => Err(not_regular()),
        Err(e) => Err(read_error(root, path, e)),
    }
}

fn read_error(root: &Root, path: &Path, source: io::Error) -> DbError {
    DbError::Read {
        path: path.to_path_buf(),
        source: FsError {
            path: path.to_path_buf(),
            root: root.location().to_path_buf(),
            source,
        },
    }
}

/// Calls `f` with every entry of a directory inside the root (not `.`, `..`), one at a time,
/// until it returns false: `info/` holds a list per package, and a listing must not grow with
/// their number.
fn each_entry(
    root: &Root,
    dir: &Path,
    mut f: impl FnMut(&OsStr, rustix::fs::FileType) -> Result<bool, DbError>,
) -> Result<(), DbError> {
    let fd = root.open_dir(dir).map_err(|source| DbError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let entries = rustix::fs::Dir::read_from(&fd).map_err(|e| read_error(root, dir, e.into()))?;
    for entry in entries {
        let entry = entry.map_err(|e| read_error(root, dir, e.into()))?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        if !f(OsStr::from_bytes(name), entry.file_type())? {
            break;
        }
    }
    Ok(())
}

/// Returns true if and only if `info/` holds at least one `*.list`.
fn any_list(root: &Root, info: &Path) -> Result<bool, DbError> {
    let mut found = false;
    let r = each_entry(root, info, |name, _| {
        found = name.as_bytes().ends_with(b".list");
        Ok(!found)
    });
    match r {
        Ok(()) => Ok(found),
        Err(DbError::Read { path, source }) if source.is_not_found() && path == info => Ok(false),
        Err(e) => Err(e),
    }
}

/// Returns the packages whose `info/*.list` names one of `wanted` (absolute paths).
pub(crate) fn owners(
    root: &Root,
    pkgs: &[Package],
    wanted: &[String],
) -> Result<Vec<Package>, DbError> {
    let Ok(dir) = root.resolve(DPKG_DIR) else {
        return Ok(Vec::new());
    };
    let info = dir.path.join("info");
    let hits = lists::search(root, &info, wanted, lists::threads(), &|_| {})?;
    Ok(owners_from(root, &info, &hits, pkgs))
}

/// Returns the packages of `status` whose installation did not finish: a state of
/// `half-installed`, `unpacked`, `half-configured`, `triggers-awaited` or `triggers-pending`,
/// or the `reinst-required` error flag (dpkg(1), "Package states" and "Package flags") —
/// dpkg-query shows them as `iH`, `iU`, `iF`, `iW`, `iT`, `?R`. Streamed like every read of
/// `status`; only these few records are kept. `status.d` lists installed packages only.
pub(crate) fn unsettled(root: &Root) -> Result<Vec<Package>, DbError> {
    let Ok(dir) = root.resolve(DPKG_DIR) else {
        return Ok(Vec::new());
    };
    let status = dir.path.join("status");
    if !root.stat(&status).is_ok_and(|s| s.kind == FileKind::File) {
        return Ok(Vec::new());
    }
    // Nearly every host has no unfinished package: a byte search for the state words at the
    // end of a `Status` line (a tenth of the cost of parsing every stanza) settles it; any hit,
    // even one in a description, goes on to the real parse.
    if !mentions_unfinished_state(open_regular(root, &status)?)
        .map_err(|e| read_error(root, &status, e))?
    {
        return Ok(Vec::new());
    }
    let file = open_regular(root, &status)?;
    let mut out = Vec::new();
    stanza::read(file, true, |s| {
        let words: Vec<&str> = s.status.unwrap_or("").split_ascii_whitespace().collect();
        let unfinished = matches!(
            words.get(2),
            Some(
                &"half-installed"
                    | &"unpacked"
                    | &"half-configured"
                    | &"triggers-awaited"
                    | &"triggers-pending"
            )
        ) || words.get(1) == Some(&"reinstreq");
        if unfinished {
            out.push(package(s, &status));
        }
        Ok(())
    })
    .map_err(|e| stanza_error(root, &status, 0, e))?;
    Ok(out)
}

/// Returns true if and only if `file` holds one of the unfinished states' words as a `Status`
/// line ends with them (or `reinstreq` as its error flag), read through one 64 KiB buffer that
/// keeps the last few bytes of each read so a word split between reads is still seen.
fn mentions_unfinished_state(mut file: File) -> io::Result<bool> {
    const WORDS: [&[u8]; 6] = [
        b" half-installed\n",
        b" unpacked\n",
        b" half-configured\n",
        b" triggers-awaited\n",
        b" triggers-pending\n",
        b" reinstreq ",
    ];
    const KEEP: usize = 32;
    let finders: Vec<memmem::Finder> = WORDS.iter().map(memmem::Finder::new).collect();
    let mut buf = vec![0u8; lines::BUF];
    let mut have = 0;
    loop {
        let n = file.read(&mut buf[have..])?;
        if n == 0 {
            return Ok(false);
        }
        have += n;
        if finders.iter().any(|f| f.find(&buf[..have]).is_some()) {
            return Ok(true);
        }
        let keep = have.min(KEEP);
        buf.copy_within(have - keep..have, 0);
        have = keep;
    }
}

/// Returns which of `pkgs` own one of `wanted` by their own `info/` lists only (not every
/// list: a lookup among a few packages must not read thousands of files).
pub(crate) fn owners_among(
    root: &Root,
    pkgs: &[Package],
    wanted: &[String],
) -> Result<Vec<Package>, DbError> {
    let Ok(dir) = root.resolve(DPKG_DIR) else {
        return Ok(Vec::new());
    };
    let info = dir.path.join("info");
    let finders: Vec<(memmem::Finder, &String)> = wanted
        .iter()
        .map(|w| (memmem::Finder::new(w.as_bytes()), w))
        .collect();
    let mut buf = vec![0; lines::BUF];
    let mut out = Vec::new();
    for p in pkgs {
        let multi = info.join(format!("{}:{}.list", p.name, p.arch));
        let list = if root.exists(&multi) {
            multi
        } else {
            info.join(format!("{}.list", p.name))
        };
        let file = match open_regular(root, &list) {
            Ok(f) => f,
            Err(DbError::Read { source, .. }) if source.is_not_found() => continue,
            Err(e) => return Err(e),
        };
        let size = file
            .metadata()
            .map_err(|e| read_error(root, &list, e))?
            .len()
            .min(MAX_LIST_BYTES);
        let found =
            search_list(file, size, &finders, &mut buf).map_err(|e| read_error(root, &list, e))?;
        if !found.is_empty() {
            let mut q = p.clone();
            q.files = found;
            out.push(q);
        }
    }
    Ok(out)
}

/// Pairs each package (not "not-installed") with its list, `pkg:arch.list` before `pkg.list`
/// as dpkg names them, and returns those whose list names a wanted path.
fn owners_from(root: &Root, info: &Path, hits: &[ListHit], pkgs: &[Package]) -> Vec<Package> {
    let mut out = Vec::new();
    for p in pkgs.iter().filter(|p| !p.state.ends_with("not-installed")) {
        let multi = format!("{}:{}", p.name, p.arch);
        let hit = hits.iter().find(|h| h.stem == multi).or_else(|| {
            // `pkg.list` is this package's only if there is no `pkg:arch.list`.
            let multi_list = info.join(format!("{multi}.list"));
            hits.iter()
                .find(|h| h.stem == p.name)
                .filter(|_| p.arch.is_empty() || !root.exists(&multi_list))
        });
        if let Some(hit) = hit {
            let mut q = p.clone();
            q.files = hit.files.clone();
            out.push(q);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\n\
Multi-Arch: same\nVersion: 2.36-9+deb12u4\nDescription: GNU C Library\n more text\n\n\
Package: vim\nStatus: install ok half-installed\nArchitecture: amd64\nVersion: 2:9.0.1378-2\n\n\
Package: gone\nStatus: purge ok not-installed\nArchitecture: amd64\n";

    #[test]
    fn states_versions_and_arches() {
        let p = parse_status(STATUS.as_bytes(), Path::new("/s"), true).unwrap();
        assert_eq!(p.len(), 3);
        assert!(p[0].installed);
        assert_eq!(
            (p[0].version.as_str(), p[0].release.as_str()),
            ("2.36", "9+deb12u4")
        );
        assert!(!p[1].installed);
        assert_eq!(p[1].epoch, Some(2));
        assert_eq!(p[1].state, "install ok half-installed");
        assert!(!p[2].installed);
    }

    #[test]
    fn truncation_mid_paragraph_is_corrupt_not_absent() {
        let cut = &STATUS.as_bytes()[..STATUS.find("Status: install ok half").unwrap() - 1];
        // "Package: vim" survives but its Status does not.
        assert!(parse_status(cut, Path::new("/s"), true).is_err());
        let mut zeroed = STATUS.as_bytes().to_vec();
        zeroed[..64].fill(0);
        assert!(parse_status(&zeroed, Path::new("/s"), true).is_err());
    }

    #[test]
    fn native_versions_have_no_revision() {
        assert_eq!(split_version("1.2"), (None, "1.2".into(), String::new()));
        assert_eq!(
            split_version("1:1.2-3-4"),
            (Some(1), "1.2-3".into(), "4".into())
        );
    }

    #[test]
    fn list_search_sees_whole_lines_across_buffer_boundaries() {
        let wanted = ["/usr/bin/a".to_string(), "/usr/bin/b".to_string()];
        let finders: Vec<(memmem::Finder, &String)> = wanted
            .iter()
            .map(|w| (memmem::Finder::new(w.as_bytes()), w))
            .collect();
        let mut buf = vec![0; 64];
        let search = |text: &[u8], buf: &mut Vec<u8>| {
            let mut f = tempfile::tempfile().unwrap();
            std::io::Write::write_all(&mut f, text).unwrap();
            std::io::Seek::rewind(&mut f).unwrap();
            search_list(f, text.len() as u64, &finders, buf).unwrap()
        };
        // Each path at every position relative to the 64-byte buffer, the last without `\n`.
        for pad in 0..70 {
            let text = format!("{}\n/usr/bin/a\n/usr/bin/ab\n/usr/bin/b", "x".repeat(pad));
            assert_eq!(search(text.as_bytes(), &mut buf), wanted, "{pad}");
            let text = format!("{}\n/usr/bin/aa\n/usr/bin/b/\n", "x".repeat(pad));
            assert!(search(text.as_bytes(), &mut buf).is_empty(), "{pad}");
        }
        // A line longer than the buffer is skipped whole, even where it ends in a wanted path.
        let text = format!("{}/usr/bin/a\n/usr/bin/b\n", "x".repeat(200));
        assert_eq!(search(text.as_bytes(), &mut buf), ["/usr/bin/b"]);
    }
}

/// `unsettled` and `owners_among` (issue 13: the half-installed executable note).
#[cfg(test)]
mod unsettled_tests {
    #![allow(clippy::disallowed_methods)] // tests write a dpkg database with std::fs
    use super::*;

    fn root_with(status: &str, lists: &[(&str, &str)]) -> (tempfile::TempDir, Root) {
        let d = tempfile::tempdir().unwrap();
        let dpkg = d.path().join("var/lib/dpkg");
        std::fs::create_dir_all(dpkg.join("info")).unwrap();
        std::fs::write(dpkg.join("status"), status).unwrap();
        for (name, text) in lists {
            std::fs::write(dpkg.join("info").join(name), text).unwrap();
        }
        let root = Root::open(d.path()).unwrap();
        (d, root)
    }

    #[test]
    fn only_unfinished_packages_are_kept_and_only_their_lists_read() {
        let status = "Package: a\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n\n\
Package: b\nStatus: install ok unpacked\nArchitecture: amd64\nVersion: 2\n\n\
Package: c\nStatus: install ok half-configured\nArchitecture: all\nVersion: 3\n\n\
Package: d\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 4\n\n\
Package: e\nStatus: install reinstreq half-installed\nArchitecture: amd64\nVersion: 5\n\n";
        let (_d, root) = root_with(
            status,
            &[
                ("a.list", "/usr/bin/a\n"),
                ("b:amd64.list", "/usr/bin/b\n"),
                ("c.list", "/usr/bin/c\n"),
            ],
        );
        let u = unsettled(&root).unwrap();
        let names: Vec<&str> = u.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["b", "c", "e"]);
        let w = |p: &str| vec![p.to_string()];
        let o = owners_among(&root, &u, &w("/usr/bin/b")).unwrap();
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].state, "install ok unpacked");
        assert!(
            owners_among(&root, &u, &w("/usr/bin/a"))
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            owners_among(&root, &u, &w("/usr/bin/c")).unwrap()[0].name,
            "c"
        );
    }

    #[test]
    fn a_settled_database_is_not_parsed_and_a_state_across_reads_is_seen() {
        // Every package installed: the byte search answers, so even damage after the
        // first stanza is never parsed (nothing is decided from it).
        let (_d, root) = root_with(
            "Package: a\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n\n\x00\x01 junk",
            &[],
        );
        assert!(unsettled(&root).unwrap().is_empty());
        // The word straddles the 64 KiB read boundary.
        let head = "Package: a\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\nDescription: x\n ";
        let next = "\n\nPackage: b\nStatus: install ok";
        // " unpacked\n" starts 4 bytes before the end of the first read.
        let n = lines::BUF - 4 - head.len() - next.len();
        let mut status = format!("{head}{}\n\n", "y".repeat(n));
        status.push_str(
            "Package: b\nStatus: install ok unpacked\nArchitecture: amd64\nVersion: 2\n\n",
        );
        let at = status.find(" unpacked\n").unwrap();
        assert!(at < lines::BUF && at + 10 > lines::BUF - 32, "{at}");
        let (_d, root) = root_with(&status, &[]);
        let u = unsettled(&root).unwrap();
        assert_eq!(u.len(), 1, "{at}");
        assert_eq!(u[0].name, "b");
    }
}
