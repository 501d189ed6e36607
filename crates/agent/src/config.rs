//! The agent's configuration file (a ConfigMap in the DaemonSet): which profiles to publish,
//! the check interval and the heartbeat. It is validated completely — every profile loaded,
//! with its includes — before it replaces the configuration in force, so a bad edit never
//! takes effect (the caller keeps the last good one and reports the error).
//!
//! ```yaml
//! profiles: [longhorn, ./site-checks.yaml]   # built-in names or files (relative to this file)
//! interval: 30m                             # a unit is required: 90s, 5m, 1h30m
//! heartbeat: 5m
//! path: /usr/local/sbin:/usr/sbin:/usr/bin    # where executables are looked for in the root
//! watch_interval: 1m                        # the watch pass (doctor's scans); `off` or `0s` stops it
//! pile_min_count: 10                        # doctor's pile-up thresholds
//! pile_min_age: 1m
//! pile_expect: [java]                       # added to doctor's list of processes that crowd
//! scheduling_labels: false                  # hostready.dev/<profile>=true|false|unknown on the Node
//! ```
//!
//! Every key left out takes the command line's value (`--profile`, `--interval`,
//! `--heartbeat`, `--path`, `--watch-interval`, `--scheduling-labels`; the pile thresholds
//! take doctor's defaults),
//! and every key is reloaded when the file changes.
//!
//! Command checks (node-problem-detector plugin convention) are requirements of a profile
//! file (`command: [/abs/program, args...]`); they run under the bounded runner.

// The agent's own config file (its ConfigMap in the pod), not host content.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use hostready_checks::{Profile, profile};
use serde::Deserialize;

use crate::duration;

/// An error in the configuration file; the configuration in force stays.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config {}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("config {}: profile {spec:?}", path.display())]
    Profile {
        path: PathBuf,
        spec: String,
        #[source]
        source: hostready_checks::ProfileError,
    },
}

/// The file as written; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    profiles: Option<Vec<String>>,
    interval: Option<String>,
    heartbeat: Option<String>,
    path: Option<String>,
    watch_interval: Option<String>,
    pile_min_count: Option<usize>,
    pile_min_age: Option<String>,
    pile_expect: Option<Vec<String>>,
    scheduling_labels: Option<bool>,
}

/// Defaults that apply when the file (or no file) leaves a setting out: the command line's.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub profiles: Vec<String>,
    pub interval: Duration,
    pub heartbeat: Duration,
    /// The executable search path inside the host root (`--path`).
    pub search_path: String,
}

/// A validated configuration, ready to run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub profiles: Vec<Profile>,
    pub interval: Duration,
    pub heartbeat: Duration,
    /// The executable search path inside the host root, colon-separated like PATH.
    pub search_path: String,
    /// The file's `watch_interval`: `None` when the key is left out (the flag's value
    /// applies), `Some(ZERO)` for `off` / `0s` (no watch pass).
    pub watch_interval: Option<Duration>,
    /// The watch pass's pile-up thresholds and exemptions (doctor's, with `pile_expect` added
    /// to its list of processes that normally crowd).
    pub thresholds: hostready_doctor::Thresholds,
    /// The file's `scheduling_labels`: `None` when the key is left out (the flag applies).
    /// On, the agent keeps one `hostready.dev/<profile>` label per profile on its Node
    /// (`labels.rs`).
    pub scheduling_labels: Option<bool>,
}

impl Settings {
    /// Returns true if and only if some enabled profile has a command check.
    pub fn has_commands(&self) -> bool {
        self.profiles
            .iter()
            .flat_map(|p| &p.requirements)
            .any(|r| matches!(r.check, hostready_checks::Check::Command(_)))
    }
}

impl Settings {
    /// Builds settings from the defaults alone (no config file).
    pub fn from_defaults(d: &Defaults) -> Result<Settings, ConfigError> {
        build(FileConfig::default(), d, Path::new("<command line>"), None)
    }

    /// Reads, parses and validates `path` on top of the defaults.
    pub fn load(path: &Path, d: &Defaults) -> Result<Settings, ConfigError> {
        let text = read_bounded(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let file: FileConfig = if text.trim().is_empty() {
            FileConfig::default()
        } else {
            serde_yaml_ng::from_str(&text).map_err(|e| ConfigError::Invalid {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?
        };
        build(file, d, path, path.parent())
    }
}

fn build(
    file: FileConfig,
    d: &Defaults,
    path: &Path,
    base: Option<&Path>,
) -> Result<Settings, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let parse_duration = |key: &str, v: &Option<String>, default: Duration| match v {
        None => Ok(default),
        Some(s) => duration::parse_positive(s).map_err(|e| invalid(format!("{key}: {e}"))),
    };
    let interval = parse_duration("interval", &file.interval, d.interval)?;
    let heartbeat = parse_duration("heartbeat", &file.heartbeat, d.heartbeat)?;
    if interval.is_zero() || heartbeat.is_zero() {
        return Err(invalid(
            "interval and heartbeat must be more than zero".into(),
        ));
    }
    let watch_interval = match file.watch_interval.as_deref() {
        None => None,
        Some(s) => {
            Some(parse_watch_interval(s).map_err(|e| invalid(format!("watch_interval: {e}")))?)
        }
    };
    let mut thresholds = hostready_doctor::Thresholds::default();
    if let Some(n) = file.pile_min_count {
        if n < 2 {
            return Err(invalid(format!(
                "pile_min_count: {n} is too small (a pile is at least 2 identical processes)"
            )));
        }
        thresholds.min_count = n;
    }
    if let Some(a) = &file.pile_min_age {
        thresholds.min_age_secs = duration::parse(a)
            .map_err(|e| invalid(format!("pile_min_age: {e}")))?
            .as_secs();
    }
    thresholds
        .expected
        .extend(file.pile_expect.unwrap_or_default());
    let search_path = match file.path {
        None => d.search_path.clone(),
        Some(p) => search_path(&p).map_err(|why| invalid(format!("path: {why}")))?,
    };
    let specs = file.profiles.unwrap_or_else(|| d.profiles.clone());
    let mut profiles: Vec<Profile> = Vec::new();
    for spec in &specs {
        // A file name is relative to the config file (a ConfigMap mounts them side by side).
        let resolved = match base {
            Some(dir) if spec.contains('/') && !Path::new(spec).is_absolute() => {
                dir.join(spec).display().to_string()
            }
            _ => spec.clone(),
        };
        let p = profile::load(&resolved).map_err(|source| ConfigError::Profile {
            path: path.to_path_buf(),
            spec: spec.clone(),
            source,
        })?;
        let ty = p.condition_type();
        if profiles.iter().any(|q| q.condition_type() == ty) {
            return Err(invalid(format!(
                "two profiles publish the condition {ty} ({spec} and an earlier one)"
            )));
        }
        profiles.push(p);
    }
    Ok(Settings {
        profiles,
        interval,
        heartbeat,
        search_path,
        watch_interval,
        thresholds,
        scheduling_labels: file.scheduling_labels,
    })
}

/// Reads a watch interval: `off` or any duration of the shared grammar, zero meaning off.
pub fn parse_watch_interval(s: &str) -> Result<Duration, duration::DurationError> {
    if s.trim() == "off" {
        return Ok(Duration::ZERO);
    }
    duration::parse(s)
}

/// Checks the `path` key: colon-separated absolute directories (inside the host root), as
/// PATH. A relative entry would be resolved against nothing a reader could predict, and an
/// empty one means "the current directory" to a shell: both are refused.
fn search_path(p: &str) -> Result<String, String> {
    if p.trim().is_empty() {
        return Err("empty (give directories separated by `:`, like PATH)".into());
    }
    if let Some(bad) = p.split(':').find(|d| !d.starts_with('/')) {
        return Err(format!(
            "{bad:?} is not an absolute directory (entries are separated by `:`, like PATH)"
        ));
    }
    Ok(p.to_string())
}

/// The largest config file accepted; a real one is a few hundred bytes.
pub const MAX_CONFIG_BYTES: u64 = 64 << 10;

/// Reads the config file: a regular file (symlinks followed, as a ConfigMap volume needs) of
/// at most [`MAX_CONFIG_BYTES`].
///
/// The type is checked on an `O_PATH` descriptor, which opens nothing: a FIFO's open would
/// block and a device's would run its driver (a tape rewinds, a watchdog arms). Only a regular
/// file is then opened for reading, through `/proc/self/fd/N` of that same descriptor, so a
/// file swapped in between cannot be the one read; the identity is checked again after.
fn read_bounded(path: &Path) -> std::io::Result<String> {
    use rustix::fs::{FileType, Mode, OFlags};
    use std::io::{Error, ErrorKind, Read};
    let pathfd = rustix::fs::open(path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())?;
    let st = rustix::fs::fstat(&pathfd)?;
    let kind = FileType::from_raw_mode(st.st_mode);
    if kind != FileType::RegularFile {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("not a regular file ({kind:?}); nothing was opened"),
        ));
    }
    if st.st_size as u64 > MAX_CONFIG_BYTES {
        return Err(Error::new(
            ErrorKind::FileTooLarge,
            format!(
                "{} bytes, more than the {MAX_CONFIG_BYTES} allowed",
                st.st_size
            ),
        ));
    }
    let fd = rustix::fs::open(
        format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&pathfd)),
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
        Mode::empty(),
    )?;
    let again = rustix::fs::fstat(&fd)?;
    if (again.st_dev, again.st_ino) != (st.st_dev, st.st_ino) {
        return Err(Error::other("the file changed while it was opened"));
    }
    let mut text = String::new();
    std::fs::File::from(fd)
        .take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(Error::new(
            ErrorKind::FileTooLarge,
            format!("more than the {MAX_CONFIG_BYTES} bytes allowed"),
        ));
    }
    Ok(text)
}

/// What identifies one version of a file: a ConfigMap update swaps a symlink, which changes
/// the inode; an in-place edit changes the mtime or size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    ino: u64,
    dev: u64,
    len: u64,
    mtime: Option<SystemTime>,
}

/// Returns the stamp of `path` (following symlinks), or `None` if it cannot be read.
pub fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        ino: m.ino(),
        dev: m.dev(),
        len: m.len(),
        mtime: m.modified().ok(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Defaults {
        Defaults {
            profiles: vec!["longhorn".into()],
            interval: Duration::from_secs(1800),
            heartbeat: Duration::from_secs(300),
            search_path: hostready_host::exe::DEFAULT_PATH.into(),
        }
    }

    fn load(text: &str) -> Result<Settings, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("agent.yaml");
        std::fs::write(&p, text).unwrap();
        std::fs::write(
            dir.path().join("site.yaml"),
            "name: site\nrequirements:\n  - executable: zfs\n",
        )
        .unwrap();
        Settings::load(&p, &defaults())
    }

    #[test]
    fn empty_file_means_defaults() {
        let s = load("").unwrap();
        assert_eq!(s.profiles[0].name, "longhorn");
        assert_eq!(s.interval, Duration::from_secs(1800));
        assert_eq!(s.search_path, hostready_host::exe::DEFAULT_PATH);
    }

    #[test]
    fn path_key_replaces_the_flag() {
        let s = load("path: /run/current-system/sw/bin:/usr/bin\n").unwrap();
        assert_eq!(s.search_path, "/run/current-system/sw/bin:/usr/bin");
    }

    /// The file's durations follow the flags' grammar (hostready_flags::duration).
    #[test]
    fn durations_follow_the_one_grammar() {
        let s = load("interval: 1h30m\nheartbeat: 90s\n").unwrap();
        assert_eq!(s.interval, Duration::from_secs(5400));
        assert_eq!(s.heartbeat, Duration::from_secs(90));
        let e = load("heartbeat: 90\n").unwrap_err().to_string();
        assert!(e.contains("heartbeat") && e.contains("90s"), "{e}");
    }

    /// The watch keys: left out, the flag applies (None) and doctor's thresholds; `off` and
    /// `0s` are off; `pile_expect` adds to doctor's list; bad values name their key.
    #[test]
    fn watch_keys_set_the_interval_and_doctors_thresholds() {
        let s = load("").unwrap();
        assert_eq!(s.watch_interval, None);
        assert_eq!(s.thresholds, hostready_doctor::Thresholds::default());
        let s = load(
            "watch_interval: 30s\npile_min_count: 50\npile_min_age: 5m\npile_expect: [java]\n",
        )
        .unwrap();
        assert_eq!(s.watch_interval, Some(Duration::from_secs(30)));
        assert_eq!(
            (s.thresholds.min_count, s.thresholds.min_age_secs),
            (50, 300)
        );
        assert!(s.thresholds.is_expected("java") && s.thresholds.is_expected("pause"));
        for off in ["off", "0s", "0"] {
            let s = load(&format!("watch_interval: {off}\n")).unwrap();
            assert_eq!(s.watch_interval, Some(Duration::ZERO), "{off}");
        }
        for (bad, key) in [
            ("watch_interval: 60\n", "watch_interval"),
            ("pile_min_age: often\n", "pile_min_age"),
            ("pile_min_count: 1\n", "pile_min_count"),
        ] {
            let e = load(bad).unwrap_err().to_string();
            assert!(e.contains(key), "{bad}: {e}");
        }
    }

    /// Left out, the flag decides (None); a boolean sets it; anything else names the key.
    #[test]
    fn scheduling_labels_key() {
        assert_eq!(load("").unwrap().scheduling_labels, None);
        assert_eq!(
            load("scheduling_labels: true\n").unwrap().scheduling_labels,
            Some(true)
        );
        assert_eq!(
            load("scheduling_labels: false\n")
                .unwrap()
                .scheduling_labels,
            Some(false)
        );
        let e = load("scheduling_labels: sometimes\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("scheduling_labels"), "{e}");
    }

    #[test]
    fn full_file_with_relative_custom_profile() {
        let s = load("profiles: [iscsi, ./site.yaml]\ninterval: 10m\nheartbeat: 1m\n").unwrap();
        let names: Vec<&str> = s.profiles.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["iscsi", "site"]);
        assert_eq!(s.interval, Duration::from_secs(600));
        assert_eq!(s.heartbeat, Duration::from_secs(60));
        assert!(!s.has_commands());
    }

    /// A FIFO would block the open forever and a device's open has effects: both are refused
    /// from their type alone, never opened; an oversized file is refused, not read whole.
    #[test]
    fn only_a_small_regular_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.yaml");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .unwrap();
        // No writer ever opens it: an open for reading without O_NONBLOCK would block here.
        let e = Settings::load(&fifo, &defaults()).unwrap_err();
        let chain = format!("{e}: {}", std::error::Error::source(&e).unwrap());
        assert!(chain.contains("not a regular file"), "{chain}");
        assert!(chain.contains("fifo.yaml"), "{chain}");

        // A char device with /dev/null's numbers (harmless to open, unlike a tape or a
        // watchdog), reached through a symlink; inotify tells whether it was ever opened.
        let dev = dir.path().join("null");
        hostready_testkit::fakehost::mknod(&dev, rustix::fs::FileType::CharacterDevice, 1, 3);
        let link = dir.path().join("dev.yaml");
        std::os::unix::fs::symlink(&dev, &link).unwrap();
        let opens = OpenWatch::new(&dev);
        let e = Settings::load(&link, &defaults()).unwrap_err();
        assert!(
            std::error::Error::source(&e)
                .unwrap()
                .to_string()
                .contains("not a regular file"),
            "{e}"
        );
        assert!(!opens.opened(), "the device was opened");
        // The watch does see a real open (so the assertion above can fail).
        drop(std::fs::File::open(&dev).unwrap());
        assert!(opens.opened(), "inotify missed an open");

        let big = dir.path().join("big.yaml");
        std::fs::write(&big, format!("# {}\n", "x".repeat(1 << 20))).unwrap();
        let e = Settings::load(&big, &defaults()).unwrap_err();
        assert!(
            std::error::Error::source(&e)
                .unwrap()
                .to_string()
                .contains("more than the 65536"),
            "{e}"
        );
        // Through a symlink (as a ConfigMap volume mounts it), a real config still loads.
        let real = dir.path().join("real.yaml");
        std::fs::write(&real, "profiles: [iscsi]\n").unwrap();
        let link = dir.path().join("link.yaml");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert_eq!(
            Settings::load(&link, &defaults()).unwrap().profiles[0].name,
            "iscsi"
        );
    }

    /// An inotify watch for opens of one file (an `O_PATH` descriptor is not an open).
    struct OpenWatch(std::os::fd::OwnedFd);

    impl OpenWatch {
        fn new(path: &Path) -> OpenWatch {
            use rustix::fs::inotify;
            let fd = inotify::init(inotify::CreateFlags::NONBLOCK | inotify::CreateFlags::CLOEXEC)
                .unwrap();
            inotify::add_watch(&fd, path, inotify::WatchFlags::OPEN).unwrap();
            OpenWatch(fd)
        }

        fn opened(&self) -> bool {
            let mut buf = [std::mem::MaybeUninit::uninit(); 1024];
            let mut r = rustix::fs::inotify::Reader::new(&self.0, &mut buf);
            let mut seen = false;
            while let Ok(ev) = r.next() {
                seen |= ev.events().contains(rustix::fs::inotify::ReadFlags::OPEN);
            }
            seen
        }
    }

    #[test]
    fn mistakes_are_refused_with_what_is_wrong() {
        for (text, needle) in [
            ("interval: 30\n", "missing unit"),
            ("interval: 0s\n", "more than zero"),
            ("path: bin:/usr/bin\n", "not an absolute directory"),
            ("path: \"\"\n", "path: empty"),
            ("profiles: [nope]\n", "nope"),
            ("colour: blue\n", "unknown field"),
            ("profiles: [iscsi, iscsi]\n", "two profiles"),
        ] {
            let e = load(text).unwrap_err();
            let chain = format!("{e} {:?}", std::error::Error::source(&e));
            assert!(chain.contains(needle), "{text:?}: {chain}");
        }
    }
}
