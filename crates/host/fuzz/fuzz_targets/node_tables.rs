//! The node-side tables of issue 13: `/proc/net/unix` streamed (`unix_sockets`), `mountinfo`
//! with options and the mount holding a path (`mounts`), and sysfs `dev` numbers
//! (`blockdev::parse_dev`). The input is split at the first NUL: table text before, the path
//! given to `mounts::holding` after.
#![no_main]
use hostready_host::{blockdev, mounts, unix_sockets};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (text, path) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"/var/lib/longhorn"[..]),
    };
    // The streaming reader takes bytes as the kernel gives them, not only UTF-8.
    if let Ok(l) = unix_sockets::parse_listeners(text, "fuzz") {
        assert!(l.len() <= unix_sockets::MAX_LISTENERS);
        for s in &l {
            assert!(!s.name.is_empty());
            let _ = s.is_abstract();
        }
    }
    let text = String::from_utf8_lossy(text);
    let path = String::from_utf8_lossy(path);
    let table = mounts::parse_mountinfo(&text);
    if let Some(m) = mounts::holding(&table, &path) {
        assert!(table.iter().any(|x| std::ptr::eq(x, m)));
        let _ = m.has_option("noexec");
    }
    let _ = blockdev::parse_dev(&text);
});
