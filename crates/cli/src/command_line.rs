//! The `hostready` command line: the top level and its subcommands, built lazily.
//!
//! clap builds a `Command` for every subcommand and every flag before it parses a single
//! argument; with the agent's many flags that was most of what `hostready --version` did, and
//! it touched code pages all over the binary (issue 14: start within 1.2× an empty program).
//! So the subcommands are deferred (`#[command(defer = true)]`, clap's own `Command::defer`):
//! the top level holds each subcommand's name and one-line description only, and clap adds a
//! subcommand's flags when it parses into that subcommand, or when something needs the whole
//! tree — `build()` for completions and manual pages, top-level help, a suggestion for a
//! mistyped flag — so what is printed cannot differ. The unit test below holds that: it builds
//! the same definition eagerly and compares help, usage, version, errors and parsed values for
//! every subcommand.
//!
//! The definition is written once, in [`command_line!`], and expanded twice: deferred for the
//! binary, eager (exactly the derive as it was before) for the test.
//!
//! One quirk of deferring is mended here: an `Args` struct's own doc comment ("Arguments of
//! `hostready check`") becomes its command's description when its flags are added. Eagerly,
//! the enum variant's doc comment is applied after that and wins; deferred, the flags come
//! last and the struct's text would win in completions and manual pages. [`Described`] keeps
//! the variant's description whichever comes first.

use std::ops::Deref;

use clap::{ArgMatches, Args, FromArgMatches, Parser, Subcommand};

use crate::{agent, check, cluster, doctor, manual, output, pkg, profiles};

/// Defines the top-level parser `$cli` and its subcommand enum `$command`, deferred or not.
macro_rules! command_line {
    ($cli:ident, $command:ident, defer = $defer:tt, wrap = $w:ident) => {
        /// Tells whether this host has what its storage system needs, without starting a process.
        #[derive(Debug, Parser)]
        #[command(name = "hostready", version, about)]
        pub(crate) struct $cli {
            #[command(flatten)]
            pub(crate) color: output::ColorArgs,
            #[command(subcommand)]
            pub(crate) command: $command,
            #[command(flatten)]
            pub(crate) log: hostready_agent::log::LogArgs,
        }

        #[derive(Debug, Subcommand)]
        #[command(defer = $defer)]
        pub(crate) enum $command {
            /// Check this host against profiles (default: longhorn) with per-distro fixes.
            Check($w<check::CheckArgs>),
            /// List the built-in profiles, or show one (a name or a YAML file).
            Profiles($w<profiles::ProfilesArgs>),
            /// Read dpkg and rpm databases without locks or processes.
            Pkg($w<pkg::PkgArgs>),
            /// Diagnose process pile-ups, package-database locks and corruption, memory pressure.
            Doctor($w<doctor::DoctorArgs>),
            /// Run as the DaemonSet agent: periodic checks, node conditions, events, metrics.
            // Boxed: the agent has many flags, and every other variant would pay for its size.
            Agent(Box<$w<agent::AgentArgs>>),
            /// Show nodes × profiles from the conditions the agents published.
            Cluster($w<cluster::ClusterArgs>),
            /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
            Completions($w<manual::CompletionsArgs>),
            /// Print the manual page, or write every page into a directory (--dir).
            Man($w<manual::ManArgs>),
        }
    };
}

command_line!(LazyCli, LazyCommand, defer = true, wrap = Described);

// The whole tree, built eagerly: what `hostready completions` and `hostready man` walk. A
// deferred tree, once built, would still lack the nested subcommands in the copy clap makes
// for `hostready help <TAB>` (it copies the subcommands before their flags are added).
command_line!(Cli, Command, defer = false, wrap = Plain);

/// A subcommand's flags `T`, added without replacing the description the subcommand already
/// has (the enum variant's doc comment): see the module's header. Derefs to `T`, and shows as
/// `T` in `Debug`.
pub(crate) struct Described<T>(T);

impl<T: std::fmt::Debug> std::fmt::Debug for Described<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<T> Deref for Described<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: FromArgMatches> FromArgMatches for Described<T> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(matches).map(Described)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(matches)
    }
}

impl<T: Args> Args for Described<T> {
    fn group_id() -> Option<clap::Id> {
        T::group_id()
    }

    fn augment_args(cmd: clap::Command) -> clap::Command {
        keep_description(cmd, T::augment_args)
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        keep_description(cmd, T::augment_args_for_update)
    }
}

/// Returns `augment(cmd)` with `cmd`'s descriptions (none, eagerly: the variant's doc comment
/// follows; the variant's, deferred).
fn keep_description(
    cmd: clap::Command,
    augment: fn(clap::Command) -> clap::Command,
) -> clap::Command {
    let text = |t: Option<&clap::builder::StyledStr>| {
        t.cloned().map_or(
            clap::builder::Resettable::Reset,
            clap::builder::Resettable::Value,
        )
    };
    let (about, long_about) = (text(cmd.get_about()), text(cmd.get_long_about()));
    augment(cmd).about(about).long_about(long_about)
}

/// The eager tree takes each subcommand's flags as they are.
type Plain<T> = T;

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches};

    use super::*;

    /// What one command line comes to: the parsed value, or clap's error as it would be
    /// printed (kind, exit code, text with its styling).
    fn outcome<C: CommandFactory + FromArgMatches + std::fmt::Debug>(argv: &[String]) -> String {
        let mut cmd = C::command();
        let parsed = cmd
            .try_get_matches_from_mut(argv)
            .and_then(|m| C::from_arg_matches(&m));
        match parsed {
            // The type names differ (LazyCli / Cli); everything under them must not.
            Ok(v) => format!("ok {v:?}").replacen("LazyCli", "Cli", 1),
            Err(e) => {
                let e = e.format(&mut C::command());
                format!(
                    "error {:?} exit {}\n{}",
                    e.kind(),
                    e.exit_code(),
                    e.render().ansi()
                )
            }
        }
    }

    /// Every subcommand path of the full tree (`[]`, `["check"]`, `["pkg", "query"]`, ...).
    fn paths(cmd: &clap::Command, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
        out.push(prefix.clone());
        for sub in cmd.get_subcommands() {
            let mut p = prefix.clone();
            p.push(sub.get_name().to_string());
            paths(sub, p, out);
        }
    }

    /// Command lines that reach help, version, errors and suggestions at `path`.
    fn probes(path: &[String]) -> Vec<Vec<String>> {
        let tails: &[&[&str]] = &[
            &[],
            &["--help"],
            &["-h"],
            &["--version"],
            &["-V"],
            &["--no-such-flag"],
            &["--roo", "/"],
            &["--colr", "never"],
            &["--color", "sometimes"],
            &["--log-format", "xml"],
            &["--output", "xml"],
            &["-o"],
            &["no-such-subcommand"],
            &["chek"],
            &["help"],
            &["help", "query"],
            &["--color", "never", "--help"],
        ];
        let mut out = Vec::new();
        for tail in tails {
            let mut argv = vec!["hostready".to_string()];
            argv.extend(path.iter().cloned());
            argv.extend(tail.iter().map(|s| s.to_string()));
            out.push(argv);
        }
        // `hostready help <path>`.
        let mut argv = vec!["hostready".to_string(), "help".to_string()];
        argv.extend(path.iter().cloned());
        out.push(argv);
        out
    }

    #[test]
    fn the_deferred_command_line_builds_what_the_eager_one_does() {
        LazyCli::command().debug_assert();
        Cli::command().debug_assert();
        let mut eager = Cli::command();
        eager.build();
        let mut lazy = LazyCli::command();
        lazy.build();
        let mut all = Vec::new();
        paths(&eager, Vec::new(), &mut all);
        // Every subcommand: check, profiles, pkg, pkg list|query|owner, doctor, agent, ...
        assert!(all.len() > 10, "{all:?}");
        // `help ...`: clap's copy for the help subcommand differs once a deferred tree is built
        // (see `Cli`), which is why completions and manual pages walk the eager tree; parsing
        // `hostready help pkg` builds the real `pkg` (held by the probes below).
        for path in all.iter().filter(|p| p.first().is_none_or(|n| n != "help")) {
            let (mut e, mut l) = (&mut eager, &mut lazy);
            for name in path {
                e = e.find_subcommand_mut(name).unwrap();
                l = l.find_subcommand_mut(name).unwrap();
            }
            let id = path.join(" ");
            assert_eq!(
                l.render_long_help().ansi().to_string(),
                e.render_long_help().ansi().to_string(),
                "long help of {id:?}"
            );
            assert_eq!(
                l.render_help().ansi().to_string(),
                e.render_help().ansi().to_string(),
                "help of {id:?}"
            );
            assert_eq!(
                l.render_usage().ansi().to_string(),
                e.render_usage().ansi().to_string(),
                "usage of {id:?}"
            );
            assert_eq!(l.render_version(), e.render_version(), "version of {id:?}");
        }
        for path in &all {
            for argv in probes(path) {
                assert_eq!(outcome::<LazyCli>(&argv), outcome::<Cli>(&argv), "{argv:?}");
            }
        }
    }

    #[test]
    fn the_deferred_command_line_parses_what_the_eager_one_does() {
        let lines: &[&str] = &[
            "hostready --version",
            "hostready check",
            "hostready check -p longhorn -p iscsi --root /host --proc none -o json --strict -v",
            "hostready --color never check --log-format json",
            "hostready check --color always --verify-runs",
            "hostready profiles",
            "hostready profiles longhorn",
            "hostready pkg query libuuid --root /r --proc none",
            "hostready pkg owner /usr/bin/rpm -o yaml",
            "hostready pkg owner usr/bin/rpm",
            "hostready pkg query",
            "hostready pkg list --root /",
            "hostready doctor --explain -",
            "hostready doctor --threshold x",
            "hostready agent --once",
            "hostready agent --no-such-flag",
            "hostready cluster -o json",
            "hostready completions bash",
            "hostready completions tcsh",
            "hostready man pkg query",
            "hostready man --dir /tmp/m check",
        ];
        for line in lines {
            let argv: Vec<String> = line.split(' ').map(str::to_string).collect();
            assert_eq!(outcome::<LazyCli>(&argv), outcome::<Cli>(&argv), "{line}");
        }
    }
}
