//! The hostready agent: the DaemonSet side of hostready. It checks the host (mounted at
//! `--root`) on a jittered period, publishes one node condition per enabled profile with
//! server-side apply, records an event for every transition, and serves Prometheus metrics and
//! health endpoints. tokio and kube live here and only here; the checking itself is
//! `hostready-checks`, and any command probe runs under `hostready-exec`'s bounded runner.
//!
//! See `docs/agent.md` for the conditions' meaning, the config file, and measured limits.

pub mod agent;
pub mod backoff;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod condition;
pub mod config;
mod cycle;
pub mod duration;
pub mod log;
pub mod metrics;
pub mod ownership;
pub mod publish;
mod server;
pub mod shutdown;

pub use agent::{AgentError, Exit, Options};
