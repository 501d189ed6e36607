//! The one way hostready builds a Kubernetes client (`hostready agent` and `hostready cluster`
//! alike): one documented kubeconfig lookup order ([`locate`]), bounded connect, read and write timeouts,
//! and a cap on the size of every response body, so an API address that never answers, or
//! one that streams an endless body, costs a prompt error instead of a hang or all of memory.
//!
//! kube's own client reads a whole response body into memory before parsing it and has no
//! limit of its own; its builder takes extra tower layers, so the cap is a layer that wraps
//! each response body in `http_body_util::Limited` (the body is refused once it passes the cap,
//! before more of it is buffered).

// The kubeconfig is this process's own file (the user's, or the pod's), not host content.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
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

/// The `--kubeconfig` flag of `hostready agent` and `hostready cluster`, defined once.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct KubeconfigArgs {
    /// A kubeconfig file. Without it: the files in KUBECONFIG (colon-separated, merged), else
    /// ~/.kube/config if it exists, else the in-cluster service account (as kubectl).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
}

/// Where a client's configuration comes from: the first of these that is given, in this order
/// (kubectl's order, and kube's `Config::infer`'s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `--kubeconfig FILE`.
    Flag(PathBuf),
    /// The files named in `KUBECONFIG`, merged in order.
    Env(Vec<PathBuf>),
    /// `~/.kube/config`, when it exists.
    Home(PathBuf),
    /// The pod's service account (`KUBERNETES_SERVICE_HOST` is set).
    InCluster,
}

/// What [`locate`] looks at, read from the process's environment by [`Environment::current`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    /// `KUBECONFIG`, when set.
    pub kubeconfig: Option<std::ffi::OsString>,
    /// `~/.kube/config` (from `HOME`), when HOME is set.
    pub home_config: Option<PathBuf>,
    /// Whether `~/.kube/config` exists.
    pub home_config_exists: bool,
    /// Whether `KUBERNETES_SERVICE_HOST` is set (the kubelet sets it in every pod).
    pub in_cluster: bool,
}

impl Environment {
    /// Returns this process's environment.
    pub fn current() -> Environment {
        let home_config =
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".kube").join("config"));
        Environment {
            kubeconfig: std::env::var_os("KUBECONFIG"),
            home_config_exists: home_config.as_deref().is_some_and(Path::exists),
            home_config,
            in_cluster: std::env::var_os("KUBERNETES_SERVICE_HOST").is_some_and(|v| !v.is_empty()),
        }
    }
}

/// Why no client could be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read kubeconfig {}", path.display())]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Nothing in the lookup order is there; one sentence that says what was looked at.
    #[error(
        "no cluster configured: no --kubeconfig, KUBECONFIG unset, {} not found, and not in a pod (KUBERNETES_SERVICE_HOST unset)",
        home.as_deref().map_or_else(|| "~/.kube/config (HOME unset)".to_string(), |p| p.display().to_string())
    )]
    NotFound { home: Option<PathBuf> },
    #[error("cannot use the pod's service account (in-cluster config)")]
    InCluster(#[source] kube::config::InClusterError),
    #[error(
        "--context needs a kubeconfig: none found, and the pod's service account has no contexts"
    )]
    ContextInCluster,
    #[error("cannot build the API client")]
    Build(#[source] kube::Error),
}

/// Returns where the configuration comes from: `flag`, else `KUBECONFIG`, else
/// `~/.kube/config` if it exists, else in-cluster; or why there is none.
///
/// A `KUBECONFIG` that names files which cannot be read is an error about those files, never a
/// silent fall-back to another cluster.
pub fn locate(flag: Option<&Path>, env: &Environment) -> Result<Source, ClientError> {
    if let Some(path) = flag {
        return Ok(Source::Flag(path.to_path_buf()));
    }
    if let Some(value) = &env.kubeconfig {
        let files: Vec<PathBuf> = std::env::split_paths(value)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        if !files.is_empty() {
            return Ok(Source::Env(files));
        }
    }
    match &env.home_config {
        Some(p) if env.home_config_exists => Ok(Source::Home(p.clone())),
        _ if env.in_cluster => Ok(Source::InCluster),
        home => Err(ClientError::NotFound { home: home.clone() }),
    }
}

/// Reads one kubeconfig file. Its existence is checked here first, so that the common mistake
/// (a wrong path) reads "cannot read kubeconfig X: No such file or directory" once.
fn read_kubeconfig(path: &Path) -> Result<kube::config::Kubeconfig, ClientError> {
    let err = |source: Box<dyn std::error::Error + Send + Sync>| ClientError::Kubeconfig {
        path: path.to_path_buf(),
        source,
    };
    std::fs::metadata(path).map_err(|e| err(Box::new(e)))?;
    // kube's reader also makes the certificate and token paths in it absolute.
    kube::config::Kubeconfig::read_from(path).map_err(|e| err(Box::new(e)))
}

/// Returns the client configuration from `source`, in kubeconfig context `context` (else the
/// current context). A context with the in-cluster service account is an error, not ignored.
pub async fn config_in(
    source: &Source,
    context: Option<&str>,
) -> Result<kube::Config, ClientError> {
    let (kc, shown) = match source {
        Source::InCluster if context.is_some() => return Err(ClientError::ContextInCluster),
        Source::InCluster => return kube::Config::incluster().map_err(ClientError::InCluster),
        Source::Flag(p) | Source::Home(p) => (read_kubeconfig(p)?, p.clone()),
        Source::Env(files) => {
            let mut merged = kube::config::Kubeconfig::default();
            for f in files {
                merged =
                    merged
                        .merge(read_kubeconfig(f)?)
                        .map_err(|e| ClientError::Kubeconfig {
                            path: f.clone(),
                            source: Box::new(e),
                        })?;
            }
            (merged, files[0].clone())
        }
    };
    let options = kube::config::KubeConfigOptions {
        context: context.map(str::to_string),
        ..Default::default()
    };
    kube::Config::from_custom_kubeconfig(kc, &options)
        .await
        .map_err(|e| ClientError::Kubeconfig {
            path: shown,
            source: Box::new(e),
        })
}

/// Builds a client from `kubeconfig`, else the lookup order of [`locate`], with `limits`.
pub async fn build(kubeconfig: Option<&Path>, limits: Limits) -> Result<kube::Client, ClientError> {
    build_in(kubeconfig, None, limits).await
}

/// [`build`] in kubeconfig context `context` (`hostready cluster --context`).
pub async fn build_in(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
    limits: Limits,
) -> Result<kube::Client, ClientError> {
    let source = locate(kubeconfig, &Environment::current())?;
    let mut cfg = config_in(&source, context).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Environment {
        Environment {
            kubeconfig: None,
            home_config: Some(PathBuf::from("/home/u/.kube/config")),
            home_config_exists: true,
            in_cluster: true,
        }
    }

    #[test]
    fn kubeconfig_flag_is_optional_and_takes_a_file() {
        use clap::Parser;
        #[derive(Debug, Parser)]
        struct Cli {
            #[command(flatten)]
            kube: KubeconfigArgs,
        }
        let parse = |a: &[&str]| Cli::try_parse_from(std::iter::once("t").chain(a.iter().copied()));
        assert_eq!(parse(&[]).unwrap().kube.kubeconfig, None);
        assert_eq!(
            parse(&["--kubeconfig", "/etc/kc"]).unwrap().kube.kubeconfig,
            Some(PathBuf::from("/etc/kc"))
        );
        assert!(parse(&["--kubeconfig"]).is_err());
    }

    #[test]
    fn lookup_order_flag_env_home_in_cluster() {
        let flag = Path::new("/etc/kc");
        let with_env = Environment {
            kubeconfig: Some("/a:/b".into()),
            ..env()
        };
        assert_eq!(
            locate(Some(flag), &with_env).unwrap(),
            Source::Flag(flag.into())
        );
        assert_eq!(
            locate(None, &with_env).unwrap(),
            Source::Env(vec!["/a".into(), "/b".into()])
        );
        assert_eq!(
            locate(None, &env()).unwrap(),
            Source::Home("/home/u/.kube/config".into())
        );
        // An empty KUBECONFIG is unset, as for kubectl.
        let empty = Environment {
            kubeconfig: Some("".into()),
            ..env()
        };
        assert!(matches!(locate(None, &empty).unwrap(), Source::Home(_)));
        let no_home = Environment {
            home_config_exists: false,
            ..env()
        };
        assert_eq!(locate(None, &no_home).unwrap(), Source::InCluster);
    }

    #[test]
    fn nothing_found_is_one_sentence_naming_what_was_looked_at() {
        let none = Environment {
            home_config_exists: false,
            in_cluster: false,
            ..env()
        };
        let e = locate(None, &none).unwrap_err().to_string();
        assert_eq!(
            e,
            "no cluster configured: no --kubeconfig, KUBECONFIG unset, /home/u/.kube/config not found, and not in a pod (KUBERNETES_SERVICE_HOST unset)"
        );
        assert!(!e.contains("\"\""), "{e}");
    }

    #[tokio::test]
    async fn a_missing_file_is_named_once() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let e = config_in(&Source::Flag(missing.clone()), None)
            .await
            .unwrap_err();
        let chain = format!("{e}: {}", std::error::Error::source(&e).unwrap());
        assert_eq!(
            chain,
            format!(
                "cannot read kubeconfig {}: No such file or directory (os error 2)",
                missing.display()
            )
        );
    }
}
