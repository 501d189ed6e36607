//! Memory pressure: how much is left (`MemAvailable`), how much time tasks lose waiting for
//! memory (PSI, `/proc/pressure/memory`, Documentation/accounting/psi.rst), and how much of the
//! used memory the flagged pile-ups account for.

use std::collections::BTreeMap;

use crate::finding::{self, Build, Finding, Status, mib};

/// One line of a PSI file: `some` or `full`, with its 10 s and 60 s averages (percent).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Psi {
    pub avg10: f64,
    pub avg60: f64,
}

/// Parses `/proc/pressure/memory` into its `some` and `full` lines.
pub fn parse_psi(text: &str) -> BTreeMap<String, Psi> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let kind = it.next()?.to_string();
            let mut avg10 = None;
            let mut avg60 = None;
            for kv in it {
                match kv.split_once('=')? {
                    ("avg10", v) => avg10 = v.parse().ok(),
                    ("avg60", v) => avg60 = v.parse().ok(),
                    _ => {}
                }
            }
            Some((
                kind,
                Psi {
                    avg10: avg10?,
                    avg60: avg60?,
                },
            ))
        })
        .collect()
}

/// Builds the `doctor.memory` finding from meminfo (kB), PSI if present, and the private
/// memory the flagged pile-ups hold.
pub fn finding(
    meminfo: &BTreeMap<String, u64>,
    psi: Option<&BTreeMap<String, Psi>>,
    flagged_kb: u64,
) -> Finding {
    let (Some(&total), Some(&avail)) = (meminfo.get("MemTotal"), meminfo.get("MemAvailable"))
    else {
        return finding::new(
            "doctor.memory",
            Status::Unknown,
            "no MemTotal/MemAvailable in /proc/meminfo",
        );
    };
    let used = total.saturating_sub(avail);
    let avail_pct = avail as f64 * 100.0 / total.max(1) as f64;
    let some = psi.and_then(|p| p.get("some")).copied();
    let full = psi.and_then(|p| p.get("full")).copied();
    let status = if avail_pct < 5.0 || full.is_some_and(|f| f.avg10 >= 10.0) {
        Status::Fail
    } else if avail_pct < 10.0 || some.is_some_and(|s| s.avg10 >= 10.0) {
        Status::Warn
    } else {
        Status::Pass
    };
    let share = if used > 0 {
        flagged_kb as f64 * 100.0 / used as f64
    } else {
        0.0
    };
    let mut msg = format!(
        "{} of {} available ({avail_pct:.1}%)",
        mib(avail),
        mib(total)
    );
    if let Some(s) = some {
        msg.push_str(&format!("; PSI some avg10 {:.2}%", s.avg10));
    }
    if flagged_kb > 0 {
        msg.push_str(&format!(
            "; flagged pile-ups hold {} = {share:.1}% of used memory",
            mib(flagged_kb)
        ));
    }
    let mut f = finding::new("doctor.memory", status, msg)
        .with("total", format!("{total} kB"))
        .with("available", format!("{avail} kB"))
        .with("used", format!("{used} kB"));
    match psi {
        Some(p) => {
            for (k, v) in p {
                f = f.with(
                    format!("psi {k}"),
                    format!("avg10={:.2} avg60={:.2}", v.avg10, v.avg60),
                );
            }
        }
        None => f = f.with("psi", "not available (kernel without PSI)"),
    }
    if flagged_kb > 0 {
        f = f.with(
            "held by pile-ups",
            format!("{} = {share:.1}% of used", mib(flagged_kb)),
        );
    }
    if status != Status::Pass {
        f = if flagged_kb > 0 && share >= 20.0 {
            f.fix("The flagged pile-ups are a large part of the used memory: stop their source and kill them (see doctor.pileup.*).")
        } else {
            f.fix("Find the biggest users of memory.")
                .command("ps -eo pid,rss,args --sort=-rss | head")
        };
        f = f.note("Give long-lived pods memory limits so one of them cannot take the node down.");
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psi_real_sample() {
        let t = "some avg10=1.50 avg60=0.30 avg300=0.05 total=123456\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
        let p = parse_psi(t);
        assert_eq!(p["some"].avg10, 1.5);
        assert_eq!(p["full"].avg60, 0.0);
        assert!(parse_psi("garbage\n").is_empty());
    }

    #[test]
    fn pressure_levels() {
        let mut m = BTreeMap::new();
        m.insert("MemTotal".to_string(), 1_000_000);
        m.insert("MemAvailable".to_string(), 30_000);
        let f = finding(&m, None, 600_000);
        assert_eq!(f.status, Status::Fail);
        assert!(f.message.contains("61.9% of used"), "{}", f.message);
        assert_eq!(f.evidence.get("total"), Some("1000000 kB"));
        assert_eq!(f.evidence.get("used"), Some("970000 kB"));
        assert_eq!(
            f.evidence.get("psi"),
            Some("not available (kernel without PSI)")
        );
        assert_eq!(
            f.evidence.get("held by pile-ups"),
            Some("585.9 MiB = 61.9% of used")
        );
        let fix = f.remediation.as_ref().unwrap();
        assert!(fix.summary.contains("stop their source"), "{fix:?}");
        assert!(fix.notes[0].contains("memory limits"), "{fix:?}");
        m.insert("MemAvailable".to_string(), 500_000);
        assert_eq!(finding(&m, None, 0).status, Status::Pass);
        let psi = parse_psi(
            "some avg10=20.00 avg60=1 avg300=0 total=1\nfull avg10=0.00 avg60=0 avg300=0 total=0\n",
        );
        let f = finding(&m, Some(&psi), 0);
        assert_eq!(f.status, Status::Warn);
        assert_eq!(f.evidence.get("psi some"), Some("avg10=20.00 avg60=1.00"));
        assert_eq!(
            f.remediation.unwrap().commands,
            ["ps -eo pid,rss,args --sort=-rss | head"]
        );
        assert_eq!(finding(&BTreeMap::new(), None, 0).status, Status::Unknown);
    }
}
