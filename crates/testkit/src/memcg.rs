//! A command run under a real memory cgroup (cgroup v1's `memory` controller), with its peak
//! resident memory measured.
//!
//! The cgroup is created below the test process's own memory cgroup (so nested sandboxes work),
//! its `memory.limit_in_bytes` set, the command started through `sh` which first moves itself
//! into the cgroup and then `exec`s `/usr/bin/time -f '%M %x'` and the command: everything the
//! command starts is charged to the cgroup and limited by it. After the command exits, any
//! process still in the cgroup is killed and the cgroup removed (also when the test panics).
//!
//! `time`'s `%M` is the peak RSS of the command (the figure the issue bounds); the cgroup's
//! `memory.max_usage_in_bytes` also counts page cache charged to it, so it is reported but not
//! the bound. A command the limit killed shows `oom_kills > 0`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const MEMORY_MOUNT: &str = "/sys/fs/cgroup/memory";

/// What a reader may add, in KiB, to a command's floor (see [`bound_kib`]). 1.5 MiB: the
/// floor runs less of the binary than a lookup does (no NDB, BDB or header code on an empty
/// root), and a debug build's code pages count in its RSS — `check -p iscsi` on a 150 MB NDB
/// root peaked at 1,160 KiB over its floor in a CI rehearsal and under 1 MiB in the run
/// before, while staying flat from 10 to 150 MB, which the scale tests assert on their own.
pub const OVER_FLOOR_KIB: u64 = 1536;

/// The peak-RSS bound, in KiB, for a command whose floor — the same command where there is
/// nothing to read (an empty root) — is `floor_kib`: `absolute_kib` (the documented budget,
/// 16 MiB), or the floor plus [`OVER_FLOOR_KIB`] where the floor alone is above it. The
/// floor is the binary's and its built-in data's (a debug build's grows with the code: 16.4
/// MiB for `pkg query` on an empty root once issue 13's profiles landed); what the bound
/// holds is that the input adds no more than this to it.
pub fn bound_kib(floor_kib: u64, absolute_kib: u64) -> u64 {
    absolute_kib.max(floor_kib + OVER_FLOOR_KIB)
}

/// The DaemonSet's memory limit, read from the shipped manifest
/// (`deploy/manifests/daemonset.yaml`, rendered from the chart), so that every test that
/// runs "under the pod's limit" follows the limit users get.
pub fn daemonset_limit() -> u64 {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/manifests/daemonset.yaml");
    let yaml = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let after = yaml.split_once("limits:").expect("a limits: block").1;
    let mem = after
        .lines()
        .find_map(|l| l.trim().strip_prefix("memory:"))
        .expect("limits.memory");
    let mib: u64 = mem
        .trim()
        .strip_suffix("Mi")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("limits.memory {mem:?} is not N Mi"));
    mib << 20
}

/// What one limited run measured.
#[derive(Debug)]
pub struct Measured {
    /// The command's own output (stdout, stderr; its exit status is in `exit_code`).
    pub output: Output,
    /// The command's exit code as `time` saw it; `None` when it was killed by a signal.
    pub exit_code: Option<i32>,
    /// Peak resident set size of the command, in KiB (`/usr/bin/time`'s `%M`).
    pub max_rss_kib: u64,
    /// The cgroup's `memory.max_usage_in_bytes` (RSS plus charged page cache).
    pub cgroup_max_usage: u64,
    /// How many times the cgroup hit its limit (`memory.failcnt`).
    pub failcnt: u64,
    /// OOM kills inside the cgroup (`oom_kill` in `memory.oom_control`, 0 where absent).
    pub oom_kills: u64,
}

impl Measured {
    /// Returns the peak RSS in MiB, for messages.
    pub fn max_rss_mib(&self) -> f64 {
        self.max_rss_kib as f64 / 1024.0
    }
}

/// A memory cgroup that exists while this value lives.
#[derive(Debug)]
pub struct MemCgroup {
    dir: PathBuf,
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

impl MemCgroup {
    /// Creates a child memory cgroup with a hard limit of `limit_bytes`.
    ///
    /// Panics with a clear message where the cgroup-v1 memory controller is not available (not
    /// root, no `memory` mount): a bound that cannot be shown must fail, never pass silently.
    pub fn new(limit_bytes: u64) -> MemCgroup {
        let parent = own_memory_cgroup().unwrap_or_else(|e| {
            panic!("memcg: no cgroup-v1 memory controller at {MEMORY_MOUNT}: {e}")
        });
        let name = format!(
            "hostready-test-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let dir = parent.join(name);
        fs::create_dir(&dir)
            .unwrap_or_else(|e| panic!("memcg: cannot create {}: {e}", dir.display()));
        let cg = MemCgroup { dir };
        // Without swap accounting a limited process could still be pushed to swap; this machine
        // has no swap, and memsw may be absent, so only the plain limit is required.
        cg.write("memory.limit_in_bytes", &limit_bytes.to_string())
            .unwrap_or_else(|e| panic!("memcg: cannot set the limit: {e}"));
        let _ = cg.write("memory.swappiness", "0");
        cg
    }

    /// Returns the cgroup's directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Runs `program args...` inside this cgroup and waits for it, measuring its peak RSS.
    pub fn run(&self, program: impl AsRef<Path>, args: &[&str]) -> Measured {
        let mut cmd = Command::new(program.as_ref());
        cmd.args(args);
        self.run_command(&mut cmd)
    }

    /// Runs a prepared command (its program, args, env and current directory are used) inside
    /// this cgroup and waits for it, measuring its peak RSS.
    pub fn run_command(&self, cmd: &mut Command) -> Measured {
        let timing = tempfile_path("time");
        let mut wrapped = Command::new("/bin/sh");
        wrapped
            .arg("-c")
            .arg(r#"out=$1; shift; echo $$ > "$0/cgroup.procs" && exec /usr/bin/time -f '%M %x' -o "$out" "$@""#)
            .arg(&self.dir)
            .arg(&timing)
            .arg(cmd.get_program())
            .args(cmd.get_args());
        if let Some(dir) = cmd.get_current_dir() {
            wrapped.current_dir(dir);
        }
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => wrapped.env(k, v),
                None => wrapped.env_remove(k),
            };
        }
        let output = wrapped
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("memcg: cannot start /bin/sh: {e}"));
        let times = fs::read_to_string(&timing).unwrap_or_default();
        let _ = fs::remove_file(&timing);
        // `time -o` writes "Command terminated by signal N" before the figures when killed.
        let last = times.lines().last().unwrap_or("");
        let mut fields = last.split_whitespace();
        let max_rss_kib = fields
            .next()
            .and_then(|f| f.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "memcg: /usr/bin/time wrote no figures ({times:?}); stderr: {}",
                    String::from_utf8_lossy(&output.stderr)
                )
            });
        let killed = times.contains("terminated by signal");
        let exit_code = if killed {
            None
        } else {
            fields.next().and_then(|f| f.parse().ok())
        };
        Measured {
            output,
            exit_code,
            max_rss_kib,
            cgroup_max_usage: self.read_u64("memory.max_usage_in_bytes"),
            failcnt: self.read_u64("memory.failcnt"),
            oom_kills: self.oom_kills(),
        }
    }

    fn oom_kills(&self) -> u64 {
        fs::read_to_string(self.dir.join("memory.oom_control"))
            .ok()
            .and_then(|t| {
                t.lines().find_map(|l| {
                    l.strip_prefix("oom_kill ")
                        .and_then(|n| n.trim().parse().ok())
                })
            })
            .unwrap_or(0)
    }

    fn read_u64(&self, file: &str) -> u64 {
        fs::read_to_string(self.dir.join(file))
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0)
    }

    fn write(&self, file: &str, value: &str) -> io::Result<()> {
        fs::write(self.dir.join(file), value)
    }

    fn pids(&self) -> Vec<i32> {
        fs::read_to_string(self.dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }
}

impl Drop for MemCgroup {
    fn drop(&mut self) {
        // Kill whatever is left (a test that panicked mid-run), then remove the cgroup; rmdir
        // fails with EBUSY until the last member has exited.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let pids = self.pids();
            for pid in &pids {
                let _ = Command::new("/bin/kill")
                    .args(["-KILL", &pid.to_string()])
                    .stderr(Stdio::null())
                    .status();
            }
            if fs::remove_dir(&self.dir).is_ok() || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Returns the memory cgroup directory this process belongs to.
fn own_memory_cgroup() -> io::Result<PathBuf> {
    let text = fs::read_to_string("/proc/self/cgroup")?;
    let rel = text
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
            ctrls.split(',').any(|c| c == "memory").then_some(path)
        })
        .next()
        .ok_or_else(|| io::Error::other("no memory controller in /proc/self/cgroup"))?;
    let dir = Path::new(MEMORY_MOUNT).join(rel.trim_start_matches('/'));
    if !dir.join("memory.limit_in_bytes").is_file() {
        return Err(io::Error::other(format!(
            "{} has no memory.limit_in_bytes",
            dir.display()
        )));
    }
    Ok(dir)
}

fn tempfile_path(what: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "hostready-memcg-{what}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_within_the_limit_is_measured_and_the_cgroup_removed() {
        let cg = MemCgroup::new(64 << 20);
        let dir = cg.path().to_path_buf();
        let m = cg.run("/bin/true", &[]);
        assert_eq!(m.exit_code, Some(0), "{m:?}");
        assert!(m.max_rss_kib > 0 && m.max_rss_kib < 64 * 1024, "{m:?}");
        drop(cg);
        assert!(!dir.exists(), "{} left behind", dir.display());
    }

    #[test]
    fn a_command_over_the_limit_is_killed_by_it() {
        let cg = MemCgroup::new(16 << 20);
        // Touches 64 MiB: the kernel's OOM killer must stop it inside the cgroup.
        let m = cg.run(
            "/usr/bin/perl",
            &["-e", "my $s = 'x' x (64 << 20); print length $s"],
        );
        assert_ne!(m.exit_code, Some(0), "{m:?}");
        assert!(m.failcnt > 0 || m.oom_kills > 0, "{m:?}");
    }
}
