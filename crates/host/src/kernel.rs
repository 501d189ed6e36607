//! The running kernel: its release, which modules are loaded, built in or loadable, and its
//! build configuration — read the way node-feature-discovery does, with no `modprobe` or `kmod`.
//!
//! Memory bounds: each list is read with a cap ([`MAX_PROC_MODULES_BYTES`],
//! [`MAX_MODULES_BUILTIN_BYTES`], [`MAX_MODULES_DEP_BYTES`]) and parsed into a set no larger
//! than the text; the kernel config is at most [`MAX_CONFIG_BYTES`] of text, `/proc/config.gz`
//! decompressed as a stream (32 KiB window) that stops at the cap. A source over its cap is an
//! error ("too large"), never a prefix taken for the whole: options past a cut would read as
//! "not set".

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use serde::Serialize;

use crate::{FsError, Root};

/// Returns a module name in the kernel's canonical form: `/proc/modules` uses `_` where
/// `modules.builtin` and file names may use `-`.
pub fn normalize_module(name: &str) -> String {
    name.replace('-', "_")
}

/// Returns the names of loaded modules from `/proc/modules` (first column), normalised.
pub fn parse_proc_modules(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(normalize_module)
        .collect()
}

/// Returns the module name of a path such as `kernel/drivers/scsi/iscsi_tcp.ko.zst`.
pub fn module_name_of_path(path: &str) -> Option<String> {
    let file = path.rsplit('/').next()?;
    let stem = ["", ".gz", ".xz", ".zst", ".bz2"]
        .iter()
        .find_map(|ext| file.strip_suffix(ext).and_then(|f| f.strip_suffix(".ko")))?;
    Some(normalize_module(stem))
}

/// Returns the modules listed in `modules.builtin` (one path per line), normalised.
pub fn parse_modules_builtin(text: &str) -> BTreeSet<String> {
    text.lines().filter_map(module_name_of_path).collect()
}

/// Returns the loadable modules listed in `modules.dep`, from name to path relative to
/// `lib/modules/<release>`.
pub fn parse_modules_dep(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let path = l.split(':').next()?.trim();
            Some((module_name_of_path(path)?, path.to_string()))
        })
        .collect()
}

/// A kernel configuration value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfigValue {
    /// `=y`: built in.
    Yes,
    /// `=m`: built as a module.
    Module,
    /// `# CONFIG_X is not set`.
    NotSet,
    /// Anything else (numbers, strings).
    Other(String),
}

/// Parses one value as it appears after `CONFIG_X=`.
fn parse_value(v: &str) -> ConfigValue {
    match v {
        "y" => ConfigValue::Yes,
        "m" => ConfigValue::Module,
        "n" => ConfigValue::NotSet,
        other => ConfigValue::Other(other.trim_matches('"').to_string()),
    }
}

impl std::fmt::Display for ConfigValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigValue::Yes => f.write_str("y"),
            ConfigValue::Module => f.write_str("m"),
            ConfigValue::NotSet => f.write_str("not set"),
            ConfigValue::Other(v) => f.write_str(v),
        }
    }
}

/// The kernel configuration and where it was found.
///
/// Kept as text and searched per option: a distro config has ~10,000 lines and a check asks
/// for a handful, so building a map of every line would cost more than all the checks together.
#[derive(Debug, Clone)]
pub struct KernelConfig {
    pub source: String,
    text: String,
}

impl KernelConfig {
    /// Wraps the text of a `.config` read from `source`.
    pub fn new(source: impl Into<String>, text: String) -> KernelConfig {
        KernelConfig {
            source: source.into(),
            text,
        }
    }

    /// Returns the value of `option` (e.g. `CONFIG_NFS_V4`); absent options are not set, as
    /// `make` treats them. The last assignment wins, as in Kconfig.
    pub fn get(&self, option: &str) -> ConfigValue {
        let mut value = ConfigValue::NotSet;
        // An empty name (a profile's `config: ""`) would match at every byte offset, including
        // inside multi-byte characters, where slicing the text panics; it names no option.
        if option.is_empty() {
            return value;
        }
        let assign = format!("{option}=");
        let unset = format!("# {option} is not set");
        let bytes = self.text.as_bytes();
        for at in memchr::memmem::find_iter(bytes, option.as_bytes()) {
            // Only whole lines: the option at a line start, or in a "# ... is not set" comment.
            let line_start = self.text[..at].rfind('\n').map_or(0, |i| i + 1);
            let line_end = self.text[at..]
                .find('\n')
                .map_or(self.text.len(), |i| at + i);
            let line = self.text[line_start..line_end].trim_end();
            if let Some(v) = line.strip_prefix(assign.as_str()) {
                value = parse_value(v);
            } else if line == unset {
                value = ConfigValue::NotSet;
            }
        }
        value
    }
}

/// The largest kernel config read (plain or decompressed): distro configs are ~300 KiB, and
/// even `allyesconfig` stays under 1 MiB.
pub const MAX_CONFIG_BYTES: u64 = 2 << 20;

/// The largest `/proc/modules` read: ~60 bytes per loaded module.
pub const MAX_PROC_MODULES_BYTES: u64 = 1 << 20;

/// The largest `modules.builtin` read: ~50 bytes per built-in module.
pub const MAX_MODULES_BUILTIN_BYTES: u64 = 2 << 20;

/// The largest `modules.dep` read: distro kernels ship ~1 MiB.
pub const MAX_MODULES_DEP_BYTES: u64 = 4 << 20;

/// Reads the kernel release from the procfs (`sys/kernel/osrelease`).
pub fn release(proc: &Root) -> Result<String, FsError> {
    // A release string is at most 64 bytes (`__NEW_UTS_LEN`).
    proc.read_to_string_bounded("/sys/kernel/osrelease", 4096)
        .map(|s| s.trim().to_string())
}

/// Reads the kernel configuration from, in order, `/boot/config-<release>`,
/// `/lib/modules/<release>/config` and `/proc/config.gz`; returns the places tried, each with
/// why it was not used, when none is readable. The plain files, named after the running
/// release, say the same as the kernel's own copy and cost no decompression, so they come
/// first. Called once per run (the checks' facts keep the result).
pub fn read_config(
    fs: &Root,
    proc: Option<&Root>,
    release: &str,
) -> Result<KernelConfig, Vec<String>> {
    let mut tried = Vec::new();
    for path in [
        format!("/boot/config-{release}"),
        format!("/lib/modules/{release}/config"),
    ] {
        match fs.read_to_string_bounded(&path, MAX_CONFIG_BYTES) {
            Ok(text) => return Ok(KernelConfig::new(path, text)),
            Err(e) if e.is_not_found() => tried.push(path),
            Err(e) => tried.push(format!("{path} ({})", e.source)),
        }
    }
    if let Some(proc) = proc {
        match proc.open_file("/config.gz") {
            Ok(f) => match gunzip_bounded(f, MAX_CONFIG_BYTES) {
                Ok(text) => return Ok(KernelConfig::new("/proc/config.gz", text)),
                Err(why) => tried.push(format!("/proc/config.gz ({why})")),
            },
            Err(e) if e.is_not_found() => tried.push("/proc/config.gz".into()),
            Err(e) => tried.push(format!("/proc/config.gz ({})", e.source)),
        }
    }
    Err(tried)
}

/// Decompresses a gzip stream of at most `max` bytes of text, without ever holding more than
/// `max` bytes and the decoder's window; a longer stream (or a gzip bomb) is an error.
pub fn gunzip_bounded(input: impl Read, max: u64) -> Result<String, String> {
    // Reserved once (pages are only touched as text arrives): growing by doubling would copy,
    // and hold old and new buffers at once, right at the cap.
    let mut out = Vec::with_capacity(usize::try_from(max).unwrap_or(usize::MAX).saturating_add(1));
    flate2::read::GzDecoder::new(std::io::BufReader::new(input))
        .take(max + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("unreadable gzip: {e}"))?;
    if out.len() as u64 > max {
        return Err(format!(
            "too large: more than {max} bytes decompressed; options past that would be unknown"
        ));
    }
    Ok(String::from_utf8(out)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

/// Where a module stands on this host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum ModuleState {
    Loaded,
    Builtin,
    /// Present as a file (path inside the root), not loaded.
    Loadable {
        path: String,
    },
    Absent,
}

/// What is known about kernel modules: loaded, builtin and loadable ones.
#[derive(Debug, Clone, Default)]
pub struct Modules {
    pub loaded: Option<BTreeSet<String>>,
    pub builtin: Option<BTreeSet<String>>,
    /// Loadable modules from `modules.dep`, name to path inside the root.
    pub loadable: Option<BTreeMap<String, String>>,
    pub modules_dir: String,
    /// False when `loadable` may miss modules (module files were listed instead of read from
    /// `modules.dep`, and some directory could not be listed): then "absent" is not a verdict.
    pub loadable_complete: bool,
    /// Reasons for the parts that could not be read.
    pub gaps: Vec<String>,
}

impl Modules {
    /// Reads `/proc/modules`, `modules.builtin` and `modules.dep` for `release`.
    pub fn read(fs: &Root, proc: Option<&Root>, release: &str) -> Modules {
        let modules_dir = format!("/lib/modules/{release}");
        let mut gaps = Vec::new();
        let mut loadable_complete = true;
        let loaded =
            match proc.map(|p| p.read_to_string_bounded("/modules", MAX_PROC_MODULES_BYTES)) {
                Some(Ok(t)) => Some(parse_proc_modules(&t)),
                Some(Err(e)) => {
                    gaps.push(format!("cannot read /proc/modules: {}", e.source));
                    None
                }
                None => None,
            };
        let builtin = fs
            .read_to_string_bounded(
                format!("{modules_dir}/modules.builtin"),
                MAX_MODULES_BUILTIN_BYTES,
            )
            .map(|t| parse_modules_builtin(&t))
            .map_err(|e| {
                gaps.push(format!(
                    "cannot read {modules_dir}/modules.builtin: {}",
                    e.source
                ))
            })
            .ok();
        let dep = format!("{modules_dir}/modules.dep");
        let loadable = match fs.read_to_string_bounded(&dep, MAX_MODULES_DEP_BYTES) {
            Ok(t) => Some(parse_modules_dep(&t)),
            // No modules.dep (depmod never ran): find the module files themselves.
            Err(e) if fs.stat(&modules_dir).is_ok() => {
                gaps.push(format!(
                    "cannot read {modules_dir}/modules.dep ({}); listed module files instead",
                    e.source
                ));
                let (found, unlisted) = find_module_files_checked(fs, &modules_dir);
                if let Some(why) = unlisted {
                    gaps.push(why);
                    loadable_complete = false;
                }
                Some(found)
            }
            Err(e) => {
                gaps.push(format!(
                    "cannot read {modules_dir}/modules.dep: {}",
                    e.source
                ));
                None
            }
        };
        Modules {
            loaded,
            builtin,
            loadable,
            modules_dir,
            loadable_complete,
            gaps,
        }
    }

    /// Returns where `name` stands, or `None` when nothing could be read to decide.
    /// A loadable module counts only if its file really is there.
    pub fn state(&self, fs: &Root, name: &str) -> Option<ModuleState> {
        let name = normalize_module(name);
        if self.loaded.as_ref().is_some_and(|l| l.contains(&name)) {
            return Some(ModuleState::Loaded);
        }
        if self.builtin.as_ref().is_some_and(|b| b.contains(&name)) {
            return Some(ModuleState::Builtin);
        }
        if let Some(rel) = self.loadable.as_ref().and_then(|l| l.get(&name)) {
            let path = format!("{}/{}", self.modules_dir, rel);
            match fs.stat(&path) {
                Ok(s) if s.kind == crate::FileKind::File => {
                    return Some(ModuleState::Loadable { path });
                }
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                // Listed, and there may well be a file we may not look at: cannot tell.
                Err(_) => return None,
            }
        }
        // "Absent" is only a verdict when every source was read, completely.
        (self.loaded.is_some()
            && self.builtin.is_some()
            && self.loadable.is_some()
            && self.loadable_complete)
            .then_some(ModuleState::Absent)
    }
}

/// The most directory entries [`find_module_files_checked`] visits: a kernel has a few thousand
/// modules, and a hostile tree must not make the walk endless.
const MAX_MODULE_WALK: usize = 200_000;

/// Finds `*.ko[.gz|.xz|.zst|.bz2]` files below `dir` (symlinks are not followed), as a map from
/// module name to path relative to `dir`, and says why the result may be incomplete: a
/// directory that could not be listed (permission denied, ...) or a tree larger than the
/// walk's bound.
pub fn find_module_files_checked(
    fs: &Root,
    dir: &str,
) -> (BTreeMap<String, String>, Option<String>) {
    let mut out = BTreeMap::new();
    let mut stack = vec![String::new()];
    let mut visited = 0;
    let mut unlisted = None;
    while let Some(rel) = stack.pop() {
        let entries = match fs.read_dir_entries(format!("{dir}/{rel}")) {
            Ok(e) => e,
            Err(e) => {
                unlisted.get_or_insert_with(|| format!("cannot list {e}: {}", e.source));
                continue;
            }
        };
        for (name, kind) in entries {
            visited += 1;
            if visited > MAX_MODULE_WALK {
                let why = format!("{dir} has more than {MAX_MODULE_WALK} entries; stopped listing");
                return (out, Some(why));
            }
            let Some(name) = name.to_str() else { continue };
            let child = if rel.is_empty() {
                name.to_string()
            } else {
                format!("{rel}/{name}")
            };
            match kind {
                crate::FileKind::Dir => stack.push(child),
                crate::FileKind::File => {
                    if let Some(m) = module_name_of_path(&child) {
                        out.entry(m).or_insert(child);
                    }
                }
                _ => {}
            }
        }
    }
    (out, unlisted)
}

/// A kernel release split into numbers for comparison: `5.15.0-94-generic` is `(5, 15, 0)`.
pub fn version_triple(release: &str) -> Option<(u32, u32, u32)> {
    let mut nums = release
        .split(|c: char| !c.is_ascii_digit())
        .take(3)
        .map(|s| s.parse::<u32>().ok());
    let major = nums.next()??;
    let minor = nums.next()??;
    let patch = nums.next().flatten().unwrap_or(0);
    Some((major, minor, patch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_modules_real_sample() {
        let t = "iscsi_tcp 24576 0 - Live 0x0000000000000000\nlibiscsi_tcp 32768 1 iscsi_tcp, Live 0x0\ndm_crypt 65536 0 - Live 0x0\n";
        let m = parse_proc_modules(t);
        assert!(m.contains("iscsi_tcp") && m.contains("dm_crypt") && m.contains("libiscsi_tcp"));
    }

    #[test]
    fn builtin_names_normalised() {
        let t = "kernel/drivers/md/dm-crypt.ko\nkernel/fs/nfs/nfs.ko\n";
        let b = parse_modules_builtin(t);
        assert!(b.contains("dm_crypt"));
        assert!(b.contains("nfs"));
    }

    #[test]
    fn compressed_module_paths() {
        assert_eq!(
            module_name_of_path("kernel/drivers/scsi/iscsi_tcp.ko.zst").as_deref(),
            Some("iscsi_tcp")
        );
        assert_eq!(
            module_name_of_path("kernel/drivers/vfio/pci/vfio-pci.ko.xz").as_deref(),
            Some("vfio_pci")
        );
        assert_eq!(
            module_name_of_path("kernel/fs/nfs/nfsv4.ko.gz").as_deref(),
            Some("nfsv4")
        );
        assert_eq!(module_name_of_path("README"), None);
        let dep = parse_modules_dep(
            "kernel/drivers/nvme/host/nvme-tcp.ko.xz: kernel/drivers/nvme/host/nvme-fabrics.ko.xz\n",
        );
        assert_eq!(dep["nvme_tcp"], "kernel/drivers/nvme/host/nvme-tcp.ko.xz");
    }

    #[test]
    fn kernel_config() {
        let t = "CONFIG_NFS_V4=m\n# CONFIG_NFS_V4_2 is not set\nCONFIG_NFS_V4_1=y\nCONFIG_LOCALVERSION=\"-x\"\nCONFIG_NFS_V4_1_X=m\n# comment CONFIG_A=y\nCONFIG_B=y\nCONFIG_B=m";
        let c = KernelConfig::new("t", t.to_string());
        assert_eq!(c.get("CONFIG_NFS_V4"), ConfigValue::Module);
        assert_eq!(c.get("CONFIG_NFS_V4_2"), ConfigValue::NotSet);
        assert_eq!(c.get("CONFIG_NFS_V4_1"), ConfigValue::Yes);
        assert_eq!(
            c.get("CONFIG_LOCALVERSION"),
            ConfigValue::Other("-x".into())
        );
        assert_eq!(
            c.get("CONFIG_NFS"),
            ConfigValue::NotSet,
            "a prefix of other options"
        );
        assert_eq!(c.get("CONFIG_A"), ConfigValue::NotSet, "inside a comment");
        assert_eq!(
            c.get("CONFIG_B"),
            ConfigValue::Module,
            "last assignment wins, no newline at end"
        );
        assert_eq!(c.get("CONFIG_MISSING"), ConfigValue::NotSet);
    }

    #[test]
    fn empty_config_option_is_not_set_and_does_not_panic_on_multibyte_text() {
        // Found by the `kernel` fuzz target: `get("")` matched inside '\u{fffd}' (what a lossy
        // read makes of a stray byte) and sliced the text off a char boundary.
        let c = KernelConfig::new(
            "t",
            "6\u{fffd}.18\n=y\nCONFIG_LOCALVERSION=\"-\u{e9}\"\n".into(),
        );
        assert_eq!(c.get(""), ConfigValue::NotSet);
        assert_eq!(
            c.get("CONFIG_LOCALVERSION"),
            ConfigValue::Other("-\u{e9}".into())
        );
    }

    #[test]
    fn versions() {
        assert_eq!(version_triple("5.15.0-94-generic"), Some((5, 15, 0)));
        assert_eq!(version_triple("6.18.44-fc-v857"), Some((6, 18, 44)));
        assert_eq!(version_triple("4.18.0-553.el8_10.x86_64"), Some((4, 18, 0)));
        assert_eq!(version_triple("6.7"), Some((6, 7, 0)));
        assert_eq!(version_triple("junk"), None);
    }
}
