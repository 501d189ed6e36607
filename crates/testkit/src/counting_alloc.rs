//! A counting global allocator for memory-bound tests and fuzz targets: it forwards every call
//! to the system allocator and keeps the bytes live on the Rust heap and their peak, so a test
//! can assert that a reader's peak stays within a bound of its input.
//!
//! A binary installs it itself (`#[global_allocator] static ALLOC: Counting = Counting;`); the
//! counters are process-wide, so a test binary that uses it holds one test (other threads'
//! allocations would count too). libFuzzer's own C++ allocations do not go through it.
//!
//! The fuzz projects (`crates/*/fuzz`, outside the workspace) include this file with
//! `#[path = "../../../testkit/src/counting_alloc.rs"] mod counting_alloc;` instead of
//! depending on the kit (which would build ring and the kit's other dependencies into every
//! fuzz target): it uses nothing but `std`, and must keep it so.
//!
//! `unsafe` because `GlobalAlloc` is an unsafe trait; each method only forwards to `System`
//! with the caller's own arguments and adds to or takes from two atomics.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// The system allocator, counting live bytes and their peak.
#[derive(Debug)]
pub struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Relaxed) + by;
    PEAK.fetch_max(now, Relaxed);
}

fn shrank(by: usize) {
    LIVE.fetch_sub(by, Relaxed);
}

// SAFETY: every call forwards to the system allocator with the same arguments; the counters
// are plain atomics and never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: forwarded as is; the caller keeps `alloc`'s contract.
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            grew(l.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        // SAFETY: forwarded as is; the caller keeps `alloc_zeroed`'s contract.
        let p = unsafe { System.alloc_zeroed(l) };
        if !p.is_null() {
            grew(l.size());
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: forwarded as is; the caller keeps `dealloc`'s contract.
        unsafe { System.dealloc(p, l) };
        shrank(l.size());
    }

    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        // Counted as the worst case: the system may move the block, and then the old and the
        // new one are both live while the bytes are copied.
        grew(new);
        // SAFETY: forwarded as is; the caller keeps `realloc`'s contract.
        let q = unsafe { System.realloc(p, l, new) };
        // On failure the old block stays and the new one never was.
        shrank(if q.is_null() { new } else { l.size() });
        q
    }
}

/// Runs `f` and returns its result with the most bytes it had live at once beyond what was
/// live before it started.
pub fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    let out = f();
    (out, PEAK.load(Relaxed).saturating_sub(base))
}

/// Runs `f` and panics if the heap grew by more than `factor` times `input` plus `slack`
/// bytes at any moment during it.
pub fn within(input: usize, factor: usize, slack: usize, f: impl FnOnce()) {
    let ((), grew) = peak_of(f);
    assert!(
        grew <= factor * input + slack,
        "allocated {grew} bytes at peak for a {input}-byte input (bound {factor}x + {slack})"
    );
}
