//! The one parser of the kernel's lock table, `/proc/locks`, for doctor's lock analysis and
//! for the package readers' "locked by pid N" alike.
//!
//! The format is `lock_get_status` in the kernel's `fs/locks.c` (proc(5) `/proc/locks`):
//!
//! ```text
//! 1: POSIX  ADVISORY  WRITE 6384 fe:00:9978253 1073741826 1073742335
//! 3: FLOCK  ADVISORY  WRITE 700 00:2e:55 0 EOF
//! 3: -> FLOCK  ADVISORY  WRITE 701 00:2e:55 0 EOF
//! 3:  -> FLOCK  ADVISORY  WRITE 702 00:2e:55 0 EOF
//! 4: OFDLCK ADVISORY  READ  -1 00:06:1234 0 EOF
//! 5: POSIX  *NOINODE* WRITE 42 <none>:0 0 EOF
//! ```
//!
//! What the kernel varies, and how this parser takes it:
//! - A waiter (`->`) shares the id of the lock it waits for. Since Linux 5.12 the blocked
//!   requests form a tree and a waiter `n` levels down is printed with `n - 1` more spaces
//!   before one `->`; before, `1: ->`. Any number of spaces and of `->` tokens is a waiter.
//! - The pid is `-1` for OFD locks (owned by an open file, not a process), `0` for an owner not
//!   visible in the procfs's pid namespace (or gone), and the raw, possibly negative, owner
//!   of a lock a lock manager holds for a remote client. Only a positive pid is an owner.
//! - The inode was printed signed (`%ld`) before Linux 5.5: overlayfs with `xino` sets its top
//!   bit, so a negative number is the same inode as `stat` reports it (two's complement).
//! - A lock on no inode (`*NOINODE*`, `<none>:0`) names no file: skipped.
//! - Kinds are `POSIX`, `OFDLCK`, `ACCESS`, `FLOCK`, `LEASE`, `DELEG` and `UNKNOWN`; access is
//!   `READ`, `WRITE` or `UNLCK`. They are kept as text.
//!
//! Lines that do not parse are skipped: the table is evidence, and one odd line must not hide
//! the rest. (`procfs-core` refuses the whole table for one such line and keeps no waiter
//! mark, which is the one thing doctor needs from it; hence this parser.)

use serde::Serialize;

/// One line of `/proc/locks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockEntry {
    /// The number before `:`; a waiter shares it with the lock it waits for.
    pub id: u64,
    /// True for `->` lines: this process is blocked waiting for lock `id`.
    pub waiter: bool,
    /// `POSIX`, `FLOCK`, `OFDLCK`, `LEASE`, ...
    pub kind: String,
    /// `READ` or `WRITE` (leases may say `UNLCK`).
    pub access: String,
    /// The owner's pid, as seen in the procfs's pid namespace; `None` where the table names no
    /// process (OFD locks, owners outside the namespace): see [`LockEntry::pid_field`].
    pub pid: Option<u32>,
    /// The pid field as printed: `-1` for OFD locks, `0` for an owner outside the namespace.
    pub pid_field: i64,
    /// The file's device (major, minor) and inode.
    pub dev: (u32, u32),
    pub ino: u64,
    /// First and last byte locked; `None` for `EOF` (to the end of the file, and beyond).
    pub start: u64,
    pub end: Option<u64>,
}

impl LockEntry {
    /// Returns true if and only if the locked range includes all of `first..=last`.
    pub fn covers(&self, first: u64, last: u64) -> bool {
        self.start <= first && self.end.is_none_or(|e| e >= last)
    }

    /// Returns the range as the table writes it: `0-EOF`, `1073741824-1073741824`.
    pub fn range(&self) -> String {
        match self.end {
            Some(e) => format!("{}-{}", self.start, e),
            None => format!("{}-EOF", self.start),
        }
    }
}

/// Parses `/proc/locks`, skipping lines it does not understand (see the module header).
pub fn parse_locks(text: &str) -> Vec<LockEntry> {
    text.lines().filter_map(parse_lock_line).collect()
}

fn parse_lock_line(line: &str) -> Option<LockEntry> {
    let (id, rest) = line.split_once(':')?;
    let id = id.trim().parse().ok()?;
    let mut tokens = rest.split_whitespace().peekable();
    let mut waiter = false;
    while tokens.peek() == Some(&"->") {
        waiter = true;
        tokens.next();
    }
    let kind = tokens.next()?.to_string();
    let _subtype = tokens.next()?; // ADVISORY, MANDATORY, ACTIVE, BREAKING, BREAKER, ...
    let access = tokens.next()?.to_string();
    let pid_field = tokens.next()?.parse::<i64>().ok()?;
    let mut dev = tokens.next()?.split(':');
    let major = u32::from_str_radix(dev.next()?, 16).ok()?;
    let minor = u32::from_str_radix(dev.next()?, 16).ok()?;
    let ino = dev.next()?;
    let ino = ino
        .parse::<u64>()
        .or_else(|_| ino.parse::<i64>().map(|i| i as u64))
        .ok()?;
    let start = tokens.next()?.parse().ok()?;
    let end = match tokens.next()? {
        "EOF" => None,
        n => Some(n.parse().ok()?),
    };
    Some(LockEntry {
        id,
        waiter,
        kind,
        access,
        pid: u32::try_from(pid_field).ok().filter(|p| *p > 0),
        pid_field,
        dev: (major, minor),
        ino,
        start,
        end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real /proc/locks while `sqlite3` held `PRAGMA locking_mode=EXCLUSIVE; BEGIN EXCLUSIVE` on
    // an rpmdb.sqlite made by Debian's rpm 4.18, blocked flock waiters two levels deep, an OFD
    // lock and a lease (kernel 6.18), and a lock on no inode.
    const SAMPLE: &str = "1: POSIX  ADVISORY  WRITE 6384 fe:00:9978253 1073741826 1073742335\n\
2: POSIX  ADVISORY  WRITE 6384 fe:00:9978253 1073741824 1073741824\n\
3: FLOCK  ADVISORY  WRITE 700 00:2e:55 0 EOF\n\
3: -> FLOCK  ADVISORY  WRITE 701 00:2e:55 0 EOF\n\
3:  -> FLOCK  ADVISORY  WRITE 702 00:2e:55 0 EOF\n\
4: OFDLCK ADVISORY  READ  -1 00:06:1234 0 EOF\n\
5: LEASE  ACTIVE    READ  900 fd:01:77 0 EOF\n\
6: POSIX  *NOINODE* WRITE 42 <none>:0 0 EOF\n\
junk\n";

    #[test]
    fn parses_real_lock_table() {
        let l = parse_locks(SAMPLE);
        assert_eq!(l.len(), 7);
        assert_eq!(l[0].pid, Some(6384));
        assert_eq!(l[0].dev, (0xfe, 0));
        assert_eq!(l[0].ino, 9_978_253);
        assert_eq!(l[0].end, Some(1_073_742_335));
        assert_eq!(l[0].range(), "1073741826-1073742335");
        assert!(!l[2].waiter && l[3].waiter && l[4].waiter);
        assert_eq!((l[3].pid, l[4].pid), (Some(701), Some(702)));
        assert_eq!(l[2].end, None);
        assert_eq!(l[2].range(), "0-EOF");
        assert_eq!((l[5].pid, l[5].pid_field), (None, -1));
        assert_eq!(l[6].kind, "LEASE");
    }

    #[test]
    fn waiters_in_every_kernel_form() {
        // Before 5.12 `1: ->`; since, one `->` indented by depth; `-> ->` is tolerated too.
        for line in [
            "1: -> POSIX  ADVISORY  WRITE 5 fe:00:1 0 EOF",
            "1:   -> POSIX  ADVISORY  WRITE 5 fe:00:1 0 EOF",
            "1:  -> -> POSIX  ADVISORY  WRITE 5 fe:00:1 0 EOF",
        ] {
            let l = parse_locks(line);
            assert_eq!(l.len(), 1, "{line}");
            assert!(l[0].waiter, "{line}");
            assert_eq!((l[0].kind.as_str(), l[0].pid), ("POSIX", Some(5)), "{line}");
        }
    }

    #[test]
    fn owners_outside_the_namespace_and_old_signed_inodes() {
        let l = parse_locks(
            "1: POSIX  ADVISORY  WRITE 0 fe:00:1 0 EOF\n\
             2: POSIX  ADVISORY  READ -77 00:2f:9 0 0\n\
             3: FLOCK  ADVISORY  WRITE 12 00:30:-9223372036854775807 0 EOF\n\
             4: DELEG  ACTIVE    READ  13 103:02:88 0 EOF\n",
        );
        assert_eq!(l.len(), 4);
        assert_eq!((l[0].pid, l[0].pid_field), (None, 0));
        assert_eq!((l[1].pid, l[1].pid_field, l[1].end), (None, -77, Some(0)));
        // Overlayfs xino inode printed with %ld before Linux 5.5: the same bits as st_ino.
        assert_eq!(l[2].ino, 0x8000_0000_0000_0001);
        assert_eq!(l[3].dev, (0x103, 2));
        assert!(l[3].covers(5, 1 << 40));
        assert!(!l[1].covers(0, 1));
    }
}
