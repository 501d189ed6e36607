//! `nfs.client` and `nfs.defaultvers`: the kernel speaks NFSv4, and `nfsmount.conf` does not
//! force an older default (longhorn/longhorn#9830).

use hostready_host::kernel::ConfigValue;

use crate::facts::Facts;
use crate::finding::{Evidence, Outcome, Remediation};
use crate::remedy;

/// The NFSv4 options shown as evidence. Only `CONFIG_NFS_V4` is a tristate (it builds the
/// `nfsv4` module or builds it in); `CONFIG_NFS_V4_1` and `CONFIG_NFS_V4_2` are bool options
/// of that module, so `=y` on them says nothing about whether NFSv4 is built in.
const NFS4_OPTIONS: [&str; 3] = ["CONFIG_NFS_V4", "CONFIG_NFS_V4_1", "CONFIG_NFS_V4_2"];

/// Checks NFSv4 client support: `nfs4` registered in `/proc/filesystems`, `CONFIG_NFS_V4=y`
/// (built in), or `CONFIG_NFS_V4=m` and the `nfsv4` module loaded (Longhorn's rule), checked
/// like any other kernel module — loadable fails with modprobe. A config that says built in
/// while the running kernel has no `nfs4` registered fails: the config describes another kernel.
pub fn client(facts: &Facts<'_>) -> Outcome {
    let mut ev = Evidence::default();
    // Some(false): read, and no nfs4; None: not read.
    let mut registered = None;
    if let Ok(proc) = facts.proc() {
        match proc
            .read_to_string_bounded("/filesystems", hostready_host::procfs::MAX_PROC_FILE_BYTES)
        {
            Ok(fs) => {
                if fs
                    .lines()
                    .any(|l| l.split_whitespace().last() == Some("nfs4"))
                {
                    ev.add("source", "/proc/filesystems");
                    return Outcome::pass(
                        "the kernel has NFSv4 registered (nfs4 in /proc/filesystems)",
                        ev,
                    );
                }
                ev.add("/proc/filesystems", "no nfs4");
                registered = Some(false);
            }
            Err(e) => {
                ev.add("/proc/filesystems", format!("unreadable: {}", e.source));
            }
        }
    }
    let cfg = match facts.kernel_config() {
        Ok(c) => c,
        Err(why) => {
            return Outcome::unknown(
                format!("cannot tell NFSv4 support: nfs4 is not registered and {why}"),
                ev,
            );
        }
    };
    ev.add("config source", &cfg.source);
    for o in NFS4_OPTIONS {
        ev.add(o, cfg.get(o).to_string());
    }
    match cfg.get("CONFIG_NFS_V4") {
        ConfigValue::Yes if registered == Some(false) => Outcome::fail(
            format!(
                "{} says the NFSv4 client is built in (CONFIG_NFS_V4=y), but the running kernel \
                 has no nfs4 filesystem registered (/proc/filesystems), which a built-in NFSv4 \
                 client always registers at boot: the config describes another kernel",
                cfg.source
            ),
            ev,
            remedy::missing_module(
                "nfsv4",
                Some("CONFIG_NFS_V4"),
                facts.os(),
                facts.release().unwrap_or("unknown"),
            ),
        ),
        ConfigValue::Yes => {
            Outcome::pass("NFSv4 client built into the kernel (CONFIG_NFS_V4=y)", ev)
        }
        ConfigValue::Module => {
            ev.add(
                "note",
                "CONFIG_NFS_V4_1 and CONFIG_NFS_V4_2 are options of the nfsv4 module, not built-ins of their own",
            );
            let module = super::kmod::check("nfsv4", Some("CONFIG_NFS_V4"), facts);
            ev.0.extend(module.evidence.0);
            Outcome {
                message: format!(
                    "NFSv4 client is the nfsv4 module (CONFIG_NFS_V4=m): {}",
                    module.message
                ),
                evidence: ev,
                ..module
            }
        }
        ConfigValue::NotSet | ConfigValue::Other(_) => {
            let release = facts.release().unwrap_or("unknown").to_string();
            Outcome::fail(
                "the kernel is built without an NFSv4 client",
                ev,
                remedy::missing_module("nfsv4", Some("CONFIG_NFS_V4"), facts.os(), &release),
            )
        }
    }
}

/// Checks that `Defaultvers` (and `Nfsvers`), when set globally in `nfsmount.conf`, is allowed.
pub fn defaultvers(allowed: &[String], facts: &Facts<'_>) -> Outcome {
    let mut ev = Evidence::default();
    let files = match facts.config_with_dropins("/etc/nfsmount.conf", "/etc/nfsmount.conf.d") {
        Ok(f) => f,
        Err(why) => {
            return Outcome::unknown(format!("cannot tell the default NFS version: {why}"), ev);
        }
    };
    // Later files override earlier ones, as nfs-utils reads them.
    let mut setting: Option<(String, String, String)> = None;
    for f in &files {
        match facts.fs().read_to_string(f) {
            Ok(text) => {
                ev.add("read", f);
                if let Some((k, v)) = global_version(&text) {
                    setting = Some((f.clone(), k, v));
                }
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Outcome::unknown(format!("cannot read {f}: {}", e.source), ev),
        }
    }
    let Some((file, key, value)) = setting else {
        return Outcome::pass(
            "no default NFS version is forced; mount.nfs negotiates NFSv4.2 first",
            ev,
        );
    };
    ev.add(format!("{file} {key}"), &value);
    if allowed.contains(&value) {
        return Outcome::pass(format!("{key}={value} in {file}"), ev);
    }
    Outcome::fail(
        format!(
            "{key}={value} in {file}; Longhorn needs NFSv4 ({})",
            allowed.join(", ")
        ),
        ev,
        Remediation {
            summary: format!(
                "set {key}=4.2 (or remove it) in the [ NFSMount_Global_Options ] section of {file}"
            ),
            commands: vec![format!("sed -i 's/^\\s*{key}\\s*=.*/{key}=4.2/I' {file}")],
            ..Remediation::default()
        },
    )
}

/// Returns the `Defaultvers` or `Nfsvers` key and value of the global section, if set; keys are
/// case-insensitive and the global section is the one before any `[ Server ... ]`/`[ MountPoint ... ]`.
pub fn global_version(text: &str) -> Option<(String, String)> {
    let mut global = true;
    let mut found = None;
    for raw in text.lines() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if let Some(section) = line.strip_prefix('[') {
            global = section
                .trim_end_matches(']')
                .trim()
                .eq_ignore_ascii_case("NFSMount_Global_Options");
            continue;
        }
        if !global {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let k = k.trim();
        if k.eq_ignore_ascii_case("Defaultvers") || k.eq_ignore_ascii_case("Nfsvers") {
            found = Some((k.to_string(), v.trim().to_string()));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nfsmount_conf_sections() {
        let debian_default = "# Defaultvers=4\n[ NFSMount_Global_Options ]\n# Defaultvers=4\n";
        assert_eq!(global_version(debian_default), None);
        let forced = "[ NFSMount_Global_Options ]\nDefaultvers=3\n[ Server \"nfs.example\" ]\nDefaultvers=4.2\n";
        assert_eq!(
            global_version(forced),
            Some(("Defaultvers".into(), "3".into()))
        );
        let lower = "[ NFSMount_Global_Options ]\n  defaultvers = 4.1 \n";
        assert_eq!(
            global_version(lower),
            Some(("defaultvers".into(), "4.1".into()))
        );
        let server_only = "[ Server \"x\" ]\nDefaultvers=3\n";
        assert_eq!(global_version(server_only), None);
    }
}
