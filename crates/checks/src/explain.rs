//! Explaining a finding with the host's package databases — read only after a check has
//! decided, never to decide (DESIGN principle 1). A database that cannot be read leaves the
//! verdict as it was and says so.

use hostready_pkgdb::Database;

use crate::facts::Facts;
use crate::finding::{Evidence, Finding, Status};

/// Adds what the package databases know to every failed executable finding (of any id) that
/// names a package: recorded as installed while the file is gone turns "install" into "reinstall".
/// Each package is looked up on its own: pkgdb then reads only that package's records (rpm's
/// Name index, dpkg's matching stanzas), which costs less than one full read of a large dpkg
/// database even for several packages.
pub fn missing_executables(findings: &mut [Finding], facts: &Facts<'_>) {
    let wanted: Vec<(usize, String)> = findings
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            f.subject.executable().is_some() && matches!(f.status, Status::Fail | Status::Warn)
        })
        .filter(|(_, f)| f.evidence.get("path").is_none())
        .filter_map(|(i, f)| Some((i, f.remediation.as_ref()?.package.clone()?)))
        .collect();
    if wanted.is_empty() {
        return;
    }
    for (i, package) in &wanted {
        let hostready_pkgdb::Answer { lookup, dbs } =
            hostready_pkgdb::query_host(facts.host, package);
        let kinds = kinds(&dbs);
        let f = &mut findings[*i];
        let exe = f.subject.executable().unwrap_or_default().to_string();
        let said = if dbs.is_empty() {
            "none found".to_string()
        } else if let Some(p) = lookup.packages.iter().find(|p| p.installed) {
            if let Some(fix) = f.remediation.as_mut() {
                fix.summary =
                    format!("{package} is recorded as installed but {exe} is gone: reinstall it");
                fix.commands = crate::remedy::reinstall(package, facts.os());
            }
            format!("{package} {} is recorded as installed ({kinds})", p.evr)
        } else if let Some(p) = lookup.packages.first() {
            format!("{package} is in state {:?} ({kinds})", p.state)
        } else if lookup.complete {
            format!("{package} is not installed ({kinds})")
        } else if let Some(db) = dbs
            .iter()
            .find(|d| d.contents.as_ref().is_err_and(|e| e.is_corrupt()))
        {
            // "Install X" on a corrupt database would be the seed's own failure mode: the
            // package may well be installed, the database cannot say. Repair comes first.
            if let Some(fix) = f.remediation.as_mut() {
                fix.summary = format!(
                    "the {} database {} is corrupt, so whether {package} is installed is \
                     unknown: repair the database before installing anything ({})",
                    db.kind.as_str(),
                    db.path.display(),
                    hostready_pkgdb::CORRUPT_ADVICE
                );
                fix.commands = Vec::new();
            }
            format!(
                "the package database is corrupt; cannot tell whether {package} is installed: {}",
                lookup.unreadable.join("; ")
            )
        } else {
            format!(
                "cannot tell whether {package} is installed: {}",
                lookup.unreadable.join("; ")
            )
        };
        f.evidence.add("package database", said);
    }
}

/// Adds which package owns a found executable, where that is cheap and useful: on immutable
/// hosts a binary owned by no package is expected (longhorn/longhorn#13949), so say so.
pub fn found_executable(path: &std::path::Path, facts: &Facts<'_>, ev: &mut Evidence) {
    if facts.os().and_then(|o| o.immutable).is_none() {
        return;
    }
    let owners = hostready_pkgdb::owner_host(facts.host, path).lookup;
    match owners.packages.first() {
        Some(p) => ev.add("package", format!("{} ({})", p.name, p.db.as_str())),
        None => ev.add(
            "package",
            "owned by no package: expected on an immutable host",
        ),
    };
}

/// Returns a warning when the package owning a found executable did not finish installing
/// (dpkg `half-installed`, `unpacked`, `half-configured`, `triggers-awaited`/`-pending`, or
/// `reinst-required`): the file is there, but its configuration, maintainer scripts or
/// sibling files may not be. rpm records no such state: a failed `%post` leaves the package
/// recorded as installed, so there is nothing to read there. The dpkg `status` is streamed
/// once per run; only the file lists of the unfinished packages (usually none) are searched.
pub fn unsettled_owner(
    path: &std::path::Path,
    facts: &Facts<'_>,
    ev: &mut Evidence,
) -> Option<String> {
    let pkgs = match facts.dpkg_unsettled() {
        Ok([]) => return None,
        Ok(p) => p,
        Err(why) => {
            ev.add("package state", format!("unknown: {why}"));
            return None;
        }
    };
    match hostready_pkgdb::dpkg_owners_among(facts.fs(), pkgs, path) {
        Ok(owners) => owners.first().map(|p| {
            ev.add(
                "package state",
                format!("{} {}: {}", p.name, p.evr, p.state),
            );
            format!(
                "{} ({}) did not finish installing: dpkg status \"{}\"",
                p.name, p.evr, p.state
            )
        }),
        Err(e) => {
            ev.add(
                "package state",
                format!("unknown: {}", hostready_pkgdb::error_chain(&e)),
            );
            None
        }
    }
}

fn kinds(dbs: &[Database]) -> String {
    let mut kinds: Vec<&str> = dbs.iter().map(|d| d.kind.as_str()).collect();
    kinds.dedup();
    kinds.join(", ")
}
