//! dpkg's database: `var/lib/dpkg/status` (plus `status.d/*`, one file per package as on
//! distroless images) and the per-package file lists `info/<pkg>[:<arch>].list`.
//!
//! dpkg replaces `status` atomically (write `status-new`, rename), so reading it needs no lock;
//! dpkg's own lock (`lock-frontend`, `lock`) guards writers against each other, not readers.

//!
//! One lookup reads less than a listing: a query parses only the stanzas whose `Package:` line
//! a byte search finds (all of them: a multi-arch package has one per architecture), and when
//! the search finds none that answers, every stanza is checked (without building records) so
//! that a damaged file is still "corrupt", never "not installed". An owner lookup searches each
//! `info/*.list` for the path's bytes before looking at lines, and parses only the stanzas of
//! the packages whose lists name it.

use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};

use hostready_host::{FileKind, Root};
use memchr::memmem;

use crate::{Database, DbError, DbKind, Note, Package, ParseError, Scope, Want};

const DPKG_DIR: &str = "/var/lib/dpkg";

/// Largest `info/*.list` read (the biggest real ones are a few MiB).
const MAX_LIST_BYTES: u64 = 64 << 20;

/// Finds the dpkg database under the root and reads what `want` needs; `None` when there is none.
pub(crate) fn open(root: &Root, want: Want) -> Option<Database> {
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
    let mut scope = Scope::All;
    let contents = (|| -> Result<Vec<Package>, DbError> {
        let files = read_status_files(
            root,
            has_status.then_some(&status),
            has_d.then_some(&status_d),
        )?;
        match want {
            Want::All => {
                let mut pkgs = Vec::new();
                for (p, bytes, need) in &files {
                    pkgs.extend(parse(bytes, p, *need)?);
                }
                Ok(pkgs)
            }
            Want::Name { keys, query } => {
                let mut pkgs = Vec::new();
                for (p, bytes, need) in &files {
                    for span in stanzas_named(bytes, keys) {
                        pkgs.extend(parse_span(bytes, span, p, *need)?);
                    }
                }
                if pkgs.iter().any(|p| crate::name_matches(query, p)) {
                    scope = Scope::Search;
                    return Ok(pkgs);
                }
                // Nothing found that answers: only a check of every stanza can say "absent".
                let (pkgs, records) = parse_matching(&files, |n| keys.contains(&n))?;
                scope = Scope::Scan { records };
                Ok(pkgs)
            }
            Want::Paths(wanted) => {
                let lists = search_lists(root, &dir, wanted)?;
                let (pkgs, records) =
                    parse_matching(&files, |n| lists.hits.iter().any(|h| h.package() == n))?;
                scope = Scope::Scan { records };
                Ok(owners_from(&lists, &pkgs))
            }
        }
    })();
    if contents.as_ref().is_err_and(|e| e.is_corrupt()) {
        notes.push(Note {
            file: path.clone(),
            message: crate::CORRUPT_ADVICE.into(),
            unreliable: true,
        });
        scope = Scope::All;
    }
    Some(Database {
        kind: DbKind::Dpkg,
        path,
        contents,
        notes,
        lock_holders: Vec::new(),
        scope,
    })
}

/// Reads `status` and every `status.d/*` (sorted, without `.md5sums`): (path, bytes, whether
/// stanzas need a `Status` field).
fn read_status_files(
    root: &Root,
    status: Option<&PathBuf>,
    status_d: Option<&PathBuf>,
) -> Result<Vec<(PathBuf, Vec<u8>, bool)>, DbError> {
    let read = |p: &Path| {
        root.read(p).map_err(|source| DbError::Read {
            path: p.to_path_buf(),
            source,
        })
    };
    let mut files = Vec::new();
    if let Some(status) = status {
        files.push((status.clone(), read(status)?, true));
    }
    if let Some(status_d) = status_d {
        let mut names = root.read_dir(status_d).map_err(|source| DbError::Read {
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
            let bytes = read(&p)?;
            files.push((p, bytes, false));
        }
    }
    Ok(files)
}

/// Parses the stanzas whose package name `keep` accepts, after checking every stanza of every
/// file as [`parse_status`] would; returns them and how many stanzas there are in all.
fn parse_matching(
    files: &[(PathBuf, Vec<u8>, bool)],
    keep: impl Fn(&str) -> bool,
) -> Result<(Vec<Package>, usize), DbError> {
    let mut pkgs = Vec::new();
    let mut records = 0;
    for (p, bytes, need) in files {
        let (spans, n) = check_status(bytes, *need, &keep).map_err(|e| DbError::Corrupt {
            what: e.what,
            file: p.clone(),
            offset: Some(e.offset),
        })?;
        records += n;
        for span in spans {
            pkgs.extend(parse_span(bytes, span, p, *need)?);
        }
    }
    Ok((pkgs, records))
}

/// Parses one stanza, with error offsets counted from the start of the file.
fn parse_span(
    bytes: &[u8],
    span: Range<usize>,
    file: &Path,
    need_status: bool,
) -> Result<Vec<Package>, DbError> {
    let start = span.start as u64;
    parse_status(&bytes[span], file, need_status).map_err(|e| DbError::Corrupt {
        what: e.what,
        file: file.to_path_buf(),
        offset: Some(e.offset + start),
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
    let lists = search_lists(root, &dir.path, wanted)?;
    Ok(owners_from(&lists, pkgs))
}

/// What a search of every `info/*.list` found.
#[derive(Debug, Default)]
struct Lists {
    /// Every list's name without `.list`: `pkg` or `pkg:arch`.
    names: std::collections::HashSet<String>,
    /// The lists naming a wanted path.
    hits: Vec<ListHit>,
}

#[derive(Debug)]
struct ListHit {
    /// `pkg` or `pkg:arch`.
    stem: String,
    /// The wanted paths it names.
    files: Vec<String>,
}

impl ListHit {
    fn package(&self) -> &str {
        self.stem.split(':').next().unwrap_or_default()
    }
}

/// Searches every `info/*.list` for the bytes of each wanted path, and looks at line
/// boundaries only where they occur: no line splitting, no allocation per list.
fn search_lists(root: &Root, dir: &Path, wanted: &[String]) -> Result<Lists, DbError> {
    let info = dir.join("info");
    let entries = match root.read_dir_entries(&info) {
        Ok(e) => e,
        Err(e) if e.is_not_found() => return Ok(Lists::default()),
        Err(source) => {
            return Err(DbError::Read { path: info, source });
        }
    };
    let finders: Vec<(memmem::Finder, &String)> = wanted
        .iter()
        .map(|w| (memmem::Finder::new(w.as_bytes()), w))
        .collect();
    let mut out = Lists::default();
    let mut buf = Vec::with_capacity(64 << 10);
    for (name, kind) in entries {
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".list")) else {
            continue;
        };
        if !matches!(kind, FileKind::File | FileKind::Symlink) {
            continue;
        }
        out.names.insert(stem.to_string());
        let path = info.join(&name);
        let file = match root.open_file(&path) {
            Ok(f) => f,
            Err(e) if e.is_not_found() => continue,
            Err(source) => return Err(DbError::Read { path, source }),
        };
        buf.clear();
        if let Err(e) = file.take(MAX_LIST_BYTES).read_to_end(&mut buf) {
            return Err(DbError::Read {
                source: hostready_host::FsError {
                    path: path.clone(),
                    root: root.location().to_path_buf(),
                    source: e,
                },
                path,
            });
        }
        let files: Vec<String> = finders
            .iter()
            .filter(|(f, w)| f.find_iter(&buf).any(|at| is_line(&buf, at, w.len())))
            .map(|(_, w)| (*w).clone())
            .collect();
        if !files.is_empty() {
            out.hits.push(ListHit {
                stem: stem.to_string(),
                files,
            });
        }
    }
    Ok(out)
}

/// Returns true if and only if `len` bytes at `at` are a whole line (`\r\n` endings allowed).
fn is_line(buf: &[u8], at: usize, len: usize) -> bool {
    let end = at + len;
    (at == 0 || buf[at - 1] == b'\n')
        && match buf.get(end) {
            None | Some(b'\n') => true,
            Some(b'\r') => matches!(buf.get(end + 1), None | Some(b'\n')),
            Some(_) => false,
        }
}

/// Pairs each package (not "not-installed") with its list, `pkg:arch.list` before `pkg.list`
/// as dpkg names them, and returns those whose list names a wanted path.
fn owners_from(lists: &Lists, pkgs: &[Package]) -> Vec<Package> {
    let mut out = Vec::new();
    for p in pkgs.iter().filter(|p| !p.state.ends_with("not-installed")) {
        let multi = format!("{}:{}", p.name, p.arch);
        let stem = if lists.names.contains(&multi) {
            multi
        } else if lists.names.contains(&p.name) {
            p.name.clone()
        } else {
            continue;
        };
        if let Some(hit) = lists.hits.iter().find(|h| h.stem == stem) {
            let mut q = p.clone();
            q.files = hit.files.clone();
            out.push(q);
        }
    }
    out
}

/// True for a line of whitespace only (a paragraph separator), as `str::trim` sees it.
fn is_blank(line: &[u8]) -> bool {
    if line.is_ascii() {
        line.iter()
            .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c))
    } else {
        String::from_utf8_lossy(line).trim().is_empty()
    }
}

/// Returns the line `[start, end)` beginning at `start` and where the next one begins.
fn line_at(bytes: &[u8], start: usize) -> (Range<usize>, usize) {
    match memchr::memchr(b'\n', &bytes[start..]) {
        Some(i) => (start..start + i, start + i + 1),
        None => (start..bytes.len(), bytes.len()),
    }
}

/// Finds every stanza whose `Package:` line names one of `keys`, by searching for the name's
/// bytes and looking at the line around each occurrence; returns the stanzas' byte ranges.
fn stanzas_named(bytes: &[u8], keys: &[&str]) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::new();
    for key in keys.iter().filter(|k| !k.is_empty()) {
        for at in memmem::find_iter(bytes, key.as_bytes()) {
            let ls = memchr::memrchr(b'\n', &bytes[..at]).map_or(0, |i| i + 1);
            let field = bytes[ls..at].trim_ascii_end();
            if !field.eq_ignore_ascii_case(b"package:") {
                continue;
            }
            let (line, mut next) = line_at(bytes, ls);
            if !bytes[at + key.len()..line.end].trim_ascii().is_empty() {
                continue;
            }
            // Back to the line after the previous blank one, forward to the next blank one.
            let mut start = ls;
            while start > 0 {
                let prev = memchr::memrchr(b'\n', &bytes[..start - 1]).map_or(0, |i| i + 1);
                if is_blank(&bytes[prev..start - 1]) {
                    break;
                }
                start = prev;
            }
            let mut end = next;
            while next < bytes.len() {
                let (l, n) = line_at(bytes, next);
                if is_blank(&bytes[l.clone()]) {
                    break;
                }
                end = n;
                next = n;
            }
            if !out.iter().any(|r| r.start == start) {
                out.push(start..end);
            }
        }
    }
    out
}

/// Checks every stanza as [`parse_status`] would, building nothing; returns the byte ranges of
/// the stanzas whose package name `keep` accepts, and how many stanzas there are.
fn check_status(
    bytes: &[u8],
    need_status: bool,
    keep: impl Fn(&str) -> bool,
) -> Result<(Vec<Range<usize>>, usize), ParseError> {
    let err = |what: String, offset: usize| ParseError {
        what,
        offset: offset as u64,
    };
    if let Some(i) = memchr::memchr(0, bytes) {
        return Err(err(
            "NUL byte in a text database (zeroed or overwritten)".into(),
            i,
        ));
    }
    #[derive(Clone, Copy, PartialEq)]
    enum Last {
        Package,
        Status,
        Other,
    }
    let mut spans = Vec::new();
    let mut count = 0;
    let mut para_start = 0;
    let mut in_para = false;
    let mut package: Option<Range<usize>> = None;
    let mut status: Option<Range<usize>> = None;
    let mut last = Last::Other;
    let mut finish = |package: &mut Option<Range<usize>>,
                      status: &mut Option<Range<usize>>,
                      start: usize,
                      end: usize|
     -> Result<(), ParseError> {
        let text = |r: &Range<usize>| String::from_utf8_lossy(&bytes[r.clone()]);
        let name = package
            .take()
            .map(|r| text(&r))
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| err("paragraph without a Package field".into(), start))?;
        let name = name.trim();
        match status.take() {
            Some(r) => {
                let state = text(&r);
                if state.split_whitespace().count() != 3 {
                    return Err(err(
                        format!("package {name} has malformed Status {:?}", state.trim()),
                        start,
                    ));
                }
            }
            None if !need_status => {}
            None => return Err(err(format!("package {name} has no Status field"), start)),
        }
        count += 1;
        if keep(name) {
            spans.push(start..end);
        }
        Ok(())
    };
    let mut pos = 0;
    while pos < bytes.len() {
        let (line, next) = line_at(bytes, pos);
        let mut l = &bytes[line.clone()];
        while let [rest @ .., b'\r'] = l {
            l = rest;
        }
        if is_blank(l) {
            if in_para {
                finish(&mut package, &mut status, para_start, pos)?;
                in_para = false;
            }
            para_start = next;
        } else if l[0] == b' ' || l[0] == b'\t' {
            if !in_para {
                return Err(err("continuation line outside a field".into(), pos));
            }
            let extend = match last {
                Last::Package => package.as_mut(),
                Last::Status => status.as_mut(),
                Last::Other => None,
            };
            if let Some(r) = extend {
                r.end = pos + l.len();
            }
        } else {
            match memchr::memchr(b':', l) {
                Some(c) if c > 0 && !l[..c].contains(&b' ') => {
                    in_para = true;
                    let key = &l[..c];
                    let value = pos + c + 1..pos + l.len();
                    // The first of a repeated field counts, as in `parse_status`.
                    last = Last::Other;
                    if key.eq_ignore_ascii_case(b"package") && package.is_none() {
                        last = Last::Package;
                        package = Some(value);
                    } else if key.eq_ignore_ascii_case(b"status") && status.is_none() {
                        last = Last::Status;
                        status = Some(value);
                    }
                }
                _ => {
                    return Err(err(
                        format!("line is not a field: {:.40?}", String::from_utf8_lossy(l)),
                        pos,
                    ));
                }
            }
        }
        pos = next;
    }
    if in_para {
        finish(&mut package, &mut status, para_start, bytes.len())?;
    }
    Ok((spans, count))
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
