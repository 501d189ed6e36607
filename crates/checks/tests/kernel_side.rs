//! The kernel-side families of issue 13 on fake hosts built file by file: pass, fail and
//! unknown of `sysctl`, `cgroup`, `swap`, `module_parameter` and `module_version`, and the
//! Longhorn fidelity items of `kmod.*` and `nfs.client`.

// Tests build fake hosts on this machine directly.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::os::unix::fs::PermissionsExt;

use hostready_checks::Facts;
use hostready_checks::checks::{cgroup, kmod, nfs, swap, sysctl};
use hostready_checks::finding::{Outcome, Status};
use hostready_host::{Host, ProcSource};
use hostready_testkit::fakehost::FakeHost;

const RELEASE: &str = "6.1.0-18-amd64";

/// A Debian host with kernel 6.1.0 and a procfs that knows its release.
fn debian() -> FakeHost {
    let h = FakeHost::new();
    h.file("/etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n");
    h.proc_file("/sys/kernel/osrelease", &format!("{RELEASE}\n"));
    h
}

/// Runs `f` on the facts of `h`.
fn on(h: &FakeHost, f: impl FnOnce(&Facts<'_>) -> Outcome) -> Outcome {
    let host = Host::open(&h.root, ProcSource::At(h.proc.clone())).unwrap();
    let facts = Facts::new(&host, "/usr/bin");
    f(&facts)
}

fn assert_status(o: &Outcome, s: Status) {
    assert_eq!(o.status, s, "{o:#?}");
}

fn commands(o: &Outcome) -> String {
    let r = o.remediation.as_ref().expect("a fix");
    format!(
        "{}\n{}\n{}",
        r.summary,
        r.commands.join("\n"),
        r.notes.join("\n")
    )
}

#[test]
fn sysctl_running_value_pass_fail_unknown() {
    let h = debian();
    let check = |want: &str| on(&h, |f| sysctl::check("net.ipv4.ip_forward", want, false, f));
    let o = check("1");
    assert_status(&o, Status::Unknown);
    assert!(
        o.message
            .contains("/proc/sys/net/ipv4/ip_forward does not exist"),
        "{o:#?}"
    );
    h.proc_file("/sys/net/ipv4/ip_forward", "0\n");
    let o = check("1");
    assert_status(&o, Status::Fail);
    let fix = commands(&o);
    assert!(fix.contains("sysctl -w net.ipv4.ip_forward='1'"), "{fix}");
    // The fix plan's sysctl step takes the value from here.
    assert_eq!(o.evidence.get("needed"), Some("1"), "{o:#?}");
    assert!(fix.contains("/etc/sysctl.d/99-zz-hostready.conf"), "{fix}");
    h.proc_file("/sys/net/ipv4/ip_forward", "1\n");
    let o = check("1");
    assert_status(&o, Status::Pass);
    assert!(
        o.evidence
            .get("set at boot")
            .unwrap()
            .contains("by no file"),
        "{o:#?}"
    );
    // Multi-value parameters compare with whitespace normalised (the kernel writes a tab).
    h.proc_file("/sys/net/ipv4/ip_local_port_range", "32768\t60999\n");
    let o = on(&h, |f| {
        sysctl::check("net.ipv4.ip_local_port_range", "32768 60999", false, f)
    });
    assert_status(&o, Status::Pass);
}

#[test]
fn sysctl_persistence_follows_the_boot_order() {
    let h = debian();
    h.proc_file("/sys/net/ipv4/ip_forward", "1\n");
    let check = || on(&h, |f| sysctl::check("net.ipv4.ip_forward", "1", true, f));
    let o = check();
    assert_status(&o, Status::Fail);
    assert!(o.message.contains("no boot file sets it"), "{o:#?}");
    h.file("/usr/lib/sysctl.d/50-k8s.conf", "net.ipv4.ip_forward = 0\n");
    h.file("/etc/sysctl.d/50-k8s.conf", "net.ipv4.ip_forward = 1\n");
    let o = check();
    assert_status(&o, Status::Pass);
    assert_eq!(
        o.evidence.get("set at boot"),
        Some("1 (/etc/sysctl.d/50-k8s.conf:1)"),
        "the /etc file of the same name replaces /usr/lib's"
    );
    h.file("/etc/sysctl.conf", "# local\nnet.ipv4.ip_forward=0\n");
    let o = check();
    assert_status(&o, Status::Fail);
    assert!(o.message.contains("/etc/sysctl.conf:2 sets 0"), "{o:#?}");
    assert!(commands(&o).contains("/etc/sysctl.conf:2 sets 0: remove that line"));
    // A sysctl.d that cannot be listed: persistence cannot be told.
    fs::remove_file(h.root.join("etc/sysctl.conf")).unwrap();
    fs::remove_dir_all(h.root.join("etc/sysctl.d")).unwrap();
    h.file("/etc/sysctl.d", "not a directory");
    let o = check();
    assert_status(&o, Status::Unknown);
    assert!(o.message.contains("cannot list /etc/sysctl.d"), "{o:#?}");
}

#[test]
fn sysctl_value_over_the_bound_is_refused_unread() {
    let h = debian();
    let f = h.proc_file("/sys/net/ipv4/ip_forward", "");
    fs::File::options()
        .write(true)
        .open(&f)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let o = on(&h, |f| sysctl::check("net.ipv4.ip_forward", "1", false, f));
    assert_status(&o, Status::Unknown);
    assert!(
        o.message.contains("/proc/sys/net/ipv4/ip_forward"),
        "{o:#?}"
    );
}

const UNIFIED: &str = "29 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
const HYBRID: &str = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
    32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
    35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
    38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio\n\
    41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
const PROC_CGROUPS: &str = "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t1\t1\t1\nblkio\t7\t1\t1\nmemory\t4\t30\t1\npids\t8\t1\t0\n";

#[test]
fn cgroup_v2_pass_fail_unknown() {
    let h = debian();
    let want = |c: &[&str]| c.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let o = on(&h, |f| cgroup::check(Some(2), &[], f));
    assert_status(&o, Status::Unknown);
    h.proc_file("/1/mountinfo", UNIFIED);
    let o = on(&h, |f| cgroup::check(Some(2), &want(&["cpu", "memory"]), f));
    assert_status(&o, Status::Unknown);
    assert!(
        o.message
            .contains("/sys/fs/cgroup/cgroup.controllers cannot be read"),
        "{o:#?}"
    );
    h.file(
        "/sys/fs/cgroup/cgroup.controllers",
        "cpuset cpu io memory pids\n",
    );
    let o = on(&h, |f| {
        cgroup::check(Some(2), &want(&["cpu", "memory", "blkio"]), f)
    });
    assert_status(&o, Status::Pass);
    let o = on(&h, |f| {
        cgroup::check(Some(2), &want(&["memory", "hugetlb"]), f)
    });
    assert_status(&o, Status::Fail);
    assert!(o.message.contains("lacks the controller hugetlb"), "{o:#?}");
    assert!(commands(&o).contains("cgroup_enable=hugetlb"));
    let o = on(&h, |f| cgroup::check(Some(1), &[], f));
    assert_status(&o, Status::Fail);
    assert!(commands(&o).contains("systemd.unified_cgroup_hierarchy=0"));
}

/// On cgroup v2 the kernel lists neither `devices` nor `freezer` in `cgroup.controllers`
/// (Debian 12's 6.1 kernel writes the line below): devices is always there, freezer is the
/// `cgroup.freeze` of every child cgroup (kernel 5.2), as system-validators counts them. So
/// the kubelet's required set passes on a real v2 host, freezer fails on a host whose child
/// cgroups lack `cgroup.freeze`, and is unknown where no child cgroup can be seen.
#[test]
fn cgroup_v2_devices_and_freezer_are_not_in_cgroup_controllers() {
    let h = debian();
    h.proc_file("/1/mountinfo", UNIFIED);
    h.file(
        "/sys/fs/cgroup/cgroup.controllers",
        "cpuset cpu io memory hugetlb pids rdma misc\n",
    );
    let kubelet: Vec<String> = ["cpu", "cpuset", "devices", "freezer", "memory", "pids"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let o = on(&h, |f| cgroup::check(Some(2), &kubelet, f));
    assert_status(&o, Status::Unknown);
    assert!(
        o.message.contains("freezer") && o.message.contains("init.scope"),
        "{o:#?}"
    );
    let o = on(&h, |f| cgroup::check(Some(2), &["devices".into()], f));
    assert_status(&o, Status::Pass);
    fs::create_dir_all(h.root.join("sys/fs/cgroup/init.scope")).unwrap();
    let o = on(&h, |f| cgroup::check(Some(2), &kubelet, f));
    assert_status(&o, Status::Fail);
    assert!(o.message.contains("lacks the controller freezer"), "{o:#?}");
    h.file("/sys/fs/cgroup/init.scope/cgroup.freeze", "0\n");
    let o = on(&h, |f| cgroup::check(Some(2), &kubelet, f));
    assert_status(&o, Status::Pass);
    assert!(
        o.evidence
            .get("implicit")
            .is_some_and(|v| v.contains("init.scope/cgroup.freeze")),
        "{o:#?}"
    );
}

/// The hybrid layout (this machine's) is version 1 for the kubelet, and the fix says what
/// kubelet 1.35 does with it.
#[test]
fn cgroup_hybrid_is_v1_for_the_kubelet() {
    let h = debian();
    h.proc_file("/1/mountinfo", HYBRID);
    h.proc_file("/cgroups", PROC_CGROUPS);
    let o = on(&h, |f| cgroup::check(Some(2), &[], f));
    assert_status(&o, Status::Fail);
    assert!(
        o.message.contains("hybrid") && o.message.contains("failCgroupV1: false"),
        "{o:#?}"
    );
    let fix = commands(&o);
    assert!(
        fix.contains("systemd.unified_cgroup_hierarchy=1") && fix.contains("/etc/default/grub"),
        "{fix}"
    );
    assert!(fix.contains("failCgroupV1: false"), "{fix}");
    let o = on(&h, |f| {
        cgroup::check(Some(1), &["cpu".into(), "io".into()], f)
    });
    assert_status(&o, Status::Pass);
    let o = on(&h, |f| cgroup::check(None, &["pids".into()], f));
    assert_status(&o, Status::Fail);
    assert!(o.message.contains("pids"), "{o:#?}");
}

#[test]
fn swap_pass_fail_unknown() {
    let h = debian();
    let check = |enabled| on(&h, |f| swap::check(enabled, f));
    assert_status(&check(false), Status::Unknown);
    h.proc_file(
        "/swaps",
        "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n",
    );
    assert_status(&check(false), Status::Pass);
    assert_status(&check(true), Status::Fail);
    h.proc_file(
        "/swaps",
        "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/swap.img                               file\t\t4194300\t\t0\t\t-2\n",
    );
    let o = check(false);
    assert_status(&o, Status::Fail);
    assert!(o.message.contains("/swap.img (file, 4095 MiB)"), "{o:#?}");
    let fix = commands(&o);
    assert!(
        fix.contains("swapoff -a")
            && fix.contains("/etc/fstab")
            && fix.contains("failSwapOn: false"),
        "{fix}"
    );
    assert_status(&check(true), Status::Pass);
    // Off now, on at the next boot: a warning naming the fstab line.
    h.proc_file(
        "/swaps",
        "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n",
    );
    h.file(
        "/etc/fstab",
        "UUID=1 / ext4 defaults 0 1\n/swap.img none swap sw 0 0\n",
    );
    let o = check(false);
    assert_status(&o, Status::Warn);
    assert!(o.message.contains("/swap.img (/etc/fstab:2)"), "{o:#?}");
    h.file(
        "/etc/fstab",
        "UUID=1 / ext4 defaults 0 1\n#/swap.img none swap sw 0 0\n",
    );
    assert_status(&check(false), Status::Pass);
    h.proc_file(
        "/swaps",
        "Filename Type Size Used Priority\n/swap.img file 4194300\n",
    );
    let o = check(false);
    assert_status(&o, Status::Unknown);
    assert!(o.message.contains("/proc/swaps line 2"), "{o:#?}");
    // No /proc/swaps on a kernel built without swap support: nothing can be on.
    fs::remove_file(h.proc.join("swaps")).unwrap();
    h.file(
        &format!("/boot/config-{RELEASE}"),
        "CONFIG_MODULES=y\n# CONFIG_SWAP is not set\n",
    );
    assert_status(&check(false), Status::Pass);
}

/// nvme_core's multipath, as Longhorn's v2 engine wants it off.
#[test]
fn module_parameter_running_value() {
    let h = debian();
    h.proc_file("/modules", "nvme_core 1 0 - Live 0x0\n");
    h.proc_file("/cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/vda1 ro quiet\n");
    let check = || on(&h, |f| kmod::parameter("nvme_core", "multipath", "N", f));
    let o = check();
    assert_status(&o, Status::Unknown);
    assert!(
        o.message.contains("/sys/module is not in the root"),
        "{o:#?}"
    );
    let p = h.file("/sys/module/nvme_core/parameters/multipath", "Y\n");
    fs::set_permissions(&p, fs::Permissions::from_mode(0o444)).unwrap();
    let o = check();
    assert_status(&o, Status::Fail);
    let fix = commands(&o);
    assert!(
        fix.contains("read-only")
            && fix.contains("options nvme_core multipath=N")
            && fix.contains("/etc/modprobe.d/"),
        "{fix}"
    );
    h.file("/sys/module/nvme_core/parameters/multipath", "N\n");
    let o = check();
    assert_status(&o, Status::Pass);
    // The running value holds, but the boot would change it: a warning.
    h.proc_file("/cmdline", "ro nvme_core.multipath=Y\n");
    let o = check();
    assert_status(&o, Status::Warn);
    assert!(
        o.message.contains("the boot configuration sets Y"),
        "{o:#?}"
    );
    // Built in: only the kernel command line sets it at boot.
    let h = debian();
    h.proc_file("/modules", "");
    h.file(
        &format!("/lib/modules/{RELEASE}/modules.builtin"),
        "kernel/drivers/nvme/host/nvme-core.ko\n",
    );
    h.file("/sys/module/nvme_core/parameters/multipath", "Y\n");
    let o = on(&h, |f| kmod::parameter("nvme_core", "multipath", "N", f));
    assert_status(&o, Status::Fail);
    let fix = commands(&o);
    assert!(
        fix.contains("GRUB_CMDLINE_LINUX")
            && fix.contains("nvme_core.multipath=N")
            && fix.contains("modprobe.d does not apply"),
        "{fix}"
    );
    // The module is in the kernel but has no such parameter.
    let o = on(&h, |f| kmod::parameter("nvme_core", "no_such", "1", f));
    assert_status(&o, Status::Unknown);
    assert!(o.message.contains("has no parameter no_such"), "{o:#?}");
}

/// A module that is not loaded: what the boot gives it decides, else unknown; a module the
/// kernel does not have fails.
#[test]
fn module_parameter_of_a_module_not_loaded() {
    let h = debian();
    h.proc_file("/modules", "loop 1 0 - Live 0x0\n");
    h.proc_file("/cmdline", "ro quiet\n");
    fs::create_dir_all(h.root.join("sys/module/loop")).unwrap();
    let dir = format!("/lib/modules/{RELEASE}");
    h.file(&format!("{dir}/modules.builtin"), "");
    h.file(
        &format!("{dir}/modules.dep"),
        "kernel/drivers/nvme/host/nvme-core.ko.xz:\n",
    );
    let check = || on(&h, |f| kmod::parameter("nvme_core", "multipath", "N", f));
    let o = check();
    assert_status(&o, Status::Fail);
    assert!(o.message.contains("not available to this kernel"), "{o:#?}");
    h.file(
        &format!("{dir}/kernel/drivers/nvme/host/nvme-core.ko.xz"),
        "",
    );
    let o = check();
    assert_status(&o, Status::Unknown);
    assert!(
        o.message
            .contains("not loaded and nothing sets multipath at boot"),
        "{o:#?}"
    );
    h.file(
        "/etc/modprobe.d/longhorn.conf",
        "options nvme_core multipath=N\n",
    );
    let o = check();
    assert_status(&o, Status::Pass);
    assert_eq!(
        o.evidence.get("modprobe.d"),
        Some("N (/etc/modprobe.d/longhorn.conf:1)")
    );
    h.file(
        "/etc/modprobe.d/longhorn.conf",
        "options nvme-core multipath=Y\n",
    );
    assert_status(&check(), Status::Fail);
}

#[test]
fn module_version_drbd() {
    let h = debian();
    h.proc_file("/modules", "");
    let check = || on(&h, |f| kmod::version("drbd", "9.0.0", f));
    assert_status(&check(), Status::Unknown);
    h.proc_file(
        "/drbd",
        "version: 8.4.11 (api:1/proto:86-101)\nsrcversion: 8E1FB3E6D2B5C1A21A2A5AB\n",
    );
    let o = check();
    assert_status(&o, Status::Fail);
    assert!(commands(&o).contains("DRBD 9 comes from LINBIT"));
    h.file("/sys/module/drbd/version", "9.2.12\n");
    let o = check();
    assert_status(&o, Status::Pass);
    assert_eq!(o.evidence.get("/sys/module/drbd/version"), Some("9.2.12"));
    h.file("/sys/module/drbd/version", "x-devel\n");
    assert_status(&check(), Status::Unknown);
    fs::remove_file(h.root.join("sys/module/drbd/version")).unwrap();
    h.proc_file(
        "/drbd",
        "version: 9.2.12 (api:2/proto:86-122)\nGIT-hash: 0c1b6b6\n",
    );
    assert_status(&check(), Status::Pass);
}

/// Longhorn fidelity: `kmod.*` unknown names what was missing, not the config it read.
#[test]
fn kmod_unknown_says_what_was_missing() {
    let h = debian();
    // No /proc/modules and no module lists; the config was read and says `=m`.
    h.file(
        &format!("/boot/config-{RELEASE}"),
        "CONFIG_MODULES=y\nCONFIG_NVME_TCP=m\n",
    );
    let o = on(&h, |f| kmod::check("nvme_tcp", Some("CONFIG_NVME_TCP"), f));
    assert_status(&o, Status::Unknown);
    assert!(
        o.message
            .contains("CONFIG_NVME_TCP=m in /boot/config-6.1.0-18-amd64"),
        "{o:#?}"
    );
    assert!(o.message.contains("/proc/modules was not read"), "{o:#?}");
    assert!(
        !o.message.contains("kernel config could not be read"),
        "{o:#?}"
    );
}

/// Longhorn fidelity: a built-in claim the running kernel disproves fails; without proof
/// (most built-ins have no sysfs directory) it passes as before.
#[test]
fn kmod_builtin_contradicted_by_sysfs() {
    let h = debian();
    h.proc_file("/modules", "");
    let dir = format!("/lib/modules/{RELEASE}");
    h.file(
        &format!("{dir}/modules.builtin"),
        "kernel/net/bridge/bridge.ko\nkernel/drivers/md/dm-crypt.ko\n",
    );
    h.file(&format!("{dir}/modules.dep"), "");
    h.file(
        &format!("{dir}/modules.builtin.modinfo"),
        "bridge.version=2.3\0dm_crypt.license=GPL\0",
    );
    fs::create_dir_all(h.root.join("sys/module/loop")).unwrap();
    let o = on(&h, |f| kmod::check("bridge", None, f));
    assert_status(&o, Status::Fail);
    assert!(
        o.message.contains("no /sys/module/bridge") && o.message.contains("another kernel"),
        "{o:#?}"
    );
    assert_status(&on(&h, |f| kmod::check("dm_crypt", None, f)), Status::Pass);
    fs::create_dir_all(h.root.join("sys/module/bridge")).unwrap();
    assert_status(&on(&h, |f| kmod::check("bridge", None, f)), Status::Pass);
}

/// Longhorn fidelity: stock Debian/Ubuntu build NFSv4 as the nfsv4 module with 4.1 and 4.2
/// compiled into it; that is not "built into the kernel".
#[test]
fn nfs_client_v4_1_and_4_2_are_options_of_the_module() {
    let h = debian();
    h.proc_file("/modules", "");
    h.proc_file("/filesystems", "nodev\tsysfs\n\text4\n");
    let dir = format!("/lib/modules/{RELEASE}");
    h.file(&format!("{dir}/modules.builtin"), "");
    h.file(
        &format!("{dir}/modules.dep"),
        "kernel/fs/nfs/nfsv4.ko: kernel/fs/nfs/nfs.ko\n",
    );
    h.file(&format!("{dir}/kernel/fs/nfs/nfsv4.ko"), "");
    h.file(
        &format!("/boot/config-{RELEASE}"),
        "CONFIG_MODULES=y\nCONFIG_NFS_FS=m\nCONFIG_NFS_V4=m\nCONFIG_NFS_V4_1=y\nCONFIG_NFS_V4_2=y\n",
    );
    let o = on(&h, nfs::client);
    assert_status(&o, Status::Fail);
    assert!(!o.message.contains("built into"), "{o:#?}");
    assert!(
        o.message.contains("nfsv4 module") && o.message.contains("not loaded"),
        "{o:#?}"
    );
    assert_eq!(
        o.remediation.as_ref().unwrap().commands[0],
        "modprobe nfsv4"
    );
    assert!(
        o.evidence
            .get("note")
            .unwrap()
            .contains("options of the nfsv4 module")
    );
    h.proc_file("/modules", "nfsv4 1 0 - Live 0x0\n");
    let o = on(&h, nfs::client);
    assert_status(&o, Status::Pass);
    assert!(o.message.contains("nfsv4 is loaded"), "{o:#?}");
}

/// Longhorn fidelity: `CONFIG_NFS_V4=y` while the running kernel registers no nfs4.
#[test]
fn nfs_client_builtin_contradicted_by_proc_filesystems() {
    let h = debian();
    h.file(
        &format!("/boot/config-{RELEASE}"),
        "CONFIG_NFS_FS=y\nCONFIG_NFS_V4=y\n",
    );
    // /proc/filesystems unreadable: the config is all there is.
    assert_status(&on(&h, nfs::client), Status::Pass);
    h.proc_file("/filesystems", "nodev\tsysfs\n\text4\n");
    let o = on(&h, nfs::client);
    assert_status(&o, Status::Fail);
    assert!(o.message.contains("describes another kernel"), "{o:#?}");
    h.proc_file("/filesystems", "nodev\tsysfs\nnodev\tnfs\nnodev\tnfs4\n");
    assert_status(&on(&h, nfs::client), Status::Pass);
}
