//! Node conditions from findings: one condition per enabled profile, its status, CamelCase
//! reason and message, and the bookkeeping of transition times.
//!
//! Polarity is positive: `LonghornReady=True` means the node has everything the profile
//! requires, like the kubelet's own `Ready`. The condition types end in `Ready`, and a type that
//! reads "ready" but is `True` when something is *wrong* (node-problem-detector's convention for
//! its problem conditions such as `KernelDeadlock`) would be read backwards by every person and
//! selector that meets it. `Unknown` means hostready could not decide (no procfs, unreadable
//! files), never "fine".
//!
//! **Write budget.** A condition's message holds stable facts only (finding ids, statuses,
//! fixes, a command's deadline — never a measured duration, a pid or a counter): volatile
//! details go to the transition's event ([`Desired::detail`]) and to metrics. And a change of
//! the message alone (same status, reason and failing ids) is not written at once: it rides
//! the next heartbeat write. So a node's conditions are written once per heartbeat plus once
//! per real change (status, reason or the set of failing ids), whatever a check prints.
//!
//! Kubernetes' rules for the times (`k8s.io/api/core/v1` `NodeCondition`): `lastTransitionTime`
//! changes only when `status` flips; `lastHeartbeatTime` is the last time the agent confirmed
//! the condition, which is each write.

use std::collections::BTreeMap;

use hostready_checks::finding::{ProbeEnd, Subject};
use hostready_checks::{Finding, Status};
use k8s_openapi::api::core::v1::NodeCondition;
use k8s_openapi::chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Value, json};

/// The field manager of every write the agent makes; server-side apply tracks the condition
/// entries it owns under this name, and never touches entries owned by the kubelet.
pub const FIELD_MANAGER: &str = "hostready-agent";

/// The longest condition message written; longer lists end in "... and N more".
pub const MAX_MESSAGE: usize = 1024;

/// A condition's status, as Kubernetes spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CondStatus {
    True,
    False,
    Unknown,
}

impl CondStatus {
    /// Returns `"True"`, `"False"` or `"Unknown"`.
    pub fn as_str(self) -> &'static str {
        match self {
            CondStatus::True => "True",
            CondStatus::False => "False",
            CondStatus::Unknown => "Unknown",
        }
    }

    /// Parses Kubernetes' spelling.
    pub fn parse(s: &str) -> Option<CondStatus> {
        match s {
            "True" => Some(CondStatus::True),
            "False" => Some(CondStatus::False),
            "Unknown" => Some(CondStatus::Unknown),
            _ => None,
        }
    }
}

/// What one profile's findings say, before times are attached. Equality ignores
/// [`Desired::detail`].
#[derive(Debug, Clone, Eq)]
pub struct Desired {
    /// The condition type (`LonghornReady`).
    pub type_: String,
    /// The profile it reports on.
    pub profile: String,
    pub status: CondStatus,
    /// CamelCase, naming what fails (`ExecutableMissing`), or `RequirementsMet`.
    pub reason: String,
    pub message: String,
    /// Ids of the required findings that failed or are unknown, in profile order.
    pub failing: Vec<String>,
    /// The message with each finding's own words, volatile details included (a probe's
    /// measured run time, a stuck pid): for the transition's event, never written to the Node.
    pub detail: String,
}

impl PartialEq for Desired {
    fn eq(&self, o: &Desired) -> bool {
        (
            &self.type_,
            &self.profile,
            self.status,
            &self.reason,
            &self.message,
            &self.failing,
        ) == (
            &o.type_, &o.profile, o.status, &o.reason, &o.message, &o.failing,
        )
    }
}

impl Desired {
    /// Returns true if and only if `o` differs in what must be written at once: status,
    /// reason or the failing ids (not the message alone).
    fn differs_urgently(&self, o: &Desired) -> bool {
        (self.status, &self.reason, &self.failing) != (o.status, &o.reason, &o.failing)
    }
}

/// Returns the CamelCase reason for a failing finding, by what it checks (its kind, never its
/// id's prefix: a profile may name a requirement as it likes). A command check is the user's
/// own: `ProbeFailed` when its id is `probe.*`, else `RequirementFailed` (docs/agent.md).
pub fn reason_for(subject: &Subject, id: &str) -> &'static str {
    match subject {
        Subject::Executable(_) => "ExecutableMissing",
        Subject::KernelModule(_) => "ModuleNotLoaded",
        Subject::Service(_) => "ServiceNotRunning",
        Subject::Multipathd => "MultipathdConflict",
        Subject::NfsClient => "NfsClientMissing",
        Subject::NfsDefaultvers => "NfsVersionUnsupported",
        Subject::Hugepages { .. } => "HugepagesInsufficient",
        Subject::CpuFlags => "CpuFlagsMissing",
        Subject::KernelVersion => "KernelVersionUnsupported",
        Subject::MountPropagation(_) => "MountPropagationPrivate",
        Subject::CriSocket => "CriSocketNotListening",
        Subject::DataPath(_) => "DataPathUnsuitable",
        Subject::RawDisks => "RawDisksInsufficient",
        Subject::Command(_) if id.starts_with("probe.") => "ProbeFailed",
        Subject::Conflict(_) => "ProfilesConflict",
        Subject::Command(_) | Subject::Diagnosis => "RequirementFailed",
        Subject::Sysctl(_) => "SysctlMismatch",
        Subject::Cgroup => "CgroupUnsupported",
        Subject::Swap => "SwapEnabled",
        Subject::ModuleParameter { .. } => "ModuleParameterMismatch",
        Subject::ModuleVersion(_) => "ModuleVersionUnsupported",
        Subject::KernelConfig => "KernelConfigMissing",
    }
}

/// Builds a profile's condition from its findings (the findings of its requirement ids, plus
/// any command probes attached to it). Any required failure makes it `False`; otherwise any
/// required `Unknown` makes it `Unknown`; warnings never fail a condition but are listed.
pub fn desired(profile: &str, type_: &str, findings: &[&Finding]) -> Desired {
    use hostready_checks::Level;
    let required = |f: &&&Finding| f.level == Level::Required;
    let failed: Vec<&Finding> = findings
        .iter()
        .filter(required)
        .filter(|f| f.status == Status::Fail)
        .copied()
        .collect();
    let unknown: Vec<&Finding> = findings
        .iter()
        .filter(required)
        .filter(|f| f.status == Status::Unknown)
        .copied()
        .collect();
    let warned: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.status == Status::Warn)
        .copied()
        .collect();
    let (status, reason) = if !failed.is_empty() {
        let mut kinds: Vec<&str> = failed
            .iter()
            .map(|f| reason_for(&f.subject, &f.id))
            .collect();
        kinds.dedup();
        let reason = if kinds.iter().all(|k| *k == kinds[0]) {
            kinds[0]
        } else {
            "RequirementsNotMet"
        };
        (CondStatus::False, reason)
    } else if !unknown.is_empty() {
        (CondStatus::Unknown, "CheckUnknown")
    } else {
        (CondStatus::True, "RequirementsMet")
    };
    let mut parts: Vec<String> = Vec::new();
    match status {
        CondStatus::True => parts.push(match findings.len() {
            1 => "1 requirement met".to_string(),
            n => format!("all {n} requirements met"),
        }),
        CondStatus::False => parts.push(format!(
            "{} of {} required failing",
            failed.len(),
            findings.iter().filter(required).count()
        )),
        CondStatus::Unknown => parts.push("could not decide".into()),
    }
    for f in failed.iter().chain(&unknown).chain(&warned) {
        parts.push(describe(f));
    }
    let message = join_capped(&parts, MAX_MESSAGE);
    Desired {
        type_: type_.to_string(),
        profile: profile.to_string(),
        status,
        reason: reason.to_string(),
        detail: message.clone(),
        message,
        failing: failed
            .iter()
            .chain(&unknown)
            .map(|f| f.id.clone())
            .collect(),
    }
}

/// Returns `f` with a message fit for a condition: for a command check, how its last run ended
/// in stable words (its deadline, not the time it ran; "still alive", not a pid), since the
/// runner's own words carry the measured run time and pids, which move every cycle. Other
/// findings are returned as they are. The original words go to the event
/// ([`Desired::detail`]).
pub fn stable_finding(f: &Finding) -> Finding {
    let (Subject::Command(program), Some(run)) = (&f.subject, &f.probe) else {
        return f.clone();
    };
    let message = match run.end {
        ProbeEnd::TimedOut { .. } => format!(
            "{program} timed out (deadline {})",
            crate::duration::format(run.deadline)
        ),
        ProbeEnd::PreviousRunAlive => {
            format!("{program} not started: its previous run is still alive")
        }
        ProbeEnd::Busy { .. } => format!("{program} not started: too many probes running"),
        // It ran and exited: the message is its own stdout (node-problem-detector's
        // convention) or its exit status, both the probe's to keep stable. A program that
        // could not be started says why in words that do not move.
        ProbeEnd::Exited { .. } | ProbeEnd::NotStarted { .. } => return f.clone(),
    };
    Finding {
        message,
        ..f.clone()
    }
}

/// `exe.iscsiadm fail: iscsiadm is not on PATH; fix: install open-iscsi ($ apt-get ...)`.
fn describe(f: &Finding) -> String {
    let mut s = format!("{} {}: {}", f.id, f.status.as_str(), f.message);
    if let Some(r) = &f.remediation {
        s.push_str("; fix: ");
        s.push_str(&r.summary);
        if let Some(c) = r.commands.first() {
            s.push_str(&format!(" ($ {c})"));
        }
    }
    s
}

/// Joins with `". "`, stopping before `cap` bytes and saying how many parts were left out.
fn join_capped(parts: &[String], cap: usize) -> String {
    let mut out = String::new();
    for (i, p) in parts.iter().enumerate() {
        let sep = if i == 0 { "" } else { ". " };
        let tail = format!(". ... and {} more", parts.len() - i);
        if out.len() + sep.len() + p.len() + tail.len() > cap && i + 1 < parts.len()
            || out.len() + sep.len() + p.len() > cap
        {
            out.push_str(&tail);
            return out;
        }
        out.push_str(sep);
        out.push_str(p);
    }
    out
}

/// A status change of one condition, which becomes an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub type_: String,
    /// `None` when the condition appears for the first time.
    pub from: Option<CondStatus>,
    pub to: CondStatus,
    pub reason: String,
    pub failing: Vec<String>,
    /// The detailed message ([`Desired::detail`]), volatile details included.
    pub message: String,
}

#[derive(Debug, Clone)]
struct Tracked {
    desired: Desired,
    last_transition: DateTime<Utc>,
}

/// The conditions this agent owns, with their transition times, and whether they changed
/// since the last successful write in a way that must be written at once.
#[derive(Debug, Default)]
pub struct ConditionSet {
    tracked: Vec<Tracked>,
    changed: bool,
}

impl ConditionSet {
    /// Replaces the conditions with `desired` (in order), keeping the transition time of each
    /// whose status did not change, and returns the transitions. A condition not in `desired`
    /// (its profile was disabled) is dropped, so the next apply removes it from the Node.
    pub fn update(&mut self, desired: Vec<Desired>, now: DateTime<Utc>) -> Vec<Transition> {
        let mut old: BTreeMap<String, Tracked> = self
            .tracked
            .drain(..)
            .map(|t| (t.desired.type_.clone(), t))
            .collect();
        let had = old.len();
        let mut transitions = Vec::new();
        let mut kept = 0;
        for d in desired {
            let prev = old.remove(&d.type_);
            if let Some(p) = &prev {
                kept += 1;
                if p.desired.differs_urgently(&d) {
                    self.changed = true;
                }
            } else {
                self.changed = true;
            }
            let last_transition = match &prev {
                Some(p) if p.desired.status == d.status => p.last_transition,
                _ => {
                    transitions.push(Transition {
                        type_: d.type_.clone(),
                        from: prev.as_ref().map(|p| p.desired.status),
                        to: d.status,
                        reason: d.reason.clone(),
                        failing: d.failing.clone(),
                        message: d.detail.clone(),
                    });
                    now
                }
            };
            self.tracked.push(Tracked {
                desired: d,
                last_transition,
            });
        }
        if kept != had {
            self.changed = true;
        }
        transitions
    }

    /// Takes over the transition times the Node already shows for conditions whose status is
    /// the one this agent computed (the agent restarted; nothing flipped), and returns their
    /// types so the "appeared" events for them can be dropped.
    pub fn adopt(&mut self, existing: &[NodeCondition]) -> Vec<String> {
        let mut adopted = Vec::new();
        for t in &mut self.tracked {
            let Some(c) = existing.iter().find(|c| c.type_ == t.desired.type_) else {
                continue;
            };
            if CondStatus::parse(&c.status) != Some(t.desired.status) {
                continue;
            }
            if let Some(ltt) = &c.last_transition_time {
                t.last_transition = ltt.0;
            }
            adopted.push(t.desired.type_.clone());
        }
        adopted
    }

    /// Starts from the conditions of `types` the Node already shows (read at startup), so the
    /// first cycle after a restart keeps their transition times and reports real flips only.
    pub fn seed(&mut self, existing: &[NodeCondition], types: &[String]) {
        for c in existing.iter().filter(|c| types.contains(&c.type_)) {
            let (Some(status), Some(ltt)) = (
                CondStatus::parse(&c.status),
                c.last_transition_time.as_ref(),
            ) else {
                continue;
            };
            self.tracked.push(Tracked {
                desired: Desired {
                    type_: c.type_.clone(),
                    profile: String::new(),
                    status,
                    reason: c.reason.clone().unwrap_or_default(),
                    message: c.message.clone().unwrap_or_default(),
                    failing: Vec::new(),
                    detail: String::new(),
                },
                last_transition: ltt.0,
            });
        }
    }

    /// Returns true if and only if the conditions differ from what was last written in
    /// status, reason or failing ids, or a condition appeared or went away. A change of a
    /// message alone does not count: the next heartbeat write carries it.
    pub fn changed(&self) -> bool {
        self.changed
    }

    /// Records a successful write of the current conditions.
    pub fn mark_written(&mut self) {
        self.changed = false;
    }

    /// Forgets the conditions of `types` (they will not be written); returns true if any was
    /// tracked.
    pub fn forget(&mut self, types: &[String]) -> bool {
        let before = self.tracked.len();
        self.tracked.retain(|t| !types.contains(&t.desired.type_));
        before != self.tracked.len()
    }

    /// Returns the current conditions as last computed (or seeded from the Node).
    pub fn desired(&self) -> Vec<Desired> {
        self.tracked.iter().map(|t| t.desired.clone()).collect()
    }

    /// Returns the current conditions' types and statuses.
    pub fn statuses(&self) -> Vec<(String, CondStatus)> {
        self.tracked
            .iter()
            .map(|t| (t.desired.type_.clone(), t.desired.status))
            .collect()
    }

    /// Returns the server-side apply body for `nodes/<node>/status`: exactly the conditions
    /// this agent owns, each with `lastHeartbeatTime` = `now`.
    pub fn apply_body(&self, node: &str, now: DateTime<Utc>) -> Value {
        let conditions: Vec<Value> = self
            .tracked
            .iter()
            .map(|t| {
                json!({
                    "type": t.desired.type_,
                    "status": t.desired.status.as_str(),
                    "reason": t.desired.reason,
                    "message": t.desired.message,
                    "lastHeartbeatTime": rfc3339(now),
                    "lastTransitionTime": rfc3339(t.last_transition),
                })
            })
            .collect();
        json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": node},
            "status": {"conditions": conditions},
        })
    }
}

/// Formats a time as Kubernetes' `Time` (RFC 3339, seconds, `Z`).
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hostready_checks::finding::ProbeRun;
    use hostready_checks::{Evidence, Level, Remediation};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    /// The subject a built-in requirement with this default id has (test set-up only: the
    /// agent itself never reads an id's prefix).
    fn subject_of(id: &str) -> Subject {
        let (family, rest) = id.split_once('.').unwrap_or((id, ""));
        match (family, rest) {
            ("exe", n) => Subject::Executable(n.into()),
            ("kmod", n) => Subject::KernelModule(n.into()),
            ("svc", "multipathd") => Subject::Multipathd,
            ("svc", n) => Subject::Service(n.into()),
            ("nfs", "client") => Subject::NfsClient,
            ("nfs", "defaultvers") => Subject::NfsDefaultvers,
            ("hugepages", _) => Subject::Hugepages {
                page_size_kib: 2048,
            },
            _ => Subject::Command(format!("/usr/bin/{rest}")),
        }
    }

    fn finding(id: &str, status: Status, level: Level) -> Finding {
        Finding {
            subject: subject_of(id),
            probe: None,
            id: id.into(),
            profile: "longhorn".into(),
            level,
            status,
            message: format!("{id} says {}", status.as_str()),
            evidence: Evidence::default(),
            remediation: (status != Status::Pass).then(|| Remediation {
                summary: format!("repair {id}"),
                commands: vec![format!("apt-get install -y {id}")],
                ..Remediation::default()
            }),
        }
    }

    fn d(findings: &[Finding]) -> Desired {
        let refs: Vec<&Finding> = findings.iter().collect();
        desired("longhorn", "LonghornReady", &refs)
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn all_pass_is_true_and_warnings_do_not_fail() {
        let c = d(&[
            finding("exe.iscsiadm", Status::Pass, Level::Required),
            finding("svc.multipathd", Status::Warn, Level::Recommended),
        ]);
        assert_eq!(c.status, CondStatus::True);
        assert_eq!(c.reason, "RequirementsMet");
        assert!(c.failing.is_empty());
        assert!(c.message.starts_with("all 2 requirements met"));
        assert!(c.message.contains("svc.multipathd warn"), "{}", c.message);
    }

    #[test]
    fn one_kind_of_failure_names_it_and_the_fix() {
        let c = d(&[
            finding("exe.iscsiadm", Status::Fail, Level::Required),
            finding("exe.mount.nfs", Status::Fail, Level::Required),
            finding("kmod.iscsi_tcp", Status::Pass, Level::Required),
        ]);
        assert_eq!(c.status, CondStatus::False);
        assert_eq!(c.reason, "ExecutableMissing");
        assert_eq!(c.failing, ["exe.iscsiadm", "exe.mount.nfs"]);
        assert!(
            c.message.contains(
                "exe.iscsiadm fail: exe.iscsiadm says fail; fix: repair exe.iscsiadm ($ apt-get install -y exe.iscsiadm)"
            ),
            "{}",
            c.message
        );
    }

    #[test]
    fn mixed_failures_and_unknowns() {
        let c = d(&[
            finding("exe.iscsiadm", Status::Fail, Level::Required),
            finding("kmod.iscsi_tcp", Status::Fail, Level::Required),
            finding("svc.iscsid", Status::Unknown, Level::Required),
        ]);
        assert_eq!(c.status, CondStatus::False);
        assert_eq!(c.reason, "RequirementsNotMet");
        assert_eq!(c.failing, ["exe.iscsiadm", "kmod.iscsi_tcp", "svc.iscsid"]);
        let u = d(&[
            finding("kmod.iscsi_tcp", Status::Unknown, Level::Required),
            finding("exe.iscsiadm", Status::Pass, Level::Required),
        ]);
        assert_eq!(
            (u.status, u.reason.as_str()),
            (CondStatus::Unknown, "CheckUnknown")
        );
    }

    /// A command finding's condition words name the deadline, never the measured time or a
    /// pid; other findings keep theirs.
    #[test]
    fn command_findings_get_stable_words() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.yaml");
        std::fs::write(
            &path,
            "name: p\nrequirements:\n  - id: probe.disk\n    command: [/usr/bin/disk-probe, --all]\n    timeout: 2s\n  - executable: zfs\n",
        )
        .unwrap();
        let profile = hostready_checks::profile::load(path.to_str().unwrap()).unwrap();
        let check = |id: &str| {
            &profile
                .requirements
                .iter()
                .find(|r| r.id == id)
                .unwrap()
                .check
        };
        let run = |end| ProbeRun {
            command: "/usr/bin/disk-probe --all".into(),
            deadline: match check("probe.disk") {
                hostready_checks::Check::Command(c) => c.timeout,
                c => panic!("{c:?}"),
            },
            end,
        };
        let mut f = finding("probe.disk", Status::Unknown, Level::Required);
        f.subject = check("probe.disk").subject();
        f.message = "timed out after 2.0312s: /usr/bin/disk-probe --all".into();
        f.evidence
            .add("exit", "timed out; SIGTERM, then killed by SIGTERM");
        f.evidence.add("duration", "2.0312s");
        f.probe = Some(run(ProbeEnd::TimedOut {
            sigkill: false,
            still_alive: false,
        }));
        let s = stable_finding(&f);
        assert_eq!(s.message, "/usr/bin/disk-probe timed out (deadline 2s)");
        let mut stuck = finding("probe.disk", Status::Unknown, Level::Required);
        stuck.message = "not started again: previous run stuck since 2026-01-01T00:00:00Z, pid 4711 (disk-probe), state D".into();
        stuck.evidence.add(
            "exit",
            "not started: previous run stuck since ..., pid 4711",
        );
        stuck.subject = check("probe.disk").subject();
        stuck.probe = Some(run(ProbeEnd::PreviousRunAlive));
        let s = stable_finding(&stuck);
        assert_eq!(
            s.message,
            "/usr/bin/disk-probe not started: its previous run is still alive"
        );
        let mut exe = finding("exe.zfs", Status::Fail, Level::Required);
        exe.subject = check("exe.zfs").subject();
        assert_eq!(stable_finding(&exe).message, exe.message);
    }

    #[test]
    fn reasons_of_the_node_families() {
        assert_eq!(
            reason_for(&Subject::CriSocket, "cri.socket"),
            "CriSocketNotListening"
        );
        assert_eq!(
            reason_for(
                &Subject::DataPath("/var/lib/longhorn".into()),
                "longhorn.data"
            ),
            "DataPathUnsuitable"
        );
        assert_eq!(
            reason_for(&Subject::RawDisks, "disk.raw"),
            "RawDisksInsufficient"
        );
    }

    #[test]
    fn reasons_by_family() {
        let reason = |id: &str| reason_for(&subject_of(id), id);
        assert_eq!(reason("kmod.nfs"), "ModuleNotLoaded");
        assert_eq!(reason("svc.iscsid"), "ServiceNotRunning");
        assert_eq!(reason("svc.multipathd"), "MultipathdConflict");
        assert_eq!(reason("nfs.defaultvers"), "NfsVersionUnsupported");
        assert_eq!(reason("probe.disk"), "ProbeFailed");
        assert_eq!(reason("hugepages.2048kib"), "HugepagesInsufficient");
        // Regression: the reason followed the id's prefix, so an executable requirement with
        // its own `id:` failed as a mere `RequirementFailed`.
        let site = Subject::Executable("iscsiadm".into());
        assert_eq!(reason_for(&site, "site.initiator"), "ExecutableMissing");
        assert_eq!(
            reason_for(&Subject::Command("/x".into()), "custom.x"),
            "RequirementFailed"
        );
    }

    #[test]
    fn condition_type_from_profile() {
        let mut p = hostready_checks::profile::load("nfs-client").unwrap();
        assert_eq!(p.condition_type(), "NfsClientReady");
        p.condition = Some("LonghornReady".into());
        assert_eq!(p.condition_type(), "LonghornReady");
    }

    #[test]
    fn long_messages_are_capped_and_say_how_many_are_left_out() {
        let many: Vec<Finding> = (0..100)
            .map(|i| finding(&format!("exe.tool{i}"), Status::Fail, Level::Required))
            .collect();
        let c = d(&many);
        assert!(c.message.len() <= MAX_MESSAGE, "{}", c.message.len());
        assert!(c.message.contains("more"), "{}", c.message);
        assert_eq!(c.failing.len(), 100);
    }

    #[test]
    fn transition_time_changes_only_when_status_flips() {
        let mut set = ConditionSet::default();
        let failing = d(&[finding("exe.iscsiadm", Status::Fail, Level::Required)]);
        let t0 = t("2026-01-01T10:00:00Z");
        let tr = set.update(vec![failing.clone()], t0);
        assert_eq!(tr.len(), 1);
        assert_eq!(tr[0].from, None);
        assert!(set.changed());
        set.mark_written();

        // Same status, different message: a write but no transition.
        let other = d(&[finding("exe.mount.nfs", Status::Fail, Level::Required)]);
        assert!(
            set.update(vec![other], t("2026-01-01T10:30:00Z"))
                .is_empty()
        );
        assert!(set.changed());
        let body = set.apply_body("n1", t("2026-01-01T10:30:00Z"));
        let c = &body["status"]["conditions"][0];
        assert_eq!(c["lastTransitionTime"], "2026-01-01T10:00:00Z");
        assert_eq!(c["lastHeartbeatTime"], "2026-01-01T10:30:00Z");
        set.mark_written();

        // Identical: nothing to write.
        let same = d(&[finding("exe.mount.nfs", Status::Fail, Level::Required)]);
        assert!(set.update(vec![same], t("2026-01-01T11:00:00Z")).is_empty());
        assert!(!set.changed());

        // Flip: transition and new time.
        let ok = d(&[finding("exe.iscsiadm", Status::Pass, Level::Required)]);
        let tr = set.update(vec![ok], t("2026-01-01T11:30:00Z"));
        assert_eq!(
            (tr[0].from, tr[0].to),
            (Some(CondStatus::False), CondStatus::True)
        );
        let body = set.apply_body("n1", t("2026-01-01T11:30:00Z"));
        assert_eq!(
            body["status"]["conditions"][0]["lastTransitionTime"],
            "2026-01-01T11:30:00Z"
        );
    }

    /// A message-only change (same status, reason, failing ids) waits for the heartbeat:
    /// not "changed", but the next write carries the newest message; the event detail keeps
    /// the volatile words.
    #[test]
    fn a_message_alone_is_not_an_urgent_change() {
        let mut set = ConditionSet::default();
        let mut a = d(&[finding("probe.x", Status::Unknown, Level::Required)]);
        set.update(vec![a.clone()], t("2026-01-01T10:00:00Z"));
        set.mark_written();
        a.message.push_str(" (reworded)");
        a.detail = "timed out after 5.0123s".into();
        assert!(set.update(vec![a], t("2026-01-01T10:01:00Z")).is_empty());
        assert!(!set.changed());
        let body = set.apply_body("n1", t("2026-01-01T10:05:00Z"));
        let msg = body["status"]["conditions"][0]["message"].as_str().unwrap();
        assert!(msg.ends_with("(reworded)"), "{msg}");
        assert!(!body.to_string().contains("5.0123"), "{body}");
        // A changed set of failing ids is written at once.
        set.update(
            vec![d(&[
                finding("probe.x", Status::Unknown, Level::Required),
                finding("exe.y", Status::Fail, Level::Required),
            ])],
            t("2026-01-01T10:02:00Z"),
        );
        assert!(set.changed());
    }

    #[test]
    fn dropping_a_profile_is_a_change_and_leaves_it_out_of_the_body() {
        let mut set = ConditionSet::default();
        let a = d(&[finding("exe.iscsiadm", Status::Pass, Level::Required)]);
        let mut b = a.clone();
        b.type_ = "NfsClientReady".into();
        set.update(vec![a.clone(), b], t("2026-01-01T10:00:00Z"));
        set.mark_written();
        set.update(vec![a], t("2026-01-01T10:30:00Z"));
        assert!(set.changed());
        let body = set.apply_body("n1", t("2026-01-01T10:30:00Z"));
        let types: Vec<&str> = body["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["LonghornReady"]);
    }

    #[test]
    fn adopting_keeps_the_nodes_transition_time_when_status_agrees() {
        let mut set = ConditionSet::default();
        set.update(
            vec![d(&[finding("exe.iscsiadm", Status::Fail, Level::Required)])],
            t("2026-01-02T00:00:00Z"),
        );
        let existing = NodeCondition {
            type_: "LonghornReady".into(),
            status: "False".into(),
            last_transition_time: Some(Time(t("2025-12-01T00:00:00Z"))),
            ..NodeCondition::default()
        };
        assert_eq!(
            set.adopt(std::slice::from_ref(&existing)),
            ["LonghornReady"]
        );
        let body = set.apply_body("n1", t("2026-01-02T00:00:00Z"));
        assert_eq!(
            body["status"]["conditions"][0]["lastTransitionTime"],
            "2025-12-01T00:00:00Z"
        );
        let flipped = NodeCondition {
            status: "True".into(),
            ..existing
        };
        let mut set2 = ConditionSet::default();
        set2.update(
            vec![d(&[finding("exe.iscsiadm", Status::Fail, Level::Required)])],
            t("2026-01-02T00:00:00Z"),
        );
        assert!(set2.adopt(&[flipped]).is_empty());
    }
}
