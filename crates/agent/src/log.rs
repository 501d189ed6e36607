//! Logging: every log line of the agent (and of the `hostready` binary) goes through `tracing`,
//! so kube-client's own events (`HTTP` spans, `requesting`, `failed with error ...`) reach the
//! same output instead of vanishing for want of a subscriber.
//!
//! - Levels and filtering: `RUST_LOG`, with tracing-subscriber's `EnvFilter` syntax
//!   (`debug`, `hostready_agent=debug,kube=trace`, ...). Unset or empty: `info`. An invalid
//!   value is refused at start with the directive that failed, rather than silently ignored.
//! - `--log-format text` (default): one readable line per event on stderr,
//!   `<RFC 3339 time>  <LEVEL> <target>: <message> <field=value ...>`, no colour (logs end up in
//!   files and `kubectl logs` more often than on a terminal). ESC, BEL and C1 controls in
//!   messages are escaped by tracing-subscriber, so a logged host path cannot drive a terminal;
//!   line breaks in the agent's own messages are escaped here, so none forges a log line.
//! - `--log-format json`: one JSON object per line on stderr, for log pipelines:
//!   `{"timestamp", "level", "message", <the event's fields>, "target", "span"}` — the event's
//!   fields flattened beside `message`, and the innermost span with its fields (kube's
//!   `http.method`, `http.url`) under `span` when there is one.
//!
//! Memory: the fmt layer formats each event into a per-thread buffer and writes it to stderr
//! (unbuffered) at once; nothing queues between the event and the write, so logging holds no
//! more than one event's text however long the agent runs (no non-blocking appender, whose
//! queue could grow with a slow reader). Span data lives as long as the span (a request).
//!
//! The call sites keep their shape: [`info`] and [`warn`] take a finished message.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

/// The target of the agent's own events (`RUST_LOG=hostready_agent=debug` selects them).
const TARGET: &str = "hostready_agent";

/// How log events are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    #[default]
    Text,
    /// One JSON object per line (timestamp, level, message, fields, target, span).
    Json,
}

/// The `--log-format` flag, flattened into the agent's and the CLI's options.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct LogArgs {
    /// Log lines on stderr as `text` or `json` (one object per line); levels from RUST_LOG
    /// (default `info`; e.g. `RUST_LOG=debug`, `RUST_LOG=kube=debug`).
    #[arg(
        long,
        value_enum,
        value_name = "FORMAT",
        default_value_t,
        global = true
    )]
    pub log_format: LogFormat,
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("RUST_LOG={value:?} is not a valid log filter")]
    Filter {
        value: String,
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    #[error("a global log subscriber is already installed")]
    AlreadySet(#[source] tracing_subscriber::util::TryInitError),
}

/// Installs the process-wide subscriber: `format` on stderr, filtered by `RUST_LOG`.
pub fn init(format: LogFormat) -> Result<(), LogError> {
    let value = std::env::var("RUST_LOG").unwrap_or_default();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(&value)?)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let result = match format {
        LogFormat::Text => {
            use tracing_subscriber::util::SubscriberInitExt;
            builder.finish().try_init()
        }
        LogFormat::Json => {
            use tracing_subscriber::util::SubscriberInitExt;
            builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .finish()
                .try_init()
        }
    };
    result.map_err(LogError::AlreadySet)?;
    debug(&format!(
        "logging {format:?} to stderr, filter {:?}",
        if value.trim().is_empty() {
            "info"
        } else {
            value.as_str()
        }
    ));
    Ok(())
}

/// Returns true if and only if `RUST_LOG` asks for a filter other than the default `info`
/// (set, valid UTF-8, not blank): what [`init`] reads it as. A command that emits no events of
/// its own needs [`init`] only then, to refuse an invalid filter and to log its set-up.
pub fn rust_log_set() -> bool {
    std::env::var("RUST_LOG").is_ok_and(|v| !v.trim().is_empty())
}

/// Returns the filter `RUST_LOG=value` asks for: `info` when empty.
fn filter(value: &str) -> Result<EnvFilter, LogError> {
    let builder = EnvFilter::builder().with_default_directive(LevelFilter::INFO.into());
    if value.trim().is_empty() {
        return Ok(builder.parse_lossy(""));
    }
    builder.parse(value).map_err(|source| LogError::Filter {
        value: value.to_string(),
        source,
    })
}

/// Logs an informational line.
pub fn info(msg: &str) {
    tracing::info!(target: TARGET, "{}", one_line(msg));
}

/// Logs a warning.
pub fn warn(msg: &str) {
    tracing::warn!(target: TARGET, "{}", one_line(msg));
}

/// Logs a line for `RUST_LOG=debug` only.
pub fn debug(msg: &str) {
    tracing::debug!(target: TARGET, "{}", one_line(msg));
}

/// Returns `msg` with line breaks written as `\n` and `\r`. The agent's messages quote text
/// from elsewhere (an API server's error, a config file's parse error); in the text format a
/// raw newline in it would start a forged log line. (tracing-subscriber escapes ESC, BEL and
/// C1 itself; JSON escapes everything.)
fn one_line(msg: &str) -> std::borrow::Cow<'_, str> {
    if msg.contains(['\n', '\r']) {
        msg.replace('\n', "\\n").replace('\r', "\\r").into()
    } else {
        msg.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_rust_log_means_info() {
        let f = filter("").unwrap();
        assert_eq!(f.max_level_hint(), Some(LevelFilter::INFO));
        let f = filter("  ").unwrap();
        assert_eq!(f.max_level_hint(), Some(LevelFilter::INFO));
    }

    #[test]
    fn rust_log_sets_the_level() {
        assert_eq!(
            filter("debug").unwrap().max_level_hint(),
            Some(LevelFilter::DEBUG)
        );
        assert_eq!(
            filter("warn").unwrap().max_level_hint(),
            Some(LevelFilter::WARN)
        );
    }

    #[test]
    fn a_message_stays_on_one_line() {
        assert_eq!(one_line("plain"), "plain");
        assert_eq!(
            one_line("bad\n2026-12-01T00:00:00Z  INFO forged\r"),
            "bad\\n2026-12-01T00:00:00Z  INFO forged\\r"
        );
    }

    #[test]
    fn an_invalid_rust_log_is_refused_with_its_value() {
        let e = filter("hostready_agent=loud").unwrap_err();
        assert!(e.to_string().contains("hostready_agent=loud"), "{e}");
    }
}
