//! Who holds a lock on a database file: from the host's lock table (`/proc/locks`, see
//! proc(5)) when a procfs of the host is at hand, else from the kernel directly, asking
//! `fcntl(F_OFD_GETLK)` on the descriptor we already hold (see [`crate::ofd_lock`]).
//!
//! Neither takes a lock or waits; they are how hostready names what makes `rpm -q` wait. The
//! `doctor` command does the deeper lock analysis; this is only what `pkg` needs to say
//! "locked by pid N". Each holder is listed once per database, however many ranges it locks
//! (SQLite's EXCLUSIVE state is two or three POSIX locks of one process).

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

/// Parses `/proc/locks` with the host crate's one parser of it
/// (`hostready_host::procfs::parse_locks`); lines that do not parse are skipped (the table is
/// informative only). A waiter nested deeper in the kernel's tree of blocked requests is a
/// waiter too (this crate's own parser used to drop `-> ->` lines).
pub fn parse_proc_locks(text: &str) -> Vec<LockHolder> {
    hostready_host::procfs::parse_locks(text)
        .into_iter()
        .map(|e| LockHolder {
            class: e.kind,
            mode: e.access,
            pid: e.pid_field,
            major: e.dev.0,
            minor: e.dev.1,
            inode: e.ino,
            start: e.start,
            end: e.end,
            waiting: e.waiter,
        })
        .collect()
}

/// Where a file's locks are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Probe {
    /// SQLite's lock bytes (its unix VFS, `os_unix.c`): the PENDING byte at 1 GiB, the
    /// RESERVED byte after it, and the 510-byte SHARED range after that.
    Sqlite,
    /// The whole file (rpm's `.rpm.lock` and `.dbenv.lock`: `rpmlock.c` locks 0 to EOF).
    WholeFile,
}

/// SQLite's `PENDING_BYTE`, `RESERVED_BYTE`, `SHARED_FIRST` and `SHARED_SIZE`.
const SQLITE_PENDING: u64 = 0x4000_0000;
const SQLITE_SHARED_SIZE: u64 = 510;

/// Returns who holds a lock on `file` (whose device and inode are `meta`'s): the holders the
/// host's lock table lists, or, when it lists none (no procfs, or one that does not see
/// them), what `F_OFD_GETLK` reports. Each holder once.
pub(crate) fn holders_of(
    locks: &[LockHolder],
    file: &std::fs::File,
    meta: &std::fs::Metadata,
    probe: Probe,
) -> Vec<LockHolder> {
    use std::os::unix::fs::MetadataExt;
    let listed = held_on(locks, meta.dev(), meta.ino());
    if !listed.is_empty() {
        return dedup(listed);
    }
    dedup(probed(file, meta.dev(), meta.ino(), probe))
}

/// Asks the kernel which locks conflict with ours-to-be, range by range, taking none. A read
/// probe finds a writer over the whole range first (the holder that blocks every reader);
/// write probes of each part then find readers too (one per part: the kernel reports the
/// first conflict only).
fn probed(file: &std::fs::File, dev: u64, ino: u64, probe: Probe) -> Vec<LockHolder> {
    use std::os::fd::AsFd;
    let ranges: &[(u64, u64, bool)] = match probe {
        Probe::Sqlite => &[
            (SQLITE_PENDING, 2 + SQLITE_SHARED_SIZE, false),
            (SQLITE_PENDING, 1, true),
            (SQLITE_PENDING + 1, 1, true),
            (SQLITE_PENDING + 2, SQLITE_SHARED_SIZE, true),
        ],
        Probe::WholeFile => &[(0, 0, false), (0, 0, true)],
    };
    let (major, minor) = (rustix::fs::major(dev), rustix::fs::minor(dev));
    ranges
        .iter()
        // A probe that fails (a filesystem without POSIX locks) tells nothing: no holder.
        .filter_map(|&(start, len, write)| {
            crate::ofd_lock::conflicting(file.as_fd(), start, len, write)
                .ok()
                .flatten()
        })
        .map(|c| LockHolder {
            class: if c.pid == -1 { "OFDLCK" } else { "POSIX" }.into(),
            mode: if c.write { "WRITE" } else { "READ" }.into(),
            pid: i64::from(c.pid),
            major,
            minor,
            inode: ino,
            start: c.start,
            end: (c.len > 0).then(|| c.start + c.len - 1),
            waiting: false,
        })
        .collect()
}

/// Merges the locks of one holder into one entry (WRITE if any is, the span of all ranges).
/// A holder is a pid; OFD locks (pid -1) and holders outside our PID namespace (pid 0) cannot
/// be told apart by pid, so those merge per file and class only.
pub(crate) fn dedup(holders: Vec<LockHolder>) -> Vec<LockHolder> {
    let mut out: Vec<LockHolder> = Vec::new();
    for h in holders {
        let same = |o: &&mut LockHolder| {
            o.pid == h.pid
                && o.class == h.class
                && (h.pid > 0 || (o.inode, o.major, o.minor) == (h.inode, h.major, h.minor))
        };
        match out.iter_mut().find(same) {
            Some(o) => {
                if h.mode == "WRITE" {
                    o.mode = h.mode;
                }
                if (o.inode, o.major, o.minor) == (h.inode, h.major, h.minor) {
                    o.start = o.start.min(h.start);
                    o.end = o.end.zip(h.end).map(|(a, b)| a.max(b));
                }
            }
            None => out.push(h),
        }
    }
    out
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
    fn one_entry_per_holder() {
        // Real /proc/locks while `sqlite3` held an EXCLUSIVE lock: two ranges of one pid.
        let t = "6: POSIX  ADVISORY  WRITE 24529 fe:00:10027271 1073741826 1073742335\n\
                 7: POSIX  ADVISORY  WRITE 24529 fe:00:10027271 1073741824 1073741824\n\
                 8: POSIX  ADVISORY  READ 24529 fe:00:555 0 EOF\n\
                 9: OFDLCK ADVISORY  READ -1 fe:00:10027271 0 EOF\n\
                 10: OFDLCK ADVISORY  WRITE -1 fe:00:555 0 EOF\n";
        let d = dedup(parse_proc_locks(t));
        assert_eq!(d.len(), 3, "{d:#?}");
        assert_eq!(d[0].pid, 24529);
        assert_eq!(d[0].mode, "WRITE");
        assert_eq!((d[0].start, d[0].end), (1073741824, Some(1073742335)));
        assert_eq!((d[1].pid, d[1].inode), (-1, 10027271));
        assert_eq!(
            (d[2].pid, d[2].inode, d[2].mode.as_str()),
            (-1, 555, "WRITE")
        );
    }

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

    #[test]
    fn nested_waiters_are_waiters_not_holders() {
        // Linux 5.12+ indents a waiter by its depth in the tree of blocked requests; a
        // tolerated `-> ->` form is a waiter too. None of them may pass for a holder.
        let t = "2: FLOCK  ADVISORY  WRITE 99 08:01:77 0 EOF\n\
                 2: -> FLOCK  ADVISORY  WRITE 100 08:01:77 0 EOF\n\
                 2:  -> FLOCK  ADVISORY  WRITE 101 08:01:77 0 EOF\n\
                 2:  -> -> FLOCK  ADVISORY  WRITE 102 08:01:77 0 EOF\n";
        let l = parse_proc_locks(t);
        assert_eq!(l.len(), 4);
        assert!(
            l[1..].iter().all(|w| w.waiting && w.class == "FLOCK"),
            "{l:#?}"
        );
        let held = held_on(&l, rustix::fs::makedev(8, 1), 77);
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].pid, 99);
    }
}
