//! What the child does between `fork` and `exec`: move itself into its probe's cgroup, and, for
//! a sandboxed probe, enter its root and drop every privilege. The one module of this crate with
//! `unsafe`, because `CommandExt::pre_exec` is unsafe.
//!
//! Why it must be here and not after the spawn: a probe moved into its cgroup *after* `exec`
//! could fork (or a sandboxed program act as root) before the parent gets to it. The kernel's
//! alternative for the cgroup (`clone3` with `CLONE_INTO_CGROUP`) is v2 only and needs its own
//! unsafe `clone`; std's `uid`/`gid` run before `pre_exec` closures, too early for `chroot` and
//! the bounding-set drop, which need the privileges they remove.
//!
//! What makes the closure sound: after `fork` in a multi-threaded process only
//! async-signal-safe work is allowed. Everything is prepared in the parent (paths as `CString`,
//! the cgroup file opened, ids and the last capability number read), and the closure only makes
//! raw system calls through rustix (each a plain syscall on the calling thread, no allocation,
//! no lock, no libc set-id broadcast to other threads, of which the child has none) and builds
//! `io::Error`s from errno values, which does not allocate.

#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::Command;

use rustix::process::{Gid, Uid};
use rustix::thread::{CapabilitySet, CapabilitySets};

use crate::outcome::StartError;
use crate::spec::Sandbox;

/// Everything the child needs, prepared by the parent.
#[derive(Debug)]
pub(crate) struct ChildSetup {
    cgroup_procs: Option<OwnedFd>,
    nice: i32,
    sandbox: Option<Prepared>,
}

#[derive(Debug)]
struct Prepared {
    root: Option<CString>,
    uid: Uid,
    gid: Gid,
    last_cap: u32,
}

impl ChildSetup {
    /// Prepares the setup; refuses a sandbox that would run as root, or that this process lacks
    /// the capabilities to set up (it would fail in the child with a bare errno otherwise).
    pub(crate) fn new(
        cgroup_procs: Option<OwnedFd>,
        nice: i32,
        sandbox: Option<&Sandbox>,
    ) -> Result<ChildSetup, StartError> {
        let sandbox = match sandbox {
            None => None,
            Some(s) => Some(prepare(s)?),
        };
        Ok(ChildSetup {
            cgroup_procs,
            nice,
            sandbox,
        })
    }

    /// Returns true if and only if the child will move itself into a cgroup.
    pub(crate) fn uses_cgroup(&self) -> bool {
        self.cgroup_procs.is_some()
    }

    /// Installs the setup as the command's `pre_exec` hook.
    pub(crate) fn install(self, cmd: &mut Command) {
        if self.cgroup_procs.is_none() && self.nice == 0 && self.sandbox.is_none() {
            return;
        }
        let ChildSetup {
            cgroup_procs,
            nice,
            sandbox,
        } = self;
        // SAFETY: the closure only makes async-signal-safe raw syscalls on data prepared before
        // the fork and allocates nothing (see the module docs).
        unsafe {
            cmd.pre_exec(move || in_child(cgroup_procs.as_ref(), nice, sandbox.as_ref()));
        }
    }
}

fn prepare(s: &Sandbox) -> Result<Prepared, StartError> {
    let refuse = |why: String| Err(StartError::Confine(why));
    if s.uid == 0 || s.gid == 0 {
        return refuse("a sandbox never runs as uid or gid 0".into());
    }
    let mut need = CapabilitySet::SETUID | CapabilitySet::SETGID | CapabilitySet::SETPCAP;
    if s.root.is_some() {
        need |= CapabilitySet::SYS_CHROOT;
    }
    let have = rustix::thread::capabilities(None)
        .map(|c| c.effective)
        .unwrap_or(CapabilitySet::empty());
    if !have.contains(need) {
        return refuse(format!(
            "hostready lacks {:?} to drop the probe's privileges",
            need - have
        ));
    }
    let root = match &s.root {
        None => None,
        Some(r) => Some(CString::new(r.as_os_str().as_bytes()).map_err(|_| {
            StartError::Confine(format!("root {} contains a NUL byte", r.display()))
        })?),
    };
    // The highest capability number this kernel knows; every one up to it leaves the bounding
    // set. 63 if unreadable: the drop then ignores the numbers the kernel rejects as unknown.
    // This kernel's own limit, read in this process's namespace: not host content.
    #[allow(clippy::disallowed_methods)]
    let last_cap = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(63)
        .min(63);
    Ok(Prepared {
        root,
        uid: Uid::from_raw(s.uid),
        gid: Gid::from_raw(s.gid),
        last_cap,
    })
}

/// Runs in the child, after fork, before exec. Async-signal-safe only.
fn in_child(
    cgroup_procs: Option<&OwnedFd>,
    nice: i32,
    sandbox: Option<&Prepared>,
) -> io::Result<()> {
    if let Some(fd) = cgroup_procs {
        // "0" names the writing process: the child moves itself, before any code of the probe.
        rustix::io::write(fd, b"0")?;
    }
    if nice != 0 {
        // Relative to hostready's own priority, like nice(1); raising it needs privilege, so
        // a failure is not fatal for a lowering request only.
        let current = rustix::process::getpriority_process(None).unwrap_or(0);
        match rustix::process::setpriority_process(None, current.saturating_add(nice).min(19)) {
            Ok(()) => {}
            Err(_) if nice > 0 => {}
            Err(e) => return Err(e.into()),
        }
    }
    let Some(s) = sandbox else { return Ok(()) };
    if let Some(root) = &s.root {
        rustix::process::chroot(root.as_c_str())?;
        rustix::process::chdir(c"/")?;
    }
    for cap in 0..=s.last_cap {
        match rustix::thread::remove_capability_from_bounding_set(CapabilitySet::from_bits_retain(
            1u64 << cap,
        )) {
            Ok(()) => {}
            // A number this kernel does not know (only when cap_last_cap was unreadable).
            Err(rustix::io::Errno::INVAL) if s.last_cap == 63 => {}
            Err(e) => return Err(e.into()),
        }
    }
    rustix::thread::set_thread_groups(&[])?;
    rustix::thread::set_thread_res_gid(s.gid, s.gid, s.gid)?;
    // From uid 0 to all-nonzero uids the kernel clears the permitted, effective and ambient sets.
    rustix::thread::set_thread_res_uid(s.uid, s.uid, s.uid)?;
    rustix::thread::set_capabilities(
        None,
        CapabilitySets {
            effective: CapabilitySet::empty(),
            permitted: CapabilitySet::empty(),
            inheritable: CapabilitySet::empty(),
        },
    )?;
    rustix::thread::set_no_new_privs(true)?;
    Ok(())
}
