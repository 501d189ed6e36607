//! The host's whole-disk block devices from sysfs (`/sys/block`), and the first sectors of
//! one, read through its device node under the root's `/dev`.
//!
//! sysfs layout (Linux Documentation/ABI/stable/sysfs-block): `/sys/block/<disk>/size` in
//! 512-byte sectors whatever the logical block size, `ro`, `removable`, `dev` (`major:minor`),
//! `holders/` (what is stacked on it: dm, md, bcache), and a subdirectory per partition that
//! has a `partition` file.
//!
//! Memory bound: at most [`MAX_DEVICES`] devices with their partition and holder names
//! (each capped at [`MAX_NAMES`]), a few KiB of sysfs text each; the head read is
//! [`signatures::PROBE_BYTES`](crate::signatures::PROBE_BYTES) per device.

use std::io::Read;

use serde::Serialize;

use crate::signatures::{self, Content};
use crate::{FsError, Root};

/// The most block devices listed; more is an error, never a partial answer.
pub const MAX_DEVICES: usize = 4096;

/// The most partitions or holders named per device.
pub const MAX_NAMES: usize = 256;

/// Kinds of virtual device skipped unless a profile asks for them: loop files, ramdisks,
/// compressed swap in RAM, device-mapper targets (their backing disks are the raw ones),
/// md arrays, optical drives, network block devices.
pub const VIRTUAL_PREFIXES: &[&str] = &["loop", "ram", "zram", "dm-", "md", "sr", "nbd"];

/// One whole-disk block device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockDevice {
    pub name: String,
    /// `major:minor` from sysfs `dev`.
    pub device: (u32, u32),
    pub size_bytes: u64,
    pub read_only: bool,
    pub removable: bool,
    /// Partitions, with their device numbers.
    pub partitions: Vec<(String, (u32, u32))>,
    /// Devices stacked on the disk or any of its partitions (`holders/`).
    pub holders: Vec<String>,
}

/// Why sysfs could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error("cannot read {0}")]
    Sysfs(#[source] FsError),
    #[error("/sys/block/{name}/{file}: cannot parse {text:?}")]
    Parse {
        name: String,
        file: &'static str,
        text: String,
    },
    #[error("/sys/block lists more than {MAX_DEVICES} devices; refusing a partial list")]
    TooMany,
}

/// Returns true if and only if `name` is of a virtual kind ([`VIRTUAL_PREFIXES`]).
pub fn is_virtual(name: &str) -> bool {
    VIRTUAL_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Lists the whole-disk devices of the host's sysfs (`/sys/block` inside `root`), by name.
pub fn list(root: &Root) -> Result<Vec<BlockDevice>, BlockError> {
    let mut names: Vec<String> = root
        .read_dir("/sys/block")
        .map_err(BlockError::Sysfs)?
        .into_iter()
        .filter_map(|n| n.into_string().ok())
        .collect();
    if names.len() > MAX_DEVICES {
        return Err(BlockError::TooMany);
    }
    names.sort();
    names.iter().map(|n| device(root, n)).collect()
}

fn device(root: &Root, name: &str) -> Result<BlockDevice, BlockError> {
    let dir = format!("/sys/block/{name}");
    let small = |file: &'static str| -> Result<String, BlockError> {
        root.read_to_string_bounded(format!("{dir}/{file}"), 4096)
            .map(|t| t.trim().to_string())
            .map_err(BlockError::Sysfs)
    };
    let number = |file: &'static str| -> Result<u64, BlockError> {
        let t = small(file)?;
        t.parse().map_err(|_| BlockError::Parse {
            name: name.into(),
            file,
            text: t,
        })
    };
    let dev_text = small("dev")?;
    let device = parse_dev(&dev_text).ok_or(BlockError::Parse {
        name: name.into(),
        file: "dev",
        text: dev_text,
    })?;
    let mut partitions = Vec::new();
    let mut holders = names(root, &format!("{dir}/holders"))?;
    let mut entries: Vec<String> = root
        .read_dir(&dir)
        .map_err(BlockError::Sysfs)?
        .into_iter()
        .filter_map(|n| n.into_string().ok())
        .filter(|n| n.starts_with(name))
        .collect();
    entries.sort();
    for part in entries {
        if !root.exists(format!("{dir}/{part}/partition")) || partitions.len() == MAX_NAMES {
            continue;
        }
        let text = root
            .read_to_string_bounded(format!("{dir}/{part}/dev"), 4096)
            .map_err(BlockError::Sysfs)?;
        let Some(dev) = parse_dev(text.trim()) else {
            continue;
        };
        for h in names(root, &format!("{dir}/{part}/holders"))? {
            if holders.len() < MAX_NAMES {
                holders.push(format!("{h} (on {part})"));
            }
        }
        partitions.push((part, dev));
    }
    Ok(BlockDevice {
        name: name.into(),
        device,
        size_bytes: number("size")?.saturating_mul(512),
        read_only: number("ro")? != 0,
        removable: number("removable")? != 0,
        partitions,
        holders,
    })
}

/// Names in a sysfs directory; a missing directory is none.
fn names(root: &Root, dir: &str) -> Result<Vec<String>, BlockError> {
    match root.read_dir(dir) {
        Ok(v) => {
            let mut v: Vec<String> = v
                .into_iter()
                .filter_map(|n| n.into_string().ok())
                .take(MAX_NAMES)
                .collect();
            v.sort();
            Ok(v)
        }
        Err(e) if e.is_not_found() => Ok(Vec::new()),
        Err(e) => Err(BlockError::Sysfs(e)),
    }
}

/// Parses sysfs `dev`, `major:minor`.
pub fn parse_dev(text: &str) -> Option<(u32, u32)> {
    let (a, b) = text.split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Why a device's head could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    #[error("cannot open {0}")]
    Open(#[source] FsError),
    #[error("{node} is device {found:?}, not {name}'s {wanted:?}")]
    WrongDevice {
        node: String,
        name: String,
        found: (u32, u32),
        wanted: (u32, u32),
    },
    #[error("cannot read {node}")]
    Read {
        node: String,
        #[source]
        source: std::io::Error,
    },
}

/// Reads the first sectors of `dev` through `/dev/<name>` inside the root, checking that the
/// node is the block device sysfs names (a stale or planted node must not be probed in its
/// place), and says what they hold.
pub fn probe(root: &Root, dev: &BlockDevice) -> Result<Content, HeadError> {
    let node = format!("/dev/{}", dev.name);
    let (file, found) = root.open_block_device(&node).map_err(HeadError::Open)?;
    if found != dev.device {
        return Err(HeadError::WrongDevice {
            node,
            name: dev.name.clone(),
            found,
            wanted: dev.device,
        });
    }
    let mut head = Vec::with_capacity(signatures::PROBE_BYTES);
    file.take(signatures::PROBE_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(|source| HeadError::Read { node, source })?;
    Ok(signatures::probe(&head))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::disallowed_methods)] // tests build a sysfs tree with std::fs
    use super::*;
    use std::fs;

    fn write(base: &std::path::Path, rel: &str, text: &str) {
        let p = base.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    #[test]
    fn sysfs_tree_as_the_kernel_lays_it_out() {
        let d = tempfile::tempdir().unwrap();
        // Values as this machine's /sys/block/vda shows them (a virtio disk with a partition).
        for (name, size, dev) in [("vda", "209715200", "254:0"), ("loop0", "0", "7:0")] {
            write(
                d.path(),
                &format!("sys/block/{name}/size"),
                &format!("{size}\n"),
            );
            write(d.path(), &format!("sys/block/{name}/ro"), "0\n");
            write(d.path(), &format!("sys/block/{name}/removable"), "0\n");
            write(
                d.path(),
                &format!("sys/block/{name}/dev"),
                &format!("{dev}\n"),
            );
        }
        write(d.path(), "sys/block/vda/vda1/partition", "1\n");
        write(d.path(), "sys/block/vda/vda1/dev", "254:1\n");
        fs::create_dir_all(d.path().join("sys/block/vda/vda1/holders/dm-0")).unwrap();
        let root = Root::open(d.path()).unwrap();
        let l = list(&root).unwrap();
        assert_eq!(l.len(), 2);
        let vda = l.iter().find(|b| b.name == "vda").unwrap();
        assert_eq!(vda.size_bytes, 209_715_200 * 512);
        assert_eq!(vda.partitions, vec![("vda1".to_string(), (254, 1))]);
        assert_eq!(vda.holders, vec!["dm-0 (on vda1)"]);
        assert!(is_virtual("loop0") && is_virtual("dm-3") && !is_virtual("nvme0n1"));
        write(d.path(), "sys/block/vda/size", "lots\n");
        let e = list(&root).unwrap_err();
        assert!(e.to_string().contains("/sys/block/vda/size"), "{e}");
    }

    #[test]
    fn a_regular_file_posing_as_a_device_node_is_refused() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "dev/vdb", "XFSB");
        let root = Root::open(d.path()).unwrap();
        let dev = BlockDevice {
            name: "vdb".into(),
            device: (254, 16),
            size_bytes: 0,
            read_only: false,
            removable: false,
            partitions: vec![],
            holders: vec![],
        };
        let e = probe(&root, &dev).unwrap_err();
        assert!(format!("{e:#}").contains("/dev/vdb"), "{e}");
        assert!(
            std::error::Error::source(&e)
                .unwrap()
                .source()
                .unwrap()
                .to_string()
                .contains("not a block device"),
            "{e:?}"
        );
    }
}
