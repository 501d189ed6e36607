//! The flags every hostready binary shares (`hostready` and the agent's own `hostready-agent`),
//! each defined once, as a clap `Args` struct that a subcommand flattens, with the test of its
//! parsing beside it (as ripgrep keeps each flag's definition and test together):
//!
//! - [`HostArgs`]: where the host is, `--root` and `--proc` (`check`, `doctor`, `pkg`, `agent`);
//! - [`ProfileArgs`]: `-p/--profile` (`check`, `agent`);
//! - [`SearchPathArgs`]: the executable search path inside the root, `--path` (`check`, `agent`);
//! - [`duration`]: the one grammar of every duration flag and config key.
//!
//! The `--output` choice is the `hostready` binary's alone (the agent prints no data), so it
//! lives with the printers in `crates/cli/src/output.rs`.

pub mod duration;

use std::path::PathBuf;

use hostready_host::{FsError, Host, ProcSource};

/// Where the host is: its filesystem root and its procfs.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct HostArgs {
    /// The host's root directory: `/`, or `/host` in a DaemonSet that mounts the node's `/`
    /// there. Every path is resolved inside it.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// The host's procfs: a directory, or `none` (process, module and kernel facts are then
    /// unknown). Default: `<root>/proc` when it is a mounted procfs.
    #[arg(long, value_name = "DIR|none", value_parser = proc_source)]
    pub proc: Option<ProcSource>,
}

/// The host root could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open host root {}", root.display())]
pub struct OpenError {
    /// The root as given.
    pub root: PathBuf,
    #[source]
    pub source: FsError,
}

impl HostArgs {
    /// Returns where the procfs comes from (`--proc`, or `<root>/proc` when it is one).
    pub fn proc_source(&self) -> ProcSource {
        self.proc.clone().unwrap_or_default()
    }

    /// Opens the host these flags describe.
    pub fn open(&self) -> Result<Host, OpenError> {
        Host::open(&self.root, self.proc_source()).map_err(|source| OpenError {
            root: self.root.clone(),
            source,
        })
    }
}

/// Reads `--proc`: `none`, or a directory.
fn proc_source(s: &str) -> Result<ProcSource, String> {
    match s {
        "" => Err("give a directory, or `none`".into()),
        "none" => Ok(ProcSource::Disabled),
        dir => Ok(ProcSource::At(PathBuf::from(dir))),
    }
}

/// The profiles to check (`check`) or publish (`agent`).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct ProfileArgs {
    /// A built-in profile name or a YAML file; repeatable. Default: longhorn (for the agent,
    /// the config file's `profiles` when it names them).
    #[arg(long = "profile", short = 'p', value_name = "NAME|FILE")]
    pub profiles: Vec<String>,
}

/// The executable search path inside the host root.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct SearchPathArgs {
    /// The PATH searched for executables inside the host root, in order (colon-separated).
    #[arg(
        long = "path",
        value_name = "DIRS",
        default_value = hostready_host::exe::DEFAULT_PATH
    )]
    pub search_path: String,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        host: HostArgs,
        #[command(flatten)]
        path: SearchPathArgs,
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("t").chain(args.iter().copied()))
    }

    #[test]
    fn root_defaults_to_slash() {
        assert_eq!(parse(&[]).unwrap().host.root, PathBuf::from("/"));
        assert_eq!(
            parse(&["--root", "/host"]).unwrap().host.root,
            PathBuf::from("/host")
        );
    }

    #[test]
    fn proc_is_auto_none_or_a_directory() {
        assert_eq!(parse(&[]).unwrap().host.proc_source(), ProcSource::Auto);
        assert_eq!(
            parse(&["--proc", "none"]).unwrap().host.proc_source(),
            ProcSource::Disabled
        );
        assert_eq!(
            parse(&["--proc", "/proc"]).unwrap().host.proc_source(),
            ProcSource::At(PathBuf::from("/proc"))
        );
        assert!(parse(&["--proc", ""]).is_err());
    }

    #[test]
    fn path_defaults_to_the_standard_path() {
        assert_eq!(
            parse(&[]).unwrap().path.search_path,
            hostready_host::exe::DEFAULT_PATH
        );
        assert_eq!(
            parse(&["--path", "/run/current-system/sw/bin"])
                .unwrap()
                .path
                .search_path,
            "/run/current-system/sw/bin"
        );
    }

    #[test]
    fn an_unopenable_root_names_itself() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let args = parse(&["--root", missing.to_str().unwrap()]).unwrap().host;
        let e = args.open().unwrap_err();
        assert!(e.to_string().starts_with("cannot open host root"), "{e}");
        assert!(e.to_string().contains("nope"), "{e}");
    }
}
