//! The agent's main loop: check on a jittered period, turn findings into conditions, publish
//! them (on change, and on the heartbeat) with events for every transition, reload the config
//! when it changes, and retry the API with capped backoff while checks go on.
//!
//! Memory stays bounded whatever the API does: only the latest conditions are kept (a write
//! sends the newest state, never a backlog), and at most [`MAX_PENDING_EVENTS`] events wait.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hostready_exec::{Runner, RunnerConfig};
use hostready_host::ProcSource;
use k8s_openapi::chrono::Utc;
use tokio::time::sleep_until;

use crate::backoff::{Backoff, Jitter};
use crate::condition::{CondStatus, ConditionSet};
use crate::config::{ConfigError, Defaults, Settings, Stamp};
use crate::cycle::{CycleResult, check};
use crate::log;
use crate::metrics::Metrics;
use crate::publish::{ApiError, EventSpec, Kube};
use crate::server::Health;

/// Events waiting for the API beyond this are dropped, oldest first (and counted).
pub const MAX_PENDING_EVENTS: usize = 32;

/// `--once` gives up after this many failed publish attempts (about 7 s of backoff).
const ONCE_ATTEMPTS: u32 = 4;

/// Everything the agent needs to run, parsed from flags.
#[derive(Debug, Clone)]
pub struct Options {
    pub node_name: String,
    pub root: PathBuf,
    pub proc: ProcSource,
    pub config: Option<PathBuf>,
    pub defaults: Defaults,
    pub once: bool,
    pub metrics_addr: Option<SocketAddr>,
    pub kubeconfig: Option<PathBuf>,
    pub events_namespace: String,
    /// Stop after this many cycles (soak tests and benchmarks).
    pub max_cycles: Option<u64>,
    pub backoff_cap: Duration,
    pub reload_poll: Duration,
    pub probe_kill_grace: Duration,
}

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    KubeConfig(crate::client::ClientError),
    #[error("cannot serve metrics on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error(
        "refusing to write to node {node}: {}; a profile may only publish a condition no one else owns (nothing was written)",
        list(conflicts)
    )]
    ConditionOwned {
        node: String,
        conflicts: Vec<crate::ownership::Conflict>,
    },
}

fn list(c: &[crate::ownership::Conflict]) -> String {
    c.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// How the agent ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// `--once`: the conditions were published.
    Published,
    /// `--once`: they could not be published.
    NotPublished,
    /// SIGTERM/SIGINT, or `--max-cycles` reached.
    Stopped,
}

/// Runs the agent until `shutdown` resolves (or `--once` / `--max-cycles` ends it).
pub async fn run(opts: Options, shutdown: impl Future<Output = ()>) -> Result<Exit, AgentError> {
    let mut settings = Arc::new(match &opts.config {
        Some(p) => Settings::load(p, &opts.defaults)?,
        None => Settings::from_defaults(&opts.defaults)?,
    });
    let mut config_stamp: Option<Stamp> = opts.config.as_deref().and_then(crate::config::stamp);
    let client = make_client(&opts).await?;
    let kube = Kube::new(client, &opts.node_name, &opts.events_namespace);
    let metrics = Arc::new(Metrics::new());
    metrics.config_valid.set(1);
    let health = Arc::new(Health::new(opts.reload_poll * 6 + Duration::from_secs(60)));
    let _server = match opts.metrics_addr {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| AgentError::Listen { addr, source })?;
            let bound = listener.local_addr().unwrap_or(addr);
            log::info(&format!("metrics and health on http://{bound}"));
            Some(AbortOnDrop(tokio::spawn(crate::server::serve(
                listener,
                metrics.clone(),
                health.clone(),
            ))))
        }
        None => None,
    };
    // A runner (and with it the subreaper setting) only once a profile has a command check:
    // the built-in checks start no process.
    let mut runner: Option<Runner> = None;
    let mut jitter = Jitter::from_entropy();
    let mut state = State {
        kube,
        node: opts.node_name.clone(),
        metrics: metrics.clone(),
        conditions: ConditionSet::default(),
        pending: VecDeque::new(),
        uid: None,
        last_write: None,
        backoff: Backoff::new(
            Duration::from_millis(500),
            opts.backoff_cap,
            Jitter::from_entropy(),
        ),
        retry_at: None,
        verified: false,
        withheld: Vec::new(),
    };
    log::info(&format!(
        "agent for node {} on root {}: profiles {}, interval {}, heartbeat {}",
        opts.node_name,
        opts.root.display(),
        names(&settings),
        crate::duration::format(settings.interval),
        crate::duration::format(settings.heartbeat),
    ));

    // Best effort: start from what the Node shows, so a restarted agent reports real flips
    // only and keeps transition times. If the API is unreachable now, publishing adopts later.
    match state.kube.get_node().await {
        Ok(node) => {
            let types: Vec<String> = settings
                .profiles
                .iter()
                .map(hostready_checks::Profile::condition_type)
                .collect();
            // Before the first apply: a condition someone else owns is never taken over.
            let conflicts = crate::ownership::conflicts(&node, &types);
            if !conflicts.is_empty() {
                let e = AgentError::ConditionOwned {
                    node: opts.node_name.clone(),
                    conflicts,
                };
                let text = e.to_string();
                log::warn(&text);
                state.uid = node.metadata.uid.clone();
                // Best effort, so `kubectl describe node` shows why the agent is not running.
                let ev = EventSpec::condition_owned(&text, Utc::now())
                    .to_event(&opts.node_name, state.uid.as_deref());
                let _ = state.kube.create_event(&ev).await;
                return Err(e);
            }
            state.uid = node.metadata.uid.clone();
            state.verified = true;
            let existing = node.status.and_then(|s| s.conditions).unwrap_or_default();
            state.conditions.seed(&existing, &types);
        }
        Err(e) => {
            metrics.api_error(e.op(), &e.code());
            log::warn(&format!(
                "cannot read the Node yet ({}); checking anyway",
                e.describe()
            ));
        }
    }

    tokio::pin!(shutdown);
    // A DaemonSet rollout starts every agent at once: spread the first checks.
    let splay = if opts.once {
        Duration::ZERO
    } else {
        jitter.upto((settings.interval / 10).min(Duration::from_secs(30)))
    };
    let mut next_check = Instant::now() + splay;
    let mut cycles: u64 = 0;
    let mut attempts: u32 = 0;
    loop {
        let now = Instant::now();
        let mut wake = next_check.min(now + opts.reload_poll);
        if cycles > 0 {
            wake = wake.min(state.publish_due(settings.heartbeat, now).max(now));
        }
        tokio::select! {
            biased;
            () = &mut shutdown => return Ok(Exit::Stopped),
            () = sleep_until(wake.into()) => {}
        }
        health.tick();

        if let Some(path) = &opts.config {
            let stamp = crate::config::stamp(path);
            if stamp != config_stamp {
                config_stamp = stamp;
                let loaded = match Settings::load(path, &opts.defaults) {
                    Ok(s) => state.check_ownership(&s).await.map(|()| s),
                    Err(e) => Err(DisplayChain(&e).to_string()),
                };
                match loaded {
                    Ok(s) => {
                        log::info(&format!("config reloaded: profiles {}", names(&s)));
                        settings = Arc::new(s);
                        metrics.config_valid.set(1);
                        next_check = Instant::now();
                    }
                    Err(text) => {
                        log::warn(&format!(
                            "config refused, keeping the last good one: {text}"
                        ));
                        metrics.config_errors.inc();
                        metrics.config_valid.set(0);
                        state.push_event(None, EventSpec::config_refused(&text, Utc::now()));
                    }
                }
            }
        }

        if Instant::now() >= next_check {
            if runner.is_none() && settings.has_commands() {
                runner = Some(Runner::new(RunnerConfig {
                    kill_grace: opts.probe_kill_grace,
                    ..RunnerConfig::default()
                }));
            }
            let task = {
                let (settings, runner) = (settings.clone(), runner.clone());
                let (root, proc, path) = (
                    opts.root.clone(),
                    opts.proc.clone(),
                    settings.search_path.clone(),
                );
                tokio::task::spawn_blocking(move || {
                    check(&root, proc, &path, &settings, runner.as_ref())
                })
            };
            tokio::pin!(task);
            // A long command check is not a stalled loop: keep /healthz fresh while waiting.
            let result = loop {
                tokio::select! {
                    biased;
                    () = &mut shutdown => return Ok(Exit::Stopped),
                    r = &mut task => break r,
                    () = tokio::time::sleep(opts.reload_poll) => health.tick(),
                }
            };
            let Ok(result) = result else {
                log::warn("check cycle panicked; trying again next period");
                next_check = Instant::now() + jitter.spread(settings.interval, 0.1);
                continue;
            };
            state.record(result);
            health.checked();
            cycles += 1;
            next_check = Instant::now() + jitter.spread(settings.interval, 0.1);
        }

        let now = Instant::now();
        if cycles > 0 && now >= state.publish_due(settings.heartbeat, now) {
            attempts += 1;
            match state.publish(settings.heartbeat).await {
                Ok(()) => {
                    if opts.once {
                        return Ok(Exit::Published);
                    }
                }
                Err(e) => {
                    let delay = state.backoff.next_delay();
                    log::warn(&format!(
                        "publishing failed ({}); retry in {:?} (attempt {})",
                        e.describe(),
                        delay,
                        state.backoff.failures()
                    ));
                    state.retry_at = Some(Instant::now() + delay);
                    if opts.once && attempts >= ONCE_ATTEMPTS {
                        return Ok(Exit::NotPublished);
                    }
                }
            }
        }
        if opts.max_cycles.is_some_and(|m| cycles >= m) {
            return Ok(Exit::Stopped);
        }
    }
}

/// What the loop keeps between cycles.
struct State {
    kube: Kube,
    node: String,
    metrics: Arc<Metrics>,
    conditions: ConditionSet,
    /// Events not yet created; `Some(type)` marks a condition's first appearance, which is
    /// dropped if the Node already showed that status (the agent restarted).
    pending: VecDeque<(Option<String>, EventSpec)>,
    uid: Option<String>,
    last_write: Option<Instant>,
    backoff: Backoff,
    retry_at: Option<Instant>,
    /// The conditions to publish were checked against the Node's managedFields.
    verified: bool,
    /// Condition types withheld because another field manager owns them (found when the
    /// Node could first be read, after the config was accepted).
    withheld: Vec<String>,
}

impl State {
    /// Checks a newly loaded config's conditions against the Node's owners: `Err` with why
    /// if another field manager owns one (the config is refused, the last good one stays).
    /// If the Node cannot be read now, the check is left to the next read before an apply.
    async fn check_ownership(&mut self, s: &Settings) -> Result<(), String> {
        let types: Vec<String> = s
            .profiles
            .iter()
            .map(hostready_checks::Profile::condition_type)
            .collect();
        match self.kube.get_node().await {
            Ok(node) => {
                let conflicts = crate::ownership::conflicts(&node, &types);
                if !conflicts.is_empty() {
                    return Err(format!(
                        "{}; a profile may only publish a condition no one else owns",
                        list(&conflicts)
                    ));
                }
                self.verified = true;
            }
            Err(e) => {
                self.metrics.api_error(e.op(), &e.code());
                self.verified = false;
            }
        }
        self.withheld.clear();
        self.report_withheld();
        Ok(())
    }

    /// Withholds the conditions another field manager owns on `node` (the config was
    /// accepted while the Node could not be read), and reports each newly withheld one.
    fn withhold_foreign(&mut self, node: &k8s_openapi::api::core::v1::Node) {
        let types: Vec<String> = self
            .conditions
            .statuses()
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        for c in crate::ownership::conflicts(node, &types) {
            let text = format!(
                "{c}; not writing it (a profile may only publish a condition no one else owns)"
            );
            log::warn(&text);
            self.push_event(None, EventSpec::condition_owned(&text, Utc::now()));
            self.withheld.push(c.type_);
        }
        self.conditions.forget(&self.withheld);
        self.verified = true;
        self.report_withheld();
    }

    fn report_withheld(&self) {
        self.metrics.conditions_withheld.clear();
        for t in &self.withheld {
            self.metrics
                .conditions_withheld
                .get_or_create(&crate::metrics::ConditionTypeLabels {
                    condition: t.clone(),
                })
                .set(1);
        }
    }

    fn record(&mut self, r: CycleResult) {
        self.metrics.cycles.inc();
        self.metrics
            .check_duration
            .observe(r.duration.as_secs_f64());
        for id in &r.stats.timeouts {
            self.metrics
                .probe_timeouts
                .get_or_create(&crate::metrics::ProbeLabels { probe: id.clone() })
                .inc();
        }
        self.metrics.stuck_probes.set(r.stats.stuck as i64);
        self.metrics.set_findings(&r.findings);
        let now = Utc::now();
        let mut desired = r.desired;
        desired.retain(|d| !self.withheld.contains(&d.type_));
        for t in self.conditions.update(desired, now) {
            log::info(&format!(
                "{} {} -> {} ({}) {}",
                t.type_,
                t.from.map_or("(none)", CondStatus::as_str),
                t.to.as_str(),
                t.reason,
                t.failing.join(", ")
            ));
            let appeared = t.from.is_none().then(|| t.type_.clone());
            self.push_event(appeared, EventSpec::transition(&t, now));
        }
        self.metrics.set_conditions(&self.conditions.statuses());
    }

    fn push_event(&mut self, appeared: Option<String>, e: EventSpec) {
        if self.pending.len() >= MAX_PENDING_EVENTS {
            self.pending.pop_front();
            self.metrics.events_dropped.inc();
        }
        self.pending.push_back((appeared, e));
    }

    /// Returns when the next publish is due: now if something changed or waits (but not
    /// before a backoff runs out), else at the heartbeat.
    fn publish_due(&self, heartbeat: Duration, now: Instant) -> Instant {
        let wanted = self.uid.is_none()
            || self.conditions.changed()
            || !self.pending.is_empty()
            || self.last_write.is_none();
        let due = if wanted {
            now
        } else {
            self.last_write.map_or(now, |w| w + heartbeat)
        };
        match self.retry_at {
            Some(r) if r > due => r,
            _ => due,
        }
    }

    async fn publish(&mut self, heartbeat: Duration) -> Result<(), ApiError> {
        let result = self.publish_inner(heartbeat).await;
        match &result {
            Ok(()) => {
                self.backoff.reset();
                self.retry_at = None;
            }
            Err(e) => {
                self.metrics.api_error(e.op(), &e.code());
                // The Node may have been deleted and created again: read it afresh.
                if e.status() == Some(404) {
                    self.uid = None;
                }
            }
        }
        result
    }

    async fn publish_inner(&mut self, heartbeat: Duration) -> Result<(), ApiError> {
        if self.uid.is_none() || !self.verified {
            let node = self.kube.get_node().await?;
            if !self.verified {
                self.withhold_foreign(&node);
            }
            self.uid = node.metadata.uid.clone();
            let existing = node.status.and_then(|s| s.conditions).unwrap_or_default();
            let adopted = self.conditions.adopt(&existing);
            self.pending
                .retain(|(appeared, _)| appeared.as_ref().is_none_or(|t| !adopted.contains(t)));
        }
        let heartbeat_due = self.last_write.is_none_or(|w| w.elapsed() >= heartbeat);
        if self.conditions.changed() || heartbeat_due {
            let body = self.conditions.apply_body(&self.node, Utc::now());
            self.kube.apply_conditions(&body).await?;
            self.conditions.mark_written();
            self.last_write = Some(Instant::now());
            self.metrics.api_write("apply_conditions");
            self.metrics
                .last_publish
                .set(Utc::now().timestamp_millis() as f64 / 1000.0);
        }
        while let Some((_, e)) = self.pending.front() {
            let event = e.to_event(&self.node, self.uid.as_deref());
            match self.kube.create_event(&event).await {
                Ok(()) => self.metrics.api_write("create_event"),
                // Refused for good (RBAC, validation): retrying cannot help, drop it.
                Err(err) if matches!(err.status(), Some(400 | 403 | 422)) => {
                    self.metrics.api_error(err.op(), &err.code());
                    self.metrics.events_dropped.inc();
                    log::warn(&format!("event dropped: {}", err.describe()));
                }
                Err(err) => return Err(err),
            }
            self.pending.pop_front();
        }
        Ok(())
    }
}

/// The largest API response the agent accepts. It only ever reads one Node (and gets one back
/// from each apply); etcd refuses objects over 1.5 MiB, so anything larger is not a Node.
pub const MAX_RESPONSE_BYTES: usize = 2 << 20;

async fn make_client(opts: &Options) -> Result<kube::Client, AgentError> {
    // A slow API server must not hold a cycle for long: bounded connect and reads, and a
    // bounded body.
    let limits = crate::client::Limits {
        connect: Duration::from_secs(5),
        read: Duration::from_secs(15),
        max_body: MAX_RESPONSE_BYTES,
    };
    crate::client::build(opts.kubeconfig.as_deref(), limits)
        .await
        .map_err(AgentError::KubeConfig)
}

fn names(s: &Settings) -> String {
    s.profiles
        .iter()
        .map(|p| p.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Displays an error and its sources, `: `-separated.
struct DisplayChain<'a>(&'a dyn std::error::Error);

impl std::fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut src = self.0.source();
        while let Some(s) = src {
            write!(f, ": {s}")?;
            src = s.source();
        }
        Ok(())
    }
}

/// Aborts a spawned task when dropped (the metrics server ends with the loop).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Request, Response};
    use kube::client::Body;

    fn desired(type_: &str) -> crate::condition::Desired {
        crate::condition::Desired {
            type_: type_.into(),
            profile: "p".into(),
            status: CondStatus::False,
            reason: "ExecutableMissing".into(),
            message: "exe.x fail".into(),
            failing: vec!["exe.x".into()],
            detail: "exe.x fail".into(),
        }
    }

    /// The API was away at start, so ownership could not be checked then: at the first Node
    /// read before an apply, a condition the kubelet owns is withheld (never in the apply),
    /// reported by an event and the metric, and the others are published.
    #[tokio::test]
    async fn a_condition_found_owned_by_another_manager_later_is_withheld() {
        let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let metrics = Arc::new(Metrics::new());
        let mut state = State {
            kube: Kube::new(kube::Client::new(svc, "default"), "n1", "default"),
            node: "n1".into(),
            metrics: metrics.clone(),
            conditions: ConditionSet::default(),
            pending: VecDeque::new(),
            uid: None,
            last_write: None,
            backoff: Backoff::new(
                Duration::from_millis(1),
                Duration::from_millis(1),
                Jitter::seeded(1),
            ),
            retry_at: None,
            verified: false,
            withheld: Vec::new(),
        };
        state
            .conditions
            .update(vec![desired("Ready"), desired("IscsiReady")], Utc::now());
        let server = tokio::spawn(async move {
            let (req, send) = handle.next_request().await.expect("get node");
            assert_eq!(req.method(), http::Method::GET);
            let node = serde_json::json!({"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": "n1", "uid": "u1", "managedFields": [
                    {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
                     "fieldsV1": {"f:status": {"f:conditions": {"k:{\"type\":\"Ready\"}": {".": {}}}}}}]}});
            send.send_response(
                Response::builder()
                    .body(Body::from(serde_json::to_vec(&node).unwrap()))
                    .unwrap(),
            );
            let (req, send) = handle.next_request().await.expect("apply");
            assert_eq!(req.method(), http::Method::PATCH);
            let bytes = http_body_util::BodyExt::collect(req.into_body())
                .await
                .unwrap()
                .to_bytes();
            let sent: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            let types: Vec<&str> = sent["status"]["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["type"].as_str().unwrap())
                .collect();
            assert_eq!(types, ["IscsiReady"]);
            send.send_response(
                Response::builder()
                    .body(Body::from(bytes.to_vec()))
                    .unwrap(),
            );
            let (req, send) = handle.next_request().await.expect("event");
            let bytes = http_body_util::BodyExt::collect(req.into_body())
                .await
                .unwrap()
                .to_bytes();
            let ev: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(ev["reason"], "ConditionOwnedElsewhere");
            assert!(
                ev["note"]
                    .as_str()
                    .unwrap()
                    .contains("condition Ready is owned by field manager kubelet"),
                "{ev}"
            );
            send.send_response(
                Response::builder()
                    .body(Body::from(bytes.to_vec()))
                    .unwrap(),
            );
        });
        state.publish(Duration::from_secs(3600)).await.unwrap();
        server.await.unwrap();
        assert_eq!(state.withheld, ["Ready"]);
        assert!(
            metrics
                .encode()
                .contains(r#"hostready_conditions_withheld{condition="Ready"} 1"#)
        );
        // Later cycles leave it out too.
        state.record(CycleResult {
            findings: Vec::new(),
            desired: vec![desired("Ready"), desired("IscsiReady")],
            stats: Default::default(),
            duration: Duration::ZERO,
        });
        let types: Vec<String> = state
            .conditions
            .statuses()
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        assert_eq!(types, ["IscsiReady"]);
    }
}
