//! The signature table against what the real tools write: files formatted by `mkfs.ext4`,
//! `mkfs.xfs`, `mkfs.btrfs`, `mkswap` and `cryptsetup luksFormat`, and a loop device made an
//! LVM2 physical volume by `pvcreate`, read through a root's `/dev` node as `raw_disks` reads
//! a disk. Needs root and the packages `scripts/setup` installs; every loop device is detached.

// Tests make image files and device nodes on this machine directly.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::Command;

use hostready_host::Root;
use hostready_host::blockdev::{self, BlockDevice};
use hostready_host::signatures::{self, Content, PROBE_BYTES};
use hostready_testkit::loopdev::LoopDevice;

/// Runs a formatting tool, panicking with what to install when it is missing.
fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (run scripts/setup, which installs it)"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A sparse image file of `mib` MiB.
fn image(dir: &Path, name: &str, mib: u64) -> PathBuf {
    let p = dir.join(name);
    let f = std::fs::File::create(&p).unwrap();
    f.set_len(mib << 20).unwrap();
    p
}

fn head(p: &Path) -> Vec<u8> {
    use std::io::Read;
    let mut v = Vec::new();
    std::fs::File::open(p)
        .unwrap()
        .take(PROBE_BYTES as u64)
        .read_to_end(&mut v)
        .unwrap();
    v
}

fn sig(name: &str) -> Content {
    Content::Signature(name.into())
}

#[test]
fn files_formatted_by_the_real_tools() {
    let d = tempfile::tempdir().unwrap();
    let blank = image(d.path(), "blank", 8);
    assert_eq!(signatures::probe(&head(&blank)), Content::Blank);

    let ext4 = image(d.path(), "ext4", 16);
    run("mkfs.ext4", &["-q", "-F", ext4.to_str().unwrap()]);
    assert_eq!(signatures::probe(&head(&ext4)), sig("ext4"));

    let ext2 = image(d.path(), "ext2", 16);
    run("mkfs.ext2", &["-q", "-F", ext2.to_str().unwrap()]);
    assert_eq!(signatures::probe(&head(&ext2)), sig("ext2"));

    let swap = image(d.path(), "swap", 16);
    run("mkswap", &[swap.to_str().unwrap()]);
    assert_eq!(signatures::probe(&head(&swap)), sig("swap"));

    // mkfs.xfs refuses filesystems under 300 MiB; the file is sparse.
    let xfs = image(d.path(), "xfs", 320);
    run("mkfs.xfs", &["-q", "-f", xfs.to_str().unwrap()]);
    assert_eq!(signatures::probe(&head(&xfs)), sig("xfs"));

    let btrfs = image(d.path(), "btrfs", 128);
    run("mkfs.btrfs", &["-q", "-f", btrfs.to_str().unwrap()]);
    assert_eq!(signatures::probe(&head(&btrfs)), sig("btrfs"));

    let luks = image(d.path(), "luks", 32);
    let key = d.path().join("key");
    std::fs::write(&key, "a test passphrase").unwrap();
    run(
        "cryptsetup",
        &[
            "luksFormat",
            "--batch-mode",
            "--type",
            "luks2",
            "--pbkdf",
            "pbkdf2",
            "--pbkdf-force-iterations",
            "1000",
            "--key-file",
            key.to_str().unwrap(),
            luks.to_str().unwrap(),
        ],
    );
    assert_eq!(signatures::probe(&head(&luks)), sig("crypto_LUKS"));

    // A GPT written by sfdisk (util-linux).
    let gpt = image(d.path(), "gpt", 16);
    let mut child = Command::new("sfdisk")
        .args(["-q", gpt.to_str().unwrap()])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("sfdisk (util-linux)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"label: gpt\n,,L\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(signatures::probe(&head(&gpt)), sig("gpt"));
}

#[test]
fn a_loop_device_read_through_the_roots_dev_blank_then_an_lvm_pv() {
    let d = tempfile::tempdir().unwrap();
    let img = image(d.path(), "pv.img", 64);
    let lo = LoopDevice::attach(&img);
    let (major, minor) = lo.number();
    // The root's own /dev node for the loop device, as a DaemonSet's /host/dev holds the
    // host's nodes.
    let root_dir = d.path().join("root");
    std::fs::create_dir_all(root_dir.join("dev")).unwrap();
    run(
        "mknod",
        &[
            root_dir.join("dev/vdz").to_str().unwrap(),
            "b",
            &major.to_string(),
            &minor.to_string(),
        ],
    );
    let root = Root::open(&root_dir).unwrap();
    let dev = BlockDevice {
        name: "vdz".into(),
        device: (major, minor),
        size_bytes: 64 << 20,
        read_only: false,
        removable: false,
        partitions: vec![],
        holders: vec![],
    };
    assert_eq!(blockdev::probe(&root, &dev).unwrap(), Content::Blank);
    run("pvcreate", &["-q", "-f", lo.path()]);
    assert_eq!(blockdev::probe(&root, &dev).unwrap(), sig("LVM2_member"));
    run("pvremove", &["-q", "-f", lo.path()]);
    // A node whose number is not the device sysfs names is not probed in its place.
    let other = BlockDevice {
        device: (major, minor + 1000),
        ..dev.clone()
    };
    let e = blockdev::probe(&root, &other).unwrap_err();
    assert!(e.to_string().contains("/dev/vdz"), "{e}");
}
