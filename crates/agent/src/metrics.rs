//! The agent's Prometheus metrics: its own under `hostready_`, `hostready_build_info`, and the
//! standard `process_*` metrics (see [`process`]) under their standard names.
//!
//! Per-finding gauges carry `id`, `profile` and `status` labels with value 1 for the current
//! status and 0 for the others, so `hostready_finding_status{status="fail"} == 1` selects what
//! fails; a finding whose profile is disabled disappears (the family is rebuilt each cycle).
//! Every label's values come from a closed set (docs/agent.md, "Series per node"), so the
//! series a node exports are bounded: `tests/metrics_scrape.rs` counts them on a real scrape.

pub mod exposition;
pub mod process;

use std::sync::atomic::AtomicU64;

use hostready_checks::{Finding, Status};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

pub use exposition::Format;

/// The labels of `hostready_build_info`, set at build time by build.rs.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    /// The crate version (`0.1.0`).
    pub version: String,
    /// `git rev-parse --short=12 HEAD` at build time, `HOSTREADY_REVISION` if set, or `unknown`
    /// when built outside a git checkout.
    pub revision: String,
    /// The compiler's version (`1.90.0`).
    pub rustc: String,
}

impl BuildLabels {
    /// This binary's build.
    pub fn current() -> BuildLabels {
        BuildLabels {
            version: env!("CARGO_PKG_VERSION").to_string(),
            revision: env!("HOSTREADY_REVISION").to_string(),
            rustc: env!("HOSTREADY_RUSTC_VERSION").to_string(),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FindingLabels {
    pub id: String,
    pub profile: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConditionLabels {
    pub condition: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConditionTypeLabels {
    pub condition: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProbeLabels {
    pub probe: String,
}

/// A pile's normalised command line (at most [`crate::watch::MAX_EXPORTED`] piles).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CommandLabels {
    pub command: String,
}

/// A package database file, inside the root (at most [`crate::watch::MAX_EXPORTED`]).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DatabaseLabels {
    pub database: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabels {
    /// `get_node`, `apply_conditions`, `apply_labels`, `create_event`.
    pub op: String,
    /// One of [`API_ERROR_CODES`]: an HTTP status the API server sends, or `timeout` /
    /// `connect` / `too_large` / `other` (any other status too, so the label stays bounded).
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabels {
    pub op: String,
}

/// The values `hostready_api_errors_total`'s `code` label can take: the statuses the Kubernetes
/// API server answers with (apimachinery's `StatusReason`s and the proxies in front of it),
/// then the client-side failures.
pub const API_ERROR_CODES: [&str; 18] = [
    "400",
    "401",
    "403",
    "404",
    "405",
    "409",
    "410",
    "413",
    "415",
    "422",
    "429",
    "500",
    "502",
    "503",
    "504",
    "timeout",
    "connect",
    "too_large",
];

/// The operations of `api_errors_total` and `api_writes_total`'s `op` label.
pub const API_OPS: [&str; 4] = [
    "get_node",
    "apply_conditions",
    "apply_labels",
    "create_event",
];

/// Every metric the agent exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub finding_status: Family<FindingLabels, Gauge>,
    pub condition_status: Family<ConditionLabels, Gauge>,
    pub check_duration: Histogram,
    pub cycles: Counter,
    pub probe_timeouts: Family<ProbeLabels, Counter>,
    pub stuck_probes: Gauge,
    pub api_errors: Family<ApiLabels, Counter>,
    pub api_writes: Family<OpLabels, Counter>,
    pub events_dropped: Counter,
    pub config_errors: Counter,
    pub config_valid: Gauge,
    pub conditions_withheld: Family<ConditionTypeLabels, Gauge>,
    pub last_publish: Gauge<f64, AtomicU64>,
    pub pileup_processes: Family<CommandLabels, Gauge>,
    pub pileup_private_bytes: Family<CommandLabels, Gauge>,
    pub pkgdb_lock_holders: Family<DatabaseLabels, Gauge>,
    pub pkgdb_lock_waiters: Family<DatabaseLabels, Gauge>,
    pub pkgdb_corrupt: Family<DatabaseLabels, Gauge>,
    pub watch_duration: Gauge<f64, AtomicU64>,
    pub watch_passes: Counter,
    pub watch_last: Gauge<f64, AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// Returns a registry with every metric registered.
    pub fn new() -> Metrics {
        let mut root = Registry::default();
        root.register(
            "hostready_build",
            "The agent's version, git revision and compiler; always 1",
            Info::new(BuildLabels::current()),
        );
        root.register_collector(Box::new(process::ProcessCollector::default()));
        let registry = root.sub_registry_with_prefix("hostready");
        let m = Metrics {
            finding_status: Family::default(),
            condition_status: Family::default(),
            // 1 ms .. ~16 s: the built-in checks take milliseconds, probes up to their deadline.
            check_duration: Histogram::new(
                prometheus_client::metrics::histogram::exponential_buckets(0.001, 4.0, 8),
            ),
            cycles: Counter::default(),
            probe_timeouts: Family::default(),
            stuck_probes: Gauge::default(),
            api_errors: Family::default(),
            api_writes: Family::default(),
            events_dropped: Counter::default(),
            config_errors: Counter::default(),
            config_valid: Gauge::default(),
            conditions_withheld: Family::default(),
            last_publish: Gauge::default(),
            pileup_processes: Family::default(),
            pileup_private_bytes: Family::default(),
            pkgdb_lock_holders: Family::default(),
            pkgdb_lock_waiters: Family::default(),
            pkgdb_corrupt: Family::default(),
            watch_duration: Gauge::default(),
            watch_passes: Counter::default(),
            watch_last: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "finding_status",
            "Status of each finding: 1 for its current status, 0 for the others",
            m.finding_status.clone(),
        );
        registry.register(
            "condition_status",
            "Status of each published node condition: 1 for the current status",
            m.condition_status.clone(),
        );
        registry.register(
            "check_duration_seconds",
            "Time to run one check cycle (all enabled profiles and probes)",
            m.check_duration.clone(),
        );
        registry.register("check_cycles", "Check cycles run", m.cycles.clone());
        registry.register(
            "probe_timeouts",
            "Command probes that hit their deadline and were killed",
            m.probe_timeouts.clone(),
        );
        registry.register(
            "stuck_probes",
            "Command probes with a process that could not be killed",
            m.stuck_probes.clone(),
        );
        registry.register(
            "api_errors",
            "Failed Kubernetes API calls, by operation and HTTP status",
            m.api_errors.clone(),
        );
        registry.register(
            "api_writes",
            "Successful Kubernetes API writes, by operation",
            m.api_writes.clone(),
        );
        registry.register(
            "events_dropped",
            "Events dropped because the API was unreachable and the queue was full",
            m.events_dropped.clone(),
        );
        registry.register(
            "config_errors",
            "Config files refused (the last good config stays in force)",
            m.config_errors.clone(),
        );
        registry.register(
            "config_valid",
            "1 if the config file in place is the one in force, 0 if it was refused",
            m.config_valid.clone(),
        );
        registry.register(
            "conditions_withheld",
            "1 for each enabled condition not written because another field manager owns it",
            m.conditions_withheld.clone(),
        );
        registry.register(
            "last_publish_timestamp_seconds",
            "Unix time of the last successful condition write",
            m.last_publish.clone(),
        );
        registry.register(
            "pileup_processes",
            "Processes in each pile-up the last watch pass flagged, by normalised command (the 10 largest)",
            m.pileup_processes.clone(),
        );
        registry.register(
            "pileup_private_bytes",
            "Private memory of each flagged pile-up, by normalised command (the 10 largest)",
            m.pileup_private_bytes.clone(),
        );
        registry.register(
            "pkgdb_lock_holders",
            "Processes holding a lock on each package database file in the kernel's lock table",
            m.pkgdb_lock_holders.clone(),
        );
        registry.register(
            "pkgdb_lock_waiters",
            "Processes waiting for a lock on each package database file",
            m.pkgdb_lock_waiters.clone(),
        );
        registry.register(
            "pkgdb_corrupt",
            "1 if the package database file is damaged, 0 if it reads as healthy",
            m.pkgdb_corrupt.clone(),
        );
        registry.register(
            "watch_duration_seconds",
            "Time the last watch pass took (doctor's scans of processes, locks and databases)",
            m.watch_duration.clone(),
        );
        registry.register("watch_passes", "Watch passes run", m.watch_passes.clone());
        registry.register(
            "watch_last_timestamp_seconds",
            "Unix time of the last completed watch pass",
            m.watch_last.clone(),
        );
        Metrics {
            registry: root,
            ..m
        }
    }

    /// Replaces the pile-up and package-database gauges with a watch pass's, at most
    /// [`crate::watch::MAX_EXPORTED`] piles (the largest) and databases each.
    pub(crate) fn set_watch(&self, r: &crate::watch::WatchResult) {
        use crate::watch::MAX_EXPORTED;
        self.pileup_processes.clear();
        self.pileup_private_bytes.clear();
        for p in r.piles.iter().take(MAX_EXPORTED) {
            let l = CommandLabels {
                command: p.command.clone(),
            };
            self.pileup_processes.get_or_create(&l).set(p.count as i64);
            if let Some(b) = p.private_bytes {
                self.pileup_private_bytes.get_or_create(&l).set(b as i64);
            }
        }
        self.pkgdb_lock_holders.clear();
        self.pkgdb_lock_waiters.clear();
        for l in r.locks.iter().take(MAX_EXPORTED) {
            let d = DatabaseLabels {
                database: l.database.clone(),
            };
            self.pkgdb_lock_holders
                .get_or_create(&d)
                .set(l.holder_pids.len() as i64);
            self.pkgdb_lock_waiters
                .get_or_create(&d)
                .set(l.waiters as i64);
        }
        self.pkgdb_corrupt.clear();
        for db in r.databases.iter().take(MAX_EXPORTED) {
            let bad = r.corrupt.iter().any(|c| &c.database == db);
            self.pkgdb_corrupt
                .get_or_create(&DatabaseLabels {
                    database: db.clone(),
                })
                .set(i64::from(bad));
        }
        self.watch_duration.set(r.duration.as_secs_f64());
        self.watch_passes.inc();
        self.watch_last
            .set(k8s_openapi::chrono::Utc::now().timestamp_millis() as f64 / 1000.0);
    }

    /// Replaces the per-finding gauges with this cycle's findings.
    pub fn set_findings(&self, findings: &[Finding]) {
        self.finding_status.clear();
        for f in findings {
            for s in [Status::Pass, Status::Warn, Status::Fail, Status::Unknown] {
                self.finding_status
                    .get_or_create(&FindingLabels {
                        id: f.id.clone(),
                        profile: f.profile.clone(),
                        status: s.as_str().to_string(),
                    })
                    .set(i64::from(f.status == s));
            }
        }
    }

    /// Replaces the per-condition gauges.
    pub fn set_conditions(&self, conditions: &[(String, crate::condition::CondStatus)]) {
        use crate::condition::CondStatus;
        self.condition_status.clear();
        for (ty, st) in conditions {
            for s in [CondStatus::True, CondStatus::False, CondStatus::Unknown] {
                self.condition_status
                    .get_or_create(&ConditionLabels {
                        condition: ty.clone(),
                        status: s.as_str().to_string(),
                    })
                    .set(i64::from(*st == s));
            }
        }
    }

    /// Counts a failed API call. A code outside [`API_ERROR_CODES`] counts as `other`, so a
    /// misbehaving server cannot grow the series without bound.
    pub fn api_error(&self, op: &str, code: &str) {
        let code = if API_ERROR_CODES.contains(&code) {
            code
        } else {
            "other"
        };
        self.api_errors
            .get_or_create(&ApiLabels {
                op: op.to_string(),
                code: code.to_string(),
            })
            .inc();
    }

    /// Counts a successful API write.
    pub fn api_write(&self, op: &str) {
        self.api_writes
            .get_or_create(&OpLabels { op: op.to_string() })
            .inc();
    }

    /// Returns the Prometheus text exposition (0.0.4), the process metrics read now.
    #[cfg(test)]
    pub fn encode(&self) -> String {
        self.encode_as(Format::PrometheusText)
    }

    /// Returns the exposition in `format`, the process metrics read now.
    pub fn encode_as(&self, format: Format) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        match format {
            Format::OpenMetrics => out,
            Format::PrometheusText => exposition::to_prometheus_text(&out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hostready_checks::{Evidence, Level};

    #[test]
    fn exposition_has_findings_and_drops_them_when_gone() {
        let m = Metrics::new();
        let f = Finding {
            id: "exe.iscsiadm".into(),
            profile: "iscsi".into(),
            level: Level::Required,
            status: Status::Fail,
            message: String::new(),
            evidence: Evidence::default(),
            remediation: None,
            subject: hostready_checks::finding::Subject::Executable("iscsiadm".into()),
            probe: None,
        };
        m.set_findings(std::slice::from_ref(&f));
        m.api_error("apply_conditions", "403");
        let text = m.encode();
        assert!(
            text.contains(
                r#"hostready_finding_status{id="exe.iscsiadm",profile="iscsi",status="fail"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"hostready_finding_status{id="exe.iscsiadm",profile="iscsi",status="pass"} 0"#
        ));
        assert!(text.contains(r#"hostready_api_errors_total{op="apply_conditions",code="403"} 1"#));
        assert!(text.contains("\nprocess_resident_memory_bytes "), "{text}");
        m.set_findings(&[]);
        assert!(!m.encode().contains("exe.iscsiadm"));
    }

    #[test]
    fn api_error_codes_stay_in_their_set() {
        let m = Metrics::new();
        for code in [
            "403",
            "timeout",
            "418",
            "599",
            "",
            "x".repeat(1000).as_str(),
        ] {
            m.api_error("get_node", code);
        }
        let text = m.encode();
        assert!(text.contains(r#"hostready_api_errors_total{op="get_node",code="403"} 1"#));
        assert!(text.contains(r#"hostready_api_errors_total{op="get_node",code="timeout"} 1"#));
        assert!(
            text.contains(r#"hostready_api_errors_total{op="get_node",code="other"} 4"#),
            "{text}"
        );
        assert_eq!(text.matches("hostready_api_errors_total{").count(), 3);
    }

    #[test]
    fn build_info_and_process_metrics_in_both_formats() {
        let m = Metrics::new();
        let b = BuildLabels::current();
        assert!(!b.revision.is_empty() && !b.rustc.is_empty(), "{b:?}");
        let info = format!(
            "hostready_build_info{{version=\"{}\",revision=\"{}\",rustc=\"{}\"}} 1\n",
            b.version, b.revision, b.rustc
        );
        let text = m.encode_as(Format::PrometheusText);
        assert!(text.contains(&info), "{text}");
        assert!(
            text.contains("# TYPE hostready_build_info gauge\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE hostready_check_cycles_total counter\n"));
        assert!(text.contains("# TYPE process_cpu_seconds_total counter\n"));
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_virtual_memory_bytes",
            "process_open_fds",
            "process_max_fds",
            "process_start_time_seconds",
        ] {
            assert!(text.contains(&format!("\n{name} ")), "{name}: {text}");
        }
        assert!(!text.contains("# EOF") && !text.contains("hostready_process_"));
        let om = m.encode_as(Format::OpenMetrics);
        assert!(om.ends_with("# EOF\n"), "{om}");
        assert!(
            om.contains(&info) && om.contains("# TYPE hostready_build info\n"),
            "{om}"
        );
        assert!(om.contains("# TYPE hostready_check_cycles counter\n"));
    }
}
