//! The standard process metrics (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
//! `process_virtual_memory_bytes`, `process_open_fds`, `process_max_fds`,
//! `process_start_time_seconds`), under the names client_golang's and node-exporter's process
//! collectors use, so existing dashboards and alerts find the agent.
//!
//! Read from the agent's own `/proc/self` at each scrape — the agent's process, not the host's,
//! so not through the host root. prometheus-client has no process collector and the `procfs`
//! crate would parse far more than these few fields, hence this small reader. Every read is
//! bounded: `/proc/self/stat` and `/proc/uptime` are read and parsed by
//! `hostready_host::procfs::live` (one parser per procfs file, capped reads), and the open
//! descriptors are counted while iterating `/proc/self/fd`, never collected. A file that cannot
//! be read or parsed leaves its metrics out of that scrape rather than reporting a wrong 0.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use hostready_host::procfs::{Stat, live};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// One reading of the process's own counters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    /// Unix time the process started, in seconds.
    pub start_time: f64,
}

/// Turns this process's `stat` into a sample: clock ticks into seconds, pages into bytes, and
/// the start (ticks after boot) into Unix time from the uptime.
pub fn sample_of(
    stat: &Stat,
    ticks_per_second: u64,
    page_size: u64,
    uptime: f64,
) -> Option<Sample> {
    let ticks = ticks_per_second.max(1) as f64;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_secs_f64();
    Some(Sample {
        cpu_seconds: (stat.utime + stat.stime) as f64 / ticks,
        resident_bytes: stat.rss_pages.saturating_mul(page_size),
        virtual_bytes: stat.vsize,
        // The boot time, now minus the uptime, plus the start's ticks since boot.
        start_time: now - uptime + stat.starttime as f64 / ticks,
    })
}

/// Reads this process's sample; `None` if `/proc` is not there or not as proc(5) says.
pub fn sample() -> Option<Sample> {
    sample_of(
        &live::self_stat()?,
        rustix::param::clock_ticks_per_second(),
        rustix::param::page_size() as u64,
        live::uptime()?,
    )
}

/// Counts the open descriptors.
pub fn open_fds() -> Option<u64> {
    live::self_fd_count()
}

/// The soft limit on open descriptors (what `open` fails at), `None` when unlimited.
pub fn max_fds() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// A collector for the process metrics, read at each scrape.
#[derive(Debug, Default)]
pub struct ProcessCollector {
    /// The start time, computed once: recomputing it from the uptime each scrape would make
    /// it jitter by milliseconds.
    start_time: OnceLock<f64>,
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if let Some(s) = sample() {
            let cpu = ConstCounter::new(s.cpu_seconds);
            cpu.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                None,
                cpu.metric_type(),
            )?)?;
            gauge(
                &mut encoder,
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                s.resident_bytes as f64,
            )?;
            gauge(
                &mut encoder,
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                s.virtual_bytes as f64,
            )?;
            let start = *self.start_time.get_or_init(|| s.start_time.round());
            gauge(
                &mut encoder,
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds",
                start,
            )?;
        }
        if let Some(n) = open_fds() {
            gauge(
                &mut encoder,
                "process_open_fds",
                "Number of open file descriptors",
                n as f64,
            )?;
        }
        if let Some(n) = max_fds() {
            gauge(
                &mut encoder,
                "process_max_fds",
                "Maximum number of open file descriptors",
                n as f64,
            )?;
        }
        Ok(())
    }
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: f64,
) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(v);
    g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hostready_host::procfs::parse_stat;

    #[test]
    fn stat_fields_after_a_command_name_with_spaces_and_parentheses() {
        // Fields 3..24 of proc(5): utime 150, stime 50, starttime 1000, vsize 8192000, rss 300.
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 3 0 1000 8192000 300 18446744073709551615";
        let s = sample_of(&parse_stat(stat).unwrap(), 100, 4096, 20.0).unwrap();
        assert_eq!(s.cpu_seconds, 2.0);
        assert_eq!(s.resident_bytes, 300 * 4096);
        assert_eq!(s.virtual_bytes, 8_192_000);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        // Booted 20 s ago, started 10 s after boot: 10 s ago.
        assert!((now - 10.0 - s.start_time).abs() < 1.0, "{}", s.start_time);
    }

    #[test]
    fn truncated_or_garbled_stat_is_none() {
        assert_eq!(parse_stat("42 (x) S 1 2 3"), None);
        assert_eq!(parse_stat("no parenthesis"), None);
        assert_eq!(
            parse_stat("1 (x) S 1 1 1 0 -1 0 0 0 0 0 abc 0 0 0 20 0 1 0 5 100 3"),
            None
        );
    }

    #[test]
    fn own_process_reads() {
        let s = sample().expect("/proc/self/stat");
        assert!(s.resident_bytes > 1 << 20, "{s:?}");
        assert!(s.virtual_bytes >= s.resident_bytes, "{s:?}");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            s.start_time <= now + 1.0 && s.start_time > now - 86_400.0,
            "{s:?}"
        );
        // stdin, stdout, stderr at least.
        let fds = open_fds().unwrap();
        assert!(fds >= 3, "{fds}");
        assert!(max_fds().is_none_or(|m| m >= fds));
    }
}
