//! Durations as people write them in flags and config files: `30m`, `5m`, `1h30m`, `10s`,
//! `250ms`. A bare number is refused, so `interval: 30` cannot silently mean 30 seconds.

use std::time::Duration;

/// An unparsable duration, with the text that was given.
#[derive(Debug, thiserror::Error)]
#[error("invalid duration {text:?}: {why} (write e.g. 30m, 5m, 1h30m, 10s, 250ms)")]
pub struct DurationError {
    pub text: String,
    pub why: &'static str,
}

/// Parses a sequence of `<number><unit>` terms (`h`, `m`, `s`, `ms`) into a duration.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let err = |why| DurationError {
        text: text.to_string(),
        why,
    };
    let s = text.trim();
    if s.is_empty() {
        return Err(err("empty"));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(err("expected a number"));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| err("number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let term = match unit {
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "s" => Duration::from_secs(n),
            "ms" => Duration::from_millis(n),
            "" => return Err(err("missing unit")),
            _ => return Err(err("unknown unit")),
        };
        total = total.saturating_add(term);
    }
    Ok(total)
}

/// Formats a duration compactly (`30m`, `1h30m`, `1500ms`), the inverse of [`parse`].
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
    fn parses_units_and_sums() {
        assert_eq!(parse("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse("1ms").unwrap(), Duration::from_millis(1));
        assert_eq!(parse(" 2m5s ").unwrap(), Duration::from_secs(125));
    }

    #[test]
    fn refuses_bare_numbers_and_unknown_units() {
        for bad in ["", "30", "m", "5d", "1.5m", "-1s"] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn format_round_trips() {
        for s in ["30m", "1h30m", "5m", "10s", "250ms", "1h"] {
            assert_eq!(format(parse(s).unwrap()), s);
        }
    }
}
