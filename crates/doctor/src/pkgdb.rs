//! Package-database health at the file level: is each rpm/dpkg database present and whole
//! (magic, page size, length agree), is a Berkeley DB environment (`__db.*`) left behind by
//! processes that are gone, is there a hot SQLite journal or an interrupted dpkg run.
//!
//! Two layers, both `hostready-pkgdb`'s: [`file_health`] (its `health::header_health`) judges
//! one database file from its first bytes and its size (cheap, and says *why* in terms of the
//! format); then its full readers (every record parsed, SQLite `quick_check`, read-only and
//! lock-free) add what only a full read finds — damage past the header, and who holds the
//! database's locks. This file turns both into findings and adds what is about processes:
//! stale Berkeley DB environments, hot journals while no rpm runs.

use std::io::Read;
use std::path::{Path, PathBuf};

use hostready_host::{FileKind, Root};

use crate::finding::{self, Build, Finding, Status, add_numbered, set};
use crate::proc::{Snapshot, basename};

/// The formats, the header checks, the rpm directories and file names are `hostready-pkgdb`'s
/// ([`hostready_pkgdb::health`]), which owns database-format health.
pub use hostready_pkgdb::RPM_DIRS;
pub use hostready_pkgdb::health::{Format, HEAD_BYTES, RPM_FILES, header_health as file_health};

/// Returns true if and only if `p` is a process that opens the rpm database, known by its name
/// (`comm`) or executable: a python script's executable is the interpreter, and a
/// process's name may be cut to 15 bytes or renamed.
pub fn is_rpm_user(p: &crate::proc::Proc) -> bool {
    is_rpm_name(&p.comm)
        || p.exe.as_deref().map(basename).is_some_and(is_rpm_name)
        || (p.comm.starts_with("python")
            && p.argv
                .iter()
                .skip(1)
                .take(2)
                .any(|a| matches!(basename(a), "yum" | "dnf" | "rpm")))
}

fn is_rpm_name(name: &str) -> bool {
    matches!(
        name,
        "rpm"
            | "rpmdb"
            | "rpmkeys"
            | "rpmquery"
            | "rpmverify"
            | "rpmbuild"
            | "yum"
            | "dnf"
            | "dnf5"
            | "zypper"
            | "microdnf"
            | "packagekitd"
            | "tdnf"
    )
}

/// Checks every rpm and dpkg database under `root`. `snap` (when procfs is available) says
/// whether any rpm user is alive, which decides whether a Berkeley DB environment is stale.
/// With `full_read`, every record is read too (see [`crate::Options::full_read`]).
pub fn findings(root: &Root, snap: Option<&Snapshot>, full_read: bool) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut seen: Vec<PathBuf> = Vec::new();
    let rpm_users: Vec<u32> = snap
        .map(|s| {
            let mut v: Vec<u32> = s
                .procs
                .values()
                .filter(|p| p.state != 'Z' && is_rpm_user(p))
                .map(|p| p.pid)
                .collect();
            v.sort_unstable();
            v
        })
        .unwrap_or_default();
    for dir in RPM_DIRS {
        let Ok(resolved) = root.resolve(dir) else {
            continue;
        };
        if seen.contains(&resolved.path)
            || !root
                .stat(&resolved.path)
                .is_ok_and(|s| s.kind == FileKind::Dir)
        {
            continue;
        }
        seen.push(resolved.path.clone());
        rpm_dir(root, &resolved.path, snap.is_some(), &rpm_users, &mut out);
    }
    dpkg(root, &mut out);
    if full_read {
        merge_full_read(&hostready_pkgdb::open_host_databases(root), &mut out);
    }
    if out.is_empty() {
        out.push(finding::new(
            "doctor.pkgdb",
            Status::Pass,
            "no rpm or dpkg database under the root",
        ));
    }
    out
}

fn head_of(root: &Root, path: &Path) -> Option<Vec<u8>> {
    let mut f = root.open_file(path).ok()?;
    let mut head = vec![0u8; HEAD_BYTES];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return None,
        }
    }
    head.truncate(n);
    Some(head)
}

fn rpm_dir(root: &Root, dir: &Path, have_proc: bool, users: &[u32], out: &mut Vec<Finding>) {
    let names: Vec<String> = root
        .read_dir(dir)
        .map(|v| {
            v.into_iter()
                .map(|n| n.to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    for (name, format) in RPM_FILES {
        if !names.iter().any(|n| n == name) {
            continue;
        }
        let path = dir.join(name);
        let id = format!("doctor.pkgdb.{}", format.kind().as_str());
        let Ok(st) = root.stat(&path) else { continue };
        let Some(head) = head_of(root, &path) else {
            out.push(
                finding::new(
                    id,
                    Status::Unknown,
                    format!("{}: cannot read", path.display()),
                )
                .with("file", path.display().to_string()),
            );
            continue;
        };
        match file_health(format, &head, st.size) {
            Ok(desc) => out.push(
                finding::new(
                    id,
                    Status::Pass,
                    format!("{}: header intact ({desc})", path.display()),
                )
                .with("file", path.display().to_string())
                .with("size", format!("{} bytes", st.size)),
            ),
            Err(why) => {
                let mut f = corrupt(id, &path, Some(st.size), &why);
                // A file of another format under this name (a copy gone wrong) says so.
                if let Some(other) = Format::detect(&head).filter(|f| *f != format) {
                    f = f.with("content", format!("a {} file", other.kind().as_str()));
                }
                out.push(f);
            }
        }
    }
    let env: Vec<&String> = names.iter().filter(|n| n.starts_with("__db.")).collect();
    if !env.is_empty() {
        let mut sorted = env.clone();
        sorted.sort();
        let list = sorted
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let dir_shown = dir.display().to_string();
        let f = if !have_proc {
            finding::new(
                "doctor.pkgdb.bdb-environment",
                Status::Unknown,
                format!(
                    "{}: Berkeley DB environment files present; without procfs doctor cannot tell whether an rpm process still uses them",
                    dir.display()
                ),
            )
        } else if users.is_empty() {
            finding::new(
                "doctor.pkgdb.bdb-environment",
                Status::Warn,
                format!("{dir_shown}: Berkeley DB environment ({list}) left behind while no rpm/yum/dnf process runs; if it registers a process that died, every rpm open fails with `BDB0113 … Thread died` / `DB_RUNRECOVERY` or hangs"),
            )
            .fix("If `rpm -qa >/dev/null` reports BDB0113/DB_RUNRECOVERY (or hangs): back up the directory, remove the stale environment and rebuild the database.")
            .command("rpm -qa >/dev/null")
            .command(format!("cp -a {dir_shown} {dir_shown}.bak"))
            .command(format!("rm -f {dir_shown}/__db.*"))
            .command("rpm --rebuilddb")
            .note("Remove `__db.*` only while no rpm, yum, dnf or PackageKit process runs: a live one keeps using the shared regions and would corrupt the database.")
        } else {
            finding::new(
                "doctor.pkgdb.bdb-environment",
                Status::Pass,
                format!(
                    "{}: Berkeley DB environment in use by {} rpm process(es)",
                    dir.display(),
                    users.len()
                ),
            )
            .with("rpm users", crate::locks::pid_list(users))
        };
        out.push(
            f.with("directory", dir_shown)
                .with("environment files", list),
        );
    }
    let journal = dir.join("rpmdb.sqlite-journal");
    if let Ok(st) = root.stat(&journal)
        && st.size > 0
        && users.is_empty()
        && have_proc
    {
        out.push(
            finding::new(
                "doctor.pkgdb.rpm-sqlite-journal",
                Status::Warn,
                format!("{}: a hot rollback journal ({} bytes) while no rpm runs: a transaction was cut off", journal.display(), st.size),
            )
            .with("file", journal.display().to_string())
            .with("size", format!("{} bytes", st.size))
            .fix("Let rpm roll the cut-off transaction back: the next `rpm` that writes does, or run `rpm -qa >/dev/null` as root.")
            .command("rpm -qa >/dev/null")
            .note(format!("Or back up the directory (`cp -a {0} {0}.bak`) and `rpm --rebuilddb`.", dir.display()))
            .note("Do not delete the journal: that leaves a half-written database."),
        );
    }
}

/// Adds the verdicts of `hostready-pkgdb`'s full readers to the file-level findings: a database
/// whose header looked whole but whose records are damaged becomes a failure.
fn merge_full_read(dbs: &hostready_pkgdb::Databases<'_>, out: &mut [Finding]) {
    use hostready_pkgdb::DbKind;
    for db in &dbs.dbs {
        let id = match db.kind {
            DbKind::Dpkg => "doctor.pkgdb.dpkg",
            DbKind::RpmSqlite => "doctor.pkgdb.rpm-sqlite",
            DbKind::RpmBdb => "doctor.pkgdb.rpm-bdb",
            DbKind::RpmNdb => "doctor.pkgdb.rpm-ndb",
        };
        let shown = db.path.display().to_string();
        let Some(f) = out.iter_mut().find(|f| {
            f.id == id && (db.kind == DbKind::Dpkg || f.evidence.get("file") == Some(&shown))
        }) else {
            continue;
        };
        match &db.contents {
            Ok(pkgs) => {
                f.evidence
                    .add("full read", format!("{} package records", pkgs.len()));
            }
            Err(e) if e.is_corrupt() => {
                let why = hostready_pkgdb::error_chain(e);
                if f.status != Status::Fail {
                    let size = f.evidence.get("size").map(str::to_string);
                    *f = corrupt(id.to_string(), &db.path, None, &why);
                    if let Some(size) = size {
                        set(&mut f.evidence, "size", size);
                    }
                }
                f.evidence.add("full read", why);
            }
            Err(e) => {
                f.evidence.add("full read", hostready_pkgdb::error_chain(e));
            }
        }
        for n in db
            .notes
            .iter()
            .filter(|n| n.message != hostready_pkgdb::CORRUPT_ADVICE)
        {
            add_numbered(&mut f.evidence, "reader note", n.message.as_str());
        }
    }
}

/// Builds the finding for a damaged database; `size` in bytes when known.
fn corrupt(id: String, path: &Path, size: Option<u64>, why: &str) -> Finding {
    let dir = path
        .parent()
        .unwrap_or(Path::new("/"))
        .display()
        .to_string();
    let mut f = finding::new(
        id.clone(),
        Status::Fail,
        format!("{}: damaged — {why}", path.display()),
    )
    .with("file", path.display().to_string());
    if let Some(size) = size {
        f = f.with("size", format!("{size} bytes"));
    }
    let f = f.command(format!("cp -a {dir} {dir}.bak"));
    if id.ends_with("dpkg") {
        return f
            .fix("Back up the whole directory first, then restore `status` from the newest good `/var/backups/dpkg.status.*` and check with `dpkg --audit`.")
            .command("dpkg --audit")
            .note("Between the two commands, restore `status` from the newest good `/var/backups/dpkg.status.*`.");
    }
    f.fix("Back up the whole directory first, then rebuild the database with `rpm --rebuilddb`.")
        .command("rpm --rebuilddb")
        .note("`rpm --rebuilddb` rebuilds from the records it can still read and may drop packages, so compare `rpm -qa` before and after; reinstall what is missing.")
        .note("Do this only while no rpm, yum, dnf or zypper process runs.")
}

fn dpkg(root: &Root, out: &mut Vec<Finding>) {
    let Ok(st) = root.stat("/var/lib/dpkg") else {
        return;
    };
    if st.kind != FileKind::Dir {
        return;
    }
    match root.stat("/var/lib/dpkg/status") {
        Ok(s) if s.size > 0 => out.push(
            finding::new("doctor.pkgdb.dpkg", Status::Pass, "/var/lib/dpkg/status present")
                .with("file", "/var/lib/dpkg/status")
                .with("size", format!("{} bytes", s.size)),
        ),
        _ => out.push(
            finding::new("doctor.pkgdb.dpkg", Status::Fail, "/var/lib/dpkg/status is missing or empty")
                .with("file", "/var/lib/dpkg/status")
                .fix("Restore it from the newest `/var/backups/dpkg.status.*` (back up the directory first).")
                .command("cp -a /var/lib/dpkg /var/lib/dpkg.bak"),
        ),
    }
    let pending = root
        .read_dir("/var/lib/dpkg/updates")
        .map(|v| v.len())
        .unwrap_or(0);
    if pending > 0 {
        out.push(
            finding::new(
                "doctor.pkgdb.dpkg-interrupted",
                Status::Warn,
                format!("/var/lib/dpkg/updates holds {pending} pending record(s): a dpkg run was interrupted"),
            )
            .with("directory", "/var/lib/dpkg/updates")
            .with("pending records", pending.to_string())
            .fix("Finish the interrupted run when no apt/dpkg process runs.")
            .command("dpkg --configure -a"),
        );
    }
}
