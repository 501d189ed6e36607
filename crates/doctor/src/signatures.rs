//! A small catalogue of error texts from the incident class — what rpm, Berkeley DB, SQLite,
//! dpkg and Longhorn print when a package database is sick or a probe piles up — each mapped
//! to its cause, its fix and the upstream issue. [`explain`] reads logs (for example `kubectl
//! logs` output) and says which of them show, on which lines.
//!
//! A signature that is a symptom of an entry of the known-issues catalogue
//! (`catalogue/known-issues.yaml`, [`crate::catalogue`]) names that entry
//! ([`Upstream::Known`]) instead of carrying a link of its own: its upstream link, the
//! entry's title and fixed versions all come from the catalogue, the one place they are kept
//! (`hostready cluster` lists the same entries by version). Tests hold that every named entry
//! exists and that no signature's own link repeats one of the catalogue's.

use std::io::{self, Read};
use std::sync::OnceLock;

use regex::bytes::{RegexSet, RegexSetBuilder};
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
    /// Where upstream tracks it.
    pub upstream: Upstream,
}

/// Where a signature's problem is tracked upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    /// A link of the signature's own (a problem the known-issues catalogue does not hold).
    Link(&'static str),
    /// The id of the known-issues catalogue entry this is a symptom of: its links are the
    /// signature's.
    Known(&'static str),
}

impl Signature {
    /// Returns the catalogue entry this signature names, if any (and if it exists).
    pub fn known_issue(&self) -> Option<&'static crate::catalogue::Entry> {
        match self.upstream {
            Upstream::Known(id) => crate::catalogue::entry(id),
            Upstream::Link(_) => None,
        }
    }

    /// Returns the upstream link: its own, or the first of its catalogue entry's.
    pub fn link(&self) -> &'static str {
        match self.upstream {
            Upstream::Link(l) => l,
            Upstream::Known(_) => self
                .known_issue()
                .and_then(|e| e.links.first())
                .map_or("", String::as_str),
        }
    }
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
        upstream: Upstream::Known("longhorn.package-check-pileup"),
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
        upstream: Upstream::Known("longhorn.package-check-pileup"),
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
        upstream: Upstream::Link("https://github.com/rpm-software-management/rpm/issues/602"),
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
        upstream: Upstream::Link("https://github.com/rpm-software-management/rpm/issues/1428"),
    },
    Signature {
        id: "sqlite-locked",
        title: "SQLite database is locked",
        pattern: r"database is locked|SQLITE_BUSY",
        cause: "Another process holds the database's SQLite lock; rpm retries SQLITE_BUSY without end, so its queries wait for as long as the holder keeps it.",
        fix: "Find the holder (`hostready doctor` names its pid and command, and the waiters); stop the holder if it is stuck.",
        commands: &["hostready doctor"],
        notes: &[],
        upstream: Upstream::Link("https://github.com/rpm-software-management/rpm/issues/602"),
    },
    Signature {
        id: "rpm-transaction-lock",
        title: "rpm waits for its transaction lock",
        pattern: r"waiting for (exclusive|shared) lock on|can't create transaction lock on",
        cause: "Another rpm transaction holds `.rpm.lock` in the database directory.",
        fix: "Find the holder (`hostready doctor` names it); let it finish, or stop it if it is hung.",
        commands: &["hostready doctor"],
        notes: &[],
        upstream: Upstream::Link("https://github.com/rpm-software-management/rpm/issues/602"),
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
        upstream: Upstream::Known("longhorn.package-check-pileup"),
    },
    Signature {
        id: "longhorn-packages-not-installed",
        title: "Longhorn reports required packages missing",
        pattern: r"PackagesNotInstalled|[Mm]issing packages?:? \[",
        cause: "Longhorn decided from the package database that a package is missing; on a host whose database is locked or damaged, or on an immutable host, this can be wrong.",
        fix: "Check the capability instead: `hostready check` looks for the executables themselves.",
        commands: &["hostready check"],
        notes: &[],
        upstream: Upstream::Link("https://github.com/longhorn/longhorn/issues/13949"),
    },
    Signature {
        id: "dpkg-lock",
        title: "dpkg/apt lock is held",
        pattern: r"Could not get lock /var/lib/dpkg/lock|Unable to acquire the dpkg frontend lock|Waiting for cache lock",
        cause: "Another apt or dpkg process holds the dpkg lock.",
        fix: "Find the holder (`hostready doctor` names it); let it finish, or stop it if it is hung and run `dpkg --configure -a`.",
        commands: &["hostready doctor"],
        notes: &["Never delete the lock files."],
        upstream: Upstream::Link("https://manpages.debian.org/dpkg"),
    },
    Signature {
        id: "dpkg-interrupted",
        title: "dpkg was interrupted",
        pattern: r"dpkg was interrupted, you must manually run",
        cause: "A dpkg run was killed half-way; the package state has unfinished work in /var/lib/dpkg/updates.",
        fix: "Finish the interrupted run.",
        commands: &["dpkg --configure -a"],
        notes: &[],
        upstream: Upstream::Link("https://manpages.debian.org/dpkg"),
    },
    Signature {
        id: "oom",
        title: "The kernel's OOM killer struck",
        pattern: r"Out of memory: Kill(ed)? process|oom-kill:|OOMKilled|invoked oom-killer",
        cause: "Memory ran out; a pile-up of stuck processes (hundreds of `rpm -q` at ~0.6 MiB each) is one way to get there.",
        fix: "Look for pile-ups (`hostready doctor`); give long-lived pods memory limits.",
        commands: &["hostready doctor"],
        notes: &[],
        upstream: Upstream::Known("longhorn.package-check-pileup"),
    },
];

/// Bytes of one line matched at once. A longer line (a binary file, a sparse file's hole of
/// NULs, `/dev/zero`: one endless line) is matched in pieces of this size, each starting with
/// the last [`OVERLAP`] bytes of the one before, so memory stays bounded whatever the input.
pub const MAX_LINE: usize = 64 * 1024;

/// Bytes each piece of a long line repeats from the piece before: a match shorter than this
/// is found wherever the cut falls. (Every catalogue signature matches fewer than 200 bytes
/// but `rpmdb: .*Thread died`, whose `.*` could in theory stretch over a cut.)
pub const OVERLAP: usize = 4 * 1024;

/// Line numbers kept per signature; the count of matching lines is kept in full.
pub const LINES_KEPT: usize = 100;

/// Runs of NUL bytes at least this long, block-aligned in what is fed (the holes of a sparse
/// file, `/dev/zero`, the zeroed tail a crash leaves in a log), are skipped rather than
/// matched: no signature contains a NUL. The line they are in goes on after them.
pub const NUL_BLOCK: usize = 4096;

/// How much is read from the input at once.
pub const READ_CHUNK: usize = 64 * 1024;

/// One known problem found in a log.
#[derive(Debug, Clone, Serialize)]
pub struct Match {
    pub id: &'static str,
    pub title: &'static str,
    pub cause: &'static str,
    pub fix: &'static str,
    pub commands: &'static [&'static str],
    pub notes: &'static [&'static str],
    /// The upstream link: the signature's own, or its known issue's first.
    pub link: &'static str,
    /// The known-issues catalogue entry this is a symptom of (`null` when none).
    pub known_issue: Option<KnownIssue>,
    /// 1-based line numbers where it shows: the first [`LINES_KEPT`] of them.
    pub lines: Vec<usize>,
    /// How many lines it shows on, all of them counted.
    pub count: usize,
    /// The first match with a little context before it, shortened.
    pub first: String,
}

/// A known-issues catalogue entry, as a match names it.
#[derive(Debug, Clone, Serialize)]
pub struct KnownIssue {
    /// The entry's id (`longhorn.package-check-pileup`).
    pub id: &'static str,
    pub title: &'static str,
    /// Its upstream issues and pull requests.
    pub links: &'static [String],
    /// The first fixed release of each maintained line.
    pub fixed_in: &'static [String],
}

impl KnownIssue {
    fn of(e: &'static crate::catalogue::Entry) -> KnownIssue {
        KnownIssue {
            id: &e.id,
            title: &e.title,
            links: &e.links,
            fixed_in: &e.fixed_in,
        }
    }
}

/// The catalogue compiled into one set that says which signatures a line shows in one pass.
fn compiled() -> &'static RegexSet {
    static RES: OnceLock<RegexSet> = OnceLock::new();
    RES.get_or_init(|| {
        let patterns = CATALOGUE.iter().map(|s| s.pattern);
        // Bytes, not text: a log is not always UTF-8, and with Unicode off `.` matches any
        // byte but `\n`, as it matched U+FFFD when the input was decoded lossily.
        RegexSetBuilder::new(patterns)
            .unicode(false)
            .build()
            .expect("built-in signature patterns are valid")
    })
}

/// Returns where in `line` the first match of signature `i` (known to match) starts, found
/// by bisecting with the set itself: first the shortest prefix that matches (the end of the
/// earliest-ending match), then the shortest suffix of that prefix that still does. A match
/// in part of a line is a match in the line (no pattern has an anchor or a word boundary), so
/// both tests are monotonic. This costs a few passes over one line, once per signature, and
/// spares a second regex engine per signature (its memory and its code).
fn match_start(line: &[u8], i: usize) -> usize {
    let set = compiled();
    let matches = |part: &[u8]| set.matches(part).matched(i);
    let (mut lo, mut hi) = (0, line.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if matches(&line[..mid]) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let end = lo;
    let (mut lo, mut hi) = (0, end);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if matches(&line[mid..end]) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

/// A log being read: fed bytes in chunks of any size, it matches every line against the
/// catalogue and keeps only what a report needs. Its memory is bounded independent of the
/// input: the unfinished line (at most [`MAX_LINE`] bytes) and, per signature, a snippet and
/// [`LINES_KEPT`] line numbers.
#[derive(Debug)]
pub struct Scanner {
    found: Vec<Option<Match>>,
    /// The last line each signature was counted on (a match inside a long line's overlap is
    /// seen twice).
    last: Vec<usize>,
    /// Lines completed so far.
    lines: usize,
    bytes: u64,
    long_lines: usize,
    nul_skipped: u64,
    /// The current line's bytes not yet matched, at most [`MAX_LINE`].
    pending: Vec<u8>,
    /// True while the current line is longer than [`MAX_LINE`] and matched in pieces.
    in_long: bool,
    /// True when the current line has begun (bytes of it were seen, NULs skipped included).
    open: bool,
}

/// What a whole log showed.
#[derive(Debug, Clone)]
pub struct Scanned {
    /// The known problems, in catalogue order.
    pub matches: Vec<Match>,
    /// Lines read (a last line without a newline counts).
    pub lines: usize,
    /// Bytes read.
    pub bytes: u64,
    /// Lines longer than [`MAX_LINE`], which were matched in overlapping pieces.
    pub long_lines: usize,
    /// NUL bytes skipped unmatched (see [`NUL_BLOCK`]).
    pub nul_skipped: u64,
}

impl Default for Scanner {
    fn default() -> Scanner {
        Scanner::new()
    }
}

impl Scanner {
    /// Returns a scanner that has read nothing.
    pub fn new() -> Scanner {
        Scanner {
            found: vec![None; CATALOGUE.len()],
            last: vec![0; CATALOGUE.len()],
            lines: 0,
            bytes: 0,
            long_lines: 0,
            nul_skipped: 0,
            pending: Vec::new(),
            in_long: false,
            open: false,
        }
    }

    /// Reads the next bytes of the log.
    pub fn feed(&mut self, mut data: &[u8]) {
        self.bytes += data.len() as u64;
        while !data.is_empty() {
            let nuls = nul_run(data);
            if nuls > 0 {
                self.nul_skipped += nuls as u64;
                self.open = true;
                data = &data[nuls..];
                continue;
            }
            if self.pending.is_empty() && !self.in_long {
                if let Some(last) = memchr::memrchr(b'\n', data) {
                    // Whole lines, matched where they lie without a copy.
                    self.block(&data[..last]);
                    data = &data[last + 1..];
                    continue;
                }
            }
            match memchr::memchr(b'\n', data) {
                Some(i) => {
                    self.push_pending(&data[..i]);
                    self.end_line();
                    data = &data[i + 1..];
                }
                None => {
                    self.push_pending(data);
                    data = &[];
                }
            }
        }
    }

    /// Ends the log: an unfinished last line is a line.
    pub fn finish(mut self) -> Scanned {
        if self.open {
            self.end_line();
        }
        Scanned {
            matches: self.found.into_iter().flatten().collect(),
            lines: self.lines,
            bytes: self.bytes,
            long_lines: self.long_lines,
            nul_skipped: self.nul_skipped,
        }
    }

    /// Matches complete lines (`block` holds at least one line, its last newline cut off).
    /// No catalogue pattern can match across a newline, so one pass over the whole block
    /// tells whether any of its lines matches; only then is it split.
    fn block(&mut self, block: &[u8]) {
        if !compiled().is_match(block) {
            self.lines += memchr::memchr_iter(b'\n', block).count() + 1;
        } else {
            for line in block.split(|b| *b == b'\n') {
                self.lines += 1;
                self.match_line(line);
            }
        }
        self.open = false;
    }

    /// Adds bytes to the unfinished line; a full [`MAX_LINE`] is matched as a piece and only
    /// its last [`OVERLAP`] bytes are kept.
    fn push_pending(&mut self, mut bytes: &[u8]) {
        self.open |= !bytes.is_empty();
        while !bytes.is_empty() {
            let take = (MAX_LINE - self.pending.len()).min(bytes.len());
            self.pending.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.pending.len() == MAX_LINE {
                if !self.in_long {
                    self.in_long = true;
                    self.long_lines += 1;
                }
                let piece = std::mem::take(&mut self.pending);
                self.match_line_at(&piece, self.lines + 1);
                self.pending = piece;
                self.pending.drain(..MAX_LINE - OVERLAP);
            }
        }
    }

    fn end_line(&mut self) {
        self.lines += 1;
        let line = std::mem::take(&mut self.pending);
        self.match_line_at(&line, self.lines);
        self.pending = line;
        self.pending.clear();
        self.in_long = false;
        self.open = false;
    }

    /// Matches one complete line, the last one counted.
    fn match_line(&mut self, line: &[u8]) {
        self.match_line_at(line, self.lines);
    }

    fn match_line_at(&mut self, line: &[u8], n: usize) {
        let hits = compiled().matches(line);
        if !hits.matched_any() {
            return;
        }
        for i in hits.iter() {
            if self.last[i] == n {
                continue;
            }
            self.last[i] = n;
            let s = &CATALOGUE[i];
            let m = self.found[i].get_or_insert_with(|| Match {
                id: s.id,
                title: s.title,
                cause: s.cause,
                fix: s.fix,
                commands: s.commands,
                notes: s.notes,
                link: s.link(),
                known_issue: s.known_issue().map(KnownIssue::of),
                lines: Vec::new(),
                count: 0,
                first: snippet(line, match_start(line, i)),
            });
            m.count += 1;
            if m.lines.len() < LINES_KEPT {
                m.lines.push(n);
            }
        }
    }
}

/// Returns the length of the run of whole [`NUL_BLOCK`]s of NUL bytes `data` starts with.
fn nul_run(data: &[u8]) -> usize {
    static ZEROS: [u8; NUL_BLOCK] = [0; NUL_BLOCK];
    // Slice equality is one `memcmp`: fast even where the rest of the scan is not optimised.
    data.chunks_exact(NUL_BLOCK)
        .take_while(|c| *c == ZEROS)
        .count()
        * NUL_BLOCK
}

/// Returns up to 200 characters of `line` from a little before `at` (where a match starts),
/// marking what was cut with `…`.
fn snippet(line: &[u8], at: usize) -> String {
    const BEFORE: usize = 40;
    let from = at.saturating_sub(BEFORE);
    // 4 bytes per character at most: enough bytes for 200 characters whatever the encoding.
    let to = line.len().min(from + 4 * 200);
    let text = String::from_utf8_lossy(&line[from..to]);
    let text = text.trim();
    let cut = crate::proc::truncate(text, if from > 0 { 199 } else { 200 });
    let cut = if to < line.len() && !cut.ends_with('…') {
        format!("{cut}…")
    } else {
        cut
    };
    if from > 0 { format!("…{cut}") } else { cut }
}

/// Returns the known problems `text` shows, in catalogue order, with the lines they show on.
pub fn explain(text: &str) -> Vec<Match> {
    let mut s = Scanner::new();
    s.feed(text.as_bytes());
    s.finish().matches
}

/// Reads `input` to its end in [`READ_CHUNK`]s and matches every line: memory stays bounded
/// (see [`Scanner`]) however long the input is, and reading ends only at its end.
pub fn scan(mut input: impl Read) -> io::Result<Scanned> {
    let mut buf = vec![0; READ_CHUNK];
    let mut s = Scanner::new();
    loop {
        match input.read(&mut buf) {
            Ok(0) => return Ok(s.finish()),
            Ok(n) => s.feed(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Schema version of the `--explain` report, which follows `doctor`'s.
pub const SCHEMA: u32 = crate::SCHEMA;

/// What `hostready doctor --explain` reports: the log it read, whether it is free of known
/// problems, counts, the findings, and the matches with the lines they show on.
#[derive(Debug, Serialize)]
pub struct Explanation {
    pub schema: u32,
    /// The log: a file name, or `stdin`.
    pub source: String,
    /// True if and only if the log shows no known problem.
    pub ok: bool,
    pub summary: Summary,
    /// Lines and bytes read.
    pub lines_read: usize,
    pub bytes_read: u64,
    /// Lines longer than [`MAX_LINE`] bytes, matched in overlapping pieces.
    pub long_lines: usize,
    /// NUL bytes skipped in runs of at least [`NUL_BLOCK`] (sparse files' holes).
    pub nul_skipped: u64,
    pub findings: Vec<Finding>,
    pub matches: Vec<Match>,
}

/// Reads `text` (from `source`) and builds the whole explanation.
pub fn explanation(text: &str, source: &str) -> Explanation {
    let mut s = Scanner::new();
    s.feed(text.as_bytes());
    explanation_of(s.finish(), source)
}

/// Reads `input` (from `source`) to its end and builds the whole explanation.
pub fn explain_reader(input: impl Read, source: &str) -> io::Result<Explanation> {
    Ok(explanation_of(scan(input)?, source))
}

/// Builds the explanation of a scanned log.
pub fn explanation_of(scanned: Scanned, source: &str) -> Explanation {
    let mut findings = findings(&scanned.matches, source);
    if scanned.long_lines > 0 {
        let why = format!(
            "{} line(s) longer than {} KiB were matched in pieces of {} KiB overlapping by {} KiB; \
             a match longer than the overlap that spans a cut is missed",
            scanned.long_lines,
            MAX_LINE / 1024,
            MAX_LINE / 1024,
            OVERLAP / 1024
        );
        for f in &mut findings {
            f.evidence.add("long lines", why.clone());
        }
    }
    Explanation {
        schema: SCHEMA,
        source: source.to_string(),
        ok: scanned.matches.is_empty(),
        summary: Summary::of(&findings),
        lines_read: scanned.lines,
        bytes_read: scanned.bytes,
        long_lines: scanned.long_lines,
        nul_skipped: scanned.nul_skipped,
        findings,
        matches: scanned.matches,
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
            let more = if m.count > lines.len() {
                format!(" … ({} in all)", m.count)
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
            if let Some(k) = &m.known_issue {
                // The catalogue's words, so the table shows the entry `hostready cluster` lists.
                f = f.note(format!(
                    "known issue {}: {} (fixed in {}; {})",
                    k.id,
                    k.title,
                    k.fixed_in.join(", "),
                    k.links.join(" ")
                ));
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

    /// Every catalogue id a signature names exists in the shipped catalogue, and its link is
    /// the entry's; no signature's own link repeats a catalogue link (the catalogue is the one
    /// place a known issue's links are kept).
    #[test]
    fn signatures_name_existing_catalogue_entries_and_copy_none_of_their_links() {
        let catalogue = crate::catalogue::catalogue().unwrap();
        let mut named = 0;
        for s in CATALOGUE {
            match s.upstream {
                Upstream::Known(id) => {
                    let e = catalogue.iter().find(|e| e.id == id).unwrap_or_else(|| {
                        panic!(
                            "signature {} names catalogue entry {id:?}, which does not exist",
                            s.id
                        )
                    });
                    assert_eq!(s.known_issue().map(|k| &k.id), Some(&e.id));
                    assert_eq!(s.link(), e.links[0], "{}", s.id);
                    named += 1;
                }
                Upstream::Link(l) => {
                    assert!(l.starts_with("https://"), "{}: {l}", s.id);
                    let copied = catalogue.iter().find(|e| e.links.iter().any(|x| x == l));
                    assert!(
                        copied.is_none(),
                        "signature {} copies {l} of catalogue entry {}: name the entry instead",
                        s.id,
                        copied.unwrap().id
                    );
                }
            }
        }
        assert!(named > 0);
        // An id that is not in the catalogue resolves to nothing (so the test above can fail).
        let ghost = Signature {
            upstream: Upstream::Known("longhorn.no-such-entry"),
            ..CATALOGUE[0]
        };
        assert!(ghost.known_issue().is_none());
        assert_eq!(ghost.link(), "");
    }

    /// The nsenter time-out of the incident names the rpm pile-up entry in its match (JSON)
    /// and in its finding's notes (the table), with the entry's fixed versions and links.
    #[test]
    fn a_match_names_its_known_issue_in_json_and_text() {
        let m = explain(LOG);
        let ns = m.iter().find(|m| m.id == "nsenter-timeout").unwrap();
        let k = ns.known_issue.as_ref().unwrap();
        assert_eq!(k.id, "longhorn.package-check-pileup");
        assert!(k.fixed_in.iter().any(|v| v == "v1.7.3"));
        let json = serde_json::to_value(ns).unwrap();
        assert_eq!(json["known_issue"]["id"], "longhorn.package-check-pileup");
        assert_eq!(
            json["link"],
            "https://github.com/longhorn/longhorn/issues/10019"
        );
        let f = findings(&m, "log");
        let notes = &f
            .iter()
            .find(|f| f.id == "doctor.signature.nsenter-timeout")
            .unwrap()
            .remediation
            .as_ref()
            .unwrap()
            .notes;
        assert!(
            notes.iter().any(
                |n| n.starts_with("known issue longhorn.package-check-pileup: ")
                    && n.contains("fixed in v1.7.3, v1.8.0")
                    && n.contains("https://github.com/longhorn/longhorn-manager/pull/3406")
            ),
            "{notes:?}"
        );
        // A signature outside the catalogue says so with null.
        let m = explain("error: rpmdbOpen: sqlite failure: database disk image is malformed\n");
        assert!(m[0].known_issue.is_none());
        assert!(serde_json::to_value(&m[0]).unwrap()["known_issue"].is_null());
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

    fn scan_in_chunks(input: &[u8], chunk: usize) -> Scanned {
        let mut s = Scanner::new();
        for c in input.chunks(chunk) {
            s.feed(c);
        }
        s.finish()
    }

    fn summary(s: &Scanned) -> Vec<(&'static str, Vec<usize>, usize, String)> {
        s.matches
            .iter()
            .map(|m| (m.id, m.lines.clone(), m.count, m.first.clone()))
            .collect()
    }

    #[test]
    fn the_answer_does_not_depend_on_how_the_input_is_cut() {
        let mut input = LOG.as_bytes().to_vec();
        input.extend(vec![0u8; 3 * NUL_BLOCK + 17]);
        input.extend(b"\nlast line: database is locked");
        let whole = scan_in_chunks(&input, input.len());
        for chunk in [1, 2, 7, 64, 4096, 5000] {
            let s = scan_in_chunks(&input, chunk);
            assert_eq!(summary(&s), summary(&whole), "chunk {chunk}");
            assert_eq!(s.lines, whole.lines, "chunk {chunk}");
        }
        assert_eq!(whole.lines, 9);
        let locked = whole
            .matches
            .iter()
            .find(|m| m.id == "sqlite-locked")
            .unwrap();
        assert_eq!(locked.lines, [9]);
        assert_eq!(locked.first, "last line: database is locked");
        // A match far into a line is shown with the context just before it.
        let m = explain(&format!("{}SQLITE_BUSY tail\n", "z".repeat(500)));
        assert_eq!(m[0].first, format!("…{}SQLITE_BUSY tail", "z".repeat(40)));
    }

    #[test]
    fn a_line_longer_than_the_cap_is_matched_in_overlapping_pieces() {
        // The signature straddles the first cut at MAX_LINE.
        let mut line = vec![b'x'; MAX_LINE - 8];
        line.extend(b"SQLITE_BUSY");
        line.extend(vec![b'y'; 3 * MAX_LINE]);
        line.extend(b" OOMKilled\nnext\n");
        for chunk in [100, READ_CHUNK, line.len()] {
            let s = scan_in_chunks(&line, chunk);
            let ids: Vec<_> = s
                .matches
                .iter()
                .map(|m| (m.id, m.lines.clone(), m.count))
                .collect();
            assert_eq!(
                ids,
                [("sqlite-locked", vec![1], 1), ("oom", vec![1], 1)],
                "chunk {chunk}"
            );
            assert_eq!(s.lines, 2);
            if chunk < line.len() {
                assert_eq!(s.long_lines, 1);
            }
        }
    }

    #[test]
    fn nuls_are_one_line_and_lines_are_counted_through_them() {
        let mut s = Scanner::new();
        for _ in 0..1000 {
            s.feed(&[0; READ_CHUNK]);
        }
        s.feed(b"\nOut of memory: Killed process 1\n");
        let s = s.finish();
        assert_eq!(s.lines, 2);
        assert_eq!(s.nul_skipped, 1000 * READ_CHUNK as u64);
        assert_eq!(s.matches[0].lines, [2]);
        let mut only = Scanner::new();
        only.feed(&[0; 2 * NUL_BLOCK]);
        assert_eq!(only.finish().lines, 1);
        assert_eq!(Scanner::new().finish().lines, 0);
    }

    #[test]
    fn line_numbers_kept_are_capped_and_counted_in_full() {
        let text = "database is locked\n".repeat(LINES_KEPT * 3);
        let m = explain(&text);
        assert_eq!(m[0].lines.len(), LINES_KEPT);
        assert_eq!(m[0].count, LINES_KEPT * 3);
        let f = findings(&m, "x");
        assert!(
            f[0].evidence
                .get("lines")
                .unwrap()
                .ends_with(&format!("… ({} in all)", LINES_KEPT * 3)),
            "{:?}",
            f[0].evidence
        );
    }

    #[test]
    fn no_pattern_can_match_across_a_newline() {
        // `block` relies on it: a block of lines matches only where one of its lines does.
        for s in CATALOGUE {
            for bad in [
                r"\s", r"[^", r"\n", "(?s", r"\W", r"\D", r"\S", r"\H", r"\V",
            ] {
                assert!(!s.pattern.contains(bad), "{}: {bad}", s.id);
            }
        }
    }

    #[test]
    fn invalid_utf8_is_matched_and_shown_lossily() {
        let m = explain_bytes(b"\xff\xfe rpmdb: \xff Thread died\n");
        assert_eq!(m[0].id, "bdb-thread-died");
        assert!(m[0].first.contains('\u{fffd}'), "{}", m[0].first);
    }

    fn explain_bytes(b: &[u8]) -> Vec<Match> {
        scan(b).unwrap().matches
    }
}
