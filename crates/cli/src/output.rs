//! How results are printed: the `--output` choice shared by every subcommand.

use std::io::Write;

use serde::Serialize;

/// The `--output` formats every subcommand offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// A table for people (colour on a terminal unless NO_COLOR is set).
    #[default]
    Table,
    /// One JSON document.
    Json,
    /// One YAML document.
    Yaml,
}

/// Writes `value` as JSON or YAML to stdout; tables are each subcommand's own business.
pub fn print_data<T: Serialize>(format: Format, value: &T) -> anyhow::Result<()> {
    // Buffered: stdout's line buffering would make one write(2) per line of a report.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, value)?;
            writeln!(out)?;
        }
        Format::Yaml => serde_yaml_ng::to_writer(&mut out, value)?,
        Format::Table => unreachable!("tables are printed by each subcommand"),
    }
    out.flush()?;
    Ok(())
}
