//! dpkg owner lookups (`owner_with_proc`), which check `status` on a thread of their own while
//! the file lists are searched on several, and then parse only the parts of `status` that may
//! hold the owners: the same answers as a full read and as `dpkg-query -S` on a status of
//! thousands of stanzas (owners in every part of the file, several owners of one path,
//! multi-arch pairs, names written in capitals, a removed package's list), and the
//! same errors (damage in `status`, a bad list, both).

// Tests build fake hosts and read fixtures on this machine directly.
#![allow(clippy::disallowed_methods)]

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;

use hostready_host::Root;
use hostready_pkgdb::{Lookup, Package, Scope, open_host_databases, owner_with_proc};

/// Stanzas in the generated status: many per part of the owner lookup's index (128 parts).
const STANZAS: usize = 3000;

/// A dpkg root of [`STANZAS`] packages `p0..`: each owns `/usr/share/pN`; every 97th also
/// `/usr/share/shared`; `m` is a `Multi-Arch: same` pair whose two lists name
/// `/usr/lib/m.so`; `P1500` is written in capitals (dpkg keeps names in lower case); `gone`
/// has only its configuration files left, with a list naming `/usr/share/shared`.
fn big_root(damage: Option<&str>) -> tempfile::TempDir {
    let mut status = String::new();
    let mut lists: Vec<(String, String)> = Vec::new();
    for i in 0..STANZAS {
        let name = if i == 1500 {
            "P1500".to_string()
        } else {
            format!("p{i}")
        };
        write!(
            status,
            "Package: {name}\nStatus: install ok installed\nPriority: optional\n\
             Architecture: amd64\nVersion: 1.{i}-1\nDepends: libc6 (>= 2.36), p{}\n\
             Description: package {i}\n a longer description of package {i}\n\n",
            (i + 1) % STANZAS
        )
        .unwrap();
        let shared = if i % 97 == 0 {
            "/usr/share/shared\n"
        } else {
            ""
        };
        lists.push((
            format!("p{i}"),
            format!("/.\n/usr\n/usr/share\n{shared}/usr/share/p{i}\n"),
        ));
        if i == 2000 {
            for arch in ["amd64", "i386"] {
                write!(
                    status,
                    "Package: m\nStatus: install ok installed\nArchitecture: {arch}\n\
                     Multi-Arch: same\nVersion: 2-1\n\n"
                )
                .unwrap();
                lists.push((format!("m:{arch}"), "/.\n/usr/lib/m.so\n".into()));
            }
            status.push_str(
                "Package: gone\nStatus: deinstall ok config-files\nArchitecture: amd64\n\
                 Version: 3\n\n",
            );
            lists.push(("gone".into(), "/usr/share/shared\n".into()));
        }
    }
    if let Some(d) = damage {
        // Damage two thirds into the file, far from the owners of most paths.
        let at = status.len() * 2 / 3;
        let at = status[at..].find("\n\n").unwrap() + at + 2;
        status.insert_str(at, d);
    }
    let lists: Vec<(&str, &str)> = lists
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let dir = hostready_testkit::fakehost::dpkg_root(status, &lists);
    // The multi-arch layout of info/ (`pkg:arch.list`), without which dpkg looks for `m.list`.
    fs::write(dir.path().join("var/lib/dpkg/info/format"), "1\n").unwrap();
    dir
}

fn view(pkgs: &[Package]) -> Vec<String> {
    pkgs.iter()
        .map(|p| {
            format!(
                "{} {} {} {} {} {:?}",
                p.name,
                p.evr,
                p.arch,
                p.state,
                p.db_path.display(),
                p.files
            )
        })
        .collect()
}

/// The fast lookup equals the full read, record for record and in the same order.
fn same(fast: &Lookup, full: &Lookup, what: &str) {
    assert_eq!(view(&fast.packages), view(&full.packages), "{what}");
    assert_eq!(fast.complete, full.complete, "{what}");
    assert_eq!(fast.unreadable, full.unreadable, "{what}");
}

/// The package names `dpkg-query -S` gives for `path`, sorted (none: not found).
fn dpkg_query_owners(root: &Path, path: &str) -> Vec<String> {
    let out = Command::new("dpkg-query")
        .arg("--admindir")
        .arg(root.join("var/lib/dpkg"))
        .args(["-S", path])
        .output()
        .expect("dpkg-query (a Debian test machine)");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut names: Vec<String> = text
        .lines()
        .flat_map(|l| l.rsplit_once(": ").unwrap().0.split(", "))
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

#[test]
fn owners_from_every_part_of_a_large_status_equal_the_full_read_and_dpkg_query() {
    let dir = big_root(None);
    let root = Root::open(dir.path()).unwrap();
    let full = open_host_databases(&root);
    let mut paths: Vec<String> = (0..STANZAS)
        .step_by(131)
        .map(|i| format!("/usr/share/p{i}"))
        .collect();
    paths.extend(
        [
            "/usr/share/p0",
            "/usr/share/p1500",
            "/usr/share/p2999",
            "/usr/share/shared",
            "/usr/lib/m.so",
            "/usr/share/nothing",
            "/usr/share",
        ]
        .map(String::from),
    );
    for path in &paths {
        let fast = owner_with_proc(&root, None, path);
        same(&fast.lookup, &full.owner_of(path), path);
        assert!(fast.lookup.complete, "{path}");
        let dpkg = fast
            .dbs
            .iter()
            .find(|d| d.kind == hostready_pkgdb::DbKind::Dpkg);
        assert_eq!(
            dpkg.unwrap().scope,
            Scope::Scan {
                records: STANZAS + 3
            },
            "{path}"
        );
        let mut ours: Vec<String> = fast
            .lookup
            .packages
            .iter()
            .map(|p| match p.name.as_str() {
                "m" => format!("m:{}", p.arch),
                n => n.to_string(),
            })
            .collect();
        ours.sort();
        assert_eq!(ours, dpkg_query_owners(dir.path(), path), "{path}");
    }
    let shared = owner_with_proc(&root, None, "/usr/share/shared");
    assert_eq!(shared.lookup.packages.len(), STANZAS.div_ceil(97) + 1);
    let capital = owner_with_proc(&root, None, "/usr/share/p1500");
    assert_eq!(capital.lookup.packages[0].name, "p1500");
}

#[test]
fn damage_in_status_and_bad_lists_are_the_errors_a_full_read_gives() {
    // Damage far from the owner: corrupt, with the offset a full read gives.
    let dir = big_root(Some("\0\0\0\0"));
    let root = Root::open(dir.path()).unwrap();
    let full = open_host_databases(&root);
    for path in ["/usr/share/p3", "/usr/share/nothing"] {
        let fast = owner_with_proc(&root, None, path);
        same(&fast.lookup, &full.owner_of(path), path);
        assert!(!fast.lookup.complete && fast.lookup.packages.is_empty());
        assert!(
            fast.lookup.unreadable[0].contains("corrupt: NUL byte"),
            "{:?}",
            fast.lookup
        );
    }
    // A stanza cut in two: the error names the stanza's offset, as a full read does.
    let dir = big_root(Some("Package: cut\nStatus: install\n\n"));
    let root = Root::open(dir.path()).unwrap();
    let fast = owner_with_proc(&root, None, "/usr/share/p3");
    same(
        &fast.lookup,
        &open_host_databases(&root).owner_of("/usr/share/p3"),
        "cut",
    );
    assert!(
        fast.lookup.unreadable[0].contains("malformed Status \"install\""),
        "{:?}",
        fast.lookup
    );
    // A list that is a FIFO beside that damage: the list is the error, as when the lists were
    // searched before `status` was read.
    let fifo = dir.path().join("var/lib/dpkg/info/p2500.list");
    fs::remove_file(&fifo).unwrap();
    hostready_testkit::fakehost::mknod(&fifo, rustix::fs::FileType::Fifo, 0, 0);
    let fast = owner_with_proc(&root, None, "/usr/share/p3");
    assert!(!fast.lookup.complete && fast.lookup.packages.is_empty());
    let msg = &fast.lookup.unreadable[0];
    assert!(
        msg.contains("info/p2500.list") && msg.contains("FIFO"),
        "{msg}"
    );
    assert!(!msg.contains("corrupt"), "{msg}");
}
