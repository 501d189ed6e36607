//! Longhorn's cluster-level preflight items (`longhornctl check preflight`): CoreDNS replicas,
//! and each Node's `hugepages-2Mi` capacity against what the v2 data engine needs.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde::Serialize;

/// The v2 data engine's need: 1024 pages of 2 MiB (the `longhorn-v2` profile's hugepages
/// requirement; shared/reference/longhorn-host-checks.md).
pub const V2_HUGEPAGES_BYTES: u64 = 1024 * 2 * 1024 * 1024;

/// The condition the agent publishes for the `longhorn-v2` profile.
pub const V2_CONDITION: &str = "LonghornV2Ready";

/// longhornctl warns below this many CoreDNS replicas.
pub const COREDNS_MIN_REPLICAS: i32 = 2;

/// The label kubeadm, k3s and kube-dns give the cluster DNS Deployment in `kube-system`.
pub const COREDNS_SELECTOR: &str = "k8s-app=kube-dns";

/// Returns the bytes in a Kubernetes quantity (`2Gi`, `1024Mi`, `0`, `2147483648`, `2G`).
/// Written here because k8s-openapi keeps quantities as strings and only these integer forms
/// occur for hugepages; anything else (fractions, exponents, milli) is `None`, never a guess.
pub fn quantity_bytes(q: &Quantity) -> Option<u64> {
    let s = q.0.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match suffix {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// A node whose `hugepages-2Mi` capacity is below the v2 need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hugepages {
    pub node: String,
    /// The node's capacity in bytes (0 when the kubelet reports none).
    pub capacity_bytes: u64,
    pub need_bytes: u64,
    /// The status of the agent's `LonghornV2Ready` condition on this node, when published:
    /// the node is meant for the v2 engine, so the shortfall needs attention.
    pub v2_condition: Option<String>,
    /// True when `v2_condition` is published: then the shortfall needs attention.
    pub attention: bool,
    pub note: String,
}

/// Returns the node's hugepages finding, if its capacity is below [`V2_HUGEPAGES_BYTES`].
/// `v2` is the status of the agent's v2 condition on it. A capacity that cannot be read is
/// reported with the raw text.
pub fn hugepages(node: &Node, v2: Option<&str>) -> Option<Hugepages> {
    let name = node.metadata.name.clone().unwrap_or_default();
    let raw = node
        .status
        .as_ref()
        .and_then(|s| s.capacity.as_ref())
        .and_then(|c| c.get("hugepages-2Mi"));
    let capacity = match raw {
        None => 0,
        Some(q) => match quantity_bytes(q) {
            Some(b) => b,
            None => {
                return Some(Hugepages {
                    node: name,
                    capacity_bytes: 0,
                    need_bytes: V2_HUGEPAGES_BYTES,
                    v2_condition: v2.map(str::to_string),
                    attention: v2.is_some(),
                    note: format!(
                        "hugepages-2Mi capacity {:?} is not a quantity hostready reads",
                        q.0
                    ),
                });
            }
        },
    };
    if capacity >= V2_HUGEPAGES_BYTES {
        return None;
    }
    let have = format!("{} MiB", capacity >> 20);
    let note = match v2 {
        Some("True") => format!(
            "the agent finds enough 2 MiB pages on the host, but the kubelet reports {have}: \
             pages reserved after the kubelet started; restart the kubelet"
        ),
        Some(_) => format!(
            "kubelet reports {have} of hugepages-2Mi; Longhorn's v2 engine needs 2048 MiB \
             (vm.nr_hugepages=1024, then restart the kubelet)"
        ),
        None => format!(
            "kubelet reports {have} of hugepages-2Mi; only Longhorn's v2 engine needs 2048 MiB"
        ),
    };
    Some(Hugepages {
        node: name,
        capacity_bytes: capacity,
        need_bytes: V2_HUGEPAGES_BYTES,
        v2_condition: v2.map(str::to_string),
        attention: v2.is_some(),
        note,
    })
}

/// The cluster DNS Deployment and its replicas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CoreDns {
    /// `kube-system/<name>` of each Deployment labelled `k8s-app=kube-dns`.
    pub deployments: Vec<String>,
    /// The desired replicas summed over them (`spec.replicas`, 1 when unset as the API says).
    pub replicas: i32,
    /// Below [`COREDNS_MIN_REPLICAS`] (none found counts as 0, but is not attention: the
    /// cluster may run another DNS).
    pub attention: bool,
    pub note: String,
}

/// Returns the CoreDNS item from the Deployments labelled [`COREDNS_SELECTOR`].
pub fn coredns(deployments: &[Deployment]) -> CoreDns {
    let names: Vec<String> = deployments
        .iter()
        .map(|d| {
            format!(
                "{}/{}",
                d.metadata.namespace.as_deref().unwrap_or_default(),
                d.metadata.name.as_deref().unwrap_or_default()
            )
        })
        .collect();
    let replicas: i32 = deployments
        .iter()
        .map(|d| d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1))
        .sum();
    let (attention, note) = if names.is_empty() {
        (
            false,
            format!(
                "no Deployment labelled {COREDNS_SELECTOR} in kube-system: cluster DNS not checked"
            ),
        )
    } else if replicas < COREDNS_MIN_REPLICAS {
        (
            true,
            format!(
                "{replicas} CoreDNS replica; Longhorn (longhornctl) wants at least {COREDNS_MIN_REPLICAS}: \
                 kubectl -n kube-system scale deployment/{} --replicas=2",
                deployments[0].metadata.name.as_deref().unwrap_or_default()
            ),
        )
    } else {
        (false, format!("{replicas} CoreDNS replicas"))
    };
    CoreDns {
        deployments: names,
        replicas,
        attention,
        note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_in_the_forms_kubelets_write() {
        for (q, b) in [
            ("0", Some(0)),
            ("2Gi", Some(2 << 30)),
            ("1024Mi", Some(1 << 30)),
            ("2147483648", Some(2147483648)),
            ("2G", Some(2_000_000_000)),
            ("1.5Gi", None),
            ("100m", None),
            ("", None),
        ] {
            assert_eq!(quantity_bytes(&Quantity(q.into())), b, "{q}");
        }
    }

    fn node(cap: Option<&str>) -> Node {
        let mut v = serde_json::json!({"metadata": {"name": "n"}, "status": {"capacity": {}}});
        if let Some(c) = cap {
            v["status"]["capacity"]["hugepages-2Mi"] = c.into();
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn hugepages_below_the_v2_need_are_reported_attention_only_for_v2_nodes() {
        assert_eq!(hugepages(&node(Some("2Gi")), Some("True")), None);
        let h = hugepages(&node(Some("1Gi")), Some("True")).unwrap();
        assert!(
            h.attention && h.note.contains("restart the kubelet"),
            "{h:?}"
        );
        let h = hugepages(&node(None), None).unwrap();
        assert!(!h.attention);
        assert_eq!(h.capacity_bytes, 0);
    }

    #[test]
    fn one_coredns_replica_is_warned() {
        let d = |r: i32| -> Deployment {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "coredns", "namespace": "kube-system"},
                "spec": {"replicas": r, "selector": {}, "template": {}}
            }))
            .unwrap()
        };
        assert!(coredns(&[d(1)]).attention);
        assert!(!coredns(&[d(2)]).attention);
        assert!(!coredns(&[]).attention);
    }
}
