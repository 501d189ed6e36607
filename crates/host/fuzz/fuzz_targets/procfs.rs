//! The procfs parsers: `meminfo` (raw and checked), PSI `pressure` files, `cpuinfo` flags, `mountinfo` (and the mount holding a path),
//! `<pid>/stat` (whole and its state letter), `/proc/locks`, the PSI lines and the other
//! per-process files (`net/unix` is fuzzed by `node_tables`). The input is split at the first
//! NUL: procfs text before, the path given to `mount_containing` after.
#![no_main]
use hostready_host::procfs;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (text, path) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"/var/lib/longhorn"[..]),
    };
    let text = String::from_utf8_lossy(text);
    let path = String::from_utf8_lossy(path);
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
    let mounts = procfs::parse_mountinfo(&text);
    for m in &mounts {
        let _ = m.is_shared();
    }
    if let Some(m) = procfs::mount_containing(&mounts, &path) {
        assert!(mounts.iter().any(|x| std::ptr::eq(x, m)));
        let _ = m.is_shared();
    }
    let _ = procfs::mount_containing(&mounts, "/");
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
