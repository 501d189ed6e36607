//! Kernel module parameters and versions as the running kernel shows them in sysfs
//! (`/sys/module/<m>/parameters/<p>`, `/sys/module/<m>/version`), and what sets a parameter
//! at boot: the kernel command line (`nvme_core.multipath=N`) and `modprobe.d(5)` `options`
//! lines. DRBD's version also comes from `/proc/drbd`. No `modinfo`, no `modprobe`.
//!
//! Memory bounds: a sysfs attribute is at most a page; it is read with a cap of
//! [`MAX_ATTR_BYTES`] (64 KiB pages exist). `/proc/cmdline` is at most [`MAX_CMDLINE_BYTES`],
//! `/proc/drbd` is read only up to [`MAX_PROC_DRBD_HEAD`] bytes (its first line has the
//! version; the rest grows with resources), each `modprobe.d` file at most
//! [`MAX_MODPROBE_CONF_BYTES`]; `modules.builtin.modinfo` is streamed, holding one record of
//! at most 4 KiB, and read up to [`MAX_BUILTIN_MODINFO_BYTES`].

use std::cmp::Ordering;

use crate::confdirs;
use crate::kernel::normalize_module;
use crate::{FsError, Root};

/// The largest sysfs attribute read.
pub const MAX_ATTR_BYTES: u64 = 64 << 10;

/// The largest `/proc/cmdline` read (`COMMAND_LINE_SIZE` is 2 KiB on x86, 4 KiB elsewhere).
pub const MAX_CMDLINE_BYTES: u64 = 64 << 10;

/// How much of `/proc/drbd` is read: its version line comes first.
pub const MAX_PROC_DRBD_HEAD: usize = 4096;

/// The largest `modprobe.d` file read.
pub const MAX_MODPROBE_CONF_BYTES: u64 = 1 << 20;

/// How much of `modules.builtin.modinfo` is scanned (distro kernels ship ~300 KiB).
pub const MAX_BUILTIN_MODINFO_BYTES: u64 = 8 << 20;

/// The directories `modprobe.d(5)` reads, highest precedence first.
pub const MODPROBE_DIRS: [&str; 5] = [
    "/etc/modprobe.d",
    "/run/modprobe.d",
    "/usr/local/lib/modprobe.d",
    "/usr/lib/modprobe.d",
    "/lib/modprobe.d",
];

/// Returns the sysfs path of a module's parameter.
pub fn parameter_path(module: &str, parameter: &str) -> String {
    format!(
        "/sys/module/{}/parameters/{}",
        normalize_module(module),
        normalize_module(parameter)
    )
}

/// Reads a module parameter's current value (trimmed) from the host's sysfs.
pub fn read_parameter(fs: &Root, module: &str, parameter: &str) -> Result<String, FsError> {
    fs.read_to_string_bounded(parameter_path(module, parameter), MAX_ATTR_BYTES)
        .map(|t| t.trim().to_string())
}

/// Returns a boolean parameter's value: the kernel shows `bool` parameters as `Y`/`N` and
/// accepts what `kstrtobool` does when setting them. Only whole words are taken (`kstrtobool`
/// looks at the first letter alone, but `none` must not read as false here).
pub fn as_bool(v: &str) -> Option<bool> {
    match v.trim() {
        "Y" | "y" | "1" | "on" | "yes" | "Yes" | "YES" => Some(true),
        "N" | "n" | "0" | "off" | "no" | "No" | "NO" => Some(false),
        _ => None,
    }
}

/// Returns true if and only if a parameter showing `actual` has the value `expected`: both
/// booleans and equal as such, or equal with whitespace normalised.
pub fn value_matches(actual: &str, expected: &str) -> bool {
    match (as_bool(actual), as_bool(expected)) {
        (Some(a), Some(e)) => a == e,
        _ => crate::sysctl::normalize(actual) == crate::sysctl::normalize(expected),
    }
}

/// Splits a kernel command line into parameters the way the kernel's `next_arg` does:
/// whitespace-separated, double quotes group (and are removed), and a bare `--` ends the
/// kernel's part (what follows goes to init). Returns `(name, value)` pairs.
pub fn parse_cmdline(text: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_quotes = false;
    let mut started = false;
    let push = |cur: &mut String, out: &mut Vec<(String, Option<String>)>| -> bool {
        if cur == "--" {
            return false;
        }
        match cur.split_once('=') {
            Some((k, v)) => out.push((k.to_string(), Some(v.to_string()))),
            None => out.push((cur.clone(), None)),
        }
        cur.clear();
        true
    };
    for c in text.chars() {
        if c == '"' {
            in_quotes = !in_quotes;
            started = true;
            continue;
        }
        if c.is_whitespace() && !in_quotes {
            if started && !push(&mut cur, &mut out) {
                return out;
            }
            started = false;
            continue;
        }
        cur.push(c);
        started = true;
    }
    if started {
        push(&mut cur, &mut out);
    }
    out
}

/// Returns the value the command line gives `module.parameter` (the last one wins; `-` and
/// `_` are the same in both names, as the kernel's `parameq` has it).
pub fn cmdline_parameter(cmdline: &str, module: &str, parameter: &str) -> Option<String> {
    let want = format!(
        "{}.{}",
        normalize_module(module),
        normalize_module(parameter)
    );
    parse_cmdline(cmdline)
        .into_iter()
        .rfind(|(k, _)| normalize_module(k) == want)
        // A bare `m.flag` sets a bool parameter to true.
        .map(|(_, v)| v.unwrap_or_else(|| "Y".into()))
}

/// Returns the value `options <module> <parameter>=<value>` lines in `text` give, the last
/// one winning, with the 1-based line.
pub fn modprobe_option(text: &str, module: &str, parameter: &str) -> Option<(String, usize)> {
    let (module, parameter) = (normalize_module(module), normalize_module(parameter));
    let mut found = None;
    for (i, line) in text.lines().enumerate() {
        let mut w = line.split('#').next().unwrap_or("").split_whitespace();
        if w.next() != Some("options") || w.next().map(normalize_module) != Some(module.clone()) {
            continue;
        }
        for opt in w {
            let (k, v) = opt.split_once('=').unwrap_or((opt, "Y"));
            if normalize_module(k) == parameter {
                found = Some((v.trim_matches('"').to_string(), i + 1));
            }
        }
    }
    found
}

/// Returns the last `options` line for `module.parameter` across the host's `modprobe.d`
/// files (their order: by file name, as `modprobe` reads them), as `(file, line, value)`.
pub fn modprobe_setting(
    fs: &Root,
    module: &str,
    parameter: &str,
) -> Result<Option<(String, usize, String)>, String> {
    let mut last = None;
    for f in confdirs::conf_files(fs, &MODPROBE_DIRS)? {
        if f.masked {
            continue;
        }
        let text = fs
            .read_to_string_bounded(&f.path, MAX_MODPROBE_CONF_BYTES)
            .map_err(|e| format!("cannot read {}: {}", f.path, e.source))?;
        if let Some((v, line)) = modprobe_option(&text, module, parameter) {
            last = Some((f.path.clone(), line, v));
        }
    }
    Ok(last)
}

/// Reads `/sys/module/<m>/version` (set by `MODULE_VERSION`), trimmed.
pub fn read_version(fs: &Root, module: &str) -> Result<String, FsError> {
    fs.read_to_string_bounded(
        format!("/sys/module/{}/version", normalize_module(module)),
        MAX_ATTR_BYTES,
    )
    .map(|t| t.trim().to_string())
}

/// Returns the version in `/proc/drbd`'s first line, `version: 9.2.12 (api:2/proto:86-122)`.
pub fn parse_proc_drbd(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("version:"))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_string)
}

/// Reads the head of `/proc/drbd` from the procfs and returns its version.
pub fn read_proc_drbd(proc: &Root) -> Result<Option<String>, FsError> {
    proc.read_head("/drbd", MAX_PROC_DRBD_HEAD)
        .map(|b| parse_proc_drbd(&String::from_utf8_lossy(&b)))
}

/// Returns the numbers of a version: the digit runs of its leading `[0-9.]` part
/// (`9.2.12-rc1` is `[9, 2, 12]`, `1.0.2.0-k` is `[1, 0, 2, 0]`); `None` if it starts
/// with no digit.
pub fn version_numbers(v: &str) -> Option<Vec<u64>> {
    let v = v.trim().trim_start_matches('v');
    let head: &str = &v[..v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len())];
    if !head.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    head.split('.')
        .filter(|p| !p.is_empty())
        .map(|p| p.parse::<u64>().ok())
        .collect()
}

/// Compares two versions numerically component by component; a missing component is 0
/// (`9.2` equals `9.2.0`). `None` when either is not a version.
pub fn compare_versions(a: &str, b: &str) -> Option<Ordering> {
    let (a, b) = (version_numbers(a)?, version_numbers(b)?);
    let n = a.len().max(b.len());
    let get = |v: &[u64], i: usize| v.get(i).copied().unwrap_or(0);
    Some(
        (0..n)
            .map(|i| get(&a, i).cmp(&get(&b, i)))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal),
    )
}

/// The longest `modules.builtin.modinfo` record looked at; longer ones (descriptions can be
/// long, hostile ones endless) are skipped to their NUL without being held.
const MAX_MODINFO_RECORD: usize = 4096;

/// [`builtin_has_version`] on a stream, holding at most one record of
/// [`MAX_MODINFO_RECORD`] bytes and reading at most [`MAX_BUILTIN_MODINFO_BYTES`]: a module
/// check must not hold an 8 MiB file to look for one line.
pub fn builtin_has_version_in(input: impl std::io::Read, module: &str) -> std::io::Result<bool> {
    use std::io::BufRead;
    let mut r = std::io::BufReader::new(input.take(MAX_BUILTIN_MODINFO_BYTES));
    let mut rec: Vec<u8> = Vec::with_capacity(MAX_MODINFO_RECORD);
    let mut overlong = false;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(!overlong && !rec.is_empty() && builtin_has_version(&rec, module));
        }
        let (chunk, ends) = match memchr::memchr(0, buf) {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        if !overlong {
            if rec.len() + chunk.len() > MAX_MODINFO_RECORD {
                overlong = true;
                rec.clear();
            } else {
                rec.extend_from_slice(chunk);
            }
        }
        let used = ends.unwrap_or(buf.len());
        r.consume(used);
        if ends.is_some() {
            if !overlong && builtin_has_version(&rec, module) {
                return Ok(true);
            }
            rec.clear();
            overlong = false;
        }
    }
}

/// Returns true if and only if `modules.builtin.modinfo` (NUL-separated `module.key=value`
/// records, kernel 5.2 and later) gives built-in `module` a `version`: the kernel then always
/// creates `/sys/module/<module>/version` at boot (`version_sysfs_builtin`), so the directory's
/// absence proves the module is not in the running kernel.
pub fn builtin_has_version(modinfo: &[u8], module: &str) -> bool {
    let want = format!("{}.version=", normalize_module(module));
    modinfo.split(|&b| b == 0).any(|rec| {
        let rec = String::from_utf8_lossy(rec);
        // Names in modinfo use the object's name, which may have `-`.
        rec.split_once('.')
            .is_some_and(|(m, rest)| format!("{}.{rest}", normalize_module(m)).starts_with(&want))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_and_values() {
        assert!(value_matches("N", "0"));
        assert!(value_matches("Y\n", "y"));
        assert!(!value_matches("Y", "N"));
        assert!(value_matches("N", "no"));
        assert!(!value_matches("none", "N"));
        assert!(value_matches("  1024 ", "1024"));
        assert!(!value_matches("1024", "2048"));
    }

    /// This machine's command line (a Firecracker guest) and a GRUB one with quotes.
    #[test]
    fn cmdline_real_samples() {
        let fc = "mitigations=auto,no_guest_host,no_guest_guest console=ttyS0 quiet reboot=k panic=1 nomodule random.trust_cpu=1 swiotlb=noforce psi=1 nvproxy.enable=1 page_reporting.page_reporting_order=11 deferred_init=lazy nested_pvm=1 rcupdate.rcu_cpu_stall_cputime=1 rdinit=/process_api -- --firecracker-init --addr 0.0.0.0:2024 nvme_core.multipath=Y\n";
        assert_eq!(
            cmdline_parameter(fc, "page-reporting", "page_reporting_order").as_deref(),
            Some("11")
        );
        assert_eq!(
            cmdline_parameter(fc, "nvme_core", "multipath"),
            None,
            "after `--` it is init's"
        );
        let grub = "BOOT_IMAGE=/vmlinuz-6.1.0-18-amd64 root=UUID=x ro quiet nvme_core.multipath=N dyndbg=\"file a.c +p\" nvme-core.multipath=0\n";
        assert_eq!(
            cmdline_parameter(grub, "nvme_core", "multipath").as_deref(),
            Some("0")
        );
        let p = parse_cmdline(grub);
        assert!(
            p.contains(&("dyndbg".into(), Some("file a.c +p".into()))),
            "{p:?}"
        );
        assert_eq!(
            cmdline_parameter("x nvme_core.multipath", "nvme_core", "multipath").as_deref(),
            Some("Y")
        );
    }

    #[test]
    fn modprobe_options() {
        let t = "# Longhorn v2\noptions nvme_core multipath=N\noptions nvme-core  io_timeout=30 multipath=Y # later wins\noptions loop max_loop=8\n";
        assert_eq!(
            modprobe_option(t, "nvme_core", "multipath"),
            Some(("Y".into(), 3))
        );
        assert_eq!(modprobe_option(t, "loop", "multipath"), None);
    }

    #[test]
    fn versions() {
        use Ordering::*;
        assert_eq!(compare_versions("9.2.12", "9.0.0"), Some(Greater));
        assert_eq!(compare_versions("8.4.11", "9.0.0"), Some(Less));
        assert_eq!(compare_versions("9.2.10", "9.2.9"), Some(Greater));
        assert_eq!(compare_versions("9.2", "9.2.0"), Some(Equal));
        assert_eq!(compare_versions("9.2.12-rc.1", "9.2.12"), Some(Equal));
        assert_eq!(compare_versions("1.0.2.0-k", "1.0.2"), Some(Equal));
        assert_eq!(compare_versions("x", "1"), None);
        // /proc/drbd of DRBD 9 and of the in-tree 8.4.
        assert_eq!(
            parse_proc_drbd("version: 9.2.12 (api:2/proto:86-122)\nGIT-hash: 0c1b6b6 build by root\nTransports (api:21): tcp (9.2.12)\n").as_deref(),
            Some("9.2.12")
        );
        assert_eq!(
            parse_proc_drbd(
                "version: 8.4.11 (api:1/proto:86-101)\nsrcversion: 8E1FB3E6D2B5C1A21A2A5AB\n"
            )
            .as_deref(),
            Some("8.4.11")
        );
        assert_eq!(parse_proc_drbd("nothing\n"), None);
    }

    #[test]
    fn builtin_modinfo_versions() {
        let m = b"ext4.license=GPL\0ext4.description=Fourth Extended Filesystem\0bridge.version=2.3\0nvme-core.parmtype=multipath:bool\0";
        assert!(builtin_has_version(m, "bridge"));
        assert!(!builtin_has_version(m, "ext4"));
        assert!(!builtin_has_version(m, "nvme_core"));
        assert!(!builtin_has_version(b"bridge.versions=1\0", "bridge"));
        // The streaming reader says the same, and skips an overlong record whole: a
        // `bridge.version=` after 5000 bytes of one record is not a record of its own.
        assert!(builtin_has_version_in(&m[..], "bridge").unwrap());
        assert!(!builtin_has_version_in(&m[..], "ext4").unwrap());
        let mut long = vec![b'x'; 5000];
        long.extend_from_slice(b"bridge.version=1\0ext4.version=1");
        assert!(!builtin_has_version_in(&long[..], "bridge").unwrap());
        assert!(
            builtin_has_version_in(&long[..], "ext4").unwrap(),
            "the last record has no NUL"
        );
    }
}
