//! Paged Berkeley DB hash reader (the same page walk hostready runs on a file, here over a
//! byte slice) plus the header parser on every record it yields, one record at a time. The
//! heap may never grow past a small multiple of the input: the reader holds one page and one
//! blob, and a blob's declared size is checked before it is allocated.
#![no_main]

// The kit's counting allocator, shared by every memory-bound target and test.
#[path = "../../../testkit/src/counting_alloc.rs"]
mod counting_alloc;

#[global_allocator]
static ALLOC: counting_alloc::Counting = counting_alloc::Counting;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // Pages, the item list of a page (24 bytes per 2-byte offset), one blob, the header's
    // entries and strings: far below 64 times the input.
    counting_alloc::within(data.len(), 64, 1 << 20, || {
        let _ = hostready_pkgdb::scan_bdb(data, |_, blob| {
            if let Ok(h) = hostready_pkgdb::Header::parse(blob) {
                let _ = h.info();
            }
            Ok::<(), hostready_pkgdb::ParseError>(())
        });
    });
});
