//! Every built-in profile, requirement by requirement, on host roots built file by file: each
//! one loads, cites a source whose key resolved, passes on a root that has what it asks,
//! fails (or warns, when recommended) on a root that lacks only it (or, asking nothing a root
//! can lack, still passes there), and is unknown where its facts need a procfs and there is
//! none. Table-driven over the profiles' own requirements, so
//! a requirement added to a profile is covered without editing this file (a requirement of a
//! kind, or with an option, the table does not model panics and says so).

// Tests build fake hosts, sockets, device nodes and a loop device directly.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::os::unix::net::UnixListener;
use std::process::Command;

use hostready_checks::checks::cri::KNOWN_CRI_SOCKETS;
use hostready_checks::profile::{self, sources};
use hostready_checks::{Check, Facts, Level, Profile, Requirement, Status, evaluate};
use hostready_host::{Host, ProcSource};
use hostready_testkit::fakehost::{FakeHost, Mount, init_process, write};

const RELEASE: &str = "6.8.0-1-amd64";

/// The built-in profiles the `longhorn` profile is made of.
const LONGHORN_PARTS: [&str; 7] = [
    "iscsi",
    "nfs-client",
    "encryption",
    "multipath",
    "kernel",
    "mount-propagation",
    "longhorn-utils",
];

fn builtins() -> Vec<Profile> {
    profile::builtin_names()
        .into_iter()
        .map(|n| profile::load(n).unwrap_or_else(|e| panic!("{n}: {e}")))
        .collect()
}

#[test]
fn every_builtin_loads_and_every_requirement_cites_a_resolved_source() {
    let catalogue = sources::catalogue().unwrap();
    for p in builtins() {
        assert!(!p.description.is_empty(), "{}", p.name);
        // The Longhorn parts (iscsi, kernel, ...) derive theirs; the storage systems name one.
        if !LONGHORN_PARTS.contains(&p.name.as_str()) {
            assert!(p.condition.is_some(), "{}: no condition type", p.name);
        }
        for r in &p.requirements {
            assert!(!r.sources.is_empty(), "{} {}: no source", p.name, r.id);
            for s in &r.sources {
                assert!(
                    sources::is_location(&s.location),
                    "{} {}: {s:?}",
                    p.name,
                    r.id
                );
                if let Some(k) = &s.key {
                    assert_eq!(catalogue.get(k), Some(&s.location), "{} {}", p.name, r.id);
                }
            }
        }
    }
}

/// Rook's `dataDirHostPath` has constraints a host can fail (it could only pass or be unknown):
/// a writable mount and Rook's own size of a mon store, from the CephCluster reference and
/// Ceph's monitor settings. The table test below holds them pass and warn on built roots.
#[test]
fn rook_data_dir_host_path_wants_a_writable_mount_with_space() {
    let p = profile::load("rook-ceph").unwrap();
    let r = p
        .requirements
        .iter()
        .find(|r| r.id == "path./var/lib/rook")
        .expect("rook-ceph checks dataDirHostPath");
    let Check::DataPath(d) = &r.check else {
        panic!("{r:?}")
    };
    assert_eq!(d.min_free_gib, Some(10));
    assert_eq!(d.forbid_options, ["ro"]);
    assert!(d.filesystems.is_empty(), "no source names a filesystem");
    assert_eq!(r.level, Level::Recommended);
    let keys: Vec<Option<&str>> = r.sources.iter().map(|s| s.key.as_deref()).collect();
    assert_eq!(keys, [Some("RK-crd"), Some("CEPH-mon")]);
    assert!(can_lack(&r.check));
}

/// The bytes of this machine's `true` and its ELF interpreter's path, so executables found
/// on the fake root are real, runnable programs.
fn interpreter_of_true() -> String {
    match hostready_host::elf::exec_format(fs::File::open("/usr/bin/true").unwrap()).unwrap() {
        hostready_host::elf::ExecFormat::Elf {
            interpreter: Some(i),
            ..
        } => i,
        other => panic!("/usr/bin/true is {other:?}"),
    }
}

/// A blank whole disk for `raw_disks`: `disk.raw` reads the first sectors through a block
/// device node and checks its number against sysfs, so no file of a fake root can stand in
/// for one. A loop device over a sparse, all-zero image is that disk; each fake root names it
/// in its own sysfs and `/dev`. Attached for the test, detached on drop (also on a panic).
struct BlankDisk {
    _image_dir: tempfile::TempDir,
    loop_dev: String,
    number: (u64, u64),
}

impl BlankDisk {
    fn attach() -> BlankDisk {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("blank.img");
        fs::File::create(&image).unwrap().set_len(1 << 20).unwrap();
        let out = Command::new("losetup")
            .args(["--find", "--show"])
            .arg(&image)
            .output()
            .expect("losetup");
        assert!(
            out.status.success(),
            "losetup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let loop_dev = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let r = fs::metadata(&loop_dev).unwrap().rdev();
        // glibc's gnu_dev_major / gnu_dev_minor.
        let number = (
            ((r >> 32) & 0xffff_f000) | ((r >> 8) & 0xfff),
            ((r >> 12) & 0xffff_ff00) | (r & 0xff),
        );
        BlankDisk {
            _image_dir: dir,
            loop_dev,
            number,
        }
    }

    /// Lays the disk out in `h` as the whole disk `name` (not a `loop` name: virtual kinds
    /// are skipped) of `size_gib` GiB as sysfs says, with a partition when `partitioned`.
    fn show_in(&self, h: &FakeHost, name: &str, size_gib: u64, partitioned: bool) {
        let (major, minor) = self.number;
        let dir = format!("/sys/block/{name}");
        let sectors = (size_gib << 30) / 512;
        h.file(&format!("{dir}/size"), &format!("{sectors}\n"));
        h.file(&format!("{dir}/ro"), "0\n");
        h.file(&format!("{dir}/removable"), "0\n");
        h.file(&format!("{dir}/dev"), &format!("{major}:{minor}\n"));
        if partitioned {
            h.file(&format!("{dir}/{name}1/partition"), "1\n");
            h.file(&format!("{dir}/{name}1/dev"), "259:9\n");
        }
        fs::create_dir_all(h.root.join("dev")).unwrap();
        let st = Command::new("mknod")
            .arg(h.root.join("dev").join(name))
            .args(["b", &major.to_string(), &minor.to_string()])
            .status()
            .unwrap();
        assert!(st.success(), "mknod /dev/{name}");
    }
}

impl Drop for BlankDisk {
    fn drop(&mut self) {
        let _ = Command::new("losetup")
            .args(["-d", &self.loop_dev])
            .status();
    }
}

/// Returns a value other than `want` for a sysctl or module parameter: the boolean's opposite
/// (`Y`/`N`, `1`/`0`), otherwise another word.
fn other_value(want: &str) -> String {
    match want {
        "1" => "0".into(),
        "0" => "1".into(),
        "Y" | "y" => "N".into(),
        "N" | "n" => "Y".into(),
        w => format!("not-{w}"),
    }
}

/// Returns true if and only if a root can lack what `check` asks. A `data_path` with no
/// filesystem list, no forbidden option and no free space asks only that the host can name
/// the mount holding its path; it can pass or be unknown, never fail (no built-in has one
/// now: Rook's `dataDirHostPath` forbids `ro` and wants free space).
fn can_lack(check: &Check) -> bool {
    !matches!(check, Check::DataPath(d)
        if d.filesystems.is_empty() && d.forbid_options.is_empty() && d.min_free_gib.is_none())
}

/// A mount below `/` of a built root: mount point, filesystem type, mount options, and the
/// real device where free space is asked (so that statvfs through the root is trusted).
type DataMount = (String, String, String, Option<(u32, u32)>);

/// A Debian root and procfs with what `reqs` ask, except the requirement `except`; `disk` is
/// the blank disk a `raw_disks` requirement finds.
/// A built root, and the tmpfs mounts that give its data paths their free space; the mounts
/// are declared first so that they go before the root's temp dir is removed.
struct Built {
    _space: Vec<Mount>,
    host: FakeHost,
}

impl std::ops::Deref for Built {
    type Target = FakeHost;
    fn deref(&self) -> &FakeHost {
        &self.host
    }
}

fn host_for(reqs: &[&Requirement], except: Option<&str>, disk: &BlankDisk) -> Built {
    let h = FakeHost::new();
    let mut space = Vec::new();
    h.file("/etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n");
    for d in ["usr/sbin", "usr/bin", &format!("lib/modules/{RELEASE}")] {
        fs::create_dir_all(h.root.join(d)).unwrap();
    }
    symlink("usr/sbin", h.root.join("sbin")).unwrap();
    symlink("usr/bin", h.root.join("bin")).unwrap();
    h.file(&format!("/lib/modules/{RELEASE}/modules.builtin"), "");
    // The config says modules exist and builds nothing, so a module the lists lack fails.
    let mut kconfig = String::from("CONFIG_MODULES=y\n");
    init_process(&h.proc);
    let interp = interpreter_of_true();
    write(&h.root, &interp, "");
    fs::set_permissions(
        h.root.join(interp.trim_start_matches('/')),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let mut release = RELEASE.to_string();
    let mut modules = BTreeSet::new();
    // A module whose own `kernel_module` requirement is the one lacking stays out of
    // /proc/modules even where a parameter or version requirement of it loads it.
    let mut unloaded = None;
    let mut unix = String::from("Num       RefCount Protocol Flags    Type St Inode Path\n");
    let mut filesystems = String::from("nodev\tsysfs\n\text4\n");
    let mut hugepages = (0u64, 2048u64);
    let mut flags: Vec<String> = vec!["fpu".into()];
    let mut shared = true;
    let mut boot_sysctls = String::new();
    let mut swap_on = false;
    // The kubelet's cgroup version of the layout (None: nothing mounted), and the controllers.
    let mut cgroup: Option<(Option<u8>, Vec<String>)> = None;
    let mut data_mounts: Vec<DataMount> = Vec::new();
    // Raw disks: (count, size in GiB, partitioned).
    let mut raw: Option<(u64, u64, bool)> = None;
    for (pid, r) in (100..).zip(reqs) {
        let wanted = Some(r.id.as_str()) != except;
        match &r.check {
            Check::Executable(name) if wanted => {
                let path = if name.starts_with('/') {
                    name.clone()
                } else {
                    format!("/usr/bin/{name}")
                };
                let dest = h.root.join(path.trim_start_matches('/'));
                let dest = fs::canonicalize(dest.parent().unwrap())
                    .unwrap()
                    .join(dest.file_name().unwrap());
                fs::copy("/usr/bin/true", dest).unwrap();
            }
            Check::KernelModule { name, .. } => {
                let name = name.replace('-', "_");
                if wanted {
                    modules.insert(name);
                } else {
                    unloaded = Some(name);
                }
            }
            Check::Service {
                process, socket, ..
            } if wanted => match socket {
                Some(s) => unix.push_str(&format!(
                    "0000000000000000: 00000002 00000000 00010000 0001 01 {pid} {s}\n"
                )),
                None => {
                    let comm = process.as_deref().unwrap();
                    h.proc_file(&format!("/{pid}/comm"), &format!("{comm}\n"));
                    h.proc_file(
                        &format!("/{pid}/stat"),
                        &format!("{pid} ({comm}) S 1 {pid} {pid}\n"),
                    );
                }
            },
            Check::Multipathd { .. } if !wanted => {
                h.proc_file(&format!("/{pid}/comm"), "multipathd\n");
                h.proc_file(
                    &format!("/{pid}/stat"),
                    &format!("{pid} (multipathd) S 1 {pid} {pid}\n"),
                );
            }
            Check::NfsClient {} if wanted => filesystems.push_str("nodev\tnfs4\n"),
            Check::NfsDefaultvers { .. } if !wanted => {
                h.file(
                    "/etc/nfsmount.conf",
                    "[ NFSMount_Global_Options ]\nDefaultvers=3\n",
                );
            }
            Check::Hugepages {
                page_size_kib,
                min_pages,
            } if wanted => hugepages = (*min_pages.max(&hugepages.0), *page_size_kib),
            Check::CpuFlags(m) if wanted => {
                flags.extend(m.values().flatten().cloned());
            }
            Check::KernelVersion { .. } if !wanted => release = "4.4.0-1-amd64".into(),
            Check::MountPropagation { .. } if !wanted => shared = false,
            Check::Command(_) => panic!("{}: built-in profiles start no process", r.id),
            // The running value; with `persist`, a sysctl.d line that sets the same.
            Check::Sysctl {
                name,
                value,
                persist,
            } => {
                let path = hostready_host::sysctl::proc_path(name).unwrap();
                let now = if wanted {
                    value.clone()
                } else {
                    other_value(value)
                };
                h.proc_file(&path, &format!("{now}\n"));
                if *persist && wanted {
                    boot_sysctls.push_str(&format!("{name} = {value}\n"));
                }
            }
            Check::Swap { enabled } => swap_on = *enabled == wanted,
            Check::Cgroup {
                version,
                controllers,
            } => {
                let want = version.unwrap_or(2);
                cgroup = Some(match (wanted, version) {
                    (true, _) => (Some(want), controllers.clone()),
                    // The other version, with every controller: only the version is lacking.
                    (false, Some(_)) => (Some(3 - want), controllers.clone()),
                    (false, None) if !controllers.is_empty() => {
                        (Some(want), controllers[1..].to_vec())
                    }
                    (false, None) => (None, Vec::new()),
                });
            }
            Check::ModuleParameter {
                module,
                parameter,
                value,
            } => {
                modules.insert(module.replace('-', "_"));
                let now = if wanted {
                    value.clone()
                } else {
                    other_value(value)
                };
                h.file(
                    &hostready_host::modparam::parameter_path(module, parameter),
                    &format!("{now}\n"),
                );
            }
            Check::ModuleVersion { module, min } => {
                let module = module.replace('-', "_");
                let now = if wanted {
                    min.clone()
                } else {
                    let major: u64 = min.split('.').next().unwrap().parse().unwrap();
                    assert!(major > 0, "{}: no version below {min} to lack", r.id);
                    format!("{}.99.99", major - 1)
                };
                h.file(
                    &format!("/sys/module/{module}/version"),
                    &format!("{now}\n"),
                );
                modules.insert(module);
            }
            // A socket file nobody listens on when lacking: a runtime that stopped.
            Check::CriSocket { paths } => {
                let path = paths
                    .first()
                    .map(String::as_str)
                    .unwrap_or(KNOWN_CRI_SOCKETS[0]);
                let file = h.root.join(path.trim_start_matches('/'));
                fs::create_dir_all(file.parent().unwrap()).unwrap();
                drop(UnixListener::bind(&file).unwrap());
                if wanted {
                    unix.push_str(&format!(
                        "0000000000000000: 00000002 00000000 00010000 0001 01 {pid} {path}\n"
                    ));
                }
            }
            // The path's own mount: an allowed filesystem without a forbidden option, or
            // (lacking) a filesystem not allowed, else a forbidden option.
            // Free space is statvfs's (crates/cli/tests/node_families.rs makes it lack): a
            // tmpfs of one GiB more than asked is mounted there (it takes no memory until
            // written), whatever the machine's own disk has free, and the mount line names
            // its device so that free space through the root is trusted.
            Check::DataPath(d) => {
                let dir = h.root.join(d.path.trim_start_matches('/'));
                fs::create_dir_all(&dir).unwrap();
                let device = d.min_free_gib.map(|min| {
                    let size = format!("size={}g,mode=0755", min + 1);
                    space.push(Mount::new(&["-t", "tmpfs", "-o", &size, "tmpfs"], &dir));
                    let dev = fs::metadata(&dir).unwrap().dev();
                    (rustix::fs::major(dev), rustix::fs::minor(dev))
                });
                let allowed = d.filesystems.first().cloned().unwrap_or("ext4".into());
                let (fs_type, options) = match (wanted, d.forbid_options.first()) {
                    (false, _) if !d.filesystems.is_empty() => {
                        assert!(!d.filesystems.iter().any(|f| f == "tmpfs"), "{}", r.id);
                        ("tmpfs".to_string(), "rw,relatime".to_string())
                    }
                    (false, Some(o)) => (allowed, format!("rw,relatime,{o}")),
                    _ => (allowed, "rw,relatime".to_string()),
                };
                data_mounts.push((d.path.clone(), fs_type, options, device));
            }
            // Required options as modules (=m), so that a `kernel_module` requirement naming
            // the same option still fails when its module is the one lacking (=m, not loaded);
            // lacking drops the first required option, or sets the first forbidden one.
            Check::KernelConfig { require, forbid } => {
                let skip = usize::from(!wanted && !require.is_empty());
                for entry in &require[skip..] {
                    kconfig.push_str(&format!("{}=m\n", entry.split('|').next().unwrap()));
                }
                if !wanted && require.is_empty() {
                    kconfig.push_str(&format!("{}=y\n", forbid[0]));
                }
            }
            Check::RawDisks(d) => {
                let (count, size, partitioned) = raw.unwrap_or((0, 0, false));
                raw = Some((
                    count.max(d.min_count),
                    size.max(d.min_size_gib),
                    partitioned || !wanted,
                ));
            }
            _ => {}
        }
    }
    if let Some(m) = &unloaded {
        modules.remove(m);
    }
    let modules: String = modules
        .iter()
        .map(|m| format!("{m} 16384 0 - Live 0x0\n"))
        .collect();
    h.proc_file("/sys/kernel/osrelease", &format!("{release}\n"));
    h.file(&format!("/boot/config-{RELEASE}"), &kconfig);
    h.proc_file("/modules", &modules);
    h.proc_file("/1/net/unix", &unix);
    h.proc_file("/filesystems", &filesystems);
    h.proc_file(
        "/meminfo",
        &format!(
            "MemTotal: 1000 kB\nHugePages_Total: {}\nHugePages_Free: {0}\nHugepagesize: {} kB\n",
            hugepages.0, hugepages.1
        ),
    );
    let flags = flags.join(" ");
    h.proc_file(
        "/cpuinfo",
        &format!("processor\t: 0\nflags\t\t: {flags}\nFeatures\t: {flags}\n"),
    );
    if !boot_sysctls.is_empty() {
        h.file("/etc/sysctl.d/99-table.conf", &boot_sysctls);
    }
    // The header alone is what a kernel with swap support and none active writes.
    let mut swaps = String::from("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n");
    if swap_on {
        swaps.push_str("/swapfile                               file\t\t1048572\t\t0\t\t-2\n");
    }
    h.proc_file("/swaps", &swaps);
    let propagation = |id: u32| {
        if shared {
            format!(" shared:{id}")
        } else {
            String::new()
        }
    };
    let mut mountinfo = format!(
        "22 1 253:0 / / rw,relatime{} - ext4 /dev/vda rw\n",
        propagation(1)
    );
    for (id, (at, fs_type, options, device)) in (40..).zip(&data_mounts) {
        let (major, minor) = device.unwrap_or((0, id));
        mountinfo.push_str(&format!(
            "{id} 22 {major}:{minor} / {at} {options}{} - {fs_type} /dev/vd{id} rw\n",
            propagation(id)
        ));
    }
    if let Some((version, controllers)) = &cgroup {
        match version {
            // Pure cgroup2 at /sys/fs/cgroup, as systemd mounts it by default since 247. The
            // kernel never lists devices and freezer in cgroup.controllers: devices is
            // always there, freezer shows as cgroup.freeze in each child cgroup.
            Some(2) => {
                mountinfo.push_str(&format!(
                    "25 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime{} - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n",
                    propagation(4)
                ));
                let listed: Vec<&str> = controllers
                    .iter()
                    .map(String::as_str)
                    .filter(|c| !["devices", "freezer"].contains(c))
                    .collect();
                h.file(
                    "/sys/fs/cgroup/cgroup.controllers",
                    &format!("{}\n", listed.join(" ")),
                );
                fs::create_dir_all(h.root.join("sys/fs/cgroup/init.scope")).unwrap();
                if controllers.iter().any(|c| c == "freezer") {
                    h.file("/sys/fs/cgroup/init.scope/cgroup.freeze", "0\n");
                }
            }
            // The hybrid layout (this machine's): a tmpfs of v1 hierarchies, cgroup2 beside
            // them at `unified`; controllers from /proc/cgroups.
            Some(1) => {
                mountinfo.push_str(&format!(
                    "25 22 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec{} - tmpfs tmpfs ro,mode=755\n\
                     26 25 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime{} - cgroup2 cgroup2 rw,nsdelegate\n",
                    propagation(4),
                    propagation(5)
                ));
                let mut table = String::from("#subsys_name\thierarchy\tnum_cgroups\tenabled\n");
                for (n, c) in (2..).zip(controllers) {
                    mountinfo.push_str(&format!(
                        "{} 25 0:{} / /sys/fs/cgroup/{c} rw,nosuid,nodev,noexec,relatime{} - cgroup cgroup rw,{c}\n",
                        30 + n,
                        30 + n,
                        propagation(10 + n)
                    ));
                    table.push_str(&format!("{c}\t{n}\t1\t1\n"));
                }
                h.proc_file("/cgroups", &table);
            }
            None => {}
            Some(v) => panic!("cgroup v{v} is not a layout"),
        }
    }
    h.proc_file("/1/mountinfo", &mountinfo);
    if let Some((count, size_gib, partitioned)) = raw {
        for i in 0..count {
            let name = format!("vd{}", char::from(b'b' + i as u8));
            disk.show_in(&h, &name, size_gib.max(1), partitioned);
        }
    }
    Built {
        _space: space,
        host: h,
    }
}

/// Returns the status of each requirement of `p` on `h` (with or without its procfs).
fn statuses(p: &Profile, h: &FakeHost, proc: bool) -> Vec<(String, Status)> {
    let source = if proc {
        ProcSource::At(h.proc.clone())
    } else {
        ProcSource::Disabled
    };
    let host = Host::open(&h.root, source).unwrap();
    let facts = Facts::new(&host, "/usr/sbin:/usr/bin:/sbin:/bin");
    let report = evaluate(std::slice::from_ref(p), &facts, None);
    p.requirements
        .iter()
        .map(|r| {
            let f = report.findings.iter().find(|f| f.id == r.id).unwrap();
            (r.id.clone(), f.status)
        })
        .collect()
}

/// Returns true if and only if `check` reads a fact only a procfs gives. A module's
/// parameters and version are sysfs files of the root (`/sys/module`), which decide alone.
fn needs_proc(check: &Check) -> bool {
    !matches!(
        check,
        Check::Executable(_)
            | Check::NfsDefaultvers { .. }
            | Check::Command(_)
            | Check::ModuleParameter { .. }
            | Check::ModuleVersion { .. }
    )
}

#[test]
fn each_requirement_passes_fails_and_is_unknown_on_built_roots() {
    let disk = BlankDisk::attach();
    for p in builtins() {
        let reqs: Vec<&Requirement> = p.requirements.iter().collect();
        let full = host_for(&reqs, None, &disk);
        for (id, s) in statuses(&p, &full, true) {
            assert_eq!(
                s,
                Status::Pass,
                "{}: {id} on a root that has everything",
                p.name
            );
        }
        for r in &reqs {
            let lacking = host_for(&reqs, Some(&r.id), &disk);
            let want = match r.level {
                _ if !can_lack(&r.check) => Status::Pass,
                Level::Required => Status::Fail,
                Level::Recommended => Status::Warn,
            };
            for (id, s) in statuses(&p, &lacking, true) {
                let expected = if id == r.id { want } else { Status::Pass };
                // A lower kernel release moves the modules directory: only its own finding
                // is asserted then.
                if id == r.id || !matches!(r.check, Check::KernelVersion { .. }) {
                    assert_eq!(s, expected, "{}: {id} on a root lacking {}", p.name, r.id);
                }
            }
        }
        for ((id, s), r) in statuses(&p, &full, false).into_iter().zip(&reqs) {
            // Multipathd passes without a procfs only if that is what it says; the others
            // that need a procfs cannot decide.
            if needs_proc(&r.check) {
                assert_eq!(s, Status::Unknown, "{}: {id} without a procfs", p.name);
            } else {
                assert_eq!(s, Status::Pass, "{}: {id} without a procfs", p.name);
            }
        }
    }
}

/// The real Debian bookworm root (debootstrap, `scripts/debroot`: open-iscsi, nfs-common,
/// cryptsetup, dmsetup installed). Executables Debian ships there pass; the others fail with
/// the package the profile names. lvm2 and multipath-tools are Debian packages the cached
/// root does not hold (its list is scripts/debroot's, and the cache is not rebuilt for this
/// test), so lvm and multipath are asserted missing; zfsutils-linux is in contrib, which the
/// root does not use, so zfs is missing too. No procfs: only file facts are asserted.
#[test]
fn executables_on_the_debootstrap_root() {
    let root = hostready_testkit::debroot::debroot();
    let host = Host::open(root, ProcSource::Disabled).unwrap();
    let facts = Facts::new(
        &host,
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    );
    for (profile, id, want, package) in [
        ("csi-iscsi", "exe.iscsiadm", Status::Pass, None),
        ("democratic-csi-iscsi", "exe.iscsiadm", Status::Pass, None),
        ("democratic-csi-nfs", "exe.mount.nfs", Status::Pass, None),
        ("kubernetes-node", "exe.mount", Status::Pass, None),
        ("kubernetes-node", "exe.nsenter", Status::Pass, None),
        (
            "democratic-csi-iscsi",
            "exe.multipath",
            Status::Fail,
            Some("multipath-tools"),
        ),
        ("rook-ceph", "exe.lvm", Status::Warn, Some("lvm2")),
        (
            "openebs-zfs",
            "exe.zfs",
            Status::Fail,
            Some("zfsutils-linux"),
        ),
        ("openebs-lvm", "exe.lvm", Status::Fail, None),
    ] {
        let p = profile::load(profile).unwrap();
        let report = evaluate(std::slice::from_ref(&p), &facts, None);
        let f = report.findings.iter().find(|f| f.id == id).unwrap();
        assert_eq!(f.status, want, "{profile} {id}: {f:#?}");
        if let Some(pkg) = package {
            let fix = f.remediation.as_ref().expect("a fix");
            assert_eq!(
                fix.package.as_deref(),
                Some(pkg),
                "{profile} {id}: {fix:#?}"
            );
        }
    }
}
