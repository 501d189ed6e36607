//! `hostready cluster`'s audit end to end on a real kube-apiserver (`scripts/kube-testenv`; no
//! kubelet, no controllers: Nodes, DaemonSets, Deployments and Pods with `spec.nodeName` are
//! created through the API, node conditions applied as the agent's field manager).

// Tests read this machine's files directly, not a host's root.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::Command;

use hostready_testkit::kube_testenv::KubeTestenv;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, ServiceAccount};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use util::hostready;

mod util;

/// Runs `hostready cluster ARGS --request-timeout 20s --kubeconfig KUBECONFIG` to its end.
fn cluster(kubeconfig: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> std::process::Output {
    hostready()
        .arg("cluster")
        .args(args)
        .args(["--request-timeout", "20s", "--kubeconfig"])
        .arg(kubeconfig)
        .output()
        .unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn client(kubeconfig: &Path) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    kube::Client::try_from(cfg).unwrap()
}

fn obj<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap()
}

/// Applies hostready conditions to `node`'s status as the agent's field manager, with
/// heartbeats at `heartbeat`, and `capacity` as the node's status capacity.
async fn agent_conditions(c: &kube::Client, node: &str, conds: &[(&str, &str)], heartbeat: &str) {
    let nodes: Api<Node> = Api::all(c.clone());
    let conds: Vec<Value> = conds
        .iter()
        .map(|(t, s)| {
            json!({"type": t, "status": s, "reason": "Test", "message": "m",
                   "lastHeartbeatTime": heartbeat, "lastTransitionTime": heartbeat})
        })
        .collect();
    let patch = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node},
                       "status": {"conditions": conds}});
    apply_status(&nodes, node, "hostready-agent", &patch).await;
}

/// A forced server-side apply of `patch` to `name`'s status as the field manager `manager`.
async fn apply_status(nodes: &Api<Node>, name: &str, manager: &str, patch: &Value) {
    nodes
        .patch_status(
            name,
            &PatchParams::apply(manager).force(),
            &Patch::Apply(patch),
        )
        .await
        .unwrap();
}

async fn node(c: &kube::Client, name: &str, hugepages: &str) {
    let nodes: Api<Node> = Api::all(c.clone());
    nodes
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": name}})),
        )
        .await
        .unwrap();
    // Capacity is status: written as the kubelet would, by its own field manager.
    let patch = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
        "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110", "hugepages-2Mi": hugepages}}});
    apply_status(&nodes, name, "kubelet", &patch).await;
}

async fn namespace(c: &kube::Client, ns: &str) {
    let nss: Api<Namespace> = Api::all(c.clone());
    if nss.get_opt(ns).await.unwrap().is_none() {
        nss.create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": ns}})),
        )
        .await
        .unwrap();
    }
    // No controller-manager creates the default ServiceAccount pods are admitted with.
    let sas: Api<ServiceAccount> = Api::namespaced(c.clone(), ns);
    sas.create(
        &PostParams::default(),
        &obj(json!({"metadata": {"name": "default"}})),
    )
    .await
    .unwrap();
}

/// The cluster of the issue: Longhorn v1.7.2's manager privileged without a memory limit, a
/// fresh node, a node whose agent stopped an hour ago, a v2 node without enough hugepages in
/// its capacity, CoreDNS with one replica, and a namespace whose LimitRange covers its pods.
async fn seed(kubeconfig: &Path) {
    let c = client(kubeconfig).await;
    let now = k8s_openapi::chrono::Utc::now();
    let fresh = (now - k8s_openapi::chrono::Duration::seconds(30))
        .to_rfc3339_opts(k8s_openapi::chrono::SecondsFormat::Secs, true);
    let old = (now - k8s_openapi::chrono::Duration::hours(1))
        .to_rfc3339_opts(k8s_openapi::chrono::SecondsFormat::Secs, true);
    node(&c, "node-ok", "2Gi").await;
    agent_conditions(&c, "node-ok", &[("LonghornReady", "True")], &fresh).await;
    node(&c, "node-stale", "2Gi").await;
    agent_conditions(&c, "node-stale", &[("LonghornReady", "True")], &old).await;
    node(&c, "node-v2", "1Gi").await;
    agent_conditions(
        &c,
        "node-v2",
        &[("LonghornReady", "True"), ("LonghornV2Ready", "True")],
        &fresh,
    )
    .await;

    namespace(&c, "longhorn-system").await;
    let dss: Api<DaemonSet> = Api::namespaced(c.clone(), "longhorn-system");
    let manager = json!({"name": "longhorn-manager", "image": "longhornio/longhorn-manager:v1.7.2",
        "securityContext": {"privileged": true},
        "volumeMounts": [{"name": "host", "mountPath": "/host"}]});
    let ds = dss
        .create(&PostParams::default(), &obj(json!({
            "metadata": {"name": "longhorn-manager", "labels": {"app": "longhorn-manager"}},
            "spec": {"selector": {"matchLabels": {"app": "longhorn-manager"}},
                     "template": {"metadata": {"labels": {"app": "longhorn-manager"}},
                                  "spec": {"containers": [manager.clone()],
                                           "volumes": [{"name": "host", "hostPath": {"path": "/"}}]}}}})))
        .await
        .unwrap();
    let uid = ds.metadata.uid.unwrap();
    let pods: Api<Pod> = Api::namespaced(c.clone(), "longhorn-system");
    for n in ["node-ok", "node-stale", "node-v2"] {
        pods.create(&PostParams::default(), &obj(json!({
            "metadata": {"name": format!("longhorn-manager-{n}"), "labels": {"app": "longhorn-manager"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "longhorn-manager",
                                     "uid": uid, "controller": true}]},
            "spec": {"nodeName": n, "containers": [manager.clone()],
                     "volumes": [{"name": "host", "hostPath": {"path": "/"}}]}})))
            .await
            .unwrap();
    }
    // An ordinary pod without a limit: listed, after the privileged one.
    namespace(&c, "web").await;
    let web: Api<Pod> = Api::namespaced(c.clone(), "web");
    web.create(
        &PostParams::default(),
        &obj(json!({"metadata": {"name": "shop"},
        "spec": {"nodeName": "node-ok", "containers": [{"name": "app", "image": "nginx:1.27"}]}})),
    )
    .await
    .unwrap();

    let deps: Api<Deployment> = Api::namespaced(c.clone(), "kube-system");
    deps.create(&PostParams::default(), &obj(json!({
        "metadata": {"name": "coredns", "labels": {"k8s-app": "kube-dns"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
                 "template": {"metadata": {"labels": {"k8s-app": "kube-dns"}},
                              "spec": {"containers": [{"name": "coredns", "image": "registry.k8s.io/coredns/coredns:v1.11.3",
                                                       "resources": {"limits": {"memory": "170Mi"}}}]}}}})))
        .await
        .unwrap();
}

#[test]
fn the_audit_finds_what_the_issue_names() {
    let env = KubeTestenv::up();
    rt().block_on(seed(&env.kubeconfig));
    let kc = env.kubeconfig.to_str().unwrap();

    let out = cluster(kc, &["-o", "json"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let a = &doc["audit"];
    assert_eq!(a["unreadable"], json!([]), "{a:#}");

    // Stale: only the node whose heartbeat is an hour old, with how long.
    let stale = a["stale"].as_array().unwrap();
    assert_eq!(stale.len(), 1, "{a:#}");
    assert_eq!(stale[0]["node"], "node-stale");
    assert_eq!(stale[0]["why"], "heartbeat");
    let age = stale[0]["age_seconds"].as_u64().unwrap();
    assert!((3590..3700).contains(&age), "{age}");

    // Memory limits: the privileged hostPath manager first, with the fix; the web pod after.
    let lim = a["memory_limits"].as_array().unwrap();
    assert_eq!(lim.len(), 2, "{a:#}");
    assert_eq!(lim[0]["owner_kind"], "DaemonSet");
    assert_eq!(lim[0]["owner_name"], "longhorn-manager");
    assert_eq!(lim[0]["pods"], 3);
    assert_eq!(
        (&lim[0]["privileged"], &lim[0]["host_path"]),
        (&json!(true), &json!(true))
    );
    let fix = lim[0]["fix"].as_str().unwrap();
    assert!(
        fix.starts_with("kubectl -n longhorn-system set resources daemonset/longhorn-manager -c longhorn-manager --limits=memory="),
        "{fix}"
    );
    assert_eq!(
        (&lim[1]["namespace"], &lim[1]["owner_kind"]),
        (&json!("web"), &json!("Pod"))
    );

    // Known issues: v1.7.2 has the rpm -q pile-up, with its link and fixed versions.
    let aff = a["known_issues"]["affecting"].as_array().unwrap();
    assert_eq!(aff.len(), 1, "{a:#}");
    assert_eq!(aff[0]["id"], "longhorn.package-check-pileup");
    assert_eq!(aff[0]["version"], "v1.7.2");
    assert_eq!(aff[0]["fixed_in"], json!(["v1.7.3", "v1.8.0"]));
    assert!(
        aff[0]["links"]
            .as_array()
            .unwrap()
            .contains(&json!("https://github.com/longhorn/longhorn/issues/10019"))
    );

    // Preflight: one CoreDNS replica warned; node-v2's 1 GiB of hugepages against 2 GiB.
    assert_eq!(a["coredns"]["replicas"], 1);
    assert_eq!(a["coredns"]["attention"], true);
    let hp = a["hugepages"].as_array().unwrap();
    assert_eq!(hp.len(), 1, "{a:#}");
    assert_eq!(hp[0]["node"], "node-v2");
    assert_eq!(hp[0]["capacity_bytes"], 1u64 << 30);
    assert_eq!(hp[0]["attention"], true);
    assert!(
        hp[0]["note"]
            .as_str()
            .unwrap()
            .contains("restart the kubelet")
    );

    // The table says the same, the risky container first.
    let out = cluster(kc, &[]);
    assert_eq!(out.status.code(), Some(1));
    let table = String::from_utf8(out.stdout).unwrap();
    for want in [
        "node-stale  hostready conditions last heartbeated 1h",
        "! longhorn-system/DaemonSet longhorn-manager longhorn-manager [privileged, hostPath], 3 pods",
        "longhorn v1.7.2 (longhorn-system/DaemonSet/longhorn-manager): longhorn.package-check-pileup",
        "! CoreDNS: 1 CoreDNS replica",
        "! hugepages-2Mi on node-v2",
    ] {
        assert!(table.contains(want), "{want:?} not in:\n{table}");
    }
    let risky = table.find("! longhorn-system/DaemonSet").unwrap();
    let plain = table.find("- web/Pod shop").unwrap();
    assert!(risky < plain, "{table}");

    // -n limits the pod audit; -l the nodes; an absent --context is a clear error (exit 2).
    let out = hostready()
        .args([
            "cluster",
            "-o",
            "json",
            "-n",
            "web",
            "-l",
            "kubernetes.io/hostname=none",
            "--kubeconfig",
            kc,
        ])
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["nodes"], json!([]));
    assert_eq!(
        doc["audit"]["memory_limits"].as_array().unwrap().len(),
        1,
        "{doc:#}"
    );
    assert_eq!(doc["audit"]["known_issues"]["affecting"], json!([]));
    let out = hostready()
        .args(["cluster", "--context", "nope", "--kubeconfig", kc])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("nope"), "{err}");

    placement_and_host_processes(&env.kubeconfig);
}

/// Where the agent's DaemonSet runs decides which nodes without conditions are stale: its
/// nodeSelector, its required node affinity, and the nodes' taints against its tolerations
/// (and the DaemonSet controller's own). And a node whose HostProcessesHealthy is False is
/// listed with since when, in JSON and beside the condition in the table.
fn placement_and_host_processes(kubeconfig: &Path) {
    let kc = kubeconfig.to_str().unwrap();
    rt().block_on(async {
        let c = client(kubeconfig).await;
        namespace(&c, "hostready").await;
        let dss: Api<DaemonSet> = Api::namespaced(c.clone(), "hostready");
        dss.create(&PostParams::default(), &obj(json!({
            "metadata": {"name": "hostready-agent", "labels": {"app.kubernetes.io/name": "hostready-agent"}},
            "spec": {"selector": {"matchLabels": {"app": "hostready-agent"}},
                     "template": {"metadata": {"labels": {"app": "hostready-agent"}},
                                  "spec": {"nodeSelector": {"kubernetes.io/os": "linux"},
                                           "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                                               "nodeSelectorTerms": [{"matchExpressions": [
                                                   {"key": "role", "operator": "NotIn", "values": ["edge"]}]}]}}},
                                           // No kubelet here: every node keeps the not-ready taint the
                                           // API server gives a new one (the chart's agent tolerates
                                           // every taint).
                                           "tolerations": [{"key": "storage", "operator": "Exists", "effect": "NoSchedule"},
                                                           {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoSchedule"}],
                                           "containers": [{"name": "agent", "image": "hostready:test",
                                                           "resources": {"limits": {"memory": "48Mi"}}}]}}}})))
            .await
            .unwrap();
        let nodes: Api<Node> = Api::all(c.clone());
        let linux = json!({"kubernetes.io/os": "linux"});
        for (name, labels, taints) in [
            ("bare-plain", linux.clone(), json!([])),
            ("bare-tainted", linux.clone(), json!([{"key": "gpu", "value": "yes", "effect": "NoSchedule"}])),
            ("bare-evicting", linux.clone(), json!([{"key": "gpu", "value": "yes", "effect": "NoExecute"}])),
            ("bare-tolerated", linux.clone(), json!([{"key": "storage", "value": "only", "effect": "NoSchedule"},
                                                     {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}])),
            ("bare-preferred", linux.clone(), json!([{"key": "gpu", "value": "yes", "effect": "PreferNoSchedule"}])),
            ("bare-edge", json!({"kubernetes.io/os": "linux", "role": "edge"}), json!([])),
            ("bare-windows", json!({"kubernetes.io/os": "windows"}), json!([])),
        ] {
            nodes
                .create(&PostParams::default(), &obj(json!({
                    "metadata": {"name": name, "labels": labels}, "spec": {"taints": taints}})))
                .await
                .unwrap();
        }
        // node-ok's watch turned False twelve minutes ago (the apply names every condition the
        // agent owns there: what it leaves out, the API server removes).
        let now = k8s_openapi::chrono::Utc::now();
        let t = |d: k8s_openapi::chrono::Duration| {
            (now - d).to_rfc3339_opts(k8s_openapi::chrono::SecondsFormat::Secs, true)
        };
        let patch = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-ok"},
            "status": {"conditions": [
                {"type": "LonghornReady", "status": "True", "reason": "Test", "message": "m",
                 "lastHeartbeatTime": t(k8s_openapi::chrono::Duration::seconds(5)),
                 "lastTransitionTime": t(k8s_openapi::chrono::Duration::hours(2))},
                {"type": "HostProcessesHealthy", "status": "False", "reason": "ProcessPileUp",
                 "message": "pile of at least 200 × `rpm -q iscsi-initiator-utils`",
                 "lastHeartbeatTime": t(k8s_openapi::chrono::Duration::seconds(5)),
                 "lastTransitionTime": t(k8s_openapi::chrono::Duration::minutes(12))}]}});
        apply_status(&nodes, "node-ok", "hostready-agent", &patch).await;
    });
    // The nodes without conditions are judged once older than --stale-after.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let out = cluster(kc, &["-o", "json", "--stale-after", "2s"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let a = &doc["audit"];
    assert_eq!(
        a["scope"]["daemonset"], "hostready/hostready-agent",
        "{a:#}"
    );
    let mut flagged: Vec<&str> = a["stale"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["why"] == "no_conditions")
        .map(|s| s["node"].as_str().unwrap())
        .collect();
    flagged.sort_unstable();
    assert_eq!(
        flagged,
        ["bare-plain", "bare-preferred", "bare-tolerated"],
        "a NoSchedule or NoExecute taint not tolerated, the affinity and the nodeSelector keep the agent away; PreferNoSchedule and tolerated taints do not: {a:#}"
    );
    let hp = doc["host_processes"].as_array().unwrap();
    assert_eq!(hp.len(), 1, "{doc:#}");
    assert_eq!(
        (&hp[0]["node"], &hp[0]["reason"]),
        (&json!("node-ok"), &json!("ProcessPileUp"))
    );
    let age = hp[0]["age_seconds"].as_u64().unwrap();
    assert!((720..800).contains(&age), "{age}");

    let out = cluster(kc, &[]);
    let table = String::from_utf8(out.stdout).unwrap();
    for want in [
        "False (ProcessPileUp, 12m",
        "node-ok HostProcessesHealthy=False ProcessPileUp for 12m",
    ] {
        assert!(table.contains(want), "{want:?} not in:\n{table}");
    }
}

/// Creates `items` through `create`, 64 requests in flight at a time.
async fn create_all<K>(api: Api<K>, items: Vec<K>)
where
    K: kube::Resource
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for item in items {
        if set.len() >= 64 {
            set.join_next().await.unwrap().unwrap();
        }
        let api = api.clone();
        set.spawn(async move {
            api.create(&PostParams::default(), &item).await.unwrap();
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
}

/// The figures in docs/cluster.md: 1,000 Nodes and 10,000 Pods, `hostready cluster -o json`'s
/// wall time and peak RSS under a real memory cgroup (256 MiB). A measurement, not a pass/fail
/// on time; the memory cgroup's limit is the bound held.
#[test]
#[ignore = "a measurement for docs/cluster.md (creates 11,000 objects): run with --ignored"]
fn scale_1000_nodes_10000_pods() {
    let env = KubeTestenv::up();
    let kc = env.kubeconfig.clone();
    let created = std::time::Instant::now();
    rt().block_on(async {
            let c = client(&kc).await;
            let nodes: Vec<Node> = (0..1000)
                .map(|i| {
                    obj(json!({"metadata": {"name": format!("scale-{i:04}"),
                        "labels": {"kubernetes.io/hostname": format!("scale-{i:04}"), "topology.kubernetes.io/zone": "z1"}}}))
                })
                .collect();
            create_all(Api::<Node>::all(c.clone()), nodes).await;
            namespace(&c, "scale").await;
            let dss: Api<DaemonSet> = Api::namespaced(c.clone(), "scale");
            let ds = dss
                .create(&PostParams::default(), &obj(json!({
                    "metadata": {"name": "scale-ds"},
                    "spec": {"selector": {"matchLabels": {"app": "s"}},
                             "template": {"metadata": {"labels": {"app": "s"}},
                                          "spec": {"containers": [{"name": "c", "image": "longhornio/longhorn-manager:v1.7.2"}]}}}})))
                .await
                .unwrap();
            let uid = ds.metadata.uid.unwrap();
            let pods: Vec<Pod> = (0..10_000)
                .map(|i| {
                    obj(json!({"metadata": {"name": format!("p-{i:05}"), "labels": {"app": "s", "i": i.to_string()},
                        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "scale-ds", "uid": uid, "controller": true}]},
                        "spec": {"nodeName": format!("scale-{:04}", i % 1000),
                                 "containers": [{"name": "c", "image": "longhornio/longhorn-manager:v1.7.2",
                                                 "env": [{"name": "A", "value": "x".repeat(200)}]},
                                                {"name": "sidecar", "image": "busybox:1.36", "resources": {"limits": {"memory": "64Mi"}}}]}}))
                })
                .collect();
            create_all(Api::<Pod>::namespaced(c.clone(), "scale"), pods).await;
        });
    eprintln!(
        "created 1,000 Nodes and 10,000 Pods in {:?}",
        created.elapsed()
    );
    // HOSTREADY_SCALE_BIN measures another build of the binary (the release one, for
    // docs/cluster.md) with this debug harness.
    let bin = std::env::var_os("HOSTREADY_SCALE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_hostready").into());
    eprintln!("measuring {}", bin.display());
    let cg = hostready_testkit::memcg::MemCgroup::new(256 << 20);
    for _ in 0..3 {
        let mut cmd = Command::new(&bin);
        cmd.args([
            "cluster",
            "-o",
            "json",
            "--request-timeout",
            "30s",
            "--kubeconfig",
        ])
        .arg(&kc);
        let start = std::time::Instant::now();
        let m = cg.run_command(&mut cmd);
        let took = start.elapsed();
        let err = String::from_utf8_lossy(&m.output.stderr);
        assert_eq!(m.oom_kills, 0, "killed by the memory limit: {err}");
        assert_eq!(m.exit_code, Some(1), "{err}");
        let doc: Value = serde_json::from_slice(&m.output.stdout).unwrap();
        assert_eq!(doc["nodes"].as_array().unwrap().len(), 1000);
        assert_eq!(doc["audit"]["containers"], 20_000);
        assert_eq!(doc["audit"]["memory_limits"][0]["pods"], 10_000);
        eprintln!(
            "hostready cluster: {took:?}, peak RSS {:.1} MiB",
            m.max_rss_mib()
        );
    }
}

/// The read-only ClusterRole docs/cluster.md gives, parsed from the doc itself so the two
/// cannot drift apart.
fn documented_cluster_role() -> Value {
    let doc = include_str!("../../../docs/cluster.md");
    let start = doc
        .find("```yaml\napiVersion: rbac.authorization.k8s.io/v1")
        .expect("docs/cluster.md has the ClusterRole");
    let body = &doc[start + "```yaml\n".len()..];
    let end = body.find("```").unwrap();
    serde_yaml_ng::from_str(&body[..end]).unwrap()
}

/// A token for ServiceAccount `ns/name`, bound by a ClusterRoleBinding to ClusterRole `role`.
async fn viewer_token(c: &kube::Client, ns: &str, name: &str, role: Value) -> String {
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
    let sas: Api<ServiceAccount> = Api::namespaced(c.clone(), ns);
    sas.create(
        &PostParams::default(),
        &obj(json!({"metadata": {"name": name}})),
    )
    .await
    .unwrap();
    let role_name = role["metadata"]["name"].as_str().unwrap().to_string();
    Api::<ClusterRole>::all(c.clone())
        .create(&PostParams::default(), &obj(role))
        .await
        .unwrap();
    Api::<ClusterRoleBinding>::all(c.clone())
        .create(&PostParams::default(), &obj(json!({
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role_name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}]})))
        .await
        .unwrap();
    let req = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                     "spec": {"expirationSeconds": 3600}});
    let tr: Value = sas
        .create_subresource(
            "token",
            name,
            &PostParams::default(),
            serde_json::to_vec(&req).unwrap(),
        )
        .await
        .unwrap();
    tr["status"]["token"].as_str().unwrap().to_string()
}

/// A copy of the admin kubeconfig with `token` instead of the admin's.
fn kubeconfig_with(admin: &Path, dir: &Path, token: &str) -> PathBuf {
    let text: Vec<String> = std::fs::read_to_string(admin)
        .unwrap()
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("token:") {
                format!("    token: {token}")
            } else {
                l.to_string()
            }
        })
        .collect();
    let p = dir.join(format!("kubeconfig-{}", &token[token.len() - 8..]));
    std::fs::write(&p, text.join("\n") + "\n").unwrap();
    p
}

/// The documented RBAC is enough (a clean cluster exits 0 with nothing unreadable); without
/// `pods` the audit names the list it could not read and exits 2, the rest still shown.
#[test]
fn the_documented_rbac_reads_everything_and_a_forbidden_list_is_named() {
    let env = KubeTestenv::up();
    let dir = tempfile::tempdir().unwrap();
    let (full, no_pods) = rt().block_on(async {
        let c = client(&env.kubeconfig).await;
        let now = k8s_openapi::chrono::Utc::now()
            .to_rfc3339_opts(k8s_openapi::chrono::SecondsFormat::Secs, true);
        node(&c, "rbac-a", "2Gi").await;
        agent_conditions(&c, "rbac-a", &[("LonghornReady", "True")], &now).await;
        namespace(&c, "viewers").await;
        let full = viewer_token(&c, "viewers", "viewer", documented_cluster_role()).await;
        let mut role = documented_cluster_role();
        role["metadata"]["name"] = json!("no-pods");
        role["rules"][0]["resources"] = json!(["nodes", "limitranges"]);
        let no_pods = viewer_token(&c, "viewers", "no-pods", role).await;
        (full, no_pods)
    });
    let run = |token: &str| {
        let kc = kubeconfig_with(&env.kubeconfig, dir.path(), token);
        let out = cluster(&kc, &["-o", "json"]);
        let doc: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code(), doc)
    };
    let (code, doc) = run(&full);
    assert_eq!(doc["audit"]["unreadable"], json!([]), "{doc:#}");
    assert_eq!(code, Some(0), "{doc:#}");
    let (code, doc) = run(&no_pods);
    assert_eq!(code, Some(2), "{doc:#}");
    let unreadable = doc["audit"]["unreadable"].as_array().unwrap();
    assert_eq!(unreadable.len(), 1, "{doc:#}");
    assert_eq!(unreadable[0]["what"], "pods");
    assert!(
        unreadable[0]["error"]
            .as_str()
            .unwrap()
            .contains("forbidden"),
        "{doc:#}"
    );
    assert_eq!(
        doc["nodes"].as_array().unwrap().len(),
        1,
        "the rest still shown"
    );
}
