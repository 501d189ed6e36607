//! The health endpoint stays answerable whatever other clients do: 64 "slowloris" clients on
//! loopback, each trickling one header byte every 0.5 s and reconnecting as soon as it is cut
//! off, while `/healthz` is probed 30 times the way the kubelet does (connect, send the request
//! at once, 1 s to answer). Every probe must succeed. Bounded: the attackers stop by themselves
//! when the probes are done (or after 60 s at most).
//!
//! No API server is needed: the agent's loop (and so `/healthz`) runs while the API is away;
//! the kubeconfig points at a closed loopback port.

// Tests build fake hosts and read fixtures on this machine directly.
#![allow(clippy::disallowed_methods)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::Agent;

const ATTACKERS: usize = 64;
const PROBES: usize = 30;

/// One slow client: connects, sends `GET / HTTP/1.1\r\n` and then one header byte every 0.5 s,
/// never finishing its head; reconnects when the server closes it. Counts its connections.
fn slowloris(addr: String, stop: Arc<AtomicBool>, connects: Arc<AtomicU64>, hard_stop: Instant) {
    while !stop.load(Ordering::Relaxed) && Instant::now() < hard_stop {
        let Ok(mut s) = TcpStream::connect(&addr) else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        connects.fetch_add(1, Ordering::Relaxed);
        let _ = s.set_write_timeout(Some(Duration::from_secs(1)));
        if s.write_all(b"GET /metrics HTTP/1.1\r\n").is_err() {
            continue;
        }
        loop {
            if stop.load(Ordering::Relaxed) || Instant::now() >= hard_stop {
                return;
            }
            std::thread::sleep(Duration::from_millis(500));
            if s.write_all(b"X").is_err() {
                break;
            }
            // The server closing shows as a read of 0 (or an error) without blocking.
            let _ = s.set_nonblocking(true);
            let mut b = [0u8; 64];
            match s.read(&mut b) {
                Ok(0) => break,
                Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => break,
                _ => {}
            }
            let _ = s.set_nonblocking(false);
        }
    }
}

/// One kubelet-style probe: the whole request at once, an answer within 1 s.
fn probe(addr: &str) -> Result<u16, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("send: {e}"))?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no status line in {text:?}"))
}

#[test]
fn healthz_answers_every_probe_under_64_slowloris_clients() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    std::fs::write(
        &kc,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:1\n\
         users:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n\
         current-context: x\n",
    )
    .unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let agent = Agent::start(
        &kc,
        &[
            "--node-name",
            "n1",
            "--root",
            root.to_str().unwrap(),
            "--proc",
            "none",
            "-p",
            "iscsi",
            "--interval",
            "1h",
            "--metrics-addr",
            "127.0.0.1:0",
        ],
    );
    let addr = agent.metrics_addr();
    assert_eq!(probe(&addr), Ok(200), "{}", agent.log_text());

    let stop = Arc::new(AtomicBool::new(false));
    let connects = Arc::new(AtomicU64::new(0));
    let hard_stop = Instant::now() + Duration::from_secs(60);
    let attackers: Vec<_> = (0..ATTACKERS)
        .map(|_| {
            let (addr, stop, connects) = (addr.clone(), stop.clone(), connects.clone());
            std::thread::spawn(move || slowloris(addr, stop, connects, hard_stop))
        })
        .collect();
    // Let every attacker connect and start trickling before the first probe.
    std::thread::sleep(Duration::from_secs(2));
    let mut failures = Vec::new();
    for i in 0..PROBES {
        match probe(&addr) {
            Ok(200) => {}
            other => failures.push((i, other)),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    for a in attackers {
        a.join().unwrap();
    }
    let n = connects.load(Ordering::Relaxed);
    eprintln!("{ATTACKERS} slowloris clients made {n} connections; {PROBES} probes");
    // The attack was real: far more connections than the server has slots.
    assert!(n >= ATTACKERS as u64, "only {n} attacker connections");
    assert!(
        failures.is_empty(),
        "{} of {PROBES} probes failed: {failures:?}",
        failures.len()
    );
    // The agent itself is fine afterwards.
    assert_eq!(probe(&addr), Ok(200));
}
