//! Opening a profile file without side effects: the path is first opened with `O_PATH` (which
//! runs no driver `open()`, never blocks on a FIFO and reads nothing), the object is checked
//! through that descriptor to be a regular file of at most the size limit, and only then is
//! that same object reopened for reading through `/proc/self/fd/N`, so a path swapped for a
//! FIFO or a device between the check and the read cannot make hostready hang or open a device.
//!
//! Profile paths are the operator's, on the machine hostready runs on (not under `--root`), so
//! symlinks are followed as any program would; what is refused is every kind of file but a
//! regular one.

// Profile files are the user's own files named on the command line, read outside any host root.
#![allow(clippy::disallowed_methods)]

use std::io::{Error, ErrorKind, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags};

/// The identity of an opened file: its device and inode numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct FileId {
    pub(super) dev: u64,
    pub(super) ino: u64,
}

/// A profile file opened by path (`O_PATH`) and verified to be a regular file, not yet read.
pub(super) struct Opened {
    fd: OwnedFd,
    pub(super) id: FileId,
    pub(super) size: u64,
    /// The file's canonical path (the kernel's name for the opened object), for messages.
    pub(super) canonical: PathBuf,
}

/// Opens `path` with `O_PATH` and checks, through that descriptor, that it is a regular file
/// of at most `max` bytes.
pub(super) fn open(path: &Path, max: u64) -> std::io::Result<Opened> {
    let fd = rustix::fs::open(path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())?;
    let st = rustix::fs::fstat(&fd)?;
    check_kind(FileType::from_raw_mode(st.st_mode))?;
    let size = st.st_size as u64;
    if size > max {
        return Err(too_large(max));
    }
    let canonical = std::fs::read_link(proc_fd(&fd)).unwrap_or_else(|_| path.to_path_buf());
    Ok(Opened {
        fd,
        id: FileId {
            dev: st.st_dev,
            ino: st.st_ino,
        },
        size,
        canonical,
    })
}

impl Opened {
    /// Reads the verified file: reopened through `/proc/self/fd/N` (the same object, whatever
    /// now sits at the path), checked again, and read up to `max` bytes as UTF-8.
    ///
    /// Without a procfs on this machine it falls back to opening the path again with
    /// `O_NONBLOCK | O_NOCTTY` (a FIFO then cannot block) and refuses the result unless it is
    /// the same regular file; only in that fallback can a device swapped in at that instant see
    /// an `open()`.
    pub(super) fn read(&self, path: &Path, max: u64) -> std::io::Result<String> {
        let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        let fd = match rustix::fs::open(proc_fd(&self.fd).as_path(), flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => rustix::fs::open(path, flags, Mode::empty())?,
            Err(e) => return Err(e.into()),
        };
        let st = rustix::fs::fstat(&fd)?;
        check_kind(FileType::from_raw_mode(st.st_mode))?;
        if (st.st_dev, st.st_ino) != (self.id.dev, self.id.ino) {
            return Err(Error::other("was replaced while being opened"));
        }
        let mut bytes = Vec::with_capacity(self.size.min(max) as usize);
        std::fs::File::from(fd)
            .take(max + 1)
            .read_to_end(&mut bytes)?;
        if bytes.len() as u64 > max {
            return Err(too_large(max));
        }
        String::from_utf8(bytes).map_err(|e| {
            Error::new(
                ErrorKind::InvalidData,
                format!("not UTF-8 (at byte {})", e.utf8_error().valid_up_to()),
            )
        })
    }
}

fn proc_fd(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Refuses every kind of file but a regular one, naming the kind.
fn check_kind(kind: FileType) -> std::io::Result<()> {
    let what = match kind {
        FileType::RegularFile => return Ok(()),
        FileType::Directory => "a directory",
        FileType::Fifo => "a FIFO",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Socket => "a socket",
        FileType::Symlink => "a symlink",
        FileType::Unknown => "of unknown type",
    };
    Err(Error::new(
        ErrorKind::InvalidInput,
        format!("is {what}, not a regular file"),
    ))
}

fn too_large(max: u64) -> Error {
    Error::new(
        ErrorKind::FileTooLarge,
        format!("larger than {max} bytes, the most a profile file may hold"),
    )
}
