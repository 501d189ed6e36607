//! The Helm chart (`deploy/helm/hostready`), checked with the genuine helm v3 CLI (built from
//! the Go module proxy by `scripts/go-tool helm`, pinned in `tools/helm/go.mod`) and a real
//! kube-apiserver:
//!
//! - `helm lint --strict` is clean with the default values and with `ci/all-values.yaml`, which
//!   sets every key of `values.yaml` to something else;
//! - `values.schema.json` refuses wrong types, unknown keys and a duration without a unit
//!   (`config.interval: 30`, which the agent refuses at start), naming the key;
//! - the chart's defaults render the same objects as `deploy/manifests/` (apart from the
//!   release's bookkeeping labels and the config checksum), so the two cannot drift;
//! - the config file it renders is one the agent accepts;
//! - the PodMonitor and PrometheusRule render only when the cluster serves their kinds
//!   (`auto`) or when turned on, never when turned off;
//! - every object rendered with every value set passes a server-side dry run (admission and
//!   validation run, nothing is stored; the monitoring objects against stand-in CRDs,
//!   `ci/prometheus-operator-crds.yaml`, with strict field validation), and a real `helm install --create-namespace` works and
//!   its NOTES warn that the new namespace's Pod Security level refuses the agent's pods —
//!   which the API server confirms by refusing the pod under `baseline`.
//!
//! The kube-apiserver tests start kube-testenv (common::KubeEnv); leave them out with `--skip`.

// Tests build fake hosts and read fixtures on this machine directly, not a host's root.
#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use common::helm::{chart, docs, helm, template};
use common::*;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_yaml_ng::Value;

fn all_values() -> String {
    format!("{}/ci/all-values.yaml", chart())
}

fn key(obj: &Value) -> (String, String) {
    (
        obj["kind"].as_str().unwrap().to_string(),
        obj["metadata"]["name"].as_str().unwrap().to_string(),
    )
}

#[test]
fn lint_strict_is_clean_with_default_and_every_value() {
    let chart = chart();
    let all = all_values();
    for extra in [vec![], vec!["--values", all.as_str()]] {
        let mut args = vec!["lint", "--strict", chart.as_str()];
        args.extend_from_slice(&extra);
        let out = helm(&args, None);
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "helm lint --strict {extra:?}: {text}");
        assert!(
            !text.contains("[WARNING]") && !text.contains("[ERROR]"),
            "helm lint --strict {extra:?}: {text}"
        );
        assert!(
            text.contains("1 chart(s) linted, 0 chart(s) failed"),
            "{text}"
        );
    }
}

/// Every leaf of `v` (a scalar, a list, or an empty map) with its dotted path.
fn leaves(v: &Value, path: String, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Mapping(m) if !m.is_empty() => {
            for (k, v) in m {
                let k = k.as_str().unwrap();
                let p = if path.is_empty() {
                    k.to_string()
                } else {
                    format!("{path}.{k}")
                };
                leaves(v, p, out);
            }
        }
        other => {
            out.insert(path, other.clone());
        }
    }
}

#[test]
fn all_values_file_sets_every_value_to_something_else() {
    let read =
        |p: String| -> Value { serde_yaml_ng::from_str(&fs::read_to_string(p).unwrap()).unwrap() };
    let (mut defaults, mut all) = (BTreeMap::new(), BTreeMap::new());
    leaves(
        &read(format!("{}/values.yaml", chart())),
        String::new(),
        &mut defaults,
    );
    leaves(&read(all_values()), String::new(), &mut all);
    // Values a test must leave as they are for the render to be checkable: the policy must be
    // rendered to be dry-run, the scrape annotations to be seen, the ServiceAccount created.
    // And the one node selector every agent needs (the image is Linux's).
    let kept = [
        "nodeSelector.kubernetes.io/os",
        "admissionPolicy.enabled",
        "metrics.scrapeAnnotations",
        "serviceAccount.create",
        "updateStrategy.type",
    ];
    for (path, default) in &defaults {
        // A leaf of the defaults is set in the file either as a leaf or as a filled map.
        let set: Vec<&Value> = all
            .iter()
            .filter(|(p, _)| *p == path || p.starts_with(&format!("{path}.")))
            .map(|(_, v)| v)
            .collect();
        assert!(!set.is_empty(), "ci/all-values.yaml does not set {path}");
        if !kept.contains(&path.as_str()) {
            assert!(
                set.len() > 1 || set[0] != default,
                "ci/all-values.yaml sets {path} to its default {default:?}"
            );
        }
    }
}

#[test]
fn schema_refuses_wrong_types_unknown_keys_and_durations_without_unit() {
    let chart = chart();
    for (set, needle) in [
        // The agent refuses a bare number (it used to crash-loop after a clean install).
        ("config.interval=30", "/config/interval"),
        ("config.heartbeat=5", "/config/heartbeat"),
        ("config.interval=30x", "/config/interval"),
        ("config.path=usr/bin", "/config/path"),
        ("config.profiles=longhorn", "/config/profiles"),
        ("metrics.port=http", "/metrics/port"),
        ("metrics.port=70000", "/metrics/port"),
        ("image.pullPolicy=Sometimes", "/image/pullPolicy"),
        (
            "updateStrategy.rollingUpdate.maxUnavailable=ten",
            "maxUnavailable",
        ),
        ("updateStrategy.type=Recreate", "/updateStrategy/type"),
        ("serviceAccount.create=maybe", "/serviceAccount/create"),
        ("intervall=30m", "intervall"),
        ("config.intervall=30m", "intervall"),
        ("metrics.prot=9808", "prot"),
    ] {
        let (k, v) = set.split_once('=').unwrap();
        // --set-string for the string-typed keys so the pattern, not the type, is what fails.
        let flag = if ["metrics.port", "serviceAccount.create", "config.profiles"].contains(&k)
            || k.contains("prot")
        {
            "--set"
        } else {
            "--set-string"
        };
        let arg = format!("{k}={v}");
        let out = helm(&["template", "x", &chart, flag, &arg], None);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{set} was accepted");
        assert!(
            err.contains("values don't meet the specifications of the schema")
                && err.contains(needle),
            "{set}: {err}"
        );
    }
    // And with a plain --set, 30 is a number where a duration string belongs.
    let out = helm(
        &["template", "x", &chart, "--set", "config.interval=30"],
        None,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("/config/interval"),
        "{err}"
    );
    // The durations the agent takes pass.
    for d in ["30m", "90s", "1h30m", "250ms", "1h"] {
        let arg = format!("config.interval={d}");
        let out = helm(&["template", "x", &chart, "--set-string", &arg], None);
        assert!(
            out.status.success(),
            "{d}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The labels that only say which Helm release made an object.
const RELEASE_LABELS: [&str; 4] = [
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
];

/// Takes out what differs between a Helm release and a plain apply without changing what the
/// object does: the objects' own labels, the release labels of the pod template and selector
/// (both sides keep `app.kubernetes.io/name`), the config checksum; the config file compared
/// as YAML, not text (the manifest's has comments).
fn normalise(mut obj: Value) -> Value {
    if let Some(m) = obj["metadata"].as_mapping_mut() {
        m.remove("labels");
    }
    if obj["kind"] == "DaemonSet" {
        for path in [
            ["spec", "selector", "matchLabels", ""],
            ["spec", "template", "metadata", "labels"],
        ] {
            let mut labels = &mut obj;
            for k in path.iter().filter(|k| !k.is_empty()) {
                labels = &mut labels[*k];
            }
            let m = labels.as_mapping_mut().unwrap();
            for k in RELEASE_LABELS {
                m.remove(k);
            }
        }
        let ann = obj["spec"]["template"]["metadata"]["annotations"]
            .as_mapping_mut()
            .unwrap();
        ann.remove("checksum/config");
    }
    if obj["kind"] == "ConfigMap" {
        let data = obj["data"].as_mapping_mut().unwrap();
        for (_, v) in data.iter_mut() {
            let parsed: Value = serde_yaml_ng::from_str(v.as_str().unwrap()).unwrap();
            *v = parsed;
        }
    }
    obj
}

#[test]
fn chart_defaults_render_the_plain_manifests() {
    let chart: BTreeMap<_, _> = template("hostready", "hostready-system", &[])
        .into_iter()
        .map(|o| (key(&o), normalise(o)))
        .collect();
    let mut manifests = BTreeMap::new();
    let mut files: Vec<_> = fs::read_dir(format!("{WORKSPACE}/deploy/manifests"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        for o in docs(&fs::read_to_string(&f).unwrap()) {
            manifests.insert(key(&o), (f.clone(), o));
        }
    }
    // The Namespace is the manifests' own: a Helm release installs into one (NOTES.txt says
    // which label it needs, and the plain manifest sets exactly that).
    let (_, ns) = manifests
        .remove(&("Namespace".to_string(), "hostready-system".to_string()))
        .expect("deploy/manifests/namespace.yaml");
    assert_eq!(
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"], "privileged",
        "namespace.yaml"
    );
    assert_eq!(
        chart.keys().collect::<Vec<_>>(),
        manifests.keys().collect::<Vec<_>>(),
        "the chart's objects and deploy/manifests/' differ"
    );
    for (k, (file, m)) in manifests {
        let m = normalise(m);
        let c = &chart[&k];
        assert!(
            &m == c,
            "{k:?}: deploy/manifests/{} differs from the chart's defaults.\nmanifest:\n{}\nchart:\n{}",
            file.file_name().unwrap().to_string_lossy(),
            serde_yaml_ng::to_string(&m).unwrap(),
            serde_yaml_ng::to_string(c).unwrap()
        );
    }
    let notes = fs::read_to_string(format!(
        "{WORKSPACE}/deploy/helm/hostready/templates/NOTES.txt"
    ))
    .unwrap();
    assert!(notes.contains("pod-security.kubernetes.io/enforce=privileged"));
}

/// Writes the rendered ConfigMap's files into `dir` and returns the config's path.
fn write_config(objs: &[Value], dir: &Path) -> PathBuf {
    let cm = objs.iter().find(|o| o["kind"] == "ConfigMap").unwrap();
    for (name, text) in cm["data"].as_mapping().unwrap() {
        fs::write(dir.join(name.as_str().unwrap()), text.as_str().unwrap()).unwrap();
    }
    dir.join("agent.yaml")
}

#[test]
fn the_agent_accepts_the_config_the_chart_renders() {
    let defaults = hostready_agent::Defaults {
        profiles: vec![],
        interval: std::time::Duration::from_secs(1800),
        heartbeat: std::time::Duration::from_secs(300),
        search_path: hostready_host::exe::DEFAULT_PATH.to_string(),
    };
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(&template("hostready", "hostready-system", &[]), dir.path());
    let s = hostready_agent::Settings::load(&path, &defaults).unwrap();
    assert_eq!(s.profiles.len(), 1);
    assert_eq!(s.interval, std::time::Duration::from_secs(1800));
    assert_eq!(s.watch_interval, Some(std::time::Duration::from_secs(60)));
    assert_eq!(s.thresholds.min_count, 10);
    assert_eq!(
        s.scheduling_labels,
        Some(false),
        "scheduling labels are opt-in"
    );

    let all = all_values();
    let objs = template("hs", "storage", &["--values", &all]);
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(&objs, dir.path());
    let text = fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("path: \"/run/current-system/sw/bin:/run/current-system/sw/sbin\"\n"),
        "{text}"
    );
    let s = hostready_agent::Settings::load(&path, &defaults).unwrap();
    assert_eq!(s.profiles.len(), 3, "longhorn, nfs-client and ./site.yaml");
    assert_eq!(s.interval, std::time::Duration::from_secs(5400));
    assert_eq!(s.heartbeat, std::time::Duration::from_secs(90));
    assert_eq!(
        s.search_path,
        "/run/current-system/sw/bin:/run/current-system/sw/sbin"
    );
    // The watch pass's keys (issue 12): interval, pile thresholds, and the extra crowds on top
    // of doctor's own list.
    assert_eq!(s.watch_interval, Some(std::time::Duration::from_secs(120)));
    assert_eq!(s.scheduling_labels, Some(true));
    assert_eq!(s.thresholds.min_count, 20);
    assert_eq!(s.thresholds.min_age_secs, 300);
    for extra in ["java", "postgres"] {
        assert!(s.thresholds.expected.iter().any(|e| e == extra), "{extra}");
    }
}

fn create_namespace(client: &kube::Client, name: &str, enforce: Option<&str>) {
    let mut labels = serde_json::Map::new();
    if let Some(level) = enforce {
        labels.insert("pod-security.kubernetes.io/enforce".into(), level.into());
    }
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "labels": labels}
    }))
    .unwrap();
    let api: Api<Namespace> = Api::all(client.clone());
    block(api.patch(
        name,
        &PatchParams::apply("chart-test").force(),
        &Patch::Apply(&ns),
    ))
    .unwrap();
}

/// A server-side apply as a dry run: the API server decodes, defaults, validates and admits
/// the object, and stores nothing.
fn dry_run_apply(client: &kube::Client, obj: &Value) -> kube::Result<DynamicObject> {
    let d: DynamicObject = serde_yaml_ng::from_value(obj.clone()).unwrap();
    let api = api_for(client, &d);
    let mut pp = PatchParams::apply("chart-test").force();
    pp.dry_run = true;
    // The monitoring objects' CRDs (ci/prometheus-operator-crds.yaml) type only the fields
    // the chart uses: strict, so a field they do not know is refused, not silently pruned.
    if d.types.as_ref().unwrap().api_version == "monitoring.coreos.com/v1" {
        pp = pp.validation(kube::api::ValidationDirective::Strict);
    }
    block(api.patch(d.metadata.name.as_deref().unwrap(), &pp, &Patch::Apply(&d)))
}

/// Creates the stand-in Prometheus Operator CRDs (`ci/prometheus-operator-crds.yaml`) and
/// waits until the API server serves them.
fn install_monitoring_crds(client: &kube::Client) {
    let text = fs::read_to_string(format!("{}/ci/prometheus-operator-crds.yaml", chart())).unwrap();
    for crd in docs(&text) {
        let d: DynamicObject = serde_yaml_ng::from_value(crd).unwrap();
        let api = api_for(client, &d);
        let name = d.metadata.name.clone().unwrap();
        block(api.patch(
            &name,
            &PatchParams::apply("chart-test").force(),
            &Patch::Apply(&d),
        ))
        .unwrap_or_else(|e| panic!("CRD {name}: {e}"));
        wait_for(
            "the CRD established",
            std::time::Duration::from_secs(30),
            || {
                let got = block(api.get(&name)).ok()?;
                let conds = got.data["status"]["conditions"].as_array()?.clone();
                conds
                    .iter()
                    .any(|c| c["type"] == "Established" && c["status"] == "True")
                    .then_some(())
            },
        );
    }
}

fn kinds_of(objs: &[Value]) -> Vec<String> {
    objs.iter().map(|o| key(o).0).collect()
}

#[test]
fn monitoring_objects_render_when_the_operator_kinds_are_served_or_asked_for() {
    let monitoring = ["PodMonitor", "PrometheusRule"];
    let has = |objs: &[Value], kind: &str| kinds_of(objs).iter().any(|k| k == kind);
    // auto (the default) on a cluster without the operator: neither.
    let objs = template("hostready", "hostready-system", &[]);
    for k in monitoring {
        assert!(!has(&objs, k), "{k} rendered without the operator's CRDs");
    }
    // auto, the cluster serving each kind: each alone, then both.
    for k in monitoring {
        let api = format!("monitoring.coreos.com/v1/{k}");
        let objs = template("hostready", "hostready-system", &["--api-versions", &api]);
        for m in monitoring {
            assert_eq!(has(&objs, m), m == k, "--api-versions {api}: {m}");
        }
    }
    // The group version without the kind (a cluster with only the ServiceMonitor CRD).
    let objs = template(
        "hostready",
        "hostready-system",
        &["--api-versions", "monitoring.coreos.com/v1"],
    );
    for k in monitoring {
        assert!(!has(&objs, k), "{k} rendered for the group version alone");
    }
    // Turned on without the CRDs, and off with them.
    let objs = template(
        "hostready",
        "hostready-system",
        &[
            "--set",
            "monitoring.podMonitor.enabled=true",
            "--set",
            "monitoring.prometheusRule.enabled=true",
        ],
    );
    for k in monitoring {
        assert!(has(&objs, k), "{k} not rendered when enabled");
    }
    let objs = template(
        "hostready",
        "hostready-system",
        &[
            "--api-versions",
            "monitoring.coreos.com/v1/PodMonitor",
            "--api-versions",
            "monitoring.coreos.com/v1/PrometheusRule",
            "--set",
            "monitoring.podMonitor.enabled=false",
            "--set",
            "monitoring.prometheusRule.enabled=false",
        ],
    );
    for k in monitoring {
        assert!(!has(&objs, k), "{k} rendered when disabled");
    }
    // The PodMonitor scrapes the DaemonSet's pods on their metrics port and names the node.
    let objs = template(
        "hostready",
        "hostready-system",
        &["--values", &all_values()],
    );
    let pm = objs.iter().find(|o| o["kind"] == "PodMonitor").unwrap();
    let ds = objs.iter().find(|o| o["kind"] == "DaemonSet").unwrap();
    assert_eq!(
        pm["spec"]["selector"]["matchLabels"],
        ds["spec"]["selector"]["matchLabels"]
    );
    assert_eq!(
        pm["spec"]["podMetricsEndpoints"][0]["port"],
        ds["spec"]["template"]["spec"]["containers"][0]["ports"][0]["name"]
    );
    assert_eq!(pm["spec"]["podMetricsEndpoints"][0]["interval"], "30s");
    assert_eq!(pm["metadata"]["labels"]["release"], "kube-prometheus-stack");
    let relabel = &pm["spec"]["podMetricsEndpoints"][0]["relabelings"][0];
    assert_eq!(
        relabel["sourceLabels"][0],
        "__meta_kubernetes_pod_node_name"
    );
    assert_eq!(relabel["targetLabel"], "node");
    // The schema: auto, true or false, nothing else.
    let out = helm(
        &[
            "template",
            "x",
            &chart(),
            "--set-string",
            "monitoring.podMonitor.enabled=yes",
        ],
        None,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("/monitoring/podMonitor/enabled"),
        "{err}"
    );
}

/// The DaemonSet's pod, as its controller would create it, in `namespace`.
fn pod_of(objs: &[Value], namespace: &str) -> Value {
    let ds = objs.iter().find(|o| o["kind"] == "DaemonSet").unwrap();
    let mut pod: Value = serde_yaml_ng::from_str(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: agent-probe, namespace: {namespace}}}\n"
    ))
    .unwrap();
    pod["spec"] = ds["spec"]["template"]["spec"].clone();
    pod
}

#[test]
fn every_rendered_object_passes_the_api_server_and_install_notes_say_the_pod_security_level() {
    let env = KubeEnv::start();
    let client = env.client();

    // Every value set: each object through a server-side dry run.
    let all = all_values();
    let objs = template("hs", "storage", &["--values", &all]);
    create_namespace(&client, "storage", Some("privileged"));
    create_namespace(&client, "storage-events", None);
    install_monitoring_crds(&client);
    let kinds: Vec<String> = objs.iter().map(|o| key(o).0).collect();
    for kind in [
        "ServiceAccount",
        "ConfigMap",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "DaemonSet",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "PodMonitor",
        "PrometheusRule",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "no {kind} rendered: {kinds:?}"
        );
    }
    for o in &objs {
        dry_run_apply(&client, o).unwrap_or_else(|e| panic!("{:?}: {e}", key(o)));
    }
    // The stand-in CRDs' schemas bite: a misplaced field and a wrong type are refused.
    let rule = objs.iter().find(|o| o["kind"] == "PrometheusRule").unwrap();
    let mut bad = rule.clone();
    bad["spec"]["groups"][0]["rules"][0]["fore"] = Value::from("5m");
    match dry_run_apply(&client, &bad) {
        Err(kube::Error::Api(s)) if s.message.contains("fore") => {}
        other => panic!("an unknown rule field was accepted: {other:?}"),
    }
    let mut bad = rule.clone();
    bad["spec"]["groups"][0]["rules"][0]["for"] = Value::from("ten minutes");
    assert!(
        dry_run_apply(&client, &bad).is_err(),
        "a malformed `for` was accepted"
    );
    // The DaemonSet's pod itself: the privileged level admits it, baseline refuses it, and
    // says why — what a `--create-namespace` install on a baseline cluster runs into. The pod
    // needs its ServiceAccount to exist, so that one is created for real.
    for o in objs.iter().filter(|o| o["kind"] == "ServiceAccount") {
        let d: DynamicObject = serde_yaml_ng::from_value(o.clone()).unwrap();
        let api = api_for(&client, &d);
        block(api.patch(
            d.metadata.name.as_deref().unwrap(),
            &PatchParams::apply("chart-test").force(),
            &Patch::Apply(&d),
        ))
        .unwrap();
        let mut in_baseline = d.clone();
        in_baseline.metadata.namespace = Some("baseline-ns".into());
        create_namespace(&client, "baseline-ns", Some("baseline"));
        block(api_for(&client, &in_baseline).patch(
            d.metadata.name.as_deref().unwrap(),
            &PatchParams::apply("chart-test").force(),
            &Patch::Apply(&in_baseline),
        ))
        .unwrap();
    }
    dry_run_apply(&client, &pod_of(&objs, "storage")).expect("the pod under privileged");
    match dry_run_apply(&client, &pod_of(&objs, "baseline-ns")) {
        Err(kube::Error::Api(s)) if s.code == 403 && s.message.contains("violates PodSecurity") => {
            assert!(
                // hostPath of / only: the pod no longer asks for hostPID (docs/image.md).
                s.message.contains("hostPath") && !s.message.contains("hostPID"),
                "{}",
                s.message
            );
        }
        other => panic!("baseline admitted the agent's pod: {other:?}"),
    }
    // A ServiceAccount not created by the chart: the rest is still valid and bound to it.
    let objs = template(
        "ext",
        "storage",
        &[
            "--set",
            "serviceAccount.create=false",
            "--set",
            "serviceAccount.name=existing",
        ],
    );
    assert!(objs.iter().all(|o| o["kind"] != "ServiceAccount"));
    for o in &objs {
        if o["kind"] == "ClusterRoleBinding" || o["kind"] == "RoleBinding" {
            assert_eq!(o["subjects"][0]["name"], "existing");
        }
        dry_run_apply(&client, o).unwrap_or_else(|e| panic!("{:?}: {e}", key(o)));
    }

    // A real install with the defaults into a namespace helm creates: the objects are created,
    // and NOTES say how to see the result and that the namespace needs a label.
    let chart = chart();
    let install = |extra: &[&str]| {
        let mut args = vec!["upgrade", "--install", "hostready", chart.as_str()];
        args.extend_from_slice(&["--namespace", "hostready-system", "--create-namespace"]);
        args.extend_from_slice(extra);
        let out = helm(&args, Some(&env.kubeconfig));
        assert!(
            out.status.success(),
            "helm install: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let notes = install(&[]);
    eprintln!("{notes}");
    let types: Vec<String> = ["longhorn"]
        .iter()
        .map(|n| hostready_checks::profile::load(n).unwrap().condition_type())
        .collect();
    for t in &types {
        assert!(
            notes.contains(&format!(".status.conditions[?(@.type==\"{t}\")].status")),
            "NOTES lack the {t} column: {notes}"
        );
    }
    for needle in [
        "kubectl get nodes -o custom-columns='NODE:.metadata.name,",
        "hostready cluster",
        "kubectl label namespace hostready-system pod-security.kubernetes.io/enforce=privileged",
        "WARNING: namespace hostready-system did not exist before this install",
        ":9808/metrics",
    ] {
        assert!(notes.contains(needle), "NOTES lack {needle:?}: {notes}");
    }
    let ds: Api<DynamicObject> = api_for(
        &client,
        &serde_yaml_ng::from_str(
            "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: hostready-agent, namespace: hostready-system}",
        )
        .unwrap(),
    );
    block(ds.get("hostready-agent")).expect("the installed DaemonSet");
    // The CRDs installed above: `auto` saw the kinds in the cluster's discovery (helm's
    // capabilities list them as group/version/Kind) and installed both monitoring objects.
    for (kind, api_version) in [
        ("PodMonitor", "monitoring.coreos.com/v1"),
        ("PrometheusRule", "monitoring.coreos.com/v1"),
    ] {
        let api = api_for(
            &client,
            &serde_yaml_ng::from_str(&format!(
                "apiVersion: {api_version}\nkind: {kind}\nmetadata: {{name: hostready-agent, namespace: hostready-system}}"
            ))
            .unwrap(),
        );
        block(api.get("hostready-agent"))
            .unwrap_or_else(|e| panic!("auto did not install the {kind}: {e}"));
    }
    // Labelled as NOTES say: the warning is gone.
    create_namespace(&client, "hostready-system", Some("privileged"));
    let notes = install(&[]);
    assert!(!notes.contains("WARNING"), "{notes}");
    create_namespace(&client, "hostready-system", Some("baseline"));
    let notes = install(&[]);
    assert!(
        notes.contains(
            "WARNING: namespace hostready-system has pod-security.kubernetes.io/enforce=baseline"
        ),
        "{notes}"
    );
    create_namespace(&client, "hostready-system", Some("privileged"));
    // The NOTES' events line: the API server takes its field selector (an unknown field is a
    // 400), in the core Events API kubectl lists.
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), "default");
    assert!(notes.contains("--field-selector reportingComponent=hostready.dev/agent"));
    block(
        events.list(
            &kube::api::ListParams::default().fields("reportingComponent=hostready.dev/agent"),
        ),
    )
    .expect("the NOTES' field selector");
    assert!(
        block(events.list(&kube::api::ListParams::default().fields("noSuchField=x"))).is_err(),
        "the API server takes any field selector: the check above proves nothing"
    );
    // Every built-in profile: a column for each condition type.
    let names = hostready_checks::profile::builtin_names();
    let list = format!("config.profiles={{{}}}", names.join(","));
    let notes = install(&["--set", &list]);
    for n in names {
        let t = hostready_checks::profile::load(n).unwrap().condition_type();
        assert!(
            notes.contains(&format!(
                "{}:.status.conditions[?(@.type==\"{t}\")].status",
                t.to_uppercase()
            )),
            "NOTES lack the {t} column of profile {n}: {notes}"
        );
    }
}
