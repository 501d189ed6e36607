//! `hostready doctor` through the real binary: exit codes, the JSON report's shape, `--explain`
//! on log files and stdin, `--proc none`, a fake procfs with a pile-up in it, and a pile-up of
//! real processes (killed and reaped by a drop guard, also when an assertion fails).

// Tests build fake hosts and read fixtures on this machine directly.
#![allow(clippy::disallowed_methods)]

mod util;

use std::os::unix::process::CommandExt;
use std::process::Command;

use hostready_testkit::fakehost::FakeProc;
use hostready_testkit::process::{Group, count_argv0, marker, output_with_stdin};
use hostready_testkit::wait_until;
use serde_json::Value;
use util::{doctor_on, finding, hostready, run_json};

/// Log lines in the shapes longhorn-manager and rpm print them (longhorn/longhorn#10019).
const LOG: &str = "\
time=\"2024-12-18T09:00:00Z\" level=info msg=\"Starting longhorn-manager\"
time=\"2024-12-18T09:01:02Z\" level=error msg=\"Failed to check package installed\" error=\"timeout executing: nsenter [--mount=/host/proc/1/ns/mnt rpm -q iscsi-initiator-utils], output , stderr , : context deadline exceeded\"
time=\"2024-12-18T09:01:03Z\" level=info msg=\"nothing to see\"
error: rpmdb: BDB0113 Thread/process 4711/140245 failed: BDB1507 Thread died in Berkeley DB library
error: db5 error(-30973) from dbenv->failchk: BDB0087 DB_RUNRECOVERY: Fatal error, run database recovery
time=\"2024-12-18T09:02:03Z\" level=error msg=\"Failed to check package installed\" error=\"timeout executing: nsenter [--mount=/host/proc/1/ns/mnt rpm -q nfs-utils]\"
";

#[test]
fn explain_file_names_known_problems_with_their_lines() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("manager.log");
    std::fs::write(&log, LOG).unwrap();
    let (code, json) = run_json(
        hostready()
            .args(["doctor", "-o", "json", "--explain"])
            .arg(&log),
    );
    assert_eq!(code, 1, "known problems found: exit 1; {json:#}");
    assert_eq!(json["source"], log.display().to_string());
    let lines = |id: &str| -> Vec<u64> {
        json["matches"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == id)
            .unwrap_or_else(|| panic!("no match {id}: {json:#}"))["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_u64().unwrap())
            .collect()
    };
    assert_eq!(lines("nsenter-timeout"), [2, 6]);
    assert_eq!(lines("bdb-thread-died"), [4]);
    assert_eq!(lines("bdb-runrecovery"), [5]);
    assert_eq!(json["schema"], 1);
    assert_eq!(json["ok"], false);
    assert_eq!(json["summary"]["fail"], 3, "{json:#}");
    let f = finding(&json, "doctor.signature.nsenter-timeout");
    assert_eq!(f["profile"], "doctor");
    assert_eq!(f["level"], "required");
    assert_eq!(f["evidence"]["source"], log.display().to_string(), "{f:#}");
    assert_eq!(f["evidence"]["lines"], "2, 6", "{f:#}");
    assert!(
        f["evidence"]["first match"]
            .as_str()
            .unwrap()
            .starts_with("line 2: "),
        "{f:#}"
    );
    assert!(
        !f["remediation"]["summary"].as_str().unwrap().is_empty(),
        "{f:#}"
    );
    assert!(
        f["remediation"]["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("issues/10019")),
        "{f:#}"
    );

    // The table names the same problems.
    let out = hostready()
        .args(["doctor", "--explain"])
        .arg(&log)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("doctor.signature.bdb-thread-died"),
        "{table}"
    );
    assert!(table.contains("line 4:"), "{table}");
    // In check's shape: evidence as `key: value`, the fix, its commands, its notes.
    assert!(
        table.contains("FAIL doctor.signature.bdb-thread-died"),
        "{table}"
    );
    assert!(table.contains("lines: 4"), "{table}");
    assert!(table.contains("fix: Make sure no rpm"), "{table}");
    assert!(table.contains("$ rm -f /var/lib/rpm/__db.*"), "{table}");
    assert!(table.contains("note: upstream: https://"), "{table}");
    assert!(
        table.contains("KNOWN PROBLEMS: 0 passed, 0 warnings, 3 failed, 0 unknown"),
        "{table}"
    );
}

#[test]
fn explain_stdin_and_a_clean_log() {
    let run = |input: &str| {
        let out = output_with_stdin(
            hostready().args(["doctor", "-o", "json", "--explain", "-"]),
            input.as_bytes(),
        );
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code().unwrap(), json)
    };
    let (code, json) = run("ok\nError: database disk image is malformed\n");
    assert_eq!(code, 1);
    assert_eq!(json["source"], "stdin");
    assert_eq!(json["matches"][0]["id"], "sqlite-malformed");
    assert_eq!(json["matches"][0]["lines"], serde_json::json!([2]));
    let (code, json) = run("all fine\nnothing here\n");
    assert_eq!(code, 0, "no known problem: exit 0; {json:#}");
    assert_eq!(json["matches"], serde_json::json!([]));
    assert_eq!(json["ok"], true);
    assert_eq!(finding(&json, "doctor.signature")["status"], "pass");
}

#[test]
fn explain_of_a_missing_file_is_exit_2() {
    let out = hostready()
        .args(["doctor", "--explain", "/nonexistent/hostready-test.log"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}

#[test]
fn without_procfs_process_findings_are_unknown_and_exit_is_2() {
    let root = tempfile::tempdir().unwrap();
    let (code, json) = run_json(
        hostready()
            .args(["doctor", "-o", "json", "--proc", "none", "--root"])
            .arg(root.path()),
    );
    assert_eq!(code, 2, "{json:#}");
    assert!(json["no_proc"].as_str().unwrap().contains("--proc none"));
    assert_eq!(json["ok"], true, "nothing found to need attention");
    assert_eq!(json["host"]["proc"], Value::Null);
    assert_eq!(json["summary"]["unknown"], 3, "{json:#}");
    for id in ["doctor.pileup", "doctor.locks", "doctor.memory"] {
        assert_eq!(finding(&json, id)["status"], "unknown");
    }
    assert_eq!(finding(&json, "doctor.pkgdb")["status"], "pass");
    assert_json_shape(&json);
}

#[test]
fn healthy_fake_procfs_is_exit_0() {
    let root = tempfile::tempdir().unwrap();
    let proc = FakeProc::new();
    proc.process(1, 0, "systemd", 'S', &["/sbin/init"], 100);
    for pid in 100..105 {
        proc.process(pid, 1, "bash", 'S', &["-bash"], 500);
    }
    let (code, json) = run_json(&mut doctor_on(root.path(), proc.path(), &["-o", "json"]));
    assert_eq!(code, 0, "{json:#}");
    assert_eq!(json["ok"], true);
    assert_eq!(json["host"]["proc"], proc.path().display().to_string());
    assert_eq!(json["processes"], 6);
    assert_eq!(json["no_proc"], Value::Null);
    assert_eq!(json["pileups"], serde_json::json!([]));
    let pile = finding(&json, "doctor.pileup");
    assert_eq!(pile["status"], "pass");
    assert!(
        pile["message"].as_str().unwrap().contains("5 × -bash"),
        "{pile:#}"
    );
    let mem = finding(&json, "doctor.memory");
    assert_eq!(mem["status"], "pass");
    assert_eq!(mem["evidence"]["total"], "16000000 kB", "{mem:#}");
    assert_eq!(mem["evidence"]["available"], "12000000 kB", "{mem:#}");
    assert_eq!(
        mem["evidence"]["psi some"], "avg10=0.00 avg60=0.00",
        "{mem:#}"
    );
    assert!(mem.get("remediation").is_none(), "{mem:#}");
    assert_json_shape(&json);

    // The table: check's shape, passing details hidden unless -v.
    let table = |verbose: bool| {
        let mut cmd = doctor_on(root.path(), proc.path(), &[]);
        if verbose {
            cmd.arg("-v");
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        String::from_utf8(out.stdout).unwrap()
    };
    let quiet = table(false);
    assert!(quiet.contains("(doctor)"), "{quiet}");
    assert!(quiet.contains("6 processes read"), "{quiet}");
    assert!(quiet.contains("PASS doctor.memory"), "{quiet}");
    assert!(!quiet.contains("total: 16000000 kB"), "{quiet}");
    assert!(quiet.contains("HEALTHY: "), "{quiet}");
    let verbose = table(true);
    assert!(verbose.contains("total: 16000000 kB"), "{verbose}");
}

#[test]
fn pile_in_a_fake_procfs_is_exit_1_with_its_source() {
    let root = tempfile::tempdir().unwrap();
    let proc = FakeProc::new();
    proc.process(1, 0, "systemd", 'S', &["/sbin/init"], 100);
    proc.process(
        40,
        1,
        "longhorn-manage",
        'S',
        &["longhorn-manager", "daemon"],
        900,
    );
    for pid in 100..124 {
        let state = if pid < 110 { 'D' } else { 'S' };
        proc.process(
            pid,
            40,
            "rpm",
            state,
            &["rpm", "-q", "iscsi-initiator-utils"],
            600 - u64::from(pid - 100),
        );
    }
    let (code, json) = run_json(&mut doctor_on(root.path(), proc.path(), &["-o", "json"]));
    assert_eq!(code, 1, "{json:#}");
    let f = finding(&json, "doctor.pileup.rpm");
    // 10 in D state (>= --pile-min-count): fail.
    assert_eq!(f["status"], "fail", "{f:#}");
    let msg = f["message"].as_str().unwrap();
    assert!(
        msg.starts_with("24 identical processes `rpm -q iscsi-initiator-utils`"),
        "{msg}"
    );
    assert!(
        msg.contains("init(1) → longhorn-manager(40) → rpm -q"),
        "{msg}"
    );
    assert_eq!(json["ok"], false);
    assert_eq!(json["summary"]["fail"], 1, "{json:#}");
    let e = &f["evidence"];
    assert_eq!(e["count"], "24", "{f:#}");
    assert_eq!(e["oldest"], "10m00s", "{f:#}");
    assert_eq!(e["in d state"], "10", "{f:#}");
    assert_eq!(e["states"], "D:10 S:14", "{f:#}");
    assert!(
        e["parent chain"]
            .as_str()
            .unwrap()
            .contains("init(1) → longhorn-manager(40) → rpm -q"),
        "{f:#}"
    );
    assert_eq!(f["remediation"]["commands"][0], "kill 100 101 102 103 104");
    let pile = &json["pileups"][0];
    assert_eq!(pile["count"], 24);
    assert_eq!(pile["states"]["D"], 10);
    assert_eq!(pile["oldest_age_secs"], 600);
    assert!(
        f["remediation"]["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().contains("#10019")),
        "{f:#}"
    );

    // The table shows the same finding in check's shape.
    let out = doctor_on(root.path(), proc.path(), &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("FAIL doctor.pileup.rpm"), "{table}");
    assert!(table.contains("count: 24"), "{table}");
    assert!(table.contains("fix: Stop the source first"), "{table}");
    assert!(table.contains("$ kill 100 101 102 103 104"), "{table}");
    assert!(table.contains("NEEDS ATTENTION"), "{table}");
    // Thresholds are flags: 25 members are needed now, so nothing is flagged.
    let (code, json) = run_json(&mut doctor_on(
        root.path(),
        proc.path(),
        &["-o", "json", "--pile-min-count", "25"],
    ));
    assert_eq!(code, 0, "{json:#}");
    assert_eq!(json["pileups"], serde_json::json!([]));
}

#[test]
fn pile_of_real_sleepers_is_found_with_its_parent() {
    let name = marker("hrclisleep");
    let parent = marker("hrcliparent");
    let group = Group::quiet(
        Command::new("/bin/bash")
            .arg0(&parent)
            .arg("-c")
            .arg(format!(
                "for i in $(seq 15); do (exec -a {name} sleep 1000) & done; wait"
            )),
    );
    assert!(
        wait_until(|| count_argv0(&name) == 15),
        "sleepers did not start"
    );
    let root = tempfile::tempdir().unwrap();
    let (code, json) = run_json(
        hostready()
            .args([
                "doctor",
                "-o",
                "json",
                // A pile this small is a warning, which exits 1 only with --strict (the
                // README's exit-code table; before, doctor exited 1 on any warning).
                "--strict",
                "--pile-min-count",
                "15",
                "--pile-min-age",
                "0",
                "--proc",
                "/proc",
                "--root",
            ])
            .arg(root.path()),
    );
    assert_eq!(code, 1, "a pile-up, --strict: exit 1");
    let pile = json["pileups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["command"].as_str().unwrap().starts_with(&name))
        .unwrap_or_else(|| panic!("no pile for {name}: {:#}", json["findings"]));
    assert_eq!(pile["count"], 15);
    assert_eq!(pile["states"]["S"], 15);
    assert_eq!(pile["exe"], "/usr/bin/sleep");
    assert!(pile["private_kb"].as_u64().unwrap() > 0);
    assert!(
        pile["parent_chain"]
            .as_str()
            .unwrap()
            .contains(&format!("{parent}({})", group.pid())),
        "{pile:#}"
    );
    drop(group);
    assert!(
        wait_until(|| count_argv0(&name) == 0),
        "sleepers left behind"
    );
}

/// Checks what every doctor report has: check's top level (schema, host, ok, summary that
/// counts the findings) and finding shape (id, profile, level, status, message, evidence as
/// an object of strings, remediation absent or with a summary), and the lists of piles and
/// locked files.
fn assert_json_shape(json: &Value) {
    assert_eq!(json["schema"], 1);
    assert!(json["host"]["root"].is_string(), "{json:#}");
    assert!(json["host"]["machine"].is_string(), "{json:#}");
    assert!(json["ok"].is_boolean());
    let findings = json["findings"].as_array().expect("findings");
    assert!(!findings.is_empty());
    let count = |s: &str| findings.iter().filter(|f| f["status"] == s).count();
    for s in ["pass", "warn", "fail", "unknown"] {
        assert_eq!(json["summary"][s], count(s), "{s}: {json:#}");
    }
    assert_eq!(json["ok"], count("fail") + count("warn") == 0);
    for f in findings {
        assert!(f["id"].as_str().unwrap().starts_with("doctor."), "{f:#}");
        assert_eq!(f["profile"], "doctor", "{f:#}");
        assert_eq!(f["level"], "required", "{f:#}");
        assert!(
            ["pass", "warn", "fail", "unknown"].contains(&f["status"].as_str().unwrap()),
            "{f:#}"
        );
        assert!(f["message"].is_string(), "{f:#}");
        let evidence = f["evidence"].as_object().expect("evidence is an object");
        for (k, v) in evidence {
            assert_eq!(k, &k.to_lowercase(), "{f:#}");
            assert!(v.is_string(), "{f:#}");
        }
        match f.get("remediation") {
            None => {}
            Some(r) => assert!(r["summary"].is_string(), "{f:#}"),
        }
    }
    assert!(json["pileups"].is_array());
    assert!(json["locked_files"].is_array());
    assert!(json["processes"].is_u64());
}
