//! `hostready doctor`: diagnoses a host that is already sick with the incident class hostready
//! exists for — thousands of stuck `rpm -q`, a locked or damaged package database, memory at
//! 100% — by reading procfs and the package databases. It starts no process and takes no lock.
//!
//! [`diagnose`] is the whole diagnosis: a scan of procfs ([`proc::scan`]), the kernel's lock
//! table matched to files ([`locks`]), pile-ups ([`pileup`]), package-database health
//! ([`pkgdb`]) and memory pressure ([`memory`]). [`signatures::scan`] reads logs instead
//! (opened by [`logfile::open`]).

pub mod catalogue;
pub mod finding;
pub mod locks;
pub mod logfile;
pub mod magic;
pub mod memory;
pub mod pileup;
pub mod pkgdb;
pub mod proc;
pub mod signatures;

use hostready_checks::{Facts, HostInfo};
use hostready_host::Host;
use serde::Serialize;

use crate::proc::PidSet;

pub use finding::Build;
pub use finding::{Evidence, Finding, Level, Remediation, Status, Summary};
pub use pileup::Thresholds;

/// Schema version of doctor's JSON/YAML report; bumped on incompatible changes.
pub const SCHEMA: u32 = 1;

/// Piles up to this size get exact private memory from `smaps_rollup`; larger ones an estimate
/// from the `statm` of this many members, evenly spread by age.
pub const EXACT_MEMORY_MAX: usize = 256;

/// What [`diagnose`] is asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    pub thresholds: Thresholds,
    /// Also read every package database record (`hostready-pkgdb`'s full readers), which
    /// finds damage past the header but holds the records in memory: `hostready doctor`
    /// does; the agent's minute-by-minute watch pass does not (a 150 MB rpmdb read every
    /// minute would not fit the pod's 48 MiB limit). Off, the database findings rest on the
    /// files' headers, environments and locks, each read bounded.
    pub full_read: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            thresholds: Thresholds::default(),
            full_read: true,
        }
    }
}

/// Everything one diagnosis found. The first five fields are those of `hostready check`'s
/// report (less its profiles); the rest are doctor's own.
#[derive(Debug, Serialize)]
pub struct Report {
    pub schema: u32,
    /// The host as doctor saw it, as `hostready check` reports it.
    pub host: HostInfo,
    /// True if and only if no finding is `fail` or `warn`: nothing needs attention.
    pub ok: bool,
    pub summary: Summary,
    /// Findings in a stable order: pile-ups, locks, package databases, memory.
    pub findings: Vec<Finding>,
    /// The groups flagged as pile-ups, largest first.
    pub pileups: Vec<pileup::Group>,
    /// Every file in the kernel's lock table, with holders and waiters.
    pub locked_files: Vec<locks::LockedFile>,
    /// User-space processes seen.
    pub processes: usize,
    /// Why there was no procfs to read, if there was none: process, lock and memory findings
    /// are then unknown.
    pub no_proc: Option<String>,
    /// Why processes' open files and executables are unknown, if they are: the procfs given is
    /// a plain directory, whose `fd/` and `exe` links are never followed (see [`magic`]).
    pub links_unknown: Option<String>,
}

impl Report {
    /// Returns the worst status among the findings, worst meaning fail, then warn, then
    /// unknown (`Pass` when there are none).
    pub fn worst(&self) -> Status {
        self.findings
            .iter()
            .map(|f| f.status)
            .max_by_key(|s| finding::severity(*s))
            .unwrap_or(Status::Pass)
    }
}

/// Returns true if and only if no finding needs attention (none is `fail` or `warn`).
fn all_ok(findings: &[Finding]) -> bool {
    !findings
        .iter()
        .any(|f| matches!(f.status, Status::Fail | Status::Warn))
}

/// Returns the host as `hostready check` reports it: root, procfs, os-release, kernel, machine.
fn host_info(host: &Host) -> HostInfo {
    // No executable is looked up: the PATH is irrelevant.
    HostInfo::of(&Facts::new(host, ""))
}

/// Diagnoses `host`. Never fails: what cannot be read becomes an `unknown` finding.
pub fn diagnose(host: &Host, opts: &Options) -> Report {
    diagnose_keeping(host, opts, None)
}

/// Like [`diagnose`], for a watcher that diagnoses the same host again and again (the agent's
/// watch pass): the process scan reuses the command lines `kept` holds from the previous call
/// where they belong to the same processes ([`proc::scan_keeping`]), and leaves this call's in
/// it. The report is the one [`diagnose`] gives (tests/incremental.rs).
pub fn diagnose_keeping(host: &Host, opts: &Options, kept: Option<&mut proc::Kept>) -> Report {
    let mut report = Report {
        schema: SCHEMA,
        host: host_info(host),
        ok: true,
        summary: Summary::default(),
        findings: Vec::new(),
        pileups: Vec::new(),
        locked_files: Vec::new(),
        processes: 0,
        no_proc: None,
        links_unknown: None,
    };
    diagnose_into(host, opts, kept, &mut report);
    report.ok = all_ok(&report.findings);
    report.summary = Summary::of(&report.findings);
    report
}

fn diagnose_into(host: &Host, opts: &Options, kept: Option<&mut proc::Kept>, report: &mut Report) {
    let t = &opts.thresholds;
    let proc = match host.proc() {
        Ok(p) => p,
        Err(why) => {
            report.no_proc = Some(why.0.clone());
            for id in ["doctor.pileup", "doctor.locks", "doctor.memory"] {
                report.findings.push(finding::new(
                    id,
                    Status::Unknown,
                    format!("no procfs: {}", why.0),
                ));
            }
            report
                .findings
                .extend(pkgdb::findings(host.fs(), None, opts.full_read));
            return;
        }
    };
    // Magic links (exe, fd) need the procfs opened directly; see magic.rs for why.
    let dir = magic::ProcDir::open(proc.location());
    let dir_error = dir.as_ref().err().map(|e| {
        format!(
            "cannot open {} to read magic links: {e}",
            proc.location().display()
        )
    });
    let dir = dir.ok();
    let mut snap = match proc::scan_keeping(proc, dir.as_ref(), t.min_count, kept) {
        Ok(s) => s,
        Err(e) => {
            let why = format!("cannot list processes: {e}");
            report.no_proc = Some(why.clone());
            report
                .findings
                .push(finding::new("doctor.pileup", Status::Unknown, why));
            report
                .findings
                .extend(pkgdb::findings(host.fs(), None, opts.full_read));
            return;
        }
    };
    report.processes = snap.procs.len();

    let lock_table = proc::read_capped(proc, "/locks", proc::LOCKS_CAP);
    let entries = lock_table
        .as_deref()
        .map(locks::parse_locks)
        .unwrap_or_default();
    let mut groups = pileup::group(&snap, t);
    // Descriptors are read only where a waiter or holder can be: processes in the lock table,
    // members of groups big enough to be a pile (whatever their age), and package managers.
    // Reading every descriptor of every process would double the cost of a run. With no lock
    // in the table none is read, and the set is not made (5,000 inserts a watch pass).
    let mut scan: PidSet = entries.iter().filter_map(|e| e.pid).collect();
    if !entries.is_empty() {
        scan.extend(
            groups
                .iter()
                .filter(|g| g.count >= t.min_count)
                .flat_map(|g| g.pids.iter().copied()),
        );
        scan.extend(
            snap.procs
                .values()
                .filter(|p| pkgdb::is_rpm_user(p) || is_dpkg_user(p))
                .map(|p| p.pid),
        );
    }
    let files = locks::analyse(&entries, &snap, dir.as_ref(), Some(proc), Some(&scan));
    let waiting: PidSet = files.iter().flat_map(|f| f.waiters()).collect();
    // The lock findings name holders, waiters and the waiters' parents by command line.
    let named: Vec<u32> = files
        .iter()
        .flat_map(|f| {
            f.holders.iter().filter_map(|h| h.pid).chain(
                f.blocked
                    .iter()
                    .chain(&f.openers)
                    .chain(&f.sharing)
                    .copied(),
            )
        })
        .collect();
    let parents: Vec<u32> = waiting
        .iter()
        .filter_map(|p| snap.procs.get(p).map(|p| p.ppid))
        .collect();
    snap.fill(proc, dir.as_ref(), named.into_iter().chain(parents));

    let meminfo = match proc.read_head("/meminfo", memory::MAX_FILE) {
        Ok(b) => memory::capped("/proc/meminfo", &b).and_then(|t| memory::parse_meminfo(&t)),
        Err(e) => Err(memory::MemError::Unreadable {
            file: "/proc/meminfo",
            reason: e.to_string(),
        }),
    };
    let mem_total = meminfo.as_ref().ok().map(|m| m.total_kb);

    let mut flagged_kb = 0;
    for g in groups.iter_mut().filter(|g| g.flagged) {
        g.waiting_on_lock = g.pids.iter().filter(|p| waiting.contains(p)).count();
        if g.is_zombies() {
            continue;
        }
        // The executable: of the oldest member (the scan reads executables only on demand).
        if let Some(exe) = snap
            .procs
            .get(&g.pids[0])
            .filter(|p| p.exe.is_none())
            .and_then(|_| dir.as_ref()?.exe(g.pids[0]))
        {
            g.exe = exe;
        }
        let (kb, source) = pile_memory(proc, dir.as_ref(), &g.pids);
        g.private_kb = Some(kb);
        g.memory_source = source;
        flagged_kb += kb;
    }
    report
        .findings
        .extend(pileup::findings(&groups, &snap, t, mem_total));
    match &lock_table {
        Ok(_) => report
            .findings
            .extend(locks::findings(&files, &snap, t.min_age_secs)),
        Err(e) => report.findings.push(finding::new(
            "doctor.locks",
            Status::Unknown,
            format!("cannot read the lock table: {e}"),
        )),
    }
    report
        .findings
        .extend(pkgdb::findings(host.fs(), Some(&snap), opts.full_read));
    // No PSI file: a kernel built without it (or booted with psi=0), not an error.
    let psi = proc
        .read_head("/pressure/memory", memory::MAX_FILE)
        .ok()
        .map(|b| memory::capped("/proc/pressure/memory", &b).and_then(|t| memory::parse_psi(&t)));
    report
        .findings
        .push(memory::finding(&meminfo, &psi, flagged_kb));

    let why = match &dir {
        Some(d) => d.magic().err().map(str::to_string),
        None => dir_error,
    };
    if let Some(why) = why.as_deref() {
        links_unknown(report, why, !files.is_empty());
    }
    report.pileups = groups.into_iter().filter(|g| g.flagged).collect();
    report.locked_files = files;
}

/// Marks what needed the magic links as unknown: who has a locked file open (so who polls on
/// it) and the piles' executables. When the lock table is not empty, a lock finding that would pass is unknown instead: with the
/// open files unknown, "nobody waits" is not known.
fn links_unknown(report: &mut Report, why: &str, locked: bool) {
    report.links_unknown = Some(why.to_string());
    for f in &mut report.findings {
        // With an empty lock table no descriptor would have been read: nothing is unknown.
        if f.id.starts_with("doctor.lock") && locked {
            f.evidence.add("open files", format!("unknown: {why}"));
            if f.status == Status::Pass {
                f.status = Status::Unknown;
                f.message.push_str("; who has the files open is unknown");
            }
        } else if f.id.starts_with("doctor.pileup.") {
            f.evidence.add("executable link", format!("unknown: {why}"));
        }
    }
}

/// Returns the summed private memory of a pile in kB and where it comes from. Exact
/// (`smaps_rollup`) up to [`EXACT_MEMORY_MAX`] members. Above, walking every mapping of
/// thousands of processes would cost seconds, and even `statm` (O(1) in the kernel) costs an
/// open, read and close per member: so `statm` is read for [`EXACT_MEMORY_MAX`] members spread
/// evenly by age and the mean scaled to the pile. Members of a pile run the same command, so
/// their memory differs little. (The resident size in `stat`, which the scan has for every
/// member, is no substitute: kernels with per-CPU memory counters report it approximately, and
/// for small processes it misses about their whole anonymous memory.)
fn pile_memory(
    proc: &hostready_host::Root,
    dir: Option<&magic::ProcDir>,
    pids: &[u32],
) -> (u64, String) {
    let n = pids.len();
    if n <= EXACT_MEMORY_MAX {
        let kb = pids.iter().filter_map(|p| proc::private_kb(proc, *p)).sum();
        return (kb, "smaps_rollup".into());
    }
    let (mut anon_kb, mut read) = (0, 0);
    for i in 0..EXACT_MEMORY_MAX {
        if let Some((resident, shared)) = proc::statm_kb(proc, dir, pids[i * n / EXACT_MEMORY_MAX])
        {
            anon_kb += resident.saturating_sub(shared);
            read += 1;
        }
    }
    let kb = (anon_kb * n as u64).checked_div(read).unwrap_or(0);
    (
        kb,
        format!("statm (resident − shared) of {read} of {n} members, scaled to all"),
    )
}

/// Returns true if and only if `p` is an apt or dpkg process (a possible dpkg-lock waiter).
fn is_dpkg_user(p: &proc::Proc) -> bool {
    matches!(
        p.comm.as_str(),
        "dpkg" | "apt" | "apt-get" | "aptitude" | "unattended-upgr" | "dpkg-query"
    )
}
