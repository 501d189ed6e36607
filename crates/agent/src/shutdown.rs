//! Stopping cleanly: SIGTERM or SIGINT ends the loop, and every process the agent started is
//! killed before it exits, so a pod that is deleted mid-probe leaves nothing behind.
//!
//! The bounded runner kills a probe at its deadline, but a cycle abandoned at SIGTERM may still
//! have one running. Each probe leads its own process group and is a child of this process
//! (which is also a child subreaper, so escaped descendants are children too): killing the
//! group of every child that leads one, and every other child, covers them all.

/// Resolves at SIGTERM or SIGINT.
pub async fn signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        // Without signal handlers the default action (exit) applies anyway.
        _ => std::future::pending().await,
    }
}

/// Sends SIGKILL to every child of this process, and to the process group of each child that
/// leads one. Children are found in `/proc` (this process's own, not the host's).
pub fn kill_children() -> usize {
    use hostready_host::procfs::live;
    use rustix::process::{Pid, Signal, kill_process, kill_process_group};
    let me = std::process::id();
    let Some(pids) = live::pids() else {
        return 0;
    };
    let mut killed = 0;
    for pid in pids {
        let Some(stat) = live::read_stat(pid) else {
            continue;
        };
        if u32::try_from(stat.ppid).ok() != Some(me) {
            continue;
        }
        let pgrp = stat.pgrp;
        // An unreaped child's pid cannot be reused, so signalling it by pid is safe.
        let Some(p) = Pid::from_raw(pid) else {
            continue;
        };
        if pgrp == pid {
            let _ = kill_process_group(p, Signal::KILL);
        }
        let _ = kill_process(p, Signal::KILL);
        killed += 1;
    }
    killed
}
