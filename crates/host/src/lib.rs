//! A read-only, rooted view of a host — the one seam through which hostready reads anything.
//!
//! A [`Host`] is two [`Root`]s: the host's filesystem (`/` on a machine, `/host` in a DaemonSet,
//! a temporary directory in tests) and the procfs that describes its running kernel and
//! processes (usually `<root>/proc`). Everything else in this crate is a parser or a lookup on
//! top of them; nothing here starts a process.

pub mod elf;
pub mod exe;
pub mod kernel;
pub mod os_release;
pub mod procfs;
mod root;

use std::path::{Path, PathBuf};

pub use root::{FileKind, FsError, Link, MAX_READ_BYTES, MAX_SYMLINKS, Resolved, Root, Stat};

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
        let proc = open_proc(fs.location(), proc);
        Ok(Host { fs, proc })
    }

    /// Builds a host from roots opened by the caller (tests use this to force the walker).
    pub fn from_roots(fs: Root, proc: Result<Root, NoProc>) -> Host {
        Host { fs, proc }
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

fn open_proc(root: &Path, source: ProcSource) -> Result<Root, NoProc> {
    match source {
        ProcSource::Disabled => Err(NoProc("procfs disabled (--proc none)".into())),
        ProcSource::At(dir) => Root::open(&dir).map_err(|e| {
            NoProc(format!(
                "cannot open procfs at {}: {}",
                dir.display(),
                e.source
            ))
        }),
        ProcSource::Auto => {
            let dir = root.join("proc");
            if is_procfs(&dir) {
                Root::open(&dir)
                    .map_err(|e| NoProc(format!("cannot open {}: {}", dir.display(), e.source)))
            } else {
                Err(NoProc(format!(
                    "{} is not a mounted procfs (pass --proc /proc to use this machine's)",
                    dir.display()
                )))
            }
        }
    }
}

/// Returns true if and only if `dir` is the mount point of a procfs.
// `f_type`'s integer type differs between architectures; the casts are not no-ops everywhere.
#[allow(clippy::unnecessary_cast)]
fn is_procfs(dir: &Path) -> bool {
    rustix::fs::statfs(dir).is_ok_and(|s| s.f_type as i64 == rustix::fs::PROC_SUPER_MAGIC as i64)
}
