//! The log signature scanner behind `doctor --explain`, streamed as the binary streams it:
//! the input is fed in chunks whose size the first byte picks, then fed again many times over
//! (a log of any length), and
//! - what the scanner allocates while streaming stays under a bound independent of the input
//!   (its unfinished line of at most `MAX_LINE` bytes, the kept matches, the regex caches):
//!   repeating the input 64 times must not need more than feeding it once;
//! - the answer does not depend on how the input is cut into chunks;
//! - the counts agree with the input (bytes, lines, at most `LINES_KEPT` line numbers kept).
//!
//! Every byte allocated is counted by the kit's counting allocator
//! (`crates/testkit/src/counting_alloc.rs`, included by path).
#![no_main]

use hostready_doctor::signatures::{self, LINES_KEPT, MAX_LINE, Scanned, Scanner};

#[allow(dead_code)] // `within` serves pkgdb's paged-reader targets
#[path = "../../../testkit/src/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::peak_of;

#[global_allocator]
static ALLOC: counting_alloc::Counting = counting_alloc::Counting;

fn stream(data: &[u8], chunk: usize, times: usize) -> Scanned {
    let mut s = Scanner::new();
    for _ in 0..times {
        for c in data.chunks(chunk) {
            s.feed(c);
        }
    }
    s.finish()
}

fn key(s: &Scanned) -> Vec<(&'static str, Vec<usize>, usize)> {
    s.matches
        .iter()
        .map(|m| (m.id, m.lines.clone(), m.count))
        .collect()
}

/// What streaming may allocate beyond its unfinished line: kept matches (a snippet and
/// `LINES_KEPT` numbers per signature) and the regex engine's caches, which are capped.
const SLACK: usize = 8 << 20;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&pick, data)) = data.split_first() else {
        return;
    };
    let chunk = 1 + pick as usize * 61;
    // Warm up: the catalogue and any per-signature regex this input makes compile.
    let whole = stream(data, data.len().max(1), 1);
    let (_, once) = peak_of(|| stream(data, chunk, 1));
    let (long, many) = peak_of(|| stream(data, chunk, 64));
    assert!(once <= MAX_LINE + SLACK, "one pass allocated {once} bytes");
    assert!(
        many <= MAX_LINE + SLACK,
        "64 repeats allocated {many} bytes (one pass: {once})"
    );
    // Cut differently, same answer.
    let cut = stream(data, chunk, 1);
    assert_eq!(key(&cut), key(&whole));
    assert_eq!(cut.lines, whole.lines);
    let newlines = data.iter().filter(|b| **b == b'\n').count();
    assert!(whole.lines == newlines || whole.lines == newlines + 1);
    assert_eq!(long.bytes, 64 * data.len() as u64);
    for m in &long.matches {
        assert!(m.lines.len() <= LINES_KEPT && m.count >= m.lines.len());
        assert!(m.lines.windows(2).all(|w| w[0] < w[1]), "{:?}", m.lines);
    }
    let _ = signatures::findings(&whole.matches, "fuzz");
    let _ = signatures::explanation_of(long, "fuzz");
});
