//! `fcntl(F_OFD_GETLK)`: asks the kernel which lock, if any, would conflict with a lock on a
//! byte range of an open file, *without taking one* (fcntl(2), "Open file description locks").
//!
//! This is how hostready sees a locked database when it has no procfs of the host to read
//! `/proc/locks` from (`--root DIR` without `DIR/proc`). It sees POSIX record locks (what
//! SQLite and rpm's `.rpm.lock` use; the holder's pid comes back, translated into our PID
//! namespace, 0 when the holder is not visible in it) and OFD locks (pid -1), but not
//! `flock(2)` locks, which the kernel keeps apart (NDB's own `Packages.db` lock is one: only
//! `/proc/locks` shows it).
//!
//! Why `unsafe` and `libc`: rustix wraps only `F_GETLK`, and its wrapper debug-asserts that the
//! returned pid is not negative, which an OFD lock holder (-1) violates; `F_OFD_GETLK` also
//! reports conflicts with locks of our own process, where `F_GETLK` would not. The one unsafe
//! call passes a `struct flock` we own to `fcntl` on a descriptor the caller borrows to us.

#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// A lock held by someone else that conflicts with the probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Conflict {
    /// True for a write (exclusive) lock, false for a read (shared) one.
    pub write: bool,
    /// The holder's pid in our PID namespace: -1 for an OFD lock, 0 when not visible to us.
    pub pid: i32,
    pub start: u64,
    /// 0 means "to the end of the file".
    pub len: u64,
}

/// Returns the first lock that would conflict with a `write` (else read) lock on
/// `len` bytes from `start` (`len` 0: to the end of the file), taking no lock.
pub(crate) fn conflicting(
    fd: BorrowedFd<'_>,
    start: u64,
    len: u64,
    write: bool,
) -> io::Result<Option<Conflict>> {
    let kind = if write { libc::F_WRLCK } else { libc::F_RDLCK };
    let mut fl = libc::flock {
        l_type: kind as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: i64::try_from(start).map_err(|_| io::ErrorKind::InvalidInput)?,
        l_len: i64::try_from(len).map_err(|_| io::ErrorKind::InvalidInput)?,
        // F_OFD_GETLK requires 0 here.
        l_pid: 0,
    };
    // SAFETY: `fl` is a valid, initialised struct flock that lives across the call; the
    // descriptor is borrowed and open; F_OFD_GETLK only reads and writes `fl`.
    let rc = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_GETLK, &mut fl) };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    if fl.l_type == libc::F_UNLCK as libc::c_short {
        return Ok(None);
    }
    Ok(Some(Conflict {
        write: fl.l_type == libc::F_WRLCK as libc::c_short,
        pid: fl.l_pid,
        start: fl.l_start.max(0) as u64,
        len: fl.l_len.max(0) as u64,
    }))
}

#[cfg(test)]
// tests read fixtures and build fake hosts directly.
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn sees_a_posix_lock_even_of_our_own_process_and_takes_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"x").unwrap();
        let holder = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let prober = std::fs::File::open(&path).unwrap();
        assert_eq!(conflicting(prober.as_fd(), 0, 0, true).unwrap(), None);
        // A POSIX read lock (rustix's fcntl_lock is F_SETLK) held by this very process:
        // F_GETLK would not report it, F_OFD_GETLK does, with our pid.
        rustix::fs::fcntl_lock(&holder, rustix::fs::FlockOperation::NonBlockingLockShared).unwrap();
        let c = conflicting(prober.as_fd(), 0, 0, true).unwrap().unwrap();
        assert_eq!((c.write, c.pid), (false, std::process::id() as i32));
        assert_eq!(conflicting(prober.as_fd(), 0, 0, false).unwrap(), None);
        // Probing took nothing: the holder can still upgrade to an exclusive lock.
        rustix::fs::fcntl_lock(
            &holder,
            rustix::fs::FlockOperation::NonBlockingLockExclusive,
        )
        .unwrap();
        let c = conflicting(prober.as_fd(), 0, 0, false).unwrap().unwrap();
        assert!(c.write);
    }
}
