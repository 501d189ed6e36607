//! `path.<path>`: a storage system's data directory sits on an allowed filesystem, without
//! forbidden mount options, with enough free space (Longhorn's `/var/lib/longhorn`, Rook's
//! `dataDirHostPath`, OpenEBS hostpath's `/var/openebs/local`).
//!
//! The path is resolved inside the root (symlinks cannot leave it); a path that does not exist
//! yet — Longhorn creates its own — is judged by its nearest existing ancestor, and the
//! finding says so. The mount holding it comes from the host's `mountinfo` (the longest mount
//! point above it), free space from `statvfs` through the root. In a DaemonSet the root is
//! the host's `/` bind-mounted into the pod: if the pod does not see the host's mounts below
//! it (no `HostToContainer` propagation), `statvfs` would measure the wrong filesystem, so the
//! device seen through the root is compared with the mount's before space is trusted.

use std::path::Path;

use hostready_host::{mounts, statfs};

use crate::facts::Facts;
use crate::finding::{Evidence, Outcome, Remediation};

/// What a `data_path:` requirement asks for.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DataPath {
    pub path: String,
    /// Allowed filesystem types (`ext4`, `xfs`); empty: any.
    pub filesystems: Vec<String>,
    /// Free space an unprivileged writer may still use, at least this many GiB.
    pub min_free_gib: Option<u64>,
    /// Mount options that must not be set (`noexec`), on the mount or its superblock.
    pub forbid_options: Vec<String>,
}

const GIB: u64 = 1 << 30;

/// Checks the filesystem holding `want.path`.
pub fn check(want: &DataPath, facts: &Facts<'_>) -> Outcome {
    let mut ev = Evidence::default();
    let path = Path::new(&want.path);
    let at = match statfs::nearest_existing(facts.fs(), path) {
        Ok(at) => at,
        Err(e) => {
            return Outcome::unknown(format!("cannot resolve {e}: {}", e.source), ev);
        }
    };
    if let Some(l) = (hostready_host::Resolved {
        path: at.canonical.clone(),
        links: at.links.clone(),
    })
    .escaping_link()
    {
        return Outcome::unknown(
            format!(
                "{} is a symlink to {}, which climbs out of the root: what {} names on the host cannot be told",
                l.path.display(),
                l.target.display(),
                want.path
            ),
            ev,
        );
    }
    let canonical = at.canonical.display().to_string();
    let subject = if at.exists {
        if canonical != want.path {
            ev.add("resolved", &canonical);
        }
        want.path.clone()
    } else {
        ev.add(
            "exists",
            format!("no: judged by its nearest existing ancestor {canonical}"),
        );
        format!("{} (not created yet; its ancestor {canonical})", want.path)
    };
    let (table, source) = match facts.mounts() {
        Ok(t) => t,
        Err(why) => return Outcome::unknown(format!("cannot read the host's mounts: {why}"), ev),
    };
    ev.add("mounts source", source);
    // Only complete lines: the type and device are what this check judges by.
    let Some(m) = mounts::holding(table.complete(), &canonical) else {
        return Outcome::unknown(format!("no mount in {source} holds {canonical}"), ev);
    };
    ev.add(
        "mount",
        format!("{} on {} ({})", m.source, m.mount_point, m.fs_type),
    );
    ev.add("options", m.options().collect::<Vec<_>>().join(","));
    let mut problems = Vec::new();
    if !want.filesystems.is_empty() && !want.filesystems.iter().any(|f| f == m.fs_type) {
        problems.push(format!(
            "it is on {}, not {}",
            m.fs_type,
            want.filesystems.join(" or ")
        ));
    }
    let forbidden: Vec<&str> = want
        .forbid_options
        .iter()
        .filter(|o| m.has_option(o))
        .map(String::as_str)
        .collect();
    if !forbidden.is_empty() {
        problems.push(format!("its mount has {}", forbidden.join(", ")));
    }
    let mut space_unknown = None;
    if let Some(min) = want.min_free_gib {
        match space(facts, &at.canonical, &m, &mut ev) {
            Ok(avail) if avail < min.saturating_mul(GIB) => {
                problems.push(format!("{} GiB free, {min} GiB wanted", avail / GIB))
            }
            Ok(_) => {}
            Err(why) => space_unknown = Some(why),
        }
    }
    if !problems.is_empty() {
        let fix = Remediation {
            summary: format!(
                "put {} on a dedicated {} filesystem{}",
                want.path,
                if want.filesystems.is_empty() {
                    "local".to_string()
                } else {
                    want.filesystems.join(" or ")
                },
                want.min_free_gib
                    .map(|g| format!(" with at least {g} GiB free"))
                    .unwrap_or_default()
            ),
            notes: if forbidden.is_empty() {
                Vec::new()
            } else {
                vec![format!(
                    "remove {} from the options of {} in /etc/fstab and remount",
                    forbidden.join(","),
                    m.mount_point
                )]
            },
            ..Remediation::default()
        };
        return Outcome::fail(format!("{subject}: {}", problems.join("; ")), ev, fix);
    }
    if let Some(why) = space_unknown {
        return Outcome::unknown(
            format!(
                "{subject} is on {}; its free space is unknown: {why}",
                m.fs_type
            ),
            ev,
        );
    }
    Outcome::pass(
        format!("{subject} is on {} ({})", m.fs_type, m.mount_point),
        ev,
    )
}

/// Returns the bytes available on the filesystem at `path`, refusing a figure measured on a
/// filesystem other than the host's mount `m`.
fn space(
    facts: &Facts<'_>,
    path: &Path,
    m: &mounts::Mount<'_>,
    ev: &mut Evidence,
) -> Result<u64, String> {
    let node = facts
        .fs()
        .node(path)
        .map_err(|e| format!("cannot examine {e}: {}", e.source))?;
    // Unreachable for the complete lines this check takes; said rather than assumed.
    let Some((major, minor)) = m.device else {
        return Err(format!(
            "the host's mountinfo names no device for {}",
            m.mount_point
        ));
    };
    // btrfs gives each subvolume its own anonymous st_dev, which mountinfo does not show.
    if node.dev != (major, minor) && m.fs_type != "btrfs" {
        return Err(format!(
            "through the root, {} is on device {}:{}, but the host mounts {major}:{minor} there: the host's mounts are not visible here (mount the host root with mountPropagation: HostToContainer)",
            path.display(),
            node.dev.0,
            node.dev.1,
        ));
    }
    let s =
        statfs::space(facts.fs(), path).map_err(|e| format!("cannot statvfs {e}: {}", e.source))?;
    ev.add(
        "space",
        format!(
            "{:.1} GiB available of {:.1} GiB",
            s.available_bytes as f64 / GIB as f64,
            s.total_bytes as f64 / GIB as f64
        ),
    );
    Ok(s.available_bytes)
}
