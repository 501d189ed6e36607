//! Device nodes and FIFOs where a host file should be are refused without ever being opened:
//! a device's `open()` runs driver code (ptmx allocates a terminal, a watchdog arms), and a
//! FIFO's blocks. Each test watches the node with inotify (`IN_OPEN` is sent for every real
//! open, never for an `O_PATH` one), counts terminals in a private devpts instance for ptmx,
//! and holds a writer on the FIFO that a reader's open would release.

// Tests build fake hosts and read fixtures on this machine directly.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hostready_host::os_release::OsRelease;
use hostready_host::{FsError, Root};
use hostready_testkit::fakehost::{Mount, mknod};
use rustix::fs::inotify;
use rustix::fs::{FileType, Mode, OFlags};

/// Every way `Root` opens a file to read its content; each must refuse a non-regular file.
fn every_reader(r: &Root, path: &str) -> Vec<(&'static str, FsError)> {
    let mut out = Vec::new();
    let mut push = |name, res: Result<(), FsError>| match res {
        Ok(()) => panic!("{name}({path}) accepted a non-regular file"),
        Err(e) => out.push((name, e)),
    };
    push("open_file", r.open_file(path).map(drop));
    push("read", r.read(path).map(drop));
    push("read_bounded", r.read_bounded(path, 4096).map(drop));
    push("read_head", r.read_head(path, 64).map(drop));
    push("read_to_string", r.read_to_string(path).map(drop));
    push(
        "read_to_string_bounded",
        r.read_to_string_bounded(path, 4096).map(drop),
    );
    out
}

fn both(root: &Path) -> [Root; 2] {
    let fast = Root::open(root).unwrap();
    assert!(fast.uses_openat2(), "this kernel offers openat2");
    [fast, Root::open_without_openat2(root).unwrap()]
}

/// An inotify watch that records real opens of some files.
struct OpenWatch {
    fd: rustix::fd::OwnedFd,
    names: Vec<(i32, PathBuf)>,
}

impl OpenWatch {
    fn new(paths: &[PathBuf]) -> OpenWatch {
        let fd =
            inotify::init(inotify::CreateFlags::NONBLOCK | inotify::CreateFlags::CLOEXEC).unwrap();
        let names = paths
            .iter()
            .map(|p| {
                let wd = inotify::add_watch(&fd, p, inotify::WatchFlags::OPEN).unwrap();
                (wd, p.clone())
            })
            .collect();
        OpenWatch { fd, names }
    }

    /// Returns the watched files that were opened since the last call.
    fn opened(&self) -> Vec<PathBuf> {
        let mut buf = [std::mem::MaybeUninit::uninit(); 4096];
        let mut reader = inotify::Reader::new(&self.fd, &mut buf);
        let mut out = Vec::new();
        while let Ok(ev) = reader.next() {
            if let Some((_, p)) = self.names.iter().find(|(wd, _)| *wd == ev.wd()) {
                out.push(p.clone());
            }
        }
        out
    }
}

/// A private devpts instance mounted at `dir`: a ptmx node beside it allocates terminals
/// there (the kernel looks for `pts` next to the node), so counting them is exact even while
/// other processes on the machine open terminals.
struct Devpts(Mount);

impl Devpts {
    fn mount(dir: PathBuf) -> Devpts {
        Devpts(Mount::new(
            &["-t", "devpts", "-o", "newinstance,ptmxmode=0666", "devpts"],
            &dir,
        ))
    }

    fn terminals(&self) -> usize {
        fs::read_dir(self.0.path())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name() != "ptmx")
            .count()
    }
}

#[test]
fn device_nodes_are_refused_without_being_opened() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let etc = root.join("etc");
    // /dev/null's numbers as os-release, /dev/ptmx's as another file, a link to the device.
    mknod(&etc.join("os-release"), FileType::CharacterDevice, 1, 3);
    mknod(&etc.join("ptmx-file"), FileType::CharacterDevice, 5, 2);
    symlink("/etc/ptmx-file", etc.join("via-link")).unwrap();
    let pts = Devpts::mount(etc.join("pts"));
    // The private instance works: a real open of the node allocates a terminal there.
    {
        let before = pts.terminals();
        let t = fs::File::open(etc.join("ptmx-file")).unwrap();
        assert_eq!(pts.terminals(), before + 1, "the ptmx probe itself works");
        drop(t);
        assert_eq!(pts.terminals(), before);
    }
    let watch = OpenWatch::new(&[etc.join("os-release"), etc.join("ptmx-file")]);
    for r in both(&root) {
        for path in ["/etc/os-release", "/etc/ptmx-file", "/etc/via-link"] {
            for (reader, e) in every_reader(&r, path) {
                assert!(e.is_not_regular(), "{reader}({path}): {e:?}");
                let msg = format!("{e}: {}", e.source);
                assert!(msg.contains(path), "{msg}");
                assert!(msg.contains("character device"), "{msg}");
            }
        }
        assert_eq!(OsRelease::read(&r), None);
    }
    assert_eq!(watch.opened(), Vec::<PathBuf>::new(), "a device was opened");
    assert_eq!(pts.terminals(), 0, "a terminal was allocated");
    // The watch itself works: a real open is seen.
    drop(fs::File::open(etc.join("os-release")).unwrap());
    assert_eq!(watch.opened(), vec![etc.join("os-release")]);
}

#[test]
fn fifos_are_refused_promptly_and_never_opened() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let fifo = root.join("etc/os-release");
    mknod(&fifo, FileType::Fifo, 0, 0);
    // A writer blocks in open(2) until some reader opens the FIFO. Only the test's own open at
    // the end may release it.
    let releasing = Arc::new(AtomicBool::new(false));
    let writer = {
        let (fifo, releasing) = (fifo.clone(), releasing.clone());
        std::thread::spawn(move || {
            let fd = rustix::fs::open(&fifo, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty());
            (fd.is_ok(), releasing.load(Ordering::SeqCst))
        })
    };
    let watch = OpenWatch::new(std::slice::from_ref(&fifo));
    let started = Instant::now();
    for r in both(&root) {
        for (reader, e) in every_reader(&r, "/etc/os-release") {
            assert!(e.is_not_regular(), "{reader}: {e:?}");
            assert!(format!("{}", e.source).contains("FIFO"), "{reader}: {e}");
        }
        assert_eq!(OsRelease::read(&r), None);
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a reader blocked"
    );
    assert_eq!(watch.opened(), Vec::<PathBuf>::new(), "the FIFO was opened");
    assert!(!writer.is_finished(), "a reader opened the FIFO");
    releasing.store(true, Ordering::SeqCst);
    let reader = rustix::fs::open(
        &fifo,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .unwrap();
    let (opened, by_test) = writer.join().unwrap();
    drop(reader);
    assert!(opened, "the writer's open succeeded");
    assert!(
        by_test,
        "the writer was released before the test opened the FIFO"
    );
}

#[test]
fn regular_files_still_read_through_every_entry_point() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(root.join("etc/os-release"), "ID=debian\n").unwrap();
    symlink("/etc/os-release", root.join("link")).unwrap();
    for r in both(&root) {
        for p in ["/etc/os-release", "/link"] {
            assert_eq!(r.read(p).unwrap(), b"ID=debian\n");
            assert_eq!(r.read_head(p, 4).unwrap(), b"ID=d");
            assert_eq!(r.read_to_string_bounded(p, 10).unwrap(), "ID=debian\n");
            let e = r.read_bounded(p, 9).unwrap_err();
            assert!(e.is_too_large(), "{e:?}");
            let mut s = String::new();
            std::io::Read::read_to_string(&mut r.open_file(p).unwrap(), &mut s).unwrap();
            assert_eq!(s, "ID=debian\n");
        }
        assert!(r.read("/etc").unwrap_err().is_not_regular());
    }
}

/// `Root::open_listed`, the open of a file by its name in a listed directory: a regular file
/// reads; a symlink is followed inside the root (also when listed as a regular file, as one
/// swapped in after the listing would be); a device node or FIFO the listing reports is
/// refused without being opened, also behind a bind mount over a regular file; one swapped in
/// after a listing that said "regular file" is refused unread, promptly; a name with a `/` or
/// `..` is refused.
#[test]
fn listed_files_open_by_name_and_refuse_what_is_not_regular() {
    use hostready_host::FileKind;
    use std::ffi::OsStr;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let info = root.join("var/lib/dpkg/info");
    fs::create_dir_all(&info).unwrap();
    fs::write(info.join("a.list"), "/usr/bin/a\n").unwrap();
    fs::write(root.join("outside-info"), "/usr/bin/other\n").unwrap();
    symlink("/outside-info", info.join("link.list")).unwrap();
    symlink("../../../../../../../outside-info", info.join("up.list")).unwrap();
    mknod(&info.join("null.list"), FileType::CharacterDevice, 1, 3);
    mknod(&info.join("fifo.list"), FileType::Fifo, 0, 0);
    // A bind mount of a device node over a regular file: the listing says "regular file".
    fs::write(info.join("masked.list"), "").unwrap();
    let dev = dir.path().join("null-dev");
    mknod(&dev, FileType::CharacterDevice, 1, 3);
    let _bind = Mount::new(
        &["--bind", dev.to_str().unwrap()],
        &info.join("masked.list"),
    );
    let watch = OpenWatch::new(&[info.join("null.list"), dev.clone()]);
    let read = |(mut f, st): (fs::File, hostready_host::Stat)| {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut f, &mut s).unwrap();
        assert_eq!(st.size, s.len() as u64);
        s
    };
    let started = Instant::now();
    for r in both(&root) {
        let d = r.open_root_dir("/var/lib/dpkg/info").unwrap();
        let open = |name: &str, kind| r.open_listed(&d, OsStr::new(name), kind);
        for kind in [Some(FileKind::File), None] {
            assert_eq!(read(open("a.list", kind).unwrap()), "/usr/bin/a\n");
        }
        for kind in [Some(FileKind::Symlink), Some(FileKind::File), None] {
            for name in ["link.list", "up.list"] {
                assert_eq!(
                    read(open(name, kind).unwrap()),
                    "/usr/bin/other\n",
                    "{name}"
                );
            }
        }
        for kind in [Some(FileKind::Other), None] {
            for name in ["null.list", "fifo.list"] {
                let e = open(name, kind).unwrap_err();
                assert!(e.is_not_regular(), "{name}: {e:?}");
                assert!(e.path.ends_with(name), "{e:?}");
            }
        }
        let e = open("masked.list", Some(FileKind::File)).unwrap_err();
        assert!(e.is_not_regular(), "{e:?}");
        assert!(format!("{}", e.source).contains("character device"), "{e}");
        assert!(
            open("gone.list", Some(FileKind::File))
                .unwrap_err()
                .is_not_found()
        );
        for name in ["", ".", "..", "../info/a.list", "sub/a.list"] {
            let e = open(name, Some(FileKind::File)).unwrap_err();
            assert_eq!(
                e.source.kind(),
                std::io::ErrorKind::InvalidInput,
                "{name:?}"
            );
        }
    }
    assert_eq!(watch.opened(), Vec::<PathBuf>::new(), "a device was opened");
    // A FIFO swapped in for a file the listing called regular: opened without blocking (no
    // writer is needed with O_NONBLOCK), refused before any read.
    let r = Root::open(&root).unwrap();
    let d = r.open_root_dir("/var/lib/dpkg/info").unwrap();
    let e = r
        .open_listed(&d, OsStr::new("fifo.list"), Some(FileKind::File))
        .unwrap_err();
    assert!(
        e.is_not_regular() && format!("{}", e.source).contains("FIFO"),
        "{e:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "an open blocked"
    );
    // A device node swapped in likewise is refused; this is the one case whose open() runs.
    let e = r
        .open_listed(&d, OsStr::new("null.list"), Some(FileKind::File))
        .unwrap_err();
    assert!(e.is_not_regular(), "{e:?}");
    assert_eq!(watch.opened(), vec![info.join("null.list")]);
}
