//! `hostready profiles`: the built-in profiles, or one profile (a name or a file) with its
//! includes expanded, each requirement's sources, and the built-in profiles it conflicts with.

use std::process::ExitCode;

use hostready_checks::{DEFAULT_PROFILE, Profile, conflicts, profile};

use crate::output::{self, Format, OutputArgs};

/// Arguments of `hostready profiles`.
#[derive(Debug, clap::Args)]
pub struct ProfilesArgs {
    /// Show this profile (a built-in name or a file) with its requirements expanded.
    pub name: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Version of each profile object `profiles -o json|yaml` prints (the output is an array, so
/// each element carries it; `docs/schemas/profiles.schema.json`): kept while fields are only
/// added, bumped when one is removed or changes meaning. 2: the check key
/// `nfs_default_version` became `nfs_defaultvers` (docs/schemas.md).
const PROFILE_SCHEMA: u32 = 2;

/// A profile as `profiles -o json|yaml` prints it: its schema version, then its fields.
#[derive(serde::Serialize)]
struct Versioned<'a> {
    schema: u32,
    #[serde(flatten)]
    profile: &'a Profile,
}

/// Runs `hostready profiles`: lists the built-ins, or shows one profile.
pub fn run(args: &ProfilesArgs) -> anyhow::Result<ExitCode> {
    let loaded: Vec<Profile> = match &args.name {
        Some(n) => vec![profile::load(n)?],
        None => profile::builtin_names()
            .into_iter()
            .map(profile::load)
            .collect::<Result<_, _>>()?,
    };
    if args.output.format != Format::Table {
        let shown: Vec<Versioned> = loaded
            .iter()
            .map(|profile| Versioned {
                schema: PROFILE_SCHEMA,
                profile,
            })
            .collect();
        output::print_data(args.output.format, &shown)?;
        return Ok(ExitCode::SUCCESS);
    }
    // Escapes the profiles' own text (a custom file is anyone's) for the terminal: see output.rs.
    let mut out = output::stdout();
    if args.name.is_none() {
        for p in &loaded {
            let default = if p.name == DEFAULT_PROFILE {
                " (default)"
            } else {
                ""
            };
            writeln!(
                out,
                "{:<22} {:>2} requirement{}  {}{default}",
                p.name,
                p.requirements.len(),
                if p.requirements.len() == 1 { " " } else { "s" },
                p.description.trim()
            )?;
        }
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    for p in &loaded {
        show(&mut out, p)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Prints one profile: its requirements, each with the sources it cites (by key, or by
/// location where the profile wrote one), then every cited key's location, then the
/// conflicts the catalogue lists for the built-in profiles it is or includes.
fn show<W: std::io::Write>(out: &mut output::Text<W>, p: &Profile) -> std::io::Result<()> {
    writeln!(out, "{} ({})", p.name, p.source)?;
    for line in p.description.trim().lines() {
        writeln!(out, "{line}")?;
    }
    if !p.includes.is_empty() {
        writeln!(out, "includes: {}", p.includes.join(", "))?;
    }
    for r in &p.requirements {
        writeln!(
            out,
            "  {:<22} {:<11} {}",
            r.id,
            r.level.as_str(),
            r.description
                .as_deref()
                .map(str::trim)
                .map_or_else(|| r.check.summary(), str::to_string)
        )?;
        if !r.sources.is_empty() {
            let cited: Vec<String> = r
                .sources
                .iter()
                .map(|s| {
                    let head = s.key.as_deref().unwrap_or(&s.location);
                    match &s.at {
                        Some(at) => format!("{head} {at}"),
                        None => head.to_string(),
                    }
                })
                .collect();
            writeln!(out, "  {:<22} {:<11} source: {}", "", "", cited.join("; "))?;
        }
    }
    let keyed: Vec<_> = p.sources.iter().filter(|s| s.key.is_some()).collect();
    if !keyed.is_empty() {
        writeln!(out, "sources:")?;
        for s in keyed {
            writeln!(
                out,
                "  {:<22} {}",
                s.key.as_deref().unwrap_or_default(),
                s.location
            )?;
        }
    }
    let mut shown = Vec::new();
    for b in &p.builtins {
        for c in conflicts::with(b) {
            if !shown.contains(&c.id) {
                shown.push(c.id.clone());
                let other = c
                    .profiles
                    .iter()
                    .find(|x| *x != b)
                    .map_or("", String::as_str);
                if shown.len() == 1 {
                    writeln!(out, "conflicts (when enabled together):")?;
                }
                writeln!(out, "  conflict.{:<13} with {other}: {}", c.id, c.clash)?;
                writeln!(out, "  {:<22} decide: {}", "", c.decide)?;
            }
        }
    }
    Ok(())
}
