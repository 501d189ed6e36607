//! The load of issue 10's "runner deadlines under load": many separate processes, each like one
//! `hostready check` with one `Runner` and one probe that forks many sleepers and is killed at
//! its 5 s deadline. Shared by the load test (`tests/load.rs`) and the bench
//! (`benches/load.rs`): both re-execute their own binary as the workers.

// Tests build fake hosts and read fixtures on this machine directly, not a host's root.
#![allow(clippy::disallowed_methods)]
#![allow(dead_code)]

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hostready_exec::{CgroupPolicy, Outcome, ProbeSpec, Runner, RunnerConfig};

/// The probe's deadline in the report.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// Environment of a worker: the scratch directory (with a copy of `sleep`, so every sleeper's
/// command line names it), the sleeper count, and the cgroup policy.
pub const DIR_VAR: &str = "HRX_LOAD_DIR";
pub const SLEEPERS_VAR: &str = "HRX_LOAD_SLEEPERS";
pub const POLICY_VAR: &str = "HRX_LOAD_POLICY";

/// What one worker reports: the probe's reported duration and how it ended.
#[derive(Debug, Clone)]
pub struct Report {
    pub worker_pid: u32,
    pub duration: Duration,
    pub timed_out: bool,
    pub killed: usize,
    pub leftovers: usize,
    pub containment: String,
}

pub fn policy_name(p: CgroupPolicy) -> &'static str {
    match p {
        CgroupPolicy::Auto => "auto",
        CgroupPolicy::V2 => "v2",
        CgroupPolicy::V1Pids => "v1-pids",
        CgroupPolicy::Off => "off",
    }
}

fn policy_of(name: &str) -> CgroupPolicy {
    match name {
        "v2" => CgroupPolicy::V2,
        "v1-pids" => CgroupPolicy::V1Pids,
        "off" => CgroupPolicy::Off,
        _ => CgroupPolicy::Auto,
    }
}

/// Runs in a worker process: one default runner (500 ms grace, 2 s reap wait), one probe that
/// forks the sleepers and waits; prints one `HRX_LOAD` line.
pub fn worker_main() {
    let dir = std::env::var(DIR_VAR).expect("run as a worker of the load test/bench");
    let n: usize = std::env::var(SLEEPERS_VAR).unwrap().parse().unwrap();
    let policy = policy_of(&std::env::var(POLICY_VAR).unwrap());
    let runner = Runner::new(RunnerConfig {
        cgroup: policy,
        ..RunnerConfig::default()
    });
    let script = Path::new(&dir).join("fork.sh");
    let spec = ProbeSpec::new(
        "load.fork",
        "/bin/sh",
        [script.to_str().unwrap(), &n.to_string()],
        TIMEOUT,
    );
    let res = runner.run(&spec);
    println!(
        "HRX_LOAD pid={} duration_us={} timed_out={} killed={} leftovers={} containment={:?}",
        std::process::id(),
        res.duration.as_micros(),
        matches!(res.outcome, Outcome::TimedOut { .. }),
        res.cleaned_up_total,
        res.leftovers.len(),
        runner.containment(),
    );
}

/// Writes the probe script into `dir` (which holds the copied `sleep`).
pub fn write_script(dir: &Path) {
    let sleep = dir.join("sleep");
    std::fs::write(
        dir.join("fork.sh"),
        format!(
            "i=0\nwhile [ $i -lt \"$1\" ]; do {} 60 & i=$((i+1)); done\nwait\n",
            sleep.display()
        ),
    )
    .unwrap();
}

/// Starts `workers` copies of this binary (`args` select the worker entry point), all at once.
pub fn start(
    exe: &Path,
    args: &[&str],
    workers: usize,
    sleepers: usize,
    policy: CgroupPolicy,
    dir: &Path,
) -> Vec<Child> {
    (0..workers)
        .map(|_| {
            Command::new(exe)
                .args(args)
                .env(DIR_VAR, dir)
                .env(SLEEPERS_VAR, sleepers.to_string())
                .env(POLICY_VAR, policy_name(policy))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect()
}

/// Waits for every worker for at most `limit` (then kills the rest) and parses their reports.
pub fn collect(children: Vec<Child>, limit: Duration) -> Vec<Report> {
    let until = Instant::now() + limit;
    let mut out = Vec::new();
    for mut c in children {
        loop {
            if c.try_wait().unwrap().is_some() {
                break;
            }
            if Instant::now() >= until {
                let _ = c.kill();
                let _ = c.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut text = String::new();
        if let Some(mut s) = c.stdout.take() {
            let _ = s.read_to_string(&mut text);
        }
        out.extend(text.lines().filter_map(parse));
    }
    out
}

fn parse(line: &str) -> Option<Report> {
    let rest = line.strip_prefix("HRX_LOAD ")?;
    let field = |k: &str| {
        rest.split(' ')
            .find_map(|f| f.strip_prefix(&format!("{k}=")))
            .map(str::to_string)
    };
    Some(Report {
        worker_pid: field("pid")?.parse().ok()?,
        duration: Duration::from_micros(field("duration_us")?.parse().ok()?),
        timed_out: field("timed_out")? == "true",
        killed: field("killed")?.parse().ok()?,
        leftovers: field("leftovers")?.parse().ok()?,
        containment: rest.split_once("containment=")?.1.to_string(),
    })
}
