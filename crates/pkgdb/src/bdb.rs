//! Berkeley DB hash files: rpm's `Packages` up to rpm 4.15 (RHEL/CentOS 7-8, SLE 12).
//!
//! Hand-written because no maintained Rust crate reads Berkeley DB files, and linking
//! libdb would mean a C library whose readers take locks in a `__db.*` environment — exactly
//! what hostready must not do. The format was learned from Berkeley DB's `dbinc/db_page.h` and
//! `dbinc/hash.h` as described by go-rpmdb (`pkg/bdb`); the code is our own and stricter:
//! instead of scanning every page (which would skip a zeroed page and silently lose packages),
//! it walks each hash bucket from the metadata page's `spares` table and demands that every
//! page it reaches says who it is.
//!
//! Layout used: page 0 is the hash metadata page (magic 0x061561 at 12, page size at 20,
//! page type 8 at 25, last page at 32, max bucket at 72, `spares[32]` at 96); every other
//! page starts with a 26-byte header (pgno 8, next 16, entries 20, hf_offset 22, type 25) and
//! hash pages carry `entries` u16 item offsets after it, keys and values alternating. rpm's
//! values are header blobs, stored on overflow pages (type 7) when they do not fit.

use crate::ParseError;

const HASH_MAGIC: u32 = 0x0006_1561;
const PAGE_HEADER: usize = 26;
const T_HASH_UNSORTED: u8 = 2;
const T_OVERFLOW: u8 = 7;
const T_HASH_META: u8 = 8;
const T_HASH: u8 = 13;
const H_KEYDATA: u8 = 1;
const H_OFFPAGE: u8 = 3;

fn err(what: impl Into<String>, offset: usize) -> ParseError {
    ParseError::at(what, offset)
}

struct File<'a> {
    b: &'a [u8],
    big_endian: bool,
    page_size: usize,
    pages: usize,
}

impl File<'_> {
    fn u32_at(&self, at: usize) -> Result<u32, ParseError> {
        let s = self
            .b
            .get(at..at + 4)
            .ok_or_else(|| err("read past the end of the file", at))?;
        let a = [s[0], s[1], s[2], s[3]];
        Ok(if self.big_endian {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        })
    }

    fn u16_at(&self, at: usize) -> Result<u16, ParseError> {
        let s = self
            .b
            .get(at..at + 2)
            .ok_or_else(|| err("read past the end of the file", at))?;
        Ok(if self.big_endian {
            u16::from_be_bytes([s[0], s[1]])
        } else {
            u16::from_le_bytes([s[0], s[1]])
        })
    }

    /// Returns page `pgno` after checking it exists, records its own number and has a wanted type.
    fn page(&self, pgno: u32, types: &[u8], role: &str) -> Result<&[u8], ParseError> {
        let n = pgno as usize;
        if n == 0 || n >= self.pages {
            return Err(err(
                format!(
                    "{role} points at page {pgno}, outside pages 1..{}",
                    self.pages
                ),
                0,
            ));
        }
        let start = n * self.page_size;
        let page = &self.b[start..start + self.page_size];
        let own = self.u32_at(start + 8)?;
        let kind = page[25];
        if own != pgno || !types.contains(&kind) {
            return Err(err(
                format!(
                    "{role}: page {pgno} says it is page {own} of type {kind} (expected type {types:?}; \
                     page zeroed or overwritten?)"
                ),
                start,
            ));
        }
        Ok(page)
    }
}

/// Returns every `(byte offset, header blob)` stored in a Berkeley DB hash file.
pub fn parse(b: &[u8]) -> Result<Vec<(u64, Vec<u8>)>, ParseError> {
    if b.len() < 512 {
        return Err(err(
            format!("truncated: {} bytes, less than one page", b.len()),
            b.len(),
        ));
    }
    let le = u32::from_le_bytes([b[12], b[13], b[14], b[15]]);
    let be = u32::from_be_bytes([b[12], b[13], b[14], b[15]]);
    let big_endian = match (le == HASH_MAGIC, be == HASH_MAGIC) {
        (true, _) => false,
        (_, true) => true,
        _ => {
            return Err(err(
                "no Berkeley DB hash magic: metadata page zeroed or overwritten",
                12,
            ));
        }
    };
    let mut f = File {
        b,
        big_endian,
        page_size: 0,
        pages: 0,
    };
    let page_size = f.u32_at(20)? as usize;
    if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
        return Err(err(format!("invalid page size {page_size}"), 20));
    }
    if b[24] != 0 {
        return Err(err("encrypted databases are not supported", 24));
    }
    if b[25] != T_HASH_META {
        return Err(err(
            format!("page 0 has type {}, not hash metadata", b[25]),
            25,
        ));
    }
    let last = f.u32_at(32)? as usize;
    let need = (last + 1)
        .checked_mul(page_size)
        .ok_or_else(|| err("last page number overflows", 32))?;
    if b.len() < need {
        return Err(err(
            format!(
                "truncated: metadata says {} pages of {page_size} bytes ({need} bytes), file has {}",
                last + 1,
                b.len()
            ),
            b.len(),
        ));
    }
    f.page_size = page_size;
    f.pages = last + 1;
    let max_bucket = f.u32_at(72)? as usize;
    if max_bucket >= f.pages {
        return Err(err(
            format!("max bucket {max_bucket} but only {} pages", f.pages),
            72,
        ));
    }
    let mut spares = [0u32; 32];
    for (i, s) in spares.iter_mut().enumerate() {
        *s = f.u32_at(96 + 4 * i)?;
    }
    let mut visited = vec![false; f.pages];
    let mut out = Vec::new();
    for bucket in 0..=max_bucket {
        // BUCKET_TO_PAGE: bucket + spares[ceil(log2(bucket + 1))].
        let log2 = (bucket + 1).next_power_of_two().trailing_zeros() as usize;
        let mut pgno = (bucket as u32)
            .checked_add(spares[log2.min(31)])
            .ok_or_else(|| err("bucket page number overflows", 96))?;
        let mut role = format!("hash bucket {bucket}");
        while pgno != 0 {
            let page = f.page(pgno, &[T_HASH, T_HASH_UNSORTED], &role)?;
            let start = pgno as usize * page_size;
            if std::mem::replace(&mut visited[pgno as usize], true) {
                return Err(err(format!("{role}: page {pgno} is reached twice"), start));
            }
            read_hash_page(&f, page, start, &mut visited, &mut out)?;
            pgno = f.u32_at(start + 16)?;
            role = format!("hash bucket {bucket} continuation");
        }
    }
    Ok(out)
}

fn read_hash_page(
    f: &File,
    page: &[u8],
    start: usize,
    visited: &mut [bool],
    out: &mut Vec<(u64, Vec<u8>)>,
) -> Result<(), ParseError> {
    let entries = f.u16_at(start + 20)? as usize;
    if entries % 2 != 0 || PAGE_HEADER + 2 * entries > f.page_size {
        return Err(err(
            format!("hash page has {entries} entries, which cannot be key/value pairs here"),
            start + 20,
        ));
    }
    let low = PAGE_HEADER + 2 * entries;
    let mut prev = f.page_size;
    let mut items = Vec::with_capacity(entries);
    for i in 0..entries {
        let at = f.u16_at(start + PAGE_HEADER + 2 * i)? as usize;
        if at < low || at >= prev {
            return Err(err(
                format!("hash page item {i} at {at} overlaps its neighbours"),
                start + PAGE_HEADER + 2 * i,
            ));
        }
        items.push(&page[at..prev]);
        prev = at;
    }
    for (pair, kv) in items.chunks_exact(2).enumerate() {
        let (key, val) = (kv[0], kv[1]);
        if key[0] != H_KEYDATA {
            return Err(err(format!("key {pair} has item type {}", key[0]), start));
        }
        match val[0] {
            // rpm keeps its instance counter under key 0 as a short inline value.
            H_KEYDATA if key[1..].iter().all(|&b| b == 0) => {}
            H_KEYDATA => out.push((start as u64, val[1..].to_vec())),
            H_OFFPAGE => {
                if val.len() < 12 {
                    return Err(err("off-page item shorter than 12 bytes", start));
                }
                let off = |i: usize| {
                    let a = [val[i], val[i + 1], val[i + 2], val[i + 3]];
                    if f.big_endian {
                        u32::from_be_bytes(a)
                    } else {
                        u32::from_le_bytes(a)
                    }
                };
                let (first, total) = (off(4), off(8) as usize);
                out.push((
                    first as u64 * f.page_size as u64,
                    overflow(f, first, total, visited)?,
                ));
            }
            t => {
                return Err(err(
                    format!("value {pair} has item type {t}, not data or off-page"),
                    start,
                ));
            }
        }
    }
    Ok(())
}

/// Concatenates an overflow chain, checking every page and the total length.
fn overflow(
    f: &File,
    first: u32,
    total: usize,
    visited: &mut [bool],
) -> Result<Vec<u8>, ParseError> {
    if total > f.b.len() {
        return Err(err(
            format!("off-page value of {total} bytes is larger than the file"),
            first as usize * f.page_size,
        ));
    }
    let mut data = Vec::with_capacity(total);
    let mut pgno = first;
    while pgno != 0 {
        let page = f.page(pgno, &[T_OVERFLOW], "overflow chain")?;
        let start = pgno as usize * f.page_size;
        if std::mem::replace(&mut visited[pgno as usize], true) {
            return Err(err(format!("overflow page {pgno} is reached twice"), start));
        }
        let len = f.u16_at(start + 22)? as usize;
        if PAGE_HEADER + len > f.page_size || data.len() + len > total {
            return Err(err(
                format!("overflow page {pgno} claims {len} bytes"),
                start + 22,
            ));
        }
        data.extend_from_slice(&page[PAGE_HEADER..PAGE_HEADER + len]);
        pgno = f.u32_at(start + 16)?;
    }
    if data.len() != total {
        return Err(err(
            format!(
                "overflow chain from page {first} holds {} bytes, its item says {total}",
                data.len()
            ),
            first as usize * f.page_size,
        ));
    }
    Ok(data)
}
