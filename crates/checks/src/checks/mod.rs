//! One file per check family; [`run`] dispatches a requirement to its family. From a finding
//! id to its code in one hop — the id's first word is the file, the rest the function:
//!
//! | default id | YAML key (`kind`) | [`Check`] variant | code |
//! |---|---|---|---|
//! | `exe.<name>` | `executable` | `Executable` | [`exe::check`] |
//! | `kmod.<module>` | `kernel_module` | `KernelModule` | [`kmod::check`] |
//! | `svc.<daemon>` | `service` | `Service` | [`service::check`] |
//! | `svc.multipathd` | `multipathd` | `Multipathd` | [`multipath::check`] |
//! | `nfs.client` | `nfs_client` | `NfsClient` | [`nfs::client`] |
//! | `nfs.defaultvers` | `nfs_defaultvers` | `NfsDefaultvers` | [`nfs::defaultvers`] |
//! | `hugepages.<size>kib` | `hugepages` | `Hugepages` | [`hugepages::check`] |
//! | `cpu.flags` | `cpu_flags` | `CpuFlags` | [`cpu::flags`] |
//! | `kernel.version` | `kernel_version` | `KernelVersion` | [`kernel::version`] |
//! | `kernel.config` | `kernel_config` | `KernelConfig` | [`kernel::config`] |
//! | `mount.propagation` | `mount_propagation` | `MountPropagation` | [`mount::propagation`] |
//! | `cmd.<program>` | `command` | `Command` | [`command::outcome`] |
//! | `sysctl.<name>` | `sysctl` | `Sysctl` | [`sysctl::check`] |
//! | `cgroup` | `cgroup` | `Cgroup` | [`cgroup::check`] |
//! | `swap` | `swap` | `Swap` | [`swap::check`] |
//! | `kmod.<module>.<parameter>` | `module_parameter` | `ModuleParameter` | [`kmod::parameter`] |
//! | `kmod.<module>.version` | `module_version` | `ModuleVersion` | [`kmod::version`] |
//! | `cri.socket` | `cri_socket` | `CriSocket` | [`cri::check`] |
//! | `path.<path>` | `data_path` | `DataPath` | [`data_path::check`] |
//! | `disk.raw` | `raw_disks` | `RawDisks` | [`disk::check`] |

pub mod cgroup;
pub mod command;
pub mod cpu;
pub mod cri;
pub mod data_path;
pub mod disk;
pub mod exe;
pub mod hugepages;
pub mod kernel;
pub mod kmod;
pub mod mount;
pub mod multipath;
pub mod nfs;
pub mod service;
pub mod swap;
pub mod sysctl;

use crate::facts::Facts;
use crate::finding::Outcome;
use crate::profile::{Check, Requirement};

/// Checks one requirement against the host. Never fails: trouble reading becomes `unknown`.
/// `probe` is the runner's result for a command check (`None`: commands are not run).
pub fn run(
    req: &Requirement,
    facts: &Facts<'_>,
    probe: Option<&hostready_exec::ProbeResult>,
) -> Outcome {
    match &req.check {
        Check::Command(c) => command::outcome(c, probe),
        Check::Executable(name) => exe::check(name, req, facts),
        Check::KernelModule { name, config } => kmod::check(name, config.as_deref(), facts),
        Check::Service {
            name,
            process,
            socket,
        } => service::check(
            name,
            process.as_deref().unwrap_or(name),
            socket.as_deref(),
            facts,
        ),
        Check::Multipathd { devices } => multipath::check(devices, facts),
        Check::NfsClient {} => nfs::client(facts),
        Check::NfsDefaultvers { allowed } => nfs::defaultvers(allowed, facts),
        Check::Hugepages {
            page_size_kib,
            min_pages,
        } => hugepages::check(*page_size_kib, *min_pages, facts),
        Check::CpuFlags(per_machine) => cpu::flags(per_machine, facts),
        Check::KernelVersion { min, known_bad } => kernel::version(min, known_bad, facts),
        Check::MountPropagation { path } => mount::propagation(path, facts),
        Check::Sysctl {
            name,
            value,
            persist,
        } => sysctl::check(name, value, *persist, facts),
        Check::Cgroup {
            version,
            controllers,
        } => cgroup::check(*version, controllers, facts),
        Check::Swap { enabled } => swap::check(*enabled, facts),
        Check::ModuleParameter {
            module,
            parameter,
            value,
        } => kmod::parameter(module, parameter, value, facts),
        Check::ModuleVersion { module, min } => kmod::version(module, min, facts),
        Check::CriSocket { paths } => cri::check(paths, facts),
        Check::DataPath(d) => data_path::check(d, facts),
        Check::RawDisks(r) => disk::check(r, facts),
        Check::KernelConfig { require, forbid } => kernel::config(require, forbid, facts),
    }
}
