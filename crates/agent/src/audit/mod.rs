//! The audit part of `hostready cluster` (issue 15): stale agents, containers without a memory
//! limit, known issues of the running storage system's version, and Longhorn's cluster-level
//! preflight items. Read-only, with the user's credentials; every list is read in pages, and
//! only small rows are kept between pages. A list that cannot be read (forbidden, timed out) is
//! reported in `unreadable` and the rest still runs.

pub mod known;
pub mod limits;
pub mod preflight;
pub mod stale;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::Duration;

use kube::api::{Api, ListParams};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why one list could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("no complete answer within {timeout:?}")]
    Timeout { timeout: Duration },
    #[error("more than {pages} pages")]
    TooManyPages { pages: usize },
    #[error("a page of the answer is larger than {max} bytes")]
    TooLarge {
        max: usize,
        #[source]
        source: kube::Error,
    },
    #[error(transparent)]
    List(kube::Error),
}

/// More pages than this is not a real cluster: an API that keeps answering with a `continue`
/// token is refused.
pub const MAX_PAGES: usize = 1000;

/// Calls `f` with each page of `api`'s list for `base` (`limit` = `page`), each request within
/// `timeout`. Memory is one page at a time.
pub async fn each_page<K>(
    api: &Api<K>,
    base: &ListParams,
    page: u32,
    timeout: Duration,
    mut f: impl FnMut(Vec<K>),
) -> Result<(), PageError>
where
    K: Clone + DeserializeOwned + Debug,
{
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let lp = ListParams {
            limit: Some(page),
            continue_token: token.take(),
            ..base.clone()
        };
        let list = match tokio::time::timeout(timeout, api.list(&lp)).await {
            Err(_) => return Err(PageError::Timeout { timeout }),
            Ok(Err(e)) if crate::client::is_too_large(&e) => {
                return Err(PageError::TooLarge {
                    max: crate::cluster::MAX_PAGE_BYTES,
                    source: e,
                });
            }
            Ok(Err(e)) => return Err(PageError::List(e)),
            Ok(Ok(list)) => list,
        };
        f(list.items);
        match list.metadata.continue_ {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => return Ok(()),
        }
    }
    Err(PageError::TooManyPages { pages: MAX_PAGES })
}

/// A list hostready could not read, and why (the whole error chain).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unreadable {
    /// `pods`, `daemonsets`, `deployments`, `replicasets`, `limitranges`.
    pub what: String,
    pub error: String,
}

impl Unreadable {
    pub fn new(what: &str, e: &(dyn std::error::Error + 'static)) -> Unreadable {
        let mut error = e.to_string();
        let mut cur = e.source();
        while let Some(c) = cur {
            error.push_str(": ");
            error.push_str(&c.to_string());
            cur = c.source();
        }
        Unreadable {
            what: what.to_string(),
            error,
        }
    }
}

/// Which nodes the stale check looks at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Scope {
    /// `namespace/name` of the agent's DaemonSet (label `app.kubernetes.io/name=hostready-agent`),
    /// when one was found.
    pub daemonset: Option<String>,
    /// Its `nodeSelector` (empty: every node).
    pub node_selector: BTreeMap<String, String>,
    /// What the check is based on, in a sentence.
    pub note: String,
}

/// The label the chart gives the agent's DaemonSet (deploy/helm/hostready/templates/_helpers.tpl).
pub const AGENT_SELECTOR: &str = "app.kubernetes.io/name=hostready-agent";

/// The known-issues section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct KnownIssues {
    pub detected: Vec<known::Detected>,
    pub affecting: Vec<known::Affecting>,
}

/// Everything the audit found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Audit {
    /// `--stale-after`, in the shared duration grammar.
    pub stale_after: String,
    pub scope: Scope,
    pub stale: Vec<stale::Stale>,
    /// The namespace the pod lists were limited to (`-n`), or null for all.
    pub namespace: Option<String>,
    /// Containers looked at.
    pub containers: u64,
    pub memory_limits: Vec<limits::NoLimit>,
    /// Namespace → the default memory limit its LimitRange gives containers.
    pub limit_range_defaults: BTreeMap<String, String>,
    pub known_issues: KnownIssues,
    /// Null when the Deployments could not be read.
    pub coredns: Option<preflight::CoreDns>,
    pub hugepages: Vec<preflight::Hugepages>,
    pub unreadable: Vec<Unreadable>,
}

impl Audit {
    /// An audit that found nothing (no list read yet).
    pub fn empty(stale_after: Duration) -> Audit {
        Audit {
            stale_after: hostready_flags::duration::format(stale_after),
            scope: Scope {
                daemonset: None,
                node_selector: BTreeMap::new(),
                note: String::new(),
            },
            stale: Vec::new(),
            namespace: None,
            containers: 0,
            memory_limits: Vec::new(),
            limit_range_defaults: BTreeMap::new(),
            known_issues: KnownIssues::default(),
            coredns: None,
            hugepages: Vec::new(),
            unreadable: Vec::new(),
        }
    }

    /// How many items need attention (each is what `cluster` exits 1 for).
    pub fn attention(&self) -> usize {
        self.stale.len()
            + self.memory_limits.iter().filter(|n| n.attention).count()
            + self.known_issues.affecting.len()
            + usize::from(self.coredns.as_ref().is_some_and(|c| c.attention))
            + self.hugepages.iter().filter(|h| h.attention).count()
    }
}
