//! `hostready doctor`: flags, wiring to `hostready-doctor`, printing and the exit code.
//!
//! Exit codes: 0 nothing wrong; 1 something is (a `fail` or `warn` finding, or a known problem
//! in `--explain` input); 2 doctor could not do its job (root unreadable, no procfs to read
//! processes from, log unreadable).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use hostready_doctor::{Options, Report, Thresholds, logfile, signatures};
use hostready_host::{Host, ProcSource};

use crate::output::{self, Format};
use crate::table;

/// Arguments of `hostready doctor`.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// The host's filesystem root (`/host` in a DaemonSet).
    #[arg(long, default_value = "/")]
    root: PathBuf,
    /// The host's procfs: a directory, or `none`; default `<root>/proc` if it is a procfs.
    #[arg(long, value_name = "DIR|none")]
    proc: Option<String>,
    /// How to print the findings.
    #[arg(long, short, value_enum, default_value_t = Format::Table)]
    output: Format,
    /// A group of identical processes is a pile-up from this many members.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pile_min_count: usize,
    /// ... when its oldest member is at least this old (`90s`, `5m`, `1h`, `0`).
    #[arg(long, default_value = "60s", value_parser = parse_duration, value_name = "AGE")]
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
    /// Show passing findings' evidence too (table output).
    #[arg(long, short = 'v')]
    verbose: bool,
}

/// Runs `hostready doctor`.
pub fn run(args: &DoctorArgs) -> anyhow::Result<ExitCode> {
    if let Some(file) = &args.explain {
        return explain(args, file);
    }
    let proc = match args.proc.as_deref() {
        None => ProcSource::Auto,
        Some("none") => ProcSource::Disabled,
        Some(dir) => ProcSource::At(PathBuf::from(dir)),
    };
    let host = Host::open(&args.root, proc)
        .with_context(|| format!("cannot open the host root {}", args.root.display()))?;
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
    };
    let report = hostready_doctor::diagnose(&host, &opts);
    match args.output {
        Format::Table => print_table(&report, args.verbose)?,
        f => print_buffered(f, &report)?,
    }
    Ok(exit_code(report.ok, report.no_proc.is_some()))
}

/// 1 when something needs attention (a `fail` or `warn` finding), else 2 when doctor could not
/// read processes, else 0.
fn exit_code(ok: bool, could_not_work: bool) -> ExitCode {
    if !ok {
        ExitCode::from(1)
    } else if could_not_work {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
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
    match args.output {
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
                table::color(),
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
    Ok(if explanation.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
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
    table::print_findings(&mut out, &report.findings, verbose, table::color())?;
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

/// Parses `500ms`, `90s`, `5m`, `2h`, `1d`, or a bare number of seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 90s, 5m or 1h"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => return Ok(Duration::from_millis(n)),
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return Err(format!("unknown unit `{unit}` in `{s}` (ms, s, m, h, d)")),
    };
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }
}
