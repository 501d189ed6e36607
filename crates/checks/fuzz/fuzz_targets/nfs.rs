//! `nfsmount.conf`: `Defaultvers`/`Nfsvers` of the global section.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some((k, _)) = hostready_checks::checks::nfs::global_version(&text) {
        assert!(k.eq_ignore_ascii_case("Defaultvers") || k.eq_ignore_ascii_case("Nfsvers"));
    }
});
