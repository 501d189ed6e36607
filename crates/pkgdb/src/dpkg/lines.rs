//! Lines of a text file read through one fixed buffer, so that reading dpkg's `status` (tens of
//! MB on a large host) holds [`BUF`] bytes whatever the file's size.
//!
//! A line longer than the buffer is not kept: its first [`HEAD`] bytes are, together with its
//! length, which is all the stanza parser needs to
//! classify it and to refuse a field it keeps that long (no real `Package`, `Status`, `Version`
//! or `Architecture` value comes near). Real lines that long exist (the `Provides` of some
//! `librust-*-dev` packages is hundreds of KB) and are skipped, never stored.

use std::io::{self, Read};

/// Size of the read buffer: the most of a file held at once.
pub(crate) const BUF: usize = 64 << 10;

/// How much of a line longer than [`BUF`] is kept.
pub(crate) const HEAD: usize = 4 << 10;

/// One line, without its `\n`.
#[derive(Debug)]
pub(crate) struct Line<'a> {
    /// Byte offset of the line's first byte in the file.
    pub offset: u64,
    /// The whole line, or its first [`HEAD`] bytes when it is longer than [`BUF`].
    pub head: &'a [u8],
    /// The line's length, without the `\n`.
    pub len: u64,
    /// True if and only if a `\n` ends it (false only for the file's last line).
    pub terminated: bool,
}

impl Line<'_> {
    /// Returns true if and only if `head` is not the whole line.
    pub fn cut(&self) -> bool {
        (self.head.len() as u64) < self.len
    }
}

/// Returns true for the bytes C's `isspace` accepts, as dpkg's parser uses it.
pub(crate) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// A reader of lines with a fixed buffer; NUL bytes are reported, since dpkg never writes them
/// and a zeroed block is the commonest damage a crash leaves in a text file.
pub(crate) struct Lines<R> {
    src: R,
    buf: Vec<u8>,
    long: Vec<u8>,
    /// Start of the unread part of `buf`.
    pos: usize,
    /// End of the bytes read into `buf`.
    end: usize,
    /// File offset of `buf[0]`.
    base: u64,
    eof: bool,
}

/// Why reading lines stopped.
#[derive(Debug)]
pub(crate) enum LinesError {
    Io(io::Error),
    /// A NUL byte at this file offset.
    Nul(u64),
}

impl From<io::Error> for LinesError {
    fn from(e: io::Error) -> Self {
        LinesError::Io(e)
    }
}

enum Found {
    /// `buf[start..start + len]`.
    Short { start: usize, len: usize, nl: bool },
    /// In `long`: a line of `len` bytes.
    Long { len: u64, nl: bool },
}

impl<R: Read> Lines<R> {
    pub fn new(src: R) -> Lines<R> {
        Lines {
            src,
            buf: vec![0; BUF],
            long: Vec::new(),
            pos: 0,
            end: 0,
            base: 0,
            eof: false,
        }
    }

    /// Returns the next line, or `None` at the end of the file.
    pub fn next_line(&mut self) -> Result<Option<Line<'_>>, LinesError> {
        let mut offset = self.base + self.pos as u64;
        let found = loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.pos..self.end]) {
                let start = self.pos;
                self.pos += i + 1;
                break Found::Short {
                    start,
                    len: i,
                    nl: true,
                };
            }
            if self.eof {
                if self.pos == self.end {
                    return Ok(None);
                }
                let (start, len) = (self.pos, self.end - self.pos);
                self.pos = self.end;
                break Found::Short {
                    start,
                    len,
                    nl: false,
                };
            }
            if self.pos > 0 {
                self.buf.copy_within(self.pos..self.end, 0);
                self.base += self.pos as u64;
                self.end -= self.pos;
                self.pos = 0;
            }
            if self.end == self.buf.len() {
                offset = self.base;
                break self.skip_long()?;
            }
            self.fill()?;
        };
        Ok(Some(match found {
            Found::Short { start, len, nl } => Line {
                offset,
                head: &self.buf[start..start + len],
                len: len as u64,
                terminated: nl,
            },
            Found::Long { len, nl } => Line {
                offset,
                head: &self.long,
                len,
                terminated: nl,
            },
        }))
    }

    /// Reads more bytes after `end`; sets `eof` when there are none.
    fn fill(&mut self) -> Result<(), LinesError> {
        let n = loop {
            match self.src.read(&mut self.buf[self.end..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
        };
        if let Some(i) = memchr::memchr(0, &self.buf[self.end..self.end + n]) {
            return Err(LinesError::Nul(self.base + (self.end + i) as u64));
        }
        self.end += n;
        self.eof = n == 0;
        Ok(())
    }

    /// The whole buffer is the start of one line: keeps its head and reads past its end,
    /// reusing the buffer.
    fn skip_long(&mut self) -> Result<Found, LinesError> {
        self.long.clear();
        self.long.extend_from_slice(&self.buf[..HEAD]);
        let mut len = self.end as u64;
        loop {
            self.base += self.end as u64;
            self.pos = 0;
            self.end = 0;
            self.fill()?;
            if self.eof {
                return Ok(Found::Long { len, nl: false });
            }
            let chunk = &self.buf[..self.end];
            match memchr::memchr(b'\n', chunk) {
                Some(i) => {
                    len += i as u64;
                    self.pos = i + 1;
                    return Ok(Found::Long { len, nl: true });
                }
                None => len += self.end as u64,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(bytes: &[u8]) -> Vec<(u64, Vec<u8>, u64, bool)> {
        let mut l = Lines::new(bytes);
        let mut out = Vec::new();
        while let Some(x) = l.next_line().unwrap() {
            out.push((x.offset, x.head.to_vec(), x.len, x.terminated));
        }
        out
    }

    #[test]
    fn lines_offsets_and_the_last_unterminated_line() {
        let got = all(b"ab\n\n  \ncd");
        assert_eq!(
            got,
            [
                (0, b"ab".to_vec(), 2, true),
                (3, vec![], 0, true),
                (4, b"  ".to_vec(), 2, true),
                (7, b"cd".to_vec(), 2, false),
            ]
        );
    }

    #[test]
    fn a_line_longer_than_the_buffer_keeps_only_its_head() {
        let mut text = b"x\n".to_vec();
        text.extend(std::iter::repeat_n(b'a', 3 * BUF + 5));
        text.extend_from_slice(b"\nend\n");
        let got = all(&text);
        assert_eq!(got.len(), 3);
        assert_eq!(got[1].0, 2);
        assert_eq!(got[1].1.len(), HEAD);
        assert_eq!(got[1].2, 3 * BUF as u64 + 5);
        assert_eq!(got[2], (3 * BUF as u64 + 8, b"end".to_vec(), 3, true));
        // Lines of every length around the buffer's size come out whole and in place.
        for n in [BUF - 2, BUF - 1, BUF, BUF + 1] {
            let mut t = vec![b' '; n];
            t.extend_from_slice(b"\nz");
            let got = all(&t);
            assert_eq!((got[0].2, got[0].3), (n as u64, true), "{n}");
            assert_eq!(got[1].0, n as u64 + 1, "{n}");
        }
    }

    #[test]
    fn a_nul_byte_is_reported_where_it_is() {
        let mut text = vec![b'a'; BUF + 10];
        text[BUF + 3] = 0;
        let mut l = Lines::new(&text[..]);
        match l.next_line() {
            Err(LinesError::Nul(at)) => assert_eq!(at, BUF as u64 + 3),
            other => panic!("{other:?}"),
        }
    }
}
