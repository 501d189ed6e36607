//! The one parser of each per-process procfs file hostready reads — `<pid>/stat`, `statm`,
//! `status`, `smaps_rollup`, `cmdline` — and of the two system files that date processes,
//! `/proc/stat` (`btime`) and `/proc/uptime`. Used by doctor's scan of thousands of processes,
//! by the runner's sweep of its own children and by the checks.
//!
//! The `stat` parser is on doctor's hot path (one call per process on the host): it reads only
//! the fields hostready uses, skips the rest without parsing them, and allocates once (the
//! name).

use serde::Serialize;

/// The kernel marks its own threads with this flag in `/proc/<pid>/stat` field 9
/// (`PF_KTHREAD`, include/linux/sched.h).
pub const PF_KTHREAD: u64 = 0x0020_0000;

/// The fields of `/proc/<pid>/stat` hostready uses (proc(5) numbering in the comments), with
/// the name as `C`: owned in a [`Stat`], borrowed from the line in a [`StatLine`], which a scan
/// reading thousands of lines a pass uses to copy a name only for a process it has not seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Stat<C = String> {
    /// (1) the pid, in the procfs's pid namespace.
    pub pid: i32,
    /// (2) the command name without parentheses; may contain spaces and `)`.
    pub comm: C,
    /// (3) one letter: `R`, `S`, `D`, `Z`, `T`, `t`, `X`, `I`, ...
    pub state: char,
    /// (4) the parent's pid (0 for pid 1 and kthreadd, and a parent outside the namespace).
    pub ppid: i32,
    /// (5) the process group.
    pub pgrp: i32,
    /// (9) the kernel flags word ([`PF_KTHREAD`]).
    pub flags: u64,
    /// (14) user-mode CPU time, in clock ticks.
    pub utime: u64,
    /// (15) kernel-mode CPU time, in clock ticks.
    pub stime: u64,
    /// (22) start time after boot, in clock ticks: with the pid, a process's identity.
    pub starttime: u64,
    /// (23) virtual memory size in bytes.
    pub vsize: u64,
    /// (24) resident set size in pages (shared pages included).
    pub rss_pages: u64,
    /// (48, 49) where the command line lies, when the line has it: see
    /// [`parse_stat_arg_range`].
    pub arg_range: Option<(u64, u64)>,
}

/// A `stat` line's fields with the name borrowed from the line (see [`Stat`]).
pub type StatLine<'a> = Stat<&'a str>;

impl<C> Stat<C> {
    /// Returns true if and only if this is one of the kernel's own threads.
    pub fn is_kernel_thread(&self) -> bool {
        self.flags & PF_KTHREAD != 0
    }
}

/// Splits a `stat` line into its pid text, the command name and what follows the name. The
/// name is between the first `(` and the *last* `)`: it may itself contain spaces and
/// parentheses (proc(5)).
fn split_comm(text: &str) -> Option<(&str, &str, &str)> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    Some((
        text.get(..open)?,
        text.get(open + 1..close)?,
        text.get(close + 1..)?,
    ))
}

impl StatLine<'_> {
    /// Returns the owned [`Stat`] (the name copied).
    pub fn to_stat(&self) -> Stat {
        Stat {
            pid: self.pid,
            comm: self.comm.to_string(),
            state: self.state,
            ppid: self.ppid,
            pgrp: self.pgrp,
            flags: self.flags,
            utime: self.utime,
            stime: self.stime,
            starttime: self.starttime,
            vsize: self.vsize,
            rss_pages: self.rss_pages,
            arg_range: self.arg_range,
        }
    }
}

/// Parses `/proc/<pid>/stat` without copying the name; `None` for a line that lacks a field
/// hostready uses (up to field 24; the argument range is optional).
pub fn parse_stat_line(text: &str) -> Option<StatLine<'_>> {
    let (pid, comm, rest) = split_comm(text)?;
    let pid = pid.trim().parse().ok()?;
    // The first field after the name is field 3; `nth(k)` skips k fields.
    let mut f = rest.split_ascii_whitespace();
    let state = f.next()?.chars().next()?; // 3
    let ppid = f.next()?.parse().ok()?; // 4
    let pgrp = f.next()?.parse().ok()?; // 5
    let flags = f.nth(3)?.parse().ok()?; // 9
    let utime = f.nth(4)?.parse().ok()?; // 14
    let stime = f.next()?.parse().ok()?; // 15
    let starttime = f.nth(6)?.parse().ok()?; // 22
    let vsize = f.next()?.parse().ok()?; // 23
    let rss_pages = f.next()?.parse().ok()?; // 24
    // Field 48 is 23 fields after field 24.
    let arg_range = (|| Some((f.nth(23)?.parse().ok()?, f.next()?.parse().ok()?)))();
    Some(StatLine {
        pid,
        comm,
        state,
        ppid,
        pgrp,
        flags,
        utime,
        stime,
        starttime,
        vsize,
        rss_pages,
        arg_range,
    })
}

/// Parses `/proc/<pid>/stat`; `None` for a line that lacks a field hostready uses.
pub fn parse_stat(text: &str) -> Option<Stat> {
    parse_stat_line(text).map(|l| l.to_stat())
}

/// Returns where the command line lies in the process's memory, fields 48 and 49 of
/// `/proc/<pid>/stat` (`arg_start`, `arg_end`; Linux 3.5+), when the line has them. They are
/// zeros for a zombie, or when the reader may not ptrace the process. An `execve` lays out a
/// new stack, so the range moves: with the pid, start time and name it tells whether a
/// command line read before can have changed since.
pub fn parse_stat_arg_range(text: &str) -> Option<(u64, u64)> {
    let (_, _, rest) = split_comm(text)?;
    // Field 3 is the first after the name: field 48 is the 46th.
    let mut f = rest.split_ascii_whitespace().skip(45);
    Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
}

/// Parses only the state letter out of `/proc/<pid>/stat`, from a line that may lack the
/// later fields (a process being torn down, a hand-written fake procfs).
pub fn parse_stat_state(text: &str) -> Option<char> {
    // The same rule as `split_comm`: the name ends at the last `)`.
    let rest = text.get(text.rfind(')')? + 1..)?;
    rest.split_whitespace().next()?.chars().next()
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

/// Returns the value of `var` in `/proc/<pid>/environ` (NUL-separated `NAME=value` entries),
/// or `None` when it is not set.
pub fn environ_value<'a>(environ: &'a [u8], var: &str) -> Option<&'a [u8]> {
    environ
        .split(|&b| b == 0)
        .find_map(|e| e.strip_prefix(var.as_bytes())?.strip_prefix(b"="))
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

/// Returns the value of field `name` (e.g. `RssAnon`, `CapEff`) of `/proc/<pid>/status`,
/// trimmed.
pub fn status_field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

/// Returns a size field of `/proc/<pid>/status` (`VmRSS`, `RssAnon`, ...) in kB.
pub fn status_kb(text: &str, name: &str) -> Option<u64> {
    let mut words = status_field(text, name)?.split_whitespace();
    let n = words.next()?.parse().ok()?;
    (words.next() == Some("kB")).then_some(n)
}

/// Returns `RssAnon` in kB from `/proc/<pid>/status`: anonymous resident memory, which is
/// nearly all of a waiting process's private memory; used where `smaps_rollup` is unreadable.
pub fn parse_status_rss_anon_kb(text: &str) -> Option<u64> {
    status_kb(text, "RssAnon")
}

/// Parses `/proc/<pid>/statm` into (resident, shared) pages: fields 2 and 3.
pub fn parse_statm(text: &str) -> Option<(u64, u64)> {
    let mut f = text.split_ascii_whitespace().skip(1);
    Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    // A real /proc/<pid>/stat of `rpm -q` waiting on a locked rpmdb.sqlite (Debian 12, 6.18).
    const RPM_STAT: &str = "6743 (rpm) S 6740 6735 5624 0 -1 4194560 412 0 0 0 0 0 0 0 20 0 1 0 36105 12537856 612 18446744073709551615 94520 94521 140 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";

    #[test]
    fn stat_of_waiting_rpm() {
        let s = parse_stat(RPM_STAT).unwrap();
        assert_eq!(s.pid, 6743);
        assert_eq!(s.comm, "rpm");
        assert_eq!(s.state, 'S');
        assert_eq!((s.ppid, s.pgrp), (6740, 6735));
        assert_eq!(s.flags, 4194560);
        assert_eq!(s.starttime, 36105);
        assert_eq!(s.rss_pages, 612);
        assert_eq!(s.vsize, 12537856);
        assert!(!s.is_kernel_thread());
    }

    #[test]
    fn stat_cpu_times_and_sizes_are_their_own_fields() {
        // Every field numbered after itself, so a field read one place off shows.
        let fields: Vec<String> = (3..=52)
            .map(|n| {
                if n == 3 {
                    "S".to_string()
                } else {
                    n.to_string()
                }
            })
            .collect();
        let s = parse_stat(&format!("1 (a b) c) {}\n", fields.join(" "))).unwrap();
        assert_eq!(s.comm, "a b) c");
        assert_eq!((s.ppid, s.pgrp, s.flags), (4, 5, 9));
        assert_eq!((s.utime, s.stime), (14, 15));
        assert_eq!((s.starttime, s.vsize, s.rss_pages), (22, 23, 24));
        let line = format!("1 (a b) c) {}\n", fields.join(" "));
        assert_eq!(parse_stat_arg_range(&line), Some((48, 49)));
        // A line that stops before field 48 (an old kernel, a fake procfs) has no range.
        assert_eq!(
            parse_stat_arg_range(&line[..line.find(" 48").unwrap()]),
            None
        );
        assert_eq!(parse_stat_arg_range(RPM_STAT), Some((0, 0)));
        // The one-pass parser reads the same fields and the same range.
        let l = parse_stat_line(&line).unwrap();
        assert_eq!(l.to_stat(), s);
        assert_eq!(l.arg_range, Some((48, 49)));
        let cut = &line[..line.find(" 48").unwrap()];
        assert_eq!(parse_stat_line(cut).unwrap().arg_range, None);
        // The same fields but for the range, which the cut line lacks.
        let without_range = Stat {
            arg_range: None,
            ..s.clone()
        };
        assert_eq!(parse_stat_line(cut).unwrap().to_stat(), without_range);
        assert_eq!(parse_stat_line(RPM_STAT).unwrap().arg_range, Some((0, 0)));
    }

    #[test]
    fn stat_kernel_thread_and_hostile_comm() {
        let k = "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 1 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0";
        assert!(parse_stat(k).unwrap().is_kernel_thread());
        let h = "7 (a) b) (c) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0";
        let s = parse_stat(h).unwrap();
        assert_eq!(s.comm, "a) b) (c");
        assert_eq!(s.state, 'Z');
        assert_eq!(s.starttime, 99);
        let line = "4711 (rpm (q) x) D 1 4711 4711 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456 1000 10 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0";
        let s = parse_stat(line).unwrap();
        assert_eq!((s.pid, s.comm.as_str(), s.state), (4711, "rpm (q) x", 'D'));
        assert_eq!((s.ppid, s.pgrp, s.starttime), (1, 4711, 123456));
        assert!(parse_stat("garbage").is_none());
        assert!(parse_stat("1 (x) S 0").is_none());
        assert!(parse_stat("12 (sh) S 1 12").is_none());
        assert!(parse_stat("").is_none());
        assert!(parse_stat("x (sh) S 1 12 12 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 9 0 0").is_none());
    }

    #[test]
    fn stat_state_with_hostile_comm() {
        assert_eq!(parse_stat_state("42 (a) b) (c) D 1 42 42"), Some('D'));
        assert_eq!(parse_stat_state("1 (systemd) S 0 1 1"), Some('S'));
        assert_eq!(parse_stat_state("garbage"), None);
    }

    #[test]
    fn cmdline_and_environ_forms() {
        assert_eq!(
            parse_cmdline(b"rpm\0-q\0open-iscsi\0"),
            ["rpm", "-q", "open-iscsi"]
        );
        assert_eq!(
            parse_cmdline(b"nginx: worker process"),
            ["nginx: worker process"]
        );
        assert!(parse_cmdline(b"").is_empty());
        let env = b"PATH=/bin\0TOKEN=abc\0TOKENX=no\0";
        assert_eq!(environ_value(env, "TOKEN"), Some(&b"abc"[..]));
        assert_eq!(environ_value(env, "TOKE"), None);
        assert_eq!(environ_value(b"", "TOKEN"), None);
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
        let status = "Name:\trpm\nState:\tS (sleeping)\nVmRSS:\t    2448 kB\nRssAnon:\t     636 kB\nRssFile:\t    1812 kB\nCapEff:\t000001ffffffffff\n";
        assert_eq!(parse_status_rss_anon_kb(status), Some(636));
        assert_eq!(status_kb(status, "VmRSS"), Some(2448));
        assert_eq!(status_kb(status, "Name"), None);
        assert_eq!(status_field(status, "CapEff"), Some("000001ffffffffff"));
        assert_eq!(status_field(status, "Cap"), None);
    }

    #[test]
    fn statm_fields() {
        assert_eq!(parse_statm("730 439 412 5 0 89 0\n"), Some((439, 412)));
        assert_eq!(parse_statm("730"), None);
        assert_eq!(parse_statm(""), None);
    }
}
