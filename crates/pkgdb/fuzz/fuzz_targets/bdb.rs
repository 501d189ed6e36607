//! Paged Berkeley DB hash reader (the same page walk hostready runs on a file, here over a
//! byte slice) plus the header parser on every record it yields, one record at a time. The
//! heap may never grow past a small multiple of the input: the reader holds one page and one
//! blob, and a blob's declared size is checked before it is allocated.
#![no_main]

#[path = "alloc_bound.rs"]
mod alloc_bound;

#[global_allocator]
static ALLOC: alloc_bound::Counting = alloc_bound::Counting;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // Pages, the item list of a page (24 bytes per 2-byte offset), one blob, the header's
    // entries and strings: far below 64 times the input.
    alloc_bound::within(data.len(), 64, 1 << 20, || {
        let _ = hostready_pkgdb::scan_bdb(data, |_, blob| {
            if let Ok(h) = hostready_pkgdb::Header::parse(blob) {
                let _ = h.info();
            }
            Ok::<(), hostready_pkgdb::ParseError>(())
        });
    });
});
