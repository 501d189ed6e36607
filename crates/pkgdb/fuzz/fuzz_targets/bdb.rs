//! Berkeley DB hash reader plus the header parser on every record it yields.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(recs) = hostready_pkgdb::parse_bdb(data) {
        for (_, blob) in recs {
            if let Ok(h) = hostready_pkgdb::Header::parse(&blob) {
                let _ = h.info();
            }
        }
    }
});
