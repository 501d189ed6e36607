//! The container image (`scripts/image build`: FROM scratch, the static binary) run by podman
//! as the shipped DaemonSet runs it: the podman flags are derived from
//! `deploy/manifests/daemonset.yaml` (hostPID, the container's securityContext, its memory
//! limit, the host's `/` at `/host` read-only with HostToContainer propagation), so a change of
//! the manifest is a change of what this test runs.
//!
//! - `hostready check --root /host` in the container decides every item the same binary decides
//!   on the host itself, with the same status; so does it without the host's PID namespace and
//!   with every privilege podman could add (`--privileged`): neither is needed.
//! - The agent in the container, configured as in a pod (`KUBERNETES_SERVICE_HOST` as an IP,
//!   the ServiceAccount token, CA and namespace files at their in-pod paths), runs one cycle
//!   against a real kube-apiserver (`scripts/kube-testenv`) and publishes `LonghornReady`.
//! - Each run's peak memory is read from the container's memory cgroup (v1
//!   `memory.max_usage_in_bytes` of a parent cgroup of its own, which outlives the container)
//!   and must stay under the manifest's limit; the figures are printed for docs/image.md.
//!
//! The image build is cached: `scripts/image build` rebuilds the image only when the binary
//! changed. Needs root, podman and runc (scripts/setup installs them).

// Reads the manifest, cgroup files and writes the in-pod token files on this machine.
#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// Profiles covering every check family on this machine (v2 adds huge pages, CPU, NVMe).
const PROFILES: [&str; 4] = ["-p", "longhorn", "-p", "longhorn-v2"];

/// Builds the image (cached) and returns the static binary it holds.
fn build_image() -> PathBuf {
    let out = Command::new(format!("{WORKSPACE}/scripts/image"))
        .arg("build")
        .output()
        .expect("run scripts/image build");
    assert!(
        out.status.success(),
        "scripts/image build failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(format!(
        "{WORKSPACE}/target/x86_64-unknown-linux-gnu/image/hostready"
    ))
}

/// The DaemonSet's pod as podman flags, from the shipped manifest.
struct PodSettings {
    flags: Vec<String>,
    memory_limit: u64,
}

fn daemonset_settings() -> PodSettings {
    let text = fs::read_to_string(format!("{WORKSPACE}/deploy/manifests/daemonset.yaml")).unwrap();
    let ds: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
    let pod = &ds["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    let sc = &c["securityContext"];
    let mut flags: Vec<String> = Vec::new();
    let mut f = |s: &str| flags.push(s.to_string());
    f("--pid");
    f(if pod["hostPID"] == true {
        "host"
    } else {
        "private"
    });
    let uid = sc["runAsUser"].as_u64().expect("runAsUser is set");
    let gid = sc["runAsGroup"].as_u64().unwrap_or(uid);
    f("--user");
    f(&format!("{uid}:{gid}"));
    if sc["privileged"] == true {
        f("--privileged");
    }
    for cap in sc["capabilities"]["drop"].as_array().into_iter().flatten() {
        f("--cap-drop");
        f(cap.as_str().unwrap());
    }
    for cap in sc["capabilities"]["add"].as_array().into_iter().flatten() {
        f("--cap-add");
        f(cap.as_str().unwrap());
    }
    if sc["allowPrivilegeEscalation"] == false {
        f("--security-opt");
        f("no-new-privileges");
    }
    if sc["readOnlyRootFilesystem"] == true {
        f("--read-only");
    }
    // podman's default seccomp profile is the runtime default, as RuntimeDefault asks.
    match sc["seccompProfile"]["type"].as_str() {
        Some("RuntimeDefault") => {}
        Some("Unconfined") => {
            f("--security-opt");
            f("seccomp=unconfined");
        }
        other => panic!("seccompProfile {other:?}: no podman equivalent here"),
    }
    let limit = c["resources"]["limits"]["memory"]
        .as_str()
        .expect("a memory limit");
    let mib: u64 = limit
        .strip_suffix("Mi")
        .expect("the limit in Mi")
        .parse()
        .unwrap();
    f("--memory");
    f(&format!("{mib}m"));
    f("--memory-swap");
    f(&format!("{mib}m"));
    let mount = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == "/host")
        .expect("the host root mount");
    assert_eq!(mount["readOnly"], true);
    assert_eq!(mount["mountPropagation"], "HostToContainer");
    f("-v");
    f("/:/host:ro,rslave");
    PodSettings {
        flags,
        memory_limit: mib << 20,
    }
}

/// A memory cgroup of the test's own (every v1 controller podman uses), given to podman as
/// `--cgroup-parent`: the container's cgroup is made below it and removed when the container
/// exits, while this one keeps the peak (`memory.max_usage_in_bytes` counts its children).
struct CgroupParent {
    name: String,
}

const CONTROLLERS: [&str; 8] = [
    "memory",
    "pids",
    "cpu,cpuacct",
    "cpuset",
    "blkio",
    "devices",
    "freezer",
    "systemd",
];

impl CgroupParent {
    fn new(tag: &str) -> CgroupParent {
        let name = format!("hostready-e2e-image-{}-{tag}", std::process::id());
        CgroupParent { name }
    }

    fn peak_bytes(&self) -> u64 {
        let p = format!(
            "/sys/fs/cgroup/memory/{}/memory.max_usage_in_bytes",
            self.name
        );
        fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("{p}: {e}"))
            .trim()
            .parse()
            .unwrap()
    }
}

impl Drop for CgroupParent {
    fn drop(&mut self) {
        for c in CONTROLLERS {
            let dir = Path::new("/sys/fs/cgroup").join(c).join(&self.name);
            // Children first (podman's container cgroup, if it was left behind).
            if let Ok(rd) = fs::read_dir(&dir) {
                for e in rd.flatten() {
                    if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                        let _ = fs::remove_dir(e.path());
                    }
                }
            }
            let _ = fs::remove_dir(&dir);
        }
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    peak: u64,
}

/// Runs the image with the pod's settings, `extra` podman flags after them (later flags win),
/// and `args` for hostready.
fn podman_run(pod: &PodSettings, tag: &str, extra: &[&str], args: &[&str]) -> Run {
    let cg = CgroupParent::new(tag);
    let out = Command::new("podman")
        // crun refuses this machine's hybrid cgroup layout; runc works (docs/image.md).
        .args([
            "--runtime",
            "runc",
            "--cgroup-manager=cgroupfs",
            "run",
            "--rm",
        ])
        .arg(format!("--cgroup-parent=/{}", cg.name))
        // podman's default rlimits exceed what this machine grants (docs/image.md).
        .args([
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1000:1000",
        ])
        // The API server of the test listens on 127.0.0.1.
        .args(["--network", "host"])
        .args(&pod.flags)
        .args(extra)
        .arg("localhost/hostready:dev")
        .args(args)
        .output()
        .expect("run podman");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        peak: cg.peak_bytes(),
    }
}

/// Finding id -> status of a `check -o json` report.
fn statuses(json: &str) -> BTreeMap<String, String> {
    let v: serde_json::Value =
        serde_json::from_str(json).unwrap_or_else(|e| panic!("not a check report ({e}):\n{json}"));
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap().to_string(),
                f["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Every item the host run decides is decided in the container, the same way.
fn assert_decides_like_the_host(
    what: &str,
    host: &BTreeMap<String, String>,
    run: &Run,
) -> BTreeMap<String, String> {
    let got = statuses(&run.stdout);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        host.keys().collect::<Vec<_>>(),
        "{what}: not the same items\n{}",
        run.stderr
    );
    for (id, want) in host {
        if want != "unknown" {
            assert_eq!(
                &got[id], want,
                "{what}: {id} is {} in the container, {want} on the host\n{}",
                got[id], run.stdout
            );
        }
    }
    got
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / 1048576.0)
}

#[test]
fn the_image_decides_every_check_the_host_decides_under_the_daemonsets_settings() {
    let bin = build_image();
    let pod = daemonset_settings();

    let host = Command::new(&bin)
        .args(["check", "--root", "/", "-o", "json"])
        .args(PROFILES)
        .output()
        .unwrap();
    let host = statuses(&String::from_utf8_lossy(&host.stdout));
    assert!(
        host.values().filter(|s| *s != "unknown").count() >= 20,
        "the host run decides too little to compare: {host:?}"
    );

    let args: Vec<&str> = ["check", "--root", "/host", "-o", "json"]
        .into_iter()
        .chain(PROFILES)
        .collect();

    // As the DaemonSet runs it.
    let run = podman_run(&pod, "chart", &[], &args);
    assert!(
        run.code == 0 || run.code == 1,
        "exit {}: {}",
        run.code,
        run.stderr
    );
    assert_decides_like_the_host("the DaemonSet's settings", &host, &run);
    assert!(
        run.peak < pod.memory_limit,
        "peak {} over the limit",
        mib(run.peak)
    );
    eprintln!("check, DaemonSet settings: peak {}", mib(run.peak));

    // The host's PID namespace adds nothing: /host/proc is the host's procfs (the hostPath
    // mount of / is recursive), whichever PID namespace the container has.
    let run = podman_run(&pod, "pid", &["--pid", "private"], &args);
    assert_decides_like_the_host("without the host's PID namespace", &host, &run);
    eprintln!("check, no hostPID: peak {}", mib(run.peak));

    // Every privilege podman can give adds nothing either.
    let run = podman_run(&pod, "priv", &["--privileged"], &args);
    assert_decides_like_the_host("privileged", &host, &run);
    eprintln!("check, privileged: peak {}", mib(run.peak));
}

#[test]
fn the_agent_in_the_image_runs_a_cycle_against_a_real_api_server_as_in_a_pod() {
    build_image();
    let pod = daemonset_settings();
    let env = KubeEnv::start();
    let client = env.client();
    apply_manifest_files(&client, &["namespace.yaml", "rbac.yaml"]);
    create_node_with_kubelet_conditions(&client, "image-node");
    let token = sa_token(&client, serde_json::Value::Null);

    // The files the kubelet projects into every pod, at their in-pod path.
    let sa = env.dir.path().join("serviceaccount");
    fs::create_dir_all(&sa).unwrap();
    fs::write(sa.join("token"), &token).unwrap();
    fs::copy(env.dir.path().join("ca.crt"), sa.join("ca.crt")).unwrap();
    fs::write(sa.join("namespace"), "hostready-system").unwrap();
    let kc = fs::read_to_string(&env.kubeconfig).unwrap();
    let server = kc
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: https://"))
        .unwrap();
    let (host, port) = server.rsplit_once(':').unwrap();
    // The in-cluster client reaches the API server by IP: no name is resolved (a static glibc
    // binary cannot load NSS modules, docs/image.md).
    assert!(host.parse::<std::net::IpAddr>().is_ok(), "{server}");

    let mount = format!(
        "{}:/var/run/secrets/kubernetes.io/serviceaccount:ro",
        sa.display()
    );
    let host_env = format!("KUBERNETES_SERVICE_HOST={host}");
    let port_env = format!("KUBERNETES_SERVICE_PORT={port}");
    let run = podman_run(
        &pod,
        "agent",
        &[
            "-v",
            &mount,
            "-e",
            &host_env,
            "-e",
            &port_env,
            "-e",
            "NODE_NAME=image-node",
        ],
        &[
            "agent",
            "--root=/host",
            "--once",
            "--metrics-addr=none",
            "--node-name=image-node",
        ],
    );
    assert_eq!(run.code, 0, "agent in the image:\n{}", run.stderr);
    assert!(
        run.peak < pod.memory_limit,
        "peak {} over the limit",
        mib(run.peak)
    );
    eprintln!("agent --once, DaemonSet settings: peak {}", mib(run.peak));
    let (status, reason, _, _) = condition(&client, "image-node", "LonghornReady")
        .expect("the agent in the image published LonghornReady");
    assert!(status == "True" || status == "False", "{status} {reason}");
}
