//! The metrics and health endpoint: `/metrics` (Prometheus text), `/healthz` (the main loop is
//! turning) and `/readyz` (a first check cycle has completed under a valid config).
//!
//! HTTP/1 only, a header-read deadline and a cap on open connections, so a slow or hostile
//! scraper cannot grow the agent's memory.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::metrics::Metrics;

/// At most this many scrapes are served at once; more connections are closed at once.
const MAX_CONNECTIONS: usize = 8;

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
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // EMFILE and friends: back off briefly rather than spin.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let (metrics, health) = (metrics.clone(), health.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let r = respond(&req, &metrics, &health);
                async move { Ok::<_, Infallible>(r) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(5))
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(Duration::from_secs(30), conn).await;
            drop(permit);
        });
    }
}

fn respond(req: &Request<Incoming>, metrics: &Metrics, health: &Health) -> Response<Full<Bytes>> {
    let (status, ctype, body) = match req.uri().path() {
        "/metrics" => (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.encode(),
        ),
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
