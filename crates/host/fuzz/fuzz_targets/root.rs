//! The rooted resolver. Each input builds a small tree of directories, files and symlinks in a
//! fresh root, beside a canary outside it, then resolves and reads paths through both resolvers
//! (`openat2(RESOLVE_IN_ROOT)` and the walker). Nothing may escape: the canary is never read,
//! a listing never shows the directory above the root, a resolved path is canonical, and where
//! both resolvers read a file they read the same one. Loops end in `ELOOP`, never a hang.
#![no_main]
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use hostready_host::Root;
use libfuzzer_sys::arbitrary::{self, Arbitrary};

const CANARY: &[u8] = b"CANARY outside the root";
const MARKER: &str = "escape-marker";

/// A path component; node names are only the plain ones, link targets and queries use all.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Comp {
    A,
    B,
    C,
    Outside,
    Canary,
    Dot,
    DotDot,
    /// The absolute location of the scratch directory on this machine, e.g. `/tmp/.tmpXYZ`.
    HostDir,
}

#[derive(Arbitrary, Debug)]
struct PathSpec {
    absolute: bool,
    comps: Vec<Comp>,
    trailing_slash: bool,
}

#[derive(Arbitrary, Debug)]
enum Node {
    Dir(Vec<Comp>),
    File(Vec<Comp>),
    Link(Vec<Comp>, PathSpec),
}

#[derive(Arbitrary, Debug)]
struct Input {
    nodes: Vec<Node>,
    queries: Vec<PathSpec>,
}

struct Scratch {
    base: PathBuf,
    root: PathBuf,
}

fn scratch() -> &'static Scratch {
    static S: OnceLock<Scratch> = OnceLock::new();
    S.get_or_init(|| {
        let base = tempfile::tempdir().expect("tempdir").keep();
        std::fs::create_dir(base.join("outside")).unwrap();
        std::fs::write(base.join("outside/canary"), CANARY).unwrap();
        std::fs::write(base.join("canary"), CANARY).unwrap();
        std::fs::write(base.join(MARKER), CANARY).unwrap();
        Scratch {
            root: base.join("root"),
            base,
        }
    })
}

fn name(c: Comp) -> Option<&'static str> {
    match c {
        Comp::A => Some("a"),
        Comp::B => Some("b"),
        Comp::C => Some("c"),
        Comp::Outside => Some("outside"),
        Comp::Canary => Some("canary"),
        Comp::Dot | Comp::DotDot | Comp::HostDir => None,
    }
}

fn render(spec: &PathSpec, base: &Path) -> PathBuf {
    let mut s = Vec::new();
    if spec.absolute {
        s.push(b'/');
    }
    for (i, c) in spec.comps.iter().take(12).enumerate() {
        if i > 0 {
            s.push(b'/');
        }
        match c {
            Comp::Dot => s.push(b'.'),
            Comp::DotDot => s.extend_from_slice(b".."),
            Comp::HostDir => s.extend_from_slice(base.as_os_str().as_bytes()),
            c => s.extend_from_slice(name(*c).unwrap().as_bytes()),
        }
    }
    if spec.trailing_slash {
        s.push(b'/');
    }
    PathBuf::from(OsStr::from_bytes(&s))
}

/// Creates one node below the root without ever following a symlink on the way (a link to
/// `/` must not make the fuzzer write into this machine's filesystem).
fn create(root: &Path, comps: &[Comp], make: impl FnOnce(&Path)) {
    let Some(names) = comps
        .iter()
        .take(6)
        .map(|c| name(*c))
        .collect::<Option<Vec<_>>>()
    else {
        return;
    };
    let Some((last, parents)) = names.split_last() else {
        return;
    };
    let mut at = root.to_path_buf();
    for p in parents {
        at.push(p);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_dir() => {}
            _ => return,
        }
    }
    at.push(last);
    if std::fs::symlink_metadata(&at).is_ok() {
        return;
    }
    make(&at);
}

fn check_canonical(p: &Path) {
    assert!(p.is_absolute(), "{p:?}");
    for c in p.components().skip(1) {
        assert!(matches!(c, Component::Normal(_)), "{p:?} is not canonical");
    }
}

libfuzzer_sys::fuzz_target!(|input: Input| {
    let s = scratch();
    let _ = std::fs::remove_dir_all(&s.root);
    std::fs::create_dir(&s.root).unwrap();
    for node in input.nodes.iter().take(16) {
        match node {
            Node::Dir(c) => create(&s.root, c, |p| {
                let _ = std::fs::create_dir(p);
            }),
            Node::File(c) => create(&s.root, c, |p| {
                let _ = std::fs::write(p, p.as_os_str().as_bytes());
            }),
            Node::Link(c, target) => create(&s.root, c, |p| {
                let _ = std::os::unix::fs::symlink(render(target, &s.base), p);
            }),
        }
    }
    let fast = Root::open(&s.root).unwrap();
    let walker = Root::open_without_openat2(&s.root).unwrap();
    for q in input.queries.iter().take(8) {
        let q = render(q, &s.base);
        let mut reads = Vec::new();
        for r in [&fast, &walker] {
            let read = r.read(&q).ok();
            if let Some(bytes) = &read {
                assert!(bytes != CANARY, "{q:?} read the canary outside the root");
                assert!(
                    bytes.starts_with(s.root.as_os_str().as_bytes()),
                    "{q:?} read a file not made by this input"
                );
            }
            if let Ok(head) = r.read_head(&q, 64) {
                assert!(!head.starts_with(b"CANARY"), "{q:?} read_head escaped");
            }
            if let Ok(names) = r.read_dir(&q) {
                assert!(
                    !names.iter().any(|n| n == MARKER || n == "root"),
                    "{q:?} listed the directory above the root: {names:?}"
                );
            }
            let _ = r.stat(&q);
            let _ = r.symlink_stat(&q);
            let _ = r.exists(&q);
            reads.push(read);
        }
        if let (Some(a), Some(b)) = (&reads[0], &reads[1]) {
            assert_eq!(a, b, "{q:?}: openat2 and the walker read different files");
        }
        if let Ok(res) = walker.resolve(&q) {
            check_canonical(&res.path);
            assert!(res.links.len() <= hostready_host::MAX_SYMLINKS);
            for l in &res.links {
                check_canonical(&l.path);
            }
            // The canonical path names the same file without any link.
            if let Some(bytes) = &reads[1] {
                let again = walker.resolve(&res.path).expect("canonical path resolves");
                assert!(again.links.is_empty(), "{:?} still has links", res.path);
                assert_eq!(&walker.read(&res.path).unwrap(), bytes);
            }
        }
    }
});
