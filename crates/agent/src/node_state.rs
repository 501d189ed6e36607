//! What the agent tells its Node, and when: the conditions it owns (with their transition
//! times), its scheduling labels (`labels.rs`: written only when the set differs from what
//! the Node shows as the agent's), the events waiting to be created, whether another field
//! manager owns one of its condition types, and the backoff of failed writes. `agent.rs` decides when to check and
//! when to publish; this file does the publishing.
//!
//! Memory stays bounded whatever the API does: only the latest conditions are kept (a write
//! sends the newest state, never a backlog), and at most [`MAX_PENDING_EVENTS`] events wait.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::chrono::Utc;

use crate::agent::Options;
use crate::backoff::{Backoff, Jitter};
use crate::condition::{CondStatus, ConditionSet};
use crate::cycle::CycleResult;
use crate::labels::{self, Labels};
use crate::log;
use crate::metrics::Metrics;
use crate::publish::{ApiError, EventSpec, Kube};

/// Events waiting for the API beyond this are dropped, oldest first (and counted).
pub const MAX_PENDING_EVENTS: usize = 32;

/// What the agent has to tell its Node, kept between cycles.
pub(crate) struct NodeState {
    pub(crate) kube: Kube,
    node: String,
    metrics: Arc<Metrics>,
    pub(crate) conditions: ConditionSet,
    /// Events not yet created; `Some(type)` marks a condition's first appearance, which is
    /// dropped if the Node already showed that status (the agent restarted).
    pending: VecDeque<(Option<String>, EventSpec)>,
    pub(crate) uid: Option<String>,
    last_write: Option<Instant>,
    pub(crate) backoff: Backoff,
    pub(crate) retry_at: Option<Instant>,
    /// The conditions to publish were checked against the Node's managedFields.
    pub(crate) verified: bool,
    /// Condition types withheld because another field manager owns them (found when the
    /// Node could first be read, after the config was accepted).
    withheld: Vec<String>,
    /// The last check cycle's readiness conditions and the last watch pass's condition: each
    /// side's update republishes the other's as it was, so neither removes the other.
    /// `None` until the first check cycle: the readiness conditions seeded from the Node are
    /// then kept as they are (a watch pass before it must not drop them).
    ready: Option<Vec<crate::condition::Desired>>,
    watch: Option<crate::condition::Desired>,
    /// Scheduling labels on (the agent sets it from the settings in force).
    pub(crate) labels_on: bool,
    /// The labels the Node shows as the agent's own (its field manager's apply to the Node
    /// object), as read with the Node and then as last written; `None` until the Node is read.
    pub(crate) labels_node: Option<Labels>,
    /// A label set the API refused for good (no `patch` on nodes in the ClusterRole, the
    /// admission policy) and when: tried again only at the next heartbeat, or sooner if the
    /// wanted set changes (so a fixed ClusterRole takes effect without a restart, and a
    /// refusal costs one request per heartbeat, not one per cycle).
    labels_refused: Option<(Labels, Instant)>,
}

impl NodeState {
    /// The state before the first cycle: nothing known, nothing written.
    pub(crate) fn new(kube: Kube, opts: &Options, metrics: Arc<Metrics>) -> NodeState {
        NodeState {
            kube,
            node: opts.node_name.clone(),
            metrics,
            conditions: ConditionSet::default(),
            pending: VecDeque::new(),
            uid: None,
            last_write: None,
            backoff: Backoff::new(
                Duration::from_millis(500),
                opts.backoff_cap,
                Jitter::from_entropy(),
            ),
            retry_at: None,
            verified: false,
            withheld: Vec::new(),
            ready: None,
            watch: None,
            labels_on: false,
            labels_node: None,
            labels_refused: None,
        }
    }

    /// Returns the label set to write now, if one is due: the profiles' statuses as labels
    /// while the switch is on (none before the first check cycle), the empty set while it is
    /// off — and only if that differs from what the Node shows as the agent's own, so an
    /// unchanged status never writes (heartbeats included). `None` until the Node was read.
    pub(crate) fn labels_due(&self, heartbeat: Duration) -> Option<Labels> {
        let node = self.labels_node.as_ref()?;
        let want = if self.labels_on {
            let ready: Vec<crate::condition::Desired> = self
                .ready
                .as_ref()?
                .iter()
                .filter(|d| !self.withheld.contains(&d.type_))
                .cloned()
                .collect();
            labels::wanted(&ready)
        } else {
            Labels::new()
        };
        let waiting = self
            .labels_refused
            .as_ref()
            .is_some_and(|(r, at)| *r == want && at.elapsed() < heartbeat);
        (want != *node && !waiting).then_some(want)
    }

    /// Applies `want` to the Node object. A refusal for good (400, 403, 422: RBAC, the policy)
    /// is logged and counted, and not retried until the wanted set changes; the conditions are
    /// not held up by it. Other failures are returned for the backoff.
    async fn write_labels(&mut self, want: Labels) -> Result<(), ApiError> {
        let body = labels::apply_body(&self.node, &want);
        match self.kube.apply_labels(&body).await {
            Ok(_) => {
                self.metrics.api_write("apply_labels");
                log::info(&format!("scheduling labels: {}", labels::describe(&want)));
                // What was written, not what the answer shows: a label someone else also owns
                // stays on the Node after the agent lets go of it, and must not make the agent
                // apply again and again.
                self.labels_node = Some(want);
                self.labels_refused = None;
                Ok(())
            }
            Err(e) if matches!(e.status(), Some(400 | 403 | 422)) => {
                self.metrics.api_error(e.op(), &e.code());
                log::warn(&format!(
                    "scheduling labels {} refused: {}; tried again at the next heartbeat (the \
                     ClusterRole needs patch on nodes: the chart's config.schedulingLabels; a \
                     label the agent can no longer remove goes with `kubectl label node {} \
                     <key>-`)",
                    labels::describe(&want),
                    e.describe(),
                    self.node
                ));
                self.labels_refused = Some((want, Instant::now()));
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Checks a newly loaded config's condition types against the Node's owners: `Err` with
    /// why if another field manager owns one (the config is refused, the last good one stays).
    /// If the Node cannot be read now, the check is left to the next read before an apply.
    pub(crate) async fn check_ownership(&mut self, types: &[String]) -> Result<(), String> {
        match self.kube.get_node().await {
            Ok(node) => {
                let conflicts = crate::ownership::conflicts(&node, types);
                if !conflicts.is_empty() {
                    return Err(format!(
                        "{}; a profile may only publish a condition no one else owns",
                        crate::agent::list(&conflicts)
                    ));
                }
                self.verified = true;
            }
            Err(e) => {
                self.metrics.api_error(e.op(), &e.code());
                self.verified = false;
            }
        }
        self.withheld.clear();
        self.report_withheld();
        Ok(())
    }

    /// Withholds the conditions another field manager owns on `node` (the config was
    /// accepted while the Node could not be read), and reports each newly withheld one.
    fn withhold_foreign(&mut self, node: &k8s_openapi::api::core::v1::Node) {
        let types: Vec<String> = self
            .conditions
            .statuses()
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        for c in crate::ownership::conflicts(node, &types) {
            let text = format!(
                "{c}; not writing it (a profile may only publish a condition no one else owns)"
            );
            log::warn(&text);
            self.push_event(None, EventSpec::condition_owned(&text, Utc::now()));
            self.withheld.push(c.type_);
        }
        self.conditions.forget(&self.withheld);
        self.verified = true;
        self.report_withheld();
    }

    fn report_withheld(&self) {
        self.metrics.conditions_withheld.clear();
        for t in &self.withheld {
            self.metrics
                .conditions_withheld
                .get_or_create(&crate::metrics::ConditionTypeLabels {
                    condition: t.clone(),
                })
                .set(1);
        }
    }

    pub(crate) fn record(&mut self, r: CycleResult) {
        self.metrics.cycles.inc();
        self.metrics
            .check_duration
            .observe(r.duration.as_secs_f64());
        for id in &r.stats.timeouts {
            self.metrics
                .probe_timeouts
                .get_or_create(&crate::metrics::ProbeLabels { probe: id.clone() })
                .inc();
        }
        self.metrics.stuck_probes.set(r.stats.stuck as i64);
        self.metrics.set_findings(&r.findings);
        self.ready = Some(r.desired);
        self.update_conditions();
    }

    /// Records a watch pass (`None`: the watch is off, its condition goes away): its
    /// metrics, and its condition beside the readiness ones.
    pub(crate) fn record_watch(&mut self, r: Option<&crate::watch::WatchResult>) {
        if let Some(r) = r {
            self.metrics.set_watch(r);
        }
        let before = self.watch.take();
        self.watch = r.map(crate::watch::desired);
        if let (Some(b), Some(a)) = (&before, &self.watch) {
            if let Some(e) = crate::watch::new_problem_event(b, a, Utc::now()) {
                self.push_event(None, e);
            }
        }
        self.update_conditions();
    }

    /// Updates the tracked conditions to the readiness ones and the watch's, logging and
    /// queueing an event for each transition.
    fn update_conditions(&mut self) {
        let now = Utc::now();
        let mut desired = match &self.ready {
            Some(ready) => ready.clone(),
            None => self
                .conditions
                .desired()
                .into_iter()
                .filter(|d| d.type_ != crate::watch::CONDITION)
                .collect(),
        };
        desired.extend(self.watch.clone());
        desired.retain(|d| !self.withheld.contains(&d.type_));
        for t in self.conditions.update(desired, now) {
            log::info(&format!(
                "{} {} -> {} ({}) {}",
                t.type_,
                t.from.map_or("(none)", CondStatus::as_str),
                t.to.as_str(),
                t.reason,
                t.failing.join(", ")
            ));
            let appeared = t.from.is_none().then(|| t.type_.clone());
            self.push_event(appeared, EventSpec::transition(&t, now));
        }
        self.metrics.set_conditions(&self.conditions.statuses());
    }

    pub(crate) fn push_event(&mut self, appeared: Option<String>, e: EventSpec) {
        if self.pending.len() >= MAX_PENDING_EVENTS {
            self.pending.pop_front();
            self.metrics.events_dropped.inc();
        }
        self.pending.push_back((appeared, e));
    }

    /// Returns when the next publish is due: now if something changed or waits (but not
    /// before a backoff runs out), else at the heartbeat.
    pub(crate) fn publish_due(&self, heartbeat: Duration, now: Instant) -> Instant {
        let wanted = self.uid.is_none()
            || self.conditions.changed()
            || self.labels_due(heartbeat).is_some()
            || !self.pending.is_empty()
            || self.last_write.is_none();
        let due = if wanted {
            now
        } else {
            self.last_write.map_or(now, |w| w + heartbeat)
        };
        match self.retry_at {
            Some(r) if r > due => r,
            _ => due,
        }
    }

    pub(crate) async fn publish(&mut self, heartbeat: Duration) -> Result<(), ApiError> {
        let result = self.publish_inner(heartbeat).await;
        match &result {
            Ok(()) => {
                self.backoff.reset();
                self.retry_at = None;
            }
            Err(e) => {
                self.metrics.api_error(e.op(), &e.code());
                // The Node may have been deleted and created again: read it afresh.
                if e.status() == Some(404) {
                    self.uid = None;
                }
            }
        }
        result
    }

    async fn publish_inner(&mut self, heartbeat: Duration) -> Result<(), ApiError> {
        if self.uid.is_none() || !self.verified {
            let node = self.kube.get_node().await?;
            if !self.verified {
                self.withhold_foreign(&node);
            }
            self.uid = node.metadata.uid.clone();
            self.labels_node = Some(labels::owned(&node));
            let existing = node.status.and_then(|s| s.conditions).unwrap_or_default();
            let adopted = self.conditions.adopt(&existing);
            self.pending
                .retain(|(appeared, _)| appeared.as_ref().is_none_or(|t| !adopted.contains(t)));
        }
        let heartbeat_due = self.last_write.is_none_or(|w| w.elapsed() >= heartbeat);
        if self.conditions.changed() || heartbeat_due {
            let body = self.conditions.apply_body(&self.node, Utc::now());
            self.kube.apply_conditions(&body).await?;
            self.conditions.mark_written();
            self.last_write = Some(Instant::now());
            self.metrics.api_write("apply_conditions");
            self.metrics
                .last_publish
                .set(Utc::now().timestamp_millis() as f64 / 1000.0);
        }
        if let Some(want) = self.labels_due(heartbeat) {
            self.write_labels(want).await?;
        }
        while let Some((_, e)) = self.pending.front() {
            let event = e.to_event(&self.node, self.uid.as_deref());
            match self.kube.create_event(&event).await {
                Ok(()) => self.metrics.api_write("create_event"),
                // Refused for good (RBAC, validation): retrying cannot help, drop it.
                Err(err) if matches!(err.status(), Some(400 | 403 | 422)) => {
                    self.metrics.api_error(err.op(), &err.code());
                    self.metrics.events_dropped.inc();
                    log::warn(&format!("event dropped: {}", err.describe()));
                }
                Err(err) => return Err(err),
            }
            self.pending.pop_front();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Request, Response};
    use kube::client::Body;

    fn desired(type_: &str) -> crate::condition::Desired {
        crate::condition::Desired {
            type_: type_.into(),
            profile: "p".into(),
            status: CondStatus::False,
            reason: "ExecutableMissing".into(),
            message: "exe.x fail".into(),
            failing: vec!["exe.x".into()],
            detail: "exe.x fail".into(),
        }
    }

    /// A watch pass before the first check cycle keeps the readiness conditions seeded from
    /// the Node (an agent restarted), so they neither disappear nor "appear" again with an
    /// event; the watch's own condition appears beside them.
    #[tokio::test]
    async fn a_watch_pass_before_the_first_check_keeps_the_seeded_conditions() {
        let (svc, _handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let metrics = Arc::new(Metrics::new());
        let opts = test_options();
        let kube = Kube::new(kube::Client::new(svc, "default"), "n1", "default");
        let mut state = NodeState::new(kube, &opts, metrics);
        let seeded: k8s_openapi::api::core::v1::NodeCondition = serde_json::from_value(
            serde_json::json!({"type": "IscsiReady", "status": "True", "reason": "RequirementsMet",
                "lastTransitionTime": "2026-01-01T00:00:00Z"}),
        )
        .unwrap();
        state
            .conditions
            .seed(&[seeded], &["IscsiReady".to_string()]);
        let r = crate::watch::WatchResult {
            piles: Vec::new(),
            locks: Vec::new(),
            corrupt: Vec::new(),
            databases: Vec::new(),
            unknown: None,
            thresholds: hostready_doctor::Thresholds::default(),
            duration: Duration::ZERO,
        };
        state.record_watch(Some(&r));
        let types: Vec<String> = state
            .conditions
            .statuses()
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        assert_eq!(types, ["IscsiReady", crate::watch::CONDITION]);
        let events: Vec<&Option<String>> = state.pending.iter().map(|(t, _)| t).collect();
        assert_eq!(
            events,
            [&Some(crate::watch::CONDITION.to_string())],
            "only the watch's appearance"
        );
    }

    /// The labels are due only when the set differs from what the Node shows as the agent's:
    /// not before the Node is read nor before the first check, not for the same statuses
    /// again; a flip makes them due; switched off, the empty set is due while the Node still
    /// shows some of the agent's, and nothing once it shows none.
    #[tokio::test]
    async fn labels_are_due_only_when_the_set_differs_from_the_nodes() {
        let (svc, _handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let kube = Kube::new(kube::Client::new(svc, "default"), "n1", "default");
        let mut state = NodeState::new(kube, &test_options(), Arc::new(Metrics::new()));
        let hb = Duration::from_secs(3600);
        let cycle = |status: CondStatus| CycleResult {
            findings: Vec::new(),
            desired: vec![crate::condition::Desired {
                profile: "iscsi".into(),
                status,
                ..desired("IscsiReady")
            }],
            stats: Default::default(),
            duration: Duration::ZERO,
        };
        state.labels_on = true;
        assert_eq!(state.labels_due(hb), None, "the Node was not read");
        state.labels_node = Some(Labels::new());
        assert_eq!(state.labels_due(hb), None, "no check yet");
        state.record(cycle(CondStatus::True));
        let on: Labels = [("hostready.dev/iscsi".to_string(), "true".to_string())].into();
        assert_eq!(state.labels_due(hb), Some(on.clone()));
        // Written (or found on the Node after a restart): the same status is not due again.
        state.labels_node = Some(on.clone());
        state.record(cycle(CondStatus::True));
        assert_eq!(state.labels_due(hb), None);
        state.record(cycle(CondStatus::False));
        let off: Labels = [("hostready.dev/iscsi".to_string(), "false".to_string())].into();
        assert_eq!(state.labels_due(hb), Some(off.clone()));
        // A refused set waits for the heartbeat (or a change of the set).
        state.labels_refused = Some((off.clone(), Instant::now()));
        assert_eq!(state.labels_due(hb), None);
        assert_eq!(state.labels_due(Duration::ZERO), Some(off));
        state.record(cycle(CondStatus::True));
        assert_eq!(state.labels_due(hb), None, "back to what the Node shows");
        state.labels_on = false;
        assert_eq!(state.labels_due(hb), Some(Labels::new()));
        state.labels_node = Some(Labels::new());
        assert_eq!(state.labels_due(hb), None);
    }

    fn test_options() -> crate::agent::Options {
        crate::agent::Options {
            node_name: "n1".into(),
            root: "/".into(),
            proc: hostready_host::ProcSource::Disabled,
            config: None,
            defaults: crate::config::Defaults {
                profiles: Vec::new(),
                interval: Duration::from_secs(60),
                heartbeat: Duration::from_secs(60),
                search_path: String::new(),
            },
            once: false,
            metrics_addr: None,
            kubeconfig: None,
            events_namespace: "default".into(),
            max_cycles: None,
            backoff_cap: Duration::from_secs(1),
            reload_poll: Duration::from_secs(1),
            probe_kill_grace: Duration::from_secs(1),
            watch_interval: Duration::from_secs(60),
            scheduling_labels: false,
        }
    }

    /// The API was away at start, so ownership could not be checked then: at the first Node
    /// read before an apply, a condition the kubelet owns is withheld (never in the apply),
    /// reported by an event and the metric, and the others are published.
    #[tokio::test]
    async fn a_condition_found_owned_by_another_manager_later_is_withheld() {
        let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let metrics = Arc::new(Metrics::new());
        let mut state = NodeState {
            kube: Kube::new(kube::Client::new(svc, "default"), "n1", "default"),
            node: "n1".into(),
            metrics: metrics.clone(),
            conditions: ConditionSet::default(),
            pending: VecDeque::new(),
            uid: None,
            last_write: None,
            backoff: Backoff::new(
                Duration::from_millis(1),
                Duration::from_millis(1),
                Jitter::seeded(1),
            ),
            retry_at: None,
            verified: false,
            withheld: Vec::new(),
            ready: None,
            watch: None,
            labels_on: false,
            labels_node: None,
            labels_refused: None,
        };
        state
            .conditions
            .update(vec![desired("Ready"), desired("IscsiReady")], Utc::now());
        let server = tokio::spawn(async move {
            let (req, send) = handle.next_request().await.expect("get node");
            assert_eq!(req.method(), http::Method::GET);
            let node = serde_json::json!({"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": "n1", "uid": "u1", "managedFields": [
                    {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
                     "fieldsV1": {"f:status": {"f:conditions": {"k:{\"type\":\"Ready\"}": {".": {}}}}}}]}});
            send.send_response(
                Response::builder()
                    .body(Body::from(serde_json::to_vec(&node).unwrap()))
                    .unwrap(),
            );
            let (req, send) = handle.next_request().await.expect("apply");
            assert_eq!(req.method(), http::Method::PATCH);
            let bytes = http_body_util::BodyExt::collect(req.into_body())
                .await
                .unwrap()
                .to_bytes();
            let sent: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            let types: Vec<&str> = sent["status"]["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["type"].as_str().unwrap())
                .collect();
            assert_eq!(types, ["IscsiReady"]);
            send.send_response(
                Response::builder()
                    .body(Body::from(bytes.to_vec()))
                    .unwrap(),
            );
            let (req, send) = handle.next_request().await.expect("event");
            let bytes = http_body_util::BodyExt::collect(req.into_body())
                .await
                .unwrap()
                .to_bytes();
            let ev: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(ev["reason"], "ConditionOwnedElsewhere");
            assert!(
                ev["note"]
                    .as_str()
                    .unwrap()
                    .contains("condition Ready is owned by field manager kubelet"),
                "{ev}"
            );
            send.send_response(
                Response::builder()
                    .body(Body::from(bytes.to_vec()))
                    .unwrap(),
            );
        });
        state.publish(Duration::from_secs(3600)).await.unwrap();
        server.await.unwrap();
        assert_eq!(state.withheld, ["Ready"]);
        assert!(
            metrics
                .encode()
                .contains(r#"hostready_conditions_withheld{condition="Ready"} 1"#)
        );
        // Later cycles leave it out too.
        state.record(CycleResult {
            findings: Vec::new(),
            desired: vec![desired("Ready"), desired("IscsiReady")],
            stats: Default::default(),
            duration: Duration::ZERO,
        });
        let types: Vec<String> = state
            .conditions
            .statuses()
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        assert_eq!(types, ["IscsiReady"]);
    }
}
