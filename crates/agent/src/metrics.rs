//! The agent's Prometheus metrics, all under `hostready_`, and the process's own RSS.
//!
//! Per-finding gauges carry `id`, `profile` and `status` labels with value 1 for the current
//! status and 0 for the others, so `hostready_finding_status{status="fail"} == 1` selects what
//! fails; a finding whose profile is disabled disappears (the family is rebuilt each cycle).

use std::sync::atomic::AtomicU64;

use hostready_checks::{Finding, Status};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabels {
    /// `get_node`, `apply_conditions`, `create_event`.
    pub op: String,
    /// The HTTP status (`403`, `409`, `500` ...) or `timeout` / `connect` / `other`.
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabels {
    pub op: String,
}

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
    pub rss: Gauge,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// Returns a registry with every metric registered.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("hostready");
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
            rss: Gauge::default(),
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
            "process_resident_memory_bytes",
            "Resident set size of the agent process",
            m.rss.clone(),
        );
        Metrics { registry, ..m }
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

    /// Counts a failed API call.
    pub fn api_error(&self, op: &str, code: &str) {
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

    /// Returns the Prometheus text exposition, with the RSS read now.
    pub fn encode(&self) -> String {
        if let Some(rss) = rss_bytes() {
            self.rss.set(rss as i64);
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Returns this process's resident set size, from `/proc/self/status` (`VmRSS`). This is the
/// agent's own process, not the host's, so it is read directly, not through the host root.
pub fn rss_bytes() -> Option<u64> {
    use hostready_host::procfs::{live, status_kb};
    Some(status_kb(&live::self_status()?, "VmRSS")? * 1024)
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
        assert!(text.contains("hostready_process_resident_memory_bytes "));
        m.set_findings(&[]);
        assert!(!m.encode().contains("exe.iscsiadm"));
    }
}
