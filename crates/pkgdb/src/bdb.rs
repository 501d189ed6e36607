//! Berkeley DB hash files, read page by page: rpm's `Packages` up to rpm 4.15 (RHEL/CentOS
//! 7-8, SLE 12) and its `Name`, `Basenames`, `Providename` index files (also hash files:
//! rpm's `%_dbi_config` is `%{_dbi_htconfig}`; only `Dirnames`, `Installtid` and a few others
//! are btrees, and hostready reads none of those).
//!
//! Hand-written because no maintained Rust crate reads Berkeley DB files, and linking
//! libdb would mean a C library whose readers take locks in a `__db.*` environment — exactly
//! what hostready must not do. The format was learned from Berkeley DB's `dbinc/db_page.h` and
//! `dbinc/hash.h` as described by go-rpmdb (`pkg/bdb`) and rpm's own `lib/backend/bdb_ro.c`;
//! the code is our own and stricter: instead of scanning every page (which would skip a zeroed
//! page and silently lose packages), a scan walks each hash bucket from the metadata page's
//! `spares` table and demands that every page it reaches says who it is.
//!
//! Memory: a walk holds one page buffer (at most 64 KiB), one off-page item (a header blob,
//! capped at [`MAX_BLOB`](crate::pages::MAX_BLOB) from its declared size before it is
//! allocated), and a scan one bit per page of the file to catch chains that loop.
//!
//! Layout used: page 0 is the hash metadata page (magic 0x061561 at 12, page size at 20,
//! page type 8 at 25, last page at 32, max bucket 72, high mask 76, low mask 80, hash of
//! `CHARKEY` 92, `spares[32]` at 96); every other page starts with a 26-byte header (pgno 8,
//! next 16, entries 20, hf_offset 22, type 25) and hash pages carry `entries` u16 item offsets
//! after it, keys and values alternating. rpm's `Packages` keys are 4-byte record numbers in
//! the file's byte order, its values header blobs, stored on overflow pages (type 7) when they
//! do not fit.

use crate::ParseError;
use crate::pages::{MAX_DB_BYTES, MAX_ITEM, ReadError, Source, Visited, check_blob, collect_blobs};

const HASH_MAGIC: u32 = 0x0006_1561;
const PAGE_HEADER: usize = 26;
const T_HASH_UNSORTED: u8 = 2;
const T_OVERFLOW: u8 = 7;
const T_HASH_META: u8 = 8;
const T_HASH: u8 = 13;
const H_KEYDATA: u8 = 1;
const H_OFFPAGE: u8 = 3;
/// Berkeley DB stores the hash of this string (`sizeof(CHARKEY)`: its NUL included) in the
/// metadata page to detect a database opened with another hash function (`dbinc/hash.h`).
const CHARKEY: &[u8] = b"%$sniglet^&\0";

/// Returns every `(byte offset, header blob)` stored in a Berkeley DB hash `Packages` held in
/// memory (fuzzing and tests; hostready itself reads files through [`scan`]).
pub fn parse(b: &[u8]) -> Result<Vec<(u64, Vec<u8>)>, ParseError> {
    collect_blobs(|f| scan(b, f))
}

/// Calls `f` with every `(byte offset, header blob)` of a `Packages` held in memory, one at a
/// time (no blob outlives its call); returns how many there were.
pub fn scan<E: From<ParseError>>(
    b: &[u8],
    mut f: impl FnMut(u64, &[u8]) -> Result<(), E>,
) -> Result<usize, E> {
    let db = HashDb::open(b).map_err(|e| E::from(e.into_parse()))?;
    let mut n = 0;
    let r = db.scan_packages(&mut |offset, blob| {
        n += 1;
        f(offset, blob).map_err(Stop::Caller)
    });
    match r {
        Ok(()) => Ok(n),
        Err(Stop::Caller(e)) => Err(e),
        Err(Stop::Read(e)) => Err(E::from(e.into_parse())),
    }
}

/// Why a scan stopped: the file, or the caller's callback.
pub(crate) enum Stop<E> {
    Read(ReadError),
    Caller(E),
}

/// The callback of a scan: each header blob and where it lives.
pub(crate) type Visit<'f, E> = &'f mut dyn FnMut(u64, &[u8]) -> Result<(), Stop<E>>;

impl<E> From<ReadError> for Stop<E> {
    fn from(e: ReadError) -> Stop<E> {
        Stop::Read(e)
    }
}

fn err(what: impl Into<String>, offset: u64) -> ReadError {
    ReadError::at(what, offset)
}

/// Berkeley DB's default hash function (`__ham_func5`, FNV-1 from 0), which rpm uses.
fn fnv(key: &[u8]) -> u32 {
    key.iter()
        .fold(0u32, |h, &b| h.wrapping_mul(16_777_619) ^ u32::from(b))
}

/// An open Berkeley DB hash file: its metadata, pages read on demand.
pub(crate) struct HashDb<'s, S: Source + ?Sized> {
    src: &'s S,
    pub(crate) big_endian: bool,
    page_size: usize,
    pages: usize,
    max_bucket: u32,
    high_mask: u32,
    low_mask: u32,
    spares: [u32; 32],
    /// True if and only if the file was written with the default hash function, so a key's
    /// bucket can be computed (lookups); a scan needs no hash function.
    default_hash: bool,
}

/// One key or value item of a hash page.
enum Item<'p> {
    Inline(&'p [u8]),
    OffPage { first: u32, total: usize },
}

impl<'s, S: Source + ?Sized> HashDb<'s, S> {
    /// Reads and checks the metadata page.
    pub(crate) fn open(src: &'s S) -> Result<Self, ReadError> {
        let len = src.len();
        if len < 512 {
            return Err(err(
                format!("truncated: {len} bytes, less than one page"),
                len,
            ));
        }
        if len > MAX_DB_BYTES {
            return Err(ReadError::TooLarge {
                what: format!("{len} bytes, more than hostready reads ({MAX_DB_BYTES})"),
                offset: 0,
            });
        }
        let mut m = [0u8; 224];
        src.read_at(&mut m, 0)?;
        let magic = [m[12], m[13], m[14], m[15]];
        let big_endian = match (
            u32::from_le_bytes(magic) == HASH_MAGIC,
            u32::from_be_bytes(magic) == HASH_MAGIC,
        ) {
            (true, _) => false,
            (_, true) => true,
            _ => {
                return Err(err(
                    "no Berkeley DB hash magic: metadata page zeroed or overwritten (or not a hash file)",
                    12,
                ));
            }
        };
        let u = |at: usize| {
            let a = [m[at], m[at + 1], m[at + 2], m[at + 3]];
            if big_endian {
                u32::from_be_bytes(a)
            } else {
                u32::from_le_bytes(a)
            }
        };
        let page_size = u(20) as usize;
        if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
            return Err(err(format!("invalid page size {page_size}"), 20));
        }
        if m[24] != 0 {
            return Err(err("encrypted databases are not supported", 24));
        }
        if m[25] != T_HASH_META {
            return Err(err(
                format!("page 0 has type {}, not hash metadata", m[25]),
                25,
            ));
        }
        let last = u64::from(u(32));
        let need = (last + 1) * page_size as u64;
        if len < need {
            return Err(err(
                format!(
                    "truncated: metadata says {} pages of {page_size} bytes ({need} bytes), file has {len}",
                    last + 1
                ),
                len,
            ));
        }
        let pages = (last + 1) as usize;
        let max_bucket = u(72);
        if max_bucket as usize >= pages {
            return Err(err(
                format!("max bucket {max_bucket} but only {pages} pages"),
                72,
            ));
        }
        let mut spares = [0u32; 32];
        for (i, s) in spares.iter_mut().enumerate() {
            *s = u(96 + 4 * i);
        }
        Ok(HashDb {
            src,
            big_endian,
            page_size,
            pages,
            max_bucket,
            high_mask: u(76),
            low_mask: u(80),
            spares,
            default_hash: u(92) == fnv(CHARKEY),
        })
    }

    fn u32_in(&self, s: &[u8], at: usize) -> u32 {
        let a = [s[at], s[at + 1], s[at + 2], s[at + 3]];
        if self.big_endian {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    }

    fn u16_in(&self, s: &[u8], at: usize) -> u16 {
        if self.big_endian {
            u16::from_be_bytes([s[at], s[at + 1]])
        } else {
            u16::from_le_bytes([s[at], s[at + 1]])
        }
    }

    fn offset_of(&self, pgno: u32) -> u64 {
        u64::from(pgno) * self.page_size as u64
    }

    /// Reads page `pgno` into `buf` after checking it exists, records its own number and has
    /// a wanted type.
    fn page(
        &self,
        buf: &mut [u8],
        pgno: u32,
        types: &[u8],
        role: &dyn Fn() -> String,
    ) -> Result<(), ReadError> {
        if pgno == 0 || pgno as usize >= self.pages {
            return Err(err(
                format!(
                    "{} points at page {pgno}, outside pages 1..{}",
                    role(),
                    self.pages
                ),
                0,
            ));
        }
        let start = self.offset_of(pgno);
        self.src.read_at(buf, start)?;
        let own = self.u32_in(buf, 8);
        let kind = buf[25];
        if own != pgno || !types.contains(&kind) {
            return Err(err(
                format!(
                    "{}: page {pgno} says it is page {own} of type {kind} (expected type {types:?}; \
                     page zeroed or overwritten?)",
                    role()
                ),
                start,
            ));
        }
        Ok(())
    }

    /// BUCKET_TO_PAGE: bucket + spares[ceil(log2(bucket + 1))].
    fn bucket_page(&self, bucket: u32) -> Result<u32, ReadError> {
        let log2 = (u64::from(bucket) + 1).next_power_of_two().trailing_zeros() as usize;
        bucket
            .checked_add(self.spares[log2.min(31)])
            .ok_or_else(|| err("bucket page number overflows", 96))
    }

    /// Returns the items of a hash page in `buf` (read as page `pgno`), keys and values
    /// alternating, after checking that they tile the page.
    fn items<'p>(&self, buf: &'p [u8], pgno: u32) -> Result<Vec<Item<'p>>, ReadError> {
        let start = self.offset_of(pgno);
        let entries = self.u16_in(buf, 20) as usize;
        if entries % 2 != 0 || PAGE_HEADER + 2 * entries > self.page_size {
            return Err(err(
                format!("hash page has {entries} entries, which cannot be key/value pairs here"),
                start + 20,
            ));
        }
        let low = PAGE_HEADER + 2 * entries;
        let mut prev = self.page_size;
        let mut items = Vec::with_capacity(entries);
        for i in 0..entries {
            let at = self.u16_in(buf, PAGE_HEADER + 2 * i) as usize;
            let here = start + (PAGE_HEADER + 2 * i) as u64;
            if at < low || at >= prev {
                return Err(err(
                    format!("hash page item {i} at {at} overlaps its neighbours"),
                    here,
                ));
            }
            let item = &buf[at..prev];
            prev = at;
            items.push(match item[0] {
                H_KEYDATA => Item::Inline(&item[1..]),
                H_OFFPAGE if item.len() >= 12 => Item::OffPage {
                    first: self.u32_in(item, 4),
                    total: self.u32_in(item, 8) as usize,
                },
                H_OFFPAGE => return Err(err("off-page item shorter than 12 bytes", here)),
                t => {
                    return Err(err(
                        format!(
                            "hash page item {i} has item type {t}, not data or off-page \
                             (duplicates are not used by rpm)"
                        ),
                        here,
                    ));
                }
            });
        }
        Ok(items)
    }

    /// Reads an overflow chain into `out` (cleared first), checking every page and the total
    /// length; `header` says the value is an rpm header blob, whose declared size is checked
    /// against rpm's limits before anything is allocated.
    fn overflow(
        &self,
        first: u32,
        total: usize,
        header: bool,
        mut visited: Option<&mut Visited>,
        page: &mut [u8],
        out: &mut Vec<u8>,
    ) -> Result<(), ReadError> {
        let at = self.offset_of(first);
        if total as u64 > self.src.len() {
            return Err(err(
                format!("off-page item of {total} bytes is larger than the file"),
                at,
            ));
        }
        if !header && total > MAX_ITEM {
            return Err(ReadError::TooLarge {
                what: format!("off-page item of {total} bytes is larger than hostready reads"),
                offset: at,
            });
        }
        out.clear();
        let mut pgno = first;
        let mut steps = 0usize;
        while pgno != 0 {
            self.page(page, pgno, &[T_OVERFLOW], &|| "overflow chain".into())?;
            let start = self.offset_of(pgno);
            steps += 1;
            let looped = match visited.as_deref_mut() {
                Some(v) => v.mark(pgno as usize),
                None => steps > self.pages,
            };
            if looped {
                return Err(err(format!("overflow page {pgno} is reached twice"), start));
            }
            let len = self.u16_in(page, 22) as usize;
            if PAGE_HEADER + len > self.page_size || out.len() + len > total {
                return Err(err(
                    format!("overflow page {pgno} claims {len} bytes"),
                    start + 22,
                ));
            }
            let data = &page[PAGE_HEADER..PAGE_HEADER + len];
            if out.is_empty() && header {
                // The blob's first 8 bytes are its index and data lengths: check them against
                // rpm's limits before reserving the whole blob.
                if data.len() < 8 {
                    return Err(err(
                        "first overflow page of a header holds less than 8 bytes",
                        start,
                    ));
                }
                let il = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
                let dl = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
                check_blob(il, dl, total as u64, at)?;
                out.reserve_exact(total);
            }
            out.extend_from_slice(data);
            pgno = self.u32_in(page, 16);
        }
        if out.len() != total {
            return Err(err(
                format!(
                    "overflow chain from page {first} holds {} bytes, its item says {total}",
                    out.len()
                ),
                at,
            ));
        }
        Ok(())
    }

    /// Walks every bucket of `Packages`, calling `f` with each header blob and where it lives.
    pub(crate) fn scan_packages<E>(&self, f: Visit<E>) -> Result<(), Stop<E>> {
        let mut visited = Visited::new(self.pages);
        let mut page = vec![0u8; self.page_size];
        let mut ovpage = vec![0u8; self.page_size];
        let mut blob = Vec::new();
        for bucket in 0..=self.max_bucket {
            let mut pgno = self.bucket_page(bucket)?;
            let mut cont = false;
            while pgno != 0 {
                let role = || {
                    format!(
                        "hash bucket {bucket}{}",
                        if cont { " continuation" } else { "" }
                    )
                };
                self.page(&mut page, pgno, &[T_HASH, T_HASH_UNSORTED], &role)?;
                let start = self.offset_of(pgno);
                if visited.mark(pgno as usize) {
                    return Err(
                        err(format!("{}: page {pgno} is reached twice", role()), start).into(),
                    );
                }
                let items = self.items(&page, pgno)?;
                for (pair, kv) in items.chunks_exact(2).enumerate() {
                    let key = match kv[0] {
                        Item::Inline(k) => k,
                        Item::OffPage { .. } => {
                            return Err(err(
                                format!("key {pair} is off-page; rpm's record numbers are 4 bytes"),
                                start,
                            )
                            .into());
                        }
                    };
                    match kv[1] {
                        // rpm keeps its instance counter under key 0 as a short inline value.
                        Item::Inline(_) if key.iter().all(|&b| b == 0) => {}
                        Item::Inline(v) => f(start, v)?,
                        Item::OffPage { first, total } => {
                            self.overflow(
                                first,
                                total,
                                true,
                                Some(&mut visited),
                                &mut ovpage,
                                &mut blob,
                            )?;
                            f(self.offset_of(first), &blob)?;
                        }
                    }
                }
                pgno = self.u32_in(&page, 16);
                cont = true;
            }
        }
        Ok(())
    }

    /// Returns the value stored under `key` and where it lives, walking only its bucket; `None`
    /// when the bucket does not hold it. `header` says values are rpm header blobs.
    pub(crate) fn get(
        &self,
        key: &[u8],
        header: bool,
    ) -> Result<Option<(u64, Vec<u8>)>, ReadError> {
        if !self.default_hash {
            return Err(err(
                "written with a hash function other than Berkeley DB's default: keys cannot be \
                 looked up",
                92,
            ));
        }
        let mut bucket = fnv(key) & self.high_mask;
        if bucket > self.max_bucket {
            bucket &= self.low_mask;
        }
        let mut page = vec![0u8; self.page_size];
        let mut ovpage = vec![0u8; self.page_size];
        let mut okey = Vec::new();
        let mut pgno = self.bucket_page(bucket)?;
        let mut steps = 0usize;
        while pgno != 0 {
            steps += 1;
            if steps > self.pages {
                return Err(err(
                    format!("hash bucket {bucket}: its chain loops"),
                    self.offset_of(pgno),
                ));
            }
            self.page(&mut page, pgno, &[T_HASH, T_HASH_UNSORTED], &|| {
                format!("hash bucket {bucket}")
            })?;
            let start = self.offset_of(pgno);
            let items = self.items(&page, pgno)?;
            for kv in items.chunks_exact(2) {
                let same = match kv[0] {
                    Item::Inline(k) => k == key,
                    Item::OffPage { first, total } => {
                        total == key.len() && {
                            self.overflow(first, total, false, None, &mut ovpage, &mut okey)?;
                            okey == key
                        }
                    }
                };
                if !same {
                    continue;
                }
                return match kv[1] {
                    Item::Inline(v) => Ok(Some((start, v.to_vec()))),
                    Item::OffPage { first, total } => {
                        let mut v = Vec::new();
                        self.overflow(first, total, header, None, &mut ovpage, &mut v)?;
                        Ok(Some((self.offset_of(first), v)))
                    }
                };
            }
            pgno = self.u32_in(&page, 16);
        }
        Ok(None)
    }

    /// Returns true if and only if keys can be looked up (the file uses the default hash).
    pub(crate) fn default_hash(&self) -> bool {
        self.default_hash
    }

    /// Encodes an rpm record number as `Packages` stores it (the file's byte order).
    pub(crate) fn record_key(&self, hnum: u32) -> [u8; 4] {
        if self.big_endian {
            hnum.to_be_bytes()
        } else {
            hnum.to_le_bytes()
        }
    }

    /// Decodes an rpm index value: `(record number, tag index)` pairs in the file's byte order
    /// (rpm's `dbiIndexItem`); returns the record numbers.
    pub(crate) fn index_records(&self, value: &[u8]) -> Option<Vec<u32>> {
        if value.is_empty() || value.len() % 8 != 0 {
            return None;
        }
        Some(
            value
                .chunks_exact(8)
                .map(|pair| self.u32_in(pair, 0))
                .collect(),
        )
    }
}

#[cfg(test)]
// tests read fixtures and build fake hosts directly.
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    const FIXTURE: &str = "../../../shared/fixtures/rpmdb/libuuid-bdb/Packages";

    fn fixture() -> Vec<u8> {
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/").to_owned() + FIXTURE)
            .expect("the RHEL 8 BDB fixture")
    }

    #[test]
    fn default_hash_function_is_recognised_and_records_looked_up_by_number() {
        let b = fixture();
        let db = HashDb::open(b.as_slice()).unwrap();
        assert!(
            db.default_hash,
            "rpm's Packages uses Berkeley DB's default hash"
        );
        let (_, blob) = db.get(&db.record_key(1), true).unwrap().expect("record 1");
        let all = parse(&b).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].1, blob);
        assert!(db.get(&db.record_key(2), true).unwrap().is_none());
    }

    #[test]
    fn a_header_declaring_more_than_rpm_allows_is_corrupt_before_allocation() {
        let mut b = fixture();
        let (offset, blob) = parse(&b).unwrap().remove(0);
        // The first overflow page's data starts with the blob's il (big-endian).
        let at = offset as usize + PAGE_HEADER;
        assert_eq!(&b[at..at + 8], &blob[..8]);
        b[at..at + 4].copy_from_slice(&0x0001_0000u32.to_be_bytes());
        let e = parse(&b).unwrap_err();
        assert!(e.what.contains("more than rpm allows"), "{e}");
    }

    #[test]
    fn a_header_rpm_allows_but_above_hostreadys_cap_is_too_large_not_corrupt() {
        let mut b = fixture();
        let (offset, blob) = parse(&b).unwrap().remove(0);
        let first = (offset / 4096) as u32;
        // The off-page item: type 3, 3 unused bytes, first page, total length.
        let mut item = first.to_le_bytes().to_vec();
        item.extend_from_slice(&(blob.len() as u32).to_le_bytes());
        let at = b
            .windows(12)
            .position(|w| w[0] == H_OFFPAGE && w[4..] == item[..])
            .expect("off-page item");
        // A 20 MB header (rpm >= 4.16 accepts up to 256 MiB of data) in a file large enough.
        let total = 20_000_000u32;
        b[at + 8..at + 12].copy_from_slice(&total.to_le_bytes());
        let data = offset as usize + PAGE_HEADER;
        b[data..data + 4].copy_from_slice(&1u32.to_be_bytes());
        b[data + 4..data + 8].copy_from_slice(&(total - 24).to_be_bytes());
        b.resize(24_000_000, 0);
        let e = parse(&b).unwrap_err();
        assert!(e.what.contains("larger than hostready reads"), "{e}");
    }

    #[test]
    fn a_zeroed_overflow_page_is_corruption() {
        let mut b = fixture();
        let (offset, _) = parse(&b).unwrap().remove(0);
        let next = offset as usize + 4096;
        b[next..next + 4096].fill(0);
        let e = parse(&b).unwrap_err();
        assert!(e.what.contains("zeroed or overwritten"), "{e}");
    }
}
