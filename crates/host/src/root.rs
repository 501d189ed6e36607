//! A directory treated as `/`: every path, and every symlink met on the way (absolute ones
//! included), resolves inside it and can never escape.
//!
//! Two resolvers that agree:
//! - `openat2(2)` with `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`, one syscall, where the kernel
//!   (>= 5.6) and the seccomp policy allow it — the fast path for plain reads;
//! - a component-by-component walker built on `O_PATH | O_NOFOLLOW` file descriptors, used where
//!   `openat2` is missing and whenever the caller wants the chain of symlinks that was followed
//!   (PATH lookup reports it). Holding a descriptor per directory makes the walk immune to a
//!   directory being swapped for a symlink half-way.
//!
//! `..` at the root stays at the root, as in `chroot(2)`; more than [`MAX_SYMLINKS`] links in one
//! resolution is `ELOOP`, never a hang.

// This is the rooted view itself: the one place that opens paths by name (see the module header).
#![allow(clippy::disallowed_methods)]

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use rustix::fd::{AsRawFd, OwnedFd};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

mod listed;
pub use listed::RootDir;

/// The most symlinks one resolution follows, as Linux's own `MAXSYMLINKS`.
pub const MAX_SYMLINKS: usize = 40;

/// Largest file [`Root::read`] accepts; host text files are far smaller, and a huge one (or a
/// device) must not make the checker allocate without bound.
pub const MAX_READ_BYTES: u64 = 64 << 20;

/// How a verified regular file is opened: `NONBLOCK` and `NOCTTY` are belt and braces, in case
/// anything but a regular file ever got this far.
const READ: OFlags = OFlags::RDONLY
    .union(OFlags::NOCTTY)
    .union(OFlags::NONBLOCK)
    .union(OFlags::CLOEXEC);

/// An error about one path inside a root; the path is the one inside the root.
#[derive(Debug, thiserror::Error)]
#[error("{path} (under {root})")]
pub struct FsError {
    /// The path as asked for, inside the root.
    pub path: PathBuf,
    /// Where the root is on this machine.
    pub root: PathBuf,
    #[source]
    pub source: io::Error,
}

impl FsError {
    /// Returns true if and only if the path (or a directory on the way) does not exist.
    pub fn is_not_found(&self) -> bool {
        self.source.kind() == io::ErrorKind::NotFound
    }

    /// Returns true if and only if access was refused (`EACCES` or `EPERM`): the object may well
    /// exist, so this is never a sign of absence.
    pub fn is_permission_denied(&self) -> bool {
        // std maps both EACCES and EPERM to this kind.
        self.source.kind() == io::ErrorKind::PermissionDenied
    }

    /// Returns true if and only if the file was larger than the reader's bound.
    pub fn is_too_large(&self) -> bool {
        self.source.kind() == io::ErrorKind::FileTooLarge
    }

    /// Returns true if and only if the path names something other than a regular file (a
    /// device, FIFO, socket or directory) where a regular file was needed.
    pub fn is_not_regular(&self) -> bool {
        self.source.get_ref().is_some_and(|e| e.is::<NotRegular>())
    }

    /// Returns true if and only if resolution gave up because of too many symlinks (a loop).
    pub fn is_loop(&self) -> bool {
        self.source.raw_os_error() == Some(Errno::LOOP.raw_os_error())
    }
}

/// One symlink followed during a resolution.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Link {
    /// The link's own path inside the root.
    pub path: PathBuf,
    /// What the link says, verbatim.
    pub target: PathBuf,
}

/// The outcome of resolving a path: where it really is inside the root, and how we got there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The canonical path inside the root (absolute, no links, no `.` or `..`).
    pub path: PathBuf,
    /// Every symlink followed, in order.
    pub links: Vec<Link>,
}

impl Resolved {
    /// Returns the first symlink followed whose target, read as the host's own kernel would
    /// outside any root, climbs above `/` with `..` (`/run/x.sock -> ../../../../etc`): inside
    /// the root it resolved to something else than its author meant, so an answer about it
    /// would be about the wrong file.
    pub fn escaping_link(&self) -> Option<&Link> {
        self.links.iter().find(|l| {
            let mut depth: i64 = if l.target.is_absolute() {
                0
            } else {
                l.path.parent().map_or(0, |p| {
                    p.components()
                        .filter(|c| matches!(c, Component::Normal(_)))
                        .count() as i64
                })
            };
            for c in l.target.components() {
                match c {
                    Component::ParentDir => depth -= 1,
                    Component::Normal(_) => depth += 1,
                    _ => {}
                }
                if depth < 0 {
                    return true;
                }
            }
            false
        })
    }
}

/// File type and permission facts of a resolved path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub kind: FileKind,
    pub mode: u32,
    pub uid: u32,
    pub size: u64,
}

/// The kind of file a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Other,
}

/// A directory handle that acts as `/` for every read made through it.
#[derive(Debug)]
pub struct Root {
    dir: OwnedFd,
    location: PathBuf,
    use_openat2: bool,
    /// The directory is a procfs's root (see [`Root::is_procfs_root`]), decided once.
    procfs: bool,
}

impl Root {
    /// Opens `location` as a root, using `openat2` if this kernel offers it; a directory this
    /// process may not search is refused (`EACCES`), since nothing inside could be read.
    pub fn open(location: impl Into<PathBuf>) -> Result<Root, FsError> {
        let location = location.into();
        let dir = rustix::fs::open(
            &location,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| FsError {
            path: PathBuf::from("/"),
            root: location.clone(),
            source: e.into(),
        })?;
        // An O_PATH descriptor opens even a directory we may not search; without search
        // permission every path inside would fail one by one, and the reasons (permission
        // denied) would be lost among per-check unknowns. Say it once, here.
        rustix::fs::accessat(
            &dir,
            ".",
            rustix::fs::Access::EXEC_OK,
            rustix::fs::AtFlags::EACCESS,
        )
        .map_err(|e| FsError {
            path: PathBuf::from("/"),
            root: location.clone(),
            source: e.into(),
        })?;
        let use_openat2 = openat2_works(&dir);
        let procfs = procfs_root(&dir);
        Ok(Root {
            dir,
            location,
            use_openat2,
            procfs,
        })
    }

    /// Opens `location` as a root that never uses `openat2`, so tests can exercise the walker.
    pub fn open_without_openat2(location: impl Into<PathBuf>) -> Result<Root, FsError> {
        let mut root = Root::open(location)?;
        root.use_openat2 = false;
        Ok(root)
    }

    /// Returns where this root lives on the machine running hostready.
    pub fn location(&self) -> &Path {
        &self.location
    }

    /// Returns true if and only if plain reads use `openat2(RESOLVE_IN_ROOT)`.
    pub fn uses_openat2(&self) -> bool {
        self.use_openat2
    }

    /// Resolves `path` inside the root, following every symlink, and reports the links followed.
    pub fn resolve(&self, path: impl AsRef<Path>) -> Result<Resolved, FsError> {
        let path = path.as_ref();
        self.walk(path, true)
            .map(|w| Resolved {
                path: w.canonical(),
                links: w.links,
            })
            .map_err(|e| self.error(path, e))
    }

    /// Opens a regular file for reading, resolving `path` inside the root.
    ///
    /// The object is examined through an `O_PATH` descriptor first (which runs no driver code
    /// and cannot block), and only a regular file is then opened for reading — the very inode
    /// that was examined, so a device node or FIFO swapped in meanwhile is never opened. A
    /// device's `open()` has effects of its own (`/dev/watchdog` arms the watchdog, `/dev/ptmx`
    /// allocates a terminal, a tape rewinds), so checking after opening would be too late.
    pub fn open_file(&self, path: impl AsRef<Path>) -> Result<File, FsError> {
        let path = path.as_ref();
        self.open_regular(path)
            .map(|(file, _)| file)
            .map_err(|e| self.error(path, e))
    }

    /// Reads a whole regular file inside the root, refusing anything larger than
    /// [`MAX_READ_BYTES`] and anything that is not a regular file: a host file swapped for a
    /// link to a device (`/dev/zero`) or a FIFO must not stream into memory, block, or even be
    /// opened (see [`Root::open_file`]).
    pub fn read(&self, path: impl AsRef<Path>) -> Result<Vec<u8>, FsError> {
        self.read_bounded(path, MAX_READ_BYTES)
    }

    /// Reads a whole regular file of at most `max` bytes; a longer one is an error
    /// ([`FsError::is_too_large`]), never a silent prefix. Memory: at most `max + 1` bytes.
    pub fn read_bounded(&self, path: impl AsRef<Path>, max: u64) -> Result<Vec<u8>, FsError> {
        let path = path.as_ref();
        let (file, st) = self.open_regular(path).map_err(|e| self.error(path, e))?;
        if st.st_size as u64 > max {
            return Err(self.error(path, too_large(max)));
        }
        // procfs and sysfs files say size 0: the size is only a hint, the cap is the bound.
        let mut out = Vec::with_capacity((st.st_size as u64).min(max) as usize);
        file.take(max + 1)
            .read_to_end(&mut out)
            .map_err(|e| self.error(path, e))?;
        if out.len() as u64 > max {
            return Err(self.error(path, too_large(max)));
        }
        Ok(out)
    }

    /// Reads at most `max` bytes from the start of a regular file with a single `read(2)`: for
    /// small procfs files (`comm`, `stat`) one call returns everything, and scanning thousands
    /// of processes is dominated by syscalls.
    pub fn read_head(&self, path: impl AsRef<Path>, max: usize) -> Result<Vec<u8>, FsError> {
        let path = path.as_ref();
        let (mut file, _) = self.open_regular(path).map_err(|e| self.error(path, e))?;
        let mut buf = vec![0; max];
        let n = file.read(&mut buf).map_err(|e| self.error(path, e))?;
        buf.truncate(n);
        Ok(buf)
    }

    /// Reads a whole file as text; invalid UTF-8 is replaced, since host text files are not ours.
    pub fn read_to_string(&self, path: impl AsRef<Path>) -> Result<String, FsError> {
        self.read(path).map(lossy)
    }

    /// Reads a whole file of at most `max` bytes as text (see [`Root::read_bounded`]).
    pub fn read_to_string_bounded(
        &self,
        path: impl AsRef<Path>,
        max: u64,
    ) -> Result<String, FsError> {
        self.read_bounded(path, max).map(lossy)
    }

    /// Opens the directory `path` inside this root as a root of its own (resolved inside this
    /// one like any other path, so a `proc` that is a symlink out of the root stays inside).
    pub fn subroot(&self, path: impl AsRef<Path>) -> Result<Root, FsError> {
        let path = path.as_ref();
        let dir = self
            .open_flags(path, OFlags::PATH | OFlags::DIRECTORY)
            .map_err(|e| self.error(path, e))?;
        let procfs = procfs_root(&dir);
        Ok(Root {
            dir,
            location: self.location.join(relative(path)),
            use_openat2: self.use_openat2,
            procfs,
        })
    }

    /// Returns the device (major, minor) of the filesystem this root's directory is on, as
    /// `mountinfo` spells it.
    pub(crate) fn device(&self) -> io::Result<(u32, u32)> {
        let st = rustix::fs::fstat(&self.dir)?;
        Ok((rustix::fs::major(st.st_dev), rustix::fs::minor(st.st_dev)))
    }

    /// Returns true if and only if this root's directory is the root of a mounted procfs (its
    /// filesystem is procfs and its inode is procfs's root inode, not a directory inside one).
    pub fn is_procfs_root(&self) -> bool {
        self.procfs
    }

    /// Returns facts about the file `path` names, following symlinks inside the root.
    pub fn stat(&self, path: impl AsRef<Path>) -> Result<Stat, FsError> {
        let path = path.as_ref();
        self.open_flags(path, OFlags::PATH)
            .and_then(|fd| stat_fd(&fd))
            .map_err(|e| self.error(path, e))
    }

    /// Returns facts about `path` itself, not following a final symlink.
    pub fn symlink_stat(&self, path: impl AsRef<Path>) -> Result<Stat, FsError> {
        let path = path.as_ref();
        self.walk(path, false)
            .and_then(|w| stat_fd(w.fd(&self.dir)))
            .map_err(|e| self.error(path, e))
    }

    /// Returns true if and only if `path` exists inside the root (following symlinks).
    pub fn exists(&self, path: impl AsRef<Path>) -> bool {
        self.stat(path).is_ok()
    }

    /// Lists the names in a directory inside the root (without `.` and `..`), unsorted.
    pub fn read_dir(&self, path: impl AsRef<Path>) -> Result<Vec<OsString>, FsError> {
        self.read_dir_entries(path)
            .map(|v| v.into_iter().map(|(n, _)| n).collect())
    }

    /// Opens a directory for listing one entry at a time (`rustix::fs::Dir::read_from`),
    /// resolving `path` inside the root. `O_DIRECTORY` makes the kernel refuse anything that
    /// is not a directory before any driver's `open` could run.
    pub fn open_dir(&self, path: impl AsRef<Path>) -> Result<File, FsError> {
        let path = path.as_ref();
        self.open_flags(path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NONBLOCK)
            .map(File::from)
            .map_err(|e| self.error(path, e))
    }

    /// Lists a directory with each entry's kind (not following symlinks), unsorted. Where the
    /// filesystem does not report kinds in the listing, the entry is examined one by one.
    pub fn read_dir_entries(
        &self,
        path: impl AsRef<Path>,
    ) -> Result<Vec<(OsString, FileKind)>, FsError> {
        let path = path.as_ref();
        let list = || -> io::Result<Vec<(OsString, FileKind)>> {
            let fd = self.open_flags(path, OFlags::RDONLY | OFlags::DIRECTORY)?;
            let mut out = Vec::new();
            for entry in rustix::fs::Dir::read_from(&fd)? {
                let entry = entry?;
                let name = entry.file_name().to_bytes();
                if name == b"." || name == b".." {
                    continue;
                }
                let kind = match entry.file_type() {
                    rustix::fs::FileType::RegularFile => FileKind::File,
                    rustix::fs::FileType::Directory => FileKind::Dir,
                    rustix::fs::FileType::Symlink => FileKind::Symlink,
                    rustix::fs::FileType::Unknown => {
                        let st = rustix::fs::statat(
                            &fd,
                            entry.file_name(),
                            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
                        )?;
                        kind_of(rustix::fs::FileType::from_raw_mode(st.st_mode))
                    }
                    _ => FileKind::Other,
                };
                out.push((OsStr::from_bytes(name).to_os_string(), kind));
            }
            Ok(out)
        };
        list().map_err(|e| self.error(path, e))
    }

    /// Returns the node `path` names (following symlinks inside the root): its type, and for a
    /// device its device number. Examined through an `O_PATH` descriptor, so no driver runs.
    pub fn node(&self, path: impl AsRef<Path>) -> Result<Node, FsError> {
        let path = path.as_ref();
        self.open_flags(path, OFlags::PATH)
            .and_then(|fd| Ok(node_of(&rustix::fs::fstat(&fd)?)))
            .map_err(|e| self.error(path, e))
    }

    /// Returns `statvfs(3)` and `statfs(2)` figures of the filesystem holding `path`, through
    /// an `O_PATH` descriptor resolved inside the root (Linux >= 3.12 answers `fstatfs` on one).
    pub fn statvfs(
        &self,
        path: impl AsRef<Path>,
    ) -> Result<(rustix::fs::StatVfs, rustix::fs::StatFs), FsError> {
        let path = path.as_ref();
        self.open_flags(path, OFlags::PATH)
            .and_then(|fd| Ok((rustix::fs::fstatvfs(&fd)?, rustix::fs::fstatfs(&fd)?)))
            .map_err(|e| self.error(path, e))
    }

    /// Opens the block device node `path` read-only, checking through an `O_PATH` descriptor
    /// that it is a block device before the open that runs its driver, and opening that very
    /// inode (through `/proc/self/fd`), so nothing swapped in meanwhile is opened. A character
    /// device (a tape, `/dev/watchdog`) is never opened. Returns it with its device number.
    pub fn open_block_device(&self, path: impl AsRef<Path>) -> Result<(File, (u32, u32)), FsError> {
        let path = path.as_ref();
        let open = || -> io::Result<(File, (u32, u32))> {
            let opath = self.open_flags(path, OFlags::PATH)?;
            let st = rustix::fs::fstat(&opath)?;
            let ft = rustix::fs::FileType::from_raw_mode(st.st_mode);
            if ft != rustix::fs::FileType::BlockDevice {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("not a block device: {}", kind_name(ft)),
                ));
            }
            let Some(fd_dir) = self_fd_dir() else {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "no /proc/self/fd to open the examined inode through",
                ));
            };
            let name = opath.as_raw_fd().to_string();
            let fd = rustix::fs::openat(fd_dir, name.as_str(), READ, Mode::empty())?;
            let dev = (rustix::fs::major(st.st_rdev), rustix::fs::minor(st.st_rdev));
            Ok((File::from(fd), dev))
        };
        open().map_err(|e| self.error(path, e))
    }

    /// Opens the regular file `path` names, checking its type through an `O_PATH` descriptor
    /// before any open that could run a driver or block, and returns it with its `fstat`.
    fn open_regular(&self, path: &Path) -> io::Result<(File, rustix::fs::Stat)> {
        // Inside a procfs, without crossing a mount, there are only regular files, directories
        // and symlinks (magic ones refused): one open is as safe as the checked two, and
        // scans of thousands of `<pid>/comm` stay one syscall each. A mount on the way (where
        // a device could be bound, as runtimes mask `/proc/kcore` with `/dev/null`) says
        // EXDEV and takes the checked path.
        if self.procfs && self.use_openat2 {
            match rustix::fs::openat2(
                &self.dir,
                relative(path),
                READ,
                Mode::empty(),
                ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_XDEV,
            ) {
                Ok(fd) => {
                    let st = rustix::fs::fstat(&fd)?;
                    require_regular(&st)?;
                    return Ok((File::from(fd), st));
                }
                Err(Errno::XDEV) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(fd_dir) = self_fd_dir() {
            let opath = self.open_flags(path, OFlags::PATH)?;
            let st = rustix::fs::fstat(&opath)?;
            require_regular(&st)?;
            // Reopening the `O_PATH` descriptor through its `/proc/self/fd` entry opens the
            // inode it holds, not whatever the path names now: no swap can get in between.
            // The kernel checks read permission on that inode as for any open.
            let name = opath.as_raw_fd().to_string();
            let fd = rustix::fs::openat(fd_dir, name.as_str(), READ, Mode::empty())?;
            return Ok((File::from(fd), st));
        }
        self.open_regular_by_parent(path)
    }

    /// The fallback of [`Root::open_regular`] for a process without a procfs: open the name in
    /// its parent without following a link, then make sure the object opened is the one
    /// examined. A swap in between is still refused, though the swapped-in object's open() has
    /// run; only this fallback has that window.
    fn open_regular_by_parent(&self, path: &Path) -> io::Result<(File, rustix::fs::Stat)> {
        let walk = self.walk(path, true)?;
        let Some((object, name)) = walk.dirs.last() else {
            return Err(not_regular(rustix::fs::FileType::Directory));
        };
        let st = rustix::fs::fstat(object)?;
        require_regular(&st)?;
        let parent = match walk.dirs.len() {
            1 => &self.dir,
            n => &walk.dirs[n - 2].0,
        };
        let fd = rustix::fs::openat(
            parent,
            name.as_os_str(),
            READ | OFlags::NOFOLLOW,
            Mode::empty(),
        )?;
        let now = rustix::fs::fstat(&fd)?;
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) {
            return Err(io::Error::other("replaced while being opened"));
        }
        Ok((File::from(fd), st))
    }

    fn error(&self, path: &Path, source: impl Into<io::Error>) -> FsError {
        FsError {
            path: path.to_path_buf(),
            root: self.location.clone(),
            source: source.into(),
        }
    }

    fn open_flags(&self, path: &Path, flags: OFlags) -> io::Result<OwnedFd> {
        let flags = flags | OFlags::CLOEXEC;
        if self.use_openat2 {
            let rel = relative(path);
            return Ok(rustix::fs::openat2(
                &self.dir,
                rel,
                flags,
                Mode::empty(),
                ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
            )?);
        }
        let walk = self.walk(path, true)?;
        match walk.dirs.len() {
            // The root itself: reopen it with the wanted flags.
            0 => Ok(rustix::fs::openat(&self.dir, ".", flags, Mode::empty())?),
            n => {
                let parent = if n >= 2 {
                    &walk.dirs[n - 2].0
                } else {
                    &self.dir
                };
                let name = &walk.dirs[n - 1].1;
                // NOFOLLOW: the walker already decided the last component is not a symlink;
                // if it has become one since, fail rather than follow it out of the root.
                Ok(rustix::fs::openat(
                    parent,
                    name.as_os_str(),
                    flags | OFlags::NOFOLLOW,
                    Mode::empty(),
                )?)
            }
        }
    }

    fn walk(&self, path: &Path, follow_last: bool) -> io::Result<Walk> {
        let mut walk = Walk::default();
        // Components still to visit, last one first, so a link's target is pushed in front.
        let mut pending: Vec<OsString> = Vec::new();
        push_components(&mut pending, path);
        while let Some(name) = pending.pop() {
            if name == ".." {
                walk.dirs.pop();
                continue;
            }
            let here = walk.fd(&self.dir);
            let fd = rustix::fs::openat(
                here,
                name.as_os_str(),
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let st = stat_fd(&fd)?;
            let is_last = pending.is_empty();
            if st.kind == FileKind::Symlink && (follow_last || !is_last) {
                if walk.links.len() >= MAX_SYMLINKS {
                    return Err(Errno::LOOP.into());
                }
                let target = rustix::fs::readlinkat(&fd, "", Vec::new())?;
                let target = PathBuf::from(OsStr::from_bytes(target.to_bytes()));
                walk.links.push(Link {
                    path: walk.canonical().join(&name),
                    target: target.clone(),
                });
                if target.is_absolute() {
                    walk.dirs.clear();
                }
                push_components(&mut pending, &target);
                continue;
            }
            if !is_last && st.kind != FileKind::Dir {
                return Err(Errno::NOTDIR.into());
            }
            walk.dirs.push((fd, name));
        }
        Ok(walk)
    }
}

/// The state of one walk: a descriptor per directory entered below the root.
#[derive(Default)]
struct Walk {
    dirs: Vec<(OwnedFd, OsString)>,
    links: Vec<Link>,
}

impl Walk {
    fn fd<'a>(&'a self, root: &'a OwnedFd) -> &'a OwnedFd {
        self.dirs.last().map(|(fd, _)| fd).unwrap_or(root)
    }

    fn canonical(&self) -> PathBuf {
        let mut p = PathBuf::from("/");
        p.extend(self.dirs.iter().map(|(_, n)| n));
        p
    }
}

fn push_components(pending: &mut Vec<OsString>, path: &Path) {
    let start = pending.len();
    for c in path.components() {
        match c {
            Component::Normal(n) => pending.push(n.to_os_string()),
            Component::ParentDir => pending.push(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    pending[start..].reverse();
}

fn relative(path: &Path) -> &Path {
    let rel = path.strip_prefix("/").unwrap_or(path);
    if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    }
}

fn stat_fd(fd: impl rustix::fd::AsFd) -> io::Result<Stat> {
    let st = rustix::fs::fstat(fd)?;
    Ok(Stat {
        kind: kind_of(rustix::fs::FileType::from_raw_mode(st.st_mode)),
        mode: st.st_mode & 0o7777,
        uid: st.st_uid,
        size: st.st_size as u64,
    })
}

/// What a path names, in more detail than [`FileKind`]: sockets and devices apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    /// `file`, `directory`, `socket`, `block device`, `character device`, `FIFO`, `symlink`.
    pub kind: &'static str,
    /// The device number (major, minor) of a block or character device.
    pub rdev: Option<(u32, u32)>,
    /// The device (major, minor) of the filesystem holding it (`st_dev`), as `mountinfo`
    /// spells a mount's.
    pub dev: (u32, u32),
}

impl Node {
    /// Returns true if and only if the node is a Unix socket.
    pub fn is_socket(&self) -> bool {
        self.kind == "socket"
    }
}

fn node_of(st: &rustix::fs::Stat) -> Node {
    let ft = rustix::fs::FileType::from_raw_mode(st.st_mode);
    let device = matches!(
        ft,
        rustix::fs::FileType::BlockDevice | rustix::fs::FileType::CharacterDevice
    );
    Node {
        kind: kind_name(ft),
        rdev: device.then(|| (rustix::fs::major(st.st_rdev), rustix::fs::minor(st.st_rdev))),
        dev: (rustix::fs::major(st.st_dev), rustix::fs::minor(st.st_dev)),
    }
}

fn kind_name(ft: rustix::fs::FileType) -> &'static str {
    use rustix::fs::FileType as T;
    match ft {
        T::RegularFile => "file",
        T::Directory => "directory",
        T::Socket => "socket",
        T::BlockDevice => "block device",
        T::CharacterDevice => "character device",
        T::Fifo => "FIFO",
        T::Symlink => "symlink",
        _ => "unknown kind of file",
    }
}

fn kind_of(ft: rustix::fs::FileType) -> FileKind {
    match ft {
        rustix::fs::FileType::RegularFile => FileKind::File,
        rustix::fs::FileType::Directory => FileKind::Dir,
        rustix::fs::FileType::Symlink => FileKind::Symlink,
        _ => FileKind::Other,
    }
}

/// Returns true if and only if `dir` is the root of a procfs: its filesystem is procfs and its
/// inode is `PROC_ROOT_INO` (the kernel's `fs/proc/root.c`), not a directory inside one.
// `f_type`'s integer type differs between architectures; the casts are not no-ops everywhere.
#[allow(clippy::unnecessary_cast)]
fn procfs_root(dir: &OwnedFd) -> bool {
    const PROC_ROOT_INO: u64 = 1;
    rustix::fs::fstatfs(dir).is_ok_and(|s| s.f_type as i64 == rustix::fs::PROC_SUPER_MAGIC as i64)
        && rustix::fs::fstat(dir).is_ok_and(|s| s.st_ino as u64 == PROC_ROOT_INO)
}

/// Returns true if and only if `openat2(RESOLVE_IN_ROOT)` works here; old kernels say `ENOSYS`
/// and some container seccomp profiles say `EPERM`.
fn openat2_works(dir: &OwnedFd) -> bool {
    rustix::fs::openat2(
        dir,
        ".",
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
    .is_ok()
}

/// The error for an object that is not a regular file, naming what it is.
#[derive(Debug, thiserror::Error)]
#[error("not a regular file ({0})")]
struct NotRegular(&'static str);

fn not_regular(ft: rustix::fs::FileType) -> io::Error {
    use rustix::fs::FileType as T;
    let what = match ft {
        T::Directory => "a directory",
        T::CharacterDevice => "a character device",
        T::BlockDevice => "a block device",
        T::Fifo => "a FIFO",
        T::Socket => "a socket",
        T::Symlink => "a symlink",
        _ => "of unknown type",
    };
    io::Error::new(io::ErrorKind::InvalidInput, NotRegular(what))
}

fn require_regular(st: &rustix::fs::Stat) -> io::Result<()> {
    let ft = rustix::fs::FileType::from_raw_mode(st.st_mode);
    if ft == rustix::fs::FileType::RegularFile {
        Ok(())
    } else {
        Err(not_regular(ft))
    }
}

fn too_large(max: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::FileTooLarge,
        format!("larger than {max} bytes"),
    )
}

fn lossy(b: Vec<u8>) -> String {
    String::from_utf8(b).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Returns this process's `/proc/self/fd` directory, opened once, when it is on a real procfs
/// (a directory mounted over `/proc` by someone else must not decide what we reopen).
///
/// `self` is resolved when the directory is opened; a forked child that never `exec`s would see
/// its parent's table, and hostready reads no host file in such a child.
fn self_fd_dir() -> Option<&'static OwnedFd> {
    static DIR: OnceLock<Option<OwnedFd>> = OnceLock::new();
    DIR.get_or_init(|| {
        let fd = rustix::fs::open(
            "/proc/self/fd",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        #[allow(clippy::unnecessary_cast)]
        let on_procfs = rustix::fs::fstatfs(&fd)
            .is_ok_and(|s| s.f_type as i64 == rustix::fs::PROC_SUPER_MAGIC as i64);
        on_procfs.then_some(fd)
    })
    .as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fallback opener (no procfs for this process) refuses what the main one refuses and
    /// reads what it reads; devices and FIFOs are examined through `O_PATH` before any open.
    #[test]
    fn fallback_opener_without_proc_self_fd() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/file"), "text").unwrap();
        std::os::unix::fs::symlink("/etc/file", dir.path().join("link")).unwrap();
        hostready_testkit::fakehost::mknod(
            &dir.path().join("etc/fifo"),
            rustix::fs::FileType::Fifo,
            0,
            0,
        );
        let root = Root::open(dir.path()).unwrap();
        for p in ["/etc/file", "/link"] {
            let (mut f, st) = root.open_regular_by_parent(Path::new(p)).unwrap();
            let mut s = String::new();
            f.read_to_string(&mut s).unwrap();
            assert_eq!((s.as_str(), st.st_size), ("text", 4));
        }
        for p in ["/etc/fifo", "/etc", "/"] {
            let e = root.open_regular_by_parent(Path::new(p)).unwrap_err();
            assert!(
                e.get_ref().is_some_and(|e| e.is::<NotRegular>()),
                "{p}: {e}"
            );
        }
        let e = root.open_regular_by_parent(Path::new("/nope")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
