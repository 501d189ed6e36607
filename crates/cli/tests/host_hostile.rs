//! `hostready check` against hostile host roots, through the real binary: readers bounded in
//! memory under a real memory cgroup (the DaemonSet's limit, read from its manifest), permission denied read as
//! "unknown" with the reason (run as an unprivileged uid), impossible procfs figures refused,
//! and a `proc` symlink that never hands over this machine's procfs.

// Tests build fake hosts and read fixtures on this machine directly, not a host's root.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use hostready_testkit::fakehost::{FakeHost, Mount, write_mode as write};
use hostready_testkit::memcg::MemCgroup;
use hostready_testkit::process::Reaped;
use serde_json::Value;
use util::{finding, hostready};

mod util;

/// What a hostile input may add to the peak RSS of the same check on an ordinary host: the
/// readers' fixed caps (issue 9 §1). The unoptimised binary's own resident pages (12-16 MiB,
/// more as the code grows) are measured, not assumed.
const GROWTH_KIB: u64 = 4 << 10;

/// The bound for `check` with `profile_yaml`: its peak RSS on a fresh fake host (the files it
/// looks for absent, the same procfs), plus [`GROWTH_KIB`].
fn bound_kib(profile_yaml: &str) -> u64 {
    let h = Host::new();
    config_only_proc(&h, &gzip(Command::new("echo").arg("CONFIG_ISCSI_TCP=m")));
    let profile = h.profile(profile_yaml);
    let m = MemCgroup::new(hostready_testkit::memcg::daemonset_limit())
        .run_command(hostready().args(h.check_args(&profile, true)));
    assert_eq!(m.oom_kills, 0);
    m.max_rss_kib + GROWTH_KIB
}

/// The unprivileged user the permission tests run as (`nobody`).
const NOBODY: &str = "65534";

/// A host root in a temporary directory that an unprivileged user can reach.
/// (The kit's fake host is 0755: the unprivileged runs must get to the root.)
struct Host(FakeHost);

impl std::ops::Deref for Host {
    type Target = FakeHost;
    fn deref(&self) -> &FakeHost {
        &self.0
    }
}

impl Host {
    fn new() -> Host {
        let h = Host(FakeHost::new());
        for d in ["usr/sbin", "usr/bin", "etc"] {
            fs::create_dir_all(h.root.join(d)).unwrap();
        }
        h.file("/etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n", 0o644);
        h
    }

    fn file(&self, path: &str, text: &str, mode: u32) -> PathBuf {
        write(&self.root, path, text.as_bytes(), mode)
    }

    fn proc_file(&self, path: &str, text: &[u8], mode: u32) -> PathBuf {
        write(&self.proc, path, text, mode)
    }

    fn chmod(&self, path: &str, mode: u32) {
        let p = self.root.join(path.trim_start_matches('/'));
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Writes a profile file next to the root and returns its path.
    fn profile(&self, yaml: &str) -> PathBuf {
        let p = self.dir.path().join("profile.yaml");
        fs::write(&p, yaml).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        p
    }

    /// The argv of `hostready check` on this host, JSON output.
    fn check_args(&self, profile: &Path, proc: bool) -> Vec<std::ffi::OsString> {
        let mut a: Vec<std::ffi::OsString> = vec![
            "check".into(),
            "-o".into(),
            "json".into(),
            "-p".into(),
            profile.into(),
            "--root".into(),
            self.root.clone().into(),
            "--proc".into(),
        ];
        a.push(if proc {
            self.proc.clone().into()
        } else {
            "none".into()
        });
        a
    }

    /// Runs `hostready check` as root; returns exit code, report and stderr.
    fn check(&self, profile: &Path, proc: bool) -> (i32, Value, String) {
        report(hostready().args(self.check_args(profile, proc)))
    }

    /// Runs `hostready check` as `nobody`, with no capabilities.
    fn check_unprivileged(&self, profile: &Path, proc: bool) -> (i32, Value, String) {
        report(unprivileged().args(self.check_args(profile, proc)))
    }
}

/// `hostready` run through `setpriv` as uid/gid 65534 with no supplementary groups: setting a
/// non-zero uid clears every capability, `CAP_DAC_OVERRIDE` included.
fn unprivileged() -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid", NOBODY, "--regid", NOBODY, "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_hostready"));
    c
}

fn report(cmd: &mut Command) -> (i32, Value, String) {
    let out = cmd.output().expect("run hostready");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().expect("exit code"), json, stderr)
}

fn status(f: &Value) -> &str {
    f["status"].as_str().unwrap()
}

fn text(f: &Value) -> String {
    f.to_string()
}

/// A little-endian x86_64 ELF64 whose `count` program headers are all `PT_INTERP`, each
/// claiming `claim` bytes at offset 4096 of a sparse file of `claim + 4096` bytes.
fn interp_bomb(path: &Path, count: u16, claim: u64) {
    let mut b = vec![0u8; 64];
    b[..8].copy_from_slice(b"\x7fELF\x02\x01\x01\x00");
    b[16..18].copy_from_slice(&3u16.to_le_bytes());
    b[18..20].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    b[20..24].copy_from_slice(&1u32.to_le_bytes());
    b[32..40].copy_from_slice(&64u64.to_le_bytes());
    b[52..54].copy_from_slice(&64u16.to_le_bytes());
    b[54..56].copy_from_slice(&56u16.to_le_bytes());
    b[56..58].copy_from_slice(&count.to_le_bytes());
    for _ in 0..count {
        let mut ph = [0u8; 56];
        ph[..4].copy_from_slice(&3u32.to_le_bytes()); // PT_INTERP
        ph[8..16].copy_from_slice(&4096u64.to_le_bytes());
        ph[32..40].copy_from_slice(&claim.to_le_bytes());
        b.extend_from_slice(&ph);
    }
    let f = fs::File::create(path).unwrap();
    f.write_all_at(&b, 0).unwrap();
    f.set_len(claim + 4096).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn elf_with_huge_interpreter_headers_is_examined_within_the_memory_bound() {
    let h = Host::new();
    // What made `check` allocate ~1.5 GB: several PT_INTERP over a 512 MiB sparse file.
    interp_bomb(&h.root.join("usr/sbin/tool"), 60, 512 << 20);
    let yaml = "name: elfbomb\nrequirements:\n  - executable: tool\n";
    let profile = h.profile(yaml);
    let bound = bound_kib(yaml);
    let cg = MemCgroup::new(hostready_testkit::memcg::daemonset_limit());
    let m = cg.run_command(hostready().args(h.check_args(&profile, false)));
    let json: Value = serde_json::from_slice(&m.output.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}; exit {:?}, oom kills {}, stderr {}",
            m.exit_code,
            m.oom_kills,
            String::from_utf8_lossy(&m.output.stderr)
        )
    });
    let f = finding(&json, "exe.tool");
    assert_eq!(status(f), "warn", "{f:#}");
    assert!(
        text(f).contains("the kernel refuses to run this ELF"),
        "{f:#}"
    );
    assert!(text(f).contains("536870912 bytes"), "{f:#}");
    assert_eq!(m.oom_kills, 0);
    assert!(
        m.max_rss_kib <= bound,
        "peak RSS {:.1} MiB > {:.1} MiB (an ordinary host's + 4)",
        m.max_rss_mib(),
        bound as f64 / 1024.0
    );
    eprintln!("ELF interp bomb: peak RSS {:.1} MiB", m.max_rss_mib());
}

/// Compresses `data` with the system's gzip (a real gzip stream, as the kernel's).
fn gzip(data_cmd: &mut Command) -> Vec<u8> {
    let mut src = data_cmd.stdout(Stdio::piped()).spawn().unwrap();
    let out = Command::new("gzip")
        .args(["-1", "-c"])
        .stdin(src.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(src.wait().unwrap().success() && out.status.success());
    out.stdout
}

/// A procfs tree whose kernel has no module lists, so a module check asks the config.
fn config_only_proc(h: &Host, config_gz: &[u8]) {
    h.proc_file("/sys/kernel/osrelease", b"6.1.0-18-amd64\n", 0o644);
    h.proc_file("/config.gz", config_gz, 0o644);
}

const KMOD_PROFILE: &str =
    "name: kmod\nrequirements:\n  - kernel_module: iscsi_tcp\n    config: CONFIG_ISCSI_TCP\n";

#[test]
fn config_gz_over_the_cap_is_unknown_not_a_prefix() {
    let h = Host::new();
    // 5 MiB of comment lines, then the option: reading only a prefix would say "not set".
    let mut config = Vec::new();
    while config.len() < 5 << 20 {
        config.extend_from_slice(b"# padding padding padding padding padding padding padding\n");
    }
    config.extend_from_slice(b"CONFIG_ISCSI_TCP=y\n");
    let raw = h.dir.path().join("config");
    fs::write(&raw, &config).unwrap();
    config_only_proc(&h, &gzip(Command::new("cat").arg(&raw)));
    let profile = h.profile(KMOD_PROFILE);
    let (_, json, err) = h.check(&profile, true);
    let f = finding(&json, "kmod.iscsi_tcp");
    assert_eq!(status(f), "unknown", "{f:#} {err}");
    assert!(text(f).contains("too large"), "{f:#}");
    // The same option in a config under the cap decides.
    let small = gzip(Command::new("printf").arg("CONFIG_MODULES=y\\nCONFIG_ISCSI_TCP=y\\n"));
    config_only_proc(&h, &small);
    let (_, json, _) = h.check(&profile, true);
    let f = finding(&json, "kmod.iscsi_tcp");
    assert_eq!(status(f), "pass", "{f:#}");
}

#[test]
fn gzip_bomb_config_is_refused_within_the_memory_bound() {
    let h = Host::new();
    // 256 MiB of zeros in ~250 KiB of gzip: 128 times the config cap.
    let bomb = gzip(Command::new("head").args(["-c", "268435456", "/dev/zero"]));
    assert!(bomb.len() < 2 << 20);
    config_only_proc(&h, &bomb);
    let profile = h.profile(KMOD_PROFILE);
    let bound = bound_kib(KMOD_PROFILE);
    let cg = MemCgroup::new(hostready_testkit::memcg::daemonset_limit());
    let m = cg.run_command(hostready().args(h.check_args(&profile, true)));
    let json: Value = serde_json::from_slice(&m.output.stdout).unwrap();
    let f = finding(&json, "kmod.iscsi_tcp");
    assert_eq!(status(f), "unknown", "{f:#}");
    assert!(text(f).contains("too large"), "{f:#}");
    assert!(
        m.max_rss_kib <= bound,
        "peak RSS {:.1} MiB > {:.1} MiB (an ordinary host's + 4)",
        m.max_rss_mib(),
        bound as f64 / 1024.0
    );
    eprintln!("gzip bomb config: peak RSS {:.1} MiB", m.max_rss_mib());
}

#[test]
fn unreadable_root_is_an_error_not_a_verdict() {
    let h = Host::new();
    fs::set_permissions(&h.root, fs::Permissions::from_mode(0o700)).unwrap();
    let profile = h.profile("name: mine\nrequirements:\n  - executable: iscsiadm\n");
    let (code, json, err) = h.check_unprivileged(&profile, false);
    assert_eq!(code, 2, "{json} {err}");
    assert!(err.contains("cannot open host root"), "{err}");
    assert!(err.contains(h.root.to_str().unwrap()), "{err}");
    assert!(err.contains("Permission denied"), "{err}");
    // As root the same root is readable and the executable simply missing: exit 1.
    let (code, _, err) = h.check(&profile, false);
    assert_eq!(code, 1, "{err}");
}

/// A script executable whose interpreter is present, so it can run.
fn runnable_script(h: &Host, path: &str) {
    h.file(path, "#!/bin/tiny\n", 0o755);
}

fn with_interpreter(h: &Host) {
    // A static "ELF" is more than needed: an interpreter that is itself a script of a script
    // would recurse; a minimal static ELF header with one PT_LOAD is runnable as far as the
    // checker can tell.
    let p = h.root.join("bin/tiny");
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    let mut b = vec![0u8; 64];
    b[..8].copy_from_slice(b"\x7fELF\x02\x01\x01\x00");
    b[16..18].copy_from_slice(&2u16.to_le_bytes());
    let machine: u16 = if cfg!(target_arch = "aarch64") {
        183
    } else {
        62
    };
    b[18..20].copy_from_slice(&machine.to_le_bytes());
    b[20..24].copy_from_slice(&1u32.to_le_bytes());
    b[32..40].copy_from_slice(&64u64.to_le_bytes());
    b[52..54].copy_from_slice(&64u16.to_le_bytes());
    b[54..56].copy_from_slice(&56u16.to_le_bytes());
    b[56..58].copy_from_slice(&1u16.to_le_bytes());
    let mut ph = [0u8; 56];
    ph[..4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    b.extend_from_slice(&ph);
    fs::File::create(&p).unwrap().write_all(&b).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn unsearchable_path_directory_is_unknown_never_not_on_path() {
    let h = Host::new();
    with_interpreter(&h);
    runnable_script(&h, "/usr/sbin/iscsiadm");
    h.chmod("/usr/sbin", 0o700);
    let profile = h.profile("name: mine\nrequirements:\n  - executable: iscsiadm\n");
    // Root sees it.
    let (_, json, err) = h.check(&profile, false);
    assert_eq!(
        status(finding(&json, "exe.iscsiadm")),
        "pass",
        "{json:#} {err}"
    );
    // Without CAP_DAC_OVERRIDE: unknown, naming the directory, with no install advice.
    let (code, json, err) = h.check_unprivileged(&profile, false);
    let f = finding(&json, "exe.iscsiadm");
    assert_eq!(status(f), "unknown", "{f:#} {err}");
    assert!(text(f).contains("/usr/sbin/iscsiadm"), "{f:#}");
    assert!(text(f).contains("Permission denied"), "{f:#}");
    assert!(!text(f).contains("not on PATH"), "{f:#}");
    assert!(f["remediation"].is_null(), "{f:#}");
    // Not known to be met, and nothing failed: hostready cannot tell, exit 2 (it was 1 before
    // the exit codes were made one rule; never 0).
    assert_eq!(code, 2, "a required requirement is not known to be met");
}

#[test]
fn found_before_an_unsearchable_path_directory_is_found() {
    let h = Host::new();
    with_interpreter(&h);
    // The default PATH searches /usr/sbin before /usr/bin.
    runnable_script(&h, "/usr/sbin/tool");
    runnable_script(&h, "/usr/bin/other");
    h.chmod("/usr/bin", 0o700);
    let profile =
        h.profile("name: mine\nrequirements:\n  - executable: tool\n  - executable: other\n");
    let (_, json, err) = h.check_unprivileged(&profile, false);
    assert_eq!(status(finding(&json, "exe.tool")), "pass", "{json:#} {err}");
    // Found after one that may not be searched: which one runs is unknown.
    h.chmod("/usr/bin", 0o755);
    h.chmod("/usr/sbin", 0o700);
    let (_, json, _) = h.check_unprivileged(&profile, false);
    let f = finding(&json, "exe.other");
    assert_eq!(status(f), "unknown", "{f:#}");
    assert!(text(f).contains("/usr/sbin/other"), "{f:#}");
    assert!(text(f).contains("found at /usr/bin/other"), "{f:#}");
}

#[test]
fn unreadable_executable_or_interpreter_is_unknown() {
    let h = Host::new();
    with_interpreter(&h);
    // Executable by all, readable by its owner only: its format cannot be read.
    h.file("/usr/sbin/iscsiadm", "#!/bin/tiny\n", 0o711);
    let profile = h.profile("name: mine\nrequirements:\n  - executable: iscsiadm\n");
    let (_, json, err) = h.check_unprivileged(&profile, false);
    let f = finding(&json, "exe.iscsiadm");
    assert_eq!(status(f), "unknown", "{f:#} {err}");
    assert!(text(f).contains("cannot be told"), "{f:#}");
    assert!(text(f).contains("Permission denied"), "{f:#}");
    // The interpreter in a directory that may not be searched.
    h.chmod("/usr/sbin/iscsiadm", 0o755);
    h.chmod("/bin", 0o700);
    let (_, json, _) = h.check_unprivileged(&profile, false);
    let f = finding(&json, "exe.iscsiadm");
    assert_eq!(status(f), "unknown", "{f:#}");
    assert!(text(f).contains("/bin/tiny"), "{f:#}");
}

#[test]
fn unreadable_os_release_is_said_not_replaced() {
    let h = Host::new();
    h.chmod("/etc/os-release", 0o600);
    h.file("/usr/lib/os-release", "ID=fedora\n", 0o644);
    let profile = h.profile("name: mine\nrequirements:\n  - executable: iscsiadm\n");
    let (_, json, _) = h.check_unprivileged(&profile, false);
    let f = finding(&json, "exe.iscsiadm");
    assert_eq!(status(f), "fail", "{f:#}");
    assert!(text(f).contains("/etc/os-release"), "{f:#}");
    assert!(text(f).contains("Permission denied"), "{f:#}");
    assert!(
        !text(f).contains("dnf"),
        "the older copy must not decide the advice: {f:#}"
    );
}

#[test]
fn unreadable_procfs_and_module_files_are_unknown() {
    let h = Host::new();
    h.proc_file("/sys/kernel/osrelease", b"6.1.0-18-amd64\n", 0o644);
    h.proc_file("/modules", b"dm_crypt 65536 0 - Live 0x0\n", 0o644);
    h.proc_file(
        "/meminfo",
        b"MemTotal: 1000 kB\nHugePages_Total: 1024\nHugepagesize: 2048 kB\n",
        0o600,
    );
    let dir = "/lib/modules/6.1.0-18-amd64";
    h.file(&format!("{dir}/modules.builtin"), "", 0o644);
    // modules.dep unreadable: the module files are listed instead, and one directory of them
    // may not be listed either — so the module is not known to be absent.
    h.file(&format!("{dir}/modules.dep"), "", 0o600);
    h.file(&format!("{dir}/kernel/scsi/iscsi_tcp.ko"), "", 0o644);
    h.chmod(&format!("{dir}/kernel"), 0o700);
    let profile = h.profile(
        "name: mine\nrequirements:\n  - kernel_module: iscsi_tcp\n  - hugepages: {page_size_kib: 2048, min_pages: 1024}\n",
    );
    let (_, json, err) = h.check(&profile, true);
    assert_eq!(
        status(finding(&json, "kmod.iscsi_tcp")),
        "fail",
        "{json:#} {err}"
    );
    assert_eq!(
        status(finding(&json, "hugepages.2048kib")),
        "pass",
        "{json:#}"
    );
    let (_, json, _) = h.check_unprivileged(&profile, true);
    let f = finding(&json, "kmod.iscsi_tcp");
    assert_eq!(status(f), "unknown", "{f:#}");
    assert!(text(f).contains("Permission denied"), "{f:#}");
    assert!(text(f).contains("kernel"), "{f:#}");
    let f = finding(&json, "hugepages.2048kib");
    assert_eq!(status(f), "unknown", "{f:#}");
    assert!(text(f).contains("/proc/meminfo"), "{f:#}");
    assert!(text(f).contains("Permission denied"), "{f:#}");
}

#[test]
fn impossible_meminfo_is_unknown_not_a_figure() {
    let h = Host::new();
    h.proc_file("/sys/kernel/osrelease", b"6.1.0-18-amd64\n", 0o644);
    // The tester's meminfo: MemTotal 0, MemAvailable 2^64-1.
    h.proc_file(
        "/meminfo",
        b"MemTotal: 0 kB\nMemAvailable: 18446744073709551615 kB\nHugePages_Total: 1024\nHugepagesize: 2048 kB\n",
        0o644,
    );
    let profile = h.profile(
        "name: mine\nrequirements:\n  - hugepages: {page_size_kib: 2048, min_pages: 1024}\n",
    );
    let (_, json, _) = h.check(&profile, true);
    let f = finding(&json, "hugepages.2048kib");
    assert_eq!(status(f), "unknown", "{f:#}");
    assert!(text(f).contains("MemTotal is 0"), "{f:#}");
}

#[test]
fn proc_symlink_out_of_the_root_gives_no_procfs() {
    for target in ["/proc", "../../../proc"] {
        let h = Host::new();
        symlink(target, h.root.join("proc")).unwrap();
        let profile = h.profile("name: k\nrequirements:\n  - kernel_module: iscsi_tcp\n");
        let (_, json, err) = report(
            hostready()
                .args(["check", "-o", "json", "-p"])
                .arg(&profile)
                .arg("--root")
                .arg(&h.root),
        );
        assert!(json["host"]["proc"].is_null(), "{target}: {json:#} {err}");
        assert!(json["host"]["kernel"].is_null(), "{target}: {json:#}");
        let f = finding(&json, "kmod.iscsi_tcp");
        assert_eq!(status(f), "unknown", "{target}: {f:#}");
        assert!(text(f).contains("symbolic links"), "{target}: {f:#}");
    }
}

#[test]
fn process_list_refused_is_unknown_not_not_running() {
    let h = Host::new();
    h.proc_file("/sys/kernel/osrelease", b"6.1.0-18-amd64\n", 0o644);
    h.proc_file("/1/stat", b"1 (systemd) S 0 1 1\n", 0o644);
    h.proc_file("/1/comm", b"systemd\n", 0o644);
    h.proc_file("/4711/stat", b"4711 (iscsid) S 1 4711 4711\n", 0o644);
    // What a procfs mounted with hidepid= shows a process that may not look: the pid, and
    // refusal to read it.
    h.proc_file("/4711/comm", b"iscsid\n", 0o600);
    let profile =
        h.profile("name: svc\nrequirements:\n  - service: {name: iscsid, process: iscsid}\n");
    let (_, json, err) = h.check(&profile, true);
    assert_eq!(
        status(finding(&json, "svc.iscsid")),
        "pass",
        "{json:#} {err}"
    );
    let (_, json, _) = h.check_unprivileged(&profile, true);
    let f = finding(&json, "svc.iscsid");
    assert_eq!(status(f), "unknown", "{f:#}");
    assert!(text(f).contains("/4711/comm"), "{f:#}");
    assert!(text(f).contains("Permission denied"), "{f:#}");
}

#[test]
fn unlistable_drop_in_directory_is_unknown_not_default() {
    let h = Host::new();
    h.file(
        "/etc/nfsmount.conf",
        "[ NFSMount_Global_Options ]\n# Defaultvers=4\n",
        0o644,
    );
    // A drop-in that forces NFSv3, in a directory the unprivileged run may not list.
    h.file(
        "/etc/nfsmount.conf.d/10-v3.conf",
        "[ NFSMount_Global_Options ]\nDefaultvers=3\n",
        0o644,
    );
    h.chmod("/etc/nfsmount.conf.d", 0o700);
    let (_, json, err) = h.check(Path::new("nfs-client"), false);
    assert_eq!(
        status(finding(&json, "nfs.defaultvers")),
        "fail",
        "{json:#} {err}"
    );
    let (_, json, _) = h.check_unprivileged(Path::new("nfs-client"), false);
    let f = finding(&json, "nfs.defaultvers");
    assert_eq!(status(f), "unknown", "{f:#}");
    assert!(text(f).contains("/etc/nfsmount.conf.d"), "{f:#}");
    assert!(text(f).contains("Permission denied"), "{f:#}");
}

#[test]
fn procfs_hiding_other_users_processes_is_unknown_not_not_running() {
    let h = Host::new();
    let proc = h.root.join("proc");
    let _m = Mount::new(&["-t", "proc", "-o", "hidepid=invisible", "proc"], &proc);
    // A root-owned process the unprivileged run cannot see through hidepid=invisible.
    let name = "hr-hidden-svc";
    let exe = h.dir.path().join(name);
    fs::copy("/usr/bin/sleep", &exe).unwrap();
    let _sleeper = Reaped(Command::new(&exe).arg("120").spawn().unwrap());
    let profile = h.profile(&format!(
        "name: svc\nrequirements:\n  - service: {{name: {name}, process: {name}}}\n"
    ));
    let args = |c: &mut Command| {
        c.args(["check", "-o", "json", "-p"])
            .arg(&profile)
            .arg("--root")
            .arg(&h.root);
    };
    let mut c = hostready();
    args(&mut c);
    let (_, json, err) = report(&mut c);
    assert_eq!(
        status(finding(&json, &format!("svc.{name}"))),
        "pass",
        "{json:#} {err}"
    );
    let mut c = unprivileged();
    args(&mut c);
    let (_, json, err) = report(&mut c);
    let f = finding(&json, &format!("svc.{name}"));
    assert_eq!(status(f), "unknown", "{f:#} {err}");
    assert!(text(f).contains("hidepid=invisible"), "{f:#}");
}
