//! The first-sectors signature reader (`signatures::probe`) on arbitrary device heads of any
//! length: it never panics, and a head it calls blank is all zeroes.
#![no_main]
use hostready_host::signatures::{self, Content};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let head = &data[..data.len().min(signatures::PROBE_BYTES)];
    let c = signatures::probe(head);
    if c == Content::Blank {
        assert!(head.iter().all(|b| *b == 0));
    }
    assert_eq!(c.is_raw(), !matches!(c, Content::Signature(_)));
});
