//! The table every findings report prints (`hostready check`, `hostready doctor`): a header
//! line for the host, one row per finding — badge, id, message — with its evidence as
//! `key: value`, its fix, `$ command` lines and `note:` lines underneath, then a verdict with
//! the counts. One shape for people, as the JSON is one shape for programs.
//!
//! Every printer here writes to an [`output::Text`], which escapes what hosts wrote (command
//! lines, os-release, probe output) so it cannot drive the terminal; see `output.rs`.

use std::io::Write;

use hostready_checks::{Finding, HostInfo, Status, Summary};

use crate::output::{Style, Text};

/// Returns true if and only if tables are coloured (`--color`, NO_COLOR: see `output::color`).
pub fn color() -> bool {
    crate::output::color()
}

/// Writes `host <root>  <os>  kernel <release>  (<what>)`.
pub fn print_host(out: &mut Text<impl Write>, h: &HostInfo, what: &str) -> std::io::Result<()> {
    writeln!(
        out,
        "host {}  {}  kernel {}  ({what})",
        h.root,
        h.os.as_deref().unwrap_or("unknown OS"),
        h.kernel.as_deref().unwrap_or("unknown"),
    )
}

/// Writes one row per finding; the details of those that did not pass (of all with `verbose`).
pub fn print_findings(
    out: &mut Text<impl Write>,
    findings: &[Finding],
    verbose: bool,
    color: bool,
) -> std::io::Result<()> {
    let width = findings.iter().map(|f| f.id.len()).max().unwrap_or(10);
    for f in findings {
        let (style, word) = badge(f.status);
        out.styled(style, color, word)?;
        writeln!(out, " {:width$}  {}", f.id, f.message)?;
        if verbose || f.status != Status::Pass {
            print_details(out, f, width)?;
        } else if let Some(run) = &f.probe {
            // What hostready started (`--verify-runs`, command checks) is always shown.
            writeln!(out, "{}ran: {run}", " ".repeat(7 + width))?;
        }
    }
    Ok(())
}

/// Writes a blank line and `<verdict>: N passed, N warnings, N failed, N unknown` (`1 warning`).
pub fn print_summary(
    out: &mut Text<impl Write>,
    verdict: &str,
    s: &Summary,
) -> std::io::Result<()> {
    writeln!(out)?;
    writeln!(
        out,
        "{verdict}: {} passed, {}, {} failed, {} unknown",
        s.pass,
        plural(s.warn, "warning"),
        s.fail,
        s.unknown
    )
}

/// Returns `1 warning`, `0 warnings`, `2 warnings`.
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Writes a finding's evidence, fix, commands and notes, indented under its message.
fn print_details(out: &mut Text<impl Write>, f: &Finding, width: usize) -> std::io::Result<()> {
    let pad = " ".repeat(7 + width);
    for (k, v) in &f.evidence.0 {
        writeln!(out, "{pad}{k}: {v}")?;
    }
    if let Some(r) = &f.remediation {
        out.wrapped(&pad, "fix: ", &r.summary)?;
        for c in &r.commands {
            writeln!(out, "{pad}  $ {c}")?;
        }
        for n in &r.notes {
            writeln!(out, "{pad}  note: {n}")?;
        }
    }
    Ok(())
}

/// Returns the four-letter status word and its colour.
fn badge(status: Status) -> (Style, &'static str) {
    match status {
        Status::Pass => (Style::Green, "PASS"),
        Status::Warn => (Style::Yellow, "WARN"),
        Status::Fail => (Style::Red, "FAIL"),
        Status::Unknown => (Style::Magenta, "UNKN"),
    }
}
