//! `svc.multipathd`: multipathd grabs every SCSI disk it sees, Longhorn's iSCSI devices
//! included (longhorn/longhorn#1210), unless its configuration blacklists them.

use regex::Regex;

use super::service::{self, Activity};
use crate::facts::Facts;
use crate::finding::{Evidence, Outcome, Remediation};

/// The abstract socket multipathd listens on, and that `multipathd.socket` holds for it
/// (multipath-tools `libmpathcmd/mpath_cmd.h` `DEFAULT_SOCKET`, `multipathd/multipathd.socket`
/// `ListenStream=@/org/kernel/linux/storage/multipathd`). Ubuntu server images enable that
/// socket unit by default: multipathd then starts on the first `multipath` call, or at boot.
pub const MULTIPATHD_SOCKET: &str = "@/org/kernel/linux/storage/multipathd";

/// Checks that multipathd is neither running nor socket-activated, or that it blacklists
/// every name in `devices`.
pub fn check(devices: &[String], facts: &Facts<'_>) -> Outcome {
    let mut ev = Evidence::default();
    let seen = service::observe(
        "multipathd",
        "multipathd",
        Some(MULTIPATHD_SOCKET),
        facts,
        &mut ev,
    );
    let activity = match seen.activity() {
        Ok(a) => a,
        Err(why) => {
            return Outcome::unknown(
                format!("whether multipathd is active is unknown: {why}"),
                ev,
            );
        }
    };
    ev.add("active", activity.word());
    if activity == Activity::Inactive {
        return Outcome::pass("multipathd is neither running nor socket-activated", ev);
    }
    let active = match &activity {
        Activity::Listening {
            socket,
            by_unit: false,
        } => format!("multipathd is active ({socket} is listening)"),
        a => format!("multipathd is {}", a.describe("multipathd")),
    };
    let mut patterns = Vec::new();
    let files = match facts.config_with_dropins("/etc/multipath.conf", "/etc/multipath/conf.d") {
        Ok(f) => f,
        Err(why) => {
            return Outcome::unknown(
                format!("{active} and its configuration is unknown: {why}"),
                ev,
            );
        }
    };
    for f in &files {
        match facts.fs().read_to_string(f) {
            Ok(text) => {
                ev.add("config", f);
                patterns.extend(blacklisted_devnodes(&text));
            }
            Err(e) if e.is_not_found() => {}
            // An unreadable file may hold the blacklist: not knowing is not "none".
            Err(e) => {
                return Outcome::unknown(
                    format!("{active} and {f} cannot be read: {}", e.source),
                    ev,
                );
            }
        }
    }
    let unmatched: Vec<&String> = devices
        .iter()
        .filter(|d| {
            !patterns
                .iter()
                .any(|p| Regex::new(p).is_ok_and(|re| re.is_match(d)))
        })
        .collect();
    ev.add(
        "blacklist devnode",
        if patterns.is_empty() {
            "none".into()
        } else {
            patterns.join(" ")
        },
    );
    if unmatched.is_empty() {
        return Outcome::pass(format!("{active} and blacklists Longhorn's devices"), ev);
    }
    let fix = Remediation {
        summary: "blacklist Longhorn's devices in multipath.conf, or stop multipathd if this node does not use multipath".into(),
        commands: vec![
            "printf 'blacklist {\\n    devnode \"^sd[a-z0-9]+\"\\n}\\n' >> /etc/multipath.conf".into(),
            "systemctl restart multipathd".into(),
        ],
        package: None,
        notes: vec!["alternatively: systemctl disable --now multipathd.socket multipathd.service".into()],
    };
    let names: Vec<&str> = unmatched.iter().map(|s| s.as_str()).collect();
    Outcome::warn(
        format!("{active} and does not blacklist {}", names.join(", ")),
        ev,
        Some(fix),
    )
}

/// Returns the `devnode` patterns inside `blacklist { ... }` sections of a multipath.conf.
pub fn blacklisted_devnodes(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack: Vec<String> = Vec::new();
    for raw in text.lines() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if let Some(section) = line.strip_suffix('{') {
            stack.push(section.trim().to_string());
            continue;
        }
        if line == "}" {
            stack.pop();
            continue;
        }
        // Only top-level blacklist devnode entries (not blacklist_exceptions, not device blocks).
        if stack.len() == 1 && stack[0] == "blacklist" {
            if let Some(rest) = line.strip_prefix("devnode") {
                out.push(rest.trim().trim_matches('"').to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_longhorn_recommended_blacklist() {
        let t = "defaults {\n    user_friendly_names yes\n}\nblacklist {\n    devnode \"^sd[a-z0-9]+\"  # longhorn\n    device {\n        vendor \"IET\"\n    }\n}\nblacklist_exceptions {\n    devnode \"^sda\"\n}\n";
        assert_eq!(blacklisted_devnodes(t), vec!["^sd[a-z0-9]+"]);
        assert!(blacklisted_devnodes("defaults {\n}\n").is_empty());
    }
}
