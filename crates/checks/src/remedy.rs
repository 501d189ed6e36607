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
    if let Some(im) = os.immutable {
        return immutable_install(package, im);
    }
    let cmd = match os.family {
        Family::Debian => format!("apt-get update && apt-get install -y {package}"),
        Family::Rhel if legacy_yum(os) => format!("yum install -y {package}"),
        Family::Rhel => format!("dnf install -y {package}"),
        Family::Suse => format!("zypper --non-interactive install {package}"),
        Family::Arch => format!("pacman -S --needed --noconfirm {package}"),
        Family::Gentoo => format!("emerge --noreplace {package}"),
        Family::Alpine => format!("apk add {package}"),
        Family::Image | Family::Unknown => {
            return (
                vec![],
                vec![format!(
                    "unrecognised distribution {:?} (ID_LIKE {:?}): install the package that provides it ({package} on Debian-like hosts)",
                    os.id,
                    os.id_like.join(" ")
                )],
            );
        }
    };
    (vec![cmd], vec![])
}

/// Returns the commands that reinstall `package` on this host (recorded as installed, but a
/// file of it is gone), or what fits an immutable host instead; empty when the distro is
/// unknown.
pub fn reinstall(package: &str, os: Option<&OsRelease>) -> Vec<String> {
    let Some(os) = os else { return vec![] };
    if os.immutable.is_some() {
        return install(package, Some(os)).0;
    }
    match os.family {
        Family::Debian => vec![format!("apt-get install --reinstall -y {package}")],
        Family::Rhel if legacy_yum(os) => vec![format!("yum reinstall -y {package}")],
        Family::Rhel => vec![format!("dnf reinstall -y {package}")],
        Family::Suse => vec![format!(
            "zypper --non-interactive install --force {package}"
        )],
        Family::Arch => vec![format!("pacman -S --noconfirm {package}")],
        Family::Gentoo => vec![format!("emerge --oneshot {package}")],
        Family::Alpine => vec![format!("apk fix {package}")],
        Family::Image | Family::Unknown => vec![],
    }
}

/// Returns true if and only if the host's package manager is yum, not dnf (RHEL/CentOS/Oracle
/// Linux 7, Amazon Linux 2).
fn legacy_yum(os: &OsRelease) -> bool {
    matches!(
        (os.id.as_str(), os.version_id.as_str()),
        ("amzn", "2") | ("centos" | "rhel" | "ol", "7" | "7.9")
    )
}

fn immutable_install(package: &str, im: Immutable) -> (Vec<String>, Vec<String>) {
    match im {
        Immutable::SleMicro | Immutable::OpensuseMicroos => (
            vec![format!("transactional-update pkg install {package}"), "reboot".into()],
            vec!["the root filesystem is read-only; the package lands in a new snapshot used after the reboot".into()],
        ),
        Immutable::FedoraCoreos | Immutable::RhelCoreos => (
            vec![format!("rpm-ostree install {package}"), "systemctl reboot".into()],
            vec!["layer the package into the OS image (or bake it into your image with Butane/Ignition); it takes effect after the reboot".into()],
        ),
        Immutable::Talos => (
            vec![],
            vec![format!(
                "Talos has no package manager: add the system extension that provides it (for Longhorn: siderolabs/iscsi-tools and siderolabs/util-linux-tools) to the installer image and upgrade the node ({package} on other distros)"
            )],
        ),
        Immutable::Flatcar => (
            vec![],
            vec![format!(
                "Flatcar ships Longhorn's tools in its base image; if {package}'s tools are missing, update Flatcar or add them as a systemd-sysext image"
            )],
        ),
        Immutable::Bottlerocket => (
            vec![],
            vec![format!("Bottlerocket has no package manager: choose a variant that includes it or run it from a privileged bootstrap container ({package} on other distros)")],
        ),
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

/// Builds the remediation for a module file that exists but is not loaded.
pub fn load_module(name: &str, os: Option<&OsRelease>) -> Remediation {
    let im = os.and_then(|o| o.immutable);
    if im == Some(Immutable::Talos) {
        return Remediation {
            summary: format!("load {name} through the Talos machine configuration"),
            notes: vec![format!(
                "add `- name: {name}` under machine.kernel.modules and apply the config"
            )],
            ..Remediation::default()
        };
    }
    let persist = if os.is_some_and(|o| o.family == Family::Alpine) {
        format!("echo {name} >> /etc/modules")
    } else {
        format!("echo {name} > /etc/modules-load.d/{name}.conf")
    };
    Remediation {
        summary: format!("load {name} now and at every boot"),
        commands: vec![format!("modprobe {name}"), persist],
        package: None,
        notes: vec![],
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

/// The file hostready suggests for a sysctl: late in `sysctl.d`'s lexical order (after
/// Debian's `99-sysctl.conf`), one per name so that writing it again is idempotent.
pub fn sysctl_file(name: &str) -> String {
    format!("/etc/sysctl.d/99-zz-hostready-{name}.conf")
}

/// Builds the fix for a sysctl: set it now, persist it in [`sysctl_file`]; `conflict` names a
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
    match os.and_then(|o| o.immutable) {
        Some(Immutable::Talos) => {
            return Remediation {
                summary: format!("set {name} to {value} in the Talos machine configuration"),
                notes: vec![format!(
                    "add `{name}: \"{value}\"` under machine.sysctls and apply the config"
                )],
                ..Remediation::default()
            };
        }
        Some(Immutable::FedoraCoreos | Immutable::RhelCoreos | Immutable::Flatcar) => notes.push(
            "on an Ignition-provisioned host, also add the file to the Butane/Ignition config so new nodes get it".into(),
        ),
        _ => {}
    }
    Remediation {
        summary: format!(
            "set {name} to {value} now and at every boot ({})",
            sysctl_file(name)
        ),
        commands: vec![
            format!("sysctl -w {name}='{value}'"),
            format!("echo '{name} = {value}' > {}", sysctl_file(name)),
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
        let file = format!("/etc/modprobe.d/99-hostready-{module}.conf");
        commands.push(format!(
            "echo 'options {module} {parameter}={value}' > {file}"
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
}
