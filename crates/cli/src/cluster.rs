//! `hostready cluster`: a table of nodes × profiles from the conditions the agents published
//! (only conditions owned by the agent's field manager), with what fails where.
//! Exit codes (`exit.rs`): 0 every node publishes every profile's condition, all `True`; 1 some
//! condition is `False`; 2 hostready cannot tell (nothing is `False`, but a condition is
//! `Unknown` or a node has not published it) or the cluster is unreadable (including an API
//! that does not answer within `--request-timeout`, or answers with more than
//! hostready-agent's `cluster::MAX_PAGE_BYTES` per page).

use std::process::ExitCode;
use std::time::Duration;

use hostready_agent::KubeconfigArgs;
use hostready_agent::cluster::{self, ClusterView};
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
    /// Give up on a request (connect, answer and whole body, per page of 100 nodes) after this.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration::positive_flag)]
    pub request_timeout: Duration,
}

/// Runs `hostready cluster`.
pub fn run(args: &ClusterArgs) -> anyhow::Result<ExitCode> {
    let view = cluster::fetch(args.kube.kubeconfig.as_deref(), args.request_timeout)?;
    match args.output.format {
        Format::Table => print_table(&view)?,
        f => output::print_data(f, &view)?,
    }
    Ok(verdict(&view).into())
}

/// Returns the verdict on the view: a `False` anywhere is a no; otherwise anything short of
/// every node `True` for every type (an `Unknown`, a node without the condition, no condition
/// published at all) means hostready cannot tell.
fn verdict(view: &ClusterView) -> Verdict {
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
        return Ok(());
    }
    let name_w = view
        .nodes
        .iter()
        .map(|n| n.name.len())
        .chain([4])
        .max()
        .unwrap_or(4);
    let cell = |n: &hostready_agent::cluster::NodeRow, t: &str| match n.conditions.get(t) {
        None => "-".to_string(),
        Some(c) if c.status == "True" => "True".to_string(),
        Some(c) => format!("{} ({})", c.status, c.reason),
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
            writeln!(
                out,
                "{} {t}={} {}: {}",
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
    out.flush()?;
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
            nodes,
        }
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
