//! What a file needs to run: `exec_format` on a file holding the input (ELF headers through
//! `object`, or a `#!` line), and `parse_shebang` on the input itself. Hostile binaries on a
//! host must give a format or an I/O error, never a panic, a hang or a huge allocation.
#![no_main]
use std::path::PathBuf;
use std::sync::OnceLock;

use hostready_host::elf::{self, ExecFormat};

fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir").keep();
        dir.join("exe")
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = elf::parse_shebang(data);
    let path = scratch();
    std::fs::write(path, data).expect("write scratch file");
    let file = std::fs::File::open(path).expect("open scratch file");
    match elf::exec_format(file).expect("reading a regular file") {
        ExecFormat::Elf { machine, .. } => {
            assert!(data.starts_with(b"\x7fELF"));
            let _ = elf::machine_name(machine);
        }
        ExecFormat::Script { interpreter, .. } => {
            assert!(data.starts_with(b"#!") && !interpreter.is_empty());
        }
        ExecFormat::Unknown => {}
    }
});
