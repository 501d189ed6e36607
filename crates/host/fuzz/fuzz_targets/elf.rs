//! What a file needs to run: `exec_format` on a file holding the input (ELF headers, or a `#!`
//! line), and `parse_shebang` on the input itself. Hostile binaries on a host must give a
//! format or an I/O error, never a panic or a hang — and never allocate more than a small
//! multiple of the file: the kit's counting allocator (`crates/testkit/src/counting_alloc.rs`,
//! included by path) measures the peak bytes live during each call
//! (the case: `PT_INTERP` headers claiming 512 MiB each made `check` allocate ~1.5 GB).
#![no_main]
use std::path::PathBuf;
use std::sync::OnceLock;

use hostready_host::elf::{self, ExecFormat};

#[allow(dead_code)] // `within` serves pkgdb's paged-reader targets
#[path = "../../../testkit/src/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::peak_of;

#[global_allocator]
static ALLOC: counting_alloc::Counting = counting_alloc::Counting;

/// Allowed: twice the input, plus a constant for error strings and the file handle.
fn bound(input: usize) -> usize {
    2 * input + (16 << 10)
}

fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir").keep();
        dir.join("exe")
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (_, peak) = peak_of(|| elf::parse_shebang(data));
    assert!(peak <= bound(data.len()), "parse_shebang: {peak} bytes");
    let path = scratch();
    std::fs::write(path, data).expect("write scratch file");
    let file = std::fs::File::open(path).expect("open scratch file");
    let (format, peak) = peak_of(|| elf::exec_format(file).expect("reading a regular file"));
    assert!(
        peak <= bound(data.len()),
        "exec_format: {peak} bytes for {} of input",
        data.len()
    );
    match format {
        ExecFormat::Elf {
            machine,
            interpreter,
        } => {
            assert!(data.starts_with(b"\x7fELF"));
            let _ = elf::machine_name(machine);
            if let Some(i) = interpreter {
                assert!(i.len() as u64 <= elf::MAX_INTERP_BYTES * 3);
            }
        }
        ExecFormat::BadElf { why } => {
            assert!(data.starts_with(b"\x7fELF") && !why.is_empty());
        }
        ExecFormat::Script { interpreter, .. } => {
            assert!(data.starts_with(b"#!") && !interpreter.is_empty());
        }
        ExecFormat::Unknown => {}
    }
});
