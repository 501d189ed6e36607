//! A counting global allocator shared by the paged-reader targets: each input's peak of live
//! heap bytes must stay within a small multiple of the input, so a declared size (a page
//! count, an off-page length, a header's index and data lengths) can never make a reader
//! allocate what the bytes do not hold.
//!
//! Unsafe because a global allocator is an `unsafe impl`; it only forwards to the system
//! allocator and counts.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

/// Runs `f` and panics if the heap grew by more than `factor` times `input` plus `slack`
/// bytes at any moment during it.
pub fn within(input: usize, factor: usize, slack: usize, f: impl FnOnce()) {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    f();
    let grew = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    assert!(
        grew <= factor * input + slack,
        "allocated {grew} bytes at peak for a {input}-byte input (bound {factor}x + {slack})"
    );
}
