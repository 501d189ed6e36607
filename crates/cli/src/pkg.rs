//! `hostready pkg`: owned by the package-database work; replaced when it lands.

/// Arguments of `hostready pkg`.
#[derive(Debug, clap::Args)]
pub struct PkgArgs {}

/// Runs `hostready pkg`.
pub fn run(_args: &PkgArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("hostready pkg is not built yet")
}
