//! Kernel parameters (`sysctl`): the running value under `/proc/sys`, and the value the boot
//! applies from `sysctl.d(5)` files, read the way `systemd-sysctl` reads them — no `sysctl`
//! process.
//!
//! Memory bounds: a value is read with a cap of [`MAX_VALUE_BYTES`] (real values are a few
//! bytes to a few hundred; a hostile root may put a 1 GB file at `/proc/sys/...`, which is
//! then an error, never read); each configuration file is at most [`MAX_CONF_BYTES`], and at
//! most [`crate::confdirs::MAX_CONF_FILES`] files are considered. Only the assignments to the
//! one name asked for are kept.

use crate::confdirs::{self, ConfFile};
use crate::{FsError, Root};

/// The largest `/proc/sys` value read: the kernel formats one into at most a page.
pub const MAX_VALUE_BYTES: u64 = 64 << 10;

/// The largest `sysctl.d` file read; real ones are under 4 KiB.
pub const MAX_CONF_BYTES: u64 = 1 << 20;

/// The directories `systemd-sysctl` reads, highest precedence first (`sysctl.d(5)`).
pub const SYSCTL_DIRS: [&str; 5] = [
    "/etc/sysctl.d",
    "/run/sysctl.d",
    "/usr/local/lib/sysctl.d",
    "/usr/lib/sysctl.d",
    "/lib/sysctl.d",
];

/// `procps`' main file, which `sysctl --system` applies after every `sysctl.d` file (Debian
/// also links it into `/etc/sysctl.d/99-sysctl.conf` for `systemd-sysctl`).
pub const SYSCTL_CONF: &str = "/etc/sysctl.conf";

/// Returns `name` in its dotted form: `sysctl.d(5)` accepts `/` as the separator when the
/// first separator is a `/`, and then a `.` is part of a component (`net/ipv4/conf/eth0.1/x`
/// is `net.ipv4.conf.eth0/1.x`).
pub fn dotted(name: &str) -> String {
    let first = name.find(['.', '/']);
    if first.is_some_and(|i| name.as_bytes()[i] == b'/') {
        name.chars()
            .map(|c| match c {
                '/' => '.',
                '.' => '/',
                c => c,
            })
            .collect()
    } else {
        name.to_string()
    }
}

/// Returns the path of `name` (dotted form) below `/proc/sys`: dots become directory
/// separators and a `/` inside a component (a VLAN interface `eth0.1`) becomes a `.`.
/// Returns `None` for a name that could leave `/proc/sys` (empty, `.` or `..` components).
pub fn proc_path(name: &str) -> Option<String> {
    let mut out = String::from("/sys");
    for comp in dotted(name).split('.') {
        let comp = comp.replace('/', ".");
        if comp.is_empty() || comp == "." || comp == ".." {
            return None;
        }
        out.push('/');
        out.push_str(&comp);
    }
    Some(out)
}

/// Returns a value with its whitespace normalised: fields separated by one space, as
/// `sysctl` compares multi-value parameters (`net.ipv4.ip_local_port_range` reads
/// `32768\t60999`).
pub fn normalize(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Reads the running value of `name` from the procfs (`<proc>/sys/...`), normalised.
pub fn read_value(proc: &Root, name: &str) -> Result<String, ReadError> {
    let path = proc_path(name).ok_or_else(|| ReadError::BadName(name.to_string()))?;
    proc.read_to_string_bounded(&path, MAX_VALUE_BYTES)
        .map(|t| normalize(&t))
        .map_err(ReadError::Fs)
}

/// Why a running value could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0:?} is not a sysctl name")]
    BadName(String),
    #[error("cannot read /proc{}", .0.path.display())]
    Fs(#[source] FsError),
}

/// One assignment in a `sysctl.d` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The name (or glob) in dotted form.
    pub name: String,
    /// The value, whitespace-normalised.
    pub value: String,
    /// A leading `-`: a failure to set it is ignored.
    pub ignore_errors: bool,
    /// 1-based line number.
    pub line: usize,
}

/// Parses a `sysctl.d` file: `name = value` lines, `#` and `;` comments, a `-` prefix that
/// ignores errors; lines without `=` are skipped, as `systemd-sysctl` warns and skips them.
/// A `!` (exclusion) pattern is returned with its `!`, so it never matches a name.
pub fn parse_conf(text: &str) -> Vec<Assignment> {
    text.lines()
        .enumerate()
        .filter_map(|(i, raw)| {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                return None;
            }
            let (k, v) = line.split_once('=')?;
            let k = k.trim();
            let (ignore_errors, k) = match k.strip_prefix('-') {
                Some(rest) => (true, rest.trim_start()),
                None => (false, k),
            };
            if k.is_empty() {
                return None;
            }
            Some(Assignment {
                name: dotted(k),
                value: normalize(v),
                ignore_errors,
                line: i + 1,
            })
        })
        .collect()
}

/// Returns true if and only if the pattern `pat` (dotted; `*` and `?` globs as `fnmatch`)
/// matches `name`.
pub fn name_matches(pat: &str, name: &str) -> bool {
    if !pat.contains(['*', '?']) {
        return pat == name;
    }
    glob(pat.as_bytes(), name.as_bytes())
}

/// An iterative `*`/`?` matcher (no recursion, linear backtracking): patterns come from host
/// files and must not cost exponential time.
fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// The value the boot applies to one name, and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootSetting {
    /// The files read, in order (masked ones are not read).
    pub files: Vec<String>,
    /// The last assignment that applies, with its file: later assignments win.
    pub last: Option<(String, Assignment)>,
}

/// Returns what the boot would set `name` to: every `sysctl.d` file in `systemd-sysctl`'s
/// order, then [`SYSCTL_CONF`] as `sysctl --system` reads it last (skipped when it is one of
/// the files already read, as Debian's `99-sysctl.conf` link makes it). A file that exists but
/// cannot be read is an error naming it: the setting could be in it.
pub fn boot_setting(fs: &Root, name: &str) -> Result<BootSetting, String> {
    let name = dotted(name);
    let mut files: Vec<ConfFile> = confdirs::conf_files(fs, &SYSCTL_DIRS)?;
    let main_real = fs.resolve(SYSCTL_CONF).ok().map(|r| r.path);
    let already = files.iter().any(|f| {
        !f.masked && fs.resolve(&f.path).ok().map(|r| r.path) == main_real && main_real.is_some()
    });
    if !already {
        files.push(ConfFile {
            path: SYSCTL_CONF.into(),
            masked: false,
        });
    }
    let mut out = BootSetting {
        files: Vec::new(),
        last: None,
    };
    for f in files.iter().filter(|f| !f.masked) {
        let text = match fs.read_to_string_bounded(&f.path, MAX_CONF_BYTES) {
            Ok(t) => t,
            Err(e) if e.is_not_found() && f.path == SYSCTL_CONF => continue,
            Err(e) => return Err(format!("cannot read {}: {}", f.path, e.source)),
        };
        out.files.push(f.path.clone());
        for a in parse_conf(&text) {
            if name_matches(&a.name, &name) {
                out.last = Some((f.path.clone(), a));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::disallowed_methods)] // the tests build the roots they read

    use super::*;

    #[test]
    fn names_and_paths() {
        assert_eq!(
            proc_path("net.ipv4.ip_forward").as_deref(),
            Some("/sys/net/ipv4/ip_forward")
        );
        assert_eq!(
            proc_path("net/ipv4/conf/eth0.1/rp_filter").as_deref(),
            Some("/sys/net/ipv4/conf/eth0.1/rp_filter")
        );
        assert_eq!(
            dotted("net/ipv4/conf/eth0.1/rp_filter"),
            "net.ipv4.conf.eth0/1.rp_filter"
        );
        assert_eq!(proc_path("net..x"), None);
        assert_eq!(proc_path("../../etc/passwd"), None);
        assert_eq!(proc_path(""), None);
    }

    /// Real samples: this machine's `ip_local_port_range` (a tab between the two numbers) and
    /// Debian's shipped `sysctl.d` files.
    #[test]
    fn values_and_conf_real_samples() {
        assert_eq!(normalize("32768\t60999\n"), "32768 60999");
        assert_eq!(normalize("0\n"), "0");
        let debian_protect_links = "###################################################################\n\
            # Protected links\n#\n# Protects against creating or following links under certain conditions\n\
            # Debian kernels have both set to 1 (restricted) \n\
            # See https://www.kernel.org/doc/Documentation/sysctl/fs.txt\n\
            fs.protected_fifos = 1\nfs.protected_hardlinks = 1\nfs.protected_regular = 2\nfs.protected_symlinks = 1\n";
        let a = parse_conf(debian_protect_links);
        assert_eq!(a.len(), 4);
        assert_eq!(
            a[2],
            Assignment {
                name: "fs.protected_regular".into(),
                value: "2".into(),
                ignore_errors: false,
                line: 9
            }
        );
        let systemd = "; comment\n-net.ipv4.conf.all.rp_filter = 2\nnet.ipv4.ip_local_port_range=  1024\t 65000 \nnet/ipv4/ip_forward = 1\nnot an assignment\n= 5\n";
        let a = parse_conf(systemd);
        assert_eq!(a.len(), 3);
        assert!(a[0].ignore_errors && a[0].name == "net.ipv4.conf.all.rp_filter");
        assert_eq!(a[1].value, "1024 65000");
        assert_eq!(a[2].name, "net.ipv4.ip_forward");
    }

    #[test]
    fn globs() {
        assert!(name_matches(
            "net.ipv4.conf.*.rp_filter",
            "net.ipv4.conf.all.rp_filter"
        ));
        assert!(!name_matches(
            "net.ipv4.conf.*.rp_filter",
            "net.ipv4.conf.all.x"
        ));
        assert!(name_matches("net.ipv4.ip_forwar?", "net.ipv4.ip_forward"));
        assert!(!name_matches("!net.ipv4.ip_forward", "net.ipv4.ip_forward"));
        // Linear even on the classic exponential case.
        let p = "a*".repeat(50) + "b";
        assert!(!name_matches(&p, &"a".repeat(5000)));
    }

    fn root(files: &[(&str, &str)]) -> (tempfile::TempDir, Root) {
        let d = tempfile::tempdir().unwrap();
        for (p, t) in files {
            let p = d.path().join(p.trim_start_matches('/'));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, t).unwrap();
        }
        let r = Root::open(d.path()).unwrap();
        (d, r)
    }

    #[test]
    fn boot_setting_follows_systemd_precedence() {
        let (_d, fs) = root(&[
            (
                "/usr/lib/sysctl.d/50-default.conf",
                "net.ipv4.ip_forward = 0\n",
            ),
            ("/etc/sysctl.d/50-default.conf", "net.ipv4.ip_forward = 1\n"),
            (
                "/usr/lib/sysctl.d/10-early.conf",
                "net.ipv4.ip_forward = 0\n",
            ),
            ("/run/sysctl.d/60-k8s.conf", "-net.ipv4.ip_forward=1\n"),
            ("/etc/sysctl.conf", "net.ipv4.ip_forward = 0\n"),
        ]);
        let b = boot_setting(&fs, "net.ipv4.ip_forward").unwrap();
        assert_eq!(
            b.files,
            [
                "/usr/lib/sysctl.d/10-early.conf",
                "/etc/sysctl.d/50-default.conf",
                "/run/sysctl.d/60-k8s.conf",
                "/etc/sysctl.conf"
            ]
        );
        let (file, a) = b.last.unwrap();
        // sysctl.conf is read last, as `sysctl --system` does.
        assert_eq!((file.as_str(), a.value.as_str()), ("/etc/sysctl.conf", "0"));
        let (_d, fs) = root(&[(
            "/usr/lib/sysctl.d/50-pid-max.conf",
            "kernel.pid_max = 4194304\n",
        )]);
        let b = boot_setting(&fs, "net.ipv4.ip_forward").unwrap();
        assert_eq!(b.last, None);
        assert_eq!(b.files, ["/usr/lib/sysctl.d/50-pid-max.conf"]);
    }

    /// Debian links `/etc/sysctl.d/99-sysctl.conf` to `../sysctl.conf`: it is read once, in
    /// its sysctl.d place.
    #[test]
    fn debian_sysctl_conf_link_is_read_once() {
        let (d, fs) = root(&[
            ("/etc/sysctl.conf", "net.ipv4.ip_forward=1\n"),
            ("/etc/sysctl.d/README.sysctl", "x"),
        ]);
        std::os::unix::fs::symlink(
            "../sysctl.conf",
            d.path().join("etc/sysctl.d/99-sysctl.conf"),
        )
        .unwrap();
        let b = boot_setting(&fs, "net.ipv4.ip_forward").unwrap();
        assert_eq!(b.files, ["/etc/sysctl.d/99-sysctl.conf"]);
        assert_eq!(b.last.unwrap().0, "/etc/sysctl.d/99-sysctl.conf");
    }

    #[test]
    fn a_huge_value_is_refused_not_read() {
        let (d, _) = root(&[]);
        let proc = d.path().join("proc");
        std::fs::create_dir_all(proc.join("sys/net/ipv4")).unwrap();
        let f = std::fs::File::create(proc.join("sys/net/ipv4/ip_forward")).unwrap();
        f.set_len(1 << 30).unwrap();
        let p = Root::open(&proc).unwrap();
        let e = read_value(&p, "net.ipv4.ip_forward").unwrap_err();
        let ReadError::Fs(fs) = &e else { panic!("{e}") };
        assert!(fs.is_too_large(), "{e}");
        assert!(
            e.to_string().contains("/proc/sys/net/ipv4/ip_forward"),
            "{e}"
        );
    }
}
