//! The cluster-wide view behind `hostready cluster`: every Node and the conditions the agents
//! published on it. A condition counts as the agent's when server-side apply records it as
//! owned by the agent's field manager (`managedFields`), so the kubelet's `Ready` and other
//! controllers' conditions are never mistaken for hostready's, whatever their names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};
use serde::Serialize;

use crate::client::Limits;
use crate::condition::FIELD_MANAGER;

/// Why the cluster could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(transparent)]
    Client(crate::client::ClientError),
    #[error("cannot list nodes")]
    List(#[source] kube::Error),
    #[error("cannot list nodes: no complete answer within {timeout:?}")]
    Timeout { timeout: Duration },
    #[error("cannot list nodes: more than {pages} pages of {PAGE_SIZE}")]
    TooManyPages { pages: usize },
    #[error("cannot list nodes: a page of the answer is larger than {max} bytes")]
    TooLarge {
        max: usize,
        #[source]
        source: kube::Error,
    },
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
}

/// One published condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cell {
    pub status: String,
    pub reason: String,
    pub message: String,
    #[serde(rename = "lastTransitionTime")]
    pub last_transition: Option<String>,
    #[serde(rename = "lastHeartbeatTime")]
    pub last_heartbeat: Option<String>,
}

/// One node and its hostready conditions, by type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeRow {
    pub name: String,
    pub conditions: BTreeMap<String, Cell>,
}

/// Version of the `hostready cluster` JSON/YAML shape (`docs/schemas/cluster.schema.json`):
/// kept while fields are only added, bumped when one is removed or changes meaning.
pub const SCHEMA: u32 = 1;

/// Every node, and the union of the condition types published anywhere (the table's columns).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterView {
    /// [`SCHEMA`].
    pub schema: u32,
    pub types: Vec<String>,
    pub nodes: Vec<NodeRow>,
}

impl ClusterView {
    /// Returns true if and only if every node publishes every type, all `True`.
    pub fn all_ready(&self) -> bool {
        self.nodes.iter().all(|n| {
            self.types
                .iter()
                .all(|t| n.conditions.get(t).is_some_and(|c| c.status == "True"))
        })
    }
}

/// Returns the condition types that `field_manager` owns on `node`, from its managedFields
/// (`f:status` → `f:conditions` → `k:{"type":"X"}`).
pub fn owned_condition_types(node: &Node, field_manager: &str) -> BTreeSet<String> {
    crate::ownership::condition_owners(node)
        .into_iter()
        .filter(|(_, managers)| managers.contains(field_manager))
        .map(|(t, _)| t)
        .collect()
}

/// Builds the view from a list of nodes.
pub fn view(nodes: &[Node]) -> ClusterView {
    let mut types = BTreeSet::new();
    let mut rows = Vec::new();
    for n in nodes {
        let owned = owned_condition_types(n, FIELD_MANAGER);
        let mut conditions = BTreeMap::new();
        for c in n
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
        {
            if !owned.contains(&c.type_) {
                continue;
            }
            types.insert(c.type_.clone());
            conditions.insert(
                c.type_.clone(),
                Cell {
                    status: c.status.clone(),
                    reason: c.reason.clone().unwrap_or_default(),
                    message: c.message.clone().unwrap_or_default(),
                    last_transition: c
                        .last_transition_time
                        .as_ref()
                        .map(|t| crate::condition::rfc3339(t.0)),
                    last_heartbeat: c
                        .last_heartbeat_time
                        .as_ref()
                        .map(|t| crate::condition::rfc3339(t.0)),
                },
            );
        }
        rows.push(NodeRow {
            name: n.metadata.name.clone().unwrap_or_default(),
            conditions,
        });
    }
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    ClusterView {
        schema: SCHEMA,
        types: types.into_iter().collect(),
        nodes: rows,
    }
}

/// Nodes asked for per request: a page stays a few megabytes even with large Node objects.
pub const PAGE_SIZE: u32 = 100;

/// The largest response accepted per page. etcd refuses objects over 1.5 MiB, so a page of
/// [`PAGE_SIZE`] real Nodes is far below this; a body past it is refused, not buffered.
pub const MAX_PAGE_BYTES: usize = 16 << 20;

/// More pages than this is not a real cluster (5,000 nodes is Kubernetes' tested limit): an
/// API that keeps answering with a `continue` token is refused.
pub const MAX_PAGES: usize = 1000;

/// Lists the nodes of the cluster in `kubeconfig` (or the usual places) and builds the view.
/// Each request (connect, answer, whole body) must finish within `timeout`; the list is read
/// in pages of [`PAGE_SIZE`], each at most [`MAX_PAGE_BYTES`].
pub fn fetch(kubeconfig: Option<&Path>, timeout: Duration) -> Result<ClusterView, ClusterError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ClusterError::Runtime)?;
    rt.block_on(async {
        // The overall deadline below is what fires; the client's own timeouts are a backstop
        // just behind it, so the error is always the same clear one.
        let limits = Limits {
            connect: timeout + Duration::from_secs(1),
            read: timeout + Duration::from_secs(1),
            max_body: MAX_PAGE_BYTES,
        };
        let client = crate::client::build(kubeconfig, limits)
            .await
            .map_err(ClusterError::Client)?;
        let api: Api<Node> = Api::all(client);
        // Rows, not Node objects, are kept between pages: memory is one page plus a small row
        // per node.
        let mut types = BTreeSet::new();
        let mut rows = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let lp = ListParams {
                limit: Some(PAGE_SIZE),
                continue_token: token.take(),
                ..ListParams::default()
            };
            let page = match tokio::time::timeout(timeout, api.list(&lp)).await {
                Err(_) => return Err(ClusterError::Timeout { timeout }),
                Ok(Err(e)) if crate::client::is_too_large(&e) => {
                    return Err(ClusterError::TooLarge {
                        max: MAX_PAGE_BYTES,
                        source: e,
                    });
                }
                Ok(Err(e)) => return Err(ClusterError::List(e)),
                Ok(Ok(page)) => page,
            };
            let part = view(&page.items);
            types.extend(part.types);
            rows.extend(part.nodes);
            match page.metadata.continue_ {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => {
                    rows.sort_by(|a, b| a.name.cmp(&b.name));
                    return Ok(ClusterView {
                        schema: SCHEMA,
                        types: types.into_iter().collect(),
                        nodes: rows,
                    });
                }
            }
        }
        Err(ClusterError::TooManyPages { pages: MAX_PAGES })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_conditions_owned_by_the_agent_count() {
        let node: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n1", "managedFields": [
                {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:status": {"f:conditions": {"k:{\"type\":\"Ready\"}": {}}}}},
                {"manager": "hostready-agent", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:status": {"f:conditions": {"k:{\"type\":\"LonghornReady\"}": {".": {}, "f:status": {}}}}}}
            ]},
            "status": {"conditions": [
                {"type": "Ready", "status": "True"},
                {"type": "LonghornReady", "status": "False", "reason": "ExecutableMissing", "message": "exe.iscsiadm fail"}
            ]}
        }))
        .unwrap();
        let v = view(&[node]);
        assert_eq!(v.types, ["LonghornReady"]);
        assert_eq!(
            v.nodes[0].conditions["LonghornReady"].reason,
            "ExecutableMissing"
        );
        assert!(!v.all_ready());
    }
}
