//! Results as data: a [`Finding`] per requirement, with a stable id, a status, the evidence read
//! and a remediation for this host. The same values feed the table, JSON/YAML, metrics and
//! Kubernetes conditions. A failed requirement is a finding, never an `Err`.

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

/// The verdict of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
    /// The check could not decide; the message says why.
    Unknown,
}

impl Status {
    /// Returns the lowercase word used in every output format.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Unknown => "unknown",
        }
    }
}

/// How much a requirement matters: a failed `recommended` one is reported as a warning.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    #[default]
    Required,
    Recommended,
}

/// Facts read while checking, in the order they were read: `(what, value)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evidence(pub Vec<(String, String)>);

impl Evidence {
    /// Adds one fact.
    pub fn add(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.0.push((key.into(), value.into()));
        self
    }

    /// Returns the value recorded under `key`, if any.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl Serialize for Evidence {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// What to do about a finding on this host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Remediation {
    /// One sentence.
    pub summary: String,
    /// Commands to run on the host, in order (never run by hostready).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<String>,
    /// The package that provides the missing piece on this distro, if one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// Caveats and alternatives.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The result of checking one requirement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable, dotted id such as `exe.iscsiadm` or `kmod.iscsi_tcp`.
    pub id: String,
    /// The profile that asked for it.
    pub profile: String,
    pub level: Level,
    pub status: Status,
    pub message: String,
    pub evidence: Evidence,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remediation: Option<Remediation>,
}

/// What a check function returns before the requirement's level and id are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: Status,
    pub message: String,
    pub evidence: Evidence,
    pub remediation: Option<Remediation>,
}

impl Outcome {
    /// A passing outcome.
    pub fn pass(message: impl Into<String>, evidence: Evidence) -> Outcome {
        Outcome {
            status: Status::Pass,
            message: message.into(),
            evidence,
            remediation: None,
        }
    }

    /// A failing outcome with its fix.
    pub fn fail(message: impl Into<String>, evidence: Evidence, fix: Remediation) -> Outcome {
        Outcome {
            status: Status::Fail,
            message: message.into(),
            evidence,
            remediation: Some(fix),
        }
    }

    /// A warning: it works, but something is off.
    pub fn warn(
        message: impl Into<String>,
        evidence: Evidence,
        fix: Option<Remediation>,
    ) -> Outcome {
        Outcome {
            status: Status::Warn,
            message: message.into(),
            evidence,
            remediation: fix,
        }
    }

    /// The check could not decide, and says why.
    pub fn unknown(why: impl Into<String>, evidence: Evidence) -> Outcome {
        Outcome {
            status: Status::Unknown,
            message: why.into(),
            evidence,
            remediation: None,
        }
    }
}

/// Counts of findings by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub pass: usize,
    pub warn: usize,
    pub fail: usize,
    pub unknown: usize,
}

impl Summary {
    /// Counts `findings`.
    pub fn of(findings: &[Finding]) -> Summary {
        let mut s = Summary::default();
        for f in findings {
            match f.status {
                Status::Pass => s.pass += 1,
                Status::Warn => s.warn += 1,
                Status::Fail => s.fail += 1,
                Status::Unknown => s.unknown += 1,
            }
        }
        s
    }
}

/// Returns true if and only if every required finding passed or only warned: the meaning of
/// exit code 0. A required finding that is `unknown` is not a pass.
pub fn all_required_met(findings: &[Finding]) -> bool {
    findings
        .iter()
        .filter(|f| f.level == Level::Required)
        .all(|f| matches!(f.status, Status::Pass | Status::Warn))
}
