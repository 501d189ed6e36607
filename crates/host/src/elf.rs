//! What a file needs in order to run: an ELF's machine and program interpreter (`PT_INTERP`),
//! or a script's `#!` line.
//!
//! Memory bound: at most 256 bytes of head, one program-header table of at most
//! [`MAX_PHDR_TABLE_BYTES`] and one interpreter path of at most [`MAX_INTERP_BYTES`], each read
//! with a positioned read and never larger than the file — whatever sizes the file declares. (`object`'s lazy reader caches
//! every range it is asked for, so a file whose `PT_INTERP` headers each claim 512 MiB made it
//! allocate gigabytes; `object` still lays out the headers, only the reads are ours.) The
//! limits are the kernel's own (`fs/binfmt_elf.c`): a larger table or interpreter path is a
//! binary the kernel refuses to run.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use object::Endianness;
use object::read::elf::{FileHeader, ProgramHeader};
use serde::Serialize;

/// The largest interpreter path read: `PATH_MAX`, beyond which `binfmt_elf` refuses to exec.
pub const MAX_INTERP_BYTES: u64 = 4096;

/// The largest program-header table read: `binfmt_elf`'s `load_elf_phdrs` refuses more than
/// 64 KiB (and more than a page) of program headers.
pub const MAX_PHDR_TABLE_BYTES: usize = 64 << 10;

/// What kind of executable a file is, and what it asks of the host to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "format")]
pub enum ExecFormat {
    /// An ELF binary; `interpreter` is `None` for a static one.
    Elf {
        machine: u16,
        interpreter: Option<String>,
    },
    /// A script; `interpreter` is the `#!` program and `arg` its optional argument.
    Script {
        interpreter: String,
        arg: Option<String>,
    },
    /// An ELF file the kernel would refuse to run (`ENOEXEC`), and why.
    BadElf { why: String },
    /// Neither: the kernel will refuse it (`ENOEXEC`) unless a binfmt_misc handler exists.
    Unknown,
}

/// Reads the headers of `file` and returns its format.
pub fn exec_format(file: File) -> io::Result<ExecFormat> {
    // u64 words: `object`'s header types are 8-byte aligned.
    let mut words = [0u64; 32];
    let head = object::pod::bytes_of_slice_mut(&mut words);
    let n = read_full_at(&file, head, 0)?;
    let head = &head[..n];
    if let Some(rest) = head.strip_prefix(b"#!") {
        return Ok(parse_shebang(rest));
    }
    if !head.starts_with(b"\x7fELF") {
        return Ok(ExecFormat::Unknown);
    }
    match head.get(4) {
        Some(1) => elf_facts::<object::elf::FileHeader32<Endianness>>(&file, head),
        Some(2) => elf_facts::<object::elf::FileHeader64<Endianness>>(&file, head),
        _ => Ok(bad("an unknown ELF class")),
    }
}

fn bad(why: impl Into<String>) -> ExecFormat {
    ExecFormat::BadElf { why: why.into() }
}

/// Reads into `buf` from `offset` until it is full or the file ends; returns the bytes read.
fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], offset + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn elf_facts<Elf: FileHeader<Endian = Endianness>>(
    file: &File,
    head: &[u8],
) -> io::Result<ExecFormat> {
    let Ok(header) = Elf::parse(head) else {
        return Ok(bad("a truncated or malformed ELF header"));
    };
    let Ok(endian) = header.endian() else {
        return Ok(bad("an unknown ELF byte order"));
    };
    let machine = header.e_machine(endian);
    let count = usize::from(header.e_phnum(endian));
    let entsize = usize::from(header.e_phentsize(endian));
    if entsize != size_of::<Elf::ProgramHeader>() {
        return Ok(bad(format!("program headers of {entsize} bytes")));
    }
    let size = count * entsize;
    if size == 0 || size > MAX_PHDR_TABLE_BYTES {
        return Ok(bad(format!(
            "{count} program headers (the kernel runs 1 to {} of them)",
            MAX_PHDR_TABLE_BYTES / entsize
        )));
    }
    // Nothing is allocated for bytes the file does not have: memory stays within the file's
    // size as well as within the kernel's limits.
    let file_len = file.metadata()?.len();
    let phoff: u64 = header.e_phoff(endian).into();
    if phoff
        .checked_add(size as u64)
        .is_none_or(|end| end > file_len)
    {
        return Ok(bad("a program-header table past the end of the file"));
    }
    let mut words = vec![0u64; size.div_ceil(8)];
    let table = &mut object::pod::bytes_of_slice_mut(&mut words)[..size];
    if read_full_at(file, table, phoff)? < size {
        return Ok(bad("a program-header table past the end of the file"));
    }
    let Ok((phdrs, _)) = object::pod::slice_from_bytes::<Elf::ProgramHeader>(table, count) else {
        return Ok(bad("an unreadable program-header table"));
    };
    // The kernel uses the first PT_INTERP and ignores any later one.
    let Some(interp) = phdrs
        .iter()
        .find(|ph| ph.p_type(endian) == object::elf::PT_INTERP)
    else {
        return Ok(ExecFormat::Elf {
            machine,
            interpreter: None,
        });
    };
    let len: u64 = interp.p_filesz(endian).into();
    if !(2..=MAX_INTERP_BYTES).contains(&len) {
        return Ok(bad(format!(
            "an interpreter path of {len} bytes (the kernel takes 2 to {MAX_INTERP_BYTES})"
        )));
    }
    let offset: u64 = interp.p_offset(endian).into();
    if offset.checked_add(len).is_none_or(|end| end > file_len) {
        return Ok(bad("an interpreter path past the end of the file"));
    }
    let mut path = vec![0u8; len as usize];
    if read_full_at(file, &mut path, offset)? < path.len() {
        return Ok(bad("an interpreter path past the end of the file"));
    }
    if path.last() != Some(&0) {
        return Ok(bad("an interpreter path that is not NUL-terminated"));
    }
    let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
    Ok(ExecFormat::Elf {
        machine,
        interpreter: Some(String::from_utf8_lossy(&path[..end]).into_owned()),
    })
}

/// Parses what follows `#!`: the interpreter path and at most one argument (as Linux does).
pub fn parse_shebang(rest: &[u8]) -> ExecFormat {
    let line = rest.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let line = String::from_utf8_lossy(line);
    let mut parts = line.trim().splitn(2, [' ', '\t']);
    let interpreter = parts.next().unwrap_or("").to_string();
    let arg = parts
        .next()
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty());
    if interpreter.is_empty() {
        return ExecFormat::Unknown;
    }
    ExecFormat::Script { interpreter, arg }
}

/// Returns the ELF machine numbers this kernel runs natively or in compat mode, from its
/// `uname -m` machine string.
pub fn runnable_machines(uname_machine: &str) -> &'static [u16] {
    use object::elf::*;
    match uname_machine {
        "x86_64" => &[EM_X86_64, EM_386],
        "i386" | "i486" | "i586" | "i686" => &[EM_386],
        "aarch64" | "arm64" => &[EM_AARCH64, EM_ARM],
        m if m.starts_with("arm") => &[EM_ARM],
        "s390x" => &[EM_S390],
        "ppc64le" | "ppc64" => &[EM_PPC64],
        "riscv64" => &[EM_RISCV],
        "loongarch64" => &[EM_LOONGARCH],
        _ => &[],
    }
}

/// Returns a readable name for an ELF machine number.
pub fn machine_name(machine: u16) -> String {
    use object::elf::*;
    match machine {
        EM_X86_64 => "x86_64".into(),
        EM_386 => "i386".into(),
        EM_AARCH64 => "aarch64".into(),
        EM_ARM => "arm".into(),
        EM_S390 => "s390x".into(),
        EM_PPC64 => "ppc64".into(),
        EM_RISCV => "riscv".into(),
        EM_LOONGARCH => "loongarch".into(),
        other => format!("machine {other}"),
    }
}

#[cfg(test)]
// tests read fixtures and build fake hosts directly.
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    #[test]
    fn shebangs() {
        assert_eq!(
            parse_shebang(b"/bin/sh\necho"),
            ExecFormat::Script {
                interpreter: "/bin/sh".into(),
                arg: None
            }
        );
        assert_eq!(
            parse_shebang(b" /usr/bin/env  python3 \n"),
            ExecFormat::Script {
                interpreter: "/usr/bin/env".into(),
                arg: Some("python3".into())
            }
        );
        assert_eq!(parse_shebang(b"\n"), ExecFormat::Unknown);
    }

    /// Builds a little-endian x86_64 ELF64 whose program headers are `phdrs` (type, offset,
    /// file size), with `blobs` written at their offsets and the file extended to `len`.
    fn elf64(phdrs: &[(u32, u64, u64)], blobs: &[(u64, &[u8])], len: u64) -> File {
        let mut b = vec![0u8; 64];
        b[..8].copy_from_slice(b"\x7fELF\x02\x01\x01\x00");
        b[16..18].copy_from_slice(&3u16.to_le_bytes()); // ET_DYN
        b[18..20].copy_from_slice(&object::elf::EM_X86_64.to_le_bytes());
        b[20..24].copy_from_slice(&1u32.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        b[52..54].copy_from_slice(&64u16.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&(phdrs.len() as u16).to_le_bytes());
        b[58..60].copy_from_slice(&64u16.to_le_bytes());
        for (ty, off, size) in phdrs {
            let mut ph = [0u8; 56];
            ph[..4].copy_from_slice(&ty.to_le_bytes());
            ph[8..16].copy_from_slice(&off.to_le_bytes());
            ph[32..40].copy_from_slice(&size.to_le_bytes());
            ph[40..48].copy_from_slice(&size.to_le_bytes());
            b.extend_from_slice(&ph);
        }
        let f = tempfile::tempfile().unwrap();
        f.write_all_at(&b, 0).unwrap();
        for (off, data) in blobs {
            f.write_all_at(data, *off).unwrap();
        }
        f.set_len(len.max(b.len() as u64)).unwrap();
        f
    }

    use object::elf::{PT_INTERP, PT_LOAD};

    #[test]
    fn first_pt_interp_is_the_interpreter_as_for_the_kernel() {
        let f = elf64(
            &[
                (PT_LOAD, 0, 4096),
                (PT_INTERP, 4096, 11),
                (PT_INTERP, 8192, 9),
            ],
            &[(4096, b"/lib/ld.so\0"), (8192, b"/bin/no\0\0")],
            16384,
        );
        assert_eq!(
            exec_format(f).unwrap(),
            ExecFormat::Elf {
                machine: object::elf::EM_X86_64,
                interpreter: Some("/lib/ld.so".into())
            }
        );
        let f = elf64(&[(PT_LOAD, 0, 4096)], &[], 4096);
        assert!(matches!(
            exec_format(f).unwrap(),
            ExecFormat::Elf {
                interpreter: None,
                ..
            }
        ));
    }

    #[test]
    fn what_the_kernel_refuses_is_a_bad_elf_not_an_allocation() {
        let bad = |f: File| match exec_format(f).unwrap() {
            ExecFormat::BadElf { why } => why,
            other => panic!("accepted: {other:?}"),
        };
        // An interpreter path claiming 512 MiB of a sparse file.
        let huge = 512 << 20;
        let why = bad(elf64(&[(PT_INTERP, 4096, huge)], &[], huge + 4096));
        assert!(why.contains("interpreter path of 536870912 bytes"), "{why}");
        // Not NUL-terminated, past the end, too short.
        assert!(bad(elf64(&[(PT_INTERP, 4096, 4)], &[(4096, b"/abc")], 8192)).contains("NUL"));
        assert!(bad(elf64(&[(PT_INTERP, 4096, 100)], &[], 4100)).contains("past the end"));
        assert!(bad(elf64(&[(PT_INTERP, 4096, 1)], &[], 8192)).contains("1 bytes"));
        // More program headers than the kernel reads, and none at all.
        let many: Vec<_> = (0..1200).map(|_| (PT_LOAD, 0, 0)).collect();
        assert!(bad(elf64(&many, &[], 0)).contains("1200 program headers"));
        assert!(bad(elf64(&[], &[], 0)).contains("0 program headers"));
        // A table that points past the end of the file.
        let mut f = elf64(&[(PT_LOAD, 0, 0)], &[], 0);
        f.write_all_at(&(1u64 << 40).to_le_bytes(), 32).unwrap();
        assert!(bad(f).contains("past the end"));
        f = tempfile::tempfile().unwrap();
        f.write_all_at(b"\x7fELF\x03", 0).unwrap();
        assert!(bad(f).contains("class"));
    }

    #[test]
    fn this_test_binary_is_elf_with_known_machine() {
        let exe = std::env::current_exe().unwrap();
        let f = exec_format(File::open(exe).unwrap()).unwrap();
        let ExecFormat::Elf { machine, .. } = f else {
            panic!("not ELF: {f:?}")
        };
        let uname = rustix::system::uname();
        let m = uname.machine().to_str().unwrap();
        assert!(
            runnable_machines(m).contains(&machine),
            "{m} vs {}",
            machine_name(machine)
        );
    }

    #[test]
    fn dynamic_system_binary_has_interpreter() {
        // /bin/sh is dynamically linked on every Debian host this suite runs on.
        let Ok(f) = File::open("/bin/sh") else { return };
        match exec_format(f).unwrap() {
            ExecFormat::Elf {
                interpreter: Some(i),
                ..
            } => assert!(i.starts_with("/lib"), "{i}"),
            other => panic!("unexpected {other:?}"),
        }
    }
}
