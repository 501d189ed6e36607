//! Fake hosts built file by file in temp dirs: a root and a procfs tree beside it
//! ([`FakeHost`]), a procfs laid out for `doctor` ([`FakeProc`]), a root holding one rpm
//! database file ([`rpmdb_root`]), and the real fixtures read in place ([`fixture`]).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::FIXTURES;

/// Writes `data` at `path` (absolute, as on the host) below `base`, creating directories.
pub fn write(base: &Path, path: &str, data: impl AsRef<[u8]>) -> PathBuf {
    let p = base.join(path.trim_start_matches('/'));
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, data).unwrap();
    p
}

/// [`write`], then sets the file's permission bits to `mode`.
pub fn write_mode(base: &Path, path: &str, data: impl AsRef<[u8]>, mode: u32) -> PathBuf {
    let p = write(base, path, data);
    fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    p
}

/// Makes a FIFO or device node at `path` (`major`, `minor` for a device; 0, 0 for a FIFO),
/// replacing a file there and making its parent: the special files a hostile root puts where
/// a regular file should be. A device node needs root.
pub fn mknod(path: &Path, kind: rustix::fs::FileType, major: u32, minor: u32) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    let _ = fs::remove_file(path);
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        kind,
        rustix::fs::Mode::from_raw_mode(0o644),
        rustix::fs::makedev(major, minor),
    )
    .unwrap_or_else(|e| panic!("mknod {}: {e} (this test needs root)", path.display()));
}

/// A host root (`dir/root`) and a procfs tree (`dir/proc`), both empty directories, in a temp
/// dir an unprivileged user can reach (0755: tempdir makes 0700), deleted on drop.
#[derive(Debug)]
pub struct FakeHost {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub proc: PathBuf,
}

impl FakeHost {
    pub fn new() -> FakeHost {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let h = FakeHost {
            root: dir.path().join("root"),
            proc: dir.path().join("proc"),
            dir,
        };
        fs::create_dir_all(&h.root).unwrap();
        fs::create_dir_all(&h.proc).unwrap();
        h
    }

    /// Writes a file of the root.
    pub fn file(&self, path: &str, text: &str) -> PathBuf {
        write(&self.root, path, text)
    }

    /// Writes a file of the procfs tree.
    pub fn proc_file(&self, path: &str, text: &str) -> PathBuf {
        write(&self.proc, path, text)
    }
}

impl Default for FakeHost {
    fn default() -> FakeHost {
        FakeHost::new()
    }
}

/// Writes pid 1 into the procfs tree `proc`: systemd, whose mount namespace has `/` on ext4
/// (`1/comm`, `1/stat`, `1/mountinfo`), as the checks read the host's init.
pub fn init_process(proc: &Path) {
    write(proc, "1/comm", "systemd\n");
    write(proc, "1/stat", "1 (systemd) S 0 1 1\n");
    write(
        proc,
        "1/mountinfo",
        "22 1 253:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n",
    );
}

/// Zero pressure, as an idle machine's `/proc/pressure/memory` reads.
pub const IDLE_PSI: &str = "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n\
                            full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";

/// A directory laid out like a procfs: the files doctor reads, and one directory per process.
/// Its clock: uptime 1000 s, boot time 1764380000, 100 ticks a second.
#[derive(Debug)]
pub struct FakeProc {
    dir: tempfile::TempDir,
}

impl FakeProc {
    /// An idle 16 GB machine with no locks.
    pub fn new() -> FakeProc {
        FakeProc::with(
            "MemTotal:       16000000 kB\nMemFree:         8000000 kB\nMemAvailable:   12000000 kB\n",
            IDLE_PSI,
            "",
        )
    }

    /// A procfs whose `meminfo`, `pressure/memory` and `locks` are the texts given.
    pub fn with(meminfo: &str, psi: &str, locks: &str) -> FakeProc {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        write(p, "uptime", "1000.00 1800.00\n");
        write(p, "stat", "cpu  1 0 1 100 0 0 0 0 0 0\nbtime 1764380000\n");
        write(p, "meminfo", meminfo);
        write(p, "locks", locks);
        write(p, "pressure/memory", psi);
        FakeProc { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Adds a process that started `age` seconds before the fake uptime and returns its
    /// directory (`stat`, `cmdline`, `statm`, `smaps_rollup`).
    pub fn process(
        &self,
        pid: u32,
        ppid: u32,
        comm: &str,
        state: char,
        argv: &[&str],
        age: u64,
    ) -> PathBuf {
        let d = self.dir.path().join(pid.to_string());
        fs::create_dir(&d).unwrap();
        // Start times count clock ticks: USER_HZ, 100 on every architecture Linux runs on.
        let start = (1000 - age) * 100;
        write(
            &d,
            "stat",
            format!(
                "{pid} ({comm}) {state} {ppid} {pid} {pid} 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 {start} 12537856 600 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
            ),
        );
        let mut cmdline = argv.join("\0");
        cmdline.push('\0');
        write(&d, "cmdline", cmdline);
        write(&d, "statm", "730 439 412 5 0 89 0\n");
        write(
            &d,
            "smaps_rollup",
            "Rss: 1756 kB\nPrivate_Clean: 40 kB\nPrivate_Dirty: 636 kB\n",
        );
        d
    }
}

impl Default for FakeProc {
    fn default() -> FakeProc {
        FakeProc::new()
    }
}

/// A mount (made with mount(8): root only) that is lazily unmounted when dropped, whatever
/// the test did: a procfs inside a fake root, a bind mount over part of one.
#[derive(Debug)]
pub struct Mount(PathBuf);

impl Mount {
    /// `mount ARGS AT`, creating `at` (as a directory) first if it does not exist; panics
    /// saying why when it fails.
    pub fn new(args: &[&str], at: &Path) -> Mount {
        if !at.exists() {
            fs::create_dir_all(at).unwrap();
        }
        let ok = std::process::Command::new("mount")
            .args(args)
            .arg(at)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount {args:?} {} (needs root)", at.display());
        Mount(at.to_path_buf())
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Reads a fixture (`../shared/fixtures/rpmdb/<rel>`) in place.
pub fn fixture(rel: &str) -> Vec<u8> {
    let p = Path::new(FIXTURES).join(rel);
    fs::read(&p).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the fixtures live in ../shared beside the checkout)",
            p.display()
        )
    })
}

/// A root whose `/var/lib/rpm/<name>` holds `bytes` (and nothing else: no `/proc`).
pub fn rpmdb_root(name: &str, bytes: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &format!("var/lib/rpm/{name}"), bytes);
    dir
}

/// A root whose dpkg database is `status` (`/var/lib/dpkg/status`) and, for each
/// `(package, files)` of `lists`, the file list `/var/lib/dpkg/info/<package>.list`.
pub fn dpkg_root(status: impl AsRef<[u8]>, lists: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("var/lib/dpkg");
    fs::create_dir_all(d.join("info")).unwrap();
    fs::write(d.join("status"), status).unwrap();
    for (name, files) in lists {
        fs::write(d.join(format!("info/{name}.list")), files).unwrap();
    }
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_proc_processes_start_age_seconds_before_uptime() {
        let p = FakeProc::new();
        let d = p.process(42, 1, "rpm", 'D', &["rpm", "-q"], 300);
        let stat = fs::read_to_string(d.join("stat")).unwrap();
        assert!(stat.starts_with("42 (rpm) D 1 42 42 "), "{stat}");
        assert_eq!(stat.split_whitespace().nth(21), Some("70000"));
        assert_eq!(fs::read(d.join("cmdline")).unwrap(), b"rpm\0-q\0");
    }

    #[test]
    fn files_are_written_below_the_base_whatever_the_leading_slash() {
        let h = FakeHost::new();
        let a = h.file("/etc/os-release", "ID=debian\n");
        assert_eq!(a, h.root.join("etc/os-release"));
        assert_eq!(
            rpmdb_root("Packages", b"x")
                .path()
                .join("var/lib/rpm/Packages")
                .metadata()
                .unwrap()
                .len(),
            1
        );
    }
}
