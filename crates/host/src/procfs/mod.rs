//! The one owner of procfs formats: a parser per file, used by every crate (checks, doctor,
//! the runner, the package readers), and small readers on a proc [`Root`].
//!
//! Parsers take text and return values, so each is tested on real samples; readers only add the
//! file access. [`pid`]: the per-process files (`stat`, `statm`, `status`, `smaps_rollup`,
//! `cmdline`, `environ`) and `/proc/stat`, `/proc/uptime`; [`memory`]: `meminfo` and PSI;
//! [`locks`]: `/proc/locks`; this file: `cpuinfo`, the process list and the octal-escape
//! decoder that `mountinfo` (parsed in [`crate::mounts`]) and `/proc/swaps` share; [`live`]:
//! this process's own `/proc` (the runner's children), not rooted.
//!
//! Why not `procfs-core` (parsing only, from any `Read`): its `Stat` parses all 52 fields
//! into an owned struct where doctor's scan of thousands of processes needs 8; its `Meminfo`
//! requires some 20 lines a trimmed or fake procfs lacks, accepts `MB`/`GB` units, and keeps
//! no duplicate check; its lock table refuses the whole file for one line it does not know and
//! drops the `->` waiter mark; its pressure figures take `nan`. The cpuinfo parser here reads
//! one field. Host-wide views (mounts, sockets) are read through pid 1, because our own
//! `/proc/self` is the pod's in a DaemonSet while `/proc/1` is the host's (hostPID).
//!
//! Memory bounds: every procfs file is read whole with a per-file cap ([`MAX_PROC_FILE_BYTES`]
//! for the host-wide tables, [`MAX_SMALL_PROC_FILE_BYTES`] for `meminfo`, `pressure/*`,
//! `<pid>/stat`), and a file over its cap is an error, not a prefix. Impossible values
//! (`MemAvailable` above `MemTotal`, a PSI average of `nan`) are parse errors: a fake or
//! damaged procfs must give "unknown", never a confident figure.

use serde::Serialize;

use crate::{FsError, Root};

pub mod live;
pub mod locks;
pub mod memory;
pub mod pid;

pub use locks::{LockEntry, parse_locks};
pub use memory::{
    Meminfo, Pressure, PressureLine, PressureLines, Problem, ProcParseError, PsiLine, parse_meminfo,
};
pub use pid::{
    PF_KTHREAD, Stat, StatLine, environ_value, parse_btime, parse_cmdline, parse_smaps_private_kb,
    parse_stat, parse_stat_arg_range, parse_stat_line, parse_stat_state, parse_statm,
    parse_status_rss_anon_kb, parse_uptime, status_field, status_kb,
};

/// The most read of a host-wide procfs table (`mountinfo`, `net/unix`, `cpuinfo`,
/// `filesystems`): 4 MiB holds ~30,000 mounts or ~40,000 sockets, far more than a healthy node
/// has, and keeps text plus parse well inside the agent's 48 MiB limit.
pub const MAX_PROC_FILE_BYTES: u64 = 4 << 20;

/// The most read of a small procfs file (`meminfo`, `pressure/*`, `<pid>/stat`): a few KiB
/// on any kernel.
pub const MAX_SMALL_PROC_FILE_BYTES: u64 = 64 << 10;

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

/// Decodes the kernel's `\ooo` octal escapes in procfs tables (`seq_file`'s escaping of space,
/// tab, newline and backslash in mountinfo and `/proc/swaps` paths). An escape above `\377`
/// is no byte the kernel writes: it is kept as text, never wrapped or overflowed.
pub(crate) fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = b[i + 1..i + 4]
                .iter()
                .fold(0u32, |v, c| v * 8 + u32::from(c - b'0'));
            if let Ok(byte) = u8::try_from(v) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A process seen in procfs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Process {
    pub pid: u32,
    /// `/proc/<pid>/comm`: the executable name, cut to 15 bytes by the kernel.
    pub comm: String,
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
    // The procfs's superblock options: `rw,nosuid,hidepid=invisible,gid=27`.
    let mount =
        crate::mounts::parse_mountinfo(&mountinfo).find(|m| m.device == Some((major, minor)))?;
    let mut hidepid = None;
    let mut gid = None;
    for o in mount.super_options() {
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
    let field = |name: &str| status_field(&status, name);
    let cap_eff = u64::from_str_radix(field("CapEff")?, 16).ok()?;
    if cap_eff & (1 << CAP_SYS_PTRACE) != 0 {
        return None;
    }
    // `Groups:` lists supplementary groups; `Gid:` real, effective, saved, fs.
    let in_gid = gid.is_some_and(|g| {
        let mut groups = field("Groups").unwrap_or("").split_whitespace();
        let mut ids = field("Gid").unwrap_or("").split_whitespace();
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

    /// Regression: mountinfo's own unescape computed `\777` as 7·64 in a `u8` (a panic in a
    /// debug build, a wrapped byte in release); one decoder now serves mountinfo and swaps,
    /// and keeps an escape above `\377` as text.
    #[test]
    fn octal_escapes_decode_and_an_impossible_one_stays_text() {
        assert_eq!(unescape_octal("/mnt/a\\040b"), "/mnt/a b");
        assert_eq!(unescape_octal("x\\134y"), "x\\y");
        assert_eq!(unescape_octal("/m\\777"), "/m\\777");
    }

    #[test]
    fn cpu_flags_x86_and_arm() {
        let x86 = "processor\t: 0\nflags\t\t: fpu vme sse4_1 sse4_2 avx\n\nprocessor\t: 1\nflags\t\t: fpu\n";
        assert!(parse_cpu_flags(x86).contains(&"sse4_2".to_string()));
        let arm = "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes\n";
        assert!(parse_cpu_flags(arm).contains(&"asimd".to_string()));
        assert!(parse_cpu_flags("").is_empty());
    }
}
