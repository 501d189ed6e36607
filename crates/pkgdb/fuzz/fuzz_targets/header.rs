//! rpm header blobs: parse (structure, region, SHA256HEADER/SHA1HEADER digests), then extract
//! every fact hostready uses, and assert that memory stays within a small multiple of the
//! input: at most `BOUND_PER_BYTE` bytes allocated per input byte, plus `SLACK`, at the peak.
//! A header that would build more (one long dirname shared by many tiny basenames) must be
//! refused by the parser, not allocated.
//!
//! The same bound is checked on real headers and their mutations in
//! `crates/pkgdb/tests/header_memory.rs`, so it holds in CI without a fuzzer run; both count
//! with the kit's allocator (`crates/testkit/src/counting_alloc.rs`, included by path), which
//! libFuzzer's own C++ allocations do not go through.
#![no_main]

#[allow(dead_code)] // `within` serves the paged-reader targets
#[path = "../../../testkit/src/counting_alloc.rs"]
mod counting_alloc;

/// Peak bytes allocated per byte of header (index entries, string vectors, the file list).
const BOUND_PER_BYTE: usize = 64;
/// Fixed overhead (small vectors' first allocations, digest state, hex strings).
const SLACK: usize = 16 << 10;

#[global_allocator]
static ALLOC: counting_alloc::Counting = counting_alloc::Counting;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let ((), used) = counting_alloc::peak_of(|| {
        if let Ok(h) = hostready_pkgdb::Header::parse(data) {
            let _ = h.info();
            let _ = h.name_is_one_of(&["bash", "x"]);
            let _ = h.owns_any(&["/usr/bin/bash".to_string(), "/a".to_string()]);
        }
    });
    assert!(
        used <= BOUND_PER_BYTE * data.len() + SLACK,
        "a {}-byte header made {used} bytes live at once",
        data.len()
    );
});
