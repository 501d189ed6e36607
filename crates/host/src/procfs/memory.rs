//! The one parser of `/proc/meminfo` and of the PSI files (`/proc/pressure/*`,
//! Documentation/accounting/psi.rst), for the checks (huge pages, memory) and for doctor's
//! memory finding alike.
//!
//! Both files may come from a procfs someone else wrote (`--proc DIR`) or a kernel with a bug:
//! values no kernel writes (`MemTotal 0`, `MemAvailable` above `MemTotal`, a PSI average of
//! `nan`) are errors that name the field, never a confident figure.

use std::collections::BTreeMap;

use serde::Serialize;

/// A procfs file whose content is impossible for a real kernel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {problem}")]
pub struct ProcParseError {
    /// Which file, e.g. `meminfo` or `pressure`.
    pub file: &'static str,
    pub problem: Problem,
}

/// What is wrong with a procfs file, field by field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("no {key} line")]
    Missing { key: &'static str },
    #[error("{key} is given twice")]
    Duplicate { key: &'static str },
    #[error("{key} `{value}` is not a number of kB")]
    NotKb { key: &'static str, value: String },
    #[error("{key}={value} on the `{line}` line is not a percentage from 0 to 100")]
    NotPercent {
        line: String,
        key: &'static str,
        value: String,
    },
    #[error("impossible values: {0}")]
    Impossible(String),
    #[error("{0}")]
    Malformed(String),
}

/// The figures of `/proc/meminfo` that hostready uses, checked for consistency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Meminfo {
    /// `MemTotal`, in KiB; never 0.
    pub total_kib: u64,
    /// `MemAvailable`, in KiB (absent before Linux 3.14); never above `total_kib`.
    pub available_kib: Option<u64>,
    /// Every field as read, for the rest (`HugePages_*`, `Hugepagesize`, ...).
    pub fields: BTreeMap<String, u64>,
}

/// The `meminfo` lines a verdict is computed from: each must be a plain number of kB, once.
const CHECKED: [&str; 3] = ["MemTotal", "MemFree", "MemAvailable"];

impl Meminfo {
    /// The largest figure accepted for a size field: 2^52 KiB (4 EiB), past any machine and
    /// small enough that converting it to bytes cannot overflow.
    pub const MAX_KIB: u64 = 1 << 52;

    /// Parses `/proc/meminfo`, refusing what no kernel writes: no `MemTotal`, `MemTotal 0`, a
    /// size beyond [`Meminfo::MAX_KIB`], `MemAvailable`/`MemFree` above `MemTotal`, and a
    /// `MemTotal`, `MemFree` or `MemAvailable` line that is not one number of kB or that
    /// occurs twice. Other lines are kept as read when they parse and skipped when not.
    pub fn parse(text: &str) -> Result<Meminfo, ProcParseError> {
        let err = |problem| ProcParseError {
            file: "meminfo",
            problem,
        };
        let mut fields = BTreeMap::new();
        for line in text.lines() {
            let Some((k, rest)) = line.split_once(':') else {
                continue;
            };
            let k = k.trim();
            if let Some(key) = CHECKED.iter().copied().find(|c| *c == k) {
                let mut words = rest.split_whitespace();
                let value = words
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
                    .filter(|_| words.next() == Some("kB") && words.next().is_none())
                    .ok_or_else(|| {
                        err(Problem::NotKb {
                            key,
                            value: rest.trim().chars().take(40).collect(),
                        })
                    })?;
                if fields.insert(key.to_string(), value).is_some() {
                    return Err(err(Problem::Duplicate { key }));
                }
            } else if let Some(n) = rest.split_whitespace().next().and_then(|n| n.parse().ok()) {
                fields.insert(k.to_string(), n);
            }
        }
        let impossible = |why: String| err(Problem::Impossible(why));
        let total = *fields
            .get("MemTotal")
            .ok_or_else(|| err(Problem::Missing { key: "MemTotal" }))?;
        if total == 0 {
            return Err(impossible("MemTotal is 0 kB".into()));
        }
        for (k, v) in &fields {
            if *v > Self::MAX_KIB && !k.starts_with("HugePages_") {
                return Err(impossible(format!("{k} is {v} kB, beyond any machine")));
            }
        }
        for k in ["MemAvailable", "MemFree"] {
            if let Some(v) = fields.get(k).filter(|v| **v > total) {
                return Err(impossible(format!(
                    "{k} {v} kB is more than MemTotal {total} kB"
                )));
            }
        }
        Ok(Meminfo {
            total_kib: total,
            available_kib: fields.get("MemAvailable").copied(),
            fields,
        })
    }
}

/// Returns `/proc/meminfo` as a map from field to its number (kB for sizes, a count for
/// `HugePages_*`), unchecked: use [`Meminfo::parse`] to rely on the figures.
pub fn parse_meminfo(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, rest) = l.split_once(':')?;
            let n = rest.split_whitespace().next()?.parse().ok()?;
            Some((k.trim().to_string(), n))
        })
        .collect()
}

/// One line of a PSI file as [`PressureLines::parse`] accepts it: the share of time some (or
/// all) tasks were stalled, as percentages over 10 s and 60 s (and 300 s), and the total stall
/// time in µs when given.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PsiLine {
    pub avg10: f64,
    pub avg60: f64,
    pub avg300: Option<f64>,
    pub total_us: Option<u64>,
}

/// One whole line of a PSI file: all four figures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PressureLine {
    pub avg10: f64,
    pub avg60: f64,
    pub avg300: f64,
    pub total_us: u64,
}

/// A PSI file as written, checked line by line: the `some` and `full` lines, each present at
/// most once, and how many lines of another kind there were.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct PressureLines {
    pub some: Option<PsiLine>,
    pub full: Option<PsiLine>,
    /// Lines that are neither `some` nor `full` (none in any kernel so far).
    pub other_lines: usize,
}

impl PressureLines {
    /// Parses a PSI file, refusing a `some` or `full` line twice, without `avg10` and `avg60`,
    /// with an average that is not a finite percentage (`nan`, `inf`, negative, over 100), or
    /// a `total` that is not a count. Lines of other kinds are counted, not parsed.
    pub fn parse(text: &str) -> Result<PressureLines, ProcParseError> {
        let err = |problem| ProcParseError {
            file: "pressure",
            problem,
        };
        let mut out = PressureLines::default();
        for l in text.lines().filter(|l| !l.trim().is_empty()) {
            let mut words = l.split_whitespace();
            let (kind, slot) = match words.next() {
                Some("some") => ("some", &mut out.some),
                Some("full") => ("full", &mut out.full),
                _ => {
                    out.other_lines += 1;
                    continue;
                }
            };
            let mut avg = [None; 3];
            let mut total = None;
            for w in words {
                let Some((k, v)) = w.split_once('=') else {
                    continue;
                };
                let (key, i) = match k {
                    "avg10" => ("avg10", 0),
                    "avg60" => ("avg60", 1),
                    "avg300" => ("avg300", 2),
                    "total" => {
                        total = Some(v.parse::<u64>().map_err(|_| {
                            err(Problem::Malformed(format!("total={v:?} is not a count")))
                        })?);
                        continue;
                    }
                    _ => continue,
                };
                let pct = v
                    .parse::<f64>()
                    .ok()
                    .filter(|p| p.is_finite() && (0.0..=100.0).contains(p))
                    .ok_or_else(|| {
                        err(Problem::NotPercent {
                            line: kind.to_string(),
                            key,
                            value: v.chars().take(40).collect(),
                        })
                    })?;
                avg[i] = Some(pct);
            }
            let missing = |key| err(Problem::Missing { key });
            let line = PsiLine {
                avg10: avg[0].ok_or_else(|| missing("avg10"))?,
                avg60: avg[1].ok_or_else(|| missing("avg60"))?,
                avg300: avg[2],
                total_us: total,
            };
            if slot.replace(line).is_some() {
                return Err(err(Problem::Duplicate { key: kind }));
            }
        }
        Ok(out)
    }
}

/// A whole PSI file: the `some` line, and the `full` line where the resource has one (not for
/// `cpu` before Linux 5.13), each with all four figures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Pressure {
    pub some: PressureLine,
    pub full: Option<PressureLine>,
}

impl Pressure {
    /// Parses a PSI file as [`PressureLines::parse`] does, and also refuses a file without a
    /// `some` line, a line without `avg300` or `total`, and lines of another kind.
    pub fn parse(text: &str) -> Result<Pressure, ProcParseError> {
        let err = |problem| ProcParseError {
            file: "pressure",
            problem,
        };
        let lines = PressureLines::parse(text)?;
        if lines.other_lines > 0 {
            return Err(err(Problem::Malformed(format!(
                "{} line(s) neither `some` nor `full`",
                lines.other_lines
            ))));
        }
        let whole = |l: PsiLine| {
            Ok(PressureLine {
                avg10: l.avg10,
                avg60: l.avg60,
                avg300: l.avg300.ok_or(err(Problem::Missing { key: "avg300" }))?,
                total_us: l.total_us.ok_or(err(Problem::Missing { key: "total" }))?,
            })
        };
        let some = lines
            .some
            .ok_or_else(|| err(Problem::Missing { key: "some" }))?;
        Ok(Pressure {
            some: whole(some)?,
            full: lines.full.map(whole).transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_real_sample() {
        let t = "MemTotal:       24577408 kB\nMemAvailable:   23811944 kB\nHugePages_Total:    1024\nHugePages_Free:     1024\nHugepagesize:       2048 kB\n";
        let m = parse_meminfo(t);
        assert_eq!(m["HugePages_Total"], 1024);
        assert_eq!(m["Hugepagesize"], 2048);
        assert_eq!(m["MemTotal"], 24577408);
        let m = Meminfo::parse(t).unwrap();
        assert_eq!(m.fields["HugePages_Total"], 1024);
    }

    #[test]
    fn meminfo_checked() {
        let real = "MemTotal:       24577408 kB\nMemFree: 1000 kB\nMemAvailable:   23811944 kB\n";
        let m = Meminfo::parse(real).unwrap();
        assert_eq!((m.total_kib, m.available_kib), (24577408, Some(23811944)));
        // The tester's meminfo: MemTotal 0 and MemAvailable 2^64-1.
        let forged = "MemTotal: 0 kB\nMemAvailable: 18446744073709551615 kB\n";
        let e = Meminfo::parse(forged).unwrap_err();
        assert!(e.to_string().contains("MemTotal is 0"), "{e}");
        let e = Meminfo::parse("MemTotal: 100 kB\nMemAvailable: 101 kB\n").unwrap_err();
        assert!(e.to_string().contains("is more than MemTotal"), "{e}");
        let e = Meminfo::parse("MemTotal: 18446744073709551615 kB\n").unwrap_err();
        assert!(e.to_string().contains("beyond any machine"), "{e}");
        assert!(Meminfo::parse("MemFree: 1 kB\n").is_err());
        assert!(Meminfo::parse("").is_err());
        // Before Linux 3.14 there is no MemAvailable.
        assert_eq!(
            Meminfo::parse("MemTotal: 100 kB\n").unwrap().available_kib,
            None
        );
    }

    #[test]
    fn meminfo_checked_lines_are_one_number_of_kb_once() {
        for (bad, problem) in [
            ("MemTotal: -1 kB\n", "not a number of kB"),
            ("MemTotal: 10 MB\n", "not a number of kB"),
            ("MemTotal: 10\n", "not a number of kB"),
            ("MemTotal: 10 kB extra\n", "not a number of kB"),
            ("MemTotal: 10 kB\nMemTotal: 20 kB\n", "given twice"),
        ] {
            let e = Meminfo::parse(bad).unwrap_err();
            assert!(e.to_string().contains(problem), "{bad:?}: {e}");
            assert_eq!(e.file, "meminfo");
        }
        // Unchecked lines are as lenient as before: a count without unit, garbage skipped.
        let m = Meminfo::parse("MemTotal: 10 kB\nHugePages_Total: 3\nWeird: x\n").unwrap();
        assert_eq!(m.fields.get("HugePages_Total"), Some(&3));
        assert!(!m.fields.contains_key("Weird"));
    }

    #[test]
    fn pressure_checked() {
        let real = "some avg10=0.00 avg60=0.12 avg300=1.50 total=123456\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=42\n";
        let p = Pressure::parse(real).unwrap();
        assert_eq!(p.some.avg300, 1.5);
        assert_eq!(p.full.unwrap().total_us, 42);
        let cpu_old = "some avg10=1.00 avg60=2.00 avg300=3.00 total=9\n";
        assert_eq!(Pressure::parse(cpu_old).unwrap().full, None);
        for bad in [
            "some avg10=nan avg60=0.00 avg300=0.00 total=1\n",
            "some avg10=inf avg60=0.00 avg300=0.00 total=1\n",
            "some avg10=-1 avg60=0.00 avg300=0.00 total=1\n",
            "some avg10=100.01 avg60=0.00 avg300=0.00 total=1\n",
            "some avg10=0.00 avg60=0.00 total=1\n",
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=-3\n",
            "full avg10=0.00 avg60=0.00 avg300=0.00 total=1\n",
            "bogus\n",
            "",
        ] {
            assert!(Pressure::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn pressure_lines_lenient_where_the_file_allows() {
        let p = PressureLines::parse("some avg10=100.00 avg60=0.00\n").unwrap();
        assert_eq!(p.some.unwrap().avg300, None);
        let p = PressureLines::parse("garbage\n").unwrap();
        assert_eq!((p.some, p.other_lines), (None, 1));
        let e = PressureLines::parse("some avg10=1 avg60=1\nsome avg10=1 avg60=1\n").unwrap_err();
        assert_eq!(e.problem, Problem::Duplicate { key: "some" });
        let e = PressureLines::parse("full avg10=1 avg60=x\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "pressure: avg60=x on the `full` line is not a percentage from 0 to 100"
        );
        assert!(PressureLines::parse("some avg10=1.00\n").is_err());
    }
}
