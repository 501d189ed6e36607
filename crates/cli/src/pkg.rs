//! `hostready pkg list|query|owner`: dpkg and rpm databases read with no lock and no process.
//!
//! Exit codes (scripts rely on them; the README's table): `query` 0 installed, 1 not installed, 2 the databases
//! cannot answer (corrupt, unreadable, locked mid-write, none found); `owner` 0 owned, 1 owned
//! by no package, 2 cannot answer; `list` 0, or 2 when some database could not be read. A
//! question no database can answer (an empty or blank package name, a relative path) is a
//! usage error, exit 2, never "not installed".
//!
//! `query` and `owner` read only what their answer needs (rpm's index tables, a byte search of
//! dpkg's files; see `hostready_pkgdb::query_host`), `list` reads everything.

use std::path::PathBuf;
use std::process::ExitCode;

use hostready_flags::HostArgs;
use hostready_pkgdb::{Database, Lookup, Package, Scope, error_chain};
use serde::Serialize;

use crate::exit::Verdict;
use crate::output::{Format, OutputArgs, print_data};

/// Arguments of `hostready pkg`.
#[derive(Debug, clap::Args)]
pub struct PkgArgs {
    #[command(subcommand)]
    command: PkgCommand,
}

#[derive(Debug, clap::Subcommand)]
enum PkgCommand {
    /// List every package of every database found.
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Is a package installed? Exit 0 yes, 1 no, 2 the databases cannot tell.
    Query {
        /// Package name (`name`, `name.arch` for rpm, `name:arch` for dpkg).
        #[arg(value_parser = package_name)]
        name: String,
        #[command(flatten)]
        common: Common,
    },
    /// Which packages own a path? Exit 0 owned, 1 not owned, 2 the databases cannot tell.
    Owner {
        /// Absolute path on the host (inside --root).
        #[arg(value_parser = absolute_path)]
        path: PathBuf,
        #[command(flatten)]
        common: Common,
    },
}

/// Refuses what no package database can name: answering "not installed" for it would be a
/// confident answer to a question that was never asked (clap turns the error into exit 2).
fn package_name(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("a package name cannot be empty".into());
    }
    if let Some(c) = s.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{s:?} is not a package name: no dpkg or rpm name contains {c:?}"
        ));
    }
    Ok(s.to_string())
}

/// Refuses a relative path: owner lookups are about the host's absolute paths, and resolving a
/// relative one against hostready's own working directory would answer about another file.
fn absolute_path(s: &str) -> Result<PathBuf, String> {
    if s.is_empty() {
        return Err("the path cannot be empty".into());
    }
    if !s.starts_with('/') {
        return Err(format!(
            "{s:?} is relative: give the absolute path on the host (inside --root)"
        ));
    }
    Ok(PathBuf::from(s))
}

/// The flags of every `pkg` subcommand (the procfs is read for the databases' lock holders).
#[derive(Debug, clap::Args)]
struct Common {
    #[command(flatten)]
    host: HostArgs,
    #[command(flatten)]
    output: OutputArgs,
}

/// Version of the JSON/YAML shape (`docs/schemas/pkg.schema.json`): kept while fields are only
/// added, bumped when one is removed or changes meaning.
const SCHEMA: u32 = 1;

/// What JSON and YAML consumers get.
#[derive(Debug, Serialize)]
struct Report<'a> {
    /// [`SCHEMA`].
    schema: u32,
    /// `list`, `query` or `owner`.
    command: &'static str,
    /// The package name or path asked about.
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
    /// `installed` / `not-installed` / `owned` / `not-owned` / `listed` / `unknown`.
    answer: &'static str,
    packages: &'a [Package],
    databases: Vec<DbSummary>,
    /// Databases that could not be read, with why.
    unreadable: &'a [String],
    /// Locks, journals, stale write-ahead logs: why an answer may not be the whole truth.
    notes: &'a [hostready_pkgdb::Note],
    /// True if and only if every database was read reliably (so "not found" means absent).
    complete: bool,
}

#[derive(Debug, Serialize)]
struct DbSummary {
    kind: &'static str,
    path: PathBuf,
    /// `ok`, `corrupt` or `unreadable`.
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// How many packages the database holds; absent when the lookup read only candidates.
    #[serde(skip_serializing_if = "Option::is_none")]
    packages: Option<usize>,
    /// What was read: `all`, `scan` (every record checked), `index` (rpm's index table),
    /// `search` (a byte search of dpkg's files).
    read: &'static str,
    lock_holders: Vec<i64>,
}

/// Runs `hostready pkg`.
pub fn run(args: &PkgArgs) -> anyhow::Result<ExitCode> {
    let common = match &args.command {
        PkgCommand::List { common }
        | PkgCommand::Query { common, .. }
        | PkgCommand::Owner { common, .. } => common,
    };
    let host = common.host.open()?;
    let (command, subject, answer) = match &args.command {
        PkgCommand::List { .. } => {
            // Without rpm file lists, each record moved (not copied) into the answer: memory
            // follows the package count, not the database's size.
            ("list", None, counted(hostready_pkgdb::list_host(&host)))
        }
        PkgCommand::Query { name, .. } => (
            "query",
            Some(name.clone()),
            counted(hostready_pkgdb::query_host(&host, name)),
        ),
        PkgCommand::Owner { path, .. } => (
            "owner",
            Some(path.display().to_string()),
            counted(hostready_pkgdb::owner_host(&host, path)),
        ),
    };
    let summaries = summaries(&answer.answer.dbs, &answer.counts);
    let (lookup, dbs) = (answer.answer.lookup, answer.answer.dbs);
    let none_found = dbs.is_empty();
    // The README's exit-code table (`exit.rs`): "cannot tell" is never "not installed".
    let (answer, verdict) = match command {
        "list" if lookup.unreadable.is_empty() && !none_found => ("listed", Verdict::Yes),
        "list" => ("unknown", Verdict::CannotTell),
        "query" if lookup.installed() => ("installed", Verdict::Yes),
        "owner" if !lookup.packages.is_empty() => ("owned", Verdict::Yes),
        _ if !lookup.complete => ("unknown", Verdict::CannotTell),
        "query" => ("not-installed", Verdict::No),
        _ => ("not-owned", Verdict::No),
    };
    let report = Report {
        schema: SCHEMA,
        command,
        subject,
        answer,
        packages: &lookup.packages,
        databases: summaries,
        unreadable: &lookup.unreadable,
        notes: &lookup.notes,
        complete: lookup.complete,
    };
    match common.output.format {
        Format::Table => print_table(&report)?,
        f => print_data(f, &report)?,
    }
    print_problems(&dbs, &lookup, none_found, &common.host.root);
    Ok(verdict.into())
}

/// An answer with each database's record count, taken before its records were moved out.
struct Counted {
    answer: hostready_pkgdb::Answer,
    counts: Vec<Option<usize>>,
}

fn counted(answer: hostready_pkgdb::Answer) -> Counted {
    let counts = answer
        .dbs
        .iter()
        .map(|d| d.scope.records(&d.contents))
        .collect();
    Counted { answer, counts }
}

fn summaries(dbs: &[Database], counts: &[Option<usize>]) -> Vec<DbSummary> {
    dbs.iter()
        .zip(counts)
        .map(|(d, &packages)| DbSummary {
            kind: d.kind.as_str(),
            path: d.path.clone(),
            status: match &d.contents {
                Ok(_) => "ok",
                Err(e) if e.is_corrupt() => "corrupt",
                Err(_) => "unreadable",
            },
            error: d.contents.as_ref().err().map(|e| error_chain(e)),
            packages,
            read: match d.scope {
                Scope::All => "all",
                Scope::Scan { .. } => "scan",
                Scope::Index => "index",
                Scope::Search => "search",
            },
            lock_holders: d.lock_holders.iter().map(|h| h.pid).collect(),
        })
        .collect()
}

fn print_table(r: &Report) -> anyhow::Result<()> {
    // Escapes package names and versions (the host's) for the terminal (see output.rs), and
    // buffers: a listing is one line per package.
    let mut out = crate::output::stdout();
    if r.packages.is_empty() {
        if let Some(s) = &r.subject {
            writeln!(out, "{s}: {}", r.answer.replace('-', " "))?;
        }
        out.flush()?;
        return Ok(());
    }
    // Two passes over the records (widths, then lines), so that printing a listing copies
    // nothing: its records are the only thing that grows with the database.
    let head = ["NAME", "VERSION", "ARCH", "STATE"];
    let mut w = head.map(str::len);
    for p in r.packages {
        for (i, c) in cells(p).iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    let line = |out: &mut crate::output::Text<_>, c: [&str; 4], db: &dyn std::fmt::Display| {
        writeln!(
            out,
            "{:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {db}",
            c[0],
            c[1],
            c[2],
            c[3],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2],
            w3 = w[3]
        )
    };
    line(&mut out, head, &"DATABASE")?;
    for p in r.packages {
        line(
            &mut out,
            cells(p),
            &format_args!("{} {}", p.db.as_str(), p.db_path.display()),
        )?;
    }
    out.flush()?;
    Ok(())
}

fn cells(p: &Package) -> [&str; 4] {
    [&p.name, &p.evr, &p.arch, &p.state]
}

/// Everything a person must know about the answer's reliability goes to stderr.
fn print_problems(dbs: &[Database], lookup: &Lookup, none_found: bool, root: &std::path::Path) {
    let mut err = crate::output::stderr();
    if none_found {
        let _ = writeln!(
            err,
            "hostready: no dpkg or rpm database under {} (looked in /var/lib/dpkg and {})",
            root.display(),
            hostready_pkgdb::RPM_DIRS.join(", ")
        );
    }
    for d in dbs {
        if let Err(e) = &d.contents {
            let _ = writeln!(err, "hostready: {}: {}", d.kind.as_str(), error_chain(e));
        }
    }
    let mut seen = Vec::new();
    for n in &lookup.notes {
        if seen.contains(&n) {
            continue;
        }
        seen.push(n);
        let _ = writeln!(err, "hostready: note: {}: {}", n.file.display(), n.message);
    }
}
