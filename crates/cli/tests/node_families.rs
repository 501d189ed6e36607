//! `hostready check -p <profile file>` end to end for the node-side families of issue 13 —
//! `service` (socket activation), `svc.multipathd`, `cri_socket`, `data_path`, `raw_disks` —
//! and the half-installed package note: the real binary against roots built in temporary
//! directories, each status each family can give, and every report valid against its schema.

// Tests build fake hosts, sockets, device nodes and loop devices on this machine directly.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use hostready_testkit::fakehost::{FakeHost, init_process, write};
use hostready_testkit::loopdev::{LoopDevice, split_dev};
use serde_json::Value;
use util::{finding, hostready, run_json};

mod util;

const NET_UNIX_HEADER: &str = "Num       RefCount Protocol Flags    Type St Inode Path\n";

/// A Debian host root with a procfs tree (pid 1 systemd, no sockets, `/` on ext4).
struct Host {
    h: FakeHost,
    profile: PathBuf,
}

impl Host {
    fn new(profile: &str) -> Host {
        let h = FakeHost::new();
        h.file(
            "/etc/os-release",
            "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
        );
        init_process(&h.proc);
        h.proc_file("/1/net/unix", NET_UNIX_HEADER);
        let profile_path = h.dir.path().join("profile.yaml");
        fs::write(&profile_path, profile).unwrap();
        Host {
            h,
            profile: profile_path,
        }
    }

    fn listeners(&self, names: &[&str]) {
        let mut t = NET_UNIX_HEADER.to_string();
        for (i, n) in names.iter().enumerate() {
            t.push_str(&format!(
                "00000000211c6dc9: 00000002 00000000 00010000 0001 01 {} {n}\n",
                2137300 + i
            ));
        }
        // A connected end of the same socket: never a listener.
        t.push_str("0000000065b8c6e3: 00000003 00000000 00000000 0001 03 99 /run/other.sock\n");
        self.h.proc_file("/1/net/unix", &t);
    }

    fn process(&self, pid: u32, comm: &str) {
        self.h
            .proc_file(&format!("/{pid}/comm"), &format!("{comm}\n"));
        self.h.proc_file(
            &format!("/{pid}/stat"),
            &format!("{pid} ({comm}) S 1 {pid} {pid}\n"),
        );
    }

    fn mountinfo(&self, text: &str) {
        self.h.proc_file("/1/mountinfo", text);
    }

    fn check_with(&self, proc: bool) -> (i32, Value) {
        let mut cmd = hostready();
        cmd.args(["check", "-o", "json", "-p"])
            .arg(&self.profile)
            .arg("--root")
            .arg(&self.h.root)
            .arg("--proc");
        if proc {
            cmd.arg(&self.h.proc);
        } else {
            cmd.arg("none");
        }
        let (code, json) = run_json(&mut cmd);
        schema::assert_valid("check", &json);
        (code, json)
    }

    fn finding(&self, id: &str) -> Value {
        finding(&self.check_with(true).1, id).clone()
    }
}

fn status(f: &Value) -> &str {
    f["status"].as_str().unwrap()
}

fn message(f: &Value) -> &str {
    f["message"].as_str().unwrap()
}

#[test]
fn multipathd_socket_activation_is_active_not_a_pass() {
    let h = Host::new("name: t\nrequirements:\n  - multipathd: {}\n");
    assert_eq!(status(&h.finding("svc.multipathd")), "pass");
    // Regression (issue 13, Longhorn fidelity): Ubuntu server images enable multipathd.socket;
    // systemd holds @/org/kernel/linux/storage/multipathd with no multipathd process. This
    // passed as "not running".
    h.listeners(&["@/org/kernel/linux/storage/multipathd"]);
    let f = h.finding("svc.multipathd");
    assert_eq!(status(&f), "warn", "{f:#}");
    assert!(message(&f).contains("does not blacklist"), "{f:#}");
    assert!(
        message(&f).contains("@/org/kernel/linux/storage/multipathd"),
        "{f:#}"
    );
    assert_eq!(f["evidence"]["active"], "listening");
    // The unit enabled, as `systemctl enable multipathd.socket` links it: said so.
    h.h.file("/lib/systemd/system/multipathd.socket", "[Socket]\n");
    symlink(
        "/lib/systemd/system/multipathd.socket",
        h.h.root
            .join("etc/systemd/system/sockets.target.wants/multipathd.socket"),
    )
    .or_else(|_| {
        fs::create_dir_all(h.h.root.join("etc/systemd/system/sockets.target.wants")).unwrap();
        symlink(
            "/lib/systemd/system/multipathd.socket",
            h.h.root
                .join("etc/systemd/system/sockets.target.wants/multipathd.socket"),
        )
    })
    .unwrap();
    let f = h.finding("svc.multipathd");
    assert_eq!(f["evidence"]["active"], "socket-activated", "{f:#}");
    assert!(message(&f).contains("socket-activated"), "{f:#}");
    // Enabled but not listening yet (not started since boot): still active.
    h.listeners(&[]);
    let f = h.finding("svc.multipathd");
    assert_eq!(f["evidence"]["active"], "socket-activated", "{f:#}");
    // Blacklisting Longhorn's devices makes it harmless.
    h.h.file(
        "/etc/multipath.conf",
        "blacklist {\n    devnode \"^sd[a-z0-9]+\"\n}\n",
    );
    let f = h.finding("svc.multipathd");
    assert_eq!(status(&f), "pass", "{f:#}");
    assert!(message(&f).contains("socket-activated"), "{f:#}");
}

#[test]
fn a_service_is_running_listening_socket_activated_or_none_and_says_which() {
    let h = Host::new(
        "name: t\nrequirements:\n  - service: {name: containerd-shim-runc, socket: /run/shim.sock}\n  - service: {name: lvmpolld}\n",
    );
    let (_, json) = h.check_with(true);
    assert_eq!(status(finding(&json, "svc.containerd-shim-runc")), "fail");
    assert_eq!(status(finding(&json, "svc.lvmpolld")), "fail");
    // comm is cut to 15 bytes by the kernel: `containerd-shim` is this 20-byte name running.
    h.process(700, "containerd-shim");
    let f = h.finding("svc.containerd-shim-runc");
    assert_eq!(status(&f), "warn", "running but not listening: {f:#}");
    h.listeners(&["/run/shim.sock"]);
    let f = h.finding("svc.containerd-shim-runc");
    assert_eq!(status(&f), "pass", "{f:#}");
    assert_eq!(f["evidence"]["active"], "listening");
    // No socket named: an enabled .socket unit is socket activation.
    fs::create_dir_all(h.h.root.join("etc/systemd/system/sockets.target.wants")).unwrap();
    h.h.file(
        "/etc/systemd/system/sockets.target.wants/lvmpolld.socket",
        "",
    );
    let f = h.finding("svc.lvmpolld");
    assert_eq!(status(&f), "pass", "{f:#}");
    assert_eq!(f["evidence"]["active"], "socket-activated");
    // Without a procfs neither the socket table nor the processes can be seen.
    let (_, json) = h.check_with(false);
    assert_eq!(
        status(finding(&json, "svc.containerd-shim-runc")),
        "unknown"
    );
}

#[test]
fn service_sockets_are_validated_with_their_place_in_the_file() {
    let h = Host::new("name: t\nrequirements:\n  - service: {name: x, socket: \"run/x.sock\"}\n");
    let out = hostready()
        .args(["check", "-p"])
        .arg(&h.profile)
        .arg("--root")
        .arg(&h.h.root)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("profile.yaml:3:"), "{err}");
    assert!(err.contains("absolute path or an abstract name"), "{err}");
}

#[test]
fn cri_socket_listening_stale_not_a_socket_escaping_or_absent() {
    let h = Host::new("name: t\nrequirements:\n  - cri_socket: {}\n");
    let f = h.finding("cri.socket");
    assert_eq!(status(&f), "fail", "{f:#}");
    assert!(message(&f).contains("no CRI socket"), "{f:#}");
    // containerd's real socket, through Debian's /var/run -> /run link.
    fs::create_dir_all(h.h.root.join("run/containerd")).unwrap();
    symlink("/run", h.h.root.join("var/run")).unwrap_or_else(|_| {
        fs::create_dir_all(h.h.root.join("var")).unwrap();
        symlink("/run", h.h.root.join("var/run")).unwrap()
    });
    let _sock =
        std::os::unix::net::UnixListener::bind(h.h.root.join("run/containerd/containerd.sock"))
            .unwrap();
    // The socket exists, but the host's table has no listener there: a stale socket.
    let f = h.finding("cri.socket");
    assert_eq!(status(&f), "fail", "{f:#}");
    assert!(message(&f).contains("nothing listens"), "{f:#}");
    h.listeners(&["/run/containerd/containerd.sock"]);
    let f = h.finding("cri.socket");
    assert_eq!(status(&f), "pass", "{f:#}");
    assert_eq!(
        f["evidence"]["cri /var/run/containerd/containerd.sock"],
        "socket /run/containerd/containerd.sock, listening"
    );
    // A second runtime listening: kubeadm would refuse to pick.
    fs::create_dir_all(h.h.root.join("run/crio")).unwrap();
    let _crio =
        std::os::unix::net::UnixListener::bind(h.h.root.join("run/crio/crio.sock")).unwrap();
    h.listeners(&["/run/containerd/containerd.sock", "/run/crio/crio.sock"]);
    assert_eq!(status(&h.finding("cri.socket")), "warn");
    // Unknown without a socket table.
    let (_, json) = h.check_with(false);
    assert_eq!(status(finding(&json, "cri.socket")), "unknown");

    // A configured path that is a regular file, and one behind a link that climbs out.
    let h = Host::new(
        "name: t\nrequirements:\n  - cri_socket: {paths: [/run/k3s/containerd/containerd.sock]}\n",
    );
    h.h.file("/run/k3s/containerd/containerd.sock", "");
    let f = h.finding("cri.socket");
    assert_eq!(status(&f), "fail", "{f:#}");
    assert!(message(&f).contains("is a file"), "{f:#}");
    fs::remove_file(h.h.root.join("run/k3s/containerd/containerd.sock")).unwrap();
    symlink(
        "../../../../../../etc/shadow",
        h.h.root.join("run/k3s/containerd/containerd.sock"),
    )
    .unwrap();
    h.h.file("/etc/shadow", "");
    let f = h.finding("cri.socket");
    assert_eq!(status(&f), "unknown", "{f:#}");
    assert!(
        message(&f).contains("/run/k3s/containerd/containerd.sock is a symlink to ../../../../../../etc/shadow, which climbs out of the root"),
        "{f:#}"
    );
}

#[test]
fn data_path_filesystem_options_space_and_a_path_not_created_yet() {
    let h = Host::new(
        "name: t\nrequirements:\n  - data_path: {path: /var/lib/longhorn, filesystems: [ext4, xfs], forbid_options: [noexec]}\n  - data_path: {path: /var/lib/rook, min_free_gib: 1}\n    id: rook.data\n  - data_path: {path: /var/lib/huge, min_free_gib: 100000000}\n",
    );
    fs::create_dir_all(h.h.root.join("var/lib/longhorn")).unwrap();
    fs::create_dir_all(h.h.root.join("var/lib/huge")).unwrap();
    // The device the root's files are really on, so free space is trusted.
    let (major, minor) = split_dev(fs::metadata(&h.h.root).unwrap().dev());
    h.mountinfo(&format!(
        "22 1 {major}:{minor} / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro\n"
    ));
    let (_, json) = h.check_with(true);
    let f = finding(&json, "path./var/lib/longhorn");
    assert_eq!(status(f), "pass", "{f:#}");
    assert_eq!(f["kind"], "data_path");
    assert_eq!(f["subject"], "/var/lib/longhorn");
    // Not created yet: judged by /var/lib, and said so.
    let f = finding(&json, "rook.data");
    assert_eq!(status(f), "pass", "{f:#}");
    assert!(message(f).contains("not created yet"), "{f:#}");
    assert!(
        f["evidence"]["space"]
            .as_str()
            .unwrap()
            .contains("GiB available")
    );
    let f = finding(&json, "path./var/lib/huge");
    assert_eq!(status(f), "fail", "{f:#}");
    assert!(message(f).contains("GiB wanted"), "{f:#}");

    // Its own mount: tmpfs with noexec fails on both counts.
    h.mountinfo(&format!(
        "22 1 {major}:{minor} / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n\
         40 22 0:50 / /var/lib/longhorn rw,nosuid,noexec - tmpfs tmpfs rw\n"
    ));
    let f = h.finding("path./var/lib/longhorn");
    assert_eq!(status(&f), "fail", "{f:#}");
    assert!(message(&f).contains("on tmpfs, not ext4 or xfs"), "{f:#}");
    assert!(message(&f).contains("noexec"), "{f:#}");

    // The host's mountinfo names another device than the root shows (no HostToContainer
    // propagation into a pod): free space through the root is not the host's.
    h.mountinfo("22 1 253:7 / / rw shared:1 - ext4 /dev/vda1 rw\n");
    let f = h.finding("rook.data");
    assert_eq!(status(&f), "unknown", "{f:#}");
    assert!(message(&f).contains("HostToContainer"), "{f:#}");
    // No mountinfo at all.
    let (_, json) = h.check_with(false);
    assert_eq!(status(finding(&json, "path./var/lib/longhorn")), "unknown");
}

#[test]
fn raw_disks_blank_formatted_partitioned_mounted_and_unreadable() {
    let h = Host::new("name: t\nrequirements:\n  - raw_disks: {min_count: 1, min_size_gib: 0}\n");
    h.mountinfo("22 1 254:1 / / rw shared:1 - ext4 /dev/vda1 rw\n");
    // A real 64 MiB loop device as the disk `vdz`: sysfs entries and the root's /dev node.
    let img = h.h.dir.path().join("disk.img");
    fs::File::create(&img).unwrap().set_len(64 << 20).unwrap();
    let lo = LoopDevice::attach(&img);
    let (major, minor) = lo.number();
    let sys = |name: &str, dev: &str, size: &str| {
        for (f, v) in [
            ("size", size),
            ("ro", "0"),
            ("removable", "0"),
            ("dev", dev),
        ] {
            write(
                &h.h.root,
                &format!("/sys/block/{name}/{f}"),
                format!("{v}\n"),
            );
        }
    };
    sys("vdz", &format!("{major}:{minor}"), "131072");
    // The system disk: partitioned and mounted; a loop device of the host: skipped.
    sys("vda", "254:0", "209715200");
    write(&h.h.root, "/sys/block/vda/vda1/partition", "1\n");
    write(&h.h.root, "/sys/block/vda/vda1/dev", "254:1\n");
    sys("loop0", "7:0", "0");
    fs::create_dir_all(h.h.root.join("dev")).unwrap();
    let node = h.h.root.join("dev/vdz");
    let st = Command::new("mknod")
        .arg(&node)
        .args(["b", &major.to_string(), &minor.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let f = h.finding("disk.raw");
    assert_eq!(status(&f), "pass", "{f:#}");
    assert_eq!(f["evidence"]["disk vdz"], "raw, 0.1 GiB");
    assert_eq!(f["evidence"]["disk vda"], "in use: partitions vda1");
    assert_eq!(f["evidence"]["skipped virtual devices"], "loop0");
    assert_eq!(f["kind"], "raw_disks");

    // Formatted: no raw disk left.
    let mk = Command::new("mkfs.ext4")
        .args(["-q", "-F", lo.path()])
        .status()
        .unwrap();
    assert!(mk.success());
    let f = h.finding("disk.raw");
    assert_eq!(status(&f), "fail", "{f:#}");
    assert_eq!(f["evidence"]["disk vdz"], "in use: holds ext4");

    // Mounted (by device number in the host's mountinfo) is in use before any read.
    h.mountinfo(&format!(
        "22 1 254:1 / / rw shared:1 - ext4 /dev/vda1 rw\n30 22 {major}:{minor} / /mnt/disk rw - ext4 /dev/vdz rw\n"
    ));
    let f = h.finding("disk.raw");
    assert_eq!(f["evidence"]["disk vdz"], "in use: mounted on /mnt/disk");

    // A node that is not a block device (planted, or a DaemonSet without /dev): unknown,
    // naming the node.
    h.mountinfo("22 1 254:1 / / rw shared:1 - ext4 /dev/vda1 rw\n");
    fs::remove_file(&node).unwrap();
    write(&h.h.root, "/dev/vdz", "XFSB");
    let f = h.finding("disk.raw");
    assert_eq!(status(&f), "unknown", "{f:#}");
    assert!(message(&f).contains("/dev/vdz"), "{f:#}");
    assert!(message(&f).contains("not a block device"), "{f:#}");

    // No sysfs: unknown.
    fs::remove_dir_all(h.h.root.join("sys")).unwrap();
    let f = h.finding("disk.raw");
    assert_eq!(status(&f), "unknown", "{f:#}");
    assert!(message(&f).contains("/sys/block"), "{f:#}");
}

#[test]
fn an_executable_of_a_half_installed_package_warns() {
    let h = Host::new("name: t\nrequirements:\n  - executable: iscsiadm\n");
    // A real, runnable ELF (this machine's `true`) and its interpreter inside the root.
    let exe = h.h.root.join("usr/sbin/iscsiadm");
    fs::create_dir_all(exe.parent().unwrap()).unwrap();
    fs::copy("/usr/bin/true", &exe).unwrap();
    let interp =
        match hostready_host::elf::exec_format(fs::File::open("/usr/bin/true").unwrap()).unwrap() {
            hostready_host::elf::ExecFormat::Elf {
                interpreter: Some(i),
                ..
            } => i,
            other => panic!("/usr/bin/true is {other:?}"),
        };
    write(&h.h.root, &interp, "");
    fs::set_permissions(
        h.h.root.join(interp.trim_start_matches('/')),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let status_file = "Package: open-iscsi\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.1.8-1\n\n";
    h.h.file("/var/lib/dpkg/status", status_file);
    h.h.file(
        "/var/lib/dpkg/info/open-iscsi.list",
        "/usr\n/usr/sbin\n/usr/sbin/iscsiadm\n",
    );
    let run = || {
        let (_, json) = run_json(
            hostready()
                .args(["check", "-o", "json", "--path", "/usr/sbin", "-p"])
                .arg(&h.profile)
                .arg("--root")
                .arg(&h.h.root)
                .args(["--proc", "none"]),
        );
        schema::assert_valid("check", &json);
        finding(&json, "exe.iscsiadm").clone()
    };
    assert_eq!(status(&run()), "pass", "{:#}", run());
    // dpkg was interrupted while unpacking the upgrade (`iU`).
    h.h.file(
        "/var/lib/dpkg/status",
        &status_file.replace("install ok installed", "install ok unpacked"),
    );
    let f = run();
    assert_eq!(status(&f), "warn", "{f:#}");
    assert!(message(&f).contains("open-iscsi"), "{f:#}");
    assert!(message(&f).contains("install ok unpacked"), "{f:#}");
    assert_eq!(f["remediation"]["commands"][0], "dpkg --configure -a");
    // Another package half-installed changes nothing for this executable.
    h.h.file(
        "/var/lib/dpkg/status",
        &format!("{status_file}Package: vim\nStatus: install ok half-installed\nArchitecture: amd64\nVersion: 2:9.0-1\n\n"),
    );
    h.h.file("/var/lib/dpkg/info/vim.list", "/usr/bin/vim\n");
    assert_eq!(status(&run()), "pass");
}

mod schema {
    //! The report checked against `docs/schemas/`, as `schemas.rs` does.
    use serde_json::Value;

    pub fn assert_valid(name: &str, doc: &Value) {
        super::util::schema::assert_valid(name, doc, name);
    }
}

#[test]
fn a_hundred_thousand_socket_table_is_streamed_in_bounded_memory() {
    use hostready_testkit::memcg::MemCgroup;
    // The agent's limit; the bound is the same check's peak RSS on a table with one line, plus
    // 4 MiB (the binary's own pages are measured, not assumed).
    let h = Host::new("name: t\nrequirements:\n  - multipathd: {}\n");
    let args = |h: &Host| {
        let mut c = hostready();
        c.args(["check", "-o", "json", "-p"])
            .arg(&h.profile)
            .arg("--root")
            .arg(&h.h.root)
            .arg("--proc")
            .arg(&h.h.proc);
        c
    };
    h.listeners(&["@/org/kernel/linux/storage/multipathd"]);
    let small =
        MemCgroup::new(hostready_testkit::memcg::daemonset_limit()).run_command(&mut args(&h));
    assert_eq!(small.oom_kills, 0);
    // 100,000 connected sockets (as a node with thousands of containers has), about 6 MiB of
    // table — over the 4 MiB a whole-file read accepted — with the listener last.
    let mut t = String::from(NET_UNIX_HEADER);
    for i in 0..100_000 {
        t.push_str(&format!(
            "00000000fd76f3ea: 00000003 00000000 00000000 0001 03 {i} /run/containerd/s/{i:016x}\n"
        ));
    }
    t.push_str(
        "00000000211c6dc9: 00000002 00000000 00010000 0001 01 7 @/org/kernel/linux/storage/multipathd\n",
    );
    assert!(t.len() > 6 << 20);
    h.h.proc_file("/1/net/unix", &t);
    let big =
        MemCgroup::new(hostready_testkit::memcg::daemonset_limit()).run_command(&mut args(&h));
    assert_eq!(big.oom_kills, 0);
    let json: Value = serde_json::from_slice(&big.output.stdout).unwrap();
    let f = finding(&json, "svc.multipathd");
    assert_eq!(f["evidence"]["active"], "listening", "{f:#}");
    let bound = small.max_rss_kib + (4 << 10);
    assert!(
        big.max_rss_kib <= bound,
        "peak RSS {} KiB on 100,000 sockets, bound {bound} KiB (one line: {} KiB)",
        big.max_rss_kib,
        small.max_rss_kib
    );
    eprintln!(
        "net/unix of {} bytes: peak RSS {:.1} MiB (one-line table: {:.1} MiB)",
        t.len(),
        big.max_rss_mib(),
        small.max_rss_mib()
    );
}

const DEBROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.cache/debroot/bookworm");

#[test]
fn on_the_debootstrap_root_the_real_dpkg_status_is_read_and_nothing_is_unfinished() {
    assert!(
        Path::new(DEBROOT).join("var/lib/dpkg/status").exists(),
        "no debootstrap root at {DEBROOT}: run scripts/debroot"
    );
    let h =
        Host::new("name: t\nrequirements:\n  - executable: iscsiadm\n  - executable: dmsetup\n");
    let (_, json) = run_json(
        hostready()
            .args(["check", "-o", "json", "-p"])
            .arg(&h.profile)
            .args(["--root", DEBROOT, "--proc", "none"]),
    );
    schema::assert_valid("check", &json);
    for id in ["exe.iscsiadm", "exe.dmsetup"] {
        let f = finding(&json, id);
        assert_eq!(status(f), "pass", "{f:#}");
        // Read, found nothing unfinished, said nothing: no note, no "unknown" either.
        assert!(f["evidence"].get("package state").is_none(), "{f:#}");
    }
}

#[test]
fn on_this_machine_a_data_path_not_created_yet_is_judged_by_its_parent_with_real_statvfs() {
    let p = tempfile::NamedTempFile::new().unwrap();
    fs::write(
        p.path(),
        "name: t\nrequirements:\n  - data_path: {path: /var/lib/hostready-test-absent/data, min_free_gib: 0}\n",
    )
    .unwrap();
    let (_, json) = run_json(
        hostready()
            .args(["check", "-o", "json", "-p"])
            .arg(p.path())
            .args(["--root", "/"]),
    );
    schema::assert_valid("check", &json);
    let f = finding(&json, "path./var/lib/hostready-test-absent/data");
    assert_eq!(status(f), "pass", "{f:#}");
    assert!(message(f).contains("its ancestor /var/lib"), "{f:#}");
    assert!(
        f["evidence"]["space"]
            .as_str()
            .unwrap()
            .contains("GiB available of"),
        "{f:#}"
    );
    assert_eq!(f["evidence"]["mounts source"], "/proc/1/mountinfo");
}

#[test]
fn profiles_with_the_node_keys_match_the_profiles_schema() {
    let h = Host::new(
        "name: t\nrequirements:\n  - cri_socket: {}\n  - data_path: {path: /var/lib/longhorn, filesystems: [ext4, xfs], min_free_gib: 10, forbid_options: [noexec]}\n  - data_path: {path: /var/lib/rook}\n  - raw_disks: {min_count: 2, min_size_gib: 10, include: [loop]}\n  - service: {name: multipathd, socket: \"@/org/kernel/linux/storage/multipathd\"}\n",
    );
    for format in ["json", "yaml"] {
        let out = hostready()
            .args(["profiles", "-o", format])
            .arg(&h.profile)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let doc: Value = if format == "json" {
            serde_json::from_slice(&out.stdout).unwrap()
        } else {
            serde_yaml_ng::from_slice(&out.stdout).unwrap()
        };
        schema::assert_valid("profiles", &doc);
        let kinds: Vec<String> = doc[0]["requirements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                r["check"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .next()
                    .unwrap()
                    .clone()
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "cri_socket",
                "data_path",
                "data_path",
                "raw_disks",
                "service"
            ],
            "{format}"
        );
    }
}
