//! `kernel.version`: the running kernel is new enough and not one of the releases known to
//! corrupt or hang storage workloads. `kernel.config`: it was built with the options a system
//! needs (`y` or `m`) and without those it forbids, read from the kernel config the module
//! checks read (the checks' facts: once per run, bounded by `MAX_CONFIG_BYTES`).

use hostready_host::kernel::{ConfigValue, version_triple};
use serde::{Serialize, Serializer};

use crate::facts::Facts;
use crate::finding::{Evidence, Outcome, Remediation};

/// The oldest kernel a profile accepts (`kernel_version.min`), parsed when the profile loads:
/// as written, and as numbers to compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinKernel {
    /// As the profile wrote it (`5.8`); what messages and listings show.
    pub text: String,
    /// `(major, minor, patch)`, patch 0 when not given.
    pub version: (u32, u32, u32),
}

impl MinKernel {
    /// Parses `kernel_version.min`; the error says what is wrong with it.
    pub fn parse(s: &str) -> Result<MinKernel, String> {
        let version = version_triple(s)
            .ok_or_else(|| format!("kernel_version.min {s:?} is not a version like 5.8"))?;
        Ok(MinKernel {
            text: s.to_string(),
            version,
        })
    }
}

/// Serialized as the profile wrote it.
impl Serialize for MinKernel {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// One `kernel_version.known_bad` entry, parsed when the profile loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRelease {
    /// As the profile wrote it; what messages and listings show.
    pub text: String,
    pub rule: KnownBad,
}

impl BadRelease {
    /// Parses a known-bad entry; the error says what is wrong with it.
    pub fn parse(s: &str) -> Result<BadRelease, String> {
        Ok(BadRelease {
            text: s.to_string(),
            rule: parse_known_bad(s)?,
        })
    }
}

/// Serialized as the profile wrote it.
impl Serialize for BadRelease {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// A known-bad entry: one release (prefix up to a separator) or a range of ABI numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KnownBad {
    /// `6.5.0-21` matches `6.5.0-21`, `6.5.0-21-generic`, but not `6.5.0-210`.
    Release(String),
    /// `5.15.0-94..5.15.0-99`: base `5.15.0`, ABI 94 to 99 inclusive.
    AbiRange { base: String, from: u32, to: u32 },
}

/// Parses a known-bad entry; the error says what is wrong with it.
pub fn parse_known_bad(s: &str) -> Result<KnownBad, String> {
    let Some((a, b)) = s.split_once("..") else {
        return if version_triple(s).is_some() {
            Ok(KnownBad::Release(s.to_string()))
        } else {
            Err(format!("known_bad entry {s:?} is not a kernel release"))
        };
    };
    let split = |x: &str| -> Option<(String, u32)> {
        let (base, abi) = x.split_once('-')?;
        Some((base.to_string(), abi.parse().ok()?))
    };
    match (split(a), split(b)) {
        (Some((ba, from)), Some((bb, to))) if ba == bb && from <= to => {
            Ok(KnownBad::AbiRange { base: ba, from, to })
        }
        _ => Err(format!(
            "known_bad range {s:?} must look like 5.15.0-94..5.15.0-99 (same base, ascending)"
        )),
    }
}

impl KnownBad {
    /// Returns true if and only if `release` is this bad release.
    pub fn matches(&self, release: &str) -> bool {
        match self {
            KnownBad::Release(r) => release.strip_prefix(r.as_str()).is_some_and(|rest| {
                rest.is_empty() || !rest.starts_with(|c: char| c.is_ascii_digit())
            }),
            KnownBad::AbiRange { base, from, to } => {
                let Some(rest) = release
                    .strip_prefix(base.as_str())
                    .and_then(|r| r.strip_prefix('-'))
                else {
                    return false;
                };
                let abi: String = rest.chars().take_while(char::is_ascii_digit).collect();
                abi.parse::<u32>().is_ok_and(|n| (*from..=*to).contains(&n))
            }
        }
    }
}

/// Checks the running kernel against `min` and `known_bad`.
pub fn version(min: &MinKernel, known_bad: &[BadRelease], facts: &Facts<'_>) -> Outcome {
    let mut ev = Evidence::default();
    let release = match facts.release() {
        Ok(r) => r,
        Err(why) => return Outcome::unknown(format!("kernel release unknown: {why}"), ev),
    };
    let (min, need) = (min.text.as_str(), min.version);
    ev.add("release", release);
    ev.add("minimum", min);
    let Some(have) = version_triple(release) else {
        return Outcome::unknown(
            format!("cannot compare kernel release {release:?} with {min}"),
            ev,
        );
    };
    let upgrade = Remediation {
        summary: format!(
            "upgrade the kernel to {min} or newer (a current release of your distro's kernel), then reboot"
        ),
        ..Remediation::default()
    };
    if have < need {
        return Outcome::fail(format!("kernel {release} is older than {min}"), ev, upgrade);
    }
    for BadRelease { text: bad, rule } in known_bad {
        if rule.matches(release) {
            ev.add("known bad", bad);
            let fix = Remediation {
                summary: format!(
                    "move off kernel {release} (known bad: {bad}) to a fixed release, then reboot"
                ),
                ..upgrade
            };
            return Outcome::fail(
                format!("kernel {release} is a known-bad release ({bad})"),
                ev,
                fix,
            );
        }
    }
    Outcome::pass(
        format!("kernel {release} (at least {min}, not known bad)"),
        ev,
    )
}

/// Checks the kernel config: each `require` entry (`CONFIG_A`, or alternatives
/// `CONFIG_A|CONFIG_B`, any one of which will do) is `y` or `m`, and no `forbid` option is `y`
/// or `m` — system-validators' rule, where `=m` counts as enabled and any other value (a
/// number, a string) neither satisfies a requirement nor breaks a prohibition. Whether an `=m`
/// option's module file is installed is the `kernel_module` family's question, not this one.
pub fn config(require: &[String], forbid: &[String], facts: &Facts<'_>) -> Outcome {
    let mut ev = Evidence::default();
    let cfg = match facts.kernel_config() {
        Ok(c) => c,
        Err(why) => {
            return Outcome::unknown(format!("cannot check kernel build options: {why}"), ev);
        }
    };
    ev.add("config source", &cfg.source);
    let enabled = |v: &ConfigValue| matches!(v, ConfigValue::Yes | ConfigValue::Module);
    let mut missing = Vec::new();
    for entry in require {
        let values: Vec<(&str, ConfigValue)> =
            entry.split('|').map(|name| (name, cfg.get(name))).collect();
        match values.iter().find(|(_, v)| enabled(v)) {
            Some((name, v)) => {
                ev.add(*name, v.to_string());
            }
            None => {
                for (name, v) in &values {
                    ev.add(*name, v.to_string());
                }
                let shown: Vec<String> = values.iter().map(|(n, v)| format!("{n} {v}")).collect();
                missing.push(shown.join(" or "));
            }
        }
    }
    let mut set = Vec::new();
    for name in forbid {
        let v = cfg.get(name);
        if enabled(&v) {
            set.push(format!("{name}={v}"));
        }
        ev.add(name.as_str(), v.to_string());
    }
    if missing.is_empty() && set.is_empty() {
        let mut parts = Vec::new();
        if !require.is_empty() {
            parts.push(format!("{} required option(s) y or m", require.len()));
        }
        if !forbid.is_empty() {
            parts.push(format!("none of {} forbidden option(s) set", forbid.len()));
        }
        return Outcome::pass(format!("{} ({})", parts.join(", "), cfg.source), ev);
    }
    let mut wrong = Vec::new();
    if !missing.is_empty() {
        wrong.push(format!(
            "kernel options not built (y or m needed): {}",
            missing.join(", ")
        ));
    }
    if !set.is_empty() {
        wrong.push(format!(
            "kernel options forbidden but set: {}",
            set.join(", ")
        ));
    }
    let fix = Remediation {
        summary: "boot a kernel built with the required options (and without the forbidden ones): your distro's standard kernel package, or a rebuilt kernel".into(),
        notes: vec![
            "build options are fixed when the kernel is compiled: no module load, sysctl or boot parameter changes them; reboot into the new kernel afterwards".into(),
            format!("read from {}", cfg.source),
        ],
        ..Remediation::default()
    };
    Outcome::fail(wrong.join("; "), ev, fix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_bad_matching() {
        let r = parse_known_bad("5.15.0-94..5.15.0-99").unwrap();
        assert!(r.matches("5.15.0-94-generic"));
        assert!(r.matches("5.15.0-99"));
        assert!(!r.matches("5.15.0-100-generic"));
        assert!(!r.matches("5.15.0-93-generic"));
        assert!(!r.matches("5.15.01-94"));
        let e = parse_known_bad("6.5.0-21").unwrap();
        assert!(e.matches("6.5.0-21-generic"));
        assert!(!e.matches("6.5.0-210-generic"));
        let e = parse_known_bad("6.5.6").unwrap();
        assert!(e.matches("6.5.6"));
        assert!(e.matches("6.5.6-arch1-1"));
        assert!(!e.matches("6.5.60"));
        assert!(parse_known_bad("5.15.0-99..5.15.0-94").is_err());
        assert!(parse_known_bad("banana").is_err());
    }
}
