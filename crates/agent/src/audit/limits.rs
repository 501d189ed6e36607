//! The memory-limits audit (the incident's first lesson: one pod without a memory limit took a
//! node down). Every container without `resources.limits.memory` is listed, grouped by owning
//! workload and container; privileged, `hostPID` and hostPath-mounting ones first, since those
//! can take a node down. A namespace whose LimitRange gives containers a default memory limit
//! makes a container without one fine (new pods get the default at admission).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Container, LimitRange, Pod};
use serde::Serialize;

/// One workload's container without a memory limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NoLimit {
    pub namespace: String,
    /// `DaemonSet`, `Deployment`, `StatefulSet`, `Job`, `ReplicaSet` (no Deployment above it),
    /// `Pod` (no controller), or another controller's kind.
    pub owner_kind: String,
    pub owner_name: String,
    pub container: String,
    /// An init container.
    pub init: bool,
    /// How many pods run it.
    pub pods: u32,
    pub privileged: bool,
    pub host_pid: bool,
    /// The container mounts a hostPath volume.
    pub host_path: bool,
    /// The namespace's LimitRange default memory limit, when it has one: then this is fine
    /// (pods created before the LimitRange keep running without a limit until recreated).
    pub limit_range_default: Option<String>,
    /// Whether this needs attention (no LimitRange default).
    pub attention: bool,
    /// The command or chart value that sets the limit.
    pub fix: String,
}

impl NoLimit {
    /// Privileged, hostPID or hostPath: able to take the node down.
    pub fn risky(&self) -> bool {
        self.privileged || self.host_pid || self.host_path
    }
}

/// The key pods are grouped under.
type Key = (String, String, String, String, bool);

#[derive(Debug, Default)]
struct Group {
    pods: u32,
    privileged: bool,
    host_pid: bool,
    host_path: bool,
    helm: bool,
}

/// Collects pods page by page. Memory: one small group per workload container without a
/// limit, plus the names of the ReplicaSets to resolve.
#[derive(Debug, Default)]
pub struct Audit {
    groups: BTreeMap<Key, Group>,
    /// How many containers were looked at.
    pub containers: u64,
}

fn has_memory_limit(c: &Container) -> bool {
    c.resources
        .as_ref()
        .and_then(|r| r.limits.as_ref())
        .is_some_and(|l| l.contains_key("memory"))
}

impl Audit {
    /// Adds one pod.
    pub fn add(&mut self, pod: &Pod) {
        let Some(spec) = &pod.spec else { return };
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let (kind, name) = pod
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true))
            .map(|o| (o.kind.clone(), o.name.clone()))
            .unwrap_or_else(|| {
                (
                    "Pod".to_string(),
                    pod.metadata.name.clone().unwrap_or_default(),
                )
            });
        let helm = pod.metadata.labels.as_ref().is_some_and(|l| {
            l.contains_key("helm.sh/chart")
                || l.get("app.kubernetes.io/managed-by")
                    .is_some_and(|v| v == "Helm")
        });
        let host_paths: BTreeSet<&str> = spec
            .volumes
            .iter()
            .flatten()
            .filter(|v| v.host_path.is_some())
            .map(|v| v.name.as_str())
            .collect();
        let host_pid = spec.host_pid == Some(true);
        let all = spec
            .containers
            .iter()
            .map(|c| (c, false))
            .chain(spec.init_containers.iter().flatten().map(|c| (c, true)));
        for (c, init) in all {
            self.containers += 1;
            if has_memory_limit(c) {
                continue;
            }
            let g = self
                .groups
                .entry((ns.clone(), kind.clone(), name.clone(), c.name.clone(), init))
                .or_default();
            g.pods += 1;
            g.host_pid |= host_pid;
            g.helm |= helm;
            g.privileged |= c
                .security_context
                .as_ref()
                .and_then(|s| s.privileged)
                .unwrap_or(false);
            g.host_path |= c
                .volume_mounts
                .iter()
                .flatten()
                .any(|m| host_paths.contains(m.name.as_str()));
        }
    }

    /// The ReplicaSets (namespace, name) whose Deployment is wanted.
    pub fn replica_sets(&self) -> BTreeSet<(String, String)> {
        self.groups
            .keys()
            .filter(|k| k.1 == "ReplicaSet")
            .map(|k| (k.0.clone(), k.2.clone()))
            .collect()
    }

    /// Returns the findings, risky first, with owners resolved through `deployments`
    /// (ReplicaSet → Deployment) and `defaults` (namespace → LimitRange default memory).
    pub fn finish(
        self,
        deployments: &BTreeMap<(String, String), String>,
        defaults: &BTreeMap<String, String>,
    ) -> Vec<NoLimit> {
        // Pods of one Deployment's several ReplicaSets merge into one row.
        let mut merged: BTreeMap<Key, Group> = BTreeMap::new();
        for ((ns, kind, name, container, init), g) in self.groups {
            let (kind, name) = match deployments.get(&(ns.clone(), name.clone())) {
                Some(d) if kind == "ReplicaSet" => ("Deployment".to_string(), d.clone()),
                _ => (kind, name),
            };
            let m = merged.entry((ns, kind, name, container, init)).or_default();
            m.pods += g.pods;
            m.privileged |= g.privileged;
            m.host_pid |= g.host_pid;
            m.host_path |= g.host_path;
            m.helm |= g.helm;
        }
        let mut out: Vec<NoLimit> = merged
            .into_iter()
            .map(
                |((namespace, owner_kind, owner_name, container, init), g)| {
                    let limit_range_default = defaults.get(&namespace).cloned();
                    let fix = fix(&namespace, &owner_kind, &owner_name, &container, g.helm);
                    NoLimit {
                        attention: limit_range_default.is_none(),
                        limit_range_default,
                        namespace,
                        owner_kind,
                        owner_name,
                        container,
                        init,
                        pods: g.pods,
                        privileged: g.privileged,
                        host_pid: g.host_pid,
                        host_path: g.host_path,
                        fix,
                    }
                },
            )
            .collect();
        // Stable: risky first, then by namespace, owner, container (the map's order).
        out.sort_by_key(|n| !n.risky());
        out
    }
}

/// Returns the fix for a container without a memory limit.
fn fix(ns: &str, kind: &str, name: &str, container: &str, helm: bool) -> String {
    let set = |k: &str| {
        format!("kubectl -n {ns} set resources {k}/{name} -c {container} --limits=memory=<size>")
    };
    let base = match kind {
        "DaemonSet" => set("daemonset"),
        "Deployment" => set("deployment"),
        "StatefulSet" => set("statefulset"),
        "Pod" => format!(
            "recreate pod {ns}/{name} with resources.limits.memory set on container {container}"
        ),
        other => format!(
            "set resources.limits.memory on container {container} in the {other} that creates {name}"
        ),
    };
    if ns == "longhorn-system" && name == "longhorn-manager" {
        // Longhorn's chart (as of the versions in the catalogue) has no value for the
        // manager's resources: a kubectl change is undone by the next `helm upgrade`.
        return format!(
            "{base}; installed by Longhorn's Helm chart, which has no resources value for longhorn-manager: \
             keep the limit across upgrades with a Helm --post-renderer (kustomize patch), or a LimitRange \
             with a default memory limit in longhorn-system"
        );
    }
    if helm {
        return format!(
            "{base}; installed by Helm: set the chart's resources value for it, or the next upgrade undoes this"
        );
    }
    base
}

/// Returns the default memory limit a LimitRange gives containers, if any.
pub fn default_memory(lr: &LimitRange) -> Option<String> {
    lr.spec
        .as_ref()?
        .limits
        .iter()
        .filter(|l| l.type_ == "Container")
        .find_map(|l| l.default.as_ref()?.get("memory").map(|q| q.0.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(ns: &str, name: &str, owner: Option<(&str, &str)>, spec: serde_json::Value) -> Pod {
        let mut meta = serde_json::json!({"namespace": ns, "name": name});
        if let Some((k, n)) = owner {
            meta["ownerReferences"] = serde_json::json!([{
                "apiVersion": "apps/v1", "kind": k, "name": n, "uid": "u", "controller": true}]);
        }
        serde_json::from_value(serde_json::json!({"metadata": meta, "spec": spec})).unwrap()
    }

    #[test]
    fn risky_containers_come_first_and_replica_sets_resolve_to_deployments() {
        let mut a = Audit::default();
        a.add(&pod("web", "w-1", Some(("ReplicaSet", "w-abc")), serde_json::json!({
            "containers": [{"name": "app"}, {"name": "ok", "resources": {"limits": {"memory": "1Gi"}}}]})));
        a.add(&pod(
            "web",
            "w-2",
            Some(("ReplicaSet", "w-def")),
            serde_json::json!({
            "containers": [{"name": "app"}]}),
        ));
        a.add(&pod(
            "longhorn-system",
            "m-1",
            Some(("DaemonSet", "longhorn-manager")),
            serde_json::json!({
            "containers": [{"name": "longhorn-manager", "securityContext": {"privileged": true}}]}),
        ));
        a.add(&pod(
            "lr",
            "solo",
            None,
            serde_json::json!({
            "hostPID": true, "containers": [{"name": "c"}]}),
        ));
        assert_eq!(a.containers, 5);
        let rs = a.replica_sets();
        assert_eq!(rs.len(), 2);
        let deps = rs.into_iter().map(|k| (k, "w".to_string())).collect();
        let defaults = [("lr".to_string(), "512Mi".to_string())].into();
        let out = a.finish(&deps, &defaults);
        let rows: Vec<_> = out
            .iter()
            .map(|n| {
                (
                    n.owner_kind.as_str(),
                    n.owner_name.as_str(),
                    n.pods,
                    n.attention,
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("DaemonSet", "longhorn-manager", 1, true),
                ("Pod", "solo", 1, false),
                ("Deployment", "w", 2, true)
            ]
        );
        assert!(out[0].fix.starts_with(
            "kubectl -n longhorn-system set resources daemonset/longhorn-manager -c longhorn-manager --limits=memory="
        ));
        assert_eq!(out[1].limit_range_default.as_deref(), Some("512Mi"));
    }

    #[test]
    fn host_path_counts_only_when_the_container_mounts_it() {
        let mut a = Audit::default();
        a.add(&pod("n", "p", None, serde_json::json!({
            "volumes": [{"name": "host", "hostPath": {"path": "/"}}],
            "containers": [{"name": "mounts", "volumeMounts": [{"name": "host", "mountPath": "/host"}]},
                           {"name": "plain"}]})));
        let out = a.finish(&BTreeMap::new(), &BTreeMap::new());
        assert_eq!(out[0].container, "mounts");
        assert!(out[0].host_path);
        assert!(!out[1].host_path);
    }
}
