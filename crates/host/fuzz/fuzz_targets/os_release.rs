//! `os-release`: the parser, the distro family and immutability derived from it, and the
//! display name.
#![no_main]
use hostready_host::os_release::OsRelease;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let os = OsRelease::parse(&text, "/etc/os-release");
    let _ = os.display_name();
});
