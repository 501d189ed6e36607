//! rpm header blobs: the bytes every rpm database format stores per package.
//!
//! A header as stored in a database (no lead, no magic) is
//! `il: u32be, dl: u32be, il × entry(tag, type, offset, count: 4 × u32be), dl bytes of data`.
//! The first entry is usually a *region tag* (`HEADER_IMMUTABLE`, 63) whose data is a 16-byte
//! trailer entry pointing back at the start of the index (a negative offset); it marks which
//! entries were signed. See rpm's `lib/header.c` (`hdrblobInit`, `hdrblobVerifyRegion`).
//!
//! Everything here is untrusted input: every offset, count and length is checked, and any
//! inconsistency is a [`HeaderError`] carrying the offset inside the blob, never a panic.
//!
//! A parsed header is also a *verified* one, as rpm verifies every header it reads from its
//! database (`headerCheck` in lib/package.c, reached from `miVerifyHeader` in lib/rpmdb.c):
//! the `SHA256HEADER` (273) and `SHA1HEADER` (269) digests rpm stores beside the signed region
//! must match that region. The digested bytes are rpm's `hdrblobDigestUpdate`: the 8-byte
//! header magic `8e ad e8 01 00 00 00 00`, then `ril` and `rdl` (the region's entry count and
//! data length, from the region trailer) as big-endian u32, then the region's `ril` index
//! entries, then its first `rdl` data bytes. A mismatch means the bytes changed after rpm
//! wrote them (a flipped bit, a scribbled page): the header is corrupt, never "some other
//! package", so a damaged name can never read as "not installed".

/// rpm's own sanity limits (`HEADER_TAGS_MAX`, `HEADER_DATA_MAX` in lib/header_internal.h).
const TAGS_MAX: u32 = 0xffff;
const DATA_MAX: u32 = 0x0fff_ffff;

/// The most bytes of file paths [`Header::info`] builds per byte of header, so that its memory
/// stays a small multiple of the input (see the fuzz target `header`).
const FILE_LIST_EXPANSION: usize = 16;

/// Tags hostready reads (rpm's `rpmtag.h`).
pub mod tag {
    pub const HEADER_IMAGE: u32 = 61;
    pub const HEADER_SIGNATURES: u32 = 62;
    pub const HEADER_IMMUTABLE: u32 = 63;
    pub const SHA1HEADER: u32 = 269;
    pub const SHA256HEADER: u32 = 273;
    pub const NAME: u32 = 1000;
    pub const VERSION: u32 = 1001;
    pub const RELEASE: u32 = 1002;
    pub const EPOCH: u32 = 1003;
    pub const ARCH: u32 = 1022;
    pub const OLDFILENAMES: u32 = 1027;
    pub const PROVIDENAME: u32 = 1047;
    pub const DIRINDEXES: u32 = 1116;
    pub const BASENAMES: u32 = 1117;
    pub const DIRNAMES: u32 = 1118;
}

/// What rpm prefixes to a header when it digests it (`rpm_header_magic` in lib/header.c).
const HEADER_MAGIC: [u8; 8] = [0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0];

/// The size of a region trailer, which is also the region tag's count (`REGION_TAG_COUNT`).
const REGION_TAG_COUNT: usize = 16;

// Data types (rpm's `rpmTagType`).
const T_CHAR: u32 = 1;
const T_INT8: u32 = 2;
const T_INT16: u32 = 3;
const T_INT32: u32 = 4;
const T_INT64: u32 = 5;
const T_STRING: u32 = 6;
const T_BIN: u32 = 7;
const T_STRING_ARRAY: u32 = 8;
const T_I18NSTRING: u32 = 9;

/// Why a header blob could not be read; `offset` is inside the blob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rpm header: {what} (header byte {offset})")]
pub struct HeaderError {
    /// What is inconsistent.
    pub what: String,
    /// Byte offset inside the blob where it was noticed.
    pub offset: usize,
}

fn bad(what: impl Into<String>, offset: usize) -> HeaderError {
    HeaderError {
        what: what.into(),
        offset,
    }
}

/// One index entry of a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    tag: u32,
    kind: u32,
    offset: usize,
    count: usize,
    /// Where the entry itself sits in the blob, for error messages.
    at: usize,
}

/// A parsed, validated header: index plus data store, borrowed from the blob.
#[derive(Debug)]
pub struct Header<'a> {
    entries: Vec<Entry>,
    data: &'a [u8],
    /// Offset of `data` inside the blob.
    data_start: usize,
}

/// The package facts hostready takes from a header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RpmInfo {
    pub name: String,
    pub epoch: Option<u32>,
    pub version: String,
    pub release: String,
    /// Empty for pseudo-packages without one (`gpg-pubkey`).
    pub arch: String,
    /// Absolute paths of every file and directory the package owns.
    pub files: Vec<String>,
    pub provides: Vec<String>,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

impl<'a> Header<'a> {
    /// Parses and checks a header blob; the blob must be exactly index plus data, as rpm demands.
    pub fn parse(blob: &'a [u8]) -> Result<Header<'a>, HeaderError> {
        let il = be32(blob, 0).ok_or_else(|| bad("shorter than 8 bytes", 0))?;
        let dl = be32(blob, 4).ok_or_else(|| bad("shorter than 8 bytes", 4))?;
        if il == 0 || il > TAGS_MAX {
            return Err(bad(format!("index length {il} out of range"), 0));
        }
        if dl > DATA_MAX {
            return Err(bad(format!("data length {dl} out of range"), 4));
        }
        let (il, dl) = (il as usize, dl as usize);
        let data_start = 8 + il * 16;
        let want = data_start + dl;
        if blob.len() != want {
            return Err(bad(
                format!(
                    "blob is {} bytes but its index ({il} entries) and data ({dl} bytes) say {want}",
                    blob.len()
                ),
                0,
            ));
        }
        let data = &blob[data_start..];
        let mut entries = Vec::with_capacity(il);
        // End of the previous entry's data: rpm's hdrblobVerifyInfo demands that entries after
        // the region tag lie in the data store in index order, none overlapping the one before.
        let mut prev_end = 0;
        for i in 0..il {
            let at = 8 + i * 16;
            // In bounds: at + 16 <= data_start <= blob.len().
            let tag = be32(blob, at).unwrap_or_default();
            let kind = be32(blob, at + 4).unwrap_or_default();
            let offset = be32(blob, at + 8).unwrap_or_default();
            let count = be32(blob, at + 12).unwrap_or_default();
            let e = Entry {
                tag,
                kind,
                offset: offset as usize,
                count: count as usize,
                at,
            };
            let end = check_entry(&e, data, i == 0)?;
            if i > 0 || !is_region_tag(tag) {
                if e.offset < prev_end {
                    return Err(bad(
                        format!(
                            "tag {tag} data at {} overlaps the previous entry's (ending at {prev_end})",
                            e.offset
                        ),
                        at,
                    ));
                }
                prev_end = end;
            }
            entries.push(e);
        }
        let h = Header {
            entries,
            data,
            data_start,
        };
        let region = h.check_region()?;
        h.check_digests(blob, region)?;
        Ok(h)
    }

    /// Checks the region trailer, when the first entry is a region tag, and returns the region
    /// as rpm's `hdrblobVerifyRegion` computes it: `(ril, rdl)`, its entry count and data
    /// length; `(0, 0)` when there is no region, as in rpm.
    fn check_region(&self) -> Result<(usize, usize), HeaderError> {
        let first = self.entries[0];
        if !is_region_tag(first.tag) {
            return Ok((0, 0));
        }
        let at = self.data_start + first.offset;
        if first.kind != T_BIN || first.count != REGION_TAG_COUNT {
            return Err(bad("region tag is not a 16-byte binary entry", first.at));
        }
        let t = &self.data[first.offset..first.offset + REGION_TAG_COUNT];
        let mut ttag = be32(t, 0).unwrap_or_default();
        let tkind = be32(t, 4).unwrap_or_default();
        let toff = be32(t, 8).unwrap_or_default() as i32;
        let tcount = be32(t, 12).unwrap_or_default() as usize;
        // rpm's own fix-up: some old packages have HEADERIMAGE in the signature trailer.
        if first.tag == tag::HEADER_SIGNATURES && ttag == tag::HEADER_IMAGE {
            ttag = tag::HEADER_SIGNATURES;
        }
        if ttag != first.tag || tkind != T_BIN || tcount != REGION_TAG_COUNT {
            return Err(bad(
                format!(
                    "region trailer (tag {ttag}, type {tkind}, count {tcount}) does not match \
                     region tag {}",
                    first.tag
                ),
                at,
            ));
        }
        let rdl = first.offset + REGION_TAG_COUNT;
        let ril = match toff.checked_neg().filter(|n| *n > 0 && n % 16 == 0) {
            Some(n) if (n / 16) as usize <= self.entries.len() => (n / 16) as usize,
            _ => return Err(bad(format!("region trailer offset {toff} is invalid"), at)),
        };
        // The region's entries are its data: each lies before the trailer (rpm's
        // hdrblobVerifyInfo and headerImport), so the digest below covers all of it.
        for e in &self.entries[1..ril] {
            let end = entry_end(e, self.data).unwrap_or(usize::MAX);
            if end > rdl - REGION_TAG_COUNT {
                return Err(bad(
                    format!(
                        "tag {} of the signed region has data outside it (ends at {end}, \
                         region data ends at {})",
                        e.tag,
                        rdl - REGION_TAG_COUNT
                    ),
                    e.at,
                ));
            }
        }
        Ok((ril, rdl))
    }

    /// Verifies the `SHA256HEADER` and `SHA1HEADER` digests present, as rpm's `headerCheck`
    /// does: a digest tag of the wrong type or count, one that is not hex, or one that does
    /// not match the region is corrupt. A header with neither (rpm < 4.0 built, or a
    /// `gpg-pubkey` pseudo-package) has nothing to verify, as in rpm.
    fn check_digests(&self, blob: &[u8], (ril, rdl): (usize, usize)) -> Result<(), HeaderError> {
        for (t, name) in [(tag::SHA256HEADER, "SHA256"), (tag::SHA1HEADER, "SHA1")] {
            let Some(e) = self.find(t) else { continue };
            if e.kind != T_STRING || e.count != 1 {
                return Err(bad(
                    format!(
                        "{name} header digest (tag {t}) has type {} count {} instead of one string",
                        e.kind, e.count
                    ),
                    e.at,
                ));
            }
            let stored = self.raw_strings(e).next().unwrap_or_default();
            if stored.len() < 40
                || stored.len() % 2 != 0
                || !stored.iter().all(u8::is_ascii_hexdigit)
            {
                return Err(bad(
                    format!("{name} header digest (tag {t}) is not a hex digest"),
                    self.data_start + e.offset,
                ));
            }
            // In bounds: check_region proved ril <= il and rdl <= dl.
            let parts: [&[u8]; 5] = [
                &HEADER_MAGIC,
                &(ril as u32).to_be_bytes(),
                &(rdl as u32).to_be_bytes(),
                &blob[8..8 + ril * 16],
                &self.data[..rdl],
            ];
            let computed = if t == tag::SHA256HEADER {
                hex(&digest::<sha2::Sha256>(&parts))
            } else {
                hex(&digest::<sha1::Sha1>(&parts))
            };
            if !stored.eq_ignore_ascii_case(computed.as_bytes()) {
                return Err(bad(
                    format!(
                        "{name} header digest BAD: stored {}, computed {computed} over the \
                         signed region ({ril} entries, {rdl} bytes): the header changed after \
                         rpm wrote it",
                        String::from_utf8_lossy(stored)
                    ),
                    self.data_start + e.offset,
                ));
            }
        }
        Ok(())
    }

    fn find(&self, tag: u32) -> Option<&Entry> {
        self.entries.iter().find(|e| e.tag == tag)
    }

    /// Returns the string value of `tag`, if present.
    pub fn string(&self, tag: u32) -> Result<Option<String>, HeaderError> {
        let Some(e) = self.find(tag) else {
            return Ok(None);
        };
        match e.kind {
            T_STRING | T_I18NSTRING | T_STRING_ARRAY => Ok(self.strings_of(e)?.into_iter().next()),
            _ => Err(bad(
                format!("tag {tag} has type {} instead of a string", e.kind),
                e.at,
            )),
        }
    }

    /// Returns the string-array value of `tag` (empty when absent).
    pub fn strings(&self, tag: u32) -> Result<Vec<String>, HeaderError> {
        match self.find(tag) {
            None => Ok(Vec::new()),
            Some(e) if matches!(e.kind, T_STRING | T_STRING_ARRAY | T_I18NSTRING) => {
                self.strings_of(e)
            }
            Some(e) => Err(bad(
                format!("tag {tag} has type {} instead of a string array", e.kind),
                e.at,
            )),
        }
    }

    /// Returns the 32-bit integer array of `tag` (empty when absent).
    pub fn u32s(&self, tag: u32) -> Result<Vec<u32>, HeaderError> {
        match self.find(tag) {
            None => Ok(Vec::new()),
            Some(e) if e.kind == T_INT32 => Ok(self.data[e.offset..e.offset + 4 * e.count]
                .chunks_exact(4)
                .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                .collect()),
            Some(e) => Err(bad(
                format!("tag {tag} has type {} instead of int32", e.kind),
                e.at,
            )),
        }
    }

    fn strings_of(&self, e: &Entry) -> Result<Vec<String>, HeaderError> {
        // STRING and I18NSTRING hold one string per count in practice only for count 1;
        // check_entry already proved `count` terminated strings fit in the data.
        let n = if e.kind == T_STRING { 1 } else { e.count };
        let mut out = Vec::with_capacity(n.min(1 << 16));
        let mut pos = e.offset;
        for _ in 0..n {
            let rest = &self.data[pos..];
            let len = rest
                .iter()
                .position(|&b| b == 0)
                .ok_or_else(|| bad("unterminated string", self.data_start + pos))?;
            out.push(String::from_utf8_lossy(&rest[..len]).into_owned());
            pos += len + 1;
        }
        Ok(out)
    }

    /// Returns the strings of a string-typed entry as raw bytes, without allocating.
    /// `check_entry` proved that every one of them is terminated inside the data store.
    fn raw_strings(&self, e: &Entry) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        let n = if e.kind == T_STRING { 1 } else { e.count };
        let data: &'a [u8] = self.data;
        let mut rest = &data[e.offset..];
        (0..n).map_while(move |_| {
            let len = rest.iter().position(|&b| b == 0)?;
            let s = &rest[..len];
            rest = &rest[len + 1..];
            Some(s)
        })
    }

    /// Returns the entry of a string-typed `tag`, an error if it has another type.
    fn string_entry(&self, tag: u32) -> Result<Option<&Entry>, HeaderError> {
        match self.find(tag) {
            Some(e) if !matches!(e.kind, T_STRING | T_STRING_ARRAY | T_I18NSTRING) => Err(bad(
                format!("tag {tag} has type {} instead of a string array", e.kind),
                e.at,
            )),
            found => Ok(found),
        }
    }

    /// Returns true if and only if the header's name is one of `names`, reading nothing else.
    pub fn name_is_one_of(&self, names: &[&str]) -> Result<bool, HeaderError> {
        let own = self
            .string_entry(tag::NAME)?
            .and_then(|e| self.raw_strings(e).next())
            .ok_or_else(|| bad("no NAME tag", 0))?;
        Ok(names.iter().any(|n| n.as_bytes() == own))
    }

    /// Returns true if and only if the file list names one of `wanted` (absolute paths),
    /// without building the list: basenames are compared first, a directory only on a match.
    /// The checks [`Header::info`] makes on the file-list tags apply wherever they matter.
    pub fn owns_any(&self, wanted: &[String]) -> Result<bool, HeaderError> {
        let Some(bases) = self.string_entry(tag::BASENAMES)? else {
            // rpm < 4 headers list whole paths.
            return Ok(match self.string_entry(tag::OLDFILENAMES)? {
                Some(e) => self
                    .raw_strings(e)
                    .any(|f| wanted.iter().any(|w| w.as_bytes() == f)),
                None => false,
            });
        };
        let dirindexes = self.u32s(tag::DIRINDEXES)?;
        let at = self.find(tag::DIRINDEXES).map_or(0, |e| e.at);
        let n = if bases.kind == T_STRING {
            1
        } else {
            bases.count
        };
        if dirindexes.len() != n {
            return Err(bad(
                format!("{} dir indexes for {n} basenames", dirindexes.len()),
                at,
            ));
        }
        fn split(w: &String) -> (&[u8], &[u8]) {
            let cut = w.rfind('/').map_or(0, |i| i + 1);
            w.as_bytes().split_at(cut)
        }
        let dirs = self.string_entry(tag::DIRNAMES)?;
        for (b, &i) in self.raw_strings(bases).zip(&dirindexes) {
            for (dir, base) in wanted.iter().map(split) {
                if b != base {
                    continue;
                }
                let d = dirs.and_then(|e| self.raw_strings(e).nth(i as usize));
                match d {
                    Some(d) if d == dir => return Ok(true),
                    Some(_) => {}
                    None => {
                        let count = dirs.map_or(0, |e| e.count);
                        return Err(bad(format!("dir index {i} beyond {count} dirnames"), at));
                    }
                }
            }
        }
        Ok(false)
    }

    /// Extracts the facts hostready needs, checking the file-list tags against each other.
    pub fn info(&self) -> Result<RpmInfo, HeaderError> {
        let name = self
            .string(tag::NAME)?
            .ok_or_else(|| bad("no NAME tag", 0))?;
        let epoch = self.u32s(tag::EPOCH)?.first().copied();
        let version = self.string(tag::VERSION)?.unwrap_or_default();
        let release = self.string(tag::RELEASE)?.unwrap_or_default();
        let arch = self.string(tag::ARCH)?.unwrap_or_default();
        let basenames = self.strings(tag::BASENAMES)?;
        let files = if basenames.is_empty() {
            // rpm < 4 headers list whole paths.
            self.strings(tag::OLDFILENAMES)?
        } else {
            let dirnames = self.strings(tag::DIRNAMES)?;
            let dirindexes = self.u32s(tag::DIRINDEXES)?;
            let at = self.find(tag::DIRINDEXES).map_or(0, |e| e.at);
            if dirindexes.len() != basenames.len() {
                return Err(bad(
                    format!(
                        "{} dir indexes for {} basenames",
                        dirindexes.len(),
                        basenames.len()
                    ),
                    at,
                ));
            }
            // Each path is a directory (stored once) plus a basename: a header of one long
            // dirname and many tiny basenames would expand without bound. Real headers store
            // ~100 bytes of other per-file tags beside each path, so they stay far below this.
            let mut total = 0usize;
            for (b, &i) in basenames.iter().zip(&dirindexes) {
                let d = dirnames.get(i as usize).ok_or_else(|| {
                    bad(
                        format!("dir index {i} beyond {} dirnames", dirnames.len()),
                        at,
                    )
                })?;
                total += d.len() + b.len();
            }
            let blob_len = self.data_start + self.data.len();
            if total > FILE_LIST_EXPANSION * blob_len {
                return Err(bad(
                    format!(
                        "its file list expands to {total} bytes of paths, more than \
                         {FILE_LIST_EXPANSION} times the {blob_len}-byte header"
                    ),
                    at,
                ));
            }
            let mut files = Vec::with_capacity(basenames.len());
            for (b, &i) in basenames.iter().zip(&dirindexes) {
                // In range: checked above.
                files.push(format!("{}{b}", dirnames[i as usize]));
            }
            files
        };
        let provides = self.strings(tag::PROVIDENAME)?;
        Ok(RpmInfo {
            name,
            epoch,
            version,
            release,
            arch,
            files,
            provides,
        })
    }
}

fn is_region_tag(t: u32) -> bool {
    matches!(
        t,
        tag::HEADER_IMAGE | tag::HEADER_SIGNATURES | tag::HEADER_IMMUTABLE
    )
}

fn digest<D: sha2::Digest>(parts: &[&[u8]]) -> Vec<u8> {
    let mut d = D::new();
    for p in parts {
        d.update(p);
    }
    d.finalize().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Returns where an entry's data ends, for an entry [`check_entry`] accepted.
fn entry_end(e: &Entry, data: &[u8]) -> Option<usize> {
    let n = match e.kind {
        T_INT16 => 2,
        T_INT32 => 4,
        T_INT64 => 8,
        T_STRING | T_STRING_ARRAY | T_I18NSTRING => {
            let mut pos = e.offset;
            for _ in 0..e.count {
                pos += data.get(pos..)?.iter().position(|&b| b == 0)? + 1;
            }
            return Some(pos);
        }
        0 => return Some(e.offset),
        _ => 1,
    };
    e.offset.checked_add(e.count.checked_mul(n)?)
}

/// Checks that an entry's data lies inside the data store, aligned, strings terminated, and
/// returns where it ends.
fn check_entry(e: &Entry, data: &[u8], first: bool) -> Result<usize, HeaderError> {
    let size = |n: usize| -> Result<usize, HeaderError> {
        let end = e
            .count
            .checked_mul(n)
            .and_then(|len| e.offset.checked_add(len));
        match end {
            Some(end) if end <= data.len() && e.offset % n == 0 => Ok(end),
            _ => Err(bad(
                format!(
                    "tag {} data (offset {}, count {}) outside the {}-byte data store or misaligned",
                    e.tag,
                    e.offset,
                    e.count,
                    data.len()
                ),
                e.at,
            )),
        }
    };
    if e.count == 0 {
        return Err(bad(format!("tag {} has count 0", e.tag), e.at));
    }
    if e.offset >= data.len() {
        return Err(bad(
            format!("tag {} offset {} beyond data store", e.tag, e.offset),
            e.at,
        ));
    }
    match e.kind {
        T_CHAR | T_INT8 | T_BIN => {
            // Binary entries are unaligned; a region tag's count is 16.
            match e.offset.checked_add(e.count) {
                Some(end) if end <= data.len() => Ok(end),
                _ => Err(bad(format!("tag {} data overruns", e.tag), e.at)),
            }
        }
        T_INT16 => size(2),
        T_INT32 => size(4),
        T_INT64 => size(8),
        T_STRING | T_STRING_ARRAY | T_I18NSTRING => {
            if e.kind == T_STRING && e.count != 1 {
                return Err(bad(
                    format!("string tag {} has count {}", e.tag, e.count),
                    e.at,
                ));
            }
            // Every one of `count` strings must end inside the data store.
            let mut pos = e.offset;
            for _ in 0..e.count {
                let rest = data.get(pos..).unwrap_or_default();
                match rest.iter().position(|&b| b == 0) {
                    Some(len) => pos += len + 1,
                    None => {
                        return Err(bad(
                            format!("tag {} string runs off the data store", e.tag),
                            e.at,
                        ));
                    }
                }
            }
            Ok(pos)
        }
        // rpm's NULL type holds no data.
        0 if !first => Ok(e.offset),
        k => Err(bad(format!("tag {} has unknown type {k}", e.tag), e.at)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a header blob from (tag, type, data) triples, laying data out aligned.
    pub(crate) fn build(entries: &[(u32, u32, u32, Vec<u8>)]) -> Vec<u8> {
        let mut index = Vec::new();
        let mut data: Vec<u8> = Vec::new();
        for (tag, kind, count, bytes) in entries {
            let align = match *kind {
                T_INT16 => 2,
                T_INT32 => 4,
                T_INT64 => 8,
                _ => 1,
            };
            while data.len() % align != 0 {
                data.push(0);
            }
            for v in [*tag, *kind, data.len() as u32, *count] {
                index.extend_from_slice(&v.to_be_bytes());
            }
            data.extend_from_slice(bytes);
        }
        let mut blob = Vec::new();
        blob.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        blob.extend_from_slice(&(data.len() as u32).to_be_bytes());
        blob.extend(index);
        blob.extend(data);
        blob
    }

    fn s(v: &str) -> Vec<u8> {
        let mut b = v.as_bytes().to_vec();
        b.push(0);
        b
    }

    fn sample() -> Vec<u8> {
        let mut dirs = s("/usr/bin/");
        dirs.extend(s("/etc/"));
        let mut bases = s("tool");
        bases.extend(s("tool.conf"));
        let mut idx = 0u32.to_be_bytes().to_vec();
        idx.extend(1u32.to_be_bytes());
        build(&[
            (tag::NAME, T_STRING, 1, s("tool")),
            (tag::EPOCH, T_INT32, 1, 2u32.to_be_bytes().to_vec()),
            (tag::VERSION, T_STRING, 1, s("1.0")),
            (tag::RELEASE, T_STRING, 1, s("3.el9")),
            (tag::ARCH, T_STRING, 1, s("x86_64")),
            (tag::DIRNAMES, T_STRING_ARRAY, 2, dirs),
            (tag::BASENAMES, T_STRING_ARRAY, 2, bases),
            (tag::DIRINDEXES, T_INT32, 2, idx),
        ])
    }

    #[test]
    fn reads_nevra_and_files() {
        let blob = sample();
        let info = Header::parse(&blob).unwrap().info().unwrap();
        assert_eq!(info.name, "tool");
        assert_eq!(info.epoch, Some(2));
        assert_eq!(info.release, "3.el9");
        assert_eq!(info.files, ["/usr/bin/tool", "/etc/tool.conf"]);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let blob = sample();
        for n in 0..blob.len() {
            assert!(Header::parse(&blob[..n]).is_err(), "length {n}");
        }
    }

    #[test]
    fn every_single_byte_scribble_is_handled() {
        let blob = sample();
        for i in 0..blob.len() {
            for v in [0u8, 0xff, 0x80] {
                let mut b = blob.clone();
                b[i] = v;
                if let Ok(h) = Header::parse(&b) {
                    let _ = h.info();
                }
            }
        }
    }

    /// Builds a header as rpm stores an installed one: an immutable region (region tag first,
    /// its trailer last in the region's data) holding `entries`, then outside the region the
    /// SHA256HEADER and SHA1HEADER digests of that region, computed as rpm does.
    fn signed(entries: &[(u32, u32, u32, Vec<u8>)]) -> Vec<u8> {
        let ril = entries.len() + 1;
        let mut region = vec![(tag::HEADER_IMMUTABLE, T_BIN, 16, vec![0u8; 16])];
        region.extend(entries.iter().cloned());
        // Lay out the region alone first, to know where its data ends.
        let plain = build(&region[1..]);
        let data_len = plain.len() - 8 - (ril - 1) * 16;
        let rdl = data_len + 16;
        let mut trailer = tag::HEADER_IMMUTABLE.to_be_bytes().to_vec();
        trailer.extend(T_BIN.to_be_bytes());
        trailer.extend((-(ril as i32 * 16)).to_be_bytes());
        trailer.extend(16u32.to_be_bytes());
        // Index: region tag (data at data_len), the region's entries as laid out.
        let mut index = Vec::new();
        for v in [tag::HEADER_IMMUTABLE, T_BIN, data_len as u32, 16] {
            index.extend(v.to_be_bytes());
        }
        index.extend_from_slice(&plain[8..8 + (ril - 1) * 16]);
        let mut data = plain[8 + (ril - 1) * 16..].to_vec();
        data.extend(&trailer);
        let parts: [&[u8]; 5] = [
            &HEADER_MAGIC,
            &(ril as u32).to_be_bytes(),
            &(rdl as u32).to_be_bytes(),
            &index,
            &data,
        ];
        for (t, d) in [
            (tag::SHA1HEADER, hex(&digest::<sha1::Sha1>(&parts))),
            (tag::SHA256HEADER, hex(&digest::<sha2::Sha256>(&parts))),
        ] {
            for v in [t, T_STRING, data.len() as u32, 1] {
                index.extend(v.to_be_bytes());
            }
            data.extend(s(&d));
        }
        let mut blob = ((index.len() / 16) as u32).to_be_bytes().to_vec();
        blob.extend((data.len() as u32).to_be_bytes());
        blob.extend(index);
        blob.extend(data);
        blob
    }

    #[test]
    fn digests_cover_every_byte_of_the_region() {
        let blob = signed(&[
            (tag::NAME, T_STRING, 1, s("tool")),
            (tag::VERSION, T_STRING, 1, s("1.0")),
            (tag::EPOCH, T_INT32, 1, 2u32.to_be_bytes().to_vec()),
        ]);
        let h = Header::parse(&blob).unwrap();
        assert_eq!(h.info().unwrap().name, "tool");
        let il = 6;
        let region_index = 8..8 + 4 * 16;
        let data_start = 8 + il * 16;
        // The region's data: 4 + 1 + 3 (pad) + 4 bytes + 16-byte trailer.
        let region_data = data_start..data_start + 4 + 1 + 4 + 3 + 4 + 16;
        for i in region_index.chain(region_data) {
            let mut b = blob.clone();
            b[i] ^= 0x20;
            let err = Header::parse(&b).map(|_| ()).unwrap_err();
            // Most flips break the digest; some break the structure first. None passes.
            assert!(!err.what.is_empty(), "byte {i}");
        }
        // A name byte: the structure holds, only the digest can tell.
        let at = data_start + 1;
        let mut b = blob.clone();
        b[at] ^= 0x01;
        let err = Header::parse(&b).map(|_| ()).unwrap_err();
        assert!(err.what.contains("SHA256 header digest BAD"), "{err}");
        // A digest of the wrong case still matches (rpm compares with strcasecmp).
        let sha256_at = blob.len() - 65;
        let mut b = blob.clone();
        b[sha256_at..blob.len() - 1].make_ascii_uppercase();
        Header::parse(&b).unwrap();
        // A digest that is not hex is corrupt too.
        b[sha256_at] = b'g';
        let err = Header::parse(&b).map(|_| ()).unwrap_err();
        assert!(err.what.contains("not a hex digest"), "{err}");
    }

    #[test]
    fn a_file_list_that_expands_without_bound_is_corrupt() {
        // One 2000-byte dirname shared by 2000 one-letter basenames: 4 MB of paths from ~14 KB.
        let dir = format!("/{}/", "d".repeat(1998));
        let mut bases = Vec::new();
        let mut idx = Vec::new();
        for _ in 0..2000 {
            bases.extend(s("a"));
            idx.extend(0u32.to_be_bytes());
        }
        let blob = build(&[
            (tag::NAME, T_STRING, 1, s("x")),
            (tag::DIRNAMES, T_STRING_ARRAY, 1, s(&dir)),
            (tag::BASENAMES, T_STRING_ARRAY, 2000, bases),
            (tag::DIRINDEXES, T_INT32, 2000, idx),
        ]);
        let err = Header::parse(&blob).unwrap().info().unwrap_err();
        assert!(err.what.contains("expands to 4002000 bytes"), "{err}");
    }

    #[test]
    fn dirindex_out_of_range_is_corrupt() {
        let mut idx = 0u32.to_be_bytes().to_vec();
        idx.extend(7u32.to_be_bytes());
        let mut bases = s("a");
        bases.extend(s("b"));
        let blob = build(&[
            (tag::NAME, T_STRING, 1, s("x")),
            (tag::DIRNAMES, T_STRING_ARRAY, 1, s("/")),
            (tag::BASENAMES, T_STRING_ARRAY, 2, bases),
            (tag::DIRINDEXES, T_INT32, 2, idx),
        ]);
        let err = Header::parse(&blob).unwrap().info().unwrap_err();
        assert!(err.what.contains("dir index 7"), "{err}");
    }
}
