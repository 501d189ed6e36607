//! The `hostready` binary: parses flags, wires the library crates together, prints, and picks
//! the exit code (`exit.rs`: 0 yes, 1 no, 2 cannot tell or could not run).

mod agent;
mod check;
mod cluster;
mod doctor;
mod exit;
mod manual;
mod output;
mod pkg;
mod profiles;
mod table;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Tells whether this host has what its storage system needs, without starting a process.
#[derive(Debug, Parser)]
#[command(name = "hostready", version, about)]
struct Cli {
    #[command(flatten)]
    color: output::ColorArgs,
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    log: hostready_agent::log::LogArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check this host against profiles (default: longhorn) with per-distro fixes.
    Check(check::CheckArgs),
    /// List the built-in profiles, or show one (a name or a YAML file).
    Profiles(profiles::ProfilesArgs),
    /// Read dpkg and rpm databases without locks or processes.
    Pkg(pkg::PkgArgs),
    /// Diagnose process pile-ups, package-database locks and corruption, memory pressure.
    Doctor(doctor::DoctorArgs),
    /// Run as the DaemonSet agent: periodic checks, node conditions, events, metrics.
    // Boxed: the agent has many flags, and every other variant would pay for its size.
    Agent(Box<agent::AgentArgs>),
    /// Show nodes × profiles from the conditions the agents published.
    Cluster(cluster::ClusterArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(manual::CompletionsArgs),
    /// Print the manual page, or write every page into a directory (--dir).
    Man(manual::ManArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli.color.apply();
    // Logs (the agent's, kube-client's under `agent` and `cluster`) go to stderr through
    // tracing; data and tables stay on stdout.
    if let Err(e) = hostready_agent::log::init(cli.log.log_format) {
        let e = anyhow::Error::from(e);
        let _ = writeln!(output::stderr(), "hostready: error: {e:#}");
        return ExitCode::from(2);
    }
    let result = match &cli.command {
        Command::Check(args) => check::run(args),
        Command::Profiles(args) => profiles::run(args),
        Command::Pkg(args) => pkg::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Agent(args) => agent::run(args),
        Command::Cluster(args) => cluster::run(args),
        Command::Completions(args) => manual::completions(args),
        Command::Man(args) => manual::man(args),
    };
    match result {
        Ok(code) => code,
        // A closed pipe (`hostready check | head`) is the reader's choice, not our failure.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // Errors name host paths and contents: escaped like every text output.
            let _ = writeln!(output::stderr(), "hostready: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .is_some_and(|j| j.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe))
    })
}
