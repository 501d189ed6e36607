//! One check cycle, on a blocking thread: every enabled profile evaluated against the host
//! (command checks under the bounded runner), what the probes did (timeouts, stuck
//! processes), and each profile's desired condition — with stable words for the condition
//! and the findings' own words kept for the event (see `condition`'s write budget).

use std::time::{Duration, Instant};

use hostready_checks::{Facts, Finding, Probing, evaluate};
use hostready_exec::Runner;
use hostready_host::{Host, ProcSource};

use crate::condition::{CondStatus, Desired};
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
    let (findings, host_error) = match Host::open(root, proc) {
        Ok(host) => {
            let facts = Facts::new(&host, search_path);
            let report = evaluate(&settings.profiles, &facts, probing.as_ref());
            (report.findings, None)
        }
        Err(e) => (
            Vec::new(),
            Some(format!("cannot open host root {}: {e}", root.display())),
        ),
    };
    let mut stats = ProbeStats::default();
    if let Some(runner) = runner {
        // A command finding's `exit` evidence says "timed out; ..." (hostready-checks' command.rs).
        stats.timeouts = findings
            .iter()
            .filter(|f| {
                f.evidence
                    .get("exit")
                    .is_some_and(|e| e.starts_with("timed out"))
            })
            .map(|f| f.id.clone())
            .collect();
        runner.reap();
        stats.stuck = runner.stuck().len();
    }
    let desired = settings
        .profiles
        .iter()
        .map(|p| {
            let ty = p.condition_type();
            if let Some(why) = &host_error {
                return Desired {
                    type_: ty,
                    profile: p.name.clone(),
                    status: CondStatus::Unknown,
                    reason: "HostUnreadable".into(),
                    message: why.clone(),
                    failing: Vec::new(),
                    detail: why.clone(),
                };
            }
            // By requirement id: an id shared by two profiles is checked once, for the first.
            let mine: Vec<(&Finding, &hostready_checks::Check)> = findings
                .iter()
                .filter_map(|f| {
                    let r = p.requirements.iter().find(|r| r.id == f.id)?;
                    Some((f, &r.check))
                })
                .collect();
            // The condition gets stable words only; the event gets the findings' own.
            let stable: Vec<Finding> = mine
                .iter()
                .map(|(f, c)| crate::condition::stable_finding(f, c))
                .collect();
            let raw: Vec<&Finding> = mine.iter().map(|(f, _)| *f).collect();
            let mut d = crate::condition::desired(&p.name, &ty, &stable.iter().collect::<Vec<_>>());
            d.detail = crate::condition::desired(&p.name, &ty, &raw).message;
            d
        })
        .collect();
    CycleResult {
        findings,
        desired,
        stats,
        duration: started.elapsed(),
    }
}
