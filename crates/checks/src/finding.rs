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

impl Level {
    /// Returns the status a finding of this level reports for a check that said `status`:
    /// a `recommended` requirement that fails is a warning, everything else is as checked.
    /// The one place this rule lives (evaluation and `--verify-runs` both apply it).
    pub fn status(self, status: Status) -> Status {
        match (status, self) {
            (Status::Fail, Level::Recommended) => Status::Warn,
            (s, _) => s,
        }
    }

    /// Returns the lowercase word used in every output format.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Required => "required",
            Level::Recommended => "recommended",
        }
    }
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
    /// Stable, dotted id such as `exe.iscsiadm` or `kmod.iscsi_tcp` (a profile may give any
    /// id: read [`Finding::subject`] for what was checked, never the id's prefix).
    pub id: String,
    /// The profile that asked for it.
    pub profile: String,
    pub level: Level,
    pub status: Status,
    pub message: String,
    pub evidence: Evidence,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remediation: Option<Remediation>,
    /// What was checked: the requirement's kind and the thing it names. Serialized as the
    /// fields `kind` and (where there is one) `subject`.
    #[serde(flatten)]
    pub subject: Subject,
    /// How the process this finding started ended: a command check's run, or the
    /// `--verify-runs` run of a found executable. `None` when nothing was started or tried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe: Option<ProbeRun>,
}

/// What a finding is about: the kind of its requirement (named as the profile YAML key that
/// asks for it) and the thing that requirement names. Consumers match on this, never on the
/// id, which a profile may choose freely.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    /// `executable:` — a program on the host's PATH, by the name (or path) the profile gives.
    Executable(String),
    /// `kernel_module:` — a module, by its normalised name (`-` as `_`).
    KernelModule(String),
    /// `service:` — a daemon, by name.
    Service(String),
    /// `multipathd:`.
    Multipathd,
    /// `nfs_client:`.
    NfsClient,
    /// `nfs_defaultvers:`.
    NfsDefaultvers,
    /// `hugepages:` — of this page size.
    Hugepages { page_size_kib: u64 },
    /// `cpu_flags:`.
    CpuFlags,
    /// `kernel_version:`.
    KernelVersion,
    /// `mount_propagation:` — the mount holding this path.
    MountPropagation(String),
    /// `command:` — by its program (`argv[0]`).
    Command(String),
    /// Two enabled profiles that conflict, by the conflict catalogue's id (`conflicts.rs`):
    /// not a requirement of either profile.
    Conflict(String),
    /// `cri_socket:`.
    CriSocket,
    /// `data_path:` — the data directory, by its path.
    DataPath(String),
    /// `raw_disks:`.
    RawDisks,
    /// A `hostready doctor` diagnosis: not a requirement of any profile.
    Diagnosis,
    /// `sysctl:` — by its dotted name.
    Sysctl(String),
    /// `cgroup:`.
    Cgroup,
    /// `swap:`.
    Swap,
    /// `module_parameter:` — a module's parameter, both names normalised; shown as `m.p`.
    ModuleParameter { module: String, parameter: String },
    /// `module_version:` — by the module's normalised name.
    ModuleVersion(String),
    /// `kernel_config:`.
    KernelConfig,
}

impl Subject {
    /// Returns the kind's name: the profile YAML key of the requirement (`executable`,
    /// `kernel_module`, ...), or `diagnosis` for doctor's findings.
    pub fn kind(&self) -> &'static str {
        match self {
            Subject::Executable(_) => "executable",
            Subject::KernelModule(_) => "kernel_module",
            Subject::Service(_) => "service",
            Subject::Multipathd => "multipathd",
            Subject::NfsClient => "nfs_client",
            Subject::NfsDefaultvers => "nfs_defaultvers",
            Subject::Hugepages { .. } => "hugepages",
            Subject::CpuFlags => "cpu_flags",
            Subject::KernelVersion => "kernel_version",
            Subject::MountPropagation(_) => "mount_propagation",
            Subject::Command(_) => "command",
            Subject::Conflict(_) => "conflict",
            Subject::CriSocket => "cri_socket",
            Subject::DataPath(_) => "data_path",
            Subject::RawDisks => "raw_disks",
            Subject::Diagnosis => "diagnosis",
            Subject::Sysctl(_) => "sysctl",
            Subject::Cgroup => "cgroup",
            Subject::Swap => "swap",
            Subject::ModuleParameter { .. } => "module_parameter",
            Subject::ModuleVersion(_) => "module_version",
            Subject::KernelConfig => "kernel_config",
        }
    }

    /// Returns the name of the thing checked, where the kind names one: the executable,
    /// module, service, path or program; a huge page size as `2048kib`.
    pub fn name(&self) -> Option<String> {
        match self {
            Subject::Executable(n)
            | Subject::KernelModule(n)
            | Subject::Service(n)
            | Subject::MountPropagation(n)
            | Subject::DataPath(n)
            | Subject::Command(n)
            | Subject::Conflict(n) => Some(n.clone()),
            Subject::Hugepages { page_size_kib } => Some(format!("{page_size_kib}kib")),
            Subject::Sysctl(n) | Subject::ModuleVersion(n) => Some(n.clone()),
            Subject::ModuleParameter { module, parameter } => Some(format!("{module}.{parameter}")),
            Subject::Cgroup | Subject::Swap | Subject::KernelConfig => None,
            Subject::Multipathd
            | Subject::NfsClient
            | Subject::NfsDefaultvers
            | Subject::CpuFlags
            | Subject::KernelVersion
            | Subject::CriSocket
            | Subject::RawDisks
            | Subject::Diagnosis => None,
        }
    }

    /// Returns the executable's name if and only if this is an executable check.
    pub fn executable(&self) -> Option<&str> {
        match self {
            Subject::Executable(n) => Some(n),
            _ => None,
        }
    }
}

/// `"kind": "executable", "subject": "iscsiadm"` (no `subject` where the kind names none).
impl Serialize for Subject {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let name = self.name();
        let mut map = s.serialize_map(Some(1 + usize::from(name.is_some())))?;
        map.serialize_entry("kind", self.kind())?;
        if let Some(n) = &name {
            map.serialize_entry("subject", n)?;
        }
        map.end()
    }
}

/// How a started (or refused) process ended, as data: what consumers match on instead of the
/// `exit` evidence text, which is for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeRun {
    /// The command line as run (shell-quoted for display; never given to a shell).
    pub command: String,
    /// The deadline it ran under.
    #[serde(serialize_with = "humantime_str")]
    pub deadline: std::time::Duration,
    /// How it ended.
    #[serde(flatten)]
    pub end: ProbeEnd,
}

/// How a probe ended. Serialized as `"outcome": "<variant>"` beside the variant's fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ProbeEnd {
    /// It exited (or was killed by someone else) before its deadline.
    Exited {
        #[serde(skip_serializing_if = "Option::is_none")]
        exit_code: Option<i32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        signal: Option<i32>,
    },
    /// Its deadline passed and its process group was killed.
    TimedOut {
        /// True if and only if `SIGTERM` was not enough and `SIGKILL` was sent.
        sigkill: bool,
        /// True if and only if its main process had still not died (it is reported stuck).
        still_alive: bool,
    },
    /// Not started: its previous run is still alive.
    PreviousRunAlive,
    /// Not started: the runner's cap on concurrent probes was reached.
    Busy { max_concurrent: usize },
    /// Not started: the program could not be executed (or confined); `why` says.
    NotStarted { why: String },
}

impl ProbeEnd {
    /// Returns true if and only if the run hit its deadline.
    pub fn timed_out(&self) -> bool {
        matches!(self, ProbeEnd::TimedOut { .. })
    }
}

/// `/usr/sbin/iscsiadm --version: exit code 0`, for people.
impl std::fmt::Display for ProbeRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: ", self.command)?;
        match &self.end {
            ProbeEnd::Exited {
                exit_code: Some(c), ..
            } => write!(f, "exit code {c}"),
            ProbeEnd::Exited {
                signal: Some(s), ..
            } => write!(f, "killed by signal {s}"),
            ProbeEnd::Exited { .. } => f.write_str("exited"),
            ProbeEnd::TimedOut { still_alive, .. } => write!(
                f,
                "timed out after {}{}",
                humantime::format_duration(self.deadline),
                if *still_alive { ", still alive" } else { "" }
            ),
            ProbeEnd::PreviousRunAlive => {
                f.write_str("not started: its previous run is still alive")
            }
            ProbeEnd::Busy { max_concurrent } => {
                write!(f, "not started: {max_concurrent} probes running")
            }
            ProbeEnd::NotStarted { why } => write!(f, "not started: {why}"),
        }
    }
}

fn humantime_str<S: Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*d).to_string())
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
    pub fn of<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> Summary {
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
pub fn all_required_met<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> bool {
    findings
        .into_iter()
        .filter(|f| f.level == Level::Required)
        .all(|f| matches!(f.status, Status::Pass | Status::Warn))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    fn finding(subject: Subject, probe: Option<ProbeRun>) -> Finding {
        Finding {
            id: "x".into(),
            profile: "p".into(),
            level: Level::Required,
            status: Status::Pass,
            message: "m".into(),
            evidence: Evidence::default(),
            remediation: None,
            subject,
            probe,
        }
    }

    /// The JSON shape of the typed fields: added beside the fields that were there, which
    /// keep their names and order.
    #[test]
    fn kind_subject_and_probe_serialize_additively() {
        let v =
            serde_json::to_value(finding(Subject::Executable("iscsiadm".into()), None)).unwrap();
        assert_eq!(
            v,
            json!({"id": "x", "profile": "p", "level": "required", "status": "pass",
                   "message": "m", "evidence": {}, "kind": "executable", "subject": "iscsiadm"})
        );
        let v = serde_json::to_value(finding(Subject::NfsClient, None)).unwrap();
        assert_eq!(
            (v["kind"].as_str(), v.get("subject")),
            (Some("nfs_client"), None)
        );
        let v = serde_json::to_value(finding(
            Subject::Hugepages {
                page_size_kib: 2048,
            },
            None,
        ));
        assert_eq!(v.unwrap()["subject"], "2048kib");
        let run = |end| ProbeRun {
            command: "/usr/bin/disk-probe --all".into(),
            deadline: Duration::from_secs(5),
            end,
        };
        let timed_out = run(ProbeEnd::TimedOut {
            sigkill: true,
            still_alive: false,
        });
        assert_eq!(
            timed_out.to_string(),
            "/usr/bin/disk-probe --all: timed out after 5s"
        );
        let v = serde_json::to_value(finding(
            Subject::Command("/usr/bin/disk-probe".into()),
            Some(timed_out),
        ))
        .unwrap();
        assert_eq!(
            v["probe"],
            json!({"command": "/usr/bin/disk-probe --all", "deadline": "5s",
                   "outcome": "timed_out", "sigkill": true, "still_alive": false})
        );
        let v = serde_json::to_value(run(ProbeEnd::Exited {
            exit_code: Some(0),
            signal: None,
        }))
        .unwrap();
        assert_eq!(
            v,
            json!({"command": "/usr/bin/disk-probe --all", "deadline": "5s",
                   "outcome": "exited", "exit_code": 0})
        );
        for (end, outcome) in [
            (ProbeEnd::PreviousRunAlive, "previous_run_alive"),
            (ProbeEnd::Busy { max_concurrent: 4 }, "busy"),
            (
                ProbeEnd::NotStarted {
                    why: "ENOENT".into(),
                },
                "not_started",
            ),
        ] {
            assert_eq!(serde_json::to_value(run(end)).unwrap()["outcome"], outcome);
        }
    }

    #[test]
    fn a_failed_recommended_requirement_is_a_warning() {
        assert_eq!(Level::Recommended.status(Status::Fail), Status::Warn);
        assert_eq!(Level::Required.status(Status::Fail), Status::Fail);
        for s in [Status::Pass, Status::Warn, Status::Unknown] {
            assert_eq!(Level::Recommended.status(s), s);
        }
    }
}
