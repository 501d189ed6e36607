//! The alerting the Helm chart ships (`templates/prometheusrule.yaml`, docs/agent.md
//! "Alerts"), checked with Prometheus's own code and against a running agent:
//!
//! - rendered with the rules turned on (`helm template`, the genuine helm of
//!   `scripts/go-tool helm`), every rule goes through Prometheus's rule loader
//!   (`model/rulefmt`: strict YAML, each expression through `promql/parser`, each label and
//!   annotation template parsed), in `tools/promlint`'s `rules` mode, which also says which
//!   metric names each expression selects;
//! - the alerts are the five of issue 12 (a growing pile, a held package-database lock, a
//!   corrupt database, an agent that stopped reporting — scrape down or watch stalled — and a
//!   readiness condition turned False), each with a severity, a summary and a description that
//!   name the node, and a runbook anchor that docs/agent.md has;
//! - every metric name the rules use is one the agent registers ([`REGISTERED`], the names
//!   `crates/agent/src/metrics.rs` registers, which the lead keeps in step) **and** one a real
//!   agent's `/metrics` exports, scraped as `tests/metrics_scrape.rs` does. `up` alone is
//!   exempt: Prometheus writes it for each scrape, no exporter does.
//!
//! The scrape needs an API server: kube-testenv, started by common::KubeEnv.

// Tests build fake hosts and read fixtures on this machine directly, not a host's root.
#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use hostready_testkit::process::output_with_stdin;
use std::time::Duration;

use common::helm::{go_tool, template};
use common::*;
use serde_yaml_ng::Value;

/// The metric names (as scraped, counters with `_total`, a histogram's `_bucket`, `_sum` and
/// `_count`) that `crates/agent/src/metrics.rs` registers, with the watch pass's of issue 12.
const REGISTERED: &[&str] = &[
    "hostready_build_info",
    "hostready_finding_status",
    "hostready_condition_status",
    "hostready_check_duration_seconds_bucket",
    "hostready_check_duration_seconds_sum",
    "hostready_check_duration_seconds_count",
    "hostready_check_cycles_total",
    "hostready_probe_timeouts_total",
    "hostready_stuck_probes",
    "hostready_api_errors_total",
    "hostready_api_writes_total",
    "hostready_events_dropped_total",
    "hostready_config_errors_total",
    "hostready_config_valid",
    "hostready_conditions_withheld",
    "hostready_last_publish_timestamp_seconds",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_open_fds",
    "process_max_fds",
    "process_start_time_seconds",
    // The watch pass (issue 12).
    "hostready_pileup_processes",
    "hostready_pileup_private_bytes",
    "hostready_pkgdb_lock_holders",
    "hostready_pkgdb_lock_waiters",
    "hostready_pkgdb_corrupt",
    "hostready_watch_duration_seconds",
    "hostready_watch_passes_total",
    "hostready_watch_last_timestamp_seconds",
];

/// Families that have series only while a pile or a held lock exists: prometheus-client leaves
/// a family without series out of the scrape, so the healthy agent scraped here cannot show
/// them. `tests/e2e_watch.rs` scrapes them with series during a real incident (a held rpmdb
/// lock and a pile of `rpm -q`); the test below checks that it still asserts each one.
const PROBLEM_ONLY: &[&str] = &[
    "hostready_pileup_processes",
    "hostready_pileup_private_bytes",
    "hostready_pkgdb_lock_holders",
    "hostready_pkgdb_lock_waiters",
];

/// Series Prometheus writes itself for every scrape target; no exporter has them.
const SCRAPE_SERIES: &[&str] = &["up"];

/// The alerts docs/agent.md "Alerts" describes, one per case of issue 12 (two for an agent
/// that stopped reporting).
const ALERTS: &[&str] = &[
    "HostreadyProcessPileUp",
    "HostreadyPackageDatabaseLocked",
    "HostreadyPackageDatabaseCorrupt",
    "HostreadyReadinessConditionFalse",
    "HostreadyAgentDown",
    "HostreadyWatchStalled",
];

/// The rendered PrometheusRule's `spec` (a Prometheus rule file: `groups:`).
fn rule_file(args: &[&str]) -> String {
    let objs = template("hostready", "hostready-system", args);
    let rules: Vec<&Value> = objs
        .iter()
        .filter(|o| o["kind"] == "PrometheusRule")
        .collect();
    assert_eq!(rules.len(), 1, "one PrometheusRule rendered with {args:?}");
    serde_yaml_ng::to_string(&rules[0]["spec"]).unwrap()
}

/// `promlint rules` on `text`: success and its stdout (JSON, or one problem per line).
fn check_rules(text: &str) -> (bool, String) {
    let out = output_with_stdin(
        Command::new(go_tool("promlint")).arg("rules"),
        text.as_bytes(),
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// The rules, parsed: each with its metric names.
fn parsed_rules(args: &[&str]) -> Vec<serde_json::Value> {
    let (ok, out) = check_rules(&rule_file(args));
    assert!(
        ok,
        "Prometheus's rule loader refuses the chart's rules:\n{out}"
    );
    serde_json::from_str(&out).unwrap()
}

/// Every metric name the rules' expressions select.
fn rule_metrics(rules: &[serde_json::Value]) -> BTreeSet<String> {
    rules
        .iter()
        .flat_map(|r| r["metrics"].as_array().unwrap())
        .map(|m| m.as_str().unwrap().to_string())
        .collect()
}

/// The heading anchors of docs/agent.md, as GitHub makes them (lower case, spaces to `-`,
/// punctuation dropped).
fn doc_anchors() -> BTreeSet<String> {
    let doc = std::fs::read_to_string(format!("{WORKSPACE}/docs/agent.md")).unwrap();
    doc.lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|h| {
            h.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter_map(|c| match c {
                    ' ' => Some('-'),
                    c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                    _ => None,
                })
                .collect()
        })
        .collect()
}

#[test]
fn the_rule_checker_refuses_what_prometheus_refuses() {
    // The checker must catch what it is here for, or the test below proves nothing.
    for (bad, needle) in [
        (
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: 'rate(x[5m] >'\n",
            "could not parse expression",
        ),
        (
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: x\n    annotations: {s: '{{ $labels.node '}\n",
            "annotation",
        ),
        (
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: x\n    fore: 5m\n",
            "fore",
        ),
    ] {
        let (ok, out) = check_rules(bad);
        assert!(!ok && out.contains(needle), "{bad}: {out}");
    }
    let (ok, out) = check_rules(
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: deriv(a[15m]) > 0 and on() b{x=\"1\"} or {__name__=\"c\"}\n",
    );
    assert!(ok, "{out}");
    let rules: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(
        rule_metrics(&rules),
        ["a", "b", "c"].map(String::from).into()
    );
}

#[test]
fn the_chart_rules_parse_and_are_the_documented_alerts() {
    let all = format!("{WORKSPACE}/deploy/helm/hostready/ci/all-values.yaml");
    let anchors = doc_anchors();
    for args in [
        vec!["--set", "monitoring.prometheusRule.enabled=true"],
        vec!["--values", all.as_str()],
    ] {
        let rules = parsed_rules(&args);
        let names: Vec<&str> = rules.iter().map(|r| r["alert"].as_str().unwrap()).collect();
        assert_eq!(names, ALERTS, "{args:?}");
        for r in &rules {
            let name = r["alert"].as_str().unwrap();
            let sev = r["labels"]["severity"].as_str().unwrap_or_default();
            assert!(["warning", "critical"].contains(&sev), "{name}: {sev:?}");
            for a in ["summary", "description"] {
                let text = r["annotations"][a].as_str().unwrap_or_default();
                assert!(text.contains("{{ $labels.node }}"), "{name} {a}: {text}");
            }
            let url = r["annotations"]["runbook_url"].as_str().unwrap();
            let (base, anchor) = url.split_once('#').unwrap();
            assert!(base.ends_with("agent.md"), "{name}: {url}");
            assert_eq!(anchor, name.to_lowercase(), "{name}: {url}");
            assert!(
                anchors.contains(anchor),
                "{name}: docs/agent.md has no heading for #{anchor}"
            );
            assert!(!r["metrics"].as_array().unwrap().is_empty(), "{name}");
        }
        // What names the database, the pile and the condition: the metrics' own labels.
        let by = |n: &str| rules.iter().find(|r| r["alert"] == n).unwrap();
        for (alert, label) in [
            ("HostreadyProcessPileUp", "command"),
            ("HostreadyPackageDatabaseLocked", "database"),
            ("HostreadyPackageDatabaseCorrupt", "database"),
            ("HostreadyReadinessConditionFalse", "condition"),
        ] {
            let d = by(alert)["annotations"]["description"].as_str().unwrap();
            assert!(d.contains(&format!("$labels.{label}")), "{alert}: {d}");
        }
    }
    // The thresholds follow the values.
    let rules = parsed_rules(&["--values", &all]);
    let expr = |n: &str| {
        rules.iter().find(|r| r["alert"] == n).unwrap()["expr"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(expr("HostreadyProcessPileUp").contains(">= 25"));
    assert!(expr("HostreadyWatchStalled").contains("> 600"));
    assert!(expr("HostreadyAgentDown").contains("job=\"storage/hostready-pods\""));
    let locked = rules
        .iter()
        .find(|r| r["alert"] == "HostreadyPackageDatabaseLocked")
        .unwrap();
    assert_eq!(locked["for"], "15m");
    // By default the PodMonitor's job.
    let rules = parsed_rules(&["--set", "monitoring.prometheusRule.enabled=true"]);
    let down = rules
        .iter()
        .find(|r| r["alert"] == "HostreadyAgentDown")
        .unwrap();
    assert_eq!(
        down["expr"],
        "up{job=\"hostready-system/hostready-agent\"} == 0"
    );
}

#[test]
fn every_metric_the_rules_use_is_registered_and_exported_by_a_running_agent() {
    let rules = parsed_rules(&["--set", "monitoring.prometheusRule.enabled=true"]);
    let used = rule_metrics(&rules);
    // The list of what metrics.rs registers (reconciled by the lead when branches merge).
    let unregistered: Vec<&String> = used
        .iter()
        .filter(|m| !REGISTERED.contains(&m.as_str()) && !SCRAPE_SERIES.contains(&m.as_str()))
        .collect();
    assert!(
        unregistered.is_empty(),
        "the rules use metrics the agent does not register: {unregistered:?}"
    );

    // A real agent's scrape.
    let env = KubeEnv::start();
    let client = env.client();
    create_node_with_kubelet_conditions(&client, "node-alerts");
    let host = TestHost::debian_with_longhorn_packages();
    let agent = Agent::start(
        &env.kubeconfig,
        &host.args(
            "node-alerts",
            &["--metrics-addr", "127.0.0.1:0", "-p", "longhorn"],
        ),
    );
    let addr = agent.metrics_addr();
    let text = wait_for("the conditions published", Duration::from_secs(60), || {
        let (code, text) = http_get(&addr, "/metrics");
        // The watch pass publishes HostProcessesHealthy first; wait for the check's condition.
        (code == 200 && text.contains("hostready_condition_status{condition=\"LonghornReady\""))
            .then_some(text)
    });
    // A family is exported when it has a `# TYPE` line (a family with no series yet, e.g. no
    // pile on this host, still has one) or a sample.
    let mut exported = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            exported.insert(rest.split(' ').next().unwrap().to_string());
        } else if !line.starts_with('#') && !line.is_empty() {
            exported.insert(line[..line.find(['{', ' ']).unwrap()].to_string());
        }
    }
    // The label values the condition alert selects on are the agent's.
    assert!(
        text.contains("hostready_condition_status{condition=\"LonghornReady\",status=\"False\"}"),
        "{text}"
    );
    let missing: Vec<&String> = used
        .iter()
        .filter(|m| !exported.contains(*m) && !SCRAPE_SERIES.contains(&m.as_str()))
        .collect();
    let never: Vec<&&String> = missing
        .iter()
        .filter(|m| !PROBLEM_ONLY.contains(&m.as_str()))
        .collect();
    assert!(
        never.is_empty(),
        "the rules use metrics a running agent does not export: {never:?}\nscrape:\n{text}"
    );
    let incident = include_str!("e2e_watch.rs");
    for m in PROBLEM_ONLY {
        assert!(
            incident.contains(&format!("\"{m}{{")),
            "{m} is used by the rules but tests/e2e_watch.rs no longer asserts it in an incident's scrape"
        );
    }
}
