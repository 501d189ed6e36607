//! A hostile API server on loopback: accepts connections and hands each to a handler of the
//! test's on its own thread (one that never answers, one that streams without end), and a
//! kubeconfig pointing at it. No real API server is needed for such tests.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A loopback server whose connections are handled by `serve` on their own threads; it stops
/// accepting when dropped and joins every handler, so each handler must stop by itself,
/// bounded in time, once the flag it is given is set.
#[derive(Debug)]
pub struct Server {
    pub addr: String,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn start(serve: fn(TcpStream, &AtomicBool)) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut handlers = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        let f = flag.clone();
                        handlers.push(std::thread::spawn(move || serve(s, &f)));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
            for h in handlers {
                let _ = h.join();
            }
        });
        Server {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Writes `dir/kubeconfig` pointing at `http://<addr>` with a dummy token, and returns it.
pub fn kubeconfig(dir: &Path, addr: &str) -> PathBuf {
    let p = dir.join("kubeconfig");
    std::fs::write(
        &p,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://{addr}\n\
             users:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n\
             current-context: x\n"
        ),
    )
    .unwrap();
    p
}

/// A kubeconfig (in `dir`) for a loopback port that was free a moment ago: connections to it
/// are refused.
pub fn refused_kubeconfig(dir: &Path) -> PathBuf {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind a loopback port")
        .local_addr()
        .expect("its address")
        .port();
    kubeconfig(dir, &format!("127.0.0.1:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn hello(mut s: TcpStream, _stop: &AtomicBool) {
        let _ = s.write_all(b"hello");
    }

    #[test]
    fn connections_reach_the_handler_and_drop_stops_the_server() {
        let server = Server::start(hello);
        let mut got = String::new();
        TcpStream::connect(&server.addr)
            .unwrap()
            .read_to_string(&mut got)
            .unwrap();
        assert_eq!(got, "hello");
        let addr = server.addr.clone();
        drop(server);
        assert!(TcpStream::connect(&addr).is_err(), "still listening");
        let dir = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(kubeconfig(dir.path(), &addr)).unwrap();
        assert!(text.contains(&format!("server: http://{addr}\n")), "{text}");
    }
}
