//! Test-only helpers shared by hostready's crates (a dev-dependency, never shipped); what two
//! crates' tests need lives here once.
//!
//! - [`memcg`]: run a command inside a real cgroup-v1 memory cgroup with a hard limit, and
//!   measure its peak RSS (`/usr/bin/time`) and the cgroup's own peak, the way the DaemonSet's
//!   limit would be enforced by the kubelet.
//! - [`rpmdb`]: large, real rpm databases (Berkeley DB written by `db5.3_load`, with rpm's
//!   index files; NDB) built from the fixtures' headers, cached between runs.
//! - [`fakehost`]: host roots and procfs trees built file by file in temp dirs, and the
//!   fixtures read in place.
//! - [`debroot`]: the cached debootstrap Debian root (`scripts/debroot`) and hard-link copies.
//! - [`process`]: guards that kill and reap what a test starts, a SQLite lock holder, and
//!   questions about live processes; [`process::need`] for a program a test cannot run without.
//! - [`kube_testenv`]: a real control plane (`scripts/kube-testenv`) for one test.
//! - [`loopback`]: a hostile API server on loopback and a kubeconfig for it.
//! - [`loopdev`]: loop devices attached to image files, detached on drop.
//! - [`wait`]: polling with a deadline.
//! - [`counting_alloc`]: a counting global allocator, for peak-heap bounds in tests and in the
//!   fuzz targets (which include the file by path).

// A test-only crate: it builds fixtures and cgroups on this machine directly.
#![allow(clippy::disallowed_methods)]

pub mod counting_alloc;
pub mod debroot;
pub mod fakehost;
pub mod kube_testenv;
pub mod loopback;
pub mod loopdev;
pub mod memcg;
pub mod ndb_index;
pub mod process;
pub mod rpmdb;
pub mod wait;

pub use wait::{wait_for, wait_until};

/// The workspace's top directory (scripts, deploy, docs).
pub const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// The real rpm databases, `../shared/fixtures/rpmdb` beside the checkout; read in place,
/// never written (tests copy what they damage).
pub const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/rpmdb"
);

/// The CBL-Mariner 2.0 SQLite rpmdb among the fixtures.
pub const MARINER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/rpmdb/cbl-mariner-2.0-sqlite/rpmdb.sqlite"
);
