//! `disk.raw`: enough block devices with nothing on them, for systems that take whole disks
//! (Rook-Ceph OSDs, Mayastor disk pools, TopoLVM and LocalPV-LVM volume groups).
//!
//! A disk counts as raw when sysfs shows it is a writable, non-removable whole disk with no
//! partitions and nothing stacked on it (`holders/`), no mount in the host's `mountinfo` is of
//! it, and its first sectors carry no signature hostready knows (`hostready_host::signatures`:
//! read through its device node under the root's `/dev`, never by running `blkid`). Rook's own
//! rule is the same in spirit: no partitions, no filesystem (Rook `Documentation/Getting-Started/
//! Prerequisites/prerequisites.md`). A disk whose node cannot be read is unknown, named.

use hostready_host::blockdev::{self, BlockDevice};
use hostready_host::signatures::Content;

use crate::facts::Facts;
use crate::finding::{Evidence, Outcome, Remediation};

/// What a `raw_disks:` requirement asks for.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RawDisks {
    pub min_count: u64,
    pub min_size_gib: u64,
    /// Virtual kinds to consider too (`loop`, `dm-`, ...), skipped otherwise.
    pub include: Vec<String>,
}

const GIB: u64 = 1 << 30;

/// Why a loop, ram, zram, dm-, md, sr or nbd device was not considered.
const VIRTUAL: &str = "virtual device";

enum Verdict {
    Raw,
    InUse(String),
    Skipped(String),
    Unknown(String),
}

/// Counts the raw disks of at least `min_size_gib`.
pub fn check(want: &RawDisks, facts: &Facts<'_>) -> Outcome {
    let mut ev = Evidence::default();
    let disks = match blockdev::list(facts.fs()) {
        Ok(d) => d,
        Err(e) => {
            return Outcome::unknown(
                format!("cannot list the host's block devices: {}", with_cause(&e)),
                ev,
            );
        }
    };
    let mounts = facts.mounts();
    let mut raw = 0u64;
    let mut unknown = Vec::new();
    let mut virtual_skipped = Vec::new();
    for d in &disks {
        let v = verdict(d, want, facts, &mounts);
        let size = format!("{:.1} GiB", d.size_bytes as f64 / GIB as f64);
        let said = match &v {
            Verdict::Raw => format!("raw, {size}"),
            Verdict::InUse(why) => format!("in use: {why}"),
            Verdict::Skipped(why) => format!("skipped: {why}"),
            Verdict::Unknown(why) => format!("unknown: {why}"),
        };
        // A host with snaps has dozens of loop devices: one line names them all.
        if matches!(&v, Verdict::Skipped(why) if why == VIRTUAL) {
            virtual_skipped.push(d.name.as_str());
        } else {
            ev.add(format!("disk {}", d.name), said);
        }
        match v {
            Verdict::Raw => raw += 1,
            Verdict::Unknown(why) => unknown.push(format!("{}: {why}", d.name)),
            _ => {}
        }
    }
    if !virtual_skipped.is_empty() {
        ev.add("skipped virtual devices", virtual_skipped.join(" "));
    }
    let wanted = if want.min_size_gib > 0 {
        format!(
            "{} raw disk(s) of at least {} GiB",
            want.min_count, want.min_size_gib
        )
    } else {
        format!("{} raw disk(s)", want.min_count)
    };
    if raw >= want.min_count {
        return Outcome::pass(format!("{raw} raw disk(s) found; {wanted} wanted"), ev);
    }
    if raw + unknown.len() as u64 >= want.min_count {
        return Outcome::unknown(
            format!(
                "{raw} raw disk(s) found, {wanted} wanted, and {} could not be examined: {}",
                unknown.len(),
                unknown.join("; ")
            ),
            ev,
        );
    }
    Outcome::fail(
        format!("{raw} raw disk(s) found; {wanted} wanted"),
        ev,
        Remediation {
            summary: format!("attach {wanted} with no partition table, filesystem or LVM label"),
            notes: vec![
                "a disk that held data can be cleared with `wipefs --all /dev/DISK`, which destroys what is on it".into(),
            ],
            ..Remediation::default()
        },
    )
}

fn verdict(
    d: &BlockDevice,
    want: &RawDisks,
    facts: &Facts<'_>,
    mounts: &Result<(&hostready_host::mounts::MountTable, &str), &str>,
) -> Verdict {
    if blockdev::is_virtual(&d.name) && !want.include.iter().any(|p| d.name.starts_with(p.as_str()))
    {
        return Verdict::Skipped(VIRTUAL.into());
    }
    if d.size_bytes == 0 {
        return Verdict::Skipped("size 0 (no medium, or a detached loop device)".into());
    }
    if d.removable {
        return Verdict::Skipped("removable".into());
    }
    if d.read_only {
        return Verdict::Skipped("read-only".into());
    }
    if d.size_bytes < want.min_size_gib.saturating_mul(GIB) {
        return Verdict::Skipped(format!("smaller than {} GiB", want.min_size_gib));
    }
    if !d.partitions.is_empty() {
        let names: Vec<&str> = d.partitions.iter().map(|(n, _)| n.as_str()).collect();
        return Verdict::InUse(format!("partitions {}", names.join(", ")));
    }
    if !d.holders.is_empty() {
        return Verdict::InUse(format!("held by {}", d.holders.join(", ")));
    }
    match mounts {
        Ok((table, _)) => {
            // Only complete lines, as ever (a damaged device field names no disk anyway).
            if let Some(m) = table.complete().find(|m| m.device == Some(d.device)) {
                return Verdict::InUse(format!("mounted on {}", m.mount_point));
            }
        }
        Err(why) => return Verdict::Unknown(format!("whether it is mounted is unknown: {why}")),
    }
    match blockdev::probe(facts.fs(), d) {
        Ok(Content::Signature(s)) => Verdict::InUse(format!("holds {s}")),
        Ok(_) => Verdict::Raw,
        Err(e) => Verdict::Unknown(with_cause(&e)),
    }
}

/// An error's message and its innermost cause (the OS error): the middle links repeat the
/// path the message already names.
fn with_cause(e: &dyn std::error::Error) -> String {
    let mut inner = e.source();
    while let Some(next) = inner.and_then(|i| i.source()) {
        inner = Some(next);
    }
    match inner {
        Some(i) => format!("{e}: {i}"),
        None => e.to_string(),
    }
}
