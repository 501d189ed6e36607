//! Test-only helpers shared by hostready's crates (a dev-dependency, never shipped).
//!
//! - [`memcg`]: run a command inside a real cgroup-v1 memory cgroup with a hard limit, and
//!   measure its peak RSS (`/usr/bin/time`) and the cgroup's own peak, the way the DaemonSet's
//!   limit would be enforced by the kubelet.
//! - [`rpmdb`]: large, real rpm databases (Berkeley DB written by `db5.3_load`, with rpm's
//!   index files; NDB) built from the fixtures' headers, cached between runs.

// A test-only crate: it builds fixtures and cgroups on this machine directly.
#![allow(clippy::disallowed_methods)]

pub mod memcg;
pub mod rpmdb;
