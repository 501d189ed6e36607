//! Parsers for the procfs files the built-in checks read, and small readers on a proc [`Root`].
//!
//! Parsers take text and return values, so each is tested on real samples; readers only add the
//! file access. Host-wide views (mounts, sockets) are read through pid 1, because our own
//! `/proc/self` is the pod's in a DaemonSet while `/proc/1` is the host's (hostPID).
//!
//! Memory bounds: every procfs file is read whole with a per-file cap ([`MAX_PROC_FILE_BYTES`]
//! for the host-wide tables, [`MAX_SMALL_PROC_FILE_BYTES`] for `meminfo`, `pressure/*`,
//! `<pid>/stat`), and a file over its cap is an error, not a prefix. Impossible values
//! (`MemAvailable` above `MemTotal`, a PSI average of `nan`) are parse errors: a fake or
//! damaged procfs must give "unknown", never a confident figure.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{FsError, Root};

/// The most read of a host-wide procfs table (`mountinfo`, `net/unix`, `cpuinfo`,
/// `filesystems`): 4 MiB holds ~30,000 mounts or ~40,000 sockets, far more than a healthy node
/// has, and keeps text plus parse well inside the agent's 48 MiB limit.
pub const MAX_PROC_FILE_BYTES: u64 = 4 << 20;

/// The most read of a small procfs file (`meminfo`, `pressure/*`, `<pid>/stat`): a few KiB
/// on any kernel.
pub const MAX_SMALL_PROC_FILE_BYTES: u64 = 64 << 10;

/// A procfs file whose content is impossible for a real kernel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {why}")]
pub struct ProcParseError {
    /// Which file, e.g. `meminfo`.
    pub file: &'static str,
    pub why: String,
}

/// The figures of `/proc/meminfo` that hostready uses, checked for consistency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Meminfo {
    /// `MemTotal`, in KiB; never 0.
    pub total_kib: u64,
    /// `MemAvailable`, in KiB (absent before Linux 3.14); never above `total_kib`.
    pub available_kib: Option<u64>,
    /// Every field as read, for the rest (`HugePages_*`, `Hugepagesize`, ...).
    pub fields: BTreeMap<String, u64>,
}

impl Meminfo {
    /// The largest figure accepted for a size field: 2^52 KiB (4 EiB), past any machine and
    /// small enough that converting it to bytes cannot overflow.
    pub const MAX_KIB: u64 = 1 << 52;

    /// Parses `/proc/meminfo`, refusing what no kernel writes: no `MemTotal`, `MemTotal 0`,
    /// a size beyond [`Meminfo::MAX_KIB`], or `MemAvailable`/`MemFree` above `MemTotal`.
    pub fn parse(text: &str) -> Result<Meminfo, ProcParseError> {
        let err = |why: String| ProcParseError {
            file: "meminfo",
            why,
        };
        let fields = parse_meminfo(text);
        let total = *fields
            .get("MemTotal")
            .ok_or_else(|| err("no MemTotal line".into()))?;
        if total == 0 {
            return Err(err("MemTotal is 0".into()));
        }
        for (k, v) in &fields {
            if *v > Self::MAX_KIB && !k.starts_with("HugePages_") {
                return Err(err(format!("{k} is {v} kB, beyond any machine")));
            }
        }
        for k in ["MemAvailable", "MemFree"] {
            if let Some(v) = fields.get(k).filter(|v| **v > total) {
                return Err(err(format!("{k} ({v} kB) is above MemTotal ({total} kB)")));
            }
        }
        Ok(Meminfo {
            total_kib: total,
            available_kib: fields.get("MemAvailable").copied(),
            fields,
        })
    }
}

/// One line of a PSI file (`/proc/pressure/memory`): the share of time some (or all) tasks
/// were stalled, as percentages over 10 s, 60 s and 300 s, and the total stall time in µs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PressureLine {
    pub avg10: f64,
    pub avg60: f64,
    pub avg300: f64,
    pub total_us: u64,
}

/// A PSI file (`Documentation/accounting/psi.rst`): the `some` line, and the `full` line
/// where the resource has one (not for `cpu` before Linux 5.13).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Pressure {
    pub some: PressureLine,
    pub full: Option<PressureLine>,
}

impl Pressure {
    /// Parses a PSI file, refusing averages that are not finite numbers from 0 to 100, a
    /// missing `some` line, and malformed fields.
    pub fn parse(text: &str) -> Result<Pressure, ProcParseError> {
        let err = |why: String| ProcParseError {
            file: "pressure",
            why,
        };
        let mut some = None;
        let mut full = None;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let mut words = line.split_whitespace();
            let slot = match words.next() {
                Some("some") => &mut some,
                Some("full") => &mut full,
                other => return Err(err(format!("unexpected line kind {other:?}"))),
            };
            let mut avg = [None; 3];
            let mut total = None;
            for w in words {
                let (k, v) = w
                    .split_once('=')
                    .ok_or_else(|| err(format!("field {w:?} is not key=value")))?;
                let i = match k {
                    "avg10" => 0,
                    "avg60" => 1,
                    "avg300" => 2,
                    "total" => {
                        total = Some(
                            v.parse::<u64>()
                                .map_err(|_| err(format!("total={v:?} is not a count")))?,
                        );
                        continue;
                    }
                    _ => continue,
                };
                let x: f64 = v
                    .parse()
                    .map_err(|_| err(format!("{k}={v:?} is not a number")))?;
                if !(x.is_finite() && (0.0..=100.0).contains(&x)) {
                    return Err(err(format!("{k}={v} is not a percentage")));
                }
                avg[i] = Some(x);
            }
            let (Some(avg10), Some(avg60), Some(avg300), Some(total_us)) =
                (avg[0], avg[1], avg[2], total)
            else {
                return Err(err(format!(
                    "line {line:?} lacks avg10, avg60, avg300 or total"
                )));
            };
            *slot = Some(PressureLine {
                avg10,
                avg60,
                avg300,
                total_us,
            });
        }
        let some = some.ok_or_else(|| err("no \"some\" line".into()))?;
        Ok(Pressure { some, full })
    }
}

/// Returns `/proc/meminfo` as a map from field to its number (kB for sizes, a count for
/// `HugePages_*`), unchecked: use [`Meminfo::parse`] to rely on the figures.
pub fn parse_meminfo(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, rest) = l.split_once(':')?;
            let n = rest.split_whitespace().next()?.parse().ok()?;
            Some((k.trim().to_string(), n))
        })
        .collect()
}

/// Returns the CPU feature flags of the first processor in `/proc/cpuinfo` (`flags` on x86,
/// `Features` on arm64).
pub fn parse_cpu_flags(text: &str) -> Vec<String> {
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            matches!(k.trim(), "flags" | "Features")
                .then(|| v.split_whitespace().map(str::to_string).collect())
        })
        .unwrap_or_default()
}

/// One line of `/proc/<pid>/mountinfo` (see proc(5)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    pub mount_point: String,
    pub root: String,
    pub fs_type: String,
    pub source: String,
    /// Optional fields such as `shared:1` or `master:3`.
    pub propagation: Vec<String>,
}

impl Mount {
    /// Returns true if and only if the mount is in a shared peer group (`shared:N`).
    pub fn is_shared(&self) -> bool {
        self.propagation.iter().any(|t| t.starts_with("shared:"))
    }
}

/// Parses `mountinfo`, skipping malformed lines; octal escapes (`\040`) in paths are decoded.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            if f.len() < 6 {
                return None;
            }
            let mut r = right.split(' ');
            let fs_type = r.next()?.to_string();
            let source = unescape(r.next().unwrap_or(""));
            Some(Mount {
                root: unescape(f[3]),
                mount_point: unescape(f[4]),
                fs_type,
                source,
                propagation: f[6..]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .map(|s| s.to_string())
                    .collect(),
            })
        })
        .collect()
}

/// Returns the mount that holds `path`: the longest mount point that is a prefix of it, the last
/// one when several mounts are stacked on the same point.
pub fn mount_containing<'a>(mounts: &'a [Mount], path: &str) -> Option<&'a Mount> {
    let covers = |m: &&Mount| {
        let mp = m.mount_point.trim_end_matches('/');
        path == m.mount_point || path.starts_with(&format!("{mp}/")) || m.mount_point == "/"
    };
    mounts
        .iter()
        .filter(covers)
        .enumerate()
        .max_by_key(|(i, m)| (m.mount_point.len(), *i))
        .map(|(_, m)| m)
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A listening Unix socket from `/proc/<pid>/net/unix`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnixListener {
    /// The bound path; abstract names start with `@`.
    pub path: String,
}

/// Parses `/proc/net/unix` and returns the sockets that are listening (`__SO_ACCEPTCON`).
pub fn parse_unix_listeners(text: &str) -> Vec<UnixListener> {
    const SO_ACCEPTCON: u32 = 1 << 16;
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let flags = u32::from_str_radix(f.get(3)?, 16).ok()?;
            let path = f.get(7)?;
            (flags & SO_ACCEPTCON != 0).then(|| UnixListener {
                path: path.to_string(),
            })
        })
        .collect()
}

/// A process seen in procfs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Process {
    pub pid: u32,
    /// `/proc/<pid>/comm`: the executable name, cut to 15 bytes by the kernel.
    pub comm: String,
}

/// Parses the state letter out of `/proc/<pid>/stat`; the command name in parentheses may itself
/// contain spaces and parentheses, so the last `)` ends it.
pub fn parse_stat_state(text: &str) -> Option<char> {
    let after = &text[text.rfind(')')? + 1..];
    after.split_whitespace().next()?.chars().next()
}

/// Lists the processes of the procfs at `proc` with their names, one read per process (hosts
/// in trouble have thousands); processes that exit while being read are skipped.
pub fn processes(proc: &Root) -> Result<Vec<Process>, FsError> {
    if let Some(why) = hidden_processes(proc) {
        return Err(FsError {
            path: "/".into(),
            root: proc.location().to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::PermissionDenied, why),
        });
    }
    let mut out = Vec::new();
    for name in proc.read_dir("/")? {
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        // comm is at most 16 bytes with its newline (TASK_COMM_LEN).
        let comm = match proc.read_head(format!("/{pid}/comm"), 64) {
            Ok(c) => c,
            // Every process's comm is world-readable; refusal means a procfs mounted with
            // `hidepid=`: the list would be silently partial ("not running" when it runs).
            Err(e) if e.is_permission_denied() => return Err(e),
            // Exited while being read.
            Err(_) => continue,
        };
        let comm = String::from_utf8_lossy(&comm);
        out.push(Process {
            pid,
            comm: comm.trim_end_matches('\n').to_string(),
        });
    }
    out.sort_by_key(|p| p.pid);
    Ok(out)
}

/// `CAP_SYS_PTRACE`'s bit in `CapEff` (`include/uapi/linux/capability.h`).
const CAP_SYS_PTRACE: u32 = 19;

/// Says why the listing of a real procfs would silently miss processes: it is mounted with
/// `hidepid=` (`invisible`/`2` hides other users' processes from the listing, `noaccess`/`1`
/// their files), and this process may not see through it (no `CAP_SYS_PTRACE`, not in the
/// mount's `gid=`). `None` when nothing is hidden or it cannot be told (a fake procfs tree,
/// another pid namespace's procfs, where `self` is not us).
pub fn hidden_processes(proc: &Root) -> Option<String> {
    if !proc.is_procfs_root() {
        return None;
    }
    let (major, minor) = proc.device().ok()?;
    let mountinfo = proc
        .read_to_string_bounded("/self/mountinfo", MAX_PROC_FILE_BYTES)
        .ok()?;
    let dev = format!("{major}:{minor}");
    // Super options follow the source after " - ": `rw,nosuid,hidepid=invisible,gid=27`.
    let options = mountinfo.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        (left.split(' ').nth(2) == Some(dev.as_str()))
            .then(|| right.split(' ').nth(2).unwrap_or("").to_string())
    })?;
    let mut hidepid = None;
    let mut gid = None;
    for o in options.split(',') {
        if let Some(v) = o.strip_prefix("hidepid=") {
            hidepid = Some(v.to_string());
        } else if let Some(v) = o.strip_prefix("gid=") {
            gid = v.parse::<u32>().ok();
        }
    }
    let hidepid = hidepid.filter(|v| !matches!(v.as_str(), "0" | "off"))?;
    let status = proc
        .read_to_string_bounded("/self/status", MAX_SMALL_PROC_FILE_BYTES)
        .ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    let cap_eff = u64::from_str_radix(field("CapEff:")?, 16).ok()?;
    if cap_eff & (1 << CAP_SYS_PTRACE) != 0 {
        return None;
    }
    // `Groups:` lists supplementary groups; `Gid:` real, effective, saved, fs.
    let in_gid = gid.is_some_and(|g| {
        let mut groups = field("Groups:").unwrap_or("").split_whitespace();
        let mut ids = field("Gid:").unwrap_or("").split_whitespace();
        ids.nth(1).and_then(|e| e.parse::<u32>().ok()) == Some(g)
            || groups.any(|x| x.parse::<u32>().ok() == Some(g))
    });
    if in_gid {
        return None;
    }
    Some(format!(
        "the procfs is mounted with hidepid={hidepid} and hostready lacks CAP_SYS_PTRACE: other users' processes are hidden from it"
    ))
}

/// Returns the state letter of process `pid` (`R`, `S`, `D`, `Z`, ...), or `None` if it is gone.
pub fn process_state(proc: &Root, pid: u32) -> Option<char> {
    proc.read_to_string_bounded(format!("/{pid}/stat"), MAX_SMALL_PROC_FILE_BYTES)
        .ok()
        .and_then(|s| parse_stat_state(&s))
}

/// Reads a file of the host-wide view (pid 1's), falling back to the procfs's own (`/proc/net`
/// follows `self`) only where pid 1 has no such file. Pid 1's file refused (permission denied,
/// too large) is an error: our own view is the pod's, and must not pass for the host's.
pub fn read_host_wide(proc: &Root, rel: &str) -> Result<(String, String), FsError> {
    let first = format!("/1/{rel}");
    match proc.read_to_string_bounded(&first, MAX_PROC_FILE_BYTES) {
        Ok(t) => Ok((t, first)),
        Err(e) if e.is_not_found() => {
            let second = format!("/self/{rel}");
            proc.read_to_string_bounded(&second, MAX_PROC_FILE_BYTES)
                .map(|t| (t, second))
                .map_err(|_| e)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_real_sample() {
        let t = "MemTotal:       24577408 kB\nMemAvailable:   23811944 kB\nHugePages_Total:    1024\nHugePages_Free:     1024\nHugepagesize:       2048 kB\n";
        let m = parse_meminfo(t);
        assert_eq!(m["HugePages_Total"], 1024);
        assert_eq!(m["Hugepagesize"], 2048);
        assert_eq!(m["MemTotal"], 24577408);
    }

    #[test]
    fn meminfo_checked() {
        let real = "MemTotal:       24577408 kB\nMemFree: 1000 kB\nMemAvailable:   23811944 kB\n";
        let m = Meminfo::parse(real).unwrap();
        assert_eq!((m.total_kib, m.available_kib), (24577408, Some(23811944)));
        // The tester's meminfo: MemTotal 0 and MemAvailable 2^64-1.
        let forged = "MemTotal: 0 kB\nMemAvailable: 18446744073709551615 kB\n";
        let e = Meminfo::parse(forged).unwrap_err();
        assert!(e.to_string().contains("MemTotal is 0"), "{e}");
        let e = Meminfo::parse("MemTotal: 100 kB\nMemAvailable: 101 kB\n").unwrap_err();
        assert!(e.to_string().contains("above MemTotal"), "{e}");
        let e = Meminfo::parse("MemTotal: 18446744073709551615 kB\n").unwrap_err();
        assert!(e.to_string().contains("beyond any machine"), "{e}");
        assert!(Meminfo::parse("MemFree: 1 kB\n").is_err());
        assert!(Meminfo::parse("").is_err());
        // Before Linux 3.14 there is no MemAvailable.
        assert_eq!(
            Meminfo::parse("MemTotal: 100 kB\n").unwrap().available_kib,
            None
        );
    }

    #[test]
    fn pressure_checked() {
        let real = "some avg10=0.00 avg60=0.12 avg300=1.50 total=123456\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=42\n";
        let p = Pressure::parse(real).unwrap();
        assert_eq!(p.some.avg300, 1.5);
        assert_eq!(p.full.unwrap().total_us, 42);
        let cpu_old = "some avg10=1.00 avg60=2.00 avg300=3.00 total=9\n";
        assert_eq!(Pressure::parse(cpu_old).unwrap().full, None);
        for bad in [
            "some avg10=nan avg60=0.00 avg300=0.00 total=1\n",
            "some avg10=inf avg60=0.00 avg300=0.00 total=1\n",
            "some avg10=-1 avg60=0.00 avg300=0.00 total=1\n",
            "some avg10=100.01 avg60=0.00 avg300=0.00 total=1\n",
            "some avg10=0.00 avg60=0.00 total=1\n",
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=-3\n",
            "full avg10=0.00 avg60=0.00 avg300=0.00 total=1\n",
            "bogus\n",
            "",
        ] {
            assert!(Pressure::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cpu_flags_x86_and_arm() {
        let x86 = "processor\t: 0\nflags\t\t: fpu vme sse4_1 sse4_2 avx\n\nprocessor\t: 1\nflags\t\t: fpu\n";
        assert!(parse_cpu_flags(x86).contains(&"sse4_2".to_string()));
        let arm = "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes\n";
        assert!(parse_cpu_flags(arm).contains(&"asimd".to_string()));
        assert!(parse_cpu_flags("").is_empty());
    }

    #[test]
    fn mountinfo_real_sample() {
        let t = "22 1 253:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
                 30 22 0:5 / /dev rw,nosuid master:2 - devtmpfs udev rw\n\
                 40 22 253:1 / /var/lib/long\\040horn rw - xfs /dev/vdb rw\n\
                 bad line\n";
        let m = parse_mountinfo(t);
        assert_eq!(m.len(), 3);
        assert!(m[0].is_shared());
        assert!(!m[1].is_shared());
        assert_eq!(m[2].mount_point, "/var/lib/long horn");
        assert_eq!(
            mount_containing(&m, "/var/lib/longhorn")
                .unwrap()
                .mount_point,
            "/"
        );
        assert_eq!(
            mount_containing(&m, "/var/lib/long horn/x")
                .unwrap()
                .fs_type,
            "xfs"
        );
        assert_eq!(mount_containing(&m, "/dev").unwrap().fs_type, "devtmpfs");
    }

    #[test]
    fn stacked_mounts_last_wins() {
        let t = "1 0 0:1 / / rw shared:1 - ext4 a rw\n2 1 0:2 / /var rw - tmpfs b rw\n3 1 0:3 / /var rw shared:5 - tmpfs c rw\n";
        let m = parse_mountinfo(t);
        assert_eq!(mount_containing(&m, "/var/x").unwrap().source, "c");
    }

    #[test]
    fn unix_listeners() {
        let t = "Num       RefCount Protocol Flags    Type St Inode Path\n\
                 0000000000000000: 00000002 00000000 00010000 0001 01 20512 @ISCSIADM_ABSTRACT_NAMESPACE\n\
                 0000000000000000: 00000003 00000000 00000000 0001 03 20513 /run/foo.sock\n\
                 0000000000000000: 00000002 00000000 00010000 0001 01 20514 /run/systemd/notify\n\
                 0000000000000000: 00000002 00000000 00000000 0002 01 20515\n";
        let l = parse_unix_listeners(t);
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].path, "@ISCSIADM_ABSTRACT_NAMESPACE");
    }

    #[test]
    fn stat_state_with_hostile_comm() {
        assert_eq!(parse_stat_state("42 (a) b) (c) D 1 42 42"), Some('D'));
        assert_eq!(parse_stat_state("1 (systemd) S 0 1 1"), Some('S'));
        assert_eq!(parse_stat_state("garbage"), None);
    }
}
