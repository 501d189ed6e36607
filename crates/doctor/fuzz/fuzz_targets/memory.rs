//! `smaps_rollup`, `/proc/<pid>/status`, `/proc/pressure/memory` and `/proc/meminfo`, and the
//! memory finding built from them.
#![no_main]
use hostready_doctor::{memory, proc};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = proc::parse_smaps_private_kb(&text);
    let _ = proc::parse_status_rss_anon_kb(&text);
    let psi = memory::parse_psi(&text);
    let meminfo = hostready_host::procfs::parse_meminfo(&text);
    let flagged = proc::parse_smaps_private_kb(&text).unwrap_or(u64::MAX);
    let _ = memory::finding(&meminfo, Some(&psi), flagged);
    let _ = memory::finding(&meminfo, None, 0);
});
