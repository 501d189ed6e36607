//! A cheap, linear scan of a profile's YAML text before the parser sees it, bounding how deeply
//! collections nest.
//!
//! Why by hand: the YAML parser under serde_yaml_ng (libyaml) spends time proportional to the
//! flow nesting depth on every token, so a 200 KB file of `[[[[...` takes minutes before
//! serde's recursion limit (128) ever trips, and it has no option to bound depth while
//! scanning. This scan follows just enough of YAML's syntax — block indentation, `- `/`? `/`key:`
//! indicators, flow brackets, quoted scalars, block scalars, comments and all of libyaml's line
//! breaks — to over-estimate, never under-estimate, the nesting depth of the text, and refuses a
//! text deeper than the limit with the line and column where it got too deep. A text it accepts
//! is parsed in time linear in its size.

/// How deeply a profile may nest collections. Real profiles nest five deep (the document's
/// mapping, `requirements`, one requirement, `cpu_flags`, its list).
pub const MAX_DEPTH: usize = 32;

/// Where a text nests deeper than allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooDeep {
    /// 1-based, counting lines as libyaml does.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
}

/// Returns an upper bound of the collection nesting depth of the YAML `text` (aliases not
/// expanded), or the place where it first exceeds `max`.
pub fn nesting_depth(text: &str, max: usize) -> Result<usize, TooDeep> {
    let mut s = Scanner {
        max,
        block: Vec::new(),
        flow: 0,
        deepest: 0,
        quote: None,
        block_scalar: None,
        plain: None,
        flow_start: true,
        flow_json: false,
    };
    for (n, line) in lines(text).enumerate() {
        s.line(line).map_err(|at| TooDeep {
            line: n + 1,
            column: line[..at].chars().count() + 1,
        })?;
    }
    Ok(s.deepest)
}

/// Splits at every line break libyaml knows: `\n`, `\r\n`, `\r`, NEL, LS and PS. (A comment
/// ends at any of them; splitting at `\n` only would let `# x\u{2028}[[[` hide brackets.)
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let t = rest?;
        match t
            .char_indices()
            .find(|&(_, c)| matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}'))
        {
            None => {
                rest = None;
                Some(t)
            }
            Some((i, c)) => {
                let mut next = i + c.len_utf8();
                if c == '\r' && t[next..].starts_with('\n') {
                    next += 1;
                }
                rest = Some(&t[next..]);
                Some(&t[..i])
            }
        }
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Map,
    Seq,
}

struct Scanner {
    max: usize,
    /// Open block collections: the column of each and its kind, innermost last.
    block: Vec<(usize, Kind)>,
    /// Open flow collections (`[` and `{`).
    flow: usize,
    deepest: usize,
    /// A quoted scalar still open at the end of the last line: its quote byte.
    quote: Option<u8>,
    /// Inside a block scalar (`|`, `>`): the indentation its lines must exceed.
    block_scalar: Option<usize>,
    /// A block plain scalar that reached the end of its line and may continue on lines indented
    /// deeper than this (libyaml: deeper than the innermost block collection). Such a line is
    /// scalar text even when it starts with a quote or a bracket.
    plain: Option<isize>,
    /// In flow context, whether the last line ended where a token begins, and after a
    /// JSON-like node: a line break inside a flow collection is only white space.
    flow_start: bool,
    flow_json: bool,
}

fn blank(b: Option<&u8>) -> bool {
    matches!(b, None | Some(b' ' | b'\t'))
}

/// Returns the index just after the closing `q` of a quoted scalar whose text starts at `from`,
/// or `None` when it continues on the next line.
fn skip_quote(b: &[u8], from: usize, q: u8) -> Option<usize> {
    let mut j = from;
    while j < b.len() {
        if q == b'"' && b[j] == b'\\' {
            j += 2;
            continue;
        }
        if b[j] == q {
            if q == b'\'' && b.get(j + 1) == Some(&b'\'') {
                j += 2;
                continue;
            }
            return Some(j + 1);
        }
        j += 1;
    }
    None
}

impl Scanner {
    /// Records one more level of nesting; `Err(at)` when it is one too many.
    fn deeper(&mut self, at: usize) -> Result<(), usize> {
        let depth = self.block.len() + self.flow;
        self.deepest = self.deepest.max(depth);
        if depth > self.max { Err(at) } else { Ok(()) }
    }

    /// A block collection entry (`- `, `? `, `key:`) at column `col`. The first one on a line
    /// closes the collections indented deeper; a sequence may sit at its parent key's column.
    fn block_entry(&mut self, col: usize, kind: Kind, first: bool) -> Result<(), usize> {
        if first {
            while let Some(&(c, k)) = self.block.last() {
                if c > col || (c == col && k == Kind::Seq && kind == Kind::Map) {
                    self.block.pop();
                } else {
                    break;
                }
            }
        }
        let opens = match self.block.last() {
            None => true,
            Some(&(c, k)) => col > c || (col == c && k == Kind::Map && kind == Kind::Seq),
        };
        if opens {
            self.block.push((col, kind));
            self.deeper(col)?;
        }
        Ok(())
    }

    fn line(&mut self, line: &str) -> Result<(), usize> {
        let b = line.as_bytes();
        let indent = b.iter().take_while(|&&c| c == b' ').count();
        if let Some(threshold) = self.block_scalar {
            if indent == b.len() || indent > threshold {
                return Ok(());
            }
            self.block_scalar = None;
        }
        let mut i = 0;
        // Block context: where a node may begin, and whether a `:` right here is a key
        // indicator even without a space after it (after a quoted scalar or a closed flow
        // collection: YAML's JSON-like keys). Flow context keeps its own in `flow_start` and
        // `flow_json`, across lines.
        let mut at_start = true;
        let mut after_json = false;
        let mut first = true;
        if let Some(threshold) = self.plain.take() {
            let rest = line.trim_start_matches([' ', '\t']);
            if rest.is_empty() {
                self.plain = Some(threshold);
                return Ok(());
            }
            if !rest.starts_with('#') && indent as isize > threshold {
                // Scalar text; after it only a `: ` (a key) could still matter.
                self.plain = Some(threshold);
                at_start = false;
                first = false;
            }
        }
        if let Some(q) = self.quote {
            match skip_quote(b, 0, q) {
                None => return Ok(()),
                Some(end) => {
                    self.quote = None;
                    i = end;
                    at_start = false;
                    after_json = true;
                    self.flow_start = false;
                    self.flow_json = true;
                    first = false;
                }
            }
        }
        if i == 0 && (line.starts_with("---") || line.starts_with("...")) && blank(b.get(3)) {
            i = 3;
        }
        if i == 0 && line.starts_with('%') {
            return Ok(());
        }
        while i < b.len() {
            let c = b[i];
            let next_blank = blank(b.get(i + 1));
            if c == b'#' && (i == 0 || blank(b.get(i - 1))) {
                return Ok(());
            }
            if c == b' ' || c == b'\t' {
                i += 1;
                continue;
            }
            if self.flow > 0 {
                i = self.flow_token(b, i)?;
                if self.flow == 0 {
                    at_start = false;
                    after_json = true;
                }
                continue;
            }
            if !at_start {
                // After a complete node in block context only a key indicator matters.
                if c == b':' && (next_blank || after_json) {
                    at_start = true;
                }
                after_json = false;
                i += 1;
                continue;
            }
            match c {
                b'-' | b'?' if next_blank => {
                    let kind = if c == b'-' { Kind::Seq } else { Kind::Map };
                    self.block_entry(i, kind, first)?;
                    first = false;
                    i += 1;
                }
                b':' if next_blank => i += 1,
                b'[' | b'{' => {
                    self.flow += 1;
                    self.deeper(i)?;
                    self.flow_start = true;
                    self.flow_json = false;
                    first = false;
                    i += 1;
                }
                b'"' | b'\'' => match skip_quote(b, i + 1, c) {
                    None => {
                        self.quote = Some(c);
                        return Ok(());
                    }
                    Some(end) => {
                        let mut j = end;
                        while j < b.len() && blank(b.get(j)) {
                            j += 1;
                        }
                        if b.get(j) == Some(&b':') {
                            self.block_entry(i, Kind::Map, first)?;
                            j += 1;
                        } else {
                            at_start = false;
                        }
                        first = false;
                        i = j;
                    }
                },
                b'|' | b'>' => {
                    self.block_scalar = Some(indent);
                    return Ok(());
                }
                b'&' | b'!' => {
                    while i < b.len() && !matches!(b[i], b' ' | b'\t') {
                        i += 1;
                    }
                }
                _ => {
                    // A plain scalar (or alias) to the end of the line, unless `: ` makes it
                    // a key or ` #` starts a comment.
                    let start = i;
                    loop {
                        if i >= b.len() {
                            self.plain = Some(self.block.last().map_or(-1, |&(c, _)| c as isize));
                            return Ok(());
                        }
                        if b[i] == b':' && blank(b.get(i + 1)) {
                            self.block_entry(start, Kind::Map, first)?;
                            first = false;
                            i += 1;
                            break;
                        }
                        if b[i] == b'#' && blank(b.get(i - 1)) {
                            return Ok(());
                        }
                        i += 1;
                    }
                }
            }
        }
        Ok(())
    }

    /// Scans one token at `i` (not a blank, not a comment) inside a flow collection and returns
    /// where the next one starts. Brackets always count: a plain scalar cannot hold them in
    /// flow context. A quote only opens a scalar where a token begins (`[don't]` is plain).
    fn flow_token(&mut self, b: &[u8], mut i: usize) -> Result<usize, usize> {
        let c = b[i];
        let next = b.get(i + 1);
        match c {
            b'[' | b'{' => {
                self.flow += 1;
                self.deeper(i)?;
                self.flow_start = true;
                self.flow_json = false;
            }
            b']' | b'}' => {
                self.flow = self.flow.saturating_sub(1);
                self.flow_start = false;
                self.flow_json = true;
            }
            b',' => {
                self.flow_start = true;
                self.flow_json = false;
            }
            b':' if self.flow_json
                || blank(next)
                || matches!(next, Some(b',' | b'[' | b']' | b'{' | b'}')) =>
            {
                self.flow_start = true;
                self.flow_json = false;
            }
            b'"' | b'\'' if self.flow_start => match skip_quote(b, i + 1, c) {
                None => {
                    self.quote = Some(c);
                    return Ok(b.len());
                }
                Some(end) => {
                    self.flow_start = false;
                    self.flow_json = true;
                    return Ok(end);
                }
            },
            b'&' | b'!' if self.flow_start => {
                // An anchor or tag: the node still starts after it.
                while i < b.len()
                    && !matches!(b[i], b' ' | b'\t' | b',' | b'[' | b']' | b'{' | b'}')
                {
                    i += 1;
                }
                return Ok(i);
            }
            b'?' if self.flow_start && blank(next) => {}
            _ => {
                self.flow_start = false;
                self.flow_json = false;
            }
        }
        Ok(i + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth(text: &str) -> usize {
        nesting_depth(text, 1000).unwrap()
    }

    #[test]
    fn counts_block_and_flow_nesting() {
        assert_eq!(depth("name: x\n"), 1);
        assert_eq!(
            depth(
                "name: x\nrequirements:\n  - executable: a\n    packages: {debian: b}\n  - cpu_flags: {x86_64: [sse4_2]}\n"
            ),
            5
        );
        // A sequence at its key's column is still one level deeper.
        assert_eq!(depth("a:\n- b:\n  - c:\n    - d\n"), 6);
        assert_eq!(depth("- - - - x\n"), 4);
        assert_eq!(depth("a: [[[x]]]\nb: 1\n"), 4);
    }

    #[test]
    fn brackets_in_scalars_and_comments_do_not_count() {
        assert_eq!(depth("a: \"[[[[\"\nb: '{{{'\nc: see [1] and [[x\n"), 1);
        assert_eq!(depth("a: 1 # [[[[[\n"), 1);
        assert_eq!(depth("a: |\n  [[[[[\n  {{{{\nb: 2\n"), 1);
        assert_eq!(depth("a: [don't, \"]]\", 'x]']\n"), 2);
        assert_eq!(depth("a: \"multi\n  [[[ line\"\nb: c\n"), 1);
        assert_eq!(depth("a: [x,\n 'y]',\n z\n 'w]\n"), 2);
    }

    #[test]
    fn a_plain_scalar_continued_with_a_quote_hides_nothing() {
        // libyaml reads `'bar` as more of `foo`, not as the start of a quoted scalar.
        assert_eq!(depth("a: foo\n  'bar\nb: [[[[x]]]]\n"), 5);
        assert_eq!(depth("a: foo\n\n  \"bar\nb: [[[[x]]]]\n"), 5);
    }

    #[test]
    fn every_libyaml_line_break_ends_a_comment() {
        for br in ["\r", "\u{85}", "\u{2028}", "\u{2029}"] {
            let text = format!("a: 1 # x{br}b: [[[[\n");
            assert_eq!(depth(&text), 5, "{br:?}");
        }
    }

    #[test]
    fn too_deep_names_line_and_column() {
        let text = format!("name: x\nrequirements: {}\n", "[".repeat(100_000));
        let e = nesting_depth(&text, MAX_DEPTH).unwrap_err();
        // The root mapping is level 1, so the 32nd `[` is one too many.
        assert_eq!(
            e,
            TooDeep {
                line: 2,
                column: 14 + 32
            }
        );
        let text = format!("a:\n{}x\n", "- ".repeat(40));
        assert_eq!(nesting_depth(&text, MAX_DEPTH).unwrap_err().line, 2);
    }
}
