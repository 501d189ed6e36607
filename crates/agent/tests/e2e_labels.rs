//! Scheduling labels (issue 15) against a real kube-apiserver (`scripts/kube-testenv`) with
//! every file of `deploy/manifests/` applied (the admission policy included) and the chart's
//! ClusterRole rendered by the genuine helm with `config.schedulingLabels=true`; the agent
//! runs with its ServiceAccount's token bound to a pod on its node, so every write it makes
//! passes the policy:
//!
//! 1. the chart grants `patch` on `nodes` only with the switch on;
//! 2. switch on: `hostready.dev/iscsi=true` and `hostready.dev/nfs-client=true` appear;
//! 3. a status flip (iscsiadm removed) flips `hostready.dev/iscsi` to `false`, and only it;
//! 4. cycles and heartbeats without a flip never write the labels: no apply to the Node object
//!    (the API server's own request counter) and the agent's `managedFields` entry for them
//!    keeps its time — and neither does a restarted agent that finds its labels in place;
//! 5. switch off (a config reload): the agent's labels disappear, and labels others set —
//!    `hostready.dev/site` by a person, `example.com/zone` — stay.
//!
//! One control plane, one test with named steps. It always runs (to leave it out, `--skip` it
//! by name, which the test summary counts).

// Tests build fake hosts and read fixtures on this machine directly.
#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::time::Duration;

use common::*;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

/// The ClusterRole the chart renders (release `hostready`, namespace `hostready-system`), with
/// `extra` helm arguments, rendered by the genuine helm (`scripts/go-tool helm`, cached).
fn chart_cluster_role(extra: &[&str]) -> ClusterRole {
    let mut args = vec!["--show-only", "templates/rbac.yaml"];
    args.extend_from_slice(extra);
    helm::template("hostready", "hostready-system", &args)
        .into_iter()
        .filter(|v| v["kind"] == "ClusterRole")
        .map(|v| serde_yaml_ng::from_value(v).unwrap())
        .next()
        .expect("a ClusterRole in templates/rbac.yaml")
}

/// Returns true if and only if the role lets its subject patch the Node object itself.
fn patches_nodes(role: &ClusterRole) -> bool {
    role.rules.iter().flatten().any(|r| {
        r.resources.iter().flatten().any(|x| x == "nodes") && r.verbs.iter().any(|v| v == "patch")
    })
}

/// The Node's labels under `hostready.dev/` and `example.com/`.
fn our_labels(admin: &kube::Client, node: &str) -> BTreeMap<String, String> {
    get_node(admin, node)
        .metadata
        .labels
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| k.starts_with("hostready.dev/") || k.starts_with("example.com/"))
        .collect()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The time of the agent's `managedFields` entry for the Node object (its labels), if any.
fn labels_entry_time(admin: &kube::Client, node: &str) -> Option<String> {
    get_node(admin, node)
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .find(|m| {
            m.manager.as_deref() == Some("hostready-agent")
                && m.subresource.as_deref().is_none_or(str::is_empty)
        })
        .and_then(|m| m.time)
        .map(|t| t.0.to_rfc3339())
}

/// The agent's `hostready_check_cycles_total`.
fn cycles(metrics: &str) -> u64 {
    http_get(metrics, "/metrics")
        .1
        .lines()
        .find_map(|l| l.strip_prefix("hostready_check_cycles_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0) as u64
}

/// Waits up to 60 s for `f`, panicking with the agent's log if it never holds.
fn wait_agent<T>(agent: &Agent, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    hostready_testkit::wait::poll(Duration::from_secs(60), Duration::from_millis(200), &mut f)
        .unwrap_or_else(|| {
            panic!(
                "timed out waiting for {what}; agent log:\n{}",
                agent.log_text()
            )
        })
}

#[test]
fn scheduling_labels_follow_status_flips_only_and_go_when_turned_off() {
    // Step 1: the chart's switch decides the node patch rule.
    assert!(
        !patches_nodes(&chart_cluster_role(&[])),
        "the default chart must not grant patch on nodes"
    );
    let role = chart_cluster_role(&["--set", "config.schedulingLabels=true"]);
    assert!(patches_nodes(&role), "{role:?}");

    let env = KubeEnv::start();
    let admin = env.client();
    create_node_with_kubelet_conditions(&admin, "node-a");
    apply_manifest_files(
        &admin,
        &[
            "namespace.yaml",
            "rbac.yaml",
            "configmap.yaml",
            "daemonset.yaml",
            "policy.yaml",
        ],
    );
    // The chart's role (switch on) replaces the plain manifests' one of the same name.
    let roles: Api<ClusterRole> = Api::all(admin.clone());
    block(roles.patch(
        "hostready-agent",
        &PatchParams::apply("e2e").force(),
        &Patch::Apply(&role),
    ))
    .unwrap();
    // Labels someone else keeps: a person's hostready.dev/ label and a zone.
    let nodes: Api<Node> = Api::all(admin.clone());
    block(nodes.patch(
        "node-a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {
            "hostready.dev/site": "chosen-by-hand", "example.com/zone": "a"}}})),
    ))
    .unwrap();
    let tok = pod_bound_token(&admin, "agent-on-node-a", "node-a");
    let sa_kc = env.kubeconfig_with("sa-a.kubeconfig", &tok);
    // The policy and the role take effect once the API server has loaded them: probed with dry
    // runs (admission runs, nothing is stored) before the agent starts.
    let sa = client_for(&sa_kc);
    let sa_nodes: Api<Node> = Api::all(sa);
    let probe = |key: &str| {
        let mut pp = PatchParams::apply("hostready-agent").force();
        pp.dry_run = true;
        block(sa_nodes.patch(
            "node-a",
            &pp,
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": "node-a", "labels": {key: "true"}}})),
        ))
    };
    wait_for("the policy and the role", Duration::from_secs(60), || {
        let own = probe("hostready.dev/probe").is_ok();
        let other = matches!(probe("example.com/probe"),
            Err(kube::Error::Api(s)) if s.code == 403 && s.message.contains("ValidatingAdmissionPolicy"));
        (own && other).then_some(())
    });
    let host = TestHost::debian_with_longhorn_packages();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("agent.yaml");
    let on = "profiles: [iscsi, nfs-client]\ninterval: 1s\nheartbeat: 2s\nwatch_interval: off\nscheduling_labels: true\n";
    fs::write(&cfg, on).unwrap();

    // Step 2: the labels appear.
    let mut agent = Agent::start_with_config(&sa_kc, &host, "node-a", &cfg, &[]);
    let metrics = agent.metrics_addr();
    let ready = labels(&[
        ("example.com/zone", "a"),
        ("hostready.dev/iscsi", "true"),
        ("hostready.dev/nfs-client", "true"),
        ("hostready.dev/site", "chosen-by-hand"),
    ]);
    wait_agent(&agent, "the labels to appear", || {
        (our_labels(&admin, "node-a") == ready).then_some(())
    });
    assert!(
        !agent.log_text().contains("refused"),
        "{}",
        agent.log_text()
    );

    // Step 3: a flip flips its label, and only it.
    host.remove("usr/sbin/iscsiadm");
    let flipped = labels(&[
        ("example.com/zone", "a"),
        ("hostready.dev/iscsi", "false"),
        ("hostready.dev/nfs-client", "true"),
        ("hostready.dev/site", "chosen-by-hand"),
    ]);
    wait_agent(&agent, "hostready.dev/iscsi=false", || {
        (our_labels(&admin, "node-a") == flipped).then_some(())
    });
    assert_eq!(
        condition(&admin, "node-a", "IscsiReady").unwrap().0,
        "False"
    );

    // Step 4: no flip, no label write — over many cycles and several heartbeats.
    let (label_applies, status_applies) =
        (node_applies(&admin, ""), node_applies(&admin, "status"));
    let entry = labels_entry_time(&admin, "node-a");
    assert!(
        entry.is_some(),
        "no managedFields entry of the agent's labels"
    );
    let c0 = cycles(&metrics);
    wait_agent(&agent, "8 more cycles", || {
        (cycles(&metrics) >= c0 + 8).then_some(())
    });
    let heartbeats = node_applies(&admin, "status") - status_applies;
    assert!(
        heartbeats >= 2.0,
        "{heartbeats} status writes: the heartbeat did not run"
    );
    assert_eq!(
        node_applies(&admin, "") - label_applies,
        0.0,
        "labels written without a flip ({heartbeats} heartbeats)"
    );
    assert_eq!(labels_entry_time(&admin, "node-a"), entry);
    assert_eq!(our_labels(&admin, "node-a"), flipped);

    // ... nor does an agent restarted on the same statuses: it finds its labels on the Node.
    assert_eq!(agent.terminate().0, Some(0));
    let before = node_applies(&admin, "");
    let mut agent = Agent::start_with_config(&sa_kc, &host, "node-a", &cfg, &[]);
    let metrics = agent.metrics_addr();
    wait_agent(&agent, "3 cycles after the restart", || {
        (cycles(&metrics) >= 3).then_some(())
    });
    assert_eq!(
        node_applies(&admin, "") - before,
        0.0,
        "a restarted agent rewrote unchanged labels: {}",
        agent.log_text()
    );
    assert_eq!(labels_entry_time(&admin, "node-a"), entry);

    // Step 5: switched off (a reload), the agent's labels go; the others stay.
    fs::write(
        &cfg,
        on.replace("scheduling_labels: true", "scheduling_labels: false"),
    )
    .unwrap();
    let others = labels(&[
        ("example.com/zone", "a"),
        ("hostready.dev/site", "chosen-by-hand"),
    ]);
    wait_agent(&agent, "the agent's labels to go", || {
        (our_labels(&admin, "node-a") == others).then_some(())
    });
    assert!(
        agent.log_text().contains("scheduling labels: none"),
        "{}",
        agent.log_text()
    );
    assert_eq!(labels_entry_time(&admin, "node-a"), None);
    // The conditions go on as before.
    assert_eq!(
        condition(&admin, "node-a", "IscsiReady").unwrap().0,
        "False"
    );
    assert_eq!(
        condition(&admin, "node-a", "NfsClientReady").unwrap().0,
        "True"
    );
    assert_eq!(agent.terminate().0, Some(0));
}
