//! The metrics and health endpoint: `/metrics` (Prometheus text 0.0.4, or OpenMetrics when the
//! scraper's `Accept` prefers it: [`Format::negotiate`]), `/healthz` (the main loop is
//! turning) and `/readyz` (a first check cycle has completed under a valid config).
//!
//! Any pod can reach this port, and the kubelet's liveness probe must get an answer whatever
//! other clients do. HTTP/1 only, no keep-alive, at most [`MAX_CONNECTIONS`] connections, each
//! with a short deadline for its request head ([`HEADER_TIMEOUT`]: a probe or a scraper sends
//! its head at once) and for its whole life ([`CONNECTION_LIFETIME`]). When every slot is
//! taken, the **oldest** connection is shed to make room for the new one, so clients that
//! trickle a header byte at a time ("slowloris") cannot hold the slots: each new connection —
//! the probe's too — is served within milliseconds of its accept, long before
//! [`MAX_CONNECTIONS`] newer ones could push it out (measured: 64 slow clients reconnecting
//! as soon as they are cut off make ~50 connections a second; `tests/health_slowloris.rs`).
//! Memory stays bounded: at most [`MAX_CONNECTIONS`] connections with buffers of [`MAX_BUF`]
//! bytes.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::metrics::{Format, Metrics};

/// Connections open at once; a new one beyond this sheds the oldest.
pub const MAX_CONNECTIONS: usize = 64;

/// Time a client has to send its whole request head.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(1);

/// The longest any connection lives (a reader that never reads its response).
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(10);

/// hyper's read buffer per connection (its floor is 8 KiB; a request head is a few hundred
/// bytes).
const MAX_BUF: usize = 8192;

/// What the health endpoints report, updated by the main loop.
#[derive(Debug, Default)]
pub struct Health {
    /// Unix seconds of the main loop's last turn.
    last_tick: AtomicU64,
    /// A check cycle has completed.
    checked: AtomicBool,
    /// How long the loop may be silent before `/healthz` fails, in seconds.
    stale_after: AtomicU64,
}

impl Health {
    /// Returns health state that fails `/healthz` when the loop is silent for `stale_after`.
    pub fn new(stale_after: Duration) -> Health {
        let h = Health::default();
        h.stale_after
            .store(stale_after.as_secs().max(1), Ordering::Relaxed);
        h.tick();
        h
    }

    /// Records a turn of the main loop.
    pub fn tick(&self) {
        self.last_tick.store(unix_now(), Ordering::Relaxed);
    }

    /// Records a completed check cycle.
    pub fn checked(&self) {
        self.checked.store(true, Ordering::Relaxed);
    }

    fn live(&self) -> bool {
        unix_now().saturating_sub(self.last_tick.load(Ordering::Relaxed))
            <= self.stale_after.load(Ordering::Relaxed)
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Serves until the task is dropped.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, health: Arc<Health>) {
    // Open connections, oldest first.
    let mut open: VecDeque<tokio::task::AbortHandle> = VecDeque::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // EMFILE and friends: back off briefly rather than spin.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        open.retain(|h| !h.is_finished());
        if open.len() >= MAX_CONNECTIONS {
            if let Some(oldest) = open.pop_front() {
                oldest.abort();
            }
        }
        let (metrics, health) = (metrics.clone(), health.clone());
        let task = tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let r = respond(&req, &metrics, &health);
                async move { Ok::<_, Infallible>(r) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_BUF)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, conn).await;
        });
        open.push_back(task.abort_handle());
        // Let the new connection read its request before accepting the next one: a burst of
        // connects cannot starve it on this single-threaded runtime.
        tokio::task::yield_now().await;
    }
}

fn respond(req: &Request<Incoming>, metrics: &Metrics, health: &Health) -> Response<Full<Bytes>> {
    let (status, ctype, body) = match req.uri().path() {
        "/metrics" => {
            let accept = req
                .headers()
                .get(http::header::ACCEPT)
                .and_then(|v| v.to_str().ok());
            let format = Format::negotiate(accept);
            (
                StatusCode::OK,
                format.content_type(),
                metrics.encode_as(format),
            )
        }
        "/healthz" if health.live() => (StatusCode::OK, "text/plain", "ok\n".into()),
        "/healthz" => (
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "main loop stalled\n".into(),
        ),
        "/readyz" if health.checked.load(Ordering::Relaxed) && health.live() => {
            (StatusCode::OK, "text/plain", "ok\n".into())
        }
        "/readyz" => (
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "no check cycle completed yet\n".into(),
        ),
        _ => (StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = http::HeaderValue::from_str(ctype) {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    r
}
