//! Memory pressure: how much is left (`MemAvailable`), how much time tasks lose waiting for
//! memory (PSI, `/proc/pressure/memory`, Documentation/accounting/psi.rst), and how much of the
//! used memory the flagged pile-ups account for. Both files are parsed by
//! `hostready_host::procfs::memory`, their one parser; this file names the errors after the
//! file doctor read and judges the figures.
//!
//! Both files come from a procfs that may be a directory someone else wrote (`--proc DIR`) or a
//! kernel with a bug: values that cannot be true (no memory at all, more available than there
//! is, a pressure that is not a percentage) make the finding `unknown` with the reason, never
//! a verdict computed from them.

use std::collections::BTreeMap;

use hostready_host::procfs::{self, Problem, ProcParseError};

use crate::finding::{self, Build, Finding, Status, mib};

/// At most this much of `/proc/meminfo` or `/proc/pressure/memory` is read (a real one is
/// under 2 KiB); a longer file is not believed.
pub const MAX_FILE: usize = 64 * 1024;

/// One line of a PSI file: `some` or `full`, with its 10 s and 60 s averages (percent).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Psi {
    pub avg10: f64,
    pub avg60: f64,
}

/// The two `/proc/meminfo` figures the finding uses, in kB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meminfo {
    pub total_kb: u64,
    pub available_kb: u64,
}

/// Why a memory file's content cannot be believed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemError {
    #[error("{file}: no {key} line")]
    Missing {
        file: &'static str,
        key: &'static str,
    },
    #[error("{file}: {key} is given twice")]
    Duplicate {
        file: &'static str,
        key: &'static str,
    },
    #[error("{file}: {key} `{value}` is not a number of kB")]
    NotKb {
        file: &'static str,
        key: &'static str,
        value: String,
    },
    #[error("{file}: {key}={value} on the `{kind}` line is not a percentage from 0 to 100")]
    NotPercent {
        file: &'static str,
        kind: String,
        key: &'static str,
        value: String,
    },
    #[error("{file}: impossible values: {why}")]
    Impossible { file: &'static str, why: String },
    #[error("{file}: cannot read it: {reason}")]
    Unreadable { file: &'static str, reason: String },
    #[error("{file}: larger than {MAX_FILE} bytes, which no kernel writes")]
    TooLarge { file: &'static str },
}

const MEMINFO: &str = "/proc/meminfo";
const PSI: &str = "/proc/pressure/memory";

/// Parses `MemTotal` and `MemAvailable` from `/proc/meminfo` with the host's parser, which
/// refuses values that cannot be true (a zero total, more available than the total, a figure
/// that is not one number of kB or occurs twice); doctor also needs `MemAvailable` (Linux 3.14+).
pub fn parse_meminfo(text: &str) -> Result<Meminfo, MemError> {
    let m = procfs::Meminfo::parse(text).map_err(|e| from_host(MEMINFO, e))?;
    Ok(Meminfo {
        total_kb: m.total_kib,
        available_kb: m.available_kib.ok_or(MemError::Missing {
            file: MEMINFO,
            key: "MemAvailable",
        })?,
    })
}

/// Parses `/proc/pressure/memory` into its `some` and `full` lines (others are ignored) with
/// the host's parser: a `some` or `full` line twice, without `avg10` and `avg60`, or with an
/// average that is not a finite percentage (`nan`, `inf`, negative, over 100), is an error.
pub fn parse_psi(text: &str) -> Result<BTreeMap<String, Psi>, MemError> {
    let lines = procfs::PressureLines::parse(text).map_err(|e| from_host(PSI, e))?;
    let mut out = BTreeMap::new();
    for (kind, line) in [("some", lines.some), ("full", lines.full)] {
        if let Some(l) = line {
            out.insert(
                kind.to_string(),
                Psi {
                    avg10: l.avg10,
                    avg60: l.avg60,
                },
            );
        }
    }
    Ok(out)
}

/// Names a host parser's error after the file doctor read.
fn from_host(file: &'static str, e: ProcParseError) -> MemError {
    match e.problem {
        Problem::Missing { key } => MemError::Missing { file, key },
        Problem::Duplicate { key } => MemError::Duplicate { file, key },
        Problem::NotKb { key, value } => MemError::NotKb { file, key, value },
        Problem::NotPercent { line, key, value } => MemError::NotPercent {
            file,
            kind: line,
            key,
            value,
        },
        Problem::Impossible(why) => MemError::Impossible { file, why },
        Problem::Malformed(why) => MemError::Impossible { file, why },
    }
}

/// Returns the text of a memory file read with [`MAX_FILE`] as its cap, or why it is not
/// believed (too large).
pub fn capped(file: &'static str, bytes: &[u8]) -> Result<String, MemError> {
    if bytes.len() >= MAX_FILE {
        return Err(MemError::TooLarge { file });
    }
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

/// What [`finding`] is given for PSI: `None` when the kernel has no PSI file.
pub type PsiReading = Option<Result<BTreeMap<String, Psi>, MemError>>;

/// Builds the `doctor.memory` finding from meminfo, PSI if present, and the private memory
/// (kB) the flagged pile-ups hold. Unbelievable input gives `unknown` with the reason.
pub fn finding(meminfo: &Result<Meminfo, MemError>, psi: &PsiReading, flagged_kb: u64) -> Finding {
    let m = match meminfo {
        Ok(m) => *m,
        Err(e) => return finding::new("doctor.memory", Status::Unknown, e.to_string()),
    };
    let psi = match psi {
        None => None,
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => {
            return finding::new("doctor.memory", Status::Unknown, e.to_string())
                .with("total", format!("{} kB", m.total_kb))
                .with("available", format!("{} kB", m.available_kb));
        }
    };
    let (total, avail) = (m.total_kb, m.available_kb);
    let used = total - avail;
    let avail_pct = avail as f64 * 100.0 / total as f64;
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

    fn mem(total: u64, avail: u64) -> Result<Meminfo, MemError> {
        parse_meminfo(&format!(
            "MemTotal:       {total} kB\nMemFree:  1 kB\nMemAvailable:   {avail} kB\n"
        ))
    }

    #[test]
    fn psi_real_sample() {
        let t = "some avg10=1.50 avg60=0.30 avg300=0.05 total=123456\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
        let p = parse_psi(t).unwrap();
        assert_eq!(p["some"].avg10, 1.5);
        assert_eq!(p["full"].avg60, 0.0);
        assert!(parse_psi("garbage\n").unwrap().is_empty());
    }

    #[test]
    fn meminfo_real_sample() {
        let t = "MemTotal:        8029772 kB\nMemFree:          320508 kB\nMemAvailable:    5153636 kB\nBuffers:          312788 kB\n";
        assert_eq!(
            parse_meminfo(t),
            Ok(Meminfo {
                total_kb: 8_029_772,
                available_kb: 5_153_636
            })
        );
    }

    #[test]
    fn impossible_values_are_unknown_with_the_reason() {
        // The outside tester's host: no memory, 2^64-1 kB available, PSI `nan`.
        let m = parse_meminfo(&format!("MemTotal: 0 kB\nMemAvailable: {} kB\n", u64::MAX));
        let f = finding(
            &m,
            &Some(parse_psi("some avg10=nan avg60=0 avg300=0 total=0\n")),
            0,
        );
        assert_eq!(f.status, Status::Unknown);
        assert_eq!(
            f.message,
            "/proc/meminfo: impossible values: MemTotal is 0 kB"
        );
        let f = finding(&mem(1000, 2000), &None, 0);
        assert_eq!(f.status, Status::Unknown);
        assert!(
            f.message
                .contains("MemAvailable 2000 kB is more than MemTotal 1000 kB"),
            "{}",
            f.message
        );
        for bad in ["nan", "NaN", "inf", "-inf", "-0.5", "100.01", "1e400", "x"] {
            let psi = parse_psi(&format!("some avg10={bad} avg60=0.00 avg300=0 total=0\n"));
            let f = finding(&mem(1000, 500), &Some(psi), 0);
            assert_eq!(f.status, Status::Unknown, "{bad}");
            assert!(f.message.contains(&format!("avg10={bad}")), "{}", f.message);
            assert!(f.message.contains("/proc/pressure/memory"), "{}", f.message);
        }
        let psi = parse_psi("some avg10=1.00 avg60=nan avg300=0 total=0\n");
        assert!(psi.is_err());
        assert!(parse_psi("some avg10=1.00\n").is_err());
        assert!(parse_psi("some avg10=1 avg60=1\nsome avg10=1 avg60=1\n").is_err());
        assert!(parse_psi("some avg10=100.00 avg60=0.00\n").is_ok());
        // Malformed or missing meminfo figures.
        assert!(matches!(
            parse_meminfo("MemTotal: 10 kB\n"),
            Err(MemError::Missing { .. })
        ));
        assert!(matches!(
            parse_meminfo("MemTotal: -1 kB\nMemAvailable: 1 kB\n"),
            Err(MemError::NotKb { .. })
        ));
        assert!(matches!(
            parse_meminfo("MemTotal: 10 MB\nMemAvailable: 1 kB\n"),
            Err(MemError::NotKb { .. })
        ));
        assert!(matches!(
            parse_meminfo("MemTotal: 10 kB\nMemTotal: 20 kB\nMemAvailable: 1 kB\n"),
            Err(MemError::Duplicate { .. })
        ));
        assert!(matches!(
            capped(MEMINFO, &vec![b'x'; MAX_FILE]),
            Err(MemError::TooLarge { .. })
        ));
    }

    #[test]
    fn pressure_levels() {
        let m = mem(1_000_000, 30_000);
        let f = finding(&m, &None, 600_000);
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
        let m = mem(1_000_000, 500_000);
        assert_eq!(finding(&m, &None, 0).status, Status::Pass);
        let psi = parse_psi(
            "some avg10=20.00 avg60=1 avg300=0 total=1\nfull avg10=0.00 avg60=0 avg300=0 total=0\n",
        );
        let f = finding(&m, &Some(psi), 0);
        assert_eq!(f.status, Status::Warn);
        assert_eq!(f.evidence.get("psi some"), Some("avg10=20.00 avg60=1.00"));
        assert_eq!(
            f.remediation.unwrap().commands,
            ["ps -eo pid,rss,args --sort=-rss | head"]
        );
        assert_eq!(
            finding(&parse_meminfo(""), &None, 0).status,
            Status::Unknown
        );
    }
}
