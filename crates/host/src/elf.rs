//! What a file needs in order to run: an ELF's machine and program interpreter (`PT_INTERP`),
//! or a script's `#!` line. Only the headers are read (through `object`'s lazy reader), never
//! the whole binary.

use std::fs::File;
use std::io::Read;

use object::Endianness;
use object::read::elf::{FileHeader, ProgramHeader};
use serde::Serialize;

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
    /// Neither: the kernel will refuse it (`ENOEXEC`) unless a binfmt_misc handler exists.
    Unknown,
}

/// Reads the headers of `file` and returns its format.
pub fn exec_format(mut file: File) -> std::io::Result<ExecFormat> {
    let mut head = [0u8; 256];
    let n = read_up_to(&mut file, &mut head)?;
    let head = &head[..n];
    if let Some(rest) = head.strip_prefix(b"#!") {
        return Ok(parse_shebang(rest));
    }
    if !head.starts_with(b"\x7fELF") {
        return Ok(ExecFormat::Unknown);
    }
    let cache = object::ReadCache::new(file);
    let parsed = match head.get(4) {
        Some(1) => elf_facts::<object::elf::FileHeader32<Endianness>>(&cache),
        Some(2) => elf_facts::<object::elf::FileHeader64<Endianness>>(&cache),
        _ => None,
    };
    Ok(
        parsed.map_or(ExecFormat::Unknown, |(machine, interpreter)| {
            ExecFormat::Elf {
                machine,
                interpreter,
            }
        }),
    )
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn elf_facts<Elf: FileHeader<Endian = Endianness>>(
    data: &object::ReadCache<File>,
) -> Option<(u16, Option<String>)> {
    let header = Elf::parse(data).ok()?;
    let endian = header.endian().ok()?;
    let machine = header.e_machine(endian);
    let mut interpreter = None;
    for ph in header.program_headers(endian, data).ok()? {
        if let Ok(Some(bytes)) = ph.interpreter(endian, data) {
            interpreter = Some(String::from_utf8_lossy(bytes).into_owned());
        }
    }
    Some((machine, interpreter))
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
