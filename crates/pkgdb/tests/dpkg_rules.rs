//! The dpkg status parser accepts what this machine's dpkg accepts and refuses what it refuses:
//! each case is written to a temporary admin directory and read both by `dpkg-query -W` and by
//! hostready, and their verdicts (and, where both accept, the package sets) must agree. The two
//! cases where hostready is stricter on purpose are listed as such.

// Tests build fake hosts and read fixtures on this machine directly, not a host's root.
#![allow(clippy::disallowed_methods)]

use std::path::Path;
use std::process::Command;

use hostready_host::Root;
use hostready_pkgdb::{DbKind, open_host_databases, parse_dpkg_status, query_with_proc};

const GOOD: &str = "Package: a\nStatus: install ok installed\nMaintainer: m\nArchitecture: amd64\n\
Version: 1.0-1\nDescription: d\n more\n";

fn good_with(from: &str, to: &str) -> String {
    assert!(GOOD.contains(from), "{from}");
    GOOD.replacen(from, to, 1)
}

/// Every case, with whether dpkg accepts it.
fn cases() -> Vec<(&'static str, String, bool)> {
    let b = good_with("Package: a", "Package: b");
    vec![
        ("good", GOOD.into(), true),
        ("no final newline", GOOD.trim_end().into(), false),
        ("truncated in a value", GOOD[..30].into(), false),
        (
            "truncated in a field name",
            "Package: a\nStat".into(),
            false,
        ),
        (
            "truncated after a colon",
            "Package: a\nStatus:".into(),
            false,
        ),
        (
            "whitespace line inside a value",
            good_with(" more\n", " \n more\n"),
            true,
        ),
        (
            "whitespace line between stanzas",
            format!("{GOOD} \n{b}"),
            false,
        ),
        ("two stanzas", format!("{GOOD}\n{b}"), true),
        ("several blank lines", format!("\n\n{GOOD}\n\n\n{b}"), true),
        (
            "garbage state",
            good_with("ok installed", "ok instaled"),
            false,
        ),
        (
            "garbage error flag",
            good_with("ok installed", "okk installed"),
            false,
        ),
        ("garbage want", good_with("install ok", "instal ok"), false),
        (
            "four status words",
            good_with("ok installed", "ok installed x"),
            false,
        ),
        (
            "status on two lines",
            good_with("ok installed", "ok\n installed"),
            true,
        ),
        ("duplicate field", format!("{GOOD}package: a\n"), false),
        ("line without a colon", format!("{GOOD}Foo bar\n"), false),
        (
            "space before the colon",
            good_with("Package: a", "Package : a"),
            true,
        ),
        ("empty field name", format!("{GOOD}: x\n"), false),
        (
            "field name with a hyphen first",
            format!("{GOOD}-X: y\n"),
            false,
        ),
        ("one-letter user field", format!("{GOOD}X: y\n"), false),
        ("leading whitespace", format!(" {GOOD}"), false),
        (
            "installed without Version",
            GOOD.replace("Version: 1.0-1\n", ""),
            false,
        ),
        (
            "config-files without Version",
            GOOD.replace("Version: 1.0-1\n", "")
                .replace("install ok installed", "deinstall ok config-files"),
            false,
        ),
        (
            "not-installed without Version",
            "Package: a\nStatus: purge ok not-installed\n".into(),
            true,
        ),
        (
            "half-installed without Version",
            "Package: a\nStatus: install reinstreq half-installed\n".into(),
            true,
        ),
        (
            "illegal name",
            good_with("Package: a", "Package: A_b!"),
            false,
        ),
        (
            "name starting with -",
            good_with("Package: a", "Package: -ab"),
            false,
        ),
        (
            "name on two lines",
            good_with("Package: a", "Package: a\n b"),
            false,
        ),
        (
            "upper-case name",
            good_with("Package: a", "Package: ABC"),
            true,
        ),
        ("nothing after epoch", good_with("1.0-1", "1:"), false),
        ("epoch not a number", good_with("1.0-1", "a:1"), false),
        ("empty revision", good_with("1.0-1", "1.0-"), false),
        ("empty upstream", good_with("1.0-1", "-1"), false),
        ("space in version", good_with("1.0-1", "1.0 1"), false),
        (
            "version starting with a letter",
            good_with("1.0-1", "a1.0"),
            true,
        ),
        ("odd architecture", good_with("amd64", "amd_64"), true),
        ("empty architecture", good_with("amd64", ""), true),
        (
            "Multi-Arch same on all",
            format!("{}Multi-Arch: same\n", good_with("amd64", "all")),
            false,
        ),
        (
            "Multi-Arch garbage",
            format!("{GOOD}Multi-Arch: sometimes\n"),
            false,
        ),
        ("Multi-Arch same", format!("{GOOD}Multi-Arch: same\n"), true),
        ("CRLF lines", GOOD.replace('\n', "\r\n"), true),
        (
            "CRLF between stanzas",
            format!("{}\r\n{b}", GOOD.replace('\n', "\r\n")),
            false,
        ),
        ("tab continuation", good_with(" more", "\tmore"), true),
        ("empty", String::new(), true),
        ("only newlines", "\n\n\n".into(), true),
    ]
}

/// What `dpkg-query -W` says of a status file: `Some(lines)` when it reads it.
fn dpkg_query(status: &str) -> Option<Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    let adm = dir.path().join("adm");
    std::fs::create_dir_all(adm.join("info")).unwrap();
    std::fs::create_dir_all(adm.join("updates")).unwrap();
    std::fs::write(adm.join("available"), "").unwrap();
    std::fs::write(adm.join("status"), status).unwrap();
    let out = Command::new("dpkg-query")
        .arg("--admindir")
        .arg(&adm)
        .args([
            "-W",
            "-f",
            "${Package} ${Version} ${db:Status-Want} ${db:Status-Status}\\n",
        ])
        .output()
        .expect("dpkg-query (a Debian test machine)");
    out.status.success().then(|| {
        let mut l: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        l.sort();
        l
    })
}

#[test]
fn status_parser_agrees_with_dpkg_on_every_rule() {
    let p = Path::new("/var/lib/dpkg/status");
    for (case, status, dpkg_accepts) in cases() {
        let theirs = dpkg_query(&status);
        assert_eq!(theirs.is_some(), dpkg_accepts, "dpkg itself on {case:?}");
        let ours = parse_dpkg_status(status.as_bytes(), p, true);
        match (&ours, theirs) {
            (Ok(pkgs), Some(theirs)) => {
                let mut ours: Vec<String> = pkgs
                    .iter()
                    // dpkg-query -W leaves out what is not installed and wanted by nobody.
                    .filter(|p| p.state != "purge ok not-installed")
                    .map(|p| {
                        let w: Vec<&str> = p.state.split(' ').collect();
                        format!("{} {} {} {}", p.name, p.evr, w[0], w[2])
                    })
                    .collect();
                ours.sort();
                let theirs: Vec<String> = theirs
                    .into_iter()
                    .filter(|l| !l.ends_with("purge not-installed"))
                    .collect();
                assert_eq!(ours, theirs, "{case}");
            }
            (Err(_), None) => {}
            (ours, theirs) => panic!("{case}: hostready {ours:?}, dpkg {theirs:?}"),
        }
    }
}

#[test]
fn stricter_than_dpkg_where_dpkg_never_writes_it() {
    let p = Path::new("/var/lib/dpkg/status");
    for (case, status) in [
        // dpkg reads a stanza without Status as not-installed; it never writes one.
        (
            "no Status",
            "Package: a\nMaintainer: m\nArchitecture: amd64\nVersion: 1\nDescription: d\n"
                .to_string(),
        ),
        // A zeroed block, what a crash leaves; dpkg reads NUL as an ordinary byte.
        ("NUL in a value", good_with("more", "mo\0re")),
    ] {
        assert!(dpkg_query(&status).is_some(), "dpkg accepts {case}");
        let e = parse_dpkg_status(status.as_bytes(), p, true).unwrap_err();
        assert!(e.offset <= status.len() as u64, "{case}: {e}");
    }
}

#[test]
fn garbage_status_words_name_the_stanza_and_its_offset() {
    let status = format!("{GOOD}\n{}", good_with("ok installed", "ok instaled"));
    let e = parse_dpkg_status(status.as_bytes(), Path::new("/s"), true).unwrap_err();
    assert_eq!(e.offset, GOOD.len() as u64 + 1, "{e}");
    assert!(
        e.what.contains("package a") && e.what.contains("\"instaled\" is not a dpkg third (state)"),
        "{e}"
    );
    let e = parse_dpkg_status(&GOOD.as_bytes()[..30], Path::new("/s"), true).unwrap_err();
    assert!(
        e.what
            .contains("end of file during value of field \"Status\""),
        "{e}"
    );
}

/// A root whose `status` is `status` and whose `info/` holds `lists`.
fn root_with(status: &[u8], lists: &[&str]) -> tempfile::TempDir {
    let lists: Vec<(&str, &str)> = lists.iter().map(|l| (*l, "/.\n")).collect();
    hostready_testkit::fakehost::dpkg_root(status, &lists)
}

#[test]
fn an_empty_status_beside_file_lists_is_corrupt_not_empty() {
    for status in [&b""[..], b"\n\n"] {
        let dir = root_with(status, &["libc6:amd64", "dpkg"]);
        let root = Root::open(dir.path()).unwrap();
        let q = query_with_proc(&root, None, "dpkg").lookup;
        assert!(!q.complete && q.packages.is_empty(), "{q:?}");
        assert!(q.unreadable[0].contains("status lists no package"), "{q:?}");
        let dbs = open_host_databases(&root);
        let db = dbs.dbs.iter().find(|d| d.kind == DbKind::Dpkg).unwrap();
        assert!(db.contents.as_ref().is_err_and(|e| e.is_corrupt()));
        // A root where no package was ever installed: empty is the truth.
        let dir = root_with(status, &[]);
        let root = Root::open(dir.path()).unwrap();
        let q = query_with_proc(&root, None, "dpkg").lookup;
        assert!(q.complete && q.packages.is_empty(), "{q:?}");
    }
}

#[test]
fn damage_anywhere_is_corrupt_even_for_a_package_before_it() {
    // dpkg refuses the whole file, so the intact stanza before the cut does not answer alone.
    let status = format!("{GOOD}\n{}", &good_with("Package: a", "Package: b")[..45]);
    let dir = root_with(status.as_bytes(), &["a"]);
    let root = Root::open(dir.path()).unwrap();
    let q = query_with_proc(&root, None, "a").lookup;
    assert!(!q.complete && q.packages.is_empty(), "{q:?}");
    assert!(q.unreadable[0].contains("corrupt: end of file"), "{q:?}");
}
