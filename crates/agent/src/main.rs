//! `hostready-agent`: the agent alone, with exactly the flags of `hostready agent`. The agent's
//! integration tests and the scale run start it as a real process.

use std::process::ExitCode;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "hostready-agent",
    version,
    about = "The hostready agent (same as `hostready agent`)."
)]
struct Cli {
    #[command(flatten)]
    args: hostready_agent::cli::AgentArgs,
    #[command(flatten)]
    log: hostready_agent::log::LogArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logging first: the options' own errors are printed below, everything after through it.
    let result = hostready_agent::log::init(cli.log.log_format)
        .map_err(anyhow::Error::from)
        .and_then(|()| cli.args.options().map_err(anyhow::Error::msg))
        .and_then(|o| hostready_agent::cli::run(o).map_err(anyhow::Error::from));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("hostready-agent: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
