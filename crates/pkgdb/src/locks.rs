//! The host's lock table (`/proc/locks`, see proc(5)): who holds a lock on a database file.
//!
//! Reading it takes no lock and costs one small read; it is how hostready names the process
//! that makes `rpm -q` wait, without ever waiting itself. The `doctor` command does the deeper
//! lock analysis; this is only what `pkg` needs to say "locked by pid N".

use serde::Serialize;

/// One lock from `/proc/locks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockHolder {
    /// `POSIX`, `FLOCK`, `OFDLCK`, `LEASE`.
    pub class: String,
    /// `READ` or `WRITE`.
    pub mode: String,
    /// The holder's pid in the namespace the lock table was read from (-1 for OFD locks).
    pub pid: i64,
    pub major: u32,
    pub minor: u32,
    pub inode: u64,
    /// First byte and last byte (`None` for EOF) of the locked range.
    pub start: u64,
    pub end: Option<u64>,
    /// True if and only if this entry is a process waiting for the lock, not holding it.
    pub waiting: bool,
}

/// Parses `/proc/locks`; lines that do not parse are skipped (the table is informative only).
pub fn parse_proc_locks(text: &str) -> Vec<LockHolder> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<LockHolder> {
    let mut it = line.split_whitespace();
    it.next()?; // "N:"
    let mut class = it.next()?;
    let waiting = class == "->";
    if waiting {
        class = it.next()?;
    }
    let _advisory = it.next()?;
    let mode = it.next()?;
    let pid: i64 = it.next()?.parse().ok()?;
    let mut dev = it.next()?.split(':');
    let major = u32::from_str_radix(dev.next()?, 16).ok()?;
    let minor = u32::from_str_radix(dev.next()?, 16).ok()?;
    let inode = dev.next()?.parse().ok()?;
    let start = it.next()?.parse().ok()?;
    let end = it.next()?;
    let end = if end == "EOF" {
        None
    } else {
        Some(end.parse().ok()?)
    };
    Some(LockHolder {
        class: class.to_string(),
        mode: mode.to_string(),
        pid,
        major,
        minor,
        inode,
        start,
        end,
        waiting,
    })
}

/// Returns the locks held (not waited for) on the file with this device and inode.
pub(crate) fn held_on(locks: &[LockHolder], dev: u64, ino: u64) -> Vec<LockHolder> {
    let (major, minor) = (rustix::fs::major(dev), rustix::fs::minor(dev));
    locks
        .iter()
        .filter(|l| !l.waiting && l.inode == ino && l.major == major && l.minor == minor)
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_posix_flock_and_waiters() {
        let t = "1: POSIX  ADVISORY  WRITE 4711 00:2f:1234 1073741824 1073742335\n\
                 2: FLOCK  ADVISORY  WRITE 99 08:01:77 0 EOF\n\
                 2: -> FLOCK  ADVISORY  WRITE 100 08:01:77 0 EOF\n\
                 garbage\n";
        let l = parse_proc_locks(t);
        assert_eq!(l.len(), 3);
        assert_eq!(l[0].pid, 4711);
        assert_eq!((l[0].major, l[0].minor, l[0].inode), (0, 0x2f, 1234));
        assert_eq!(l[1].end, None);
        assert!(l[2].waiting);
    }
}
