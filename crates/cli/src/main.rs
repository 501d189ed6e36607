//! The `hostready` binary: parses flags, wires the library crates together, prints, and picks
//! the exit code (0 all required items met, 1 a requirement failed, 2 hostready itself failed).

mod doctor;
mod output;
mod pkg;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Tells whether this host has what its storage system needs, without starting a process.
#[derive(Debug, Parser)]
#[command(name = "hostready", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read dpkg and rpm databases without locks or processes.
    Pkg(pkg::PkgArgs),
    /// Diagnose process pile-ups, package-database locks and corruption, memory pressure.
    Doctor(doctor::DoctorArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Pkg(args) => pkg::run(args),
        Command::Doctor(args) => doctor::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hostready: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
