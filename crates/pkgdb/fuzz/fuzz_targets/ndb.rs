//! Paged NDB reader (slot page by slot page, blob by blob, over a byte slice) plus the header
//! parser on every record it yields. The heap may never grow past a small multiple of the
//! input: a blob's declared sizes are checked before its blocks are read.
#![no_main]

// The kit's counting allocator, shared by every memory-bound target and test.
#[path = "../../../testkit/src/counting_alloc.rs"]
mod counting_alloc;

#[global_allocator]
static ALLOC: counting_alloc::Counting = counting_alloc::Counting;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    counting_alloc::within(data.len(), 64, 1 << 20, || {
        let _ = hostready_pkgdb::scan_ndb(data, |_, blob| {
            if let Ok(h) = hostready_pkgdb::Header::parse(blob) {
                let _ = h.info();
            }
            Ok::<(), hostready_pkgdb::ParseError>(())
        });
    });
});
