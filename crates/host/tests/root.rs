//! The rooted view against hostile trees: every case runs through both resolvers
//! (`openat2(RESOLVE_IN_ROOT)` and the descriptor walker), which must agree.

// Tests build fake hosts and read fixtures on this machine directly, not a host's root.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use hostready_host::{FileKind, Root};

/// A host root with a secret outside it that no resolution may reach.
struct Fixture {
    _outer: tempfile::TempDir,
    root: std::path::PathBuf,
}

fn fixture() -> Fixture {
    let outer = tempfile::tempdir().unwrap();
    fs::write(outer.path().join("secret"), "outside").unwrap();
    let root = outer.path().join("root");
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::create_dir_all(root.join("usr/sbin")).unwrap();
    fs::write(root.join("secret"), "inside").unwrap();
    fs::write(root.join("etc/os-release"), "ID=debian\n").unwrap();
    fs::write(root.join("usr/sbin/tool"), "#!/bin/sh\n").unwrap();
    fs::set_permissions(
        root.join("usr/sbin/tool"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    symlink("usr/sbin", root.join("sbin")).unwrap();
    // Escapes that must land inside the root.
    symlink("/secret", root.join("abs")).unwrap();
    symlink("../../../../secret", root.join("etc/rel")).unwrap();
    symlink(outer.path().join("secret"), root.join("full")).unwrap();
    symlink("/..", root.join("dotdot")).unwrap();
    // Loops.
    symlink("loop-b", root.join("loop-a")).unwrap();
    symlink("loop-a", root.join("loop-b")).unwrap();
    symlink("self", root.join("self")).unwrap();
    Fixture {
        _outer: outer,
        root,
    }
}

fn both(root: &Path) -> [Root; 2] {
    let fast = Root::open(root).unwrap();
    assert!(
        fast.uses_openat2(),
        "this kernel should offer openat2; the suite covers both paths"
    );
    [fast, Root::open_without_openat2(root).unwrap()]
}

#[test]
fn absolute_and_relative_escapes_stay_inside() {
    let f = fixture();
    for r in both(&f.root) {
        for p in [
            "/abs",
            "/etc/rel",
            "/../../secret",
            "../secret",
            "/dotdot/secret",
            "/etc/../../../secret",
        ] {
            assert_eq!(
                r.read_to_string(p).unwrap(),
                "inside",
                "{p} with openat2={}",
                r.uses_openat2()
            );
        }
        // A link to the host path of the secret names a path that does not exist in the root.
        assert!(r.read_to_string("/full").unwrap_err().is_not_found());
    }
}

#[test]
fn loops_are_errors_not_hangs() {
    let f = fixture();
    for r in both(&f.root) {
        for p in ["/loop-a", "/self", "/loop-a/x"] {
            let e = r.read(p).unwrap_err();
            assert!(e.is_loop(), "{p}: {e:?}");
        }
    }
    let walker = Root::open_without_openat2(&f.root).unwrap();
    assert!(walker.resolve("/self").unwrap_err().is_loop());
}

#[test]
fn resolve_reports_the_link_chain() {
    let f = fixture();
    let r = Root::open(&f.root).unwrap();
    let res = r.resolve("/sbin/tool").unwrap();
    assert_eq!(res.path, Path::new("/usr/sbin/tool"));
    assert_eq!(res.links.len(), 1);
    assert_eq!(res.links[0].path, Path::new("/sbin"));
    assert_eq!(res.links[0].target, Path::new("usr/sbin"));
    let res = r.resolve("/etc/rel").unwrap();
    assert_eq!(res.path, Path::new("/secret"));
}

#[test]
fn stat_dir_listing_and_missing() {
    let f = fixture();
    for r in both(&f.root) {
        assert_eq!(r.stat("/sbin").unwrap().kind, FileKind::Dir);
        assert_eq!(r.symlink_stat("/sbin").unwrap().kind, FileKind::Symlink);
        assert_eq!(r.stat("/sbin/tool").unwrap().mode, 0o755);
        let mut names = r.read_dir("/sbin").unwrap();
        names.sort();
        assert_eq!(names, vec![std::ffi::OsString::from("tool")]);
        let e = r.read("/etc/missing").unwrap_err();
        assert!(e.is_not_found());
        assert!(e.to_string().contains("/etc/missing"), "{e}");
        // A file used as a directory.
        assert!(r.read("/secret/x").is_err());
        // The root itself.
        assert_eq!(r.stat("/").unwrap().kind, FileKind::Dir);
    }
}

#[test]
fn oversized_reads_are_refused() {
    let f = fixture();
    let r = Root::open(&f.root).unwrap();
    // /dev/zero-like endless files must not be read without bound; a sparse file stands in.
    let big = fs::File::create(f.root.join("big")).unwrap();
    big.set_len(hostready_host::MAX_READ_BYTES + 10).unwrap();
    let e = r.read("/big").unwrap_err();
    assert!(e.to_string().contains("/big"));
}

#[test]
fn devices_and_fifos_are_refused_not_read() {
    let f = fixture();
    // A FIFO would block a plain open or read forever; a device could stream without end.
    hostready_testkit::fakehost::mknod(&f.root.join("etc/fifo"), rustix::fs::FileType::Fifo, 0, 0);
    for r in both(&f.root) {
        let e = r.read("/etc/fifo").unwrap_err();
        assert!(e.to_string().contains("/etc/fifo"), "{e}");
        assert_eq!(e.source.kind(), std::io::ErrorKind::InvalidInput, "{e:?}");
        // Directories are not regular files either.
        assert!(r.read("/etc").is_err());
    }
}
