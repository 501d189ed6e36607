//! Remediation for *this* host: which package provides a missing piece on its distro family,
//! the command that installs it, and what fits an immutable host instead.

use std::collections::BTreeMap;

use hostready_host::os_release::{Family, Immutable, OsRelease};

use crate::finding::Remediation;

/// Returns the package that provides `exe` on `family`, from the table in
/// `reference/longhorn-host-checks.md` and the distros' own package lists.
pub fn package_for_executable(exe: &str, family: Family) -> Option<&'static str> {
    use Family::*;
    let name = exe.rsplit('/').next().unwrap_or(exe);
    Some(match (name, family) {
        ("iscsiadm", Rhel) => "iscsi-initiator-utils",
        ("iscsiadm", Gentoo) => "sys-block/open-iscsi",
        ("iscsiadm", Debian | Suse | Arch | Alpine) => "open-iscsi",
        ("mount.nfs" | "mount.nfs4", Debian) => "nfs-common",
        ("mount.nfs" | "mount.nfs4", Suse) => "nfs-client",
        ("mount.nfs" | "mount.nfs4", Gentoo) => "net-fs/nfs-utils",
        ("mount.nfs" | "mount.nfs4", Rhel | Arch | Alpine) => "nfs-utils",
        ("cryptsetup", Gentoo) => "sys-fs/cryptsetup",
        ("cryptsetup", Debian | Rhel | Suse | Arch | Alpine) => "cryptsetup",
        ("dmsetup", Debian) => "dmsetup",
        ("dmsetup", Gentoo) => "sys-fs/lvm2",
        ("dmsetup", Rhel | Suse | Arch | Alpine) => "device-mapper",
        ("nvme", Gentoo) => "sys-apps/nvme-cli",
        ("nvme", Debian | Rhel | Suse | Arch | Alpine) => "nvme-cli",
        ("findmnt" | "lsblk" | "blkid", Gentoo) => "sys-apps/util-linux",
        ("findmnt" | "lsblk", Debian | Rhel | Suse | Arch) => "util-linux",
        ("blkid", Debian | Rhel | Suse | Arch) => "util-linux",
        ("findmnt" | "lsblk" | "blkid", Alpine) => "util-linux-misc",
        ("awk", Debian) => "mawk",
        ("awk", Gentoo) => "sys-apps/gawk",
        ("awk", Rhel | Suse | Arch | Alpine) => "gawk",
        ("bash", Gentoo) => "app-shells/bash",
        ("curl", Gentoo) => "net-misc/curl",
        ("grep", Gentoo) => "sys-apps/grep",
        ("bash", Debian | Rhel | Suse | Arch | Alpine) => "bash",
        ("curl", Debian | Rhel | Suse | Arch | Alpine) => "curl",
        ("grep", Debian | Rhel | Suse | Arch | Alpine) => "grep",
        _ => return None,
    })
}

/// Returns the package for `exe` on this host: a profile's override for the family first, then
/// the built-in table.
pub fn package(
    exe: &str,
    os: Option<&OsRelease>,
    overrides: &BTreeMap<String, String>,
) -> Option<String> {
    let family = os.map_or(Family::Unknown, |o| o.family);
    // The family's serde name (`debian`, `rhel`), as profiles spell it in `packages:`.
    let key = serde_json::to_value(family)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    os.and_then(|o| overrides.get(&o.id))
        .or_else(|| overrides.get(&key))
        .cloned()
        // Image-based hosts have no packages; the Debian name is the most recognisable hint.
        .or_else(|| {
            package_for_executable(
                exe,
                if family == Family::Image {
                    Family::Debian
                } else {
                    family
                },
            )
            .map(str::to_string)
        })
}

/// The program that installs packages on a host. The one source of install commands: the
/// remediation's copy-paste lines ([`install`], [`reinstall`]) and the fix script
/// (`crate::fix`) are both built from these argvs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Installer {
    Apt,
    Dnf,
    /// RHEL/CentOS/Oracle Linux 7, Amazon Linux 2.
    Yum,
    Zypper,
    Pacman,
    Emerge,
    Apk,
    /// Fedora CoreOS, RHEL CoreOS: packages are layered into the next deployment.
    RpmOstree,
    /// SLE Micro, openSUSE MicroOS: packages land in a new snapshot.
    TransactionalUpdate,
}

impl Installer {
    /// Returns the installer of this host, or `None` where there is none to call: an unknown
    /// distribution, or an image-based host configured another way (Talos, Flatcar,
    /// Bottlerocket: see [`install`]'s notes).
    pub fn of(os: Option<&OsRelease>) -> Option<Installer> {
        let os = os?;
        match os.immutable {
            Some(Immutable::SleMicro | Immutable::OpensuseMicroos) => {
                return Some(Installer::TransactionalUpdate);
            }
            Some(Immutable::FedoraCoreos | Immutable::RhelCoreos) => {
                return Some(Installer::RpmOstree);
            }
            Some(Immutable::Talos | Immutable::Flatcar | Immutable::Bottlerocket) => return None,
            None => {}
        }
        Some(match os.family {
            Family::Debian => Installer::Apt,
            Family::Rhel if legacy_yum(os) => Installer::Yum,
            Family::Rhel => Installer::Dnf,
            Family::Suse => Installer::Zypper,
            Family::Arch => Installer::Pacman,
            Family::Gentoo => Installer::Emerge,
            Family::Alpine => Installer::Apk,
            Family::Image | Family::Unknown => return None,
        })
    }

    /// Returns the argv that refreshes the package index before installing, where the
    /// manager needs one (apt's lists may be missing or stale on a fresh host).
    pub fn refresh(self) -> Option<Vec<String>> {
        match self {
            Installer::Apt => Some(argv(&["apt-get", "update"])),
            _ => None,
        }
    }

    /// Returns the argv that installs `package`.
    pub fn install(self, package: &str) -> Vec<String> {
        let mut v = argv(match self {
            Installer::Apt => &["apt-get", "install", "-y"],
            Installer::Dnf => &["dnf", "install", "-y"],
            Installer::Yum => &["yum", "install", "-y"],
            Installer::Zypper => &["zypper", "--non-interactive", "install"],
            Installer::Pacman => &["pacman", "-S", "--needed", "--noconfirm"],
            Installer::Emerge => &["emerge", "--noreplace"],
            Installer::Apk => &["apk", "add"],
            Installer::RpmOstree => &["rpm-ostree", "install"],
            Installer::TransactionalUpdate => &["transactional-update", "pkg", "install"],
        });
        v.push(package.to_string());
        v
    }

    /// Returns [`Installer::install`] with the flags an unattended, repeatable run needs:
    /// rpm-ostree's `--idempotent` (a package already requested for the next deployment is
    /// not an error) and transactional-update's `--non-interactive`. The other managers'
    /// install commands are unattended as they are.
    pub fn install_unattended(self, package: &str) -> Vec<String> {
        let mut v = self.install(package);
        match self {
            Installer::RpmOstree => v.insert(2, "--idempotent".into()),
            Installer::TransactionalUpdate => v.insert(1, "--non-interactive".into()),
            _ => {}
        }
        v
    }

    /// Returns the argv that reinstalls `package` (recorded as installed while a file of it
    /// is gone); on image-based hosts that is installing it again.
    pub fn reinstall(self, package: &str) -> Vec<String> {
        let mut v = argv(match self {
            Installer::Apt => &["apt-get", "install", "--reinstall", "-y"],
            Installer::Dnf => &["dnf", "reinstall", "-y"],
            Installer::Yum => &["yum", "reinstall", "-y"],
            Installer::Zypper => &["zypper", "--non-interactive", "install", "--force"],
            Installer::Pacman => &["pacman", "-S", "--noconfirm"],
            Installer::Emerge => &["emerge", "--oneshot"],
            Installer::Apk => &["apk", "fix"],
            Installer::RpmOstree | Installer::TransactionalUpdate => {
                return self.install(package);
            }
        });
        v.push(package.to_string());
        v
    }

    /// Returns the command that makes an installed package take effect, where that needs a
    /// reboot (the package lands in the next deployment or snapshot).
    pub fn reboot(self) -> Option<&'static str> {
        match self {
            Installer::RpmOstree => Some("systemctl reboot"),
            Installer::TransactionalUpdate => Some("reboot"),
            _ => None,
        }
    }
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// Returns the command that installs `package` on this host, or advice for an immutable one.
pub fn install(package: &str, os: Option<&OsRelease>) -> (Vec<String>, Vec<String>) {
    let Some(os) = os else {
        return (
            vec![],
            vec![format!(
                "install the package that provides it ({package} on most distros); os-release was not readable, so the distro is unknown"
            )],
        );
    };
    let Some(installer) = Installer::of(Some(os)) else {
        if let Some(im) = os.immutable {
            return (vec![], vec![no_installer_note(package, im)]);
        }
        return (
            vec![],
            vec![format!(
                "unrecognised distribution {:?} (ID_LIKE {:?}): install the package that provides it ({package} on Debian-like hosts)",
                os.id,
                os.id_like.join(" ")
            )],
        );
    };
    let install = installer.install(package).join(" ");
    let cmd = match installer.refresh() {
        Some(refresh) => format!("{} && {install}", refresh.join(" ")),
        None => install,
    };
    let mut commands = vec![cmd];
    commands.extend(installer.reboot().map(str::to_string));
    let notes = match installer {
        Installer::TransactionalUpdate => vec!["the root filesystem is read-only; the package lands in a new snapshot used after the reboot".into()],
        Installer::RpmOstree => vec!["layer the package into the OS image (or bake it into your image with Butane/Ignition); it takes effect after the reboot".into()],
        _ => vec![],
    };
    (commands, notes)
}

/// Returns the commands that reinstall `package` on this host (recorded as installed, but a
/// file of it is gone), or what fits an immutable host instead; empty when the distro is
/// unknown.
pub fn reinstall(package: &str, os: Option<&OsRelease>) -> Vec<String> {
    let Some(os) = os else { return vec![] };
    if os.immutable.is_some() {
        return install(package, Some(os)).0;
    }
    Installer::of(Some(os))
        .map(|i| vec![i.reinstall(package).join(" ")])
        .unwrap_or_default()
}

/// Returns true if and only if the host's package manager is yum, not dnf (RHEL/CentOS/Oracle
/// Linux 7, Amazon Linux 2).
fn legacy_yum(os: &OsRelease) -> bool {
    matches!(
        (os.id.as_str(), os.version_id.as_str()),
        ("amzn", "2") | ("centos" | "rhel" | "ol", "7" | "7.9")
    )
}

/// What an image-based host without a package manager offers instead.
fn no_installer_note(package: &str, im: Immutable) -> String {
    match im {
        Immutable::Talos => format!(
            "Talos has no package manager: add the system extension that provides it (for Longhorn: siderolabs/iscsi-tools and siderolabs/util-linux-tools) to the installer image and upgrade the node ({package} on other distros)"
        ),
        Immutable::Flatcar => format!(
            "Flatcar ships Longhorn's tools in its base image; if {package}'s tools are missing, update Flatcar or add them as a systemd-sysext image"
        ),
        Immutable::Bottlerocket => format!(
            "Bottlerocket has no package manager: choose a variant that includes it or run it from a privileged bootstrap container ({package} on other distros)"
        ),
        // These have an installer (Installer::of); kept total for a new variant.
        Immutable::SleMicro
        | Immutable::OpensuseMicroos
        | Immutable::FedoraCoreos
        | Immutable::RhelCoreos => format!("install {package} the way this OS image documents"),
    }
}

/// Builds the remediation for a missing executable.
pub fn missing_executable(
    exe: &str,
    os: Option<&OsRelease>,
    overrides: &BTreeMap<String, String>,
) -> Remediation {
    match package(exe, os, overrides) {
        Some(pkg) => {
            let (commands, notes) = install(&pkg, os);
            Remediation {
                summary: format!("install {pkg}, which provides {exe}"),
                commands,
                package: Some(pkg),
                notes,
            }
        }
        None => Remediation {
            summary: format!("install the package that provides {exe} and make sure it is on PATH"),
            ..Remediation::default()
        },
    }
}

/// The file the fix script lists the modules it loads in, read at boot by
/// systemd-modules-load (`modules-load.d(5)`). The copy-paste remediation writes one file per
/// module instead ([`load_module`]), which reads better as a single command.
pub const MODULES_LOAD_FILE: &str = "/etc/modules-load.d/hostready.conf";
/// Alpine's (OpenRC `modules` service) list of modules loaded at boot.
pub const ETC_MODULES: &str = "/etc/modules";
/// The file the fix script writes module options to (`modprobe.d(5)`).
pub const MODPROBE_FILE: &str = "/etc/modprobe.d/hostready.conf";
/// The file the fix script persists sysctls in: `90-` sorts after the distributions' own
/// files, so its values win (`sysctl.d(5)`: files are applied in lexicographic order).
pub const SYSCTL_FILE: &str = "/etc/sysctl.d/99-zz-hostready.conf";

/// How a host is configured where files under `/etc` are not the way: its machine
/// configuration or settings API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Configured {
    /// Talos: the machine config (`talosctl apply-config` / `patch mc`).
    TalosMachineConfig,
    /// Bottlerocket: the settings API (user data, or `apiclient set`).
    BottlerocketSettings,
}

impl Configured {
    /// Returns how `os` is configured, if not through files under `/etc`.
    pub fn of(os: Option<&OsRelease>) -> Option<Configured> {
        match os.and_then(|o| o.immutable) {
            Some(Immutable::Talos) => Some(Configured::TalosMachineConfig),
            Some(Immutable::Bottlerocket) => Some(Configured::BottlerocketSettings),
            _ => None,
        }
    }

    /// Returns where module `name` is loaded at boot on this OS.
    pub fn load_module(self, name: &str) -> String {
        match self {
            Configured::TalosMachineConfig => {
                format!("add `- name: {name}` under machine.kernel.modules and apply the config")
            }
            Configured::BottlerocketSettings => format!(
                "set settings.kernel.modules.{name}.allowed = true and settings.kernel.modules.{name}.autoload = true (user data or apiclient set)"
            ),
        }
    }

    /// Returns where sysctl `name` is set to `value` on this OS.
    pub fn sysctl(self, name: &str, value: &str) -> String {
        match self {
            Configured::TalosMachineConfig => {
                format!("set machine.sysctls.\"{name}\": \"{value}\" and apply the config")
            }
            Configured::BottlerocketSettings => format!(
                "set settings.kernel.sysctl.\"{name}\" = \"{value}\" (user data or apiclient set)"
            ),
        }
    }

    /// Returns where option `parameter=value` of module `module` is set on this OS.
    pub fn module_option(self, module: &str, parameter: &str, value: &str) -> String {
        match self {
            Configured::TalosMachineConfig => format!(
                "add `- name: {module}` with `parameters: [{parameter}={value}]` under machine.kernel.modules and apply the config"
            ),
            Configured::BottlerocketSettings => format!(
                "Bottlerocket documents no module options setting: add {module}.{parameter}={value} to settings.boot.kernel-parameters and reboot"
            ),
        }
    }

    /// Returns how a missing daemon `name` is provided on this OS.
    pub fn service(self, name: &str) -> String {
        match self {
            Configured::TalosMachineConfig => format!(
                "{name} comes from a Talos system extension (for iscsid: siderolabs/iscsi-tools) added to the installer image"
            ),
            Configured::BottlerocketSettings => format!(
                "Bottlerocket runs no extra host daemons: run {name} in a privileged host container or choose a variant that has it"
            ),
        }
    }
}

/// Where a host lists the modules it loads at boot, when files under `/etc` are the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModuleList {
    /// systemd-modules-load's `/etc/modules-load.d/*.conf`.
    ModulesLoadD,
    /// Alpine's `/etc/modules`.
    EtcModules,
}

impl ModuleList {
    /// Returns the list `os` reads at boot.
    pub fn of(os: Option<&OsRelease>) -> ModuleList {
        if os.is_some_and(|o| o.family == Family::Alpine) {
            ModuleList::EtcModules
        } else {
            ModuleList::ModulesLoadD
        }
    }
}

/// How a host starts daemons, when files under `/etc` and its init are the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceManager {
    Systemd,
    /// Alpine's OpenRC.
    OpenRc,
}

impl ServiceManager {
    /// Returns the service manager of `os`.
    pub fn of(os: Option<&OsRelease>) -> ServiceManager {
        if os.is_some_and(|o| o.family == Family::Alpine) {
            ServiceManager::OpenRc
        } else {
            ServiceManager::Systemd
        }
    }

    /// Returns the argvs that enable `name` at boot, then start it now.
    pub fn enable_and_start(self, name: &str) -> (Vec<String>, Vec<String>) {
        match self {
            ServiceManager::Systemd => (
                argv(&["systemctl", "enable", name]),
                argv(&["systemctl", "start", name]),
            ),
            ServiceManager::OpenRc => (
                argv(&["rc-update", "add", name, "default"]),
                argv(&["rc-service", name, "start"]),
            ),
        }
    }
}

/// Builds the remediation for a module file that exists but is not loaded.
pub fn load_module(name: &str, os: Option<&OsRelease>) -> Remediation {
    if let Some(c) = Configured::of(os) {
        return Remediation {
            summary: match c {
                Configured::TalosMachineConfig => {
                    format!("load {name} through the Talos machine configuration")
                }
                Configured::BottlerocketSettings => {
                    format!("load {name} through Bottlerocket's settings")
                }
            },
            notes: vec![c.load_module(name)],
            ..Remediation::default()
        };
    }
    let persist = match ModuleList::of(os) {
        ModuleList::EtcModules => format!("echo {name} >> {ETC_MODULES}"),
        ModuleList::ModulesLoadD => format!("echo {name} > /etc/modules-load.d/{name}.conf"),
    };
    Remediation {
        summary: format!("load {name} now and at every boot"),
        commands: vec![format!("modprobe {name}"), persist],
        package: None,
        notes: vec![],
    }
}

/// Builds the remediation for a daemon that is neither running nor socket-activated: enable
/// it at boot and start it (`systemctl enable --now`), or what the OS has instead.
pub fn start_service(name: &str, os: Option<&OsRelease>) -> Remediation {
    if let Some(c) = Configured::of(os) {
        return Remediation {
            summary: format!("{name} is provided by the OS image's configuration"),
            notes: vec![c.service(name)],
            ..Remediation::default()
        };
    }
    let commands = match ServiceManager::of(os) {
        ServiceManager::Systemd => vec![format!("systemctl enable --now {name}")],
        m @ ServiceManager::OpenRc => {
            let (enable, start) = m.enable_and_start(name);
            vec![enable.join(" "), start.join(" ")]
        }
    };
    Remediation {
        summary: format!("start {name} and enable it at boot"),
        commands,
        ..Remediation::default()
    }
}

/// Builds the remediation for a module the running kernel does not have at all.
pub fn missing_module(
    name: &str,
    config: Option<&str>,
    os: Option<&OsRelease>,
    release: &str,
) -> Remediation {
    let option = config.map(|c| format!(" ({c})")).unwrap_or_default();
    let (commands, package) = match os.map(|o| (o.id.as_str(), o.family)) {
        Some(("ubuntu", _)) => {
            let p = format!("linux-modules-extra-{release}");
            (
                vec![
                    format!("apt-get update && apt-get install -y {p}"),
                    format!("modprobe {name}"),
                ],
                Some(p),
            )
        }
        Some((_, Family::Rhel)) if os.is_some_and(|o| o.immutable.is_none()) => (
            vec![
                "dnf install -y kernel-modules-extra".to_string(),
                format!("modprobe {name}"),
            ],
            Some("kernel-modules-extra".to_string()),
        ),
        _ => (vec![], None),
    };
    Remediation {
        summary: format!(
            "the running kernel {release} has no {name} module; install the kernel modules that provide it or boot a kernel built with it{option}"
        ),
        commands,
        package,
        notes: vec![],
    }
}

// Issue 13, kernel-side families: each fix names the command for now and the file that
// keeps it across a reboot.

/// Builds the fix for a sysctl: set it now, persist it in [`SYSCTL_FILE`]; `conflict` names a
/// boot file that sets another value (it must go, or it wins on hosts that read it later).
pub fn set_sysctl(
    name: &str,
    value: &str,
    conflict: Option<&str>,
    os: Option<&OsRelease>,
) -> Remediation {
    let mut notes = Vec::new();
    if let Some(c) = conflict {
        notes.push(format!(
            "{c}: remove that line, or the boot may apply it after this file"
        ));
    }
    if let Some(c) = Configured::of(os) {
        return Remediation {
            summary: format!("set {name} to {value} through the OS configuration"),
            notes: vec![c.sysctl(name, value)],
            ..Remediation::default()
        };
    }
    if let Some(Immutable::FedoraCoreos | Immutable::RhelCoreos | Immutable::Flatcar) =
        os.and_then(|o| o.immutable)
    {
        notes.push(
            "on an Ignition-provisioned host, also add the file to the Butane/Ignition config so new nodes get it".into(),
        );
    }
    Remediation {
        summary: format!("set {name} to {value} now and at every boot ({SYSCTL_FILE})"),
        commands: vec![
            format!("sysctl -w {name}='{value}'"),
            // One line per name in the one file the fix script also keeps: replace, then add.
            format!(
                "sed -i '/^{name} *=/d' {SYSCTL_FILE} 2>/dev/null; echo '{name} = {value}' >> {SYSCTL_FILE}"
            ),
        ],
        package: None,
        notes,
    }
}

/// Returns the commands that add `arg` to the kernel command line of every installed kernel,
/// the persistent place for a boot parameter, for this distro (a reboot applies it).
pub fn kernel_cmdline_arg(arg: &str, os: Option<&OsRelease>) -> (Vec<String>, Vec<String>) {
    match os.map(|o| (o.family, o.immutable)) {
        Some((_, Some(Immutable::FedoraCoreos | Immutable::RhelCoreos))) => (
            vec![
                format!("rpm-ostree kargs --append={arg}"),
                "systemctl reboot".into(),
            ],
            vec![],
        ),
        Some((_, Some(Immutable::Talos))) => (
            vec![],
            vec![format!(
                "add {arg} to machine.install.extraKernelArgs and upgrade the node"
            )],
        ),
        Some((_, Some(Immutable::Flatcar))) => (
            vec![],
            vec![format!(
                "add `set linux_append=\"$linux_append {arg}\"` to /oem/grub.cfg (or the OEM partition's grub.cfg) and reboot"
            )],
        ),
        Some((_, Some(Immutable::SleMicro | Immutable::OpensuseMicroos))) => (
            vec![
                format!(
                    "transactional-update run sh -c \"sed -i 's/^GRUB_CMDLINE_LINUX_DEFAULT=\\\"/&{arg} /' /etc/default/grub && grub2-mkconfig -o /boot/grub2/grub.cfg\""
                ),
                "reboot".into(),
            ],
            vec![],
        ),
        Some((Family::Rhel, _)) => (
            vec![
                format!("grubby --update-kernel=ALL --args={arg}"),
                "reboot".into(),
            ],
            vec![],
        ),
        Some((Family::Debian, _)) => (
            vec![
                format!("sed -i 's/^GRUB_CMDLINE_LINUX=\"/&{arg} /' /etc/default/grub"),
                "update-grub".into(),
                "reboot".into(),
            ],
            vec![],
        ),
        _ => (
            vec![],
            vec![format!(
                "add {arg} to the kernel command line in the boot loader's configuration (GRUB_CMDLINE_LINUX in /etc/default/grub, then regenerate grub.cfg) and reboot"
            )],
        ),
    }
}

/// Builds the fix for a cgroup layout other than `want` (1 or 2).
pub fn cgroup_version(want: u8, os: Option<&OsRelease>) -> Remediation {
    let flag = if want == 2 { 1 } else { 0 };
    let (commands, mut notes) =
        kernel_cmdline_arg(&format!("systemd.unified_cgroup_hierarchy={flag}"), os);
    if want == 2 {
        notes.push("remove systemd.legacy_systemd_cgroup_controller and cgroup_no_v1= from the kernel command line if present; systemd 256 and later boot cgroup v2 only".into());
        notes.push("the kubelet 1.35 and later refuses to start on cgroup v1 unless its KubeletConfiguration sets failCgroupV1: false (cgroup v1 support is in maintenance mode since 1.31)".into());
    }
    Remediation {
        summary: format!(
            "boot the host with cgroup v{want} (the unified hierarchy at /sys/fs/cgroup{})",
            if want == 2 { "" } else { " off" }
        ),
        commands,
        package: None,
        notes,
    }
}

/// Builds the fix for cgroup controllers that are not available.
pub fn cgroup_controllers(missing: &[String], os: Option<&OsRelease>) -> Remediation {
    let arg = format!("cgroup_enable={}", missing.join(","));
    let (commands, mut notes) = kernel_cmdline_arg(&arg, os);
    notes.push("a controller disabled on the kernel command line (cgroup_disable=...) must lose that flag; Raspberry Pi kernels also need cgroup_memory=1 for memory; a controller the kernel is built without needs another kernel".into());
    Remediation {
        summary: format!(
            "enable the cgroup controllers {} at boot",
            missing.join(", ")
        ),
        commands,
        package: None,
        notes,
    }
}

/// Builds the fix for active swap on a node that must run without it.
pub fn swap_off(areas: &[String]) -> Remediation {
    Remediation {
        summary: "turn swap off now and keep it off at boot (/etc/fstab and systemd swap units)".into(),
        commands: vec![
            "swapoff -a".into(),
            r"sed -i '/^[^#].*\sswap\s/s/^/#/' /etc/fstab".into(),
            "systemctl mask swap.target".into(),
        ],
        package: None,
        notes: vec![
            format!("active: {}", areas.join(", ")),
            "the kubelet refuses to start while swap is on unless its KubeletConfiguration sets failSwapOn: false (to let pods use swap, also memorySwap.swapBehavior: LimitedSwap, the NodeSwap feature)".into(),
            "zram swap comes from zram-generator (/etc/systemd/zram-generator.conf) or zram-tools (/etc/default/zramswap): remove or disable it there".into(),
        ],
    }
}

/// Builds the fix for a module parameter with the wrong value: written now if sysfs allows
/// it, kept by `/etc/modprobe.d` for a loadable module or the kernel command line for a
/// built-in one (where `modprobe.d` has no effect).
pub fn module_parameter(
    module: &str,
    parameter: &str,
    value: &str,
    builtin: bool,
    writable: bool,
    os: Option<&OsRelease>,
) -> Remediation {
    let path = hostready_host::modparam::parameter_path(module, parameter);
    let mut commands = Vec::new();
    let mut notes = Vec::new();
    if writable {
        commands.push(format!("echo {value} > {path}"));
    } else {
        notes.push(format!(
            "{path} is read-only: the value is fixed when the module loads"
        ));
    }
    let arg = format!("{module}.{parameter}={value}");
    if builtin {
        let (c, n) = kernel_cmdline_arg(&arg, os);
        commands.extend(c);
        notes.extend(n);
        notes.push(format!("{module} is built into the kernel: only the kernel command line sets it at boot (modprobe.d does not apply)"));
    } else {
        commands.push(format!(
            "sed -i '/^options {module} {parameter}=/d' {MODPROBE_FILE} 2>/dev/null; echo 'options {module} {parameter}={value}' >> {MODPROBE_FILE}"
        ));
        if !writable {
            commands.push(format!("modprobe -r {module} && modprobe {module}"));
        }
        notes.push(format!("if {module} is loaded from the initramfs, rebuild it too (update-initramfs -u on Debian/Ubuntu, dracut -f on RHEL/SUSE); or set {arg} on the kernel command line"));
        if !writable {
            notes.push(format!(
                "unloading {module} fails while devices use it: reboot instead"
            ));
        }
    }
    Remediation {
        summary: format!("set {module}.{parameter} to {value}, now and at boot"),
        commands,
        package: None,
        notes,
    }
}

/// Builds the fix for a module older than a profile needs.
pub fn module_upgrade(module: &str, min: &str) -> Remediation {
    let notes = if module == "drbd" {
        vec!["the in-tree drbd module is DRBD 8.4; DRBD 9 comes from LINBIT (drbd-dkms, e.g. ppa:linbit/linbit-drbd9-stack on Ubuntu) or Piraeus' drbd-module-loader image, and must replace the loaded 8.4 module (rmmod drbd, or reboot)".into()]
    } else {
        vec![]
    };
    Remediation {
        summary: format!("install and load {module} {min} or newer"),
        commands: vec![],
        package: None,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(text: &str) -> OsRelease {
        OsRelease::parse(text, "/etc/os-release")
    }

    #[test]
    fn iscsiadm_per_family() {
        let none = BTreeMap::new();
        let rocky = os("ID=rocky\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=8.9\n");
        let r = missing_executable("iscsiadm", Some(&rocky), &none);
        assert_eq!(r.package.as_deref(), Some("iscsi-initiator-utils"));
        assert_eq!(r.commands, vec!["dnf install -y iscsi-initiator-utils"]);
        let deb = os("ID=debian\n");
        assert_eq!(
            missing_executable("mount.nfs", Some(&deb), &none)
                .package
                .as_deref(),
            Some("nfs-common")
        );
        let sles = os("ID=sles\nID_LIKE=suse\n");
        let r = missing_executable("mount.nfs", Some(&sles), &none);
        assert_eq!(
            r.commands,
            vec!["zypper --non-interactive install nfs-client"]
        );
        let amzn2 = os("ID=amzn\nVERSION_ID=2\nID_LIKE=\"centos rhel fedora\"\n");
        assert_eq!(
            missing_executable("dmsetup", Some(&amzn2), &none).commands,
            vec!["yum install -y device-mapper"]
        );
    }

    #[test]
    fn reinstall_uses_the_hosts_package_manager() {
        let centos7 = os("ID=centos\nID_LIKE=\"rhel fedora\"\nVERSION_ID=7\n");
        assert_eq!(
            reinstall("iscsi-initiator-utils", Some(&centos7)),
            vec!["yum reinstall -y iscsi-initiator-utils"]
        );
        let rocky = os("ID=rocky\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=9.3\n");
        assert_eq!(
            reinstall("iscsi-initiator-utils", Some(&rocky)),
            vec!["dnf reinstall -y iscsi-initiator-utils"]
        );
        let deb = os("ID=debian\n");
        assert_eq!(
            reinstall("open-iscsi", Some(&deb)),
            vec!["apt-get install --reinstall -y open-iscsi"]
        );
        let fcos = os("ID=fedora\nVARIANT_ID=coreos\n");
        assert_eq!(
            reinstall("iscsi-initiator-utils", Some(&fcos))[0],
            "rpm-ostree install iscsi-initiator-utils"
        );
        assert!(reinstall("x", None).is_empty());
    }

    #[test]
    fn immutable_hosts_get_fitting_advice() {
        let none = BTreeMap::new();
        let micro = os("ID=sle-micro\nID_LIKE=suse\n");
        let r = missing_executable("iscsiadm", Some(&micro), &none);
        assert_eq!(r.commands[0], "transactional-update pkg install open-iscsi");
        let talos = os("ID=talos\n");
        let r = missing_executable("iscsiadm", Some(&talos), &none);
        assert!(r.commands.is_empty());
        assert!(r.notes[0].contains("iscsi-tools"));
    }

    #[test]
    fn profile_overrides_win() {
        let mut o = BTreeMap::new();
        o.insert("debian".to_string(), "my-iscsi".to_string());
        let deb = os("ID=debian\n");
        assert_eq!(
            package("iscsiadm", Some(&deb), &o).as_deref(),
            Some("my-iscsi")
        );
    }

    #[test]
    fn module_fixes() {
        let deb = os("ID=debian\n");
        let r = load_module("iscsi_tcp", Some(&deb));
        assert_eq!(
            r.commands,
            vec![
                "modprobe iscsi_tcp",
                "echo iscsi_tcp > /etc/modules-load.d/iscsi_tcp.conf"
            ]
        );
        let ubuntu = os("ID=ubuntu\nID_LIKE=debian\n");
        let r = missing_module(
            "nvme_tcp",
            Some("CONFIG_NVME_TCP"),
            Some(&ubuntu),
            "6.8.0-31-generic",
        );
        assert_eq!(
            r.package.as_deref(),
            Some("linux-modules-extra-6.8.0-31-generic")
        );
    }

    /// The remediations the sysctl, module parameter and service families will use: files
    /// under /etc where those are the way, the machine config where not; start_service
    /// says what service.rs says today.
    #[test]
    fn sysctl_module_option_and_service_fixes() {
        let deb = os("ID=debian\n");
        let r = set_sysctl("net.ipv4.ip_forward", "1", None, Some(&deb));
        assert_eq!(
            r.commands,
            [
                "sysctl -w net.ipv4.ip_forward='1'",
                "sed -i '/^net.ipv4.ip_forward *=/d' /etc/sysctl.d/99-zz-hostready.conf 2>/dev/null; echo 'net.ipv4.ip_forward = 1' >> /etc/sysctl.d/99-zz-hostready.conf"
            ]
        );
        let talos = os("ID=talos\n");
        let r = set_sysctl("vm.nr_hugepages", "1024", None, Some(&talos));
        assert!(r.commands.is_empty());
        assert!(r.notes[0].contains("machine.sysctls"), "{r:?}");
        let r = module_parameter("nvme_core", "multipath", "N", false, false, Some(&deb));
        assert!(
            r.commands[0].ends_with(
                "echo 'options nvme_core multipath=N' >> /etc/modprobe.d/hostready.conf"
            ),
            "{r:?}"
        );
        assert_eq!(
            start_service("iscsid", Some(&deb)).commands,
            ["systemctl enable --now iscsid"]
        );
        let alpine = os("ID=alpine\n");
        assert_eq!(
            start_service("iscsid", Some(&alpine)).commands,
            ["rc-update add iscsid default", "rc-service iscsid start"]
        );
        let bottlerocket = os("ID=bottlerocket\n");
        let r = load_module("iscsi_tcp", Some(&bottlerocket));
        assert!(r.commands.is_empty());
        assert!(
            r.notes[0].contains("settings.kernel.modules.iscsi_tcp.autoload"),
            "{r:?}"
        );
    }
}
