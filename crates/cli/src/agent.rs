//! `hostready agent`: the DaemonSet side. Everything lives in `hostready-agent`; this only
//! hands the flags over. Exit codes (the README's table): 0 published (or stopped by SIGTERM),
//! 1 `--once` could not publish, 2 the agent could not start (flags, config, no cluster).

use std::process::ExitCode;

pub use hostready_agent::cli::AgentArgs;

/// Runs the agent until SIGTERM (or one cycle with `--once`).
pub fn run(args: &AgentArgs) -> anyhow::Result<ExitCode> {
    let opts = args.options().map_err(anyhow::Error::msg)?;
    Ok(ExitCode::from(hostready_agent::cli::run(opts)?))
}
