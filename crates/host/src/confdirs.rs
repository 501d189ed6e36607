//! The configuration-directory convention of systemd (`sysctl.d(5)`, `modprobe.d(5)`,
//! `modules-load.d(5)`): `*.conf` files from several directories, where a file in an earlier
//! directory replaces the file of the same name in a later one, a file linked to `/dev/null`
//! masks it, and the survivors are read in lexical order of their names.
//!
//! Memory bound: at most [`MAX_CONF_FILES`] names are kept (a directory with more is an
//! error, not a silent prefix: a setting in a file past the cut would be missed), each at most
//! 255 bytes (`NAME_MAX`).

use std::collections::BTreeMap;

use crate::{FileKind, Root};

/// The most `*.conf` files taken from all directories together; real hosts have tens.
pub const MAX_CONF_FILES: usize = 4096;

/// One configuration file that takes part, or was masked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfFile {
    /// The path inside the root.
    pub path: String,
    /// True if and only if the file is a link to `/dev/null` (or empty symlink target), which
    /// systemd treats as "masked": it hides every same-named file and contributes nothing.
    pub masked: bool,
}

/// Returns the `*.conf` files of `dirs` (highest precedence first) in the order they are
/// applied: lexical by file name, each name taken from the first directory that has it.
/// A directory that is missing is skipped; one that exists but cannot be listed is an error
/// naming it, since a setting in it would be missed.
pub fn conf_files(fs: &Root, dirs: &[&str]) -> Result<Vec<ConfFile>, String> {
    let mut by_name: BTreeMap<String, ConfFile> = BTreeMap::new();
    for dir in dirs {
        let names = match fs.read_dir(dir) {
            Ok(n) => n,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(format!("cannot list {dir}: {}", e.source)),
        };
        for name in names {
            let Some(name) = name.to_str() else { continue };
            if !name.ends_with(".conf") || by_name.contains_key(name) {
                continue;
            }
            if by_name.len() >= MAX_CONF_FILES {
                return Err(format!(
                    "more than {MAX_CONF_FILES} *.conf files in {}; refusing to guess which apply",
                    dirs.join(", ")
                ));
            }
            let path = format!("{dir}/{name}");
            let masked = is_masked(fs, &path);
            by_name.insert(name.to_string(), ConfFile { path, masked });
        }
    }
    Ok(by_name.into_values().collect())
}

/// Returns true if and only if `path` resolves (inside the root) to `/dev/null`.
fn is_masked(fs: &Root, path: &str) -> bool {
    match fs.symlink_stat(path) {
        Ok(st) if st.kind == FileKind::Symlink => fs
            .resolve(path)
            .is_ok_and(|r| r.path == std::path::Path::new("/dev/null")),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::disallowed_methods)] // the tests build the directories they read

    use super::*;

    #[test]
    fn earlier_directory_wins_by_name_and_order_is_lexical() {
        let d = tempfile::tempdir().unwrap();
        let w = |p: &str, t: &str| {
            let p = d.path().join(p.trim_start_matches('/'));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, t).unwrap();
        };
        w("/etc/sysctl.d/50-a.conf", "x=1\n");
        w("/usr/lib/sysctl.d/50-a.conf", "x=2\n");
        w("/usr/lib/sysctl.d/10-b.conf", "x=3\n");
        w("/usr/lib/sysctl.d/README", "");
        std::fs::create_dir_all(d.path().join("dev")).unwrap();
        w("/dev/null", "");
        std::os::unix::fs::symlink("/dev/null", d.path().join("etc/sysctl.d/99-m.conf")).unwrap();
        w("/usr/lib/sysctl.d/99-m.conf", "x=4\n");
        let fs = Root::open(d.path()).unwrap();
        let files = conf_files(
            &fs,
            &["/etc/sysctl.d", "/run/sysctl.d", "/usr/lib/sysctl.d"],
        )
        .unwrap();
        let paths: Vec<(&str, bool)> = files.iter().map(|f| (f.path.as_str(), f.masked)).collect();
        assert_eq!(
            paths,
            [
                ("/usr/lib/sysctl.d/10-b.conf", false),
                ("/etc/sysctl.d/50-a.conf", false),
                ("/etc/sysctl.d/99-m.conf", true),
            ]
        );
    }
}
