//! Positioned reads for the Berkeley DB and NDB readers, and the size caps every record read
//! through them obeys.
//!
//! The readers never hold a whole database in memory (a RHEL 7/8 `Packages` is commonly
//! 50-250 MB; reading it whole made hostready peak at twice the file): they ask a [`Source`]
//! for the bytes of one page, or of one record, at a time. In production the source is the
//! already-opened (rooted, type-checked) file, read with `pread`; the fuzz targets and unit
//! tests use a byte slice, so the very same page-walking code is what they exercise.
//!
//! There is no page cache of our own: each walk reuses one page-sized buffer and the kernel's
//! page cache makes re-reads cheap. The only buffers that grow with the input are one record
//! (capped by [`MAX_BLOB`] before it is allocated) and the readers' one-bit-per-page
//! visited sets (a `Packages` of at most [`MAX_DB_BYTES`]).

use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::ParseError;

/// Largest database file read (2 GiB; a full RHEL desktop's `Packages` is a few hundred MiB).
pub(crate) const MAX_DB_BYTES: u64 = 2 << 30;

/// rpm's own limits on a header: at most `0xffff` index entries (`hdrchkTags`) and less than
/// 256 MiB of data (`HEADER_DATA_MAX`, rpm >= 4.16; rpm <= 4.15 allowed 16 MiB,
/// `hdrchkData(_nbytes) ((_nbytes) & 0xff000000)`). A header declaring more is corrupt.
pub(crate) const RPM_TAGS_MAX: u64 = 0xffff;
pub(crate) const RPM_DATA_MAX: u64 = 0x0fff_ffff;

/// Largest header blob hostready reads into memory: rpm <= 4.15's data limit (16 MiB, what
/// the rpm versions that write Berkeley DB and most NDB databases accept) plus a full index.
/// A header that rpm >= 4.16 accepts but that is larger than this is reported as too large to
/// read within hostready's memory bound (an unreadable database, so "unknown"), never as
/// corrupt and never allocated. Real headers are far smaller (kernel-devel: ~2 MiB).
pub(crate) const MAX_BLOB: usize = 8 + 16 * 0xffff + (16 << 20);

/// Largest key or index value read (an rpm index key is a name or a path; a value is 8 bytes
/// per package that has the key).
pub(crate) const MAX_ITEM: usize = 16 << 20;

/// Why a read through a [`Source`] failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// The bytes are inconsistent.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The file could not be read.
    #[error("read failed at byte {offset}")]
    Io {
        offset: u64,
        #[source]
        source: std::io::Error,
    },
    /// A record is larger than hostready reads (but within what rpm accepts).
    #[error("{what} (byte {offset})")]
    TooLarge { what: String, offset: u64 },
}

impl ReadError {
    /// Returns this error as a parse error, for the in-memory readers (fuzzing and tests), whose
    /// source has no I/O to fail and whose callers only know [`ParseError`].
    pub(crate) fn into_parse(self) -> ParseError {
        match self {
            ReadError::Parse(p) => p,
            ReadError::TooLarge { what, offset } => ParseError { what, offset },
            ReadError::Io { offset, source } => ParseError {
                what: source.to_string(),
                offset,
            },
        }
    }

    pub(crate) fn at(what: impl Into<String>, offset: u64) -> ReadError {
        // Offsets are file offsets of a database of at most MAX_DB_BYTES: they fit a usize.
        ReadError::Parse(ParseError::at(what, offset as usize))
    }
}

/// Bytes that can be read at an offset: an open file or, for fuzzing and tests, a slice.
pub(crate) trait Source {
    /// Returns the length in bytes.
    fn len(&self) -> u64;
    /// Fills `buf` with the bytes at `offset`; bytes past the end are an error.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), ReadError>;
}

impl Source for [u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), ReadError> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let src = start
            .checked_add(buf.len())
            .and_then(|end| self.get(start..end))
            .ok_or_else(|| ReadError::at("read past the end of the file (truncated?)", offset))?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

/// An open file and its length, taken once (a file that shrinks under us gives a short read,
/// which is reported as truncation, never as a shorter database).
pub(crate) struct FileSource<'f> {
    pub file: &'f File,
    pub len: u64,
}

impl Source for FileSource<'_> {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), ReadError> {
        let end = offset.checked_add(buf.len() as u64);
        if end.is_none_or(|e| e > self.len) {
            return Err(ReadError::at(
                "read past the end of the file (truncated?)",
                offset,
            ));
        }
        self.file.read_exact_at(buf, offset).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                ReadError::at("file shrank while being read (truncated?)", offset)
            } else {
                ReadError::Io { offset, source: e }
            }
        })
    }
}

/// Checks a header blob's declared size before it is allocated: `il`/`dl` from its first 8
/// bytes, `len` the length the database stores for it, `offset` where it lives.
pub(crate) fn check_blob(il: u32, dl: u32, len: u64, offset: u64) -> Result<(), ReadError> {
    let (il, dl) = (u64::from(il), u64::from(dl));
    if il == 0 || il > RPM_TAGS_MAX || dl > RPM_DATA_MAX {
        return Err(ReadError::at(
            format!(
                "package header declares {il} index entries and {dl} data bytes, more than rpm \
                 allows ({RPM_TAGS_MAX} and {RPM_DATA_MAX})"
            ),
            offset,
        ));
    }
    let declared = 8 + 16 * il + dl;
    if declared != len {
        return Err(ReadError::at(
            format!(
                "package header declares {declared} bytes ({il} entries, {dl} data bytes) but \
                 the database stores {len}"
            ),
            offset,
        ));
    }
    if len > MAX_BLOB as u64 {
        return Err(ReadError::TooLarge {
            what: format!(
                "package header of {len} bytes is larger than hostready reads ({MAX_BLOB} \
                 bytes, rpm 4.15's limit)"
            ),
            offset,
        });
    }
    Ok(())
}

/// One bit per page: which pages a walk has already reached (a loop in a chain is corruption).
pub(crate) struct Visited(Vec<u64>);

impl Visited {
    pub(crate) fn new(pages: usize) -> Visited {
        Visited(vec![0; pages.div_ceil(64)])
    }

    /// Marks `page`; returns true if and only if it was marked before.
    pub(crate) fn mark(&mut self, page: usize) -> bool {
        let (w, b) = (page / 64, 1u64 << (page % 64));
        let seen = self.0[w] & b != 0;
        self.0[w] |= b;
        seen
    }
}

/// Collects every `(byte offset, header blob)` a scan passes to its callback: the in-memory
/// `parse` of the Berkeley DB and NDB readers.
pub(crate) fn collect_blobs(
    scan: impl FnOnce(&mut dyn FnMut(u64, &[u8]) -> Result<(), ParseError>) -> Result<usize, ParseError>,
) -> Result<Vec<(u64, Vec<u8>)>, ParseError> {
    let mut out = Vec::new();
    scan(&mut |offset, blob| {
        out.push((offset, blob.to_vec()));
        Ok(())
    })?;
    Ok(out)
}
