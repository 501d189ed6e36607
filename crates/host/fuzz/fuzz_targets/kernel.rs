//! The kernel parsers: `/proc/modules`, `modules.builtin`, `modules.dep`, module names of
//! paths, release triples, option lookup in a kernel `.config`, and the bounded gunzip of
//! `/proc/config.gz`. The input is split at the
//! first NUL: file text before, the `CONFIG_` option to look up after.
#![no_main]
use hostready_host::kernel::{self, KernelConfig};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (text, option) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"CONFIG_MODULES"[..]),
    };
    // The input as a compressed config: a bounded gunzip never returns more than its cap.
    if let Ok(t) = kernel::gunzip_bounded(text, 1 << 16) {
        assert!(t.len() <= 3 << 16);
    }
    let text = String::from_utf8_lossy(text).into_owned();
    let option = String::from_utf8_lossy(option);
    let _ = kernel::parse_proc_modules(&text);
    let _ = kernel::parse_modules_builtin(&text);
    for (name, path) in kernel::parse_modules_dep(&text) {
        assert_eq!(
            kernel::module_name_of_path(&path).as_deref(),
            Some(name.as_str())
        );
    }
    for line in text.lines().take(64) {
        let _ = kernel::module_name_of_path(line);
        if let Some((a, b, c)) = kernel::version_triple(line) {
            let _ = (a, b, c);
        }
    }
    let config = KernelConfig::new("/proc/config.gz", text);
    let v = config.get(&option);
    let _ = v.to_string();
    let _ = config.get("CONFIG_MODULES");
});
