//! Free space of the filesystem holding a path inside the root, and the nearest existing
//! ancestor of a path that does not exist yet (Longhorn creates `/var/lib/longhorn` itself:
//! before it does, the space that matters is its parent's).
//!
//! `statvfs` through an `O_PATH` descriptor resolved inside the root (rustix wraps
//! `fstatvfs`/`fstatfs`; no library does the ancestor walk). Memory: a few hundred bytes.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::{FsError, Root};

/// Space on one filesystem, as `statvfs(3)` gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Space {
    /// Bytes in the filesystem.
    pub total_bytes: u64,
    /// Bytes an unprivileged writer may still use (`f_bavail`: root's reserve excluded).
    pub available_bytes: u64,
    /// The filesystem's magic number (`f_type` of `statfs(2)`).
    pub magic: u64,
    /// The filesystem is mounted read-only (`ST_RDONLY`).
    pub read_only: bool,
}

/// Where a path was examined: itself, or the nearest ancestor that exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Examined {
    /// The path asked for.
    pub asked: PathBuf,
    /// The canonical path inside the root that was examined (symlinks resolved).
    pub canonical: PathBuf,
    /// True if and only if `asked` itself exists (else `canonical` is an ancestor's).
    pub exists: bool,
    /// Every symlink followed resolving the examined path.
    pub links: Vec<crate::Link>,
}

/// Resolves `path` inside the root, or, if it does not exist, its nearest existing ancestor.
/// Any other error (permission, loop, a file on the way) is returned as it is.
pub fn nearest_existing(root: &Root, path: &Path) -> Result<Examined, FsError> {
    let mut at = path.to_path_buf();
    loop {
        match root.resolve(&at) {
            Ok(r) => {
                return Ok(Examined {
                    asked: path.to_path_buf(),
                    canonical: r.path,
                    exists: at == path,
                    links: r.links,
                });
            }
            Err(e) if e.is_not_found() => {
                if !at.pop() {
                    return Err(e);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Returns the space of the filesystem holding `path` (which must exist inside the root).
pub fn space(root: &Root, path: &Path) -> Result<Space, FsError> {
    let (vfs, fs) = root.statvfs(path)?;
    let unit = if vfs.f_frsize > 0 {
        vfs.f_frsize
    } else {
        vfs.f_bsize
    };
    Ok(Space {
        total_bytes: vfs.f_blocks.saturating_mul(unit),
        available_bytes: vfs.f_bavail.saturating_mul(unit),
        magic: fs.f_type as u64,
        read_only: vfs.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::disallowed_methods)] // tests build their root with std::fs
    use super::*;

    #[test]
    fn a_missing_path_is_examined_at_its_nearest_ancestor() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("var/lib")).unwrap();
        std::os::unix::fs::symlink("/var", dir.path().join("v")).unwrap();
        let root = Root::open(dir.path()).unwrap();
        let e = nearest_existing(&root, Path::new("/v/lib/longhorn/replicas")).unwrap();
        assert!(!e.exists);
        assert_eq!(e.canonical, Path::new("/var/lib"));
        assert_eq!(e.links.len(), 1);
        let e = nearest_existing(&root, Path::new("/var/lib")).unwrap();
        assert!(e.exists);
    }

    #[test]
    fn space_of_a_real_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        let s = space(&root, Path::new("/")).unwrap();
        assert!(
            s.total_bytes > 0 && s.available_bytes <= s.total_bytes,
            "{s:?}"
        );
        assert_ne!(s.magic, 0);
        let e = space(&root, Path::new("/missing")).unwrap_err();
        assert!(e.is_not_found());
    }
}
