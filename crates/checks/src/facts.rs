//! Host facts shared by the checks, each read at most once per run and only if a check asks:
//! a profile with only executables never opens `/proc/modules`.

use std::cell::OnceCell;
use std::path::PathBuf;

use hostready_host::kernel::{self, KernelConfig, Modules};
use hostready_host::mounts::MountTable;
use hostready_host::os_release::OsRelease;
use hostready_host::procfs::{
    self, MAX_PROC_FILE_BYTES, MAX_SMALL_PROC_FILE_BYTES, Meminfo, Process,
};
use hostready_host::unix_sockets::{self, Listener};
use hostready_host::{Host, Root, exe};

/// Lazily read facts about one host.
#[derive(Debug)]
pub struct Facts<'h> {
    pub host: &'h Host,
    /// The PATH searched for executables.
    pub path_dirs: Vec<PathBuf>,
    os: OnceCell<Result<Option<OsRelease>, String>>,
    release: OnceCell<Result<String, String>>,
    machine: OnceCell<String>,
    modules: OnceCell<Modules>,
    config: OnceCell<Result<KernelConfig, String>>,
    meminfo: OnceCell<Result<Meminfo, String>>,
    cpuinfo: OnceCell<Result<Vec<String>, String>>,
    processes: OnceCell<Result<Vec<Process>, String>>,
    listeners: OnceCell<Result<(Vec<Listener>, String), String>>,
    mounts: OnceCell<Result<(MountTable, String), String>>,
    unsettled: OnceCell<Result<Vec<hostready_pkgdb::Package>, String>>,
}

impl<'h> Facts<'h> {
    /// Prepares to read facts from `host`, searching `path` (a PATH value) for executables.
    pub fn new(host: &'h Host, path: &str) -> Facts<'h> {
        Facts {
            host,
            path_dirs: exe::split_path(path),
            os: OnceCell::new(),
            release: OnceCell::new(),
            machine: OnceCell::new(),
            modules: OnceCell::new(),
            config: OnceCell::new(),
            meminfo: OnceCell::new(),
            cpuinfo: OnceCell::new(),
            processes: OnceCell::new(),
            listeners: OnceCell::new(),
            mounts: OnceCell::new(),
            unsettled: OnceCell::new(),
        }
    }

    /// Returns the host's filesystem root.
    pub fn fs(&self) -> &Root {
        self.host.fs()
    }

    /// Returns the procfs, or why there is none, as a message.
    pub fn proc(&self) -> Result<&Root, String> {
        self.host.proc().map_err(|e| e.0.clone())
    }

    /// Returns the host's os-release, if readable.
    pub fn os(&self) -> Option<&OsRelease> {
        self.os_read().as_ref().ok().and_then(Option::as_ref)
    }

    /// Returns why the host's os-release exists but could not be read (permission denied, not
    /// a regular file, ...); `None` when it was read or is absent.
    pub fn os_error(&self) -> Option<&str> {
        self.os_read().as_ref().err().map(String::as_str)
    }

    fn os_read(&self) -> &Result<Option<OsRelease>, String> {
        self.os.get_or_init(|| {
            OsRelease::try_read(self.fs()).map_err(|e| format!("cannot read {e}: {}", e.source))
        })
    }

    /// Returns the running kernel's release.
    pub fn release(&self) -> Result<&str, &str> {
        self.release
            .get_or_init(|| {
                let proc = self.proc()?;
                kernel::release(proc).map_err(|e| format!("cannot read {}: {}", e, e.source))
            })
            .as_deref()
            .map_err(String::as_str)
    }

    /// Returns the machine (`uname -m`) of the kernel hostready runs on, which is the host's:
    /// a DaemonSet shares the node's kernel.
    pub fn machine(&self) -> &str {
        self.machine.get_or_init(|| {
            rustix::system::uname()
                .machine()
                .to_string_lossy()
                .into_owned()
        })
    }

    /// Returns what is known about kernel modules.
    pub fn modules(&self) -> &Modules {
        self.modules.get_or_init(|| {
            let release = self.release().unwrap_or("unknown");
            Modules::read(self.fs(), self.proc().ok(), release)
        })
    }

    /// Returns the kernel configuration, or the places tried.
    pub fn kernel_config(&self) -> Result<&KernelConfig, &str> {
        self.config
            .get_or_init(|| {
                let release = self.release().map_err(str::to_string)?;
                kernel::read_config(self.fs(), self.proc().ok(), release)
                    .map_err(|tried| format!("no kernel config found (tried {})", tried.join(", ")))
            })
            .as_ref()
            .map_err(String::as_str)
    }

    /// Returns `/proc/meminfo`, checked: impossible figures are an error, never a fact.
    pub fn meminfo(&self) -> Result<&Meminfo, &str> {
        self.meminfo
            .get_or_init(|| {
                let text = read_proc(self, "/meminfo", MAX_SMALL_PROC_FILE_BYTES)?;
                Meminfo::parse(&text).map_err(|e| format!("/proc/{e}"))
            })
            .as_ref()
            .map_err(String::as_str)
    }

    /// Returns the CPU flags from `/proc/cpuinfo`.
    pub fn cpu_flags(&self) -> Result<&[String], &str> {
        self.cpuinfo
            .get_or_init(|| {
                read_proc(self, "/cpuinfo", MAX_PROC_FILE_BYTES)
                    .map(|t| procfs::parse_cpu_flags(&t))
            })
            .as_deref()
            .map_err(String::as_str)
    }

    /// Returns the host's processes.
    pub fn processes(&self) -> Result<&[Process], &str> {
        self.processes
            .get_or_init(|| {
                let proc = self.proc()?;
                procfs::processes(proc).map_err(|e| format!("cannot list {}: {}", e, e.source))
            })
            .as_deref()
            .map_err(String::as_str)
    }

    /// Returns the state letter of a host process, or `None` if it is gone or there is no procfs.
    pub fn process_state(&self, pid: u32) -> Option<char> {
        procfs::process_state(self.proc().ok()?, pid)
    }

    /// Returns the listening Unix sockets of the host's network namespace and the file read,
    /// streamed (see `hostready_host::unix_sockets`: a node may have 100,000 sockets).
    pub fn unix_listeners(&self) -> Result<(&[Listener], &str), &str> {
        self.listeners
            .get_or_init(|| {
                let proc = self.proc()?;
                unix_sockets::read_listeners(proc).map_err(|e| {
                    let mut msg = e.to_string();
                    if let Some(s) = std::error::Error::source(&e) {
                        msg.push_str(&format!(": {s}"));
                        if let Some(s) = s.source() {
                            msg.push_str(&format!(": {s}"));
                        }
                    }
                    msg
                })
            })
            .as_ref()
            .map(|(l, s)| (l.as_slice(), s.as_str()))
            .map_err(String::as_str)
    }

    /// Returns a main configuration file followed by the `*.conf` files of its drop-in
    /// directory in name order — the order in which nfs-utils and multipath-tools read them.
    /// A drop-in directory that exists but cannot be listed is an error: a setting in it
    /// would be missed.
    pub fn config_with_dropins(&self, main: &str, dropin_dir: &str) -> Result<Vec<String>, String> {
        let mut files = vec![main.to_string()];
        match self.fs().read_dir(dropin_dir) {
            Ok(mut names) => {
                names.sort();
                files.extend(
                    names
                        .iter()
                        .filter_map(|n| n.to_str())
                        .filter(|n| n.ends_with(".conf"))
                        .map(|n| format!("{dropin_dir}/{n}")),
                );
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(format!("cannot list {e}: {}", e.source)),
        }
        Ok(files)
    }

    /// Returns the host's mount table (pid 1's mount namespace) and the file read, read once
    /// per run for every check that asks (propagation, cgroup layout, data paths, raw disks).
    /// It holds the text, at most `MAX_PROC_FILE_BYTES` (4 MiB); entries are parsed as
    /// iterated (see `hostready_host::mounts`).
    pub fn mounts(&self) -> Result<(&MountTable, &str), &str> {
        self.mounts
            .get_or_init(|| {
                let proc = self.proc()?;
                procfs::read_host_wide(proc, "mountinfo")
                    .map(|(t, src)| (MountTable::new(t), format!("/proc{src}")))
                    .map_err(|e| format!("cannot read {}: {}", e, e.source))
            })
            .as_ref()
            .map(|(m, s)| (m, s.as_str()))
            .map_err(String::as_str)
    }
}

impl Facts<'_> {
    /// Returns the dpkg packages whose installation did not finish (`iU`, `iF`, ...), read
    /// once per run (see `hostready_pkgdb::dpkg_unsettled`).
    pub fn dpkg_unsettled(&self) -> Result<&[hostready_pkgdb::Package], &str> {
        self.unsettled
            .get_or_init(|| {
                hostready_pkgdb::dpkg_unsettled(self.fs())
                    .map_err(|e| hostready_pkgdb::error_chain(&e))
            })
            .as_deref()
            .map_err(String::as_str)
    }
}

fn read_proc(facts: &Facts<'_>, path: &str, max: u64) -> Result<String, String> {
    let proc = facts.proc()?;
    proc.read_to_string_bounded(path, max)
        .map_err(|e| format!("cannot read /proc{path}: {}", e.source))
}
