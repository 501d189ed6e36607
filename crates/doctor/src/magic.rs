//! Reading procfs *magic links* — `/proc/<pid>/exe` and `/proc/<pid>/fd/<n>` — which the rooted
//! [`Root`](hostready_host::Root) deliberately refuses to follow.
//!
//! Why doctor opens the procfs itself: `Root` resolves with `RESOLVE_NO_MAGICLINKS`, and it has no
//! readlink, because a magic link is not a path inside the root but a handle to a kernel object
//! (an open file of another process). Doctor needs exactly that object's identity — which file
//! a process has open, by path and by device+inode — to match the kernel's lock table to files.
//! So it opens the same procfs location the host view uses (`host.proc()?.location()`) once as an
//! `O_PATH` directory and reads the links with `readlinkat(2)` and `fstatat(2)` relative to it.
//! `readlinkat` never opens the target; `fstatat` follows the link only to return the target's
//! metadata. Nothing here opens another process's files. (proc(5): /proc/pid/fd/, /proc/pid/exe.)

use std::path::Path;

use rustix::fd::OwnedFd;
use rustix::fs::{AtFlags, Mode, OFlags};

/// An open procfs directory for reading magic links.
#[derive(Debug)]
pub struct ProcDir {
    dir: OwnedFd,
}

/// One open file descriptor of a process whose target is a path (not a pipe or socket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdTarget {
    pub fd: u32,
    /// The link text: the file's path as the kernel prints it (may end in ` (deleted)`).
    pub path: String,
    /// The target's device (major, minor) and inode, as `/proc/locks` names files.
    pub dev: (u32, u32),
    pub ino: u64,
}

impl ProcDir {
    /// Opens the procfs at `location` (the directory a [`Root`](hostready_host::Root) for it was
    /// opened on).
    pub fn open(location: &Path) -> std::io::Result<ProcDir> {
        let dir = rustix::fs::open(
            location,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(ProcDir { dir })
    }

    /// Returns the directory descriptor, for opening files relative to it.
    pub fn fd(&self) -> &OwnedFd {
        &self.dir
    }

    /// Returns the executable path of `pid`, without a ` (deleted)` suffix; `None` for kernel
    /// threads, zombies, or processes we may not inspect.
    pub fn exe(&self, pid: u32) -> Option<String> {
        let link = rustix::fs::readlinkat(&self.dir, format!("{pid}/exe"), Vec::new()).ok()?;
        let s = String::from_utf8_lossy(link.to_bytes()).into_owned();
        Some(
            s.strip_suffix(" (deleted)")
                .map(str::to_string)
                .unwrap_or(s),
        )
    }

    /// Lists the file descriptors of `pid` that point at files with a path; pipes, sockets,
    /// anonymous inodes and terminals are skipped without a `stat`, which keeps a scan of
    /// thousands of processes cheap.
    pub fn fd_targets(&self, pid: u32) -> Vec<FdTarget> {
        let Ok(fds) = rustix::fs::openat(
            &self.dir,
            format!("{pid}/fd"),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) else {
            return Vec::new();
        };
        let Ok(entries) = rustix::fs::Dir::read_from(&fds) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(fd) = std::str::from_utf8(name.to_bytes())
                .ok()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(link) = rustix::fs::readlinkat(&fds, name, Vec::new()) else {
                continue;
            };
            let path = String::from_utf8_lossy(link.to_bytes()).into_owned();
            if !interesting(&path) {
                continue;
            }
            // Follows the magic link to the open file itself: its device and inode are what
            // the lock table lists, whatever mount namespace the owner sees the path in.
            let Ok(st) = rustix::fs::statat(&fds, name, AtFlags::empty()) else {
                continue;
            };
            out.push(FdTarget {
                fd,
                path,
                dev: (rustix::fs::major(st.st_dev), rustix::fs::minor(st.st_dev)),
                ino: st.st_ino,
            });
        }
        out
    }
}

/// Returns true if and only if a descriptor's link text names a file that could carry a lock.
fn interesting(path: &str) -> bool {
    path.starts_with('/')
        && path != "/dev/null"
        && !path.starts_with("/dev/pts/")
        && !path.starts_with("/dev/tty")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_exe_and_fds() {
        let dir = ProcDir::open(Path::new("/proc")).unwrap();
        let me = std::process::id();
        assert!(dir.exe(me).is_some());
        let f = tempfile::NamedTempFile::new().unwrap();
        let targets = dir.fd_targets(me);
        let want = f.path().to_str().unwrap();
        assert!(
            targets.iter().any(|t| t.path == want && t.ino > 0),
            "{targets:?}"
        );
        assert!(!interesting("pipe:[123]"));
        assert!(!interesting("/dev/pts/0"));
    }
}
