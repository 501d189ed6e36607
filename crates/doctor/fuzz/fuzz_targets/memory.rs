//! `smaps_rollup`, `/proc/<pid>/status`, `/proc/pressure/memory` and `/proc/meminfo`, and the
//! memory finding built from them: whatever the bytes, the finding is built, and a `pass`,
//! `warn` or `fail` is only ever computed from believable values.
#![no_main]
use hostready_doctor::{Status, memory};
use hostready_host::procfs as proc;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = proc::parse_smaps_private_kb(&text);
    let _ = proc::parse_status_rss_anon_kb(&text);
    let psi = memory::parse_psi(&text);
    if let Ok(p) = &psi {
        for v in p.values() {
            assert!((0.0..=100.0).contains(&v.avg10) && (0.0..=100.0).contains(&v.avg60));
        }
    }
    let meminfo = memory::parse_meminfo(&text);
    if let Ok(m) = &meminfo {
        assert!(m.total_kb > 0 && m.available_kb <= m.total_kb);
    }
    let flagged = proc::parse_smaps_private_kb(&text).unwrap_or(u64::MAX);
    let f = memory::finding(&meminfo, &Some(psi), flagged);
    if meminfo.is_err() {
        assert_eq!(f.status, Status::Unknown);
    }
    let _ = memory::finding(&meminfo, &None, 0);
});
