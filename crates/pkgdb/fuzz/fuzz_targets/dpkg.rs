//! dpkg status files (deb822 paragraphs), with and without required Status fields.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let p = std::path::Path::new("/var/lib/dpkg/status");
    let _ = hostready_pkgdb::parse_dpkg_status(data, p, true);
    let _ = hostready_pkgdb::parse_dpkg_status(data, p, false);
});
