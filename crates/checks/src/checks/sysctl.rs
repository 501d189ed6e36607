//! `sysctl.<name>`: a kernel parameter has the value a system needs, read from `/proc/sys`
//! through the host's procfs, and (with `persist: true`) a file the boot applies sets it too
//! — `sysctl.d` in `systemd-sysctl`'s order, then `/etc/sysctl.conf` as `sysctl --system`
//! reads it last. Without `persist`, persistence is a note only.

use hostready_host::sysctl::{self, ReadError};

use crate::facts::Facts;
use crate::finding::{Evidence, Outcome};
use crate::remedy;

/// Checks that sysctl `name` (dotted) is `want` (normalised) now, and at boot if `persist`.
pub fn check(name: &str, want: &str, persist: bool, facts: &Facts<'_>) -> Outcome {
    let mut ev = Evidence::default();
    let shown = format!(
        "/proc{}",
        sysctl::proc_path(name).unwrap_or_else(|| format!("/sys/{name}"))
    );
    let proc = match facts.proc() {
        Ok(p) => p,
        Err(why) => return Outcome::unknown(format!("cannot read {shown}: {why}"), ev),
    };
    let now = match sysctl::read_value(proc, name) {
        Ok(v) => v,
        Err(ReadError::Fs(e)) if e.is_not_found() => {
            return Outcome::unknown(
                format!(
                    "{shown} does not exist: this kernel has no {name} (or the module that \
                     provides it, such as br_netfilter for net.bridge.*, is not loaded)"
                ),
                ev,
            );
        }
        Err(ReadError::Fs(e)) => {
            return Outcome::unknown(format!("cannot read {shown}: {}", e.source), ev);
        }
        Err(e) => return Outcome::unknown(e.to_string(), ev),
    };
    ev.add(&shown, &now);
    ev.add("needed", want);
    let boot = sysctl::boot_setting(facts.fs(), name);
    let persisted: Option<Option<(String, String)>> = match &boot {
        Ok(b) => {
            ev.add(
                "boot files read",
                if b.files.is_empty() {
                    "none".to_string()
                } else {
                    b.files.join(", ")
                },
            );
            let last = b
                .last
                .as_ref()
                .map(|(f, a)| (format!("{f}:{}", a.line), a.value.clone()));
            match &last {
                Some((at, v)) => ev.add("set at boot", format!("{v} ({at})")),
                None => ev.add(
                    "set at boot",
                    "by no file: a reboot restores the kernel default",
                ),
            };
            Some(last)
        }
        Err(why) => {
            ev.add("boot files", why);
            None
        }
    };
    let conflicting = match &persisted {
        Some(Some((at, v))) if v != want => Some(format!("{at} sets {v}")),
        _ => None,
    };
    if now != want {
        return Outcome::fail(
            format!("{name} is {now}; {want} is needed"),
            ev,
            remedy::set_sysctl(name, want, conflicting.as_deref(), facts.os()),
        );
    }
    match persisted {
        Some(Some((_, v))) if v == want => {
            Outcome::pass(format!("{name} is {want}, also at boot"), ev)
        }
        Some(_) if persist => {
            let why = match &conflicting {
                Some(c) => format!("but {c}, so a reboot changes it"),
                None => "but no boot file sets it, so a reboot may reset it".into(),
            };
            Outcome::fail(
                format!("{name} is {want} now, {why}"),
                ev,
                remedy::set_sysctl(name, want, conflicting.as_deref(), facts.os()),
            )
        }
        None if persist => Outcome::unknown(
            format!(
                "{name} is {want} now; whether the boot keeps it is unknown: {}",
                boot.err().unwrap_or_default()
            ),
            ev,
        ),
        _ => Outcome::pass(format!("{name} is {want}"), ev),
    }
}
