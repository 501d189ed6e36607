//! `hostready doctor --explain` reads its input in bounded memory, however large: a 2 GiB log
//! (sparse, so the test costs no disk) with the signatures near its end, 2 GiB of NULs from
//! `/dev/zero` on stdin, and one endless line of text — each run inside a real memory cgroup
//! with the DaemonSet's limit (read from its manifest), peak RSS at most 4 MiB above the same command's on a
//! one-line log (what the binary itself costs, which grows with the code, not the input). And
//! a device named as FILE is refused without being opened.

// Tests build fake hosts and read fixtures on this machine directly.
#![allow(clippy::disallowed_methods)]

mod util;

use std::io::{Seek, SeekFrom, Write};
use std::process::Command;

use hostready_testkit::memcg::MemCgroup;
use serde_json::Value;
use util::hostready;

/// What reading a huge input may add to the peak RSS of reading a one-line one: the readers'
/// fixed buffers and the report (issue 9 §1). The unoptimised binary's own resident pages
/// (about 12-16 MiB, more as the code grows) are measured, not assumed.
const GROWTH_KIB: u64 = 4 * 1024;

/// The bound for `doctor --explain` in `cg`: its peak RSS on a one-line log, plus
/// [`GROWTH_KIB`].
fn bound_kib(cg: &MemCgroup, json: bool) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.log");
    std::fs::write(&path, "error: rpmdb: BDB0113 Thread/process 1/2 failed\n").unwrap();
    let mut args = vec!["doctor", "--explain", path.to_str().unwrap()];
    if json {
        args.extend(["-o", "json"]);
    }
    let m = cg.run(bin(), &args);
    assert_eq!(m.exit_code, Some(1), "the one-line log has a known problem");
    m.max_rss_kib + GROWTH_KIB
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_hostready")
}

fn json_of(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: no JSON; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn matched<'a>(json: &'a Value, id: &str) -> &'a Value {
    json["matches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id)
        .unwrap_or_else(|| panic!("no match {id}: {json:#}"))
}

#[test]
fn a_2_gib_log_is_streamed_in_bounded_memory_and_matches_near_its_end_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.log");
    let mut f = std::fs::File::create(&path).unwrap();
    // Line 1 is a signature; then a hole of NULs (a sparse file: no disk used) ends line 2;
    // then 1,000 short lines and two signatures at the very end.
    writeln!(f, "error: rpmdb: BDB0113 Thread/process 1/2 failed").unwrap();
    f.seek(SeekFrom::Start(2 << 30)).unwrap();
    writeln!(f).unwrap();
    for i in 0..1000 {
        writeln!(
            f,
            "time=\"2024-12-18T09:00:00Z\" level=info msg=\"cycle {i}\""
        )
        .unwrap();
    }
    writeln!(
        f,
        "error: rpmdbOpen: sqlite failure: database disk image is malformed"
    )
    .unwrap();
    writeln!(f, "error: rpmdb: BDB0113 Thread/process 3/4 failed").unwrap();
    drop(f);
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size > 2 << 30, "{size}");

    let cg = MemCgroup::new(hostready_testkit::memcg::daemonset_limit());
    // The bound, on the output people read (the default table).
    let bound = bound_kib(&cg, false);
    let t = cg.run(bin(), &["doctor", "--explain", path.to_str().unwrap()]);
    assert_eq!(
        t.oom_kills,
        0,
        "OOM-killed under {} bytes",
        hostready_testkit::memcg::daemonset_limit()
    );
    assert_eq!(t.exit_code, Some(1), "known problems: exit 1");
    let table = String::from_utf8_lossy(&t.output.stdout);
    assert!(table.contains("1004 lines, "), "{table}");
    assert!(table.contains("lines: 1, 1004\n"), "{table}");
    assert!(
        table.contains("FAIL doctor.signature.sqlite-malformed"),
        "{table}"
    );
    assert!(
        t.max_rss_kib <= bound,
        "peak RSS {:.1} MiB over a 2 GiB log (bound {:.1} MiB: a one-line log's + 4)",
        t.max_rss_mib(),
        bound as f64 / 1024.0
    );
    eprintln!(
        "2 GiB sparse log, table: peak RSS {:.1} MiB",
        t.max_rss_mib()
    );

    // The details, from the JSON report. (Its serialiser's code adds about 1 MiB of resident
    // pages to the unoptimised test binary; the heap stays under 1 MiB either way.)
    let m = cg.run(
        bin(),
        &["doctor", "-o", "json", "--explain", path.to_str().unwrap()],
    );
    assert_eq!(
        m.oom_kills,
        0,
        "OOM-killed under {} bytes",
        hostready_testkit::memcg::daemonset_limit()
    );
    assert_eq!(m.exit_code, Some(1), "known problems: exit 1");
    let json = json_of(&m.output);
    assert_eq!(json["bytes_read"], size, "{json:#}");
    assert_eq!(json["lines_read"], 1004);
    assert_eq!(
        matched(&json, "bdb-thread-died")["lines"],
        serde_json::json!([1, 1004])
    );
    assert_eq!(matched(&json, "bdb-thread-died")["count"], 2);
    assert_eq!(
        matched(&json, "sqlite-malformed")["lines"],
        serde_json::json!([1003])
    );
    assert!(
        json["nul_skipped"].as_u64().unwrap() > (2 << 30) - (64 << 10),
        "{json:#}"
    );
    let bound = bound_kib(&cg, true);
    assert!(
        m.max_rss_kib <= bound,
        "peak RSS {:.1} MiB over a 2 GiB log, JSON (bound {:.1} MiB: a one-line log's + 4)",
        m.max_rss_mib(),
        bound as f64 / 1024.0
    );
    eprintln!(
        "2 GiB sparse log, JSON: peak RSS {:.1} MiB",
        m.max_rss_mib()
    );
}

#[test]
fn two_gib_of_nuls_on_stdin_are_one_endless_line_read_in_bounded_memory() {
    // `head` bounds /dev/zero (which never ends) so the test ends; `timeout` bounds the run
    // should reading ever stop making progress. Both are killed with the cgroup if left.
    let cg = MemCgroup::new(hostready_testkit::memcg::daemonset_limit());
    let bound = bound_kib(&cg, false);
    let script = format!(
        "head -c 2G /dev/zero | timeout -s KILL 300 {} doctor --explain -",
        bin()
    );
    let m = cg.run("/bin/sh", &["-c", &script]);
    assert_eq!(m.oom_kills, 0);
    assert_eq!(
        m.exit_code,
        Some(0),
        "{}",
        String::from_utf8_lossy(&m.output.stderr)
    );
    let table = String::from_utf8_lossy(&m.output.stdout);
    assert!(
        table.starts_with("log stdin  1 lines, 2147483648 bytes read"),
        "{table}"
    );
    assert!(table.contains("NO KNOWN PROBLEM"), "{table}");
    assert!(
        m.max_rss_kib <= bound,
        "peak RSS {:.1} MiB over 2 GiB of NULs (bound {:.1} MiB: a one-line log's + 4)",
        m.max_rss_mib(),
        bound as f64 / 1024.0
    );
    eprintln!("2 GiB of /dev/zero: peak RSS {:.1} MiB", m.max_rss_mib());
}

#[test]
fn an_endless_line_of_text_is_matched_in_overlapping_pieces_in_bounded_memory() {
    // 48 MiB of `y` with a signature in the middle of it, and no newline at all: a line
    // hundreds of times longer than MAX_LINE, matched piece by piece. (Text, unlike NULs, is
    // matched byte by byte, and the test binary is unoptimised: hence the smaller size.)
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one-line.log");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let ys = vec![b'y'; 1 << 20];
    for i in 0..48 {
        f.write_all(&ys).unwrap();
        if i == 30 {
            // Straddles a 64 KiB piece boundary unless the pieces overlap.
            f.write_all(&vec![b'y'; 65536 - 10]).unwrap();
            f.write_all(b" database is locked ").unwrap();
        }
    }
    drop(f);
    let cg = MemCgroup::new(hostready_testkit::memcg::daemonset_limit());
    let bound = bound_kib(&cg, false);
    let m = cg.run(bin(), &["doctor", "--explain", path.to_str().unwrap()]);
    assert_eq!(m.oom_kills, 0);
    assert_eq!(
        m.exit_code,
        Some(1),
        "{}",
        String::from_utf8_lossy(&m.output.stderr)
    );
    let table = String::from_utf8_lossy(&m.output.stdout);
    assert!(table.contains("  1 lines, "), "{table}");
    assert!(
        table.contains("note: 1 line(s) longer than 64 KiB were matched in overlapping pieces"),
        "{table}"
    );
    assert!(
        table.contains("FAIL doctor.signature.sqlite-locked"),
        "{table}"
    );
    assert!(table.contains(" lines: 1\n"), "{table}");
    assert!(
        table.contains("first match: line 1: …yyyyyyyy") && table.contains("y database is locked"),
        "{table}"
    );
    assert!(
        table.contains("long lines: 1 line(s) longer than 64 KiB were matched in pieces of 64 KiB"),
        "{table}"
    );
    assert!(
        m.max_rss_kib <= bound,
        "peak RSS {:.1} MiB over one 48 MiB line (bound {:.1} MiB: a one-line log's + 4)",
        m.max_rss_mib(),
        bound as f64 / 1024.0
    );
    eprintln!("48 MiB line, table: peak RSS {:.1} MiB", m.max_rss_mib());
}

#[test]
fn a_device_named_as_the_log_is_refused_unopened() {
    // strace shows every open: the device's path may only be opened with O_PATH (which runs
    // no driver code), never for reading.
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace");
    let out = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=open,openat,openat2", "-o"])
        .arg(&trace)
        .arg(bin())
        .args(["doctor", "--explain", "/dev/zero"])
        .output()
        .expect("strace is installed (scripts/setup)");
    assert_eq!(out.status.code(), Some(2), "refused: exit 2");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/dev/zero is a character device, not a log"),
        "{err}"
    );
    assert!(err.contains("--explain - < /dev/zero"), "{err}");
    let trace = std::fs::read_to_string(&trace).unwrap();
    let opens: Vec<&str> = trace
        .lines()
        .filter(|l| l.contains("\"/dev/zero\""))
        .collect();
    assert!(
        !opens.is_empty(),
        "the trace saw no open of /dev/zero at all:\n{trace}"
    );
    for l in opens {
        assert!(l.contains("O_PATH"), "opened for more than O_PATH: {l}");
    }
}

#[test]
fn a_fifo_log_and_stdin_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    rustix_mkfifo(&fifo);
    let child = hostready()
        .args(["doctor", "-o", "json", "--explain"])
        .arg(&fifo)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Opening the FIFO for writing waits for the reader: hostready has opened it.
    std::fs::write(&fifo, "E: Could not get lock /var/lib/dpkg/lock-frontend\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        matched(&json_of(&out), "dpkg-lock")["lines"],
        serde_json::json!([1])
    );
}

fn rustix_mkfifo(path: &std::path::Path) {
    let st = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(st.success());
}
