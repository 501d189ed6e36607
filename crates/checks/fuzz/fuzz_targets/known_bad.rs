//! `kernel_version.known_bad` entries: parsing, then matching against kernel releases. The
//! input is lines: the first is the entry, the rest are releases to match.
#![no_main]
use hostready_checks::checks::kernel::{KnownBad, parse_known_bad};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.lines();
    let entry = lines.next().unwrap_or("");
    if let Ok(bad) = parse_known_bad(entry) {
        // An exact release always matches its own entry.
        if let KnownBad::Release(r) = &bad {
            assert!(bad.matches(r), "{r:?} does not match itself");
        }
        for release in lines.take(32) {
            let _ = bad.matches(release);
        }
    }
});
