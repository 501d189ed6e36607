//! `kmod.<name>`: a kernel module is loaded or built in. A module file that is present but not
//! loaded fails with the `modprobe` line; without module lists, the kernel config decides. A
//! built-in claim the running kernel contradicts (no `/sys/module/<m>` where the kernel always
//! creates one) fails and says so.
//!
//! `kmod.<m>.<p>` and `kmod.<m>.version`: a module parameter's running value (sysfs, with the
//! kernel command line and `modprobe.d` as what sets it at boot) and a module's version.

use std::cmp::Ordering;

use hostready_host::kernel::{ConfigValue, ModuleState};
use hostready_host::{FileKind, modparam};

use crate::facts::Facts;
use crate::finding::{Evidence, Outcome};
use crate::remedy;

/// Checks module `name`; `config` is the `CONFIG_` option that builds it, used as a fallback.
pub fn check(name: &str, config: Option<&str>, facts: &Facts<'_>) -> Outcome {
    let mut ev = Evidence::default();
    let release = match facts.release() {
        Ok(r) => r.to_string(),
        Err(why) => return Outcome::unknown(format!("kernel release unknown: {why}"), ev),
    };
    ev.add("kernel", &release);
    let modules = facts.modules();
    let no_module_support = modules.loaded.is_none()
        && facts
            .kernel_config()
            .is_ok_and(|c| c.get("CONFIG_MODULES") != ConfigValue::Yes);
    if no_module_support {
        ev.add(
            "modules",
            "the kernel is built without module support (CONFIG_MODULES is not set)",
        );
    } else {
        for gap in &modules.gaps {
            ev.add("not read", gap);
        }
    }
    match modules.state(facts.fs(), name) {
        Some(ModuleState::Loaded) => {
            ev.add("source", "/proc/modules");
            return Outcome::pass(format!("{name} is loaded"), ev);
        }
        Some(ModuleState::Builtin) => {
            ev.add("source", format!("{}/modules.builtin", modules.modules_dir));
            if let Some(contradiction) = builtin_contradicted(name, facts, &mut ev) {
                return contradiction;
            }
            return Outcome::pass(format!("{name} is built into the kernel"), ev);
        }
        Some(ModuleState::Loadable { path }) => {
            ev.add("module file", &path);
            return Outcome::fail(
                format!("{name} is available ({path}) but not loaded"),
                ev,
                remedy::load_module(name, facts.os()),
            );
        }
        Some(ModuleState::Absent) => {}
        None => {}
    }
    // The module lists did not find it (or could not be read): ask the kernel config.
    if config.is_some() {
        if let Err(why) = facts.kernel_config() {
            ev.add("kernel config", why);
        }
    }
    let cfg = config.and_then(|opt| facts.kernel_config().ok().map(|c| (opt, c)));
    if let Some((opt, cfg)) = cfg {
        ev.add("config source", &cfg.source);
        let value = cfg.get(opt);
        ev.add(opt, value.to_string());
        match value {
            ConfigValue::Yes => {
                if let Some(contradiction) = builtin_contradicted(name, facts, &mut ev) {
                    return contradiction;
                }
                return Outcome::pass(format!("{name} is built into the kernel ({opt}=y)"), ev);
            }
            ConfigValue::Module if modules.loaded.is_some() => {
                // Loaded modules were read and it is not among them.
                let fix = remedy::load_module(name, facts.os());
                return Outcome::fail(
                    format!("{name} is built as a module ({opt}=m) but not loaded"),
                    ev,
                    fix,
                );
            }
            ConfigValue::NotSet | ConfigValue::Other(_) => {
                let fix = remedy::missing_module(name, config, facts.os(), &release);
                return Outcome::fail(
                    format!("the kernel is built without {name} ({opt} is not set)"),
                    ev,
                    fix,
                );
            }
            ConfigValue::Module => {}
        }
    }
    if modules.state(facts.fs(), name) == Some(ModuleState::Absent) {
        let fix = remedy::missing_module(name, config, facts.os(), &release);
        return Outcome::fail(
            format!("{name} is not loaded, not built in, and has no module file for {release}"),
            ev,
            fix,
        );
    }
    Outcome::unknown(
        format!(
            "cannot tell whether {name} is available: {}",
            what_was_missing(name, config, facts)
        ),
        ev,
    )
}

/// Says what kept [`check`] from a verdict — the sources that were missing, never the ones
/// that were read (a config that says `=m` was read, and the loaded list is what is missing).
fn what_was_missing(name: &str, config: Option<&str>, facts: &Facts<'_>) -> String {
    let modules = facts.modules();
    let mut parts = Vec::new();
    let cfg = facts.kernel_config();
    match (config, cfg) {
        (Some(opt), Ok(c)) if c.get(opt) == ConfigValue::Module => parts.push(format!(
            "{opt}=m in {} says it is built as a module, so only the loaded-module list can tell",
            c.source
        )),
        (Some(_), Ok(_)) => {}
        (Some(_), Err(why)) => parts.push(why.to_string()),
        (None, _) => parts.push(format!(
            "the profile names no CONFIG_ option for {name} to ask the kernel config"
        )),
    }
    if modules.loaded.is_none() {
        parts.push("/proc/modules was not read (the loaded modules are unknown)".to_string());
    }
    if modules.builtin.is_none() {
        parts.push(format!(
            "{}/modules.builtin was not read",
            modules.modules_dir
        ));
    }
    if modules.loadable.is_none() || !modules.loadable_complete {
        parts.push(format!(
            "the module files of {} are not fully known",
            modules.modules_dir
        ));
    }
    parts.join("; ")
}

/// Returns a failing outcome when the running kernel contradicts a built-in claim: the
/// kernel creates `/sys/module/<m>/version` at boot for every built-in module that has a
/// version (`modules.builtin.modinfo` says which), so its absence — in a sysfs whose
/// `/sys/module` exists and lists other modules — proves the module is not in this kernel.
/// Without that proof (most built-ins have no sysfs directory) it says nothing.
fn builtin_contradicted(name: &str, facts: &Facts<'_>, ev: &mut Evidence) -> Option<Outcome> {
    let module = hostready_host::kernel::normalize_module(name);
    let listed = facts.fs().read_dir("/sys/module").ok()?;
    if listed.is_empty() {
        return None;
    }
    let release = facts.release().ok()?;
    // The cheap test first: most built-ins that are there have no directory either, so the
    // modinfo stream is read only when the directory is absent.
    match facts.fs().stat(format!("/sys/module/{module}")) {
        Err(e) if e.is_not_found() => {}
        _ => return None,
    }
    let modinfo = facts
        .fs()
        .open_file(format!("/lib/modules/{release}/modules.builtin.modinfo"))
        .ok()?;
    if !modparam::builtin_has_version_in(modinfo, &module).ok()? {
        return None;
    }
    ev.add(
        "running kernel",
        format!("no /sys/module/{module}, though modules.builtin.modinfo gives it a version"),
    );
    Some(Outcome::fail(
        format!(
            "{name} is listed as built in, but the running kernel has no /sys/module/{module}, which it creates for every built-in module with a version: the module lists and config describe another kernel than the one running"
        ),
        ev.clone(),
        crate::finding::Remediation {
            summary: format!(
                "boot the kernel these files describe, or install the modules of the running kernel {release}"
            ),
            ..Default::default()
        },
    ))
}

/// Checks that `module`'s `parameter` is `want` in the running kernel; when the module is not
/// loaded, what the boot would give it (the kernel command line, `modprobe.d`) decides.
pub fn parameter(module: &str, param: &str, want: &str, facts: &Facts<'_>) -> Outcome {
    let mut ev = Evidence::default();
    let module = hostready_host::kernel::normalize_module(module);
    let path = modparam::parameter_path(&module, param);
    // The wanted value, as data: the fix plan's `options` step reads it from here.
    ev.add("needed", want);
    let state = facts.modules().state(facts.fs(), &module);
    let builtin = state == Some(ModuleState::Builtin);
    // What sets it at boot: the command line for any module, modprobe.d for loadable ones.
    let cmdline = facts
        .proc()
        .ok()
        .and_then(|p| {
            p.read_to_string_bounded("/cmdline", modparam::MAX_CMDLINE_BYTES)
                .ok()
        })
        .and_then(|c| modparam::cmdline_parameter(&c, &module, param));
    if let Some(v) = &cmdline {
        ev.add("kernel command line", format!("{module}.{param}={v}"));
    }
    let modprobe = if builtin {
        None
    } else {
        match modparam::modprobe_setting(facts.fs(), &module, param) {
            Ok(Some((file, line, v))) => {
                ev.add("modprobe.d", format!("{v} ({file}:{line})"));
                Some(v)
            }
            Ok(None) => None,
            Err(why) => {
                ev.add("modprobe.d", why);
                None
            }
        }
    };
    let at_boot = cmdline.clone().or(modprobe.clone());
    let fix = |writable: bool| {
        remedy::module_parameter(&module, param, want, builtin, writable, facts.os())
    };
    match modparam::read_parameter(facts.fs(), &module, param) {
        Ok(now) => {
            ev.add(&path, &now);
            let writable = facts.fs().stat(&path).is_ok_and(|s| s.mode & 0o200 != 0);
            if !modparam::value_matches(&now, want) {
                return Outcome::fail(
                    format!("{module}.{param} is {now}; {want} is needed"),
                    ev,
                    fix(writable),
                );
            }
            match at_boot {
                Some(v) if !modparam::value_matches(&v, want) => Outcome::warn(
                    format!("{module}.{param} is {now}, but the boot configuration sets {v}"),
                    ev,
                    Some(fix(writable)),
                ),
                Some(_) => Outcome::pass(format!("{module}.{param} is {now}, also at boot"), ev),
                None => Outcome::pass(format!("{module}.{param} is {now}"), ev),
            }
        }
        Err(e) if e.is_not_found() => {
            let module_dir = format!("/sys/module/{module}");
            if facts
                .fs()
                .stat(&module_dir)
                .is_ok_and(|s| s.kind == FileKind::Dir)
            {
                return Outcome::unknown(
                    format!(
                        "{module} is in the running kernel but {path} does not exist: this version has no parameter {param}, or does not show it in sysfs"
                    ),
                    ev,
                );
            }
            if facts
                .fs()
                .read_dir("/sys/module")
                .map_or(true, |l| l.is_empty())
            {
                return Outcome::unknown(
                    format!("cannot read {path}: the host's /sys/module is not in the root"),
                    ev,
                );
            }
            match state {
                Some(ModuleState::Absent) => Outcome::fail(
                    format!(
                        "{module} is not available to this kernel, so {module}.{param} cannot be {want}"
                    ),
                    ev,
                    fix(false),
                ),
                _ => match at_boot {
                    Some(v) if modparam::value_matches(&v, want) => Outcome::pass(
                        format!(
                            "{module} is not loaded; when it loads, the boot configuration gives {param}={v}"
                        ),
                        ev,
                    ),
                    Some(v) => Outcome::fail(
                        format!(
                            "{module} is not loaded; when it loads, the boot configuration gives {param}={v}, not {want}"
                        ),
                        ev,
                        fix(false),
                    ),
                    None => Outcome::unknown(
                        format!(
                            "{module} is not loaded and nothing sets {param} at boot: its value when it loads is the module's default, which hostready does not read"
                        ),
                        ev,
                    ),
                },
            }
        }
        Err(e) => Outcome::unknown(format!("cannot read {path}: {}", e.source), ev),
    }
}

/// Checks that `module`'s version is at least `min`: `/sys/module/<m>/version`, or for DRBD
/// the `version:` line of `/proc/drbd`.
pub fn version(module: &str, min: &str, facts: &Facts<'_>) -> Outcome {
    let mut ev = Evidence::default();
    let module = hostready_host::kernel::normalize_module(module);
    let sys = format!("/sys/module/{module}/version");
    let found = match modparam::read_version(facts.fs(), &module) {
        Ok(v) => {
            ev.add(&sys, &v);
            Some(v)
        }
        Err(e) if e.is_not_found() => None,
        Err(e) => return Outcome::unknown(format!("cannot read {sys}: {}", e.source), ev),
    };
    let found = match (found, module.as_str()) {
        (Some(v), _) => v,
        (None, "drbd") => match facts.proc().map(modparam::read_proc_drbd) {
            Ok(Ok(Some(v))) => {
                ev.add("/proc/drbd", &v);
                v
            }
            Ok(Ok(None)) => {
                return Outcome::unknown("/proc/drbd has no version: line", ev);
            }
            Ok(Err(e)) if e.is_not_found() => return not_loaded(&module, min, facts, ev),
            Ok(Err(e)) => {
                return Outcome::unknown(format!("cannot read /proc/drbd: {}", e.source), ev);
            }
            Err(why) => return Outcome::unknown(format!("cannot read /proc/drbd: {why}"), ev),
        },
        (None, _) => {
            if facts.fs().stat(format!("/sys/module/{module}")).is_ok() {
                return Outcome::unknown(
                    format!("{module} is loaded but shows no version ({sys} does not exist)"),
                    ev,
                );
            }
            return not_loaded(&module, min, facts, ev);
        }
    };
    ev.add("needed", min);
    match modparam::compare_versions(&found, min) {
        Some(Ordering::Less) => Outcome::fail(
            format!("{module} is version {found}; {min} or newer is needed"),
            ev,
            remedy::module_upgrade(&module, min),
        ),
        Some(_) => Outcome::pass(format!("{module} is version {found} (at least {min})"), ev),
        None => Outcome::unknown(
            format!(
                "{module} reports version {found:?}, which is not a dotted number to compare with {min}"
            ),
            ev,
        ),
    }
}

/// The version of a module that is not loaded: unknown if it could be loaded, failing if the
/// kernel has no such module at all.
fn not_loaded(module: &str, min: &str, facts: &Facts<'_>, ev: Evidence) -> Outcome {
    match facts.modules().state(facts.fs(), module) {
        Some(ModuleState::Absent) => Outcome::fail(
            format!("{module} is not loaded and this kernel has no {module} module"),
            ev,
            remedy::module_upgrade(module, min),
        ),
        Some(ModuleState::Loadable { path }) => Outcome::unknown(
            format!(
                "{module} is not loaded: its version shows once it is (modprobe {module}; the file is {path})"
            ),
            ev,
        ),
        _ => Outcome::unknown(
            format!("{module} is not loaded (no /sys/module/{module}): its version is unknown"),
            ev,
        ),
    }
}
