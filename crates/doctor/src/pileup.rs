//! Pile-ups: many identical processes that live long and wait — the shape of the incident,
//! thousands of `rpm -q` started by `longhorn-manager` behind a locked rpmdb.
//!
//! Processes are grouped by name (`comm`) and normalised argv (numbers that differ per copy,
//! such as pids in `/proc/1234/ns/mnt` or `sleep 30`, become `N`); a group's executable is that
//! of its oldest member. A group is a pile-up when it has at
//! least `min_count` members, its oldest is at least `min_age` old, and most members are not
//! running. Zombies cannot be grouped by command (the kernel dropped it), so they group by name.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use crate::finding::{self, Build, Finding, Status, age, id_segment, mib};
use crate::proc::{NameMap, PidSet, Proc, Snapshot, basename, truncate};

/// Process names that normally run as many long-lived identical copies and are never a
/// pile-up by themselves: every pod has a `pause` container (and a shim), web and database
/// servers keep worker pools. Without this, `doctor` would flag every busy Kubernetes node.
/// A trailing `*` matches any suffix (`php-fpm8.2`).
pub const EXPECTED_CROWDS: &[&str] = &[
    "pause",
    "containerd-shim",
    "conmon",
    "crun",
    "nginx",
    "httpd",
    "apache2",
    "php-fpm*",
    "postgres",
    "sshd",
    "agetty",
];

/// When a group counts as a pile-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thresholds {
    pub min_count: usize,
    pub min_age_secs: u64,
    /// Process names (as in `/proc/<pid>/comm`) never flagged; see [`EXPECTED_CROWDS`].
    pub expected: Vec<String>,
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds {
            min_count: 10,
            min_age_secs: 60,
            expected: EXPECTED_CROWDS.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl Thresholds {
    /// Returns true if and only if processes named `comm` are expected to crowd.
    pub fn is_expected(&self, comm: &str) -> bool {
        self.expected.iter().any(|e| match e.strip_suffix('*') {
            Some(prefix) => comm.starts_with(prefix),
            None => comm == e,
        })
    }
}

/// Processes that run the same thing.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    /// The executable (or `[comm]` for zombies and processes whose executable is unreadable).
    pub exe: String,
    /// The normalised command line, for people.
    pub command: String,
    pub count: usize,
    /// Members, oldest first.
    pub pids: Vec<u32>,
    pub oldest_age_secs: u64,
    pub newest_age_secs: u64,
    /// When the oldest started, seconds since the epoch.
    pub oldest_started_at: Option<u64>,
    /// How many members are in each state letter.
    pub states: BTreeMap<char, usize>,
    /// Members whose parent is gone (reparented to pid 1).
    pub orphans: usize,
    pub zombies: usize,
    /// The most common parent and its ancestors, e.g. `longhorn-manager(4711) → rpm -q N`.
    pub parent_chain: String,
    /// Distinct parents of the members.
    pub parents: usize,
    /// Summed resident memory (shared pages counted per process; an upper bound).
    pub rss_kb: u64,
    /// Summed private memory, filled in for flagged groups.
    pub private_kb: Option<u64>,
    /// Where `private_kb` comes from: `smaps_rollup` (exact, `RssAnon` where unreadable) or,
    /// for piles too big to walk every mapping of, `statm` (anonymous resident) of a sample.
    pub memory_source: String,
    /// True when the group meets the pile-up thresholds.
    pub flagged: bool,
    /// Members waiting on a file lock (filled in from the lock analysis).
    pub waiting_on_lock: usize,
}

impl Group {
    /// Returns how many members are not running (`S`, `D`, `Z`, `T`, ...).
    pub fn waiting(&self) -> usize {
        self.count - self.states.get(&'R').copied().unwrap_or(0)
    }

    /// Returns true if and only if these are zombies.
    pub fn is_zombies(&self) -> bool {
        self.zombies == self.count
    }
}

/// Normalises one argument: a number becomes `N`, and so does any run of 3+ digits inside it
/// (pids, ports, timestamps), so copies that differ only there group together; `python3` stays.
pub fn normalise_arg(arg: &str) -> String {
    let mut out = String::with_capacity(arg.len());
    push_normalised(&mut out, arg);
    out
}

/// Appends `arg` normalised as [`normalise_arg`] says to `out`, without allocating.
fn push_normalised(out: &mut String, arg: &str) {
    if !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_digit()) {
        out.push('N');
        return;
    }
    // A run of digits is pushed as it comes and replaced by `N` once it reaches 3.
    let mut run = 0;
    for c in arg.chars().take(128) {
        if !c.is_ascii_digit() {
            run = 0;
            out.push(c);
            continue;
        }
        run += 1;
        match run {
            3 => {
                out.truncate(out.len() - 2);
                out.push('N');
            }
            4.. => {}
            _ => out.push(c),
        }
    }
}

/// Returns the grouping key and display command of a process. Processes group by name and
/// normalised command line; a zombie, or a process whose command line is empty or was not read,
/// by its name alone (`[comm]`).
pub fn key_of(p: &Proc) -> (String, String) {
    let mut key = String::new();
    write_key(p, &mut key);
    let display = display_of(&key);
    (key, display)
}

/// Writes the grouping key of `p` into `key` (replacing what it held): `[comm]` for a process
/// grouped by its name alone, else the name and each of the first 16 arguments normalised,
/// each behind a NUL (which no argument holds, so the key splits back into them).
fn write_key(p: &Proc, key: &mut String) {
    key.clear();
    if p.argv.is_empty() || p.state == 'Z' || !p.cmdline_read {
        key.push('[');
        key.push_str(&p.comm);
        key.push(']');
        return;
    }
    key.push_str(&p.comm);
    for a in p.argv.iter().take(16) {
        key.push('\0');
        push_normalised(key, a);
    }
}

/// The display command of a group from its key ([`write_key`]): the first argument's base
/// name and the others, at most 100 characters; a name-only key is shown as it is.
fn display_of(key: &str) -> String {
    let mut args = key.split('\0');
    let _name = args.next();
    let Some(first) = args.next() else {
        return key.to_string();
    };
    let mut display = basename(first).to_string();
    for a in args {
        display.push(' ');
        display.push_str(a);
    }
    truncate(&display, 100)
}

/// Groups every process of the snapshot; the largest groups come first.
pub fn group(snap: &Snapshot, t: &Thresholds) -> Vec<Group> {
    // One key buffer for every process: a key is copied only for the first of its group.
    let mut by_key: NameMap<String, Vec<&Proc>> = NameMap::default();
    let mut key = String::new();
    for p in snap.procs.values() {
        write_key(p, &mut key);
        match by_key.get_mut(key.as_str()) {
            Some(members) => members.push(p),
            None => {
                by_key.insert(key.clone(), vec![p]);
            }
        }
    }
    let mut groups: Vec<Group> = by_key
        .into_iter()
        .map(|(key, mut members)| {
            let command = display_of(&key);
            members.sort_by(|a, b| b.age_secs.cmp(&a.age_secs).then(a.pid.cmp(&b.pid)));
            let mut states = BTreeMap::new();
            for m in &members {
                *states.entry(m.state).or_default() += 1;
            }
            let parents: PidSet = members.iter().map(|m| m.ppid).collect();
            // The oldest member's executable (read for flagged groups), else its argv[0].
            let exe = if key.starts_with('[') {
                key
            } else {
                members[0]
                    .exe
                    .clone()
                    .unwrap_or_else(|| members[0].argv[0].clone())
            };
            let mut g = Group {
                exe,
                command,
                count: members.len(),
                pids: members.iter().map(|m| m.pid).collect(),
                oldest_age_secs: members[0].age_secs,
                newest_age_secs: members[members.len() - 1].age_secs,
                oldest_started_at: members[0].started_at,
                orphans: members
                    .iter()
                    .filter(|m| m.ppid == 1 || (m.ppid != 0 && !snap.procs.contains_key(&m.ppid)))
                    .count(),
                zombies: states.get(&'Z').copied().unwrap_or(0),
                states,
                parent_chain: String::new(),
                parents: parents.len(),
                rss_kb: members.iter().map(|m| m.rss_kb).sum(),
                private_kb: None,
                memory_source: String::new(),
                flagged: false,
                waiting_on_lock: 0,
            };
            g.flagged = g.count >= t.min_count
                && g.oldest_age_secs >= t.min_age_secs
                && g.waiting() * 2 >= g.count
                && !t.is_expected(&members[0].comm);
            // Only flagged groups are reported with their source.
            if g.flagged {
                g.parent_chain = chain(&members, snap, &g.command);
            }
            g
        })
        .collect();
    groups.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.command.cmp(&b.command))
            .then_with(|| a.exe.cmp(&b.exe))
    });
    groups
}

/// Builds `grandparent(pid) → parent(pid) → command` from the members' most common parent.
fn chain(members: &[&Proc], snap: &Snapshot, command: &str) -> String {
    let mut count: BTreeMap<u32, usize> = BTreeMap::new();
    for m in members {
        *count.entry(m.ppid).or_default() += 1;
    }
    let Some((&ppid, _)) = count
        .iter()
        .max_by_key(|(pid, n)| (**n, std::cmp::Reverse(**pid)))
    else {
        return command.to_string();
    };
    let mut links = Vec::new();
    let mut pid = ppid;
    let mut seen = HashSet::new();
    while pid != 0 && links.len() < 5 && seen.insert(pid) {
        match snap.procs.get(&pid) {
            Some(p) => {
                // argv[0] first: it is what people recognise (`longhorn-manager`, `nginx:
                // master`), while the executable may be an interpreter.
                let name = p
                    .argv
                    .first()
                    .and_then(|a| a.split_whitespace().next())
                    .or(p.exe.as_deref())
                    .map(basename)
                    .filter(|s| !s.is_empty())
                    .unwrap_or(&p.comm);
                links.push(format!("{name}({pid})"));
                pid = p.ppid;
            }
            None => {
                links.push(format!("gone({pid})"));
                break;
            }
        }
    }
    links.reverse();
    links.push(command.to_string());
    links.join(" → ")
}

/// Turns flagged groups into findings, plus a summary of the largest group when none is.
pub fn findings(
    groups: &[Group],
    snap: &Snapshot,
    t: &Thresholds,
    mem_total_kb: Option<u64>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut used = HashSet::new();
    for g in groups.iter().filter(|g| g.flagged) {
        let base = if g.is_zombies() {
            format!(
                "doctor.zombies.{}",
                id_segment(g.exe.trim_matches(|c| c == '[' || c == ']'))
            )
        } else {
            format!("doctor.pileup.{}", id_segment(basename(&g.exe)))
        };
        let mut id = base.clone();
        let mut n = 2;
        while !used.insert(id.clone()) {
            id = format!("{base}.{n}");
            n += 1;
        }
        out.push(finding(id, g, snap, t, mem_total_kb));
    }
    if out.is_empty() {
        let biggest = groups
            .iter()
            .next()
            .map(|g| format!("; largest group: {} × {}", g.count, g.command))
            .unwrap_or_default();
        out.push(finding::new(
            "doctor.pileup",
            Status::Pass,
            format!(
                "no pile-up: {} processes in {} groups, none with >= {} members older than {}{}",
                snap.procs.len(),
                groups.len(),
                t.min_count,
                age(t.min_age_secs),
                biggest
            ),
        ));
    }
    out
}

fn finding(
    id: String,
    g: &Group,
    snap: &Snapshot,
    t: &Thresholds,
    mem_total_kb: Option<u64>,
) -> Finding {
    let d_state = g.states.get(&'D').copied().unwrap_or(0);
    let big_memory = match (g.private_kb, mem_total_kb) {
        (Some(p), Some(total)) if total > 0 => p * 20 >= total,
        _ => false,
    };
    let status = if g.waiting_on_lock > 0
        || d_state >= t.min_count
        || big_memory
        || g.count >= t.min_count.saturating_mul(10)
    {
        Status::Fail
    } else {
        Status::Warn
    };
    let states: Vec<String> = g.states.iter().map(|(s, n)| format!("{s}:{n}")).collect();
    let memory = g
        .private_kb
        .map(|kb| format!("{} private", mib(kb)))
        .unwrap_or_else(|| format!("{} resident", mib(g.rss_kb)));
    let what = if g.is_zombies() {
        "zombies"
    } else {
        "identical processes"
    };
    let mut msg = format!(
        "{} {what} `{}`, oldest {}, newest {}, {memory}; started by {}",
        g.count,
        g.command,
        age(g.oldest_age_secs),
        age(g.newest_age_secs),
        g.parent_chain
    );
    if g.waiting_on_lock > 0 {
        msg.push_str(&format!("; {} wait on a file lock", g.waiting_on_lock));
    }
    let mut f = finding::new(id, status, msg)
        .with("command", g.command.as_str())
        .with("executable", g.exe.as_str())
        .with("count", g.count.to_string())
        .with("oldest", age(g.oldest_age_secs))
        .with("newest", age(g.newest_age_secs))
        .with("parent chain", g.parent_chain.as_str())
        .with("states", states.join(" "))
        .with("pids", crate::locks::pid_list(&g.pids))
        .with("parents", g.parents.to_string())
        .with("orphans", g.orphans.to_string())
        .with("zombies", g.zombies.to_string());
    if g.waiting_on_lock > 0 {
        f = f.with("waiting on a lock", g.waiting_on_lock.to_string());
    }
    if d_state > 0 {
        f = f.with("in d state", d_state.to_string());
    }
    if let Some(at) = g.oldest_started_at {
        f = f.with("oldest started at", at.to_string());
    }
    match g.private_kb {
        Some(p) => {
            f = f
                .with("private memory", mib(p))
                .with("memory source", g.memory_source.as_str());
            if let Some(total) = mem_total_kb {
                f = f.with(
                    "of total memory",
                    format!("{:.1}%", p as f64 * 100.0 / total.max(1) as f64),
                );
            }
        }
        None => f = f.with("resident memory", mib(g.rss_kb)),
    }
    remediate(f, g, snap, d_state)
}

/// Package managers whose piles come from a locked or damaged package database.
const PACKAGE_MANAGERS: [&str; 9] = [
    "rpm",
    "rpmdb",
    "yum",
    "dnf",
    "zypper",
    "dpkg",
    "dpkg-query",
    "apt",
    "apt-get",
];

/// How many pids the `kill` command of a remediation names.
const KILL_SHOWN: usize = 5;

fn remediate(f: Finding, g: &Group, snap: &Snapshot, d_state: usize) -> Finding {
    let name = basename(&g.exe);
    let parent = g
        .pids
        .first()
        .and_then(|p| snap.procs.get(p))
        .map(|p| p.ppid)
        .unwrap_or(0);
    if g.is_zombies() {
        return f
            .fix(format!(
                "Restart or fix the parent (pid {parent}), which does not reap them; when it exits, init reaps them."
            ))
            .note("Zombies hold no memory but use pids.");
    }
    let mut f = f.fix(format!(
        "Stop the source first — it is the parent chain `{}`; killing the pile alone lets it grow back.",
        g.parent_chain
    ));
    if PACKAGE_MANAGERS.contains(&name) || g.command.contains("nsenter") {
        let shown: Vec<String> = g.pids.iter().take(KILL_SHOWN).map(u32::to_string).collect();
        let which = if g.pids.len() > KILL_SHOWN {
            format!(
                "it names the oldest {KILL_SHOWN} of {} (`pids` above; every pid is in the report's `pileups`)",
                g.pids.len()
            )
        } else {
            "it names them all".to_string()
        };
        f = f
            .command(format!("kill {}", shown.join(" ")))
            .note("Package-manager queries pile up when the package database is locked or damaged (see the doctor.lock.* and doctor.pkgdb.* findings; rpm-software-management/rpm#602). Fix that first.")
            .note(format!(
                "Then kill the waiting queries — read-only, they hold no write lock — with `kill`: {which}; use `kill -9` for the ones left."
            ))
            .note("If the source is longhorn-manager v1.7.0-v1.7.2: upgrade to v1.7.3+ / v1.8.0+, which checks executables instead of running the package manager (longhorn/longhorn#10019, longhorn-manager PR #3406).");
    } else {
        let oldest = g.pids[0];
        f = f
            .command(format!("cat /proc/{oldest}/wchan /proc/{oldest}/stack"))
            .command(format!("ls -l /proc/{oldest}/fd"))
            .note(format!(
                "The commands show what the oldest member, pid {oldest}, waits for."
            ));
    }
    if g.orphans > 0 {
        f = f.note(format!(
            "{} member(s) are orphans: whoever started them is gone and nothing will stop them; kill them once the source is fixed.",
            g.orphans
        ));
    }
    if d_state > 0 {
        f = f.note(format!(
            "{d_state} member(s) are in D state (uninterruptible: stuck in the kernel, unkillable until the I/O returns)."
        ));
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: u32, ppid: u32, state: char, age: u64, argv: &[&str]) -> Proc {
        Proc {
            pid,
            ppid,
            comm: basename(argv.first().copied().unwrap_or("z")).into(),
            state,
            exe: argv.first().map(|s| s.to_string()),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            cmdline_read: true,
            age_secs: age,
            started_at: None,
            rss_kb: 2000,
        }
    }

    #[test]
    fn normalises_numbers_but_not_names() {
        assert_eq!(normalise_arg("30"), "N");
        assert_eq!(
            normalise_arg("--mount=/host/proc/4711/ns/mnt"),
            "--mount=/host/proc/N/ns/mnt"
        );
        assert_eq!(normalise_arg("python3"), "python3");
        assert_eq!(normalise_arg("x86_64"), "x86_64");
        assert_eq!(normalise_arg(""), "");
        // Runs of 3+ digits anywhere, at either end, next to multi-byte characters.
        assert_eq!(normalise_arg("1234abc12x9999"), "Nabc12xN");
        assert_eq!(normalise_arg("é12é123é"), "é12éNé");
        assert_eq!(normalise_arg("a12"), "a12");
    }

    #[test]
    fn a_key_splits_back_into_the_command_it_shows() {
        let a = p(
            10,
            1,
            'S',
            100,
            &["/usr/bin/rpm", "-q", "iscsi-initiator-utils"],
        );
        let (key, display) = key_of(&a);
        assert_eq!(key, "rpm\0/usr/bin/rpm\0-q\0iscsi-initiator-utils");
        assert_eq!(display, "rpm -q iscsi-initiator-utils");
        // At most 16 arguments are grouped on; the display is cut at 100 characters.
        let args: Vec<String> = (0..40).map(|i| format!("arg{i}")).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (key, display) = key_of(&p(11, 1, 'S', 100, &args));
        assert_eq!(key.split('\0').count(), 17);
        assert_eq!(
            display,
            "arg0 arg1 arg2 arg3 arg4 arg5 arg6 arg7 arg8 arg9 arg10 arg11 arg12 arg13 arg14 arg15"
        );
    }

    #[test]
    fn expected_crowds_are_not_pileups() {
        let mut snap = Snapshot::default();
        snap.procs.insert(1, p(1, 0, 'S', 1000, &["/sbin/init"]));
        for i in 0..30 {
            // One pause container per pod, each under its own shim.
            snap.procs
                .insert(100 + i, p(100 + i, 1, 'S', 900, &["/pause"]));
            snap.procs
                .insert(200 + i, p(200 + i, 1, 'S', 900, &["/usr/sbin/php-fpm8.2"]));
            snap.procs.insert(
                300 + i,
                p(300 + i, 1, 'S', 900, &["/usr/bin/rpm", "-q", "x"]),
            );
        }
        let groups = group(&snap, &Thresholds::default());
        let flagged: Vec<&str> = groups
            .iter()
            .filter(|g| g.flagged)
            .map(|g| g.command.as_str())
            .collect();
        assert_eq!(flagged, ["rpm -q x"]);
        let none = Thresholds {
            expected: vec![],
            ..Thresholds::default()
        };
        assert_eq!(group(&snap, &none).iter().filter(|g| g.flagged).count(), 3);
    }

    #[test]
    fn groups_incident_shape() {
        let mut snap = Snapshot::default();
        snap.procs.insert(1, p(1, 0, 'S', 1000, &["/sbin/init"]));
        snap.procs.insert(
            100,
            p(100, 1, 'S', 900, &["/usr/bin/longhorn-manager", "daemon"]),
        );
        for i in 0..24 {
            let pid = 200 + i;
            let ppid = if i < 4 { 1 } else { 100 };
            snap.procs.insert(
                pid,
                p(
                    pid,
                    ppid,
                    'S',
                    600 - i as u64,
                    &["/usr/bin/rpm", "-q", "open-iscsi"],
                ),
            );
        }
        snap.procs.insert(300, p(300, 100, 'Z', 5, &[]));
        let t = Thresholds::default();
        let groups = group(&snap, &t);
        let g = &groups[0];
        assert_eq!(g.count, 24);
        assert!(g.flagged);
        assert_eq!(g.command, "rpm -q open-iscsi");
        assert_eq!(g.oldest_age_secs, 600);
        assert_eq!(g.newest_age_secs, 577);
        assert_eq!(g.orphans, 4);
        assert_eq!(g.parents, 2);
        assert_eq!(
            g.parent_chain,
            "init(1) → longhorn-manager(100) → rpm -q open-iscsi"
        );
        let f = findings(&groups, &snap, &t, Some(1 << 20));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].id, "doctor.pileup.rpm");
        assert_eq!(f[0].status, Status::Warn);
        let e = &f[0].evidence;
        assert_eq!(e.get("count"), Some("24"));
        assert_eq!(e.get("oldest"), Some("10m00s"));
        assert_eq!(e.get("newest"), Some("9m37s"));
        assert_eq!(e.get("executable"), Some("/usr/bin/rpm"));
        assert_eq!(e.get("states"), Some("S:24"));
        assert_eq!(e.get("orphans"), Some("4"));
        assert_eq!(e.get("parents"), Some("2"));
        assert_eq!(
            e.get("parent chain"),
            Some("init(1) → longhorn-manager(100) → rpm -q open-iscsi")
        );
        let fix = f[0].remediation.as_ref().unwrap();
        assert!(fix.summary.starts_with("Stop the source first"), "{fix:?}");
        assert_eq!(fix.commands, ["kill 200 201 202 203 204"]);
        assert!(fix.notes.iter().any(|r| r.contains("#10019")));
        assert!(fix.notes.iter().any(|r| r.contains("oldest 5 of 24")));
        assert!(
            fix.notes
                .iter()
                .any(|r| r.contains("4 member(s) are orphans"))
        );
    }

    #[test]
    fn young_or_running_groups_are_not_pileups() {
        let mut snap = Snapshot::default();
        for i in 0..20 {
            snap.procs
                .insert(10 + i, p(10 + i, 1, 'S', 5, &["/bin/sleep", "100"]));
            snap.procs
                .insert(50 + i, p(50 + i, 1, 'R', 500, &["/bin/yes"]));
        }
        let groups = group(&snap, &Thresholds::default());
        assert!(groups.iter().all(|g| !g.flagged));
        let f = findings(&groups, &snap, &Thresholds::default(), None);
        assert_eq!(f[0].id, "doctor.pileup");
        assert_eq!(f[0].status, Status::Pass);
    }

    #[test]
    fn processes_whose_command_line_was_not_read_group_by_name() {
        let mut a = p(10, 1, 'S', 100, &["/bin/bash", "-l"]);
        a.cmdline_read = false;
        a.argv = Vec::new().into();
        assert_eq!(key_of(&a), ("[bash]".into(), "[bash]".into()));
        // Same command, different names (`exec -a`, prctl): different groups.
        let b = p(11, 1, 'S', 100, &["/bin/x", "N"]);
        let mut c = b.clone();
        c.comm = "y".into();
        assert_ne!(key_of(&b), key_of(&c));
    }

    #[test]
    fn zombies_group_by_name() {
        let mut snap = Snapshot::default();
        for i in 0..12 {
            let mut z = p(10 + i, 5, 'Z', 100, &[]);
            z.comm = "sleep".into();
            snap.procs.insert(10 + i, z);
        }
        let groups = group(&snap, &Thresholds::default());
        assert!(groups[0].is_zombies() && groups[0].flagged);
        let f = findings(&groups, &snap, &Thresholds::default(), None);
        assert_eq!(f[0].id, "doctor.zombies.sleep");
        assert_eq!(f[0].evidence.get("zombies"), Some("12"));
        assert!(
            f[0].remediation
                .as_ref()
                .is_some_and(|r| r.summary.contains("pid 5"))
        );
    }
}
