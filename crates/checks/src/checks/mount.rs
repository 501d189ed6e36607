//! `mount.propagation`: the mount holding the storage data path is shared, so mounts made by
//! the CSI plugin inside its container propagate to the host (Bidirectional propagation).

use hostready_host::mounts;

use crate::facts::Facts;
use crate::finding::{Evidence, Outcome, Remediation};

/// Checks that the mount containing `path` is in a shared peer group.
pub fn propagation(path: &str, facts: &Facts<'_>) -> Outcome {
    let mut ev = Evidence::default();
    let (mounts, source) = match facts.mounts() {
        Ok(m) => m,
        Err(why) => return Outcome::unknown(format!("cannot read the host's mounts: {why}"), ev),
    };
    ev.add("source", source);
    // Every line the parser keeps: this check reads only the mount point and optional fields.
    let Some(m) = mounts::holding(mounts.iter(), path) else {
        return Outcome::unknown(format!("no mount in {source} contains {path}"), ev);
    };
    ev.add("mount", &*m.mount_point);
    let fields: Vec<&str> = m.propagation().collect();
    ev.add(
        "optional fields",
        if fields.is_empty() {
            "none (private)".to_string()
        } else {
            fields.join(" ")
        },
    );
    if m.is_shared() {
        return Outcome::pass(format!("{} (holding {path}) is shared", m.mount_point), ev);
    }
    Outcome::fail(
        format!("{} (holding {path}) is not shared; mounts that storage pods make there (Bidirectional propagation) will not reach the host", m.mount_point),
        ev,
        Remediation {
            summary: format!("make {} shared (systemd does this at boot; a container runtime or fstab may have undone it)", m.mount_point),
            commands: vec![format!("mount --make-rshared {}", m.mount_point)],
            notes: vec!["to persist, find what makes it private (e.g. MountFlags=slave in the container runtime's unit) and remove it".into()],
            ..Remediation::default()
        },
    )
}
