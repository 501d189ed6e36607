//! The watch pass: hostready-doctor's scans of the host (piles of identical stuck processes,
//! package-database lock holders and waiters, database health), on their own short interval,
//! through the same rooted `Host` the checks use. It reads procfs and the databases only: no
//! process is started and no lock is taken (doctor's guarantee, kept here).
//!
//! Its result is the node condition `HostProcessesHealthy` (positive polarity, like the
//! readiness conditions: `True` = no pile, no locked or damaged package database) and the
//! pile-up and package-database metrics.
//!
//! **Write budget.** The condition's `failing` list, whose change is written at once, holds
//! stable keys only: each pile's command with its count rounded *down* to a 1-2-5 band
//! (10, 20, 50, 100, 200, 500, ...), each locked database with its holders' pids, each damaged
//! database. The message uses the same bands (count and private memory) and names the parent
//! chain, the holder and the fix; exact counts, growth per minute and exact memory go to the
//! transition's event and the metrics. So a pile growing from 400 to 410 changes nothing
//! written; crossing a band (into 500), a new holder, or the pile going away is a write.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use hostready_doctor::{Finding, Options, Status, Thresholds};
use hostready_host::{Host, ProcSource};

use crate::condition::{CondStatus, Desired, MAX_MESSAGE};

/// The condition type the watch pass publishes.
pub const CONDITION: &str = "HostProcessesHealthy";

/// At most this many piles (the largest) and databases are exported as metrics series.
pub const MAX_EXPORTED: usize = 10;

/// One flagged pile, as the watch pass saw it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pile {
    /// The normalised command line (`rpm -q iscsi-initiator-utils`).
    pub(crate) command: String,
    pub(crate) count: usize,
    pub(crate) private_bytes: Option<u64>,
    /// The most common parent and its ancestors (`longhorn-manager(4711) → ...`).
    pub(crate) parent_chain: String,
    /// Members per minute since the previous pass; `None` on its first sight.
    pub(crate) growth_per_min: Option<f64>,
    /// Doctor's one-sentence fix and first command.
    pub(crate) fix: Option<String>,
}

/// A package database in the kernel's lock table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DbLock {
    /// The file, inside the root (`/var/lib/rpm/rpmdb.sqlite`).
    pub(crate) database: String,
    /// Holders' pids (sorted) and how doctor names them (`pid 42 (sqlite3 ...)`).
    pub(crate) holder_pids: Vec<u32>,
    pub(crate) holders: Vec<String>,
    pub(crate) waiters: usize,
    /// Doctor calls it a problem: someone waits, or a write lock is held for long.
    pub(crate) problem: bool,
    pub(crate) fix: Option<String>,
}

/// A damaged package database.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Corrupt {
    pub(crate) database: String,
    pub(crate) message: String,
    pub(crate) fix: Option<String>,
}

/// What one watch pass found.
#[derive(Debug, Clone)]
pub(crate) struct WatchResult {
    /// Flagged piles, largest first.
    pub(crate) piles: Vec<Pile>,
    pub(crate) locks: Vec<DbLock>,
    pub(crate) corrupt: Vec<Corrupt>,
    /// Package databases doctor checked (every one gets a `corrupt` series, 0 or 1).
    pub(crate) databases: Vec<String>,
    /// Why the pass could not decide, if it could not (no procfs, no root).
    pub(crate) unknown: Option<String>,
    pub(crate) thresholds: Thresholds,
    pub(crate) duration: Duration,
}

/// What a pass keeps for the next: pile sizes, for the growth per minute, and what doctor's
/// scan read, so the next scan reads command lines only of new processes and `stat` through
/// each process's kept procfs directory (`hostready_doctor::proc::Kept`: keyed by pid, start
/// time, name and argument range, entries of exited processes dropped each pass, at most
/// `KEPT_MAX_BYTES` of lines and `KEPT_DIRS_MAX` directories).
#[derive(Debug, Default)]
pub(crate) struct Previous {
    counts: BTreeMap<String, usize>,
    at: Option<Instant>,
    kept: hostready_doctor::proc::Kept,
    fd_limit: bool,
}

/// Raises this process's soft descriptor limit (`RLIMIT_NOFILE`) to what the kept process
/// directories need above `FD_RESERVE`, within the hard limit, as Go programs do at start:
/// container runtimes give 1,024 soft (containerd 2 and CRI-O) under a hard limit of 524,288
/// or more, and with 1,024 the scan would keep no directory and read every `stat` by path
/// (15 ms more kernel time a pass on 5,000 processes). Nothing is lowered; a refusal leaves
/// the limit as it is (the scan then keeps what fits).
fn raise_fd_limit() {
    use hostready_doctor::proc::{FD_RESERVE, KEPT_DIRS_MAX};
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let want = FD_RESERVE + KEPT_DIRS_MAX as u64 + 256;
    let now = getrlimit(Resource::Nofile);
    let Some(current) = now.current.filter(|&c| c < want) else {
        return;
    };
    let target = now.maximum.map_or(want, |m| m.min(want));
    if target > current {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(target),
                maximum: now.maximum,
            },
        );
    }
}

/// One watch pass (blocking: run it on a blocking thread). Never fails: what cannot be read
/// makes the result unknown, with why.
pub(crate) fn pass(
    root: &Path,
    proc: ProcSource,
    thresholds: &Thresholds,
    prev: &mut Previous,
) -> WatchResult {
    let started = Instant::now();
    let mut out = WatchResult {
        piles: Vec::new(),
        locks: Vec::new(),
        corrupt: Vec::new(),
        databases: Vec::new(),
        unknown: None,
        thresholds: thresholds.clone(),
        duration: Duration::ZERO,
    };
    let host = match Host::open(root, proc) {
        Ok(h) => h,
        Err(e) => {
            out.unknown = Some(format!("cannot open host root {}: {e}", root.display()));
            out.duration = started.elapsed();
            return out;
        }
    };
    if !prev.fd_limit {
        raise_fd_limit();
        prev.fd_limit = true;
    }
    let report = hostready_doctor::diagnose_keeping(
        &host,
        &Options {
            thresholds: thresholds.clone(),
            // Bounded reads only, every minute: see `Options::full_read`.
            full_read: false,
        },
        Some(&mut prev.kept),
    );
    out.unknown = report.no_proc.clone();
    let elapsed_min = prev.at.map(|t| t.elapsed().as_secs_f64() / 60.0);
    for g in &report.pileups {
        let growth = match (prev.counts.get(&g.command), elapsed_min) {
            (Some(&before), Some(min)) if min > 0.0 => Some((g.count as f64 - before as f64) / min),
            _ => None,
        };
        let fix = report
            .findings
            .iter()
            .find(|f| f.evidence.get("command") == Some(g.command.as_str()))
            .and_then(fix_of);
        out.piles.push(Pile {
            command: g.command.clone(),
            count: g.count,
            private_bytes: g.private_kb.map(|kb| kb * 1024),
            parent_chain: g.parent_chain.clone(),
            growth_per_min: growth,
            fix,
        });
    }
    out.piles
        .sort_by(|a, b| b.count.cmp(&a.count).then(a.command.cmp(&b.command)));
    prev.counts = out
        .piles
        .iter()
        .map(|p| (p.command.clone(), p.count))
        .collect();
    prev.at = Some(Instant::now());
    let mut identities = None;
    for f in &report.locked_files {
        // The lock table is the whole kernel's: only the databases of the host under the
        // root count (with `--root /`, every one).
        let Some(database) = database_of(&host, root, f, &mut identities) else {
            continue;
        };
        let inode = format!("{:02x}:{:02x}:{}", f.dev.0, f.dev.1, f.ino);
        let finding = report.findings.iter().find(|x| {
            x.id.starts_with("doctor.lock") && x.evidence.get("inode") == Some(inode.as_str())
        });
        let holders = finding
            .map(|x| {
                x.evidence
                    .0
                    .iter()
                    .filter(|(k, _)| k.starts_with("lock holder"))
                    // "pid 42 (sqlite3 ...), running for 5m12s": the age moves every pass.
                    .map(|(_, v)| v.split(", running for").next().unwrap_or(v).to_string())
                    .collect()
            })
            .unwrap_or_default();
        let mut holder_pids: Vec<u32> = f.holders.iter().filter_map(|h| h.pid).collect();
        holder_pids.sort_unstable();
        holder_pids.dedup();
        out.locks.push(DbLock {
            database,
            holder_pids,
            holders,
            waiters: f.waiters().len(),
            problem: finding.is_some_and(|x| matches!(x.status, Status::Fail | Status::Warn)),
            fix: finding.and_then(fix_of),
        });
    }
    out.locks.sort_by(|a, b| a.database.cmp(&b.database));
    for f in report
        .findings
        .iter()
        .filter(|f| f.id.starts_with("doctor.pkgdb."))
    {
        let Some(file) = f.evidence.get("file") else {
            continue;
        };
        let database = inside_root(root, file);
        if !out.databases.contains(&database) {
            out.databases.push(database.clone());
        }
        // Doctor fails a database finding only for damage (a header or a full read that
        // says so); a hot journal or a stale environment is a warning.
        if f.status == Status::Fail {
            out.corrupt.push(Corrupt {
                database,
                message: f.message.clone(),
                fix: fix_of(f),
            });
        }
    }
    out.duration = started.elapsed();
    out
}

/// `path` as seen inside `root` (the lock table names files as the host's processes see
/// them, which through `--root` starts with the root's own path).
fn inside_root(root: &Path, path: &str) -> String {
    let r = root.to_string_lossy();
    let r = r.trim_end_matches('/');
    match path.strip_prefix(r) {
        Some(rest) if !r.is_empty() && rest.starts_with('/') => rest.to_string(),
        _ => path.to_string(),
    }
}

/// A database file of the root by identity: (device major, minor), inode, path in the root.
type Identity = ((u32, u32), u64, String);

/// The package-database files of a root that a lock can be on, for [`database_of`].
fn lockable_databases() -> Vec<String> {
    let mut out = Vec::new();
    for dir in hostready_doctor::pkgdb::RPM_DIRS {
        for (name, _) in hostready_doctor::pkgdb::RPM_FILES {
            out.push(format!("{dir}/{name}"));
        }
        out.push(format!("{dir}/.rpm.lock"));
    }
    for p in [
        "/var/lib/dpkg/lock",
        "/var/lib/dpkg/lock-frontend",
        "/var/lib/dpkg/triggers/Lock",
        "/var/lib/apt/lists/lock",
        "/var/cache/apt/archives/lock",
    ] {
        out.push(p.to_string());
    }
    out
}

/// Which of the root's package databases the locked file `f` is, as a path inside the root.
/// The lock table names a file by device and inode; its path comes from the descriptor of a
/// process that has it open, as *that* process's mount namespace shows it. A holder in
/// another container (a pod with a hostPath mount of `/var/lib/rpm`, say) shows
/// `/var/lib/rpm/rpmdb.sqlite` even to an agent whose root is `/host`, and a path under the
/// root could name another file. So a path that is not a package database under the root is
/// matched by identity instead: the device and inode of each of the root's database files
/// (opened through the rooted view, read-only, no lock taken), looked up once per pass and
/// only when such a file is in the lock table (docs/node.md, the incident on the node).
fn database_of(
    host: &Host,
    root: &Path,
    f: &hostready_doctor::locks::LockedFile,
    identities: &mut Option<Vec<Identity>>,
) -> Option<String> {
    if let Some(path) = f.path.as_deref() {
        if hostready_doctor::locks::package_db_kind(path).is_some() && under_root(root, path) {
            return Some(inside_root(root, path));
        }
    }
    let ids = identities.get_or_insert_with(|| {
        use std::os::unix::fs::MetadataExt;
        lockable_databases()
            .into_iter()
            .filter_map(|p| {
                let m = host.fs().open_file(&p).ok()?.metadata().ok()?;
                let dev = (rustix::fs::major(m.dev()), rustix::fs::minor(m.dev()));
                Some((dev, m.ino(), p))
            })
            .collect()
    });
    ids.iter()
        .find(|(dev, ino, _)| *dev == f.dev && *ino == f.ino)
        .map(|(_, _, p)| p.clone())
}

/// Returns true if and only if `path` is `root` or below it.
fn under_root(root: &Path, path: &str) -> bool {
    Path::new(path).starts_with(root)
}

/// Doctor's fix in one line: its summary and its decisive command — the `kill` where there
/// is one (doctor lists the inspection commands first: a condition message has room for one).
fn fix_of(f: &Finding) -> Option<String> {
    let r = f.remediation.as_ref()?;
    let mut s = r.summary.clone();
    let decisive = r.commands.iter().find(|c| c.starts_with("kill "));
    if let Some(c) = decisive.or(r.commands.first()) {
        s.push_str(&format!(" ($ {c})"));
    }
    Some(s)
}

/// Rounds `n` down to the 1-2-5 series (1, 2, 5, 10, 20, 50, ...): the band a count is
/// written in, so the condition moves only when a pile crosses one.
pub(crate) fn band(n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    let mut decade = 1;
    while decade * 10 <= n {
        decade *= 10;
    }
    [5, 2, 1]
        .into_iter()
        .map(|m| m * decade)
        .find(|b| *b <= n)
        .unwrap_or(decade)
}

/// The HostProcessesHealthy condition for a watch pass: stable words in the message, exact
/// figures in the detail (for the event).
pub(crate) fn desired(r: &WatchResult) -> Desired {
    let locked: Vec<&DbLock> = r.locks.iter().filter(|l| l.problem).collect();
    let (status, reason) = if !r.corrupt.is_empty() {
        (CondStatus::False, "PackageDatabaseCorrupt")
    } else if !locked.is_empty() {
        (CondStatus::False, "PackageDatabaseLocked")
    } else if !r.piles.is_empty() {
        (CondStatus::False, "ProcessPileUp")
    } else if r.unknown.is_some() {
        (CondStatus::Unknown, "WatchUnknown")
    } else {
        (CondStatus::True, "AsExpected")
    };
    let mut failing = Vec::new();
    let (mut message, mut detail) = (Vec::new(), Vec::new());
    for c in &r.corrupt {
        failing.push(format!("corrupt:{}", c.database));
        let fix = c
            .fix
            .as_deref()
            .map(|f| format!("; fix: {f}"))
            .unwrap_or_default();
        message.push(format!("{}{fix}", c.message));
        detail.push(format!("{}{fix}", c.message));
    }
    for l in &locked {
        let pids: Vec<String> = l.holder_pids.iter().map(u32::to_string).collect();
        failing.push(format!("lock:{}:{}", l.database, pids.join(",")));
        let holders = if l.holders.is_empty() {
            "an unknown holder".to_string()
        } else {
            l.holders.join(", ")
        };
        let fix = l
            .fix
            .as_deref()
            .map(|f| format!("; fix: {f}"))
            .unwrap_or_default();
        message.push(format!(
            "{} locked by {holders}, processes wait{fix}",
            l.database
        ));
        detail.push(format!(
            "{} locked by {holders}, {} process(es) wait{fix}",
            l.database, l.waiters
        ));
    }
    for p in &r.piles {
        let b = band(p.count as u64);
        failing.push(format!("pile:{}:{b}", p.command));
        let fix = p
            .fix
            .as_deref()
            .map(|f| format!("; fix: {f}"))
            .unwrap_or_default();
        let mem = p
            .private_bytes
            .map(|bytes| format!(", at least {} MiB private", band(bytes >> 20)))
            .unwrap_or_default();
        message.push(format!(
            "pile of at least {b} × `{}`{mem}, started by {}{fix}",
            p.command, p.parent_chain
        ));
        let growth = p
            .growth_per_min
            .map(|g| format!(", growing by {g:.1}/min"))
            .unwrap_or_default();
        let mem = p
            .private_bytes
            .map(|bytes| format!(", {:.1} MiB private", bytes as f64 / 1048576.0))
            .unwrap_or_default();
        detail.push(format!(
            "pile of {} × `{}`{growth}{mem}, started by {}{fix}",
            p.count, p.command, p.parent_chain
        ));
    }
    if message.is_empty() {
        let text = match &r.unknown {
            Some(why) => format!("could not watch the host's processes: {why}"),
            None => format!(
                "no pile of {} or more identical processes older than {}, no package database locked or damaged",
                r.thresholds.min_count,
                crate::duration::format(Duration::from_secs(r.thresholds.min_age_secs))
            ),
        };
        message.push(text.clone());
        detail.push(text);
    }
    Desired {
        type_: CONDITION.into(),
        profile: "watch".into(),
        status,
        reason: reason.into(),
        message: cap(&message.join(". ")),
        failing,
        detail: cap(&detail.join(". ")),
    }
}

/// What a `failing` key names, without its band: a pile by its command, a lock by database
/// and holders, a damaged database by its file.
fn subject(key: &str) -> &str {
    match key.strip_prefix("pile:") {
        Some(rest) => rest
            .rsplit_once(':')
            .map_or(key, |(cmd, _)| &key[..key.len() - rest.len() + cmd.len()]),
        None => key,
    }
}

/// The event for a problem that appeared while the condition was already False (a pile
/// after the lock it waits on, a new holder, a second damaged database): the status did not
/// change, so no transition event names it. A pile only crossing a band, or one going away
/// while others stay, is a write but no event.
pub(crate) fn new_problem_event(
    before: &Desired,
    after: &Desired,
    time: k8s_openapi::chrono::DateTime<k8s_openapi::chrono::Utc>,
) -> Option<crate::publish::EventSpec> {
    if before.status != CondStatus::False || after.status != CondStatus::False {
        return None;
    }
    let old: Vec<&str> = before.failing.iter().map(|k| subject(k)).collect();
    let new: Vec<&str> = after
        .failing
        .iter()
        .map(|k| subject(k))
        .filter(|k| !old.contains(k))
        .collect();
    if new.is_empty() {
        return None;
    }
    Some(crate::publish::EventSpec {
        warning: true,
        reason: after.reason.clone(),
        action: "WatchHost",
        note: cap(&format!(
            "{CONDITION} still False ({}); new: {}. {}",
            after.reason,
            new.join(", "),
            after.detail
        )),
        time,
    })
}

/// Cuts a message to [`MAX_MESSAGE`] bytes on a character boundary.
fn cap(s: &str) -> String {
    if s.len() <= MAX_MESSAGE {
        return s.to_string();
    }
    let mut end = MAX_MESSAGE - 3;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::condition::ConditionSet;
    use k8s_openapi::chrono::Utc;

    fn pile(count: usize) -> Pile {
        Pile {
            command: "rpm -q iscsi-initiator-utils".into(),
            count,
            private_bytes: Some((count as u64 * 600) << 10),
            parent_chain: "longhorn-manager(4711)".into(),
            growth_per_min: Some(count as f64 / 100.0),
            fix: Some("Kill the pile ($ kill 1 2 3)".into()),
        }
    }

    fn lock(holder: u32) -> DbLock {
        DbLock {
            database: "/var/lib/rpm/rpmdb.sqlite".into(),
            holder_pids: vec![holder],
            holders: vec![format!("pid {holder} (sqlite3 /var/lib/rpm/rpmdb.sqlite)")],
            waiters: 12,
            problem: true,
            fix: Some("Stop the holder ($ kill 42)".into()),
        }
    }

    fn result(piles: Vec<Pile>, locks: Vec<DbLock>) -> WatchResult {
        WatchResult {
            piles,
            locks,
            corrupt: Vec::new(),
            databases: vec!["/var/lib/rpm/rpmdb.sqlite".into()],
            unknown: None,
            thresholds: Thresholds::default(),
            duration: Duration::ZERO,
        }
    }

    /// Applies one pass to the set and says whether it must be written at once, after a
    /// write of the state before it.
    fn urgent(set: &mut ConditionSet, r: &WatchResult) -> (bool, usize) {
        set.mark_written();
        let transitions = set.update(vec![desired(r)], Utc::now()).len();
        (set.changed(), transitions)
    }

    #[test]
    fn bands_round_down_to_one_two_five() {
        let b: Vec<u64> = [
            0, 1, 3, 9, 10, 19, 20, 49, 50, 399, 400, 410, 499, 500, 4999,
        ]
        .into_iter()
        .map(band)
        .collect();
        assert_eq!(
            b,
            [
                0, 1, 2, 5, 10, 10, 20, 20, 50, 200, 200, 200, 200, 500, 2000
            ]
        );
    }

    #[test]
    fn healthy_is_true_as_expected() {
        let d = desired(&result(Vec::new(), Vec::new()));
        assert_eq!(
            (d.status, d.reason.as_str()),
            (CondStatus::True, "AsExpected")
        );
        assert!(d.failing.is_empty());
        assert!(
            d.message.starts_with("no pile of 10 or more"),
            "{}",
            d.message
        );
    }

    #[test]
    fn the_message_names_pile_parent_holder_and_fix_and_the_detail_the_figures() {
        let d = desired(&result(vec![pile(412)], vec![lock(42)]));
        assert_eq!(d.status, CondStatus::False);
        assert_eq!(d.reason, "PackageDatabaseLocked");
        for want in [
            "at least 200 × `rpm -q iscsi-initiator-utils`",
            "longhorn-manager(4711)",
            "pid 42 (sqlite3 /var/lib/rpm/rpmdb.sqlite)",
            "/var/lib/rpm/rpmdb.sqlite locked by",
            "fix: Stop the holder",
            "fix: Kill the pile",
            "at least 200 MiB private",
        ] {
            assert!(d.message.contains(want), "{want:?} not in {}", d.message);
        }
        assert!(!d.message.contains("412"), "{}", d.message);
        assert!(d.detail.contains("pile of 412 ×"), "{}", d.detail);
        assert!(d.detail.contains("growing by 4.1/min"), "{}", d.detail);
        assert!(d.detail.contains("12 process(es) wait"), "{}", d.detail);
        let d = desired(&result(vec![pile(20)], Vec::new()));
        assert_eq!(d.reason, "ProcessPileUp");
    }

    /// The write budget: a growing pile inside its band is no urgent write (and no event);
    /// crossing a band, a new holder, and the pile going away are.
    #[test]
    fn a_growing_pile_is_one_write_and_crossings_holders_and_recovery_are_writes() {
        let mut set = ConditionSet::default();
        let (changed, events) = urgent(&mut set, &result(vec![pile(400)], vec![lock(42)]));
        assert!(changed && events == 1, "first sight");
        for n in [402, 405, 410, 450, 499] {
            let (changed, events) = urgent(&mut set, &result(vec![pile(n)], vec![lock(42)]));
            assert!(!changed && events == 0, "{n}: not a new write");
        }
        let (changed, events) = urgent(&mut set, &result(vec![pile(500)], vec![lock(42)]));
        assert!(changed && events == 0, "crossing into 500 is a write");
        let (changed, events) = urgent(&mut set, &result(vec![pile(510)], vec![lock(43)]));
        assert!(changed && events == 0, "a new holder is a write");
        let (changed, events) = urgent(&mut set, &result(vec![pile(510)], Vec::new()));
        assert!(changed && events == 0, "the lock going away is a write");
        let (changed, events) = urgent(&mut set, &result(Vec::new(), Vec::new()));
        assert!(
            changed && events == 1,
            "the pile gone: a write and a transition"
        );
        let (changed, events) = urgent(&mut set, &result(Vec::new(), Vec::new()));
        assert!(!changed && events == 0, "healthy stays quiet");
    }

    /// A pile seen after its lock, or a new holder, is one event; a band crossing or the
    /// same problems again is none (the status transitions have their own events).
    #[test]
    fn new_problems_while_false_are_one_event_each() {
        let now = Utc::now();
        let lock_only = desired(&result(Vec::new(), vec![lock(42)]));
        let with_pile = desired(&result(vec![pile(24)], vec![lock(42)]));
        let e = new_problem_event(&lock_only, &with_pile, now).expect("the pile is new");
        assert_eq!(e.reason, "PackageDatabaseLocked");
        assert!(
            e.note.contains("new: pile:rpm -q iscsi-initiator-utils"),
            "{}",
            e.note
        );
        assert!(
            e.note.contains("pile of 24 ×") && e.note.contains("pid 42"),
            "{}",
            e.note
        );
        let bigger = desired(&result(vec![pile(60)], vec![lock(42)]));
        assert!(
            new_problem_event(&with_pile, &bigger, now).is_none(),
            "a band crossing"
        );
        assert!(new_problem_event(&bigger, &bigger, now).is_none());
        let other_holder = desired(&result(vec![pile(60)], vec![lock(43)]));
        assert!(
            new_problem_event(&bigger, &other_holder, now).is_some(),
            "a new holder"
        );
        let healthy = desired(&result(Vec::new(), Vec::new()));
        assert!(
            new_problem_event(&healthy, &with_pile, now).is_none(),
            "a transition's own"
        );
    }

    #[test]
    fn corruption_comes_first_and_unknown_says_why() {
        let mut r = result(vec![pile(30)], Vec::new());
        r.corrupt.push(Corrupt {
            database: "/var/lib/rpm/rpmdb.sqlite".into(),
            message: "/var/lib/rpm/rpmdb.sqlite: damaged — bad header".into(),
            fix: Some("Rebuild ($ rpm --rebuilddb)".into()),
        });
        let d = desired(&r);
        assert_eq!(d.reason, "PackageDatabaseCorrupt");
        assert!(d.message.contains("rpm --rebuilddb"), "{}", d.message);
        let mut r = result(Vec::new(), Vec::new());
        r.unknown = Some("no procfs: --proc none".into());
        let d = desired(&r);
        assert_eq!(
            (d.status, d.reason.as_str()),
            (CondStatus::Unknown, "WatchUnknown")
        );
        assert!(d.message.contains("--proc none"), "{}", d.message);
    }

    /// A locked file as the lock table and a holder's descriptor name it.
    fn locked(
        dev: (u32, u32),
        ino: u64,
        path: Option<&str>,
    ) -> hostready_doctor::locks::LockedFile {
        hostready_doctor::locks::LockedFile {
            dev,
            ino,
            path: path.map(str::to_string),
            holders: Vec::new(),
            blocked: Vec::new(),
            openers: Vec::new(),
            sharing: Vec::new(),
        }
    }

    /// A holder in another mount namespace (a pod with a hostPath mount of /var/lib/rpm) shows
    /// the database at its own path, outside the agent's root: the file is the root's
    /// database all the same, found by device and inode; another inode is not.
    #[test]
    fn a_locked_database_is_known_by_its_inode_when_its_path_is_outside_the_root() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("var/lib/rpm")).unwrap();
        let db = dir.path().join("var/lib/rpm/rpmdb.sqlite");
        let mut file = std::fs::File::create(&db).unwrap();
        std::io::Write::write_all(&mut file, b"SQLite format 3\0").unwrap();
        let m = file.metadata().unwrap();
        let o = std::fs::File::create(dir.path().join("other"))
            .unwrap()
            .metadata()
            .unwrap();
        let other = (
            (rustix::fs::major(o.dev()), rustix::fs::minor(o.dev())),
            o.ino(),
        );
        let dev = (rustix::fs::major(m.dev()), rustix::fs::minor(m.dev()));
        let host = Host::open(dir.path(), ProcSource::Disabled).unwrap();
        let root = dir.path();
        let mut ids = None;
        assert_eq!(
            database_of(
                &host,
                root,
                &locked(dev, m.ino(), Some("/var/lib/rpm/rpmdb.sqlite")),
                &mut ids
            )
            .as_deref(),
            Some("/var/lib/rpm/rpmdb.sqlite")
        );
        // No descriptor readable at all (the holder has capabilities the agent lacks): the
        // lock table's device and inode still name it.
        assert_eq!(
            database_of(&host, root, &locked(dev, m.ino(), None), &mut ids).as_deref(),
            Some("/var/lib/rpm/rpmdb.sqlite")
        );
        assert_eq!(
            database_of(
                &host,
                root,
                &locked(other.0, other.1, Some("/var/lib/rpm/rpmdb.sqlite")),
                &mut ids
            ),
            None
        );
        // Under the root, by its path, as before.
        let inside = format!("{}/var/lib/rpm/rpmdb.sqlite", root.display());
        assert_eq!(
            database_of(&host, root, &locked((0, 0), 1, Some(&inside)), &mut None).as_deref(),
            Some("/var/lib/rpm/rpmdb.sqlite")
        );
    }

    #[test]
    fn lock_paths_are_shown_inside_the_root() {
        let root = Path::new("/tmp/r/");
        assert_eq!(
            inside_root(root, "/tmp/r/var/lib/rpm/rpmdb.sqlite"),
            "/var/lib/rpm/rpmdb.sqlite"
        );
        assert_eq!(
            inside_root(Path::new("/"), "/var/lib/rpm/x"),
            "/var/lib/rpm/x"
        );
        assert_eq!(inside_root(root, "/tmp/rx/y"), "/tmp/rx/y");
        assert!(under_root(root, "/tmp/r/var/lib/rpm/rpmdb.sqlite"));
        assert!(!under_root(root, "/tmp/rx/var/lib/rpm/rpmdb.sqlite"));
        assert!(under_root(
            Path::new("/"),
            "/tmp/rx/var/lib/rpm/rpmdb.sqlite"
        ));
    }
}
