//! The API server stopped and started again under a running agent: the agent keeps checking,
//! counts the API errors, backs off, stays healthy, and publishes the latest state once the
//! server is back. Its own control plane, since this test stops it. Then SIGTERM while a
//! command check is running: the agent exits at once and the probe dies with it.
//! It always runs (to leave it out, `--skip` it by name, which the test summary counts).

// Tests build fake hosts and read fixtures on this machine directly.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use common::*;

#[test]
fn agent_recovers_when_the_api_server_restarts() {
    let env = KubeEnv::start();
    let client = env.client();
    create_node_with_kubelet_conditions(&client, "node-r");
    let host = TestHost::debian_with_longhorn_packages();
    let agent = Agent::start(
        &env.kubeconfig,
        &host.args(
            "node-r",
            &[
                "-p",
                "iscsi",
                "--interval",
                "1s",
                "--heartbeat",
                "2s",
                "--api-backoff-cap",
                "2s",
                "--metrics-addr",
                "127.0.0.1:0",
            ],
        ),
    );
    let metrics = agent.metrics_addr();
    wait_for("IscsiReady=True", Duration::from_secs(60), || {
        condition(&client, "node-r", "IscsiReady").filter(|c| c.0 == "True")
    });

    env.stop();
    // The host changes while the API is away.
    host.remove("usr/sbin/iscsiadm");
    wait_for("API errors counted", Duration::from_secs(60), || {
        http_get(&metrics, "/metrics")
            .1
            .contains("hostready_api_errors_total{op=\"apply_conditions\"")
            .then_some(())
    });
    // Checks go on without the API: the finding already says fail, and the agent is healthy.
    wait_for(
        "the failing finding while the API is away",
        Duration::from_secs(30),
        || {
            http_get(&metrics, "/metrics")
            .1
            .contains(r#"hostready_finding_status{id="exe.iscsiadm",profile="iscsi",status="fail"} 1"#)
            .then_some(())
        },
    );
    assert_eq!(http_get(&metrics, "/healthz").0, 200);

    env.restart();
    let client = env.client();
    let c = wait_for(
        "IscsiReady=False after the restart",
        Duration::from_secs(90),
        || condition(&client, "node-r", "IscsiReady").filter(|c| c.0 == "False"),
    );
    assert_eq!(c.1, "ExecutableMissing");
    // The transition that happened while the API was away is recorded as an event too.
    wait_for("the flip's event", Duration::from_secs(30), || {
        let api: kube::Api<k8s_openapi::api::events::v1::Event> =
            kube::Api::namespaced(client.clone(), "default");
        block(api.list(&Default::default()))
            .ok()?
            .items
            .into_iter()
            .find(|e| {
                e.note
                    .as_deref()
                    .is_some_and(|n| n.starts_with("IscsiReady True -> False"))
            })
    });
    assert!(
        agent.log_text().contains("publishing failed"),
        "{}",
        agent.log_text()
    );

    drop(agent);

    // SIGTERM in the middle of a long command check: no waiting for its deadline, and
    // nothing left behind.
    let dir = tempfile::tempdir().unwrap();
    let marker = format!("hostready-e2e-{}", std::process::id());
    let profile = dir.path().join("slow.yaml");
    std::fs::write(
        &profile,
        format!(
            "name: slow\nrequirements:\n  - id: probe.slow\n    command: [\"/bin/sh\", \"-c\", \"sleep 300; : {marker}\"]\n    timeout: 120s\n"
        ),
    )
    .unwrap();
    let mut agent = Agent::start(
        &env.kubeconfig,
        &host.args(
            "node-r",
            &[
                "-p",
                profile.to_str().unwrap(),
                "--interval",
                "1s",
                "--metrics-addr",
                "none",
            ],
        ),
    );
    let probe_pids = || -> Vec<u32> {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| {
                let pid: u32 = e.file_name().to_str()?.parse().ok()?;
                let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
                String::from_utf8_lossy(&cmd)
                    .contains(&marker)
                    .then_some(pid)
            })
            .collect()
    };
    wait_for("the slow probe to start", Duration::from_secs(30), || {
        (!probe_pids().is_empty()).then_some(())
    });
    let (code, took) = agent.terminate();
    assert_eq!(code, Some(0), "{}", agent.log_text());
    assert!(took < Duration::from_secs(5), "exit took {took:?}");
    wait_for("the probe to be gone", Duration::from_secs(5), || {
        probe_pids().is_empty().then_some(())
    });
}
