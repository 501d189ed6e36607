//! The kernel-side boot-configuration readers on the real debootstrap root (Debian 12
//! minbase, `.cache/debroot/bookworm`, read in place): its `modprobe.d` (fbdev-blacklist.conf,
//! in both `/lib` and `/usr/lib` of a merged-/usr root), no `sysctl.d`, and its unconfigured
//! `/etc/fstab`.

// The test checks that the root exists before opening it.
#![allow(clippy::disallowed_methods)]

use std::path::Path;

use hostready_host::{Root, confdirs, modparam, swap, sysctl};

const DEBROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.cache/debroot/bookworm");

fn debroot() -> Root {
    assert!(
        Path::new(DEBROOT).join("etc/debian_version").is_file(),
        "{DEBROOT} is missing: build it with scripts/setup (debootstrap)"
    );
    Root::open(DEBROOT).unwrap()
}

#[test]
fn debian_minbase_boot_configuration() {
    let fs = debroot();
    // /lib is /usr/lib in a merged-/usr root: one file, taken from the first directory.
    let files = confdirs::conf_files(&fs, &modparam::MODPROBE_DIRS).unwrap();
    let names: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(names, ["/usr/lib/modprobe.d/fbdev-blacklist.conf"]);
    let text = fs.read_to_string(&files[0].path).unwrap();
    assert!(text.contains("blacklist "), "{text}");
    // Only `blacklist` lines: no module parameter is set at boot.
    assert_eq!(
        modparam::modprobe_setting(&fs, "nvme_core", "multipath"),
        Ok(None)
    );
    // Minbase ships no sysctl.d and no sysctl.conf (procps is not installed).
    let b = sysctl::boot_setting(&fs, "net.ipv4.ip_forward").unwrap();
    assert_eq!((b.files.len(), b.last), (0, None));
    let fstab = fs.read_to_string("/etc/fstab").unwrap();
    assert!(fstab.starts_with("# UNCONFIGURED FSTAB"), "{fstab}");
    assert!(swap::fstab_swaps(&fstab).is_empty());
}
