//! The admission policy as shipped twice — `deploy/manifests/policy.yaml` (applied to a real API
//! server by `tests/e2e_policy.rs`) and the Helm chart's `templates/policy.yaml` — says the
//! same thing, and the condition types it lets the agent write are exactly those of the
//! built-in profiles. This check needs no helm (`tests/chart.rs` renders the whole chart with
//! the real one): the template is rendered here by substituting its few placeholders with the
//! values a release `hostready` in namespace `hostready-system` gets.

// Tests build fake hosts and read fixtures on this machine directly.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeSet;

use serde_yaml_ng::Value;

use hostready_testkit::WORKSPACE;

fn docs(text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect()
}

/// Returns the condition type names in a CEL list literal (`['A', 'B']` or `["A","B"]`).
fn names(expr: &str) -> BTreeSet<String> {
    expr.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .map(|s| s.trim().trim_matches(|c| c == '\'' || c == '"').to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Takes the `ownTypes` variable's expression out of a policy document.
fn take_own_types(policy: &mut Value) -> String {
    let vars = policy["spec"]["variables"].as_sequence_mut().unwrap();
    let i = vars
        .iter()
        .position(|v| v["name"] == "ownTypes")
        .expect("an ownTypes variable");
    vars.remove(i)["expression"].as_str().unwrap().to_string()
}

#[test]
fn chart_and_manifest_policies_agree_and_allow_exactly_the_builtin_conditions() {
    let manifest =
        std::fs::read_to_string(format!("{WORKSPACE}/deploy/manifests/policy.yaml")).unwrap();
    let template = std::fs::read_to_string(format!(
        "{WORKSPACE}/deploy/helm/hostready/templates/policy.yaml"
    ))
    .unwrap();
    let values: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(format!("{WORKSPACE}/deploy/helm/hostready/values.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(values["admissionPolicy"]["enabled"], Value::Bool(true));

    let mut builtin_line = None;
    let rendered: String = template
        .lines()
        .filter(|l| {
            let t = l.trim();
            if t.starts_with("{{- $builtin := list ") {
                builtin_line = Some(t.to_string());
                return false;
            }
            !(t.starts_with("{{- if ") || t == "{{- end }}" || t.starts_with("labels: {{-"))
        })
        .map(|l| {
            l.replace("{{ .Release.Namespace }}", "hostready-system")
                .replace(
                    r#"{{ include "hostready.serviceAccountName" . }}"#,
                    "hostready-agent",
                )
                .replace("{{ .Release.Name }}", "hostready")
        })
        .collect::<Vec<_>>()
        .join("\n");
    let builtin: BTreeSet<String> = builtin_line
        .expect("the $builtin list")
        .trim_start_matches("{{- $builtin := list ")
        .trim_end_matches("}}")
        .split_whitespace()
        .map(|s| s.trim_matches('"').to_string())
        .collect();
    let rendered = rendered.replace(
        "{{ concat $builtin .Values.admissionPolicy.extraConditionTypes | toJson | squote }}",
        "'[]'",
    );
    assert!(!rendered.contains("{{"), "unrendered: {rendered}");

    let mut m = docs(&manifest);
    let mut c = docs(&rendered);
    assert_eq!(m.len(), 2);
    let m_types = names(&take_own_types(&mut m[0]));
    take_own_types(&mut c[0]);
    assert_eq!(
        m, c,
        "the chart's policy differs from deploy/manifests/policy.yaml"
    );

    // Exactly the built-in profiles' condition types and HostProcessesHealthy, in both.
    let mut expected: BTreeSet<String> = hostready_checks::profile::builtin_names()
        .into_iter()
        .map(|n| hostready_checks::profile::load(n).unwrap().condition_type())
        .collect();
    // And the watch pass's own condition.
    expected.insert(hostready_agent::WATCH_CONDITION.to_string());
    assert_eq!(m_types, expected, "deploy/manifests/policy.yaml ownTypes");
    assert_eq!(builtin, expected, "the chart's $builtin list");
    let kubelet = [
        "Ready",
        "MemoryPressure",
        "DiskPressure",
        "PIDPressure",
        "NetworkUnavailable",
    ];
    assert!(expected.iter().all(|t| !kubelet.contains(&t.as_str())));
}
