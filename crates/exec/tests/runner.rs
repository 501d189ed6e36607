//! The runner's contract on well-behaved probes: environment, stdin, process group, exit
//! codes and signals, the NPD mapping, refusals (relative path, busy, already running), and
//! `run_many` / `spawn`.

// Tests build fake hosts and read fixtures on this machine directly.
#![allow(clippy::disallowed_methods)]

mod support;

use std::time::{Duration, Instant};

use hostready_exec::{
    Exit, Outcome, ProbeSpec, Runner, RunnerConfig, StartError, TOKEN_VAR, Verdict,
};
use support::{Scratch, serial};

fn runner(max_concurrent: usize) -> Runner {
    Runner::new(RunnerConfig {
        max_concurrent,
        kill_grace: Duration::from_millis(200),
        reap_wait: Duration::from_millis(500),
        output_cap: 4096,
        env_allow: vec!["PATH".into(), "HRX_NOT_SET_ANYWHERE".into()],
        ..RunnerConfig::default()
    })
}

const T: Duration = Duration::from_secs(10);

#[test]
fn environment_is_cleared_except_the_allow_list_and_the_spec() {
    let _g = serial();
    let mut spec = ProbeSpec::new("env", "/usr/bin/env", Vec::<&str>::new(), T);
    spec.env.push(("EXTRA".into(), "1".into()));
    let res = runner(2).run(&spec);
    assert_eq!(res.outcome.exit(), Some(Exit::Code(0)));
    let mut keys: Vec<String> = res
        .stdout
        .text()
        .lines()
        .map(|l| l.split('=').next().unwrap().to_string())
        .collect();
    keys.sort();
    let mut want = vec!["EXTRA".to_string(), TOKEN_VAR.to_string()];
    if std::env::var_os("PATH").is_some() {
        want.push("PATH".into());
    }
    want.sort();
    assert_eq!(keys, want);
}

#[test]
fn stdin_is_dev_null_and_the_probe_leads_its_own_group() {
    let _g = serial();
    let r = runner(2);
    let res = r.run(&ProbeSpec::new("cat", "/bin/cat", Vec::<&str>::new(), T));
    assert_eq!(res.outcome.exit(), Some(Exit::Code(0)));
    assert_eq!(res.stdout.total_bytes, 0);
    let res = r.run(&ProbeSpec::new("stat", "/bin/cat", ["/proc/self/stat"], T));
    let text = res.stdout.text();
    let after = &text[text.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    let pid = text.split(' ').next().unwrap();
    assert_eq!(f[2], pid, "pgrp is not the probe's pid: {text}");
    assert_ne!(f[2], std::process::id().to_string());
}

#[test]
fn exit_codes_and_signals_map_to_npd_verdicts() {
    let _g = serial();
    let s = Scratch::new("codes");
    let r = runner(2);
    for (code, verdict) in [
        (0, Verdict::Pass),
        (1, Verdict::Fail),
        (2, Verdict::Unknown),
    ] {
        let sc = s.script(
            &format!("c{code}.sh"),
            &format!("echo '  disk sdb: code {code}  '\nexit {code}"),
        );
        let res = r.run(&ProbeSpec::new("c", sc.as_str(), Vec::<&str>::new(), T));
        assert_eq!(res.outcome.exit(), Some(Exit::Code(code)));
        let v = res.npd_verdict(80);
        assert_eq!(v.verdict, verdict);
        assert_eq!(v.message, format!("disk sdb: code {code}"));
        assert_eq!(res.command.to_string(), sc);
    }
    let sc = s.script("sig.sh", "kill -9 $$");
    let res = r.run(&ProbeSpec::new("sig", sc.as_str(), Vec::<&str>::new(), T));
    assert!(
        matches!(res.outcome, Outcome::Exited(Exit::Signal(9))),
        "{res:?}"
    );
    assert_eq!(res.npd_verdict(80).verdict, Verdict::Unknown);
    let res = r.run(&ProbeSpec::new(
        "t",
        s.sleep().as_str(),
        ["30"],
        Duration::from_millis(50),
    ));
    let v = res.npd_verdict(200);
    assert_eq!(v.verdict, Verdict::Unknown);
    assert!(v.message.starts_with("timed out after"), "{}", v.message);
}

#[test]
fn relative_and_missing_programs_are_not_started() {
    let _g = serial();
    let r = runner(2);
    let res = r.run(&ProbeSpec::new("rel", "true", Vec::<&str>::new(), T));
    assert!(
        matches!(
            res.outcome,
            Outcome::NotStarted(StartError::RelativeProgram(_))
        ),
        "{res:?}"
    );
    let res = r.run(&ProbeSpec::new("missing", "/nonexistent/check", ["--x"], T));
    match &res.outcome {
        Outcome::NotStarted(e @ StartError::Spawn { .. }) => {
            assert!(e.to_string().contains("/nonexistent/check --x"))
        }
        o => panic!("{o:?}"),
    }
    // The slot and the id were released.
    assert!(matches!(
        r.run(&ProbeSpec::new(
            "missing",
            "/bin/true",
            Vec::<&str>::new(),
            T
        ))
        .outcome,
        Outcome::Exited(_)
    ));
}

#[test]
fn a_running_probe_is_not_started_twice_and_the_cap_holds() {
    let _g = serial();
    let s = Scratch::new("dup");
    let r = runner(1);
    let long = ProbeSpec::new(
        "dup",
        s.sleep().as_str(),
        ["30"],
        Duration::from_millis(800),
    );
    let h = r.spawn(long.clone());
    std::thread::sleep(Duration::from_millis(200));
    match r.run(&long).outcome {
        Outcome::StillRunning(p) => assert_eq!(p.comm, "sleep"),
        o => panic!("{o:?}"),
    }
    let other = ProbeSpec::new("other", "/bin/true", Vec::<&str>::new(), T);
    assert!(matches!(
        r.run(&other).outcome,
        Outcome::Busy { max_concurrent: 1 }
    ));
    let first = h.join();
    assert!(
        matches!(first.outcome, Outcome::TimedOut { .. }),
        "{first:?}"
    );
    assert!(matches!(
        r.run(&other).outcome,
        Outcome::Exited(Exit::Code(0))
    ));
}

#[test]
fn run_many_queues_under_the_cap_and_is_bounded() {
    let _g = serial();
    let s = Scratch::new("many");
    let r = runner(2);
    let t = Duration::from_millis(300);
    let mut specs: Vec<ProbeSpec> = (0..6)
        .map(|i| ProbeSpec::new(format!("sleep{i}"), s.sleep().as_str(), ["30"], t))
        .collect();
    specs.push(ProbeSpec::new("ok", "/bin/echo", ["fine"], t));
    let start = Instant::now();
    let results = r.run_many(&specs);
    // 7 probes, 2 at a time: 4 waves of at most timeout + grace + reap each.
    assert!(start.elapsed() < 4 * (t + Duration::from_millis(700)) + Duration::from_secs(5));
    assert_eq!(results.len(), 7);
    for (spec, res) in specs.iter().zip(&results) {
        assert_eq!(spec.id, res.id);
        // A probe waits for a slot at most its timeout; either it ran or it was busy.
        assert!(
            matches!(
                res.outcome,
                Outcome::TimedOut { .. } | Outcome::Busy { .. } | Outcome::Exited(_)
            ),
            "{res:?}"
        );
    }
    assert!(
        results
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::TimedOut { .. }))
            .count()
            >= 2
    );
    assert!(s.procs().is_empty());
}

#[test]
fn probes_start_at_nice_10_so_the_runner_keeps_the_cpu() {
    let _g = serial();
    let spec = ProbeSpec::new("nice", "/bin/sh", ["-c", "cut -d' ' -f19 /proc/$$/stat"], T);
    let res = runner(2).run(&spec);
    assert_eq!(res.outcome.exit(), Some(Exit::Code(0)), "{res:?}");
    assert_eq!(res.stdout.text().trim(), "10", "{res:?}");
    let same = Runner::new(RunnerConfig {
        probe_nice: 0,
        ..RunnerConfig::default()
    });
    let res = same.run(&spec);
    let own = std::fs::read_to_string("/proc/self/stat").unwrap();
    let own_nice = own[own.rfind(')').unwrap() + 2..]
        .split(' ')
        .nth(16)
        .unwrap()
        .to_string();
    assert_eq!(res.stdout.text().trim(), own_nice, "{res:?}");
}
