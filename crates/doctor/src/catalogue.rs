//! The known-issues catalogue (`catalogue/known-issues.yaml`): known problems of storage
//! systems by version, each with its upstream links, fixed versions and source. Data in the
//! repo, compiled in with `include_str!` — and parsed and validated here, in one place, for
//! both of its readers: `hostready cluster` (the agent crate's `audit/known.rs`: which
//! entries a running version is affected by) and `hostready doctor --explain` (a log
//! signature names the entry its lines belong to, with the entry's links, instead of a copy
//! of a URL). It lives in this crate because the agent crate already depends on it and the
//! core must not depend on the agent (tokio, kube).

use std::sync::OnceLock;

use serde::Deserialize;

/// The catalogue as shipped.
pub const CATALOGUE_YAML: &str = include_str!("../../../catalogue/known-issues.yaml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    entries: Vec<Entry>,
}

/// One known issue.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub id: String,
    pub system: String,
    pub title: String,
    pub images: Vec<String>,
    pub affected: semver::VersionReq,
    pub fixed_in: Vec<String>,
    pub links: Vec<String>,
    pub source: String,
    pub advice: String,
}

/// Why the catalogue is unusable (a test holds that the shipped one is not).
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("catalogue/known-issues.yaml: {0}")]
    Parse(#[from] serde_yaml_ng::Error),
    #[error("catalogue/known-issues.yaml: entry {id}: {why}")]
    Invalid { id: String, why: String },
}

/// Parses and validates a catalogue: unique ids, at least one image, link and fixed version,
/// links that are https URLs, fixed versions that the `affected` range excludes.
pub fn parse(text: &str) -> Result<Vec<Entry>, CatalogueError> {
    let file: File = serde_yaml_ng::from_str(text)?;
    let mut seen = std::collections::BTreeSet::new();
    for e in &file.entries {
        let bad = |why: &str| CatalogueError::Invalid {
            id: e.id.clone(),
            why: why.to_string(),
        };
        if !seen.insert(e.id.clone()) {
            return Err(bad("duplicate id"));
        }
        if e.images.is_empty() || e.links.is_empty() || e.fixed_in.is_empty() {
            return Err(bad("images, links and fixed_in must not be empty"));
        }
        if e.source.trim().is_empty() {
            return Err(bad("no source"));
        }
        if let Some(l) = e.links.iter().find(|l| !l.starts_with("https://")) {
            return Err(bad(&format!("link {l:?} is not an https URL")));
        }
        for f in &e.fixed_in {
            let v =
                version_of_tag(f).ok_or_else(|| bad(&format!("fixed_in {f:?} is no version")))?;
            if e.affected.matches(&v) {
                return Err(bad(&format!("fixed_in {f} is inside the affected range")));
            }
        }
    }
    Ok(file.entries)
}

/// Returns the shipped catalogue.
pub fn catalogue() -> Result<Vec<Entry>, CatalogueError> {
    parse(CATALOGUE_YAML)
}

/// Returns the shipped catalogue, parsed once; `Err` with why if it is invalid (a test holds
/// that it is not).
pub fn shipped() -> Result<&'static [Entry], &'static str> {
    static PARSED: OnceLock<Result<Vec<Entry>, String>> = OnceLock::new();
    PARSED
        .get_or_init(|| catalogue().map_err(|e| e.to_string()))
        .as_ref()
        .map(Vec::as_slice)
        .map_err(String::as_str)
}

/// Returns the shipped catalogue's entry `id`, if there is one.
pub fn entry(id: &str) -> Option<&'static Entry> {
    shipped().ok()?.iter().find(|e| e.id == id)
}

/// Returns the version in an image tag: `v1.7.2`, `1.7.2`, `v1.7.2-hotfix-1` (a pre-release
/// suffix is kept, so `v1.7.3-rc1` is before `v1.7.3`).
pub fn version_of_tag(tag: &str) -> Option<semver::Version> {
    semver::Version::parse(tag.strip_prefix('v').unwrap_or(tag)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_catalogue_parses_and_holds_the_rpm_pileup() {
        let c = catalogue().unwrap();
        let e = c
            .iter()
            .find(|e| e.id == "longhorn.package-check-pileup")
            .unwrap();
        assert!(e.links.iter().any(|l| l.ends_with("/issues/10019")));
        for (tag, hit) in [
            ("v1.6.2", false),
            ("v1.7.0", true),
            ("v1.7.2", true),
            ("v1.7.3", false),
            ("v1.8.0", false),
        ] {
            assert_eq!(
                e.affected.matches(&version_of_tag(tag).unwrap()),
                hit,
                "{tag}"
            );
        }
        assert_eq!(shipped().unwrap().len(), c.len());
        assert_eq!(entry("longhorn.package-check-pileup").unwrap().id, e.id);
        assert!(entry("no.such-entry").is_none());
    }

    #[test]
    fn a_bad_catalogue_is_refused_naming_the_entry() {
        let entry = |fixed: &str, link: &str| {
            format!(
                "entries:\n- id: x.y\n  system: x\n  title: t\n  images: [a/b]\n  affected: \">=1.0.0, <1.2.0\"\n  \
                 fixed_in: [{fixed}]\n  links: [{link}]\n  source: s\n  advice: a\n"
            )
        };
        assert!(parse(&entry("v1.2.0", "https://e/1")).is_ok());
        let e = parse(&entry("v1.1.0", "https://e/1"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("entry x.y: fixed_in v1.1.0 is inside"), "{e}");
        let e = parse(&entry("v1.2.0", "http://e/1"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an https URL"), "{e}");
        assert!(parse("entries:\n- id: a\n  bogus: 1\n").is_err());
    }
}
