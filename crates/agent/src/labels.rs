//! Scheduling labels (opt-in: `scheduling_labels: true` in the config file, or
//! `--scheduling-labels`): one label per enabled profile on the agent's own Node,
//! `hostready.dev/<profile>=true|false|unknown`, so a storage system can be kept to the nodes
//! that are ready for it with a plain node selector (`hostready.dev/longhorn: "true"`).
//!
//! **Key.** [`PREFIX`] and the profile's name exactly as written (`longhorn`, `nfs-client`,
//! `longhorn-v2`): what a user types in a node selector is the name they gave the profile.
//! Profile names are already 1 to 58 ASCII letters, digits, `.`, `_` and `-` starting with a
//! letter or digit; a label name must also *end* with a letter or digit and be at most 63
//! characters (apimachinery's `IsQualifiedName`), so a profile whose name does not fit is
//! refused while labels are on ([`keys`]), never mangled into a name nobody asked for. Case is
//! kept (label names are case-sensitive; folding it could make two profiles share a label).
//!
//! **Value: the readiness status**, lower-cased: `true` when the profile's condition is `True`,
//! `false` when `False`, and `unknown` when the agent could not decide. The label mirrors the
//! condition because that is what a scheduler can select on (conditions cannot be selected),
//! and a selector `hostready.dev/longhorn: "true"` then admits exactly the nodes whose
//! condition says ready. `unknown` is written rather than the label removed: an absent label
//! means "the agent does not label this profile here" (switch off, profile disabled, agent not
//! installed), which is a different thing from "checked and could not decide", and `kubectl get
//! nodes -L hostready.dev/longhorn` should show the difference. Either way an equality selector
//! on `true` leaves the node out.
//!
//! **Writes.** The labels are server-side applied to the Node object itself (not `/status`,
//! where labels cannot be changed) under the agent's field manager, so the agent owns exactly
//! the label keys it sent and nothing else of `metadata.labels`. A write happens only when the
//! label set differs from what the Node shows as the agent's own (read from `managedFields` at
//! start): on a status flip, a profile enabled or disabled, or the switch turned. Heartbeats
//! never write labels. With the switch off the wanted set is empty, and an apply of an empty
//! set removes exactly the keys the agent owned — never a label someone else set.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Node;
use serde_json::{Value, json};

use crate::condition::{CondStatus, Desired, FIELD_MANAGER};

/// The prefix of every label the agent sets (the admission policy allows no other).
pub const PREFIX: &str = "hostready.dev/";

/// The longest name part of a label key (after the prefix), as Kubernetes allows.
pub const MAX_NAME_LEN: usize = 63;

/// The label set the agent wants on its Node: key → value.
pub type Labels = BTreeMap<String, String>;

/// Returns the label key for a profile name, or why it cannot be one.
pub fn key_for(profile: &str) -> Result<String, String> {
    let ok = !profile.is_empty()
        && profile.len() <= MAX_NAME_LEN
        && profile.starts_with(|c: char| c.is_ascii_alphanumeric())
        && profile.ends_with(|c: char| c.is_ascii_alphanumeric())
        && profile
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(format!("{PREFIX}{profile}"))
    } else {
        Err(format!(
            "profile {profile:?} cannot name a scheduling label {PREFIX}{profile}: a label name \
             is 1 to {MAX_NAME_LEN} ASCII letters, digits, '-', '_' or '.', starting and ending \
             with a letter or digit (rename the profile, or turn scheduling_labels off)"
        ))
    }
}

/// Returns the label value for a condition status: `true`, `false` or `unknown`.
pub fn value_for(status: CondStatus) -> &'static str {
    match status {
        CondStatus::True => "true",
        CondStatus::False => "false",
        CondStatus::Unknown => "unknown",
    }
}

/// Checks that every profile of `profiles` names a valid label key and that no two share one
/// (two files may give the same `name` with different conditions).
pub fn keys<'a>(profiles: impl IntoIterator<Item = &'a str>) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for p in profiles {
        let k = key_for(p)?;
        if out.contains(&k) {
            return Err(format!(
                "two profiles are named {p:?}: both would set the scheduling label {k}"
            ));
        }
        out.push(k);
    }
    Ok(out)
}

/// Returns the labels for the profiles' readiness conditions (the watch pass's condition
/// has no profile and gets no label). A profile whose name cannot be a label is left out (the
/// config was refused before it could get here; this keeps the apply valid regardless).
pub fn wanted(desired: &[Desired]) -> Labels {
    desired
        .iter()
        .filter(|d| !d.profile.is_empty())
        .filter_map(|d| Some((key_for(&d.profile).ok()?, value_for(d.status).to_string())))
        .collect()
}

/// Returns the server-side apply body for the Node object: exactly `labels`. An empty set
/// sends no `labels` key at all, which releases every label the agent owned (an empty map
/// would be a field of its own for the agent to own).
pub fn apply_body(node: &str, labels: &Labels) -> Value {
    let mut metadata = json!({"name": node});
    if !labels.is_empty() {
        metadata["labels"] = json!(labels);
    }
    json!({"apiVersion": "v1", "kind": "Node", "metadata": metadata})
}

/// Returns the labels the agent owns on `node`: the keys its field manager's apply to the Node
/// object (not a subresource) holds under `metadata.labels`, with the values the Node shows.
pub fn owned(node: &Node) -> Labels {
    let shown = node.metadata.labels.clone().unwrap_or_default();
    let mut out = Labels::new();
    for mf in node.metadata.managed_fields.iter().flatten() {
        let main = mf.subresource.as_deref().is_none_or(str::is_empty);
        if mf.manager.as_deref() != Some(FIELD_MANAGER) || !main {
            continue;
        }
        let Some(fields) = mf
            .fields_v1
            .as_ref()
            .and_then(|f| f.0.pointer("/f:metadata/f:labels"))
            .and_then(Value::as_object)
        else {
            continue;
        };
        for k in fields.keys().filter_map(|k| k.strip_prefix("f:")) {
            if let Some(v) = shown.get(k) {
                out.insert(k.to_string(), v.clone());
            }
        }
    }
    out
}

/// Returns one line naming a label set for the log: `hostready.dev/iscsi=true, ...` or `none`.
pub fn describe(labels: &Labels) -> String {
    if labels.is_empty() {
        return "none".into();
    }
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(type_: &str, profile: &str, status: CondStatus) -> Desired {
        Desired {
            type_: type_.into(),
            profile: profile.into(),
            status,
            reason: "R".into(),
            message: "m".into(),
            failing: Vec::new(),
            detail: String::new(),
        }
    }

    /// One label per profile, its value the status lower-cased; the watch pass's condition
    /// (no profile) gets none.
    #[test]
    fn the_label_set_follows_the_statuses() {
        let set = wanted(&[
            d("LonghornReady", "longhorn", CondStatus::True),
            d("NfsClientReady", "nfs-client", CondStatus::False),
            d("LonghornV2Ready", "longhorn-v2", CondStatus::Unknown),
            d("HostProcessesHealthy", "", CondStatus::False),
        ]);
        let want: Labels = [
            ("hostready.dev/longhorn", "true"),
            ("hostready.dev/nfs-client", "false"),
            ("hostready.dev/longhorn-v2", "unknown"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(set, want);
        // A flip changes exactly that label; the same statuses give the same set.
        let flipped = wanted(&[
            d("LonghornReady", "longhorn", CondStatus::False),
            d("NfsClientReady", "nfs-client", CondStatus::False),
            d("LonghornV2Ready", "longhorn-v2", CondStatus::Unknown),
        ]);
        assert_eq!(flipped["hostready.dev/longhorn"], "false");
        assert_eq!(flipped.len(), 3);
        assert_eq!(
            wanted(&[d("LonghornReady", "longhorn", CondStatus::True)]),
            wanted(&[d("LonghornReady", "longhorn", CondStatus::True)])
        );
        assert!(wanted(&[]).is_empty());
    }

    /// Every built-in profile names a valid label; names a label cannot carry are refused
    /// with the rule, never rewritten.
    #[test]
    fn label_keys_follow_the_kubernetes_grammar() {
        let builtin = hostready_checks::profile::builtin_names();
        let ks = keys(builtin.iter().copied()).unwrap();
        assert_eq!(ks.len(), builtin.len());
        for k in &ks {
            let name = k.strip_prefix(PREFIX).unwrap();
            assert!(name.len() <= MAX_NAME_LEN, "{k}");
        }
        assert_eq!(key_for("longhorn").unwrap(), "hostready.dev/longhorn");
        assert_eq!(key_for("Site_2.a").unwrap(), "hostready.dev/Site_2.a");
        assert!(key_for(&"a".repeat(63)).is_ok());
        for bad in [
            "",
            "site-",
            "site.",
            "_site",
            "has space",
            "a/b",
            &"a".repeat(64),
        ] {
            let e = key_for(bad).unwrap_err();
            assert!(e.contains("cannot name a scheduling label"), "{bad}: {e}");
        }
        let e = keys(["iscsi", "site", "site"]).unwrap_err();
        assert!(e.contains("two profiles are named \"site\""), "{e}");
    }

    #[test]
    fn values_are_the_status_lower_cased() {
        assert_eq!(value_for(CondStatus::True), "true");
        assert_eq!(value_for(CondStatus::False), "false");
        assert_eq!(value_for(CondStatus::Unknown), "unknown");
    }

    /// Only the agent's own apply to the Node object counts: not its status apply, not
    /// another manager's labels, not a key the Node no longer shows.
    #[test]
    fn owned_labels_come_from_the_agents_main_resource_apply() {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": "n1",
                "labels": {"hostready.dev/iscsi": "true", "hostready.dev/site": "x",
                           "kubernetes.io/hostname": "n1"},
                "managedFields": [
                {"manager": "hostready-agent", "operation": "Apply", "apiVersion": "v1",
                 "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:metadata": {"f:labels": {"f:hostready.dev/iscsi": {},
                                                          "f:hostready.dev/gone": {}}}}},
                {"manager": "hostready-agent", "operation": "Apply", "apiVersion": "v1",
                 "fieldsType": "FieldsV1", "subresource": "status",
                 "fieldsV1": {"f:metadata": {"f:labels": {"f:hostready.dev/status-side": {}}}}},
                {"manager": "kubectl-label", "operation": "Update", "apiVersion": "v1",
                 "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:metadata": {"f:labels": {"f:hostready.dev/site": {}}}}}
            ]}
        }))
        .unwrap();
        let o = owned(&node);
        assert_eq!(describe(&o), "hostready.dev/iscsi=true");
        assert_eq!(describe(&Labels::new()), "none");
    }

    #[test]
    fn the_apply_body_holds_exactly_the_labels() {
        let mut l = Labels::new();
        l.insert("hostready.dev/iscsi".into(), "true".into());
        let b = apply_body("n1", &l);
        assert_eq!(
            b["metadata"]["labels"],
            json!({"hostready.dev/iscsi": "true"})
        );
        assert!(b.get("status").is_none() && b.get("spec").is_none());
        assert_eq!(
            apply_body("n1", &Labels::new())["metadata"],
            json!({"name": "n1"})
        );
    }
}
