//! The flags every subcommand shares, through the real binary: each shared flag is accepted by
//! every subcommand that has it, with the same help; every duration flag follows the one
//! grammar; every row of the README's exit-code table; `--color`; `fix:` lines fitted to
//! `COLUMNS`; completions and manual pages that name every subcommand and flag.
//!
//! The parsing of each flag is tested beside its definition (crates/flags, output.rs,
//! exit.rs); these tests show that every subcommand really uses that one definition.

// Tests build fake hosts and read fixtures on this machine directly, not a host's root.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use util::hostready;

mod util;

/// Runs `hostready args...` and returns its output.
fn run(args: &[&str]) -> Output {
    hostready().args(args).output().expect("run hostready")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts that clap accepted the command line (whatever the run then made of it).
fn assert_parsed(args: &[&str], o: &Output) {
    let err = stderr(o);
    for usage in ["unexpected argument", "invalid value", "Usage:"] {
        assert!(!err.contains(usage), "{args:?} was refused: {err}");
    }
}

/// A kubeconfig path that does not exist: runs that need a cluster stop right after parsing.
const NO_KUBECONFIG: &str = "/nonexistent/hostready-test-kubeconfig";

/// Every subcommand with the host flags, as a command line that needs no cluster.
fn host_subcommands() -> Vec<Vec<&'static str>> {
    vec![
        vec!["check", "-p", "iscsi"],
        vec!["doctor"],
        vec!["pkg", "list"],
        vec!["pkg", "query", "open-iscsi"],
        vec!["pkg", "owner", "/usr/sbin/iscsiadm"],
        vec![
            "agent",
            "--node-name",
            "n1",
            "--once",
            "--kubeconfig",
            NO_KUBECONFIG,
        ],
    ]
}

#[test]
fn every_host_subcommand_accepts_root_and_proc() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path().to_str().unwrap();
    for sub in host_subcommands() {
        for extra in [&["--proc", "none"][..], &["--proc", "/proc"], &[]] {
            let mut args = sub.clone();
            args.extend(["--root", r]);
            args.extend(extra);
            let o = run(&args);
            assert_parsed(&args, &o);
        }
        // The same typo is refused the same way everywhere.
        let mut args = sub.clone();
        args.extend(["--proc", ""]);
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&o).contains("give a directory, or `none`"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
}

/// The help of `--root`, `--proc` and `--path` as `sub --help` prints it.
fn flag_help(sub: &[&str], flag: &str) -> String {
    let mut args = sub.to_vec();
    args.push("--help");
    let text = stdout(&run(&args));
    let start = text
        .find(&format!("\n      {flag} <"))
        .or_else(|| {
            text.find(&format!(", {flag} <"))
                .and_then(|i| text[..i].rfind('\n'))
        })
        .unwrap_or_else(|| panic!("{sub:?} --help has no {flag}: {text}"))
        + 1;
    let rest = &text[start..];
    // The flag's block ends at the next flag's line.
    let end = rest[1..]
        .find("\n  -")
        .map_or(rest.len(), |i| i + 1)
        .min(rest[1..].find("\n      -").map_or(rest.len(), |i| i + 1));
    rest[..end].trim().to_string()
}

#[test]
fn shared_flags_have_the_same_help_everywhere() {
    let subs = host_subcommands();
    for flag in ["--root", "--proc"] {
        let first = flag_help(&subs[0][..1], flag);
        for sub in &subs[1..] {
            let cmd = if sub[0] == "pkg" {
                &sub[..2]
            } else {
                &sub[..1]
            };
            assert_eq!(flag_help(cmd, flag), first, "{cmd:?} {flag}");
        }
    }
    assert_eq!(
        flag_help(&["check"], "--path"),
        flag_help(&["agent"], "--path")
    );
    let profile = flag_help(&["check"], "--profile");
    assert!(profile.contains("-p, --profile <NAME|FILE>"), "{profile}");
    assert_eq!(flag_help(&["agent"], "--profile"), profile);
    let outputs = [
        &["check"][..],
        &["profiles"],
        &["doctor"],
        &["pkg", "list"],
        &["pkg", "query"],
        &["pkg", "owner"],
        &["cluster"],
    ];
    let first = flag_help(outputs[0], "--output");
    assert!(first.contains("-o, --output <FORMAT>"), "{first}");
    for sub in &outputs[1..] {
        assert_eq!(flag_help(sub, "--output"), first, "{sub:?}");
    }
    let kc = flag_help(&["agent"], "--kubeconfig");
    assert!(kc.contains("KUBECONFIG"), "{kc}");
    assert_eq!(flag_help(&["cluster"], "--kubeconfig"), kc);
}

/// `pkg` had no `-o`: every subcommand that prints data takes `-o json` now.
#[test]
fn every_data_subcommand_takes_dash_o() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path().to_str().unwrap();
    for args in [
        vec!["check", "-p", "iscsi", "--proc", "none", "--root", r],
        vec!["profiles"],
        vec!["profiles", "iscsi"],
        vec!["doctor", "--proc", "none", "--root", r],
        vec!["pkg", "list", "--proc", "none", "--root", r],
        vec!["pkg", "query", "x", "--proc", "none", "--root", r],
        vec!["pkg", "owner", "/x", "--proc", "none", "--root", r],
    ] {
        let mut a = args.clone();
        a.extend(["-o", "json"]);
        let o = run(&a);
        assert_parsed(&a, &o);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{a:?}: {e}: {}", stderr(&o)));
        assert!(v.is_object() || v.is_array(), "{a:?}");
    }
    let o = run(&["cluster", "-o", "json", "--kubeconfig", NO_KUBECONFIG]);
    assert_parsed(&["cluster", "-o", "json"], &o);
}

#[test]
fn every_duration_flag_follows_the_one_grammar() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path().to_str().unwrap();
    let agent = [
        "agent",
        "--node-name",
        "n1",
        "--once",
        "--kubeconfig",
        NO_KUBECONFIG,
    ];
    let doctor = ["doctor", "--proc", "none", "--root", r];
    let cluster = ["cluster", "--kubeconfig", NO_KUBECONFIG];
    let cases: [(&[&str], &str); 5] = [
        (&agent, "--interval"),
        (&agent, "--heartbeat"),
        (&agent, "--watch-interval"),
        (&doctor, "--pile-min-age"),
        (&cluster, "--request-timeout"),
    ];
    for (base, flag) in cases {
        for good in ["90s", "1h30m", "250ms", "2d"] {
            let mut a = base.to_vec();
            a.extend([flag, good]);
            assert_parsed(&a, &run(&a));
        }
        let mut a = base.to_vec();
        a.extend([flag, "90"]);
        let o = run(&a);
        assert_eq!(o.status.code(), Some(2), "{a:?}");
        let err = stderr(&o);
        assert!(err.contains("a unit is required, e.g. 90s"), "{a:?}: {err}");
        let mut a = base.to_vec();
        a.extend([flag, "5 parsecs"]);
        let err = stderr(&run(&a));
        assert!(
            err.contains("write e.g. 250ms, 90s, 5m, 1h30m"),
            "{a:?}: {err}"
        );
    }
    // Zero is a duration, but not an interval or a timeout; an age of 0 is fine.
    for (base, flag) in [
        (&agent[..], "--interval"),
        (&cluster[..], "--request-timeout"),
    ] {
        let mut a = base.to_vec();
        a.extend([flag, "0s"]);
        assert!(stderr(&run(&a)).contains("must be more than zero"), "{a:?}");
    }
    let mut a = doctor.to_vec();
    a.extend(["--pile-min-age", "0"]);
    assert_parsed(&a, &run(&a));
    // The watch pass is switched off by `off` or a zero duration.
    for off in ["off", "0s"] {
        let mut a = agent.to_vec();
        a.extend(["--watch-interval", off]);
        assert_parsed(&a, &run(&a));
    }
}

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// A profile of one command check that exits `code` (0 pass, 1 fail, else unknown: the
/// node-problem-detector convention), at `level`.
fn command_profile(dir: &Path, name: &str, code: i32, level: &str) -> PathBuf {
    let s = script(dir, &format!("{name}.sh"), &format!("exit {code}"));
    let p = dir.join(format!("{name}.yaml"));
    fs::write(
        &p,
        format!(
            "name: {name}\nrequirements:\n  - id: t.{name}\n    level: {level}\n    command: [\"{}\"]\n",
            s.display()
        ),
    )
    .unwrap();
    p
}

/// The rows of the README's exit-code table for `check` (and the rule `doctor` shares).
#[test]
fn check_exit_codes_follow_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let check = |profiles: &[&Path], extra: &[&str]| {
        let mut cmd = hostready();
        cmd.args(["check", "-o", "json"]);
        for p in profiles {
            cmd.arg("-p").arg(p);
        }
        cmd.args(extra);
        let o = cmd.output().unwrap();
        (o.status.code().unwrap(), stderr(&o))
    };
    let pass = command_profile(d, "pass", 0, "required");
    let fail = command_profile(d, "fail", 1, "required");
    let unknown = command_profile(d, "unknown", 3, "required");
    let warn = command_profile(d, "warn", 1, "recommended");
    assert_eq!(check(&[&pass], &[]).0, 0, "all required passed");
    assert_eq!(check(&[&pass, &warn], &[]).0, 0, "a warning alone: 0");
    assert_eq!(
        check(&[&pass, &warn], &["--strict"]).0,
        1,
        "--strict: a warning is 1"
    );
    assert_eq!(check(&[&fail], &[]).0, 1, "a required failure");
    assert_eq!(
        check(&[&unknown, &pass], &[]).0,
        2,
        "a required unknown, nothing failed"
    );
    assert_eq!(
        check(&[&unknown, &fail], &[]).0,
        1,
        "a failure beats an unknown"
    );
    let bad = d.join("bad.yaml");
    fs::write(&bad, "name: bad\nrequirements:\n  - exectuable: x\n").unwrap();
    let (code, err) = check(&[&bad], &[]);
    assert_eq!(code, 2, "a profile with a mistake: {err}");
    let (code, err) = check(&[&pass], &["--root", "/nonexistent/hostready-root"]);
    assert_eq!(code, 2, "an unreadable root: {err}");
    assert!(err.contains("cannot open host root"), "{err}");
}

#[test]
fn doctor_and_pkg_and_cluster_exit_codes_follow_the_table() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path().to_str().unwrap();
    // doctor: no procfs → its process findings are unknown, nothing failed → 2.
    let o = run(&["doctor", "-o", "json", "--proc", "none", "--root", r]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // doctor --explain: a known problem is a failure → 1; a clean log → 0.
    let log = root.path().join("log");
    fs::write(&log, "all fine\n").unwrap();
    assert_eq!(
        run(&["doctor", "--explain", log.to_str().unwrap()])
            .status
            .code(),
        Some(0)
    );
    fs::write(
        &log,
        "error: rpmdb: BDB0113 Thread/process 4711/140 failed: BDB1507 Thread died in Berkeley DB library\n",
    )
    .unwrap();
    let o = run(&["doctor", "--explain", log.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    // pkg on a root with no database: cannot tell → 2.
    let o = run(&["pkg", "query", "x", "--proc", "none", "--root", r]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // cluster without a cluster: 2, and the reason in one sentence.
    let o = hostready()
        .args(["cluster"])
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("HOME", root.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert_eq!(
        err.trim_end(),
        format!(
            "hostready: error: no cluster configured: no --kubeconfig, KUBECONFIG unset, {r}/.kube/config not found, and not in a pod (KUBERNETES_SERVICE_HOST unset)"
        )
    );
    // A wrong --kubeconfig is named once, without doubled quotes.
    let o = run(&["cluster", "--kubeconfig", NO_KUBECONFIG]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert_eq!(
        err.matches(NO_KUBECONFIG).count(),
        1,
        "the path once: {err}"
    );
    assert!(!err.contains("'\""), "{err}");
    assert!(err.contains("No such file or directory"), "{err}");
    // agent --once: cannot start → 2, the same message.
    let o = run(&[
        "agent",
        "--node-name",
        "n1",
        "--once",
        "--kubeconfig",
        NO_KUBECONFIG,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o).matches(NO_KUBECONFIG).count(),
        1,
        "{}",
        stderr(&o)
    );
}

/// A check whose fix line is long: `exe.iscsiadm` missing on a Debian root.
fn failing_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("etc")).unwrap();
    fs::write(
        root.path().join("etc/os-release"),
        "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
    )
    .unwrap();
    root
}

#[test]
fn color_flag_beats_the_terminal_and_no_color() {
    let root = failing_root();
    let table = |color: Option<&str>, no_color: bool| {
        let mut cmd = hostready();
        cmd.args(["check", "-p", "iscsi", "--proc", "none", "--root"])
            .arg(root.path());
        if let Some(c) = color {
            cmd.args(["--color", c]);
        }
        cmd.env_remove("CLICOLOR_FORCE").env_remove("NO_COLOR");
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        stdout(&cmd.output().unwrap())
    };
    // Into a pipe: plain unless asked.
    assert!(!table(None, false).contains('\x1b'));
    assert!(!table(Some("auto"), false).contains('\x1b'));
    assert!(!table(Some("never"), false).contains('\x1b'));
    let always = table(Some("always"), true);
    assert!(always.contains("\x1b[31mFAIL"), "{always:?}");
    // Before the subcommand too (a global flag).
    let o = hostready()
        .args([
            "--color", "always", "check", "-p", "iscsi", "--proc", "none", "--root",
        ])
        .arg(root.path())
        .output()
        .unwrap();
    assert!(stdout(&o).contains("\x1b[31mFAIL"));
    // CLICOLOR_FORCE is auto's business; never stays never.
    let o = hostready()
        .args([
            "check", "-p", "iscsi", "--proc", "none", "--color", "never", "--root",
        ])
        .arg(root.path())
        .env("CLICOLOR_FORCE", "1")
        .output()
        .unwrap();
    assert!(!stdout(&o).contains('\x1b'));
}

#[test]
fn fix_lines_fit_columns_and_stay_whole_in_a_pipe() {
    let root = failing_root();
    let table = |columns: Option<&str>| {
        let mut cmd = hostready();
        cmd.args(["check", "-p", "iscsi", "--proc", "none", "--root"])
            .arg(root.path())
            .env_remove("COLUMNS");
        if let Some(c) = columns {
            cmd.env("COLUMNS", c);
        }
        stdout(&cmd.output().unwrap())
    };
    let whole = table(None);
    let fix = whole
        .lines()
        .find(|l| l.trim_start().starts_with("fix: "))
        .unwrap_or_else(|| panic!("no fix line: {whole}"));
    let narrow_width = fix.trim_start().len() / 2 + fix.len() - fix.trim_start().len();
    assert!(
        narrow_width >= 40,
        "the fix line is long enough to wrap: {fix}"
    );
    let narrow = table(Some(&narrow_width.to_string()));
    let i = narrow
        .lines()
        .position(|l| l.trim_start().starts_with("fix: "))
        .unwrap();
    let lines: Vec<&str> = narrow.lines().collect();
    assert!(lines[i].len() <= narrow_width, "{narrow}");
    assert!(lines[i].len() < fix.len(), "{narrow}");
    // The words of the fix are all there, in order, on the line and its continuations.
    let indent = fix.len() - fix.trim_start().len() + "fix: ".len();
    let mut words: Vec<&str> = lines[i].split_whitespace().skip(1).collect();
    for l in &lines[i + 1..] {
        if l.len() <= indent || !l[..indent].trim().is_empty() || l[indent..].starts_with(' ') {
            break;
        }
        words.extend(l.split_whitespace());
    }
    let want: Vec<&str> = fix.split_whitespace().skip(1).collect();
    assert_eq!(words, want, "{narrow}");
}

#[test]
fn completions_name_every_subcommand() {
    let o = run(&["completions", "bash"]);
    assert_eq!(o.status.code(), Some(0));
    let script = stdout(&o);
    for sub in [
        "check",
        "profiles",
        "pkg",
        "doctor",
        "agent",
        "cluster",
        "completions",
        "man",
    ] {
        assert!(
            script.contains(&format!("hostready,{sub})")),
            "no {sub} in bash completion"
        );
    }
    for flag in [
        "--root",
        "--proc",
        "--output",
        "--color",
        "--kubeconfig",
        "--pile-min-age",
    ] {
        assert!(script.contains(flag), "no {flag} in bash completion");
    }
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let o = run(&["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{shell}");
        assert!(stdout(&o).contains("pile-min-age"), "{shell}");
    }
    assert_eq!(run(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn man_pages_name_every_subcommand_and_flag_and_render() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&["man", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for (page, flags) in [
        ("hostready.1", &["--color"][..]),
        (
            "hostready-check.1",
            &[
                "--root",
                "--proc",
                "--path",
                "--output",
                "--strict",
                "--verify-runs",
            ],
        ),
        (
            "hostready-doctor.1",
            &[
                "--root",
                "--proc",
                "--pile-min-age",
                "--explain",
                "--strict",
            ],
        ),
        ("hostready-pkg-query.1", &["--root", "--proc", "--output"]),
        ("hostready-pkg-list.1", &["--root"]),
        ("hostready-pkg-owner.1", &["--root"]),
        (
            "hostready-agent.1",
            &["--node-name", "--interval", "--kubeconfig", "--path"],
        ),
        (
            "hostready-cluster.1",
            &["--kubeconfig", "--request-timeout", "--output"],
        ),
        ("hostready-profiles.1", &["--output"]),
        ("hostready-completions.1", &[]),
        ("hostready-man.1", &["--dir"]),
    ] {
        let path = dir.path().join(page);
        let roff = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{page}: {e}"));
        // Rendered as a person would read it; roff escapes dashes, so look at the rendering.
        let rendered = std::process::Command::new("man")
            .arg("-l")
            .arg(&path)
            .env("MANWIDTH", "100")
            .env("MAN_KEEP_FORMATTING", "")
            .env("PAGER", "cat")
            .output()
            .expect("man is installed (the man-db package; scripts/setup)");
        assert!(rendered.status.success(), "{page}: {}", stderr(&rendered));
        let text = stdout(&rendered);
        // Strip overstrike formatting (bold is `c\bc`).
        let text: String = {
            let mut out = String::new();
            for c in text.chars() {
                if c == '\u{8}' {
                    out.pop();
                } else {
                    out.push(c);
                }
            }
            out
        };
        let text = text.replace(['\u{2010}', '\u{2212}'], "-");
        for flag in flags {
            assert!(text.contains(flag), "{page} lacks {flag}: {text}\n{roff}");
        }
    }
    let top = stdout(&run(&["man"]));
    for sub in [
        "check",
        "profiles",
        "pkg",
        "doctor",
        "agent",
        "cluster",
        "completions",
    ] {
        assert!(
            top.contains(&format!("hostready\\-{sub}(1)")),
            "hostready(1) lacks {sub}: {top}"
        );
    }
    let query = stdout(&run(&["man", "pkg", "query"]));
    assert!(query.contains("hostready\\-pkg\\-query"), "{query}");
    assert_eq!(run(&["man", "nope"]).status.code(), Some(2));
}
