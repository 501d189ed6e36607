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
        flow: Vec::new(),
        pairs: 0,
        flow_peak: 0,
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

#[derive(Debug, Clone, Copy)]
struct Level {
    seq: bool,
    pair: bool,
    /// The deepest (flow) depth reached inside this collection, and inside its current
    /// element: a `:` after an element makes that element the key of a pair that encloses it.
    peak: usize,
    elem_peak: usize,
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
    /// Open flow collections, innermost last: for each, whether it is a sequence holding an
    /// open single-pair mapping (`[a: b]` is a sequence of one mapping).
    flow: Vec<Level>,
    /// How many of `flow` hold an open pair.
    pairs: usize,
    /// How deep the flow collection that began at the last block node start nested: if a `:`
    /// then makes it a mapping key (`{a: [b]}: c`), the mapping encloses all of that.
    flow_peak: usize,
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
        let flow_depth = self.flow.len() + self.pairs;
        self.flow_peak = self.flow_peak.max(flow_depth);
        if let Some(level) = self.flow.last_mut() {
            level.peak = level.peak.max(flow_depth);
            level.elem_peak = level.elem_peak.max(flow_depth);
        }
        let depth = self.block.len() + flow_depth;
        self.deepest = self.deepest.max(depth);
        if depth > self.max { Err(at) } else { Ok(()) }
    }

    /// A `:` or `?` indicator in a flow sequence starts a single-pair mapping inside it.
    fn open_pair(&mut self, at: usize) -> Result<(), usize> {
        let Some(level) = self.flow.last_mut() else {
            return Ok(());
        };
        if level.seq && !level.pair {
            level.pair = true;
            // The pair's mapping encloses the key already read, as deep as it went.
            let key_extra = level.elem_peak.saturating_sub(self.flow.len() + self.pairs);
            self.pairs += 1;
            let depth = self.block.len() + self.flow.len() + self.pairs + key_extra;
            self.deepest = self.deepest.max(depth);
            if depth > self.max {
                return Err(at);
            }
            return self.deeper(at);
        }
        Ok(())
    }

    /// Opens a flow collection at `at`.
    fn open_flow(&mut self, seq: bool, at: usize) -> Result<(), usize> {
        let depth = self.flow.len() + self.pairs + 1;
        self.flow.push(Level {
            seq,
            pair: false,
            peak: depth,
            elem_peak: depth,
        });
        self.deeper(at)
    }

    /// Closes the innermost flow collection; its parent's element went as deep as it did.
    fn close_flow(&mut self) {
        if let Some(level) = self.flow.pop() {
            self.pairs -= usize::from(level.pair);
            if let Some(parent) = self.flow.last_mut() {
                parent.peak = parent.peak.max(level.peak);
                parent.elem_peak = parent.elem_peak.max(level.peak);
            }
        }
    }

    /// A `,` ends the single-pair mapping of the innermost flow sequence, if any.
    fn end_pair(&mut self) {
        if let Some(level) = self.flow.last_mut() {
            if level.pair {
                level.pair = false;
                self.pairs -= 1;
            }
        }
        let depth = self.flow.len() + self.pairs;
        if let Some(level) = self.flow.last_mut() {
            level.elem_peak = depth;
        }
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
        // Where the last flow collection that began at a block node start began (its column,
        // and whether it was the line's first node), in case a `:` makes it a key.
        let mut key_node: Option<(usize, bool)> = None;
        // Where the anchor or tag of the node about to start began: the node (a key's
        // mapping, say) begins there, not after it.
        let mut props: Option<usize> = None;
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
            // libyaml starts a comment at `#` after white space, and also wherever a token
            // may begin (`[#`, `"a"#`), which includes the start of a flow token.
            let token_boundary = if self.flow.is_empty() {
                after_json
            } else {
                self.flow_start || self.flow_json
            };
            if c == b'#' && (i == 0 || blank(b.get(i - 1)) || token_boundary) {
                return Ok(());
            }
            if c == b' ' || c == b'\t' {
                i += 1;
                continue;
            }
            if !self.flow.is_empty() {
                i = self.flow_token(b, i)?;
                if self.flow.is_empty() {
                    at_start = false;
                    after_json = true;
                }
                continue;
            }
            if !at_start {
                // After a complete node in block context only a key indicator matters; it
                // makes that node (a flow collection, say) a key of a mapping.
                if c == b':' && (next_blank || after_json) {
                    if let Some((col, was_first)) = key_node.take() {
                        self.block_entry(col, Kind::Map, was_first)?;
                        let depth = self.block.len() + self.flow_peak;
                        self.deepest = self.deepest.max(depth);
                        if depth > self.max {
                            return Err(i);
                        }
                    }
                    at_start = true;
                }
                after_json = false;
                i += 1;
                continue;
            }
            match c {
                b'-' | b'?' if next_blank => {
                    let kind = if c == b'-' { Kind::Seq } else { Kind::Map };
                    self.block_entry(props.take().unwrap_or(i), kind, first)?;
                    first = false;
                    i += 1;
                }
                b':' if next_blank => {
                    // A value with an empty key (`: x`, `&a : x`): a mapping all the same.
                    self.block_entry(props.take().unwrap_or(i), Kind::Map, first)?;
                    first = false;
                    i += 1;
                }
                b'[' | b'{' => {
                    self.flow_peak = 0;
                    self.open_flow(c == b'[', i)?;
                    self.flow_start = true;
                    self.flow_json = false;
                    key_node = Some((props.take().unwrap_or(i), first));
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
                            self.block_entry(props.take().unwrap_or(i), Kind::Map, first)?;
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
                    props.get_or_insert(i);
                    while i < b.len() && !matches!(b[i], b' ' | b'\t') {
                        i += 1;
                    }
                }
                _ => {
                    // A plain scalar (or alias) to the end of the line, unless `: ` makes it
                    // a key or ` #` starts a comment.
                    let start = props.take().unwrap_or(i);
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
                self.open_flow(c == b'[', i)?;
                self.flow_start = true;
                self.flow_json = false;
            }
            b']' | b'}' => {
                self.close_flow();
                self.flow_start = false;
                self.flow_json = true;
            }
            b',' => {
                self.end_pair();
                self.flow_start = true;
                self.flow_json = false;
            }
            b':' if self.flow_json
                || blank(next)
                || matches!(next, Some(b',' | b'[' | b']' | b'{' | b'}')) =>
            {
                self.open_pair(i)?;
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
            b'?' if self.flow_start && blank(next) => self.open_pair(i)?,
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

    /// Returns how deeply collections nest in a parsed value.
    fn value_depth(v: &serde_yaml_ng::Value) -> usize {
        use serde_yaml_ng::Value;
        match v {
            Value::Sequence(s) => 1 + s.iter().map(value_depth).max().unwrap_or(0),
            Value::Mapping(m) => {
                1 + m
                    .iter()
                    .map(|(k, v)| value_depth(k).max(value_depth(v)))
                    .max()
                    .unwrap_or(0)
            }
            Value::Tagged(t) => value_depth(&t.value),
            _ => 0,
        }
    }

    #[test]
    fn never_under_counts_real_yaml() {
        // The built-ins and the tricky shapes above: the scan's depth is at least the parsed
        // depth (the fuzz target checks the same on arbitrary input).
        let mut texts: Vec<String> = crate::profile::BUILTIN
            .iter()
            .map(|(_, t)| t.to_string())
            .collect();
        texts.extend(
            [
                "a:\n- b:\n  - c:\n    - d\n",
                "? [a, [b]]\n: {c: [d]}\n",
                "a: !tag [&x [1], \"]\"]\n",
                "- - - [x]\n",
                "a: foo\n  'bar\nb: [[[[x]]]]\n",
                "{\"a\":[\"b\",[1]]}\n",
                "a: [x,\n 'y]',\n z\n 'w]\n",
                "- |\n  text [[\n- > \n  more {{\n- [a, {b: [c]}]\n",
                // Found by a random search against serde_yaml_ng, each once under-counted:
                // anchored and empty keys, flow collections as keys, single-pair mappings in
                // flow sequences, comments right after a flow indicator.
                "&x : \n  \r-",
                "&x ax: \n  -",
                "{}: :? ,",
                "[a:-   :\n    ]\r",
                "[{}:] #",
                "[#  ---\n\u{2028}\u{2028}?  b''|? >]",
                "[a: [b: [c: d]]]",
            ]
            .map(String::from),
        );
        for text in &texts {
            let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).unwrap();
            let (real, scanned) = (value_depth(&v), depth(text));
            assert!(real <= scanned, "{real} > {scanned}: {text}");
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
