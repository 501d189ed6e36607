//! `/proc/locks`: the parser, SQLite lock levels, the analysis (without descriptors) and the
//! findings built from it.
#![no_main]
use hostready_doctor::locks;
use hostready_doctor::proc::Snapshot;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let entries = locks::parse_locks(&text);
    let _ = locks::sqlite_level(&entries);
    let files = locks::analyse(&entries, &Snapshot::default(), None, None, None);
    for f in &files {
        let _ = f.waiters();
    }
    let _ = locks::findings(&files, &Snapshot::default(), 60);
});
