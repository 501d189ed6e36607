//! Stale agents: a node whose hostready conditions have not been heartbeated for longer than
//! the heartbeat plus a margin, or that has no hostready condition at all although the agent's
//! DaemonSet should run on it.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
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

/// Returns true if and only if a node's `labels` satisfy a DaemonSet's `nodeSelector`
/// (affinity is not evaluated; docs/cluster.md says so).
pub fn selected(
    selector: Option<&BTreeMap<String, String>>,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    let Some(sel) = selector else { return true };
    sel.iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
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
