//! Evaluation of profiles against a host, and the report every output format prints.

use serde::Serialize;

use std::collections::HashMap;

use hostready_exec::{ProbeResult, ProbeSpec};
use hostready_host::os_release::{Family, Immutable};

use crate::checks;
use crate::facts::Facts;
use crate::finding::{Finding, Summary, all_required_met};
use crate::probes::{self, Probing};
use crate::profile::{Check, Profile, Requirement};

/// Schema version of the JSON/YAML report; bumped on incompatible changes.
pub const REPORT_SCHEMA: u32 = 1;

/// What was checked and what was found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: u32,
    pub host: HostInfo,
    pub profiles: Vec<String>,
    /// True if and only if every required requirement passed (or only warned).
    pub ok: bool,
    pub summary: Summary,
    /// Every requirement checked, each id once (an id shared by several profiles is checked
    /// for the first that names it).
    pub findings: Vec<Finding>,
    /// Which findings belong to which profile, in the order the profiles were given: a
    /// finding checked for an earlier profile is listed under each profile that names it.
    pub by_profile: Vec<ProfileFindings>,
}

/// One profile's share of a report.
#[derive(Debug, Clone, Serialize)]
pub struct ProfileFindings {
    pub profile: String,
    /// The node condition type the agent publishes for it ([`Profile::condition_type`]).
    pub condition: String,
    /// True if and only if every required finding of this profile passed or only warned.
    pub ok: bool,
    pub summary: Summary,
    /// The ids of its findings, in the profile's order.
    pub findings: Vec<String>,
    /// Indexes of those findings in [`Report::findings`].
    #[serde(skip)]
    indexes: Vec<usize>,
}

impl Report {
    /// Returns the findings of `group`, in its profile's order.
    pub fn findings_of<'a>(
        &'a self,
        group: &'a ProfileFindings,
    ) -> impl Iterator<Item = &'a Finding> {
        group.indexes.iter().map(|i| &self.findings[*i])
    }
}

/// The host as hostready saw it.
#[derive(Debug, Clone, Serialize)]
pub struct HostInfo {
    pub root: String,
    pub proc: Option<String>,
    pub os: Option<String>,
    pub os_id: Option<String>,
    /// `unknown` when os-release could not be read.
    pub family: Family,
    pub immutable: Option<Immutable>,
    pub kernel: Option<String>,
    pub machine: String,
}

impl HostInfo {
    /// Describes the host behind `facts` (reads os-release and the kernel release if needed).
    pub fn of(facts: &Facts<'_>) -> HostInfo {
        let os = facts.os();
        HostInfo {
            root: facts.fs().location().display().to_string(),
            proc: facts
                .proc()
                .ok()
                .map(|p| p.location().display().to_string()),
            os: os.map(|o| o.display_name()),
            os_id: os.map(|o| o.id.clone()),
            family: os.map_or(Family::Unknown, |o| o.family),
            immutable: os.and_then(|o| o.immutable),
            kernel: facts.release().ok().map(str::to_string),
            machine: facts.machine().to_string(),
        }
    }
}

/// Checks every requirement of `profiles` (in order; an id already checked for an earlier
/// profile is not checked again) and builds the report. With `probing`, command checks (and,
/// if asked, executable verification) run under its runner; without, they are `unknown` and
/// no process is started.
pub fn evaluate(profiles: &[Profile], facts: &Facts<'_>, probing: Option<&Probing<'_>>) -> Report {
    let mut chosen: Vec<(&Profile, &Requirement)> = Vec::new();
    for profile in profiles {
        for req in &profile.requirements {
            if !chosen.iter().any(|(_, r)| r.id == req.id) {
                chosen.push((profile, req));
            }
        }
    }
    // Every command probe at once, concurrently under the runner's cap and deadlines.
    let specs: Vec<ProbeSpec> = chosen
        .iter()
        .filter_map(|(_, r)| match &r.check {
            Check::Command(c) => Some(checks::command::spec(&r.id, c)),
            _ => None,
        })
        .collect();
    let mut results: HashMap<String, ProbeResult> = match probing {
        Some(p) if !specs.is_empty() => p
            .runner
            .run_many(&specs)
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect(),
        _ => HashMap::new(),
    };
    let mut findings: Vec<Finding> = chosen
        .iter()
        .map(|(profile, req)| {
            let result = results.remove(&req.id);
            let outcome = checks::run(req, facts, result.as_ref());
            let probe = match (&req.check, &result) {
                (Check::Command(c), Some(r)) => Some(checks::command::probe_run(r, c.timeout)),
                _ => None,
            };
            Finding {
                id: req.id.clone(),
                profile: profile.name.clone(),
                level: req.level,
                status: req.level.status(outcome.status),
                message: outcome.message,
                evidence: outcome.evidence,
                remediation: outcome.remediation,
                subject: req.check.subject(),
                probe,
            }
        })
        .collect();
    crate::explain::missing_executables(&mut findings, facts);
    if let Some(p) = probing.filter(|p| p.verify_executables) {
        verify(&mut findings, p);
    }
    // Conflicts between the profiles enabled together: warnings listed under each profile
    // they concern, so each of those profiles' conditions shows them (a warning never turns a
    // condition False).
    let mut concerns: Vec<(String, Vec<String>)> = Vec::new();
    for found in crate::conflicts::findings(profiles) {
        concerns.push((found.finding.id.clone(), found.profiles));
        findings.push(found.finding);
    }
    let by_profile = profiles
        .iter()
        .map(|p| {
            let extra: Vec<&str> = concerns
                .iter()
                .filter(|(_, ps)| ps.contains(&p.name))
                .map(|(id, _)| id.as_str())
                .collect();
            group(p, &extra, &findings)
        })
        .collect();
    let host = HostInfo::of(facts);
    Report {
        schema: REPORT_SCHEMA,
        host,
        profiles: profiles.iter().map(|p| p.name.clone()).collect(),
        ok: all_required_met(&findings),
        summary: Summary::of(&findings),
        findings,
        by_profile,
    }
}

/// Collects `profile`'s findings: by requirement id, since each id was checked once, then the
/// `extra` ids (its conflicts).
fn group(profile: &Profile, extra: &[&str], findings: &[Finding]) -> ProfileFindings {
    let indexes: Vec<usize> = profile
        .requirements
        .iter()
        .map(|r| r.id.as_str())
        .chain(extra.iter().copied())
        .filter_map(|id| findings.iter().position(|f| f.id == id))
        .collect();
    let mine = || indexes.iter().map(|i| &findings[*i]);
    ProfileFindings {
        profile: profile.name.clone(),
        condition: profile.condition_type(),
        ok: all_required_met(mine()),
        summary: Summary::of(mine()),
        findings: mine().map(|f| f.id.clone()).collect(),
        indexes,
    }
}

/// Runs the version probe of every passing executable and amends its finding.
fn verify(findings: &mut [Finding], probing: &Probing<'_>) {
    let specs: Vec<(usize, ProbeSpec)> = findings
        .iter()
        .enumerate()
        .filter_map(|(i, f)| probes::verify_spec(f, probing).map(|s| (i, s)))
        .collect();
    let results = probing
        .runner
        .run_many(&specs.iter().map(|(_, s)| s.clone()).collect::<Vec<_>>());
    for ((i, _), r) in specs.iter().zip(results) {
        probes::apply_verification(&mut findings[*i], &r);
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use hostready_host::{Host, ProcSource};

    use super::*;
    use crate::finding::{Level, Status, Subject};

    /// A Debian root whose dpkg database records open-iscsi as installed, while `iscsiadm`
    /// is gone; and a profile asking for `iscsiadm` under a custom id and the default one.
    fn reinstall_host() -> (tempfile::TempDir, Profile) {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        fs::create_dir_all(r.join("etc")).unwrap();
        fs::create_dir_all(r.join("usr/sbin")).unwrap();
        fs::create_dir_all(r.join("var/lib/dpkg/info")).unwrap();
        fs::write(r.join("etc/os-release"), "ID=debian\nVERSION_ID=\"12\"\n").unwrap();
        fs::write(
            r.join("var/lib/dpkg/status"),
            "Package: open-iscsi\nStatus: install ok installed\nArchitecture: amd64\n\
             Version: 2.1.8-1\nDescription: iSCSI initiator tools\n",
        )
        .unwrap();
        fs::write(
            r.join("var/lib/dpkg/info/open-iscsi.list"),
            "/.\n/usr/sbin/iscsiadm\n",
        )
        .unwrap();
        let file = r.join("site.yaml");
        fs::write(
            &file,
            "name: site\nrequirements:\n  - id: site.initiator\n    executable: iscsiadm\n  \
             - executable: dmsetup\n    level: recommended\n",
        )
        .unwrap();
        let p = crate::profile::load(file.to_str().unwrap()).unwrap();
        (dir, p)
    }

    /// Regression: the package-database explanation followed the `exe.` id prefix, so an
    /// executable requirement with its own `id:` lost it (and its reinstall advice).
    #[test]
    fn a_custom_id_keeps_the_package_database_explanation() {
        let (dir, profile) = reinstall_host();
        let host = Host::open(dir.path(), ProcSource::Disabled).unwrap();
        let facts = Facts::new(&host, "/usr/sbin:/usr/bin");
        let report = evaluate(std::slice::from_ref(&profile), &facts, None);
        let f = report
            .findings
            .iter()
            .find(|f| f.id == "site.initiator")
            .unwrap();
        assert_eq!(f.subject, Subject::Executable("iscsiadm".into()));
        assert_eq!(f.status, Status::Fail);
        let said = f.evidence.get("package database").expect("explained");
        assert!(
            said.contains("open-iscsi 2.1.8-1 is recorded as installed"),
            "{said}"
        );
        let fix = f.remediation.as_ref().unwrap();
        assert_eq!(fix.commands, ["apt-get install --reinstall -y open-iscsi"]);
        assert!(fix.summary.contains("iscsiadm is gone"), "{fix:?}");
        // The level rule: a recommended executable that is missing warns.
        let dm = report
            .findings
            .iter()
            .find(|f| f.id == "exe.dmsetup")
            .unwrap();
        assert_eq!((dm.level, dm.status), (Level::Recommended, Status::Warn));
    }

    #[test]
    fn findings_are_grouped_per_profile_with_shared_ids_under_each() {
        let (dir, site) = reinstall_host();
        let host = Host::open(dir.path(), ProcSource::Disabled).unwrap();
        let facts = Facts::new(&host, "/usr/sbin:/usr/bin");
        let encryption = crate::profile::load("encryption").unwrap();
        let report = evaluate(&[site, encryption.clone()], &facts, None);
        // exe.dmsetup is named by both; checked once, for the first.
        assert_eq!(
            report
                .findings
                .iter()
                .filter(|f| f.id == "exe.dmsetup")
                .count(),
            1
        );
        let groups: Vec<(&str, &str)> = report
            .by_profile
            .iter()
            .map(|g| (g.profile.as_str(), g.condition.as_str()))
            .collect();
        assert_eq!(
            groups,
            [("site", "SiteReady"), ("encryption", "EncryptionReady")]
        );
        let enc = &report.by_profile[1];
        let ids: Vec<&str> = encryption
            .requirements
            .iter()
            .map(|r| r.id.as_str())
            .collect();
        assert_eq!(enc.findings, ids);
        let shared = report
            .findings_of(enc)
            .find(|f| f.id == "exe.dmsetup")
            .unwrap();
        assert_eq!(shared.profile, "site");
        assert_eq!(enc.summary, Summary::of(report.findings_of(enc)));
        assert!(!report.by_profile[0].ok);
    }

    /// JSON/YAML use the types' serde names, never their `Debug` form.
    #[test]
    fn host_info_uses_serde_names() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("etc")).unwrap();
        fs::write(
            dir.path().join("etc/os-release"),
            "ID=fedora\nVARIANT_ID=coreos\nVERSION_ID=40\n",
        )
        .unwrap();
        let host = Host::open(dir.path(), ProcSource::Disabled).unwrap();
        let info = HostInfo::of(&Facts::new(&host, "/usr/bin"));
        let v = serde_json::to_value(&info).unwrap();
        assert_eq!(v["immutable"], "fedora-coreos");
        assert_eq!(v["family"], "rhel");
        let empty = tempfile::tempdir().unwrap();
        let host = Host::open(empty.path(), ProcSource::Disabled).unwrap();
        let v = serde_json::to_value(HostInfo::of(&Facts::new(&host, "/usr/bin"))).unwrap();
        assert_eq!(v["family"], "unknown");
        assert_eq!(v["immutable"], serde_json::Value::Null);
    }
}
