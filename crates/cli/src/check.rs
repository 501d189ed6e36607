//! `hostready check`: load profiles, open the host, evaluate, print.

use std::path::Path;
use std::process::ExitCode;

use hostready_checks::fix::{self, FixPlan};
use hostready_checks::{Check, DEFAULT_PROFILE, Facts, Probing, Profile, Report, profile};
use hostready_exec::{Runner, RunnerConfig};
use hostready_flags::{HostArgs, SearchPathArgs};

use crate::exit::{self, StrictArgs};
use crate::output::{self, Format, OutputArgs};
use crate::table;

/// Arguments of `hostready check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub host: HostArgs,
    #[command(flatten)]
    pub profile: hostready_flags::ProfileArgs,
    #[command(flatten)]
    pub path: SearchPathArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Also run each found executable once (`iscsiadm --version`, ...) under the bounded runner,
    /// to show that it really starts. Off by default: built-in checks start no process. This
    /// runs the programs of the checked root — with `--root`, an image you may not trust. They
    /// never run with hostready's privileges: chrooted into the root, as uid/gid 65534 with no
    /// groups, no capabilities (bounding set included) and no_new_privs, in their own cgroup
    /// where one can be made. They can still read what 65534 may read inside the root, use the
    /// network, and signal other processes of uid 65534; do not use it on a root whose programs
    /// you would not run as `nobody`.
    #[arg(long)]
    pub verify_runs: bool,
    #[command(flatten)]
    pub strict: StrictArgs,
    /// Show passing findings' evidence too (table output).
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// Print, instead of the table, a POSIX shell script that would fix what failed on this
    /// host: install packages, load and persist modules, set and persist sysctls, enable
    /// services, each step only if still needed (docs/fix-script.md). hostready never runs
    /// it; review it first. The exit code is the check's.
    #[arg(long)]
    pub fix_script: bool,
}

/// Runs `hostready check`: exit 0 when every required requirement passes, 1 when one fails, 2
/// when one is unknown and none fails (`exit.rs`).
pub fn run(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let names: Vec<&str> = if args.profile.profiles.is_empty() {
        vec![DEFAULT_PROFILE]
    } else {
        args.profile.profiles.iter().map(String::as_str).collect()
    };
    // Every profile is loaded and validated before anything is checked.
    let profiles = names
        .iter()
        .map(|n| profile::load(n))
        .collect::<Result<Vec<Profile>, _>>()?;
    let host = args.host.open()?;
    let facts = Facts::new(&host, &args.path.search_path);
    let has_commands = profiles
        .iter()
        .flat_map(|p| &p.requirements)
        .any(|r| matches!(r.check, Check::Command(_)));
    // A runner (and with it the subreaper setting) only when something must start a process.
    let runner = (has_commands || args.verify_runs).then(|| Runner::new(RunnerConfig::default()));
    let root = std::path::absolute(&args.host.root)?;
    let probing = runner.as_ref().map(|runner| Probing {
        runner,
        verify_executables: args.verify_runs,
        root: (root != Path::new("/")).then_some(root.as_path()),
    });
    // Refused before anything is checked: the plan is the script; its data is the report's
    // findings and remediations, which -o json already prints.
    if args.fix_script && args.output.format != Format::Table {
        anyhow::bail!(
            "--fix-script prints a shell script and has no JSON or YAML form; -o json without it gives the findings and their remediations"
        );
    }
    let report = hostready_checks::evaluate(&profiles, &facts, probing.as_ref());
    match args.output.format {
        Format::Table if args.fix_script => print_fix_script(&report, &facts)?,
        Format::Table => print_table(&report, args.verbose)?,
        f => output::print_data(f, &report)?,
    }
    Ok(exit::of_findings(&report.findings, args.strict.strict).into())
}

/// Prints the fix plan of `report` as a shell script. Not through [`output::Text`]: the script
/// is data for `sh`, its host text already made inert by the renderer (quoted in commands,
/// control characters replaced in comments), and escaping it again would change its commands.
fn print_fix_script(report: &Report, facts: &Facts<'_>) -> anyhow::Result<()> {
    use std::io::Write as _;
    let plan = FixPlan::build(&report.findings, facts.os());
    let header = fix::Header::of(env!("CARGO_PKG_VERSION"), report, facts);
    let mut out = std::io::stdout().lock();
    out.write_all(fix::shell::render(&plan, &header).as_bytes())?;
    out.flush()?;
    Ok(())
}

fn print_table(report: &Report, verbose: bool) -> anyhow::Result<()> {
    // Escapes host text (os-release, probe output) for the terminal: see output.rs.
    let mut out = output::stdout();
    table::print_host(&mut out, &report.host, &report.profiles.join(", "))?;
    if report.host.proc.is_none() {
        writeln!(
            out,
            "note: no procfs for this root; process, module and kernel facts are unknown (see --proc)"
        )?;
    }
    writeln!(out)?;
    table::print_findings(&mut out, &report.findings, verbose, table::color())?;
    let verdict = if report.ok { "READY" } else { "NOT READY" };
    table::print_summary(&mut out, verdict, &report.summary)?;
    out.flush()?;
    Ok(())
}
