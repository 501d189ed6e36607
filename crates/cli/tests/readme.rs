//! The README, tried as a newcomer would: its sample output is what `hostready check` really
//! prints, and its "try the agent" steps work against a fresh `scripts/kube-testenv up`.

// Tests build fake hosts and read fixtures on this machine directly, not a host's root.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::path::Path;

use hostready_testkit::kube_testenv::run as kube_testenv;
use util::hostready;

mod util;

const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn readme() -> String {
    fs::read_to_string(format!("{WORKSPACE}/README.md")).unwrap()
}

/// Returns the lines of the finding `id` in a table: its row and the indented lines under it.
fn block<'a>(text: &'a str, id: &str) -> Vec<&'a str> {
    let mut lines = text.lines().skip_while(|l| !l.contains(&format!(" {id} ")));
    let first = lines.next().unwrap_or_else(|| panic!("no {id} in {text}"));
    std::iter::once(first)
        .chain(lines.take_while(|l| l.starts_with(' ')))
        .collect()
}

/// The README's `exe.iscsiadm` lines are the real ones for a Debian host without open-iscsi.
#[test]
fn sample_output_is_real_output() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    fs::create_dir_all(r.join("etc")).unwrap();
    fs::create_dir_all(r.join("var/lib/dpkg")).unwrap();
    fs::write(
        r.join("etc/os-release"),
        "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
    )
    .unwrap();
    fs::write(
        r.join("var/lib/dpkg/status"),
        "Package: base-files\nStatus: install ok installed\nVersion: 12.4\nArchitecture: amd64\n\n",
    )
    .unwrap();
    let out = hostready()
        .args(["check", "--proc", "none", "--root"])
        .arg(r)
        .env_remove("COLUMNS")
        .output()
        .unwrap();
    let real = String::from_utf8(out.stdout).unwrap();
    let doc = readme();
    let sample = &doc[doc
        .find("$ hostready check\n")
        .expect("the README's sample")..];
    let sample = &sample[..sample.find("```").unwrap()];
    assert_eq!(block(sample, "exe.iscsiadm"), block(&real, "exe.iscsiadm"));
    let verdict = real.lines().last().unwrap();
    // Numbers aside (each run of digits is one N), the same words.
    let shape = |l: &str| {
        let mut out = String::new();
        for c in l.chars() {
            match (c.is_ascii_digit(), out.ends_with('N')) {
                (true, true) => {}
                (true, false) => out.push('N'),
                (false, _) => out.push(c),
            }
        }
        out
    };
    let sample_verdict = sample.lines().rfind(|l| l.contains("passed")).unwrap();
    assert_eq!(
        shape(sample_verdict),
        shape(verdict),
        "the verdict line's shape"
    );
}

/// Stops the control plane however the test ends.
struct Down<'a>(&'a Path);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = kube_testenv(&["down"], self.0);
    }
}

/// The README's steps: `up` creates the Node (n1 by default; `--node` here because the test
/// uses a directory of its own), and `agent --node-name n1 --once` publishes on it.
#[test]
fn try_the_agent_steps_work_on_a_fresh_testenv() {
    let dir = tempfile::tempdir().unwrap();
    let _down = Down(dir.path());
    let up = kube_testenv(&["up", "--node", "n1"], dir.path());
    let stderr = String::from_utf8_lossy(&up.stderr);
    assert!(up.status.success(), "kube-testenv up: {stderr}");
    assert!(stderr.contains("created Node n1"), "{stderr}");
    let stdout = String::from_utf8(up.stdout).unwrap();
    let kc = stdout
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("KUBECONFIG="))
        .unwrap_or_else(|| panic!("last line is not KUBECONFIG=: {stdout}"))
        .to_string();
    // A second `up` finds the Node and leaves it alone.
    let again = kube_testenv(&["up", "--node", "n1"], dir.path());
    assert!(again.status.success());
    assert!(!String::from_utf8_lossy(&again.stderr).contains("created"));

    let agent = hostready()
        .args([
            "agent",
            "--node-name",
            "n1",
            "--once",
            "--metrics-addr",
            "none",
        ])
        .env("KUBECONFIG", &kc)
        .output()
        .unwrap();
    assert_eq!(
        agent.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&agent.stderr)
    );
    let cluster = hostready()
        .args(["cluster", "-o", "json"])
        .env("KUBECONFIG", &kc)
        .output()
        .unwrap();
    let view: serde_json::Value = serde_json::from_slice(&cluster.stdout).unwrap();
    let cond = &view["nodes"][0]["conditions"]["LonghornReady"];
    assert_eq!(view["nodes"][0]["name"], "n1", "{view:#}");
    // The exit code follows the condition (README's table): True 0, False 1, Unknown 2.
    let want = match cond["status"].as_str().unwrap() {
        "True" => 0,
        "False" => 1,
        _ => 2,
    };
    assert_eq!(cluster.status.code(), Some(want), "{view:#}");
}
