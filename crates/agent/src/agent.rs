//! The agent's main loop: check on a jittered period, turn findings into conditions, publish
//! them (on change, and on the heartbeat) with events for every transition, reload the config
//! when it changes, and retry the API with capped backoff while checks go on.
//!
//! What is published and when (conditions, pending events, the Node's owners, the write
//! backoff) is [`NodeState`]'s; this file schedules and wires.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hostready_exec::{Runner, RunnerConfig};
use hostready_host::ProcSource;
use k8s_openapi::chrono::Utc;
use tokio::time::sleep_until;

use crate::backoff::Jitter;
use crate::config::{ConfigError, Defaults, Settings, Stamp};
use crate::cycle::check;
use crate::log;
use crate::metrics::Metrics;
use crate::node_state::NodeState;
use crate::publish::{EventSpec, Kube};
use crate::server::Health;

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
    /// `--watch-interval`: the watch pass's period when the config file does not set one;
    /// zero is off.
    pub watch_interval: Duration,
    /// `--scheduling-labels`: labels on when the config file does not say.
    pub scheduling_labels: bool,
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
    #[error("scheduling labels: {0}")]
    Labels(String),
    #[error(
        "refusing to write to node {node}: {}; a profile may only publish a condition no one else owns (nothing was written)",
        list(conflicts)
    )]
    ConditionOwned {
        node: String,
        conflicts: Vec<crate::ownership::Conflict>,
    },
}

pub(crate) fn list(c: &[crate::ownership::Conflict]) -> String {
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

/// Runs the agent until `shutdown` resolves (or `--once` / `--max-cycles` ends it): set up,
/// adopt what the Node shows, then loop — reload the config when it changed, check when due,
/// publish when due.
pub async fn run(opts: Options, shutdown: impl Future<Output = ()>) -> Result<Exit, AgentError> {
    let mut agent = Agent::start(opts).await?;
    agent.adopt_node().await?;
    tokio::pin!(shutdown);
    agent.run_loop(shutdown).await
}

/// The running agent: its options and settings, its parts (metrics, health, the metrics
/// server, a runner once a command check needs one) and the loop's schedule.
struct Agent {
    opts: Options,
    settings: Arc<Settings>,
    config_stamp: Option<Stamp>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    /// Ends the metrics server when the agent ends.
    _server: Option<AbortOnDrop>,
    /// A runner (and with it the subreaper setting) only once a profile has a command check:
    /// the built-in checks start no process.
    runner: Option<Runner>,
    jitter: Jitter,
    state: NodeState,
    next_check: Instant,
    /// When the next watch pass is due (ignored while the watch is off).
    next_watch: Instant,
    /// Pile sizes of the last watch pass, for growth per minute.
    watch_prev: crate::watch::Previous,
    cycles: u64,
    /// Publish attempts so far (`--once` gives up after [`ONCE_ATTEMPTS`]).
    attempts: u32,
}

/// How one check cycle ended.
enum Checked {
    Done,
    /// The check panicked; the next is scheduled.
    Panicked,
    /// `shutdown` resolved while the check ran.
    Shutdown,
}

impl Agent {
    /// Set-up: the config, the kube client, metrics and the health endpoints, the loop state.
    async fn start(opts: Options) -> Result<Agent, AgentError> {
        let settings = Arc::new(match &opts.config {
            Some(p) => Settings::load(p, &opts.defaults)?,
            None => Settings::from_defaults(&opts.defaults)?,
        });
        let config_stamp = opts.config.as_deref().and_then(crate::config::stamp);
        let labels_on = labels_on(&settings, &opts).map_err(AgentError::Labels)?;
        let client = make_client(&opts).await?;
        let kube = Kube::new(client, &opts.node_name, &opts.events_namespace);
        let metrics = Arc::new(Metrics::new());
        metrics.config_valid.set(1);
        let health = Arc::new(Health::new(opts.reload_poll * 6 + Duration::from_secs(60)));
        let server = match opts.metrics_addr {
            Some(addr) => Some(serve(addr, &metrics, &health).await?),
            None => None,
        };
        let mut jitter = Jitter::from_entropy();
        log::info(&format!(
            "agent for node {} on root {}: profiles {}, interval {}, heartbeat {}",
            opts.node_name,
            opts.root.display(),
            names(&settings),
            crate::duration::format(settings.interval),
            crate::duration::format(settings.heartbeat),
        ));
        // A DaemonSet rollout starts every agent at once: spread the first checks.
        let splay = if opts.once {
            Duration::ZERO
        } else {
            jitter.upto((settings.interval / 10).min(Duration::from_secs(30)))
        };
        let mut state = NodeState::new(kube, &opts, metrics.clone());
        state.labels_on = labels_on;
        Ok(Agent {
            state,
            opts,
            settings,
            config_stamp,
            metrics,
            health,
            _server: server,
            runner: None,
            jitter,
            next_check: Instant::now() + splay,
            next_watch: Instant::now(),
            watch_prev: crate::watch::Previous::default(),
            cycles: 0,
            attempts: 0,
        })
    }

    /// Best effort: start from what the Node shows, so a restarted agent reports real flips
    /// only and keeps transition times. If the API is unreachable now, publishing adopts
    /// later. `Err` if another field manager owns one of the conditions (nothing written).
    async fn adopt_node(&mut self) -> Result<(), AgentError> {
        let types = self.condition_types(&self.settings);
        let state = &mut self.state;
        let node = match state.kube.get_node().await {
            Ok(node) => node,
            Err(e) => {
                self.metrics.api_error(e.op(), &e.code());
                log::warn(&format!(
                    "cannot read the Node yet ({}); checking anyway",
                    e.describe()
                ));
                return Ok(());
            }
        };
        state.uid = node.metadata.uid.clone();
        state.labels_node = Some(crate::labels::owned(&node));
        // Before the first apply: a condition someone else owns is never taken over.
        let conflicts = crate::ownership::conflicts(&node, &types);
        if !conflicts.is_empty() {
            let e = AgentError::ConditionOwned {
                node: self.opts.node_name.clone(),
                conflicts,
            };
            let text = e.to_string();
            log::warn(&text);
            // Best effort, so `kubectl describe node` shows why the agent is not running.
            let ev = EventSpec::condition_owned(&text, Utc::now())
                .to_event(&self.opts.node_name, state.uid.as_deref());
            let _ = state.kube.create_event(&ev).await;
            return Err(e);
        }
        state.verified = true;
        let existing = node.status.and_then(|s| s.conditions).unwrap_or_default();
        state.conditions.seed(&existing, &types);
        Ok(())
    }

    /// The loop: sleep until something is due (or `shutdown`), then reload, check, publish.
    async fn run_loop<S: Future<Output = ()>>(
        &mut self,
        mut shutdown: std::pin::Pin<&mut S>,
    ) -> Result<Exit, AgentError> {
        loop {
            let wake = self.wake_at();
            tokio::select! {
                biased;
                () = shutdown.as_mut() => return Ok(Exit::Stopped),
                () = sleep_until(wake.into()) => {}
            }
            self.health.tick();
            self.reload().await;
            if self.watch_interval().is_some()
                && Instant::now() >= self.next_watch
                && !self.watch(shutdown.as_mut()).await
            {
                return Ok(Exit::Stopped);
            }
            if Instant::now() >= self.next_check {
                match self.check(shutdown.as_mut()).await {
                    Checked::Done => {}
                    Checked::Panicked => continue,
                    Checked::Shutdown => return Ok(Exit::Stopped),
                }
            }
            if let Some(exit) = self.publish_if_due().await {
                return Ok(exit);
            }
            if self.opts.max_cycles.is_some_and(|m| self.cycles >= m) {
                return Ok(Exit::Stopped);
            }
        }
    }

    /// Returns when the loop next has something to do: a check, a config poll, a publish.
    fn wake_at(&self) -> Instant {
        let now = Instant::now();
        let mut wake = self.next_check.min(now + self.opts.reload_poll);
        if self.watch_interval().is_some() {
            wake = wake.min(self.next_watch);
        }
        if self.cycles > 0 {
            wake = wake.min(
                self.state
                    .publish_due(self.settings.heartbeat, now)
                    .max(now),
            );
        }
        wake
    }

    /// Reloads the config file if it changed: a valid one (whose conditions no one else
    /// owns) replaces the settings and checks at once; a refused one keeps the last good
    /// one, and says why in the log, an event and the metrics.
    async fn reload(&mut self) {
        let Some(path) = &self.opts.config else {
            return;
        };
        let stamp = crate::config::stamp(path);
        if stamp == self.config_stamp {
            return;
        }
        self.config_stamp = stamp;
        let loaded = match Settings::load(path, &self.opts.defaults) {
            Ok(s) => match labels_on(&s, &self.opts) {
                Ok(on) => {
                    // The watch's condition too, when the new config keeps the pass on.
                    let types = self.condition_types(&s);
                    self.state.check_ownership(&types).await.map(|()| (s, on))
                }
                Err(why) => Err(format!("scheduling labels: {why}")),
            },
            Err(e) => Err(DisplayChain(&e).to_string()),
        };
        match loaded {
            Ok((s, on)) => {
                log::info(&format!("config reloaded: profiles {}", names(&s)));
                // Turned off: the labels the agent set go with the next publish.
                self.state.labels_on = on;
                self.settings = Arc::new(s);
                self.metrics.config_valid.set(1);
                self.next_check = Instant::now();
                self.next_watch = Instant::now();
                if self.watch_interval().is_none() {
                    // Turned off: its condition goes away with the next apply.
                    self.state.record_watch(None);
                }
            }
            Err(text) => {
                log::warn(&format!(
                    "config refused, keeping the last good one: {text}"
                ));
                self.metrics.config_errors.inc();
                self.metrics.config_valid.set(0);
                self.state
                    .push_event(None, EventSpec::config_refused(&text, Utc::now()));
            }
        }
    }

    /// One check cycle on a blocking thread, keeping `/healthz` fresh while it runs (a long
    /// command check is not a stalled loop), then its result recorded.
    async fn check<S: Future<Output = ()>>(
        &mut self,
        mut shutdown: std::pin::Pin<&mut S>,
    ) -> Checked {
        if self.runner.is_none() && self.settings.has_commands() {
            self.runner = Some(Runner::new(RunnerConfig {
                kill_grace: self.opts.probe_kill_grace,
                ..RunnerConfig::default()
            }));
        }
        let task = {
            let (settings, runner) = (self.settings.clone(), self.runner.clone());
            let (root, proc, path) = (
                self.opts.root.clone(),
                self.opts.proc.clone(),
                self.settings.search_path.clone(),
            );
            tokio::task::spawn_blocking(move || {
                check(&root, proc, &path, &settings, runner.as_ref())
            })
        };
        tokio::pin!(task);
        let result = loop {
            tokio::select! {
                biased;
                () = shutdown.as_mut() => return Checked::Shutdown,
                r = &mut task => break r,
                () = tokio::time::sleep(self.opts.reload_poll) => self.health.tick(),
            }
        };
        self.next_check = Instant::now() + self.jitter.spread(self.settings.interval, 0.1);
        let Ok(result) = result else {
            log::warn("check cycle panicked; trying again next period");
            return Checked::Panicked;
        };
        self.state.record(result);
        self.health.checked();
        self.cycles += 1;
        Checked::Done
    }

    /// The watch pass's period, `None` when it is off (the config file's `watch_interval`,
    /// else `--watch-interval`; zero is off).
    fn watch_interval(&self) -> Option<Duration> {
        let d = self
            .settings
            .watch_interval
            .unwrap_or(self.opts.watch_interval);
        (!d.is_zero()).then_some(d)
    }

    /// The condition types this agent publishes: the enabled profiles', and
    /// HostProcessesHealthy while the watch is on.
    fn condition_types(&self, s: &Settings) -> Vec<String> {
        let mut types = condition_types(s);
        let on = !s
            .watch_interval
            .unwrap_or(self.opts.watch_interval)
            .is_zero();
        if on {
            types.push(crate::watch::CONDITION.to_string());
        }
        types
    }

    /// One watch pass on a blocking thread (doctor's scans; no process started), then its
    /// condition and metrics recorded. Returns false if `shutdown` resolved meanwhile.
    async fn watch<S: Future<Output = ()>>(&mut self, mut shutdown: std::pin::Pin<&mut S>) -> bool {
        let interval = self.watch_interval().unwrap_or(Duration::from_secs(60));
        let task = {
            let (root, proc) = (self.opts.root.clone(), self.opts.proc.clone());
            let thresholds = self.settings.thresholds.clone();
            let mut prev = std::mem::take(&mut self.watch_prev);
            tokio::task::spawn_blocking(move || {
                let r = crate::watch::pass(&root, proc, &thresholds, &mut prev);
                (r, prev)
            })
        };
        tokio::pin!(task);
        let result = loop {
            tokio::select! {
                biased;
                () = shutdown.as_mut() => return false,
                r = &mut task => break r,
                () = tokio::time::sleep(self.opts.reload_poll) => self.health.tick(),
            }
        };
        self.next_watch = Instant::now() + self.jitter.spread(interval, 0.1);
        match result {
            Ok((r, prev)) => {
                self.watch_prev = prev;
                self.state.record_watch(Some(&r));
            }
            Err(_) => log::warn("watch pass panicked; trying again next interval"),
        }
        true
    }

    /// Publishes if due (after the first check): `Some` when `--once` is done, published or
    /// not; on failure, the next attempt waits for the backoff.
    async fn publish_if_due(&mut self) -> Option<Exit> {
        let now = Instant::now();
        if self.cycles == 0 || now < self.state.publish_due(self.settings.heartbeat, now) {
            return None;
        }
        self.attempts += 1;
        match self.state.publish(self.settings.heartbeat).await {
            Ok(()) => self.opts.once.then_some(Exit::Published),
            Err(e) => {
                let delay = self.state.backoff.next_delay();
                log::warn(&format!(
                    "publishing failed ({}); retry in {:?} (attempt {})",
                    e.describe(),
                    delay,
                    self.state.backoff.failures()
                ));
                self.state.retry_at = Some(Instant::now() + delay);
                (self.opts.once && self.attempts >= ONCE_ATTEMPTS).then_some(Exit::NotPublished)
            }
        }
    }
}

/// Binds the metrics and health endpoints on `addr` and serves them until dropped.
async fn serve(
    addr: SocketAddr,
    metrics: &Arc<Metrics>,
    health: &Arc<Health>,
) -> Result<AbortOnDrop, AgentError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| AgentError::Listen { addr, source })?;
    let bound = listener.local_addr().unwrap_or(addr);
    log::info(&format!("metrics and health on http://{bound}"));
    Ok(AbortOnDrop(tokio::spawn(crate::server::serve(
        listener,
        metrics.clone(),
        health.clone(),
    ))))
}

/// Returns whether scheduling labels are on (the config file's `scheduling_labels`, else
/// `--scheduling-labels`), or why they cannot be: a profile name that is no label name.
fn labels_on(s: &Settings, opts: &Options) -> Result<bool, String> {
    let on = s.scheduling_labels.unwrap_or(opts.scheduling_labels);
    if on {
        crate::labels::keys(s.profiles.iter().map(|p| p.name.as_str()))?;
    }
    Ok(on)
}

/// The condition types the enabled profiles publish.
fn condition_types(s: &Settings) -> Vec<String> {
    s.profiles
        .iter()
        .map(hostready_checks::Profile::condition_type)
        .collect()
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
