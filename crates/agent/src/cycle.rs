//! One check cycle, on a blocking thread: every enabled profile evaluated against the host
//! (command checks under the bounded runner), what the probes did (timeouts, stuck
//! processes), and each profile's desired condition — with stable words for the condition
//! and the findings' own words kept for the event (see `condition`'s write budget).

use std::time::{Duration, Instant};

use hostready_checks::{Facts, Finding, Probing, ProfileFindings, Report, evaluate};
use hostready_exec::Runner;
use hostready_host::{Host, ProcSource};

use crate::condition::{self, CondStatus, Desired};
use crate::config::Settings;

/// A cycle's output: every finding, and each profile's condition.
pub(crate) struct CycleResult {
    pub(crate) findings: Vec<Finding>,
    pub(crate) desired: Vec<Desired>,
    pub(crate) stats: ProbeStats,
    pub(crate) duration: Duration,
}

/// What command checks did in one cycle, beyond their findings.
#[derive(Debug, Default)]
pub(crate) struct ProbeStats {
    /// Ids of command checks that hit their deadline.
    pub(crate) timeouts: Vec<String>,
    /// Command checks with a process that could not be killed, now.
    pub(crate) stuck: usize,
}

/// One check cycle, on a blocking thread: every enabled profile (command checks under the
/// runner, if any), then each profile's condition.
pub(crate) fn check(
    root: &std::path::Path,
    proc: ProcSource,
    search_path: &str,
    settings: &Settings,
    runner: Option<&Runner>,
) -> CycleResult {
    let started = Instant::now();
    let probing = runner.map(|runner| Probing {
        runner,
        verify_executables: false,
        root: None,
    });
    let report = match Host::open(root, proc) {
        Ok(host) => {
            let facts = Facts::new(&host, search_path);
            Ok(evaluate(&settings.profiles, &facts, probing.as_ref()))
        }
        Err(e) => Err(format!("cannot open host root {}: {e}", root.display())),
    };
    let mut stats = ProbeStats::default();
    if let Some(runner) = runner {
        stats.timeouts = report
            .iter()
            .flat_map(|r| &r.findings)
            .filter(|f| f.probe.as_ref().is_some_and(|p| p.end.timed_out()))
            .map(|f| f.id.clone())
            .collect();
        runner.reap();
        stats.stuck = runner.stuck().len();
    }
    let desired = match &report {
        Ok(report) => report
            .by_profile
            .iter()
            .map(|group| profile_condition(report, group))
            .collect(),
        Err(why) => settings
            .profiles
            .iter()
            .map(|p| Desired {
                type_: p.condition_type(),
                profile: p.name.clone(),
                status: CondStatus::Unknown,
                reason: "HostUnreadable".into(),
                message: why.clone(),
                failing: Vec::new(),
                detail: why.clone(),
            })
            .collect(),
    };
    CycleResult {
        findings: report.map(|r| r.findings).unwrap_or_default(),
        desired,
        stats,
        duration: started.elapsed(),
    }
}

/// One profile's condition from its share of the report (an id shared by two profiles was
/// checked once, and counts for both). The condition gets stable words only; the event gets
/// the findings' own.
fn profile_condition(report: &Report, group: &ProfileFindings) -> Desired {
    let raw: Vec<&Finding> = report.findings_of(group).collect();
    let stable: Vec<Finding> = raw.iter().map(|f| condition::stable_finding(f)).collect();
    let mut d = condition::desired(
        &group.profile,
        &group.condition,
        &stable.iter().collect::<Vec<_>>(),
    );
    d.detail = condition::desired(&group.profile, &group.condition, &raw).message;
    d
}
