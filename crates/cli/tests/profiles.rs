//! Profiles as untrusted input, end to end through the real binary: a profile that would make
//! the agent write the kubelet's conditions, FIFOs and devices where a profile should be, an
//! include fan-out, and nesting deep enough to stall the YAML parser are each refused (or
//! loaded) promptly, with exit 2 and the file (and line:column) named, before anything runs.
//! Opens are counted with `strace`, not inferred from timing.

// Tests build fake hosts and read fixtures on this machine directly.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use util::hostready;

mod util;

/// Runs `hostready ARGS PROFILE` and returns its output.
fn run(args: &[&str], profile: &Path) -> Output {
    hostready().args(args).arg(profile).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_profile_claiming_the_kubelets_ready_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let hijack = dir.path().join("hijack.yaml");
    // The command would leave a marker if anything ran.
    fs::write(
        &hijack,
        format!(
            "name: hijack\ncondition: Ready\nrequirements:\n  - id: touch\n    command: [/usr/bin/touch, {}]\n",
            marker.display()
        ),
    )
    .unwrap();
    for args in [
        &["check", "-p"][..],
        &["check", "--output", "json", "-p"],
        &["profiles"],
    ] {
        let out = run(args, &hijack);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!("{}:2:12:", hijack.display())),
            "{err}"
        );
        assert!(err.contains("kubelet"), "{err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    assert!(!marker.exists(), "nothing runs");
    for t in [
        "ready",
        "MemoryPressure",
        "node.kubernetes.io/Mine",
        "bad type",
    ] {
        fs::write(&hijack, format!("name: hijack\ncondition: {t}\n")).unwrap();
        let out = run(&["profiles"], &hijack);
        assert_eq!(out.status.code(), Some(2), "{t}");
        assert!(stderr(&out).contains(":2:12:"), "{t}: {}", stderr(&out));
    }
}

/// Returns the `open`/`openat` calls `strace` saw `hostready ARGS PROFILE` make on paths
/// containing `needle`, and the run's exit code.
fn opens_of(args: &[&str], profile: &Path, needle: &str) -> (Vec<String>, Option<i32>) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("strace.log");
    let out = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=open,openat,openat2", "-o"])
        .arg(&log)
        .arg(env!("CARGO_BIN_EXE_hostready"))
        .args(args)
        .arg(profile)
        .output()
        .expect("strace (Debian package strace) is installed");
    let text = fs::read_to_string(&log).unwrap();
    let opens = text
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect();
    (opens, out.status.code())
}

#[test]
fn fifos_and_devices_are_refused_promptly_and_never_opened() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.yaml");
    let dev = dir.path().join("dev.yaml");
    // A FIFO with no writer (a blocking open would wait forever), and a character device with
    // /dev/null's numbers (harmless, but its driver must not see an open either).
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    assert!(
        Command::new("mknod")
            .arg(&dev)
            .args(["c", "1", "3"])
            .status()
            .unwrap()
            .success()
    );
    let inc = dir.path().join("inc.yaml");
    fs::write(&inc, "name: inc\ninclude: [dev.yaml]\n").unwrap();
    for (path, what, named) in [
        (&fifo, "is a FIFO", &fifo),
        (&dev, "is a character device", &dev),
        (&inc, "is a character device", &dev),
    ] {
        for args in [&["check", "-p"][..], &["profiles"]] {
            let out = run(args, path);
            assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
            let err = stderr(&out);
            assert!(
                err.contains(&named.display().to_string()) && err.contains(what),
                "{err}"
            );
        }
    }
    // The only opens of the device are O_PATH ones, which run no driver code.
    let (opens, code) = opens_of(&["profiles"], &inc, "dev.yaml");
    assert_eq!(code, Some(2));
    assert!(!opens.is_empty(), "strace saw the device looked up");
    for o in &opens {
        assert!(o.contains("O_PATH"), "the device was opened: {o}");
    }
}

#[test]
fn an_include_fan_out_loads_each_file_once() {
    // Four files each including the next 200 times: 8 million loads before, minutes of work.
    let dir = tempfile::tempdir().unwrap();
    for i in 0..4 {
        let text = if i < 3 {
            let inc = vec![format!("f{}.yaml", i + 1); 200].join(", ");
            format!("name: f{i}\ninclude: [{inc}]\n")
        } else {
            "name: f3\nrequirements:\n  - nfs_client: {}\n".to_string()
        };
        fs::write(dir.path().join(format!("f{i}.yaml")), text).unwrap();
    }
    let f0 = dir.path().join("f0.yaml");
    let out = run(&["profiles"], &f0);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("nfs.client"));
    // Each file is looked up once (O_PATH) and read once (reopened through /proc/self/fd).
    for i in 0..4 {
        let (opens, code) = opens_of(&["profiles"], &f0, &format!("f{i}.yaml"));
        assert_eq!(code, Some(0));
        assert_eq!(opens.len(), 1, "f{i}.yaml: {opens:#?}");
        assert!(opens[0].contains("O_PATH"), "{opens:?}");
    }
}

#[test]
fn deeply_nested_flow_collections_are_refused_before_parsing() {
    // 200 KB of `[`: libyaml alone took over a minute on this before its recursion limit.
    let dir = tempfile::tempdir().unwrap();
    let deep = dir.path().join("deep.yaml");
    fs::write(
        &deep,
        format!("name: deep\nrequirements: {}\n", "[".repeat(200_000)),
    )
    .unwrap();
    let out = run(&["check", "-p"], &deep);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{}:2:46: collections nest deeper than 32",
            deep.display()
        )),
        "{err}"
    );
}
