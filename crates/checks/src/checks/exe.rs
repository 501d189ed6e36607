//! `exe.<name>`: the executable is on the host's PATH and can run there.

use hostready_host::elf;
use hostready_host::exe::{self, Runnability};

use crate::facts::Facts;
use crate::finding::{Evidence, Outcome, Remediation};
use crate::profile::Requirement;
use crate::{explain, remedy};

/// Looks `name` up like `command -v` inside the host root, then checks that it can start.
pub fn check(name: &str, req: &Requirement, facts: &Facts<'_>) -> Outcome {
    let machines = elf::runnable_machines(facts.machine());
    let lookup = exe::find(facts.fs(), name, &facts.path_dirs, machines);
    let mut ev = Evidence::default();
    for p in &lookup.passed_over {
        ev.add("passed over", format!("{}: {}", p.path.display(), p.reason));
    }
    for p in &lookup.denied {
        ev.add(
            "not examined",
            format!("{}: {}", p.path.display(), p.reason),
        );
    }
    // Access refused on the way is never absence: the host's own `command -v` (with the
    // privileges hostready lacks) may find it there, or pick that one before this one.
    if let Some(first) = lookup.denied.first() {
        let msg = match &lookup.found {
            None => format!(
                "cannot tell whether {name} is on PATH: {} cannot be examined ({})",
                first.path.display(),
                first.reason
            ),
            Some(found) => format!(
                "{name} found at {}, but {} earlier on PATH cannot be examined ({}), so which one runs is unknown",
                found.path.display(),
                first.path.display(),
                first.reason
            ),
        };
        return Outcome::unknown(msg, ev);
    }
    let Some(found) = lookup.found else {
        ev.add(
            "searched",
            facts
                .path_dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(":"),
        );
        if let Some(why) = facts.os_error() {
            ev.add(
                "os-release",
                format!("{why}; the fix below is not distribution-specific"),
            );
        }
        // What the package databases say is added afterwards, for all such findings at once
        // (see `explain::missing_executables`).
        let fix = remedy::missing_executable(name, facts.os(), &req.packages);
        return Outcome::fail(format!("{name} is not on PATH"), ev, fix);
    };
    ev.add("path", found.path.display().to_string());
    if found.resolved != found.path {
        ev.add("resolved", found.resolved.display().to_string());
        let chain: Vec<String> = found
            .links
            .iter()
            .map(|l| format!("{} -> {}", l.path.display(), l.target.display()))
            .collect();
        ev.add("links", chain.join(", "));
    }
    match found.runs {
        Runnability::Yes { how } => {
            ev.add("runs", how);
            explain::found_executable(&found.resolved, facts, &mut ev);
            if let Some(note) = explain::unsettled_owner(&found.resolved, facts, &mut ev) {
                let package = note.split(' ').next().unwrap_or_default().to_string();
                return Outcome::warn(
                    format!(
                        "{name} found at {}, but its package {note}",
                        found.path.display()
                    ),
                    ev,
                    Some(Remediation {
                        summary: format!("finish the interrupted installation of {package}"),
                        commands: vec![
                            "dpkg --configure -a".into(),
                            format!("apt-get install --reinstall {package}"),
                        ],
                        ..Remediation::default()
                    }),
                );
            }
            Outcome::pass(format!("{name} found at {}", found.path.display()), ev)
        }
        Runnability::No { why } => {
            ev.add("runs", format!("no: {why}"));
            let mut fix = remedy::missing_executable(name, facts.os(), &req.packages);
            fix.summary = format!(
                "{name} is present but cannot start ({why}); reinstall it: {}",
                fix.summary
            );
            Outcome::warn(
                format!(
                    "{name} found at {} but cannot run: {why}",
                    found.path.display()
                ),
                ev,
                Some(fix),
            )
        }
        Runnability::Denied { why } => {
            ev.add("runs", format!("cannot tell: {why}"));
            Outcome::unknown(
                format!(
                    "{name} found at {}, but whether it can run cannot be told: {why}",
                    found.path.display()
                ),
                ev,
            )
        }
        Runnability::Unknown { why } => {
            ev.add("runs", format!("unknown: {why}"));
            Outcome::warn(
                format!(
                    "{name} found at {}, but whether it can run is unknown: {why}",
                    found.path.display()
                ),
                ev,
                Some(Remediation {
                    summary: format!("check that {} is a working program", found.path.display()),
                    ..Remediation::default()
                }),
            )
        }
    }
}
