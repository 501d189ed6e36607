//! Finding an executable the way `command -v` does — each PATH directory in order, the first
//! regular file with an execute bit, through symlinks — inside a [`Root`], and then asking
//! whether it could actually run there: its ELF interpreter or `#!` program must be present in
//! the same root, and its machine one the kernel runs.
//!
//! Access refused (`EACCES`/`EPERM`, e.g. hostready running without `CAP_DAC_OVERRIDE`) is
//! never read as absence: a PATH entry that cannot be searched makes the lookup incomplete
//! ([`Lookup::denied`]), and a file that cannot be examined makes its runnability
//! [`Runnability::Denied`].

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::elf::{self, ExecFormat};
use crate::{FileKind, Link, Root};

/// The PATH searched when none is given: what a root login shell has on the common distros,
/// so `/sbin` tools like `mount.nfs` are found.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The outcome of looking up one name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lookup {
    pub name: String,
    pub found: Option<Executable>,
    /// Candidates passed over, with why (not executable, a directory, a symlink loop, ...).
    pub passed_over: Vec<PassedOver>,
    /// Candidates before the one found (all of them when none was) that could not be examined
    /// because access was refused: `command -v` run with the host's privileges might have
    /// picked one of them, so "not on PATH" (or "this one") is not known.
    pub denied: Vec<PassedOver>,
}

/// A candidate that `command -v` would also have skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PassedOver {
    pub path: PathBuf,
    pub reason: String,
}

/// An executable found on PATH.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Executable {
    /// The PATH entry that matched, e.g. `/sbin/iscsiadm`.
    pub path: PathBuf,
    /// Where it really is after following links, e.g. `/usr/sbin/iscsiadm`.
    pub resolved: PathBuf,
    pub links: Vec<Link>,
    pub mode: u32,
    pub runs: Runnability,
}

/// Whether a found executable could start on this host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "verdict")]
pub enum Runnability {
    Yes {
        how: String,
    },
    No {
        why: String,
    },
    Unknown {
        why: String,
    },
    /// Access was refused while examining it (the file or its interpreter): cannot tell.
    Denied {
        why: String,
    },
}

/// Splits a PATH value into directories, dropping empty and relative entries (a relative entry
/// would mean "relative to hostready's working directory", which has no meaning for a host).
pub fn split_path(path: &str) -> Vec<PathBuf> {
    path.split(':')
        .filter(|d| d.starts_with('/'))
        .map(PathBuf::from)
        .collect()
}

/// Looks `name` up in `dirs` inside `root`, as `command -v` would; `native_machines` are the ELF
/// machines the kernel runs (see [`elf::runnable_machines`]).
pub fn find(root: &Root, name: &str, dirs: &[PathBuf], native_machines: &[u16]) -> Lookup {
    let mut passed_over = Vec::new();
    let mut denied = Vec::new();
    let candidates: Vec<PathBuf> = if name.contains('/') {
        vec![PathBuf::from(name)]
    } else {
        dirs.iter().map(|d| d.join(name)).collect()
    };
    for candidate in candidates {
        // Most candidates do not exist: one openat2 says so before the link-recording walk.
        match root.stat(&candidate) {
            Err(e) if e.is_not_found() => continue,
            Err(e) if e.is_permission_denied() => {
                denied.push(PassedOver {
                    path: candidate,
                    reason: format!("cannot be examined: {}", e.source),
                });
                continue;
            }
            _ => {}
        }
        let resolved = match root.resolve(&candidate) {
            Ok(r) => r,
            Err(e) if e.is_not_found() => continue,
            Err(e) => {
                let reason = if e.is_loop() {
                    "too many levels of symbolic links (a loop)".to_string()
                } else {
                    e.source.to_string()
                };
                let list = if e.is_permission_denied() {
                    &mut denied
                } else {
                    &mut passed_over
                };
                list.push(PassedOver {
                    path: candidate,
                    reason,
                });
                continue;
            }
        };
        let stat = match root.stat(&resolved.path) {
            Ok(s) => s,
            Err(e) => {
                let list = if e.is_permission_denied() {
                    &mut denied
                } else {
                    &mut passed_over
                };
                list.push(PassedOver {
                    path: candidate,
                    reason: e.source.to_string(),
                });
                continue;
            }
        };
        if stat.kind != FileKind::File {
            passed_over.push(PassedOver {
                path: candidate,
                reason: format!("not a regular file ({:?})", stat.kind).to_lowercase(),
            });
            continue;
        }
        if stat.mode & 0o111 == 0 {
            passed_over.push(PassedOver {
                path: candidate,
                reason: format!("no execute bit (mode {:04o})", stat.mode),
            });
            continue;
        }
        let runs = runnability(root, &resolved.path, dirs, native_machines, 0);
        return Lookup {
            name: name.to_string(),
            found: Some(Executable {
                path: candidate,
                resolved: resolved.path,
                links: resolved.links,
                mode: stat.mode,
                runs,
            }),
            passed_over,
            denied,
        };
    }
    Lookup {
        name: name.to_string(),
        found: None,
        passed_over,
        denied,
    }
}

/// Decides whether the file at `path` (already resolved) could run; `depth` bounds chains of
/// script interpreters that are themselves scripts (Linux allows a few levels).
fn runnability(
    root: &Root,
    path: &Path,
    dirs: &[PathBuf],
    machines: &[u16],
    depth: u8,
) -> Runnability {
    let file = match root.open_file(path) {
        Ok(f) => f,
        Err(e) if e.is_permission_denied() => {
            return Runnability::Denied {
                why: format!("cannot open {}: {}", path.display(), e.source),
            };
        }
        Err(e) => {
            return Runnability::Unknown {
                why: format!("cannot open {}: {}", path.display(), e.source),
            };
        }
    };
    let format = match elf::exec_format(file) {
        Ok(f) => f,
        Err(e) => {
            return Runnability::Unknown {
                why: format!("cannot read {}: {e}", path.display()),
            };
        }
    };
    match format {
        ExecFormat::Elf {
            machine,
            interpreter,
        } => {
            if !machines.is_empty() && !machines.contains(&machine) {
                return Runnability::No {
                    why: format!(
                        "built for {}, which this kernel does not run",
                        elf::machine_name(machine)
                    ),
                };
            }
            match interpreter {
                None => Runnability::Yes {
                    how: format!("static {} ELF", elf::machine_name(machine)),
                },
                Some(interp) => match present_executable(root, Path::new(&interp)) {
                    Presence::Yes => Runnability::Yes {
                        how: format!(
                            "{} ELF, interpreter {interp} present",
                            elf::machine_name(machine)
                        ),
                    },
                    Presence::No(why) => Runnability::No {
                        why: format!("its ELF interpreter {interp} {why}"),
                    },
                    Presence::Denied(why) => Runnability::Denied {
                        why: format!("its ELF interpreter {interp} {why}"),
                    },
                },
            }
        }
        ExecFormat::Script { interpreter, arg } => {
            if depth >= 4 {
                return Runnability::No {
                    why: "too many levels of #! interpreters".into(),
                };
            }
            // `#!/usr/bin/env prog` runs `prog` from PATH: check `prog` too.
            let program = if interpreter.ends_with("/env") {
                arg.as_deref()
                    .and_then(|a| a.split_whitespace().find(|w| !w.starts_with('-')))
            } else {
                None
            };
            match present_executable(root, Path::new(&interpreter)) {
                Presence::Yes => {}
                Presence::No(why) => {
                    return Runnability::No {
                        why: format!("its #! interpreter {interpreter} {why}"),
                    };
                }
                Presence::Denied(why) => {
                    return Runnability::Denied {
                        why: format!("its #! interpreter {interpreter} {why}"),
                    };
                }
            }
            let target = match program {
                Some(prog) => match find(root, prog, dirs, machines) {
                    Lookup {
                        found: Some(exe), ..
                    } => exe.resolved,
                    Lookup { denied, .. } if !denied.is_empty() => {
                        return Runnability::Denied {
                            why: format!(
                                "its #! program {prog} (via env) is not found, and {} cannot be examined",
                                denied[0].path.display()
                            ),
                        };
                    }
                    Lookup { .. } => {
                        return Runnability::No {
                            why: format!("its #! program {prog} (via env) is not on PATH"),
                        };
                    }
                },
                None => root
                    .resolve(&interpreter)
                    .map(|r| r.path)
                    .unwrap_or_else(|_| PathBuf::from(&interpreter)),
            };
            match runnability(root, &target, dirs, machines, depth + 1) {
                Runnability::Yes { .. } => Runnability::Yes {
                    how: format!("script for {}", target.display()),
                },
                Runnability::No { why } => Runnability::No {
                    why: format!("its interpreter {}: {why}", target.display()),
                },
                unknown => unknown,
            }
        }
        ExecFormat::BadElf { why } => Runnability::No {
            why: format!("the kernel refuses to run this ELF: it has {why}"),
        },
        ExecFormat::Unknown => Runnability::Unknown {
            why: "neither ELF nor a #! script (binfmt_misc may still run it)".into(),
        },
    }
}

/// Whether an interpreter is there to run.
enum Presence {
    Yes,
    No(String),
    /// Access was refused: it may well be there.
    Denied(String),
}

fn present_executable(root: &Root, path: &Path) -> Presence {
    match root.stat(path) {
        Ok(s) if s.kind == FileKind::File && s.mode & 0o111 != 0 => Presence::Yes,
        Ok(s) if s.kind == FileKind::File => Presence::No("is not executable".into()),
        Ok(_) => Presence::No("is not a regular file".into()),
        Err(e) if e.is_not_found() => Presence::No("is missing".into()),
        Err(e) if e.is_permission_denied() => {
            Presence::Denied(format!("cannot be examined: {}", e.source))
        }
        Err(e) => Presence::No(format!("cannot be read: {}", e.source)),
    }
}
