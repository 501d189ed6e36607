//! The runner's overhead per probe against a bare `std::process::Command` spawn-and-wait of
//! `/bin/true` (target: at most 1.5x). Plain `std::time`, no harness, so it needs no extra
//! dependency: `cargo bench -p hostready-exec --bench overhead` (set `HRX_BENCH_N` to change the
//! number of runs per variant). Figures and how to read them: docs/bench-exec.md.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hostready_exec::{CgroupPolicy, Exit, Outcome, ProbeSpec, Runner, RunnerConfig};

fn main() {
    let n: usize = std::env::var("HRX_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let runner = Runner::new(RunnerConfig::default());
    // The same without a cgroup per probe (the /proc sweep), to show what the cgroup costs.
    let sweep_runner = Runner::new(RunnerConfig {
        cgroup: CgroupPolicy::Off,
        ..RunnerConfig::default()
    });
    let spec = ProbeSpec::new(
        "bench.true",
        "/bin/true",
        Vec::<&str>::new(),
        Duration::from_secs(5),
    );

    type Variant<'a> = (&'a str, Box<dyn Fn() + 'a>);
    let variants: Vec<Variant> = vec![
        (
            "bare Command::status (stdio inherited)",
            Box::new(|| assert!(Command::new("/bin/true").status().unwrap().success())),
        ),
        (
            "bare Command::output (stdin null, piped)",
            Box::new(|| {
                let out = Command::new("/bin/true")
                    .stdin(Stdio::null())
                    .output()
                    .unwrap();
                assert!(out.status.success());
            }),
        ),
        (
            "Runner::run (own cgroup)",
            Box::new(|| {
                let r = runner.run(&spec);
                assert!(matches!(r.outcome, Outcome::Exited(Exit::Code(0))), "{r:?}");
            }),
        ),
        (
            "Runner::run (no cgroup, /proc sweep)",
            Box::new(|| {
                let r = sweep_runner.run(&spec);
                assert!(matches!(r.outcome, Outcome::Exited(Exit::Code(0))), "{r:?}");
            }),
        ),
    ];
    println!("containment: {:?}", runner.containment());

    // Warm up, then interleave blocks of each variant so drift (other load on the machine,
    // CPU frequency) hits all of them alike.
    for (_, f) in &variants {
        for _ in 0..50 {
            f();
        }
    }
    let block = 50;
    let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(n); variants.len()];
    for _ in 0..n.div_ceil(block) {
        for (i, (_, f)) in variants.iter().enumerate() {
            for _ in 0..block {
                let t = Instant::now();
                f();
                samples[i].push(t.elapsed());
            }
        }
    }
    let base = median(&mut samples[0].clone());
    println!("runs per variant: {}", samples[0].len());
    println!("| variant | median | mean | p90 | median vs bare status |");
    println!("|---|---|---|---|---|");
    for (i, (name, _)) in variants.iter().enumerate() {
        let s = &mut samples[i];
        s.sort();
        let mean = s.iter().sum::<Duration>() / s.len() as u32;
        let med = median(s);
        let p90 = s[s.len() * 9 / 10];
        println!(
            "| {name} | {:.0} µs | {:.0} µs | {:.0} µs | {:.2}x |",
            us(med),
            us(mean),
            us(p90),
            us(med) / us(base)
        );
    }
}

fn median(s: &mut [Duration]) -> Duration {
    s.sort();
    s[s.len() / 2]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
