//! Durations in the agent's flags and config file: the one grammar of every hostready duration,
//! `hostready_flags::duration` (humantime's, with a unit required), re-exported under the name
//! the agent's modules use.

pub use hostready_flags::duration::{DurationError, format, parse, parse_positive};
