//! rpm header blobs: parse (structure, region, SHA256HEADER/SHA1HEADER digests), then extract
//! every fact hostready uses, and assert that memory stays within a small multiple of the
//! input: at most `BOUND_PER_BYTE` bytes allocated per input byte, plus `SLACK`, at the peak.
//! A header that would build more (one long dirname shared by many tiny basenames) must be
//! refused by the parser, not allocated.
//!
//! The same bound is checked on real headers and their mutations in
//! `crates/pkgdb/tests/header_memory.rs`, so it holds in CI without a fuzzer run.
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Peak bytes allocated per byte of header (index entries, string vectors, the file list).
const BOUND_PER_BYTE: usize = 64;
/// Fixed overhead (small vectors' first allocations, digest state, hex strings).
const SLACK: usize = 16 << 10;

/// Counts live bytes of the Rust heap and remembers the peak (libFuzzer's own C++ allocations
/// do not go through it).
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Relaxed) + by;
    PEAK.fetch_max(now, Relaxed);
}

// SAFETY: every call forwards to the system allocator with the same arguments; the counters
// are plain atomics and never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            grew(l.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(l) };
        if !p.is_null() {
            grew(l.size());
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            if new >= l.size() {
                grew(new - l.size());
            } else {
                LIVE.fetch_sub(l.size() - new, Relaxed);
            }
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    if let Ok(h) = hostready_pkgdb::Header::parse(data) {
        let _ = h.info();
        let _ = h.name_is_one_of(&["bash", "x"]);
        let _ = h.owns_any(&["/usr/bin/bash".to_string(), "/a".to_string()]);
    }
    let used = PEAK.load(Relaxed).saturating_sub(base);
    assert!(
        used <= BOUND_PER_BYTE * data.len() + SLACK,
        "a {}-byte header made {used} bytes live at once",
        data.len()
    );
});
