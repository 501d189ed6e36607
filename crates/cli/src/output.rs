//! How results are printed: the `-o/--output` and `--color` flags shared by every subcommand
//! (each defined once, here, with its test below), the terminal width long lines are fitted
//! to, and the one place where text from the host is made safe for a terminal.
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
    /// A table for people (coloured as `--color` says).
    #[default]
    Table,
    /// One JSON document.
    Json,
    /// One YAML document.
    Yaml,
}

/// The `-o/--output` flag of every subcommand that prints data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
pub struct OutputArgs {
    /// How to print the result: a table for people, or JSON or YAML for programs (the same
    /// data; see docs/report-schema.md).
    #[arg(
        id = "output",
        long = "output",
        short = 'o',
        value_enum,
        value_name = "FORMAT",
        default_value_t = Format::Table
    )]
    pub format: Format,
}

/// When tables are coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorWhen {
    /// On a terminal, unless NO_COLOR is set (or CLICOLOR=0, or TERM=dumb).
    #[default]
    Auto,
    /// Always, even into a pipe and whatever NO_COLOR says.
    Always,
    /// Never.
    Never,
}

/// The `--color` flag, global: it may be given before or after the subcommand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
pub struct ColorArgs {
    /// When to colour tables: `auto` (on a terminal, unless NO_COLOR is set), `always`,
    /// `never`. The host's own text is escaped whatever this says.
    // Listed after each subcommand's own flags: it is everyone's, and rarely the one looked for.
    #[arg(
        long,
        value_enum,
        value_name = "WHEN",
        default_value_t,
        global = true,
        display_order = 900
    )]
    pub color: ColorWhen,
}

impl ColorArgs {
    /// Makes this choice the one [`color`] answers with, for the rest of the process.
    pub fn apply(self) {
        anstream::ColorChoice::write_global(match self.color {
            ColorWhen::Auto => anstream::ColorChoice::Auto,
            ColorWhen::Always => anstream::ColorChoice::Always,
            ColorWhen::Never => anstream::ColorChoice::Never,
        });
    }
}

/// Returns true if and only if tables on stdout are coloured: `--color always`, or `auto`
/// on a terminal with NO_COLOR unset or empty (anstream's rules: CLICOLOR, CLICOLOR_FORCE and
/// TERM=dumb count too).
pub fn color() -> bool {
    anstream::AutoStream::choice(&io::stdout()) != anstream::ColorChoice::Never
}

/// Returns the width long lines are fitted to: `COLUMNS` when set, else the terminal's when
/// stdout is one; `None` (lines left whole) when stdout is a pipe or a file, so a `grep` of
/// the output finds a whole `fix:` line.
pub fn width() -> Option<usize> {
    if let Some(n) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
    {
        return Some(n);
    }
    terminal_size::terminal_size_of(io::stdout()).map(|(w, _)| usize::from(w.0))
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
    fn ansi(self) -> anstyle::Style {
        use anstyle::AnsiColor;
        let c = match self {
            Style::Green => AnsiColor::Green,
            Style::Yellow => AnsiColor::Yellow,
            Style::Red => AnsiColor::Red,
            Style::Magenta => AnsiColor::Magenta,
        };
        anstyle::Style::new().fg_color(Some(c.into()))
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
    width: Option<usize>,
}

/// Returns a buffered [`Text`] on stdout, fitting [`Text::wrapped`] lines to [`width`].
pub fn stdout() -> Text<io::BufWriter<io::StdoutLock<'static>>> {
    Text::new(io::BufWriter::with_capacity(64 * 1024, io::stdout().lock())).with_width(width())
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
            width: None,
        }
    }

    /// Fits [`Text::wrapped`] lines to `width` columns (`None`: never wraps).
    pub fn with_width(mut self, width: Option<usize>) -> Text<W> {
        self.width = width;
        self
    }

    /// Writes `indent`, `label` and `text` (escaped) as one line, or, when that is wider than
    /// the width, as several broken at spaces, each continuation indented under the text's
    /// first column. A word wider than the line stays whole (a package or command name must
    /// stay copyable). Widths count characters: hostready's own text is ASCII, and the host's
    /// is escaped to ASCII controls first.
    ///
    /// By hand: the only word wrap in the tree is clap's private one, and this one needs the
    /// escaping applied before measuring.
    pub fn wrapped(&mut self, indent: &str, label: &str, text: &str) -> io::Result<()> {
        let text = escape(text);
        let (indent, label) = (escape(indent), escape(label));
        let lead = indent.chars().count() + label.chars().count();
        let room = self.width.map(|w| w.saturating_sub(lead).max(20));
        let mut line = String::new();
        let mut first = true;
        for word in text.split(' ').filter(|w| !w.is_empty()) {
            let fits = room.is_none_or(|r| {
                line.is_empty() || line.chars().count() + 1 + word.chars().count() <= r
            });
            if !fits {
                self.end_wrapped_line(&indent, &label, &line, first)?;
                first = false;
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        self.end_wrapped_line(&indent, &label, &line, first)
    }

    fn end_wrapped_line(
        &mut self,
        indent: &str,
        label: &str,
        line: &str,
        first: bool,
    ) -> io::Result<()> {
        let w = &mut self.inner;
        w.write_all(indent.as_bytes())?;
        if first {
            w.write_all(label.as_bytes())?;
        } else {
            w.write_all(" ".repeat(label.chars().count()).as_bytes())?;
        }
        w.write_all(line.as_bytes())?;
        w.write_all(b"\n")
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
        let style = if color {
            style.ansi()
        } else {
            anstyle::Style::new()
        };
        write!(
            self.inner,
            "{}{}{}",
            style.render(),
            escape(text),
            style.render_reset()
        )
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
    fn wrapped_lines_fit_the_width_and_keep_words_whole() {
        let fix = "install open-iscsi, which provides iscsiadm, and enable iscsid.socket so that it starts on demand";
        let mut t = Text::new(Vec::new()).with_width(Some(40));
        t.wrapped("    ", "fix: ", fix).unwrap();
        let out = String::from_utf8(t.into_inner()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines.len() > 1, "{out}");
        assert!(lines[0].starts_with("    fix: install"), "{out}");
        for l in &lines[1..] {
            assert!(
                l.starts_with("         ") && !l.starts_with("          "),
                "{out}"
            );
        }
        assert!(lines.iter().all(|l| l.chars().count() <= 40), "{out}");
        let words: Vec<&str> = lines.iter().flat_map(|l| l.split_whitespace()).collect();
        assert_eq!(words[1..].join(" "), fix, "nothing lost or split");

        // No width (a pipe): one line, as before.
        let mut t = Text::new(Vec::new());
        t.wrapped("  ", "fix: ", fix).unwrap();
        assert_eq!(
            String::from_utf8(t.into_inner()).unwrap(),
            format!("  fix: {fix}\n")
        );

        // A word longer than the room stays whole; host text is escaped before it is measured.
        let mut t = Text::new(Vec::new()).with_width(Some(30));
        t.wrapped("", "fix: ", &format!("run {} now\x1b[2J", "x".repeat(50)))
            .unwrap();
        let out = String::from_utf8(t.into_inner()).unwrap();
        assert!(out.contains(&"x".repeat(50)), "{out}");
        assert!(!out.contains('\x1b') && out.contains("\\x1b[2J"), "{out:?}");
    }

    #[test]
    fn output_flag_is_table_json_or_yaml() {
        use clap::Parser;
        #[derive(Debug, Parser)]
        struct Cli {
            #[command(flatten)]
            output: OutputArgs,
            #[command(flatten)]
            color: ColorArgs,
        }
        let parse = |a: &[&str]| Cli::try_parse_from(std::iter::once("t").chain(a.iter().copied()));
        assert_eq!(parse(&[]).unwrap().output.format, Format::Table);
        assert_eq!(parse(&["-o", "json"]).unwrap().output.format, Format::Json);
        assert_eq!(
            parse(&["--output", "yaml"]).unwrap().output.format,
            Format::Yaml
        );
        assert!(parse(&["-o", "xml"]).is_err());
        assert_eq!(parse(&[]).unwrap().color.color, ColorWhen::Auto);
        assert_eq!(
            parse(&["--color", "never"]).unwrap().color.color,
            ColorWhen::Never
        );
        assert_eq!(
            parse(&["--color", "always"]).unwrap().color.color,
            ColorWhen::Always
        );
        assert!(parse(&["--color", "sometimes"]).is_err());
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
