//! Opening the log `doctor --explain FILE` reads, without letting the name run anything.
//!
//! The user names FILE, so it is opened as given (symlinks followed; it is not inside a host
//! root). What it may be is limited: a regular file or a FIFO (`<(kubectl logs ...)` is a pipe)
//! is read; a directory or a socket is refused (neither can be read as a file); a character or
//! block device is refused, because opening a device runs
//! its driver (a watchdog arms, a tape rewinds, a terminal is allocated) before anything could
//! look at it, and a device is never a log. The type is taken from an `O_PATH` descriptor,
//! which opens nothing, and the same file is then reopened through `/proc/self/fd/N`, so a
//! name swapped for a device between the check and the open is not opened. To read a device
//! anyway, redirect it: `hostready doctor --explain - < /dev/...` (the shell opens it then).

// The log `--explain FILE` names is the user's own file, opened as given (see the module header).
#![allow(clippy::disallowed_methods)]

use std::fs::File;
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags};

/// Why a log cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("cannot read {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is a {kind} device, not a log: opening a device runs its driver, so it is not \
         opened (redirect it to stdin to read it anyway: --explain - < {path})"
    )]
    Device { path: PathBuf, kind: &'static str },
    #[error("{path} is a {kind}, not a log")]
    NotAFile { path: PathBuf, kind: &'static str },
}

/// Opens `path` for reading if it is a regular file or a FIFO (see the module header);
/// devices, directories and sockets are refused without being opened.
pub fn open(path: &Path) -> Result<File, LogError> {
    let err = |e: rustix::io::Errno| LogError::Open {
        path: path.to_path_buf(),
        source: e.into(),
    };
    let handle =
        rustix::fs::open(path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty()).map_err(err)?;
    let st = rustix::fs::fstat(&handle).map_err(err)?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::CharacterDevice => {
            return Err(LogError::Device {
                path: path.to_path_buf(),
                kind: "character",
            });
        }
        FileType::BlockDevice => {
            return Err(LogError::Device {
                path: path.to_path_buf(),
                kind: "block",
            });
        }
        FileType::Directory | FileType::Socket => {
            return Err(LogError::NotAFile {
                path: path.to_path_buf(),
                kind: if FileType::from_raw_mode(st.st_mode) == FileType::Socket {
                    "socket"
                } else {
                    "directory"
                },
            });
        }
        _ => {}
    }
    // Reopening the O_PATH descriptor's own file: the name is not looked up again.
    let fd = rustix::fs::open(
        format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&handle)),
        OFlags::RDONLY | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(err)?;
    Ok(File::from(fd))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn files_are_read_devices_and_directories_refused() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("log");
        std::fs::write(&log, "hello\n").unwrap();
        let mut s = String::new();
        open(&log).unwrap().read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello\n");
        let e = open(Path::new("/dev/zero")).unwrap_err().to_string();
        assert!(e.contains("/dev/zero is a character device"), "{e}");
        let e = open(d.path()).unwrap_err().to_string();
        assert!(e.ends_with("is a directory, not a log"), "{e}");
        let sock = d.path().join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let e = open(&sock).unwrap_err().to_string();
        assert!(e.ends_with("is a socket, not a log"), "{e}");
        let e = open(&d.path().join("missing")).unwrap_err();
        assert!(matches!(e, LogError::Open { .. }), "{e}");
    }
}
