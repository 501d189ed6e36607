//! Lookups that read only what they need (`query_with_proc`, `owner_with_proc`) give the same
//! answers as a full read: through rpm's SQLite index tables when they are consistent, through
//! a full scan when an index names nothing (a contradiction between index and records is
//! corrupt), and through byte searches of
//! dpkg's status and file lists (multi-arch stanzas, `status.d`, damage elsewhere in the file).

// Tests build fake hosts and read fixtures on this machine directly.
#![allow(clippy::disallowed_methods)]

mod util;

use std::path::{Path, PathBuf};

use hostready_host::Root;
use hostready_pkgdb::{
    Answer, DbKind, Lookup, Package, Scope, open_host_databases, owner_with_proc, query_with_proc,
};
use hostready_testkit::MARINER;

/// A root holding a copy of the CBL-Mariner rpmdb (the fixture itself is never written).
fn mariner_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("var/lib/rpm");
    std::fs::create_dir_all(&db).unwrap();
    std::fs::copy(MARINER, db.join("rpmdb.sqlite")).unwrap();
    dir
}

/// Runs SQL on the copy with the real sqlite3 CLI, damaging its index tables.
fn sqlite3(root: &Path, sql: &str) {
    hostready_testkit::process::sqlite3(&root.join("var/lib/rpm/rpmdb.sqlite"), sql);
}

/// Everything a caller sees of a record, files included, in a stable order.
fn view(pkgs: &[Package]) -> Vec<String> {
    let mut v: Vec<String> = pkgs
        .iter()
        .map(|p| {
            format!(
                "{} {:?} {} {} {} {} {:?} {} {:?}",
                p.name,
                p.epoch,
                p.evr,
                p.arch,
                p.state,
                p.installed,
                p.db,
                p.db_path.display(),
                p.files
            )
        })
        .collect();
    v.sort();
    v
}

fn same(fast: &Lookup, full: &Lookup, what: &str) {
    assert_eq!(view(&fast.packages), view(&full.packages), "{what}");
    assert_eq!(fast.complete, full.complete, "{what}");
    assert_eq!(fast.unreadable, full.unreadable, "{what}");
}

fn scope(a: &Answer, kind: DbKind) -> Scope {
    a.dbs.iter().find(|d| d.kind == kind).unwrap().scope
}

fn notes(a: &Answer) -> String {
    a.lookup
        .notes
        .iter()
        .map(|n| n.message.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn rpm_index_hits_equal_the_full_read_for_every_package_and_file() {
    let dir = mariner_root();
    let root = Root::open(dir.path()).unwrap();
    let full = open_host_databases(&root);
    let all = full.list().packages;
    assert_eq!(all.len(), 129);
    for p in &all {
        for name in [p.name.clone(), format!("{}.{}", p.name, p.arch)] {
            let fast = query_with_proc(&root, None, &name);
            same(&fast.lookup, &full.query(&name), &name);
            assert!(fast.lookup.installed(), "{name}");
            assert_eq!(scope(&fast, DbKind::RpmSqlite), Scope::Index, "{name}");
        }
        for file in [p.files.first(), p.files.last()].into_iter().flatten() {
            let fast = owner_with_proc(&root, None, file);
            same(&fast.lookup, &full.owner_of(file), file);
            assert!(!fast.lookup.packages.is_empty(), "{file}");
            assert_eq!(scope(&fast, DbKind::RpmSqlite), Scope::Index, "{file}");
        }
    }
}

#[test]
fn rpm_index_miss_is_confirmed_by_a_full_scan() {
    let dir = mariner_root();
    let root = Root::open(dir.path()).unwrap();
    let full = open_host_databases(&root);
    for name in ["no-such-package", "curl.aarch64", "curl:aarch64"] {
        let fast = query_with_proc(&root, None, name);
        same(&fast.lookup, &full.query(name), name);
        assert!(fast.lookup.complete);
        assert_eq!(
            scope(&fast, DbKind::RpmSqlite),
            Scope::Scan { records: 129 },
            "{name}"
        );
    }
    // The name exists under another directory: Basenames has candidates, none of them owns it.
    for path in ["/usr/bin/no-such-file", "/tmp/curl", "/usr/sbin/curl"] {
        let fast = owner_with_proc(&root, None, path);
        same(&fast.lookup, &full.owner_of(path), path);
        assert!(
            fast.lookup.packages.is_empty() && fast.lookup.complete,
            "{path}"
        );
        assert_eq!(
            scope(&fast, DbKind::RpmSqlite),
            Scope::Scan { records: 129 },
            "{path}"
        );
    }
}

/// Asserts that the lookup is a corrupt answer that names the contradiction, never
/// "not installed" / "not owned" (rpm writes a record and its index rows in one transaction,
/// so a disagreement is damage, and `rpm -q` itself would answer from the bad index).
fn assert_contradiction(a: &Answer, why: &str, what: &str) {
    assert!(a.lookup.packages.is_empty(), "{what}");
    assert!(
        !a.lookup.complete,
        "{what}: a contradiction is not an answer"
    );
    let unreadable = a.lookup.unreadable.join("\n");
    assert!(unreadable.contains("corrupt: "), "{what}: {unreadable}");
    assert!(
        unreadable.contains("rpm's index and its records disagree"),
        "{what}: {unreadable}"
    );
    assert!(unreadable.contains(why), "{what}: {unreadable}");
    assert!(
        unreadable.contains("/var/lib/rpm/rpmdb.sqlite"),
        "{what}: {unreadable}"
    );
    assert!(notes(a).contains("rpm --rebuilddb"), "{what}: {}", notes(a));
}

#[test]
fn emptied_index_tables_are_corrupt_where_the_records_disagree() {
    let dir = mariner_root();
    sqlite3(
        dir.path(),
        "DELETE FROM Name; DELETE FROM Providename; DELETE FROM Basenames;",
    );
    let root = Root::open(dir.path()).unwrap();
    let fast = query_with_proc(&root, None, "curl");
    assert_contradiction(&fast, "rpm's Name index lacks row hnum=", "curl");
    assert!(notes(&fast).is_empty() || !notes(&fast).contains("answered from every"));
    let fast = owner_with_proc(&root, None, "/usr/bin/curl");
    assert_contradiction(&fast, "rpm's Basenames index lacks row hnum=", "owner");
    // Where the records agree with the (empty) index, the full read's answer stands.
    let fast = query_with_proc(&root, None, "no-such-package");
    assert!(fast.lookup.complete && !fast.lookup.installed());
    assert_eq!(
        scope(&fast, DbKind::RpmSqlite),
        Scope::Scan { records: 129 }
    );
}

#[test]
fn name_index_emptied_alone_is_caught_through_providename() {
    let dir = mariner_root();
    sqlite3(dir.path(), "DELETE FROM Name;");
    let root = Root::open(dir.path()).unwrap();
    let fast = query_with_proc(&root, None, "curl");
    assert_contradiction(&fast, "(Providename lists it)", "curl");
    assert_eq!(scope(&fast, DbKind::RpmSqlite), Scope::Index);
}

#[test]
fn wrong_index_rows_are_corrupt() {
    let cases = [
        (
            "INSERT INTO Name (key, hnum, idx) VALUES ('curl', 999999, 0);",
            "curl",
            "rpm's Name index names row hnum=999999, which is not in Packages",
        ),
        (
            // curl's own row (found through Providename) comes first.
            "UPDATE Name SET hnum = 999999 WHERE key = 'curl';",
            "curl",
            "rpm's Name index lacks row hnum=",
        ),
        (
            // The Name index points at a header with another name.
            "UPDATE Name SET hnum = (SELECT hnum FROM Name WHERE key = 'bash') \
             WHERE key = 'curl';",
            "curl",
            "rpm's Name index l",
        ),
        (
            "UPDATE Name SET key = 'curl' WHERE key = 'bash';",
            "curl",
            "but that header is named \"bash\"",
        ),
        (
            "UPDATE Name SET key = 'curl' WHERE key = 'bash';",
            "bash",
            "rpm's Name index lacks row hnum=",
        ),
        (
            "UPDATE Providename SET hnum = 999999 WHERE key = 'curl';",
            "curl",
            "rpm's Providename index names row hnum=999999",
        ),
        (
            "UPDATE Basenames SET hnum = 999999 WHERE key = 'curl';",
            "/usr/bin/curl",
            "rpm's Basenames index names row hnum=999999",
        ),
        (
            "DELETE FROM Basenames WHERE key = 'curl';",
            "/usr/bin/curl",
            "rpm's Basenames index lacks row hnum=",
        ),
    ];
    for (sql, subject, why) in cases {
        let dir = mariner_root();
        sqlite3(dir.path(), sql);
        let root = Root::open(dir.path()).unwrap();
        let fast = if subject.starts_with('/') {
            owner_with_proc(&root, None, subject)
        } else {
            query_with_proc(&root, None, subject)
        };
        assert_contradiction(&fast, why, sql);
    }
}

#[test]
fn an_index_table_that_cannot_be_read_falls_back_with_a_note() {
    // Not a contradiction: the table is gone, not wrong; every header is read instead.
    let dir = mariner_root();
    sqlite3(dir.path(), "DROP TABLE Name;");
    let root = Root::open(dir.path()).unwrap();
    let full = open_host_databases(&root);
    let fast = query_with_proc(&root, None, "curl");
    same(&fast.lookup, &full.query("curl"), "curl");
    assert!(fast.lookup.installed() && fast.lookup.complete);
    assert_eq!(
        scope(&fast, DbKind::RpmSqlite),
        Scope::Scan { records: 129 }
    );
    assert!(
        notes(&fast).contains("rpm's Name index cannot be read (no such table: Name)"),
        "{}",
        notes(&fast)
    );
}

#[test]
fn real_rpm_database_answers_through_its_indexes() {
    let dir = tempfile::tempdir().unwrap();
    util::install(dir.path(), &util::built_rpms(3));
    let root = Root::open(dir.path()).unwrap();
    let full = open_host_databases(&root);
    let fast = query_with_proc(&root, None, "hrbeta");
    same(&fast.lookup, &full.query("hrbeta"), "hrbeta");
    assert_eq!(fast.lookup.packages[0].epoch, Some(2));
    assert_eq!(scope(&fast, DbKind::RpmSqlite), Scope::Index);
    // One file, two owners: both come through the Basenames index.
    let fast = owner_with_proc(&root, None, "/usr/share/hrshared/README");
    same(
        &fast.lookup,
        &full.owner_of("/usr/share/hrshared/README"),
        "README",
    );
    let mut names: Vec<&str> = fast
        .lookup
        .packages
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    names.sort();
    assert_eq!(names, ["hralpha", "hrbeta"]);
    assert_eq!(scope(&fast, DbKind::RpmSqlite), Scope::Index);
}

const STATUS: &str = "Package: libfoo\nStatus: install ok installed\nArchitecture: amd64\n\
Multi-Arch: same\nVersion: 1.0-1\nDepends: libbar, libfoo-data\nDescription: foo\n \
Package: libfoo\n\n\
Package: libfoo-data\nStatus: install ok installed\nArchitecture: all\nVersion: 1.0-1\n\n\
package:   libfoo  \nStatus: install ok unpacked\nArchitecture: i386\nMulti-Arch: same\n\
Version: 1.0-1\n\n\
Package: gone\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 2\n";

/// A dpkg root: `status` as given, one `status.d` package, and file lists.
fn dpkg_root(status: &str) -> tempfile::TempDir {
    let lists: [(&str, &str); 5] = [
        (
            "libfoo:amd64",
            "/.\n/usr/lib/x86_64/libfoo.so.1\n/usr/share/doc/libfoo/README\n",
        ),
        (
            "libfoo:i386",
            "/.\n/usr/lib/i386/libfoo.so.1\n/usr/share/doc/libfoo/README\n",
        ),
        (
            "libfoo-data",
            "/.\n/usr/share/doc/libfoo/README.more\n/usr/share/foo",
        ),
        ("gone", "/etc/gone.conf\n"),
        ("orphan", "/usr/bin/orphan\n"),
    ];
    let dir = hostready_testkit::fakehost::dpkg_root(status, &lists);
    hostready_testkit::fakehost::write(
        dir.path(),
        "var/lib/dpkg/status.d/distroless",
        "Package: distroless\nArchitecture: amd64\nVersion: 3\n",
    );
    dir
}

fn dpkg_scope(a: &Answer) -> Scope {
    scope(a, DbKind::Dpkg)
}

#[test]
fn dpkg_query_finds_every_stanza_of_a_name() {
    let dir = dpkg_root(STATUS);
    let root = Root::open(dir.path()).unwrap();
    let full = open_host_databases(&root);
    for name in [
        "libfoo",
        "libfoo:i386",
        "libfoo:amd64",
        "libfoo-data",
        "gone",
        "distroless",
    ] {
        let fast = query_with_proc(&root, None, name);
        same(&fast.lookup, &full.query(name), name);
        // Every stanza is checked, as dpkg checks them, found or not.
        assert_eq!(dpkg_scope(&fast), Scope::Scan { records: 5 }, "{name}");
    }
    let fast = query_with_proc(&root, None, "libfoo");
    let mut arches: Vec<&str> = fast
        .lookup
        .packages
        .iter()
        .map(|p| p.arch.as_str())
        .collect();
    arches.sort();
    assert_eq!(arches, ["amd64", "i386"]);
    // Not there (or there in another arch only).
    for name in ["libbar", "libfoo:arm64", "libfo", "ibfoo"] {
        let fast = query_with_proc(&root, None, name);
        same(&fast.lookup, &full.query(name), name);
        assert_eq!(dpkg_scope(&fast), Scope::Scan { records: 5 }, "{name}");
    }
}

#[test]
fn dpkg_damage_elsewhere_never_becomes_not_installed() {
    let damaged = STATUS.replace("Version: 2\n", "Version: 2\n\0\0\0\0");
    let dir = dpkg_root(&damaged);
    let root = Root::open(dir.path()).unwrap();
    // dpkg refuses the whole file: even the intact stanza asked about does not answer alone.
    for name in ["libfoo-data", "libbar"] {
        let fast = query_with_proc(&root, None, name);
        assert!(
            !fast.lookup.complete && fast.lookup.packages.is_empty(),
            "{name}"
        );
    }
    let fast = query_with_proc(&root, None, "libbar");
    assert!(
        fast.lookup.unreadable[0].contains("corrupt: NUL byte"),
        "{:?}",
        fast.lookup
    );
    let fast = owner_with_proc(&root, None, "/usr/bin/nobody");
    assert!(!fast.lookup.complete);
    // A damaged stanza of the very package asked about is corrupt, not absent.
    let cut = STATUS.replace(
        "Status: install ok installed\nArchitecture: all",
        "Status: install",
    );
    let dir = dpkg_root(&cut);
    let root = Root::open(dir.path()).unwrap();
    let fast = query_with_proc(&root, None, "libfoo-data");
    assert!(!fast.lookup.complete && fast.lookup.packages.is_empty());
    assert!(
        fast.lookup.unreadable[0].contains("malformed Status \"install\""),
        "{:?}",
        fast.lookup
    );
}

#[test]
fn dpkg_owner_searches_the_lists_and_parses_only_owners() {
    let dir = dpkg_root(STATUS);
    let root = Root::open(dir.path()).unwrap();
    let full = open_host_databases(&root);
    let cases: [(&str, &[&str]); 7] = [
        (
            "/usr/share/doc/libfoo/README",
            &["libfoo amd64", "libfoo i386"],
        ),
        ("/usr/lib/i386/libfoo.so.1", &["libfoo i386"]),
        ("/usr/share/foo", &["libfoo-data all"]),
        ("/etc/gone.conf", &["gone amd64"]),
        // A prefix of a listed path, a list without a status entry: no owner.
        ("/usr/share/doc/libfoo/READ", &[]),
        ("/usr/bin/orphan", &[]),
        ("/usr/lib/x86_64/libfoo.so", &[]),
    ];
    for (path, owners) in cases {
        let fast = owner_with_proc(&root, None, path);
        same(&fast.lookup, &full.owner_of(path), path);
        let mut got: Vec<String> = fast
            .lookup
            .packages
            .iter()
            .map(|p| format!("{} {}", p.name, p.arch))
            .collect();
        got.sort();
        assert_eq!(got, owners, "{path}");
        assert!(fast.lookup.complete, "{path}");
    }
}

/// Paths of this machine's own dpkg file lists, a few from each of a spread of packages.
fn host_sample_paths() -> Vec<PathBuf> {
    let info = Path::new("/var/lib/dpkg/info");
    let mut lists: Vec<PathBuf> = std::fs::read_dir(info)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "list"))
        .collect();
    lists.sort();
    let mut out = Vec::new();
    for list in lists.iter().step_by(25) {
        let text = std::fs::read_to_string(list).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        for l in [lines.get(1), lines.last()].into_iter().flatten() {
            out.push(PathBuf::from(l));
        }
    }
    out.push(PathBuf::from("/usr/bin/dpkg"));
    out.push(PathBuf::from("/usr/bin/no-such-file-here"));
    out
}

#[test]
fn host_dpkg_lookups_equal_the_full_read() {
    let root = Root::open("/").unwrap();
    let full = open_host_databases(&root);
    let all = full.list().packages;
    assert!(all.len() > 50);
    for p in &all {
        for name in [p.name.clone(), format!("{}:{}", p.name, p.arch)] {
            let fast = query_with_proc(&root, None, &name);
            same(&fast.lookup, &full.query(&name), &name);
        }
    }
    for path in host_sample_paths() {
        let fast = owner_with_proc(&root, None, &path);
        same(&fast.lookup, &full.owner_of(&path), &path.to_string_lossy());
    }
}
