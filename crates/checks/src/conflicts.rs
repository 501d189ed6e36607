//! Conflicts between built-in profiles enabled together: data, not code. The catalogue
//! (`profiles/conflicts.yaml`, embedded) names two built-in profiles per entry, what clashes,
//! what the operator must decide, and its sources; it is checked when first read (profiles
//! exist, ids unique, sources resolve). When every profile of an entry is enabled — named, or
//! included by one that is — the report gets one `conflict` finding naming both.
//!
//! A conflict is a decision for the operator, not a fault of the host: each side's own
//! requirements can all pass (Longhorn's multipathd check passes on a node where democratic-csi
//! has not yet turned multipathd on). So the finding is `recommended`, a warning: it never
//! makes `check` exit 1 (except with `--strict`) and never turns a node condition `False`.

use std::collections::{BTreeMap, HashSet};
use std::sync::OnceLock;

use serde::Deserialize;

use crate::finding::{Evidence, Finding, Level, Remediation, Status, Subject};
use crate::profile::sources::{self, SourceRef, Specs};
use crate::profile::{self, Profile};

/// The catalogue, embedded at build time.
pub const CATALOGUE: &str = include_str!("../profiles/conflicts.yaml");

/// One conflict of the catalogue, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub id: String,
    /// The two built-in profiles that conflict.
    pub profiles: [String; 2],
    pub clash: String,
    pub decide: String,
    pub sources: Vec<SourceRef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConflict {
    id: String,
    profiles: Vec<String>,
    clash: String,
    decide: String,
    source: Specs,
}

/// Returns the catalogue, parsed and checked once.
pub fn catalogue() -> Result<&'static [Conflict], String> {
    static PARSED: OnceLock<Result<Vec<Conflict>, String>> = OnceLock::new();
    PARSED
        .get_or_init(|| parse(CATALOGUE).map_err(|e| format!("profiles/conflicts.yaml: {e}")))
        .as_ref()
        .map(Vec::as_slice)
        .map_err(Clone::clone)
}

/// Parses and checks a catalogue: each entry names two distinct built-in profiles, has a
/// unique id and at least one source, every key of which resolves.
fn parse(text: &str) -> Result<Vec<Conflict>, String> {
    let raw: Vec<RawConflict> = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
    let builtins = profile::builtin_names();
    let catalogue = sources::catalogue()?;
    let mut ids = HashSet::new();
    let mut out = Vec::new();
    for c in raw {
        profile::names::check_id(&c.id)?;
        if !ids.insert(c.id.clone()) {
            return Err(format!("conflict id {:?} appears twice", c.id));
        }
        let [a, b]: [String; 2] = c.profiles.try_into().map_err(|p: Vec<String>| {
            format!("conflict {}: names {} profiles, not two", c.id, p.len())
        })?;
        if a == b {
            return Err(format!("conflict {}: names {a} twice", c.id));
        }
        for p in [&a, &b] {
            if !builtins.contains(&p.as_str()) {
                return Err(format!(
                    "conflict {}: {p:?} is not a built-in profile",
                    c.id
                ));
            }
        }
        let mut refs =
            sources::specs(Some(c.source)).map_err(|e| format!("conflict {}: {e}", c.id))?;
        for s in &mut refs {
            if let Some(key) = &s.key {
                s.location = catalogue
                    .get(key)
                    .ok_or_else(|| format!("conflict {}: source key {key:?} is unknown", c.id))?
                    .clone();
            }
        }
        if refs.is_empty() {
            return Err(format!("conflict {}: needs a source", c.id));
        }
        out.push(Conflict {
            id: c.id,
            profiles: [a, b],
            clash: c.clash.trim().to_string(),
            decide: c.decide.trim().to_string(),
            sources: refs,
        });
    }
    Ok(out)
}

/// A conflict finding and the enabled profiles it concerns (those that are, or include, one of
/// its two built-in profiles), in the order they were enabled: the report lists it under each.
#[derive(Debug, Clone)]
pub struct Found {
    pub finding: Finding,
    pub profiles: Vec<String>,
}

/// Returns the conflict findings for `profiles` enabled together: one per catalogue entry
/// whose two profiles are both enabled (by name, or included). Each finding's `profile` is
/// the first enabled profile it concerns. A catalogue that cannot be read yields one
/// `unknown` finding saying why (never silently nothing), under every profile.
pub fn findings(profiles: &[Profile]) -> Vec<Found> {
    // Which enabled profile brings each built-in in (the first that does).
    let mut via: BTreeMap<&str, &str> = BTreeMap::new();
    for p in profiles {
        for b in &p.builtins {
            via.entry(b.as_str()).or_insert(p.name.as_str());
        }
    }
    let catalogue = match catalogue() {
        Ok(c) => c,
        Err(why) => {
            let all: Vec<String> = profiles.iter().map(|p| p.name.clone()).collect();
            let mut finding = unreadable(&why);
            finding.profile = all.first().cloned().unwrap_or_default();
            return vec![Found {
                finding,
                profiles: all,
            }];
        }
    };
    catalogue
        .iter()
        .filter(|c| c.profiles.iter().all(|p| via.contains_key(p.as_str())))
        .map(|c| {
            // The enabled profiles that bring either side in, in the order they were enabled.
            let concerned: Vec<String> = profiles
                .iter()
                .filter(|p| c.profiles.iter().any(|b| p.builtins.contains(b)))
                .map(|p| p.name.clone())
                .collect();
            let mut finding = finding(c, &via);
            finding.profile = concerned[0].clone();
            Found {
                finding,
                profiles: concerned,
            }
        })
        .collect()
}

/// The built-in profiles conflicting with `name` (for `hostready profiles NAME`).
pub fn with(name: &str) -> Vec<&'static Conflict> {
    catalogue()
        .map(|c| {
            c.iter()
                .filter(|c| c.profiles.iter().any(|p| p == name))
                .collect()
        })
        .unwrap_or_default()
}

fn finding(c: &Conflict, via: &BTreeMap<&str, &str>) -> Finding {
    let shown = |p: &str| match via.get(p) {
        Some(v) if *v != p => format!("{p} (included by {v})"),
        _ => p.to_string(),
    };
    let mut ev = Evidence::default();
    ev.add(
        "profiles",
        format!("{} and {}", shown(&c.profiles[0]), shown(&c.profiles[1])),
    );
    ev.add("clash", &c.clash);
    for s in &c.sources {
        ev.add("source", s.to_string());
    }
    Finding {
        id: format!("conflict.{}", c.id),
        // Set by the caller: the first enabled profile concerned.
        profile: String::new(),
        level: Level::Recommended,
        status: Level::Recommended.status(Status::Fail),
        message: format!(
            "{} and {} conflict: {}",
            c.profiles[0], c.profiles[1], c.clash
        ),
        evidence: ev,
        remediation: Some(Remediation {
            summary: format!("Decide: {}", c.decide),
            ..Remediation::default()
        }),
        subject: Subject::Conflict(c.id.clone()),
        probe: None,
    }
}

fn unreadable(why: &str) -> Finding {
    let mut ev = Evidence::default();
    ev.add("catalogue", why);
    Finding {
        id: "conflict.catalogue".into(),
        profile: String::new(),
        level: Level::Recommended,
        status: Status::Unknown,
        message: format!(
            "the conflict catalogue cannot be read, so conflicts were not checked: {why}"
        ),
        evidence: ev,
        remediation: None,
        subject: Subject::Conflict("catalogue".into()),
        probe: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(names: &[&str]) -> Vec<Profile> {
        names.iter().map(|n| profile::load(n).unwrap()).collect()
    }

    #[test]
    fn the_catalogue_is_valid_and_cites_every_entry() {
        let c = catalogue().unwrap();
        assert!(c.len() >= 6, "{c:?}");
        for e in c {
            assert!(!e.sources.is_empty() && e.sources.iter().all(|s| !s.location.is_empty()));
        }
    }

    #[test]
    fn mistakes_in_a_catalogue_are_refused() {
        let entry = |profiles: &str, source: &str| {
            format!("- {{id: x, profiles: {profiles}, clash: c, decide: d, source: {source}}}\n")
        };
        for (text, what) in [
            (entry("[longhorn, nope]", "LH-inst"), "not a built-in"),
            (entry("[longhorn]", "LH-inst"), "not two"),
            (entry("[longhorn, longhorn]", "LH-inst"), "twice"),
            (entry("[longhorn, topolvm]", "NO-SUCH-KEY"), "unknown"),
            (entry("[longhorn, topolvm]", "[]"), "empty"),
            (
                format!("{0}{0}", entry("[longhorn, topolvm]", "LH-inst")),
                "appears twice",
            ),
            ("- {id: x, profiles: [a, b]}\n".into(), "missing field"),
        ] {
            let e = parse(&text).unwrap_err();
            assert!(e.contains(what), "{text}: {e}");
        }
        assert_eq!(
            parse(&entry("[longhorn, topolvm]", "LH-inst"))
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn a_conflict_fires_only_when_both_profiles_are_enabled() {
        assert!(findings(&load(&["longhorn"])).is_empty());
        assert!(findings(&load(&["democratic-csi-iscsi"])).is_empty());
        let found = findings(&load(&["longhorn", "democratic-csi-iscsi"]));
        for x in &found {
            assert_eq!(x.profiles, ["longhorn", "democratic-csi-iscsi"]);
        }
        let f: Vec<Finding> = found.into_iter().map(|x| x.finding).collect();
        let ids: Vec<&str> = f.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "conflict.multipathd",
                "conflict.iscsid.longhorn.democratic-csi-iscsi"
            ]
        );
        let m = &f[0];
        assert_eq!((m.level, m.status), (Level::Recommended, Status::Warn));
        assert_eq!(m.subject, Subject::Conflict("multipathd".into()));
        assert_eq!(m.profile, "longhorn");
        assert!(
            m.message
                .starts_with("longhorn and democratic-csi-iscsi conflict")
        );
        assert!(
            m.remediation
                .as_ref()
                .unwrap()
                .summary
                .starts_with("Decide: ")
        );
    }

    /// longhorn-v2 includes longhorn: enabling it with democratic-csi-iscsi is the multipathd
    /// conflict too, and the evidence says through which profile.
    #[test]
    fn an_included_profile_counts_and_is_named() {
        let found = findings(&load(&[
            "longhorn-v2",
            "openebs-mayastor",
            "democratic-csi-iscsi",
        ]));
        let hp = found
            .iter()
            .find(|x| x.finding.id == "conflict.hugepages")
            .unwrap();
        assert_eq!(hp.profiles, ["longhorn-v2", "openebs-mayastor"]);
        let f: Vec<Finding> = found.into_iter().map(|x| x.finding).collect();
        let ids: std::collections::BTreeSet<&str> = f.iter().map(|f| f.id.as_str()).collect();
        for id in ["conflict.multipathd", "conflict.hugepages"] {
            assert!(ids.contains(id), "{ids:?}");
        }
        let m = f.iter().find(|f| f.id == "conflict.multipathd").unwrap();
        assert_eq!(
            m.evidence.get("profiles"),
            Some("longhorn (included by longhorn-v2) and democratic-csi-iscsi")
        );
        assert_eq!(m.profile, "longhorn-v2");
    }
}
