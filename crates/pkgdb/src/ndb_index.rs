//! rpm's NDB index file, `Index.db` beside `Packages.db`: one lookup of a key (a name, a
//! provide, a basename) reads the slots its hash probes and the keys they point at, never the
//! whole file.
//!
//! Hand-written because no Rust crate reads it (it exists only in rpm's C sources); learned
//! from `lib/backend/ndb/rpmxdb.c` (the container) and `rpmidx.c` (each index in it).
//!
//! Container ("xdb"): a 32-byte header (`"RpmX"`, version 0, generation, slot page count,
//! page size, *user generation*), then 16-byte slots to the end of the slot pages (magic
//! `"Slo"` plus a subtag byte, the blob's tag, start page, page count). Each rpm tag indexed
//! (`Name` 1000, `Providename` 1047, `Basenames` 1117, ...) is one blob of whole pages, subtag
//! 0. The user generation is the `Packages.db` generation the indexes were last synced to: when
//! they differ the index is stale, and rpm itself rebuilds it (read-only: warns).
//!
//! Index blob ("idx"): a 64-byte header (`"RpmI"`, version 0, generation, slot count (a power
//! of two), used and dummy slot counts, the hash's extra-bit mask `xmask`, end of the key
//! area), `nslots` 8-byte slots (key offset tagged with hash bits in `xmask`, encoded
//! `(package index, entry index)`), `nslots` 4-byte overflow words, then the keys, each a
//! length (1, 3 or 7 bytes) and its bytes. A key hashes (murmur) to a first slot; the probe
//! steps by 7, 8, 9, ... until an empty slot (0); dummy slots (deleted, all ones) are skipped.
//!
//! Memory: the 32- and 64-byte headers, one container slot page (at most 64 KiB, the largest
//! page size rpm accepts), one 4 KiB window of index slots, one key of the looked-up length,
//! and 8 bytes per `(package, entry)` pair the index lists under the key. Work: at most
//! `nslots` probes per key (a table without an empty slot is corrupt, not a loop).

use crate::pages::{ReadError, Source};

const XDB_MAGIC: u32 = u32::from_le_bytes(*b"RpmX");
const IDX_MAGIC: u32 = u32::from_le_bytes(*b"RpmI");
/// The three bytes `"Slo"` of a container slot's magic; the fourth is the subtag.
const XDB_SLOT_MAGIC: u32 = u32::from_le_bytes(*b"Slo\0");
const XDB_HEADER: usize = 32;
const XDB_SLOT: usize = 16;
const IDX_HEADER: u64 = 64;
/// rpm's limits on the container (`XDB_MIN_PAGESIZE`, `XDB_MAX_PAGESIZE`, `XDB_MAX_SLOTNPAGES`).
const MIN_PAGE: u32 = 0x100;
const MAX_PAGE: u32 = 0x1_0000;
const MAX_SLOT_PAGES: u32 = 0x1_0000;
/// Index slots are read through a window of this many bytes.
const WINDOW: u64 = 4096;

/// rpm tags that have an index blob.
pub(crate) const TAG_NAME: u32 = 1000;
pub(crate) const TAG_PROVIDENAME: u32 = 1047;
pub(crate) const TAG_BASENAMES: u32 = 1117;

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Why `Index.db` cannot answer (then every header does).
#[derive(Debug)]
pub(crate) enum Trouble {
    /// It was built for another `Packages.db` generation.
    Stale { index: u32, packages: u32 },
    /// It has no blob for this tag (rpm builds one the first time a writer opens it).
    NoBlob { tag: u32 },
    /// Its bytes are inconsistent, or it could not be read.
    Damaged(ReadError),
}

impl From<ReadError> for Trouble {
    fn from(e: ReadError) -> Trouble {
        Trouble::Damaged(e)
    }
}

impl std::fmt::Display for Trouble {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Trouble::Stale { index, packages } => write!(
                f,
                "is stale (built for Packages.db generation {index}, which is now at {packages})"
            ),
            Trouble::NoBlob { tag } => write!(f, "has no index of tag {tag}"),
            Trouble::Damaged(e) => write!(f, "is damaged: {e}"),
        }
    }
}

fn bad(what: impl Into<String>, offset: u64) -> Trouble {
    Trouble::Damaged(ReadError::at(what, offset))
}

/// An opened `Index.db`: its container header checked, the blobs of the tags asked for found.
pub(crate) struct IndexDb<'s, S: Source + ?Sized> {
    src: &'s S,
    /// `(tag, byte offset, byte length)` of each index blob found.
    blobs: Vec<(u32, u64, u64)>,
}

/// One index blob's header, checked against the blob's size.
struct Idx {
    at: u64,
    nslots: u64,
    xmask: u32,
    keyend: u64,
}

impl Idx {
    fn keys_at(&self) -> u64 {
        self.at + IDX_HEADER + self.nslots * 12
    }
}

impl<'s, S: Source + ?Sized> IndexDb<'s, S> {
    /// Opens `src` as the index of a `Packages.db` at `generation`, finding the blobs of
    /// `tags` (one container slot page in memory at a time).
    pub(crate) fn open(src: &'s S, generation: u32, tags: &[u32]) -> Result<Self, Trouble> {
        let len = src.len();
        let mut h = [0u8; XDB_HEADER];
        src.read_at(&mut h, 0)?;
        if le32(&h, 0) != XDB_MAGIC {
            return Err(bad("no \"RpmX\" magic", 0));
        }
        if le32(&h, 4) != 0 {
            return Err(bad(format!("unsupported version {}", le32(&h, 4)), 4));
        }
        let (slot_pages, page, user_generation) = (le32(&h, 12), le32(&h, 16), le32(&h, 20));
        if !page.is_power_of_two() || !(MIN_PAGE..=MAX_PAGE).contains(&page) {
            return Err(bad(format!("page size {page} out of range"), 16));
        }
        if slot_pages == 0 || slot_pages >= MAX_SLOT_PAGES {
            return Err(bad(
                format!("slot page count {slot_pages} out of range"),
                12,
            ));
        }
        let page = u64::from(page);
        let slots_end = u64::from(slot_pages) * page;
        if len % page != 0 || len < slots_end {
            return Err(bad(
                format!("{len} bytes: not whole {page}-byte pages holding {slot_pages} slot pages"),
                len,
            ));
        }
        // Checked before the slots: a stale index is not read at all.
        if user_generation != generation {
            return Err(Trouble::Stale {
                index: user_generation,
                packages: generation,
            });
        }
        let mut blobs = Vec::new();
        let mut buf = vec![0u8; page as usize];
        for p in 0..u64::from(slot_pages) {
            src.read_at(&mut buf, p * page)?;
            let first = if p == 0 { XDB_HEADER } else { 0 };
            for at in (first..buf.len()).step_by(XDB_SLOT) {
                let slot_at = p * page + at as u64;
                let magic = le32(&buf, at);
                if magic & 0x00ff_ffff != XDB_SLOT_MAGIC {
                    return Err(bad("slot without \"Slo\" magic", slot_at));
                }
                let (subtag, tag) = (magic >> 24, le32(&buf, at + 4));
                let (start, count) = (
                    u64::from(le32(&buf, at + 8)),
                    u64::from(le32(&buf, at + 12)),
                );
                // Subtag 1 is a rebuild in progress; start page 0 a free slot.
                if subtag != 0 || start == 0 || !tags.contains(&tag) {
                    continue;
                }
                if start < u64::from(slot_pages) || (start + count) * page > len {
                    return Err(bad(
                        format!("blob of tag {tag}: pages {start}+{count} lie outside the file"),
                        slot_at,
                    ));
                }
                if blobs.iter().any(|b: &(u32, u64, u64)| b.0 == tag) {
                    return Err(bad(format!("two blobs of tag {tag}"), slot_at));
                }
                blobs.push((tag, start * page, count * page));
            }
        }
        Ok(IndexDb { src, blobs })
    }

    /// Reads and checks the header of the index blob of `tag`.
    fn idx(&self, tag: u32) -> Result<Idx, Trouble> {
        let Some(&(_, at, size)) = self.blobs.iter().find(|b| b.0 == tag) else {
            return Err(Trouble::NoBlob { tag });
        };
        // rpm refuses an index blob under 4096 bytes (`rpmidxMap`).
        if size < 4096 {
            return Err(bad(format!("index of tag {tag}: {size} bytes"), at));
        }
        let mut h = [0u8; IDX_HEADER as usize];
        self.src.read_at(&mut h, at)?;
        if le32(&h, 0) != IDX_MAGIC {
            return Err(bad(format!("index of tag {tag}: no \"RpmI\" magic"), at));
        }
        if le32(&h, 4) != 0 {
            return Err(bad(
                format!("index of tag {tag}: unsupported version {}", le32(&h, 4)),
                at + 4,
            ));
        }
        let (nslots, used, dummy) = (le32(&h, 12), le32(&h, 16), le32(&h, 20));
        let nslots64 = u64::from(nslots);
        if nslots < 256 || !nslots.is_power_of_two() || used > nslots || dummy > nslots {
            return Err(bad(
                format!("index of tag {tag}: slot counts {nslots}/{used}/{dummy} out of range"),
                at + 12,
            ));
        }
        let keys_at = IDX_HEADER + nslots64 * 12;
        if size <= keys_at {
            return Err(bad(
                format!("index of tag {tag}: {nslots} slots do not fit its {size} bytes"),
                at + 12,
            ));
        }
        let keyend = u64::from(le32(&h, 28));
        if keyend > size - keys_at {
            return Err(bad(
                format!("index of tag {tag}: key area end {keyend} lies outside the blob"),
                at + 28,
            ));
        }
        Ok(Idx {
            at,
            nslots: nslots64,
            xmask: le32(&h, 24),
            keyend,
        })
    }

    /// Returns every `(package index, entry index)` the index of `tag` lists under `key`.
    pub(crate) fn get(&self, tag: u32, key: &[u8]) -> Result<Vec<(u32, u32)>, Trouble> {
        let idx = self.idx(tag)?;
        let keyh = murmur(key);
        let hmask = idx.nslots - 1;
        let mut window = Window::new(idx.at + IDX_HEADER);
        let mut keyoff = 0u32;
        let mut out = Vec::new();
        let mut h = u64::from(keyh) & hmask;
        // rpm's probe: steps of 7, 8, 9, ...; at most one probe per slot.
        for step in (7u64..).take(idx.nslots as usize) {
            let (x, data) = window.slot(self.src, h)?;
            if x == 0 {
                return Ok(out);
            }
            if x != u32::MAX {
                if keyoff == 0
                    && (x ^ keyh) & idx.xmask == 0
                    && self.key_is(&idx, u64::from(x & !idx.xmask), key)?
                {
                    keyoff = x;
                }
                if keyoff != 0 && x == keyoff {
                    let ovl = if data & 0x8000_0000 != 0 {
                        let mut b = [0u8; 4];
                        self.src
                            .read_at(&mut b, idx.at + IDX_HEADER + idx.nslots * 8 + 4 * h)?;
                        u32::from_le_bytes(b)
                    } else {
                        0
                    };
                    out.push(decode(data, ovl));
                }
            }
            h = (h + step) & hmask;
        }
        Err(bad(
            format!(
                "index of tag {tag}: {} slots probed, none empty",
                idx.nslots
            ),
            idx.at + IDX_HEADER,
        ))
    }

    /// Returns true if and only if the key stored at `off` in the key area is `key`.
    fn key_is(&self, idx: &Idx, off: u64, key: &[u8]) -> Result<bool, Trouble> {
        let keyl = key.len();
        let hl = if keyl > 0 && keyl < 255 {
            1
        } else if keyl < 65535 {
            3
        } else {
            7
        };
        let need = (hl + keyl) as u64;
        // Offset 0 is never a key (rpm starts the area at 1); one past the end cannot be ours.
        if off == 0 || off + need > idx.keyend {
            return Ok(false);
        }
        let mut b = vec![0u8; hl + keyl];
        self.src.read_at(&mut b, idx.keys_at() + off)?;
        let len_ok = match hl {
            1 => usize::from(b[0]) == keyl,
            3 => b[0] == 255 && (usize::from(b[1]) | usize::from(b[2]) << 8) == keyl,
            _ => b[..3] == [255, 255, 255] && le32(&b, 3) as usize == keyl,
        };
        Ok(len_ok && b[hl..] == *key)
    }
}

/// A 4 KiB window onto the slot array: probes start near each other, so most reuse it.
struct Window {
    base: u64,
    at: Option<u64>,
    buf: [u8; WINDOW as usize],
}

impl Window {
    fn new(base: u64) -> Window {
        Window {
            base,
            at: None,
            buf: [0; WINDOW as usize],
        }
    }

    /// Returns slot `h`'s key word and data word.
    fn slot<S: Source + ?Sized>(&mut self, src: &S, h: u64) -> Result<(u32, u32), ReadError> {
        let byte = h * 8;
        let start = byte - byte % WINDOW;
        if self.at != Some(start) {
            // The last window may be shorter: the slots end where the overflow words begin,
            // and those lie inside the blob, so a whole window is always there to read.
            src.read_at(&mut self.buf, self.base + start)?;
            self.at = Some(start);
        }
        let i = (byte - start) as usize;
        Ok((le32(&self.buf, i), le32(&self.buf, i + 4)))
    }
}

/// Decodes a slot's `(data, overflow)` words into `(package index, entry index)`, as rpm
/// packs them (most fit the data word alone).
fn decode(data: u32, ovl: u32) -> (u32, u32) {
    if data & 0x8000_0000 != 0 {
        (ovl, data ^ 0x8000_0000)
    } else if data & 0x4000_0000 != 0 {
        (data & 0x00ff_ffff, (data ^ 0x4000_0000) >> 24)
    } else {
        (data & 0x000f_ffff, data >> 20)
    }
}

/// Returns the `(package index, entry index)` pairs that an `Index.db` held in memory lists
/// under `key` in its index of `tag`, checking it was synced to `Packages.db` generation
/// `generation` (fuzzing and tests; hostready reads the file through the same code).
pub fn lookup(
    index: &[u8],
    generation: u32,
    tag: u32,
    key: &[u8],
) -> Result<Vec<(u32, u32)>, crate::ParseError> {
    let to_parse = |t: Trouble| match t {
        Trouble::Damaged(e) => e.into_parse(),
        other => crate::ParseError::at(other.to_string(), 0),
    };
    IndexDb::open(index, generation, &[tag])
        .and_then(|db| db.get(tag, key))
        .map_err(to_parse)
}

/// rpm's variant of MurmurHash2 over a key (`murmurhash` in `rpmidx.c`); the hash decides
/// where a key's slots are, so it must be bit-exact.
pub(crate) fn murmur(s: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    let mut h = (s.len() as u32).wrapping_mul(M);
    let mut chunks = s.chunks_exact(4);
    for c in &mut chunks {
        h = h.wrapping_add(u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        h = h.wrapping_mul(M);
        h ^= h >> 16;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        for (i, &b) in rest.iter().enumerate() {
            h = h.wrapping_add(u32::from(b) << (8 * i));
        }
        h = h.wrapping_mul(M);
        h ^= h >> 16;
    }
    h = h.wrapping_mul(M);
    h ^= h >> 10;
    h = h.wrapping_mul(M);
    h ^= h >> 17;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur_matches_rpms_for_every_tail_length() {
        // Printed by rpm's own `murmurhash` (rpmidx.c, compiled alone with gcc): a key
        // hashed differently would be looked up in the wrong slots and never found.
        let rpm = [
            (&b""[..], 0x0000_0000),
            (b"a", 0x8bca_2515),
            (b"ab", 0x8f50_90d8),
            (b"abc", 0x5557_5fdc),
            (b"abcd", 0xef50_3505),
            (b"bash", 0xab23_13af),
            (b"libuuid", 0x7da4_f19c),
            (b"/usr/bin/bash", 0xea49_fedd),
        ];
        for (k, want) in rpm {
            assert_eq!(murmur(k), want, "{:?}", String::from_utf8_lossy(k));
        }
    }

    #[test]
    fn data_words_decode_in_all_three_packings() {
        assert_eq!(decode(5 | 3 << 20, 0), (5, 3));
        assert_eq!(
            decode(0x0012_3456 | 7 << 24 | 0x4000_0000, 0),
            (0x0012_3456, 7)
        );
        assert_eq!(decode(0x8000_0000 | 900, 0x0200_0000), (0x0200_0000, 900));
    }
}
