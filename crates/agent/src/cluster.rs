//! The cluster-wide view behind `hostready cluster`: every Node and the conditions the agents
//! published on it. A condition counts as the agent's when server-side apply records it as
//! owned by the agent's field manager (`managedFields`), so the kubelet's `Ready` and other
//! controllers' conditions are never mistaken for hostready's, whatever their names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::chrono::{DateTime, Utc};
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
    /// The nodes whose `HostProcessesHealthy` is `False` (a pile, a locked or damaged package
    /// database), by node name, with since when.
    pub host_processes: Vec<HostProblem>,
    /// Stale agents, memory limits, known issues, preflight items (`crate::audit`).
    pub audit: crate::audit::Audit,
}

/// A node where the agent's watch pass found trouble: its `HostProcessesHealthy` condition
/// is `False`, and since when (the condition's `lastTransitionTime`: the pile or the lock has
/// been there at least that long).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostProblem {
    pub node: String,
    /// `ProcessPileUp`, `PackageDatabaseLocked` or `PackageDatabaseCorrupt`.
    pub reason: String,
    /// When the condition turned `False` (RFC 3339), when the API gave a time.
    pub since: Option<String>,
    /// Seconds from `since` to when the view was read.
    pub age_seconds: Option<u64>,
}

/// Returns the nodes of `rows` whose `HostProcessesHealthy` is `False`, with their ages at
/// `now`, in the rows' order.
pub fn host_problems(rows: &[NodeRow], now: DateTime<Utc>) -> Vec<HostProblem> {
    rows.iter()
        .filter_map(|r| {
            let c = r.conditions.get(crate::watch::CONDITION)?;
            if c.status != "False" {
                return None;
            }
            let at = c
                .last_transition
                .as_deref()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc));
            Some(HostProblem {
                node: r.name.clone(),
                reason: c.reason.clone(),
                since: c.last_transition.clone(),
                age_seconds: at.map(|t| u64::try_from((now - t).num_seconds()).unwrap_or(0)),
            })
        })
        .collect()
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
        host_processes: host_problems(&rows, Utc::now()),
        nodes: rows,
        audit: crate::audit::Audit::empty(crate::audit::stale::DEFAULT_STALE_AFTER),
    }
}

/// Nodes asked for per request: a page stays a few megabytes even with large Node objects.
pub const PAGE_SIZE: u32 = 100;

/// Pods asked for per request (a Pod is a few KiB; 250 stay far below [`MAX_PAGE_BYTES`]).
pub const POD_PAGE_SIZE: u32 = 250;

/// The largest response accepted per page. etcd refuses objects over 1.5 MiB, so a page of
/// [`PAGE_SIZE`] real Nodes is far below this; a body past it is refused, not buffered.
pub const MAX_PAGE_BYTES: usize = 16 << 20;

/// More pages than this is not a real cluster (5,000 nodes is Kubernetes' tested limit): an
/// API that keeps answering with a `continue` token is refused.
pub const MAX_PAGES: usize = crate::audit::MAX_PAGES;

/// What `hostready cluster` reads.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    pub kubeconfig: Option<&'a Path>,
    /// The kubeconfig context (`--context`), else the current one.
    pub context: Option<&'a str>,
    /// Per request (connect, answer, whole body).
    pub timeout: Duration,
    /// A label selector for the Nodes (`-l/--selector`).
    pub node_selector: Option<&'a str>,
    /// The namespace the pod audit is limited to (`-n/--namespace`).
    pub namespace: Option<&'a str>,
    /// A label selector for the pods audited (`--pod-selector`).
    pub pod_selector: Option<&'a str>,
    /// A node's newest hostready heartbeat older than this is stale (`--stale-after`).
    pub stale_after: Duration,
}

impl From<crate::audit::PageError> for ClusterError {
    fn from(e: crate::audit::PageError) -> ClusterError {
        use crate::audit::PageError as P;
        match e {
            P::Timeout { timeout } => ClusterError::Timeout { timeout },
            P::TooManyPages { pages } => ClusterError::TooManyPages { pages },
            P::TooLarge { max, source } => ClusterError::TooLarge { max, source },
            P::List(e) => ClusterError::List(e),
        }
    }
}

/// Lists the nodes of the cluster (and, for the audit, DaemonSets, Deployments, ReplicaSets,
/// Pods and LimitRanges) and builds the view. Each request must finish within
/// `options.timeout`; every list is read in pages, each at most [`MAX_PAGE_BYTES`]. Only the
/// node list is essential: another list that cannot be read is named in `audit.unreadable`.
pub fn fetch_with(options: &Options<'_>) -> Result<ClusterView, ClusterError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ClusterError::Runtime)?;
    rt.block_on(fetch_async(options))
}

async fn fetch_async(o: &Options<'_>) -> Result<ClusterView, ClusterError> {
    use crate::audit::{self, Unreadable, each_page, known, limits, preflight, stale};
    use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet};
    use k8s_openapi::api::core::v1::{LimitRange, Pod};

    // The overall deadline below is what fires; the client's own timeouts are a backstop
    // just behind it, so the error is always the same clear one.
    let timeout = o.timeout;
    let limits = Limits {
        connect: timeout + Duration::from_secs(1),
        read: timeout + Duration::from_secs(1),
        max_body: MAX_PAGE_BYTES,
    };
    let client = crate::client::build_in(o.kubeconfig, o.context, limits)
        .await
        .map_err(ClusterError::Client)?;
    let mut audit = audit::Audit::empty(o.stale_after);
    audit.namespace = o.namespace.map(str::to_string);
    let catalogue = known::catalogue().expect("the shipped catalogue is valid (known.rs tests)");
    let mut versions = known::Versions::default();
    let place = |kind: &str, m: &kube::api::ObjectMeta| {
        format!(
            "{}/{kind}/{}",
            m.namespace.as_deref().unwrap_or_default(),
            m.name.as_deref().unwrap_or_default()
        )
    };

    // The nodes first: without them there is no view.
    let api: Api<Node> = Api::all(client.clone());
    let lp = ListParams {
        label_selector: o.node_selector.map(str::to_string),
        ..ListParams::default()
    };
    // Rows, not Node objects, are kept between pages: memory is one page plus a small row
    // per node.
    let mut types = BTreeSet::new();
    let mut rows = Vec::new();
    let now = k8s_openapi::chrono::Utc::now();
    // A node that would be stale is kept with its labels and taints until the agent's
    // DaemonSet says whether the agent should run there: memory is a row per node plus the
    // flagged ones' labels and taints.
    let mut candidates: Vec<(stale::Stale, stale::NodePlace)> = Vec::new();
    each_page(&api, &lp, PAGE_SIZE, timeout, |page| {
        let part = view(&page);
        for (row, node) in part.nodes.into_iter().zip(sorted_by_name(page)) {
            if let Some(s) = stale::check(&row, &node, o.stale_after, now) {
                candidates.push((s, stale::NodePlace::of(&node)));
            }
            let v2 = row
                .conditions
                .get(preflight::V2_CONDITION)
                .map(|c| c.status.as_str());
            if let Some(h) = preflight::hugepages(&node, v2) {
                audit.hugepages.push(h);
            }
            rows.push(row);
        }
        types.extend(part.types);
    })
    .await?;

    // The agent's DaemonSet: which nodes it should run on.
    let ds_api: Api<DaemonSet> = Api::all(client.clone());
    let mut agent_ds: Vec<DaemonSet> = Vec::new();
    let agent_lp = ListParams::default().labels(audit::AGENT_SELECTOR);
    if let Err(e) = each_page(&ds_api, &agent_lp, PAGE_SIZE, timeout, |p| {
        agent_ds.extend(p)
    })
    .await
    {
        audit
            .unreadable
            .push(Unreadable::new("daemonsets (the agent's)", &e));
    }
    let template = |d: &DaemonSet| d.spec.as_ref().and_then(|s| s.template.spec.clone());
    let placement = agent_ds
        .first()
        .map(|d| stale::Placement::of(template(d).as_ref()));
    let selector = placement.as_ref().map(|p| p.node_selector.clone());
    audit.scope = match agent_ds.first() {
        Some(d) => audit::Scope {
            daemonset: Some(format!(
                "{}/{}",
                d.metadata.namespace.as_deref().unwrap_or_default(),
                d.metadata.name.as_deref().unwrap_or_default()
            )),
            node_selector: selector.clone().unwrap_or_default(),
            note: "nodes the agent DaemonSet would run on: its nodeSelector, required node affinity, and the nodes' NoSchedule/NoExecute taints against its tolerations (and the DaemonSet controller's own)"
                .into(),
        },
        None => audit::Scope {
            daemonset: None,
            node_selector: BTreeMap::new(),
            note: format!(
                "no DaemonSet labelled {} readable: the check is based on all nodes",
                audit::AGENT_SELECTOR
            ),
        },
    };
    audit.stale = candidates
        .into_iter()
        .filter(|(s, place)| placement.as_ref().is_none_or(|p| p.judges(s, place)))
        .map(|(s, _)| s)
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    audit.stale.sort_by(|a, b| a.node.cmp(&b.node));
    audit.hugepages.sort_by(|a, b| a.node.cmp(&b.node));

    // Pods: the memory-limits audit and the images running.
    let pods: Api<Pod> = match o.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let plp = ListParams {
        label_selector: o.pod_selector.map(str::to_string),
        ..ListParams::default()
    };
    let mut lim = limits::Audit::default();
    let r = each_page(&pods, &plp, POD_PAGE_SIZE, timeout, |page| {
        for p in &page {
            lim.add(p);
            let owner = p
                .metadata
                .owner_references
                .iter()
                .flatten()
                .find(|r| r.controller == Some(true));
            for c in p.spec.iter().flat_map(|s| {
                s.containers
                    .iter()
                    .chain(s.init_containers.iter().flatten())
            }) {
                if let Some(image) = &c.image {
                    versions.record(&catalogue, image, || match owner {
                        Some(r) => format!(
                            "{}/{}/{}",
                            p.metadata.namespace.as_deref().unwrap_or_default(),
                            r.kind,
                            r.name
                        ),
                        None => place("Pod", &p.metadata),
                    });
                }
            }
        }
    })
    .await;
    if let Err(e) = r {
        audit.unreadable.push(Unreadable::new("pods", &e));
    }

    // Workloads' images too: a DaemonSet whose pods are not (yet) running still names its
    // version.
    let dss: Api<DaemonSet> = match o.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let r = each_page(&dss, &ListParams::default(), PAGE_SIZE, timeout, |page| {
        for d in &page {
            for image in template_images(d.spec.as_ref().map(|s| &s.template)) {
                versions.record(&catalogue, image, || place("DaemonSet", &d.metadata));
            }
        }
    })
    .await;
    if let Err(e) = r {
        audit.unreadable.push(Unreadable::new("daemonsets", &e));
    }
    let deps: Api<Deployment> = match o.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let r = each_page(&deps, &ListParams::default(), PAGE_SIZE, timeout, |page| {
        for d in &page {
            for image in template_images(d.spec.as_ref().map(|s| &s.template)) {
                versions.record(&catalogue, image, || place("Deployment", &d.metadata));
            }
        }
    })
    .await;
    if let Err(e) = r {
        audit.unreadable.push(Unreadable::new("deployments", &e));
    }
    (audit.known_issues.detected, audit.known_issues.affecting) = versions.finish(&catalogue);

    // CoreDNS, always in kube-system whatever `-n` says.
    let dns: Api<Deployment> = Api::namespaced(client.clone(), "kube-system");
    let mut dns_deps = Vec::new();
    let dlp = ListParams::default().labels(preflight::COREDNS_SELECTOR);
    match each_page(&dns, &dlp, PAGE_SIZE, timeout, |p| dns_deps.extend(p)).await {
        Ok(()) => audit.coredns = Some(preflight::coredns(&dns_deps)),
        Err(e) => audit
            .unreadable
            .push(Unreadable::new("deployments (kube-system, CoreDNS)", &e)),
    }

    // ReplicaSet → Deployment, only for the ReplicaSets the audit names.
    let wanted = lim.replica_sets();
    let mut owners = BTreeMap::new();
    if !wanted.is_empty() {
        let rss: Api<ReplicaSet> = match o.namespace {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        };
        let r = each_page(&rss, &ListParams::default(), PAGE_SIZE, timeout, |page| {
            for rs in page {
                let key = (
                    rs.metadata.namespace.clone().unwrap_or_default(),
                    rs.metadata.name.clone().unwrap_or_default(),
                );
                if !wanted.contains(&key) {
                    continue;
                }
                if let Some(d) = rs
                    .metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .find(|r| r.controller == Some(true) && r.kind == "Deployment")
                {
                    owners.insert(key, d.name.clone());
                }
            }
        })
        .await;
        if let Err(e) = r {
            audit.unreadable.push(Unreadable::new("replicasets", &e));
        }
    }

    // LimitRanges: a namespace with a default memory limit makes a container without one fine.
    let lrs: Api<LimitRange> = match o.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let r = each_page(&lrs, &ListParams::default(), PAGE_SIZE, timeout, |page| {
        for lr in page {
            if let Some(m) = limits::default_memory(&lr) {
                audit
                    .limit_range_defaults
                    .insert(lr.metadata.namespace.clone().unwrap_or_default(), m);
            }
        }
    })
    .await;
    if let Err(e) = r {
        audit.unreadable.push(Unreadable::new("limitranges", &e));
    }
    audit.containers = lim.containers;
    audit.memory_limits = lim.finish(&owners, &audit.limit_range_defaults);

    Ok(ClusterView {
        schema: SCHEMA,
        types: types.into_iter().collect(),
        host_processes: host_problems(&rows, now),
        nodes: rows,
        audit,
    })
}

/// [`fetch_with`] for every node and pod, in the current context, with the default
/// `--stale-after`.
pub fn fetch(kubeconfig: Option<&Path>, timeout: Duration) -> Result<ClusterView, ClusterError> {
    fetch_with(&Options {
        kubeconfig,
        context: None,
        timeout,
        node_selector: None,
        namespace: None,
        pod_selector: None,
        stale_after: crate::audit::stale::DEFAULT_STALE_AFTER,
    })
}

/// Returns `nodes` in the order [`view`] gives its rows (by name), so the two zip.
fn sorted_by_name(mut nodes: Vec<Node>) -> Vec<Node> {
    nodes.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    nodes
}

/// The container images of a workload's pod template (DaemonSets and Deployments alike).
fn template_images(
    template: Option<&k8s_openapi::api::core::v1::PodTemplateSpec>,
) -> impl Iterator<Item = &str> {
    template
        .and_then(|t| t.spec.as_ref())
        .into_iter()
        .flat_map(|s| s.containers.iter())
        .filter_map(|c| c.image.as_deref())
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

    /// A pile or a locked database is listed with since when; a healthy or unknown watch,
    /// and another condition that is False, are not.
    #[test]
    fn nodes_with_trouble_on_the_host_are_listed_with_their_age() {
        let node = |name: &str, conds: serde_json::Value| -> Node {
            let types: serde_json::Map<String, serde_json::Value> = conds
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    (
                        format!("k:{{\"type\":\"{}\"}}", c["type"].as_str().unwrap()),
                        serde_json::json!({}),
                    )
                })
                .collect();
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "managedFields": [
                    {"manager": "hostready-agent", "operation": "Apply", "apiVersion": "v1",
                     "fieldsType": "FieldsV1",
                     "fieldsV1": {"f:status": {"f:conditions": types}}}
                ]},
                "status": {"conditions": conds}
            }))
            .unwrap()
        };
        let hph = crate::watch::CONDITION;
        let nodes = [
            node(
                "a",
                serde_json::json!([{"type": hph, "status": "False", "reason": "ProcessPileUp",
                    "lastTransitionTime": "2026-12-01T11:48:00Z"}]),
            ),
            node(
                "b",
                serde_json::json!([{"type": hph, "status": "True", "reason": "AsExpected",
                    "lastTransitionTime": "2026-12-01T09:00:00Z"},
                    {"type": "LonghornReady", "status": "False", "reason": "ExecutableMissing"}]),
            ),
            node(
                "c",
                serde_json::json!([{"type": hph, "status": "False",
                    "reason": "PackageDatabaseLocked", "lastTransitionTime": "2026-12-01T10:00:00Z"}]),
            ),
            node(
                "d",
                serde_json::json!([{"type": hph, "status": "Unknown", "reason": "WatchUnknown"}]),
            ),
            node(
                "e",
                serde_json::json!([{"type": hph, "status": "False", "reason": "ProcessPileUp"}]),
            ),
        ];
        let v = view(&nodes);
        let now: DateTime<Utc> = "2026-12-01T12:00:00Z".parse().unwrap();
        let got = host_problems(&v.nodes, now);
        let short: Vec<(&str, &str, Option<u64>)> = got
            .iter()
            .map(|p| (p.node.as_str(), p.reason.as_str(), p.age_seconds))
            .collect();
        assert_eq!(
            short,
            [
                ("a", "ProcessPileUp", Some(720)),
                ("c", "PackageDatabaseLocked", Some(7200)),
                ("e", "ProcessPileUp", None),
            ]
        );
        assert_eq!(got[0].since.as_deref(), Some("2026-12-01T11:48:00Z"));
        assert_eq!(v.host_processes.len(), 3, "the view lists them too");
    }
}
