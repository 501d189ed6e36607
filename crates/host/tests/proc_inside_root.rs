//! The default procfs of a root (`<root>/proc`) is resolved inside the root: a `proc` that is a
//! symlink out of it never hands over this machine's procfs, while a procfs really mounted
//! there is used.

// Tests build fake hosts and read fixtures on this machine directly.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use hostready_host::{Host, ProcSource};
use hostready_testkit::fakehost::Mount;

fn root_with_proc_link(target: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    // Deep enough that `../../../proc` would reach this machine's `/proc` if followed by path.
    let root = dir.path().join("a/b/root");
    fs::create_dir_all(root.join("etc")).unwrap();
    symlink(target, root.join("proc")).unwrap();
    (dir, root)
}

fn no_proc_reason(root: &Path) -> String {
    let host = Host::open(root, ProcSource::Auto).unwrap();
    match host.proc() {
        Ok(p) => panic!(
            "{}: got a procfs at {} (reads {:?})",
            root.display(),
            p.location().display(),
            p.read_to_string("/sys/kernel/osrelease")
        ),
        Err(e) => e.0.clone(),
    }
}

#[test]
fn proc_symlink_to_absolute_proc_gives_no_procfs() {
    let (_d, root) = root_with_proc_link("/proc");
    let why = no_proc_reason(&root);
    assert!(why.contains("/proc"), "{why}");
    assert!(why.contains("symbolic links"), "{why}");
    assert!(why.contains("--proc /proc"), "{why}");
}

#[test]
fn proc_symlink_climbing_out_gives_no_procfs() {
    for target in ["../../../proc", "../../../../../../../../proc", "/../proc"] {
        let (_d, root) = root_with_proc_link(target);
        let why = no_proc_reason(&root);
        assert!(why.contains("symbolic links"), "{target}: {why}");
    }
}

#[test]
fn proc_symlink_to_a_plain_directory_inside_is_not_a_procfs() {
    let (_d, root) = root_with_proc_link("/fakeproc");
    fs::create_dir(root.join("fakeproc")).unwrap();
    fs::write(root.join("fakeproc/meminfo"), "MemTotal: 1 kB\n").unwrap();
    let why = no_proc_reason(&root);
    assert!(why.contains("not a mounted procfs"), "{why}");
}

#[test]
fn a_procfs_mounted_in_the_root_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let _m = Mount::new(&["-t", "proc", "proc"], &root.join("proc"));
    let host = Host::open(&root, ProcSource::Auto).unwrap();
    // The same procfs reached through `Root::subroot` with the userspace walker.
    let walked = hostready_host::Root::open_without_openat2(&root)
        .unwrap()
        .subroot("/proc")
        .unwrap();
    for proc in [host.proc().unwrap(), &walked] {
        assert!(proc.is_procfs_root());
        let mine = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        assert_eq!(proc.read_to_string("/sys/kernel/osrelease").unwrap(), mine);
        assert!(proc.read_to_string("/self/stat").is_ok());
    }
}

#[test]
fn a_procfs_subdirectory_bound_at_proc_is_not_a_procfs_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let _m = Mount::new(&["--bind", "/proc/sys"], &root.join("proc"));
    let why = no_proc_reason(&root);
    assert!(why.contains("not a mounted procfs"), "{why}");
}

#[test]
fn the_machine_root_still_gets_its_procfs() {
    let host = Host::open("/", ProcSource::Auto).unwrap();
    let proc = host.proc().unwrap();
    assert_eq!(proc.location(), Path::new("/proc"));
    assert!(proc.read_to_string("/meminfo").is_ok());
}

#[test]
fn a_device_bound_over_a_procfs_file_is_refused_without_being_opened() {
    use rustix::fs::inotify;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let _proc = Mount::new(&["-t", "proc", "proc"], &root.join("proc"));
    // What container runtimes do to mask /proc/kcore (here over /proc/version, which every
    // kernel has), with a node of our own so that opens of it can be watched without seeing
    // the machine's other /dev/null users.
    let node = dir.path().join("null");
    hostready_testkit::fakehost::mknod(&node, rustix::fs::FileType::CharacterDevice, 1, 3);
    let _mask = Mount::new(
        &["--bind", node.to_str().unwrap()],
        &root.join("proc/version"),
    );
    let watch =
        inotify::init(inotify::CreateFlags::NONBLOCK | inotify::CreateFlags::CLOEXEC).unwrap();
    inotify::add_watch(&watch, &node, inotify::WatchFlags::OPEN).unwrap();
    let host = Host::open(&root, ProcSource::Auto).unwrap();
    let proc = host.proc().unwrap();
    let e = proc.read_head("/version", 16).unwrap_err();
    assert!(e.is_not_regular(), "{e:?}");
    let e = proc.read("/version").unwrap_err();
    assert!(e.is_not_regular(), "{e:?}");
    // Other files of that procfs still read (the one-open path).
    assert!(proc.read_head("/self/comm", 64).is_ok());
    let mut buf = [std::mem::MaybeUninit::uninit(); 1024];
    let mut events = inotify::Reader::new(&watch, &mut buf);
    assert!(events.next().is_err(), "the device was opened");
}
