//! A directory inside a root whose files are opened by name relative to the directory's own
//! descriptor: what a reader of thousands of files in one directory needs (dpkg's
//! `info/*.list`, one per package), where resolving each path from the root again and the
//! two-step checked open of [`Root::open_file`] cost more than reading the files.
//!
//! The trade, stated: a file the directory listing reports as regular is opened directly
//! (non-blocking, never following a symlink, never crossing a mount) and its type checked on
//! the opened descriptor; anything else the listing reports goes through the checked open,
//! which never opens a device or FIFO. So a device node or FIFO *present* in the directory is
//! never opened; one *swapped in* between the listing and the open is refused after its
//! `open()` ran (a FIFO's returns at once: `O_NONBLOCK`), never read — the window the checked
//! open's fallback without a procfs also has.

use super::*;
use rustix::fd::AsFd;

/// A directory inside a [`Root`], held open by descriptor. It lists with
/// `rustix::fs::Dir::read_from` (through [`AsFd`]) and opens its files with
/// [`Root::open_listed`]; several threads may use it at once.
#[derive(Debug)]
pub struct RootDir {
    fd: OwnedFd,
    path: PathBuf,
}

impl RootDir {
    /// The directory's path inside the root, as it was asked for.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl AsFd for RootDir {
    fn as_fd(&self) -> rustix::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// How a listed regular file is opened: `NONBLOCK` so that a FIFO swapped in returns at once,
/// `NOCTTY` so that a terminal swapped in never becomes this process's.
const LISTED: OFlags = READ;

impl Root {
    /// Opens the directory `path` (resolved inside the root) for listing and for
    /// [`Root::open_listed`]; `O_DIRECTORY` refuses anything else before any driver could run.
    pub fn open_root_dir(&self, path: impl AsRef<Path>) -> Result<RootDir, FsError> {
        let path = path.as_ref();
        Ok(RootDir {
            fd: OwnedFd::from(self.open_dir(path)?),
            path: path.to_path_buf(),
        })
    }

    /// Opens the regular file `name` (one path component) of `dir` for reading and returns it
    /// with its facts from `fstat` on the opened descriptor; `listed` is the kind the
    /// directory listing reported (`None` where the filesystem did not say).
    ///
    /// Listed as a regular file: one `openat2` relative to `dir` that follows no symlink and
    /// crosses no mount (`RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV`), then
    /// `fstat`; a symlink or a mount point met there (something swapped in, or a bind mount
    /// over the file) takes the checked path instead, and a non-regular file opened there is
    /// refused unread (see the module header). Listed as anything else, or on a kernel
    /// without `openat2`: the checked open of [`Root::open_file`] of `dir/name`, which follows
    /// symlinks inside the root and refuses a device or FIFO without opening it.
    pub fn open_listed(
        &self,
        dir: &RootDir,
        name: &OsStr,
        listed: Option<FileKind>,
    ) -> Result<(File, Stat), FsError> {
        // The path is made only for an error or the checked open: a caller opens tens of
        // thousands of lists, and each join is an allocation.
        let path = || dir.path.join(name);
        let b = name.as_bytes();
        if b.is_empty() || b == b"." || b == b".." || b.contains(&b'/') {
            return Err(self.error(
                &path(),
                io::Error::new(io::ErrorKind::InvalidInput, "not a name in the directory"),
            ));
        }
        if listed == Some(FileKind::File) && self.use_openat2 {
            match rustix::fs::openat2(
                &dir.fd,
                name,
                LISTED,
                Mode::empty(),
                ResolveFlags::BENEATH
                    | ResolveFlags::NO_SYMLINKS
                    | ResolveFlags::NO_MAGICLINKS
                    | ResolveFlags::NO_XDEV,
            ) {
                Ok(fd) => {
                    let st = rustix::fs::fstat(&fd).map_err(|e| self.error(&path(), e))?;
                    require_regular(&st).map_err(|e| self.error(&path(), e))?;
                    return Ok((File::from(fd), stat_of(&st)));
                }
                Err(Errno::LOOP | Errno::XDEV) => {}
                Err(e) => return Err(self.error(&path(), e)),
            }
        }
        let path = path();
        self.open_regular(&path)
            .map(|(file, st)| (file, stat_of(&st)))
            .map_err(|e| self.error(&path, e))
    }
}

fn stat_of(st: &rustix::fs::Stat) -> Stat {
    Stat {
        kind: kind_of(rustix::fs::FileType::from_raw_mode(st.st_mode)),
        mode: st.st_mode & 0o7777,
        uid: st.st_uid,
        size: st.st_size as u64,
    }
}
