//! `hostready doctor`: owned by the doctor work; replaced when it lands.

/// Arguments of `hostready doctor`.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {}

/// Runs `hostready doctor`.
pub fn run(_args: &DoctorArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("hostready doctor is not built yet")
}
