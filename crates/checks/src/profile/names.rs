//! The grammars of the names a profile gives: its own name, requirement ids, the Kubernetes
//! node condition type the agent publishes for it, and command environment variables. These
//! strings reach terminals, metrics labels, JSON and the Kubernetes API, so they are held to
//! small printable grammars here, when the profile loads, instead of being escaped everywhere.

/// The longest profile name: the condition type derived from it (CamelCase words plus `Ready`)
/// then always fits Kubernetes' 63-character name part.
pub const MAX_NAME_LEN: usize = 58;

/// The longest requirement id.
pub const MAX_ID_LEN: usize = 128;

/// The node condition types the kubelet owns. A profile may never publish one of them (nor a
/// case variant): `Ready=False` written by hostready taints the node and evicts its pods.
pub const KUBELET_CONDITIONS: [&str; 5] = [
    "Ready",
    "MemoryPressure",
    "DiskPressure",
    "PIDPressure",
    "NetworkUnavailable",
];

/// Checks a profile name: 1 to [`MAX_NAME_LEN`] ASCII letters, digits, `.`, `_` and `-`,
/// starting with a letter or digit.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("`name` is empty".into());
    }
    let ok = name.len() <= MAX_NAME_LEN
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "name {name:?} must be 1 to {MAX_NAME_LEN} ASCII letters, digits, '.', '_' or '-', \
             starting with a letter or digit"
        ))
    }
}

/// Checks a requirement id: 1 to [`MAX_ID_LEN`] characters from ASCII letters, digits and
/// `. _ - / + : @`, starting with a letter or digit. No spaces, no control characters, nothing
/// outside ASCII (ids are matched byte for byte and printed everywhere).
pub fn check_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id.starts_with(|c: char| c.is_ascii_alphanumeric())
        && id.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | '+' | ':' | '@')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "requirement id {id:?} must be 1 to {MAX_ID_LEN} ASCII letters, digits, \
             '.', '_', '-', '/', '+', ':' or '@', starting with a letter or digit"
        ))
    }
}

/// Returns the condition type derived from a profile name: its words in CamelCase followed by
/// `Ready` (`nfs-client` → `NfsClientReady`).
pub fn derived_condition_type(name: &str) -> String {
    let mut out = String::new();
    for word in name.split(|c: char| !c.is_ascii_alphanumeric()) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    out.push_str("Ready");
    out
}

/// Checks a node condition type: a Kubernetes qualified name, as apimachinery validates the
/// `type` of a `metav1.Condition` (`k8s.io/apimachinery/pkg/util/validation.IsQualifiedName`,
/// at most 316 characters in all) — an optional DNS-1123 subdomain prefix of at most 253
/// characters and a `/`, then a name of 1 to 63 ASCII letters, digits, `-`, `_` and `.` that
/// starts and ends with a letter or digit — and never one the kubelet owns, in any case, nor
/// one in the `kubernetes.io`/`k8s.io` prefixes Kubernetes reserves for itself.
pub fn check_condition_type(t: &str) -> Result<(), String> {
    if t.len() > 316 {
        return Err(format!(
            "condition type {t:?} is longer than 316 characters"
        ));
    }
    let (prefix, name) = match t.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, t),
    };
    if let Some(p) = prefix {
        if !is_dns_subdomain(p) {
            return Err(format!(
                "condition type {t:?}: prefix {p:?} must be a DNS subdomain (lower-case letters, \
                 digits, '-' and '.', at most 253 characters)"
            ));
        }
        if p == "kubernetes.io"
            || p == "k8s.io"
            || p.ends_with(".kubernetes.io")
            || p.ends_with(".k8s.io")
        {
            return Err(format!(
                "condition type {t:?}: prefix {p:?} is reserved for Kubernetes itself"
            ));
        }
    }
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !name_ok {
        return Err(format!(
            "condition type {t:?} is not a Kubernetes qualified name: at most 63 ASCII letters, \
             digits, '-', '_' or '.', starting and ending with a letter or digit, optionally \
             after a DNS subdomain prefix and '/'"
        ));
    }
    if prefix.is_none() {
        if let Some(k) = KUBELET_CONDITIONS
            .iter()
            .find(|k| k.eq_ignore_ascii_case(name))
        {
            return Err(format!(
                "condition type {t:?} is the kubelet's {k:?}; hostready never writes the \
                 kubelet's conditions (give the profile its own, such as MyStorageReady)"
            ));
        }
    }
    Ok(())
}

/// Returns true if and only if `s` is a DNS-1123 subdomain: dot-separated labels of lower-case
/// letters, digits and `-`, each starting and ending with a letter or digit, 253 at most.
fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && label.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
}

/// Checks a value that hostready prints inside a remediation command an operator may paste
/// into a root shell (`modprobe NAME`, `apt-get install -y PACKAGE`, `mount --make-rshared
/// PATH`, ...): 1 to `max` characters, each an ASCII letter or digit or one of `extra`, the
/// first a letter or digit (or `/` for paths). So a profile can never put `;`, `$(...)`, a
/// space, a quote or a control character into a suggested command.
fn check_word(what: &str, value: &str, extra: &str, max: usize) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= max
        && value
            .starts_with(|c: char| c.is_ascii_alphanumeric() || (c == '/' && extra.contains('/')))
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(c));
    if ok {
        Ok(())
    } else {
        let extra: Vec<String> = extra.chars().map(|c| format!("'{c}'")).collect();
        Err(format!(
            "{what} {value:?} must be 1 to {max} ASCII letters, digits or {}, starting with a \
             letter or digit (it is printed in suggested shell commands)",
            extra.join(", ")
        ))
    }
}

// Issue 13, kernel-side families (sysctl, cgroup, module parameters and versions).

/// Checks a sysctl name (`sysctl -w NAME=...`, `/proc/sys/...`): dotted (or `/`-separated)
/// components of ASCII letters, digits, `_` and `-`, none empty — so it can never leave
/// `/proc/sys` nor be a glob.
pub fn check_sysctl_name(name: &str) -> Result<(), String> {
    check_word("sysctl name", name, "._-/", 255)?;
    if hostready_host::sysctl::proc_path(name).is_none() {
        return Err(format!(
            "sysctl name {name:?} has an empty component (write it as net.ipv4.ip_forward)"
        ));
    }
    Ok(())
}

/// Checks a value a profile wants a sysctl or module parameter to have, as it is printed in
/// suggested commands (`sysctl -w name='VALUE'`): 1 to 256 ASCII letters, digits, spaces and
/// `. _ : , / + - =`.
pub fn check_setting_value(what: &str, value: &str) -> Result<(), String> {
    let ok = !value.trim().is_empty()
        && value.len() <= 256
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " ._:,/+-=".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} {value:?} must be 1 to 256 ASCII letters, digits, spaces or '.', '_', ':', \
             ',', '/', '+', '-', '=' (it is printed in suggested shell commands)"
        ))
    }
}

/// Checks a module parameter name (`/sys/module/M/parameters/NAME`).
pub fn check_module_parameter(name: &str) -> Result<(), String> {
    check_word("module parameter", name, "_-", 64)
}

/// Checks a cgroup controller name (`cpu`, `memory`, `hugetlb`, `rdma`, ...).
pub fn check_controller(name: &str) -> Result<(), String> {
    check_word("cgroup controller", name, "_", 32)
}

/// Checks a kernel module name (`modprobe NAME`, `/etc/modules-load.d/NAME.conf`); the kernel
/// allows 55 characters.
pub fn check_module(name: &str) -> Result<(), String> {
    check_word("kernel module", name, "_-", 55)
}

/// Checks a kernel config option name: `CONFIG_` and letters, digits or `_`.
pub fn check_config_option(name: &str) -> Result<(), String> {
    match name.strip_prefix("CONFIG_") {
        Some(rest) if !rest.is_empty() => check_word("config option", name, "_", 128),
        _ => Err(format!("config option {name:?} must start with CONFIG_")),
    }
}

/// The most alternatives one `kernel_config` entry may name (`CONFIG_A|CONFIG_B`): aliases of
/// one option across kernel versions are two or three, never dozens.
pub const MAX_CONFIG_ALTERNATIVES: usize = 8;

/// Checks one `kernel_config` entry: a Kconfig symbol `CONFIG_[A-Z0-9_]+`, or up to
/// [`MAX_CONFIG_ALTERNATIVES`] of them joined by `|` (any one of them satisfies it, as
/// system-validators' aliases do: an option renamed between kernel versions). Upper case only:
/// a `.config` writes every symbol so, and a lower-case name would silently never match.
pub fn check_kernel_config_entry(entry: &str) -> Result<(), String> {
    let names: Vec<&str> = entry.split('|').collect();
    if names.len() > MAX_CONFIG_ALTERNATIVES {
        return Err(format!(
            "kernel_config entry {entry:?} has {} alternatives; at most {MAX_CONFIG_ALTERNATIVES}",
            names.len()
        ));
    }
    for name in names {
        let ok = name.len() <= 128
            && name.strip_prefix("CONFIG_").is_some_and(|rest| {
                !rest.is_empty()
                    && rest
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            });
        if !ok {
            return Err(format!(
                "kernel_config option {name:?} must be CONFIG_ followed by upper-case letters, digits or _ (alternatives joined by |)"
            ));
        }
    }
    Ok(())
}

/// Checks a systemd service name as hostready prints it (`systemctl enable --now NAME`).
pub fn check_service(name: &str) -> Result<(), String> {
    check_word("service name", name, ":_.@-", 255)
}

/// Checks one `packages:` entry: a distro family or os-release `ID` (lower-case), and one or
/// more package names separated by single spaces (`apt-get install -y NAMES`).
pub fn check_packages(family: &str, names: &str) -> Result<(), String> {
    check_word("package family", family, "._-", 64)?;
    if family.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(format!("package family {family:?} must be lower-case"));
    }
    if names.is_empty() {
        return Err(format!("packages for {family} is empty"));
    }
    for name in names.split(' ') {
        check_word("package name", name, "._+:-", 128)?;
    }
    Ok(())
}

/// Checks an absolute path printed in suggested commands (`mount --make-rshared PATH`).
pub fn check_command_path(what: &str, path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("{what} {path:?} must be absolute"));
    }
    check_word(what, path, "/._+@:,=-", 4096)
}

/// Checks a filesystem type as `mountinfo` spells it (`ext4`, `xfs`, `fuse.sshfs`).
pub fn check_fs_type(name: &str) -> Result<(), String> {
    check_word("filesystem type", name, "._-", 64)
}

/// Checks a mount option (`noexec`, `errors=remount-ro`), as printed in a suggested fstab edit.
pub fn check_mount_option(name: &str) -> Result<(), String> {
    check_word("mount option", name, "_=.-", 255)
}

/// Checks a block device name prefix (`loop`, `dm-`) of `raw_disks.include`.
pub fn check_device_prefix(name: &str) -> Result<(), String> {
    check_word("raw_disks.include device prefix", name, "_-", 32)
}

/// Checks a service's socket: an absolute path, or `@name` in the abstract namespace, as
/// `/proc/net/unix` prints it (at most 108 bytes, `sun_path`).
pub fn check_socket(socket: &str) -> Result<(), String> {
    let name = socket.strip_prefix('@').unwrap_or(socket);
    let ok = (socket.starts_with('/') || socket.starts_with('@'))
        && socket.len() <= 108
        && !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '\\' && c != '\'' && c != '"');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "service socket {socket:?} must be an absolute path or an abstract name `@name`: \
             at most 108 printable ASCII bytes, without quotes or backslashes"
        ))
    }
}

/// Checks one environment variable of a command check: a non-empty name without `=` or NUL,
/// a value without NUL (neither could reach `execve` intact).
pub fn check_env(key: &str, value: &str) -> Result<(), String> {
    if key.is_empty() || key.contains(['=', '\0']) {
        return Err(format!(
            "env name {key:?} must be non-empty, without '=' or NUL"
        ));
    }
    if value.contains('\0') {
        return Err(format!("env {key}: the value cannot contain NUL"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn condition_types_follow_kubernetes_and_spare_the_kubelet() {
        for ok in [
            "LonghornReady",
            "example.com/StorageReady",
            "a",
            "x.y_z-9",
            &format!("{}/{}", "a".repeat(253), "B".repeat(62)),
        ] {
            assert_eq!(check_condition_type(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "Ready",
            "ready",
            "READY",
            "MemoryPressure",
            "diskpressure",
            "PIDPressure",
            "NetworkUnavailable",
            "kubernetes.io/Ready",
            "node.kubernetes.io/Foo",
            "Has Space",
            "-Lead",
            "Trail-",
            "a/b/c",
            "Upper.Com/X",
            "/X",
            "x/",
            "Esc\u{1b}[0m",
            &"A".repeat(64),
        ] {
            assert!(check_condition_type(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_valid_name_derives_a_valid_condition_type() {
        for name in [
            "longhorn",
            "nfs-client",
            "a",
            "9",
            "x.y_z",
            &"a-".repeat(29),
        ] {
            let name = name.trim_end_matches('-');
            assert_eq!(check_name(name), Ok(()), "{name}");
            let t = derived_condition_type(name);
            assert_eq!(check_condition_type(&t), Ok(()), "{name} -> {t}");
        }
        assert_eq!(derived_condition_type("nfs-client"), "NfsClientReady");
        assert!(check_name(&"a".repeat(MAX_NAME_LEN + 1)).is_err());
        assert!(check_condition_type(&derived_condition_type(&"a".repeat(MAX_NAME_LEN))).is_ok());
        for bad in ["", "-x", "a b", "x\u{1b}", "!!!", "é"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn values_printed_in_suggested_commands_are_plain_words() {
        assert_eq!(check_module("iscsi_tcp"), Ok(()));
        assert_eq!(check_module("dm-crypt"), Ok(()));
        assert_eq!(check_config_option("CONFIG_NVME_TCP"), Ok(()));
        assert_eq!(check_service("iscsid"), Ok(()));
        assert_eq!(check_service("getty@tty1.service"), Ok(()));
        assert_eq!(check_packages("debian", "open-iscsi"), Ok(()));
        assert_eq!(
            check_packages("rhel", "iscsi-initiator-utils lsscsi"),
            Ok(())
        );
        assert_eq!(
            check_packages("opensuse-leap", "libstdc++6 libfoo:amd64"),
            Ok(())
        );
        assert_eq!(check_command_path("path", "/var/lib/longhorn"), Ok(()));
        for bad in [
            "x; reboot",
            "../../etc/passwd",
            "a b",
            "$(id)",
            "a\u{1b}",
            "",
        ] {
            assert!(check_module(bad).is_err(), "{bad:?}");
            assert!(check_service(bad).is_err(), "{bad:?}");
        }
        assert!(check_config_option("NVME_TCP").is_err());
        assert!(check_config_option("CONFIG_X;Y").is_err());
        assert_eq!(check_kernel_config_entry("CONFIG_NET_NS"), Ok(()));
        assert_eq!(
            check_kernel_config_entry(
                "CONFIG_NETFILTER_XT_TARGET_REDIRECT|CONFIG_IP_NF_TARGET_REDIRECT"
            ),
            Ok(())
        );
        for bad in [
            "",
            "NET_NS",
            "CONFIG_",
            "CONFIG_net_ns",
            "CONFIG_A|",
            "|CONFIG_A",
            "CONFIG_A||CONFIG_B",
            "CONFIG_A CONFIG_B",
            "CONFIG_A;reboot",
            "CONFIG_É",
        ] {
            assert!(check_kernel_config_entry(bad).is_err(), "{bad:?}");
        }
        let many = ["CONFIG_A"; MAX_CONFIG_ALTERNATIVES + 1].join("|");
        assert!(check_kernel_config_entry(&many).is_err());
        for (fam, names) in [
            ("debian", "open-iscsi; curl x | sh"),
            ("debian", "a  b"),
            ("debian", ""),
            ("Debian", "x"),
            ("deb ian", "x"),
            ("debian", "`id`"),
        ] {
            assert!(check_packages(fam, names).is_err(), "{fam:?} {names:?}");
        }
        for bad in ["relative", "/a b", "/x;reboot", "/x$(id)", "/x\ny", "/'q'"] {
            assert!(check_command_path("path", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ids_are_printable_ascii_words() {
        for ok in [
            "exe.iscsiadm",
            "exe./usr/sbin/iscsiadm",
            "svc.foo@bar",
            "exe.g++",
            "a",
        ] {
            assert_eq!(check_id(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "a b",
            "a\u{1b}[31m",
            "a\0",
            "a\n",
            ".x",
            "é",
            &"a".repeat(129),
        ] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }
}
