//! The genuine Debian bookworm root made by debootstrap with Longhorn's host packages
//! (`scripts/debroot`, cached under `.cache/debroot/bookworm`), and disposable copies of it.
//!
//! Copies are hard-link trees (`cp -al`), so making one costs a second, not 300 MB; a file a
//! test changes is first replaced by a private copy ([`Copy::unshare`]) so the cache stays
//! intact.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::WORKSPACE;

/// Returns the cached Debian root, building it on first use (about a minute, needs
/// `debootstrap` and a Debian mirror); panics saying so when it cannot be had.
pub fn debroot() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let out = Command::new(format!("{WORKSPACE}/scripts/debroot"))
            .output()
            .expect("run scripts/debroot");
        assert!(
            out.status.success(),
            "this test needs the Debian root of scripts/debroot, which failed (it needs \
             debootstrap, which scripts/setup installs): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}

/// A disposable hard-link copy of the Debian root at `dir()/root`, deleted on drop. The
/// temp dir is beside the cache (hard links need the same filesystem) and has room for more
/// (a procfs tree beside the root, say).
#[derive(Debug)]
pub struct Copy {
    dir: tempfile::TempDir,
    pub root: PathBuf,
}

impl Copy {
    pub fn new() -> Copy {
        let base = debroot();
        let dir = tempfile::tempdir_in(base.parent().unwrap()).unwrap();
        let root = dir.path().join("root");
        let st = Command::new("cp")
            .arg("-al")
            .arg(base)
            .arg(&root)
            .status()
            .unwrap();
        assert!(st.success(), "cp -al {} {}", base.display(), root.display());
        Copy { dir, root }
    }

    /// The temp dir holding the copy (and whatever the test puts beside it).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `p` (absolute, as on the host) inside the copy.
    pub fn path(&self, p: &str) -> PathBuf {
        self.root.join(p.trim_start_matches('/'))
    }

    /// Replaces a hard-linked file with a private copy, so it can be changed safely.
    pub fn unshare(&self, p: &str) -> PathBuf {
        let path = self.path(p);
        let bytes = fs::read(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions();
        fs::remove_file(&path).unwrap();
        fs::write(&path, bytes).unwrap();
        fs::set_permissions(&path, mode).unwrap();
        path
    }

    /// Removes a file from this copy only (unlinks the hard link).
    pub fn remove(&self, p: &str) {
        fs::remove_file(self.path(p)).unwrap();
    }

    /// Puts a file back from the cached root.
    pub fn restore(&self, p: &str) {
        let rel = p.trim_start_matches('/');
        fs::hard_link(debroot().join(rel), self.root.join(rel)).unwrap();
    }
}

impl Default for Copy {
    fn default() -> Copy {
        Copy::new()
    }
}
