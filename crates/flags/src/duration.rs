//! The one duration grammar of hostready: every duration flag (`agent --interval`,
//! `doctor --pile-min-age`, `cluster --request-timeout`, ...) and every duration key of the
//! agent's config file is read by [`parse`].
//!
//! The grammar is humantime's (`250ms`, `90s`, `5m`, `1h30m`, `1h 30m`, `2d`), with one rule
//! added: a unit is required. A bare `90` is refused with a message that suggests `90s`, so
//! `interval: 30` can never silently mean 30 seconds where 30 minutes was meant. `0` alone is
//! accepted (zero needs no unit); where zero makes no sense, [`parse_positive`] refuses it.

use std::time::Duration;

/// A duration that could not be read, with the text given and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {text:?}: {why}")]
pub struct DurationError {
    /// The text as given.
    pub text: String,
    /// What is wrong, with an example of what would be right.
    pub why: String,
}

/// Units accepted, for messages.
const EXAMPLES: &str = "write e.g. 250ms, 90s, 5m, 1h30m or 2d";

/// Parses a duration: one or more `<number><unit>` terms (`ms`, `s`, `m`, `h`, `d`, and
/// humantime's longer names), or `0`. A bare number other than `0` is refused.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let err = |why: String| DurationError {
        text: text.to_string(),
        why,
    };
    let s = text.trim();
    if s.is_empty() {
        return Err(err(format!("empty ({EXAMPLES})")));
    }
    if s != "0" && s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(format!(
            "missing unit: a unit is required, e.g. {s}s for seconds or {s}m for minutes"
        )));
    }
    humantime::parse_duration(s).map_err(|e| err(format!("{e} ({EXAMPLES})")))
}

/// Parses like [`parse`] and refuses zero (an interval, a timeout).
pub fn parse_positive(text: &str) -> Result<Duration, DurationError> {
    match parse(text)? {
        d if d.is_zero() => Err(DurationError {
            text: text.to_string(),
            why: "must be more than zero".into(),
        }),
        d => Ok(d),
    }
}

/// [`parse`] as a clap value parser (`#[arg(value_parser = duration::flag)]`).
pub fn flag(text: &str) -> Result<Duration, String> {
    parse(text).map_err(|e| e.why)
}

/// [`parse_positive`] as a clap value parser.
pub fn positive_flag(text: &str) -> Result<Duration, String> {
    parse_positive(text).map_err(|e| e.why)
}

/// Formats a duration compactly (`30m`, `1h30m`, `1500ms`), read back the same by [`parse`].
pub fn format(d: Duration) -> String {
    if d.subsec_millis() != 0 || d.is_zero() {
        return format!("{}ms", d.as_millis());
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_sums() {
        for (text, secs) in [
            ("30m", 1800),
            ("1h30m", 5400),
            ("1h 30m", 5400),
            ("90s", 90),
            ("60s", 60),
            ("5m", 300),
            (" 2m5s ", 125),
            ("2d", 172_800),
            ("1.5m", 90),
            ("0", 0),
        ] {
            assert_eq!(parse(text), Ok(Duration::from_secs(secs)), "{text:?}");
        }
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
    }

    #[test]
    fn a_bare_number_is_refused_with_a_suggestion() {
        let e = parse("90").unwrap_err();
        assert!(e.to_string().contains("unit is required, e.g. 90s"), "{e}");
        assert!(parse("030").is_err());
    }

    #[test]
    fn nonsense_is_refused_with_examples() {
        for bad in [
            "",
            " ",
            "m",
            "5 parsecs",
            "-1s",
            "s90",
            "99999999999999999999h",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.to_string().contains("write e.g."), "{bad:?}: {e}");
        }
    }

    #[test]
    fn positive_refuses_zero_only() {
        assert!(parse_positive("0").is_err());
        assert!(parse_positive("0s").is_err());
        assert_eq!(parse_positive("1ms"), Ok(Duration::from_millis(1)));
    }

    #[test]
    fn format_reads_back_the_same() {
        for s in ["30m", "1h30m", "5m", "10s", "250ms", "1h", "0ms"] {
            assert_eq!(format(parse(s).unwrap()), s);
        }
    }
}
