//! `/metrics` of a running agent, scraped for real, with every built-in profile enabled:
//!
//! - without `Accept` (curl, `promtool check metrics`) and with `text/plain`, Prometheus text
//!   0.0.4, which Prometheus's own linter (client_golang's promlint, what `promtool check
//!   metrics` runs; built by `scripts/go-tool promlint`) finds clean;
//! - with Prometheus's scrape `Accept`, OpenMetrics 1.0 ending in `# EOF`, the same series,
//!   which the parser Prometheus scrapes OpenMetrics with (`prometheus/model/textparse`, in
//!   the same tool) accepts;
//! - `hostready_build_info` and the standard `process_*` metrics are there under their names;
//! - the series count is the one docs/agent.md ("Series per node") derives, and within the
//!   bound it documents.
//!
//! The agent needs an API server: kube-testenv, started by common::KubeEnv.

// Tests build fake hosts and read fixtures on this machine directly, not a host's root.
#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::process::{Command, Stdio};

use hostready_testkit::process::output_with_stdin;
use std::time::Duration;

use common::*;

/// The bound docs/agent.md states for a node with every built-in profile enabled.
const DOCUMENTED_BOUND: usize = 608;

/// Prometheus 2.x/3.x's scrape `Accept` with its default scrape protocols.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";

/// GETs `path` with an optional `Accept`; returns the status, the `Content-Type` and the body.
fn get(addr: &str, path: &str, accept: Option<&str>) -> (u16, String, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let accept = accept
        .map(|a| format!("Accept: {a}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\n{accept}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let (head, body) = buf.split_once("\r\n\r\n").unwrap();
    let code = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let ctype = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    (code, ctype, body.to_string())
}

/// The series of an exposition: `name{labels}` -> value, comments left out.
fn series(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// The samples of a text 0.0.4 exposition that do not belong to the family of the `# TYPE`
/// line before them (its name, or for a histogram its `_bucket`, `_sum`, `_count`): Prometheus
/// takes those as untyped, and a dashboard's `rate()` on a counter finds nothing.
fn untyped_samples(text: &str) -> Vec<String> {
    let (mut family, mut kind) = (String::new(), String::new());
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (n, k) = rest.split_once(' ').unwrap();
            (family, kind) = (n.to_string(), k.to_string());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let name = &line[..line.find(['{', ' ']).unwrap()];
        let ok = name == family
            || (kind == "histogram"
                && ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|s| name.strip_prefix(family.as_str()) == Some(s)));
        if !ok {
            out.push(name.to_string());
        }
    }
    out
}

fn promlint(text: &str) -> (bool, String) {
    promlint_with(&[], text)
}

/// Runs tools/promlint with `args` on `text`: success and what it printed.
fn promlint_with(args: &[&str], text: &str) -> (bool, String) {
    let out = Command::new(format!("{WORKSPACE}/scripts/go-tool"))
        .arg("promlint")
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "scripts/go-tool promlint failed");
    let bin = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_string();
    let out = output_with_stdin(Command::new(bin).args(args), text.as_bytes());
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn promlint_finds_a_real_scrape_clean_and_the_series_stay_within_the_documented_bound() {
    // The linter first: it must catch what it is here to catch.
    let (ok, problems) =
        promlint("# HELP bad_bytes_total x\n# TYPE bad_bytes_total gauge\nbad_bytes_total 1\n");
    assert!(!ok && problems.contains("bad_bytes_total"), "{problems}");
    // OpenMetrics' counter naming served as text 0.0.4 (what /metrics did before): it parses
    // as an empty counter family and an untyped sample without help. Both checks catch it.
    let om_as_text = "# HELP hostready_x x\n# TYPE hostready_x counter\nhostready_x_total 1\n";
    let (ok, problems) = promlint(om_as_text);
    assert!(
        !ok && problems.contains("hostready_x_total: no help text"),
        "{problems}"
    );
    assert_eq!(untyped_samples(om_as_text), ["hostready_x_total"]);
    // Prometheus's OpenMetrics parser refuses an exposition without its `# EOF`.
    let (ok, problems) = promlint_with(&["-openmetrics"], om_as_text);
    assert!(!ok && problems.contains("# EOF"), "{problems}");

    let env = KubeEnv::start();
    let client = env.client();
    create_node_with_kubelet_conditions(&client, "node-m");
    let host = TestHost::debian_with_longhorn_packages();
    let profiles = hostready_checks::profile::builtin_names();
    let mut args = vec![
        "--node-name",
        "node-m",
        "--root",
        host.root.to_str().unwrap(),
        "--proc",
        host.proc.to_str().unwrap(),
        "--metrics-addr",
        "127.0.0.1:0",
    ];
    for p in &profiles {
        args.extend(["-p", p]);
    }
    let agent = Agent::start(&env.kubeconfig, &args);
    let addr = agent.metrics_addr();
    wait_for("/readyz 200", Duration::from_secs(60), || {
        (get(&addr, "/readyz", None).0 == 200).then_some(())
    });
    wait_for("the conditions published", Duration::from_secs(60), || {
        let text = get(&addr, "/metrics", None).2;
        text.contains("hostready_api_writes_total{op=\"apply_conditions\"}")
            .then_some(())
    });

    // Prometheus text by default and on request; promlint-clean.
    let (code, ctype, text) = get(&addr, "/metrics", None);
    assert_eq!(code, 200);
    assert_eq!(ctype, "text/plain; version=0.0.4; charset=utf-8");
    assert!(!text.contains("# EOF"), "{text}");
    let (ok, problems) = promlint(&text);
    assert!(ok, "promlint on a real scrape:\n{problems}\n---\n{text}");
    assert_eq!(untyped_samples(&text), Vec::<String>::new(), "{text}");
    assert_eq!(get(&addr, "/metrics", Some("text/plain")).1, ctype);

    // OpenMetrics for Prometheus's Accept: the same series.
    let (code, om_type, om) = get(&addr, "/metrics", Some(PROMETHEUS_ACCEPT));
    assert_eq!(code, 200);
    assert_eq!(
        om_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert!(
        om.contains("# TYPE hostready_check_cycles counter\n"),
        "{om}"
    );
    // Parsed by the parser Prometheus scrapes OpenMetrics with: valid, and every series seen.
    let (ok, parsed) = promlint_with(&["-openmetrics"], &om);
    assert!(
        ok,
        "Prometheus's OpenMetrics parser on a real scrape:\n{parsed}\n---\n{om}"
    );
    let (t, o) = (series(&text), series(&om));
    assert_eq!(parsed.trim(), o.len().to_string(), "series the parser saw");
    assert_eq!(
        t.keys().collect::<BTreeSet<_>>(),
        o.keys().collect::<BTreeSet<_>>(),
        "the two formats' series differ"
    );

    // Build info and the standard process metrics.
    let build = t
        .keys()
        .find(|k| k.starts_with("hostready_build_info{"))
        .expect("hostready_build_info");
    assert_eq!(t[build], "1");
    for label in ["version=\"", "revision=\"", "rustc=\""] {
        assert!(build.contains(label), "{build}");
    }
    assert!(build.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))));
    let process = [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ];
    for name in process {
        let v: f64 = t
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing"))
            .parse()
            .unwrap();
        assert!(v > 0.0, "{name} {v}");
    }
    let rss: f64 = t["process_resident_memory_bytes"].parse().unwrap();
    assert!(rss > 1e6 && rss < 256e6, "RSS {rss}");
    let start: f64 = t["process_start_time_seconds"].parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        start <= now + 1.0 && start > now - 600.0,
        "start {start}, now {now}"
    );
    assert!(
        !text.contains("hostready_process_"),
        "the old prefixed name is still there"
    );

    // The series, family by family, against docs/agent.md's accounting.
    let family = |prefix: &str| t.keys().filter(|k| k.starts_with(prefix)).count();
    let findings: BTreeSet<(String, String)> = t
        .keys()
        .filter(|k| k.starts_with("hostready_finding_status{"))
        .map(|k| {
            let label = |name: &str| {
                let at = k.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
                k[at..at + k[at..].find('"').unwrap()].to_string()
            };
            (label("id"), label("profile"))
        })
        .collect();
    // A requirement id shared by several profiles is checked once, for the first of them.
    let loaded: Vec<_> = profiles
        .iter()
        .map(|p| hostready_checks::profile::load(p).unwrap())
        .collect();
    let mut ids = BTreeSet::new();
    let mut probes = BTreeSet::new();
    for r in loaded.iter().flat_map(|p| &p.requirements) {
        ids.insert(r.id.clone());
        if matches!(r.check, hostready_checks::Check::Command(_)) {
            probes.insert(r.id.clone());
        }
    }
    // Profiles enabled together also report their conflicts, one finding each.
    for c in hostready_checks::conflicts::findings(&loaded) {
        ids.insert(c.finding.id);
    }
    assert_eq!(
        findings.len(),
        ids.len(),
        "one finding per distinct requirement id"
    );
    let p = profiles.len();
    assert_eq!(family("hostready_finding_status{"), 4 * ids.len());
    // The profiles' conditions and the watch pass's HostProcessesHealthy (on by default).
    assert_eq!(family("hostready_condition_status{"), 3 * (p + 1));
    // The watch pass's piles (processes, private bytes: at most 10 each) and package
    // databases (holders, waiters, corrupt: at most 10 each).
    let watched = family("hostready_pileup_") + family("hostready_pkgdb_");
    assert!(watched <= 2 * 10 + 3 * 10, "{watched}");
    assert_eq!(
        family("hostready_check_duration_seconds"),
        11,
        "9 buckets, sum, count"
    );
    assert_eq!(
        family("hostready_api_errors_total"),
        0,
        "no API error in this run"
    );
    let writes = family("hostready_api_writes_total");
    // apply_conditions and create_event: every op but get_node (and apply_labels, whose
    // scheduling labels are off here).
    assert!(writes <= 2);
    assert!(family("hostready_probe_timeouts_total") <= probes.len());
    let withheld = family("hostready_conditions_withheld");
    assert!(withheld <= p + 1);
    let total = t.len();
    // build_info 1; the 9 single series (cycles, stuck probes, events dropped, config errors,
    // config valid, last publish, watch duration, watch passes, last watch); the process
    // metrics.
    let fixed = 1 + 9 + process.len();
    assert_eq!(
        total,
        4 * ids.len() + 3 * (p + 1) + 11 + fixed + writes + withheld + watched,
        "series not accounted for:\n{text}"
    );
    // The worst case: every condition withheld, every probe timed out, every API error code
    // for every operation, all three writes (conditions, labels, events).
    let bound = 4 * ids.len()
        + 3 * (p + 1)
        + 11
        + fixed
        + 2 * 10
        + 3 * 10
        + (p + 1)
        + probes.len()
        + hostready_agent::API_OPS.len() * (hostready_agent::API_ERROR_CODES.len() + 1)
        + 3;
    eprintln!(
        "all {p} built-in profiles, {} findings, {} command probes: {total} series, bound {bound}",
        ids.len(),
        probes.len()
    );
    assert!(total <= bound);
    assert_eq!(
        bound, DOCUMENTED_BOUND,
        "docs/agent.md's bound is out of date"
    );
    let docs = std::fs::read_to_string(format!("{WORKSPACE}/docs/agent.md")).unwrap();
    assert!(
        docs.contains(&format!("at most **{DOCUMENTED_BOUND}** series"))
            && docs.contains(&format!("**{total}** series")),
        "docs/agent.md must state the bound ({DOCUMENTED_BOUND}) and the measured count ({total})"
    );
}
