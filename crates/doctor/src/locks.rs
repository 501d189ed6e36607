//! Who holds and who waits on file locks: the kernel's lock table (`/proc/locks`) matched to
//! files through the open descriptors of every process, with SQLite's byte-range protocol
//! decoded so an rpmdb lock reads as "exclusive lock held by pid N".
//!
//! Waiters come in two kinds. Blocking lockers (`F_SETLKW`, `flock` without `LOCK_NB`) appear
//! in the table as `->` lines under the lock they wait for. Polling lockers — SQLite, and so
//! `rpm` on an rpmdb.sqlite, retries `F_SETLK` every 100 ms on `SQLITE_BUSY`; apt retries the
//! dpkg lock — never appear in the table; they are the processes that have the locked file
//! open without holding a lock on it. See proc(5) `/proc/locks`, fcntl(2), and SQLite's
//! `os_unix.c` / <https://www.sqlite.org/lockingv3.html>.
//!
//! The kernel writes a waiter `n` levels down the tree of blocked requests (Linux 5.12+) as one
//! `->` after `n - 1` extra spaces, not as `-> ->`; the sample below has both forms, and the
//! parser takes any.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::Serialize;

use hostready_host::Root;

use crate::finding::{self, Build, Finding, Status, age, id_segment, nth_key};
use crate::magic::ProcDir;
use crate::proc::{PidSet, Snapshot, basename};

/// SQLite's lock bytes (`os_unix.c`, `sqliteInt.h`): one byte each for PENDING and RESERVED,
/// then the 510-byte SHARED range, all at 1 GiB so they never cover real data.
pub const SQLITE_PENDING: u64 = 0x4000_0000;
pub const SQLITE_RESERVED: u64 = SQLITE_PENDING + 1;
pub const SQLITE_SHARED_FIRST: u64 = SQLITE_PENDING + 2;
pub const SQLITE_SHARED_SIZE: u64 = 510;

/// `/proc/locks` is parsed by `hostready_host::procfs::locks`, its one parser (which says how
/// it reads the kernel's forms: waiters, pids outside the namespace, old signed inodes).
pub use hostready_host::procfs::{LockEntry, parse_locks};

/// The SQLite lock a process holds on a database file, weakest to strongest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteLock {
    Shared,
    Reserved,
    Pending,
    Exclusive,
}

impl SqliteLock {
    fn name(self) -> &'static str {
        match self {
            SqliteLock::Shared => "shared",
            SqliteLock::Reserved => "reserved",
            SqliteLock::Pending => "pending",
            SqliteLock::Exclusive => "exclusive",
        }
    }
}

/// Decodes the SQLite lock level that one owner's entries on one file amount to, or `None`
/// when they are not SQLite's lock bytes. An EXCLUSIVE holder blocks every reader: new
/// readers need a read lock on PENDING first, and the SHARED range is write-locked.
pub fn sqlite_level<'a>(entries: impl IntoIterator<Item = &'a LockEntry>) -> Option<SqliteLock> {
    let shared_last = SQLITE_SHARED_FIRST + SQLITE_SHARED_SIZE - 1;
    let mut level = None;
    for e in entries {
        // SQLite locks only its own bytes, with fcntl; a whole-file or flock lock is not one.
        if e.kind == "FLOCK" || e.start < SQLITE_PENDING || e.start > shared_last {
            continue;
        }
        let write = e.access == "WRITE";
        let this = if write && e.covers(SQLITE_SHARED_FIRST, shared_last) {
            Some(SqliteLock::Exclusive)
        } else if write && e.covers(SQLITE_PENDING, SQLITE_PENDING) {
            Some(SqliteLock::Pending)
        } else if write && e.covers(SQLITE_RESERVED, SQLITE_RESERVED) {
            Some(SqliteLock::Reserved)
        } else if !write && e.start >= SQLITE_SHARED_FIRST && e.start <= shared_last {
            Some(SqliteLock::Shared)
        } else {
            None
        };
        level = level.max(this);
    }
    level
}

/// Which package manager's database a path belongs to, if any.
pub fn package_db_kind(path: &str) -> Option<&'static str> {
    let name = basename(path);
    let in_rpm_dir = path.contains("/rpm/") || path.contains("/.rpmdb/");
    if name == "rpmdb.sqlite"
        || name.starts_with("rpmdb.sqlite-")
        || name == ".rpm.lock"
        || name.starts_with("__db.")
        || (in_rpm_dir && matches!(name, "Packages" | "Packages.db" | "Index.db"))
    {
        Some("rpm")
    } else if path.contains("/var/lib/dpkg/lock") || path.ends_with("/var/lib/dpkg/triggers/Lock") {
        Some("dpkg")
    } else if path.ends_with("/var/lib/apt/lists/lock")
        || path.ends_with("/var/cache/apt/archives/lock")
    {
        Some("apt")
    } else {
        None
    }
}

/// One lock holder on a file.
#[derive(Debug, Clone, Serialize)]
pub struct Holder {
    pub pid: Option<u32>,
    pub kind: String,
    pub access: String,
    pub ranges: Vec<String>,
    /// The SQLite lock these ranges amount to, when they are SQLite's.
    pub sqlite: Option<SqliteLock>,
}

/// A locked file, who holds it, and who waits.
#[derive(Debug, Clone, Serialize)]
pub struct LockedFile {
    pub dev: (u32, u32),
    pub ino: u64,
    /// The path as a process that has it open sees it, when one was found.
    pub path: Option<String>,
    pub holders: Vec<Holder>,
    /// Pids blocked in the kernel on this file (`->` lines).
    pub blocked: Vec<u32>,
    /// Pids with the file open that hold no lock on it: polling waiters when a holder has a
    /// write lock.
    pub openers: Vec<u32>,
    /// Pids that share a holder's lock through an inherited descriptor (a child of `flock(1)`):
    /// their `/proc/<pid>/fdinfo/<fd>` lists the lock. Neither holders by pid nor waiters.
    pub sharing: Vec<u32>,
}

impl LockedFile {
    /// Returns true if and only if some holder keeps others out (a write lock of any kind).
    pub fn write_held(&self) -> bool {
        self.holders.iter().any(|h| h.access == "WRITE")
    }

    /// Returns every pid that is waiting on this file: blocked, or polling behind a write lock.
    pub fn waiters(&self) -> Vec<u32> {
        let mut w: BTreeSet<u32> = self.blocked.iter().copied().collect();
        if self.write_held() {
            w.extend(self.openers.iter().copied());
        }
        w.into_iter().collect()
    }
}

/// A file as the lock table names it: (device major, minor) and inode.
type FileKey = ((u32, u32), u64);

/// Matches the lock table to files and processes. Descriptors are read (of the processes in
/// `only`, or of all) only when the table is not empty; `proc` supplies `fdinfo`, which tells a process that shares a
/// holder's open file (and so its lock) from one that waits.
pub fn analyse(
    entries: &[LockEntry],
    snap: &Snapshot,
    dir: Option<&ProcDir>,
    proc: Option<&Root>,
    only: Option<&PidSet>,
) -> Vec<LockedFile> {
    let mut files: BTreeMap<FileKey, LockedFile> = BTreeMap::new();
    let mut by_owner: BTreeMap<(FileKey, Option<u32>, String), Vec<&LockEntry>> = BTreeMap::new();
    for e in entries {
        let file = files.entry((e.dev, e.ino)).or_insert_with(|| LockedFile {
            dev: e.dev,
            ino: e.ino,
            path: None,
            holders: Vec::new(),
            blocked: Vec::new(),
            openers: Vec::new(),
            sharing: Vec::new(),
        });
        if e.waiter {
            file.blocked.extend(e.pid);
        } else {
            by_owner
                .entry(((e.dev, e.ino), e.pid, e.kind.clone()))
                .or_default()
                .push(e);
        }
    }
    for ((key, pid, kind), list) in by_owner {
        let access = if list.iter().any(|e| e.access == "WRITE") {
            "WRITE"
        } else {
            list[0].access.as_str()
        };
        let holder = Holder {
            pid,
            kind,
            access: access.to_string(),
            ranges: list.iter().map(|e| e.range()).collect(),
            sqlite: sqlite_level(list.iter().copied()),
        };
        if let Some(f) = files.get_mut(&key) {
            f.holders.push(holder);
        }
    }
    let Some(dir) = dir.filter(|_| !files.is_empty()) else {
        return files.into_values().collect();
    };
    // First the processes named in the lock table: that names the locked files. Only when one
    // of them is write-locked in a way pollers wait on (a package database, or SQLite's
    // PENDING/EXCLUSIVE) are the other candidates' descriptors read to find polling waiters.
    let mut first: Vec<u32> = entries.iter().filter_map(|e| e.pid).collect();
    first.sort_unstable();
    first.dedup();
    let mut done = PidSet::default();
    scan_fds(&first, snap, dir, proc, &mut files, &mut done);
    let pollable = files.values().any(|f| {
        f.write_held()
            && (f.path.as_deref().and_then(package_db_kind).is_some()
                || f.holders
                    .iter()
                    .any(|h| h.sqlite >= Some(SqliteLock::Pending)))
    });
    if pollable {
        let mut rest: Vec<u32> = snap
            .procs
            .values()
            .filter(|p| only.is_none_or(|o| o.contains(&p.pid)))
            .map(|p| p.pid)
            .collect();
        rest.sort_unstable();
        scan_fds(&rest, snap, dir, proc, &mut files, &mut done);
    }
    files.into_values().collect()
}

/// Reads the descriptors of `pids` (skipping zombies and those in `done`) and records who has
/// each locked file open.
fn scan_fds(
    pids: &[u32],
    snap: &Snapshot,
    dir: &ProcDir,
    proc: Option<&Root>,
    files: &mut BTreeMap<FileKey, LockedFile>,
    done: &mut PidSet,
) {
    for &pid in pids {
        if snap.procs.get(&pid).is_some_and(|p| p.state == 'Z') || !done.insert(pid) {
            continue;
        }
        let mut seen = HashSet::new();
        for t in dir.fd_targets(pid) {
            let Some(f) = files.get_mut(&(t.dev, t.ino)) else {
                continue;
            };
            if f.path.is_none() {
                f.path = Some(t.path.clone());
            }
            let holds = f.holders.iter().any(|h| h.pid == Some(pid));
            if holds || f.blocked.contains(&pid) || !seen.insert((t.dev, t.ino)) {
                continue;
            }
            if proc.is_some_and(|p| fd_has_lock(p, pid, t.fd)) {
                f.sharing.push(pid);
            } else {
                f.openers.push(pid);
            }
        }
    }
}

/// Returns true if and only if `/proc/<pid>/fdinfo/<fd>` lists a lock held (not waited for)
/// through that descriptor (proc(5): the `lock:` lines of fdinfo).
fn fd_has_lock(proc: &Root, pid: u32, fd: u32) -> bool {
    crate::proc::read_capped(proc, &format!("/{pid}/fdinfo/{fd}"), crate::proc::SMALL_CAP)
        .is_ok_and(|t| {
            t.lines()
                .any(|l| l.starts_with("lock:") && !l.contains("->"))
        })
}

/// Turns the analysed lock table into findings: one per package-database file that is locked,
/// one per other file that has waiters, and a summary when nothing needs attention.
pub fn findings(files: &[LockedFile], snap: &Snapshot, min_age: u64) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut used_ids = HashSet::new();
    for f in files {
        let path = f
            .path
            .clone()
            .unwrap_or_else(|| format!("inode {} on device {:x}:{:02x}", f.ino, f.dev.0, f.dev.1));
        let pkg = f.path.as_deref().and_then(package_db_kind);
        let waiters = f.waiters();
        let strongest = f.holders.iter().filter_map(|h| h.sqlite).max();
        let interesting = pkg.is_some()
            || !f.blocked.is_empty()
            || (strongest >= Some(SqliteLock::Pending) && !waiters.is_empty());
        if !interesting {
            continue;
        }
        let holder_age = f
            .holders
            .iter()
            .filter_map(|h| snap.procs.get(&h.pid?))
            .map(|p| p.age_secs)
            .max()
            .unwrap_or(0);
        let status = if !waiters.is_empty() {
            Status::Fail
        } else if pkg.is_some() && f.write_held() && holder_age >= min_age {
            Status::Warn
        } else {
            Status::Pass
        };
        let mut id = format!("doctor.lock.{}", id_segment(basename(&path)));
        if !used_ids.insert(id.clone()) {
            id = format!("{id}.{}", f.ino);
            used_ids.insert(id.clone());
        }
        let who = |pid: Option<u32>| match pid.and_then(|p| snap.procs.get(&p)) {
            Some(p) => format!(
                "pid {} ({}), running for {}",
                p.pid,
                p.short(),
                age(p.age_secs)
            ),
            None => match pid {
                Some(p) => format!("pid {p}"),
                None => "an open file description (OFD lock, owner unknown)".into(),
            },
        };
        // The strongest holder first: it is the one the message names, and `lock holder`.
        let mut holders: Vec<&Holder> = f.holders.iter().collect();
        holders.sort_by_key(|h| std::cmp::Reverse((h.sqlite, h.access == "WRITE")));
        let main = holders
            .first()
            .map(|h| match h.sqlite {
                Some(l) => format!("SQLite {} lock held by {}", l.name(), who(h.pid)),
                None => format!(
                    "{} {} lock held by {}",
                    h.kind,
                    h.access.to_lowercase(),
                    who(h.pid)
                ),
            })
            .unwrap_or_else(|| "no holder listed".into());
        let mut message = format!("{path}: {main}");
        if !waiters.is_empty() {
            message.push_str(&format!("; {} process(es) wait", waiters.len()));
            if let Some(cmd) = most_common_command(&waiters, snap) {
                message.push_str(&format!(" ({cmd})"));
            }
        }
        let mut finding = finding::new(id, status, message)
            .with("file", path.as_str())
            .with(
                "inode",
                format!("{:02x}:{:02x}:{}", f.dev.0, f.dev.1, f.ino),
            );
        for (i, h) in holders.iter().enumerate() {
            finding = finding.with(nth_key("lock holder", i), who(h.pid)).with(
                nth_key("lock", i),
                format!("{} {} bytes {}", h.kind, h.access, h.ranges.join(", ")),
            );
            if let Some(l) = h.sqlite {
                finding = finding.with(nth_key("sqlite lock", i), l.name());
            }
        }
        if !f.blocked.is_empty() {
            finding = finding.with("blocked in the kernel", pid_list(&f.blocked));
        }
        if !f.sharing.is_empty() {
            finding = finding.with("sharing the holder's lock", pid_list(&f.sharing));
        }
        if !f.openers.is_empty() {
            let key = if f.write_held() {
                "polling"
            } else {
                "open without a lock"
            };
            finding = finding.with(key, pid_list(&f.openers));
        }
        if status != Status::Pass {
            finding = remediate(finding, pkg, f, snap);
        }
        out.push(finding);
    }
    if out.is_empty() {
        out.push(finding::new(
            "doctor.locks",
            Status::Pass,
            format!(
                "{} locked file(s) in the kernel's lock table; none on a package database, nobody waiting",
                files.len()
            ),
        ));
    }
    out
}

fn remediate(f: Finding, pkg: Option<&str>, file: &LockedFile, snap: &Snapshot) -> Finding {
    let pids: Vec<String> = file
        .holders
        .iter()
        .filter_map(|h| h.pid)
        .map(|p| p.to_string())
        .collect();
    let holders = pids.join(" ");
    let mut f = if pids.is_empty() {
        f.fix("Find out who holds the lock: the lock table does not name its owner (an OFD lock), so look for the processes that have the file open.")
    } else {
        let mut f = f.fix(format!(
            "Find out why pid {holders} holds the lock (its kernel stack, its open files, its parent), and stop it only if it is stuck rather than working."
        ));
        for p in &pids {
            f = f
                .command(format!("cat /proc/{p}/stack"))
                .command(format!("ls -l /proc/{p}/fd"));
        }
        f.command(format!("ps -o pid,ppid,etime,args -p {}", pids.join(",")))
    };
    if !pids.is_empty() {
        f = match pkg {
            Some("rpm") => f
                .command(format!("kill {holders}"))
                .command("rpm -qa >/dev/null")
                .note(format!(
                    "`kill {holders}` only if it is stuck rather than working (then `kill -9` if it ignores SIGTERM). Waiting `rpm -q` processes then finish or can be killed: read-only queries hold no write lock."
                ))
                .note("Afterwards `rpm -qa >/dev/null` verifies the database; if that reports corruption, back up the directory (`cp -a /var/lib/rpm /var/lib/rpm.bak`) and run `rpm --rebuilddb`."),
            Some("dpkg" | "apt") => f
                .command(format!("kill {holders}"))
                .command("dpkg --configure -a")
                .note(format!(
                    "Only if apt/dpkg pid {holders} is hung: stop it (`kill {holders}`), then run `dpkg --configure -a` to finish interrupted work."
                )),
            _ => f.command(format!("kill {holders}")).note(format!(
                "If pid {holders} is stuck, stopping it (`kill {holders}`) releases the lock; the waiters continue."
            )),
        };
    }
    let f = f.note("Never delete a lock file to \"free\" it: that releases nothing and lets a second writer in.");
    if file.waiters().len() >= 2 {
        let parents = parents_of(&file.waiters(), snap);
        if !parents.is_empty() {
            return f.note(format!(
                "Stop whatever keeps starting the waiters first (their parent: {parents}); otherwise the pile grows back."
            ));
        }
    }
    f
}

fn parents_of(pids: &[u32], snap: &Snapshot) -> String {
    let mut count: BTreeMap<u32, usize> = BTreeMap::new();
    for p in pids.iter().filter_map(|p| snap.procs.get(p)) {
        *count.entry(p.ppid).or_default() += 1;
    }
    let mut v: Vec<(u32, usize)> = count.into_iter().collect();
    v.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    v.iter()
        .take(3)
        .map(|(pp, _)| match snap.procs.get(pp) {
            Some(p) => format!("pid {pp} {}", p.short()),
            None => format!("pid {pp}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn most_common_command(pids: &[u32], snap: &Snapshot) -> Option<String> {
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for p in pids.iter().filter_map(|p| snap.procs.get(p)) {
        *count.entry(p.short()).or_default() += 1;
    }
    count.into_iter().max_by_key(|(_, n)| *n).map(|(c, n)| {
        if n == pids.len() {
            c
        } else {
            format!("{c}, and others")
        }
    })
}

/// Formats a pid list, shortened after ten.
pub fn pid_list(pids: &[u32]) -> String {
    let mut s: Vec<String> = pids.iter().take(10).map(u32::to_string).collect();
    if pids.len() > 10 {
        s.push(format!("… ({} in all)", pids.len()));
    }
    s.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real /proc/locks while `sqlite3` held `PRAGMA locking_mode=EXCLUSIVE; BEGIN EXCLUSIVE` on an
    // rpmdb.sqlite made by Debian's rpm 4.18, plus a blocked flock waiter (kernel 6.18).
    const SAMPLE: &str = "1: POSIX  ADVISORY  WRITE 6384 fe:00:9978253 1073741826 1073742335\n\
2: POSIX  ADVISORY  WRITE 6384 fe:00:9978253 1073741824 1073741824\n\
3: FLOCK  ADVISORY  WRITE 700 00:2e:55 0 EOF\n\
3: -> FLOCK  ADVISORY  WRITE 701 00:2e:55 0 EOF\n\
3:  -> -> FLOCK  ADVISORY  WRITE 702 00:2e:55 0 EOF\n\
4: OFDLCK ADVISORY  READ  -1 00:06:1234 0 EOF\n\
5: LEASE  ACTIVE    READ  900 fd:01:77 0 EOF\n\
junk\n";

    #[test]
    fn parses_real_lock_table() {
        let l = parse_locks(SAMPLE);
        assert_eq!(l.len(), 7);
        assert_eq!(l[0].pid, Some(6384));
        assert_eq!(l[0].dev, (0xfe, 0));
        assert_eq!(l[0].ino, 9_978_253);
        assert_eq!(l[0].end, Some(1_073_742_335));
        assert!(!l[2].waiter && l[3].waiter && l[4].waiter);
        assert_eq!(l[4].pid, Some(702));
        assert_eq!(l[2].end, None);
        assert_eq!(l[5].pid, None);
        assert_eq!(l[6].kind, "LEASE");
    }

    #[test]
    fn sqlite_levels() {
        let l = parse_locks(SAMPLE);
        assert_eq!(sqlite_level(&l[0..2]), Some(SqliteLock::Exclusive));
        assert_eq!(sqlite_level(&l[1..2]), Some(SqliteLock::Pending));
        assert_eq!(sqlite_level(&l[2..3]), None);
        let shared = parse_locks("1: POSIX ADVISORY READ 5 fe:00:1 1073741826 1073742335\n");
        assert_eq!(sqlite_level(&shared), Some(SqliteLock::Shared));
        let reserved = parse_locks(
            "1: POSIX ADVISORY READ 5 fe:00:1 1073741826 1073742335\n\
             2: POSIX ADVISORY WRITE 5 fe:00:1 1073741825 1073741825\n",
        );
        assert_eq!(sqlite_level(&reserved), Some(SqliteLock::Reserved));
    }

    #[test]
    fn package_db_paths() {
        assert_eq!(package_db_kind("/var/lib/rpm/rpmdb.sqlite"), Some("rpm"));
        assert_eq!(package_db_kind("/var/lib/rpm/.rpm.lock"), Some("rpm"));
        assert_eq!(package_db_kind("/var/lib/rpm/__db.001"), Some("rpm"));
        assert_eq!(
            package_db_kind("/usr/lib/sysimage/rpm/Packages.db"),
            Some("rpm")
        );
        assert_eq!(package_db_kind("/var/lib/dpkg/lock-frontend"), Some("dpkg"));
        assert_eq!(package_db_kind("/var/lib/apt/lists/lock"), Some("apt"));
        assert_eq!(package_db_kind("/home/x/Packages"), None);
        assert_eq!(package_db_kind("/tmp/x.db"), None);
    }

    #[test]
    fn analysis_without_fds_keeps_holders_and_blocked() {
        let files = analyse(&parse_locks(SAMPLE), &Snapshot::default(), None, None, None);
        assert_eq!(files.len(), 4);
        let rpmdb = files.iter().find(|f| f.ino == 9_978_253).unwrap();
        assert_eq!(rpmdb.holders.len(), 1);
        assert_eq!(rpmdb.holders[0].sqlite, Some(SqliteLock::Exclusive));
        let fl = files.iter().find(|f| f.ino == 55).unwrap();
        assert_eq!(fl.blocked, [701, 702]);
        assert_eq!(fl.waiters(), [701, 702]);
        let f = findings(&files, &Snapshot::default(), 60);
        assert!(
            f.iter()
                .any(|f| f.status == Status::Fail && f.message.contains("2 process"))
        );
        let fl = f
            .iter()
            .find(|f| f.evidence.get("inode") == Some("00:2e:55"))
            .unwrap();
        assert_eq!(fl.evidence.get("file"), Some("inode 55 on device 0:2e"));
        assert_eq!(fl.evidence.get("lock holder"), Some("pid 700"));
        assert_eq!(fl.evidence.get("lock"), Some("FLOCK WRITE bytes 0-EOF"));
        assert_eq!(fl.evidence.get("blocked in the kernel"), Some("701 702"));
        let fix = fl.remediation.as_ref().unwrap();
        assert!(fix.summary.contains("pid 700"), "{fix:?}");
        assert_eq!(
            fix.commands,
            [
                "cat /proc/700/stack",
                "ls -l /proc/700/fd",
                "ps -o pid,ppid,etime,args -p 700",
                "kill 700"
            ]
        );
        assert!(
            fix.notes
                .iter()
                .any(|n| n.starts_with("Never delete a lock file"))
        );
    }
}
