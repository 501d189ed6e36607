//! `swap`: whether swap is active, from `/proc/swaps` (no `swapon`). The kubelet's rule:
//! it refuses to start while swap is on unless `failSwapOn: false` (and the NodeSwap
//! feature decides whether pods may use it).

use hostready_host::kernel::ConfigValue;
use hostready_host::swap;

use crate::facts::Facts;
use crate::finding::{Evidence, Outcome, Remediation};
use crate::remedy;

/// Checks that swap is active (`enabled`) or not.
pub fn check(enabled: bool, facts: &Facts<'_>) -> Outcome {
    let mut ev = Evidence::default();
    let proc = match facts.proc() {
        Ok(p) => p,
        Err(why) => return Outcome::unknown(format!("cannot read /proc/swaps: {why}"), ev),
    };
    let areas = match proc.read_to_string_bounded("/swaps", swap::MAX_SWAPS_BYTES) {
        Ok(t) => match swap::parse(&t) {
            Ok(a) => a,
            Err(e) => return Outcome::unknown(format!("cannot tell whether swap is on: {e}"), ev),
        },
        Err(e) if e.is_not_found() => {
            // No /proc/swaps: a kernel built without CONFIG_SWAP has none; anything else is
            // a procfs that does not describe this host.
            match facts
                .kernel_config()
                .map(|c| (c.source.clone(), c.get("CONFIG_SWAP")))
            {
                Ok((src, ConfigValue::NotSet)) => {
                    ev.add("config source", src);
                    ev.add("CONFIG_SWAP", "not set");
                    Vec::new()
                }
                _ => {
                    return Outcome::unknown(
                        "/proc/swaps does not exist, and the kernel config does not say the kernel has no swap support",
                        ev,
                    );
                }
            }
        }
        Err(e) => {
            return Outcome::unknown(format!("cannot read /proc/swaps: {}", e.source), ev);
        }
    };
    ev.add("source", "/proc/swaps");
    let shown: Vec<String> = areas
        .iter()
        .map(|a| format!("{} ({}, {} MiB)", a.filename, a.kind, a.size_kib / 1024))
        .collect();
    ev.add(
        "active swap",
        if shown.is_empty() {
            "none".to_string()
        } else {
            shown.join(", ")
        },
    );
    // What the boot turns on: a host with swap off now but an fstab line fails the
    // kubelet after its next reboot.
    let at_boot = match facts
        .fs()
        .read_to_string_bounded("/etc/fstab", swap::MAX_FSTAB_BYTES)
    {
        Ok(t) => {
            let lines: Vec<String> = swap::fstab_swaps(&t)
                .into_iter()
                .map(|(n, d)| format!("{d} (/etc/fstab:{n})"))
                .collect();
            ev.add(
                "swap at boot",
                if lines.is_empty() {
                    "none in /etc/fstab".to_string()
                } else {
                    lines.join(", ")
                },
            );
            lines
        }
        Err(e) => {
            if !e.is_not_found() {
                ev.add("/etc/fstab", format!("unreadable: {}", e.source));
            }
            Vec::new()
        }
    };
    match (enabled, areas.is_empty()) {
        (false, true) if !at_boot.is_empty() => Outcome::warn(
            format!(
                "no swap is active, but /etc/fstab turns on {} at boot; the kubelet will refuse to start after a reboot",
                at_boot.join(", ")
            ),
            ev,
            Some(remedy::swap_off(&at_boot)),
        ),
        (false, true) => Outcome::pass("no swap is active", ev),
        (true, false) => Outcome::pass(format!("swap is active: {}", shown.join(", ")), ev),
        (false, false) => Outcome::fail(
            format!(
                "swap is active ({}); the kubelet refuses to start unless failSwapOn: false",
                shown.join(", ")
            ),
            ev,
            remedy::swap_off(&shown),
        ),
        (true, true) => Outcome::fail(
            "no swap is active",
            ev,
            Remediation {
                summary: "add a swap area and enable it at boot (an /etc/fstab line or a systemd swap unit)".into(),
                commands: vec![
                    "[ -e /swapfile ] || { fallocate -l 4G /swapfile && chmod 600 /swapfile && mkswap /swapfile; }".into(),
                    "swapon /swapfile".into(),
                    "grep -q '^/swapfile ' /etc/fstab || echo '/swapfile none swap sw 0 0' >> /etc/fstab".into(),
                ],
                ..Remediation::default()
            },
        ),
    }
}
