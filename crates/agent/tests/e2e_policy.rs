//! The agent can touch only its own node and its own conditions, and writes only when
//! something changed — against a real kube-apiserver (`scripts/kube-testenv`, 1.37) with
//! every file of `deploy/manifests/` applied, the ValidatingAdmissionPolicy included:
//!
//! 1. the policy: with the agent ServiceAccount's token bound to a pod on node A, changing
//!    node B's conditions, node A's `Ready`, another controller's condition or node A's
//!    capacity is denied, and so is any change with a token bound to no pod; the agent's
//!    own writes with that token succeed; with `patch` on `nodes` granted (the chart's
//!    `config.schedulingLabels` rule), a label outside `hostready.dev/`, a `hostready.dev/`
//!    label on node B, a value other than true/false/unknown, or a spec change on node A is
//!    denied, and node A's own `hostready.dev/` label goes through;
//! 2. ownership at run time: a profile whose condition another field manager owns is refused
//!    before the first apply (exit 2, an event, nothing written) — the incident's
//!    `condition: Ready` included — and a reload bringing one is refused while the last good
//!    config goes on;
//! 3. the write budget: a command probe that times out every cycle, 10 cycles, heartbeat
//!    1 h ⇒ at most one apply after the first.
//!
//! One control plane, one test with named steps. It always runs (to leave it out, `--skip` it
//! by name, which the test summary counts).

// Tests build fake hosts and read fixtures on this machine directly.
#![allow(clippy::disallowed_methods)]

mod common;

use std::fs;
use std::time::Duration;

use common::*;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

const NS: &str = "hostready-system";
const SA: &str = "hostready-agent";

/// Applies every file of deploy/manifests/ (namespace first), failing if one is left out.
fn apply_manifests(client: &kube::Client) {
    let order = [
        "namespace.yaml",
        "rbac.yaml",
        "configmap.yaml",
        "daemonset.yaml",
        "policy.yaml",
    ];
    let mut present: Vec<String> = fs::read_dir(format!("{WORKSPACE}/deploy/manifests"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    present.sort();
    let mut want: Vec<String> = order.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(present, want, "a manifest is not applied by this test");
    apply_manifest_files(client, &order);
}

/// The token's user info as the API server sees it (SelfSubjectReview).
fn whoami(client: &kube::Client) -> serde_json::Value {
    let req = http::Request::post("/apis/authentication.k8s.io/v1/selfsubjectreviews")
        .header("Content-Type", "application/json")
        .body(
            serde_json::to_vec(
                &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}),
            )
            .unwrap(),
        )
        .unwrap();
    let text = block(client.request_text(req)).unwrap();
    serde_json::from_str::<serde_json::Value>(&text).unwrap()["status"]["userInfo"].clone()
}

/// A server-side apply of one condition to `node`'s status, as field manager hostready-agent.
fn apply_condition(
    client: &kube::Client,
    node: &str,
    type_: &str,
    status: &str,
) -> kube::Result<Node> {
    apply_condition_with(client, node, type_, status, false)
}

/// The same, optionally as a dry run (admission runs, nothing is stored).
fn apply_condition_with(
    client: &kube::Client,
    node: &str,
    type_: &str,
    status: &str,
    dry_run: bool,
) -> kube::Result<Node> {
    let nodes: Api<Node> = Api::all(client.clone());
    let body = json!({
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": node},
        "status": {"conditions": [{"type": type_, "status": status, "reason": "Test",
            "message": "raw request", "lastHeartbeatTime": "2026-01-01T00:00:00Z",
            "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
    });
    let mut pp = PatchParams::apply("hostready-agent").force();
    pp.dry_run = dry_run;
    block(nodes.patch_status(node, &pp, &Patch::Apply(&body)))
}

/// A server-side apply of one label to `node` (the Node object), as field manager
/// hostready-agent, optionally as a dry run.
fn apply_label(
    client: &kube::Client,
    node: &str,
    key: &str,
    value: &str,
    dry_run: bool,
) -> kube::Result<Node> {
    let nodes: Api<Node> = Api::all(client.clone());
    let body = json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": node, "labels": {key: value}}});
    let mut pp = PatchParams::apply("hostready-agent").force();
    pp.dry_run = dry_run;
    block(nodes.patch(node, &pp, &Patch::Apply(&body)))
}

/// The rule the chart adds with config.schedulingLabels (`patch` on `nodes`), in a role of its
/// own bound to the agent's ServiceAccount.
fn grant_node_patch(admin: &kube::Client) {
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
    let roles: Api<ClusterRole> = Api::all(admin.clone());
    let role: ClusterRole = serde_json::from_value(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "hostready-agent-labels"},
        "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["patch"]}]
    }))
    .unwrap();
    block(roles.create(&PostParams::default(), &role)).unwrap();
    let bindings: Api<ClusterRoleBinding> = Api::all(admin.clone());
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "hostready-agent-labels"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "hostready-agent-labels"},
        "subjects": [{"kind": "ServiceAccount", "name": SA, "namespace": NS}]
    }))
    .unwrap();
    block(bindings.create(&PostParams::default(), &binding)).unwrap();
}

/// Removes what [`grant_node_patch`] created: the rest of the test runs with the shipped RBAC.
fn revoke_node_patch(admin: &kube::Client) {
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
    let dp = kube::api::DeleteParams::default();
    let bindings: Api<ClusterRoleBinding> = Api::all(admin.clone());
    block(bindings.delete("hostready-agent-labels", &dp)).unwrap();
    let roles: Api<ClusterRole> = Api::all(admin.clone());
    block(roles.delete("hostready-agent-labels", &dp)).unwrap();
}

/// A server-side apply of `conditions` (type, message; all True) to node-a's status, as the
/// field manager site-controller: conditions another controller owns.
fn site_controller_sets(admin: &kube::Client, conditions: &[(&str, &str)]) {
    let conditions: Vec<serde_json::Value> = conditions
        .iter()
        .map(|(type_, message)| {
            json!({"type": type_, "status": "True", "reason": "SiteCheck", "message": message,
                "lastHeartbeatTime": "2026-01-01T00:00:00Z",
                "lastTransitionTime": "2026-01-01T00:00:00Z"})
        })
        .collect();
    let nodes: Api<Node> = Api::all(admin.clone());
    block(nodes.patch_status(
        "node-a",
        &PatchParams::apply("site-controller").force(),
        &Patch::Apply(json!({
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a"},
            "status": {"conditions": conditions}
        })),
    ))
    .unwrap();
}

/// Panics unless `r` is a 403 whose message contains `needle`.
fn denied<T: std::fmt::Debug>(r: kube::Result<T>, needle: &str, what: &str) {
    match r {
        Err(kube::Error::Api(s)) if s.code == 403 && s.message.contains(needle) => {
            eprintln!("{what}: denied: {}", s.message);
        }
        other => panic!("{what}: expected 403 containing {needle:?}, got {other:?}"),
    }
}

#[test]
fn agent_touches_only_its_own_node_and_conditions_and_writes_only_on_change() {
    let env = KubeEnv::start();
    let admin = env.client();
    for n in ["node-a", "node-b", "node-c"] {
        create_node_with_kubelet_conditions(&admin, n);
    }
    apply_manifests(&admin);
    let host = TestHost::debian_with_longhorn_packages();

    // Step 1: the policy, with a token bound to a pod on node-a.
    let tok = pod_bound_token(&admin, "agent-on-node-a", "node-a");
    let sa_kc = env.kubeconfig_with("sa-a.kubeconfig", &tok);
    let sa = client_for(&sa_kc);
    let me = whoami(&sa);
    assert_eq!(
        me["username"],
        format!("system:serviceaccount:{NS}:{SA}"),
        "{me}"
    );
    assert_eq!(
        me["extra"]["authentication.kubernetes.io/node-name"],
        json!(["node-a"]),
        "the API server does not bind the node name into the token: {me}"
    );
    // The policy takes effect once the API server has loaded it. Probed with dry runs
    // (admission runs, nothing is stored): a probe that went through before the policy was
    // loaded must not leave a condition on node-b.
    wait_for(
        "the policy to deny",
        Duration::from_secs(60),
        || match apply_condition_with(&sa, "node-b", "IscsiReady", "True", true) {
            Err(kube::Error::Api(s))
                if s.code == 403 && s.message.contains("ValidatingAdmissionPolicy") =>
            {
                Some(())
            }
            _ => None,
        },
    );
    denied(
        apply_condition(&sa, "node-b", "IscsiReady", "True"),
        "on node node-a may only change its own Node, not node-b",
        "node-a's token changing node-b's conditions",
    );
    denied(
        apply_condition(&sa, "node-a", "Ready", "False"),
        "may not change the kubelet's conditions: Ready",
        "node-a's token setting node-a Ready=False",
    );
    denied(
        apply_condition(&sa, "node-a", "SomeoneElsesCondition", "True"),
        "may only change its own condition types, not: SomeoneElsesCondition",
        "a condition type hostready does not publish",
    );
    let nodes: Api<Node> = Api::all(sa.clone());
    denied(
        block(nodes.patch_status(
            "node-a",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"capacity": {"pods": "0"}}})),
        )),
        "may only change node conditions",
        "node-a's token zeroing node-a's pod capacity",
    );
    // A token bound to no pod carries no node name: nothing is allowed with it.
    let unbound = client_for(&env.kubeconfig_with(
        "sa-unbound.kubeconfig",
        &sa_token(&admin, serde_json::Value::Null),
    ));
    denied(
        apply_condition(&unbound, "node-a", "IscsiReady", "True"),
        "must use its pod-bound token",
        "a token bound to no pod",
    );
    // The scheduling labels' rules. RBAC grants `patch` on `nodes` only with the chart's
    // config.schedulingLabels (tests/e2e_labels.rs renders that role with helm); the same rule
    // is granted here by a role of its own, so what stops the writes below is the policy.
    grant_node_patch(&admin);
    wait_for(
        "patch on nodes to be granted",
        Duration::from_secs(60),
        || apply_label(&sa, "node-a", "hostready.dev/iscsi", "true", true).ok(),
    );
    denied(
        apply_label(
            &sa,
            "node-a",
            "node-role.kubernetes.io/storage",
            "true",
            false,
        ),
        "may only change labels under hostready.dev/, not: node-role.kubernetes.io/storage",
        "node-a's token setting another label on node-a",
    );
    denied(
        apply_label(&sa, "node-b", "hostready.dev/iscsi", "true", false),
        "on node node-a may only change its own Node, not node-b",
        "node-a's token labelling node-b",
    );
    denied(
        apply_label(&sa, "node-a", "hostready.dev/iscsi", "yes", false),
        "labels may only be true, false or unknown",
        "a label value that is no status",
    );
    denied(
        block(nodes.patch(
            "node-a",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"unschedulable": true}})),
        )),
        "may only change its hostready.dev/ labels on the Node object",
        "node-a's token cordoning node-a",
    );
    denied(
        block(nodes.patch(
            "node-a",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"example.com/x": "y"}}})),
        )),
        "may only change its hostready.dev/ labels on the Node object",
        "node-a's token annotating node-a",
    );
    apply_label(&sa, "node-a", "hostready.dev/iscsi", "true", false)
        .expect("node-a's own hostready.dev/ label");
    let labels_of = |n: &str| get_node(&admin, n).metadata.labels.unwrap_or_default();
    assert_eq!(
        labels_of("node-a")
            .get("hostready.dev/iscsi")
            .map(String::as_str),
        Some("true")
    );
    assert!(!labels_of("node-a").contains_key("node-role.kubernetes.io/storage"));
    assert!(!labels_of("node-b").contains_key("hostready.dev/iscsi"));
    assert_eq!(get_node(&admin, "node-a").spec.unwrap().unschedulable, None);
    // Released again (the apply of an empty set), as the agent does when the switch goes off.
    block(nodes.patch(
        "node-a",
        &PatchParams::apply("hostready-agent").force(),
        &Patch::Apply(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a"}})),
    ))
    .unwrap();
    assert!(!labels_of("node-a").contains_key("hostready.dev/iscsi"));
    revoke_node_patch(&admin);

    // Nothing of the above reached node-b or the kubelet's Ready.
    assert!(condition(&admin, "node-b", "IscsiReady").is_none());
    assert_eq!(condition(&admin, "node-a", "Ready").unwrap().0, "True");

    // The agent's own writes with that token go through.
    let (code, log) = run_once(
        &sa_kc,
        &host.args("node-a", &["-p", "iscsi", "-p", "nfs-client"]),
    );
    assert_eq!(code, 0, "{log}");
    assert!(!log.contains("event dropped"), "{log}");
    assert!(!log.contains("publishing failed"), "{log}");
    assert_eq!(condition(&admin, "node-a", "IscsiReady").unwrap().0, "True");
    assert_eq!(
        condition(&admin, "node-a", "NfsClientReady").unwrap().0,
        "True"
    );
    assert_eq!(condition(&admin, "node-a", "Ready").unwrap().0, "True");

    // Step 2: a condition another field manager owns is never taken over.
    site_controller_sets(
        &admin,
        &[("SiteStorageReady", "set by the site controller")],
    );
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site.yaml");
    fs::write(
        &site,
        "name: site\ncondition: SiteStorageReady\nrequirements:\n  - executable: sh\n",
    )
    .unwrap();
    let (code, log) = run_once(
        &env.kubeconfig,
        &host.args("node-a", &["-p", "iscsi", "-p", site.to_str().unwrap()]),
    );
    assert_eq!(code, 2, "{log}");
    assert!(
        log.contains("condition SiteStorageReady is owned by field manager site-controller"),
        "{log}"
    );
    assert!(log.contains("nothing was written"), "{log}");
    let c = condition(&admin, "node-a", "SiteStorageReady").unwrap();
    assert_eq!(c.2, "set by the site controller");
    assert!(
        events_about(&admin, "node-a")
            .iter()
            .any(|e| e.reason.as_deref() == Some("ConditionOwnedElsewhere")),
        "no ConditionOwnedElsewhere event"
    );

    // The incident's profile (`condition: Ready`) is refused too: by the profile loader, or,
    // failing that, here because the kubelet owns Ready. Either way exit 2 and Ready untouched.
    let hijack = dir.path().join("hijack.yaml");
    fs::write(
        &hijack,
        "name: hijack\ncondition: Ready\nrequirements:\n  - executable: no-such-tool\n",
    )
    .unwrap();
    let (code, log) = run_once(
        &env.kubeconfig,
        &host.args("node-a", &["-p", hijack.to_str().unwrap()]),
    );
    assert_eq!(code, 2, "{log}");
    assert!(log.contains("Ready"), "{log}");
    let ready = condition(&admin, "node-a", "Ready").unwrap();
    assert_eq!(
        (ready.0.as_str(), ready.1.as_str()),
        ("True", "KubeletReady")
    );

    // ... and a reload that brings such a profile is refused; the last good config stays.
    let cfg = dir.path().join("agent.yaml");
    fs::write(&cfg, "profiles: [iscsi]\ninterval: 1s\nheartbeat: 2s\n").unwrap();
    let agent = Agent::start_with_config(&env.kubeconfig, &host, "node-a", &cfg, &[]);
    let metrics = agent.wait_ready();
    fs::write(
        &cfg,
        "profiles: [iscsi, ./site.yaml]\ninterval: 1s\nheartbeat: 2s\n",
    )
    .unwrap();
    wait_for("config_valid 0", Duration::from_secs(30), || {
        http_get(&metrics, "/metrics")
            .1
            .contains("hostready_config_valid 0")
            .then_some(())
    });
    let refused = wait_for("a ConfigInvalid event", Duration::from_secs(30), || {
        events_about(&admin, "node-a")
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("ConfigInvalid"))
    });
    let note = refused.note.unwrap_or_default();
    assert!(
        note.contains("condition SiteStorageReady is owned by field manager site-controller"),
        "{note}"
    );
    assert!(
        agent.log_text().contains("keeping the last good one"),
        "{}",
        agent.log_text()
    );
    // The last good config goes on publishing (heartbeats), the site's condition untouched.
    let hb = |client: &kube::Client| {
        get_node(client, "node-a")
            .status
            .unwrap()
            .conditions
            .unwrap()
            .into_iter()
            .find(|c| c.type_ == "IscsiReady")
            .and_then(|c| c.last_heartbeat_time)
            .map(|t| t.0)
    };
    let hb0 = hb(&admin);
    wait_for(
        "a heartbeat under the old config",
        Duration::from_secs(30),
        || (hb(&admin) > hb0).then_some(()),
    );
    assert_eq!(
        condition(&admin, "node-a", "SiteStorageReady").unwrap().2,
        "set by the site controller"
    );
    drop(agent);

    // ... and so is a reload that turns the watch pass on while another field manager owns
    // its condition, HostProcessesHealthy.
    site_controller_sets(
        &admin,
        &[
            ("SiteStorageReady", "set by the site controller"),
            ("HostProcessesHealthy", "watched by the site controller"),
        ],
    );
    fs::write(
        &cfg,
        "profiles: [iscsi]\ninterval: 1s\nheartbeat: 2s\nwatch_interval: off\n",
    )
    .unwrap();
    let agent = Agent::start_with_config(&env.kubeconfig, &host, "node-a", &cfg, &[]);
    agent.wait_ready();
    fs::write(
        &cfg,
        "profiles: [iscsi]\ninterval: 1s\nheartbeat: 2s\nwatch_interval: 1s\n",
    )
    .unwrap();
    let refused = wait_for(
        "a ConfigInvalid event naming HostProcessesHealthy",
        Duration::from_secs(30),
        || {
            events_about(&admin, "node-a").into_iter().find(|e| {
                e.reason.as_deref() == Some("ConfigInvalid")
                    && e.note.as_deref().is_some_and(|n| {
                        n.contains(
                        "condition HostProcessesHealthy is owned by field manager site-controller",
                    )
                    })
            })
        },
    );
    assert!(refused.note.is_some());
    assert_eq!(
        condition(&admin, "node-a", "HostProcessesHealthy")
            .unwrap()
            .2,
        "watched by the site controller"
    );
    drop(agent);

    // Step 3: the write budget. A probe that times out every cycle; 10 cycles, heartbeat 1h.
    let probe = dir.path().join("slow.yaml");
    fs::write(
        &probe,
        "name: slow\ncondition: IscsiReady\nrequirements:\n  - id: probe.slow\n    command: [\"/bin/sleep\", \"30\"]\n    timeout: 100ms\n",
    )
    .unwrap();
    let before = node_applies(&admin, "status");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hostready-agent"))
        .arg("--kubeconfig")
        .arg(&env.kubeconfig)
        .args(host.args(
            "node-c",
            &[
                "-p",
                probe.to_str().unwrap(),
                "--interval",
                "1s",
                "--heartbeat",
                "1h",
                "--max-cycles",
                "10",
                "--metrics-addr",
                "none",
            ],
        ))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{log}");
    let writes = node_applies(&admin, "status") - before;
    eprintln!("write budget: {writes} applies in 10 cycles of a probe that times out each time");
    assert!(writes >= 1.0, "the first write is missing: {log}");
    assert!(
        writes <= 2.0,
        "{writes} applies for 10 unchanged cycles: {log}"
    );
    let c = condition(&admin, "node-c", "IscsiReady").unwrap();
    assert_eq!(
        (c.0.as_str(), c.1.as_str()),
        ("Unknown", "CheckUnknown"),
        "{c:?}"
    );
    assert!(
        c.2.contains("/bin/sleep timed out (deadline 100ms)"),
        "{}",
        c.2
    );
    // The measured time is in the event, not on the Node.
    let ev = events_about(&admin, "node-c");
    assert!(
        ev.iter().any(|e| e
            .note
            .as_deref()
            .is_some_and(|n| n.contains("timed out after"))),
        "{ev:?}"
    );
}
