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
//!
//! Magic links are followed only on a real procfs: `fstatfs` of the opened directory must say
//! `PROC_SUPER_MAGIC`, and so must each `<pid>` directory opened below it (a bind mount over a
//! pid directory is not the kernel's). On anything else — `--proc DIR` with a plain directory,
//! as tests and offline diagnosis use — `fd/` and `exe` are ordinary files and symlinks that
//! could point anywhere on this machine, so they are never opened, read or stat'ed: the facts
//! they would give are unknown, and [`ProcDir::magic`] says why.

// The procfs directory is opened once and files relative to it (O_NOFOLLOW, RESOLVE_BENEATH): doctor's measured hot path (docs/bench-doctor.md) over a Root's procfs location.
#![allow(clippy::disallowed_methods)]

use std::path::Path;

use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{AtFlags, Mode, OFlags};

/// An open procfs directory for reading magic links.
#[derive(Debug)]
pub struct ProcDir {
    dir: OwnedFd,
    /// Why magic links may not be followed here, when they may not.
    not_procfs: Option<String>,
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
    /// opened on). A directory that is not a procfs opens too — its plain files are still read
    /// through it — but its magic links are not followed (see [`ProcDir::magic`]).
    ///
    /// A `location` that is itself a symlink is refused: `<root>/proc` of a hostile root may
    /// link to this machine's `/proc`, whose magic links lead to this machine's processes.
    pub fn open(location: &Path) -> std::io::Result<ProcDir> {
        let dir = rustix::fs::open(
            location,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| {
            if std::fs::symlink_metadata(location).is_ok_and(|m| m.file_type().is_symlink()) {
                std::io::Error::other(format!(
                    "{} is a symlink, which is not followed to read magic links",
                    location.display()
                ))
            } else {
                e.into()
            }
        })?;
        let not_procfs = match fs_type(&dir) {
            Ok(t) if t == PROC_SUPER_MAGIC => None,
            Ok(t) => Some(format!(
                "{} is not a procfs (filesystem type {t:#x}), so its fd/ and exe links are not followed",
                location.display()
            )),
            Err(e) => Some(format!(
                "cannot tell whether {} is a procfs ({e}), so its fd/ and exe links are not followed",
                location.display()
            )),
        };
        Ok(ProcDir { dir, not_procfs })
    }

    /// Returns the directory descriptor, for opening files relative to it.
    pub fn fd(&self) -> &OwnedFd {
        &self.dir
    }

    /// Returns `Ok` if magic links are followed here (a real procfs), else why not: then every
    /// fact that needs them (open files, executables) is unknown.
    pub fn magic(&self) -> Result<(), &str> {
        match &self.not_procfs {
            None => Ok(()),
            Some(why) => Err(why),
        }
    }

    /// Opens `<pid>` below the procfs without following any link, and only if it is procfs's
    /// own (not a bind mount over it).
    fn pid_dir(&self, pid: u32, flags: OFlags) -> Option<OwnedFd> {
        self.magic().ok()?;
        let d = rustix::fs::openat(
            &self.dir,
            pid.to_string(),
            flags | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        (fs_type(&d).ok()? == PROC_SUPER_MAGIC).then_some(d)
    }

    /// Returns the executable path of `pid`, without a ` (deleted)` suffix; `None` for kernel
    /// threads, zombies, processes we may not inspect, and on a directory that is not a procfs.
    pub fn exe(&self, pid: u32) -> Option<String> {
        let d = self.pid_dir(pid, OFlags::PATH)?;
        let link = rustix::fs::readlinkat(&d, "exe", Vec::new()).ok()?;
        let s = String::from_utf8_lossy(link.to_bytes()).into_owned();
        Some(
            s.strip_suffix(" (deleted)")
                .map(str::to_string)
                .unwrap_or(s),
        )
    }

    /// Lists the file descriptors of `pid` that point at files with a path; pipes, sockets,
    /// anonymous inodes and terminals are skipped without a `stat`, which keeps a scan of
    /// thousands of processes cheap. Empty on a directory that is not a procfs.
    pub fn fd_targets(&self, pid: u32) -> Vec<FdTarget> {
        let Some(fds) = self.pid_dir(pid, OFlags::PATH).and_then(|d| {
            rustix::fs::openat(
                &d,
                "fd",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .ok()
        }) else {
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

/// `PROC_SUPER_MAGIC` (include/uapi/linux/magic.h), as `fs_type` returns it.
// Its integer type differs between architectures; the cast is not a no-op everywhere.
#[allow(clippy::unnecessary_cast)]
const PROC_SUPER_MAGIC: i64 = rustix::fs::PROC_SUPER_MAGIC as i64;

/// Returns the filesystem type of an open file (`fstatfs(2)` `f_type`).
// `f_type`'s integer type differs between architectures; the cast is not a no-op everywhere.
#[allow(clippy::unnecessary_cast)]
fn fs_type(fd: impl AsFd) -> rustix::io::Result<i64> {
    Ok(rustix::fs::fstatfs(fd)?.f_type as i64)
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
        assert!(dir.magic().is_ok());
    }

    #[test]
    fn a_plain_directory_is_not_followed() {
        // `<pid>/fd` and `<pid>/exe` are symlinks to this test's own process: were they
        // followed, the fd list would not be empty.
        let d = tempfile::tempdir().unwrap();
        let me = std::process::id();
        std::fs::create_dir(d.path().join("1")).unwrap();
        std::os::unix::fs::symlink(format!("/proc/{me}/fd"), d.path().join("1/fd")).unwrap();
        std::os::unix::fs::symlink(format!("/proc/{me}/exe"), d.path().join("1/exe")).unwrap();
        let dir = ProcDir::open(d.path()).unwrap();
        let why = dir.magic().unwrap_err();
        assert!(why.contains("is not a procfs"), "{why}");
        assert!(dir.fd_targets(1).is_empty());
        assert_eq!(dir.exe(1), None);
        // A symlink to this machine's procfs is not opened at all.
        let link = d.path().join("proc");
        std::os::unix::fs::symlink("/proc", &link).unwrap();
        let e = ProcDir::open(&link).unwrap_err().to_string();
        assert!(e.contains("is a symlink"), "{e}");
    }
}
