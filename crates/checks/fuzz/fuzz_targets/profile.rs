//! Profile YAML: loading a user's file (validation, includes, cycles, size and depth bounds) is
//! `Ok` or a `ProfileError`, never a panic or a hang. The input is split at NUL bytes into up to
//! three files in a scratch directory, `a.yaml` (the one loaded), `b.yaml` and `c.yaml`, so
//! includes between files, repeated includes and cycles are reached.
//!
//! It also holds the pre-scan to its promise: for every piece that parses as YAML without
//! aliases, the depth it reports is at least the real nesting depth of the parsed value (an
//! under-estimate would let a deep text through to the parser's super-linear path).
#![no_main]
use std::path::PathBuf;
use std::sync::OnceLock;

use hostready_checks::profile::{self, names, prescan};
use serde_yaml_ng::Value;

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("tempdir").keep())
}

/// Returns how deeply collections nest in `v` (a scalar is 0).
fn depth(v: &Value) -> usize {
    match v {
        Value::Sequence(s) => 1 + s.iter().map(depth).max().unwrap_or(0),
        Value::Mapping(m) => {
            1 + m
                .iter()
                .map(|(k, v)| depth(k).max(depth(v)))
                .max()
                .unwrap_or(0)
        }
        Value::Tagged(t) => depth(&t.value),
        _ => 0,
    }
}

fn check_prescan(piece: &[u8]) {
    let Ok(text) = std::str::from_utf8(piece) else {
        return;
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let scanned = prescan::nesting_depth(text, usize::MAX).expect("no limit, no error");
    // Parse only what the loader would let through: a deeper text is refused before parsing.
    if scanned > prescan::MAX_DEPTH || text.contains('*') {
        return;
    }
    if let Ok(v) = serde_yaml_ng::from_str::<Value>(text) {
        let real = depth(&v);
        assert!(
            real <= scanned,
            "pre-scan said {scanned}, the YAML nests {real}: {text:?}"
        );
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut pieces = data.splitn(3, |&x| x == 0);
    let a = pieces.next().unwrap_or(b"");
    let b = pieces.next().unwrap_or(b"");
    let c = pieces.next().unwrap_or(b"");
    for piece in [a, b, c] {
        check_prescan(piece);
    }
    let dir = scratch();
    let path = dir.join("a.yaml");
    std::fs::write(&path, a).unwrap();
    std::fs::write(dir.join("b.yaml"), b).unwrap();
    std::fs::write(dir.join("c.yaml"), c).unwrap();
    match profile::load(path.to_str().unwrap()) {
        Ok(p) => {
            names::check_name(&p.name).expect("a loaded profile's name is valid");
            names::check_condition_type(&p.condition_type())
                .expect("a loaded profile's condition type is valid");
            assert!(p.requirements.len() <= profile::MAX_REQUIREMENTS);
            for r in &p.requirements {
                let _ = r.check.summary();
                let _ = r.check.default_id();
                names::check_id(&r.id).expect("a loaded requirement's id is valid");
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
