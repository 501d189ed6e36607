//! Command checks: a program run under the bounded runner, read with node-problem-detector's
//! plugin convention so existing NPD plugin scripts work unchanged.

use hostready_exec::{Outcome as RunOutcome, ProbeResult, ProbeSpec, Verdict};

use crate::finding::{Evidence, Outcome, ProbeEnd, ProbeRun, Status};
use crate::profile::CommandCheck;

/// The longest message taken from a command's stdout (NPD's `max_output_length` is 80; findings
/// are read by people, so allow a little more).
pub const MAX_MESSAGE: usize = 200;

/// Returns the runner spec of a command check.
pub fn spec(id: &str, c: &CommandCheck) -> ProbeSpec {
    let mut spec = ProbeSpec::new(id, &c.argv[0], &c.argv[1..], c.timeout);
    spec.env = c.env.iter().map(|(k, v)| (k.into(), v.into())).collect();
    spec
}

/// Turns a probe's result into an outcome; `None` means commands were not run at all.
pub fn outcome(c: &CommandCheck, result: Option<&ProbeResult>) -> Outcome {
    let mut ev = Evidence::default();
    let Some(r) = result else {
        ev.add("command", c.argv.join(" "));
        return Outcome::unknown("commands are not run in this mode", ev);
    };
    ev.add("command", r.command.to_string());
    ev.add("duration", format!("{:?}", r.duration));
    describe(r, &mut ev);
    let v = r.npd_verdict(MAX_MESSAGE);
    let timed_out = matches!(r.outcome, RunOutcome::TimedOut { .. });
    let status = match v.verdict {
        Verdict::Pass => Status::Pass,
        Verdict::Fail => Status::Fail,
        Verdict::Unknown if timed_out => c.on_timeout,
        Verdict::Unknown => Status::Unknown,
    };
    let message = if v.message.is_empty() {
        default_message(r, status)
    } else {
        v.message
    };
    Outcome {
        status,
        message,
        evidence: ev,
        remediation: None,
    }
}

/// Returns how a run ended, as data (the evidence says the same for people): a command
/// check's own run, or a found executable's verification run, under `deadline`.
pub fn probe_run(r: &ProbeResult, deadline: std::time::Duration) -> ProbeRun {
    let exited = |e: hostready_exec::Exit| match e {
        hostready_exec::Exit::Code(c) => (Some(c), None),
        hostready_exec::Exit::Signal(s) => (None, Some(s)),
    };
    let end = match &r.outcome {
        RunOutcome::Exited(e) => {
            let (exit_code, signal) = exited(*e);
            ProbeEnd::Exited { exit_code, signal }
        }
        RunOutcome::TimedOut {
            exit,
            escalated_to_kill,
        } => ProbeEnd::TimedOut {
            sigkill: *escalated_to_kill,
            still_alive: exit.is_none(),
        },
        RunOutcome::StillRunning(_) => ProbeEnd::PreviousRunAlive,
        RunOutcome::Busy { max_concurrent } => ProbeEnd::Busy {
            max_concurrent: *max_concurrent,
        },
        RunOutcome::NotStarted(e) => ProbeEnd::NotStarted {
            why: hostready_pkgdb::error_chain(e),
        },
    };
    ProbeRun {
        command: r.command.to_string(),
        deadline,
        end,
    }
}

/// Adds how a run ended, its output sizes and anything it left behind to `ev`.
pub fn describe(r: &ProbeResult, ev: &mut Evidence) {
    match &r.outcome {
        RunOutcome::Exited(e) => ev.add("exit", e.to_string()),
        RunOutcome::TimedOut {
            exit,
            escalated_to_kill,
        } => ev.add(
            "exit",
            format!(
                "timed out; {}{}",
                if *escalated_to_kill {
                    "SIGKILL"
                } else {
                    "SIGTERM"
                },
                exit.map(|e| format!(", then {e}"))
                    .unwrap_or_else(|| ", still alive".into())
            ),
        ),
        RunOutcome::StillRunning(p) => ev.add("exit", format!("not started: previous run {p}")),
        RunOutcome::Busy { max_concurrent } => ev.add(
            "exit",
            format!("not started: {max_concurrent} probes running"),
        ),
        RunOutcome::NotStarted(e) => ev.add(
            "exit",
            format!("not started: {}", hostready_pkgdb::error_chain(e)),
        ),
    };
    if r.stderr.total_bytes > 0 {
        let head = r.stderr.text();
        let line = head.lines().next().unwrap_or("").trim();
        ev.add(
            "stderr",
            format!(
                "{line}{}",
                if r.stderr.total_bytes as usize > line.len() {
                    " ..."
                } else {
                    ""
                }
            ),
        );
    }
    if r.stdout.truncated() || r.stderr.truncated() {
        ev.add(
            "output",
            format!(
                "{} bytes stdout, {} bytes stderr (kept the head)",
                r.stdout.total_bytes, r.stderr.total_bytes
            ),
        );
    }
    for k in &r.cleaned_up {
        ev.add("killed leftover", format!("pid {} ({})", k.pid, k.comm));
    }
    // The runner names the first few it killed and counts the rest.
    if r.cleaned_up_total > r.cleaned_up.len() {
        ev.add(
            "killed leftovers",
            format!(
                "{} in all, the first {} named",
                r.cleaned_up_total,
                r.cleaned_up.len()
            ),
        );
    }
    for p in &r.leftovers {
        ev.add("stuck", p.to_string());
    }
}

fn default_message(r: &ProbeResult, status: Status) -> String {
    match (&r.outcome, status) {
        (RunOutcome::Exited(_), Status::Pass) => format!("{} succeeded", r.command),
        (RunOutcome::Exited(e), _) => format!("{} failed: {e}", r.command),
        _ => r.npd_verdict(MAX_MESSAGE).message,
    }
}
