//! `cri.socket`: the container runtime's CRI socket exists, is a socket, and is listening.
//!
//! kubeadm's preflight connects to the socket and asks the runtime whether it is running
//! (`cmd/kubeadm/app/preflight/checks.go`, `ContainerRuntimeCheck`). hostready does not
//! connect: it starts no process and opens no connection to a host daemon (DESIGN principle
//! 2), since a `connect(2)` to a runtime that is wedged can block, and a check must never
//! become load on the daemon it inspects. What it reads instead is the socket file (through
//! the rooted host, so a symlink cannot take it elsewhere) and the kernel's table of listening
//! Unix sockets (`/proc/net/unix`): a socket file nobody listens on — a runtime that stopped
//! and left its socket behind — is told apart from a live one without talking to either.

use crate::facts::Facts;
use crate::finding::{Evidence, Outcome, Remediation};

/// The sockets kubeadm looks for when `criSocket` is not set, in its order
/// (`cmd/kubeadm/app/constants/constants_unix.go` `defaultKnownCRISockets`, as the reference
/// storage-systems.md §6 cites): containerd, CRI-O, cri-dockerd.
pub const KNOWN_CRI_SOCKETS: &[&str] = &[
    "/var/run/containerd/containerd.sock",
    "/var/run/crio/crio.sock",
    "/var/run/cri-dockerd.sock",
];

/// What one candidate path turned out to be.
enum Candidate {
    Absent,
    Listening(String),
    NotListening(String),
    NotASocket(String, &'static str),
    Unknown(String),
}

/// Checks that one of `paths` (kubeadm's known sockets when empty) is a listening socket.
pub fn check(paths: &[String], facts: &Facts<'_>) -> Outcome {
    let defaults: Vec<String> = KNOWN_CRI_SOCKETS.iter().map(|s| s.to_string()).collect();
    let paths = if paths.is_empty() { &defaults } else { paths };
    let mut ev = Evidence::default();
    let listeners = facts.unix_listeners();
    if let Ok((_, source)) = &listeners {
        ev.add("socket source", *source);
    }
    let mut found = Vec::new();
    for path in paths {
        let c = candidate(path, facts, &listeners);
        let said = match &c {
            Candidate::Absent => "absent".to_string(),
            Candidate::Listening(real) => format!("socket {real}, listening"),
            Candidate::NotListening(real) => format!("socket {real}, nothing listening"),
            Candidate::NotASocket(real, kind) => format!("{real} is a {kind}, not a socket"),
            Candidate::Unknown(why) => why.clone(),
        };
        ev.add(format!("cri {path}"), said);
        found.push((path, c));
    }
    let listening: Vec<&String> = found
        .iter()
        .filter(|(_, c)| matches!(c, Candidate::Listening(_)))
        .map(|(p, _)| *p)
        .collect();
    if listening.len() > 1 {
        return Outcome::warn(
            format!(
                "several CRI sockets are listening ({}): kubeadm refuses to guess and needs --cri-socket (or nodeRegistration.criSocket)",
                join(&listening)
            ),
            ev,
            Some(Remediation {
                summary: "name the runtime kubelet should use, or stop the other runtimes".into(),
                notes: vec![format!("kubeadm join --cri-socket unix://{}", listening[0])],
                ..Remediation::default()
            }),
        );
    }
    if let Some(p) = listening.first() {
        return Outcome::pass(format!("the CRI socket {p} is listening"), ev);
    }
    if let Some((p, Candidate::Unknown(why))) = found
        .iter()
        .find(|(_, c)| matches!(c, Candidate::Unknown(_)))
    {
        return Outcome::unknown(
            format!("whether {p} is a live CRI socket is unknown: {why}"),
            ev,
        );
    }
    if let Some((p, Candidate::NotListening(_))) = found
        .iter()
        .find(|(_, c)| matches!(c, Candidate::NotListening(_)))
    {
        return Outcome::fail(
            format!(
                "{p} is a socket but nothing listens on it: the container runtime is not running (a stale socket)"
            ),
            ev,
            Remediation {
                summary: "start the container runtime".into(),
                commands: vec![format!("systemctl restart {}", runtime_of(p))],
                ..Remediation::default()
            },
        );
    }
    if let Some((p, Candidate::NotASocket(real, kind))) = found
        .iter()
        .find(|(_, c)| matches!(c, Candidate::NotASocket(..)))
    {
        return Outcome::fail(
            format!("{p} is not a CRI socket: {real} is a {kind}"),
            ev,
            Remediation {
                summary: format!(
                    "remove {real} and restart the container runtime, which creates its socket"
                ),
                ..Remediation::default()
            },
        );
    }
    Outcome::fail(
        format!(
            "no CRI socket: none of {} exists",
            join(&paths.iter().collect::<Vec<_>>())
        ),
        ev,
        Remediation {
            summary: "install and start a container runtime (containerd or CRI-O)".into(),
            commands: vec!["systemctl enable --now containerd".into()],
            ..Remediation::default()
        },
    )
}

fn candidate(
    path: &str,
    facts: &Facts<'_>,
    listeners: &Result<(&[hostready_host::unix_sockets::Listener], &str), &str>,
) -> Candidate {
    let resolved = match facts.fs().resolve(path) {
        Ok(r) => r,
        Err(e) if e.is_not_found() => return Candidate::Absent,
        Err(e) => return Candidate::Unknown(format!("cannot resolve {e}: {}", e.source)),
    };
    // Inside the root such a link lands somewhere its author did not mean: the file there
    // is not the one the host's kubelet would open.
    if let Some(l) = resolved.escaping_link() {
        return Candidate::Unknown(format!(
            "{} is a symlink to {}, which climbs out of the root",
            l.path.display(),
            l.target.display()
        ));
    }
    let real = resolved.path.display().to_string();
    let node = match facts.fs().node(&resolved.path) {
        Ok(n) => n,
        Err(e) => return Candidate::Unknown(format!("cannot examine {e}: {}", e.source)),
    };
    if !node.is_socket() {
        return Candidate::NotASocket(real, node.kind);
    }
    match listeners {
        // The kernel names a listener by the path it was bound to: the runtime's own
        // spelling (`/run/...`), or kubeadm's (`/var/run/...`) where it was configured so.
        Ok((l, _)) if l.iter().any(|l| l.name == real || l.name == path) => {
            Candidate::Listening(real)
        }
        Ok(_) => Candidate::NotListening(real),
        Err(why) => Candidate::Unknown(format!(
            "{real} is a socket, but whether anything listens cannot be told: {why}"
        )),
    }
}

fn runtime_of(path: &str) -> &'static str {
    if path.contains("crio") {
        "crio"
    } else if path.contains("cri-dockerd") {
        "cri-docker"
    } else {
        "containerd"
    }
}

fn join(v: &[&String]) -> String {
    v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}
