//! What doctor reports: the findings of `hostready check` (`hostready_checks::Finding`, one
//! shape for every surface), built with [`new`] and [`Build`], plus doctor's formatting helpers.

pub use hostready_checks::{Evidence, Finding, Level, Remediation, Status, Summary};

/// The `profile` every doctor finding carries: doctor is not driven by a profile, but its
/// findings have the shape of `hostready check`'s so every surface prints one shape.
pub const PROFILE: &str = "doctor";

/// Builds a doctor finding (profile `doctor`, level `required`) without evidence or remediation.
pub fn new(id: impl Into<String>, status: Status, message: impl Into<String>) -> Finding {
    Finding {
        id: id.into(),
        profile: PROFILE.into(),
        level: Level::Required,
        status,
        message: message.into(),
        evidence: Evidence::default(),
        remediation: None,
        subject: hostready_checks::finding::Subject::Diagnosis,
        probe: None,
    }
}

/// Chained building of a [`Finding`]: evidence as key → value, and a remediation made of a
/// one-sentence summary, shell commands in order, and notes (caveats, conditions, links).
pub trait Build {
    /// Adds one fact: `key` is lowercase words (`lock holder`, `full read`).
    fn with(self, key: impl Into<String>, value: impl Into<String>) -> Self;
    /// Sets the remediation's summary, one sentence of prose.
    fn fix(self, summary: impl Into<String>) -> Self;
    /// Adds a command to run on the host, after the ones already there.
    fn command(self, command: impl Into<String>) -> Self;
    /// Adds a caveat or a conditional step.
    fn note(self, note: impl Into<String>) -> Self;
}

impl Build for Finding {
    fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Finding {
        self.evidence.add(key, value);
        self
    }

    fn fix(mut self, summary: impl Into<String>) -> Finding {
        self.remediation
            .get_or_insert_with(Remediation::default)
            .summary = summary.into();
        self
    }

    fn command(mut self, command: impl Into<String>) -> Finding {
        self.remediation
            .get_or_insert_with(Remediation::default)
            .commands
            .push(command.into());
        self
    }

    fn note(mut self, note: impl Into<String>) -> Finding {
        self.remediation
            .get_or_insert_with(Remediation::default)
            .notes
            .push(note.into());
        self
    }
}

/// Returns `key` for the first of several facts of one kind and `key N` (N = 2, 3, ...) for
/// the later ones, so the first is always found under the plain key.
pub fn nth_key(key: &str, index: usize) -> String {
    if index == 0 {
        key.to_string()
    } else {
        format!("{key} {}", index + 1)
    }
}

/// Adds `value` under `key`, or under `key 2`, `key 3`, ... when `key` is taken.
pub fn add_numbered(evidence: &mut Evidence, key: &str, value: impl Into<String>) {
    let n = (0..)
        .find(|i| evidence.get(&nth_key(key, *i)).is_none())
        .unwrap_or(0);
    evidence.add(nth_key(key, n), value);
}

/// Replaces the value recorded under `key`, or adds it.
pub fn set(evidence: &mut Evidence, key: &str, value: impl Into<String>) {
    match evidence.0.iter_mut().find(|(k, _)| k == key) {
        Some((_, v)) => *v = value.into(),
        None => {
            evidence.add(key, value);
        }
    }
}

/// Returns how bad a status is for a doctor: pass, unknown, warn, fail. (The derived order of
/// [`Status`] puts `unknown` last, as check sorts it.)
pub fn severity(s: Status) -> u8 {
    match s {
        Status::Pass => 0,
        Status::Unknown => 1,
        Status::Warn => 2,
        Status::Fail => 3,
    }
}

/// Turns a file or command name into an id segment: lowercase ASCII letters, digits, `.`, `-`
/// and `_`; anything else becomes `_`.
pub fn id_segment(s: &str) -> String {
    let seg: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if seg.is_empty() { "_".into() } else { seg }
}

/// Formats kB as MiB with one decimal.
pub fn mib(kb: u64) -> String {
    format!("{:.1} MiB", kb as f64 / 1024.0)
}

/// Formats seconds as a short age: `42s`, `5m12s`, `3h04m`, `2d03h`.
pub fn age(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        3600..86400 => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d{:02}h", secs / 86400, secs % 86400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_and_units() {
        assert_eq!(id_segment("rpmdb.sqlite"), "rpmdb.sqlite");
        assert_eq!(id_segment("Lock Frontend/x"), "lock_frontend_x");
        assert_eq!(id_segment(""), "_");
        assert_eq!(mib(1536), "1.5 MiB");
        assert_eq!(age(59), "59s");
        assert_eq!(age(312), "5m12s");
        assert_eq!(age(3 * 3600 + 240), "3h04m");
        assert_eq!(age(2 * 86400 + 3 * 3600), "2d03h");
    }

    #[test]
    fn builds_check_shaped_findings() {
        let mut f = new("doctor.x", Status::Warn, "m")
            .with("file", "/a")
            .fix("Do it.")
            .command("true")
            .note("Carefully.");
        assert_eq!(f.profile, "doctor");
        assert_eq!(f.level, Level::Required);
        add_numbered(&mut f.evidence, "note", "one");
        add_numbered(&mut f.evidence, "note", "two");
        set(&mut f.evidence, "file", "/b");
        assert_eq!(f.evidence.get("file"), Some("/b"));
        assert_eq!(f.evidence.get("note"), Some("one"));
        assert_eq!(f.evidence.get("note 2"), Some("two"));
        let r = f.remediation.unwrap();
        assert_eq!(
            (r.summary.as_str(), r.commands, r.notes),
            (
                "Do it.",
                vec!["true".to_string()],
                vec!["Carefully.".to_string()]
            )
        );
        assert!(severity(Status::Fail) > severity(Status::Warn));
        assert!(severity(Status::Warn) > severity(Status::Unknown));
    }
}
