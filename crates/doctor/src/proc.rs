//! The per-process facts doctor needs from procfs: pure parsers for `stat`, `status`,
//! `smaps_rollup`, `cmdline`, `/proc/stat` and `/proc/uptime`, and [`scan`], which reads every
//! process of a procfs once.
//!
//! A scan must stay cheap on a host with thousands of stuck processes, so it reads only `stat`
//! and `cmdline` per process (two small files) plus the executable link; memory detail
//! (`smaps_rollup`) is read later, only for the groups that are flagged.

use std::collections::HashMap;

use hostready_host::Root;
use serde::Serialize;

use crate::magic::ProcDir;

/// The kernel marks its own threads with this flag in `/proc/<pid>/stat` field 9
/// (`PF_KTHREAD`, include/linux/sched.h).
const PF_KTHREAD: u64 = 0x0020_0000;

/// The fields of `/proc/<pid>/stat` doctor uses (proc(5) numbering in the comments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatFields {
    /// (2) the command name without parentheses; may contain spaces and `)`.
    pub comm: String,
    /// (3) the state letter.
    pub state: char,
    /// (4) the parent's pid.
    pub ppid: u32,
    /// (9) the kernel flags word.
    pub flags: u64,
    /// (22) start time after boot, in clock ticks.
    pub starttime: u64,
    /// (24) resident set size in pages (shared pages included).
    pub rss_pages: u64,
}

/// Parses `/proc/<pid>/stat`; the command name ends at the *last* `)`, since it may contain
/// spaces and parentheses itself.
pub fn parse_stat(text: &str) -> Option<StatFields> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // `rest[0]` is field 3.
    let field = |n: usize| rest.get(n - 3).copied();
    Some(StatFields {
        comm,
        state: field(3)?.chars().next()?,
        ppid: field(4)?.parse().ok()?,
        flags: field(9)?.parse().ok()?,
        starttime: field(22)?.parse().ok()?,
        rss_pages: field(24)?.parse().ok()?,
    })
}

/// Splits `/proc/<pid>/cmdline` (NUL-separated, usually NUL-terminated) into arguments.
pub fn parse_cmdline(bytes: &[u8]) -> Vec<String> {
    let bytes = bytes.strip_suffix(b"\0").unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// Returns `btime` (boot time, seconds since the epoch) from `/proc/stat`.
pub fn parse_btime(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())
}

/// Returns the first number of `/proc/uptime`: seconds since boot.
pub fn parse_uptime(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse().ok()
}

/// Returns private memory in kB from `smaps_rollup`: `Private_Clean` + `Private_Dirty`.
pub fn parse_smaps_private_kb(text: &str) -> Option<u64> {
    let mut clean = None;
    let mut dirty = None;
    for l in text.lines() {
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        let n = || v.split_whitespace().next()?.parse::<u64>().ok();
        match k {
            "Private_Clean" => clean = n(),
            "Private_Dirty" => dirty = n(),
            _ => {}
        }
    }
    Some(clean? + dirty?)
}

/// Returns `RssAnon` in kB from `/proc/<pid>/status`: anonymous resident memory, which is
/// nearly all of a waiting process's private memory; used where `smaps_rollup` is unreadable.
pub fn parse_status_rss_anon_kb(text: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        l.strip_prefix("RssAnon:")?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}

/// One user-space process as doctor sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Proc {
    pub pid: u32,
    pub ppid: u32,
    pub comm: String,
    pub state: char,
    /// The executable's path from `/proc/<pid>/exe`, when readable (not for zombies).
    pub exe: Option<String>,
    pub argv: Vec<String>,
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

/// Everything one pass over procfs found.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// User-space processes by pid (kernel threads are left out).
    pub procs: HashMap<u32, Proc>,
    /// Seconds since boot when the scan started.
    pub uptime_secs: f64,
    /// Boot time, seconds since the epoch.
    pub btime: Option<u64>,
    /// The kernel's own threads seen (for the record).
    pub kernel_threads: usize,
}

/// Reads every process of `proc` once; processes that exit while being read are skipped.
pub fn scan(proc: &Root, dir: Option<&ProcDir>) -> Result<Snapshot, hostready_host::FsError> {
    let uptime_secs = proc
        .read_to_string("/uptime")
        .ok()
        .and_then(|t| parse_uptime(&t))
        .unwrap_or(0.0);
    let btime = proc
        .read_to_string("/stat")
        .ok()
        .and_then(|t| parse_btime(&t));
    let ticks = rustix::param::clock_ticks_per_second().max(1);
    let mut snap = Snapshot {
        uptime_secs,
        btime,
        ..Snapshot::default()
    };
    for name in proc.read_dir("/")? {
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Some(st) = read_small(proc, &format!("/{pid}/stat"), 1024)
            .and_then(|b| parse_stat(&String::from_utf8_lossy(&b)))
        else {
            continue;
        };
        if st.flags & PF_KTHREAD != 0 || pid == 2 || st.ppid == 2 {
            snap.kernel_threads += 1;
            continue;
        }
        let argv = read_small(proc, &format!("/{pid}/cmdline"), CMDLINE_BYTES)
            .map(|b| parse_cmdline(&b))
            .unwrap_or_default();
        let exe = if st.state == 'Z' {
            None
        } else {
            dir.and_then(|d| d.exe(pid))
        };
        let start_secs = st.starttime / ticks;
        snap.procs.insert(
            pid,
            Proc {
                pid,
                ppid: st.ppid,
                comm: st.comm,
                state: st.state,
                exe,
                argv,
                age_secs: (uptime_secs as u64).saturating_sub(start_secs),
                started_at: btime.map(|b| b + start_secs),
                rss_kb: st.rss_pages * (rustix::param::page_size() as u64 / 1024),
            },
        );
    }
    Ok(snap)
}

/// How much of a command line a scan reads: grouping uses the first 16 arguments only.
const CMDLINE_BYTES: usize = 4096;

/// Reads the first `cap` bytes of a procfs file in one `read(2)`. procfs regenerates a file on
/// every read, and `read_to_end` would issue three or four; with thousands of processes the
/// syscalls are the cost. A read shorter than the buffer is the whole file (seq_file); a
/// command line longer than `cap` is cut, which grouping tolerates.
fn read_small(proc: &Root, path: &str, cap: usize) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut f = proc.open_file(path).ok()?;
    let mut buf = vec![0u8; cap];
    let n = f.read(&mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

/// Returns anonymous resident memory of `pid` in kB from `statm` (resident − shared pages):
/// O(1) in the kernel, unlike `smaps_rollup`, which walks every mapping. It counts
/// copy-on-write pages shared after `fork` once per process, so it errs high.
pub fn statm_anon_kb(proc: &Root, pid: u32) -> Option<u64> {
    let b = read_small(proc, &format!("/{pid}/statm"), 256)?;
    let t = String::from_utf8_lossy(&b);
    let mut f = t.split_whitespace().skip(1).map(|n| n.parse::<u64>().ok());
    let (resident, shared) = (f.next()??, f.next()??);
    Some(resident.saturating_sub(shared) * (rustix::param::page_size() as u64 / 1024))
}

/// Returns the private memory of `pid` in kB: `smaps_rollup` where readable, else `RssAnon`.
pub fn private_kb(proc: &Root, pid: u32) -> Option<u64> {
    proc.read_to_string(format!("/{pid}/smaps_rollup"))
        .ok()
        .and_then(|t| parse_smaps_private_kb(&t))
        .or_else(|| {
            proc.read_to_string(format!("/{pid}/status"))
                .ok()
                .and_then(|t| parse_status_rss_anon_kb(&t))
        })
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

    // A real /proc/<pid>/stat of `rpm -q` waiting on a locked rpmdb.sqlite (Debian 12, 6.18).
    const RPM_STAT: &str = "6743 (rpm) S 6740 6735 5624 0 -1 4194560 412 0 0 0 0 0 0 0 20 0 1 0 36105 12537856 612 18446744073709551615 94520 94521 140 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";

    #[test]
    fn stat_of_waiting_rpm() {
        let s = parse_stat(RPM_STAT).unwrap();
        assert_eq!(s.comm, "rpm");
        assert_eq!(s.state, 'S');
        assert_eq!(s.ppid, 6740);
        assert_eq!(s.starttime, 36105);
        assert_eq!(s.rss_pages, 612);
        assert_eq!(s.flags & PF_KTHREAD, 0);
    }

    #[test]
    fn stat_kernel_thread_and_hostile_comm() {
        let k = "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 1 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0";
        assert_ne!(parse_stat(k).unwrap().flags & PF_KTHREAD, 0);
        let h = "7 (a) b) (c) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0";
        let s = parse_stat(h).unwrap();
        assert_eq!(s.comm, "a) b) (c");
        assert_eq!(s.state, 'Z');
        assert_eq!(s.starttime, 99);
        assert!(parse_stat("garbage").is_none());
        assert!(parse_stat("1 (x) S 0").is_none());
    }

    #[test]
    fn cmdline_forms() {
        assert_eq!(
            parse_cmdline(b"rpm\0-q\0open-iscsi\0"),
            ["rpm", "-q", "open-iscsi"]
        );
        assert_eq!(
            parse_cmdline(b"nginx: worker process"),
            ["nginx: worker process"]
        );
        assert!(parse_cmdline(b"").is_empty());
    }

    #[test]
    fn proc_stat_btime_and_uptime() {
        let t =
            "cpu  10 0 5 100 0 0 0 0 0 0\nintr 1 2\nctxt 42\nbtime 1764380000\nprocesses 7000\n";
        assert_eq!(parse_btime(t), Some(1_764_380_000));
        assert_eq!(parse_uptime("361.05 700.10\n"), Some(361.05));
        assert_eq!(parse_btime("cpu 1\n"), None);
    }

    #[test]
    fn smaps_rollup_and_status_of_waiting_rpm() {
        let smaps = "5638e223f000-7ffee0c23000 ---p 00000000 00:00 0                          [rollup]\nRss:                1756 kB\nPss:                 434 kB\nShared_Clean:       1600 kB\nShared_Dirty:          0 kB\nPrivate_Clean:        40 kB\nPrivate_Dirty:       636 kB\nPrivate_Hugetlb:       0 kB\nSwap:                  0 kB\n";
        assert_eq!(parse_smaps_private_kb(smaps), Some(676));
        assert_eq!(parse_smaps_private_kb("Rss: 1 kB\n"), None);
        let status = "Name:\trpm\nState:\tS (sleeping)\nVmRSS:\t    2448 kB\nRssAnon:\t     636 kB\nRssFile:\t    1812 kB\n";
        assert_eq!(parse_status_rss_anon_kb(status), Some(636));
    }

    #[test]
    fn short_names() {
        let p = Proc {
            pid: 1,
            ppid: 0,
            comm: "rpm".into(),
            state: 'S',
            exe: None,
            argv: vec!["/usr/bin/rpm".into(), "-q".into(), "foo".into()],
            age_secs: 0,
            started_at: None,
            rss_kb: 0,
        };
        assert_eq!(p.short(), "rpm -q foo");
        assert_eq!(truncate("abcdef", 4), "abc…");
    }
}
