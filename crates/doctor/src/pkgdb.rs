//! Package-database health at the file level: is each rpm/dpkg database present and whole
//! (magic, page size, length agree), is a Berkeley DB environment (`__db.*`) left behind by
//! processes that are gone, is there a hot SQLite journal or an interrupted dpkg run.
//!
//! Two layers: [`file_health`] judges one database file from its first bytes and its size
//! (cheap, and says *why* in terms of the format); then the full readers of `hostready-pkgdb`
//! (every record parsed, SQLite `quick_check`, read-only and lock-free) add what only a full
//! read finds — damage past the header, and who holds the database's locks.
//! References: SQLite file format <https://www.sqlite.org/fileformat2.html>; Berkeley DB
//! `dbmeta.h` (`DBMETA`: magic at 12, pagesize at 20, last_pgno at 32); rpm `lib/backend/ndb`.

use std::io::Read;
use std::path::{Path, PathBuf};

use hostready_host::{FileKind, Root};

use crate::finding::{self, Build, Finding, Status, add_numbered, set};
use crate::proc::{Snapshot, basename};

/// Where distros keep the rpm database.
/// How much of a database file [`file_health`] looks at: NDB's slot pages live up front.
pub const HEAD_BYTES: usize = 64 << 10;

pub const RPM_DIRS: [&str; 3] = ["/var/lib/rpm", "/usr/lib/sysimage/rpm", "/usr/share/rpm"];

/// The formats an rpm database file comes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Sqlite,
    BerkeleyDb,
    Ndb,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Sqlite => "sqlite",
            Format::BerkeleyDb => "bdb",
            Format::Ndb => "ndb",
        }
    }
}

/// Judges a database file from its first bytes ([`HEAD_BYTES`] at most) and its length: `Ok` with a description,
/// or `Err` with why it is damaged.
pub fn file_health(format: Format, head: &[u8], size: u64) -> Result<String, String> {
    if size == 0 {
        return Err("empty file (0 bytes)".into());
    }
    if head.iter().all(|b| *b == 0) {
        return Err("the header is all zero bytes".into());
    }
    match format {
        Format::Sqlite => {
            if head.len() < 100 || &head[..16] != b"SQLite format 3\0" {
                return Err("no SQLite header (\"SQLite format 3\")".into());
            }
            let raw = u16::from_be_bytes([head[16], head[17]]) as u64;
            let page = if raw == 1 { 65536 } else { raw };
            if page < 512 || !page.is_power_of_two() {
                return Err(format!("invalid page size {raw}"));
            }
            if size % page != 0 {
                return Err(format!(
                    "length {size} is not a whole number of {page}-byte pages (truncated)"
                ));
            }
            let change = u32::from_be_bytes(head[24..28].try_into().unwrap_or_default());
            let valid_for = u32::from_be_bytes(head[92..96].try_into().unwrap_or_default());
            let pages = u32::from_be_bytes(head[28..32].try_into().unwrap_or_default()) as u64;
            if change == valid_for && pages > 0 && pages * page > size {
                return Err(format!(
                    "header says {pages} pages of {page} bytes, file has {} (truncated)",
                    size / page
                ));
            }
            Ok(format!("{} pages of {page} bytes", size / page))
        }
        Format::BerkeleyDb => {
            if head.len() < 36 {
                return Err("shorter than a Berkeley DB metadata page".into());
            }
            let word = |o: usize| head[o..o + 4].try_into().unwrap_or_default();
            let (le, be) = (u32::from_le_bytes(word(12)), u32::from_be_bytes(word(12)));
            const HASH: u32 = 0x0006_1561;
            const BTREE: u32 = 0x0005_3162;
            let from = if le == HASH || le == BTREE {
                u32::from_le_bytes
            } else if be == HASH || be == BTREE {
                u32::from_be_bytes
            } else {
                return Err(format!("no Berkeley DB magic (found {le:#x})"));
            };
            let page = from(word(20)) as u64;
            let last = from(word(32)) as u64;
            if page < 512 || !page.is_power_of_two() {
                return Err(format!("invalid page size {page}"));
            }
            if (last + 1) * page > size {
                return Err(format!(
                    "metadata says {} pages of {page} bytes, file has {} (truncated)",
                    last + 1,
                    size / page
                ));
            }
            Ok(format!("{} pages of {page} bytes", last + 1))
        }
        Format::Ndb => {
            if head.len() < 16 || &head[..4] != b"RpmP" {
                return Err("no NDB header (\"RpmP\")".into());
            }
            // rpm lib/backend/ndb/rpmpkg.c: a 32-byte header, then `slotnpages` pages of 4096
            // bytes holding 16-byte slots ("Slot", pkgidx, blkoff, blkcnt) in 16-byte blocks.
            let word =
                |o: usize| u32::from_le_bytes(head[o..o + 4].try_into().unwrap_or_default()) as u64;
            let slot_pages = word(12);
            if slot_pages == 0 || slot_pages * 4096 > size {
                return Err(format!(
                    "header says {slot_pages} slot pages, file is {size} bytes (truncated)"
                ));
            }
            let slots_end = (slot_pages as usize * 4096).min(head.len());
            let mut end = 0;
            for o in (32..slots_end.saturating_sub(15)).step_by(16) {
                if &head[o..o + 4] == b"Slot" && word(o + 4) != 0 {
                    end = end.max((word(o + 8) + word(o + 12)) * 16);
                }
            }
            if end > size {
                return Err(format!(
                    "slots point to byte {end}, file is {size} bytes (truncated)"
                ));
            }
            Ok(format!("{slot_pages} slot pages"))
        }
    }
}

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
pub fn findings(root: &Root, snap: Option<&Snapshot>) -> Vec<Finding> {
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
    merge_full_read(&hostready_pkgdb::open_host_databases(root), &mut out);
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
    for (name, format) in [
        ("rpmdb.sqlite", Format::Sqlite),
        ("Packages.db", Format::Ndb),
        ("Packages", Format::BerkeleyDb),
    ] {
        if !names.iter().any(|n| n == name) {
            continue;
        }
        let path = dir.join(name);
        let id = format!("doctor.pkgdb.rpm-{}", format.name());
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
            Err(why) => out.push(corrupt(id, &path, Some(st.size), &why)),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(rel: &str) -> Vec<u8> {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/fixtures/rpmdb")
                .join(rel),
        )
        .unwrap()
    }

    #[test]
    fn real_databases_are_whole() {
        for (rel, format) in [
            ("cbl-mariner-2.0-sqlite/rpmdb.sqlite", Format::Sqlite),
            ("libuuid-bdb/Packages", Format::BerkeleyDb),
            ("sle15-bci-ndb/Packages.db", Format::Ndb),
        ] {
            let b = fixture(rel);
            let r = file_health(format, &b[..HEAD_BYTES.min(b.len())], b.len() as u64);
            assert!(r.is_ok(), "{rel}: {r:?}");
        }
    }

    #[test]
    fn truncated_and_zeroed_databases_are_damaged() {
        for (rel, format) in [
            ("cbl-mariner-2.0-sqlite/rpmdb.sqlite", Format::Sqlite),
            ("libuuid-bdb/Packages", Format::BerkeleyDb),
            ("sle15-bci-ndb/Packages.db", Format::Ndb),
        ] {
            let b = fixture(rel);
            assert!(
                file_health(format, &b[..HEAD_BYTES.min(b.len())], 4096 * 3 - 5).is_err(),
                "{rel}"
            );
            assert!(
                file_health(format, &[0; 100], b.len() as u64).is_err(),
                "{rel}"
            );
            assert!(file_health(format, &b[..100], 0).is_err(), "{rel}");
        }
        // A whole number of pages, but fewer than the header counts.
        let b = fixture("cbl-mariner-2.0-sqlite/rpmdb.sqlite");
        let e = file_health(Format::Sqlite, &b[..100], 4096 * 10).unwrap_err();
        assert!(e.contains("truncated"), "{e}");
    }
}
