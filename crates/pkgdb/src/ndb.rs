//! NDB, rpm's own "new database" format (`Packages.db`, SUSE since SLE 15 SP3 / rpm 4.14+ndb).
//!
//! Hand-written because no Rust crate reads it (it exists only inside rpm's C sources,
//! `lib/backend/ndb/rpmpkg.c`); learned from that file and go-rpmdb's `pkg/ndb` description,
//! but unlike go-rpmdb we take no `flock` and we verify every blob's tail and Adler-32 checksum.
//!
//! Layout: a 16-byte header (`"RpmP"`, version 0, generation, slot page count) opens the first
//! of `n` 4096-byte slot pages; slots are 16 bytes (`"Slot"`, package index, block offset,
//! block count), the header taking the first two. A used slot points at a run of 16-byte
//! blocks holding a blob header (`"BlbS"`, package index, generation, length), the header blob,
//! zero padding, and a 12-byte tail (Adler-32 of everything before it, length, `"BlbE"`).

use crate::ParseError;

const HEADER_MAGIC: u32 = u32::from_le_bytes(*b"RpmP");
const SLOT_MAGIC: u32 = u32::from_le_bytes(*b"Slot");
const BLOB_MAGIC: u32 = u32::from_le_bytes(*b"BlbS");
const TAIL_MAGIC: u32 = u32::from_le_bytes(*b"BlbE");
const SLOT_PAGE: usize = 4096;
const BLK: usize = 16;
/// rpm refuses more slot pages than this (`rpmpkgReadHeader`), and so do we.
const MAX_SLOT_PAGES: usize = 2048;

fn err(what: impl Into<String>, offset: usize) -> ParseError {
    ParseError::at(what, offset)
}

fn le32(b: &[u8], at: usize) -> Result<u32, ParseError> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| err("read past the end of the file", at))
}

/// Adler-32 (RFC 1950), as rpm checksums NDB blobs.
pub(crate) fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &x in chunk {
            a += u32::from(x);
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    (b << 16) | a
}

/// Returns every `(byte offset, header blob)` stored in an NDB `Packages.db`.
pub fn parse(b: &[u8]) -> Result<Vec<(u64, Vec<u8>)>, ParseError> {
    if b.len() < 32 {
        return Err(err(
            format!("truncated: {} bytes, no NDB header", b.len()),
            b.len(),
        ));
    }
    if le32(b, 0)? != HEADER_MAGIC {
        return Err(err(
            "no NDB magic \"RpmP\": header zeroed or overwritten",
            0,
        ));
    }
    let version = le32(b, 4)?;
    if version != 0 {
        return Err(err(format!("unsupported NDB version {version}"), 4));
    }
    let npages = le32(b, 12)? as usize;
    if npages == 0 || npages > MAX_SLOT_PAGES {
        return Err(err(format!("slot page count {npages} out of range"), 12));
    }
    let slots_end = npages * SLOT_PAGE;
    if b.len() < slots_end {
        return Err(err(
            format!(
                "truncated: {npages} slot pages need {slots_end} bytes, file has {}",
                b.len()
            ),
            b.len(),
        ));
    }
    let mut out = Vec::new();
    // The header occupies the first two slots.
    for at in (2 * BLK..slots_end).step_by(BLK) {
        if le32(b, at)? != SLOT_MAGIC {
            return Err(err(
                "slot without \"Slot\" magic: slot page overwritten",
                at,
            ));
        }
        let pkg = le32(b, at + 4)?;
        if pkg == 0 {
            continue;
        }
        let blkoff = le32(b, at + 8)? as usize;
        let blkcnt = le32(b, at + 12)? as usize;
        out.push(blob(b, pkg, blkoff, blkcnt, slots_end, at)?);
    }
    Ok(out)
}

fn blob(
    b: &[u8],
    pkg: u32,
    blkoff: usize,
    blkcnt: usize,
    slots_end: usize,
    slot_at: usize,
) -> Result<(u64, Vec<u8>), ParseError> {
    let start = blkoff.saturating_mul(BLK);
    let end = blkoff
        .checked_add(blkcnt)
        .and_then(|e| e.checked_mul(BLK))
        .unwrap_or(usize::MAX);
    if start < slots_end || blkcnt < 2 || end > b.len() {
        return Err(err(
            format!(
                "package {pkg}: blocks {blkoff}+{blkcnt} lie outside the data area (file has {} bytes{})",
                b.len(),
                if end > b.len() && end != usize::MAX {
                    ", truncated?"
                } else {
                    ""
                }
            ),
            slot_at,
        ));
    }
    if le32(b, start)? != BLOB_MAGIC {
        return Err(err(
            format!("package {pkg}: blob without \"BlbS\" magic (overwritten)"),
            start,
        ));
    }
    if le32(b, start + 4)? != pkg {
        return Err(err(
            format!(
                "package {pkg}: blob belongs to package {}",
                le32(b, start + 4)?
            ),
            start + 4,
        ));
    }
    let len = le32(b, start + 12)? as usize;
    let tail = end - 12;
    if 16 + len > tail - start {
        return Err(err(
            format!("package {pkg}: blob length {len} exceeds its {blkcnt} blocks"),
            start + 12,
        ));
    }
    if le32(b, tail + 8)? != TAIL_MAGIC || le32(b, tail + 4)? as usize != len {
        return Err(err(
            format!("package {pkg}: blob tail missing or disagrees with its length"),
            tail,
        ));
    }
    let sum = le32(b, tail)?;
    let actual = adler32(&b[start..tail]);
    if sum != actual {
        return Err(err(
            format!("package {pkg}: checksum {actual:#010x} does not match stored {sum:#010x}"),
            start,
        ));
    }
    Ok((start as u64, b[start + 16..start + 16 + len].to_vec()))
}
