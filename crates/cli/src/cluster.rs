//! `hostready cluster`: a table of nodes × profiles from the conditions the agents published
//! (only conditions owned by the agent's field manager), with what fails where, then the audit
//! (docs/cluster.md): stale agents, containers without a memory limit, known issues of the
//! running storage system's version, Longhorn's cluster-level preflight items.
//! Exit codes (`exit.rs`): 0 nothing needs attention (every node publishes every profile's
//! condition, all `True`, and the audit found nothing); 1 something needs attention (a
//! condition is `False`, or an audit item); 2 hostready cannot tell (nothing needs attention,
//! but a condition is `Unknown`, a node has not published it, or a list could not be read) or
//! the nodes are unreadable (including an API that does not answer within `--request-timeout`,
//! or answers with more than hostready-agent's `cluster::MAX_PAGE_BYTES` per page).

use std::process::ExitCode;
use std::time::Duration;

use hostready_agent::cluster::{self, ClusterView};
use hostready_agent::{KubeconfigArgs, WATCH_CONDITION};
use hostready_flags::duration;

use crate::exit::Verdict;
use crate::output::{self, Format, OutputArgs};

/// Arguments of `hostready cluster`.
#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    #[command(flatten)]
    pub kube: KubeconfigArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// The kubeconfig context to use (default: its current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Give up on a request (connect, answer and whole body, per page of 100 nodes) after this.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration::positive_flag)]
    pub request_timeout: Duration,
    /// Only the Nodes with these labels (a label selector, as kubectl's -l).
    #[arg(short = 'l', long = "selector", value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// Audit only the pods, workloads and LimitRanges of this namespace (default: all).
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// Audit only the pods with these labels (a label selector).
    #[arg(long, value_name = "SELECTOR")]
    pub pod_selector: Option<String>,
    /// A node whose newest hostready heartbeat is older than this is stale (default: the
    /// agent's default heartbeat, 5m, plus one more).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = duration::positive_flag)]
    pub stale_after: Duration,
}

/// Runs `hostready cluster`.
pub fn run(args: &ClusterArgs) -> anyhow::Result<ExitCode> {
    let view = cluster::fetch_with(&cluster::Options {
        kubeconfig: args.kube.kubeconfig.as_deref(),
        context: args.context.as_deref(),
        timeout: args.request_timeout,
        node_selector: args.selector.as_deref(),
        namespace: args.namespace.as_deref(),
        pod_selector: args.pod_selector.as_deref(),
        stale_after: args.stale_after,
    })?;
    match args.output.format {
        Format::Table => print_table(&view)?,
        f => output::print_data(f, &view)?,
    }
    Ok(verdict(&view).into())
}

/// Returns the verdict on the whole view: something that needs attention (a `False` condition
/// or an audit item) is a no, beating anything hostready cannot tell; otherwise the
/// conditions' verdict, and a list that could not be read means hostready cannot tell.
fn verdict(view: &ClusterView) -> Verdict {
    match conditions_verdict(view) {
        Verdict::No => Verdict::No,
        _ if view.audit.attention() > 0 => Verdict::No,
        _ if !view.audit.unreadable.is_empty() => Verdict::CannotTell,
        v => v,
    }
}

/// Returns the verdict on the conditions alone: a `False` anywhere is a no; otherwise anything
/// short of every node `True` for every type (an `Unknown`, a node without the condition, no
/// condition published at all) means hostready cannot tell.
fn conditions_verdict(view: &ClusterView) -> Verdict {
    let any_false = view
        .nodes
        .iter()
        .any(|n| n.conditions.values().any(|c| c.status == "False"));
    if any_false {
        Verdict::No
    } else if view.all_ready() && !view.types.is_empty() {
        Verdict::Yes
    } else {
        Verdict::CannotTell
    }
}

fn print_table(view: &ClusterView) -> anyhow::Result<()> {
    // Escapes node names and condition texts for the terminal: see output.rs.
    let mut out = output::stdout();
    if view.types.is_empty() {
        writeln!(
            out,
            "no hostready conditions published on any of {} nodes (is the agent deployed?)",
            view.nodes.len()
        )?;
        print_audit(&mut out, view)?;
        out.flush()?;
        return Ok(());
    }
    let name_w = view
        .nodes
        .iter()
        .map(|n| n.name.len())
        .chain([4])
        .max()
        .unwrap_or(4);
    // Since when a node has had a pile or a locked database: beside its condition.
    let since = |node: &str| {
        view.host_processes
            .iter()
            .find(|p| p.node == node)
            .map(|p| ago_short(p.age_seconds))
    };
    let cell = |n: &hostready_agent::cluster::NodeRow, t: &str| match n.conditions.get(t) {
        None => "-".to_string(),
        Some(c) if c.status == "True" => "True".to_string(),
        Some(c) => match since(&n.name).filter(|_| t == WATCH_CONDITION) {
            Some(age) => format!("{} ({}, {age})", c.status, c.reason),
            None => format!("{} ({})", c.status, c.reason),
        },
    };
    let widths: Vec<usize> = view
        .types
        .iter()
        .map(|t| {
            view.nodes
                .iter()
                .map(|n| cell(n, t).len())
                .chain([t.len()])
                .max()
                .unwrap_or(t.len())
        })
        .collect();
    write!(out, "{:name_w$}", "NODE")?;
    for (t, w) in view.types.iter().zip(&widths) {
        write!(out, "  {t:w$}")?;
    }
    writeln!(out)?;
    for n in &view.nodes {
        write!(out, "{:name_w$}", n.name)?;
        for (t, w) in view.types.iter().zip(&widths) {
            write!(out, "  {:w$}", cell(n, t))?;
        }
        writeln!(out)?;
    }
    let mut first = true;
    for n in &view.nodes {
        for (t, c) in &n.conditions {
            if c.status == "True" {
                continue;
            }
            if first {
                writeln!(out)?;
                first = false;
            }
            let age = since(&n.name)
                .filter(|_| t == WATCH_CONDITION)
                .map(|a| format!(" for {a}"))
                .unwrap_or_default();
            writeln!(
                out,
                "{} {t}={} {}{age}: {}",
                n.name, c.status, c.reason, c.message
            )?;
        }
    }
    let ready = view
        .nodes
        .iter()
        .filter(|n| {
            view.types
                .iter()
                .all(|t| n.conditions.get(t).is_some_and(|c| c.status == "True"))
        })
        .count();
    writeln!(out)?;
    writeln!(out, "{ready} of {} nodes ready", view.nodes.len())?;
    print_audit(&mut out, view)?;
    out.flush()?;
    Ok(())
}

/// Returns `secs` as an age for a table cell: `2h5m`, `12m`, `40s`, `?` when unknown.
fn ago_short(secs: Option<u64>) -> String {
    match secs {
        // Minutes are enough beside a pile that has been there for hours.
        Some(s) if s >= 3600 => duration::format(Duration::from_secs(s / 60 * 60)),
        Some(s) => duration::format(Duration::from_secs(s)),
        None => "?".to_string(),
    }
}

/// Returns `secs` as `1h2m`, `5m`, `40s` (the shared duration grammar, whole units).
fn ago(secs: Option<u64>) -> String {
    match secs {
        Some(s) => duration::format(Duration::from_secs(s)),
        None => "an unknown time".to_string(),
    }
}

/// Prints the audit sections, each only when it has something to say.
fn print_audit<W: std::io::Write>(
    out: &mut output::Text<W>,
    view: &ClusterView,
) -> anyhow::Result<()> {
    use hostready_agent::audit::stale::Why;
    let a = &view.audit;
    writeln!(out)?;
    if a.stale.is_empty() {
        writeln!(
            out,
            "stale agents: none (heartbeat within {}; {})",
            a.stale_after, a.scope.note
        )?;
    } else {
        writeln!(
            out,
            "stale agents: {} (no heartbeat within {}; {}):",
            a.stale.len(),
            a.stale_after,
            a.scope.note
        )?;
        for s in &a.stale {
            match s.why {
                Why::Heartbeat => writeln!(
                    out,
                    "  {}  hostready conditions last heartbeated {} ago",
                    s.node,
                    ago(s.age_seconds)
                )?,
                Why::NoConditions => writeln!(
                    out,
                    "  {}  no hostready conditions (node created {} ago)",
                    s.node,
                    ago(s.age_seconds)
                )?,
            }
        }
    }
    let needing: Vec<_> = a.memory_limits.iter().filter(|n| n.attention).collect();
    let covered = a.memory_limits.len() - needing.len();
    writeln!(out)?;
    writeln!(
        out,
        "memory limits: {} of {} containers without one{}{}",
        needing.len(),
        a.containers,
        if needing.iter().any(|n| n.risky()) {
            " (privileged, hostPID or hostPath first)"
        } else {
            ""
        },
        if needing.is_empty() { "" } else { ":" }
    )?;
    for n in &needing {
        let mut tags = Vec::new();
        if n.privileged {
            tags.push("privileged");
        }
        if n.host_pid {
            tags.push("hostPID");
        }
        if n.host_path {
            tags.push("hostPath");
        }
        if n.init {
            tags.push("init");
        }
        let tags = if tags.is_empty() {
            String::new()
        } else {
            format!(" [{}]", tags.join(", "))
        };
        writeln!(
            out,
            "  {} {}/{} {} {}{tags}, {} pod{}",
            if n.risky() { "!" } else { "-" },
            n.namespace,
            n.owner_kind,
            n.owner_name,
            n.container,
            n.pods,
            if n.pods == 1 { "" } else { "s" }
        )?;
        writeln!(out, "      fix: {}", n.fix)?;
    }
    if covered > 0 {
        writeln!(
            out,
            "  {covered} more without one in namespaces whose LimitRange sets a default (new pods get it)"
        )?;
    }
    writeln!(out)?;
    let k = &a.known_issues;
    if k.detected.is_empty() {
        writeln!(
            out,
            "known issues: no catalogued storage system version found"
        )?;
    } else {
        let seen: Vec<String> = k
            .detected
            .iter()
            .map(|d| format!("{} {} {}", d.system, d.image, d.version))
            .collect();
        writeln!(
            out,
            "known issues: {} affecting {}",
            k.affecting.len(),
            seen.join(", ")
        )?;
        for i in &k.affecting {
            writeln!(
                out,
                "  ! {} {} ({}): {}",
                i.system,
                i.version,
                i.seen_in.join(", "),
                i.id
            )?;
            writeln!(out, "      {}", i.title)?;
            writeln!(
                out,
                "      fixed in {}; {}",
                i.fixed_in.join(", "),
                i.links.join(" ")
            )?;
            writeln!(out, "      advice: {}", i.advice)?;
        }
    }
    writeln!(out)?;
    writeln!(out, "preflight (Longhorn):")?;
    match &a.coredns {
        Some(c) => writeln!(
            out,
            "  {} CoreDNS: {}",
            if c.attention { "!" } else { "-" },
            c.note
        )?,
        None => writeln!(out, "  ? CoreDNS: not read (see below)")?,
    }
    let (need, info): (Vec<_>, Vec<_>) = a.hugepages.iter().partition(|h| h.attention);
    for h in &need {
        writeln!(out, "  ! hugepages-2Mi on {}: {}", h.node, h.note)?;
    }
    if !info.is_empty() {
        writeln!(
            out,
            "  - hugepages-2Mi below 2048 MiB on {} node{} without the agent's {} condition (needed only for the v2 engine)",
            info.len(),
            if info.len() == 1 { "" } else { "s" },
            hostready_agent::audit::preflight::V2_CONDITION
        )?;
    }
    if !a.unreadable.is_empty() {
        writeln!(out)?;
        writeln!(out, "could not read:")?;
        for u in &a.unreadable {
            writeln!(out, "  ? {}: {}", u.what, u.error)?;
        }
    }
    writeln!(out)?;
    let n = a.attention();
    let (item, need) = if n == 1 {
        ("item", "needs")
    } else {
        ("items", "need")
    };
    writeln!(out, "{n} audit {item} {need} attention")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use hostready_agent::cluster::{Cell, NodeRow};

    use super::*;

    fn view(nodes: &[(&str, &[(&str, &str)])]) -> ClusterView {
        let mut types = std::collections::BTreeSet::new();
        let nodes = nodes
            .iter()
            .map(|(name, conds)| NodeRow {
                name: name.to_string(),
                conditions: conds
                    .iter()
                    .map(|(t, s)| {
                        types.insert(t.to_string());
                        let cell = Cell {
                            status: s.to_string(),
                            reason: String::new(),
                            message: String::new(),
                            last_transition: None,
                            last_heartbeat: None,
                        };
                        (t.to_string(), cell)
                    })
                    .collect::<BTreeMap<_, _>>(),
            })
            .collect();
        ClusterView {
            schema: hostready_agent::cluster::SCHEMA,
            types: types.into_iter().collect(),
            host_processes: Vec::new(),
            nodes,
            audit: hostready_agent::audit::Audit::empty(Duration::from_secs(600)),
        }
    }

    #[test]
    fn an_audit_item_is_a_no_and_an_unreadable_list_cannot_tell() {
        use hostready_agent::audit::{Unreadable, preflight};
        let t = "LonghornReady";
        let mut v = view(&[("a", &[(t, "True")])]);
        v.audit.unreadable.push(Unreadable {
            what: "pods".into(),
            error: "forbidden".into(),
        });
        assert_eq!(verdict(&v), Verdict::CannotTell);
        v.audit.coredns = Some(preflight::coredns(&[]));
        assert_eq!(
            verdict(&v),
            Verdict::CannotTell,
            "no CoreDNS found is not attention"
        );
        let one: k8s_openapi::api::apps::v1::Deployment =
            serde_json::from_value(serde_json::json!({
            "metadata": {"name": "coredns", "namespace": "kube-system"},
            "spec": {"replicas": 1, "selector": {}, "template": {}}}))
            .unwrap();
        v.audit.coredns = Some(preflight::coredns(&[one]));
        assert_eq!(verdict(&v), Verdict::No, "attention beats cannot-tell");
        let mut u = view(&[("a", &[(t, "Unknown")])]);
        assert_eq!(verdict(&u), Verdict::CannotTell);
        u.audit.coredns = v.audit.coredns.clone();
        assert_eq!(verdict(&u), Verdict::No);
    }

    #[test]
    fn exit_code_rows_of_the_readme() {
        let t = "LonghornReady";
        assert_eq!(verdict(&view(&[("a", &[(t, "True")])])), Verdict::Yes);
        assert_eq!(
            verdict(&view(&[("a", &[(t, "True")]), ("b", &[(t, "False")])])),
            Verdict::No
        );
        assert_eq!(
            verdict(&view(&[("a", &[(t, "Unknown")]), ("b", &[(t, "False")])])),
            Verdict::No,
            "a False beats an Unknown"
        );
        assert_eq!(
            verdict(&view(&[("a", &[(t, "Unknown")])])),
            Verdict::CannotTell
        );
        assert_eq!(
            verdict(&view(&[("a", &[(t, "True")]), ("b", &[])])),
            Verdict::CannotTell,
            "a node that has not published"
        );
        assert_eq!(
            verdict(&view(&[("a", &[])])),
            Verdict::CannotTell,
            "no agent anywhere"
        );
    }
}
