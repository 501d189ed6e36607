//! Evaluation of profiles against a host, and the report every output format prints.

use serde::Serialize;

use crate::checks;
use crate::facts::Facts;
use crate::finding::{Finding, Level, Status, Summary, all_required_met};
use crate::profile::Profile;

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
    pub findings: Vec<Finding>,
}

/// The host as hostready saw it.
#[derive(Debug, Clone, Serialize)]
pub struct HostInfo {
    pub root: String,
    pub proc: Option<String>,
    pub os: Option<String>,
    pub os_id: Option<String>,
    pub family: Option<String>,
    pub immutable: Option<String>,
    pub kernel: Option<String>,
    pub machine: String,
}

/// Checks every requirement of `profiles` (in order; an id already checked for an earlier
/// profile is not checked again) and builds the report.
pub fn evaluate(profiles: &[Profile], facts: &Facts<'_>) -> Report {
    let mut findings: Vec<Finding> = Vec::new();
    for profile in profiles {
        for req in &profile.requirements {
            if findings.iter().any(|f| f.id == req.id) {
                continue;
            }
            let outcome = checks::run(req, facts);
            let status = match (outcome.status, req.level) {
                (Status::Fail, Level::Recommended) => Status::Warn,
                (s, _) => s,
            };
            findings.push(Finding {
                id: req.id.clone(),
                profile: profile.name.clone(),
                level: req.level,
                status,
                message: outcome.message,
                evidence: outcome.evidence,
                remediation: outcome.remediation,
            });
        }
    }
    let os = facts.os();
    let host = HostInfo {
        root: facts.fs().location().display().to_string(),
        proc: facts
            .proc()
            .ok()
            .map(|p| p.location().display().to_string()),
        os: os.map(|o| o.display_name()),
        os_id: os.map(|o| o.id.clone()),
        family: os.map(|o| format!("{:?}", o.family).to_lowercase()),
        immutable: os.and_then(|o| o.immutable).map(|i| format!("{i:?}")),
        kernel: facts.release().ok().map(str::to_string),
        machine: facts.machine().to_string(),
    };
    Report {
        schema: REPORT_SCHEMA,
        host,
        profiles: profiles.iter().map(|p| p.name.clone()).collect(),
        ok: all_required_met(&findings),
        summary: Summary::of(&findings),
        findings,
    }
}
