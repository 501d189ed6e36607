//! How results are printed: the `--output` choice shared by every subcommand, and the one
//! place where text from the host is made safe for a terminal.
//!
//! Much of what hostready prints is written by someone else: process command lines (any user
//! can start a process whose argv holds ANSI escapes), a root's `os-release`, a command
//! probe's output, package names and versions from a database, node conditions from the API
//! server. Printed raw, an escape sequence repaints the screen (a forged green `PASS`), a
//! newline forges whole finding lines, and a bidi override reorders what is shown. So every
//! table goes through [`Text`], which escapes every control character of what it is given —
//! C0 (newline, tab and ESC included), DEL, C1 (U+0080–U+009F) and the bidi embeddings,
//! overrides and isolates (U+202A–U+202E, U+2066–U+2069) — leaving one trailing newline per
//! write as the line's end. Styling (colour) is written by [`Text::styled`] from a closed set
//! of styles, so the only escape sequences that reach the terminal are ours. A caller cannot
//! forget: [`Text`] is the only writer the table printers accept, and what it prints is escaped
//! whether the caller thought of it or not (a `\n` inside a format string shows as `\n`).
//!
//! JSON is escaped by serde_json for C0, `"` and `\`; [`print_data`] also writes DEL, C1 and the
//! bidi controls as `\uXXXX` (the same string to a JSON reader). YAML: serde_yaml_ng
//! double-quotes and escapes C0, DEL and C1 (`\e`, `\x9B`, `\N`), and a value with newlines
//! becomes an indented block scalar, so no line of data starts a line of the document; bidi
//! controls it leaves as they are (YAML has no escape for them outside quotes; they reorder
//! display, they cannot inject). `tests/terminal_injection.rs` holds all of this.

use std::borrow::Cow;
use std::fmt;
use std::io::{self, Write};

use serde::Serialize;

/// The `--output` formats every subcommand offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// A table for people (colour on a terminal unless NO_COLOR is set).
    #[default]
    Table,
    /// One JSON document.
    Json,
    /// One YAML document.
    Yaml,
}

/// Writes `value` as JSON or YAML to stdout; tables are each subcommand's own business.
pub fn print_data<T: Serialize>(format: Format, value: &T) -> anyhow::Result<()> {
    // Buffered: stdout's line buffering would make one write(2) per line of a report.
    let mut out = io::BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    write_data(&mut out, format, value)?;
    out.flush()?;
    Ok(())
}

/// Writes `value` as JSON (pretty, with [`escape`]'s characters as `\uXXXX`) or YAML to `out`.
pub fn write_data<T: Serialize>(
    out: &mut impl Write,
    format: Format,
    value: &T,
) -> anyhow::Result<()> {
    match format {
        Format::Json => {
            let mut ser = serde_json::Serializer::with_formatter(
                &mut *out,
                SafeJson(serde_json::ser::PrettyFormatter::new()),
            );
            value.serialize(&mut ser)?;
            writeln!(out)?;
        }
        Format::Yaml => serde_yaml_ng::to_writer(out, value)?,
        Format::Table => unreachable!("tables are printed by each subcommand"),
    }
    Ok(())
}

/// Returns true if and only if `c` must not reach a terminal raw (see the module header).
pub fn is_unsafe(c: char) -> bool {
    matches!(c, '\0'..='\x1f' | '\x7f'..='\u{9f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Returns `s` with every character [`is_unsafe`] says must not reach a terminal written as
/// an escape: `\n`, `\r`, `\t`, `\x1b` (C0 and DEL), `\u{9b}` (C1 and bidi controls).
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c <= '\x7f' && is_unsafe(c) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if is_unsafe(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Colours [`Text::styled`] writes: the only escape sequences hostready itself prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Green,
    Yellow,
    Red,
    Magenta,
}

impl Style {
    fn sgr(self) -> &'static str {
        match self {
            Style::Green => "32",
            Style::Yellow => "33",
            Style::Red => "31",
            Style::Magenta => "35",
        }
    }
}

/// A text writer for people: everything written through it is escaped (see the module
/// header) except one trailing newline per write, which ends the line.
///
/// `write!`/`writeln!` work on it as on any writer. Each write is formatted whole, then
/// escaped: so write a line's end as the end of a `writeln!`, never inside its format string.
#[derive(Debug)]
pub struct Text<W: Write> {
    inner: W,
    buf: String,
}

/// Returns a buffered [`Text`] on stdout.
pub fn stdout() -> Text<io::BufWriter<io::StdoutLock<'static>>> {
    Text::new(io::BufWriter::with_capacity(64 * 1024, io::stdout().lock()))
}

/// Returns a [`Text`] on stderr.
pub fn stderr() -> Text<io::StderrLock<'static>> {
    Text::new(io::stderr().lock())
}

impl<W: Write> Text<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Text<W> {
        Text {
            inner,
            buf: String::new(),
        }
    }

    /// Formats `args` and writes it escaped; a single trailing newline is written as one.
    pub fn write_fmt(&mut self, args: fmt::Arguments<'_>) -> io::Result<()> {
        self.buf.clear();
        fmt::Write::write_fmt(&mut self.buf, args)
            .map_err(|_| io::Error::other("formatting failed"))?;
        let (body, end) = match self.buf.strip_suffix('\n') {
            Some(b) => (b, true),
            None => (self.buf.as_str(), false),
        };
        self.inner.write_all(escape(body).as_bytes())?;
        if end {
            self.inner.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Writes `text` escaped, in `style` when `color` (plain otherwise).
    pub fn styled(&mut self, style: Style, color: bool, text: &str) -> io::Result<()> {
        if color {
            write!(self.inner, "\x1b[{}m", style.sgr())?;
        }
        self.inner.write_all(escape(text).as_bytes())?;
        if color {
            self.inner.write_all(b"\x1b[0m")?;
        }
        Ok(())
    }

    /// Flushes the writer underneath.
    pub fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }

    /// Returns the writer underneath.
    #[cfg(test)]
    pub fn into_inner(self) -> W {
        self.inner
    }
}

/// serde_json's pretty formatter, which also writes DEL, C1 and the bidi controls as
/// `\uXXXX` (serde_json escapes only C0, `"` and `\`).
struct SafeJson(serde_json::ser::PrettyFormatter<'static>);

impl serde_json::ser::Formatter for SafeJson {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut rest = fragment;
        while let Some(i) = rest.find(is_unsafe) {
            writer.write_all(&rest.as_bytes()[..i])?;
            let c = rest[i..].chars().next().expect("found at i");
            write!(writer, "\\u{:04x}", c as u32)?;
            rest = &rest[i + c.len_utf8()..];
        }
        writer.write_all(rest.as_bytes())
    }

    // The rest is PrettyFormatter's.
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str =
        "a\x1b[32mPASS\x1b[0m\nPASS exe.x ok\r\t\x07\x7f\u{9b}31m\u{85}\u{202e}cba\u{2066}é";

    #[test]
    fn every_control_character_is_escaped() {
        assert_eq!(
            escape(HOSTILE),
            "a\\x1b[32mPASS\\x1b[0m\\nPASS exe.x ok\\r\\t\\x07\\x7f\\u{9b}31m\\u{85}\\u{202e}cba\\u{2066}é"
        );
        assert!(matches!(escape("plain é ✓"), Cow::Borrowed(_)));
        for c in ('\0'..='\u{2100}').filter(|c| is_unsafe(*c)) {
            let e = escape(&c.to_string()).into_owned();
            assert!(
                e.starts_with('\\') && !e.chars().any(is_unsafe),
                "{c:?} -> {e}"
            );
        }
    }

    #[test]
    fn text_escapes_data_but_keeps_line_ends_and_our_colours() {
        let mut t = Text::new(Vec::new());
        writeln!(t, "id {HOSTILE}").unwrap();
        t.styled(Style::Green, true, "PASS").unwrap();
        t.styled(Style::Red, false, "\x1bFAIL").unwrap();
        writeln!(t).unwrap();
        write!(t, "a\nb").unwrap();
        let out = String::from_utf8(t.into_inner()).unwrap();
        let lines: Vec<&str> = out.split('\n').collect();
        assert_eq!(lines.len(), 3, "{out:?}");
        assert!(lines[0].starts_with("id a\\x1b[32mPASS"), "{out:?}");
        assert_eq!(lines[1], "\x1b[32mPASS\x1b[0m\\x1bFAIL");
        assert_eq!(lines[2], "a\\nb");
        // The only ESC bytes are our colour's.
        assert_eq!(out.matches('\x1b').count(), 2, "{out:?}");
    }

    #[test]
    fn json_escapes_every_control_and_reads_back_the_same() {
        let mut buf = Vec::new();
        write_data(&mut buf, Format::Json, &vec![HOSTILE]).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(
            !text.trim_end().chars().any(|c| is_unsafe(c) && c != '\n'),
            "{text:?}"
        );
        assert!(
            text.contains("\\u001b[32mPASS")
                && text.contains("\\u009b")
                && text.contains("\\u202e"),
            "{text}"
        );
        let back: Vec<String> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, [HOSTILE]);
    }

    #[test]
    fn yaml_quotes_c0_del_and_c1_and_keeps_newlines_inside_an_indented_block() {
        let mut buf = Vec::new();
        let v = std::collections::BTreeMap::from([("message", "x\x1b[32mPASS\x7f\u{9b}\u{85}\rz")]);
        write_data(&mut buf, Format::Yaml, &v).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(
            !text.trim_end().chars().any(|c| is_unsafe(c) && c != '\n'),
            "{text:?}"
        );
        assert!(
            text.contains(r#"message: "x\e[32mPASS\x7F\x9B\N\rz""#),
            "{text}"
        );
        let v = std::collections::BTreeMap::from([("message", "one\nPASS forged")]);
        let mut buf = Vec::new();
        write_data(&mut buf, Format::Yaml, &v).unwrap();
        let text = String::from_utf8(buf).unwrap();
        // The data's second line is indented inside the block scalar: it cannot pose as a key.
        assert!(text.lines().skip(1).all(|l| l.starts_with("  ")), "{text}");
        let back: std::collections::BTreeMap<String, String> =
            serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(back["message"], "one\nPASS forged");
    }
}
