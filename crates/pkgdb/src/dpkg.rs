//! dpkg's database: `var/lib/dpkg/status` (plus `status.d/*`, one file per package as on
//! distroless images) and the per-package file lists `info/<pkg>[:<arch>].list`.
//!
//! dpkg replaces `status` atomically (write `status-new`, rename), so reading it needs no lock;
//! dpkg's own lock (`lock-frontend`, `lock`) guards writers against each other, not readers.

use std::path::{Path, PathBuf};

use hostready_host::{FileKind, Root};

use crate::{Database, DbError, DbKind, Note, Package, ParseError};

const DPKG_DIR: &str = "/var/lib/dpkg";

/// Finds the dpkg database under the root; `None` when there is none.
pub(crate) fn open(root: &Root) -> Option<Database> {
    let dir = root.resolve(DPKG_DIR).ok()?.path;
    let status = dir.join("status");
    let status_d = dir.join("status.d");
    let has_status = root.stat(&status).is_ok_and(|s| s.kind == FileKind::File);
    let has_d = root.stat(&status_d).is_ok_and(|s| s.kind == FileKind::Dir);
    if !has_status && !has_d {
        return None;
    }
    let path = if has_status {
        status.clone()
    } else {
        status_d.clone()
    };
    let mut notes = Vec::new();
    let contents = (|| -> Result<Vec<Package>, DbError> {
        let mut pkgs = Vec::new();
        if has_status {
            let bytes = root.read(&status).map_err(|source| DbError::Read {
                path: status.clone(),
                source,
            })?;
            pkgs.extend(parse(&bytes, &status, true)?);
        }
        if has_d {
            let mut names = root.read_dir(&status_d).map_err(|source| DbError::Read {
                path: status_d.clone(),
                source,
            })?;
            names.sort();
            for name in names {
                let p = status_d.join(&name);
                if name.to_string_lossy().ends_with(".md5sums")
                    || root.stat(&p).is_ok_and(|s| s.kind != FileKind::File)
                {
                    continue;
                }
                let bytes = root.read(&p).map_err(|source| DbError::Read {
                    path: p.clone(),
                    source,
                })?;
                pkgs.extend(parse(&bytes, &p, false)?);
            }
        }
        Ok(pkgs)
    })();
    if contents.as_ref().is_err_and(|e| e.is_corrupt()) {
        notes.push(Note {
            file: path.clone(),
            message: crate::CORRUPT_ADVICE.into(),
            unreliable: true,
        });
    }
    Some(Database {
        kind: DbKind::Dpkg,
        path,
        contents,
        notes,
        lock_holders: Vec::new(),
    })
}

fn parse(bytes: &[u8], file: &Path, need_status: bool) -> Result<Vec<Package>, DbError> {
    parse_status(bytes, file, need_status).map_err(|e| DbError::Corrupt {
        what: e.what,
        file: file.to_path_buf(),
        offset: Some(e.offset),
    })
}

/// Parses a dpkg status file (deb822 paragraphs). `need_status` is false for `status.d` files,
/// which carry no `Status` field and list installed packages only.
pub fn parse_status(
    bytes: &[u8],
    file: &Path,
    need_status: bool,
) -> Result<Vec<Package>, ParseError> {
    let err = |what: String, offset: usize| ParseError {
        what,
        offset: offset as u64,
    };
    if let Some(i) = bytes.iter().position(|&b| b == 0) {
        return Err(err(
            "NUL byte in a text database (zeroed or overwritten)".into(),
            i,
        ));
    }
    let text = String::from_utf8_lossy(bytes);
    let mut out = Vec::new();
    let mut fields: Vec<(&str, String)> = Vec::new();
    let mut para_start = 0;
    let mut offset = 0;
    let mut finish = |fields: &mut Vec<(&str, String)>, at: usize| -> Result<(), ParseError> {
        if fields.is_empty() {
            return Ok(());
        }
        let get = |k: &str| {
            fields
                .iter()
                .find(|(f, _)| f.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.trim().to_string())
        };
        let name = get("Package")
            .filter(|n| !n.is_empty())
            .ok_or_else(|| err("paragraph without a Package field".into(), at))?;
        let state = match get("Status") {
            Some(s) => s,
            None if !need_status => "install ok installed".into(),
            None => return Err(err(format!("package {name} has no Status field"), at)),
        };
        let words: Vec<&str> = state.split_whitespace().collect();
        if words.len() != 3 {
            return Err(err(
                format!("package {name} has malformed Status {state:?}"),
                at,
            ));
        }
        // "hold ok installed" and "deinstall ok installed" are fully installed too: the first
        // word is only the wanted selection. Anything not "ok installed" is not.
        let installed = words[1] == "ok" && words[2] == "installed";
        let full = get("Version").unwrap_or_default();
        let (epoch, version, release) = split_version(&full);
        out.push(Package {
            name,
            epoch,
            version,
            release,
            arch: get("Architecture").unwrap_or_default(),
            evr: full,
            installed,
            state,
            db: DbKind::Dpkg,
            db_path: PathBuf::from(file),
            files: Vec::new(),
            provides: get("Provides")
                .map(|p| {
                    p.split(',')
                        .filter_map(|d| d.split_whitespace().next().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
        });
        fields.clear();
        Ok(())
    };
    for line in text.split_inclusive('\n') {
        let here = offset;
        offset += line.len();
        let l = line.trim_end_matches(['\n', '\r']);
        if l.trim().is_empty() {
            finish(&mut fields, para_start)?;
            para_start = offset;
            continue;
        }
        if l.starts_with([' ', '\t']) {
            match fields.last_mut() {
                Some((_, v)) => {
                    v.push('\n');
                    v.push_str(l);
                }
                None => return Err(err("continuation line outside a field".into(), here)),
            }
            continue;
        }
        match l.split_once(':') {
            Some((k, v)) if !k.is_empty() && !k.contains(' ') => fields.push((k, v.to_string())),
            _ => return Err(err(format!("line is not a field: {:.40?}", l), here)),
        }
    }
    finish(&mut fields, para_start)?;
    Ok(out)
}

/// Splits a Debian version `[epoch:]upstream[-revision]`.
fn split_version(v: &str) -> (Option<u32>, String, String) {
    let (epoch, rest) = match v.split_once(':') {
        Some((e, r)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => {
            (e.parse().ok(), r)
        }
        _ => (None, v),
    };
    match rest.rsplit_once('-') {
        Some((u, r)) => (epoch, u.to_string(), r.to_string()),
        None => (epoch, rest.to_string(), String::new()),
    }
}

/// Returns the packages whose `info/*.list` names one of `wanted` (absolute paths).
pub(crate) fn owners(
    root: &Root,
    pkgs: &[Package],
    wanted: &[String],
) -> Result<Vec<Package>, DbError> {
    let Ok(dir) = root.resolve(DPKG_DIR) else {
        return Ok(Vec::new());
    };
    let info = dir.path.join("info");
    let mut out = Vec::new();
    for p in pkgs.iter().filter(|p| !p.state.ends_with("not-installed")) {
        let candidates = [
            info.join(format!("{}:{}.list", p.name, p.arch)),
            info.join(format!("{}.list", p.name)),
        ];
        for list in candidates {
            match root.read(&list) {
                Ok(bytes) => {
                    let text = String::from_utf8_lossy(&bytes);
                    let hits: Vec<String> = text
                        .lines()
                        .filter(|l| wanted.iter().any(|w| w == l))
                        .map(str::to_string)
                        .collect();
                    if !hits.is_empty() {
                        let mut q = p.clone();
                        q.files = hits;
                        out.push(q);
                    }
                    break;
                }
                Err(e) if e.is_not_found() => continue,
                Err(source) => return Err(DbError::Read { path: list, source }),
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\n\
Multi-Arch: same\nVersion: 2.36-9+deb12u4\nDescription: GNU C Library\n more text\n\n\
Package: vim\nStatus: install ok half-installed\nArchitecture: amd64\nVersion: 2:9.0.1378-2\n\n\
Package: gone\nStatus: purge ok not-installed\nArchitecture: amd64\n";

    #[test]
    fn states_versions_and_arches() {
        let p = parse_status(STATUS.as_bytes(), Path::new("/s"), true).unwrap();
        assert_eq!(p.len(), 3);
        assert!(p[0].installed);
        assert_eq!(
            (p[0].version.as_str(), p[0].release.as_str()),
            ("2.36", "9+deb12u4")
        );
        assert!(!p[1].installed);
        assert_eq!(p[1].epoch, Some(2));
        assert_eq!(p[1].state, "install ok half-installed");
        assert!(!p[2].installed);
    }

    #[test]
    fn truncation_mid_paragraph_is_corrupt_not_absent() {
        let cut = &STATUS.as_bytes()[..STATUS.find("Status: install ok half").unwrap() - 1];
        // "Package: vim" survives but its Status does not.
        assert!(parse_status(cut, Path::new("/s"), true).is_err());
        let mut zeroed = STATUS.as_bytes().to_vec();
        zeroed[..64].fill(0);
        assert!(parse_status(&zeroed, Path::new("/s"), true).is_err());
    }

    #[test]
    fn native_versions_have_no_revision() {
        assert_eq!(split_version("1.2"), (None, "1.2".into(), String::new()));
        assert_eq!(
            split_version("1:1.2-3-4"),
            (Some(1), "1.2-3".into(), "4".into())
        );
    }
}
