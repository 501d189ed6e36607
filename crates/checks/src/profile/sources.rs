//! Where a requirement comes from: the `source:` of a requirement, the `sources:` map of a
//! profile file, and the built-in catalogue of source keys (`profiles/sources.yaml`, the keys
//! of the storage-systems reference). A source is a key (expanded to its location when the
//! profile loads), a URL, or a repository reference `owner/repo@rev:path`, optionally followed
//! by a space and a place in it (`LH-mgr-env L181-230`).
//!
//! Sources are printed in listings and JSON, so they are held to a printable grammar here,
//! like the other names a profile gives (`names`).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::Requirement;

/// The longest source as written (key or location, and its place).
pub const MAX_SOURCE_LEN: usize = 512;

/// The most sources one requirement may cite.
pub const MAX_SOURCES: usize = 8;

/// The built-in catalogue of source keys, embedded at build time.
pub const CATALOGUE: &str = include_str!("../../profiles/sources.yaml");

/// One cited source, as listings and JSON show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceRef {
    /// The key it was cited by (`LH-inst`), or null when a location was written directly.
    pub key: Option<String>,
    /// A URL, or `owner/repo@rev:path` (or `owner/repo:path#blob-ID`).
    pub location: String,
    /// The place in it, as written after the key or location (`L181-230`, a function name).
    pub at: Option<String>,
}

/// A requirement's `source:` as written: one source or a list.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Specs {
    One(String),
    Many(Vec<String>),
}

/// Parses a requirement's `source:` into sources, checking their grammar; keys stay
/// unresolved (empty `location`) until [`resolve`] runs with the file's `sources:` map.
pub(crate) fn specs(written: Option<Specs>) -> Result<Vec<SourceRef>, String> {
    let list = match written {
        None => return Ok(Vec::new()),
        Some(Specs::One(s)) => vec![s],
        Some(Specs::Many(v)) => v,
    };
    if list.is_empty() {
        return Err("`source` is an empty list (leave it out, or name a source)".into());
    }
    if list.len() > MAX_SOURCES {
        return Err(format!("a requirement cites at most {MAX_SOURCES} sources"));
    }
    list.iter().map(|s| spec(s)).collect()
}

/// Parses one written source.
fn spec(written: &str) -> Result<SourceRef, String> {
    if written.len() > MAX_SOURCE_LEN || !written.chars().all(|c| c.is_ascii_graphic() || c == ' ')
    {
        return Err(format!(
            "source {written:?} must be at most {MAX_SOURCE_LEN} printable ASCII characters"
        ));
    }
    let (head, at) = match written.split_once(' ') {
        Some((h, a)) => (h, Some(a.trim().to_string()).filter(|a| !a.is_empty())),
        None => (written, None),
    };
    if is_location(head) {
        return Ok(SourceRef {
            key: None,
            location: head.to_string(),
            at,
        });
    }
    check_key(head)
        .map_err(|e| format!("source {written:?}: {e} (or a URL, or owner/repo@rev:path)"))?;
    Ok(SourceRef {
        key: Some(head.to_string()),
        location: String::new(),
        at,
    })
}

/// Checks a source key: 1 to 64 ASCII letters, digits, `-`, `_` and `.`, starting with a
/// letter or digit.
pub fn check_key(key: &str) -> Result<(), String> {
    let ok = !key.is_empty()
        && key.len() <= 64
        && key.starts_with(|c: char| c.is_ascii_alphanumeric())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "source key {key:?} must be 1 to 64 ASCII letters, digits, '-', '_' or '.'"
        ))
    }
}

/// Returns true if and only if `s` is a location: an `https://` or `http://` URL with a host,
/// or `owner/repo[@rev]:path` (GitHub's owner and repository grammar, a path of printable
/// characters without spaces).
pub fn is_location(s: &str) -> bool {
    if !s.chars().all(|c| c.is_ascii_graphic()) || s.is_empty() || s.len() > MAX_SOURCE_LEN {
        return false;
    }
    if let Some(rest) = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
    {
        let host = rest.split('/').next().unwrap_or("");
        return host.contains('.') && !host.starts_with('.');
    }
    let Some((repo, path)) = s.split_once(':') else {
        return false;
    };
    let (repo, rev) = match repo.split_once('@') {
        Some((r, v)) => (r, Some(v)),
        None => (repo, None),
    };
    let word = |w: &str| {
        !w.is_empty()
            && w.starts_with(|c: char| c.is_ascii_alphanumeric())
            && w.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    let repo_ok = matches!(repo.split_once('/'), Some((o, n)) if word(o) && word(n));
    repo_ok && rev.is_none_or(word) && !path.is_empty() && !path.starts_with('/')
}

/// Returns the built-in catalogue of source keys, parsed and checked once.
pub fn catalogue() -> Result<&'static BTreeMap<String, String>, String> {
    static PARSED: OnceLock<Result<BTreeMap<String, String>, String>> = OnceLock::new();
    PARSED
        .get_or_init(|| {
            let map: BTreeMap<String, String> = serde_yaml_ng::from_str(CATALOGUE)
                .map_err(|e| format!("profiles/sources.yaml: {e}"))?;
            check_map(&map).map_err(|e| format!("profiles/sources.yaml: {e}"))?;
            Ok(map)
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Checks a `sources:` map: valid keys, each a location.
pub(super) fn check_map(map: &BTreeMap<String, String>) -> Result<(), String> {
    for (key, location) in map {
        check_key(key)?;
        if !is_location(location) {
            return Err(format!(
                "source {key}: {location:?} is not a URL or owner/repo@rev:path"
            ));
        }
    }
    Ok(())
}

/// Fills the location of every keyed source of `requirements` from the file's own `sources:`
/// map first, then the built-in catalogue; a key in neither is an error naming the
/// requirement.
pub(super) fn resolve(
    requirements: &mut [Requirement],
    own: &BTreeMap<String, String>,
) -> Result<(), String> {
    let builtin = catalogue()?;
    for r in requirements {
        for s in &mut r.sources {
            let Some(key) = &s.key else { continue };
            match own.get(key).or_else(|| builtin.get(key)) {
                Some(loc) => s.location = loc.clone(),
                None => {
                    return Err(format!(
                        "requirement {}: source key {key:?} is neither in this file's \
                         `sources:` nor a built-in source key (hostready profiles shows them; \
                         or write a URL, or owner/repo@rev:path)",
                        r.id
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Returns the distinct sources of `requirements` (key and location, without the place), in
/// the order they are first cited.
pub(super) fn distinct(requirements: &[Requirement]) -> Vec<SourceRef> {
    let mut out: Vec<SourceRef> = Vec::new();
    for s in requirements.iter().flat_map(|r| &r.sources) {
        let plain = SourceRef {
            key: s.key.clone(),
            location: s.location.clone(),
            at: None,
        };
        if !out.contains(&plain) {
            out.push(plain);
        }
    }
    out
}

impl std::fmt::Display for SourceRef {
    /// `LH-inst (longhorn/website@0f622500:...) L12`, or the location and place alone.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.key {
            Some(k) => write!(f, "{k} ({})", self.location)?,
            None => f.write_str(&self.location)?,
        }
        if let Some(at) = &self.at {
            write!(f, " {at}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_parses_and_every_value_is_a_location() {
        let c = catalogue().unwrap();
        assert!(c.len() > 50, "{}", c.len());
        assert_eq!(
            c["LH-inst"],
            "longhorn/website@0f622500:content/docs/1.12.1/deploy/install/_index.md"
        );
    }

    #[test]
    fn written_sources_parse_into_keys_locations_and_places() {
        let s = specs(Some(Specs::One("LH-mgr-env L181-230".into()))).unwrap();
        assert_eq!(
            s,
            [SourceRef {
                key: Some("LH-mgr-env".into()),
                location: String::new(),
                at: Some("L181-230".into())
            }]
        );
        let s = specs(Some(Specs::Many(vec![
            "https://github.com/longhorn/longhorn/issues/6755".into(),
            "rook/rook@d0c3b9ce:pkg/util/sys/device.go CheckIfDeviceAvailable".into(),
            "kubernetes/kubernetes:cmd/kubeadm/app/preflight/checks.go#blob-00b6a4c7".into(),
        ])))
        .unwrap();
        assert!(s.iter().all(|r| r.key.is_none()), "{s:?}");
        assert_eq!(s[1].at.as_deref(), Some("CheckIfDeviceAvailable"));
        for bad in [
            "",
            "bad/key",
            "a\u{1b}[31m",
            "/abs/path",
            "ftp://x.y/z",
            "-lead",
            "é",
        ] {
            assert!(
                specs(Some(Specs::One(bad.into()))).is_err(),
                "{bad:?} accepted"
            );
        }
        assert!(specs(Some(Specs::Many(vec![]))).is_err());
        assert!(specs(Some(Specs::Many(vec!["k".into(); MAX_SOURCES + 1]))).is_err());
    }

    #[test]
    fn locations_follow_their_grammar() {
        for ok in [
            "https://docs.ceph.com/en/tentacle/start/os-recommendations",
            "longhorn/longhorn@v1.8.0:scripts/environment_check.sh",
            "owner/repo:path",
        ] {
            assert!(is_location(ok), "{ok}");
        }
        for bad in [
            "https://nohost",
            "owner:path",
            "owner/repo@:path",
            "owner/repo:/abs",
            "owner/repo:",
            "a b/c:d",
            "LH-inst",
        ] {
            assert!(!is_location(bad), "{bad}");
        }
    }

    /// A user's file cites built-in keys, its own `sources:` keys and locations written
    /// directly; a key in neither is refused naming the file and the requirement, and so is a
    /// `sources:` value that is not a location.
    #[test]
    #[allow(clippy::disallowed_methods)] // the test writes its own profile files
    fn a_files_sources_resolve_or_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("site.yaml");
        std::fs::write(
            &f,
            "name: site\nsources:\n  RUNBOOK: https://wiki.example.com/storage\nrequirements:\n  \
             - {executable: iscsiadm, source: [LH-inst, RUNBOOK \"step 3\"]}\n  \
             - {executable: dmsetup, source: \"owner/repo@abc:docs/x.md L1\"}\n",
        )
        .unwrap();
        let p = crate::profile::load(f.to_str().unwrap()).unwrap();
        let s = &p.requirements[0].sources;
        assert_eq!(s[0].location, catalogue().unwrap()["LH-inst"]);
        assert_eq!(s[1].location, "https://wiki.example.com/storage");
        assert_eq!(s[1].at.as_deref(), Some("\"step 3\""));
        assert_eq!(p.requirements[1].sources[0].key, None);
        assert_eq!(p.sources.len(), 3, "{:?}", p.sources);
        std::fs::write(
            &f,
            "name: site\nrequirements:\n  - {executable: a, source: NOPE}\n",
        )
        .unwrap();
        let e = crate::profile::load(f.to_str().unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("site.yaml") && e.contains("exe.a") && e.contains("NOPE"),
            "{e}"
        );
        std::fs::write(&f, "name: site\nsources: {K: not-a-location}\n").unwrap();
        let e = crate::profile::load(f.to_str().unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a URL"), "{e}");
        // Grammar mistakes are refused where they are written.
        std::fs::write(
            &f,
            "name: site\nrequirements:\n  - {executable: a, source: \"bad/key\"}\n",
        )
        .unwrap();
        let e = crate::profile::load(f.to_str().unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("site.yaml:3:"), "{e}");
    }
}
