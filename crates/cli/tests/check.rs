//! `hostready check` end to end: the real binary against host roots and procfs trees built in
//! temporary directories, one test per check family covering each status it can give.

// Tests build fake hosts and read fixtures on this machine directly.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};

use hostready_testkit::fakehost::{FakeHost, init_process, write};
use serde_json::Value;
use util::{finding, hostready, run_json};

mod util;

/// A host root plus a fake procfs, built file by file (the kit's fake host, with the checks'
/// presets and `hostready check` on it).
struct TestHost(FakeHost);

impl std::ops::Deref for TestHost {
    type Target = FakeHost;
    fn deref(&self) -> &FakeHost {
        &self.0
    }
}

impl TestHost {
    /// A Debian host with kernel 6.1.0 and a procfs describing an idle machine.
    fn debian() -> TestHost {
        let h = TestHost(FakeHost::new());
        h.file(
            "/etc/os-release",
            "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
        );
        for d in ["/usr/sbin", "/usr/bin", "/lib/modules/6.1.0-18-amd64"] {
            fs::create_dir_all(h.root.join(d.trim_start_matches('/'))).unwrap();
        }
        symlink("usr/sbin", h.root.join("sbin")).unwrap();
        symlink("usr/bin", h.root.join("bin")).unwrap();
        h.proc_file("/sys/kernel/osrelease", "6.1.0-18-amd64\n");
        h.proc_file("/modules", "");
        h.proc_file("/filesystems", "nodev\tsysfs\n\text4\n");
        h.proc_file(
            "/meminfo",
            "MemTotal: 1000 kB\nHugePages_Total: 0\nHugepagesize: 2048 kB\n",
        );
        h.proc_file(
            "/cpuinfo",
            "processor\t: 0\nflags\t\t: fpu sse4_2\nFeatures\t: fp asimd\n",
        );
        init_process(&h.proc);
        h.proc_file(
            "/1/net/unix",
            "Num       RefCount Protocol Flags    Type St Inode Path\n",
        );
        h.file(
            "/lib/modules/6.1.0-18-amd64/modules.builtin",
            "kernel/drivers/md/dm-crypt.ko\n",
        );
        h.file(
            "/lib/modules/6.1.0-18-amd64/modules.dep",
            "kernel/drivers/scsi/iscsi_tcp.ko.xz: kernel/drivers/scsi/libiscsi_tcp.ko.xz\n",
        );
        h
    }

    /// Installs a real, runnable ELF (a copy of this machine's `true`) and its interpreter.
    fn elf(&self, path: &str) {
        let dest = self.root.join(path.trim_start_matches('/'));
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        fs::copy("/usr/bin/true", &dest).unwrap();
        let interp = interpreter_of_true();
        write(&self.root, &interp, "");
        fs::set_permissions(
            self.root.join(interp.trim_start_matches('/')),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
    }

    fn process(&self, pid: u32, comm: &str, state: char) {
        self.proc_file(&format!("/{pid}/comm"), &format!("{comm}\n"));
        self.proc_file(
            &format!("/{pid}/stat"),
            &format!("{pid} ({comm}) {state} 1 {pid} {pid}\n"),
        );
    }

    fn check(&self, profile: &str) -> (i32, Value) {
        run_json(
            hostready()
                .args(["check", "--output", "json", "--profile", profile, "--root"])
                .arg(&self.root)
                .arg("--proc")
                .arg(&self.proc),
        )
    }

    /// Checks `profile` and returns the finding `id`.
    fn finding(&self, profile: &str, id: &str) -> Value {
        let (_, json) = self.check(profile);
        finding(&json, id).clone()
    }
}

fn interpreter_of_true() -> String {
    match hostready_host::elf::exec_format(fs::File::open("/usr/bin/true").unwrap()).unwrap() {
        hostready_host::elf::ExecFormat::Elf {
            interpreter: Some(i),
            ..
        } => i,
        other => panic!("/usr/bin/true is {other:?}"),
    }
}

fn status(f: &Value) -> &str {
    f["status"].as_str().unwrap()
}

#[test]
fn executable_found_through_symlinks_passes_with_link_chain() {
    let h = TestHost::debian();
    h.elf("/usr/sbin/iscsiadm");
    let f = h.finding("iscsi", "exe.iscsiadm");
    assert_eq!(status(&f), "pass", "{f:#}");
    // /usr/local/sbin comes first in PATH, then /usr/sbin: found there directly.
    assert_eq!(f["evidence"]["path"], "/usr/sbin/iscsiadm");
    // Remove /usr/sbin from the search path: found through the /sbin -> usr/sbin link.
    let (_, json) = run_json(
        hostready()
            .args([
                "check", "-o", "json", "-p", "iscsi", "--path", "/sbin", "--root",
            ])
            .arg(&h.root)
            .arg("--proc")
            .arg(&h.proc),
    );
    let f = finding(&json, "exe.iscsiadm");
    assert_eq!(f["evidence"]["resolved"], "/usr/sbin/iscsiadm", "{f:#}");
    assert_eq!(f["evidence"]["links"], "/sbin -> usr/sbin");
}

#[test]
fn missing_executable_fails_with_the_distros_package() {
    let h = TestHost::debian();
    let f = h.finding("iscsi", "exe.iscsiadm");
    assert_eq!(status(&f), "fail");
    assert_eq!(f["remediation"]["package"], "open-iscsi");
    assert_eq!(
        f["remediation"]["commands"][0],
        "apt-get update && apt-get install -y open-iscsi"
    );
    h.file(
        "/etc/os-release",
        "ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"8.9\"\n",
    );
    let f = h.finding("iscsi", "exe.iscsiadm");
    assert_eq!(
        f["remediation"]["commands"][0],
        "dnf install -y iscsi-initiator-utils"
    );
}

#[test]
fn executable_whose_interpreter_is_missing_warns() {
    let h = TestHost::debian();
    h.elf("/usr/sbin/iscsiadm");
    fs::remove_file(h.root.join(interpreter_of_true().trim_start_matches('/'))).unwrap();
    let f = h.finding("iscsi", "exe.iscsiadm");
    assert_eq!(status(&f), "warn", "{f:#}");
    assert!(
        f["message"].as_str().unwrap().contains("interpreter"),
        "{f:#}"
    );
    // A script whose #! interpreter is absent inside the root.
    h.file("/usr/sbin/cryptsetup", "#!/usr/bin/python9\n");
    fs::set_permissions(
        h.root.join("usr/sbin/cryptsetup"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let f = h.finding("encryption", "exe.cryptsetup");
    assert_eq!(status(&f), "warn", "{f:#}");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("/usr/bin/python9 is missing"),
        "{f:#}"
    );
}

#[test]
fn hostile_symlinks_never_escape_the_root() {
    let h = TestHost::debian();
    // An absolute link to this machine's real /usr/bin/true: inside the root it names a file
    // that does not exist there, so the lookup must not find it.
    symlink("/usr/bin/true", h.root.join("usr/sbin/iscsiadm")).unwrap();
    symlink(
        "../../../../../../usr/bin/true",
        h.root.join("usr/sbin/cryptsetup"),
    )
    .unwrap();
    symlink("dmsetup", h.root.join("usr/sbin/dmsetup")).unwrap();
    let (_, json) = h.check("encryption");
    let by_id = |id: &str| {
        json["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(status(&by_id("exe.cryptsetup")), "fail");
    let dm = by_id("exe.dmsetup");
    assert_eq!(status(&dm), "fail");
    assert!(
        dm["evidence"]["passed over"]
            .as_str()
            .unwrap()
            .contains("loop"),
        "{dm:#}"
    );
    assert_eq!(status(&h.finding("iscsi", "exe.iscsiadm")), "fail");
}

#[test]
fn non_executable_file_is_passed_over() {
    let h = TestHost::debian();
    h.file("/usr/sbin/iscsiadm", "not a program");
    let f = h.finding("iscsi", "exe.iscsiadm");
    assert_eq!(status(&f), "fail");
    assert!(
        f["evidence"]["passed over"]
            .as_str()
            .unwrap()
            .contains("no execute bit"),
        "{f:#}"
    );
}

#[test]
fn kernel_module_states() {
    let h = TestHost::debian();
    // dm_crypt is builtin (modules.builtin spells it dm-crypt).
    assert_eq!(status(&h.finding("encryption", "kmod.dm_crypt")), "pass");
    // iscsi_tcp: listed in modules.dep but its file is missing -> absent -> fail.
    let f = h.finding("iscsi", "kmod.iscsi_tcp");
    assert_eq!(status(&f), "fail", "{f:#}");
    // With the module file present: loadable -> fail with modprobe.
    h.file(
        "/lib/modules/6.1.0-18-amd64/kernel/drivers/scsi/iscsi_tcp.ko.xz",
        "",
    );
    let f = h.finding("iscsi", "kmod.iscsi_tcp");
    assert_eq!(status(&f), "fail");
    assert_eq!(f["remediation"]["commands"][0], "modprobe iscsi_tcp");
    assert_eq!(
        f["remediation"]["commands"][1],
        "echo iscsi_tcp > /etc/modules-load.d/iscsi_tcp.conf"
    );
    // Loaded.
    h.proc_file("/modules", "iscsi_tcp 24576 0 - Live 0x0\n");
    assert_eq!(status(&h.finding("iscsi", "kmod.iscsi_tcp")), "pass");
}

#[test]
fn kernel_module_unknown_without_any_source_then_config_decides() {
    let h = TestHost::debian();
    fs::remove_file(h.proc.join("modules")).unwrap();
    fs::remove_dir_all(h.root.join("lib/modules")).unwrap();
    let f = h.finding("iscsi", "kmod.iscsi_tcp");
    assert_eq!(status(&f), "unknown", "{f:#}");
    // An immutable host without module lists but with a kernel config (longhorn#9301).
    h.file(
        "/boot/config-6.1.0-18-amd64",
        "CONFIG_MODULES=y\nCONFIG_ISCSI_TCP=y\n",
    );
    let f = h.finding("iscsi", "kmod.iscsi_tcp");
    assert_eq!(status(&f), "pass", "{f:#}");
    assert_eq!(
        f["evidence"]["config source"],
        "/boot/config-6.1.0-18-amd64"
    );
}

#[test]
fn iscsid_running_socket_activated_or_not() {
    let h = TestHost::debian();
    let f = h.finding("iscsi", "svc.iscsid");
    assert_eq!(status(&f), "fail");
    assert_eq!(
        f["remediation"]["commands"][0],
        "systemctl enable --now iscsid"
    );
    // Running but not listening in the host's network namespace: unreachable for iscsiadm.
    h.process(812, "iscsid", 'S');
    let f = h.finding("iscsi", "svc.iscsid");
    assert_eq!(status(&f), "warn", "{f:#}");
    assert_eq!(f["evidence"]["pid"], "812");
    // A zombie iscsid does not count.
    h.process(812, "iscsid", 'Z');
    assert_eq!(status(&h.finding("iscsi", "svc.iscsid")), "fail");
    // The socket is listening (iscsid itself or systemd's iscsid.socket): reachable.
    h.proc_file(
        "/1/net/unix",
        "Num       RefCount Protocol Flags    Type St Inode Path\n0000000000000000: 00000002 00000000 00010000 0001 01 20512 @ISCSIADM_ABSTRACT_NAMESPACE\n",
    );
    let f = h.finding("iscsi", "svc.iscsid");
    assert_eq!(status(&f), "pass", "{f:#}");
    assert!(f["message"].as_str().unwrap().contains("reachable"));
    // Without a net/unix to read, a running process decides.
    fs::remove_file(h.proc.join("1/net/unix")).unwrap();
    fs::remove_dir_all(h.proc.join("self")).ok();
    h.process(812, "iscsid", 'S');
    let f = h.finding("iscsi", "svc.iscsid");
    assert_eq!(status(&f), "pass", "{f:#}");
    assert_eq!(f["evidence"]["pid"], "812");
}

#[test]
fn without_procfs_process_facts_are_unknown() {
    let h = TestHost::debian();
    let (code, json) = run_json(
        hostready()
            .args([
                "check", "-o", "json", "-p", "iscsi", "--proc", "none", "--root",
            ])
            .arg(&h.root),
    );
    let svc = finding(&json, "svc.iscsid");
    assert_eq!(status(svc), "unknown");
    // A required unknown is not a pass: exit 1.
    assert_eq!(code, 1);
}

#[test]
fn multipathd_states() {
    let h = TestHost::debian();
    assert_eq!(status(&h.finding("multipath", "svc.multipathd")), "pass");
    h.process(900, "multipathd", 'S');
    let f = h.finding("multipath", "svc.multipathd");
    assert_eq!(status(&f), "warn", "{f:#}");
    h.file(
        "/etc/multipath.conf",
        "blacklist {\n    devnode \"^sd[a-z0-9]+\"\n}\n",
    );
    assert_eq!(status(&h.finding("multipath", "svc.multipathd")), "pass");
}

#[test]
fn nfs_client_and_default_version() {
    let h = TestHost::debian();
    h.file(
        "/boot/config-6.1.0-18-amd64",
        "CONFIG_MODULES=y\nCONFIG_NFS_FS=m\nCONFIG_NFS_V4=m\n",
    );
    let f = h.finding("nfs-client", "nfs.client");
    assert_eq!(status(&f), "fail", "{f:#}");
    assert_eq!(f["remediation"]["commands"][0], "modprobe nfsv4");
    h.proc_file("/modules", "nfsv4 1 0 - Live 0x0\n");
    assert_eq!(status(&h.finding("nfs-client", "nfs.client")), "pass");
    h.proc_file("/modules", "");
    h.proc_file("/filesystems", "nodev\tnfs\nnodev\tnfs4\n");
    assert_eq!(status(&h.finding("nfs-client", "nfs.client")), "pass");
    h.file(
        "/boot/config-6.1.0-18-amd64",
        "# CONFIG_NFS_FS is not set\n",
    );
    h.proc_file("/filesystems", "");
    assert_eq!(status(&h.finding("nfs-client", "nfs.client")), "fail");

    assert_eq!(status(&h.finding("nfs-client", "nfs.defaultvers")), "pass");
    h.file(
        "/etc/nfsmount.conf",
        "[ NFSMount_Global_Options ]\nDefaultvers=3\n",
    );
    let f = h.finding("nfs-client", "nfs.defaultvers");
    assert_eq!(status(&f), "fail");
    assert!(f["message"].as_str().unwrap().contains("Defaultvers=3"));
    h.file(
        "/etc/nfsmount.conf",
        "[ NFSMount_Global_Options ]\nDefaultvers=4.2\n",
    );
    assert_eq!(status(&h.finding("nfs-client", "nfs.defaultvers")), "pass");
}

#[test]
fn v2_engine_hugepages_cpu_and_kernel() {
    let h = TestHost::debian();
    let f = h.finding("longhorn-v2", "hugepages.2048kib");
    assert_eq!(status(&f), "fail");
    h.proc_file(
        "/meminfo",
        "MemTotal: 1000 kB\nHugePages_Total: 1024\nHugepagesize: 2048 kB\n",
    );
    assert_eq!(
        status(&h.finding("longhorn-v2", "hugepages.2048kib")),
        "pass"
    );
    h.file(
        "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
        "512\n",
    );
    assert_eq!(
        status(&h.finding("longhorn-v2", "hugepages.2048kib")),
        "fail",
        "sysfs is authoritative"
    );
    // This machine's architecture decides which flag; the fake cpuinfo has both.
    assert_eq!(status(&h.finding("longhorn-v2", "cpu.flags")), "pass");
    h.proc_file(
        "/cpuinfo",
        "processor\t: 0\nflags\t\t: fpu\nFeatures\t: fp\n",
    );
    assert_eq!(status(&h.finding("longhorn-v2", "cpu.flags")), "fail");
    // 6.1 passes v2's 5.19 minimum; 5.15.0-94 is known bad, 5.4 too old.
    assert_eq!(status(&h.finding("longhorn-v2", "kernel.version")), "pass");
    h.proc_file("/sys/kernel/osrelease", "5.4.0-1-amd64\n");
    assert_eq!(status(&h.finding("longhorn-v2", "kernel.version")), "fail");
    h.proc_file("/sys/kernel/osrelease", "5.15.0-94-generic\n");
    // The v1 kernel requirement is recommended: a known-bad release is a warning there.
    let f = h.finding("kernel", "kernel.version");
    assert_eq!(status(&f), "warn", "{f:#}");
    assert_eq!(f["evidence"]["known bad"], "5.15.0-94..5.15.0-99");
}

#[test]
fn mount_propagation_shared_or_private() {
    let h = TestHost::debian();
    assert_eq!(
        status(&h.finding("mount-propagation", "mount.propagation")),
        "pass"
    );
    h.proc_file(
        "/1/mountinfo",
        "22 1 253:0 / / rw shared:1 - ext4 /dev/vda rw\n40 22 253:1 / /var/lib/longhorn rw - xfs /dev/vdb rw\n",
    );
    let f = h.finding("mount-propagation", "mount.propagation");
    assert_eq!(status(&f), "fail");
    assert_eq!(
        f["remediation"]["commands"][0],
        "mount --make-rshared /var/lib/longhorn"
    );
}

#[test]
fn exit_codes_and_profile_errors() {
    let h = TestHost::debian();
    h.elf("/usr/sbin/iscsiadm");
    h.process(812, "iscsid", 'S');
    h.proc_file(
        "/1/net/unix",
        "Num RefCount Protocol Flags Type St Inode Path\n0: 00000002 00000000 00010000 0001 01 1 @ISCSIADM_ABSTRACT_NAMESPACE\n",
    );
    h.proc_file("/modules", "iscsi_tcp 1 0 - Live 0x0\n");
    let (code, json) = h.check("iscsi");
    assert_eq!(code, 0, "{json:#}");
    assert_eq!(json["ok"], true);

    // A user profile with a typo: exit 2, file:line:column, nothing checked.
    let bad = h.root.parent().unwrap().join("bad.yaml");
    fs::write(
        &bad,
        "name: mine\nrequirements:\n  - executable: iscsiadm\n    levle: required\n",
    )
    .unwrap();
    let out = hostready()
        .args(["check", "-p"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:4:", bad.display())), "{err}");
    assert!(out.stdout.is_empty());

    // An unreadable root: exit 2.
    let out = hostready()
        .args(["check", "--root", "/nonexistent/root"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/root"));
}

#[test]
fn immutable_host_gets_fitting_advice() {
    let h = TestHost::debian();
    h.file(
        "/etc/os-release",
        "NAME=\"SLE Micro\"\nID=\"sle-micro\"\nID_LIKE=\"suse\"\nVERSION_ID=\"5.5\"\n",
    );
    let f = h.finding("iscsi", "exe.iscsiadm");
    assert_eq!(
        f["remediation"]["commands"][0],
        "transactional-update pkg install open-iscsi"
    );
    h.file("/etc/os-release", "ID=talos\nNAME=Talos\n");
    let f = h.finding("iscsi", "exe.iscsiadm");
    assert!(
        f["remediation"]["notes"][0]
            .as_str()
            .unwrap()
            .contains("siderolabs/iscsi-tools"),
        "{f:#}"
    );
}

#[test]
fn table_output_names_what_fails_and_the_fix() {
    let h = TestHost::debian();
    let out = hostready()
        .args(["check", "-p", "iscsi", "--root"])
        .arg(&h.root)
        .arg("--proc")
        .arg(&h.proc)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("FAIL exe.iscsiadm"), "{text}");
    assert!(
        text.contains("$ apt-get update && apt-get install -y open-iscsi"),
        "{text}"
    );
    assert!(text.contains("NOT READY"), "{text}");
    assert!(!text.contains('\x1b'), "no colour when not a terminal");
}

#[test]
fn module_files_are_found_without_modules_dep() {
    let h = TestHost::debian();
    fs::remove_file(h.root.join("lib/modules/6.1.0-18-amd64/modules.dep")).unwrap();
    h.file(
        "/lib/modules/6.1.0-18-amd64/kernel/drivers/scsi/iscsi_tcp.ko.zst",
        "",
    );
    let f = h.finding("iscsi", "kmod.iscsi_tcp");
    assert_eq!(status(&f), "fail", "{f:#}");
    assert_eq!(
        f["evidence"]["module file"],
        "/lib/modules/6.1.0-18-amd64/kernel/drivers/scsi/iscsi_tcp.ko.zst"
    );
    assert_eq!(f["remediation"]["commands"][0], "modprobe iscsi_tcp");
}
