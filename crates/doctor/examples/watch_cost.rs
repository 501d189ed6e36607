//! The CPU cost of doctor's diagnosis as the agent's watch pass runs it (bounded reads), on
//! this machine's `/proc`: `watch_cost full N` runs N full diagnoses (`diagnose`, what every
//! pass cost before the agent kept state), `watch_cost incremental N` one pass that fills a
//! [`Kept`] and then N that use it (`diagnose_keeping`, what the agent does now). Each prints
//! the process's CPU time (user + system) per measured pass; `bench/watch-scan.sh`
//! runs both side by side under hyperfine on N sleepers. Not a test: figures go to
//! docs/agent.md.

use std::time::Duration;

use hostready_doctor::proc::Kept;
use hostready_doctor::{Options, Thresholds};
use hostready_host::{Host, ProcSource};

/// User plus system CPU time of this process so far, from `/proc/self/stat` (clock ticks
/// of 10 ms: over tens of passes, a fraction of a millisecond per pass).
fn cpu() -> Duration {
    let st = hostready_host::procfs::live::self_stat().expect("/proc/self/stat");
    let hz = rustix::param::clock_ticks_per_second().max(1);
    Duration::from_secs_f64((st.utime + st.stime) as f64 / hz as f64)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "incremental".into());
    let passes: u32 = args.next().and_then(|n| n.parse().ok()).unwrap_or(20);
    let host = Host::open("/", ProcSource::At("/proc".into())).expect("open / and /proc");
    // The agent's watch: bounded reads, and the bench's sleepers flagged as one pile (as
    // bench/agent-watch.sh's `pile_min_age: 0s`).
    let opts = Options {
        thresholds: Thresholds {
            min_age_secs: 0,
            ..Thresholds::default()
        },
        full_read: false,
    };
    let mut kept = Kept::default();
    let incremental = match mode.as_str() {
        "full" => false,
        "incremental" => true,
        other => panic!("mode {other:?}: full or incremental"),
    };
    if incremental {
        hostready_doctor::diagnose_keeping(&host, &opts, Some(&mut kept));
    }
    let start = cpu();
    let mut report = None;
    for _ in 0..passes {
        report = Some(if incremental {
            hostready_doctor::diagnose_keeping(&host, &opts, Some(&mut kept))
        } else {
            hostready_doctor::diagnose(&host, &opts)
        });
    }
    let per = (cpu() - start) / passes.max(1);
    let r = report.expect("at least one pass");
    println!(
        "{mode}: {:.1} ms CPU per pass over {passes} passes; {} processes, {} pile(s) (largest {}), {} command lines kept ({} KiB)",
        per.as_secs_f64() * 1000.0,
        r.processes,
        r.pileups.len(),
        r.pileups.first().map_or(0, |g| g.count),
        kept.len(),
        kept.bytes() / 1024
    );
}
