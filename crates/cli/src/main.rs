//! The `hostready` binary: parses flags, wires the library crates together, prints, and picks
//! the exit code (`exit.rs`: 0 yes, 1 no, 2 cannot tell or could not run).

mod agent;
mod check;
mod cluster;
mod command_line;
mod doctor;
mod exit;
mod manual;
mod output;
mod pkg;
mod profiles;
mod table;

use std::process::ExitCode;

use clap::Parser;

use command_line::{Cli, LazyCli, LazyCommand as Command};

fn main() -> ExitCode {
    // The lazy twin of `Cli`: only the subcommand named is built (command_line.rs).
    let cli = LazyCli::parse();
    cli.color.apply();
    // Logs (the agent's, kube-client's under `agent` and `cluster`) go to stderr through
    // tracing; data and tables stay on stdout. No other subcommand emits a tracing event, so
    // they set logging up only when RUST_LOG asks for something (an invalid filter is still
    // refused, and `RUST_LOG=debug` still logs the set-up): the subscriber and its filter cost
    // a start-up of `check` or `pkg query` page faults and time for nothing (issue 14).
    let logs = matches!(cli.command, Command::Agent(_) | Command::Cluster(_))
        || hostready_agent::log::rust_log_set();
    if let Err(e) = match logs {
        true => hostready_agent::log::init(cli.log.log_format),
        false => Ok(()),
    } {
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
