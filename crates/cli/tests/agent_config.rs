//! The agent's config key `path` (the executable search path, `--path` on the command line)
//! through the real binaries: `hostready agent` against a real kube-apiserver
//! (`scripts/kube-testenv`), the config file rewritten while it runs, the node condition read
//! back with `hostready cluster`.

// Tests build fake hosts and read fixtures on this machine directly, not a host's root.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use hostready_testkit::kube_testenv::run as kube_testenv;
use util::hostready;

mod util;

/// Stops the agent and the control plane however the test ends.
struct Cleanup<'a> {
    dir: &'a Path,
    agent: Option<Child>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if let Some(mut a) = self.agent.take() {
            let _ = a.kill();
            let _ = a.wait();
        }
        let _ = kube_testenv(&["down"], self.dir);
    }
}

/// Returns the status of `condition` on node `n1`, if published.
fn condition(kubeconfig: &str, condition: &str) -> Option<String> {
    let out = hostready()
        .args(["cluster", "-o", "json", "--kubeconfig", kubeconfig])
        .output()
        .unwrap();
    let view: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    view["nodes"][0]["conditions"][condition]["status"]
        .as_str()
        .map(str::to_string)
}

/// Waits (sleeping, not spinning) until `condition` on n1 is `want`, at most 60 s.
fn wait_for(kubeconfig: &str, cond: &str, want: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if condition(kubeconfig, cond).as_deref() == Some(want) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    false
}

#[test]
fn config_path_is_read_and_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let mut cleanup = Cleanup {
        dir: dir.path(),
        agent: None,
    };
    let up = kube_testenv(&["up", "--node", "n1"], dir.path());
    assert!(
        up.status.success(),
        "kube-testenv up: {}",
        String::from_utf8_lossy(&up.stderr)
    );
    let stdout = String::from_utf8(up.stdout).unwrap();
    let kc = stdout
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("KUBECONFIG="))
        .expect("KUBECONFIG= last")
        .to_string();

    // A profile that needs `sh`, which this machine has in /bin: found or not by `path` alone.
    let conf = tempfile::tempdir().unwrap();
    fs::write(
        conf.path().join("needs-sh.yaml"),
        "name: needs-sh\nrequirements:\n  - executable: sh\n",
    )
    .unwrap();
    let config = conf.path().join("agent.yaml");
    let write_config = |path: &str| {
        // Written aside and renamed, as a ConfigMap update swaps the file.
        let tmp = conf.path().join("agent.yaml.tmp");
        fs::write(
            &tmp,
            format!("profiles: [./needs-sh.yaml]\ninterval: 1h\npath: {path}\n"),
        )
        .unwrap();
        fs::rename(&tmp, &config).unwrap();
    };
    write_config("/nonexistent-hostready-dir");
    let agent = hostready()
        .args(["agent", "--node-name", "n1", "--metrics-addr", "none"])
        .args(["--reload-poll", "200ms", "--kubeconfig", &kc, "--config"])
        .arg(&config)
        // The flag is the default the file overrides.
        .args(["--path", "/bin:/usr/bin"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    cleanup.agent = Some(agent);
    assert!(
        wait_for(&kc, "NeedsShReady", "False"),
        "the file's path, not --path: sh not found"
    );
    write_config("/usr/local/bin:/bin");
    assert!(
        wait_for(&kc, "NeedsShReady", "True"),
        "the reloaded path finds sh"
    );
    // A bad path is refused and the last good one stays.
    write_config("bin");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(condition(&kc, "NeedsShReady").as_deref(), Some("True"));
    let agent = cleanup.agent.as_mut().unwrap();
    assert!(
        agent.try_wait().unwrap().is_none(),
        "the agent keeps running"
    );
}
