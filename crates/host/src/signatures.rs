//! What the first sectors of a block device say it holds: a filesystem, a volume manager's or
//! a cache's label, a partition table, an encrypted container — or nothing hostready knows.
//!
//! Written here rather than asking `blkid` (a process, which hostready never starts for a
//! built-in check) or linking libblkid (C, and it probes hundreds of formats where a "raw
//! disk" check needs the dozen a storage system would find in its way). Each entry of
//! [`MAGICS`] says which specification gives its offset and bytes; none is copied code.
//!
//! Memory bound: [`PROBE_BYTES`] (260 KiB, ZFS's first label is 256 KiB) per device read,
//! one device at a time.

use serde::Serialize;

/// How much of a device is read: enough for ZFS's first vdev label (256 KiB) and btrfs's
/// primary superblock (64 KiB + 4 KiB).
pub const PROBE_BYTES: usize = 260 << 10;

/// One known on-disk signature: `magic` at byte `offset`.
#[derive(Debug, Clone, Copy)]
pub struct Magic {
    pub name: &'static str,
    pub offset: usize,
    pub magic: &'static [u8],
}

/// The signatures looked for, in the order tried (the first match names the content).
pub const MAGICS: &[Magic] = &[
    // LUKS1 and LUKS2: "LUKS\xba\xbe" at byte 0 (LUKS1 On-Disk Format Specification 1.2.3
    // §2.4 `magic`; LUKS2 On-Disk Format §2.1 binary header `magic`).
    Magic {
        name: "crypto_LUKS",
        offset: 0,
        magic: b"LUKS\xba\xbe",
    },
    // XFS: "XFSB" at byte 0, the primary superblock's `sb_magicnum` (XFS Algorithms & Data
    // Structures, "Superblocks").
    Magic {
        name: "xfs",
        offset: 0,
        magic: b"XFSB",
    },
    // Ceph BlueStore: an OSD's block device starts with its label, whose first bytes are
    // the text "bluestore block device\n" (Ceph docs, BlueStore "bdev label"; `ceph-bluestore-tool
    // show-label` reads it there).
    Magic {
        name: "ceph_bluestore",
        offset: 0,
        magic: b"bluestore block device\n",
    },
    // ext2/3/4: `s_magic` 0xEF53 (little-endian) at byte 56 of the superblock, which starts
    // at byte 1024 (Linux Documentation/filesystems/ext4/super.rst). Refined to ext2/3/4 below.
    Magic {
        name: "ext4",
        offset: 1024 + 0x38,
        magic: &[0x53, 0xef],
    },
    // btrfs: "_BHRfS_M" at byte 0x40 of the primary superblock at 64 KiB (btrfs
    // documentation, "On-disk format", Superblock).
    Magic {
        name: "btrfs",
        offset: 0x10000 + 0x40,
        magic: b"_BHRfS_M",
    },
    // bcache: the superblock is at sector 8 (4096); its 16-byte magic follows `csum`,
    // `offset` and `version` (three u64, so at +24) (Linux include/uapi/linux/bcache.h
    // `struct cache_sb`, Documentation/admin-guide/bcache.rst).
    Magic {
        name: "bcache",
        offset: 4096 + 24,
        magic: &[
            0xc6, 0x85, 0x73, 0xf6, 0x4e, 0x1a, 0x45, 0xca, 0x82, 0x65, 0xf5, 0x7f, 0x48, 0xba,
            0x6d, 0x81,
        ],
    },
    // Linux swap: "SWAPSPACE2" (or the old "SWAP-SPACE") ends the first page, at
    // PAGE_SIZE - 10 (Linux include/linux/swap.h `union swap_header`); 4 KiB and 64 KiB pages.
    Magic {
        name: "swap",
        offset: 4096 - 10,
        magic: b"SWAPSPACE2",
    },
    Magic {
        name: "swap",
        offset: 4096 - 10,
        magic: b"SWAP-SPACE",
    },
    Magic {
        name: "swap",
        offset: 65536 - 10,
        magic: b"SWAPSPACE2",
    },
    // GPT: the header's signature "EFI PART" at LBA 1, byte 512 on 512-byte sectors or 4096
    // on 4 KiB sectors (UEFI Specification 2.10 §5.3.2 GPT Header).
    Magic {
        name: "gpt",
        offset: 512,
        magic: b"EFI PART",
    },
    Magic {
        name: "gpt",
        offset: 4096,
        magic: b"EFI PART",
    },
];

/// LVM2 physical volume label: "LABELONE" at the start of one of the first four 512-byte
/// sectors, with the type "LVM2 001" at byte 24 of that sector (LVM2 source tree
/// doc/lvm_on_disk_format / `struct label_header`: id[8], sector, crc, offset, type[8]).
const LVM_LABEL: &[u8] = b"LABELONE";
const LVM_TYPE: &[u8] = b"LVM2 001";

/// ZFS: each vdev label is 256 KiB, label 0 at byte 0; its second half (from 128 KiB) is
/// the uberblock array, each uberblock starting with `ub_magic` 0x00bab10c as a u64 in the
/// writer's byte order, in slots of at least 1 KiB (ZFS On-Disk Specification, Sun 2006,
/// §1.3 "Vdev Labels" and §1.3.3 "Uberblock").
const ZFS_UBERBLOCKS: std::ops::Range<usize> = 128 << 10..256 << 10;
const ZFS_UB_MAGIC: u64 = 0x00ba_b10c;

/// What the first sectors hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Content {
    /// No signature hostready knows, and every probed byte zero: a blank disk.
    Blank,
    /// No signature hostready knows, but data: something is (or was) there.
    Unrecognised,
    /// This signature (`ext4`, `xfs`, `LVM2_member`, `gpt`, `dos`, `zfs_member`, ...).
    Signature(String),
}

impl Content {
    /// Returns true if and only if a storage system may take the device as a raw disk:
    /// nothing known on it. Unrecognised data counts as raw, as blkid sees it (Rook's own
    /// check is "no filesystem per lsblk"), but is reported.
    pub fn is_raw(&self) -> bool {
        !matches!(self, Content::Signature(_))
    }
}

/// Probes the first bytes of a device (at most [`PROBE_BYTES`], fewer for a short device).
pub fn probe(head: &[u8]) -> Content {
    let at = |offset: usize, magic: &[u8]| {
        head.get(offset..offset + magic.len())
            .is_some_and(|b| b == magic)
    };
    for m in MAGICS {
        if at(m.offset, m.magic) {
            if m.name == "ext4" {
                return Content::Signature(ext_flavour(head).into());
            }
            return Content::Signature(m.name.into());
        }
    }
    if (0..4).any(|s| at(s * 512, LVM_LABEL) && at(s * 512 + 24, LVM_TYPE)) {
        return Content::Signature("LVM2_member".into());
    }
    if zfs_label(head) {
        return Content::Signature("zfs_member".into());
    }
    // MBR (and any boot sector): 0x55 0xAA at bytes 510-511 (the classic PC partition
    // table layout; also FAT and NTFS boot sectors). Checked last: GPT's protective MBR has
    // it too, and GPT says more.
    if at(510, &[0x55, 0xaa]) {
        return Content::Signature("dos".into());
    }
    if head.iter().all(|b| *b == 0) {
        Content::Blank
    } else {
        Content::Unrecognised
    }
}

/// ext2, ext3 or ext4, from the superblock's feature words (ext4 super.rst):
/// `s_feature_compat` at +0x5C (`HAS_JOURNAL` 0x4), `s_feature_incompat` at +0x60
/// (`EXTENTS` 0x40, `64BIT` 0x80, `FLEX_BG` 0x200).
fn ext_flavour(head: &[u8]) -> &'static str {
    let word = |off: usize| {
        head.get(1024 + off..1024 + off + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .unwrap_or(0)
    };
    if word(0x60) & (0x40 | 0x80 | 0x200) != 0 {
        "ext4"
    } else if word(0x5c) & 0x4 != 0 {
        "ext3"
    } else {
        "ext2"
    }
}

fn zfs_label(head: &[u8]) -> bool {
    let Some(array) = head.get(ZFS_UBERBLOCKS) else {
        return false;
    };
    array.chunks_exact(1024).any(|slot| {
        let b = [
            slot[0], slot[1], slot[2], slot[3], slot[4], slot[5], slot[6], slot[7],
        ];
        u64::from_le_bytes(b) == ZFS_UB_MAGIC || u64::from_be_bytes(b) == ZFS_UB_MAGIC
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(offset: usize, bytes: &[u8]) -> Vec<u8> {
        let mut v = vec![0; PROBE_BYTES];
        v[offset..offset + bytes.len()].copy_from_slice(bytes);
        v
    }

    #[test]
    fn zeroes_are_blank_and_noise_is_unrecognised() {
        assert_eq!(probe(&vec![0; PROBE_BYTES]), Content::Blank);
        assert_eq!(probe(&[]), Content::Blank);
        assert_eq!(probe(&with(7000, b"hello")), Content::Unrecognised);
        assert!(Content::Unrecognised.is_raw());
    }

    #[test]
    fn each_magic_at_its_offset() {
        let cases: &[(usize, &[u8], &str)] = &[
            (0, b"LUKS\xba\xbe\x00\x02", "crypto_LUKS"),
            (0, b"XFSB", "xfs"),
            (0, b"bluestore block device\nuuid", "ceph_bluestore"),
            (0x10040, b"_BHRfS_M", "btrfs"),
            (4096 + 24, MAGICS[5].magic, "bcache"),
            (4086, b"SWAPSPACE2", "swap"),
            (65526, b"SWAPSPACE2", "swap"),
            (512, b"EFI PART", "gpt"),
            (4096, b"EFI PART", "gpt"),
            (510, &[0x55, 0xaa], "dos"),
            (1024 + 0x38, &[0x53, 0xef], "ext2"),
        ];
        for (off, magic, name) in cases {
            assert_eq!(
                probe(&with(*off, magic)),
                Content::Signature(name.to_string()),
                "{name} at {off}"
            );
        }
        // One byte off is not the signature.
        assert_eq!(probe(&with(1, b"XFSB")), Content::Unrecognised);
    }

    #[test]
    fn lvm_label_in_any_of_the_first_four_sectors() {
        let mut v = with(512, b"LABELONE");
        v[512 + 24..512 + 32].copy_from_slice(b"LVM2 001");
        assert_eq!(probe(&v), Content::Signature("LVM2_member".into()));
        // LABELONE without LVM's type is someone else's label.
        assert_eq!(probe(&with(512, b"LABELONE")), Content::Unrecognised);
    }

    #[test]
    fn zfs_uberblock_in_either_byte_order() {
        let le = with((128 << 10) + 3 * 1024, &ZFS_UB_MAGIC.to_le_bytes());
        assert_eq!(probe(&le), Content::Signature("zfs_member".into()));
        let be = with(128 << 10, &ZFS_UB_MAGIC.to_be_bytes());
        assert_eq!(probe(&be), Content::Signature("zfs_member".into()));
        // Not at a slot boundary: not an uberblock.
        let off = with((128 << 10) + 8, &ZFS_UB_MAGIC.to_le_bytes());
        assert_eq!(probe(&off), Content::Unrecognised);
    }

    #[test]
    fn ext_flavours_from_feature_words() {
        let mut v = with(1024 + 0x38, &[0x53, 0xef]);
        v[1024 + 0x5c] = 0x4;
        assert_eq!(probe(&v), Content::Signature("ext3".into()));
        v[1024 + 0x60] = 0x40;
        assert_eq!(probe(&v), Content::Signature("ext4".into()));
    }

    #[test]
    fn truncated_heads_never_panic() {
        for n in [0, 1, 511, 512, 1081, 4095, 65600, PROBE_BYTES - 1] {
            let v = vec![0xff; n];
            let _ = probe(&v);
        }
    }
}
