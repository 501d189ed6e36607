//! Loop devices a test attaches to an image file (`losetup`, util-linux), detached on drop
//! even when the test fails, and the split of a device number into major and minor.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::Command;

/// A loop device attached to an image file for one test; `losetup -d` on drop.
#[derive(Debug)]
pub struct LoopDevice {
    path: String,
}

impl LoopDevice {
    /// Attaches `file` to the first free loop device (`losetup --find --show`); panics with
    /// losetup's message if it cannot (the test needs root and a kernel with loop devices).
    pub fn attach(file: &Path) -> LoopDevice {
        let out = Command::new("losetup")
            .args(["--find", "--show"])
            .arg(file)
            .output()
            .expect("losetup (util-linux)");
        assert!(
            out.status.success(),
            "losetup {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        LoopDevice {
            path: String::from_utf8(out.stdout).unwrap().trim().to_string(),
        }
    }

    /// The device node, `/dev/loopN`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The device's `(major, minor)`; panics unless its node is a block device.
    pub fn number(&self) -> (u32, u32) {
        let m = std::fs::metadata(&self.path).unwrap_or_else(|e| panic!("{}: {e}", self.path));
        assert!(
            m.file_type().is_block_device(),
            "{} is no block device",
            self.path
        );
        split_dev(m.rdev())
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.path]).status();
    }
}

/// `(major, minor)` of a `st_dev` or `st_rdev`, as glibc's `gnu_dev_major`/`gnu_dev_minor`
/// split it (each fits 32 bits).
pub fn split_dev(r: u64) -> (u32, u32) {
    (
        (((r >> 32) & 0xffff_f000) | ((r >> 8) & 0xfff)) as u32,
        (((r >> 12) & 0xffff_ff00) | (r & 0xff)) as u32,
    )
}
