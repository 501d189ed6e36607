//! A small catalogue of error texts from the incident class — what rpm, Berkeley DB, SQLite,
//! dpkg and Longhorn print when a package database is sick or a probe piles up — each mapped
//! to its cause, its fix and the upstream issue. [`explain`] reads logs (for example `kubectl
//! logs` output) and says which of them show, on which lines.

use std::sync::OnceLock;

use regex::Regex;
use serde::Serialize;

use crate::finding::{self, Build, Finding, Status, Summary};

/// One known problem.
#[derive(Debug)]
pub struct Signature {
    /// Stable id segment: the finding is `doctor.signature.<id>`.
    pub id: &'static str,
    pub title: &'static str,
    /// A regular expression matched against each line.
    pub pattern: &'static str,
    pub cause: &'static str,
    /// What to do, one sentence: the finding's remediation summary.
    pub fix: &'static str,
    /// Commands to run, in order (the remediation's `commands`).
    pub commands: &'static [&'static str],
    /// Conditions and caveats (the remediation's `notes`, before the upstream link).
    pub notes: &'static [&'static str],
    pub link: &'static str,
}

/// The built-in catalogue.
pub const CATALOGUE: &[Signature] = &[
    Signature {
        id: "bdb-thread-died",
        title: "Berkeley DB rpmdb: a process died inside the database",
        pattern: r"BDB0113|Thread died in Berkeley DB library|rpmdb: .*Thread died",
        cause: "An rpm (or yum/dnf) process was killed while it had the Berkeley DB environment open; its entry in the `__db.*` environment files now names a dead process, and every later open needs recovery. Until then queries fail or hang, and probes that retry them pile up.",
        fix: "Make sure no rpm, yum or dnf process runs (`hostready doctor`), back up the directory, remove the stale environment, then rebuild the database.",
        commands: &[
            "hostready doctor",
            "cp -a /var/lib/rpm /var/lib/rpm.bak",
            "rm -f /var/lib/rpm/__db.*",
            "rpm --rebuilddb",
        ],
        notes: &[],
        link: "https://github.com/longhorn/longhorn/issues/10019",
    },
    Signature {
        id: "bdb-runrecovery",
        title: "Berkeley DB rpmdb needs recovery",
        pattern: r"DB_RUNRECOVERY|BDB0087|[Ff]atal error, run database recovery|db\d error\(-30973\)",
        cause: "The Berkeley DB environment of the rpmdb is in a state that needs recovery (usually after a killed rpm, see BDB0113).",
        fix: "With no rpm process running: back up /var/lib/rpm, remove the stale environment and rebuild the database.",
        commands: &[
            "cp -a /var/lib/rpm /var/lib/rpm.bak",
            "rm -f /var/lib/rpm/__db.*",
            "rpm --rebuilddb",
        ],
        notes: &[],
        link: "https://github.com/longhorn/longhorn/issues/10019",
    },
    Signature {
        id: "rpmdb-open-failed",
        title: "rpm cannot open its database",
        pattern: r"error: rpmdb open failed|cannot open Packages (database|index)|error: cannot open Packages",
        cause: "The rpm database is corrupt, locked, or its environment is stale; a package query in this state says nothing about whether a package is installed.",
        fix: "See whether the database is locked (and by whom) or damaged.",
        commands: &["hostready doctor"],
        notes: &[
            "If damaged, back up the directory (`cp -a /var/lib/rpm /var/lib/rpm.bak`) and `rpm --rebuilddb`.",
        ],
        link: "https://github.com/rpm-software-management/rpm/issues/602",
    },
    Signature {
        id: "sqlite-malformed",
        title: "SQLite rpmdb is damaged",
        pattern: r"database disk image is malformed|SQLITE_CORRUPT|file is not a database",
        cause: "rpmdb.sqlite is corrupt (truncated, overwritten, or torn by a crash on a filesystem that lost writes).",
        fix: "Back up the directory, then rebuild the database.",
        commands: &["cp -a /var/lib/rpm /var/lib/rpm.bak", "rpm --rebuilddb"],
        notes: &[
            "If `rpm --rebuilddb` fails too, `sqlite3 rpmdb.sqlite .recover` into a new file and rebuild from it.",
        ],
        link: "https://github.com/rpm-software-management/rpm/issues/1428",
    },
    Signature {
        id: "sqlite-locked",
        title: "SQLite database is locked",
        pattern: r"database is locked|SQLITE_BUSY",
        cause: "Another process holds the database's SQLite lock; rpm retries SQLITE_BUSY without end, so its queries wait for as long as the holder keeps it.",
        fix: "Find the holder (`hostready doctor` names its pid and command, and the waiters); stop the holder if it is stuck.",
        commands: &["hostready doctor"],
        notes: &[],
        link: "https://github.com/rpm-software-management/rpm/issues/602",
    },
    Signature {
        id: "rpm-transaction-lock",
        title: "rpm waits for its transaction lock",
        pattern: r"waiting for (exclusive|shared) lock on|can't create transaction lock on",
        cause: "Another rpm transaction holds `.rpm.lock` in the database directory.",
        fix: "Find the holder (`hostready doctor` names it); let it finish, or stop it if it is hung.",
        commands: &["hostready doctor"],
        notes: &[],
        link: "https://github.com/rpm-software-management/rpm/issues/602",
    },
    Signature {
        id: "nsenter-timeout",
        title: "Longhorn's namespace executor timed out",
        pattern: r"timeout executing: nsenter|failed to execute: nsenter|NamespaceExecutorErr",
        cause: "longhorn-manager ran a host command (`rpm -q`, `dpkg -l`, ...) through nsenter; it timed out, and before longhorn/longhorn#13619 the child was not killed, so each sync left another one behind.",
        fix: "Upgrade Longhorn to v1.7.3+/v1.8.0+ (executable checks instead of package queries, longhorn-manager PR #3406).",
        commands: &[],
        notes: &[
            "Fix the package database it was querying (`hostready doctor`); then kill the leftover processes.",
        ],
        link: "https://github.com/longhorn/longhorn/issues/10019",
    },
    Signature {
        id: "longhorn-packages-not-installed",
        title: "Longhorn reports required packages missing",
        pattern: r"PackagesNotInstalled|[Mm]issing packages?:? \[",
        cause: "Longhorn decided from the package database that a package is missing; on a host whose database is locked or damaged, or on an immutable host, this can be wrong.",
        fix: "Check the capability instead: `hostready check` looks for the executables themselves.",
        commands: &["hostready check"],
        notes: &[],
        link: "https://github.com/longhorn/longhorn/issues/13949",
    },
    Signature {
        id: "dpkg-lock",
        title: "dpkg/apt lock is held",
        pattern: r"Could not get lock /var/lib/dpkg/lock|Unable to acquire the dpkg frontend lock|Waiting for cache lock",
        cause: "Another apt or dpkg process holds the dpkg lock.",
        fix: "Find the holder (`hostready doctor` names it); let it finish, or stop it if it is hung and run `dpkg --configure -a`.",
        commands: &["hostready doctor"],
        notes: &["Never delete the lock files."],
        link: "https://manpages.debian.org/dpkg",
    },
    Signature {
        id: "dpkg-interrupted",
        title: "dpkg was interrupted",
        pattern: r"dpkg was interrupted, you must manually run",
        cause: "A dpkg run was killed half-way; the package state has unfinished work in /var/lib/dpkg/updates.",
        fix: "Finish the interrupted run.",
        commands: &["dpkg --configure -a"],
        notes: &[],
        link: "https://manpages.debian.org/dpkg",
    },
    Signature {
        id: "oom",
        title: "The kernel's OOM killer struck",
        pattern: r"Out of memory: Kill(ed)? process|oom-kill:|OOMKilled|invoked oom-killer",
        cause: "Memory ran out; a pile-up of stuck processes (hundreds of `rpm -q` at ~0.6 MiB each) is one way to get there.",
        fix: "Look for pile-ups (`hostready doctor`); give long-lived pods memory limits.",
        commands: &["hostready doctor"],
        notes: &[],
        link: "https://github.com/longhorn/longhorn/issues/10019",
    },
];

/// One known problem found in a log.
#[derive(Debug, Clone, Serialize)]
pub struct Match {
    pub id: &'static str,
    pub title: &'static str,
    pub cause: &'static str,
    pub fix: &'static str,
    pub commands: &'static [&'static str],
    pub notes: &'static [&'static str],
    pub link: &'static str,
    /// 1-based line numbers where it shows.
    pub lines: Vec<usize>,
    /// The first matching line, shortened.
    pub first: String,
}

fn compiled() -> &'static [Regex] {
    static RES: OnceLock<Vec<Regex>> = OnceLock::new();
    RES.get_or_init(|| {
        CATALOGUE
            .iter()
            .map(|s| Regex::new(s.pattern).expect("built-in signature patterns are valid"))
            .collect()
    })
}

/// Returns the known problems `text` shows, in catalogue order, with the lines they show on.
pub fn explain(text: &str) -> Vec<Match> {
    let res = compiled();
    let mut found: Vec<Option<Match>> = vec![None; CATALOGUE.len()];
    for (n, line) in text.lines().enumerate() {
        for (i, re) in res.iter().enumerate() {
            if !re.is_match(line) {
                continue;
            }
            let s = &CATALOGUE[i];
            found[i]
                .get_or_insert_with(|| Match {
                    id: s.id,
                    title: s.title,
                    cause: s.cause,
                    fix: s.fix,
                    commands: s.commands,
                    notes: s.notes,
                    link: s.link,
                    lines: Vec::new(),
                    first: crate::proc::truncate(line.trim(), 200),
                })
                .lines
                .push(n + 1);
        }
    }
    found.into_iter().flatten().collect()
}

/// Schema version of the `--explain` report, which follows `doctor`'s.
pub const SCHEMA: u32 = crate::SCHEMA;

/// What `hostready doctor --explain` reports: the log it read, whether it is free of known
/// problems, counts, the findings, and the matches with every line they show on.
#[derive(Debug, Serialize)]
pub struct Explanation {
    pub schema: u32,
    /// The log: a file name, or `stdin`.
    pub source: String,
    /// True if and only if the log shows no known problem.
    pub ok: bool,
    pub summary: Summary,
    pub findings: Vec<Finding>,
    pub matches: Vec<Match>,
}

/// Reads `text` (from `source`) and builds the whole explanation.
pub fn explanation(text: &str, source: &str) -> Explanation {
    let matches = explain(text);
    let findings = findings(&matches, source);
    Explanation {
        schema: SCHEMA,
        source: source.to_string(),
        ok: matches.is_empty(),
        summary: Summary::of(&findings),
        findings,
        matches,
    }
}

/// Turns matches into findings (`doctor.signature.<id>`, status fail), or one pass finding.
pub fn findings(matches: &[Match], source: &str) -> Vec<Finding> {
    if matches.is_empty() {
        return vec![
            finding::new(
                "doctor.signature",
                Status::Pass,
                format!("{source}: no known problem signature"),
            )
            .with("source", source),
        ];
    }
    matches
        .iter()
        .map(|m| {
            let lines: Vec<String> = m.lines.iter().take(20).map(usize::to_string).collect();
            let more = if m.lines.len() > 20 {
                format!(" … ({} in all)", m.lines.len())
            } else {
                String::new()
            };
            let mut f = finding::new(
                format!("doctor.signature.{}", m.id),
                Status::Fail,
                format!("{}: {}", m.title, m.cause),
            )
            .with("source", source)
            .with("lines", format!("{}{more}", lines.join(", ")))
            .with("first match", format!("line {}: {}", m.lines[0], m.first))
            .fix(m.fix);
            for c in m.commands {
                f = f.command(*c);
            }
            for n in m.notes {
                f = f.note(*n);
            }
            f.note(format!("upstream: {}", m.link))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Shapes of real log lines from longhorn/longhorn#10019 and rpm's own messages.
    const LOG: &str = "\
time=\"2024-12-18T09:01:02Z\" level=error msg=\"Failed to check package installed\" error=\"timeout executing: nsenter [--mount=/host/proc/1/ns/mnt --net=/host/proc/1/ns/net rpm -q iscsi-initiator-utils], output , stderr , : context deadline exceeded\"
error: rpmdb: BDB0113 Thread/process 2617/139935413692224 failed: BDB1507 Thread died in Berkeley DB library
error: db5 error(-30973) from dbenv->failchk: BDB0087 DB_RUNRECOVERY: Fatal error, run database recovery
error: cannot open Packages index using db5 -  (-30973)
error: cannot open Packages database in /var/lib/rpm
unrelated line
error: rpmdb: BDB0113 Thread/process 2618/1 failed: BDB1507 Thread died in Berkeley DB library
";

    #[test]
    fn finds_incident_signatures_with_lines() {
        let m = explain(LOG);
        let ids: Vec<&str> = m.iter().map(|m| m.id).collect();
        assert_eq!(
            ids,
            [
                "bdb-thread-died",
                "bdb-runrecovery",
                "rpmdb-open-failed",
                "nsenter-timeout"
            ]
        );
        assert_eq!(m[0].lines, [2, 7]);
        assert_eq!(m[3].lines, [1]);
        let f = findings(&m, "log");
        assert_eq!(f[0].id, "doctor.signature.bdb-thread-died");
        assert_eq!(f[0].evidence.get("source"), Some("log"));
        assert_eq!(f[0].evidence.get("lines"), Some("2, 7"));
        assert!(
            f[0].evidence
                .get("first match")
                .is_some_and(|l| l.starts_with("line 2: error: rpmdb: BDB0113"))
        );
        let fix = f[0].remediation.as_ref().unwrap();
        assert!(
            fix.commands
                .contains(&"rm -f /var/lib/rpm/__db.*".to_string())
        );
        assert_eq!(
            fix.notes.last().map(String::as_str),
            Some("upstream: https://github.com/longhorn/longhorn/issues/10019")
        );
    }

    #[test]
    fn sqlite_and_clean_logs() {
        let m = explain("error: rpmdbOpen: sqlite failure: database disk image is malformed\n");
        assert_eq!(m[0].id, "sqlite-malformed");
        assert!(explain("all good\n").is_empty());
        assert_eq!(findings(&[], "x")[0].status, Status::Pass);
        let e = explanation("all good\n", "x");
        assert!(e.ok);
        assert_eq!(e.summary.pass, 1);
        let e = explanation(LOG, "log");
        assert!(!e.ok);
        assert_eq!(e.summary.fail, 4);
    }

    #[test]
    fn every_signature_has_a_one_sentence_fix_and_clean_commands() {
        for s in CATALOGUE {
            assert!(s.fix.ends_with('.'), "{}", s.id);
            assert!(!s.fix.is_empty(), "{}", s.id);
            for c in s.commands {
                assert!(!c.contains('`'), "{}: {c}", s.id);
            }
        }
    }
}
