//! Who owns which condition of a Node, from its `managedFields`, so the agent never writes a
//! condition type that another field manager (the kubelet, another controller, a person's
//! `kubectl`) already owns. The apply is forced (it takes back a hand edit of one of the
//! agent's *own* conditions), so without this check a profile naming someone else's
//! condition would silently take it over.
//!
//! A condition is "another's" when some other manager owns its list entry
//! (`f:status` → `f:conditions` → `k:{"type":"X"}`) and this agent's manager owns no part of
//! it. When both own parts of it, the agent wrote it first and someone edited it since: it
//! stays the agent's.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use k8s_openapi::api::core::v1::Node;

use crate::condition::FIELD_MANAGER;

/// A condition type the agent must not write, and who owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub type_: String,
    /// The other field managers that own it, sorted.
    pub managers: Vec<String>,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "condition {} is owned by field manager {}",
            self.type_,
            self.managers.join(", ")
        )
    }
}

/// Returns, for each condition type with an owner, the field managers that own its entry.
pub fn condition_owners(node: &Node) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for mf in node.metadata.managed_fields.iter().flatten() {
        let (Some(manager), Some(fields)) = (&mf.manager, &mf.fields_v1) else {
            continue;
        };
        let Some(conds) = fields.0.pointer("/f:status/f:conditions") else {
            continue;
        };
        for key in conds.as_object().into_iter().flat_map(|o| o.keys()) {
            let Some(json) = key.strip_prefix("k:") else {
                continue;
            };
            let v = serde_json::from_str::<serde_json::Value>(json).ok();
            if let Some(t) = v.as_ref().and_then(|v| v.get("type")?.as_str()) {
                out.entry(t.to_string())
                    .or_default()
                    .insert(manager.clone());
            }
        }
    }
    out
}

/// Returns the types of `types` that another field manager owns on `node` and the agent does
/// not, in the order of `types`.
pub fn conflicts(node: &Node, types: &[String]) -> Vec<Conflict> {
    let owners = condition_owners(node);
    types
        .iter()
        .filter_map(|t| {
            let o = owners.get(t)?;
            if o.contains(FIELD_MANAGER) {
                return None;
            }
            Some(Conflict {
                type_: t.clone(),
                managers: o.iter().cloned().collect(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> Node {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n1", "managedFields": [
                {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:status": {"f:conditions": {
                     "k:{\"type\":\"Ready\"}": {".": {}, "f:status": {}},
                     "k:{\"type\":\"MemoryPressure\"}": {".": {}}}}}},
                {"manager": "site-controller", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:status": {"f:conditions": {"k:{\"type\":\"SiteStorageReady\"}": {".": {}}}}}},
                {"manager": "hostready-agent", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:status": {"f:conditions": {"k:{\"type\":\"LonghornReady\"}": {".": {}}}}}},
                {"manager": "kubectl-edit", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:status": {"f:conditions": {"k:{\"type\":\"LonghornReady\"}": {"f:message": {}}}}}}
            ]}
        }))
        .unwrap()
    }

    #[test]
    fn another_managers_condition_is_a_conflict_and_the_agents_own_is_not() {
        let types: Vec<String> = ["LonghornReady", "SiteStorageReady", "Ready", "IscsiReady"]
            .map(String::from)
            .to_vec();
        let c = conflicts(&node(), &types);
        assert_eq!(
            c,
            [
                Conflict {
                    type_: "SiteStorageReady".into(),
                    managers: vec!["site-controller".into()]
                },
                Conflict {
                    type_: "Ready".into(),
                    managers: vec!["kubelet".into()]
                },
            ]
        );
        assert_eq!(
            c[0].to_string(),
            "condition SiteStorageReady is owned by field manager site-controller"
        );
    }
}
