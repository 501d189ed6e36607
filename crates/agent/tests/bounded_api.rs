//! The agent against an API address that streams an endless Node: every response body is
//! capped (`MAX_RESPONSE_BYTES`), so `--once` gives up with exit 1 and a clear log line, inside
//! a real memory cgroup with the DaemonSet's own limit (48 MiB), instead of growing until the
//! kernel kills it. No API server is needed: the server is a loopback thread of this test.

// Tests build fake hosts and read fixtures on this machine directly, not a host's root.
#![allow(clippy::disallowed_methods)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hostready_testkit::loopback::{Server, kubeconfig};
use hostready_testkit::memcg::MemCgroup;

/// Answers every request with a 200 and a Node object whose labels never end.
fn endless_node(mut s: TcpStream, stop: &AtomicBool) {
    let mut head = [0u8; 8192];
    let _ = s.read(&mut head);
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut out =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    let open = br#"{"kind":"Node","apiVersion":"v1","metadata":{"name":"n1","uid":"u","labels":{"#;
    out.extend_from_slice(format!("{:x}\r\n", open.len()).as_bytes());
    out.extend_from_slice(open);
    out.extend_from_slice(b"\r\n");
    if s.write_all(&out).is_err() {
        return;
    }
    let mut labels = Vec::new();
    for i in 0..2000 {
        labels.extend_from_slice(format!(r#""l{i:05}":"vvvvvvvvvvvvvvvv","#).as_bytes());
    }
    let mut chunk = format!("{:x}\r\n", labels.len()).into_bytes();
    chunk.extend_from_slice(&labels);
    chunk.extend_from_slice(b"\r\n");
    // Bounded: even a client that reads forever ends this after 60 s.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        if s.write_all(&chunk).is_err() {
            return;
        }
    }
}

#[test]
fn an_endless_api_response_is_refused_within_the_daemonsets_memory_limit() {
    let server = Server::start(endless_node);
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &server.addr);
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let cg = MemCgroup::new(hostready_testkit::memcg::daemonset_limit());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hostready-agent"));
    cmd.arg("--kubeconfig")
        .arg(&kc)
        .args(["--node-name", "n1", "--proc", "none", "-p", "iscsi"])
        .args(["--once", "--metrics-addr", "none", "--root"])
        .arg(&root);
    let m = cg.run_command(&mut cmd);
    drop(server);
    let log = String::from_utf8_lossy(&m.output.stderr);
    eprintln!("{log}\npeak RSS {:.1} MiB", m.max_rss_mib());
    assert_eq!(m.oom_kills, 0, "killed by the 48 MiB limit: {log}");
    assert_eq!(m.exit_code, Some(1), "{log}");
    assert!(
        log.contains("get_node: the response is larger than 2097152 bytes"),
        "{log}"
    );
    assert!(m.max_rss_kib < 32 << 10, "peak RSS {} KiB", m.max_rss_kib);
}
