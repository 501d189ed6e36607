//! Known issues by version (the incident's second lesson: most problems are known; look them
//! up first). The catalogue is data in the repo (`catalogue/known-issues.yaml`), compiled in
//! and parsed by `hostready_doctor::catalogue`; the storage system's version comes from its
//! workloads' image tags.

use std::collections::BTreeMap;

use serde::Serialize;

// The catalogue itself (its type, parser and validation) is hostready-doctor's, which
// `doctor --explain` reads too: one parser for the one file.
pub use hostready_doctor::catalogue::{
    CATALOGUE_YAML, CatalogueError, Entry, catalogue, parse, version_of_tag,
};

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
