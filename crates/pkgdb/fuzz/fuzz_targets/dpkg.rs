//! dpkg status files (deb822 stanzas), with and without required Status fields, read by the
//! streaming parser; asserts that its allocation stays within its stated bound:
//! - checking (`check_dpkg_status`) allocates a fixed amount, whatever the input: the 64 KiB
//!   line buffer, a 4 KiB head for over-long lines, 4 KiB for each of five kept fields;
//! - parsing into records (`parse_dpkg_status`) adds at most the records themselves, which a
//!   small multiple of the input bounds (a record is built from a stanza of at least 10 bytes).
//!
//! The bounds are checked with the kit's counting global allocator
//! (`crates/testkit/src/counting_alloc.rs`, included by path), which counts a `realloc` as the
//! old and the new block live at once, as the bytes are copied.
#![no_main]

#[allow(dead_code)] // `within` serves the paged-reader targets
#[path = "../../../testkit/src/counting_alloc.rs"]
mod counting_alloc;

#[global_allocator]
static ALLOC: counting_alloc::Counting = counting_alloc::Counting;

/// The parser's fixed buffers (see the module comment): a kept value's vector may hold twice
/// its 4 KiB cap after growing; plus room for error messages.
const FIXED: usize = (64 << 10) + (4 << 10) + 5 * (8 << 10) + (16 << 10);

/// Bytes of records per input byte: a record (about 230 bytes plus its strings) per stanza of
/// at least 10 input bytes, doubled for the vector's growth.
const PER_BYTE: usize = 80;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let p = std::path::Path::new("/var/lib/dpkg/status");
    for need in [true, false] {
        let ((), used) = counting_alloc::peak_of(|| {
            let _ = hostready_pkgdb::check_dpkg_status(data, need);
        });
        assert!(
            used <= FIXED,
            "checking {} bytes allocated {used}",
            data.len()
        );
        let ((), used) = counting_alloc::peak_of(|| {
            let _ = hostready_pkgdb::parse_dpkg_status(data, p, need);
        });
        let bound = FIXED + PER_BYTE * data.len();
        assert!(
            used <= bound,
            "parsing {} bytes allocated {used} > {bound}",
            data.len()
        );
    }
});
