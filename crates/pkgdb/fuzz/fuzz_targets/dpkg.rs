//! dpkg status files (deb822 stanzas), with and without required Status fields, read by the
//! streaming parser; asserts that its allocation stays within its stated bound:
//! - checking (`check_dpkg_status`) allocates a fixed amount, whatever the input: the 64 KiB
//!   line buffer, a 4 KiB head for over-long lines, 4 KiB for each of five kept fields;
//! - parsing into records (`parse_dpkg_status`) adds at most the records themselves, which a
//!   small multiple of the input bounds (a record is built from a stanza of at least 10 bytes).
//!
//! The bounds are checked with a counting global allocator: `unsafe` is needed to implement
//! `GlobalAlloc`, and it only forwards to the system allocator.
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's own arguments; the counters
// change no allocation.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        // Old and new blocks coexist while the bytes are copied.
        grew(new);
        let p = unsafe { System.realloc(ptr, layout, new) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The parser's fixed buffers (see the module comment): a kept value's vector may hold twice
/// its 4 KiB cap after growing; plus room for error messages.
const FIXED: usize = (64 << 10) + (4 << 10) + 5 * (8 << 10) + (16 << 10);

/// Bytes of records per input byte: a record (about 230 bytes plus its strings) per stanza of
/// at least 10 input bytes, doubled for the vector's growth.
const PER_BYTE: usize = 80;

/// Runs `f` and returns the most it had allocated at once beyond what was live before.
fn peak(f: impl FnOnce()) -> usize {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    f();
    PEAK.load(Ordering::Relaxed) - base
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let p = std::path::Path::new("/var/lib/dpkg/status");
    for need in [true, false] {
        let used = peak(|| {
            let _ = hostready_pkgdb::check_dpkg_status(data, need);
        });
        assert!(used <= FIXED, "checking {} bytes allocated {used}", data.len());
        let used = peak(|| {
            let _ = hostready_pkgdb::parse_dpkg_status(data, p, need);
        });
        let bound = FIXED + PER_BYTE * data.len();
        assert!(used <= bound, "parsing {} bytes allocated {used} > {bound}", data.len());
    }
});
