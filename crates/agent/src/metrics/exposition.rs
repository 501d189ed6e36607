//! The two exposition formats of `/metrics`, and which one a scraper asked for.
//!
//! prometheus-client encodes OpenMetrics 1.0 only. Scrapers that predate it (and `curl`, and
//! dashboards' ad-hoc fetchers) expect the Prometheus text format 0.0.4, and Prometheus itself
//! says which it prefers in `Accept`. No crate converts between the two, so [`to_prometheus_text`]
//! does, line by line: both share the sample syntax (names, label escaping, `+Inf`/`NaN`), and
//! differ only in what is written here — a counter family is named with its `_total` in 0.0.4,
//! an info family is a gauge named with its `_info`, `unknown` is `untyped`, and there is no
//! `# UNIT`, no `_created` sample and no `# EOF`.

/// The format of one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`: the default.
    PrometheusText,
    /// `application/openmetrics-text; version=1.0.0`, when the scraper's `Accept` prefers it.
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::PrometheusText => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// Picks the format for an `Accept` header (none: Prometheus text). OpenMetrics when its
    /// best quality is above zero and at least that of `text/plain` (or `text/*`, `*/*`): so
    /// Prometheus's own `application/openmetrics-text;version=1.0.0;q=0.5,...,text/plain;
    /// version=0.0.4;q=0.3,*/*;q=0.2` gets OpenMetrics, and `text/plain` or `*/*` gets text.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::PrometheusText;
        };
        let (mut om, mut text) = (0.0f32, 0.0f32);
        for range in accept.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let mut q = 1.0f32;
            for p in parts {
                if let Some((k, v)) = p.split_once('=') {
                    if k.trim().eq_ignore_ascii_case("q") {
                        // An unparsable q counts as 0: the range is not taken as acceptable.
                        q = v.trim().parse().unwrap_or(0.0);
                    }
                }
            }
            match media.as_str() {
                "application/openmetrics-text" => om = om.max(q),
                "text/plain" | "text/*" | "*/*" => text = text.max(q),
                _ => {}
            }
        }
        if om > 0.0 && om >= text {
            Format::OpenMetrics
        } else {
            Format::PrometheusText
        }
    }
}

/// Rewrites prometheus-client's OpenMetrics output as Prometheus text 0.0.4.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    // The HELP line's name and text, held until its TYPE line says the name to write.
    let mut help: Option<(&str, &str)> = None;
    // The current family's OpenMetrics name and type.
    let (mut family, mut kind) = ("", "");
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            flush_help(&mut out, help.take());
            help = Some(rest.split_once(' ').unwrap_or((rest, "")));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, ty) = rest.split_once(' ').unwrap_or((rest, ""));
            (family, kind) = (name, ty);
            let (suffix, ty) = match ty {
                "counter" => ("_total", "counter"),
                "info" => ("_info", "gauge"),
                "unknown" => ("", "untyped"),
                other => ("", other),
            };
            match help.take() {
                Some((n, text)) if n == name => {
                    out.push_str(&format!("# HELP {name}{suffix} {text}\n"));
                }
                other => flush_help(&mut out, other),
            }
            out.push_str(&format!("# TYPE {name}{suffix} {ty}\n"));
            continue;
        }
        flush_help(&mut out, help.take());
        if kind == "counter"
            && line
                .strip_prefix(family)
                .is_some_and(|r| r.starts_with("_created"))
        {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    flush_help(&mut out, help);
    out
}

fn flush_help(out: &mut String, help: Option<(&str, &str)>) {
    if let Some((name, text)) = help {
        out.push_str(&format!("# HELP {name} {text}\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_asks_for_openmetrics_others_get_text() {
        let prometheus = "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
        assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text")),
            Format::OpenMetrics
        );
        // Prometheus with scrape_protocols [PrometheusText0.0.4] first.
        let text_first = "text/plain;version=0.0.4;q=0.5,application/openmetrics-text;version=1.0.0;q=0.4,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(text_first)), Format::PrometheusText);
        for a in [
            None,
            Some("*/*"),
            Some("text/plain"),
            Some("application/openmetrics-text;q=0"),
            Some("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily"),
            Some("application/openmetrics-text;q=zero"),
        ] {
            assert_eq!(Format::negotiate(a), Format::PrometheusText, "{a:?}");
        }
        assert!(
            Format::OpenMetrics
                .content_type()
                .starts_with("application/openmetrics-text")
        );
        assert_eq!(
            Format::PrometheusText.content_type(),
            "text/plain; version=0.0.4; charset=utf-8"
        );
    }

    #[test]
    fn counters_info_and_eof_rewritten_for_text() {
        let om = "# HELP a_cycles Cycles run.\n# TYPE a_cycles counter\na_cycles_total 3\na_cycles_created 1.5\n\
# HELP a_build Build.\n# TYPE a_build info\na_build_info{version=\"1\"} 1\n\
# HELP a_rss Bytes.\n# TYPE a_rss gauge\n# UNIT a_rss bytes\na_rss 5\n\
# HELP a_d Duration.\n# TYPE a_d histogram\na_d_sum 0.5\na_d_count 1\na_d_bucket{le=\"+Inf\"} 1\n# EOF\n";
        let text = to_prometheus_text(om);
        assert_eq!(
            text,
            "# HELP a_cycles_total Cycles run.\n# TYPE a_cycles_total counter\na_cycles_total 3\n\
# HELP a_build_info Build.\n# TYPE a_build_info gauge\na_build_info{version=\"1\"} 1\n\
# HELP a_rss Bytes.\n# TYPE a_rss gauge\na_rss 5\n\
# HELP a_d Duration.\n# TYPE a_d histogram\na_d_sum 0.5\na_d_count 1\na_d_bucket{le=\"+Inf\"} 1\n"
        );
    }
}
