//! `kmod.<name>`: a kernel module is loaded or built in. A module file that is present but not
//! loaded fails with the `modprobe` line; without module lists, the kernel config decides.

use hostready_host::kernel::{ConfigValue, ModuleState};

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
            "cannot tell whether {name} is available: the module lists and kernel config could not be read"
        ),
        ev,
    )
}
