//! Real processes a test starts, owned by guards whose `Drop` kills and reaps them, so a
//! failing assertion never leaves a sleeper, a lock holder or a zombie behind; and the few
//! questions tests ask about live processes (by argv[0], by RSS).

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::wait::wait_until;

/// Panics unless `path` exists: a test that needs a program says which and how to get it
/// instead of passing without running (CI installs everything with `scripts/setup`).
pub fn need(path: &str) {
    assert!(
        Path::new(path).exists(),
        "this test needs {path}, which is missing: run scripts/setup (it installs it)"
    );
}

/// Writes an executable file `to` holding `contents` without this process ever having it
/// open for writing: a file a multi-threaded test writes itself can be inherited, open, by
/// a child another thread is forking at that moment, and executing it fails with ETXTBSY
/// ("Text file busy") until that child execs. The bytes go to a staging file first and a
/// child `cp` writes the executable.
pub fn write_executable(to: &Path, contents: &[u8]) {
    let staged = to.with_file_name(format!(
        ".{}.staged",
        to.file_name().and_then(|n| n.to_str()).unwrap_or("exe")
    ));
    std::fs::write(&staged, contents).unwrap_or_else(|e| panic!("{}: {e}", staged.display()));
    copy_executable(&staged, to);
    std::fs::remove_file(&staged).unwrap_or_else(|e| panic!("{}: {e}", staged.display()));
}

/// Copies `from` to an executable `to` in a child `cp`, for the reason [`write_executable`]
/// gives.
pub fn copy_executable(from: &Path, to: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let ok = Command::new("cp")
        .arg(from)
        .arg(to)
        .status()
        .unwrap_or_else(|e| panic!("cp: {e}"))
        .success();
    assert!(ok, "cp {} {}", from.display(), to.display());
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("{}: {e}", to.display()));
}

/// A child that is killed and reaped when dropped.
#[derive(Debug)]
pub struct Reaped(pub Child);

impl Reaped {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A child leading a process group of its own; dropping it kills the whole group (children
/// it started included) and reaps the child.
#[derive(Debug)]
pub struct Group {
    pub child: Child,
}

impl Group {
    /// Starts `cmd` as the leader of a new process group.
    pub fn spawn(cmd: &mut Command) -> Group {
        let child = cmd.process_group(0).spawn().expect("spawn");
        Group { child }
    }

    /// Starts `cmd` with stdin, stdout and stderr closed, as the leader of a new group.
    pub fn quiet(cmd: &mut Command) -> Group {
        Group::spawn(
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
    }

    /// Starts `bash -c script` (argv[0] = `name`, stdio closed) as a new group's leader.
    pub fn bash(name: &str, script: &str) -> Group {
        Group::quiet(Command::new("/bin/bash").arg0(name).arg("-c").arg(script))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(pgid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `sqlite3 DB` holding an exclusive lock (`PRAGMA locking_mode=EXCLUSIVE; BEGIN
/// EXCLUSIVE;` then `then`, as in the incident: every `rpm -q` waits behind it) until the
/// returned group is dropped, and waits until the kernel's lock table shows its write lock.
pub fn hold_sqlite_exclusive(db: &Path, then: &str) -> Group {
    need("/usr/bin/sqlite3");
    let mut holder = Group::spawn(
        Command::new("sqlite3")
            .arg(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    // stdin stays open inside the child handle: closing it would end sqlite3 and its lock.
    holder
        .child
        .stdin
        .as_mut()
        .expect("piped stdin")
        .write_all(format!("PRAGMA locking_mode=EXCLUSIVE; BEGIN EXCLUSIVE; {then}\n").as_bytes())
        .expect("write to sqlite3");
    let pid = holder.pid();
    assert!(
        wait_until(|| std::fs::read_to_string("/proc/locks")
            .unwrap()
            .contains(&format!("WRITE {pid} "))),
        "sqlite3 took no lock on {}",
        db.display()
    );
    holder
}

/// Runs `sql` on the database `db` with the real sqlite3 CLI (to damage an rpmdb copy, say);
/// panics with sqlite3's error when it fails.
pub fn sqlite3(db: &Path, sql: &str) {
    need("/usr/bin/sqlite3");
    let out = Command::new("sqlite3")
        .arg(db)
        .arg(sql)
        .output()
        .expect("run sqlite3");
    assert!(
        out.status.success(),
        "sqlite3 {} {sql}: {}",
        db.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `cmd` with `input` on its standard input (stdout and stderr captured) and waits for it.
pub fn output_with_stdin(cmd: &mut Command, input: &[u8]) -> std::process::Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the command");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input)
        .expect("write its standard input");
    child.wait_with_output().expect("wait for the command")
}

/// Returns a lowercase marker unique to this test process and call, so concurrent tests on
/// this machine never share a group (digits would be normalised away, so letters only).
pub fn marker(prefix: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut v = (u64::from(std::process::id()) << 16) | n;
    let mut s = String::from(prefix);
    for _ in 0..8 {
        s.push((b'a' + (v % 26) as u8) as char);
        v /= 26;
    }
    s
}

/// Counts live processes whose argv[0] is `argv0` (any bytes: hostile names included).
pub fn count_argv0(argv0: impl AsRef<[u8]>) -> usize {
    let argv0 = argv0.as_ref();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .is_ok_and(|c| c.split(|b| *b == 0).next() == Some(argv0))
        })
        .count()
}

/// The resident set of process `pid` in KiB (`VmRSS`), or `None` once it has exited.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let l = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    l.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropping_a_group_kills_the_children_it_started() {
        let name = marker("hrkitgroup");
        let g = Group::bash(
            &name,
            &format!("exec -a {name} sleep 600 & exec -a {name} sleep 600"),
        );
        assert!(wait_until(|| count_argv0(&name) == 2), "two sleepers");
        assert!(rss_kib(g.pid()).is_some());
        drop(g);
        assert!(wait_until(|| count_argv0(&name) == 0), "sleepers left");
    }

    #[test]
    fn markers_are_letters_and_differ() {
        let (a, b) = (marker("x"), marker("x"));
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_lowercase()));
    }
}
