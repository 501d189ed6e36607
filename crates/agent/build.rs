//! Sets the build facts `hostready_build_info` reports: the git revision (`unknown` outside a
//! git checkout, or `HOSTREADY_REVISION` when set, e.g. by an image build without `.git`) and
//! the compiler's version.

// A build script reads the source checkout, not a host: the rooted view does not apply.
#![allow(clippy::disallowed_methods)]

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=HOSTREADY_REVISION");
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let revision = match std::env::var("HOSTREADY_REVISION") {
        Ok(r) if !r.trim().is_empty() => r.trim().to_string(),
        _ => git_revision(Path::new(&dir)).unwrap_or_else(|| "unknown".into()),
    };
    println!("cargo:rustc-env=HOSTREADY_REVISION={revision}");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = output(Command::new(rustc).arg("--version"))
        // "rustc 1.90.0 (1159e78c4 2025-09-14)" -> "1.90.0"
        .and_then(|v| v.split_whitespace().nth(1).map(str::to_string))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=HOSTREADY_RUSTC_VERSION={version}");
}

/// The short commit of HEAD; `None` without git or a repository.
fn git_revision(dir: &Path) -> Option<String> {
    let git = |args: &[&str]| output(Command::new("git").arg("-C").arg(dir).args(args));
    let rev = git(&["rev-parse", "--short=12", "HEAD"])?;
    // Rebuild when HEAD moves: a checkout changes HEAD, a commit the branch's ref (a loose
    // file, or packed-refs). Only existing files are named: cargo reruns the script on every
    // build for a missing one.
    let mut watch = vec!["HEAD".to_string(), "packed-refs".to_string()];
    watch.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for file in watch {
        if let Some(p) = git(&["rev-parse", "--git-path", &file]) {
            let p = dir.join(p);
            if p.exists() {
                println!("cargo:rerun-if-changed={}", p.display());
            }
        }
    }
    Some(rev)
}

/// A command's trimmed stdout, if it ran and succeeded.
fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}
