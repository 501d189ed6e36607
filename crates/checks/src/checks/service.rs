//! `svc.<name>`: a daemon is reachable without asking systemctl.
//!
//! What clients need is the daemon's socket: iscsiadm reaches iscsid through the abstract Unix
//! socket `@ISCSIADM_ABSTRACT_NAMESPACE` (open-iscsi `usr/iscsid_req.c`), which iscsid binds
//! when it runs and systemd holds when `iscsid.socket` is enabled (starting iscsid on the first
//! request). So a listener there passes at the cost of one file read — even on a host with
//! thousands of processes. Only without a listener (or without a socket to look for) are the
//! host's processes scanned, to tell "not running" from "running but unreachable".

use crate::facts::Facts;
use crate::finding::{Evidence, Outcome, Remediation};

/// Where systemd unit files live inside a host root.
const UNIT_DIRS: [&str; 3] = [
    "/etc/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

/// Checks that `socket` has a listener, or (without a socket to check) that `name` runs as a
/// process called `process`.
pub fn check(name: &str, process: &str, socket: Option<&str>, facts: &Facts<'_>) -> Outcome {
    let mut ev = Evidence::default();
    let mut reachable = None;
    if let Some(sock) = socket {
        match facts.unix_listeners() {
            Ok((listeners, source)) => {
                ev.add("socket source", source);
                if listeners.iter().any(|l| l.path == sock) {
                    ev.add("listening", sock);
                    return Outcome::pass(format!("{name} is reachable: {sock} is listening"), ev);
                }
                ev.add("listening", format!("nothing on {sock}"));
                reachable = Some(false);
            }
            Err(why) => {
                ev.add("socket source", format!("unreadable: {why}"));
            }
        }
    }
    let procs = match facts.processes() {
        Ok(p) => p,
        Err(why) => return Outcome::unknown(format!("cannot see the host's processes: {why}"), ev),
    };
    // A zombie is not a running daemon; states are read only for the few name matches.
    let live = procs.iter().filter(|p| p.comm == process).find_map(|p| {
        facts
            .process_state(p.pid)
            .filter(|s| *s != 'Z')
            .map(|s| (p, s))
    });
    if let Some((p, state)) = live {
        ev.add("pid", p.pid.to_string());
        ev.add("state", state.to_string());
        if reachable == Some(false) {
            let sock = socket.unwrap_or_default();
            return Outcome::warn(
                format!(
                    "{name} runs (pid {}) but nothing listens on {sock} in the host's network namespace; clients on the host cannot reach it",
                    p.pid
                ),
                ev,
                Some(Remediation {
                    summary: format!(
                        "run {name} in the host's network namespace (or restart it so it binds {sock})"
                    ),
                    commands: vec![format!("systemctl restart {name}")],
                    ..Remediation::default()
                }),
            );
        }
        return Outcome::pass(format!("{name} is running (pid {})", p.pid), ev);
    }
    ev.add(
        "processes",
        format!("no process named {process} among {}", procs.len()),
    );
    for (unit, state) in unit_files(name, facts) {
        ev.add(unit, state);
    }
    Outcome::fail(
        format!("{name} is neither running nor socket-activated"),
        ev,
        start_service(name, facts),
    )
}

/// Reports which of `name`'s unit files exist and whether they are enabled (linked from a
/// `.wants` directory) — facts from the filesystem, not from systemctl.
fn unit_files(name: &str, facts: &Facts<'_>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for unit in [format!("{name}.service"), format!("{name}.socket")] {
        let installed = UNIT_DIRS
            .iter()
            .find(|d| facts.fs().exists(format!("{d}/{unit}")));
        let Some(dir) = installed else { continue };
        let wants = if unit.ends_with(".socket") {
            "sockets.target.wants"
        } else {
            "multi-user.target.wants"
        };
        let enabled = facts
            .fs()
            .exists(format!("/etc/systemd/system/{wants}/{unit}"));
        out.push((
            format!("unit {unit}"),
            format!(
                "{dir}/{unit}, {}",
                if enabled { "enabled" } else { "not enabled" }
            ),
        ));
    }
    out
}

fn start_service(name: &str, facts: &Facts<'_>) -> Remediation {
    use hostready_host::os_release::{Family, Immutable};
    let os = facts.os();
    if os.is_some_and(|o| o.immutable == Some(Immutable::Talos)) {
        return Remediation {
            summary: format!("{name} comes from a Talos system extension"),
            notes: vec![
                "add siderolabs/iscsi-tools to the installer image; its service starts iscsid"
                    .into(),
            ],
            ..Remediation::default()
        };
    }
    let commands = if os.is_some_and(|o| o.family == Family::Alpine) {
        vec![
            format!("rc-update add {name} default"),
            format!("rc-service {name} start"),
        ]
    } else {
        vec![format!("systemctl enable --now {name}")]
    };
    Remediation {
        summary: format!("start {name} and enable it at boot"),
        commands,
        ..Remediation::default()
    }
}
