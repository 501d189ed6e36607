//! This process's own procfs, `/proc`, for the runner and the agent: the children they start
//! and must find, identify and kill are in their own pid namespace, whatever host they
//! inspect, so these reads are not rooted. The parsers are the same as for a host's procfs.
//!
//! Memory bound: `stat`, `comm`, `status`, `ns_last_pid` and each thread's `children` are read with
//! [`MAX_SMALL_PROC_FILE_BYTES`](super::MAX_SMALL_PROC_FILE_BYTES), `environ` with
//! [`MAX_PROC_FILE_BYTES`](super::MAX_PROC_FILE_BYTES) (more than `ARG_MAX` at the default
//! stack limit); a longer file is read no further.

// The one place outside `Root` that reads /proc by path: see the module header.
#![allow(clippy::disallowed_methods)]

use std::io::Read;

use super::{MAX_PROC_FILE_BYTES, MAX_SMALL_PROC_FILE_BYTES, Stat, parse_stat, parse_uptime};

fn read_capped(path: &str, cap: u64) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(cap)
        .read_to_end(&mut buf)
        .ok()?;
    Some(buf)
}

fn read_text(path: &str) -> Option<String> {
    let b = read_capped(path, MAX_SMALL_PROC_FILE_BYTES)?;
    String::from_utf8(b).ok()
}

/// Returns the parsed `/proc/<pid>/stat`, or `None` when the process is gone.
pub fn read_stat(pid: i32) -> Option<Stat> {
    parse_stat(&read_text(&format!("/proc/{pid}/stat"))?)
}

/// Returns `/proc/<pid>/comm` without its newline, or `None` when the process is gone.
pub fn read_comm(pid: i32) -> Option<String> {
    read_text(&format!("/proc/{pid}/comm")).map(|s| s.trim_end_matches('\n').to_string())
}

/// Returns this process's `/proc/self/status` (its own memory figures, for the agent's
/// metrics), or `None` when it cannot be read.
pub fn self_status() -> Option<String> {
    read_text("/proc/self/status")
}

/// Returns this process's own `/proc/self/stat` (the agent's CPU time and sizes, for its
/// metrics), or `None` when it cannot be read.
pub fn self_stat() -> Option<Stat> {
    parse_stat(&read_text("/proc/self/stat")?)
}

/// Returns the seconds since boot (`/proc/uptime`).
pub fn uptime() -> Option<f64> {
    parse_uptime(&read_text("/proc/uptime")?)
}

/// Counts this process's open descriptors (`/proc/self/fd`, without the one listing it),
/// one entry at a time: nothing is collected.
pub fn self_fd_count() -> Option<u64> {
    let mut n: u64 = 0;
    for entry in std::fs::read_dir("/proc/self/fd").ok()? {
        entry.ok()?;
        n += 1;
    }
    Some(n.saturating_sub(1))
}

/// Returns `/proc/<pid>/environ`, or `None` when it cannot be read (gone, not ours).
pub fn read_environ(pid: i32) -> Option<Vec<u8>> {
    read_capped(&format!("/proc/{pid}/environ"), MAX_PROC_FILE_BYTES)
}

/// Returns the pid the kernel allocated last in this pid namespace
/// (`/proc/sys/kernel/ns_last_pid`).
pub fn ns_last_pid() -> Option<i32> {
    read_text("/proc/sys/kernel/ns_last_pid")?
        .trim()
        .parse()
        .ok()
}

/// Returns the pids listed in `/proc`, in no order; `None` when `/proc` cannot be listed.
pub fn pids() -> Option<Vec<i32>> {
    let dir = std::fs::read_dir("/proc").ok()?;
    Some(
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .collect(),
    )
}

/// Returns the direct children of this process, from `/proc/self/task/<tid>/children` of
/// every thread (`CONFIG_PROC_CHILDREN`), or `None` when this kernel does not list children.
pub fn own_children() -> Option<Vec<i32>> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    let mut listed = false;
    let mut out = Vec::new();
    for t in tasks.flatten() {
        let Some(text) = read_capped_path(&t.path().join("children")) else {
            continue;
        };
        listed = true;
        out.extend(
            text.split_ascii_whitespace()
                .filter_map(|c| c.parse::<i32>().ok()),
        );
    }
    listed.then_some(out)
}

/// Reads a `children` list: one pid per child, a few bytes each, so the small cap holds
/// thousands of them.
fn read_capped_path(path: &std::path::Path) -> Option<String> {
    let mut buf = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_SMALL_PROC_FILE_BYTES)
        .read_to_end(&mut buf)
        .ok()?;
    String::from_utf8(buf).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        let me = std::process::id() as i32;
        let st = read_stat(me).unwrap();
        assert_eq!(st.pid, me);
        assert!(matches!(st.state, 'R' | 'S'));
        assert!(!read_comm(me).unwrap().is_empty());
        assert!(pids().unwrap().contains(&me));
        assert!(ns_last_pid().unwrap() > 0);
        assert!(read_environ(me).is_some());
        assert_eq!(self_stat().unwrap().pid, me);
        assert!(uptime().unwrap() > 0.0);
        let before = self_fd_count().unwrap();
        let extra = std::fs::File::open("/proc/self/stat").unwrap();
        assert_eq!(self_fd_count().unwrap(), before + 1);
        drop(extra);
        assert!(super::super::status_kb(&self_status().unwrap(), "VmRSS").unwrap() > 0);
        assert_eq!(read_stat(-5), None);
        let mut child = std::process::Command::new("/bin/sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let kids = own_children();
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(kids.unwrap().contains(&(child.id() as i32)));
    }
}
