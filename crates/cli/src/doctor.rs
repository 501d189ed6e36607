//! `hostready doctor`: flags, wiring to `hostready-doctor`, printing and the exit code.
//!
//! Exit codes (`exit.rs`, the same rule as `check`): 0 nothing failed (warnings are shown, and
//! exit 1 only with `--strict`); 1 something failed (a `fail` finding, or a known problem in
//! `--explain` input); 2 doctor cannot tell (a finding is unknown and nothing failed, as with
//! no procfs to read processes from) or could not run (root or log unreadable).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use hostready_doctor::{Options, Report, Thresholds, logfile, signatures};
use hostready_flags::{HostArgs, duration};

use crate::exit::{self, StrictArgs};
use crate::output::{self, Format, OutputArgs};
use crate::table;

/// Arguments of `hostready doctor`.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    host: HostArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// A group of identical processes is a pile-up from this many members.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pile_min_count: usize,
    /// ... when its oldest member is at least this old (`90s`, `5m`, `1h30m`, `0`; a unit is
    /// required).
    #[arg(long, default_value = "60s", value_parser = duration::flag, value_name = "AGE")]
    pile_min_age: Duration,
    /// A process name that normally runs as many long-lived copies, never a pile-up (repeatable;
    /// added to the defaults: pause, containerd-shim, conmon, crun, nginx, httpd, apache2,
    /// php-fpm*, postgres, sshd, agetty). A trailing `*` matches any suffix.
    #[arg(long = "pile-expect", value_name = "NAME")]
    pile_expect: Vec<String>,
    /// Read logs from FILE (`-` for stdin) and say which known problems they show, instead of
    /// diagnosing the host. The input is read to its end, line by line, in bounded memory
    /// whatever its size; a line longer than 64 KiB is matched in overlapping 64 KiB pieces
    /// (the report says how many). FILE may be a regular file or a FIFO; a device is
    /// refused unopened (opening one runs its driver): redirect it to stdin to read it.
    /// Input that never ends (`- < /dev/zero`) is read until interrupted.
    #[arg(long, value_name = "FILE|-")]
    explain: Option<PathBuf>,
    #[command(flatten)]
    strict: StrictArgs,
    /// Show passing findings' evidence too (table output).
    #[arg(long, short = 'v')]
    verbose: bool,
}

/// Runs `hostready doctor`.
pub fn run(args: &DoctorArgs) -> anyhow::Result<ExitCode> {
    if let Some(file) = &args.explain {
        return explain(args, file);
    }
    let host = args.host.open()?;
    let opts = Options {
        thresholds: {
            let mut t = Thresholds {
                min_count: args.pile_min_count,
                min_age_secs: args.pile_min_age.as_secs(),
                ..Thresholds::default()
            };
            t.expected.extend(args.pile_expect.iter().cloned());
            t
        },
        full_read: true,
    };
    let report = hostready_doctor::diagnose(&host, &opts);
    match args.output.format {
        Format::Table => print_table(&report, args.verbose)?,
        f => print_buffered(f, &report)?,
    }
    // Without a procfs the process findings are unknown: exit 2 unless something failed.
    Ok(exit::of_findings(&report.findings, args.strict.strict).into())
}

fn explain(args: &DoctorArgs, file: &Path) -> anyhow::Result<ExitCode> {
    // Streamed: memory stays bounded (`signatures::Scanner`) whatever the input's size.
    let explanation = if file.as_os_str() == "-" {
        signatures::explain_reader(std::io::stdin().lock(), "stdin").context("cannot read stdin")?
    } else {
        let source = file.display().to_string();
        let log = logfile::open(file)?;
        signatures::explain_reader(log, &source).with_context(|| format!("cannot read {source}"))?
    };
    let source = &explanation.source;
    match args.output.format {
        Format::Table => {
            let mut out = output::stdout();
            writeln!(
                out,
                "log {source}  {} lines, {} bytes read  (doctor --explain)",
                explanation.lines_read, explanation.bytes_read
            )?;
            if explanation.long_lines > 0 {
                writeln!(
                    out,
                    "note: {} line(s) longer than {} KiB were matched in overlapping pieces",
                    explanation.long_lines,
                    signatures::MAX_LINE / 1024
                )?;
            }
            writeln!(out)?;
            table::print_findings(
                &mut out,
                &explanation.findings,
                args.verbose,
                output::color(),
            )?;
            let verdict = if explanation.ok {
                "NO KNOWN PROBLEM"
            } else {
                "KNOWN PROBLEMS"
            };
            table::print_summary(&mut out, verdict, &explanation.summary)?;
            out.flush()?;
        }
        f => print_buffered(f, &explanation)?,
    }
    // A known problem is a `fail` finding: exit 1.
    Ok(exit::of_findings(&explanation.findings, args.strict.strict).into())
}

/// Prints `value` as JSON or YAML with one `write(2)`, like `output::print_data` otherwise:
/// stdout is line-buffered, and a report on a pile of thousands lists every pid on a line of
/// its own, which cost a system call each (5,000 of them in the 5,000-process benchmark).
fn print_buffered<T: serde::Serialize>(format: Format, value: &T) -> anyhow::Result<()> {
    let mut buf = Vec::with_capacity(64 * 1024);
    output::write_data(&mut buf, format, value)?;
    std::io::stdout().lock().write_all(&buf)?;
    Ok(())
}

fn print_table(report: &Report, verbose: bool) -> anyhow::Result<()> {
    let mut out = output::stdout();
    table::print_host(&mut out, &report.host, "doctor")?;
    match &report.no_proc {
        Some(why) => writeln!(
            out,
            "note: no procfs ({why}); pile-up, lock and memory findings are unknown (see --proc)"
        )?,
        None => writeln!(out, "{} processes read", report.processes)?,
    }
    if let Some(why) = &report.links_unknown {
        writeln!(
            out,
            "note: {why}; who has files open and the piles' executables are unknown"
        )?;
    }
    writeln!(out)?;
    table::print_findings(&mut out, &report.findings, verbose, output::color())?;
    // Healthy only when everything was decided: an unknown finding is not a pass.
    let verdict = match (report.ok, &report.no_proc) {
        (false, _) => "NEEDS ATTENTION",
        (true, Some(_)) => "INCOMPLETE",
        (true, None) if report.summary.unknown > 0 => "INCOMPLETE",
        (true, None) => "HEALTHY",
    };
    table::print_summary(&mut out, verdict, &report.summary)?;
    out.flush()?;
    Ok(())
}
