//! What only doctor's tests share: diagnosing this machine. Processes, locks and polling come
//! from `hostready-testkit`.

use hostready_doctor::{Options, Report, Thresholds};
use hostready_host::{Host, ProcSource};

/// Diagnoses this machine (`/` with its `/proc`) with pile-up thresholds `count` and age 0.
pub fn diagnose_here(count: usize) -> Report {
    let host = Host::open("/", ProcSource::At("/proc".into())).unwrap();
    hostready_doctor::diagnose(
        &host,
        &Options {
            thresholds: Thresholds {
                min_count: count,
                min_age_secs: 0,
                ..Thresholds::default()
            },
            full_read: true,
        },
    )
}
