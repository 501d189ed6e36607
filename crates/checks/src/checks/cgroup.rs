//! `cgroup`: the cgroup version the kubelet sees and the controllers a system needs. The
//! version comes from the host's mount table as the kubelet decides it (`/sys/fs/cgroup` is
//! cgroup2 or not), so the hybrid layout (v1 controllers plus a cgroup2 `unified` mount) is
//! version 1; controllers from `cgroup.controllers` on v2 (with the `devices` and `freezer`
//! the kernel does not list there) and `/proc/cgroups` on v1.

use hostready_host::cgroup::{self, Layout};

use crate::facts::Facts;
use crate::finding::{Evidence, Outcome};
use crate::remedy;

/// Checks the layout against `version` (when given) and that `controllers` are available.
pub fn check(version: Option<u8>, controllers: &[String], facts: &Facts<'_>) -> Outcome {
    let mut ev = Evidence::default();
    let (mounts, source) = match facts.mounts() {
        Ok(m) => m,
        Err(why) => {
            return Outcome::unknown(format!("cannot tell the cgroup layout: {why}"), ev);
        }
    };
    ev.add("mounts", source);
    let layout = cgroup::layout(mounts.iter());
    ev.add("layout", layout.as_str());
    let seen = layout.kubelet_version();
    if let Some(v) = seen {
        ev.add("kubelet sees", format!("cgroup v{v}"));
    }
    if let Some(want) = version {
        match seen {
            None => {
                return Outcome::fail(
                    format!(
                        "no cgroup hierarchy is mounted (no cgroup or cgroup2 in {source}); cgroup v{want} is needed"
                    ),
                    ev,
                    remedy::cgroup_version(want, facts.os()),
                );
            }
            Some(v) if v != want => {
                let why = if layout == Layout::Hybrid {
                    " (hybrid: cgroup2 is mounted only beside the v1 controllers, not at /sys/fs/cgroup, so the kubelet and runc use v1)"
                } else {
                    ""
                };
                let kubelet = if want == 2 {
                    "; the kubelet 1.35 and later refuses cgroup v1 unless failCgroupV1: false"
                } else {
                    ""
                };
                return Outcome::fail(
                    format!("the host runs cgroup v{v}{why}; cgroup v{want} is needed{kubelet}"),
                    ev,
                    remedy::cgroup_version(want, facts.os()),
                );
            }
            Some(_) => {}
        }
    }
    if controllers.is_empty() {
        return match seen {
            Some(v) => Outcome::pass(format!("cgroup v{v} ({})", layout.as_str()), ev),
            None => Outcome::fail(
                format!("no cgroup hierarchy is mounted (no cgroup or cgroup2 in {source})"),
                ev,
                remedy::cgroup_version(2, facts.os()),
            ),
        };
    }
    let (available, undecided) = match available_controllers(layout, facts, &mut ev) {
        Ok(a) => a,
        Err(why) => return Outcome::unknown(why, ev),
    };
    ev.add("available", available.join(" "));
    let missing: Vec<String> = controllers
        .iter()
        .filter(|c| {
            !available
                .iter()
                .any(|a| a == *c || cgroup::alias(c) == Some(a.as_str()))
        })
        .cloned()
        .collect();
    let v = seen.unwrap_or(1);
    if let Some((c, why)) = undecided.iter().find(|(c, _)| missing.contains(c)) {
        return Outcome::unknown(format!("whether cgroup v{v} has {c} is unknown: {why}"), ev);
    }
    if missing.is_empty() {
        return Outcome::pass(
            format!("cgroup v{v} with {} available", controllers.join(", ")),
            ev,
        );
    }
    Outcome::fail(
        format!(
            "cgroup v{v} lacks the controller{} {}",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ")
        ),
        ev,
        remedy::cgroup_controllers(&missing, facts.os()),
    )
}

/// The child cgroups looked at for `cgroup.freeze`: systemd creates the first three on every
/// host it boots, the kubelet the last two. A fixed list keeps the look bounded (the root of a
/// busy node has thousands of entries).
const FREEZE_PROBES: [&str; 5] = [
    "init.scope",
    "system.slice",
    "user.slice",
    "kubepods.slice",
    "kubepods",
];

/// Controllers whose availability could not be told, with why.
type Undecided = Vec<(String, String)>;

/// Returns the controllers available on `layout` — the root's `cgroup.controllers` on v2, the
/// enabled ones of `/proc/cgroups` otherwise, as the kubelet's system validator reads them —
/// and those that could not be told.
///
/// On v2, `devices` and `freezer` never appear in `cgroup.controllers`: the kernel gives
/// every cgroup the BPF device controller (4.15) and the `cgroup.freeze` file of each non-root
/// cgroup (5.2) without listing them. system-validators (`getCgroupV2Subsystems`) counts
/// `devices` always and `freezer` when a child cgroup has `cgroup.freeze`; it creates a child
/// to look, hostready writes nothing and looks in the children that exist.
fn available_controllers(
    layout: Layout,
    facts: &Facts<'_>,
    ev: &mut Evidence,
) -> Result<(Vec<String>, Undecided), String> {
    if layout == Layout::Unified {
        let root = cgroup::CGROUP_ROOT;
        let path = format!("{root}/cgroup.controllers");
        let mut listed = match facts
            .fs()
            .read_to_string_bounded(&path, cgroup::MAX_CONTROLLERS_BYTES)
        {
            Ok(t) => {
                ev.add("source", &path);
                cgroup::parse_controllers(&t)
            }
            Err(e) => {
                return Err(format!(
                    "cgroup v2 is mounted but {path} cannot be read: {} (is the host's /sys in the root?)",
                    e.source
                ));
            }
        };
        listed.push("devices".into());
        let children: Vec<&str> = FREEZE_PROBES
            .iter()
            .copied()
            .filter(|c| facts.fs().exists(format!("{root}/{c}")))
            .collect();
        let mut undecided = Vec::new();
        match children
            .iter()
            .find(|c| facts.fs().exists(format!("{root}/{c}/cgroup.freeze")))
        {
            Some(c) => {
                ev.add(
                    "implicit",
                    format!("devices (BPF), freezer ({root}/{c}/cgroup.freeze)"),
                );
                listed.push("freezer".into());
            }
            None if children.is_empty() => {
                ev.add("implicit", "devices (BPF)");
                undecided.push((
                    "freezer".to_string(),
                    format!(
                        "the v2 freezer shows only as cgroup.freeze in a child cgroup, and none of {} exists under {root}",
                        FREEZE_PROBES.join(", ")
                    ),
                ));
            }
            None => {
                ev.add(
                    "implicit",
                    format!(
                        "devices (BPF); no freezer: {root}/{}/cgroup.freeze does not exist",
                        children[0]
                    ),
                );
            }
        }
        return Ok((listed, undecided));
    }
    let proc = facts.proc()?;
    match proc.read_to_string_bounded("/cgroups", cgroup::MAX_PROC_CGROUPS_BYTES) {
        Ok(t) => {
            ev.add("source", "/proc/cgroups (enabled column)");
            Ok((
                cgroup::parse_proc_cgroups(&t)
                    .into_iter()
                    .filter(|c| c.enabled)
                    .map(|c| c.name)
                    .collect(),
                Vec::new(),
            ))
        }
        Err(e) => Err(format!("cannot read /proc/cgroups: {}", e.source)),
    }
}
