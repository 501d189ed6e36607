//! `svc.<name>`: a daemon is running or socket-activated, told without asking systemctl — and
//! the one rule for "is this service active" that `svc.multipathd` shares ([`observe`]).
//!
//! What clients need is the daemon's socket: iscsiadm reaches iscsid through the abstract Unix
//! socket `@ISCSIADM_ABSTRACT_NAMESPACE` (open-iscsi `usr/iscsid_req.c`), which iscsid binds
//! when it runs and systemd holds when `iscsid.socket` is enabled (starting iscsid on the first
//! request). So a listener there passes at the cost of one streamed read of `/proc/net/unix`
//! — even on a host with thousands of processes. Only without a listener (or without a socket
//! to look for) are the host's processes scanned, to tell "not running" from "running but
//! unreachable". A `.socket` unit linked from `sockets.target.wants` (how `systemctl enable`
//! records it) says systemd will listen for the service: socket activation, named as such.

use crate::facts::Facts;
use crate::finding::{Evidence, Outcome, Remediation};
use crate::remedy;

/// Where systemd unit files live inside a host root.
const UNIT_DIRS: [&str; 3] = [
    "/etc/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

/// `TASK_COMM_LEN - 1`: the kernel keeps at most 15 bytes of a process's name in `comm`.
const COMM_LEN: usize = 15;

/// What was seen of one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The socket looked for, and whether something listens on it (`Err`: the socket table
    /// could not be read). `None` when the service names no socket.
    pub listening: Option<(String, Result<bool, String>)>,
    /// A live (not zombie) process of the service: pid and state. `None` also when the
    /// processes were not scanned because the socket already answered.
    pub process: Option<(u32, char)>,
    /// Why the processes could not be scanned, if they were needed and could not be.
    pub processes_unreadable: Option<String>,
    /// `<name>.socket` is enabled (linked from `sockets.target.wants`).
    pub socket_unit_enabled: bool,
}

/// How a service is active, as a finding says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activity {
    /// Its socket has a listener: the daemon itself, or systemd holding it for the daemon.
    Listening { socket: String, by_unit: bool },
    /// A live process, not reachable through its socket where one was looked for.
    Running {
        pid: u32,
        unreachable_on: Option<String>,
    },
    /// No process and no listener seen, but its `.socket` unit is enabled: systemd listens
    /// once the unit is started (at boot), and starts the daemon on the first connection.
    SocketUnitEnabled { not_listening_on: Option<String> },
    /// Neither running nor socket-activated.
    Inactive,
}

impl Activity {
    /// Returns one phrase for the finding's message: "running (pid 812)", ...
    pub fn describe(&self, name: &str) -> String {
        match self {
            Activity::Listening {
                socket,
                by_unit: true,
            } => {
                format!("socket-activated ({name}.socket is enabled and {socket} is listening)")
            }
            Activity::Listening { socket, .. } => format!("reachable: {socket} is listening"),
            Activity::Running { pid, .. } => format!("running (pid {pid})"),
            Activity::SocketUnitEnabled { .. } => {
                format!("socket-activated ({name}.socket is enabled)")
            }
            Activity::Inactive => "neither running nor socket-activated".into(),
        }
    }

    /// The `active` evidence value: `listening`, `running`, `socket-activated`, `no`.
    pub fn word(&self) -> &'static str {
        match self {
            Activity::Listening { by_unit: true, .. } | Activity::SocketUnitEnabled { .. } => {
                "socket-activated"
            }
            Activity::Listening { .. } => "listening",
            Activity::Running { .. } => "running",
            Activity::Inactive => "no",
        }
    }
}

/// Looks at the host for service `name`: its listener on `socket` first (one read), then,
/// only if that does not answer, its processes (`comm` equal to `process`, as cut to 15
/// bytes by the kernel), and its `.socket` unit. Facts go into `ev`.
pub fn observe(
    name: &str,
    process: &str,
    socket: Option<&str>,
    facts: &Facts<'_>,
    ev: &mut Evidence,
) -> Seen {
    let socket_unit_enabled = facts.fs().exists(format!(
        "/etc/systemd/system/sockets.target.wants/{name}.socket"
    ));
    let mut seen = Seen {
        listening: None,
        process: None,
        processes_unreadable: None,
        socket_unit_enabled,
    };
    if let Some(sock) = socket {
        let answer = match facts.unix_listeners() {
            Ok((listeners, source)) => {
                ev.add("socket source", source);
                let found = listeners.iter().find(|l| l.name == sock);
                match found {
                    Some(l) => ev.add("listening", format!("{sock} ({})", l.socket_type)),
                    None => ev.add("listening", format!("nothing on {sock}")),
                };
                Ok(found.is_some())
            }
            Err(why) => {
                ev.add("socket source", format!("unreadable: {why}"));
                Err(why.to_string())
            }
        };
        let listening = answer == Ok(true);
        seen.listening = Some((sock.to_string(), answer));
        if listening {
            if socket_unit_enabled {
                ev.add("socket unit", format!("{name}.socket enabled"));
            }
            return seen;
        }
    }
    let wanted = process.get(..COMM_LEN).unwrap_or(process);
    match facts.processes() {
        Ok(procs) => {
            // A zombie is not a running daemon; states are read only for the few name matches.
            seen.process = procs.iter().filter(|p| p.comm == wanted).find_map(|p| {
                facts
                    .process_state(p.pid)
                    .filter(|s| *s != 'Z')
                    .map(|s| (p.pid, s))
            });
            if let Some((pid, state)) = seen.process {
                ev.add("pid", pid.to_string());
                ev.add("state", state.to_string());
            } else {
                ev.add(
                    "processes",
                    format!("no process named {wanted} among {}", procs.len()),
                );
            }
        }
        Err(why) => seen.processes_unreadable = Some(why.to_string()),
    }
    if seen.process.is_none() {
        for (unit, state) in unit_files(name, facts) {
            ev.add(unit, state);
        }
    }
    seen
}

impl Seen {
    /// Decides how the service is active; `Err` says why that cannot be told.
    pub fn activity(&self) -> Result<Activity, String> {
        let not_listening = match &self.listening {
            Some((sock, Ok(true))) => {
                return Ok(Activity::Listening {
                    socket: sock.clone(),
                    by_unit: self.socket_unit_enabled,
                });
            }
            Some((sock, Ok(false))) => Some(sock.clone()),
            _ => None,
        };
        if let Some((pid, _)) = self.process {
            return Ok(Activity::Running {
                pid,
                unreachable_on: not_listening,
            });
        }
        let table_unreadable = match &self.listening {
            Some((_, Err(why))) => Some(why.clone()),
            _ => None,
        };
        if self.socket_unit_enabled {
            // With the socket table unreadable, an enabled unit may or may not be listening.
            if let Some(why) = table_unreadable {
                return Err(format!(
                    "its socket unit is enabled, but whether systemd listens cannot be told: {why}"
                ));
            }
            return Ok(Activity::SocketUnitEnabled {
                not_listening_on: not_listening,
            });
        }
        if let Some(why) = &self.processes_unreadable {
            return Err(format!("cannot see the host's processes: {why}"));
        }
        Ok(Activity::Inactive)
    }
}

/// Checks that `name` is running (a process called `process`) or socket-activated (a
/// listener on `socket`, or an enabled `<name>.socket`), and says which.
pub fn check(name: &str, process: &str, socket: Option<&str>, facts: &Facts<'_>) -> Outcome {
    let mut ev = Evidence::default();
    let seen = observe(name, process, socket, facts, &mut ev);
    let activity = match seen.activity() {
        Ok(a) => a,
        Err(why) => {
            return Outcome::unknown(format!("whether {name} is active is unknown: {why}"), ev);
        }
    };
    ev.add("active", activity.word());
    match &activity {
        Activity::Listening { .. } => {
            Outcome::pass(format!("{name} is {}", activity.describe(name)), ev)
        }
        Activity::Running {
            pid,
            unreachable_on: Some(sock),
        } => Outcome::warn(
            format!(
                "{name} runs (pid {pid}) but nothing listens on {sock} in the host's network namespace; clients on the host cannot reach it"
            ),
            ev,
            Some(Remediation {
                summary: format!(
                    "run {name} in the host's network namespace (or restart it so it binds {sock})"
                ),
                commands: vec![format!("systemctl restart {name}")],
                ..Remediation::default()
            }),
        ),
        Activity::Running { pid, .. } => {
            Outcome::pass(format!("{name} is running (pid {pid})"), ev)
        }
        Activity::SocketUnitEnabled {
            not_listening_on: Some(sock),
        } => Outcome::fail(
            format!(
                "{name}.socket is enabled but nothing listens on {sock}: the socket unit is not started, or failed"
            ),
            ev,
            Remediation {
                summary: format!("start {name}.socket"),
                commands: vec![format!("systemctl restart {name}.socket")],
                ..Remediation::default()
            },
        ),
        Activity::SocketUnitEnabled { .. } => Outcome::pass(
            format!(
                "{name} is {} (no socket named to confirm a listener)",
                activity.describe(name)
            ),
            ev,
        ),
        Activity::Inactive => Outcome::fail(
            format!("{name} is neither running nor socket-activated"),
            ev,
            remedy::start_service(name, facts.os()),
        ),
    }
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
