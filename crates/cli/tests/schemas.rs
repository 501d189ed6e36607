//! Every data output of the real `hostready` binary validates against its JSON Schema in
//! `docs/schemas/` (2020-12, strict), on real inputs: this machine's root and procfs, the
//! debootstrap Debian root, the rpm fixture databases (SQLite, Berkeley DB, NDB) read in place
//! through a read-only bind mount, a fake broken root, logs for `doctor --explain`, custom
//! profile files, and for `cluster` a real kube-apiserver (`scripts/kube-testenv`) that
//! `hostready agent --once` published to, and a loopback server answering as one does.
//! YAML output is checked against the same schema (same shape). A `check` report is also held
//! to what a schema cannot say (`report_errors`: by_profile ids name findings, summaries and
//! exit codes agree with the findings). And a wrong document is rejected, so the validation
//! can fail.
//!
//! The schemas are hand-written (no derives on the output types: see docs/schemas.md); what
//! keeps them true is this test.

// Tests build fake hosts and read fixtures on this machine directly, not a host's root.
#![allow(clippy::disallowed_methods)]

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use hostready_testkit::kube_testenv::KubeTestenv;
use hostready_testkit::process::output_with_stdin;

use serde_json::{Value, json};
use util::hostready;
use util::schema::{SCHEMAS, assert_valid, errors, read};

mod util;

const DEBROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.cache/debroot/bookworm");
const RPMDB: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/rpmdb"
);

/// Runs `hostready args... --output format` and returns the exit code and the document.
fn run(args: &[&str], format: &str) -> (i32, Value) {
    let out = hostready()
        .args(args)
        .args(["--output", format])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let code = out.status.code().unwrap();
    let doc = match format {
        "json" => serde_json::from_slice(&out.stdout).map_err(|e| e.to_string()),
        _ => serde_yaml_ng::from_slice(&out.stdout).map_err(|e| e.to_string()),
    };
    let doc = doc.unwrap_or_else(|e| {
        panic!(
            "{args:?}: {e}: no {format} document (exit {code}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, doc)
}

/// Runs `hostready args...` with `-o json` and returns the exit code and document; then the
/// same with `-o yaml`, whose document must have the same shape.
fn outputs(args: &[&str]) -> (i32, Value) {
    let (code, doc) = run(args, "json");
    let (ycode, ydoc) = run(args, "yaml");
    assert_eq!(ycode, code, "{args:?}: yaml exit code");
    (code, doc_with_yaml(doc, ydoc, args))
}

/// Checks that YAML says what JSON says; the documents differ only when a run's facts changed
/// between the two (process counts and ages on a live host), so only the shape is compared.
fn doc_with_yaml(doc: Value, ydoc: Value, args: &[&str]) -> Value {
    fn shape(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
            }
            Value::Array(a) => Value::Array(a.iter().take(1).map(shape).collect()),
            Value::Number(_) => json!(0),
            Value::String(_) => json!(""),
            other => other.clone(),
        }
    }
    if args.contains(&"doctor") && !args.contains(&"--explain") {
        assert_eq!(doc["schema"], ydoc["schema"], "{args:?}");
    } else {
        assert_eq!(shape(&doc), shape(&ydoc), "{args:?}: yaml and json differ");
    }
    doc
}

/// Validates the JSON and YAML outputs of `args` against `name`, expecting exit `codes`; a
/// `check` report must also be consistent as [`report_errors`] says.
fn check_output(name: &str, args: &[impl AsRef<str>], codes: &[i32]) -> Value {
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    let args = args.as_slice();
    let (code, doc) = outputs(args);
    assert!(codes.contains(&code), "{args:?}: exit {code}\n{doc:#}");
    assert_valid(name, &doc, &format!("{args:?}"));
    if name == "check" {
        let errs = report_errors(&doc, Some(code));
        assert!(errs.is_empty(), "{args:?}:\n{}\n{doc:#}", errs.join("\n"));
    }
    doc
}

/// The exit code README's table gives a `check` whose findings are `findings`: 1 if a
/// required one failed, else 2 if a required one is unknown, else 0.
fn check_exit_code<'a>(findings: impl IntoIterator<Item = &'a Value>) -> i32 {
    let required: Vec<&str> = findings
        .into_iter()
        .filter(|f| f["level"] == "required")
        .map(|f| f["status"].as_str().unwrap_or(""))
        .collect();
    if required.contains(&"fail") {
        1
    } else if required.contains(&"unknown") {
        2
    } else {
        0
    }
}

/// What a `check` report promises beyond what JSON Schema can say (it cannot relate one value
/// to another): finding ids are unique; `by_profile` has one entry per name in `profiles`, in
/// order; each entry's ids name findings, and its `summary` and `ok` are those findings'; the
/// top-level `summary` and `ok` are all the findings'; and the exit code, when given, is the
/// one the findings call for. Returns one line per broken promise.
fn report_errors(doc: &Value, code: Option<i32>) -> Vec<String> {
    let mut errs = Vec::new();
    let empty = Vec::new();
    let findings = doc["findings"].as_array().unwrap_or(&empty);
    let by_id = |id: &Value| findings.iter().find(|f| f["id"] == *id);
    let summary = |fs: &[&Value]| {
        let n = |s: &str| fs.iter().filter(|f| f["status"] == s).count();
        json!({"pass": n("pass"), "warn": n("warn"), "fail": n("fail"), "unknown": n("unknown")})
    };
    for (i, f) in findings.iter().enumerate() {
        if findings[..i].iter().any(|g| g["id"] == f["id"]) {
            errs.push(format!("finding id {} appears twice", f["id"]));
        }
    }
    let all: Vec<&Value> = findings.iter().collect();
    if doc["summary"] != summary(&all) {
        errs.push(format!(
            "summary {} is not the findings' {}",
            doc["summary"],
            summary(&all)
        ));
    }
    let ok = |fs: &[&Value]| check_exit_code(fs.iter().copied()) == 0;
    if doc["ok"] != ok(&all) {
        errs.push(format!("ok is {} for these findings", doc["ok"]));
    }
    if let Some(code) = code.filter(|c| *c != check_exit_code(all.iter().copied())) {
        errs.push(format!(
            "exit {code}, but the findings call for {}",
            check_exit_code(all)
        ));
    }
    let groups = doc["by_profile"].as_array().unwrap_or(&empty);
    let names: Vec<&Value> = groups.iter().map(|g| &g["profile"]).collect();
    let profiles: Vec<&Value> = doc["profiles"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .collect();
    if names != profiles {
        errs.push(format!(
            "by_profile names {names:?}, profiles are {profiles:?}"
        ));
    }
    for g in groups {
        let mut mine = Vec::new();
        for id in g["findings"].as_array().unwrap_or(&empty) {
            match by_id(id) {
                Some(f) => mine.push(f),
                None => errs.push(format!(
                    "by_profile {}: {id} is no finding's id",
                    g["profile"]
                )),
            }
        }
        if g["summary"] != summary(&mine) {
            errs.push(format!(
                "by_profile {}: summary {} is not its findings' {}",
                g["profile"],
                g["summary"],
                summary(&mine)
            ));
        }
        if g["ok"] != ok(&mine) {
            errs.push(format!(
                "by_profile {}: ok is {} for its findings",
                g["profile"], g["ok"]
            ));
        }
    }
    // Every finding belongs to the profile that asked for it.
    for f in findings {
        let listed = groups.iter().any(|g| {
            g["profile"] == f["profile"]
                && g["findings"]
                    .as_array()
                    .is_some_and(|ids| ids.contains(&f["id"]))
        });
        if !listed {
            errs.push(format!(
                "finding {} is not listed under its profile {}",
                f["id"], f["profile"]
            ));
        }
    }
    errs
}

fn builtin_profiles() -> Vec<String> {
    let (_, doc) = outputs(&["profiles"]);
    doc.as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

/// Every output that reads a host root: `check` with each built-in profile, `doctor`, and
/// `pkg list|query|owner` (an installed and an absent package, an owned and an unowned path).
fn validate_root(root: &Path, proc: Option<&str>, installed: &str, owned: &str) {
    let root_s = root.to_str().unwrap();
    let mut host = vec!["--root", root_s];
    if let Some(p) = proc {
        host.extend(["--proc", p]);
    }
    let with =
        |sub: &[&str]| -> Vec<String> { sub.iter().chain(&host).map(|s| s.to_string()).collect() };
    let names = builtin_profiles();
    let mut all = vec!["check"];
    for n in &names {
        check_output("check", &with(&["check", "-p", n]), &[0, 1, 2]);
        all.extend(["-p", n]);
    }
    let report = check_output("check", &with(&all), &[0, 1, 2]);
    assert_eq!(report["profiles"].as_array().unwrap().len(), names.len());
    check_output("doctor", &with(&["doctor"]), &[0, 1, 2]);
    let list = check_output("pkg", &with(&["pkg", "list"]), &[0, 2]);
    assert_eq!(list["command"], "list");
    let q = check_output("pkg", &with(&["pkg", "query", installed]), &[0, 2]);
    assert!(
        ["installed", "unknown"].contains(&q["answer"].as_str().unwrap()),
        "{q:#}"
    );
    check_output(
        "pkg",
        &with(&["pkg", "query", "hostready-no-such-package"]),
        &[1, 2],
    );
    check_output("pkg", &with(&["pkg", "owner", owned]), &[0, 1, 2]);
    check_output(
        "pkg",
        &with(&["pkg", "owner", "/hostready/no/such/file"]),
        &[1, 2],
    );
}

#[test]
fn every_schema_is_a_strict_2020_12_schema() {
    fn walk(v: &Value, at: &str, file: &str) {
        match v {
            Value::Object(m) => {
                // An object schema that lists its properties (not a constraint added to one
                // through allOf, which has no type of its own).
                if m.contains_key("properties") && m.get("type") == Some(&json!("object")) {
                    assert_eq!(
                        m.get("additionalProperties"),
                        Some(&Value::Bool(false)),
                        "{file} {at}: an object with listed properties must be closed"
                    );
                    assert!(m.contains_key("required"), "{file} {at}: no required list");
                }
                for (k, v) in m {
                    walk(v, &format!("{at}/{k}"), file);
                }
            }
            Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    walk(v, &format!("{at}/{i}"), file);
                }
            }
            _ => {}
        }
    }
    let mut names: Vec<String> = std::fs::read_dir(SCHEMAS)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".schema.json"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "check.schema.json",
            "cluster.schema.json",
            "common.schema.json",
            "doctor-explain.schema.json",
            "doctor.schema.json",
            "pkg.schema.json",
            "profiles.schema.json"
        ]
    );
    for n in &names {
        let s = read(n);
        assert_eq!(
            s["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{n}"
        );
        jsonschema::meta::validate(&s).unwrap_or_else(|e| panic!("{n}: {e}"));
        walk(&s, "", n);
    }
}

/// A pile larger than doctor reads member by member (`EXACT_MEMORY_MAX`, 256) has its memory
/// sampled, and says so in `memory_source`: the schema knew only the exact sources, so a node
/// with a real incident-sized pile printed a document its own schema refused.
#[test]
fn a_sampled_pile_matches_the_doctor_schema() {
    use hostready_testkit::process::{Group, count_argv0, marker};
    use hostready_testkit::wait::wait_until;
    let name = marker("hrschemapile");
    let n = hostready_doctor::EXACT_MEMORY_MAX + 44;
    let _pile = Group::quiet(Command::new("/bin/bash").arg("-c").arg(format!(
        "for i in $(seq {n}); do (exec -a {name} sleep 1000) & done; wait"
    )));
    assert!(
        wait_until(|| count_argv0(&name) == n),
        "sleepers did not start"
    );
    let (_, doc) = run(&["doctor", "--pile-min-age", "0s"], "json");
    assert_valid("doctor", &doc, "doctor with a sampled pile");
    let pile = doc["pileups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p.to_string().contains(&name))
        .unwrap_or_else(|| panic!("no pile of {name}: {doc:#}"));
    assert!(
        pile["memory_source"]
            .as_str()
            .unwrap()
            .contains(&format!("of {n} members")),
        "{pile:#}"
    );
}

#[test]
fn outputs_on_this_machine_match_their_schemas() {
    validate_root(Path::new("/"), None, "bash", "/bin/sh");
}

#[test]
fn outputs_on_the_debootstrap_root_match_their_schemas() {
    let root = Path::new(DEBROOT);
    assert!(
        root.join("var/lib/dpkg/status").is_file(),
        "{DEBROOT} missing: build it with scripts/setup (debootstrap)"
    );
    validate_root(root, Some("none"), "bash", "/usr/bin/bash");
    // With the programs run (chrooted, as nobody): the evidence gains `verified with`.
    let doc = check_output(
        "check",
        &[
            "check",
            "--verify-runs",
            "-p",
            "longhorn-utils",
            "--root",
            DEBROOT,
            "--proc",
            "none",
        ],
        &[0, 1],
    );
    assert!(
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["evidence"]["verified with"].is_string()),
        "{doc:#}"
    );
}

/// A directory mounted read-only at `<root>/var/lib/rpm`, unmounted on drop: the fixture
/// database is read in place, never copied, and cannot be written.
struct RoBind {
    root: tempfile::TempDir,
    target: PathBuf,
}

impl RoBind {
    fn new(source: &Path) -> RoBind {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("var/lib/rpm");
        std::fs::create_dir_all(&target).unwrap();
        let mount = |args: &[&str]| {
            let st = Command::new("mount").args(args).status().unwrap();
            assert!(st.success(), "mount {args:?}");
        };
        mount(&["--bind", source.to_str().unwrap(), target.to_str().unwrap()]);
        let bind = RoBind { root, target };
        mount(&["-o", "remount,bind,ro", bind.target.to_str().unwrap()]);
        bind
    }
}

impl Drop for RoBind {
    fn drop(&mut self) {
        let st = Command::new("umount").arg(&self.target).status().unwrap();
        assert!(st.success(), "umount {}", self.target.display());
    }
}

#[test]
fn outputs_on_the_rpm_fixture_databases_match_their_schemas() {
    for (dir, kind) in [
        ("cbl-mariner-2.0-sqlite", "rpm-sqlite"),
        ("libuuid-bdb", "rpm-bdb"),
        ("sle15-bci-ndb", "rpm-ndb"),
    ] {
        let fixture = Path::new(RPMDB).join(dir);
        assert!(
            fixture.is_dir(),
            "{}: the fixtures are missing",
            fixture.display()
        );
        let bind = RoBind::new(&fixture);
        let installed = if dir == "libuuid-bdb" {
            "libuuid"
        } else {
            "bash"
        };
        validate_root(bind.root.path(), Some("none"), installed, "/usr/bin/bash");
        let (_, list) = outputs(&["pkg", "list", "--root", bind.root.path().to_str().unwrap()]);
        assert_eq!(list["databases"][0]["kind"], kind, "{dir}: {list:#}");
        assert_eq!(list["databases"][0]["status"], "ok", "{dir}: {list:#}");
    }
}

/// A root with everything wrong: an os-release of junk, a dpkg status with NUL bytes, an
/// rpmdb.sqlite that is not SQLite, a PATH directory that is a symlink loop, and a procfs
/// that is an empty plain directory.
fn broken_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    for d in ["etc", "var/lib/dpkg/info", "var/lib/rpm", "usr", "fakeproc"] {
        std::fs::create_dir_all(p.join(d)).unwrap();
    }
    std::fs::write(p.join("etc/os-release"), b"\x00\xff=\n===\nID\n").unwrap();
    std::fs::write(p.join("var/lib/dpkg/status"), b"Package: x\n\0\0\0\nStatus").unwrap();
    std::fs::write(p.join("var/lib/rpm/rpmdb.sqlite"), b"not a database at all").unwrap();
    std::os::unix::fs::symlink("bin", p.join("usr/bin")).unwrap();
    std::os::unix::fs::symlink("usr/bin", p.join("bin")).unwrap();
    dir
}

#[test]
fn outputs_on_a_broken_root_match_their_schemas() {
    let dir = broken_root();
    let fakeproc = dir.path().join("fakeproc");
    validate_root(dir.path(), Some("none"), "bash", "/usr/bin/bash");
    validate_root(
        dir.path(),
        Some(fakeproc.to_str().unwrap()),
        "bash",
        "/usr/bin/bash",
    );
    let root = dir.path().to_str().unwrap();
    let (_, list) = outputs(&["pkg", "list", "--root", root, "--proc", "none"]);
    let statuses: Vec<&str> = list["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["status"].as_str().unwrap())
        .collect();
    assert!(statuses.iter().all(|s| *s != "ok"), "{list:#}");
    let (_, doctor) = outputs(&["doctor", "--root", root, "--proc", "none"]);
    assert!(doctor["no_proc"].is_string(), "{doctor:#}");
}

#[test]
fn doctor_explain_outputs_match_their_schema() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("longhorn-manager.log");
    let mut text = String::from("level=info msg=\"starting\"\n");
    for i in 0..150 {
        text.push_str(&format!(
            "time=\"{i}\" level=error msg=\"error: rpmdb: BDB0113 Thread/process 4711 failed: \
             BDB1507 Thread died in Berkeley DB library; DB_RUNRECOVERY\"\n"
        ));
    }
    text.push_str(&"x".repeat(70 * 1024));
    text.push_str("\nerror: rpmdb open failed\n");
    std::fs::write(&log, &text).unwrap();
    let doc = check_output(
        "doctor-explain",
        &["doctor", "--explain", log.to_str().unwrap()],
        &[1],
    );
    assert!(!doc["matches"].as_array().unwrap().is_empty(), "{doc:#}");
    assert_eq!(doc["long_lines"], 1, "{doc:#}");
    let clean = dir.path().join("clean.log");
    std::fs::write(&clean, "all is well\n").unwrap();
    check_output(
        "doctor-explain",
        &["doctor", "--explain", clean.to_str().unwrap()],
        &[0],
    );
    // stdin
    let out = output_with_stdin(
        hostready().args(["doctor", "--explain", "-", "--output", "json"]),
        text.as_bytes(),
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["source"], "stdin");
    assert_valid("doctor-explain", &doc, "doctor --explain -");
}

#[test]
fn profiles_outputs_match_their_schema() {
    let all = check_output("profiles", &["profiles"], &[0]);
    for p in all.as_array().unwrap() {
        // 2 since the check key `nfs_default_version` became `nfs_defaultvers`.
        assert_eq!(p["schema"], 2, "{p:#}");
        check_output("profiles", &["profiles", p["name"].as_str().unwrap()], &[0]);
    }
    // A custom file with every kind of check the built-ins lack (a command, a custom id).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("site.yaml");
    std::fs::write(
        &file,
        "name: site\ndescription: site checks\ncondition: SiteReady\ninclude: [iscsi]\n\
         requirements:\n\
         - id: custom.ping\n  level: recommended\n  command: [/bin/true, --x]\n  timeout: 2s\n  \
         on_timeout: fail\n  env: {A: b}\n\
         - id: my-iscsiadm\n  executable: iscsiadm\n  packages: {debian: open-iscsi}\n",
    )
    .unwrap();
    let doc = check_output("profiles", &["profiles", file.to_str().unwrap()], &[0]);
    let kinds: Vec<String> = doc[0]["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["check"].as_object().unwrap().keys().cloned())
        .collect();
    assert!(kinds.contains(&"command".to_string()), "{doc:#}");
    check_output(
        "check",
        &["check", "-p", file.to_str().unwrap()],
        &[0, 1, 2],
    );
}

/// A command check of every way a run can end that `check` can bring about (a code, a signal,
/// a deadline with and without SIGKILL, a program that cannot start): each finding's `probe`
/// validates, with the outcome's own fields. (`busy` and `previous_run_alive` need a runner
/// at its cap or a run outliving its check, which one `check` never is: wrong_documents_are_rejected
/// covers their shape.)
#[test]
fn command_probes_of_every_outcome_match_their_schema() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("probes.yaml");
    std::fs::write(
        &file,
        "name: probes\nrequirements:\n\
         - {id: c.code, command: [/bin/false]}\n\
         - {id: c.signal, command: [/bin/sh, -c, 'kill -9 $$']}\n\
         - {id: c.deadline, command: [/bin/sleep, '30'], timeout: 200ms}\n\
         - {id: c.sigkill, command: [/bin/sh, -c, \"trap '' TERM; sleep 30\"], timeout: 200ms}\n\
         - {id: c.missing, command: [/hostready/no/such/program]}\n",
    )
    .unwrap();
    let doc = check_output("check", &["check", "-p", file.to_str().unwrap()], &[1]);
    let probe = |id: &str| {
        let f = doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == id)
            .unwrap_or_else(|| panic!("no {id} in {doc:#}"));
        assert_eq!(f["kind"], "command", "{f:#}");
        let mut p = f["probe"].clone();
        assert!(
            p["command"].is_string() && p["deadline"].is_string(),
            "{f:#}"
        );
        p.as_object_mut().unwrap().remove("command");
        p.as_object_mut().unwrap().remove("deadline");
        p
    };
    assert_eq!(
        probe("c.code"),
        json!({"outcome": "exited", "exit_code": 1})
    );
    assert_eq!(probe("c.signal"), json!({"outcome": "exited", "signal": 9}));
    assert_eq!(
        probe("c.deadline"),
        json!({"outcome": "timed_out", "sigkill": false, "still_alive": false})
    );
    assert_eq!(
        probe("c.sigkill"),
        json!({"outcome": "timed_out", "sigkill": true, "still_alive": false})
    );
    let missing = probe("c.missing");
    assert_eq!(missing["outcome"], "not_started", "{missing:#}");
    assert!(missing["why"].as_str().is_some_and(|w| !w.is_empty()));
}

/// YAML says exactly what JSON says, each check a one-key map (`check: {executable: iscsiadm}`),
/// never a YAML tag (`check: !executable iscsiadm`, serde_yaml_ng's default for an enum).
#[test]
fn profiles_yaml_has_the_shape_of_its_json() {
    let (_, doc) = run(&["profiles"], "json");
    let (_, ydoc) = run(&["profiles"], "yaml");
    assert_eq!(ydoc, doc);
    let out = hostready()
        .args(["profiles", "-o", "yaml"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.lines()
            .all(|l| !l.trim_start().starts_with("check: !")),
        "a check written as a YAML tag:\n{text}"
    );
}

/// Serves one request on `listener` with a NodeList as kube-apiserver writes it: a node with
/// two conditions the agent owns (by managedFields) and the kubelet's Ready, and a node with
/// none.
fn serve_node_list(listener: TcpListener) {
    let (mut s, _): (TcpStream, _) = listener.accept().unwrap();
    let mut head = [0u8; 8192];
    let _ = std::io::Read::read(&mut s, &mut head);
    let cond = |t: &str, status: &str, reason: &str| {
        json!({"type": t, "status": status, "reason": reason, "message": format!("{t} {status}"),
               "lastTransitionTime": "2026-12-01T10:00:00Z", "lastHeartbeatTime": "2026-12-01T11:00:00Z"})
    };
    let owned = json!({"f:status": {"f:conditions": {
        "k:{\"type\":\"LonghornReady\"}": {".": {}, "f:status": {}},
        "k:{\"type\":\"IscsiReady\"}": {".": {}, "f:status": {}}}}});
    let body = json!({
        "kind": "NodeList", "apiVersion": "v1", "metadata": {"resourceVersion": "42"},
        "items": [
            {"metadata": {"name": "node-a", "managedFields": [
                {"manager": "hostready-agent", "operation": "Apply", "apiVersion": "v1",
                 "fieldsType": "FieldsV1", "fieldsV1": owned, "subresource": "status"}]},
             "status": {"conditions": [
                cond("LonghornReady", "False", "ExecutableMissing"),
                cond("IscsiReady", "True", "AllRequirementsMet"),
                cond("Ready", "True", "KubeletReady")]}},
            {"metadata": {"name": "node-b"}, "status": {"conditions": [cond("Ready", "True", "KubeletReady")]}}
        ]
    })
    .to_string();
    let _ = write!(
        s,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

#[test]
fn cluster_output_matches_its_schema() {
    let run = |format: &str| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || serve_node_list(listener));
        let dir = tempfile::tempdir().unwrap();
        let kc = dir.path().join("kubeconfig");
        std::fs::write(
            &kc,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://{addr}\n\
                 users:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n\
                 current-context: x\n"
            ),
        )
        .unwrap();
        let out = hostready()
            .args([
                "cluster",
                "--request-timeout",
                "20s",
                "--output",
                format,
                "--kubeconfig",
            ])
            .arg(&kc)
            .output()
            .unwrap();
        server.join().unwrap();
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let doc: Value = serde_json::from_slice(&run("json")).unwrap();
    assert_eq!(
        doc["types"],
        json!(["IscsiReady", "LonghornReady"]),
        "{doc:#}"
    );
    assert_valid("cluster", &doc, "cluster -o json");
    let ydoc: Value = serde_yaml_ng::from_slice(&run("yaml")).unwrap();
    // The two runs are a moment apart: a stale node's age may differ by a second.
    let without_ages = |d: &Value| {
        let mut d = d.clone();
        for s in d["audit"]["stale"].as_array_mut().unwrap() {
            s["age_seconds"] = Value::Null;
        }
        d
    };
    assert_eq!(without_ages(&ydoc), without_ages(&doc));
    assert_valid("cluster", &ydoc, "cluster -o yaml");
}

#[test]
fn wrong_documents_are_rejected() {
    let (_, good) = outputs(&["check", "--root", DEBROOT, "--proc", "none", "-p", "iscsi"]);
    assert_valid("check", &good, "the unchanged report");
    let rejected = |what: &str, change: &dyn Fn(&mut Value)| {
        let mut bad = good.clone();
        change(&mut bad);
        let errs = errors("check", &bad);
        assert!(!errs.is_empty(), "{what}: accepted:\n{bad:#}");
    };
    rejected("a status word no output uses", &|d| {
        d["findings"][0]["status"] = json!("ok")
    });
    rejected("a field the schema does not know", &|d| {
        d["findings"][0]["severity"] = json!("high")
    });
    rejected("no schema version", &|d| {
        d.as_object_mut().unwrap().remove("schema");
    });
    rejected("another schema version", &|d| d["schema"] = json!(2));
    rejected("a level word no profile has", &|d| {
        d["findings"][0]["level"] = json!("optional")
    });
    rejected("evidence that is not text", &|d| {
        d["findings"][0]["evidence"]["count"] = json!(3)
    });
    rejected("a count below zero", &|d| d["summary"]["fail"] = json!(-1));
    rejected("an immutable OS spelled as Rust's Debug", &|d| {
        d["host"]["immutable"] = json!("FedoraCoreos")
    });
    rejected(
        "a family of null (it is `unknown` without os-release)",
        &|d| d["host"]["family"] = Value::Null,
    );

    // What a finding is about: `kind`, and `subject` exactly where the kind names one.
    let at = |kind: &str| {
        good["findings"]
            .as_array()
            .unwrap()
            .iter()
            .position(|f| f["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} finding in {good:#}"))
    };
    let (exe, kmod) = (at("executable"), at("kernel_module"));
    assert_eq!(good["findings"][exe]["subject"], "iscsiadm", "{good:#}");
    let accepted = |what: &str, change: &dyn Fn(&mut Value)| {
        let mut doc = good.clone();
        change(&mut doc);
        assert_valid("check", &doc, what);
    };
    rejected("a finding with a kind no profile key has", &|d| {
        d["findings"][exe]["kind"] = json!("package")
    });
    rejected("a finding without a kind", &|d| {
        d["findings"][exe].as_object_mut().unwrap().remove("kind");
    });
    rejected("an executable finding without its subject", &|d| {
        d["findings"][exe]
            .as_object_mut()
            .unwrap()
            .remove("subject");
    });
    rejected("an empty subject", &|d| {
        d["findings"][exe]["subject"] = json!("")
    });
    rejected("a subject on a kind that names none", &|d| {
        d["findings"][exe]["kind"] = json!("cpu_flags")
    });
    accepted("a kind that names nothing, without a subject", &|d| {
        d["findings"][exe]["kind"] = json!("cpu_flags");
        d["findings"][exe]
            .as_object_mut()
            .unwrap()
            .remove("subject");
    });
    rejected("a check finding that is a doctor diagnosis", &|d| {
        d["findings"][exe]["kind"] = json!("diagnosis");
        d["findings"][exe]
            .as_object_mut()
            .unwrap()
            .remove("subject");
    });
    rejected(
        "a kernel module not normalised (`-` is written `_`)",
        &|d| d["findings"][kmod]["subject"] = json!("iscsi-tcp"),
    );
    accepted("a huge page size in KiB", &|d| {
        d["findings"][kmod]["kind"] = json!("hugepages");
        d["findings"][kmod]["subject"] = json!("2048kib");
    });
    rejected("a huge page size without its unit", &|d| {
        d["findings"][kmod]["kind"] = json!("hugepages");
        d["findings"][kmod]["subject"] = json!("2048");
    });
    rejected("a command subject that is not an absolute path", &|d| {
        d["findings"][exe]["kind"] = json!("command");
        d["findings"][exe]["subject"] = json!("disk-probe");
    });

    // How a started process ended: the fields beside `outcome` are the outcome's own.
    let probe = |fields: Value| {
        let mut p = json!({"command": "/usr/sbin/iscsiadm --version", "deadline": "5s"});
        p.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        move |d: &mut Value| d["findings"][exe]["probe"] = p.clone()
    };
    for ok in [
        json!({"outcome": "exited", "exit_code": 0}),
        json!({"outcome": "exited", "signal": 9}),
        json!({"outcome": "timed_out", "sigkill": true, "still_alive": false}),
        json!({"outcome": "previous_run_alive"}),
        json!({"outcome": "busy", "max_concurrent": 4}),
        json!({"outcome": "not_started", "why": "cannot start: ENOENT"}),
    ] {
        accepted(&format!("a probe {ok}"), &probe(ok.clone()));
    }
    for (what, bad) in [
        (
            "exited with sigkill",
            json!({"outcome": "exited", "exit_code": 0, "sigkill": true}),
        ),
        (
            "exited without a code or signal",
            json!({"outcome": "exited"}),
        ),
        (
            "exited with a code and a signal",
            json!({"outcome": "exited", "exit_code": 0, "signal": 9}),
        ),
        (
            "an exit code over 255",
            json!({"outcome": "exited", "exit_code": 256}),
        ),
        (
            "timed_out without still_alive",
            json!({"outcome": "timed_out", "sigkill": true}),
        ),
        (
            "timed_out with an exit code",
            json!({"outcome": "timed_out", "sigkill": false,
            "still_alive": false, "exit_code": 0}),
        ),
        (
            "previous_run_alive with a why",
            json!({"outcome": "previous_run_alive", "why": "x"}),
        ),
        ("busy without max_concurrent", json!({"outcome": "busy"})),
        ("not_started without why", json!({"outcome": "not_started"})),
        ("an outcome no probe has", json!({"outcome": "killed"})),
        (
            "a deadline humantime does not write",
            json!({"outcome": "exited", "exit_code": 0,
            "deadline": "5 seconds"}),
        ),
    ] {
        rejected(&format!("a probe {what}"), &probe(bad));
    }
    rejected("a probe on a kind that starts no process", &|d| {
        d["findings"][kmod]["probe"] = json!({"command": "/bin/true", "deadline": "5s",
            "outcome": "exited", "exit_code": 0})
    });

    // Per-profile grouping: its shape is the schema's, its ids are findings' (Rust-side:
    // JSON Schema cannot relate one value to another).
    assert_eq!(report_errors(&good, None), Vec::<String>::new());
    rejected("no by_profile", &|d| {
        d.as_object_mut().unwrap().remove("by_profile");
    });
    rejected(
        "a by_profile entry with a field the schema does not know",
        &|d| d["by_profile"][0]["reason"] = json!("x"),
    );
    rejected("a by_profile entry without its condition", &|d| {
        d["by_profile"][0]
            .as_object_mut()
            .unwrap()
            .remove("condition");
    });
    rejected(
        "a by_profile condition that is no Kubernetes condition type",
        &|d| d["by_profile"][0]["condition"] = json!("Iscsi Ready"),
    );
    rejected("a by_profile entry listing an id twice", &|d| {
        let id = d["findings"][0]["id"].clone();
        d["by_profile"][0]["findings"]
            .as_array_mut()
            .unwrap()
            .push(id);
    });
    let inconsistent = |what: &str, says: &str, change: &dyn Fn(&mut Value)| {
        let mut bad = good.clone();
        change(&mut bad);
        assert_valid("check", &bad, what);
        let errs = report_errors(&bad, None);
        assert!(
            errs.iter().any(|e| e.contains(says)),
            "{what}: not caught as {says:?} ({errs:?}):\n{bad:#}"
        );
    };
    inconsistent(
        "a by_profile entry naming an id not in findings",
        "is no finding's id",
        &|d| {
            d["by_profile"][0]["findings"]
                .as_array_mut()
                .unwrap()
                .push(json!("exe.no-such-finding"));
        },
    );
    inconsistent(
        "a finding listed under no profile",
        "is not listed under its profile",
        &|d| {
            let id = d["findings"][0]["id"].clone();
            d["by_profile"][0]["findings"]
                .as_array_mut()
                .unwrap()
                .retain(|i| *i != id);
        },
    );
    inconsistent(
        "a by_profile summary that is not its findings'",
        "summary",
        &|d| d["by_profile"][0]["summary"]["pass"] = json!(99),
    );
    inconsistent("a by_profile ok that is not its findings'", "ok is", &|d| {
        d["by_profile"][0]["ok"] = json!(!d["by_profile"][0]["ok"].as_bool().unwrap())
    });
    inconsistent(
        "a by_profile for a profile not checked",
        "by_profile names",
        &|d| d["by_profile"][0]["profile"] = json!("longhorn"),
    );
    inconsistent("a finding id twice", "appears twice", &|d| {
        let f = d["findings"][0].clone();
        d["findings"].as_array_mut().unwrap().push(f);
    });
    let code = check_exit_code(good["findings"].as_array().unwrap());
    for other in (0..3).filter(|c| *c != code) {
        assert!(
            !report_errors(&good, Some(other)).is_empty(),
            "exit {other} for findings that call for {code} not caught"
        );
    }

    let (_, list) = outputs(&["pkg", "list", "--root", DEBROOT]);
    assert_valid("pkg", &list, "pkg list");
    let mut bad = list.clone();
    bad["subject"] = json!("bash");
    assert!(
        !errors("pkg", &bad).is_empty(),
        "list with a subject accepted"
    );
    let mut bad = list.clone();
    bad["answer"] = json!("installed");
    assert!(
        !errors("pkg", &bad).is_empty(),
        "list answering installed accepted"
    );
    let mut bad = list;
    bad["databases"][0]["status"] = json!("corrupt");
    assert!(
        !errors("pkg", &bad).is_empty(),
        "a corrupt database without its error accepted"
    );

    let (_, doctor) = outputs(&["doctor", "--root", DEBROOT, "--proc", "none"]);
    assert_valid("doctor", &doctor, "doctor");
    let mut bad = doctor.clone();
    bad["findings"][0]["profile"] = json!("longhorn");
    assert!(
        !errors("doctor", &bad).is_empty(),
        "a doctor finding of another profile accepted"
    );
    let mut bad = doctor.clone();
    bad["findings"][0]["kind"] = json!("executable");
    bad["findings"][0]["subject"] = json!("rpm");
    assert!(
        !errors("doctor", &bad).is_empty(),
        "a doctor finding that is not a diagnosis accepted"
    );
    let mut bad = doctor;
    bad["locked_files"] = json!([{"dev": [8, 1, 3], "ino": 1, "path": null, "holders": [],
        "blocked": [], "openers": [], "sharing": []}]);
    assert!(
        !errors("doctor", &bad).is_empty(),
        "a device of three numbers accepted"
    );

    let (_, profiles) = run(&["profiles", "iscsi"], "json");
    assert_valid("profiles", &profiles, "profiles iscsi");
    let mut bad = profiles.clone();
    bad[0]["requirements"][0]["check"]["kernel_module"] = json!({"name": "x", "config": null});
    assert!(
        !errors("profiles", &bad).is_empty(),
        "a check of two kinds accepted"
    );
    let mut bad = profiles.clone();
    bad[0]["schema"] = json!(1);
    assert!(
        !errors("profiles", &bad).is_empty(),
        "a profile of schema 1 (before the nfs_defaultvers rename) accepted"
    );
    let (_, nfs) = run(&["profiles", "nfs-client"], "json");
    let requirements = nfs[0]["requirements"].as_array().unwrap();
    let i = requirements
        .iter()
        .position(|r| r["check"].get("nfs_defaultvers").is_some())
        .unwrap_or_else(|| panic!("no nfs_defaultvers check in {nfs:#}"));
    let mut bad = nfs;
    let check = bad[0]["requirements"][i]["check"].as_object_mut().unwrap();
    let allowed = check.remove("nfs_defaultvers").unwrap();
    check.insert("nfs_default_version".into(), allowed);
    assert!(
        !errors("profiles", &bad).is_empty(),
        "the check key as schema 1 spelled it accepted"
    );
    let mut bad = profiles;
    bad[0]["requirements"] = json!([{"id": "c", "level": "required", "description": null,
        "packages": {}, "check": {"command": {"argv": ["/bin/true"], "timeout": "5 seconds",
        "on_timeout": "unknown", "env": {}}}}]);
    assert!(
        !errors("profiles", &bad).is_empty(),
        "a command timeout humantime does not write accepted"
    );

    let mut bad = json!({"schema": 1, "types": ["A"], "nodes": [{"name": "n", "conditions": {"A": {
        "status": "True", "reason": "r", "message": "m",
        "lastTransitionTime": "yesterday", "lastHeartbeatTime": null}}}],
        "host_processes": [], "audit": empty_audit()});
    assert!(
        !errors("cluster", &bad).is_empty(),
        "a time that is not RFC 3339 accepted"
    );
    bad["nodes"][0]["conditions"]["A"]["lastTransitionTime"] = json!("2026-12-01T10:00:00Z");
    assert_valid("cluster", &bad, "the corrected document");
}

/// The `audit` of a cluster view that found nothing and read everything.
fn empty_audit() -> Value {
    json!({"stale_after": "10m", "scope": {"daemonset": null, "node_selector": {}, "note": "all nodes"},
           "stale": [], "namespace": null, "containers": 0, "memory_limits": [],
           "limit_range_defaults": {}, "known_issues": {"detected": [], "affecting": []},
           "coredns": null, "hugepages": [], "unreadable": []})
}

#[test]
fn cluster_audit_fields_are_strict() {
    let doc = |audit: Value| json!({"schema": 1, "types": [], "nodes": [], "host_processes": [], "audit": audit});
    assert_valid("cluster", &doc(empty_audit()), "an empty audit");
    let mut a = empty_audit();
    a["stale"] = json!([{"node": "n", "why": "asleep", "since": null, "age_seconds": null}]);
    assert!(
        !errors("cluster", &doc(a)).is_empty(),
        "an unknown stale reason accepted"
    );
    let mut a = empty_audit();
    a["memory_limits"] = json!([{"namespace": "x", "owner_kind": "Pod", "owner_name": "p",
        "container": "c", "init": false, "pods": 1, "privileged": false, "host_pid": false,
        "host_path": false, "limit_range_default": null, "attention": true, "fix": "f", "extra": 1}]);
    assert!(
        !errors("cluster", &doc(a)).is_empty(),
        "an unknown field accepted"
    );
    let mut a = empty_audit();
    a["stale_after"] = json!("10 minutes");
    assert!(
        !errors("cluster", &doc(a)).is_empty(),
        "a duration humantime does not write accepted"
    );
}

/// Creates a Node named `name` (as a kubelet registering would, without its conditions).
fn create_node(kubeconfig: &Path, name: &str) {
    use k8s_openapi::api::core::v1::Node;
    use kube::api::{Api, PostParams};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let kc = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
        let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap();
        let nodes: Api<Node> = Api::all(kube::Client::try_from(cfg).unwrap());
        let node: Node = serde_json::from_value(
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}),
        )
        .unwrap();
        nodes.create(&PostParams::default(), &node).await.unwrap();
    });
}

#[test]
fn cluster_output_from_a_real_api_server_matches_its_schema() {
    let env = KubeTestenv::up();
    let kc = env.kubeconfig.to_str().unwrap();
    for node in ["schema-a", "schema-b"] {
        create_node(&env.kubeconfig, node);
    }
    // The agent publishes on schema-a only. The debootstrap root has every executable the
    // built-in iscsi profile names, and without procfs the rest is unknown, so a site profile
    // publishing IscsiReady adds one no root has: that condition is False (`cluster` exits 1).
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("iscsi-site.yaml");
    std::fs::write(
        &site,
        "name: iscsi-site\ncondition: IscsiReady\ninclude: [iscsi]\nrequirements:\n\
         - executable: hostready-schema-test-absent\n",
    )
    .unwrap();
    let out = hostready()
        .args([
            "agent",
            "--once",
            "--metrics-addr",
            "none",
            "--node-name",
            "schema-a",
            // Only the readiness conditions: the watch's HostProcessesHealthy has its own test.
            "--watch-interval",
            "off",
        ])
        .args([
            "-p",
            site.to_str().unwrap(),
            "-p",
            "nfs-client",
            "--proc",
            "none",
            "--kubeconfig",
            kc,
        ])
        .args(["--root", DEBROOT])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = check_output(
        "cluster",
        &["cluster", "--request-timeout", "20s", "--kubeconfig", kc],
        &[1],
    );
    assert_eq!(
        doc["types"],
        json!(["IscsiReady", "NfsClientReady"]),
        "{doc:#}"
    );
    let nodes = doc["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2, "{doc:#}");
    assert_eq!(nodes[1]["conditions"], json!({}), "{doc:#}");
}
