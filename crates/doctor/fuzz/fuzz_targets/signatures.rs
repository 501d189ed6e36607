//! The log signature scanner behind `doctor --explain`: every catalogue pattern on every line,
//! and the findings built from the matches.
#![no_main]
use hostready_doctor::signatures;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let matches = signatures::explain(&text);
    let _ = signatures::findings(&matches, "fuzz");
});
