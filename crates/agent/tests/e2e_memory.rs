//! One agent cycle on a host whose rpm database is large (a Berkeley DB `Packages` of 10 and
//! 150 MB written by `db5.3_load`, with rpm's index files), inside a real memory cgroup with
//! the DaemonSet's own limit, publishing to the real kube-apiserver: the agent is never
//! OOM-killed, publishes the condition, and its peak RSS stays flat as the database grows.
//! (The incident's node had a sick rpmdb; a helper that grew with it would be killed by its own
//! limit every cycle.)

// Tests build fake hosts and read fixtures on this machine directly.
#![allow(clippy::disallowed_methods)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{KubeEnv, condition, create_node_with_kubelet_conditions};
use hostready_testkit::FIXTURES;
use hostready_testkit::memcg::MemCgroup;
use hostready_testkit::rpmdb::{Format, generate};

/// How much more the cycle may use on 150 MB than on 10 MB: allocator noise, not the file.
const FLAT_SLACK_KIB: u64 = 1024;

#[test]
fn one_agent_cycle_on_a_150_mb_rpmdb_fits_the_pods_limit_and_stays_flat() {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rpmdb-scale");
    let env = KubeEnv::start();
    let client = env.client();
    create_node_with_kubelet_conditions(&client, "big-rpmdb");
    let mut peaks = Vec::new();
    for mb in [10, 150] {
        let g = generate(&cache, Format::Bdb, mb, Path::new(FIXTURES));
        let cg = MemCgroup::new(hostready_testkit::memcg::daemonset_limit());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hostready-agent"));
        cmd.arg("--kubeconfig")
            .arg(&env.kubeconfig)
            .args([
                "--once",
                "--metrics-addr",
                "none",
                "--node-name",
                "big-rpmdb",
            ])
            .args(["--proc", "none", "-p", "iscsi", "--root"])
            .arg(&g.root);
        let m = cg.run_command(&mut cmd);
        let log = String::from_utf8_lossy(&m.output.stderr);
        assert_eq!(
            m.oom_kills, 0,
            "{mb} MB: OOM-killed under the DaemonSet's limit; log:\n{log}"
        );
        assert_eq!(m.exit_code, Some(0), "{mb} MB: {m:?}\nlog:\n{log}");
        eprintln!(
            "agent --once, {mb} MB Berkeley DB ({} bytes): peak RSS {:.1} MiB",
            g.db_bytes,
            m.max_rss_mib()
        );
        peaks.push(m.max_rss_kib);
        // The cycle really ran and published: the generated host lacks iscsiadm.
        let (status, reason, ..) =
            condition(&client, "big-rpmdb", "IscsiReady").expect("IscsiReady published");
        assert_eq!(status, "False", "{mb} MB: {reason}");
    }
    assert!(
        peaks[1] <= peaks[0] + FLAT_SLACK_KIB,
        "peak RSS grew with the database: {peaks:?} KiB"
    );
}
