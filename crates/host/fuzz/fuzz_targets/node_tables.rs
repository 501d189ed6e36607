//! The node-side tables of issue 13: `/proc/net/unix` streamed (`unix_sockets`), `mountinfo`
//! (the one parser, `mounts`: every line kept and the complete ones, and the mount holding a
//! path in each), and sysfs `dev` numbers
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
    let table = mounts::MountTable::new(text.to_string());
    for m in table.iter() {
        let _ = (m.is_shared(), m.is_complete(), m.has_option("noexec"));
        // Fields are split at spaces; only escaped paths may hold one once decoded.
        assert!(!m.fs_type.contains(' ') && !m.options().any(|o| o.contains(' ')));
    }
    for lines in [table.iter().collect::<Vec<_>>(), table.complete().collect()] {
        let held = mounts::holding(lines.iter().cloned(), &path);
        if let Some(m) = &held {
            assert!(lines.contains(m));
        }
        // The root covers every path: a table with `/` always holds.
        if lines.iter().any(|m| m.mount_point == "/") {
            assert!(held.is_some());
        }
    }
    let _ = mounts::holding(table.iter(), "/");
    let _ = blockdev::parse_dev(&text);
});
