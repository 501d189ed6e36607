//! What doctor reports: findings with a stable id, a status, evidence and a fix, as `check` does.

use serde::Serialize;

/// How a finding came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Looked, and nothing is wrong.
    Pass,
    /// Could not tell (the reason is in the message).
    Unknown,
    /// Something is off and worth a look, but not (yet) hurting the host.
    Warn,
    /// Something is wrong and needs fixing.
    Fail,
}

impl Status {
    /// Returns the lowercase name used in every output format.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Unknown => "unknown",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One diagnosis: what was looked at, how it came out, why, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable identifier, e.g. `doctor.pileup.rpm`, `doctor.lock.rpmdb.sqlite`.
    pub id: String,
    pub status: Status,
    /// One sentence for people.
    pub message: String,
    /// The facts the status rests on: files read, pids, lock-table lines.
    pub evidence: Vec<String>,
    /// What to do, in order; empty when nothing needs doing.
    pub remediation: Vec<String>,
}

impl Finding {
    /// Builds a finding without evidence or remediation.
    pub fn new(id: impl Into<String>, status: Status, message: impl Into<String>) -> Finding {
        Finding {
            id: id.into(),
            status,
            message: message.into(),
            evidence: Vec::new(),
            remediation: Vec::new(),
        }
    }

    /// Adds a line of evidence.
    pub fn evidence(mut self, line: impl Into<String>) -> Finding {
        self.evidence.push(line.into());
        self
    }

    /// Adds a remediation step.
    pub fn fix(mut self, step: impl Into<String>) -> Finding {
        self.remediation.push(step.into());
        self
    }
}

/// Turns a file or command name into an id segment: lowercase ASCII letters, digits, `.`, `-`
/// and `_`; anything else becomes `_`.
pub fn id_segment(s: &str) -> String {
    let seg: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if seg.is_empty() { "_".into() } else { seg }
}

/// Formats kB as MiB with one decimal.
pub fn mib(kb: u64) -> String {
    format!("{:.1} MiB", kb as f64 / 1024.0)
}

/// Formats seconds as a short age: `42s`, `5m12s`, `3h04m`, `2d03h`.
pub fn age(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        3600..86400 => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d{:02}h", secs / 86400, secs % 86400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_and_units() {
        assert_eq!(id_segment("rpmdb.sqlite"), "rpmdb.sqlite");
        assert_eq!(id_segment("Lock Frontend/x"), "lock_frontend_x");
        assert_eq!(id_segment(""), "_");
        assert_eq!(mib(1536), "1.5 MiB");
        assert_eq!(age(59), "59s");
        assert_eq!(age(312), "5m12s");
        assert_eq!(age(3 * 3600 + 240), "3h04m");
        assert_eq!(age(2 * 86400 + 3 * 3600), "2d03h");
    }
}
