//! `hostready completions SHELL` and `hostready man`: shell completions (clap_complete) and
//! manual pages (clap_mangen), both generated from the one clap definition of the flags, so
//! they cannot drift from what the binary accepts.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::CommandFactory;

/// Arguments of `hostready completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for; install the output where that shell reads completions
    /// (bash: `hostready completions bash > /etc/bash_completion.d/hostready`).
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Arguments of `hostready man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write every page (hostready.1, hostready-check.1, hostready-pkg-query.1, ...) into this
    /// directory instead of printing hostready(1).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Print the page of this subcommand (`check`, `pkg query`, ...) instead of hostready(1).
    #[arg(value_name = "SUBCOMMAND", conflicts_with = "dir")]
    pub subcommand: Vec<String>,
}

/// Prints the completion script for `args.shell` on stdout.
pub fn completions(args: &CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut cmd = crate::Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut cmd, "hostready", &mut out);
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Prints a manual page, or writes all of them into `--dir`.
pub fn man(args: &ManArgs) -> anyhow::Result<ExitCode> {
    let cmd = crate::Cli::command();
    if let Some(dir) = &args.dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        clap_mangen::generate_to(cmd, dir)
            .with_context(|| format!("cannot write manual pages into {}", dir.display()))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let mut page = cmd;
    for name in &args.subcommand {
        page = page
            .find_subcommand(name)
            .cloned()
            .with_context(|| format!("no subcommand {name:?} (see hostready --help)"))?;
    }
    let mut buf = Vec::new();
    clap_mangen::Man::new(page).render(&mut buf)?;
    std::io::stdout().lock().write_all(&buf)?;
    Ok(ExitCode::SUCCESS)
}
