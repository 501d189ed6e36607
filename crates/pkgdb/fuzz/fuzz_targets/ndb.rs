//! Paged NDB reader (slot page by slot page, blob by blob, over a byte slice) plus the header
//! parser on every record it yields. The heap may never grow past a small multiple of the
//! input: a blob's declared sizes are checked before its blocks are read.
#![no_main]

#[path = "alloc_bound.rs"]
mod alloc_bound;

#[global_allocator]
static ALLOC: alloc_bound::Counting = alloc_bound::Counting;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    alloc_bound::within(data.len(), 64, 1 << 20, || {
        let _ = hostready_pkgdb::scan_ndb(data, |_, blob| {
            if let Ok(h) = hostready_pkgdb::Header::parse(blob) {
                let _ = h.info();
            }
            Ok::<(), hostready_pkgdb::ParseError>(())
        });
    });
});
