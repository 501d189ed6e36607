//! The flags of `hostready agent` (shared with the `hostready-agent` test binary) and the
//! entry point that builds the runtime, runs the loop and cleans up.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use hostready_flags::duration::{flag as duration, positive_flag as positive};
use hostready_flags::{HostArgs, SearchPathArgs};

use crate::agent::{self, AgentError, Exit, Options};
use crate::client::KubeconfigArgs;
use crate::config::Defaults;

/// Flags of `hostready agent`.
#[derive(Debug, Clone, clap::Args)]
pub struct AgentArgs {
    /// The Node to report on (the DaemonSet sets NODE_NAME from the downward API).
    #[arg(long, env = "NODE_NAME", value_name = "NAME")]
    pub node_name: String,
    #[command(flatten)]
    pub host: HostArgs,
    /// `--path`: the config file's `path` key, when set, takes its place.
    #[command(flatten)]
    pub path: SearchPathArgs,
    #[command(flatten)]
    pub profile: hostready_flags::ProfileArgs,
    /// Time between checks (jittered by ±10%), unless the config file sets it.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = positive)]
    pub interval: Duration,
    /// Rewrite unchanged conditions this often, so their lastHeartbeatTime shows the agent lives.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = positive)]
    pub heartbeat: Duration,
    /// Time between watch passes (doctor's scans for piles of stuck processes and locked or
    /// damaged package databases; no process is started), unless the config file's
    /// `watch_interval` sets it. `off` or `0s`: no watch pass, no HostProcessesHealthy condition.
    #[arg(long, value_name = "DURATION|off", default_value = "1m", value_parser = watch_interval)]
    pub watch_interval: Duration,
    /// Keep one label per profile on the Node, `hostready.dev/<profile>=true|false|unknown`
    /// (changed only when a status flips), unless the config file's `scheduling_labels` says
    /// otherwise. Needs `patch` on `nodes` (the chart grants it with `config.schedulingLabels`).
    #[arg(long)]
    pub scheduling_labels: bool,
    /// YAML config (profiles, interval, heartbeat, path, watch_interval, pile thresholds,
    /// scheduling_labels), reloaded when it changes.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Run one cycle, publish, exit: 0 published, 1 could not publish.
    #[arg(long)]
    pub once: bool,
    /// Where to serve /metrics, /healthz and /readyz, or `none`.
    #[arg(long, value_name = "ADDR|none", default_value = "127.0.0.1:9808")]
    pub metrics_addr: String,
    #[command(flatten)]
    pub kube: KubeconfigArgs,
    /// Namespace of the events about the Node (cluster-scoped objects' events live in `default`).
    #[arg(long, value_name = "NS", default_value = "default")]
    pub events_namespace: String,
    /// Stop after this many cycles (soak tests, benchmarks).
    #[arg(long, hide = true)]
    pub max_cycles: Option<u64>,
    /// Longest wait between API retries.
    #[arg(long, hide = true, default_value = "5m", value_parser = duration)]
    pub api_backoff_cap: Duration,
    /// How often the config file is checked for changes.
    #[arg(long, hide = true, default_value = "10s", value_parser = positive)]
    pub reload_poll: Duration,
    /// Time between SIGTERM and SIGKILL for a probe past its deadline.
    #[arg(long, hide = true, default_value = "500ms", value_parser = duration)]
    pub probe_kill_grace: Duration,
}

impl AgentArgs {
    /// Returns the options these flags describe.
    pub fn options(&self) -> Result<Options, String> {
        let metrics_addr = match self.metrics_addr.as_str() {
            "none" => None,
            a => Some(
                a.parse::<SocketAddr>()
                    .map_err(|e| format!("--metrics-addr {a:?}: {e}"))?,
            ),
        };
        if self.node_name.is_empty() {
            return Err("--node-name (or NODE_NAME) is empty".into());
        }
        Ok(Options {
            node_name: self.node_name.clone(),
            root: self.host.root.clone(),
            proc: self.host.proc_source(),
            config: self.config.clone(),
            defaults: Defaults {
                profiles: if self.profile.profiles.is_empty() {
                    vec![hostready_checks::DEFAULT_PROFILE.to_string()]
                } else {
                    self.profile.profiles.clone()
                },
                interval: self.interval,
                heartbeat: self.heartbeat,
                search_path: self.path.search_path.clone(),
            },
            once: self.once,
            metrics_addr,
            kubeconfig: self.kube.kubeconfig.clone(),
            events_namespace: self.events_namespace.clone(),
            max_cycles: self.max_cycles,
            backoff_cap: self.api_backoff_cap,
            reload_poll: self
                .reload_poll
                .min(self.interval.max(Duration::from_millis(100))),
            probe_kill_grace: self.probe_kill_grace,
            watch_interval: self.watch_interval,
            scheduling_labels: self.scheduling_labels,
        })
    }
}

/// `--watch-interval` as a clap value parser: `off` or a duration (zero is off).
fn watch_interval(text: &str) -> Result<Duration, String> {
    crate::config::parse_watch_interval(text).map_err(|e| e.why)
}

/// Runs the agent to its end and returns the exit code: 0 published (or stopped by a signal),
/// 1 `--once` could not publish. Errors (bad flags, config, no cluster) are for exit code 2.
pub fn run(opts: Options) -> Result<u8, AgentError> {
    // One thread: the agent waits on timers and one API connection; checks run on the
    // blocking pool. A single-threaded runtime keeps the resident memory small.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(4)
        .build()
        .map_err(AgentError::Runtime)?;
    let result = rt.block_on(agent::run(opts, crate::shutdown::signal()));
    // A cycle abandoned at SIGTERM may have a probe running: kill it, don't wait for it.
    crate::shutdown::kill_children();
    rt.shutdown_background();
    Ok(match result? {
        Exit::Published | Exit::Stopped => 0,
        Exit::NotPublished => 1,
    })
}
