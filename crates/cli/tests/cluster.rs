//! `hostready cluster` against hostile API addresses on loopback: one that accepts and never
//! answers, and one that streams an endless NodeList. Both must end promptly with exit code 2
//! and a clear error; the endless one within a real memory cgroup's limit.

// Tests build fake hosts and read fixtures on this machine directly, not a host's root.
#![allow(clippy::disallowed_methods)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hostready_testkit::loopback::{Server, kubeconfig};
use hostready_testkit::memcg::MemCgroup;
use util::hostready;

mod util;

/// Holds the connection open, reading whatever comes, answering nothing.
fn never_answer(mut s: TcpStream, stop: &AtomicBool) {
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return,
        }
    }
}

/// Answers any request with a 200 and a NodeList that never ends, until the client goes away.
fn endless_node_list(mut s: TcpStream, stop: &AtomicBool) {
    let mut head = [0u8; 8192];
    let _ = s.read(&mut head);
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let start =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    if s.write_all(start).is_err() {
        return;
    }
    let chunk = |body: &[u8]| {
        let mut c = format!("{:x}\r\n", body.len()).into_bytes();
        c.extend_from_slice(body);
        c.extend_from_slice(b"\r\n");
        c
    };
    let open = chunk(br#"{"kind":"NodeList","apiVersion":"v1","metadata":{},"items":["#);
    let mut items = Vec::new();
    for i in 0..1000 {
        items.extend_from_slice(
            format!(r#"{{"metadata":{{"name":"endless-{i:04}","labels":{{"a":"b"}}}}}},"#)
                .as_bytes(),
        );
    }
    let items = chunk(&items);
    if s.write_all(&open).is_err() {
        return;
    }
    // Bounded: a client that never stops reading still ends the test (after ~10 GB or 120 s).
    let deadline = Instant::now() + Duration::from_secs(120);
    for _ in 0..200_000 {
        if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
            return;
        }
        if s.write_all(&items).is_err() {
            return;
        }
    }
}

/// Waits for `child` at most `limit`, killing it and failing the test if it is still running.
fn wait_bounded(child: &mut Child, limit: Duration) -> (i32, String, Duration) {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (st.code().unwrap_or(-1), err, start.elapsed());
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("hostready cluster still running after {limit:?}: it hangs");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn cluster_gives_up_on_an_api_that_never_answers() {
    let server = Server::start(never_answer);
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &server.addr);
    let mut child = hostready()
        .args(["cluster", "--request-timeout", "2s", "--kubeconfig"])
        .arg(&kc)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (code, err, took) = wait_bounded(&mut child, Duration::from_secs(30));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no complete answer within 2s"), "{err}");
    eprintln!("gave up after {took:?}");
}

#[test]
fn an_endless_node_list_is_refused_within_a_memory_limit() {
    let server = Server::start(endless_node_list);
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &server.addr);
    // The page cap is 16 MiB; what the CLI holds beyond it is its own code and buffers.
    let cg = MemCgroup::new(96 << 20);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hostready"));
    cmd.args(["cluster", "--request-timeout", "60s", "--kubeconfig"])
        .arg(&kc);
    let m = cg.run_command(&mut cmd);
    let err = String::from_utf8_lossy(&m.output.stderr);
    assert_eq!(m.oom_kills, 0, "killed by the memory limit: {err}");
    assert_eq!(m.exit_code, Some(2), "{err}");
    assert!(
        err.contains("a page of the answer is larger than 16777216 bytes"),
        "{err}"
    );
    eprintln!(
        "endless NodeList: exit 2 at peak RSS {:.1} MiB",
        m.max_rss_mib()
    );
    assert!(m.max_rss_kib < 80 << 10, "peak RSS {} KiB", m.max_rss_kib);
}
