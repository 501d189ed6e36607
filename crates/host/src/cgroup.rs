//! The control-group layout of the host: unified (cgroup v2 only), legacy (v1) or hybrid (v1
//! controllers with a cgroup2 `unified` mount beside them), and which controllers exist —
//! decided the way the kubelet decides (`/sys/fs/cgroup` is cgroup2 or it is not).
//!
//! Sources: the host's mount table (pid 1's `mountinfo`), `/sys/fs/cgroup/cgroup.controllers`
//! for v2, the `enabled` column of `/proc/cgroups` for v1. Memory bound: the files are read
//! with caps ([`MAX_CONTROLLERS_BYTES`], [`MAX_PROC_CGROUPS_BYTES`]); the mount table is the
//! caller's ([`crate::mounts::MountTable`], bounded by [`crate::procfs::MAX_PROC_FILE_BYTES`]),
//! walked once without keeping its entries.

use serde::Serialize;

use crate::mounts::Mount;

/// Where the kubelet and runc look for the cgroup hierarchy.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The largest `cgroup.controllers` read: a dozen names.
pub const MAX_CONTROLLERS_BYTES: u64 = 4096;

/// The largest `/proc/cgroups` read: one line per controller, about twenty.
pub const MAX_PROC_CGROUPS_BYTES: u64 = 64 << 10;

/// How the host mounts its control groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// cgroup2 mounted at `/sys/fs/cgroup`: version 2.
    Unified,
    /// Only v1 hierarchies.
    Legacy,
    /// v1 hierarchies under `/sys/fs/cgroup` and a cgroup2 mount elsewhere (systemd's
    /// `unified`), or a cgroup2 mount only elsewhere: `/sys/fs/cgroup` is not cgroup2, so the
    /// kubelet sees version 1.
    Hybrid,
    /// No control group is mounted.
    None,
}

impl Layout {
    /// Returns the version the kubelet (and runc) use on this layout: 2 only when
    /// `/sys/fs/cgroup` itself is cgroup2.
    pub fn kubelet_version(self) -> Option<u8> {
        match self {
            Layout::Unified => Some(2),
            Layout::Legacy | Layout::Hybrid => Some(1),
            Layout::None => None,
        }
    }

    /// Returns the word shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::Unified => "unified (cgroup v2)",
            Layout::Legacy => "legacy (cgroup v1)",
            Layout::Hybrid => "hybrid (cgroup v1 controllers, cgroup2 only at a side mount)",
            Layout::None => "no cgroup mounted",
        }
    }
}

/// Returns the layout of a mount table (every line kept by the parser: only the mount point
/// and type are read). The last mount at `/sys/fs/cgroup` is the one visible (an overmount
/// hides what was there), as `statfs("/sys/fs/cgroup")` sees it.
pub fn layout<'t>(mounts: impl IntoIterator<Item = Mount<'t>>) -> Layout {
    let (mut root_is_v2, mut v1, mut v2) = (false, false, false);
    for m in mounts {
        if m.mount_point == CGROUP_ROOT {
            root_is_v2 = m.fs_type == "cgroup2";
        }
        v1 |= m.fs_type == "cgroup";
        v2 |= m.fs_type == "cgroup2";
    }
    if root_is_v2 {
        return Layout::Unified;
    }
    match (v1, v2) {
        (true, true) => Layout::Hybrid,
        (true, false) => Layout::Legacy,
        // A cgroup2 mount somewhere else only: the kubelet's `/sys/fs/cgroup` is not it.
        (false, true) => Layout::Hybrid,
        (false, false) => Layout::None,
    }
}

/// Parses `cgroup.controllers`: names separated by spaces.
pub fn parse_controllers(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_string).collect()
}

/// One line of `/proc/cgroups`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Controller {
    pub name: String,
    /// 0 when not bound to a v1 hierarchy (it may be on the v2 one).
    pub hierarchy: u32,
    pub enabled: bool,
}

/// Parses `/proc/cgroups` (`#subsys_name hierarchy num_cgroups enabled`); lines that do not
/// have four fields with numbers are skipped, as the kernel never writes them.
pub fn parse_proc_cgroups(text: &str) -> Vec<V1Controller> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() != 4 {
                return None;
            }
            let _: u64 = f[2].parse().ok()?;
            Some(V1Controller {
                name: f[0].to_string(),
                hierarchy: f[1].parse().ok()?,
                enabled: f[3].parse::<u8>().ok()? == 1,
            })
        })
        .collect()
}

/// Returns the name a controller has on the other version (`io` on v2 is `blkio` on v1), so
/// a profile may name either.
pub fn alias(name: &str) -> Option<&'static str> {
    match name {
        "io" => Some("blkio"),
        "blkio" => Some("io"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mounts::parse_mountinfo;

    /// This machine: v1 controllers under a tmpfs, systemd's cgroup2 at `unified`.
    const HYBRID: &str = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
        32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
        35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
        39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n\
        40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n\
        41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

    /// Debian 12 / Ubuntu 22.04 default.
    const UNIFIED: &str = "25 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n\
        29 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";

    #[test]
    fn layouts_real_samples() {
        assert_eq!(layout(parse_mountinfo(HYBRID)), Layout::Hybrid);
        assert_eq!(layout(parse_mountinfo(HYBRID)).kubelet_version(), Some(1));
        assert_eq!(layout(parse_mountinfo(UNIFIED)), Layout::Unified);
        let legacy: String = HYBRID.lines().take(5).map(|l| format!("{l}\n")).collect();
        assert_eq!(layout(parse_mountinfo(&legacy)), Layout::Legacy);
        assert_eq!(layout(Vec::new()), Layout::None);
        // A tmpfs mounted over a cgroup2 root hides it: the kubelet's statfs sees no cgroup2.
        let over = format!("{UNIFIED}40 29 0:40 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n");
        assert_eq!(layout(parse_mountinfo(&over)), Layout::Hybrid);
    }

    #[test]
    fn controllers_real_samples() {
        assert_eq!(
            parse_controllers("cpuset cpu io memory hugetlb pids rdma misc\n"),
            [
                "cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc"
            ]
        );
        // This machine's /proc/cgroups.
        let t = "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpuset\t3\t1\t1\ncpu\t1\t1\t1\n\
                 memory\t4\t30\t1\nnet_cls\t0\t1\t1\nhugetlb\t0\t1\t0\npids\t8\t1\t1\n";
        let c = parse_proc_cgroups(t);
        assert_eq!(c.len(), 6);
        assert_eq!(
            c[2],
            V1Controller {
                name: "memory".into(),
                hierarchy: 4,
                enabled: true
            }
        );
        assert!(!c[4].enabled);
        assert!(parse_proc_cgroups("cpu 1 x 1\nmemory 1 1\n").is_empty());
    }
}
