//! The procfs parsers: `meminfo` (raw and checked), PSI `pressure` files, `cpuinfo` flags,
//! `<pid>/stat` (whole and its state letter), `/proc/locks`, the PSI lines and the other
//! per-process files (`net/unix` and `mountinfo` are fuzzed by `node_tables`). The input is
//! split at the first NUL: procfs text before, the rest (a path for `node_tables`) unused.
#![no_main]
use hostready_host::procfs;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // The corpus is shared in shape with `node_tables`: text, then a NUL and a path.
    let text = match data.iter().position(|&b| b == 0) {
        Some(i) => &data[..i],
        None => data,
    };
    let text = String::from_utf8_lossy(text);
    let _ = procfs::parse_meminfo(&text);
    // What the checked parsers accept is possible for a real kernel.
    if let Ok(m) = procfs::Meminfo::parse(&text) {
        assert!(m.total_kib > 0 && m.total_kib <= procfs::Meminfo::MAX_KIB);
        assert!(m.available_kib.is_none_or(|a| a <= m.total_kib));
    }
    if let Ok(p) = procfs::Pressure::parse(&text) {
        for l in std::iter::once(p.some).chain(p.full) {
            for v in [l.avg10, l.avg60, l.avg300] {
                assert!(v.is_finite() && (0.0..=100.0).contains(&v), "{v}");
            }
        }
    }
    let _ = procfs::parse_cpu_flags(&text);
    let _ = procfs::parse_stat_state(&text);
    if let Some(s) = procfs::parse_stat(&text) {
        assert!(text.contains(&s.comm));
    }
    for l in procfs::parse_locks(&text) {
        assert!(l.pid.is_none_or(|p| i64::from(p) == l.pid_field));
        let _ = l.range();
    }
    let _ = procfs::PressureLines::parse(&text);
    let _ = procfs::parse_statm(&text);
    let _ = procfs::parse_smaps_private_kb(&text);
    let _ = procfs::parse_status_rss_anon_kb(&text);
    let _ = procfs::parse_btime(&text);
    let _ = procfs::parse_cmdline(text.as_bytes());
});
