//! Known issues by version (the incident's second lesson: most problems are known; look them
//! up first). The catalogue is data in the repo (`catalogue/known-issues.yaml`), compiled in;
//! the storage system's version comes from its workloads' image tags.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The catalogue as shipped.
pub const CATALOGUE_YAML: &str = include_str!("../../../../catalogue/known-issues.yaml");

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

/// Returns the version in an image tag: `v1.7.2`, `1.7.2`, `v1.7.2-hotfix-1` (a pre-release
/// suffix is kept, so `v1.7.3-rc1` is before `v1.7.3`).
pub fn version_of_tag(tag: &str) -> Option<semver::Version> {
    semver::Version::parse(tag.strip_prefix('v').unwrap_or(tag)).ok()
}

/// Splits an image reference into its repository path without the registry
/// (`longhornio/longhorn-manager`) and its tag (`v1.7.2`); a digest is ignored.
pub fn split_image(image: &str) -> (String, Option<String>) {
    let no_digest = image.split('@').next().unwrap_or(image);
    // A tag is after the last ':' that comes after the last '/' (a registry port is before it).
    let last_slash = no_digest.rfind('/').map_or(0, |i| i + 1);
    let (path, tag) = match no_digest[last_slash..].rfind(':') {
        Some(i) => (
            &no_digest[..last_slash + i],
            Some(no_digest[last_slash + i + 1..].to_string()),
        ),
        None => (no_digest, None),
    };
    // The first component is a registry when it has a '.' or ':' or is localhost.
    let path = match path.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            rest
        }
        _ => path,
    };
    (path.to_string(), tag)
}

/// A storage system's version seen running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Detected {
    pub system: String,
    pub image: String,
    pub version: String,
    /// Where it was seen: `namespace/Kind/name`, the first few.
    pub seen_in: Vec<String>,
}

/// A catalogue entry that affects a detected version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Affecting {
    pub id: String,
    pub system: String,
    pub title: String,
    pub version: String,
    pub affected: String,
    pub fixed_in: Vec<String>,
    pub links: Vec<String>,
    pub source: String,
    pub advice: String,
    pub seen_in: Vec<String>,
}

/// How many places a version is named in (the rest are counted, not kept).
const SEEN_IN_KEPT: usize = 3;

/// Collects the images workloads run, keyed by (image path, tag), and matches them against
/// the catalogue. Memory: one small entry per distinct catalogued image and tag.
#[derive(Debug, Default)]
pub struct Versions {
    seen: BTreeMap<(String, String), Vec<String>>,
}

impl Versions {
    /// Records `image` run by `place` if the catalogue knows its repository.
    pub fn record(&mut self, catalogue: &[Entry], image: &str, place: impl FnOnce() -> String) {
        let (path, tag) = split_image(image);
        let Some(tag) = tag else { return };
        if !catalogue.iter().any(|e| e.images.contains(&path)) {
            return;
        }
        let places = self.seen.entry((path, tag)).or_default();
        if places.len() < SEEN_IN_KEPT {
            let p = place();
            if !places.contains(&p) {
                places.push(p);
            }
        }
    }

    /// Returns the versions seen and the entries that affect them.
    pub fn finish(self, catalogue: &[Entry]) -> (Vec<Detected>, Vec<Affecting>) {
        let mut detected = Vec::new();
        let mut affecting = Vec::new();
        for ((path, tag), seen_in) in self.seen {
            let Some(entry0) = catalogue.iter().find(|e| e.images.contains(&path)) else {
                continue;
            };
            detected.push(Detected {
                system: entry0.system.clone(),
                image: path.clone(),
                version: tag.clone(),
                seen_in: seen_in.clone(),
            });
            let Some(v) = version_of_tag(&tag) else {
                continue;
            };
            for e in catalogue
                .iter()
                .filter(|e| e.images.contains(&path) && e.affected.matches(&v))
            {
                affecting.push(Affecting {
                    id: e.id.clone(),
                    system: e.system.clone(),
                    title: e.title.clone(),
                    version: tag.clone(),
                    affected: e.affected.to_string(),
                    fixed_in: e.fixed_in.clone(),
                    links: e.links.clone(),
                    source: e.source.clone(),
                    advice: e.advice.clone(),
                    seen_in: seen_in.clone(),
                });
            }
        }
        (detected, affecting)
    }
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

    #[test]
    fn images_are_split_whatever_the_registry() {
        for (image, path, tag) in [
            (
                "longhornio/longhorn-manager:v1.7.2",
                "longhornio/longhorn-manager",
                Some("v1.7.2"),
            ),
            (
                "docker.io/longhornio/longhorn-manager:v1.7.2",
                "longhornio/longhorn-manager",
                Some("v1.7.2"),
            ),
            (
                "reg:5000/longhornio/longhorn-manager:v1.7.2@sha256:ab",
                "longhornio/longhorn-manager",
                Some("v1.7.2"),
            ),
            (
                "reg:5000/longhornio/longhorn-manager",
                "longhornio/longhorn-manager",
                None,
            ),
            ("busybox", "busybox", None),
        ] {
            assert_eq!(
                split_image(image),
                (path.to_string(), tag.map(String::from)),
                "{image}"
            );
        }
    }

    #[test]
    fn a_running_v1_7_2_is_affected_and_v1_8_1_is_not() {
        let c = catalogue().unwrap();
        let mut v = Versions::default();
        v.record(&c, "longhornio/longhorn-manager:v1.7.2", || {
            "longhorn-system/DaemonSet/longhorn-manager".into()
        });
        v.record(&c, "longhornio/longhorn-manager:v1.8.1", || {
            "other/DaemonSet/m".into()
        });
        v.record(&c, "nginx:1.7.2", || "x".into());
        let (detected, affecting) = v.finish(&c);
        assert_eq!(detected.len(), 2);
        assert_eq!(affecting.len(), 1);
        assert_eq!(affecting[0].version, "v1.7.2");
        assert_eq!(affecting[0].id, "longhorn.package-check-pileup");
    }
}
