//! Stale agents: a node whose hostready conditions have not been heartbeated for longer than
//! the heartbeat plus a margin, or that has no hostready condition at all although the agent's
//! DaemonSet should run on it.
//!
//! "Should run on it" is decided as the DaemonSet controller decides it ([`Placement`]): the
//! pod template's `nodeSelector`, its required node affinity (`nodeSelectorTerms`), and the
//! node's `NoSchedule`/`NoExecute` taints against the template's tolerations plus the ones the
//! controller adds to every DaemonSet pod. Written here rather than taken from a library: the
//! rules are Kubernetes' own (`k8s.io/component-helpers/scheduling/corev1`), and no Rust crate
//! carries them.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    Node, NodeSelectorRequirement, NodeSelectorTerm, PodSpec, Taint, Toleration,
};
use k8s_openapi::chrono::{DateTime, Utc};
use serde::Serialize;

use crate::cluster::NodeRow;

/// The agent's default `--heartbeat` (crates/agent/src/cli.rs; a test holds them equal).
pub const AGENT_DEFAULT_HEARTBEAT: Duration = Duration::from_secs(300);

/// The default `--stale-after`: the agent's default heartbeat plus one more, so one late
/// write (a slow API, the agent restarting) is not flagged, two missed ones are.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(600);

/// Why a node is flagged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Why {
    /// The newest heartbeat of its hostready conditions is older than `--stale-after`.
    Heartbeat,
    /// No hostready condition, on a node that has existed longer than `--stale-after`.
    NoConditions,
}

/// A flagged node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stale {
    pub node: String,
    pub why: Why,
    /// For `heartbeat`, the newest heartbeat; for `no_conditions`, when the node was created.
    pub since: Option<String>,
    /// Seconds since `since` (`null` when the API gave no time).
    pub age_seconds: Option<u64>,
}

/// Returns true if and only if a node's `labels` satisfy a DaemonSet's `nodeSelector`.
pub fn selected(
    selector: Option<&BTreeMap<String, String>>,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    let Some(sel) = selector else { return true };
    sel.iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// What of a node the placement rules look at: its name, labels and taints. Kept for the
/// nodes that would be flagged only, until the DaemonSet is read.
#[derive(Debug, Clone, Default)]
pub struct NodePlace {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
}

impl NodePlace {
    pub fn of(node: &Node) -> NodePlace {
        NodePlace {
            name: node.metadata.name.clone().unwrap_or_default(),
            labels: node.metadata.labels.clone().unwrap_or_default(),
            taints: node
                .spec
                .as_ref()
                .and_then(|s| s.taints.clone())
                .unwrap_or_default(),
        }
    }
}

/// Where a DaemonSet's pods run: its pod template's node selector, required node affinity
/// and tolerations.
#[derive(Debug, Clone, Default)]
pub struct Placement {
    pub node_selector: BTreeMap<String, String>,
    /// `requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms`; `None` when the
    /// template has no required node affinity.
    pub terms: Option<Vec<NodeSelectorTerm>>,
    pub tolerations: Vec<Toleration>,
}

/// The tolerations the DaemonSet controller adds to every DaemonSet pod, so a node that is
/// not ready, unreachable, under pressure or cordoned still runs it (Kubernetes docs,
/// "DaemonSet: Taints and tolerations"; `network-unavailable` only for host-network pods).
const DAEMONSET_TOLERATIONS: [(&str, &str); 6] = [
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
];

impl Placement {
    /// The placement of a DaemonSet's pod template, with the controller's own tolerations.
    pub fn of(spec: Option<&PodSpec>) -> Placement {
        let Some(spec) = spec else {
            return Placement::default().with_daemonset_tolerations(false);
        };
        Placement {
            node_selector: spec.node_selector.clone().unwrap_or_default(),
            terms: spec
                .affinity
                .as_ref()
                .and_then(|a| a.node_affinity.as_ref())
                .and_then(|n| {
                    n.required_during_scheduling_ignored_during_execution
                        .as_ref()
                })
                .map(|r| r.node_selector_terms.clone()),
            tolerations: spec.tolerations.clone().unwrap_or_default(),
        }
        .with_daemonset_tolerations(spec.host_network == Some(true))
    }

    fn with_daemonset_tolerations(mut self, host_network: bool) -> Placement {
        let extra = DAEMONSET_TOLERATIONS.iter().copied().chain(
            host_network.then_some(("node.kubernetes.io/network-unavailable", "NoSchedule")),
        );
        for (key, effect) in extra {
            self.tolerations.push(Toleration {
                key: Some(key.into()),
                operator: Some("Exists".into()),
                effect: Some(effect.into()),
                ..Toleration::default()
            });
        }
        self
    }

    /// Returns true if and only if the DaemonSet would start a pod on `node`: its labels
    /// match the node selector, one of the required terms matches (when there are terms), and
    /// every `NoSchedule`/`NoExecute` taint is tolerated (`PreferNoSchedule` never keeps it
    /// away). The controller's `shouldRun`.
    pub fn runs_on(&self, node: &NodePlace) -> bool {
        self.selects(node) && self.tolerates_all(node, &["NoSchedule", "NoExecute"])
    }

    /// Returns true if and only if a pod the DaemonSet already runs on `node` is kept there:
    /// as [`Placement::runs_on`], but a `NoSchedule` taint only keeps new pods away (the
    /// controller's `shouldContinueRunning`). So a node that went `NotReady` with its agent
    /// on it (the API server taints it `not-ready:NoSchedule`) is still judged.
    pub fn keeps_running_on(&self, node: &NodePlace) -> bool {
        self.selects(node) && self.tolerates_all(node, &["NoExecute"])
    }

    fn selects(&self, node: &NodePlace) -> bool {
        selected(Some(&self.node_selector), Some(&node.labels))
            && self
                .terms
                .as_ref()
                .is_none_or(|terms| terms.iter().any(|t| term_matches(t, node)))
    }

    fn tolerates_all(&self, node: &NodePlace, effects: &[&str]) -> bool {
        node.taints
            .iter()
            .filter(|t| effects.contains(&t.effect.as_str()))
            .all(|t| self.tolerations.iter().any(|tol| tolerates(tol, t)))
    }

    /// Returns true if and only if the agent should be on `node` for `stale` to be a
    /// finding: an agent that never published must be one the DaemonSet would start there
    /// ([`Placement::runs_on`]); one whose heartbeat stopped, one it would keep running
    /// ([`Placement::keeps_running_on`]).
    pub fn judges(&self, stale: &Stale, node: &NodePlace) -> bool {
        match stale.why {
            Why::NoConditions => self.runs_on(node),
            Why::Heartbeat => self.keeps_running_on(node),
        }
    }
}

/// One `nodeSelectorTerm`: all its expressions and fields match. A term with neither matches
/// no node (as in Kubernetes: an empty term selects nothing).
fn term_matches(term: &NodeSelectorTerm, node: &NodePlace) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    exprs
        .iter()
        .all(|r| requirement_matches(r, node.labels.get(&r.key).map(String::as_str)))
        && fields.iter().all(|r| {
            // `metadata.name` is the one field Kubernetes allows, with In and NotIn only.
            r.key == "metadata.name"
                && matches!(r.operator.as_str(), "In" | "NotIn")
                && requirement_matches(r, Some(&node.name))
        })
}

/// One requirement against the value of its key (`None`: the node has no such label). An
/// operator Kubernetes does not know, or a `Gt`/`Lt` that is not one integer on both sides,
/// matches nothing (the API server refuses such a DaemonSet; one read from elsewhere must not
/// widen the check).
fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    let int = |s: &str| s.parse::<i64>().ok();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(have), [want]) = (value.and_then(int), values) else {
                return false;
            };
            let Some(want) = int(want) else { return false };
            if r.operator == "Gt" {
                have > want
            } else {
                have < want
            }
        }
        _ => false,
    }
}

/// Returns true if and only if `tol` tolerates `taint` (Kubernetes' `ToleratesTaint`): the
/// same effect or none, and `Exists` with the same key or none, or `Equal` (the default) with
/// the same key and value.
fn tolerates(tol: &Toleration, taint: &Taint) -> bool {
    if tol
        .effect
        .as_deref()
        .is_some_and(|e| !e.is_empty() && e != taint.effect)
    {
        return false;
    }
    let key = tol.key.as_deref().unwrap_or_default();
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match tol.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            tol.value.as_deref().unwrap_or_default() == taint.value.as_deref().unwrap_or_default()
        }
        _ => false,
    }
}

/// Returns the node's stale finding, if any. The newest heartbeat counts, so a condition left
/// behind by a profile the agent no longer publishes does not make a live agent stale.
pub fn check(
    row: &NodeRow,
    node: &Node,
    stale_after: Duration,
    now: DateTime<Utc>,
) -> Option<Stale> {
    let age = |t: DateTime<Utc>| u64::try_from((now - t).num_seconds()).unwrap_or(0);
    if row.conditions.is_empty() {
        let created = node.metadata.creation_timestamp.as_ref().map(|t| t.0);
        if created.is_some_and(|c| age(c) <= stale_after.as_secs()) {
            return None;
        }
        return Some(Stale {
            node: row.name.clone(),
            why: Why::NoConditions,
            since: created.map(crate::condition::rfc3339),
            age_seconds: created.map(age),
        });
    }
    let newest = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .filter(|c| row.conditions.contains_key(&c.type_))
        .filter_map(|c| c.last_heartbeat_time.as_ref().map(|t| t.0))
        .max();
    match newest {
        Some(t) if age(t) <= stale_after.as_secs() => None,
        t => Some(Stale {
            node: row.name.clone(),
            why: Why::Heartbeat,
            since: t.map(crate::condition::rfc3339),
            age_seconds: t.map(age),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_margin_is_one_agent_heartbeat() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct T {
            #[command(flatten)]
            a: crate::cli::AgentArgs,
        }
        let t = T::try_parse_from(["agent", "--node-name", "n"]).unwrap();
        assert_eq!(t.a.heartbeat, AGENT_DEFAULT_HEARTBEAT);
        assert_eq!(DEFAULT_STALE_AFTER, AGENT_DEFAULT_HEARTBEAT * 2);
    }

    fn node(heartbeats: &[(&str, &str)], created: &str) -> (NodeRow, Node) {
        let conds: Vec<_> = heartbeats
            .iter()
            .map(
                |(t, hb)| serde_json::json!({"type": t, "status": "True", "lastHeartbeatTime": hb}),
            )
            .collect();
        let node: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n", "creationTimestamp": created, "labels": {"role": "storage"}},
            "status": {"conditions": conds}
        }))
        .unwrap();
        let row = NodeRow {
            name: "n".into(),
            conditions: heartbeats
                .iter()
                .map(|(t, _)| {
                    (
                        t.to_string(),
                        crate::cluster::Cell {
                            status: "True".into(),
                            reason: String::new(),
                            message: String::new(),
                            last_transition: None,
                            last_heartbeat: None,
                        },
                    )
                })
                .collect(),
        };
        (row, node)
    }

    fn req(key: &str, op: &str, values: &[&str]) -> NodeSelectorRequirement {
        NodeSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
        }
    }

    fn place(labels: &[(&str, &str)], taints: &[(&str, &str, &str)]) -> NodePlace {
        NodePlace {
            name: "node-7".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            taints: taints
                .iter()
                .map(|(k, v, e)| Taint {
                    key: k.to_string(),
                    value: (!v.is_empty()).then(|| v.to_string()),
                    effect: e.to_string(),
                    time_added: None,
                })
                .collect(),
        }
    }

    /// A placement with one required term of `exprs` (and no tolerations of its own).
    fn affinity(exprs: Vec<NodeSelectorRequirement>) -> Placement {
        Placement {
            terms: Some(vec![NodeSelectorTerm {
                match_expressions: Some(exprs),
                match_fields: None,
            }]),
            ..Placement::default()
        }
    }

    #[test]
    fn required_affinity_operators() {
        let n = place(&[("zone", "a"), ("disks", "4")], &[]);
        let runs = |r: NodeSelectorRequirement| affinity(vec![r]).runs_on(&n);
        assert!(runs(req("zone", "In", &["a", "b"])));
        assert!(!runs(req("zone", "In", &["b"])));
        assert!(!runs(req("rack", "In", &["a"])), "In needs the label");
        assert!(runs(req("zone", "NotIn", &["b"])));
        assert!(!runs(req("zone", "NotIn", &["a"])));
        assert!(
            runs(req("rack", "NotIn", &["a"])),
            "NotIn holds without the label"
        );
        assert!(runs(req("zone", "Exists", &[])));
        assert!(!runs(req("rack", "Exists", &[])));
        assert!(runs(req("rack", "DoesNotExist", &[])));
        assert!(!runs(req("zone", "DoesNotExist", &[])));
        assert!(runs(req("disks", "Gt", &["3"])));
        assert!(!runs(req("disks", "Gt", &["4"])));
        assert!(runs(req("disks", "Lt", &["5"])));
        assert!(!runs(req("disks", "Lt", &["4"])));
        assert!(
            !runs(req("zone", "Gt", &["1"])),
            "a label that is no integer"
        );
        assert!(!runs(req("disks", "Gt", &["1", "2"])), "Gt takes one value");
        assert!(!runs(req("rack", "Lt", &["9"])), "Lt needs the label");
        assert!(!runs(req("zone", "Like", &["a"])), "an unknown operator");
        // All expressions of a term must hold; any one term is enough.
        assert!(!affinity(vec![req("zone", "In", &["a"]), req("disks", "Lt", &["2"])]).runs_on(&n));
        let two_terms = Placement {
            terms: Some(vec![
                NodeSelectorTerm {
                    match_expressions: Some(vec![req("zone", "In", &["b"])]),
                    match_fields: None,
                },
                NodeSelectorTerm {
                    match_expressions: Some(vec![req("zone", "In", &["a"])]),
                    match_fields: None,
                },
            ]),
            ..Placement::default()
        };
        assert!(two_terms.runs_on(&n));
        // An empty term, or no terms at all under a required affinity, selects no node.
        assert!(!affinity(Vec::new()).runs_on(&n));
        let none = Placement {
            terms: Some(Vec::new()),
            ..Placement::default()
        };
        assert!(!none.runs_on(&n));
        assert!(Placement::default().runs_on(&n), "no affinity: every node");
    }

    #[test]
    fn match_fields_name_the_node() {
        let n = place(&[], &[]);
        let fields = |r: NodeSelectorRequirement| Placement {
            terms: Some(vec![NodeSelectorTerm {
                match_expressions: None,
                match_fields: Some(vec![r]),
            }]),
            ..Placement::default()
        };
        assert!(fields(req("metadata.name", "In", &["node-7"])).runs_on(&n));
        assert!(!fields(req("metadata.name", "In", &["node-8"])).runs_on(&n));
        assert!(fields(req("metadata.name", "NotIn", &["node-8"])).runs_on(&n));
        assert!(!fields(req("metadata.name", "NotIn", &["node-7"])).runs_on(&n));
        assert!(
            !fields(req("metadata.name", "Exists", &[])).runs_on(&n),
            "only In and NotIn are allowed on fields"
        );
        assert!(!fields(req("metadata.uid", "In", &["node-7"])).runs_on(&n));
    }

    #[test]
    fn taints_keep_the_daemonset_away_unless_tolerated() {
        let spec: PodSpec = serde_json::from_value(serde_json::json!({
            "containers": [],
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [
                {"key": "storage", "operator": "Equal", "value": "only", "effect": "NoSchedule"},
                {"key": "dedicated", "operator": "Exists"}
            ]
        }))
        .unwrap();
        let p = Placement::of(Some(&spec));
        let linux = [("kubernetes.io/os", "linux")];
        assert!(p.runs_on(&place(&linux, &[])));
        assert!(!p.runs_on(&place(&[], &[])), "the node selector");
        assert!(!p.runs_on(&place(&linux, &[("gpu", "yes", "NoSchedule")])));
        assert!(!p.runs_on(&place(&linux, &[("gpu", "yes", "NoExecute")])));
        assert!(
            p.runs_on(&place(&linux, &[("gpu", "yes", "PreferNoSchedule")])),
            "PreferNoSchedule does not block"
        );
        // A pod already there stays under a NoSchedule taint, not under a NoExecute one.
        assert!(p.keeps_running_on(&place(&linux, &[("gpu", "yes", "NoSchedule")])));
        assert!(!p.keeps_running_on(&place(&linux, &[("gpu", "yes", "NoExecute")])));
        assert!(!p.keeps_running_on(&place(&[], &[])), "the node selector");
        let not_ready = place(
            &linux,
            &[("node.kubernetes.io/not-ready", "", "NoSchedule")],
        );
        let stale = |why| Stale {
            node: "node-7".into(),
            why,
            since: None,
            age_seconds: None,
        };
        assert!(
            p.judges(&stale(Why::Heartbeat), &not_ready),
            "a node gone NotReady under its agent is judged"
        );
        assert!(
            !p.judges(&stale(Why::NoConditions), &not_ready),
            "a new node the DaemonSet does not start on yet is not"
        );
        assert!(p.runs_on(&place(&linux, &[("storage", "only", "NoSchedule")])));
        assert!(
            !p.runs_on(&place(&linux, &[("storage", "other", "NoSchedule")])),
            "Equal compares the value"
        );
        assert!(
            !p.runs_on(&place(&linux, &[("storage", "only", "NoExecute")])),
            "the toleration names its effect"
        );
        assert!(
            p.runs_on(&place(&linux, &[("dedicated", "x", "NoExecute")])),
            "Exists without an effect: any value, any effect"
        );
        // The controller's own tolerations: a node that is down or cordoned still runs it,
        // so its stale agent is flagged.
        for t in [
            ("node.kubernetes.io/unreachable", "", "NoExecute"),
            ("node.kubernetes.io/not-ready", "", "NoExecute"),
            ("node.kubernetes.io/unschedulable", "", "NoSchedule"),
            ("node.kubernetes.io/memory-pressure", "", "NoSchedule"),
        ] {
            assert!(p.runs_on(&place(&linux, &[t])), "{t:?}");
        }
        assert!(
            !p.runs_on(&place(
                &linux,
                &[("node.kubernetes.io/network-unavailable", "", "NoSchedule")]
            )),
            "only host-network pods tolerate network-unavailable"
        );
        let all = Placement::of(Some(
            &serde_json::from_value(serde_json::json!({
                "containers": [], "hostNetwork": true, "tolerations": [{"operator": "Exists"}]
            }))
            .unwrap(),
        ));
        assert!(all.runs_on(&place(&[], &[("anything", "v", "NoExecute")])));
        assert!(all.runs_on(&place(
            &[],
            &[("node.kubernetes.io/network-unavailable", "", "NoSchedule")]
        )));
    }

    /// The DaemonSet and node objects as the API server returns them.
    #[test]
    fn placement_from_api_objects() {
        let ds: k8s_openapi::api::apps::v1::DaemonSet = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "hostready-agent"},
            "spec": {"selector": {"matchLabels": {"app": "a"}},
                     "template": {"metadata": {"labels": {"app": "a"}},
                                  "spec": {"nodeSelector": {"kubernetes.io/os": "linux"},
                                           "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                                               "nodeSelectorTerms": [{"matchExpressions": [
                                                   {"key": "role", "operator": "NotIn", "values": ["edge"]}]}]}}},
                                           "tolerations": [{"key": "storage", "operator": "Exists", "effect": "NoSchedule"}],
                                           "containers": [{"name": "agent", "image": "x"}]}}}
        }))
        .unwrap();
        let p = Placement::of(ds.spec.as_ref().and_then(|s| s.template.spec.as_ref()));
        let node = |labels: serde_json::Value, taints: serde_json::Value| -> Node {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "n", "labels": labels, "creationTimestamp": "2026-12-01T10:00:00Z"},
                "spec": {"taints": taints}
            }))
            .unwrap()
        };
        let linux = serde_json::json!({"kubernetes.io/os": "linux"});
        assert!(
            p.runs_on(&NodePlace::of(&node(linux.clone(), serde_json::json!([])))),
            "{p:?}"
        );
        assert!(!p.runs_on(&NodePlace::of(&node(
            linux.clone(),
            serde_json::json!([{"key": "gpu", "value": "yes", "effect": "NoSchedule"}])
        ))));
        assert!(!p.runs_on(&NodePlace::of(&node(
            serde_json::json!({"kubernetes.io/os": "linux", "role": "edge"}),
            serde_json::json!([])
        ))));
    }

    #[test]
    fn the_newest_heartbeat_decides() {
        let now: DateTime<Utc> = "2026-12-01T12:00:00Z".parse().unwrap();
        let ten = Duration::from_secs(600);
        let (r, n) = node(
            &[("A", "2026-12-01T11:55:00Z"), ("B", "2026-12-01T09:00:00Z")],
            "2026-01-01T00:00:00Z",
        );
        assert_eq!(check(&r, &n, ten, now), None);
        let (r, n) = node(&[("A", "2026-12-01T11:00:00Z")], "2026-01-01T00:00:00Z");
        let s = check(&r, &n, ten, now).unwrap();
        assert_eq!((s.why, s.age_seconds), (Why::Heartbeat, Some(3600)));
        let (r, n) = node(&[], "2026-12-01T11:58:00Z");
        assert_eq!(
            check(&r, &n, ten, now),
            None,
            "a node just created is not yet stale"
        );
        let (r, n) = node(&[], "2026-12-01T10:00:00Z");
        assert_eq!(check(&r, &n, ten, now).unwrap().why, Why::NoConditions);
        let sel: BTreeMap<String, String> = [("role".to_string(), "storage".to_string())].into();
        assert!(selected(Some(&sel), n.metadata.labels.as_ref()));
        let other: BTreeMap<String, String> = [("role".to_string(), "web".to_string())].into();
        assert!(!selected(Some(&other), n.metadata.labels.as_ref()));
        assert!(selected(None, n.metadata.labels.as_ref()));
    }
}
