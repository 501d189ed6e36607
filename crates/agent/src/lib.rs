//! The hostready agent: the DaemonSet side of hostready. It checks the host (mounted at
//! `--root`) on a jittered period, publishes one node condition per enabled profile with
//! server-side apply, records an event for every transition, and serves Prometheus metrics and
//! health endpoints. tokio and kube live here and only here; the checking itself is
//! `hostready-checks`, and any command probe runs under `hostready-exec`'s bounded runner.
//!
//! See `docs/agent.md` for the conditions' meaning, the config file, and measured limits.

// The public surface is what the `hostready` binary and the agent's own integration tests use:
// the `agent` subcommand (`cli`), logging (`log`), the cluster view (`cluster`, `duration` and
// `KubeconfigArgs` for its flags) and the
// event shapes the end-to-end tests compare against (`publish`). Everything else is the
// agent's own.
mod agent;
pub mod audit;
mod backoff;
pub mod cli;
mod client;
pub mod cluster;
mod condition;
mod config;
mod cycle;
pub mod duration;
mod labels;
pub mod log;
mod metrics;
mod node_state;
mod ownership;
pub mod publish;
mod server;
mod shutdown;
mod watch;

pub use agent::{AgentError, Exit, Options};
pub use client::KubeconfigArgs;
// The chart's tests load the config file the chart renders, and bound the series per node by
// the label sets the agent can emit.
pub use config::{Defaults, Settings};
pub use metrics::{API_ERROR_CODES, API_OPS};
/// The watch pass's condition type: the deploy policy's tests allow it beside the profiles'.
pub use watch::CONDITION as WATCH_CONDITION;
