//! The hostile-root suite: every subcommand that reads a root (`check`, `pkg`, `doctor`,
//! `profiles`) run over generated hostile roots under `strace -f -y -e trace=%file`, failing on
//! any path touched outside the root, any open of a device node or FIFO, and any run over its
//! time bound; huge and sparse files also run under a real memory cgroup with the DaemonSet's
//! limit.
//!
//! How "outside" is decided: `strace -y` prints, for every descriptor argument and every
//! descriptor returned, the path the kernel says it refers to. After hostready first names the
//! root (the dynamic loader's and the runtime's own opens come before), every such path and every
//! absolute path argument must lie inside the root, or be one of a handful of the process's own
//! files (`/proc/self/...`, `/dev/null`). A symlink followed out of the root, a database opened by
//! path through a swapped directory, or a procfs taken from this machine all show up as a
//! descriptor whose path is outside.
//!
//! Roots: symlink escapes at every level (absolute and `../` links, `proc` included), device
//! nodes and FIFOs where host files should be, huge sparse files, unreadable files (run as an
//! unprivileged user), and races that swap directories for links to outside while runs go on.

// Tests build fake hosts and read fixtures on this machine directly.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hostready_testkit::memcg::MemCgroup;

/// How long one traced run may take; strace slows every syscall, so this is generous, and still
/// far below "hangs" (a FIFO opened without O_NONBLOCK blocks forever).
const RUN_BOUND: Duration = Duration::from_secs(30);

const SQLITE_FIXTURE: &str = "../../../shared/fixtures/rpmdb/cbl-mariner-2.0-sqlite/rpmdb.sqlite";
const BDB_FIXTURE: &str = "../../../shared/fixtures/rpmdb/libuuid-bdb/Packages";

/// One generated hostile root, beside an `outside` tree that nothing may touch.
struct Hostile {
    _dir: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
    /// Paths inside the root (canonical, on this machine) that are devices or FIFOs.
    special: BTreeSet<PathBuf>,
}

impl Hostile {
    fn new() -> Hostile {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let root = base.join("root");
        let outside = base.join("outside");
        fs::create_dir_all(&root).unwrap();
        let h = Hostile {
            _dir: dir,
            root,
            outside,
            special: BTreeSet::new(),
        };
        h.build_outside();
        h
    }

    /// Fills `outside/` with everything a host could want: a believable os-release, package
    /// databases, an executable, kernel files. Reading any of them is an escape.
    fn build_outside(&self) {
        let o = &self.outside;
        let w = |p: &str, text: &str| write(o, p, text.as_bytes());
        w("etc/os-release", "ID=outside\nPRETTY_NAME=\"OUTSIDE\"\n");
        w(
            "etc/nfsmount.conf",
            "[ NFSMount_Global_Options ]\nDefaultvers=4.2\n",
        );
        w("etc/multipath.conf", "blacklist {\n}\n");
        w("var/lib/dpkg/status", &dpkg_stanza("open-iscsi"));
        w("var/lib/dpkg/info/open-iscsi.list", "/usr/sbin/iscsiadm\n");
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR"));
        copy(
            &fixture.join(SQLITE_FIXTURE),
            &o.join("var/lib/rpm/rpmdb.sqlite"),
        );
        copy(
            &fixture.join(BDB_FIXTURE),
            &o.join("var/lib/rpm-bdb/Packages"),
        );
        copy(Path::new("/bin/true"), &o.join("usr/sbin/iscsiadm"));
        w("lib/modules/k/modules.dep", "kernel/iscsi_tcp.ko:\n");
        w("boot/config", "CONFIG_NFS_V4=y\n");
        w("proc/meminfo", "MemTotal: 1 kB\n");
    }

    fn path(&self, p: &str) -> PathBuf {
        self.root.join(p.trim_start_matches('/'))
    }

    fn file(&self, p: &str, text: &str) {
        write(&self.root, p, text.as_bytes());
    }

    fn link(&self, p: &str, target: impl AsRef<Path>) {
        let at = self.path(p);
        fs::create_dir_all(at.parent().unwrap()).unwrap();
        let _ = fs::remove_file(&at);
        let _ = fs::remove_dir_all(&at);
        symlink(target, at).unwrap();
    }

    /// Puts a character device with `/dev/null`'s (1:3) or `/dev/ptmx`'s (5:2) numbers, or a
    /// FIFO, at `p`. Opening either device has an effect we can see (ptmx allocates a terminal);
    /// the trace shows any open regardless.
    fn special(&mut self, p: &str, kind: Special) {
        let at = self.path(p);
        fs::create_dir_all(at.parent().unwrap()).unwrap();
        let _ = fs::remove_file(&at);
        let mut cmd = Command::new("mknod");
        cmd.arg(&at);
        match kind {
            Special::Null => cmd.args(["c", "1", "3"]),
            Special::Ptmx => cmd.args(["c", "5", "2"]),
            Special::Fifo => cmd.arg("p"),
        };
        assert!(cmd.status().unwrap().success(), "mknod {}", at.display());
        self.special.insert(at);
    }

    /// A sparse file of `size` bytes starting with `head`.
    fn sparse(&self, p: &str, head: &[u8], size: u64) {
        write(&self.root, p, head);
        let f = fs::OpenOptions::new()
            .write(true)
            .open(self.path(p))
            .unwrap();
        f.set_len(size).unwrap();
    }

    /// A minimal Debian-looking root: os-release, PATH directories, a dpkg database.
    fn debian_base(&self) {
        self.file("etc/os-release", "ID=debian\nPRETTY_NAME=\"Debian\"\n");
        self.file("var/lib/dpkg/status", &dpkg_stanza("base-files"));
        for d in ["usr/sbin", "usr/bin", "var/lib/dpkg/info"] {
            fs::create_dir_all(self.path(d)).unwrap();
        }
    }
}

#[derive(Clone, Copy)]
enum Special {
    Null,
    Ptmx,
    Fifo,
}

fn dpkg_stanza(name: &str) -> String {
    format!(
        "Package: {name}\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0-1\n\n"
    )
}

fn write(base: &Path, p: &str, bytes: &[u8]) {
    let at = base.join(p.trim_start_matches('/'));
    fs::create_dir_all(at.parent().unwrap()).unwrap();
    fs::write(at, bytes).unwrap();
}

fn copy(from: &Path, to: &Path) {
    fs::create_dir_all(to.parent().unwrap()).unwrap();
    fs::copy(from, to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
}

/// Every subcommand that reads the root, as argument lists (the root is appended where needed).
fn subcommands(root: &Path) -> Vec<Vec<String>> {
    let r = root.display().to_string();
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    vec![
        s(&["check", "--root", &r, "-o", "json"]),
        s(&["check", "--root", &r, "-p", "longhorn-v2", "-o", "json"]),
        s(&["pkg", "list", "--root", &r, "--output", "json"]),
        s(&["pkg", "query", "--root", &r, "open-iscsi"]),
        s(&["pkg", "owner", "--root", &r, "/usr/sbin/iscsiadm"]),
        s(&["doctor", "--root", &r, "-o", "json"]),
        s(&["profiles", "longhorn"]),
    ]
}

/// What one traced run did wrong.
#[derive(Debug, Default)]
struct Violations {
    outside: Vec<String>,
    special_opens: Vec<String>,
    overtime: Option<Duration>,
    signal: Option<String>,
}

impl Violations {
    fn is_empty(&self) -> bool {
        self.outside.is_empty()
            && self.special_opens.is_empty()
            && self.overtime.is_none()
            && self.signal.is_none()
    }
}

/// Runs `hostready args` under strace (optionally as an unprivileged user) and judges the trace.
fn traced(h: &Hostile, args: &[String], as_nobody: bool) -> Violations {
    let trace = h.root.parent().unwrap().join(format!(
        "trace-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let mut cmd = Command::new("strace");
    cmd.args(["-f", "-y", "-qq", "-s", "4096", "-e", "trace=%file", "-o"])
        .arg(&trace);
    if as_nobody {
        cmd.args([
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ]);
    }
    cmd.arg(env!("CARGO_BIN_EXE_hostready"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let start = Instant::now();
    let mut child = cmd.spawn().expect("strace (scripts/setup installs it)");
    let mut v = Violations::default();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if start.elapsed() > RUN_BOUND {
            v.overtime = Some(start.elapsed());
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if let Some(st) = status {
        use std::os::unix::process::ExitStatusExt;
        if st.signal().is_some() || !matches!(st.code(), Some(0..=2)) {
            v.signal = Some(format!("{st:?}"));
        }
    }
    let text = fs::read_to_string(&trace)
        .unwrap_or_else(|e| panic!("no trace from strace at {}: {e}", trace.display()));
    let _ = fs::remove_file(&trace);
    // `judge` looks at what follows the first mention of the root; a run given the root whose
    // trace never names it would be judged on nothing and pass, so it fails here instead.
    let root = h.root.to_str().unwrap();
    assert!(
        !args.iter().any(|a| a == root) || text.contains(root),
        "the trace of hostready {} never names the root: strace traced nothing?",
        args.join(" ")
    );
    judge(&text, h, &mut v);
    v
}

/// Paths a hostready process may touch outside the root: its own procfs entries, /dev/null, and
/// the kernel's randomness (SQLite seeds its PRNG from /dev/urandom).
fn own_file(path: &str, pids: &BTreeSet<String>) -> bool {
    if path == "/dev/null" || path == "/dev/urandom" {
        return true;
    }
    if let Some(rest) = path.strip_prefix("/proc/") {
        let pid = rest.split('/').next().unwrap_or("");
        // /proc/self and /proc/thread-self resolve to /proc/<own pid>[/task/<tid>].
        return pids.contains(pid) || rest == "self" || rest.starts_with("self/");
    }
    false
}

fn judge(text: &str, h: &Hostile, v: &mut Violations) {
    let root = h.root.to_str().unwrap();
    let pids: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    // The loader's and the runtime's opens come before hostready names the root. A run that
    // never names it (`profiles`, which reads no root) is judged on its time and exit only.
    let Some(start) = text
        .lines()
        .position(|l| l.contains(root) && !l.contains(" execve("))
    else {
        return;
    };
    for line in text.lines().skip(start) {
        if line.contains(" execve(") {
            // A probe started by --verify-runs is not part of this suite's runs.
            continue;
        }
        for p in annotated_paths(line).chain(absolute_args(line)) {
            let inside = p == root || p.starts_with(&format!("{root}/"));
            if !inside && !own_file(&p, &pids) {
                v.outside.push(line.to_string());
            }
        }
        if let Some(opened) = opened_path(line, root) {
            if h.special.contains(Path::new(&opened)) && !line.contains("O_PATH") {
                v.special_opens.push(line.to_string());
            }
        }
    }
    v.outside.dedup();
}

/// The paths strace -y printed in `N</path>` annotations.
fn annotated_paths(line: &str) -> impl Iterator<Item = String> + '_ {
    line.match_indices('<').filter_map(move |(i, _)| {
        let before = line[..i].chars().last()?;
        if !before.is_ascii_digit() {
            return None;
        }
        let rest = &line[i + 1..];
        rest.starts_with('/')
            .then(|| rest.split('>').next().unwrap_or("").to_string())
    })
}

/// Absolute path string arguments of calls relative to the working directory.
fn absolute_args(line: &str) -> impl Iterator<Item = String> + '_ {
    let mut out = Vec::new();
    // readlink's last string is what the link says (output), not a path that was touched.
    let line = if line.contains(" readlink") {
        line.rsplitn(3, '"').nth(2).unwrap_or(line)
    } else {
        line
    };
    let mut parts = line.split('"');
    let mut prev = parts.next().unwrap_or("");
    for (n, s) in parts.enumerate() {
        if n % 2 == 0 && s.starts_with('/') && !prev.trim_end().ends_with('>') {
            // `openat(3</x>, "/abs")` is resolved against the root by openat2 only when the
            // flags say RESOLVE_IN_ROOT; an absolute string with a real dirfd is still absolute.
            if !line.contains("RESOLVE_IN_ROOT") {
                out.push(s.to_string());
            }
        }
        prev = s;
    }
    out.into_iter()
}

/// For an open-like call, the path that was asked for, joined lexically onto its directory.
fn opened_path(line: &str, root: &str) -> Option<String> {
    let call = ["open(", "openat(", "openat2(", "creat("]
        .iter()
        .find(|c| line.contains(&format!(" {c}")))?;
    let args = line.split_once(call)?.1;
    if let Some(p) = result_path(line) {
        return Some(p);
    }
    let dir = if args.starts_with("AT_FDCWD") {
        None
    } else {
        annotated_paths(args).next()
    };
    let name = args.split('"').nth(1)?;
    let joined = match (dir, name.starts_with('/')) {
        (Some(d), false) => format!("{d}/{name}"),
        (Some(_), true) if line.contains("RESOLVE_IN_ROOT") => format!("{root}{name}"),
        _ => name.to_string(),
    };
    Some(lexical(&joined))
}

/// The path of the descriptor a call returned (`= 5</path>`), if it returned one.
fn result_path(line: &str) -> Option<String> {
    let (_, result) = line.rsplit_once(" = ")?;
    let rest = result.trim_start_matches(|c: char| c.is_ascii_digit());
    let path = rest.strip_prefix("</")?.split('>').next()?;
    Some(format!("/{path}"))
}

fn lexical(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

fn assert_clean(h: &Hostile, what: &str, as_nobody: bool) {
    let mut failures = Vec::new();
    for args in subcommands(&h.root) {
        let v = traced(h, &args, as_nobody);
        if !v.is_empty() {
            failures.push(format!("{what}: hostready {}:\n{v:#?}", args.join(" ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn release() -> String {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn absolute_symlinks_at_every_level_stay_inside_the_root() {
    let h = Hostile::new();
    h.debian_base();
    let o = h.outside.clone();
    let rel = release();
    h.link("etc/os-release", o.join("etc/os-release"));
    h.link("etc/nfsmount.conf", o.join("etc/nfsmount.conf"));
    h.link("etc/multipath.conf", o.join("etc/multipath.conf"));
    h.link("var/lib/dpkg", o.join("var/lib/dpkg"));
    h.link("var/lib/rpm", o.join("var/lib/rpm"));
    h.link("usr/lib/sysimage/rpm", o.join("var/lib/rpm-bdb"));
    h.link("usr/sbin", o.join("usr/sbin"));
    h.link(&format!("lib/modules/{rel}"), o.join("lib/modules/k"));
    h.link(&format!("boot/config-{rel}"), o.join("boot/config"));
    h.link("proc", "/proc");
    assert_clean(&h, "absolute links", false);
}

#[test]
fn dotdot_symlinks_at_every_level_stay_inside_the_root() {
    let h = Hostile::new();
    h.debian_base();
    let up = "../../../../../../../../..";
    let o = h.outside.display().to_string();
    let rel = release();
    h.link("etc/os-release", format!("{up}{o}/etc/os-release"));
    h.link(
        "var/lib/dpkg/status",
        format!("{up}{o}/var/lib/dpkg/status"),
    );
    h.link(
        "var/lib/rpm/rpmdb.sqlite",
        format!("{up}{o}/var/lib/rpm/rpmdb.sqlite"),
    );
    h.link(
        "var/lib/rpm/Packages",
        format!("{up}{o}/var/lib/rpm-bdb/Packages"),
    );
    h.link("usr/bin", format!("{up}{o}/usr/sbin"));
    h.link(
        &format!("lib/modules/{rel}"),
        format!("{up}{o}/lib/modules/k"),
    );
    h.link("proc", format!("{up}/proc"));
    assert_clean(&h, "../ links", false);
}

#[test]
fn device_nodes_and_fifos_where_host_files_should_be_are_never_opened() {
    let mut h = Hostile::new();
    h.debian_base();
    let rel = release();
    h.special("etc/os-release", Special::Ptmx);
    h.special("etc/nfsmount.conf", Special::Fifo);
    h.special("etc/multipath.conf", Special::Null);
    h.special("var/lib/dpkg/status", Special::Fifo);
    h.special("var/lib/dpkg/info/open-iscsi.list", Special::Ptmx);
    h.special("var/lib/rpm/rpmdb.sqlite", Special::Fifo);
    h.special("usr/lib/sysimage/rpm/Packages", Special::Ptmx);
    h.special("usr/share/rpm/Packages.db", Special::Null);
    h.special("usr/sbin/iscsiadm", Special::Fifo);
    h.special("usr/bin/mount.nfs", Special::Ptmx);
    h.special(&format!("lib/modules/{rel}/modules.dep"), Special::Fifo);
    h.special(&format!("lib/modules/{rel}/modules.builtin"), Special::Ptmx);
    h.special(&format!("boot/config-{rel}"), Special::Fifo);
    // The executable bits make a FIFO look runnable to a PATH lookup that only reads modes.
    fs::set_permissions(
        h.path("usr/sbin/iscsiadm"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    assert_clean(&h, "devices and FIFOs", false);
}

#[test]
fn a_profile_that_is_a_fifo_or_a_device_is_refused_promptly() {
    let mut h = Hostile::new();
    h.debian_base();
    h.special("fifo.yaml", Special::Fifo);
    h.special("ptmx.yaml", Special::Ptmx);
    for p in ["fifo.yaml", "ptmx.yaml"] {
        let file = h.path(p).display().to_string();
        let root = h.root.display().to_string();
        for args in [
            vec!["profiles".to_string(), file.clone()],
            vec![
                "check".into(),
                "--root".into(),
                root,
                "-p".into(),
                file.clone(),
            ],
        ] {
            let v = traced(&h, &args, false);
            assert!(v.is_empty(), "hostready {}: {v:#?}", args.join(" "));
        }
    }
}

#[test]
fn unreadable_files_are_never_read_around_by_an_unprivileged_run() {
    let h = Hostile::new();
    h.debian_base();
    for p in ["etc/os-release", "var/lib/dpkg/status"] {
        fs::set_permissions(h.path(p), fs::Permissions::from_mode(0o000)).unwrap();
    }
    fs::set_permissions(h.path("usr/sbin"), fs::Permissions::from_mode(0o000)).unwrap();
    // The unprivileged user must be able to reach the root itself.
    let mut dir = h.root.clone();
    while let Some(parent) = dir.parent() {
        let mode = fs::metadata(&dir).unwrap().permissions().mode();
        fs::set_permissions(&dir, fs::Permissions::from_mode(mode | 0o711)).unwrap();
        if parent == Path::new("/tmp") || parent == Path::new("/") {
            break;
        }
        dir = parent.to_path_buf();
    }
    assert_clean(&h, "unreadable files as uid 65534", true);
}

#[test]
fn huge_sparse_files_fit_in_the_pods_memory_limit() {
    let h = Hostile::new();
    h.debian_base();
    let rel = release();
    const GIB: u64 = 1 << 30;
    h.sparse("etc/os-release", b"ID=debian\n", 2 * GIB);
    h.sparse("var/lib/dpkg/status", dpkg_stanza("x").as_bytes(), 3 * GIB);
    h.sparse(
        "var/lib/dpkg/info/open-iscsi.list",
        b"/usr/sbin/iscsiadm\n",
        2 * GIB,
    );
    h.sparse("var/lib/rpm/Packages", &[0u8; 4096], 2 * GIB);
    h.sparse("usr/share/rpm/Packages.db", b"RpmP", GIB);
    h.sparse("etc/nfsmount.conf", b"[ NFSMount_Global_Options ]\n", GIB);
    h.sparse(
        &format!("lib/modules/{rel}/modules.dep"),
        b"kernel/x.ko:\n",
        2 * GIB,
    );
    h.sparse(&format!("boot/config-{rel}"), b"CONFIG_NFS_V4=y\n", 2 * GIB);
    let mut elf = fs::read("/bin/true").unwrap();
    elf.truncate(4096);
    h.sparse("usr/sbin/iscsiadm", &elf, GIB);
    fs::set_permissions(
        h.path("usr/sbin/iscsiadm"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    // Time and paths first (strace), then memory (the cgroup), for every subcommand.
    assert_clean(&h, "huge sparse files", false);
    let mut failures = Vec::new();
    // The floor of each subcommand: the same run on an empty root (memcg::bound_kib).
    let empty = tempfile::tempdir().unwrap();
    let run = |args: &[String]| {
        let cg = MemCgroup::new(hostready_testkit::memcg::daemonset_limit());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hostready"));
        cmd.args(args);
        cg.run_command(&mut cmd)
    };
    for (args, on_empty) in subcommands(&h.root)
        .into_iter()
        .zip(subcommands(empty.path()))
    {
        let floor = run(&on_empty).max_rss_kib;
        let bound = hostready_testkit::memcg::bound_kib(floor, 16 * 1024);
        let m = run(&args);
        if m.exit_code.is_none() || m.oom_kills > 0 || m.max_rss_kib > bound {
            failures.push(format!(
                "hostready {}: exit {:?}, peak {:.1} MiB (bound {:.1} MiB, empty root {:.1} MiB), oom kills {}",
                args.join(" "),
                m.exit_code,
                m.max_rss_mib(),
                bound as f64 / 1024.0,
                floor as f64 / 1024.0,
                m.oom_kills
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn directories_swapped_for_links_outside_during_runs_are_never_followed_out() {
    let h = Hostile::new();
    h.debian_base();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"));
    copy(
        &fixture.join(SQLITE_FIXTURE),
        &h.path("var/lib/rpm/rpmdb.sqlite"),
    );
    copy(Path::new("/bin/true"), &h.path("usr/sbin/iscsiadm"));
    // Each swapped path alternates between a real directory and a symlink to the same directory
    // outside the root (kept beside it under a second name).
    let swaps: Vec<(PathBuf, PathBuf, PathBuf)> = [
        ("var/lib/rpm", "var/lib/rpm"),
        ("var/lib/dpkg", "var/lib/dpkg"),
        ("etc", "etc"),
        ("usr/sbin", "usr/sbin"),
    ]
    .iter()
    .map(|(inside, out)| {
        let real = h.path(inside);
        let link = real.with_extension("link");
        (real, link, h.outside.join(out))
    })
    .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let stop = stop.clone();
        let swaps = swaps.clone();
        std::thread::spawn(move || {
            for (_, link, out) in &swaps {
                symlink(out, link).unwrap();
            }
            let exchange = |(real, link, _): &(PathBuf, PathBuf, PathBuf)| {
                // RENAME_EXCHANGE swaps the two names atomically: the path is always either
                // the directory or the link, never missing.
                rustix::fs::renameat_with(
                    rustix::fs::CWD,
                    real,
                    rustix::fs::CWD,
                    link,
                    rustix::fs::RenameFlags::EXCHANGE,
                )
                .unwrap();
            };
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                swaps.iter().for_each(exchange);
                n += 1;
                std::thread::sleep(Duration::from_micros(300));
            }
            // Leave the real directories in place.
            if n % 2 == 1 {
                swaps.iter().for_each(exchange);
            }
        })
    };
    let mut failures = Vec::new();
    for _round in 0..3 {
        for args in subcommands(&h.root) {
            let v = traced(&h, &args, false);
            if !v.is_empty() {
                failures.push(format!("hostready {}:\n{v:#?}", args.join(" ")));
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_judge_sees_an_escape_and_a_device_open() {
    // The suite is only as good as its reading of the trace: show it flags what it must.
    let mut h = Hostile::new();
    h.special("etc/os-release", Special::Null);
    let root = h.root.display().to_string();
    let o = h.outside.display().to_string();
    let trace = format!(
        "10 openat(AT_FDCWD</x>, \"{root}\", O_RDONLY|O_PATH|O_DIRECTORY|O_CLOEXEC) = 3<{root}>\n\
         10 openat2(3<{root}>, \"var/lib/rpm\", {{flags=O_RDONLY|O_PATH|O_CLOEXEC, resolve=RESOLVE_IN_ROOT}}, 24) = 4<{root}/var/lib/rpm>\n\
         10 openat(AT_FDCWD</x>, \"{root}/var/lib/rpm/rpmdb.sqlite\", O_RDONLY|O_CLOEXEC) = 5<{o}/var/lib/rpm/rpmdb.sqlite>\n\
         10 openat2(3<{root}>, \"etc/os-release\", {{flags=O_RDONLY|O_NONBLOCK|O_CLOEXEC, resolve=RESOLVE_IN_ROOT}}, 24) = 6<{root}/etc/os-release>\n\
         10 openat(AT_FDCWD</x>, \"/proc/self/status\", O_RDONLY|O_CLOEXEC) = 7</proc/10/status>\n"
    );
    let mut v = Violations::default();
    judge(&trace, &h, &mut v);
    assert_eq!(v.outside.len(), 1, "{v:#?}");
    assert!(v.outside[0].contains("rpmdb.sqlite"), "{v:#?}");
    assert_eq!(v.special_opens.len(), 1, "{v:#?}");
    assert!(v.special_opens[0].contains("etc/os-release"), "{v:#?}");
    // An O_PATH look at the device is fine.
    let ok = format!(
        "10 openat(AT_FDCWD</x>, \"{root}\", O_RDONLY|O_PATH) = 3<{root}>\n\
         10 openat2(3<{root}>, \"etc/os-release\", {{flags=O_PATH|O_CLOEXEC, resolve=RESOLVE_IN_ROOT}}, 24) = 6<{root}/etc/os-release>\n"
    );
    let mut v = Violations::default();
    judge(&ok, &h, &mut v);
    assert!(v.is_empty(), "{v:#?}");
}
