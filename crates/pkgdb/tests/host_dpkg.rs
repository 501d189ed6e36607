//! This machine's own dpkg database: the same package set as `dpkg-query -W`.

use std::process::Command;

use hostready_host::Root;
use hostready_pkgdb::{DbKind, open_host_databases};

#[test]
fn same_package_set_as_dpkg_query() {
    let out = Command::new("dpkg-query")
        .args([
            "-W",
            "-f",
            "${Package} ${Version} ${Architecture} ${db:Status-Abbrev}\\n",
        ])
        .output()
        .expect("dpkg-query (a Debian test machine)");
    assert!(out.status.success());
    let mut theirs: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim_end().to_string())
        .collect();
    theirs.sort();
    let root = Root::open("/").unwrap();
    let dbs = open_host_databases(&root);
    let dpkg = dbs.dbs.iter().find(|d| d.kind == DbKind::Dpkg).unwrap();
    let abbrev = |state: &str| {
        // dpkg's db:Status-Abbrev: first letters of want and status ("ii", "rc", "iU").
        let w: Vec<&str> = state.split_whitespace().collect();
        let s = match w[2] {
            "config-files" => "c",
            "half-installed" => "H",
            "unpacked" => "U",
            "half-configured" => "F",
            "triggers-awaited" => "W",
            "triggers-pending" => "t",
            other => &other[..1],
        };
        format!("{}{}", &w[0][..1], s)
    };
    let mut ours: Vec<String> = dpkg
        .contents
        .as_ref()
        .unwrap()
        .iter()
        .filter(|p| !p.state.ends_with("not-installed"))
        .map(|p| format!("{} {} {} {}", p.name, p.evr, p.arch, abbrev(&p.state)))
        .collect();
    ours.sort();
    assert_eq!(ours, theirs);
}

#[test]
fn owner_of_a_usrmerged_path_matches_dpkg_s() {
    let root = Root::open("/").unwrap();
    let dbs = open_host_databases(&root);
    for path in ["/bin/ls", "/usr/bin/dpkg"] {
        let out = Command::new("dpkg").args(["-S", path]).output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let theirs: Vec<&str> = text
            .lines()
            .flat_map(|l| l.split(':').next().unwrap().split(", "))
            .collect();
        let lookup = dbs.owner_of(path);
        let ours: Vec<&str> = lookup.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(ours, theirs, "{path}");
    }
}
