//! The shipped chart on a real Kubernetes node, as a user installs it, and the incident
//! replayed on that node from inside pods (issue 14; docs/node.md):
//!
//! - `scripts/image build` (the FROM-scratch image) and `scripts/image incident` (this
//!   machine's bash, sqlite3 and Debian's rpm), `scripts/kube-testenv up --node` with both
//!   imported into the node's containerd: the genuine kubelet, kube-scheduler and
//!   kube-controller-manager (`tools/kube-node`, built and cached like the API server) and
//!   Debian's containerd + runc, until the Node is Ready;
//! - the genuine helm installs `deploy/helm/hostready` with the local image and a short watch
//!   interval (chart values); the DaemonSet's pod is scheduled, Running and ready, publishes
//!   `LonghornReady` on the Node as field manager `hostready-agent`, answers `/metrics` on its
//!   pod IP, and its log is readable through the API server (the kubelet's log endpoint); the
//!   kubelet set the manifest's memory limit on the agent container's cgroup;
//! - the incident: the node made an RPM host (`scripts/kube-testenv rpmdb`: a tmpfs over
//!   `/var/lib/rpm` in the node's mount namespace only), one pod holding an EXCLUSIVE SQLite
//!   lock on `rpmdb.sqlite` and one whose `longhorn-manager` keeps starting `rpm -q
//!   iscsi-initiator-utils` that are never reaped. `HostProcessesHealthy` turns False with
//!   reason `PackageDatabaseLocked`, naming the pile, its parent, the holder (pid, command,
//!   file) and the fix; one transition event; `/metrics` shows the pile's size and the lock;
//!   with both pods deleted the condition returns to True;
//! - the peak memory of the agent's cgroup over the whole run stays under the limit;
//! - `down` leaves no process, mount, network namespace, bridge or cgroup.
//!
//! Needs root, podman, containerd, runc, the CNI plugins, rpm and sqlite3 (`scripts/setup`) and
//! Go for the first build of the node (`scripts/kube-testenv`). For a local rerun with an image
//! built elsewhere, `E2E_NODE_IMAGE_ARCHIVE` (an OCI archive) and `E2E_NODE_IMAGE_TAG` (its tag
//! of `localhost/hostready`) replace `scripts/image build`; CI sets neither.

// Reads cgroup files, /proc and the manifest of this machine directly.
#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use hostready_testkit::process::need;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, LogParams, PostParams};

const NODE: &str = "kt-node";
const NS: &str = "hostready-system";
const INCIDENT_NS: &str = "incident";
/// The pile's size: the loop stops starting queries there, so the test's memory is bounded
/// (each waiting `rpm -q` is ~0.6 MiB private here).
const PILE: usize = 30;

/// Runs a repository script, stderr inherited, and returns its stdout's last line.
fn script_last_line(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(out.status.success(), "{what} failed");
    let stdout = String::from_utf8(out.stdout).unwrap();
    stdout.lines().last().unwrap_or("").to_string()
}

/// A real node of its own (`scripts/kube-testenv up --node`) in a temp dir; `down` on drop.
struct NodeEnv {
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl NodeEnv {
    fn up(images: &[&Path]) -> NodeEnv {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(format!("{WORKSPACE}/scripts/kube-testenv"));
        cmd.args(["up", "--node", "--dir"]).arg(dir.path());
        for i in images {
            cmd.arg("--image").arg(i);
        }
        cmd.env("KUBE_TESTENV_PARENT", std::process::id().to_string());
        let last = script_last_line(&mut cmd, "scripts/kube-testenv up --node");
        let kubeconfig = PathBuf::from(
            last.strip_prefix("KUBECONFIG=")
                .unwrap_or_else(|| panic!("last line is not KUBECONFIG=: {last}")),
        );
        NodeEnv { dir, kubeconfig }
    }

    fn node_dir(&self) -> PathBuf {
        self.dir.path().join("node")
    }

    /// `scripts/kube-testenv down` (also on drop; a second one is a no-op).
    fn down(&self) {
        let st = Command::new(format!("{WORKSPACE}/scripts/kube-testenv"))
            .args(["down", "--dir"])
            .arg(self.dir.path())
            .status()
            .unwrap();
        assert!(st.success(), "scripts/kube-testenv down failed");
    }
}

impl Drop for NodeEnv {
    fn drop(&mut self) {
        let _ = Command::new(format!("{WORKSPACE}/scripts/kube-testenv"))
            .args(["down", "--dir"])
            .arg(self.dir.path())
            .status();
    }
}

/// The hostready image's archive and tag: built here (cached), or given for a local rerun.
fn hostready_image() -> (PathBuf, String) {
    if let Ok(a) = std::env::var("E2E_NODE_IMAGE_ARCHIVE") {
        let tag = std::env::var("E2E_NODE_IMAGE_TAG").expect("E2E_NODE_IMAGE_TAG with the archive");
        return (PathBuf::from(a), tag);
    }
    let a = script_last_line(
        Command::new(format!("{WORKSPACE}/scripts/image")).arg("build"),
        "scripts/image build",
    );
    (PathBuf::from(a), "dev".into())
}

fn pods(client: &kube::Client, ns: &str) -> Api<Pod> {
    Api::namespaced(client.clone(), ns)
}

fn is_ready(p: &Pod) -> bool {
    let st = p.status.as_ref();
    st.and_then(|s| s.phase.as_deref()) == Some("Running")
        && st
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Waits for a Running and ready pod matching `selector` in `ns`.
fn ready_pod(client: &kube::Client, ns: &str, selector: &str) -> Pod {
    wait_for(
        &format!("a Running and ready pod {selector} in {ns}"),
        Duration::from_secs(360),
        || {
            let list =
                block(pods(client, ns).list(&ListParams::default().labels(selector))).ok()?;
            list.items.into_iter().find(is_ready)
        },
    )
}

/// The cgroup v1 memory directory of a container of the pod, found under the node's cgroup
/// root (`/kube-testenv-<id>/kubepods/<class>/pod<uid>/<container id>`).
fn container_memory_cgroup(cgroot: &str, pod: &Pod, container: &str) -> PathBuf {
    let uid = pod.metadata.uid.as_deref().unwrap();
    let id = pod
        .status
        .as_ref()
        .unwrap()
        .container_statuses
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.name == container)
        .and_then(|c| c.container_id.clone())
        .expect("a container id");
    let id = id.rsplit("://").next().unwrap().to_string();
    let base = Path::new("/sys/fs/cgroup/memory").join(cgroot.trim_start_matches('/'));
    for class in ["", "burstable", "besteffort"] {
        let d = base
            .join("kubepods")
            .join(class)
            .join(format!("pod{uid}"))
            .join(&id);
        if d.join("memory.limit_in_bytes").exists() {
            return d;
        }
    }
    panic!(
        "no memory cgroup for container {id} of pod {uid} under {}",
        base.display()
    );
}

fn read_u64(p: &Path) -> u64 {
    fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .parse()
        .unwrap()
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / 1048576.0)
}

/// Pids of this machine's processes whose command line is exactly `argv` and whose cgroup
/// names the pod `uid` (so another test's processes are never taken for the pod's).
fn pod_processes(uid: &str, argv: &[&str]) -> Vec<u32> {
    let want: String = argv.iter().map(|a| format!("{a}\0")).collect();
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let cmdline = fs::read(e.path().join("cmdline")).unwrap_or_default();
        if cmdline != want.as_bytes() {
            continue;
        }
        let cg = fs::read_to_string(e.path().join("cgroup")).unwrap_or_default();
        if cg.contains(&format!("pod{uid}")) {
            out.push(pid);
        }
    }
    out.sort_unstable();
    out
}

/// A pod of the incident image with the node's `/var/lib/rpm` at `/var/lib/rpm` (a hostPath,
/// as a privileged manager's `nsenter` into the host would see it) and no capability: neither
/// sqlite3 nor a query needs one (root owns the files).
fn incident_pod(name: &str, container: &str, script: &str, memory: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": INCIDENT_NS, "labels": {"incident": name}},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": container,
                "image": "localhost/incident:dev",
                "imagePullPolicy": "Never",
                "env": [{"name": "SCRIPT", "value": script}],
                "args": ["-c", "exec -a \"$NAME\" \"$EXE\" -c \"$SCRIPT\""],
                "securityContext": {"capabilities": {"drop": ["ALL"]}},
                "resources": {"limits": {"memory": memory}},
                "volumeMounts": [{"name": "rpmdb", "mountPath": "/var/lib/rpm"}]
            }],
            "volumes": [{"name": "rpmdb", "hostPath": {"path": "/var/lib/rpm", "type": "Directory"}}]
        }
    }))
    .unwrap()
}

/// The same pod with the name its main process runs under (`exec -a NAME EXE`).
fn named(mut pod: Pod, name: &str, exe: &str) -> Pod {
    let c = &mut pod.spec.as_mut().unwrap().containers[0];
    let env = c.env.as_mut().unwrap();
    for (k, v) in [("NAME", name), ("EXE", exe)] {
        env.push(serde_json::from_value(serde_json::json!({"name": k, "value": v})).unwrap());
    }
    pod
}

/// A value of the agent's `/metrics` at `addr` (the line starting with `series`).
fn metric(addr: &str, series: &str) -> Option<f64> {
    let (code, text) = http_get(addr, "/metrics");
    assert_eq!(code, 200, "{addr}/metrics");
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// What the node made on this machine, read while it runs, to show `down` removed it.
struct Footprint {
    pids: Vec<u32>,
    bridge: String,
    cgroot: String,
    netns: Vec<PathBuf>,
}

fn footprint(env: &NodeEnv, netns_before: &BTreeSet<PathBuf>) -> Footprint {
    let node = env.node_dir();
    let mut pids = Vec::new();
    for e in fs::read_dir(&node).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "pid") {
            pids.push(read_u64(&e.path()) as u32);
        }
    }
    // The runc shims, each with its pid in the node's containerd state dir.
    let state = node.join("containerd/state/io.containerd.runtime.v2.task/k8s.io");
    for e in fs::read_dir(&state).into_iter().flatten().flatten() {
        if let Ok(t) = fs::read_to_string(e.path().join("shim.pid")) {
            pids.push(t.trim().parse().unwrap());
        }
    }
    pids.push(read_u64(&env.dir.path().join("pid")) as u32);
    let conf = fs::read_to_string(node.join("cni/10-kube-testenv.conflist")).unwrap();
    let i = conf
        .find("\"bridge\": \"")
        .expect("the bridge in the CNI config")
        + 11;
    let bridge = conf[i..].split('"').next().unwrap().to_string();
    let cgroot = format!("kube-testenv-{}", bridge.trim_start_matches("ktbr"));
    let netns = netns_now().difference(netns_before).cloned().collect();
    Footprint {
        pids,
        bridge,
        cgroot,
        netns,
    }
}

fn netns_now() -> BTreeSet<PathBuf> {
    fs::read_dir("/var/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect()
}

fn assert_nothing_left(env: &NodeEnv, f: &Footprint) {
    let dir = env.dir.path().to_str().unwrap().to_string();
    let alive: Vec<u32> = f
        .pids
        .iter()
        .copied()
        .filter(|p| Path::new(&format!("/proc/{p}")).exists())
        .collect();
    assert!(
        alive.is_empty(),
        "processes of the node left after down: {alive:?}"
    );
    let mut by_cmdline = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let c = fs::read(e.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&c).contains(&dir) {
            by_cmdline.push(String::from_utf8_lossy(&c).replace('\0', " "));
        }
    }
    assert!(
        by_cmdline.is_empty(),
        "processes naming {dir} left: {by_cmdline:?}"
    );
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let left: Vec<&str> = mounts.lines().filter(|l| l.contains(&dir)).collect();
    assert!(left.is_empty(), "mounts left under {dir}: {left:#?}");
    let still: Vec<&PathBuf> = f.netns.iter().filter(|n| n.exists()).collect();
    assert!(still.is_empty(), "network namespaces left: {still:?}");
    let link = Command::new("ip")
        .args(["link", "show", &f.bridge])
        .output()
        .unwrap();
    assert!(!link.status.success(), "the bridge {} is left", f.bridge);
    for e in fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let cg = e.path().join(&f.cgroot);
        assert!(!cg.exists(), "cgroup {} is left", cg.display());
    }
    let hosts = fs::read_to_string("/etc/hosts").unwrap();
    assert!(
        !hosts.contains(&format!("# {}", f.cgroot)),
        "the /etc/hosts line is left"
    );
}

#[test]
fn the_chart_on_a_real_node_catches_the_incident_replayed_from_pods() {
    for p in [
        "/usr/bin/podman",
        "/usr/bin/containerd",
        "/usr/bin/ctr",
        "/usr/sbin/runc",
        "/usr/lib/cni/bridge",
        "/usr/bin/rpm",
        "/usr/bin/sqlite3",
    ] {
        need(p);
    }
    let (archive, tag) = hostready_image();
    let incident_archive = PathBuf::from(script_last_line(
        Command::new(format!("{WORKSPACE}/scripts/image")).arg("incident"),
        "scripts/image incident",
    ));
    let helm = script_last_line(
        Command::new(format!("{WORKSPACE}/scripts/go-tool")).arg("helm"),
        "scripts/go-tool helm",
    );
    let netns_before = netns_now();
    let env = NodeEnv::up(&[&archive, &incident_archive]);
    let client = client_for(&env.kubeconfig);
    let ready = condition(&client, NODE, "Ready").expect("the kubelet's Ready");
    assert_eq!(ready.0, "True", "{ready:?}");

    // The chart, as a user installs it (the namespace with its Pod Security label first).
    apply_manifest_files(&client, &["namespace.yaml"]);
    let st = Command::new(&helm)
        .args(["upgrade", "--install", "hostready"])
        .arg(format!("{WORKSPACE}/deploy/helm/hostready"))
        .args(["-n", NS, "--kubeconfig"])
        .arg(&env.kubeconfig)
        .args([
            "--set=image.registry=localhost",
            "--set=image.repository=hostready",
            &format!("--set=image.tag={tag}"),
            "--set=image.pullPolicy=Never",
            // A pass every 5 s; a pile is 20 queries older than 5 s. Shells and sleeps are
            // exempt: on a shared machine (CI runners, benchmarks of other tests) they crowd
            // this node's real /proc, and the healthy baseline would take them for a pile.
            "--set=config.watchInterval=5s",
            "--set=config.pileMinCount=20",
            "--set=config.pileMinAge=5s",
            "--set=config.pileExpect={bash,sh,sleep}",
        ])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "helm upgrade --install failed");

    let pod = ready_pod(&client, NS, "app.kubernetes.io/name=hostready-agent");
    let pod_name = pod.metadata.name.clone().unwrap();
    let spec = pod.spec.as_ref().unwrap();
    assert_eq!(spec.node_name.as_deref(), Some(NODE));
    let ip = pod
        .status
        .as_ref()
        .unwrap()
        .pod_ip
        .clone()
        .expect("a pod IP");
    let restarts = |p: &Pod| {
        p.status
            .as_ref()
            .unwrap()
            .container_statuses
            .as_ref()
            .unwrap()[0]
            .restart_count
    };
    assert_eq!(restarts(&pod), 0);
    eprintln!("pod {pod_name} on {NODE}, Running and ready, IP {ip}");

    // LonghornReady, published by the agent under its own field manager.
    let lh = wait_for(
        "LonghornReady on the Node",
        Duration::from_secs(120),
        || condition(&client, NODE, "LonghornReady"),
    );
    assert!(lh.0 == "True" || lh.0 == "False", "{lh:?}");
    let node = get_node(&client, NODE);
    let managers: BTreeSet<String> = node
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter(|m| {
            m.fields_v1
                .as_ref()
                .is_some_and(|f| f.0.to_string().contains("LonghornReady"))
        })
        .filter_map(|m| m.manager)
        .collect();
    assert_eq!(managers, BTreeSet::from(["hostready-agent".to_string()]));
    eprintln!(
        "LonghornReady={} ({}), managed by hostready-agent",
        lh.0, lh.1
    );

    // /metrics on the pod's own address (the CNI bridge), and the log through the API server.
    let addr = format!("{ip}:9808");
    let (code, text) = http_get(&addr, "/metrics");
    assert_eq!(code, 200);
    let samples = text.lines().filter(|l| l.starts_with("hostready_")).count();
    assert!(samples > 20, "{samples} hostready_ samples:\n{text}");
    let log = block(pods(&client, NS).logs(
        &pod_name,
        &LogParams {
            container: Some("agent".into()),
            ..Default::default()
        },
    ))
    .unwrap();
    assert!(
        log.contains(&format!("agent for node {NODE} on root /host")),
        "{log}"
    );

    // The kubelet's cgroup enforces the manifest's limit.
    let f = footprint(&env, &netns_before);
    let cg = container_memory_cgroup(&f.cgroot, &pod, "agent");
    let limit = hostready_testkit::memcg::daemonset_limit();
    assert_eq!(
        read_u64(&cg.join("memory.limit_in_bytes")),
        limit,
        "{}",
        cg.display()
    );

    // The incident. The node becomes an RPM host, the agent sees a healthy one first.
    let db = script_last_line(
        Command::new(format!("{WORKSPACE}/scripts/kube-testenv"))
            .args(["rpmdb", "--dir"])
            .arg(env.dir.path()),
        "scripts/kube-testenv rpmdb",
    );
    assert_eq!(db, "/var/lib/rpm/rpmdb.sqlite");
    let healthy = wait_for(
        "HostProcessesHealthy=True",
        Duration::from_secs(120),
        || condition(&client, NODE, "HostProcessesHealthy").filter(|c| c.0 == "True"),
    );
    assert_eq!(healthy.1, "AsExpected", "{healthy:?}");
    let events_before = event_names(&client, NODE);

    let ns: k8s_openapi::api::core::v1::Namespace = serde_json::from_value(
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": INCIDENT_NS}}),
    )
    .unwrap();
    block(Api::all(client.clone()).create(&PostParams::default(), &ns)).unwrap();
    let ipods = pods(&client, INCIDENT_NS);
    // The holder: sqlite3 takes the EXCLUSIVE lock and keeps it while its stdin is open.
    let holder = named(
        incident_pod(
            "rpmdb-holder",
            "holder",
            "(echo 'PRAGMA locking_mode=EXCLUSIVE; BEGIN EXCLUSIVE; SELECT count(*) FROM Packages;'; exec sleep infinity) | exec sqlite3 /var/lib/rpm/rpmdb.sqlite",
            "32Mi",
        ),
        "holder",
        "/bin/bash",
    );
    block(ipods.create(&PostParams::default(), &holder)).unwrap();
    let holder = ready_pod(&client, INCIDENT_NS, "incident=rpmdb-holder");
    let holder_uid = holder.metadata.uid.clone().unwrap();
    let hp = wait_for("sqlite3 holding the lock", Duration::from_secs(60), || {
        let p = pod_processes(&holder_uid, &["sqlite3", "/var/lib/rpm/rpmdb.sqlite"]);
        let locks = fs::read_to_string("/proc/locks").unwrap();
        p.first()
            .copied()
            .filter(|p| locks.contains(&format!("WRITE {p} ")))
    });
    // The pile: Longhorn <= 1.7.2 started `rpm -q` on every node sync and abandoned it when
    // it did not answer. Here one a second, under a parent named longhorn-manager (argv[0]
    // and, through the link's name, comm), never reaped.
    let pile_script = format!(
        "n=0; while :; do if [ $n -lt {PILE} ]; then rpm -q iscsi-initiator-utils & n=$((n+1)); fi; sleep 1; done"
    );
    let pile = named(
        incident_pod("rpm-pile", "longhorn-manager", &pile_script, "256Mi"),
        "longhorn-manager",
        "/usr/local/bin/longhorn-manager",
    );
    block(ipods.create(&PostParams::default(), &pile)).unwrap();
    let pile = ready_pod(&client, INCIDENT_NS, "incident=rpm-pile");
    let pile_uid = pile.metadata.uid.clone().unwrap();
    let manager = wait_for("longhorn-manager running", Duration::from_secs(30), || {
        pod_processes(&pile_uid, &["longhorn-manager", "-c", &pile_script])
            .first()
            .copied()
    });

    let sick = wait_for(
        "HostProcessesHealthy=False with the pile and the lock",
        Duration::from_secs(180),
        || {
            condition(&client, NODE, "HostProcessesHealthy").filter(|c| {
                c.0 == "False" && c.2.contains("pile of at least 20 ×") && c.2.contains("locked by")
            })
        },
    );
    let (_, reason, message, _) = &sick;
    assert_eq!(reason, "PackageDatabaseLocked", "{message}");
    for want in [
        format!("/var/lib/rpm/rpmdb.sqlite locked by pid {hp} (sqlite3 /var/lib/rpm/rpmdb.sqlite)"),
        "pile of at least 20 × `rpm -q iscsi-initiator-utils`".to_string(),
        format!("longhorn-manager({manager})"),
        format!("kill {hp}"),
    ] {
        assert!(message.contains(&want), "{want:?} not in {message}");
    }
    eprintln!("HostProcessesHealthy=False ({reason}): {message}");

    // The whole pile started: the metrics count it exactly, and the lock's holder and waiters.
    wait_for("the whole pile", Duration::from_secs(120), || {
        (pod_processes(&pile_uid, &["rpm", "-q", "iscsi-initiator-utils"]).len() == PILE)
            .then_some(())
    });
    let series = "hostready_pileup_processes{command=\"rpm -q iscsi-initiator-utils\"}";
    wait_for(
        "the pile's size in /metrics",
        Duration::from_secs(60),
        || (metric(&addr, series) == Some(PILE as f64)).then_some(()),
    );
    let lock = "{database=\"/var/lib/rpm/rpmdb.sqlite\"}";
    assert_eq!(
        metric(&addr, &format!("hostready_pkgdb_lock_holders{lock}")),
        Some(1.0)
    );
    wait_for("the waiters in /metrics", Duration::from_secs(60), || {
        (metric(&addr, &format!("hostready_pkgdb_lock_waiters{lock}")) == Some(PILE as f64))
            .then_some(())
    });
    eprintln!("/metrics: {series} {PILE}, lock holders 1, waiters {PILE}");
    // The pile stays in its band and the holder the same: nothing new is written.
    assert_eq!(
        condition(&client, NODE, "HostProcessesHealthy").as_ref(),
        Some(&sick)
    );

    // One event for the transition to False (if the lock was seen before the pile was old
    // enough, one more when the pile joined); the last names pile, parent, holder and fix.
    let events = events_since(&client, NODE, &events_before);
    let watch_events = watch_events(&events);
    let transitions = turned_false(&watch_events);
    assert_eq!(transitions, 1, "{events:#?}");
    assert!(watch_events.len() <= 2, "{events:#?}");
    let last = watch_events.last().unwrap();
    let note = last.note.as_deref().unwrap();
    for want in [
        "× `rpm -q iscsi-initiator-utils`".to_string(),
        format!("longhorn-manager({manager})"),
        format!("pid {hp} (sqlite3"),
        format!("kill {hp}"),
    ] {
        assert!(note.contains(&want), "{want:?} not in {note}");
    }

    // Both pods deleted: their processes go with them, the condition returns to True.
    for p in ["rpm-pile", "rpmdb-holder"] {
        block(ipods.delete(p, &DeleteParams::default())).unwrap();
    }
    wait_for(
        "the incident's processes gone",
        Duration::from_secs(120),
        || {
            (pod_processes(&pile_uid, &["rpm", "-q", "iscsi-initiator-utils"]).is_empty()
                && pod_processes(&holder_uid, &["sqlite3", "/var/lib/rpm/rpmdb.sqlite"]).is_empty())
            .then_some(())
        },
    );
    let back = wait_for(
        "HostProcessesHealthy=True again",
        Duration::from_secs(120),
        || condition(&client, NODE, "HostProcessesHealthy").filter(|c| c.0 == "True"),
    );
    assert_eq!(back.1, "AsExpected", "{back:?}");
    assert_eq!(metric(&addr, series), None, "the pile's series is gone");

    // The agent's peak over the whole run, the incident included, under the kubelet's limit.
    let peak = read_u64(&cg.join("memory.max_usage_in_bytes"));
    let failcnt = read_u64(&cg.join("memory.failcnt"));
    let pod = block(pods(&client, NS).get(&pod_name)).unwrap();
    assert_eq!(restarts(&pod), 0, "the agent restarted");
    assert!(
        peak < limit,
        "peak {} over the limit {}",
        mib(peak),
        mib(limit)
    );
    eprintln!(
        "agent container cgroup: limit {}, peak {}, failcnt {failcnt}",
        mib(limit),
        mib(peak)
    );

    let f = footprint(&env, &netns_before);
    env.down();
    assert_nothing_left(&env, &f);
}
