//! What to run: a probe's id, program, argv, deadline and extra environment.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// One probe: an absolute program, its explicit argv, and a deadline. Never a shell string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSpec {
    /// Stable id; at most one live instance per id exists at a time.
    pub id: String,
    /// Absolute path of the program; relative paths are refused (no PATH search).
    pub program: PathBuf,
    /// Arguments after `argv[0]`.
    pub args: Vec<OsString>,
    /// Deadline, counted from the spawn.
    pub timeout: Duration,
    /// Variables set on top of the runner's allow-listed environment.
    pub env: Vec<(OsString, OsString)>,
    /// Runs the program unprivileged (and inside a root) instead of with hostready's own
    /// privileges: for programs that belong to an untrusted root image. `None`: as hostready.
    pub sandbox: Option<Sandbox>,
}

/// How an untrusted program is confined. Set up in the child between fork and exec, in this
/// order: `chroot(root)` and `chdir("/")`, every capability dropped from the bounding set,
/// supplementary groups set to none, real/effective/saved gid then uid set to `gid`/`uid`
/// (which clears the permitted, effective and ambient capability sets), the inheritable set
/// cleared, and `no_new_privs` set (so no set-uid program or file capability gives anything
/// back). Without capabilities the program cannot `chroot` again, `mknod`, `chown`, mount,
/// ptrace or read `/proc/1/root`, so `chdir("..")` and friends stay inside the root; see
/// `docs/bench-exec.md` ("How probes are confined") for what it still can do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sandbox {
    /// The directory to `chroot` into; the spec's program is then a path inside it.
    pub root: Option<PathBuf>,
    /// The uid to run as (never 0).
    pub uid: u32,
    /// The gid to run as (never 0).
    pub gid: u32,
}

impl Sandbox {
    /// The conventional unprivileged identity, `nobody`/`nogroup` (65534).
    const NOBODY: u32 = 65534;

    /// Returns a sandbox running as 65534:65534, inside `root` when given.
    pub fn unprivileged(root: Option<PathBuf>) -> Sandbox {
        Sandbox {
            root,
            uid: Sandbox::NOBODY,
            gid: Sandbox::NOBODY,
        }
    }
}

impl ProbeSpec {
    /// Returns a spec with no extra environment.
    pub fn new<I, A>(
        id: impl Into<String>,
        program: impl Into<PathBuf>,
        args: I,
        timeout: Duration,
    ) -> ProbeSpec
    where
        I: IntoIterator<Item = A>,
        A: Into<OsString>,
    {
        ProbeSpec {
            id: id.into(),
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            timeout,
            env: Vec::new(),
            sandbox: None,
        }
    }

    /// Returns the command line this spec executes.
    pub(crate) fn command_line(&self) -> CommandLine {
        CommandLine {
            program: self.program.clone(),
            args: self.args.clone(),
        }
    }
}

/// A program and its argv, displayed shell-quoted for humans (it is never given to a shell).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    /// The absolute program path.
    pub program: PathBuf,
    /// The arguments after `argv[0]`.
    pub args: Vec<OsString>,
}

impl fmt::Display for CommandLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_quoted(f, &self.program.to_string_lossy())?;
        for a in &self.args {
            f.write_str(" ")?;
            write_quoted(f, &a.to_string_lossy())?;
        }
        Ok(())
    }
}

fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if plain {
        f.write_str(s)
    } else {
        write!(f, "'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_quotes_only_what_needs_it() {
        let spec = ProbeSpec::new(
            "x",
            "/usr/bin/check",
            ["--dev", "sd b", "it's", ""],
            Duration::from_secs(1),
        );
        assert_eq!(
            spec.command_line().to_string(),
            r"/usr/bin/check --dev 'sd b' 'it'\''s' ''"
        );
    }
}
