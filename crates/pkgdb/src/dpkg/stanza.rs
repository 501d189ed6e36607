//! dpkg's `status` format read as dpkg's own parser reads it (`lib/dpkg/parse.c`,
//! `parse_stanza` and `pkg_parse_verify`; the state words of `fields.c`), one line at a time
//! through [`Lines`], keeping only the four fields lookups use.
//!
//! What dpkg refuses is corrupt here too, so damage never reads as "not installed":
//! - a file that ends inside a field (its last line has no `\n`: dpkg's "end of file during
//!   value of field", what a truncated write leaves), a field line without `:`, an empty field
//!   name or one starting with `-`, a line of whitespace inside a value ("blank line in value"),
//!   a known field given twice, a user-defined field name of one character;
//! - a stanza without `Package`, an illegal package name, a `Status` that is not three words
//!   dpkg knows (want, error flag, state), a missing `Version` where dpkg needs one (every state
//!   but `not-installed` and `half-installed`), a malformed version, an invalid `Multi-Arch` or
//!   `Multi-Arch: same` on an `all` or arch-less package.
//!
//! Stricter than dpkg, on purpose (dpkg never writes these, and each is what damage looks like):
//! a NUL byte anywhere, a `status` stanza with no `Status` field (dpkg would take it as
//! not-installed), a kept field longer than [`MAX_VALUE`] bytes, a field name longer than 4 KiB
//! on a line longer than 64 KiB. Not checked: the
//! cross-stanza and trigger consistency rules of `pkg_parse_verify`, duplicate user-defined
//! fields (checking them would mean keeping every field name of a stanza).
//!
//! Memory: the [`Lines`] buffer plus at most [`MAX_VALUE`] bytes for each of the five kept
//! fields, whatever the size of the file or of any line in it.

use std::borrow::Cow;
use std::io::Read;

use super::lines::{self, Line, Lines, LinesError};
use crate::ParseError;

/// The longest `Package`, `Status`, `Version`, `Architecture` or `Multi-Arch` value accepted
/// (real ones are under 100 bytes).
pub(crate) const MAX_VALUE: usize = 4 << 10;

/// dpkg's known fields (`fieldinfos`): each may appear once per stanza ([`kept`] says which
/// are kept); [`known`] maps a name (or one of dpkg's nicknames) to its index.
const KNOWN: [&str; 32] = [
    "Package",
    "Status",
    "Version",
    "Architecture",
    "Essential",
    "Priority",
    "Section",
    "Installed-Size",
    "Origin",
    "Maintainer",
    "Bugs",
    "Multi-Arch",
    "Source",
    "Revision",
    "Config-Version",
    "Replaces",
    "Provides",
    "Depends",
    "Pre-Depends",
    "Recommends",
    "Suggests",
    "Breaks",
    "Conflicts",
    "Enhances",
    "Conffiles",
    "Filename",
    "Size",
    "MD5sum",
    "MSDOS-Filename",
    "Description",
    "Triggers-Pending",
    "Triggers-Awaited",
];

/// Returns the index in [`KNOWN`] of a field name, compared without case as dpkg does, with
/// dpkg's nicknames (`Recommended`, `Optional`, `Class`, `Package-Revision`) mapped to theirs.
/// A `match` on the lowercased bytes: this runs for every field line of the file.
fn known(name: &[u8]) -> Option<usize> {
    let mut low = [0u8; 20];
    if name.len() > low.len() {
        return None;
    }
    let low = &mut low[..name.len()];
    for (l, c) in low.iter_mut().zip(name) {
        *l = c.to_ascii_lowercase();
    }
    Some(match &*low {
        b"package" => 0,
        b"status" => 1,
        b"version" => 2,
        b"architecture" => 3,
        b"essential" => 4,
        b"priority" | b"class" => 5,
        b"section" => 6,
        b"installed-size" => 7,
        b"origin" => 8,
        b"maintainer" => 9,
        b"bugs" => 10,
        b"multi-arch" => 11,
        b"source" => 12,
        b"revision" | b"package-revision" | b"package_revision" => 13,
        b"config-version" => 14,
        b"replaces" => 15,
        b"provides" => 16,
        b"depends" => 17,
        b"pre-depends" => 18,
        b"recommends" | b"recommended" => 19,
        b"suggests" | b"optional" => 20,
        b"breaks" => 21,
        b"conflicts" => 22,
        b"enhances" => 23,
        b"conffiles" => 24,
        b"filename" => 25,
        b"size" => 26,
        b"md5sum" => 27,
        b"msdos-filename" => 28,
        b"description" => 29,
        b"triggers-pending" => 30,
        b"triggers-awaited" => 31,
        _ => return None,
    })
}

/// dpkg's words for the three parts of `Status` (`wantinfos`, `eflaginfos`, `statusinfos`).
const WANT: [&str; 5] = ["unknown", "install", "hold", "deinstall", "purge"];
const EFLAG: [&str; 2] = ["ok", "reinstreq"];
const STATE: [&str; 8] = [
    "not-installed",
    "config-files",
    "half-installed",
    "unpacked",
    "half-configured",
    "triggers-awaited",
    "triggers-pending",
    "installed",
];

/// The fields of one valid stanza that lookups use, values trimmed as dpkg trims them.
#[derive(Debug)]
pub(crate) struct Stanza<'a> {
    /// Byte offset of the stanza's first line in what was read.
    pub offset: u64,
    pub package: &'a str,
    /// The `Status` field; `None` in a `status.d` file, where every stanza is installed.
    pub status: Option<&'a str>,
    pub version: &'a str,
    pub arch: &'a str,
}

/// Reads every stanza of `src`, checking each as dpkg would, and calls `each` with every valid
/// one; returns how many there are. `need_status` is false for `status.d` files, which carry no
/// `Status` field and list installed packages only.
pub(crate) fn read(
    src: impl Read,
    need_status: bool,
    mut each: impl FnMut(&Stanza) -> Result<(), ParseError>,
) -> Result<usize, ReadError> {
    let mut lines = Lines::new(src);
    let mut st = State::default();
    let mut count = 0;
    loop {
        let line = match lines.next_line() {
            Ok(Some(l)) => l,
            Ok(None) => break,
            Err(LinesError::Io(e)) => return Err(ReadError::Io(e)),
            Err(LinesError::Nul(at)) => {
                return Err(ReadError::Parse(ParseError {
                    what: "NUL byte in a text database (zeroed or overwritten)".into(),
                    offset: at,
                }));
            }
        };
        if line.len == 0 {
            if st.in_stanza {
                st.finish(need_status, &mut each)?;
                count += 1;
            }
            continue;
        }
        st.line(&line)?;
    }
    if st.in_stanza {
        st.finish(need_status, &mut each)?;
        count += 1;
    }
    Ok(count)
}

/// Why a stream of stanzas could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    Io(std::io::Error),
    Parse(ParseError),
}

impl From<ParseError> for ReadError {
    fn from(e: ParseError) -> Self {
        ReadError::Parse(e)
    }
}

/// The stanza being read.
struct State {
    in_stanza: bool,
    offset: u64,
    /// Which known fields were seen (a bit per index of [`KNOWN`]).
    seen: u64,
    /// The field whose value the next continuation line extends: its index in [`KNOWN`], or
    /// `None` for a user-defined field.
    current: Option<usize>,
    /// The current field's name, for messages (its first 64 bytes, and their number).
    name_buf: [u8; 64],
    name_len: usize,
    /// Kept values: Package, Status, Version, Architecture, Multi-Arch.
    values: [Vec<u8>; 5],
}

impl Default for State {
    fn default() -> Self {
        State {
            in_stanza: false,
            offset: 0,
            seen: 0,
            current: None,
            name_buf: [0; 64],
            name_len: 0,
            values: Default::default(),
        }
    }
}

impl State {
    fn err(&self, what: String, offset: u64) -> ParseError {
        ParseError { what, offset }
    }

    /// Takes one non-empty line.
    fn line(&mut self, line: &Line) -> Result<(), ParseError> {
        let first = line.head[0];
        if lines::is_space(first) {
            if !self.in_stanza {
                return Err(self.err(
                    "line starts with whitespace outside a field (empty field name)".into(),
                    line.offset,
                ));
            }
            // A line of whitespace inside a value is only a warning for dpkg 1.21 ("blank line
            // in value of field"), so it continues the field here too; between two stanzas it
            // makes them one, and the second's `Package` is then a duplicate, as for dpkg.
            if !line.terminated {
                return Err(self.eof_in_value(line.offset));
            }
            if let Some(k) = self.current.and_then(kept) {
                if line.cut() || self.values[k].len() + 1 + line.head.len() > MAX_VALUE {
                    return Err(self.too_long(line.offset));
                }
                self.values[k].push(b'\n');
                self.values[k].extend_from_slice(line.head);
            }
            return Ok(());
        }
        if !self.in_stanza {
            self.in_stanza = true;
            self.offset = line.offset;
            self.seen = 0;
            self.values.iter_mut().for_each(Vec::clear);
        }
        let h = line.head;
        let name_len = h
            .iter()
            .position(|&b| lines::is_space(b) || b == b':')
            .unwrap_or(h.len());
        let name = &h[..name_len];
        self.name_len = name.len().min(64);
        self.name_buf[..self.name_len].copy_from_slice(&name[..self.name_len]);
        if name_len == 0 {
            return Err(self.err("empty field name".into(), line.offset));
        }
        if name[0] == b'-' {
            return Err(self.err(
                format!("field name {:?} cannot start with hyphen", self.name()),
                line.offset,
            ));
        }
        let mut i = name_len;
        while i < h.len() && lines::is_space(h[i]) {
            i += 1;
        }
        if i == h.len() {
            if line.cut() {
                return Err(self.err("field name longer than 4 KiB".into(), line.offset));
            }
            let what = if line.terminated {
                "newline in field name"
            } else {
                "end of file after field name"
            };
            return Err(self.err(format!("{what} {:?} (no colon)", self.name()), line.offset));
        }
        if h[i] != b':' {
            return Err(self.err(
                format!("field name {:?} must be followed by colon", self.name()),
                line.offset,
            ));
        }
        let known = known(name);
        if let Some(k) = known {
            if self.seen & (1 << k) != 0 {
                return Err(self.err(
                    format!("duplicate value for field {:?}", KNOWN[k]),
                    line.offset,
                ));
            }
            self.seen |= 1 << k;
        } else if name.len() < 2 {
            return Err(self.err(
                format!("user-defined field name {:?} too short", self.name()),
                line.offset,
            ));
        }
        self.current = known;
        if !line.terminated {
            let rest = &h[i + 1..];
            if rest.iter().all(|&b| lines::is_space(b)) {
                return Err(self.err(
                    format!(
                        "end of file before value of field {:?} (missing final newline)",
                        self.name()
                    ),
                    line.offset,
                ));
            }
            return Err(self.eof_in_value(line.offset));
        }
        if let Some(k) = known.and_then(kept) {
            if line.cut() || h.len() - i - 1 > MAX_VALUE {
                return Err(self.too_long(line.offset));
            }
            self.values[k].extend_from_slice(h[i + 1..].trim_ascii_start());
        }
        Ok(())
    }

    fn name(&self) -> String {
        String::from_utf8_lossy(&self.name_buf[..self.name_len]).into_owned()
    }

    fn eof_in_value(&self, offset: u64) -> ParseError {
        self.err(
            format!(
                "end of file during value of field {:?} (missing final newline: truncated?)",
                self.name()
            ),
            offset,
        )
    }

    fn too_long(&self, offset: u64) -> ParseError {
        self.err(
            format!(
                "value of field {:?} longer than {MAX_VALUE} bytes",
                self.name()
            ),
            offset,
        )
    }

    /// Checks the finished stanza as dpkg's `pkg_parse_verify` would and hands it on.
    fn finish(
        &mut self,
        need_status: bool,
        each: &mut impl FnMut(&Stanza) -> Result<(), ParseError>,
    ) -> Result<(), ParseError> {
        self.in_stanza = false;
        self.current = None;
        let at = self.offset;
        let [package, status, version, arch, multi_arch] = &self.values;
        // Borrowed from the kept values (copied only where a name has upper case or a value
        // is not UTF-8): this runs for every stanza of a `status` of tens of thousands.
        fn text(v: &[u8]) -> Cow<'_, str> {
            String::from_utf8_lossy(v.trim_ascii())
        }
        if self.seen & 1 == 0 {
            return Err(self.err("stanza without a Package field".into(), at));
        }
        // dpkg keeps package names in lower case (`pkg_db_find_set`), and so does every list.
        let mut name = text(package);
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            name = Cow::Owned(name.to_ascii_lowercase());
        }
        if let Some(why) = illegal_name(&name) {
            return Err(self.err(format!("invalid package name {name:?}: {why}"), at));
        }
        let status = text(status);
        let state = if self.seen & 2 != 0 {
            check_status(&name, &status).map_err(|w| self.err(w, at))?;
            Some(&*status)
        } else if need_status {
            return Err(self.err(format!("package {name} has no Status field"), at));
        } else {
            None
        };
        let word3 = state.and_then(|s| s.split_ascii_whitespace().nth(2));
        let version = text(version);
        if self.seen & 4 != 0 || !matches!(word3, Some("not-installed" | "half-installed")) {
            if let Some(why) = bad_version(&version) {
                return Err(self.err(
                    format!("package {name} has an invalid Version {version:?}: {why}"),
                    at,
                ));
            }
        }
        // dpkg 1.21 accepts any Architecture value in `status` (only warning when it is empty),
        // but not `Multi-Arch: same` without a real one (`pkg_parse_verify`).
        let arch = text(arch);
        if self.seen & (1 << 11) != 0 {
            let m = text(multi_arch);
            if !["no", "same", "foreign", "allowed"].contains(&&*m) {
                return Err(self.err(
                    format!("package {name} has an invalid Multi-Arch {m:?}"),
                    at,
                ));
            }
            if m == "same" && (arch.is_empty() || arch == "all") {
                return Err(self.err(
                    format!("package {name} has Multi-Arch: same but architecture {arch:?}"),
                    at,
                ));
            }
        }
        each(&Stanza {
            offset: at,
            package: &name,
            status: state,
            version: &version,
            arch: &arch,
        })
    }
}

/// Returns where a kept field's value goes in `State::values`, for the indexes of [`KNOWN`].
fn kept(field: usize) -> Option<usize> {
    match field {
        0..=3 => Some(field),
        11 => Some(4),
        _ => None,
    }
}

/// Returns why dpkg would refuse `name` as a package name (`pkg_name_is_illegal`).
fn illegal_name(name: &str) -> Option<&'static str> {
    let b = name.as_bytes();
    match b.first() {
        None => Some("empty"),
        Some(c) if !c.is_ascii_alphanumeric() => Some("must start with a letter or digit"),
        _ if b
            .iter()
            .any(|&c| !c.is_ascii_alphanumeric() && !b"-+._".contains(&c)) =>
        {
            Some("only letters, digits and -+._ are allowed")
        }
        _ => None,
    }
}

/// Checks that `Status` is three words dpkg knows: want, error flag, state.
fn check_status(name: &str, status: &str) -> Result<(), String> {
    let mut split = status.split_ascii_whitespace();
    let words: [&str; 3] = [(); 3].map(|_| split.next().unwrap_or(""));
    if words.contains(&"") || split.next().is_some() {
        return Err(format!(
            "package {name} has malformed Status {status:?} (not three words)"
        ));
    }
    for (word, known, part) in [
        (words[0], &WANT[..], "first (want)"),
        (words[1], &EFLAG[..], "second (error flag)"),
        (words[2], &STATE[..], "third (state)"),
    ] {
        if !known.contains(&word) {
            return Err(format!(
                "package {name} has malformed Status {status:?}: {word:?} is not a dpkg \
                 {part} word ({})",
                known.join(", ")
            ));
        }
    }
    Ok(())
}

/// Returns why dpkg's `parseversion` would refuse `v` (its errors, not its warnings).
fn bad_version(v: &str) -> Option<&'static str> {
    if v.is_empty() {
        return Some("empty or missing");
    }
    if v.bytes().any(lines::is_space) {
        return Some("embedded whitespace");
    }
    let rest = match v.split_once(':') {
        Some((epoch, rest)) => {
            if epoch.is_empty() || !epoch.bytes().all(|b| b.is_ascii_digit()) {
                return Some("epoch is not a number");
            }
            if epoch.parse::<i32>().is_err() {
                return Some("epoch is too big");
            }
            if rest.is_empty() {
                return Some("nothing after the epoch's colon");
            }
            rest
        }
        None => v,
    };
    match rest.rsplit_once('-') {
        Some((upstream, revision)) if upstream.is_empty() || revision.is_empty() => {
            Some("empty upstream version or revision")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every stanza as (package, status, version, arch).
    fn stanzas(text: &str) -> Result<Vec<[String; 4]>, ReadError> {
        let mut out = Vec::new();
        read(text.as_bytes(), true, |s| {
            let status = s.status.unwrap_or_default().to_string();
            out.push([s.package.into(), status, s.version.into(), s.arch.into()]);
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn values_are_trimmed_and_names_lowered_as_dpkg_keeps_them() {
        let got = stanzas(
            "Package: LibFoo\nStatus:  install ok installed \nVersion:\t1.0-1\nArchitecture: amd64\n\n\
             Package: bar\nStatus: deinstall ok config-files\nVersion: 2\nArchitecture: all\n",
        )
        .unwrap();
        assert_eq!(
            got,
            [
                ["libfoo", "install ok installed", "1.0-1", "amd64"].map(String::from),
                ["bar", "deinstall ok config-files", "2", "all"].map(String::from),
            ]
        );
    }

    #[test]
    fn a_status_of_other_than_three_known_words_is_refused() {
        for status in [
            "install ok",
            "install ok installed extra",
            "install ok done",
            "",
        ] {
            let text = format!("Package: a\nStatus: {status}\nVersion: 1\n");
            match stanzas(&text) {
                Err(ReadError::Parse(e)) => assert!(e.what.contains("malformed Status"), "{e:?}"),
                other => panic!("{status:?}: {other:?}"),
            }
        }
    }
}
