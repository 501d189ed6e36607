//! The fix plan (`hostready check --fix-script`): what would make this host pass, as ordered,
//! typed steps, each naming the findings it fixes; [`shell`] renders a plan as one idempotent
//! POSIX shell script. hostready never runs it: it is for the operator, Ansible or a
//! DaemonSet's init step.
//!
//! A plan is built from the findings ([`FixPlan::build`], `plan.rs`): the finding's subject
//! says what is missing, and `remedy.rs` — the same code that writes every finding's
//! copy-paste remediation — says which package and which command, so the script and the
//! remediation cannot disagree. What no command can fix (a kernel too old, a CPU flag, huge
//! pages that need a reboot) becomes a [`Action::Manual`] step, printed as comments.

mod plan;
pub mod shell;

use hostready_host::os_release::OsRelease;

use crate::facts::Facts;
use crate::report::Report;

pub use crate::remedy::{Configured, Installer, ModuleList, ServiceManager};
pub use shell::{Header, Paths};

/// Ordered steps that would fix a host's findings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FixPlan {
    pub steps: Vec<Step>,
}

/// One step of a plan and the ids of the findings it fixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub action: Action,
    pub fixes: Vec<String>,
}

/// What a step does. Every variant but [`Action::Manual`] and [`Action::Undecided`] renders
/// to commands that first test whether their change is already there.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Action {
    /// Install (or, with `reinstall`, reinstall) `package` unless `unless` already holds.
    Install {
        installer: Installer,
        package: String,
        reinstall: bool,
        unless: Present,
    },
    /// Set a module option in `remedy::MODPROBE_FILE`; it takes effect when the module is
    /// next loaded. Rendered before module loads, so a module this plan loads gets it.
    ModuleOption {
        module: String,
        parameter: String,
        value: String,
    },
    /// Load `module` now (unless `/sys/module/<module>` exists) and list it in `list`.
    LoadModule { module: String, list: ModuleList },
    /// Set a sysctl now (unless it holds `value`) and persist it in `remedy::SYSCTL_FILE`.
    Sysctl { name: String, value: String },
    /// Enable `name` at boot and start it now (unless enabled or running).
    EnableService {
        name: String,
        manager: ServiceManager,
    },
    /// Not fixable by a command here: `what` to do, the remediation's commands and notes,
    /// rendered as comments.
    Manual {
        what: String,
        commands: Vec<String>,
        notes: Vec<String>,
    },
    /// The check could not decide, so there is nothing to fix yet: why.
    Undecided { why: String },
}

/// What shows that an install is already done: the capability, not the package database.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Present {
    /// The executable is on PATH (`command -v`).
    Executable(String),
    /// The running kernel has a module file for it (`modinfo`).
    Module(String),
}

impl Action {
    /// Returns the step that sets sysctl `name` to `value` on a host running `os`: a
    /// [`Action::Sysctl`], or a [`Action::Manual`] where the OS is configured through its
    /// machine config (Talos) or settings (Bottlerocket). For the sysctl check family's arm.
    pub fn sysctl(name: &str, value: &str, os: Option<&OsRelease>) -> Action {
        match Configured::of(os) {
            Some(c) => Action::Manual {
                what: format!("set {name} = {value}"),
                commands: vec![],
                notes: vec![c.sysctl(name, value)],
            },
            None => Action::Sysctl {
                name: name.into(),
                value: value.into(),
            },
        }
    }

    /// Returns the step that sets `module`'s `parameter` to `value` on a host running `os`:
    /// an [`Action::ModuleOption`], or a [`Action::Manual`] for a machine-configured OS. For
    /// the module parameter check family's arm.
    pub fn module_option(
        module: &str,
        parameter: &str,
        value: &str,
        os: Option<&OsRelease>,
    ) -> Action {
        match Configured::of(os) {
            Some(c) => Action::Manual {
                what: format!("set {module}.{parameter}={value}"),
                commands: vec![],
                notes: vec![c.module_option(module, parameter, value)],
            },
            None => Action::ModuleOption {
                module: module.into(),
                parameter: parameter.into(),
                value: value.into(),
            },
        }
    }

    /// Returns the step that loads `module` now and at boot on `os`.
    pub fn load_module(module: &str, os: Option<&OsRelease>) -> Action {
        match Configured::of(os) {
            Some(c) => Action::Manual {
                what: format!("load {module} at boot"),
                commands: vec![],
                notes: vec![c.load_module(module)],
            },
            None => Action::LoadModule {
                module: module.into(),
                list: ModuleList::of(os),
            },
        }
    }

    /// Returns the step that enables and starts daemon `name` on `os`.
    pub fn enable_service(name: &str, os: Option<&OsRelease>) -> Action {
        match Configured::of(os) {
            Some(c) => Action::Manual {
                what: format!("run {name}"),
                commands: vec![],
                notes: vec![c.service(name)],
            },
            None => Action::EnableService {
                name: name.into(),
                manager: ServiceManager::of(os),
            },
        }
    }

    /// The order steps run in: packages first (they bring module files, units and tools),
    /// module options before module loads, then sysctls and services; comments last.
    fn rank(&self) -> u8 {
        match self {
            Action::Install { .. } => 0,
            Action::ModuleOption { .. } => 1,
            Action::LoadModule { .. } => 2,
            Action::Sysctl { .. } => 3,
            Action::EnableService { .. } => 4,
            Action::Manual { .. } => 5,
            Action::Undecided { .. } => 6,
        }
    }
}

impl Header {
    /// Describes the run behind `report` for a script's header: hostready `version`, the host
    /// (its hostname where its procfs says, os-release name, kernel, root), the profiles, now.
    pub fn of(version: &str, report: &Report, facts: &Facts<'_>) -> Header {
        let h = &report.host;
        let mut host = Vec::new();
        if let Some(name) = facts.proc().ok().and_then(|p| {
            p.read_to_string_bounded("/sys/kernel/hostname", HOSTNAME_MAX)
                .ok()
        }) {
            host.push(name.trim().to_string());
        }
        host.push(
            h.os.clone()
                .unwrap_or_else(|| "os-release unreadable".into()),
        );
        host.push(format!(
            "kernel {}",
            h.kernel.as_deref().unwrap_or("unknown")
        ));
        host.push(format!("{}, root {}", h.machine, h.root));
        Header {
            version: version.to_string(),
            host: host.join(", "),
            profiles: report.profiles.clone(),
            date: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            path: facts
                .path_dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(":"),
        }
    }
}

/// A hostname is at most 64 bytes (`HOST_NAME_MAX`); the bound leaves room for a newline.
const HOSTNAME_MAX: u64 = 256;

impl FixPlan {
    /// Adds `action` as fixing finding `id`: an action already planned (the same package for
    /// two executables, `nfsv4` for `kmod.nfsv4` and `nfs.client`) is planned once and lists
    /// both findings.
    pub fn add(&mut self, action: Action, id: &str) {
        match self.steps.iter_mut().find(|s| s.action == action) {
            Some(s) => {
                if !s.fixes.iter().any(|f| f == id) {
                    s.fixes.push(id.to_string());
                }
            }
            None => self.steps.push(Step {
                action,
                fixes: vec![id.to_string()],
            }),
        }
        // Stable: within a rank, steps keep the findings' order.
        self.steps.sort_by_key(|s| s.action.rank());
    }

    /// Returns true if and only if the plan has a step that changes something.
    pub fn changes_anything(&self) -> bool {
        self.steps
            .iter()
            .any(|s| !matches!(s.action, Action::Manual { .. } | Action::Undecided { .. }))
    }
}
