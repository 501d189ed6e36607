//! Profile YAML: loading a user's file (validation, includes, cycles) is `Ok` or a
//! `ProfileError`, never a panic. The input is split at the first NUL into two files, `a.yaml`
//! (the one loaded) and `b.yaml`, so includes between files and their cycles are reached.
#![no_main]
use std::path::PathBuf;
use std::sync::OnceLock;

use hostready_checks::profile;

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("tempdir").keep())
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (a, b) = match data.iter().position(|&x| x == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let dir = scratch();
    let path = dir.join("a.yaml");
    std::fs::write(&path, a).unwrap();
    std::fs::write(dir.join("b.yaml"), b).unwrap();
    match profile::load(path.to_str().unwrap()) {
        Ok(p) => {
            assert!(!p.name.is_empty());
            for r in &p.requirements {
                let _ = r.check.summary();
                let _ = r.check.default_id();
                assert!(!r.id.is_empty() && !r.id.contains(char::is_whitespace));
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
