//! A [`FixPlan`] as one POSIX shell script (`set -eu`). Every step tests before it changes:
//! `command -v` before an install, `grep -qxF` before appending a line, `/sys/module/<m>`
//! before `modprobe`, the value in `/proc/sys` before `sysctl -w`, `is-enabled`/`is-active`
//! before `systemctl`. So a second run changes nothing, and says so.
//!
//! Everything that comes from a profile or the host is single-quoted in commands (names are
//! validated words already; quoting is the second wall), and text from the host in comments
//! (os-release names, finding messages) has its control characters replaced, so no newline
//! in a host's `PRETTY_NAME` can start a command line of the script.
//!
//! What the script cannot make true now — a module that does not load (in a chroot, say), a
//! daemon where systemd is not running, a sysctl the kernel refuses — it reports on stderr,
//! keeps going with the persistent part, and makes the script exit 1 at the end.

use std::fmt::Write as _;

use super::{Action, FixPlan, Installer, ModuleList, Present, ServiceManager, Step};
use crate::remedy;

/// The script's header: who wrote it, for which host, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// hostready's version.
    pub version: String,
    /// The host as the check saw it (`Debian GNU/Linux 12, kernel 6.1.0-18-amd64, root /`).
    pub host: String,
    pub profiles: Vec<String>,
    /// When the plan was made (RFC 3339, UTC).
    pub date: String,
    /// The PATH the check searched; the script searches the same.
    pub path: String,
}

/// The files and trees a script reads and writes: [`Paths::HOST`] always, except in this
/// module's tests, which point them into a temporary directory to run scripts for real.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paths {
    pub modules_load: &'static str,
    pub etc_modules: &'static str,
    pub modprobe: &'static str,
    pub sysctl: &'static str,
    /// `/sys/module`.
    pub sys_module: &'static str,
    /// `/proc/sys`.
    pub proc_sys: &'static str,
    /// `/run/systemd/system`: a directory if and only if systemd is the running init
    /// (`sd_booted(3)`).
    pub systemd_booted: &'static str,
}

impl Paths {
    /// The real locations (from `remedy.rs`, which the remediations use too).
    pub const HOST: Paths = Paths {
        modules_load: remedy::MODULES_LOAD_FILE,
        etc_modules: remedy::ETC_MODULES,
        modprobe: remedy::MODPROBE_FILE,
        sysctl: remedy::SYSCTL_FILE,
        sys_module: "/sys/module",
        proc_sys: "/proc/sys",
        systemd_booted: "/run/systemd/system",
    };
}

/// Returns the script for `plan`.
pub fn render(plan: &FixPlan, header: &Header) -> String {
    render_with(plan, header, &Paths::HOST)
}

/// Returns the script for `plan`, reading and writing `paths`.
pub fn render_with(plan: &FixPlan, header: &Header, paths: &Paths) -> String {
    let mut s = String::new();
    s.push_str("#!/bin/sh\n");
    comment(&mut s, "hostready fix script: REVIEW BEFORE RUNNING.");
    comment(
        &mut s,
        &format!(
            "Written by hostready {} on {}.",
            header.version, header.date
        ),
    );
    comment(&mut s, &format!("Host: {}", header.host));
    comment(&mut s, &format!("Profiles: {}", header.profiles.join(", ")));
    comment(
        &mut s,
        "hostready never runs this script. Each step first tests whether its change is\n\
         there and makes it only if not, so a second run changes nothing. Changes that\n\
         cannot take effect now are reported, and make the script exit 1 after the rest.",
    );
    s.push_str("set -eu\n");
    let _ = writeln!(s, "PATH={}; export PATH", quote(&header.path));
    s.push_str(PRELUDE);
    if plan.steps.iter().any(|st| {
        matches!(
            st.action,
            Action::Install {
                installer: Installer::Apt,
                ..
            }
        )
    }) {
        s.push_str("DEBIAN_FRONTEND=noninteractive; export DEBIAN_FRONTEND\n");
    }
    if plan.steps.is_empty() {
        s.push('\n');
        comment(&mut s, "Nothing to fix: every requirement checked passed.");
    }
    for step in &plan.steps {
        s.push('\n');
        step_to(&mut s, step, paths);
    }
    s.push_str(EPILOGUE);
    s
}

/// Helpers every script defines: a log line on stderr, a change counter, and the deferred
/// failure that makes the script exit 1 at its end.
const PRELUDE: &str = r#"hr_changed=0
hr_later=0
hr_refreshed=
hr_note() { printf 'hostready-fix: %s\n' "$*" >&2; }
hr_did() { hr_note "$*"; hr_changed=$((hr_changed + 1)); }
hr_not_now() { hr_note "not in effect now: $*"; hr_later=$((hr_later + 1)); }
"#;

const EPILOGUE: &str = r#"
if [ "$hr_changed" -eq 0 ]; then hr_note "nothing changed"; else hr_note "$hr_changed change(s) made"; fi
if [ "$hr_later" -ne 0 ]; then
  hr_note "$hr_later change(s) not in effect now (see above): exit 1"
  exit 1
fi
"#;

fn step_to(s: &mut String, step: &Step, p: &Paths) {
    let fixes = step.fixes.join(", ");
    match &step.action {
        Action::Install {
            installer,
            package,
            reinstall,
            unless,
        } => {
            let verb = if *reinstall { "reinstall" } else { "install" };
            comment(s, &format!("{fixes}: {verb} {package}"));
            let test = match unless {
                Present::Executable(e) => format!("command -v {} >/dev/null 2>&1", quote(e)),
                Present::Module(m) => format!("modinfo {} >/dev/null 2>&1", quote(m)),
            };
            let argv = if *reinstall {
                installer.reinstall(package)
            } else {
                installer.install_unattended(package)
            };
            let _ = writeln!(s, "if ! {test}; then");
            let _ = writeln!(s, "  hr_did {}", quote(&format!("{verb}ing {package}")));
            if let Some(refresh) = installer.refresh() {
                let _ = writeln!(
                    s,
                    "  if [ -z \"$hr_refreshed\" ]; then {}; hr_refreshed=1; fi",
                    refresh.join(" ")
                );
            }
            let _ = writeln!(s, "  {}", command(&argv));
            if let Some(reboot) = installer.reboot() {
                let _ = writeln!(
                    s,
                    "  hr_not_now {}",
                    quote(&format!("{package} is used after a reboot ({reboot})"))
                );
            }
            s.push_str("fi\n");
        }
        Action::LoadModule { module, list } => {
            comment(s, &format!("{fixes}: load {module} now and at every boot"));
            let file = match list {
                ModuleList::ModulesLoadD => p.modules_load,
                ModuleList::EtcModules => p.etc_modules,
            };
            append_line(s, file, module);
            let _ = writeln!(
                s,
                "if [ ! -d {} ]; then",
                quote(&format!("{}/{module}", p.sys_module))
            );
            let _ = writeln!(
                s,
                "  if modprobe {}; then hr_did {}; else hr_not_now {}; fi",
                quote(module),
                quote(&format!("loaded {module}")),
                quote(&format!(
                    "{module} did not load; {file} loads it at the next boot"
                ))
            );
            s.push_str("fi\n");
        }
        Action::ModuleOption {
            module,
            parameter,
            value,
        } => {
            comment(
                s,
                &format!(
                    "{fixes}: {module} option {parameter}={value}, used when {module} is next loaded"
                ),
            );
            comment(
                s,
                &format!(
                    "If {module} is built into the kernel, put {module}.{parameter}={value} on the kernel command line instead."
                ),
            );
            let line = format!("options {module} {parameter}={value}");
            let pattern = format!(
                "^options{SP}{}{SP}{}=",
                regex_escape(module),
                regex_escape(parameter)
            );
            replace_line(s, p.modprobe, &pattern, &line);
            let current = format!("{}/{module}/parameters/{parameter}", p.sys_module);
            let _ = writeln!(
                s,
                "if [ -e {cur} ] && [ \"$(cat {cur})\" != {v} ]; then hr_not_now {msg}; fi",
                cur = quote(&current),
                v = quote(value),
                msg = quote(&format!(
                    "{module} is loaded with another {parameter}: reload {module} or reboot"
                ))
            );
        }
        Action::Sysctl { name, value } => {
            comment(
                s,
                &format!("{fixes}: {name} = {value}, now and at every boot"),
            );
            let line = format!("{name} = {value}");
            let pattern = format!("^{}[[:space:]]*=", regex_escape(name));
            replace_line(s, p.sysctl, &pattern, &line);
            // sysctl(8): `.` separates the levels of a name (`/` may too, then it is kept).
            let file = if name.contains('/') {
                format!("{}/{name}", p.proc_sys)
            } else {
                format!("{}/{}", p.proc_sys, name.replace('.', "/"))
            };
            // /proc/sys separates the numbers of a vector value by tabs.
            let _ = writeln!(
                s,
                "if [ \"$(tr '\\t' ' ' 2>/dev/null < {f} || true)\" != {v} ]; then",
                f = quote(&file),
                v = quote(value)
            );
            let _ = writeln!(
                s,
                "  if sysctl -w {} >/dev/null; then hr_did {}; else hr_not_now {}; fi",
                quote(&format!("{name}={value}")),
                quote(&format!("set {name} = {value}")),
                quote(&format!(
                    "{name} could not be set now; {} sets it at the next boot",
                    p.sysctl
                ))
            );
            s.push_str("fi\n");
        }
        Action::EnableService { name, manager } => {
            comment(s, &format!("{fixes}: enable {name} at boot and start it"));
            service(s, name, *manager, p);
        }
        Action::Manual {
            what,
            commands,
            notes,
        } => {
            comment(s, &format!("{fixes}: NOT FIXED BY THIS SCRIPT: {what}"));
            for c in commands {
                comment(s, &format!("  suggested: {c}"));
            }
            for n in notes {
                comment(s, &format!("  note: {n}"));
            }
        }
        Action::Undecided { why } => {
            comment(
                s,
                &format!("{fixes}: could not be checked, so nothing is planned: {why}"),
            );
        }
    }
}

fn service(s: &mut String, name: &str, manager: ServiceManager, p: &Paths) {
    let q = quote(name);
    match manager {
        ServiceManager::Systemd => {
            let _ = writeln!(s, "if ! command -v systemctl >/dev/null 2>&1; then");
            let _ = writeln!(
                s,
                "  hr_not_now {}",
                quote(&format!(
                    "no systemctl here: enable and start {name} with this host's init"
                ))
            );
            s.push_str("else\n");
            let _ = writeln!(
                s,
                "  if ! systemctl is-enabled --quiet {q} 2>/dev/null; then systemctl enable {q}; hr_did {}; fi",
                quote(&format!("enabled {name}"))
            );
            // sd_booted(3): in a chroot or an image build systemd is not the running init, so
            // start would fail; enable is what can be done, and the start is reported.
            let _ = writeln!(s, "  if [ -d {} ]; then", quote(p.systemd_booted));
            let _ = writeln!(
                s,
                "    if ! systemctl is-active --quiet {q}; then systemctl start {q}; hr_did {}; fi",
                quote(&format!("started {name}"))
            );
            s.push_str("  else\n");
            let _ = writeln!(
                s,
                "    hr_not_now {}",
                quote(&format!(
                    "systemd is not running here: {name} starts at the next boot"
                ))
            );
            s.push_str("  fi\nfi\n");
        }
        ServiceManager::OpenRc => {
            let _ = writeln!(
                s,
                "if ! rc-update show default | grep -qw {q}; then rc-update add {q} default; hr_did {}; fi",
                quote(&format!("enabled {name}"))
            );
            let _ = writeln!(
                s,
                "if ! rc-service {q} status >/dev/null 2>&1; then rc-service {q} start; hr_did {}; fi",
                quote(&format!("started {name}"))
            );
        }
    }
}

/// Appends `line` to `file` unless the file has that exact line (creating the file and its
/// directory if needed).
fn append_line(s: &mut String, file: &str, line: &str) {
    let (f, l) = (quote(file), quote(line));
    let _ = writeln!(s, "if ! grep -qxF {l} {f} 2>/dev/null; then");
    let _ = writeln!(s, "  mkdir -p {}", quote(parent(file)));
    let _ = writeln!(s, "  printf '%s\\n' {l} >> {f}");
    let _ = writeln!(s, "  hr_did {}", quote(&format!("added {line} to {file}")));
    s.push_str("fi\n");
}

/// Makes `line` the only line of `file` that matches `pattern` (a basic regular expression):
/// a value changed since an earlier run replaces the old line instead of adding a second,
/// contradicting one. The file is rewritten beside itself and renamed over.
fn replace_line(s: &mut String, file: &str, pattern: &str, line: &str) {
    let (f, l) = (quote(file), quote(line));
    let tmp = quote(&format!("{file}.hostready-new"));
    let _ = writeln!(s, "if ! grep -qxF {l} {f} 2>/dev/null; then");
    let _ = writeln!(s, "  mkdir -p {}", quote(parent(file)));
    // grep -v exits 1 when it keeps no line: not an error here; 2 (unreadable) is.
    let _ = writeln!(
        s,
        "  if [ -e {f} ]; then grep -v {} {f} > {tmp} || [ $? -eq 1 ]; else : > {tmp}; fi",
        quote(pattern)
    );
    let _ = writeln!(s, "  printf '%s\\n' {l} >> {tmp}");
    let _ = writeln!(s, "  mv {tmp} {f}");
    let _ = writeln!(s, "  hr_did {}", quote(&format!("wrote {line} to {file}")));
    s.push_str("fi\n");
}

/// One or more blanks, in a basic regular expression (which has no `+`).
const SP: &str = "[[:space:]][[:space:]]*";

fn parent(file: &str) -> &str {
    file.rsplit_once('/')
        .map_or(".", |(d, _)| if d.is_empty() { "/" } else { d })
}

/// Escapes the characters basic regular expressions give a meaning (`grep` without `-E`).
fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '.' | '*' | '[' | ']' | '^' | '$' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Returns `s` single-quoted for the shell: inside single quotes nothing is special but the
/// quote itself, which is closed, escaped and reopened (`'\''`).
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Returns an install argv as a command line: the program and its flags are ours and written
/// as they are; the last word, the package, is quoted.
fn command(argv: &[String]) -> String {
    match argv.split_last() {
        Some((package, rest)) => format!("{} {}", rest.join(" "), quote(package)),
        None => String::new(),
    }
}

/// Writes `text` as comment lines: every line of it prefixed by `# `, with every control
/// character (a carriage return, an escape, C1, the bidi overrides) shown as `?`, so nothing
/// in it ends the comment or hides what follows.
fn comment(s: &mut String, text: &str) {
    for line in text.split('\n') {
        s.push_str("# ");
        for c in line.chars() {
            let bidi = matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
            s.push(if c.is_control() || bidi { '?' } else { c });
        }
        s.push('\n');
    }
}

#[cfg(test)]
// The scripts run for real against files in a temporary directory.
#[allow(clippy::disallowed_methods)]
mod tests {
    use std::fs;
    use std::path::{Path, PathBuf};
    use std::process::{Command, Output};

    use super::*;

    fn header(path: &str) -> Header {
        Header {
            version: "0.0.0-test".into(),
            host: "testhost, Debian GNU/Linux 12 (bookworm), kernel 6.1.0-18-amd64".into(),
            profiles: vec!["iscsi".into()],
            date: "2026-12-01T00:00:00Z".into(),
            path: path.into(),
        }
    }

    /// A directory with stub `apt-get`, `modprobe`, `sysctl` and `systemctl` that log their
    /// argv and act on files of the directory as the real ones act on the host, and the
    /// [`Paths`] of a script pointed there.
    struct Sandbox {
        dir: tempfile::TempDir,
        paths: Paths,
    }

    fn leak(p: PathBuf) -> &'static str {
        Box::leak(p.to_str().unwrap().to_string().into_boxed_str())
    }

    impl Sandbox {
        fn new() -> Sandbox {
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path();
            let bin = d.join("bin");
            fs::create_dir_all(&bin).unwrap();
            fs::create_dir_all(d.join("sys/module")).unwrap();
            fs::create_dir_all(d.join("proc/sys/net/ipv4")).unwrap();
            fs::write(d.join("proc/sys/net/ipv4/ip_forward"), "0\n").unwrap();
            let log = d.join("log");
            let stub = |name: &str, body: &str| {
                // Not fs::write: see write_executable (ETXTBSY when run in parallel).
                hostready_testkit::process::write_executable(
                    &bin.join(name),
                    format!(
                        "#!/bin/sh\necho \"{name} $*\" >> '{}'\nD='{}'\n{body}\n",
                        log.display(),
                        d.display()
                    )
                    .as_bytes(),
                );
            };
            // Installing open-iscsi brings iscsiadm; loading a module makes its sysfs dir.
            stub(
                "apt-get",
                "case \"$*\" in *open-iscsi*) printf '#!/bin/sh\\n' > \"$D/bin/iscsiadm\"; chmod 755 \"$D/bin/iscsiadm\";; esac",
            );
            stub(
                "modprobe",
                "[ \"$1\" = absent_mod ] && exit 1; mkdir -p \"$D/sys/module/$1\"",
            );
            stub(
                "sysctl",
                "[ \"$1\" = -w ] && echo \"${2#*=}\" > \"$D/proc/sys/$(echo \"${2%%=*}\" | tr . /)\"",
            );
            stub(
                "systemctl",
                "case \"$1\" in is-enabled) [ -e \"$D/enabled-$3\" ];; enable) touch \"$D/enabled-$2\";; is-active) [ -e \"$D/active-$3\" ];; start) touch \"$D/active-$2\";; esac",
            );
            for tool in [
                "sh", "grep", "mkdir", "mv", "tr", "cat", "printf", "touch", "chmod",
            ] {
                if let Some(real) = ["/usr/bin", "/bin"]
                    .iter()
                    .map(|b| Path::new(b).join(tool))
                    .find(|p| p.exists())
                {
                    std::os::unix::fs::symlink(real, bin.join(tool)).unwrap();
                }
            }
            fs::create_dir_all(d.join("run/systemd/system")).unwrap();
            let paths = Paths {
                modules_load: leak(d.join("etc/modules-load.d/hostready.conf")),
                etc_modules: leak(d.join("etc/modules")),
                modprobe: leak(d.join("etc/modprobe.d/hostready.conf")),
                sysctl: leak(d.join("etc/sysctl.d/99-zz-hostready.conf")),
                sys_module: leak(d.join("sys/module")),
                proc_sys: leak(d.join("proc/sys")),
                systemd_booted: leak(d.join("run/systemd/system")),
            };
            Sandbox { dir, paths }
        }

        fn run(&self, plan: &FixPlan) -> Output {
            let script = render_with(
                plan,
                &header(self.dir.path().join("bin").to_str().unwrap()),
                &self.paths,
            );
            let file = self.dir.path().join("fix.sh");
            fs::write(&file, script).unwrap();
            Command::new("/bin/sh")
                .arg(&file)
                .env_clear()
                .output()
                .unwrap()
        }

        fn read(&self, p: &str) -> String {
            fs::read_to_string(p).unwrap_or_default()
        }

        fn log(&self) -> String {
            self.read(self.dir.path().join("log").to_str().unwrap())
        }
    }

    fn step(action: Action) -> Step {
        Step {
            action,
            fixes: vec!["x".into()],
        }
    }

    fn every_kind() -> FixPlan {
        FixPlan {
            steps: vec![
                step(Action::Install {
                    installer: Installer::Apt,
                    package: "open-iscsi".into(),
                    reinstall: false,
                    unless: Present::Executable("iscsiadm".into()),
                }),
                step(Action::ModuleOption {
                    module: "nvme_core".into(),
                    parameter: "multipath".into(),
                    value: "N".into(),
                }),
                step(Action::LoadModule {
                    module: "iscsi_tcp".into(),
                    list: ModuleList::ModulesLoadD,
                }),
                step(Action::Sysctl {
                    name: "net.ipv4.ip_forward".into(),
                    value: "1".into(),
                }),
                step(Action::EnableService {
                    name: "iscsid".into(),
                    manager: ServiceManager::Systemd,
                }),
                step(Action::Manual {
                    what: "boot a newer kernel".into(),
                    commands: vec![],
                    notes: vec![],
                }),
            ],
        }
    }

    fn stderr(o: &Output) -> String {
        String::from_utf8_lossy(&o.stderr).into_owned()
    }

    /// The script does each change once: the second run installs nothing, appends nothing,
    /// sets nothing, and says "nothing changed".
    #[test]
    fn a_second_run_changes_nothing() {
        let sb = Sandbox::new();
        let plan = every_kind();
        let first = sb.run(&plan);
        assert!(first.status.success(), "{}", stderr(&first));
        assert_eq!(
            sb.log(),
            "apt-get update\napt-get install -y open-iscsi\nmodprobe iscsi_tcp\n\
             sysctl -w net.ipv4.ip_forward=1\nsystemctl is-enabled --quiet iscsid\n\
             systemctl enable iscsid\nsystemctl is-active --quiet iscsid\nsystemctl start iscsid\n"
        );
        let files = |sb: &Sandbox| {
            [sb.paths.modules_load, sb.paths.modprobe, sb.paths.sysctl].map(|p| sb.read(p))
        };
        assert_eq!(
            files(&sb),
            [
                "iscsi_tcp\n",
                "options nvme_core multipath=N\n",
                "net.ipv4.ip_forward = 1\n"
            ]
        );
        assert!(
            stderr(&first).contains("8 change(s) made"),
            "{}",
            stderr(&first)
        );
        let log = sb.log();
        let second = sb.run(&plan);
        assert!(second.status.success(), "{}", stderr(&second));
        assert!(
            stderr(&second).contains("nothing changed"),
            "{}",
            stderr(&second)
        );
        // Only the tests ran again (is-enabled, is-active): no install, load, set or enable.
        assert_eq!(
            sb.log().strip_prefix(&log).unwrap(),
            "systemctl is-enabled --quiet iscsid\nsystemctl is-active --quiet iscsid\n"
        );
        assert_eq!(
            files(&sb),
            [
                "iscsi_tcp\n",
                "options nvme_core multipath=N\n",
                "net.ipv4.ip_forward = 1\n"
            ]
        );
        let script = render(&plan, &header("/usr/sbin:/usr/bin"));
        assert!(script.contains("# x: NOT FIXED BY THIS SCRIPT: boot a newer kernel"));
        assert!(script.starts_with("#!/bin/sh\n# hostready fix script: REVIEW BEFORE RUNNING.\n"));
    }

    /// A value changed since an earlier run replaces its line; other lines stay.
    #[test]
    fn a_changed_value_replaces_its_line() {
        let sb = Sandbox::new();
        fs::create_dir_all(Path::new(sb.paths.sysctl).parent().unwrap()).unwrap();
        fs::write(
            sb.paths.sysctl,
            "vm.max_map_count = 262144\nnet.ipv4.ip_forward=1\n",
        )
        .unwrap();
        fs::create_dir_all(Path::new(sb.paths.modprobe).parent().unwrap()).unwrap();
        fs::write(
            sb.paths.modprobe,
            "options nvme_core  multipath=Y\noptions drbd usermode_helper=disabled\n",
        )
        .unwrap();
        let plan = FixPlan {
            steps: vec![
                step(Action::Sysctl {
                    name: "net.ipv4.ip_forward".into(),
                    value: "0".into(),
                }),
                step(Action::ModuleOption {
                    module: "nvme_core".into(),
                    parameter: "multipath".into(),
                    value: "N".into(),
                }),
            ],
        };
        let out = sb.run(&plan);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(
            sb.read(sb.paths.sysctl),
            "vm.max_map_count = 262144\nnet.ipv4.ip_forward = 0\n"
        );
        assert_eq!(
            sb.read(sb.paths.modprobe),
            "options drbd usermode_helper=disabled\noptions nvme_core multipath=N\n"
        );
        // The kernel already has 0: no sysctl -w.
        assert_eq!(sb.log(), "");
    }

    /// What cannot take effect now is said, the persistent part is still done, and the script
    /// exits 1 at its end; a loaded module with another option value is reported.
    #[test]
    fn what_cannot_take_effect_now_makes_the_script_exit_1() {
        let sb = Sandbox::new();
        fs::remove_dir(sb.paths.systemd_booted).unwrap();
        let params = Path::new(sb.paths.sys_module).join("nvme_core/parameters");
        fs::create_dir_all(&params).unwrap();
        fs::write(params.join("multipath"), "Y\n").unwrap();
        let plan = FixPlan {
            steps: vec![
                step(Action::ModuleOption {
                    module: "nvme_core".into(),
                    parameter: "multipath".into(),
                    value: "N".into(),
                }),
                step(Action::LoadModule {
                    module: "absent_mod".into(),
                    list: ModuleList::ModulesLoadD,
                }),
                step(Action::EnableService {
                    name: "iscsid".into(),
                    manager: ServiceManager::Systemd,
                }),
            ],
        };
        let out = sb.run(&plan);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let err = stderr(&out);
        for said in [
            "not in effect now: nvme_core is loaded with another multipath: reload nvme_core or reboot",
            "not in effect now: absent_mod did not load;",
            "not in effect now: systemd is not running here: iscsid starts at the next boot",
            "3 change(s) not in effect now",
        ] {
            assert!(err.contains(said), "{said:?} in {err}");
        }
        assert_eq!(sb.read(sb.paths.modules_load), "absent_mod\n");
        assert!(!sb.log().contains("systemctl start"), "{}", sb.log());
    }

    /// Host text cannot start a line of the script, and a quote in a name stays inside its
    /// word.
    #[test]
    fn host_text_cannot_inject_commands() {
        let mut h = header("/usr/bin");
        h.host = "evil\nrm -rf /\r\u{1b}[2K\u{202e}".into();
        let plan = FixPlan {
            steps: vec![step(Action::Manual {
                what: "x\n; reboot".into(),
                commands: vec!["a\nb".into()],
                notes: vec![],
            })],
        };
        let script = render(&plan, &h);
        for line in script.lines() {
            assert!(
                !line.starts_with("rm") && !line.starts_with("; reboot") && !line.starts_with('b'),
                "{script}"
            );
            assert!(!line.contains(['\r', '\u{1b}', '\u{202e}']), "{line:?}");
        }
        let q = quote("it's $(reboot) `x`");
        let out = Command::new("/bin/sh")
            .args(["-c", &format!("printf %s {q}")])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), "it's $(reboot) `x`");
    }

    /// The install commands are the remediation's own, with the unattended flags.
    #[test]
    fn install_lines_per_installer() {
        let line = |i: Installer, reinstall| {
            let plan = FixPlan {
                steps: vec![step(Action::Install {
                    installer: i,
                    package: "open-iscsi".into(),
                    reinstall,
                    unless: Present::Executable("iscsiadm".into()),
                })],
            };
            let script = render(&plan, &header("/usr/bin"));
            script
                .lines()
                .find(|l| l.contains("'open-iscsi'") && !l.contains("hr_"))
                .unwrap()
                .trim()
                .to_string()
        };
        assert_eq!(
            line(Installer::Apt, false),
            "apt-get install -y 'open-iscsi'"
        );
        assert_eq!(
            line(Installer::Apt, true),
            "apt-get install --reinstall -y 'open-iscsi'"
        );
        assert_eq!(
            line(Installer::RpmOstree, false),
            "rpm-ostree install --idempotent 'open-iscsi'"
        );
        assert_eq!(
            line(Installer::TransactionalUpdate, false),
            "transactional-update --non-interactive pkg install 'open-iscsi'"
        );
        assert_eq!(
            line(Installer::Zypper, false),
            "zypper --non-interactive install 'open-iscsi'"
        );
    }
}
