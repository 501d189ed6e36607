//! The genuine helm v3 CLI for the tests of the chart (`deploy/helm/hostready`): built from the
//! Go module proxy by `scripts/go-tool helm` (pinned in `tools/helm/go.mod`, cached in
//! `.cache/go-tools`), run with config and cache dirs of its own under target/.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde_yaml_ng::Value;

use super::WORKSPACE;

/// The chart's directory.
pub fn chart() -> String {
    format!("{WORKSPACE}/deploy/helm/hostready")
}

/// Builds a Go tool of tools/ (`scripts/go-tool`; minutes the first time, then cached) and
/// returns its path.
pub fn go_tool(name: &str) -> PathBuf {
    let out = Command::new(format!("{WORKSPACE}/scripts/go-tool"))
        .arg(name)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("run scripts/go-tool {name}: {e}"));
    assert!(out.status.success(), "scripts/go-tool {name} failed");
    PathBuf::from(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .last()
            .unwrap(),
    )
}

/// The helm binary, built once per test binary.
pub fn helm_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| go_tool("helm"))
}

/// Runs helm with its own config and cache dirs (nothing from the user's ~/.config/helm; kept
/// under target/, not left in /tmp), against `kubeconfig` if given and no cluster otherwise.
pub fn helm(args: &[&str], kubeconfig: Option<&Path>) -> Output {
    let home = Path::new(env!("CARGO_TARGET_TMPDIR")).join("helm-home");
    let mut cmd = Command::new(helm_bin());
    cmd.args(args)
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"))
        // client-go's discovery cache goes to $HOME/.kube/cache.
        .env("HOME", &home)
        .env_remove("KUBECONFIG");
    if let Some(kc) = kubeconfig {
        cmd.env("KUBECONFIG", kc);
    }
    cmd.output().unwrap()
}

/// `helm template` of the chart as `release` in `namespace`, then `extra`: the rendered
/// documents; panics with helm's message if it fails.
pub fn template(release: &str, namespace: &str, extra: &[&str]) -> Vec<Value> {
    let chart = chart();
    let mut args = vec!["template", release, &chart, "--namespace", namespace];
    args.extend_from_slice(extra);
    let out = helm(&args, None);
    assert!(
        out.status.success(),
        "helm template {extra:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    docs(&String::from_utf8(out.stdout).unwrap())
}

/// The YAML documents of `text`, empty ones left out.
pub fn docs(text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}
