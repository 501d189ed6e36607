//! rpm header blobs: parse, then extract every fact hostready uses.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(h) = hostready_pkgdb::Header::parse(data) {
        let _ = h.info();
    }
});
