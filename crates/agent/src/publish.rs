//! Talking to the Kubernetes API: read the Node, server-side apply its conditions on
//! `nodes/<name>/status` and its scheduling labels on `nodes/<name>`, create events
//! (events.k8s.io/v1). Every call is bounded by a
//! deadline; errors are classified for the metrics and retried by the caller with backoff.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, ObjectReference};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::chrono::{DateTime, Utc};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::Value;

use crate::condition::{CondStatus, FIELD_MANAGER, Transition};

/// The deadline of one API call, on top of the client's own connect/read timeouts.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// `reportingController` of the agent's events.
pub const REPORTING_CONTROLLER: &str = "hostready.dev/agent";

/// The events API caps a note at 1 KiB.
const MAX_NOTE: usize = 1024;

/// A failed API call.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{op} failed")]
    Kube {
        op: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("{op}: no answer within {CALL_TIMEOUT:?}")]
    Timeout { op: &'static str },
}

impl ApiError {
    /// Returns the operation that failed.
    pub fn op(&self) -> &'static str {
        match self {
            ApiError::Kube { op, .. } | ApiError::Timeout { op } => op,
        }
    }

    /// Returns the HTTP status as text (`403`), or `timeout`, `connect`, `other`.
    pub fn code(&self) -> String {
        match self {
            ApiError::Timeout { .. } => "timeout".into(),
            ApiError::Kube { source, .. } => match source {
                kube::Error::Api(s) => s.code.to_string(),
                e if crate::client::is_too_large(e) => "too_large".into(),
                kube::Error::HyperError(_) | kube::Error::Service(_) => "connect".into(),
                _ => "other".into(),
            },
        }
    }

    /// Returns one line for logs: the operation, then the server's status and message, or
    /// the client error's chain (kube's own `Display` of an API error repeats itself).
    pub fn describe(&self) -> String {
        match self {
            ApiError::Timeout { .. } => self.to_string(),
            ApiError::Kube {
                op,
                source: kube::Error::Api(s),
            } => format!("{op}: HTTP {} {}: {}", s.code, s.reason, s.message),
            ApiError::Kube { op, source } if crate::client::is_too_large(source) => format!(
                "{op}: the response is larger than {} bytes (refused at the cap)",
                crate::agent::MAX_RESPONSE_BYTES
            ),
            ApiError::Kube { op, source } => {
                let mut out = format!("{op}: {source}");
                let mut cur = std::error::Error::source(source);
                while let Some(c) = cur {
                    out.push_str(&format!(": {c}"));
                    cur = c.source();
                }
                out
            }
        }
    }

    /// Returns the HTTP status, if the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Kube {
                source: kube::Error::Api(s),
                ..
            } => Some(s.code),
            _ => None,
        }
    }
}

async fn bounded<T>(
    op: &'static str,
    fut: impl std::future::Future<Output = Result<T, kube::Error>>,
) -> Result<T, ApiError> {
    match tokio::time::timeout(CALL_TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(source)) => Err(ApiError::Kube { op, source }),
        Err(_) => Err(ApiError::Timeout { op }),
    }
}

/// The agent's view of one Node and the events namespace.
#[derive(Clone)]
pub struct Kube {
    nodes: Api<Node>,
    events: Api<Event>,
    node: String,
}

impl std::fmt::Debug for Kube {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kube").field("node", &self.node).finish()
    }
}

impl Kube {
    /// Returns a handle reporting on `node`, with events in `events_namespace`.
    pub fn new(client: kube::Client, node: &str, events_namespace: &str) -> Kube {
        Kube {
            nodes: Api::all(client.clone()),
            events: Api::namespaced(client, events_namespace),
            node: node.to_string(),
        }
    }

    /// Reads the Node (for its uid and the conditions already on it).
    pub async fn get_node(&self) -> Result<Node, ApiError> {
        bounded("get_node", self.nodes.get(&self.node)).await
    }

    /// Applies `body` (from [`crate::condition::ConditionSet::apply_body`]) to the Node's status
    /// under the agent's field manager. `force` takes over a condition someone else edited by
    /// hand; the kubelet's conditions are other entries of the list and are never touched.
    pub async fn apply_conditions(&self, body: &Value) -> Result<(), ApiError> {
        let params = PatchParams::apply(FIELD_MANAGER).force();
        bounded(
            "apply_conditions",
            self.nodes
                .patch_status(&self.node, &params, &Patch::Apply(body)),
        )
        .await
        .map(|_| ())
    }

    /// Applies `body` (from [`crate::labels::apply_body`]) to the Node object itself — labels
    /// live in its metadata, which a status write cannot change — under the agent's field
    /// manager, and returns the Node as stored (its `managedFields` say which labels the agent
    /// now owns). Forced: the `hostready.dev/` prefix is hostready's, and a hand edit of one of
    /// its labels must not stall the agent with a conflict.
    pub async fn apply_labels(&self, body: &Value) -> Result<Node, ApiError> {
        let params = PatchParams::apply(FIELD_MANAGER).force();
        bounded(
            "apply_labels",
            self.nodes.patch(&self.node, &params, &Patch::Apply(body)),
        )
        .await
    }

    /// Creates an event.
    pub async fn create_event(&self, event: &Event) -> Result<(), ApiError> {
        bounded(
            "create_event",
            self.events.create(&PostParams::default(), event),
        )
        .await
        .map(|_| ())
    }
}

/// What an event says, before it is addressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSpec {
    pub warning: bool,
    pub reason: String,
    pub action: &'static str,
    pub note: String,
    pub time: DateTime<Utc>,
}

impl EventSpec {
    /// The event for a condition transition: reason = the condition's reason, the note names
    /// the change and the finding ids involved.
    pub fn transition(t: &Transition, time: DateTime<Utc>) -> EventSpec {
        let from = t.from.map_or("(none)", CondStatus::as_str);
        let mut note = format!("{} {} -> {} ({})", t.type_, from, t.to.as_str(), t.reason);
        if !t.failing.is_empty() {
            note.push_str(&format!("; failing: {}", t.failing.join(", ")));
        }
        note.push_str(". ");
        note.push_str(&t.message);
        EventSpec {
            warning: t.to != CondStatus::True,
            reason: t.reason.clone(),
            action: "CheckHost",
            note: cap(note),
            time,
        }
    }

    /// The event for a config file that was refused.
    pub fn config_refused(message: &str, time: DateTime<Utc>) -> EventSpec {
        EventSpec {
            warning: true,
            reason: "ConfigInvalid".into(),
            action: "LoadConfig",
            note: cap(format!(
                "config refused, the last good one stays: {message}"
            )),
            time,
        }
    }

    /// The event for a condition the agent refuses to write because another field manager
    /// owns it.
    pub fn condition_owned(message: &str, time: DateTime<Utc>) -> EventSpec {
        EventSpec {
            warning: true,
            reason: "ConditionOwnedElsewhere".into(),
            action: "PublishConditions",
            note: cap(message.to_string()),
            time,
        }
    }

    /// Returns the events.k8s.io/v1 object about `node` (uid if known).
    pub fn to_event(&self, node: &str, uid: Option<&str>) -> Event {
        Event {
            metadata: ObjectMeta {
                generate_name: Some(format!("{node}.hostready-")),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(self.time)),
            reporting_controller: Some(REPORTING_CONTROLLER.into()),
            reporting_instance: Some(
                format!("hostready-agent-{node}")
                    .chars()
                    .take(128)
                    .collect(),
            ),
            action: Some(self.action.into()),
            reason: Some(self.reason.clone()),
            note: Some(self.note.clone()),
            type_: Some(if self.warning { "Warning" } else { "Normal" }.into()),
            regarding: Some(ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Node".into()),
                name: Some(node.into()),
                uid: uid.map(str::to_string),
                ..ObjectReference::default()
            }),
            ..Event::default()
        }
    }
}

fn cap(mut s: String) -> String {
    if s.len() > MAX_NOTE {
        let mut end = MAX_NOTE - 3;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str("...");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Request, Response};
    use kube::client::Body;

    type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;
    type Send = tower_test::mock::SendResponse<Response<Body>>;

    /// Takes the next request, asserts that it is a server-side apply under the agent's field
    /// manager (PATCH, an apply patch, `fieldManager=hostready-agent`), and returns its URI,
    /// its body, and the handle to answer it with.
    async fn next_apply(handle: &mut Handle) -> (String, Value, Send) {
        let (req, send) = handle.next_request().await.expect("a request");
        assert_eq!(req.method(), http::Method::PATCH);
        let uri = req.uri().to_string();
        assert!(uri.contains("fieldManager=hostready-agent"), "{uri}");
        assert_eq!(
            req.headers()[http::header::CONTENT_TYPE],
            "application/apply-patch+yaml"
        );
        let bytes = http_body_util::BodyExt::collect(req.into_body())
            .await
            .unwrap()
            .to_bytes();
        (uri, serde_json::from_slice(&bytes).unwrap(), send)
    }

    fn ts() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn transition_event_names_ids_and_fits() {
        let t = Transition {
            type_: "LonghornReady".into(),
            from: Some(CondStatus::True),
            to: CondStatus::False,
            reason: "ExecutableMissing".into(),
            failing: vec!["exe.iscsiadm".into()],
            message: "x".repeat(5000),
        };
        let e = EventSpec::transition(&t, ts());
        assert!(e.warning);
        assert!(
            e.note.starts_with(
                "LonghornReady True -> False (ExecutableMissing); failing: exe.iscsiadm"
            )
        );
        assert!(e.note.len() <= MAX_NOTE);
        let ev = e.to_event("n1", Some("uid-1"));
        assert_eq!(ev.regarding.unwrap().kind.as_deref(), Some("Node"));
        assert_eq!(ev.type_.as_deref(), Some("Warning"));
    }

    /// The apply goes to the status subresource, as an apply patch, under the fixed field
    /// manager, forced; the body holds only the agent's conditions.
    #[tokio::test]
    async fn apply_is_server_side_apply_on_node_status() {
        let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = kube::Client::new(svc, "default");
        let kube = Kube::new(client, "node-a", "default");
        let mut set = crate::condition::ConditionSet::default();
        set.update(
            vec![crate::condition::Desired {
                type_: "LonghornReady".into(),
                profile: "longhorn".into(),
                status: CondStatus::False,
                reason: "ExecutableMissing".into(),
                message: "exe.iscsiadm fail".into(),
                failing: vec!["exe.iscsiadm".into()],
                detail: String::new(),
            }],
            ts(),
        );
        let body = set.apply_body("node-a", ts());
        let server = tokio::spawn(async move {
            let (uri, sent, send) = next_apply(&mut handle).await;
            assert!(uri.starts_with("/api/v1/nodes/node-a/status?"), "{uri}");
            assert!(uri.contains("force=true"), "{uri}");
            let conds = sent["status"]["conditions"].as_array().unwrap();
            assert_eq!(conds.len(), 1);
            assert_eq!(conds[0]["type"], "LonghornReady");
            assert_eq!(conds[0]["reason"], "ExecutableMissing");
            assert!(sent.get("spec").is_none());
            let node = serde_json::json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a"}});
            send.send_response(
                Response::builder()
                    .body(Body::from(serde_json::to_vec(&node).unwrap()))
                    .unwrap(),
            );
        });
        kube.apply_conditions(&body).await.unwrap();
        server.await.unwrap();
    }

    /// The labels' apply goes to the Node object (not /status), as an apply patch under the
    /// same field manager, and carries nothing but the labels.
    #[tokio::test]
    async fn labels_are_applied_to_the_node_object_not_its_status() {
        let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let kube = Kube::new(kube::Client::new(svc, "default"), "node-a", "default");
        let mut labels = crate::labels::Labels::new();
        labels.insert("hostready.dev/iscsi".into(), "false".into());
        let body = crate::labels::apply_body("node-a", &labels);
        let server = tokio::spawn(async move {
            let (uri, sent, send) = next_apply(&mut handle).await;
            assert!(uri.starts_with("/api/v1/nodes/node-a?"), "{uri}");
            assert_eq!(
                sent["metadata"],
                serde_json::json!({"name": "node-a", "labels": {"hostready.dev/iscsi": "false"}})
            );
            assert!(sent.get("status").is_none() && sent.get("spec").is_none());
            // The labelled Node back, as the API server answers an apply.
            send.send_response(
                Response::builder()
                    .body(Body::from(serde_json::to_vec(&sent).unwrap()))
                    .unwrap(),
            );
        });
        kube.apply_labels(&body).await.unwrap();
        server.await.unwrap();
    }

    #[tokio::test]
    async fn forbidden_is_classified_403() {
        let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let kube = Kube::new(kube::Client::new(svc, "default"), "node-a", "default");
        let server = tokio::spawn(async move {
            let (_, send) = handle.next_request().await.unwrap();
            let status = serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                "message": "forbidden", "reason": "Forbidden", "code": 403});
            send.send_response(
                Response::builder()
                    .status(403)
                    .body(Body::from(serde_json::to_vec(&status).unwrap()))
                    .unwrap(),
            );
        });
        let e = kube.get_node().await.unwrap_err();
        assert_eq!((e.code().as_str(), e.status()), ("403", Some(403)));
        server.await.unwrap();
    }
}
