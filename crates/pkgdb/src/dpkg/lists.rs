//! The search of every `info/*.list` for the wanted paths, on a few threads at once.
//!
//! dpkg keeps no index from files to packages, so an exact owner lookup reads every list
//! (several packages may own one path: shared directories, diversions); on a large host that
//! is tens of thousands of small files, and the time goes to opening them. So:
//! - the lists are searched by up to [`MAX_THREADS`] threads (the calling thread is one), as
//!   many as the CPUs this process may use; each takes the next few entries of the one
//!   directory listing under a lock and searches them through its own [`lines::BUF`] buffer;
//! - each list costs `openat2`, `fstat`, one `read` and `close`: it is opened relative to the
//!   listed directory ([`Root::open_listed`], which says what that trades), the size from the
//!   `fstat` of the opened descriptor caps the reading, so one `read` suffices for a list
//!   shorter than the buffer;
//! - the answer is what one thread reading the listing in order gives: hits are returned in
//!   listing order, and of several bad lists the first in the listing is the error, because an
//!   entry is skipped only when it comes after a list already found bad.
//!
//! Memory: per thread one [`lines::BUF`] buffer and the names of at most [`BATCH`] entries
//! (each at most 255 bytes), plus the directory listing's buffer and the hits (the answer).

use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use hostready_host::{FileKind, Root, RootDir};
use memchr::memmem;

use super::{MAX_LIST_BYTES, lines, read_error};
use crate::DbError;

/// The most threads that search lists: past four the directory and the kernel's dentry locks,
/// not the CPUs, set the pace, and each thread holds a buffer.
pub(super) const MAX_THREADS: usize = 4;

/// Entries a thread takes from the listing at a time: enough that the lock is rarely taken,
/// few enough that threads share the work evenly.
const BATCH: usize = 32;

/// A list naming a wanted path.
#[derive(Debug)]
pub(super) struct ListHit {
    /// `pkg` or `pkg:arch`.
    pub stem: String,
    /// The wanted paths it names.
    pub files: Vec<String>,
}

impl ListHit {
    pub fn package(&self) -> &str {
        self.stem.split(':').next().unwrap_or_default()
    }
}

/// How many threads search lists here: the CPUs this process may run on (`Cpus_allowed` of
/// its own `/proc/self/status`), at most [`MAX_THREADS`]; one when that cannot be read.
///
/// Not `std::thread::available_parallelism`: it also reads this machine's cgroup files under
/// `/sys/fs/cgroup`, outside the root and the process's own `/proc` (the hostile-root suite
/// holds every read there). A cgroup CPU quota is so not counted; under one, the threads
/// share the quota, doing the same work as one thread would.
pub(super) fn threads() -> usize {
    hostready_host::procfs::live::self_status()
        .and_then(|s| allowed_cpus(&s))
        .unwrap_or(1)
        .clamp(1, MAX_THREADS)
}

/// The number of CPUs in the `Cpus_allowed` mask (hexadecimal words split by commas) of a
/// `/proc/<pid>/status` text.
fn allowed_cpus(status: &str) -> Option<usize> {
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed:"))?;
    let digits = mask.trim().chars().filter(|&c| c != ',');
    let mut n = 0;
    for c in digits {
        n += c.to_digit(16)?.count_ones() as usize;
    }
    Some(n)
}

/// Called with each list's name after it was listed and before it is opened; tests swap the
/// file there, as a host changing under the reader would.
pub(super) type BeforeOpen<'a> = &'a (dyn Fn(&OsStr) + Sync);

/// Searches every `info/*.list` for the bytes of each wanted path on `threads` threads; a
/// missing `info/` has no lists.
pub(super) fn search(
    root: &Root,
    info: &Path,
    wanted: &[String],
    threads: usize,
    before_open: BeforeOpen,
) -> Result<Vec<ListHit>, DbError> {
    let dir = match root.open_root_dir(info) {
        Ok(d) => d,
        Err(e) if e.is_not_found() => return Ok(Vec::new()),
        Err(source) => {
            return Err(DbError::Read {
                path: info.to_path_buf(),
                source,
            });
        }
    };
    let listing = rustix::fs::Dir::read_from(&dir).map_err(|e| read_error(root, info, e.into()))?;
    let finders: Vec<(memmem::Finder, &String)> = wanted
        .iter()
        .map(|w| (memmem::Finder::new(w.as_bytes()), w))
        .collect();
    let shared = Shared {
        root,
        dir: &dir,
        finders: &finders,
        before_open,
        listing: Mutex::new(Listing {
            dir: listing,
            next: 0,
            done: false,
        }),
        first_bad: AtomicUsize::new(usize::MAX),
        error: Mutex::new(None),
    };
    let threads = threads.clamp(1, MAX_THREADS);
    let mut hits = std::thread::scope(|s| {
        // A thread the system refuses (out of pids: the incident's own state) is one searcher
        // fewer, never an error: the calling thread takes what the others would have.
        let others: Vec<_> = (1..threads)
            .filter_map(|_| {
                std::thread::Builder::new()
                    .spawn_scoped(s, || shared.work())
                    .ok()
            })
            .collect();
        let mut hits = shared.work();
        for t in others {
            match t.join() {
                Ok(h) => hits.extend(h),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        hits
    });
    if let Some((_, e)) = shared.error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    hits.sort_unstable_by_key(|(at, _)| *at);
    Ok(hits.into_iter().map(|(_, h)| h).collect())
}

/// The state the searching threads share.
struct Shared<'a> {
    root: &'a Root,
    dir: &'a RootDir,
    finders: &'a [(memmem::Finder<'a>, &'a String)],
    before_open: BeforeOpen<'a>,
    listing: Mutex<Listing>,
    /// The listing position of the first bad list found so far (`usize::MAX`: none).
    first_bad: AtomicUsize,
    /// That list's error.
    error: Mutex<Option<(usize, DbError)>>,
}

/// The one directory listing, read under the lock.
struct Listing {
    dir: rustix::fs::Dir,
    /// The position in the listing of the next entry.
    next: usize,
    done: bool,
}

/// Entries taken from the listing: names packed into one buffer.
#[derive(Default)]
struct Batch {
    names: Vec<u8>,
    /// Position in the listing, end of the name in `names`, kind the listing reported.
    entries: Vec<(usize, usize, Option<FileKind>)>,
}

impl Shared<'_> {
    /// One thread's share: takes entries until the listing ends or a bad list is found before
    /// them, returning its hits with their positions in the listing.
    fn work(&self) -> Vec<(usize, ListHit)> {
        let mut buf = vec![0; lines::BUF];
        let mut batch = Batch::default();
        let mut hits = Vec::new();
        while self.take(&mut batch) {
            let mut start = 0;
            for &(at, end, kind) in &batch.entries {
                let name = OsStr::from_bytes(&batch.names[start..end]);
                start = end;
                if at > self.first_bad.load(Ordering::Relaxed) {
                    return hits;
                }
                match self.search_one(name, kind, &mut buf) {
                    Ok(Some(files)) => {
                        let stem = &name.as_bytes()[..name.len() - b".list".len()];
                        // `take` kept only names that are UTF-8.
                        let stem = String::from_utf8_lossy(stem).into_owned();
                        hits.push((at, ListHit { stem, files }));
                    }
                    Ok(None) => {}
                    Err(e) => self.fail(at, e),
                }
            }
        }
        hits
    }

    /// Fills `batch` with the next entries that are lists; false when there are none left.
    fn take(&self, batch: &mut Batch) -> bool {
        batch.names.clear();
        batch.entries.clear();
        let mut l = self.listing.lock().unwrap_or_else(|p| p.into_inner());
        while !l.done && batch.entries.len() < BATCH {
            let at = l.next;
            let entry = match l.dir.next() {
                None => {
                    l.done = true;
                    break;
                }
                Some(Err(e)) => {
                    l.done = true;
                    drop(l);
                    self.fail(at, read_error(self.root, self.dir.path(), e.into()));
                    return !batch.entries.is_empty();
                }
                Some(Ok(entry)) => entry,
            };
            l.next += 1;
            let name = entry.file_name().to_bytes();
            // A list is `<package>[:<arch>].list`, a UTF-8 name (package names are ASCII).
            if !name.ends_with(b".list") || std::str::from_utf8(name).is_err() {
                continue;
            }
            use rustix::fs::FileType as T;
            let kind = match entry.file_type() {
                T::RegularFile => Some(FileKind::File),
                T::Directory => continue,
                T::Symlink => Some(FileKind::Symlink),
                T::Unknown => None,
                _ => Some(FileKind::Other),
            };
            batch.names.extend_from_slice(name);
            batch.entries.push((at, batch.names.len(), kind));
        }
        !batch.entries.is_empty()
    }

    /// Records a bad list at listing position `at`, keeping the first in the listing.
    fn fail(&self, at: usize, e: DbError) {
        let mut error = self.error.lock().unwrap_or_else(|p| p.into_inner());
        if error.as_ref().is_none_or(|(first, _)| at < *first) {
            *error = Some((at, e));
            self.first_bad.store(at, Ordering::Relaxed);
        }
    }

    /// Searches one list; `None` when it names no wanted path or vanished since the listing.
    fn search_one(
        &self,
        name: &OsStr,
        kind: Option<FileKind>,
        buf: &mut [u8],
    ) -> Result<Option<Vec<String>>, DbError> {
        (self.before_open)(name);
        // The path is made only for an error: tens of thousands of lists are searched, and
        // each join is an allocation.
        let path = || self.dir.path().join(name);
        let (file, st) = match self.root.open_listed(self.dir, name, kind) {
            Ok(f) => f,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(source) => {
                return Err(DbError::Read {
                    path: path(),
                    source,
                });
            }
        };
        if st.size > MAX_LIST_BYTES {
            return Err(read_error(
                self.root,
                &path(),
                io::Error::new(
                    io::ErrorKind::FileTooLarge,
                    format!("larger than {MAX_LIST_BYTES} bytes: no real file list is"),
                ),
            ));
        }
        let found = search_list(file, st.size, self.finders, buf)
            .map_err(|e| read_error(self.root, &path(), e))?;
        Ok((!found.is_empty()).then_some(found))
    }
}

/// Returns the wanted paths that are whole lines of one list, read through `buf`.
///
/// The buffer is searched up to its last `\n`; the unfinished line is moved to the front and
/// the rest read after it. A line longer than the buffer is longer than any path (`PATH_MAX`
/// is 4 KiB) and is skipped.
///
/// Reading stops at `size` (the file's size when opened), which saves the `read(2)` that would
/// only report the end of each of thousands of small lists (and an empty list is not read at
/// all); a list that grew since is read as it was.
pub(super) fn search_list(
    mut file: impl Read,
    size: u64,
    finders: &[(memmem::Finder, &String)],
    buf: &mut [u8],
) -> io::Result<Vec<String>> {
    let mut found: Vec<String> = Vec::new();
    if size == 0 {
        return Ok(found);
    }
    let mut keep = 0;
    let mut skipping = false;
    let mut left = size;
    let search = |region: &[u8], found: &mut Vec<String>| {
        for (f, w) in finders {
            if !found.contains(w) && f.find_iter(region).any(|at| is_line(region, at, w.len())) {
                found.push((*w).clone());
            }
        }
    };
    loop {
        let room = buf
            .len()
            .min(keep + usize::try_from(left).unwrap_or(usize::MAX));
        let n = match file.read(&mut buf[keep..room]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        left -= n as u64;
        if n == 0 || (left == 0 && room < buf.len()) {
            // The end: what is left in the buffer is the last line, searched with the rest.
            let end = keep + n;
            if !skipping {
                search(&buf[..end], &mut found);
            } else if let Some(i) = memchr::memchr(b'\n', &buf[..end]) {
                search(&buf[i + 1..end], &mut found);
            }
            return Ok(found);
        }
        let filled = keep + n;
        match memchr::memrchr(b'\n', &buf[..filled]) {
            Some(last) => {
                let mut from = 0;
                if skipping {
                    // The tail of an over-long line ends at the first `\n`.
                    from = memchr::memchr(b'\n', &buf[..filled]).map_or(filled, |i| i + 1);
                    skipping = false;
                }
                search(&buf[from..=last], &mut found);
                buf.copy_within(last + 1..filled, 0);
                keep = filled - last - 1;
            }
            None if filled == buf.len() => {
                skipping = true;
                keep = 0;
            }
            None => keep = filled,
        }
    }
}

/// Returns true if and only if `len` bytes at `at` are a whole line (`\r\n` endings allowed).
fn is_line(buf: &[u8], at: usize, len: usize) -> bool {
    let end = at + len;
    (at == 0 || buf[at - 1] == b'\n')
        && match buf.get(end) {
            None | Some(b'\n') => true,
            Some(b'\r') => matches!(buf.get(end + 1), None | Some(b'\n')),
            Some(_) => false,
        }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::disallowed_methods)] // tests write dpkg file lists with std::fs
    use super::*;
    use std::fs;
    use std::path::PathBuf;
    use std::sync::atomic::AtomicBool;
    use std::time::{Duration, Instant};

    const INFO: &str = "/var/lib/dpkg/info";

    /// A root whose `info/` holds `n` lists; every seventh names `/usr/bin/x`.
    fn lists(n: usize) -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let info = d.path().join("var/lib/dpkg/info");
        fs::create_dir_all(&info).unwrap();
        for i in 0..n {
            let x = if i % 7 == 0 { "/usr/bin/x\n" } else { "" };
            fs::write(
                info.join(format!("p{i}.list")),
                format!("/.\n/usr\n{x}/usr/share/p{i}\n"),
            )
            .unwrap();
        }
        fs::write(info.join("p1.md5sums"), "not a list\n").unwrap();
        fs::create_dir(info.join("dir.list")).unwrap();
        (d, info)
    }

    fn wanted() -> Vec<String> {
        vec!["/usr/bin/x".to_string()]
    }

    fn stems(hits: &[ListHit]) -> Vec<&str> {
        hits.iter().map(|h| h.stem.as_str()).collect()
    }

    #[test]
    fn allowed_cpus_count_the_mask_bits() {
        let status =
            |mask: &str| format!("Name:\tx\nCpus_allowed:\t{mask}\nCpus_allowed_list:\t0\n");
        assert_eq!(allowed_cpus(&status("3")), Some(2));
        assert_eq!(allowed_cpus(&status("ff,00000001")), Some(9));
        assert_eq!(allowed_cpus(&status("zz")), None);
        assert_eq!(allowed_cpus("Name:\tx\n"), None);
        assert!((1..=MAX_THREADS).contains(&threads()));
    }

    #[test]
    fn every_thread_count_gives_one_threads_hits_and_first_error() {
        let (d, info) = lists(700);
        let root = Root::open(d.path()).unwrap();
        let one = search(&root, Path::new(INFO), &wanted(), 1, &|_| {}).unwrap();
        assert_eq!(one.len(), 100);
        for threads in 2..=MAX_THREADS {
            let many = search(&root, Path::new(INFO), &wanted(), threads, &|_| {}).unwrap();
            assert_eq!(stems(&many), stems(&one), "{threads} threads");
            assert!(many.iter().all(|h| h.files == wanted()));
        }
        // Two bad lists: whichever thread meets one, the error is the first in the listing's
        // order, naming that list, as one thread reading them in order would say.
        hostready_testkit::fakehost::mknod(
            &info.join("p350.list"),
            rustix::fs::FileType::Fifo,
            0,
            0,
        );
        hostready_testkit::fakehost::mknod(
            &info.join("p20.list"),
            rustix::fs::FileType::Fifo,
            0,
            0,
        );
        let first = match search(&root, Path::new(INFO), &wanted(), 1, &|_| {}) {
            Err(DbError::Read { path, source }) => {
                assert!(source.is_not_regular(), "{source:?}");
                path
            }
            other => panic!("{other:?}"),
        };
        for threads in 1..=MAX_THREADS {
            for _ in 0..5 {
                match search(&root, Path::new(INFO), &wanted(), threads, &|_| {}) {
                    Err(DbError::Read { path, .. }) => assert_eq!(path, first, "{threads}"),
                    other => panic!("{threads} threads: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn a_list_over_the_cap_is_an_error_naming_it_on_any_thread() {
        let (d, info) = lists(200);
        let f = fs::File::create(info.join("p133.list")).unwrap();
        f.set_len(MAX_LIST_BYTES + 1).unwrap();
        let root = Root::open(d.path()).unwrap();
        for threads in 1..=MAX_THREADS {
            match search(&root, Path::new(INFO), &wanted(), threads, &|_| {}) {
                Err(DbError::Read { path, source }) => {
                    assert!(path.ends_with("p133.list"), "{path:?}");
                    assert!(source.is_too_large(), "{source:?}");
                }
                other => panic!("{threads} threads: {other:?}"),
            }
        }
    }

    /// Between the listing and the open, `p3.list` (a regular file when listed) is replaced:
    /// by a FIFO and by a device node, refused naming it, promptly; by a symlink to a list
    /// naming `/usr/bin/x`, followed inside the root, as a symlinked list present from the
    /// start is.
    #[test]
    fn a_list_swapped_between_listing_and_open_is_refused_or_followed_inside_the_root() {
        type Swap<'a> = (&'a str, &'a (dyn Fn(&Path) + Sync));
        let swaps: [Swap; 4] = [
            ("FIFO", &|p| {
                hostready_testkit::fakehost::mknod(p, rustix::fs::FileType::Fifo, 0, 0)
            }),
            ("character device", &|p| {
                hostready_testkit::fakehost::mknod(p, rustix::fs::FileType::CharacterDevice, 1, 3)
            }),
            ("symlink", &|p| {
                let _ = fs::remove_file(p);
                std::os::unix::fs::symlink("/usr/share/x.list", p).unwrap();
            }),
            ("symlink climbing out", &|p| {
                let _ = fs::remove_file(p);
                std::os::unix::fs::symlink("../../../../../../../usr/share/x.list", p).unwrap();
            }),
        ];
        for threads in [1, MAX_THREADS] {
            for (what, swap) in swaps {
                let (d, info) = lists(100);
                fs::create_dir_all(d.path().join("usr/share")).unwrap();
                fs::write(
                    d.path().join("usr/share/x.list"),
                    "/usr/bin/y\n/usr/bin/x\n",
                )
                .unwrap();
                let root = Root::open(d.path()).unwrap();
                let victim = info.join("p3.list");
                let swapped = AtomicBool::new(false);
                let hook = |name: &OsStr| {
                    if name == "p3.list" {
                        swap(&victim);
                        swapped.store(true, Ordering::SeqCst);
                    }
                };
                let started = Instant::now();
                let r = search(&root, Path::new(INFO), &wanted(), threads, &hook);
                assert!(swapped.load(Ordering::SeqCst), "{what}");
                assert!(
                    started.elapsed() < Duration::from_secs(5),
                    "{what}: blocked"
                );
                if what.starts_with("symlink") {
                    let hits = r.unwrap();
                    assert_eq!(hits.len(), 16, "{what}");
                    assert!(stems(&hits).contains(&"p3"), "{what}");
                } else {
                    match r {
                        Err(DbError::Read { path, source }) => {
                            assert_eq!(path, Path::new(INFO).join("p3.list"), "{what}");
                            assert!(source.is_not_regular(), "{what}: {source:?}");
                            assert!(format!("{}", source.source).contains(what), "{source}");
                        }
                        other => panic!("{what}: {other:?}"),
                    }
                }
            }
        }
    }
}
