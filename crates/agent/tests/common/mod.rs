//! Shared parts of the agent's end-to-end tests: a real control plane (`scripts/kube-testenv`,
//! etcd + kube-apiserver on loopback), real agent processes, and host roots made from the
//! cached debootstrap Debian root (`scripts/debroot`) with a procfs tree beside each.
//!
//! Every process a test starts is owned by a guard whose `Drop` stops it; the control plane is
//! also told the test's pid, and stops by itself if the test dies without cleaning up.

// Tests build fake hosts and read fixtures on this machine directly, not a host's root.
#![allow(clippy::disallowed_methods)]
#![allow(dead_code)]

use std::fs;
use std::future::Future;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub mod helm;

use hostready_testkit::debroot::Copy;
use hostready_testkit::fakehost::{init_process, write};
use hostready_testkit::wait::poll;
use k8s_openapi::api::core::v1::{Node, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::discovery::ApiResource;

pub use hostready_testkit::{WORKSPACE, wait_for};

/// Runs a future to completion on the test's one runtime (kube clients keep a worker task on
/// the runtime that made them, so all calls share it).
pub fn block<F: Future>(f: F) -> F::Output {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    })
    .block_on(f)
}

/// A control plane of its own, in a temp dir; stopped and deleted on drop.
pub struct KubeEnv {
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

impl KubeEnv {
    /// Builds kube-testenv if needed (minutes, once) and starts it.
    pub fn start() -> KubeEnv {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = up(dir.path());
        KubeEnv { dir, kubeconfig }
    }

    /// Stops the API server, keeping its state (etcd data, certificates, port).
    pub fn stop(&self) {
        script(&["stop", "--dir"], self.dir.path());
    }

    /// Starts it again on the same port with the same state.
    pub fn restart(&self) {
        let kc = up(self.dir.path());
        assert_eq!(kc, self.kubeconfig);
    }

    /// Returns an admin client.
    pub fn client(&self) -> kube::Client {
        client_for(&self.kubeconfig)
    }

    /// Writes a kubeconfig like the admin's, with `token` instead, as `name` in the env's dir.
    pub fn kubeconfig_with(&self, name: &str, token: &str) -> PathBuf {
        let admin = fs::read_to_string(&self.kubeconfig).unwrap();
        let replaced: String = admin
            .lines()
            .map(|l| {
                if l.trim_start().starts_with("token:") {
                    format!("    token: {token}")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let p = self.dir.path().join(name);
        fs::write(&p, replaced + "\n").unwrap();
        p
    }
}

impl Drop for KubeEnv {
    fn drop(&mut self) {
        let _ = Command::new(format!("{WORKSPACE}/scripts/kube-testenv"))
            .args(["down", "--dir"])
            .arg(self.dir.path())
            .status();
    }
}

fn up(dir: &Path) -> PathBuf {
    let out = Command::new(format!("{WORKSPACE}/scripts/kube-testenv"))
        .args(["up", "--dir"])
        .arg(dir)
        .env("KUBE_TESTENV_PARENT", std::process::id().to_string())
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/kube-testenv");
    assert!(out.status.success(), "scripts/kube-testenv up failed");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let last = stdout.lines().last().unwrap_or("");
    PathBuf::from(
        last.strip_prefix("KUBECONFIG=")
            .unwrap_or_else(|| panic!("last line is not KUBECONFIG=: {stdout}")),
    )
}

fn script(args: &[&str], dir: &Path) {
    let st = Command::new(format!("{WORKSPACE}/scripts/kube-testenv"))
        .args(args)
        .arg(dir)
        .status()
        .unwrap();
    assert!(st.success());
}

/// Returns a client for a kubeconfig file.
pub fn client_for(kubeconfig: &Path) -> kube::Client {
    block(async {
        let kc = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
        let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap();
        kube::Client::try_from(cfg).unwrap()
    })
}

/// Creates a Node with the conditions a kubelet sets, written by the field manager `kubelet`.
pub fn create_node_with_kubelet_conditions(client: &kube::Client, name: &str) -> Node {
    let nodes: Api<Node> = Api::all(client.clone());
    block(async {
        let node: Node = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": name}
        }))
        .unwrap();
        nodes.create(&PostParams::default(), &node).await.unwrap();
        let now = "2026-01-01T00:00:00Z";
        let status = serde_json::json!({
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "status": {"conditions": [
                {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory",
                 "message": "kubelet has sufficient memory available", "lastHeartbeatTime": now, "lastTransitionTime": now},
                {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure",
                 "message": "kubelet has no disk pressure", "lastHeartbeatTime": now, "lastTransitionTime": now},
                {"type": "Ready", "status": "True", "reason": "KubeletReady",
                 "message": "kubelet is posting ready status", "lastHeartbeatTime": now, "lastTransitionTime": now}
            ]}
        });
        nodes
            .patch_status(
                name,
                &PatchParams::apply("kubelet").force(),
                &Patch::Apply(&status),
            )
            .await
            .unwrap()
    })
}

/// Reads a Node.
pub fn get_node(client: &kube::Client, name: &str) -> Node {
    let nodes: Api<Node> = Api::all(client.clone());
    block(async { nodes.get(name).await.unwrap() })
}

/// Returns the Node's condition of `type_` as (status, reason, message, lastTransitionTime).
pub fn condition(
    client: &kube::Client,
    node: &str,
    type_: &str,
) -> Option<(String, String, String, String)> {
    let n = get_node(client, node);
    n.status?
        .conditions?
        .into_iter()
        .find(|c| c.type_ == type_)
        .map(|c| {
            (
                c.status,
                c.reason.unwrap_or_default(),
                c.message.unwrap_or_default(),
                c.last_transition_time
                    .map(|t| t.0.to_rfc3339())
                    .unwrap_or_default(),
            )
        })
}

/// Applies `files` of deploy/manifests/, in order, with server-side apply (the API server
/// validates them).
pub fn apply_manifest_files(client: &kube::Client, files: &[&str]) {
    for file in files {
        let text = fs::read_to_string(format!("{WORKSPACE}/deploy/manifests/{file}")).unwrap();
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let obj: DynamicObject = serde::Deserialize::deserialize(doc).unwrap();
            let api = api_for(client, &obj);
            let name = obj.metadata.name.clone().unwrap();
            block(api.patch(
                &name,
                &PatchParams::apply("e2e").force(),
                &Patch::Apply(&obj),
            ))
            .unwrap_or_else(|e| panic!("{file} {name}: {e}"));
        }
    }
}

/// The API for `obj`'s kind, in its namespace if it has one; kinds ending in `y` are plural
/// in `ies` (`ValidatingAdmissionPolicy`).
pub fn api_for(client: &kube::Client, obj: &DynamicObject) -> Api<DynamicObject> {
    let tm = obj.types.clone().unwrap();
    let (group, version) = tm
        .api_version
        .rsplit_once('/')
        .unwrap_or(("", &tm.api_version));
    let gvk = kube::core::GroupVersionKind::gvk(group, version, &tm.kind);
    let lower = tm.kind.to_lowercase();
    let plural = match lower.strip_suffix('y') {
        Some(stem) => format!("{stem}ies"),
        None => format!("{lower}s"),
    };
    let ar = ApiResource::from_gvk_with_plural(&gvk, &plural);
    match obj.metadata.namespace.as_deref() {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    }
}

/// The events about `node` (in `default`, where the agent posts them).
pub fn events_about(client: &kube::Client, node: &str) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(client.clone(), "default");
    block(api.list(&ListParams::default()))
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(node))
        .collect()
}

/// The names of the events about `node` now: what [`events_since`] leaves out later.
pub fn event_names(client: &kube::Client, node: &str) -> Vec<String> {
    events_about(client, node).iter().map(event_name).collect()
}

fn event_name(e: &Event) -> String {
    e.metadata.name.clone().unwrap_or_default()
}

/// The events about `node` whose names are not in `before` (names carry random suffixes), in
/// the order they happened.
pub fn events_since(client: &kube::Client, node: &str, before: &[String]) -> Vec<Event> {
    let mut events: Vec<Event> = events_about(client, node)
        .into_iter()
        .filter(|e| !before.contains(&event_name(e)))
        .collect();
    events.sort_by_key(|e| e.event_time.as_ref().map(|t| t.0));
    events
}

/// The watch's own events among `events`: HostProcessesHealthy transitions, without its first
/// appearance (`(none) -> True`, which may be posted just after a test listed the events).
pub fn watch_events(events: &[Event]) -> Vec<&Event> {
    events
        .iter()
        .filter(|e| {
            e.note.as_deref().is_some_and(|n| {
                n.starts_with("HostProcessesHealthy")
                    && !n.starts_with("HostProcessesHealthy (none)")
            })
        })
        .collect()
}

/// How many of `events` record HostProcessesHealthy turning from True to False.
pub fn turned_false(events: &[&Event]) -> usize {
    events
        .iter()
        .filter(|e| {
            e.note
                .as_deref()
                .is_some_and(|n| n.starts_with("HostProcessesHealthy True -> False"))
        })
        .count()
}

/// Sums the API server's own `apiserver_request_total` samples whose labels contain every one
/// of `needles`: requests counted by the server, so nothing the agent does goes unseen.
pub fn api_requests(client: &kube::Client, needles: &[&str]) -> f64 {
    let text = block(async {
        let req = http::Request::get("/metrics").body(Vec::new()).unwrap();
        client.request_text(req).await.unwrap()
    });
    text.lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Server-side applies on nodes with subresource `sub` (`""`: the Node object, where labels
/// are written; `status`: the conditions).
pub fn node_applies(client: &kube::Client, sub: &str) -> f64 {
    let sub = format!("subresource=\"{sub}\"");
    api_requests(client, &["resource=\"nodes\"", &sub, "verb=\"APPLY\""])
}

/// Requests a token for the shipped ServiceAccount (`hostready-system/hostready-agent`),
/// bound to `bound` (or to nothing if null).
pub fn sa_token(client: &kube::Client, bound: serde_json::Value) -> String {
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "hostready-system");
    let mut spec = serde_json::json!({"expirationSeconds": 3600});
    if !bound.is_null() {
        spec["boundObjectRef"] = bound;
    }
    let req = serde_json::json!(
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
    );
    let tr: serde_json::Value = block(sas.create_subresource(
        "token",
        "hostready-agent",
        &PostParams::default(),
        serde_json::to_vec(&req).unwrap(),
    ))
    .unwrap();
    tr["status"]["token"].as_str().unwrap().to_string()
}

/// Creates a pod of the agent's ServiceAccount (`hostready-system/hostready-agent`) bound to
/// `node` (no kubelet runs it; it only anchors the token) and returns a token bound to it,
/// which the API server gives the pod's node name (the admission policy's `tokenNode`).
pub fn pod_bound_token(client: &kube::Client, pod_name: &str, node: &str) -> String {
    let pods: Api<k8s_openapi::api::core::v1::Pod> =
        Api::namespaced(client.clone(), "hostready-system");
    let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": pod_name, "namespace": "hostready-system"},
        "spec": {"nodeName": node, "serviceAccountName": "hostready-agent",
                 "containers": [{"name": "agent", "image": "hostready:0.1.0"}]}
    }))
    .unwrap();
    let pod = block(pods.create(&PostParams::default(), &pod)).unwrap();
    sa_token(
        client,
        serde_json::json!({"apiVersion": "v1", "kind": "Pod", "name": pod_name,
               "uid": pod.metadata.uid.unwrap()}),
    )
}

/// A host: a hard-link copy of the Debian root (`cp -al`: a second, not 300 MB) and a procfs
/// tree describing a kernel with iscsi_tcp and nfs loaded and iscsid running.
pub struct TestHost {
    copy: Copy,
    pub root: PathBuf,
    pub proc: PathBuf,
}

impl TestHost {
    pub fn debian_with_longhorn_packages() -> TestHost {
        let copy = Copy::new();
        let h = TestHost {
            root: copy.root.clone(),
            proc: copy.dir().join("proc"),
            copy,
        };
        h.proc_file("sys/kernel/osrelease", "6.1.0-18-amd64\n");
        h.proc_file(
            "modules",
            "iscsi_tcp 24576 0 - Live 0x0\nlibiscsi_tcp 32768 1 iscsi_tcp, Live 0x0\nnfs 425984 0 - Live 0x0\nnfsv4 1052672 0 - Live 0x0\n",
        );
        h.proc_file(
            "filesystems",
            "nodev\tsysfs\nnodev\tnfs\nnodev\tnfs4\n\text4\n",
        );
        h.proc_file("meminfo", "MemTotal: 1000 kB\n");
        init_process(&h.proc);
        h.proc_file("700/comm", "iscsid\n");
        h.proc_file("700/stat", "700 (iscsid) S 1 700 700\n");
        h
    }

    pub fn proc_file(&self, path: &str, text: &str) {
        write(&self.proc, path, text);
    }

    /// Removes a file from this copy only (unlinks the hard link).
    pub fn remove(&self, path: &str) {
        self.copy.remove(path);
    }

    /// Puts a file back from the cached root.
    pub fn restore(&self, path: &str) {
        self.copy.restore(path);
    }

    /// The agent's arguments for this host as node `node`, then `extra`.
    pub fn args<'a>(&'a self, node: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec![
            "--node-name",
            node,
            "--root",
            self.root.to_str().unwrap(),
            "--proc",
            self.proc.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        a
    }
}

/// A running agent process; SIGTERM then SIGKILL on drop. Its stderr goes to a file.
pub struct Agent {
    pub child: Child,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Agent {
    /// Starts `hostready-agent` with `args` (plus a temp log).
    pub fn start(kubeconfig: &Path, args: &[&str]) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("agent.log");
        let child = Command::new(env!("CARGO_BIN_EXE_hostready-agent"))
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Agent {
            child,
            log,
            _dir: dir,
        }
    }

    pub fn log_text(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// Returns the metrics address the agent logged (`--metrics-addr 127.0.0.1:0`).
    pub fn metrics_addr(&self) -> String {
        wait_for(
            "the metrics address in the log",
            Duration::from_secs(30),
            || {
                let text = self.log_text();
                let i = text.find("on http://")?;
                Some(text[i + 10..].lines().next()?.trim().to_string())
            },
        )
    }

    /// Starts the agent as `node` on `host` with the config file `cfg`, as the reload tests
    /// run it: metrics on a free loopback port, the config polled every 200 ms; then `extra`.
    pub fn start_with_config(
        kubeconfig: &Path,
        host: &TestHost,
        node: &str,
        cfg: &Path,
        extra: &[&str],
    ) -> Agent {
        let mut args = vec![
            "--config",
            cfg.to_str().unwrap(),
            "--metrics-addr",
            "127.0.0.1:0",
            "--reload-poll",
            "200ms",
        ];
        args.extend_from_slice(extra);
        Agent::start(kubeconfig, &host.args(node, &args))
    }

    /// Waits up to 30 s for `/readyz` to answer 200 and returns the metrics address.
    pub fn wait_ready(&self) -> String {
        let metrics = self.metrics_addr();
        wait_for("readyz", Duration::from_secs(30), || {
            (http_get(&metrics, "/readyz").0 == 200).then_some(())
        });
        metrics
    }

    /// Sends SIGTERM and returns the exit code and how long the exit took.
    pub fn terminate(&mut self) -> (Option<i32>, Duration) {
        let start = Instant::now();
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let st = wait_for("the agent to exit", Duration::from_secs(30), || {
            self.child.try_wait().unwrap()
        });
        (st.code(), start.elapsed())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            let exited = poll(Duration::from_secs(5), Duration::from_millis(50), || {
                self.child.try_wait().ok().flatten()
            });
            if exited.is_some() {
                return;
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `hostready-agent --once` to its end and returns its exit code and log.
pub fn run_once(kubeconfig: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hostready-agent"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--once", "--metrics-addr", "none"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Fetches a URL over plain HTTP/1.0 from 127.0.0.1 (the agent's metrics).
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let code = buf
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = buf.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (code, body)
}
