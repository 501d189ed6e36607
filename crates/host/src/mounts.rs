//! `mountinfo` with everything a data-path or disk check needs: mount options (per mount and
//! per superblock), the device number and filesystem type, and which mount holds a path.
//!
//! `procfs::parse_mountinfo` keeps the five fields the propagation check reads; this parser
//! keeps the options too, since `noexec` may be set on either the mount (`MS_NOEXEC`, field 6)
//! or not at all on the superblock — they are different lists (proc(5), "mountinfo").
//!
//! Memory bound: the caller reads the table with `procfs::read_host_wide` (at most
//! `MAX_PROC_FILE_BYTES`, 4 MiB); the parsed entries hold the same strings once more.

use serde::Serialize;

use crate::procfs::unescape_octal;

/// One line of `/proc/<pid>/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MountEntry {
    /// The device (major, minor) of the mounted filesystem (`st_dev` of its files).
    pub device: (u32, u32),
    /// The directory of the filesystem that forms this mount's root.
    pub root: String,
    /// Where it is mounted, relative to the reading process's root (the host's `/` for pid 1).
    pub mount_point: String,
    /// Per-mount options (`rw`, `noexec`, `nosuid`, `relatime`, ...).
    pub options: Vec<String>,
    pub fs_type: String,
    pub source: String,
    /// Per-superblock options (`rw`, `errors=remount-ro`, ...).
    pub super_options: Vec<String>,
}

impl MountEntry {
    /// Returns true if and only if `option` is set on the mount or its superblock.
    pub fn has_option(&self, option: &str) -> bool {
        self.options
            .iter()
            .chain(&self.super_options)
            .any(|o| o == option)
    }
}

/// Parses a `mountinfo` table; a malformed line is skipped (the kernel writes the table).
/// Octal escapes (`\040` for a space) in paths are decoded.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<MountEntry> {
    let (left, right) = line.split_once(" - ")?;
    let f: Vec<&str> = left.split(' ').collect();
    if f.len() < 6 {
        return None;
    }
    f[0].parse::<u64>().ok()?;
    let (major, minor) = f[2].split_once(':')?;
    let device = (major.parse().ok()?, minor.parse().ok()?);
    let mut r = right.split(' ');
    let fs_type = r.next().filter(|t| !t.is_empty())?.to_string();
    let source = unescape_octal(r.next().unwrap_or(""));
    let super_options = r.next().map(split_options).unwrap_or_default();
    Some(MountEntry {
        device,
        root: unescape_octal(f[3]),
        mount_point: unescape_octal(f[4]),
        options: split_options(f[5]),
        fs_type,
        source,
        super_options,
    })
}

fn split_options(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|o| !o.is_empty())
        .map(str::to_string)
        .collect()
}

/// Returns the mount that holds the absolute, canonical `path`: the longest mount point that
/// is `path` or one of its ancestors, the last listed when several are stacked on one point
/// (the kernel lists the one on top last).
pub fn holding<'a>(mounts: &'a [MountEntry], path: &str) -> Option<&'a MountEntry> {
    let covers = |m: &&MountEntry| {
        let mp = m.mount_point.trim_end_matches('/');
        mp.is_empty() || path == mp || path.strip_prefix(mp).is_some_and(|r| r.starts_with('/'))
    };
    mounts
        .iter()
        .filter(covers)
        .enumerate()
        .max_by_key(|(i, m)| (m.mount_point.trim_end_matches('/').len(), *i))
        .map(|(_, m)| m)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines of this machine's `/proc/1/mountinfo` (an overlay root in a container with a
    /// bind-mounted workspace and a noexec tmpfs), and of a Debian host with a dedicated
    /// Longhorn disk whose path has a space.
    const THIS_MACHINE: &str = "\
1012 944 0:75 / / rw,relatime master:333 - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w
1013 1012 0:77 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
1014 1012 0:78 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755,inode64
1020 1012 254:1 /work /work rw,relatime - ext4 /dev/vda1 rw,discard,errors=remount-ro
1030 1014 0:80 / /dev/shm rw,nosuid,nodev,noexec,relatime - tmpfs shm rw,size=65536k,inode64
22 1 253:0 / /var/lib/long\\040horn rw,relatime shared:1 - xfs /dev/vdb rw,attr2,inode64,noquota
bad line
";

    #[test]
    fn real_lines_with_both_option_lists() {
        let m = parse_mountinfo(THIS_MACHINE);
        assert_eq!(m.len(), 6);
        assert_eq!(m[0].fs_type, "overlay");
        assert_eq!(m[3].device, (254, 1));
        assert_eq!(m[3].root, "/work");
        assert!(m[3].has_option("errors=remount-ro"));
        assert!(m[4].has_option("noexec"));
        assert!(!m[3].has_option("noexec"));
        assert_eq!(m[5].mount_point, "/var/lib/long horn");
    }

    #[test]
    fn the_longest_mount_point_holds_a_path() {
        let m = parse_mountinfo(THIS_MACHINE);
        assert_eq!(holding(&m, "/var/lib/longhorn").unwrap().mount_point, "/");
        assert_eq!(holding(&m, "/var/lib/long horn/r").unwrap().fs_type, "xfs");
        assert_eq!(holding(&m, "/dev/shm").unwrap().source, "shm");
        assert_eq!(holding(&m, "/dev/shmx").unwrap().source, "tmpfs");
        assert_eq!(holding(&m, "/workspace").unwrap().fs_type, "overlay");
        assert!(holding(&[], "/").is_none());
    }

    #[test]
    fn stacked_mounts_the_last_wins() {
        let t = "1 0 0:1 / / rw - ext4 a rw\n2 1 0:2 / /var rw - tmpfs b rw\n3 1 0:3 / /var/ rw - tmpfs c rw\n";
        assert_eq!(holding(&parse_mountinfo(t), "/var/x").unwrap().source, "c");
    }
}
