//! The per-process facts doctor needs from procfs: [`scan`], which reads every process of a
//! procfs once, and the readers of one process's memory. The formats (`stat`, `status`,
//! `smaps_rollup`, `statm`, `cmdline`, `/proc/stat`, `/proc/uptime`) are parsed by
//! `hostready_host::procfs`, their one owner.
//!
//! A scan must stay cheap on a host with thousands of stuck processes, and what costs is the
//! kernel: every procfs file is an open, a read and a close. So a scan reads in passes:
//! 1. `stat` of every process (name, state, parent, start time, resident size): enough to count
//!    processes by name, find zombies and orphans;
//! 2. `cmdline` only of processes whose name occurs often enough to be in a pile
//!    ([`candidate_bar`]), and of `python*` (which may be yum or dnf);
//! 3. `cmdline` and the executable of the candidates' ancestors, which name the piles' sources.
//!
//! Everything else that is read per process happens later and only for the few that findings
//! name ([`Snapshot::fill`]: lock holders and waiters) or the groups that are flagged (memory,
//! the executable of a pile's oldest member). With more than [`PARALLEL_MIN`] processes a
//! one-off scan runs its passes on two threads; a watcher's stays on one.
//!
//! A watcher that scans every minute (the agent) passes a [`Kept`]: the command lines read by
//! the previous scan, each under the identity of the process it was read from, and each
//! process's procfs directory held open. Pass 1 still reads every `stat` (states, parents,
//! names and sizes change, the report shows them all, and it is what tells a pid reused from
//! the one before), through the kept directory so the kernel does not look the pid up again;
//! passes 2 and 3 read a command line only where no kept one belongs to the same process — so
//! on a host whose processes mostly stay, a scan costs one file per process instead of two,
//! and no allocation per process but its name. [`Kept`] says when a kept line is trusted.
//! The pids are listed with `getdents64` into one 64 KiB buffer.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hostready_host::Root;
use hostready_host::procfs::{
    StatLine, parse_btime, parse_cmdline, parse_smaps_private_kb, parse_stat_line, parse_statm,
    parse_status_rss_anon_kb, parse_uptime,
};
use rustix::fd::OwnedFd;
use rustix::fs::{Mode, OFlags, ResolveFlags};
use serde::Serialize;

use crate::magic::ProcDir;

/// From this many processes a scan splits its passes over [`THREADS`] threads.
pub const PARALLEL_MIN: usize = 1000;

/// Threads a big scan uses, at most (fewer when fewer CPUs are available). Two halve the wall
/// time on a 2-core host; more would take cores from a host that is already sick.
pub const THREADS: usize = 2;

/// How many ancestors a pile's parent chain names; pass 3 reads this many.
pub const CHAIN_DEPTH: usize = 5;

/// One user-space process as doctor sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Proc {
    pub pid: u32,
    pub ppid: u32,
    pub comm: String,
    pub state: char,
    /// The executable's path from `/proc/<pid>/exe`, when read and readable (never for
    /// zombies). A scan reads it only for the processes whose names it reports.
    pub exe: Option<String>,
    /// The command line, when read (see `cmdline_read`); shared with what a [`Kept`] holds,
    /// so a scan that reuses a kept line copies nothing.
    pub argv: Arc<[String]>,
    /// True when `argv` was read; a scan reads it only where it can matter (see the module
    /// header), and a process not read is known by its name (`[comm]`) alone.
    pub cmdline_read: bool,
    /// Seconds since the process started.
    pub age_secs: u64,
    /// When the process started, seconds since the epoch, when `btime` is known.
    pub started_at: Option<u64>,
    /// Resident set size in kB (shared pages included); a cheap upper bound.
    pub rss_kb: u64,
}

impl Proc {
    /// Returns a short human name: the executable's base name and its first arguments.
    pub fn short(&self) -> String {
        if self.argv.is_empty() {
            return format!("[{}]", self.comm);
        }
        let mut s = basename(&self.argv[0]).to_string();
        for a in self.argv.iter().skip(1).take(8) {
            s.push(' ');
            s.push_str(a);
        }
        truncate(&s, 100)
    }
}

/// A map keyed by pid. Pids are numbers the kernel hands out, not input anyone chooses, and a
/// watch pass hashes each of thousands several times: SipHash, the default, cost ~3% of a pass
/// on 5,000 processes; foldhash (seeded per map) a fraction of that.
pub type PidMap<V> = HashMap<u32, V, foldhash::fast::RandomState>;

/// A set of pids, hashed as [`PidMap`] is.
pub type PidSet = HashSet<u32, foldhash::fast::RandomState>;

/// A map keyed by a process's name or command, hashed with seeded foldhash too: the keys are
/// chosen by whoever starts a process, but each map has its own random seed, and a process
/// that named thousands of others to collide would be the pile the scan reports anyway.
pub type NameMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Everything a scan of procfs found.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// User-space processes by pid (kernel threads are left out).
    pub procs: PidMap<Proc>,
    /// Seconds since boot when the scan started.
    pub uptime_secs: f64,
    /// Boot time, seconds since the epoch.
    pub btime: Option<u64>,
    /// The kernel's own threads seen (for the record).
    pub kernel_threads: usize,
}

impl Snapshot {
    /// Reads the command line and executable of each of `pids` not read yet: the processes a
    /// finding is about to name (lock holders, waiters and their parents).
    pub fn fill(
        &mut self,
        proc: &Root,
        dir: Option<&ProcDir>,
        pids: impl IntoIterator<Item = u32>,
    ) {
        let mut r = Reader::new(proc, dir);
        for pid in pids {
            if let Some(p) = self.procs.get_mut(&pid) {
                if !p.cmdline_read {
                    read_details(&mut r, p, dir);
                }
            }
        }
    }
}

/// The lowest name count at which a scan reads command lines: a name must occur at least
/// `min_count` times to be in a pile (a pile is a subset of one name's processes). The most
/// common name is always read, so the summary can name the largest group by its command.
pub fn candidate_bar<S>(counts: &HashMap<&str, usize, S>, min_count: usize) -> usize {
    let top = counts.values().copied().max().unwrap_or(0);
    min_count.min(top).max(1)
}

/// Reads every process of `proc`; processes that exit while being read are skipped.
/// `min_count` is the pile-up threshold: command lines are read only where a name occurs that
/// often (see the module header).
pub fn scan(
    proc: &Root,
    dir: Option<&ProcDir>,
    min_count: usize,
) -> Result<Snapshot, hostready_host::FsError> {
    scan_keeping(proc, dir, min_count, None)
}

/// How pass 1 reached a process's `stat`: through its kept directory, one opened now (kept
/// for the next scan), or by path.
enum Via {
    Kept,
    New(OwnedFd),
    Path,
}

/// Like [`scan`], reusing what `kept` holds from the previous scan where it still belongs to
/// the same process — the command line, and the process's open procfs directory, through which
/// `stat` is read without looking the pid up again — and leaving in `kept` those of this scan.
/// The snapshot is the one [`scan`] would have made (tests/incremental.rs holds them equal).
pub fn scan_keeping(
    proc: &Root,
    dir: Option<&ProcDir>,
    min_count: usize,
    mut kept: Option<&mut Kept>,
) -> Result<Snapshot, hostready_host::FsError> {
    let uptime_secs = read_capped(proc, "/uptime", SMALL_CAP)
        .ok()
        .and_then(|t| parse_uptime(&t))
        .unwrap_or(0.0);
    let btime = read_capped(proc, "/stat", STAT_CAP)
        .ok()
        .and_then(|t| parse_btime(&t));
    let ticks = rustix::param::clock_ticks_per_second().max(1);
    let page_kb = rustix::param::page_size() as u64 / 1024;
    let pids = list_pids(proc)?;
    // A watcher (one that keeps state) reads on one thread: it scans every minute and what it
    // must spare is the node's CPU, not its own wall time, and a second thread costs CPU — its
    // own procfs directory, and the kernel's locks taken from two cores (measured on 5,000
    // processes: docs/agent.md). A person waiting for `doctor` gets both threads.
    let keeping = kept.is_some();
    let threads = if pids.len() >= PARALLEL_MIN && !keeping {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(THREADS)
    } else {
        1
    };

    let mut snap = Snapshot {
        uptime_secs,
        btime,
        procs: PidMap::with_capacity_and_hasher(pids.len(), Default::default()),
        ..Snapshot::default()
    };
    // One empty command line shared by every process whose line is not read.
    let empty: Arc<[String]> = Arc::from(Vec::new());
    let clock = Clock {
        uptime_secs,
        btime,
        ticks,
        page_kb,
    };
    // Pass 1: stat of every process.
    if let Some(k) = kept.as_deref_mut() {
        // A watcher's: through each process's kept directory where it has one, each entry
        // updated in place (a map lookup, not a move, per process). Entries of processes no
        // longer listed, or gone before their `stat` was read, are dropped after it.
        k.pass = k.pass.wrapping_add(1);
        let pass = k.pass;
        let mut r = Reader::new(proc, dir);
        // New directories are opened within what the descriptor limit leaves, counting every
        // one kept from the scan before (those of exited processes close after the listing).
        let mut budget = if r.dir.is_some() {
            dir_budget().saturating_sub(k.dirs)
        } else {
            0
        };
        for &pid in &pids {
            let entry = k.entries.get_mut(&pid);
            let kept_dir = entry.as_ref().and_then(|e| e.dir.as_ref());
            let Some((n, via)) = read_stat(&mut r, &mut budget, pid, kept_dir) else {
                continue;
            };
            let Some(l) = r.text(n).and_then(parse_stat_line) else {
                continue;
            };
            let comm = match entry {
                Some(e) => {
                    // A kept line stays while the identity does: the same name, start time
                    // and argument range (see `Kept`).
                    if e.id.comm != l.comm
                        || e.id.start != l.starttime
                        || e.id.arg_range != l.arg_range
                    {
                        e.id = Identity::of(&l);
                        e.argv = None;
                    }
                    match via {
                        Via::Kept => {}
                        Via::New(d) => e.dir = Some(d),
                        Via::Path => e.dir = None,
                    }
                    e.pass = pass;
                    e.id.comm.clone()
                }
                None => {
                    let dir = match via {
                        Via::New(d) => Some(d),
                        Via::Kept | Via::Path => None,
                    };
                    let id = Identity::of(&l);
                    let comm = id.comm.clone();
                    k.entries.insert(
                        pid,
                        Entry {
                            id,
                            argv: None,
                            dir,
                            pass,
                        },
                    );
                    comm
                }
            };
            clock.add(&mut snap, pid, comm, &l, &empty);
        }
        k.entries.retain(|_, e| e.pass == pass);
    } else {
        let seen = for_each(proc, dir, &pids, threads, |r, _, &pid| {
            let n = r.read_len(pid, "stat", STAT_LINE_BYTES)?;
            Some((pid, parse_stat_line(r.text(n)?)?.to_stat()))
        });
        for (pid, mut st) in seen {
            let comm = std::mem::take(&mut st.comm);
            clock.add(&mut snap, pid, comm, &st, &empty);
        }
    }
    let entries = kept.as_deref().map(|k| &k.entries);
    let kept_line = |pid: &u32| entries.and_then(|m| m.get(pid)?.argv.clone());

    // Pass 2: command lines of the processes that can be in a pile.
    let mut counts: NameMap<&str, usize> = NameMap::default();
    for p in snap.procs.values() {
        *counts.entry(p.comm.as_str()).or_default() += 1;
    }
    let bar = candidate_bar(&counts, min_count);
    let mut candidates: Vec<u32> = snap
        .procs
        .values()
        .filter(|p| {
            p.state != 'Z'
                && (p.comm.starts_with("python")
                    || counts.get(p.comm.as_str()).is_some_and(|&n| n >= bar))
        })
        .map(|p| p.pid)
        .collect();
    candidates.sort_unstable();
    let mut to_read = Vec::with_capacity(candidates.len());
    for &pid in &candidates {
        match kept_line(&pid) {
            Some(argv) => {
                if let Some(p) = snap.procs.get_mut(&pid) {
                    p.argv = argv;
                    p.cmdline_read = true;
                }
            }
            None => to_read.push((pid, entries.and_then(|m| m.get(&pid)?.dir.as_ref()))),
        }
    }
    let argvs = for_each(proc, dir, &to_read, threads, |r, _, &(pid, d)| {
        let n = match d {
            Some(d) => r.read_in(d, "cmdline", CMDLINE_BYTES),
            None => r.read_len(pid, "cmdline", CMDLINE_BYTES),
        }?;
        Some((pid, Arc::<[String]>::from(parse_cmdline(&r.buf[..n]))))
    });
    drop(to_read);
    // The lines read now, which the kept entries may take.
    let mut read_now = Vec::with_capacity(argvs.len());
    for (pid, argv) in argvs {
        if let Some(p) = snap.procs.get_mut(&pid) {
            p.argv = argv;
            p.cmdline_read = true;
            read_now.push(pid);
        }
    }

    // Pass 3: the candidates' ancestors, which name where a pile comes from.
    let mut ancestors = PidSet::default();
    for &pid in &candidates {
        let mut at = snap.procs.get(&pid).map_or(0, |p| p.ppid);
        for _ in 0..CHAIN_DEPTH {
            if at == 0 || !ancestors.insert(at) {
                break;
            }
            at = snap.procs.get(&at).map_or(0, |p| p.ppid);
        }
    }
    if !keeping {
        snap.fill(proc, dir, ancestors);
        return Ok(snap);
    }
    let mut ancestors: Vec<u32> = ancestors.into_iter().collect();
    ancestors.sort_unstable();
    let mut r = Reader::new(proc, dir);
    for pid in ancestors {
        let Some(p) = snap.procs.get_mut(&pid) else {
            continue;
        };
        if p.cmdline_read {
            continue;
        }
        match kept_line(&pid) {
            // What `read_details` does, with the kept line for the read one.
            Some(argv) => {
                p.argv = argv;
                p.cmdline_read = true;
                if p.state != 'Z' && p.exe.is_none() {
                    p.exe = dir.and_then(|d| d.exe(p.pid));
                }
            }
            None => {
                read_details(&mut r, p, dir);
                read_now.push(pid);
            }
        }
    }
    if let Some(k) = kept {
        k.keep(&snap, read_now);
    }
    Ok(snap)
}

/// What turns a `stat` line into a [`Proc`]: the clock of the scan.
struct Clock {
    uptime_secs: f64,
    btime: Option<u64>,
    ticks: u64,
    page_kb: u64,
}

impl Clock {
    /// Adds the process `pid` of `stat` fields `st` to `snap` under the name `comm`, or counts
    /// it as a kernel thread.
    fn add<C>(
        &self,
        snap: &mut Snapshot,
        pid: u32,
        comm: String,
        st: &hostready_host::procfs::Stat<C>,
        empty: &Arc<[String]>,
    ) {
        // By the kernel's own flag, never by pid: in a pid namespace (a container's procfs)
        // pid 2 and its children are ordinary processes, and kthreadd has the flag too.
        if st.is_kernel_thread() {
            snap.kernel_threads += 1;
            return;
        }
        let start_secs = st.starttime / self.ticks;
        snap.procs.insert(
            pid,
            Proc {
                pid,
                ppid: u32::try_from(st.ppid).unwrap_or(0),
                comm,
                state: st.state,
                exe: None,
                argv: empty.clone(),
                cmdline_read: false,
                age_secs: (self.uptime_secs as u64).saturating_sub(start_secs),
                started_at: self.btime.map(|b| b + start_secs),
                rss_kb: st.rss_pages * self.page_kb,
            },
        );
    }
}

/// The most bytes read of one `stat` line: the kernel's is under 400 (52 numbers and a name
/// of at most 64 bytes).
const STAT_LINE_BYTES: usize = 1024;

/// How many pids one `getdents64` may list: 64 KiB holds ~2,700 entries of `/proc`, so a
/// listing of 5,000 processes is two or three calls (the 32 KiB of a `read_dir` made twice as
/// many, at 0.8 µs per process in the kernel against 0.4 measured).
const LISTING_BYTES: usize = 64 << 10;

/// Reads the `stat` of `pid` for a watcher's pass 1 into the reader's buffer: through
/// `kept_dir` when there is one and the process is still the one it was opened on, else
/// through a directory opened now (while `budget` lasts, to be kept) or by path. Returns the
/// length read and how.
fn read_stat(
    r: &mut Reader<'_>,
    budget: &mut usize,
    pid: u32,
    kept_dir: Option<&OwnedFd>,
) -> Option<(usize, Via)> {
    if let Some(n) = kept_dir.and_then(|d| r.read_in(d, "stat", STAT_LINE_BYTES)) {
        return Some((n, Via::Kept));
    }
    if *budget > 0 {
        if let Some(d) = r.open_pid_dir(pid) {
            *budget -= 1;
            return Some((r.read_in(&d, "stat", STAT_LINE_BYTES)?, Via::New(d)));
        }
    }
    Some((r.read_len(pid, "stat", STAT_LINE_BYTES)?, Via::Path))
}

/// Lists the pids of `proc` (its numeric names) without allocating per entry.
fn list_pids(proc: &Root) -> Result<Vec<u32>, hostready_host::FsError> {
    let fd = proc.open_dir("/")?;
    let mut buf = Vec::with_capacity(LISTING_BYTES);
    let mut iter = rustix::fs::RawDir::new(&fd, buf.spare_capacity_mut());
    let mut pids = Vec::new();
    while let Some(entry) = iter.next() {
        let entry = entry.map_err(|e| hostready_host::FsError {
            path: "/".into(),
            root: proc.location().to_path_buf(),
            source: e.into(),
        })?;
        if let Some(pid) = std::str::from_utf8(entry.file_name().to_bytes())
            .ok()
            .and_then(|n| n.parse().ok())
        {
            pids.push(pid);
        }
    }
    Ok(pids)
}

/// The most process directories a [`Kept`] holds open. Each costs one descriptor and the
/// kernel memory it pins, charged to the pod's memory cgroup and not reclaimable while it is
/// open: its `struct file` (0.22 KiB, measured on 5,003) and, where this process was the first
/// to look `<pid>/` up, the directory's dentry and inode (~0.9 KiB: each level of
/// `<pid>/task/<pid>/` measured so). So 8,192 pin at most ~9 MiB of the agent's 32Mi; at 15,000
/// processes its RSS was 19.8 MiB (bench/agent-watch.sh, docs/agent.md), and twice as many
/// directories could have left the cgroup nothing to reclaim. Past it, processes are read by
/// path, as without one.
pub const KEPT_DIRS_MAX: usize = 8_192;

/// Descriptors left to the rest of the process whatever it keeps: the agent's sockets, files
/// a pass opens, the runner's pipes.
pub const FD_RESERVE: u64 = 1024;

/// How many process directories may be open at once: [`KEPT_DIRS_MAX`], or fewer when the
/// descriptor limit (`RLIMIT_NOFILE`'s soft value) leaves less above [`FD_RESERVE`].
fn dir_budget() -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    let room = limit.map_or(u64::MAX, |l| l.saturating_sub(FD_RESERVE));
    usize::try_from(room)
        .unwrap_or(usize::MAX)
        .min(KEPT_DIRS_MAX)
}

/// The most bytes of command lines a [`Kept`] holds (each line counted by its arguments'
/// lengths plus [`KEPT_ENTRY_BYTES`]). 4 MiB keeps ~50,000 typical lines (`rpm -q
/// iscsi-initiator-utils` is 26 bytes); beyond it new lines are not kept but read again
/// next scan, so the cap bounds memory, never correctness.
pub const KEPT_MAX_BYTES: usize = 4 << 20;

/// What one kept line costs besides its text: the map entry, the identity and the vector.
pub const KEPT_ENTRY_BYTES: usize = 96;

/// What one scan read, for the next ([`scan_keeping`]), per process: its identity from `stat`
/// — pid, start time, name and where its command line lies in its memory — and under it the
/// command line read and the process's procfs directory, held open.
///
/// A command line is trusted while the identity stays: a pid reused by a new process has a
/// new start time; an `execve` gives a new name and a new argument range (a new stack); either
/// makes the line be read again. What no identity shows is a process rewriting its own
/// arguments in place, within the same range (`setproctitle`): it is seen with the line first
/// read until it execs or exits — the same as a scan that happened to read it before the
/// rewrite. Lines are capped at [`KEPT_MAX_BYTES`].
///
/// A kept directory (an `O_PATH` descriptor of `<pid>/`) is how the next scan reads `stat`:
/// relative to it, the kernel skips looking the pid up (on 5,100 processes 28 ms of kernel
/// time a pass instead of 43). On a procfs it stays bound to the process it was opened on —
/// once that exits, reads through it fail and the pid is read by path again, so a reused pid
/// is never read through the old process's directory. `stat` itself is still read every scan
/// (states, parents, names, memory change), never kept. At most [`KEPT_DIRS_MAX`].
///
/// Entries of processes no longer listed are dropped at each scan.
#[derive(Debug, Default)]
pub struct Kept {
    entries: PidMap<Entry>,
    /// How many scans have used it: the entries the current one did not list are dropped.
    pass: u64,
    lines: usize,
    dirs: usize,
    bytes: usize,
}

#[derive(Debug)]
struct Entry {
    id: Identity,
    argv: Option<Arc<[String]>>,
    dir: Option<OwnedFd>,
    /// The scan that last listed the process ([`Kept::pass`]).
    pass: u64,
}

impl Kept {
    /// Returns how many command lines are kept.
    pub fn len(&self) -> usize {
        self.lines
    }

    /// Returns true if and only if no command line is kept.
    pub fn is_empty(&self) -> bool {
        self.lines == 0
    }

    /// Returns the bytes kept, as counted against [`KEPT_MAX_BYTES`].
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Returns how many process directories are held open.
    pub fn dirs(&self) -> usize {
        self.dirs
    }

    /// Keeps the lines this scan read (`read_now`) of live processes (an empty line is a
    /// process exiting, or a zombie: read again) in their entries, within the cap. A line kept
    /// from before and not needed by this scan stays while its process keeps its identity.
    fn keep(&mut self, snap: &Snapshot, mut read_now: Vec<u32>) {
        // In pid order, so which lines a full cap leaves out does not hang on hashing.
        read_now.sort_unstable();
        let cost = |argv: &[String]| KEPT_ENTRY_BYTES + argv.iter().map(String::len).sum::<usize>();
        let mut bytes: usize = self
            .entries
            .values()
            .filter_map(|e| e.argv.as_deref())
            .map(cost)
            .sum();
        for pid in read_now {
            let (Some(p), Some(e)) = (snap.procs.get(&pid), self.entries.get_mut(&pid)) else {
                continue;
            };
            if e.argv.is_some() || !p.cmdline_read || p.argv.is_empty() || p.state == 'Z' {
                continue;
            }
            let c = cost(&p.argv);
            if bytes + c > KEPT_MAX_BYTES {
                continue;
            }
            bytes += c;
            e.argv = Some(p.argv.clone());
        }
        // An entry with neither a line nor a directory would keep nothing.
        self.entries
            .retain(|_, e| e.argv.is_some() || e.dir.is_some());
        self.lines = self.entries.values().filter(|e| e.argv.is_some()).count();
        self.dirs = self.entries.values().filter(|e| e.dir.is_some()).count();
        self.bytes = bytes;
    }
}

/// Who a process is, as far as its command line goes (see [`Kept`]): its start time, name
/// and argument range from `stat` (`parse_stat_arg_range`).
#[derive(Debug)]
struct Identity {
    start: u64,
    comm: String,
    arg_range: Option<(u64, u64)>,
}

impl Identity {
    fn of(l: &StatLine<'_>) -> Identity {
        Identity {
            start: l.starttime,
            comm: l.comm.to_string(),
            arg_range: l.arg_range,
        }
    }
}

/// How much of a command line a scan reads: grouping uses the first 16 arguments only.
const CMDLINE_BYTES: usize = 4096;

fn read_details(r: &mut Reader<'_>, p: &mut Proc, dir: Option<&ProcDir>) {
    if let Some(b) = r.read(p.pid, "cmdline", CMDLINE_BYTES) {
        p.argv = parse_cmdline(b).into();
    }
    p.cmdline_read = true;
    if p.state != 'Z' && p.exe.is_none() {
        p.exe = dir.and_then(|d| d.exe(p.pid));
    }
}

/// Runs `f` for every item on `threads` threads, which take blocks of items from a shared
/// counter (so a thread the scheduler holds back does less), and collects what it returns.
/// The work is independent per process and its cost is in the kernel, so two threads halve
/// the wall time where a second core is free.
fn for_each<I: Sync, T: Send>(
    proc: &Root,
    dir: Option<&ProcDir>,
    items: &[I],
    threads: usize,
    f: impl Fn(&mut Reader<'_>, usize, &I) -> Option<T> + Sync,
) -> Vec<T> {
    const BLOCK: usize = 256;
    let next = AtomicUsize::new(0);
    let work = || {
        // Each thread opens the procfs directory itself. With a shared one, every `openat2`
        // relative to it takes and drops a reference on the same open file from two cores
        // (a process with threads shares its descriptor table, so the kernel may not skip the
        // count): measured, that cost 45% more CPU than one thread for no gain in wall time.
        let own = if threads > 1 {
            ProcDir::open(proc.location()).ok()
        } else {
            None
        };
        let mut r = Reader::new(proc, own.as_ref().or(dir));
        let mut out = Vec::new();
        loop {
            let from = next.fetch_add(BLOCK, Ordering::Relaxed);
            let to = (from + BLOCK).min(items.len());
            let Some(block) = items.get(from..to) else {
                break;
            };
            if block.is_empty() {
                break;
            }
            out.extend(
                block
                    .iter()
                    .enumerate()
                    .filter_map(|(i, item)| f(&mut r, from + i, item)),
            );
        }
        out
    };
    if threads <= 1 {
        return work();
    }
    std::thread::scope(|s| {
        // A thread the system refuses (a node out of pids: the incident itself) is one reader
        // fewer, never a panic: the calling thread takes its share.
        let others: Vec<_> = (1..threads)
            .filter_map(|_| std::thread::Builder::new().spawn_scoped(s, work).ok())
            .collect();
        let mut all = work();
        for h in others {
            // A panicking reader thread loses its share; the binary aborts on panic anyway.
            all.extend(h.join().unwrap_or_default());
        }
        all
    })
}

/// Reads small procfs files of one process after another through one reused path and buffer.
///
/// Where the kernel has `openat2`, files are opened relative to the procfs directory with
/// `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` (`<pid>/stat` has no link in it, so this cannot
/// leave the procfs), or relative to a process's own directory opened so; elsewhere through
/// the rooted [`Root`], which resolves links itself.
struct Reader<'a> {
    proc: &'a Root,
    dir: Option<&'a OwnedFd>,
    path: String,
    buf: Vec<u8>,
}

/// How a scan opens procfs files: never past the directory given, never through a link.
const RESOLVE: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS);

impl<'a> Reader<'a> {
    fn new(proc: &'a Root, dir: Option<&'a ProcDir>) -> Reader<'a> {
        Reader {
            proc,
            dir: dir.filter(|_| proc.uses_openat2()).map(ProcDir::fd),
            path: String::with_capacity(32),
            buf: Vec::new(),
        }
    }

    /// Reads the first `cap` bytes of `<pid>/<file>` in one `read(2)`. procfs regenerates a
    /// file on every read, and `read_to_end` would issue three or four; with thousands of
    /// processes the syscalls are the cost. A read shorter than the buffer is the whole file
    /// (seq_file); a command line longer than `cap` is cut, which grouping tolerates.
    fn read(&mut self, pid: u32, file: &str, cap: usize) -> Option<&[u8]> {
        let n = self.read_len(pid, file, cap)?;
        Some(&self.buf[..n])
    }

    /// Like [`Reader::read`], as text (procfs text is ASCII but for names: those are lossy).
    fn read_str(&mut self, pid: u32, file: &str, cap: usize) -> Option<&str> {
        let n = self.read_len(pid, file, cap)?;
        self.text(n)
    }

    /// The first `n` bytes of the buffer as text (lossy where a name is not UTF-8).
    fn text(&mut self, mut n: usize) -> Option<&str> {
        if std::str::from_utf8(&self.buf[..n]).is_err() {
            let s = String::from_utf8_lossy(&self.buf[..n]).into_owned();
            n = s.len();
            self.buf.clear();
            self.buf.extend_from_slice(s.as_bytes());
        }
        std::str::from_utf8(&self.buf[..n]).ok()
    }

    // openat2 relative to the procfs directory a Root was opened on, RESOLVE_BENEATH: the
    // hot path of a scan of thousands of processes (docs/bench-doctor.md), never outside it.
    #[allow(clippy::disallowed_methods)]
    fn read_len(&mut self, pid: u32, file: &str, cap: usize) -> Option<usize> {
        self.path.clear();
        let _ = write!(self.path, "{pid}/{file}");
        let fd: OwnedFd = match self.dir {
            Some(dir) => {
                rustix::fs::openat2(dir, self.path.as_str(), FILE, Mode::empty(), RESOLVE).ok()?
            }
            None => self.proc.open_file(&self.path).ok()?.into(),
        };
        self.read_fd(&fd, cap)
    }

    /// Reads the first `cap` bytes of `file` of the process whose directory `pid_dir` is, as
    /// [`Reader::read_len`] does by path.
    // A plain openat, not openat2: `file` is one of this module's names ("stat", "cmdline"),
    // one component with no `/`, looked up in a directory of a verified procfs, where it is
    // never a link (O_NOFOLLOW would refuse one); the resolve flags would guard nothing and
    // cost ~0.6 ms a pass on 5,000 processes (bench/procfs-cost.c).
    #[allow(clippy::disallowed_methods)]
    fn read_in(&mut self, pid_dir: &OwnedFd, file: &'static str, cap: usize) -> Option<usize> {
        debug_assert!(!file.contains('/') && file != ".." && file != ".");
        let fd = rustix::fs::openat(pid_dir, file, FILE | OFlags::NOFOLLOW, Mode::empty()).ok()?;
        self.read_fd(&fd, cap)
    }

    /// Opens `<pid>/` for [`Kept`] (`O_PATH`: nothing of the process is read by opening it).
    /// Not `<pid>/task/<pid>/`, the main thread's, though its `stat` costs the kernel ~5% less
    /// (no sum over the threads): holding it pins two more procfs dentries and inodes per
    /// process, and in the agent's 32Mi memory cgroup on 5,000 processes the kernel memory
    /// charged rose to 27.4 MiB and the cgroup hit its limit (bench/agent-watch.sh). `None`
    /// without `openat2`, where a kept directory is not used.
    #[allow(clippy::disallowed_methods)]
    fn open_pid_dir(&mut self, pid: u32) -> Option<OwnedFd> {
        let dir = self.dir?;
        self.path.clear();
        let _ = write!(self.path, "{pid}");
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        rustix::fs::openat2(dir, self.path.as_str(), flags, Mode::empty(), RESOLVE).ok()
    }

    fn read_fd(&mut self, fd: &OwnedFd, cap: usize) -> Option<usize> {
        if self.buf.len() < cap {
            self.buf.resize(cap, 0);
        }
        rustix::io::read(fd, &mut self.buf[..cap]).ok()
    }
}

/// How a scan opens a procfs file to read it.
const FILE: OFlags = OFlags::RDONLY
    .union(OFlags::NOCTTY)
    .union(OFlags::NONBLOCK)
    .union(OFlags::CLOEXEC);

/// Returns (resident, shared) memory of `pid` in kB from `statm`: O(1) in the kernel, unlike
/// `smaps_rollup`, which walks every mapping. Resident − shared is anonymous resident memory,
/// which counts copy-on-write pages shared after `fork` once per process, so it errs high.
pub fn statm_kb(proc: &Root, dir: Option<&ProcDir>, pid: u32) -> Option<(u64, u64)> {
    let mut r = Reader::new(proc, dir);
    let (res, shared) = parse_statm(r.read_str(pid, "statm", 256)?)?;
    let page_kb = rustix::param::page_size() as u64 / 1024;
    Some((res * page_kb, shared * page_kb))
}

/// Returns the private memory of `pid` in kB: `smaps_rollup` where readable, else `RssAnon`.
pub fn private_kb(proc: &Root, pid: u32) -> Option<u64> {
    read_capped(proc, &format!("/{pid}/smaps_rollup"), SMALL_CAP)
        .ok()
        .and_then(|t| parse_smaps_private_kb(&t))
        .or_else(|| {
            read_capped(proc, &format!("/{pid}/status"), SMALL_CAP)
                .ok()
                .and_then(|t| parse_status_rss_anon_kb(&t))
        })
}

/// The most `/proc/locks` doctor reads: 4 MiB, some 70,000 locks. A longer table is not
/// parsed (the lock findings say so): its memory would grow with the host's.
pub const LOCKS_CAP: usize = 4 << 20;

/// The most doctor reads of a small per-process or system file (`smaps_rollup`, `status`,
/// `fdinfo/N`, `uptime`): real ones are a few KiB.
pub const SMALL_CAP: usize = 64 << 10;

/// The most doctor reads of `/proc/stat` (one `cpuN` line per CPU and the interrupt counts:
/// a few hundred KiB on the largest machines).
pub const STAT_CAP: usize = 1 << 20;

/// Why a capped read returned nothing.
#[derive(Debug, thiserror::Error)]
pub enum CappedError {
    #[error(transparent)]
    Fs(#[from] hostready_host::FsError),
    #[error("{path}: cannot read it")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: longer than {cap} bytes, which no kernel writes there; not read")]
    TooLarge { path: String, cap: usize },
}

/// Reads a file of a procfs as text, refusing one longer than `cap` bytes: memory stays
/// bounded whatever a `--proc` directory holds.
pub fn read_capped(proc: &Root, path: &str, cap: usize) -> Result<String, CappedError> {
    use std::io::Read;
    let file = proc.open_file(path)?;
    let mut buf = Vec::new();
    file.take(cap as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|source| CappedError::Read {
            path: path.to_string(),
            source,
        })?;
    if buf.len() > cap {
        return Err(CappedError::TooLarge {
            path: path.to_string(),
            cap,
        });
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Returns the last component of a path-like string.
pub fn basename(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

/// Cuts `s` to at most `max` characters, marking the cut with `…`.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_are_read_where_a_pile_can_be() {
        let counts: HashMap<&str, usize> = [("sleep", 5000), ("bash", 3)].into_iter().collect();
        assert_eq!(candidate_bar(&counts, 10), 10);
        // Nothing reaches the threshold: the most common name is still read, for the summary.
        let counts: HashMap<&str, usize> = [("bash", 3), ("sshd", 2)].into_iter().collect();
        assert_eq!(candidate_bar(&counts, 10), 3);
        assert_eq!(candidate_bar(&HashMap::new(), 10), 1);
    }

    #[test]
    fn scan_of_this_host_reads_names_and_fills_on_demand() {
        let root = Root::open("/proc").unwrap();
        let dir = ProcDir::open(std::path::Path::new("/proc")).unwrap();
        let me = std::process::id();
        // A threshold no name reaches but the most common: this test's process may not be read.
        let mut snap = scan(&root, Some(&dir), usize::MAX).unwrap();
        let p = &snap.procs[&me];
        assert!(!p.comm.is_empty());
        assert!(p.age_secs < 3600 * 24 * 365);
        snap.fill(&root, Some(&dir), [me]);
        let p = &snap.procs[&me];
        assert!(p.cmdline_read && !p.argv.is_empty(), "{p:?}");
        assert!(p.exe.is_some());
        // With a threshold of 1 every live process is a candidate.
        let snap = scan(&root, Some(&dir), 1).unwrap();
        assert!(snap.procs[&me].cmdline_read);
    }

    #[test]
    fn two_threads_read_everything_once() {
        let root = Root::open("/proc").unwrap();
        let dir = ProcDir::open(std::path::Path::new("/proc")).unwrap();
        let me = std::process::id();
        let pids: Vec<u32> = (0..1500).map(|_| me).collect();
        let got = for_each(&root, Some(&dir), &pids, 2, |r, _, &pid| {
            hostready_host::procfs::parse_stat(r.read_str(pid, "stat", 1024)?)
        });
        assert_eq!(got.len(), 1500);
        assert!(got.iter().all(|s| s.comm == got[0].comm));
        // Without openat2 (or a procfs directory) reads go through the rooted walker.
        let walker = Root::open_without_openat2("/proc").unwrap();
        let got = for_each(&walker, None, &pids[..3], 1, |r, _, &pid| {
            parse_cmdline(r.read(pid, "cmdline", 4096)?)
                .first()
                .cloned()
        });
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn short_names() {
        let p = Proc {
            pid: 1,
            ppid: 0,
            comm: "rpm".into(),
            state: 'S',
            exe: None,
            argv: ["/usr/bin/rpm".into(), "-q".into(), "foo".into()].into(),
            cmdline_read: true,
            age_secs: 0,
            started_at: None,
            rss_kb: 0,
        };
        assert_eq!(p.short(), "rpm -q foo");
        assert_eq!(truncate("abcdef", 4), "abc…");
    }
}
