//! `multipath.conf`: the `devnode` patterns of top-level `blacklist { }` sections.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = hostready_checks::checks::multipath::blacklisted_devnodes(&text);
});
