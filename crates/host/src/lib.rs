//! A read-only, rooted view of a host — the one seam through which hostready reads anything.
//!
//! A [`Host`] is two [`Root`]s: the host's filesystem (`/` on a machine, `/host` in a DaemonSet,
//! a temporary directory in tests) and the procfs that describes its running kernel and
//! processes (usually `<root>/proc`). Everything else in this crate is a parser or a lookup on
//! top of them; nothing here starts a process.

pub mod blockdev;
pub mod cgroup;
pub mod confdirs;
pub mod elf;
pub mod exe;
pub mod kernel;
pub mod modparam;
pub mod mounts;
pub mod os_release;
pub mod procfs;
mod root;
pub mod signatures;
pub mod statfs;
pub mod swap;
pub mod sysctl;
pub mod unix_sockets;

use std::path::PathBuf;

pub use root::{
    FileKind, FsError, Link, MAX_READ_BYTES, MAX_SYMLINKS, Node, Resolved, Root, RootDir, Stat,
};

/// Where the host's procfs comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ProcSource {
    /// `<root>/proc` when it is a mounted procfs; otherwise none.
    #[default]
    Auto,
    /// This directory, wherever it is.
    At(PathBuf),
    /// No procfs: every fact that needs one is unknown.
    Disabled,
}

/// Why a [`Host`] has no procfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoProc(pub String);

/// A host to inspect: its filesystem root and, when available, its procfs.
#[derive(Debug)]
pub struct Host {
    fs: Root,
    proc: Result<Root, NoProc>,
}

impl Host {
    /// Opens the host whose filesystem is at `root`; fails only if `root` cannot be opened.
    pub fn open(root: impl Into<PathBuf>, proc: ProcSource) -> Result<Host, FsError> {
        let fs = Root::open(root)?;
        let proc = open_proc(&fs, proc);
        Ok(Host { fs, proc })
    }

    /// Returns the host's filesystem root.
    pub fn fs(&self) -> &Root {
        &self.fs
    }

    /// Returns the host's procfs, or why there is none.
    pub fn proc(&self) -> Result<&Root, &NoProc> {
        self.proc.as_ref()
    }
}

fn open_proc(fs: &Root, source: ProcSource) -> Result<Root, NoProc> {
    match source {
        ProcSource::Disabled => Err(NoProc("procfs disabled (--proc none)".into())),
        ProcSource::At(dir) => Root::open(&dir).map_err(|e| {
            NoProc(format!(
                "cannot open procfs at {}: {}",
                dir.display(),
                e.source
            ))
        }),
        // `proc` is resolved inside the root like every other path: a root whose `proc` is a
        // symlink to `/proc` or `../../../proc` must not get this machine's procfs. The
        // descriptor checked is the one used, so nothing can be swapped in between.
        ProcSource::Auto => {
            let shown = fs.location().join("proc");
            let proc = fs.subroot("/proc").map_err(|e| {
                let why = if e.is_loop() {
                    "too many levels of symbolic links".to_string()
                } else {
                    e.source.to_string()
                };
                NoProc(format!(
                    "cannot open {} inside the root: {why} (pass --proc /proc to use this machine's)",
                    shown.display()
                ))
            })?;
            if proc.is_procfs_root() {
                Ok(proc)
            } else {
                Err(NoProc(format!(
                    "{} is not a mounted procfs (pass --proc /proc to use this machine's)",
                    shown.display()
                )))
            }
        }
    }
}
