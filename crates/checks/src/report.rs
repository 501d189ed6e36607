//! Evaluation of profiles against a host, and the report every output format prints.

use serde::Serialize;

use crate::checks;
use crate::facts::Facts;
use crate::finding::{Finding, Level, Status, Summary, all_required_met};
use crate::probes::{self, Probing};
use crate::profile::{Check, Profile, Requirement};
use hostready_exec::{ProbeResult, ProbeSpec};
use std::collections::HashMap;

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
            family: os.map(|o| format!("{:?}", o.family).to_lowercase()),
            immutable: os.and_then(|o| o.immutable).map(|i| format!("{i:?}")),
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
            let outcome = checks::run(req, facts, results.remove(&req.id).as_ref());
            let status = match (outcome.status, req.level) {
                (Status::Fail, Level::Recommended) => Status::Warn,
                (s, _) => s,
            };
            Finding {
                id: req.id.clone(),
                profile: profile.name.clone(),
                level: req.level,
                status,
                message: outcome.message,
                evidence: outcome.evidence,
                remediation: outcome.remediation,
            }
        })
        .collect();
    crate::explain::missing_executables(&mut findings, facts);
    if let Some(p) = probing.filter(|p| p.verify_executables) {
        verify(&mut findings, p);
    }
    let host = HostInfo::of(facts);
    Report {
        schema: REPORT_SCHEMA,
        host,
        profiles: profiles.iter().map(|p| p.name.clone()).collect(),
        ok: all_required_met(&findings),
        summary: Summary::of(&findings),
        findings,
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
