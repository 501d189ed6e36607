//! The one way hostready builds a Kubernetes client: bounded connect, read and write timeouts,
//! and a cap on the size of every response body, so an API address that never answers, or
//! one that streams an endless body, costs a prompt error instead of a hang or all of memory.
//!
//! kube's own client reads a whole response body into memory before parsing it and has no
//! limit of its own; its builder takes extra tower layers, so the cap is a layer that wraps
//! each response body in `http_body_util::Limited` (the body is refused once it passes the cap,
//! before more of it is buffered).

use std::path::Path;
use std::time::Duration;

use http_body_util::Limited;
use kube::client::{ClientBuilder, DynBody};

/// Limits of one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// TCP (and TLS) connect.
    pub connect: Duration,
    /// Longest silence while reading a response (also bounds a server that accepts and never
    /// answers).
    pub read: Duration,
    /// Largest response body accepted, in bytes.
    pub max_body: usize,
}

/// Why no client could be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read kubeconfig {}", path.display())]
    Kubeconfig {
        path: std::path::PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot find the cluster (in-cluster config, KUBECONFIG or ~/.kube/config)")]
    Infer(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("cannot build the API client")]
    Build(#[source] kube::Error),
}

/// Builds a client from `kubeconfig` (or in-cluster config, `KUBECONFIG`, `~/.kube/config`)
/// with `limits`.
pub async fn build(kubeconfig: Option<&Path>, limits: Limits) -> Result<kube::Client, ClientError> {
    let mut cfg = match kubeconfig {
        Some(path) => {
            let err = |source: Box<dyn std::error::Error + Send + Sync>| ClientError::Kubeconfig {
                path: path.to_path_buf(),
                source,
            };
            let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| err(Box::new(e)))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| err(Box::new(e)))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| ClientError::Infer(Box::new(e)))?,
    };
    cfg.connect_timeout = Some(limits.connect);
    cfg.read_timeout = Some(limits.read);
    cfg.write_timeout = Some(limits.read);
    let max = limits.max_body;
    let builder = ClientBuilder::try_from(cfg).map_err(ClientError::Build)?;
    Ok(builder
        .with_layer(&tower::util::MapResponseLayer::new(
            move |r: http::Response<Box<DynBody>>| r.map(|b| Limited::new(b, max)),
        ))
        .build())
}

/// Returns true if and only if `e` (or one of its sources) is a response body that passed the
/// cap of [`Limits::max_body`].
pub fn is_too_large(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if c.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cur = c.source();
    }
    false
}
