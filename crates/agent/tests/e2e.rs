//! The agent end to end against a real kube-apiserver (`scripts/kube-testenv`): Nodes with
//! kubelet-owned conditions, agents for several nodes on different host roots (copies of a
//! debootstrap Debian root with pieces removed), conditions with the right reason and fix,
//! flips when a root changes, events, a disabled profile's condition removed, a bad config
//! refused, the shipped ServiceAccount and RBAC, and SIGTERM.
//!
//! One control plane for the whole file (starting one costs seconds), so it is one test with
//! named steps. It always runs (`scripts/kube-testenv` builds the API server it needs); to
//! leave it out, filter it out by name (`--skip`), which the test summary counts.

// Tests build fake hosts and read fixtures on this machine directly.
#![allow(clippy::disallowed_methods)]

mod common;

use std::fs;
use std::time::Duration;

use common::*;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};

/// The profiles these agents publish; the watch pass (HostProcessesHealthy) is off here, its
/// own end-to-end test is `tests/e2e_watch.rs`.
const PROFILES: [&str; 6] = ["-p", "iscsi", "-p", "nfs-client", "--watch-interval", "off"];

fn kubelet_view(n: &Node) -> Vec<(String, String, String)> {
    let mut v: Vec<(String, String, String)> = n
        .status
        .as_ref()
        .unwrap()
        .conditions
        .as_ref()
        .unwrap()
        .iter()
        .filter(|c| ["Ready", "MemoryPressure", "DiskPressure"].contains(&c.type_.as_str()))
        .map(|c| {
            (
                c.type_.clone(),
                c.status.clone(),
                format!("{:?}", c.last_heartbeat_time),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn agents_publish_conditions_and_events_through_a_real_api_server() {
    let env = KubeEnv::start();
    let client = env.client();
    let kc = env.kubeconfig.as_path();
    for n in ["node-a", "node-b", "node-c"] {
        create_node_with_kubelet_conditions(&client, n);
    }
    let kubelet_before: Vec<_> = ["node-a", "node-b", "node-c"]
        .iter()
        .map(|n| kubelet_view(&get_node(&client, n)))
        .collect();

    // Step 1: three hosts, three verdicts.
    let full = TestHost::debian_with_longhorn_packages();
    let no_iscsiadm = TestHost::debian_with_longhorn_packages();
    no_iscsiadm.remove("usr/sbin/iscsiadm");
    let no_modules = TestHost::debian_with_longhorn_packages();
    no_modules.proc_file("modules", "");
    for (node, host) in [
        ("node-a", &full),
        ("node-b", &no_iscsiadm),
        ("node-c", &no_modules),
    ] {
        let (code, log) = run_once(kc, &host.args(node, &PROFILES));
        assert_eq!(code, 0, "{node}: {log}");
    }
    let a = condition(&client, "node-a", "IscsiReady").expect("node-a IscsiReady");
    assert_eq!((a.0.as_str(), a.1.as_str()), ("True", "RequirementsMet"));
    let a_nfs = condition(&client, "node-a", "NfsClientReady").unwrap();
    assert_eq!(a_nfs.0, "True");
    let b = condition(&client, "node-b", "IscsiReady").expect("node-b IscsiReady");
    assert_eq!((b.0.as_str(), b.1.as_str()), ("False", "ExecutableMissing"));
    assert!(b.2.contains("exe.iscsiadm fail"), "{}", b.2);
    // The fix names Debian's package, read from the root's os-release.
    assert!(b.2.contains("open-iscsi"), "{}", b.2);
    assert_eq!(
        condition(&client, "node-b", "NfsClientReady").unwrap().0,
        "True"
    );
    let c = condition(&client, "node-c", "IscsiReady").unwrap();
    assert_eq!((c.0.as_str(), c.1.as_str()), ("Unknown", "CheckUnknown"));
    assert!(c.2.contains("kmod.iscsi_tcp"), "{}", c.2);

    // Step 2: events for each appearance, with the finding ids.
    let ev = events_about(&client, "node-b");
    let e = ev
        .iter()
        .find(|e| e.reason.as_deref() == Some("ExecutableMissing"))
        .unwrap_or_else(|| panic!("no ExecutableMissing event for node-b: {ev:?}"));
    assert_eq!(e.type_.as_deref(), Some("Warning"));
    assert!(e.note.as_deref().unwrap().contains("exe.iscsiadm"));
    assert_eq!(
        e.reporting_controller.as_deref(),
        Some("hostready.dev/agent")
    );

    // Step 3: a second --once with nothing changed: no new event, transition time kept.
    let (code, _) = run_once(kc, &no_iscsiadm.args("node-b", &PROFILES));
    assert_eq!(code, 0);
    assert_eq!(events_about(&client, "node-b").len(), ev.len());
    assert_eq!(condition(&client, "node-b", "IscsiReady").unwrap().3, b.3);

    // Step 4: a long-running agent on node-b, with a config file; the root is repaired and
    // the condition flips, with an event.
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("agent.yaml");
    fs::write(
        &cfg,
        "profiles: [iscsi, nfs-client]\ninterval: 1s\nheartbeat: 3s\n",
    )
    .unwrap();
    let mut agent = Agent::start_with_config(
        kc,
        &no_iscsiadm,
        "node-b",
        &cfg,
        &["--watch-interval", "off"],
    );
    let metrics = agent.wait_ready();
    no_iscsiadm.restore("usr/sbin/iscsiadm");
    let flipped = wait_for("node-b IscsiReady=True", Duration::from_secs(60), || {
        condition(&client, "node-b", "IscsiReady").filter(|c| c.0 == "True")
    });
    assert_ne!(flipped.3, b.3, "lastTransitionTime must change on a flip");
    // The event is created right after the condition is applied: wait for it, do not race it.
    let normal = wait_for(
        "an event for the flip to True",
        Duration::from_secs(30),
        || {
            events_about(&client, "node-b").into_iter().find(|e| {
                e.note
                    .as_deref()
                    .is_some_and(|n| n.starts_with("IscsiReady False -> True"))
            })
        },
    );
    assert_eq!(normal.type_.as_deref(), Some("Normal"));
    assert_eq!(normal.reason.as_deref(), Some("RequirementsMet"));

    // Heartbeat: unchanged conditions are rewritten (lastHeartbeatTime moves), the
    // transition time does not.
    let hb = |client: &kube::Client| {
        get_node(client, "node-b")
            .status
            .unwrap()
            .conditions
            .unwrap()
            .into_iter()
            .find(|c| c.type_ == "IscsiReady")
            .unwrap()
            .last_heartbeat_time
            .unwrap()
            .0
    };
    let hb0 = hb(&client);
    wait_for("a heartbeat write", Duration::from_secs(30), || {
        (hb(&client) > hb0).then_some(())
    });
    assert_eq!(
        condition(&client, "node-b", "IscsiReady").unwrap().3,
        flipped.3
    );

    // Metrics: per-finding gauges with id/profile/status, and the rest.
    let (code, text) = http_get(&metrics, "/metrics");
    assert_eq!(code, 200);
    assert!(
        text.contains(
            r#"hostready_finding_status{id="exe.iscsiadm",profile="iscsi",status="pass"} 1"#
        ),
        "{text}"
    );
    for name in [
        "hostready_check_duration_seconds",
        "hostready_api_writes_total",
        "\nprocess_resident_memory_bytes ",
        "hostready_build_info{",
        "hostready_stuck_probes",
        "hostready_config_valid 1",
    ] {
        assert!(text.contains(name), "{name} missing from {text}");
    }
    assert_eq!(http_get(&metrics, "/healthz").0, 200);

    // Step 5: a bad config is refused (event, metric) and the last good one stays.
    fs::write(&cfg, "profiles: [no-such-profile]\n").unwrap();
    wait_for("config_valid 0", Duration::from_secs(30), || {
        http_get(&metrics, "/metrics")
            .1
            .contains("hostready_config_valid 0")
            .then_some(())
    });
    wait_for("a ConfigInvalid event", Duration::from_secs(30), || {
        events_about(&client, "node-b")
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("ConfigInvalid"))
    });
    assert!(condition(&client, "node-b", "NfsClientReady").is_some());

    // Step 6: a profile disabled ⇒ its condition removed; the kubelet's stay untouched.
    fs::write(&cfg, "profiles: [iscsi]\ninterval: 1s\nheartbeat: 3s\n").unwrap();
    wait_for("NfsClientReady removed", Duration::from_secs(30), || {
        condition(&client, "node-b", "NfsClientReady")
            .is_none()
            .then_some(())
    });
    assert_eq!(
        condition(&client, "node-b", "IscsiReady").unwrap().0,
        "True"
    );

    // Step 7: SIGTERM ends it cleanly and quickly.
    let (code, took) = agent.terminate();
    assert_eq!(code, Some(0), "{}", agent.log_text());
    assert!(took < Duration::from_secs(10), "exit took {took:?}");

    for (i, n) in ["node-a", "node-b", "node-c"].iter().enumerate() {
        assert_eq!(
            kubelet_view(&get_node(&client, n)),
            kubelet_before[i],
            "{n}: kubelet conditions changed"
        );
        let node = get_node(&client, n);
        let kubelet_owned = hostready_agent::cluster::owned_condition_types(&node, "kubelet");
        assert!(kubelet_owned.contains("Ready"), "{n}: {kubelet_owned:?}");
    }

    // Step 8: the cluster view reads back what was published.
    let view = hostready_agent::cluster::fetch(Some(kc), Duration::from_secs(30)).unwrap();
    assert_eq!(view.types, ["IscsiReady", "NfsClientReady"]);
    let row = |n: &str| view.nodes.iter().find(|r| r.name == n).unwrap();
    assert_eq!(row("node-a").conditions["IscsiReady"].status, "True");
    assert_eq!(
        row("node-c").conditions["IscsiReady"].reason,
        "CheckUnknown"
    );
    assert!(!row("node-b").conditions.contains_key("NfsClientReady"));
    assert!(!view.all_ready());

    // Step 9: as the shipped ServiceAccount with the shipped RBAC.
    rbac_as_shipped(&env, &full);
}

/// Applies the RBAC, namespace, config and DaemonSet of deploy/manifests/ (the API server
/// validates them), gets a token for the ServiceAccount with the TokenRequest API, and runs
/// the agent with it: it works, and anything else is refused. RBAC alone here: the admission
/// policy (policy.yaml), which needs a pod-bound token, is applied and tested with every other
/// file in tests/e2e_policy.rs.
fn rbac_as_shipped(env: &KubeEnv, host: &TestHost) {
    let client = env.client();
    apply_manifest_files(
        &client,
        &[
            "namespace.yaml",
            "rbac.yaml",
            "configmap.yaml",
            "daemonset.yaml",
        ],
    );
    let token = sa_token(&client, serde_json::Value::Null);
    let sa_kc = env.kubeconfig_with("sa.kubeconfig", &token);

    create_node_with_kubelet_conditions(&client, "node-sa");
    let (code, log) = run_once(&sa_kc, &host.args("node-sa", &PROFILES));
    assert_eq!(code, 0, "{log}");
    assert!(!log.contains("event dropped"), "{log}");
    assert_eq!(
        condition(&client, "node-sa", "IscsiReady").unwrap().0,
        "True"
    );
    assert!(!events_about(&client, "node-sa").is_empty());

    // Refused: anything the role does not grant.
    let sa = client_for(&sa_kc);
    let forbidden = |r: Result<(), kube::Error>, what: &str| match r {
        Err(kube::Error::Api(s)) if s.code == 403 => {}
        other => panic!("{what}: expected 403, got {other:?}"),
    };
    let nodes: Api<Node> = Api::all(sa.clone());
    forbidden(
        block(nodes.list(&ListParams::default())).map(|_| ()),
        "list nodes",
    );
    forbidden(
        block(nodes.patch(
            "node-sa",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"labels": {"x": "y"}}})),
        ))
        .map(|_| ()),
        "patch node labels",
    );
    forbidden(
        block(nodes.delete("node-a", &DeleteParams::default())).map(|_| ()),
        "delete node",
    );
    let pods: Api<Pod> = Api::namespaced(sa.clone(), "default");
    forbidden(
        block(pods.list(&ListParams::default())).map(|_| ()),
        "list pods",
    );
    let ev_other: Api<Event> = Api::namespaced(sa.clone(), "kube-system");
    let ev =
        hostready_agent::publish::EventSpec::config_refused("x", k8s_openapi::chrono::Utc::now())
            .to_event("node-sa", None);
    forbidden(
        block(ev_other.create(&PostParams::default(), &ev)).map(|_| ()),
        "create event in kube-system",
    );
}
