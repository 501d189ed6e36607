//! Explaining a finding with the host's package databases — read only after a check has
//! decided, never to decide (DESIGN principle 1). A database that cannot be read leaves the
//! verdict as it was and says so.

use hostready_host::os_release::Family;
use hostready_pkgdb::Database;

use crate::facts::Facts;
use crate::finding::{Evidence, Remediation};

/// Adds what the package databases know about `package` to a failed executable check: recorded
/// as installed while the file is gone turns "install" into "reinstall".
pub fn missing_executable(
    exe: &str,
    package: &str,
    facts: &Facts<'_>,
    ev: &mut Evidence,
    fix: &mut Remediation,
) {
    // Only this package's records are read (rpm's Name index, dpkg's matching stanzas).
    let answer = hostready_pkgdb::query_host(facts.host, package);
    if answer.dbs.is_empty() {
        ev.add("package database", "none found");
        return;
    }
    let lookup = answer.lookup;
    let kinds = kinds(&answer.dbs);
    if let Some(p) = lookup.packages.iter().find(|p| p.installed) {
        ev.add(
            "package database",
            format!("{package} {} is recorded as installed ({kinds})", p.evr),
        );
        fix.summary = format!("{package} is recorded as installed but {exe} is gone: reinstall it");
        fix.commands = reinstall(package, facts);
    } else if let Some(p) = lookup.packages.first() {
        ev.add(
            "package database",
            format!("{package} is in state {:?} ({kinds})", p.state),
        );
    } else if lookup.complete {
        ev.add(
            "package database",
            format!("{package} is not installed ({kinds})"),
        );
    } else {
        ev.add(
            "package database",
            format!(
                "cannot tell whether {package} is installed: {}",
                lookup.unreadable.join("; ")
            ),
        );
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

fn kinds(dbs: &[Database]) -> String {
    let mut kinds: Vec<&str> = dbs.iter().map(|d| d.kind.as_str()).collect();
    kinds.dedup();
    kinds.join(", ")
}

fn reinstall(package: &str, facts: &Facts<'_>) -> Vec<String> {
    let Some(os) = facts.os() else { return vec![] };
    if os.immutable.is_some() {
        return crate::remedy::install(package, Some(os)).0;
    }
    match os.family {
        Family::Debian => vec![format!("apt-get install --reinstall -y {package}")],
        Family::Rhel => vec![format!("dnf reinstall -y {package}")],
        Family::Suse => vec![format!(
            "zypper --non-interactive install --force {package}"
        )],
        Family::Arch => vec![format!("pacman -S --noconfirm {package}")],
        Family::Gentoo => vec![format!("emerge --oneshot {package}")],
        Family::Alpine => vec![format!("apk fix {package}")],
        Family::Image | Family::Unknown => vec![],
    }
}
