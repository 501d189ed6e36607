//! Test-only helpers shared by hostready's crates (a dev-dependency, never shipped).
//!
//! - [`memcg`]: run a command inside a real cgroup-v1 memory cgroup with a hard limit, and
//!   measure its peak RSS (`/usr/bin/time`) and the cgroup's own peak, the way the DaemonSet's
//!   limit would be enforced by the kubelet.

pub mod memcg;
