//! Profiles: named lists of requirements, written in YAML. The built-ins are embedded in the
//! binary; a user's file is validated completely — unknown keys, missing or conflicting kinds,
//! names, ids and condition types, include cycles, size and depth bounds — before anything
//! runs, and every mistake names the file (and, where it is in one place, line and column).
//!
//! Profiles are untrusted input: opening one has no side effect (`file`), its cost is bounded
//! before it is spent (`prescan`, `load`), and what it names is held to small grammars
//! (`names`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::finding::{Level, Subject};
pub use sources::SourceRef;

/// The built-in profiles, embedded at build time, in the order `hostready profiles` lists them.
pub const BUILTIN: &[(&str, &str)] = &[
    ("longhorn", include_str!("../../profiles/longhorn.yaml")),
    (
        "longhorn-v2",
        include_str!("../../profiles/longhorn-v2.yaml"),
    ),
    ("iscsi", include_str!("../../profiles/iscsi.yaml")),
    ("nfs-client", include_str!("../../profiles/nfs-client.yaml")),
    ("encryption", include_str!("../../profiles/encryption.yaml")),
    ("multipath", include_str!("../../profiles/multipath.yaml")),
    ("kernel", include_str!("../../profiles/kernel.yaml")),
    (
        "mount-propagation",
        include_str!("../../profiles/mount-propagation.yaml"),
    ),
    (
        "longhorn-utils",
        include_str!("../../profiles/longhorn-utils.yaml"),
    ),
    ("rook-ceph", include_str!("../../profiles/rook-ceph.yaml")),
    (
        "openebs-mayastor",
        include_str!("../../profiles/openebs-mayastor.yaml"),
    ),
    (
        "openebs-lvm",
        include_str!("../../profiles/openebs-lvm.yaml"),
    ),
    (
        "openebs-zfs",
        include_str!("../../profiles/openebs-zfs.yaml"),
    ),
    ("piraeus", include_str!("../../profiles/piraeus.yaml")),
    ("topolvm", include_str!("../../profiles/topolvm.yaml")),
    ("csi-nfs", include_str!("../../profiles/csi-nfs.yaml")),
    ("csi-smb", include_str!("../../profiles/csi-smb.yaml")),
    ("csi-iscsi", include_str!("../../profiles/csi-iscsi.yaml")),
    (
        "democratic-csi-iscsi",
        include_str!("../../profiles/democratic-csi-iscsi.yaml"),
    ),
    (
        "democratic-csi-nfs",
        include_str!("../../profiles/democratic-csi-nfs.yaml"),
    ),
    (
        "democratic-csi-smb",
        include_str!("../../profiles/democratic-csi-smb.yaml"),
    ),
    (
        "democratic-csi-nvmeof",
        include_str!("../../profiles/democratic-csi-nvmeof.yaml"),
    ),
    (
        "kubernetes-node",
        include_str!("../../profiles/kubernetes-node.yaml"),
    ),
];

/// The profile `hostready check` runs when none is named.
pub const DEFAULT_PROFILE: &str = "longhorn";

/// An error loading a profile.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}: {message}")]
    InvalidNoLocation { file: String, message: String },
    #[error("cannot read profile {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no built-in profile or file named {name:?} (built-ins: {})", builtin_names().join(", "))]
    NotFound { name: String },
    /// A file met again on its own include chain, which names each file from its first
    /// appearance to the repeat.
    #[error("include cycle: {chain}")]
    IncludeCycle { chain: String },
}

/// A profile with its includes expanded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    pub name: String,
    pub description: String,
    /// Where it came from: `builtin` or a file path.
    pub source: String,
    /// The Kubernetes node condition type the agent publishes for it, as the profile names it
    /// (validated at load: see [`names::check_condition_type`]); see [`Profile::condition_type`].
    pub condition: Option<String>,
    pub includes: Vec<String>,
    pub requirements: Vec<Requirement>,
    /// The distinct sources its requirements cite, in the order first cited.
    pub sources: Vec<SourceRef>,
    /// The built-in profiles it is or includes (transitively), for the conflict catalogue.
    #[serde(skip)]
    pub builtins: std::collections::BTreeSet<String>,
}

impl Profile {
    /// Returns the node condition type the agent publishes for this profile: its `condition:`,
    /// or its name's words in CamelCase followed by `Ready` (`nfs-client` → `NfsClientReady`).
    /// Either is a valid Kubernetes condition type and never one of the kubelet's.
    pub fn condition_type(&self) -> String {
        self.condition
            .clone()
            .unwrap_or_else(|| names::derived_condition_type(&self.name))
    }
}

/// One requirement: what to check and how much it matters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Requirement {
    pub id: String,
    pub level: Level,
    pub description: Option<String>,
    /// Packages that provide it, by distro family (`debian`, `rhel`, `suse`, ...), overriding
    /// the built-in table.
    pub packages: BTreeMap<String, String>,
    /// The upstream documents or code that demand it, keys expanded (`sources.rs`).
    pub sources: Vec<SourceRef>,
    /// Written as a one-key map (`check: {executable: iscsiadm}`) in every format: serde_yaml_ng
    /// would otherwise write an enum variant as a YAML tag (`check: !executable iscsiadm`),
    /// which is not the JSON's shape and which YAML readers without tag support cannot read.
    /// JSON is unchanged (externally tagged is already a one-key map there).
    #[serde(with = "serde_yaml_ng::with::singleton_map")]
    pub check: Check,
}

/// What a requirement checks. Each variant is one key in the YAML.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// An executable on the host's PATH (`command -v` semantics), and that it can run.
    Executable(String),
    /// A kernel module loaded or built in; `config` names the `CONFIG_` option that builds it.
    KernelModule {
        name: String,
        config: Option<String>,
    },
    /// A daemon running (a process whose `comm` is `process`), or socket-activated with a
    /// listener on `socket` (abstract names start with `@`).
    Service {
        name: String,
        process: Option<String>,
        socket: Option<String>,
    },
    /// multipathd should not run unless its configuration blacklists these device names.
    Multipathd { devices: Vec<String> },
    /// NFSv4 client support in the running kernel.
    NfsClient {},
    /// `Defaultvers` in `nfsmount.conf`, when set, must be one of these.
    NfsDefaultvers { allowed: Vec<String> },
    /// At least `min_pages` huge pages of `page_size_kib`.
    Hugepages { page_size_kib: u64, min_pages: u64 },
    /// CPU flags required per machine (`x86_64`, `aarch64`, ...).
    CpuFlags(BTreeMap<String, Vec<String>>),
    /// The running kernel at least `min`, and not one of `known_bad` (exact releases, or
    /// `A..B` ranges of one base version's ABI numbers such as `5.15.0-94..5.15.0-99`);
    /// both parsed when the profile loads.
    KernelVersion {
        min: crate::checks::kernel::MinKernel,
        known_bad: Vec<crate::checks::kernel::BadRelease>,
    },
    /// The mount holding `path` propagates mounts (`shared:` in mountinfo).
    MountPropagation { path: String },
    /// A program run under the bounded runner, read with node-problem-detector's plugin
    /// convention: exit 0 pass, 1 fail, anything else unknown; stdout is the message.
    Command(CommandCheck),
    /// A kernel parameter under `/proc/sys` has `value` (whitespace-normalised); with
    /// `persist`, a file the boot applies (`sysctl.d`) sets it to that value too.
    Sysctl {
        name: String,
        value: String,
        persist: bool,
    },
    /// The cgroup version the kubelet sees (1 or 2), and controllers that must be available.
    Cgroup {
        version: Option<u8>,
        controllers: Vec<String>,
    },
    /// Swap is active (`enabled: true`) or not (`false`, the kubelet's default rule).
    Swap { enabled: bool },
    /// A module parameter's running value (`/sys/module/M/parameters/P`).
    ModuleParameter {
        module: String,
        parameter: String,
        value: String,
    },
    /// A module's version (`/sys/module/M/version`, `/proc/drbd`) is at least `min`.
    ModuleVersion { module: String, min: String },
    /// The container runtime's CRI socket: one of `paths` (kubeadm's known sockets when
    /// empty) is a listening socket.
    CriSocket { paths: Vec<String> },
    /// The filesystem type, mount options and free space of a data directory.
    DataPath(crate::checks::data_path::DataPath),
    /// Enough whole disks with nothing on them.
    RawDisks(crate::checks::disk::RawDisks),
    /// Kernel build options, read from the kernel config: each `require` entry `y` or `m`
    /// (an entry may name alternatives, `CONFIG_A|CONFIG_B`, any one of which satisfies it),
    /// no `forbid` option set. Entries as the profile wrote them, validated at load.
    KernelConfig {
        require: Vec<String>,
        forbid: Vec<String>,
    },
}

/// A command check: what to run and how to read a timeout.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommandCheck {
    /// Absolute program path, then its arguments; never given to a shell. The path is on the
    /// machine hostready runs on (in a DaemonSet: the agent's container; the host's files are
    /// under `--root`, e.g. `/host/usr/local/bin/...`).
    pub argv: Vec<String>,
    #[serde(with = "humantime_serde_compat")]
    pub timeout: std::time::Duration,
    /// The status of a run that hit its deadline: `unknown` (default) or `fail`.
    pub on_timeout: crate::finding::Status,
    /// Extra environment variables, on top of the runner's allow-list.
    pub env: BTreeMap<String, String>,
}

/// The default command deadline, node-problem-detector's.
pub const DEFAULT_COMMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The shortest deadline a profile may give a command.
pub const MIN_COMMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(1);

/// The longest deadline a profile may give a command: a check is not a batch job.
pub const MAX_COMMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

mod humantime_serde_compat {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }
}

impl Check {
    /// Returns one line saying what this check wants, for listings.
    pub fn summary(&self) -> String {
        match self {
            Check::Executable(name) => format!("{name} on PATH, and able to start"),
            Check::KernelModule { name, .. } => format!("kernel module {name} loaded or built in"),
            Check::Service { name, .. } => format!("{name} running or socket-activated"),
            Check::Multipathd { .. } => {
                "multipathd stopped, or blacklisting Longhorn's disks".into()
            }
            Check::NfsClient {} => "NFSv4 client in the running kernel".into(),
            Check::NfsDefaultvers { allowed } => {
                format!(
                    "nfsmount.conf Defaultvers unset or one of {}",
                    allowed.join(", ")
                )
            }
            Check::Hugepages {
                page_size_kib,
                min_pages,
            } => {
                format!("at least {min_pages} huge pages of {page_size_kib} kB")
            }
            Check::CpuFlags(m) => {
                let per: Vec<String> = m
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", v.join(" ")))
                    .collect();
                format!("CPU flags ({})", per.join("; "))
            }
            Check::KernelVersion { min, .. } => {
                format!("kernel {} or newer, not a known-bad release", min.text)
            }
            Check::MountPropagation { path } => format!("the mount holding {path} is shared"),
            Check::Command(c) => format!("`{}` exits 0", c.argv.join(" ")),
            Check::Sysctl {
                name,
                value,
                persist,
            } => format!(
                "sysctl {name} = {value}{}",
                if *persist { ", set at boot" } else { "" }
            ),
            Check::Cgroup {
                version,
                controllers,
            } => {
                let mut parts = Vec::new();
                if let Some(v) = version {
                    parts.push(format!("cgroup v{v}"));
                }
                if !controllers.is_empty() {
                    parts.push(format!("controllers {}", controllers.join(", ")));
                }
                if parts.is_empty() {
                    "a cgroup hierarchy mounted".into()
                } else {
                    parts.join(" with ")
                }
            }
            Check::Swap { enabled: false } => "no active swap".into(),
            Check::Swap { enabled: true } => "swap active".into(),
            Check::ModuleParameter {
                module,
                parameter,
                value,
            } => format!("module parameter {module}.{parameter} = {value}"),
            Check::ModuleVersion { module, min } => {
                format!("kernel module {module} version {min} or newer")
            }
            Check::CriSocket { .. } => "the container runtime's CRI socket is listening".into(),
            Check::DataPath(d) => {
                let mut parts = Vec::new();
                if !d.filesystems.is_empty() {
                    parts.push(d.filesystems.join(" or "));
                }
                if let Some(g) = d.min_free_gib {
                    parts.push(format!("{g} GiB free"));
                }
                if !d.forbid_options.is_empty() {
                    parts.push(format!("not {}", d.forbid_options.join(",")));
                }
                format!("{} on a suitable filesystem ({})", d.path, parts.join("; "))
            }
            Check::RawDisks(r) => format!(
                "at least {} raw disk(s) of {} GiB or more",
                r.min_count, r.min_size_gib
            ),
            Check::KernelConfig { require, forbid } => {
                let mut parts = Vec::new();
                if !require.is_empty() {
                    parts.push(format!("{} y or m", require.join(" ")));
                }
                if !forbid.is_empty() {
                    parts.push(format!("{} not set", forbid.join(" ")));
                }
                format!("kernel config: {}", parts.join("; "))
            }
        }
    }

    /// Returns what a finding of this check is about: its kind and the thing it names.
    pub fn subject(&self) -> Subject {
        match self {
            Check::Executable(name) => Subject::Executable(name.clone()),
            Check::KernelModule { name, .. } => {
                Subject::KernelModule(hostready_host::kernel::normalize_module(name))
            }
            Check::Service { name, .. } => Subject::Service(name.clone()),
            Check::Multipathd { .. } => Subject::Multipathd,
            Check::NfsClient {} => Subject::NfsClient,
            Check::NfsDefaultvers { .. } => Subject::NfsDefaultvers,
            Check::Hugepages { page_size_kib, .. } => Subject::Hugepages {
                page_size_kib: *page_size_kib,
            },
            Check::CpuFlags(_) => Subject::CpuFlags,
            Check::KernelVersion { .. } => Subject::KernelVersion,
            Check::MountPropagation { path } => Subject::MountPropagation(path.clone()),
            Check::Command(c) => Subject::Command(c.argv.first().cloned().unwrap_or_default()),
            Check::Sysctl { name, .. } => Subject::Sysctl(hostready_host::sysctl::dotted(name)),
            Check::Cgroup { .. } => Subject::Cgroup,
            Check::Swap { .. } => Subject::Swap,
            Check::ModuleParameter {
                module, parameter, ..
            } => Subject::ModuleParameter {
                module: hostready_host::kernel::normalize_module(module),
                parameter: hostready_host::kernel::normalize_module(parameter),
            },
            Check::ModuleVersion { module, .. } => {
                Subject::ModuleVersion(hostready_host::kernel::normalize_module(module))
            }
            Check::CriSocket { .. } => Subject::CriSocket,
            Check::DataPath(d) => Subject::DataPath(d.path.clone()),
            Check::RawDisks(_) => Subject::RawDisks,
            Check::KernelConfig { .. } => Subject::KernelConfig,
        }
    }

    /// Returns the id a requirement of this kind gets when the profile names none.
    pub fn default_id(&self) -> String {
        match self {
            Check::Executable(name) => format!("exe.{name}"),
            Check::KernelModule { name, .. } => {
                format!("kmod.{}", hostready_host::kernel::normalize_module(name))
            }
            Check::Service { name, .. } => format!("svc.{name}"),
            Check::Multipathd { .. } => "svc.multipathd".into(),
            Check::NfsClient {} => "nfs.client".into(),
            Check::NfsDefaultvers { .. } => "nfs.defaultvers".into(),
            Check::Hugepages { page_size_kib, .. } => format!("hugepages.{page_size_kib}kib"),
            Check::CpuFlags(_) => "cpu.flags".into(),
            Check::KernelVersion { .. } => "kernel.version".into(),
            Check::MountPropagation { .. } => "mount.propagation".into(),
            Check::Command(c) => {
                let program = c.argv.first().map(String::as_str).unwrap_or("command");
                format!("cmd.{}", program.rsplit('/').next().unwrap_or(program))
            }
            Check::Sysctl { name, .. } => {
                format!("sysctl.{}", hostready_host::sysctl::dotted(name))
            }
            Check::Cgroup { .. } => "cgroup".into(),
            Check::Swap { .. } => "swap".into(),
            Check::ModuleParameter {
                module, parameter, ..
            } => format!(
                "kmod.{}.{}",
                hostready_host::kernel::normalize_module(module),
                hostready_host::kernel::normalize_module(parameter)
            ),
            Check::ModuleVersion { module, .. } => format!(
                "kmod.{}.version",
                hostready_host::kernel::normalize_module(module)
            ),
            Check::CriSocket { .. } => "cri.socket".into(),
            Check::DataPath(d) => format!("path.{}", d.path),
            Check::RawDisks(_) => "disk.raw".into(),
            Check::KernelConfig { .. } => "kernel.config".into(),
        }
    }
}

mod file;
mod load;
pub mod names;
pub mod prescan;
pub mod sources;
mod yaml;

pub use load::{
    MAX_INCLUDE_DEPTH, MAX_INCLUDES, MAX_PROFILE_BYTES, MAX_REQUIREMENTS, MAX_TOTAL_BYTES,
};

/// Returns the names of the built-in profiles.
pub fn builtin_names() -> Vec<&'static str> {
    BUILTIN.iter().map(|(n, _)| *n).collect()
}

/// Loads a profile by built-in name or file path, expanding includes.
pub fn load(spec: &str) -> Result<Profile, ProfileError> {
    load::Loader::default().load(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_loads() {
        for name in builtin_names() {
            let p = load(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(p.name, name);
            assert!(!p.requirements.is_empty(), "{name}");
        }
    }

    #[test]
    fn longhorn_has_the_four_required_executables() {
        let p = load("longhorn").unwrap();
        for exe in ["iscsiadm", "mount.nfs", "cryptsetup", "dmsetup"] {
            let r = p
                .requirements
                .iter()
                .find(|r| r.id == format!("exe.{exe}"))
                .expect(exe);
            assert_eq!(r.level, Level::Required);
        }
        assert!(p.condition.is_some());
    }

    #[test]
    fn devices_and_oversized_files_are_refused() {
        let e = load("/dev/zero").unwrap_err();
        assert!(e.to_string().contains("/dev/zero"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let inc = dir.path().join("inc.yaml");
        std::fs::write(&inc, "name: inc\ninclude: [/dev/zero]\n").unwrap();
        assert!(matches!(
            load(inc.to_str().unwrap()),
            Err(ProfileError::Read { .. })
        ));
        let big = dir.path().join("big.yaml");
        std::fs::write(
            &big,
            format!("name: big\ndescription: {}\n", "x".repeat(2 << 20)),
        )
        .unwrap();
        let e = load(big.to_str().unwrap()).unwrap_err();
        assert!(
            std::error::Error::source(&e)
                .unwrap()
                .to_string()
                .contains("larger"),
            "{e}"
        );
    }

    #[test]
    fn include_cycles_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), "name: a\ninclude: [b.yaml]\n").unwrap();
        std::fs::write(dir.path().join("b.yaml"), "name: b\ninclude: [a.yaml]\n").unwrap();
        let e = load(dir.path().join("a.yaml").to_str().unwrap()).unwrap_err();
        assert!(matches!(e, ProfileError::IncludeCycle { .. }), "{e}");
    }

    #[test]
    fn user_profile_includes_builtin_and_overrides_level() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("mine.yaml");
        std::fs::write(&f, "name: mine\ninclude: [iscsi]\nrequirements:\n  - executable: iscsiadm\n    level: recommended\n").unwrap();
        let p = load(f.to_str().unwrap()).unwrap();
        let r = p
            .requirements
            .iter()
            .find(|r| r.id == "exe.iscsiadm")
            .unwrap();
        assert_eq!(r.level, Level::Recommended);
        assert_eq!(
            p.requirements
                .iter()
                .filter(|r| r.id == "exe.iscsiadm")
                .count(),
            1
        );
    }

    #[test]
    fn the_documented_example_loads() {
        // docs/profiles.md shows two files, each a ```yaml block starting `# file: NAME`.
        let doc = include_str!("../../../../docs/profiles.md");
        let dir = tempfile::tempdir().unwrap();
        let mut files = Vec::new();
        for block in doc.split("```yaml\n").skip(1) {
            let text = block.split("```").next().unwrap();
            let name = text
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("# file: "))
                .expect("each example block names its file");
            std::fs::write(dir.path().join(name), text).unwrap();
            files.push(name);
        }
        assert_eq!(files, ["my-storage.yaml", "extra.yaml"]);
        let p = load(dir.path().join("my-storage.yaml").to_str().unwrap()).unwrap();
        assert_eq!(p.condition_type(), "MyStorageReady");
        for id in [
            "exe.iscsiadm",
            "exe.dmsetup",
            "custom.disk-alive",
            "kmod.iscsi_tcp",
        ] {
            assert!(p.requirements.iter().any(|r| r.id == id), "{id}");
        }
    }

    #[test]
    fn unknown_name_lists_builtins() {
        let e = load("longhron").unwrap_err().to_string();
        assert!(e.contains("longhorn-v2"), "{e}");
    }
}
