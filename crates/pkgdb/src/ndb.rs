//! NDB, rpm's own "new database" format (`Packages.db`, SUSE since SLE 15 SP3 / rpm 4.14+ndb),
//! read slot page by slot page and blob by blob.
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
//!
//! Memory: one 4 KiB slot page and one blob at a time; a blob's declared header size is
//! checked against rpm's limits and [`MAX_BLOB`] before its blocks are read.

use crate::ParseError;
use crate::bdb::{Stop, Visit};
use crate::pages::{MAX_BLOB, MAX_DB_BYTES, ReadError, Source, check_blob, collect_blobs};

const HEADER_MAGIC: u32 = u32::from_le_bytes(*b"RpmP");
const SLOT_MAGIC: u32 = u32::from_le_bytes(*b"Slot");
const BLOB_MAGIC: u32 = u32::from_le_bytes(*b"BlbS");
const TAIL_MAGIC: u32 = u32::from_le_bytes(*b"BlbE");
const SLOT_PAGE: usize = 4096;
const BLK: u64 = 16;
/// Blob header (16 bytes) and tail (12 bytes) around the header blob.
const BLOB_FRAME: u64 = 16 + 12;
/// rpm refuses more slot pages than this (`rpmpkgReadHeader`), and so do we.
const MAX_SLOT_PAGES: usize = 2048;

fn err(what: impl Into<String>, offset: u64) -> ReadError {
    ReadError::at(what, offset)
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
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

/// Returns every `(byte offset, header blob)` stored in an NDB `Packages.db` held in memory
/// (fuzzing and tests; hostready itself reads files through [`scan_source`]).
pub fn parse(b: &[u8]) -> Result<Vec<(u64, Vec<u8>)>, ParseError> {
    collect_blobs(|f| scan(b, f))
}

/// Calls `f` with every `(byte offset, header blob)` of a `Packages.db` held in memory, one at
/// a time; returns how many there were.
pub fn scan<E: From<ParseError>>(
    b: &[u8],
    mut f: impl FnMut(u64, &[u8]) -> Result<(), E>,
) -> Result<usize, E> {
    let mut n = 0;
    let r = scan_source(b, &mut |offset, blob| {
        n += 1;
        f(offset, blob).map_err(Stop::Caller)
    });
    match r {
        Ok(()) => Ok(n),
        Err(Stop::Caller(e)) => Err(e),
        Err(Stop::Read(e)) => Err(E::from(e.into_parse())),
    }
}

/// What the 16-byte header of `Packages.db` says, checked against the file's length.
pub(crate) struct Head {
    /// Bumped by rpm on every write; `Index.db` records the one it was built for.
    pub(crate) generation: u32,
    /// How many 4 KiB slot pages open the file.
    pub(crate) npages: usize,
    /// Where the slot pages end and the blob blocks begin.
    pub(crate) slots_end: u64,
}

/// Reads and checks the header of `Packages.db`.
pub(crate) fn head<S: Source + ?Sized>(src: &S) -> Result<Head, ReadError> {
    let len = src.len();
    if len < 32 {
        return Err(err(format!("truncated: {len} bytes, no NDB header"), len));
    }
    if len > MAX_DB_BYTES {
        return Err(ReadError::TooLarge {
            what: format!("{len} bytes, more than hostready reads ({MAX_DB_BYTES})"),
            offset: 0,
        });
    }
    let mut head = [0u8; 16];
    src.read_at(&mut head, 0)?;
    if le32(&head, 0) != HEADER_MAGIC {
        return Err(err(
            "no NDB magic \"RpmP\": header zeroed or overwritten",
            0,
        ));
    }
    let version = le32(&head, 4);
    if version != 0 {
        return Err(err(format!("unsupported NDB version {version}"), 4));
    }
    let npages = le32(&head, 12) as usize;
    if npages == 0 || npages > MAX_SLOT_PAGES {
        return Err(err(format!("slot page count {npages} out of range"), 12));
    }
    let slots_end = (npages * SLOT_PAGE) as u64;
    if len < slots_end {
        return Err(err(
            format!("truncated: {npages} slot pages need {slots_end} bytes, file has {len}"),
            len,
        ));
    }
    Ok(Head {
        generation: le32(&head, 8),
        npages,
        slots_end,
    })
}

/// Calls `f(slot offset, package index, block offset, block count)` for every used slot, one
/// slot page in memory at a time; a slot without its magic is corrupt.
fn each_slot<S: Source + ?Sized, E>(
    src: &S,
    h: &Head,
    mut f: impl FnMut(u64, u32, u64, u64) -> Result<(), Stop<E>>,
) -> Result<(), Stop<E>> {
    let mut page = vec![0u8; SLOT_PAGE];
    for p in 0..h.npages {
        let page_at = (p * SLOT_PAGE) as u64;
        src.read_at(&mut page, page_at)?;
        // The header occupies the first two slots of the first page.
        let first = if p == 0 { 2 } else { 0 };
        for s in first..SLOT_PAGE / BLK as usize {
            let at = s * BLK as usize;
            let slot_at = page_at + at as u64;
            if le32(&page, at) != SLOT_MAGIC {
                return Err(err(
                    "slot without \"Slot\" magic: slot page overwritten",
                    slot_at,
                )
                .into());
            }
            let pkg = le32(&page, at + 4);
            if pkg == 0 {
                continue;
            }
            let blkoff = u64::from(le32(&page, at + 8));
            let blkcnt = u64::from(le32(&page, at + 12));
            f(slot_at, pkg, blkoff, blkcnt)?;
        }
    }
    Ok(())
}

/// Walks every slot of `Packages.db`, calling `f` with each header blob and where it lives.
pub(crate) fn scan_source<S: Source + ?Sized, E>(src: &S, f: Visit<E>) -> Result<(), Stop<E>> {
    let h = head(src)?;
    let mut blob = Vec::new();
    each_slot(src, &h, |slot_at, pkg, blkoff, blkcnt| {
        let start = read_blob(src, pkg, blkoff, blkcnt, h.slots_end, slot_at, &mut blob)?;
        f(start, &blob)
    })
}

/// Where the blobs of some packages live, found by one pass over the slot pages (rpm keeps no
/// other map from package index to blob); then each is read by [`Located::fetch`].
pub(crate) struct Located {
    slots_end: u64,
    /// `(package index, slot offset, block offset, block count)`, sorted by package index.
    at: Vec<(u32, u64, u64, u64)>,
}

/// Finds the slots of `wanted` (sorted, deduplicated package indexes); 32 bytes per package
/// wanted, one slot page read at a time.
pub(crate) fn locate<S: Source + ?Sized>(src: &S, wanted: &[u32]) -> Result<Located, ReadError> {
    let h = head(src)?;
    let mut at = Vec::with_capacity(wanted.len());
    let r: Result<(), Stop<std::convert::Infallible>> =
        each_slot(src, &h, |slot_at, pkg, blkoff, blkcnt| {
            if wanted.binary_search(&pkg).is_ok() {
                at.push((pkg, slot_at, blkoff, blkcnt));
            }
            Ok(())
        });
    match r {
        Ok(()) => {}
        Err(Stop::Read(e)) => return Err(e),
        Err(Stop::Caller(never)) => match never {},
    }
    at.sort_unstable_by_key(|a| a.0);
    if let Some(w) = at.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(err(format!("package {} has two slots", w[0].0), w[1].1));
    }
    Ok(Located {
        slots_end: h.slots_end,
        at,
    })
}

impl Located {
    /// Returns package `pkg`'s blob and where it starts, or `None` when no slot holds it.
    pub(crate) fn fetch<S: Source + ?Sized>(
        &self,
        src: &S,
        pkg: u32,
    ) -> Result<Option<(u64, Vec<u8>)>, ReadError> {
        let Ok(i) = self.at.binary_search_by_key(&pkg, |a| a.0) else {
            return Ok(None);
        };
        let (_, slot_at, blkoff, blkcnt) = self.at[i];
        let mut blob = Vec::new();
        let start = read_blob(src, pkg, blkoff, blkcnt, self.slots_end, slot_at, &mut blob)?;
        Ok(Some((start, blob)))
    }
}

/// Reads and verifies the blob of package `pkg` into `out` (the header blob only); returns
/// where its blob header starts.
fn read_blob<S: Source + ?Sized>(
    src: &S,
    pkg: u32,
    blkoff: u64,
    blkcnt: u64,
    slots_end: u64,
    slot_at: u64,
    out: &mut Vec<u8>,
) -> Result<u64, ReadError> {
    let len = src.len();
    let start = blkoff * BLK;
    let end = (blkoff + blkcnt) * BLK;
    if start < slots_end || blkcnt < 2 || end > len {
        return Err(err(
            format!(
                "package {pkg}: blocks {blkoff}+{blkcnt} lie outside the data area (file has \
                 {len} bytes{})",
                if end > len { ", truncated?" } else { "" }
            ),
            slot_at,
        ));
    }
    let mut head = [0u8; 24];
    src.read_at(&mut head, start)?;
    if le32(&head, 0) != BLOB_MAGIC {
        return Err(err(
            format!("package {pkg}: blob without \"BlbS\" magic (overwritten)"),
            start,
        ));
    }
    if le32(&head, 4) != pkg {
        return Err(err(
            format!("package {pkg}: blob belongs to package {}", le32(&head, 4)),
            start + 4,
        ));
    }
    let hlen = u64::from(le32(&head, 12));
    // rpm sizes a blob as its frame and header rounded up to whole blocks (hdrlen2blkcnt).
    if (hlen + BLOB_FRAME).div_ceil(BLK) != blkcnt {
        return Err(err(
            format!("package {pkg}: blob length {hlen} does not fill its {blkcnt} blocks"),
            start + 12,
        ));
    }
    let il = u32::from_be_bytes([head[16], head[17], head[18], head[19]]);
    let dl = u32::from_be_bytes([head[20], head[21], head[22], head[23]]);
    check_blob(il, dl, hlen, start + 16)?;
    debug_assert!(hlen as usize <= MAX_BLOB);
    // Checked above: the blob is at most MAX_BLOB plus a frame and padding.
    let total = (blkcnt * BLK) as usize;
    out.clear();
    out.resize(total, 0);
    src.read_at(out, start)?;
    let tail = total - 12;
    if le32(out, tail + 8) != TAIL_MAGIC || u64::from(le32(out, tail + 4)) != hlen {
        return Err(err(
            format!("package {pkg}: blob tail missing or disagrees with its length"),
            start + tail as u64,
        ));
    }
    let sum = le32(out, tail);
    let actual = adler32(&out[..tail]);
    if sum != actual {
        return Err(err(
            format!("package {pkg}: checksum {actual:#010x} does not match stored {sum:#010x}"),
            start,
        ));
    }
    out.truncate(16 + hlen as usize);
    out.drain(..16);
    Ok(start)
}

#[cfg(test)]
// tests read fixtures and build fake hosts directly.
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    fn fixture() -> Vec<u8> {
        let p = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/fixtures/rpmdb/sle15-bci-ndb/Packages.db"
        );
        std::fs::read(p).expect("the SLE 15 NDB fixture")
    }

    #[test]
    fn every_fixture_blob_is_read_one_at_a_time() {
        let b = fixture();
        let mut n = 0;
        let count = scan(&b, |_, blob| {
            n += 1;
            assert!(blob.len() < b.len());
            Ok::<(), ParseError>(())
        })
        .unwrap();
        assert_eq!((count, n), (35, 35));
    }

    #[test]
    fn a_header_declaring_more_than_rpm_allows_is_corrupt_before_allocation() {
        let mut b = fixture();
        let (start, _) = parse(&b).unwrap().remove(0);
        // The blob's il, big-endian, right after the 16-byte blob header.
        let at = start as usize + 16;
        b[at..at + 4].copy_from_slice(&0x0100_0000u32.to_be_bytes());
        let e = parse(&b).unwrap_err();
        assert!(e.what.contains("more than rpm allows"), "{e}");
    }

    #[test]
    fn a_blob_longer_than_its_blocks_is_corrupt() {
        let mut b = fixture();
        let (start, _) = parse(&b).unwrap().remove(0);
        let at = start as usize + 12;
        let len = u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        b[at..at + 4].copy_from_slice(&(len + 4096).to_le_bytes());
        let e = parse(&b).unwrap_err();
        assert!(e.what.contains("does not fill its"), "{e}");
    }
}
