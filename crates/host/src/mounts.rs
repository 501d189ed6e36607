//! The host's mount table: the one parser of `/proc/<pid>/mountinfo` (proc(5)), whose entries
//! carry what every user needs — the mount point and its peer-group fields (propagation), the
//! filesystem type (cgroup layout, data paths), the device number, source and both option
//! lists (data paths, raw disks) — and which mount holds a path.
//!
//! Format, per line: `ID PARENT MAJOR:MINOR ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE
//! SOURCE SUPER_OPTIONS`, paths with `seq_file`'s octal escapes (`\040` for a space). The
//! per-mount options (`noexec` as `MS_NOEXEC`) and the superblock's are different lists.
//!
//! Which lines are kept: any line with the ` - ` separator and at least six fields before it.
//! The propagation and cgroup checks read only the mount point, the optional fields and the
//! type, and they have always taken such a line whatever its other fields hold; the data-path
//! and raw-disk checks judge by the device and the type, so they take only
//! [`Mount::is_complete`] lines (a numeric ID, a `major:minor` device, a type), as they always
//! have. No line is an error: the kernel writes the table, and a damaged line is skipped by
//! the users that cannot read it (pinned per user by `crates/checks/tests/mount_table.rs`).
//!
//! Memory bound: [`MountTable`] holds the text as read (through the rooted host's procfs with
//! `procfs::read_host_wide`, at most [`crate::procfs::MAX_PROC_FILE_BYTES`], 4 MiB; a larger
//! file is an error, never a prefix) and nothing else. Entries are parsed as they are iterated
//! and borrow from the text; a path is copied only when it holds an escape, and then only for
//! the entry in hand. So a run's mount table costs at most 4 MiB however many mounts it lists,
//! where a list of owned entries would cost a 24-byte `String` and an allocation for every
//! two-byte option (`a,a,a,...`): some twenty times the text.
//!
//! Why not `procfs-core`'s `MountInfo`: it owns every field of every entry (both option lists
//! as `HashMap`s, the optional fields as a `Vec`), so a table costs several times its text and
//! a damaged one many times more, where this parser keeps only the text.

use std::borrow::Cow;

use crate::procfs::unescape_octal;

/// A mount table as read from `mountinfo`, with the file it came from kept by the caller.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MountTable {
    text: String,
}

impl MountTable {
    /// Keeps `text` (a `mountinfo` file) to be parsed as it is iterated.
    pub fn new(text: String) -> MountTable {
        MountTable { text }
    }

    /// Returns the mounts in the kernel's order (a mount stacked on another comes after it).
    pub fn iter(&self) -> impl Iterator<Item = Mount<'_>> + Clone {
        parse_mountinfo(&self.text)
    }

    /// Returns the mounts whose every field parsed (see [`Mount::is_complete`]).
    pub fn complete(&self) -> impl Iterator<Item = Mount<'_>> + Clone {
        self.iter().filter(Mount::is_complete)
    }
}

/// One line of `mountinfo`, borrowing from its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount<'t> {
    /// The mount ID (field 1); `None` when it is no number.
    pub id: Option<u64>,
    /// The device (major, minor) of the mounted filesystem (`st_dev` of its files); `None`
    /// when field 3 is no `major:minor`.
    pub device: Option<(u32, u32)>,
    /// The directory of the filesystem that forms this mount's root.
    pub root: Cow<'t, str>,
    /// Where it is mounted, relative to the reading process's root (the host's `/` for pid 1).
    pub mount_point: Cow<'t, str>,
    /// The filesystem type (`ext4`, `cgroup2`, `fuse.sshfs`); empty on a damaged line.
    pub fs_type: &'t str,
    pub source: Cow<'t, str>,
    options: &'t str,
    optional: &'t str,
    super_options: &'t str,
}

impl<'t> Mount<'t> {
    /// Returns the per-mount options (`rw`, `noexec`, `nosuid`, `relatime`, ...).
    pub fn options(&self) -> impl Iterator<Item = &'t str> + use<'t> {
        split_options(self.options)
    }

    /// Returns the per-superblock options (`rw`, `errors=remount-ro`, ...).
    pub fn super_options(&self) -> impl Iterator<Item = &'t str> + use<'t> {
        split_options(self.super_options)
    }

    /// Returns the optional fields: the peer groups (`shared:1`, `master:3`,
    /// `propagate_from:2`) and `unbindable`.
    pub fn propagation(&self) -> impl Iterator<Item = &'t str> + use<'t> {
        self.optional.split(' ').filter(|s| !s.is_empty())
    }

    /// Returns true if and only if `option` is set on the mount or its superblock.
    pub fn has_option(&self, option: &str) -> bool {
        self.options()
            .chain(self.super_options())
            .any(|o| o == option)
    }

    /// Returns true if and only if the mount is in a shared peer group (`shared:N`).
    pub fn is_shared(&self) -> bool {
        self.propagation().any(|t| t.starts_with("shared:"))
    }

    /// Returns true if and only if the fields the kernel always writes parsed: a numeric mount
    /// ID, a `major:minor` device and a filesystem type. Users that judge by the device or the
    /// type skip other lines.
    pub fn is_complete(&self) -> bool {
        self.id.is_some() && self.device.is_some() && !self.fs_type.is_empty()
    }
}

/// Parses a `mountinfo` table as it is iterated; a line without the ` - ` separator or with
/// fewer than six fields before it is skipped. Octal escapes in paths are decoded.
pub fn parse_mountinfo(text: &str) -> impl Iterator<Item = Mount<'_>> + Clone {
    text.lines().filter_map(parse_line)
}

fn parse_line(line: &str) -> Option<Mount<'_>> {
    let (left, right) = line.split_once(" - ")?;
    // Six fields, then the optional ones (possibly none) as one rest.
    let mut f = left.splitn(7, ' ');
    let (id, _parent, device, root, mount_point, options) = (
        f.next()?,
        f.next()?,
        f.next()?,
        f.next()?,
        f.next()?,
        f.next()?,
    );
    let mut r = right.split(' ');
    Some(Mount {
        id: id.parse().ok(),
        device: device
            .split_once(':')
            .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?))),
        root: unescape(root),
        mount_point: unescape(mount_point),
        options,
        optional: f.next().unwrap_or(""),
        fs_type: r.next().unwrap_or(""),
        source: unescape(r.next().unwrap_or("")),
        super_options: r.next().unwrap_or(""),
    })
}

/// Decodes octal escapes, copying only a path that has one.
fn unescape(s: &str) -> Cow<'_, str> {
    if s.contains('\\') {
        Cow::Owned(unescape_octal(s))
    } else {
        Cow::Borrowed(s)
    }
}

fn split_options(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').filter(|o| !o.is_empty())
}

/// Returns the mount that holds the absolute, canonical `path`: the longest mount point that
/// is `path` or one of its ancestors, the last listed when several are stacked on one point
/// (the kernel lists the one on top last).
pub fn holding<'t>(mounts: impl IntoIterator<Item = Mount<'t>>, path: &str) -> Option<Mount<'t>> {
    let covers = |m: &Mount<'_>| {
        let mp = m.mount_point.trim_end_matches('/');
        mp.is_empty() || path == mp || path.strip_prefix(mp).is_some_and(|r| r.starts_with('/'))
    };
    let mut best: Option<(usize, Mount<'t>)> = None;
    for m in mounts.into_iter().filter(covers) {
        let len = m.mount_point.trim_end_matches('/').len();
        // `>=`: of equal lengths the later one is on top.
        if best.as_ref().is_none_or(|(l, _)| len >= *l) {
            best = Some((len, m));
        }
    }
    best.map(|(_, m)| m)
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

    fn table(t: &str) -> Vec<Mount<'_>> {
        parse_mountinfo(t).collect()
    }

    #[test]
    fn real_lines_with_both_option_lists() {
        let m = table(THIS_MACHINE);
        assert_eq!(m.len(), 6);
        assert!(m.iter().all(Mount::is_complete));
        assert_eq!(m[0].fs_type, "overlay");
        assert_eq!(m[0].propagation().collect::<Vec<_>>(), ["master:333"]);
        assert_eq!(m[3].id, Some(1020));
        assert_eq!(m[3].device, Some((254, 1)));
        assert_eq!(m[3].root, "/work");
        assert!(m[3].has_option("errors=remount-ro"));
        assert!(m[4].has_option("noexec"));
        assert!(!m[3].has_option("noexec"));
        assert_eq!(
            m[4].options().collect::<Vec<_>>(),
            ["rw", "nosuid", "nodev", "noexec", "relatime"]
        );
        assert_eq!(m[5].mount_point, "/var/lib/long horn");
        assert!(matches!(m[3].mount_point, Cow::Borrowed(_)));
    }

    #[test]
    fn the_longest_mount_point_holds_a_path() {
        let m = table(THIS_MACHINE);
        let at = |p: &str| holding(m.iter().cloned(), p).unwrap();
        assert_eq!(at("/var/lib/longhorn").mount_point, "/");
        assert_eq!(at("/var/lib/long horn/r").fs_type, "xfs");
        assert_eq!(at("/dev/shm").source, "shm");
        assert_eq!(at("/dev/shmx").source, "tmpfs");
        assert_eq!(at("/workspace").fs_type, "overlay");
        assert!(holding(Vec::new(), "/").is_none());
    }

    #[test]
    fn stacked_mounts_the_last_wins() {
        let t = "1 0 0:1 / / rw - ext4 a rw\n2 1 0:2 / /var rw - tmpfs b rw\n3 1 0:3 / /var/ rw - tmpfs c rw\n";
        assert_eq!(holding(parse_mountinfo(t), "/var/x").unwrap().source, "c");
        let t = "1 0 0:1 / / rw shared:1 - ext4 a rw\n2 1 0:2 / /var rw - tmpfs b rw\n3 1 0:3 / /var rw shared:5 - tmpfs c rw\n";
        let m = holding(parse_mountinfo(t), "/var/x").unwrap();
        assert_eq!(m.source, "c");
        assert!(m.is_shared());
    }

    /// Moved from procfs with its parser: peer groups, a master-only mount, an escaped path.
    #[test]
    fn propagation_fields_real_sample() {
        let t = "22 1 253:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
                 30 22 0:5 / /dev rw,nosuid master:2 - devtmpfs udev rw\n\
                 40 22 253:1 / /var/lib/long\\040horn rw - xfs /dev/vdb rw\n\
                 bad line\n";
        let m = table(t);
        assert_eq!(m.len(), 3);
        assert!(m[0].is_shared());
        assert!(!m[1].is_shared());
        assert_eq!(m[2].propagation().count(), 0);
        assert_eq!(m[2].mount_point, "/var/lib/long horn");
        let at = |p: &str| holding(m.iter().cloned(), p).unwrap();
        assert_eq!(at("/var/lib/longhorn").mount_point, "/");
        assert_eq!(at("/var/lib/long horn/x").fs_type, "xfs");
        assert_eq!(at("/dev").fs_type, "devtmpfs");
    }

    /// Regression (moved from procfs): an escape above `\377` stays text, never a wrapped byte.
    #[test]
    fn an_impossible_escape_stays_text() {
        let m = table("22 1 253:0 / /m\\777 rw - ext4 /dev/vda rw\n");
        assert_eq!(m[0].mount_point, "/m\\777");
    }

    /// Which damaged lines are kept, and which of them are complete: every user keeps exactly
    /// the lines it kept when there were two parsers (procfs's kept any line with the separator
    /// and six fields; the options parser only complete ones).
    #[test]
    fn damaged_lines_kept_or_skipped() {
        let t = "\
x 22 253:0 / /id rw shared:2 - xfs /dev/vdb rw
40 22 a:b / /dev rw - xfs /dev/vdc rw
41 22 253 / /nocolon rw - xfs /dev/vdc rw
42 22 253:2 / /fstype rw -  /dev/vdd rw
43 22 253:3 / /empty rw - 
44 22 253:4 / /nosource rw - ext4
45 22 253:5 / /short - xfs /dev/vde rw
46 22 253:6 / /nosep rw shared:6 xfs /dev/vdf rw
47 22 253:7 / /dashes rw -ext4 a rw
";
        let kept: Vec<String> = table(t).iter().map(|m| m.mount_point.to_string()).collect();
        assert_eq!(
            kept,
            ["/id", "/dev", "/nocolon", "/fstype", "/empty", "/nosource"]
        );
        let m = table(t);
        assert_eq!(m[0].id, None);
        assert!(m[0].is_shared());
        assert_eq!(m[1].device, None);
        assert_eq!(m[2].device, None);
        assert_eq!(m[3].fs_type, "");
        assert_eq!(m[3].source, "/dev/vdd");
        assert_eq!((m[4].fs_type, &*m[4].source), ("", ""));
        assert_eq!((m[5].fs_type, &*m[5].source), ("ext4", ""));
        assert_eq!(m[5].super_options().count(), 0);
        let complete: Vec<&str> = m
            .iter()
            .filter(|m| m.is_complete())
            .map(|m| &*m.mount_point)
            .collect();
        assert_eq!(complete, ["/nosource"]);
        let owned = MountTable::new(t.to_string());
        assert_eq!(owned.iter().count(), 6);
        assert_eq!(owned.complete().count(), 1);
    }
}
