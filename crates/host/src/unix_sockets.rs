//! `/proc/net/unix`, streamed: the host's listening Unix sockets (path and abstract), without
//! holding the table in memory.
//!
//! A busy node has tens of thousands of Unix sockets (each container runtime shim, each
//! D-Bus client); nearly all are connected ends, and only the few hundred listeners matter to a
//! check. So the table is read line by line through a fixed buffer and only listening sockets
//! are kept. Format (`net/unix/af_unix.c`, `unix_seq_show`): a header line, then per socket
//! `Num RefCount Protocol Flags Type St Inode Path` — `Flags` has `__SO_ACCEPTCON` (1 << 16)
//! on a listener, `St` is the `socket_state` (`SS_UNCONNECTED` = 1 for a listener), `Path` is
//! missing for unbound sockets, starts with `@` for an abstract name (whose NUL bytes the kernel
//! prints as `@`), and is printed raw, spaces included.
//!
//! Memory bound: one [`READ_BUFFER`] buffer, one line of at most [`MAX_LINE`] bytes, and at
//! most [`MAX_LISTENERS`] listeners of at most 108 bytes of path each (`sun_path`), about
//! 2.5 MiB, whatever the table's size. More listeners than that is an error naming the file,
//! never a silently partial list (a missing listener would read as "not socket-activated").

use std::io::{BufRead, BufReader, Read};

use serde::Serialize;

use crate::{FsError, Root};

/// The most listening sockets kept from one table; a node has a few hundred.
pub const MAX_LISTENERS: usize = 16_384;

/// The longest line accepted: a socket line is about 70 bytes plus a path of at most 108
/// bytes; longer is damage (or a path with a newline, which splits its line anyway).
pub const MAX_LINE: usize = 4096;

/// The read buffer: the table is streamed through it.
pub const READ_BUFFER: usize = 64 << 10;

/// `__SO_ACCEPTCON` (`include/linux/net.h`): set on a socket that `listen(2)` was called on.
const SO_ACCEPTCON: u32 = 1 << 16;

/// `SS_UNCONNECTED` (`include/uapi/linux/net.h`): a listener's state.
const SS_UNCONNECTED: u8 = 1;

/// A listening Unix socket of the host's network namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listener {
    /// The bound name as the kernel prints it: a path, or `@name` for an abstract socket.
    pub name: String,
    /// `stream`, `dgram`, `seqpacket` or the raw type number.
    pub socket_type: String,
}

impl Listener {
    /// Returns true if and only if the name is in the abstract namespace (no file behind it).
    pub fn is_abstract(&self) -> bool {
        self.name.starts_with('@')
    }
}

/// Why the table could not be read.
#[derive(Debug, thiserror::Error)]
pub enum UnixSocketsError {
    #[error("cannot read {0}")]
    Read(#[source] FsError),
    #[error("{file}: line {line} is longer than {MAX_LINE} bytes")]
    LongLine { file: String, line: usize },
    #[error("{file}: more than {MAX_LISTENERS} listening sockets; refusing a partial list")]
    TooMany { file: String },
    #[error("{file}: no header line (not a /proc/net/unix table)")]
    NoHeader { file: String },
}

/// Reads the listening sockets of the host-wide table: pid 1's (`/1/net/unix`, the host's
/// network namespace when hostready runs with hostPID), or the procfs's own where pid 1 has
/// none. Returns them with the file read, as `/proc/...`.
pub fn read_listeners(proc: &Root) -> Result<(Vec<Listener>, String), UnixSocketsError> {
    let (file, shown) = match proc.open_file("/1/net/unix") {
        Ok(f) => (f, "/proc/1/net/unix"),
        Err(e) if e.is_not_found() => match proc.open_file("/self/net/unix") {
            Ok(f) => (f, "/proc/self/net/unix"),
            Err(_) => return Err(UnixSocketsError::Read(e)),
        },
        Err(e) => return Err(UnixSocketsError::Read(e)),
    };
    parse_listeners(file, shown).map(|l| (l, shown.to_string()))
}

/// Parses a `/proc/net/unix` table from `input`, keeping the listening sockets; `file` names
/// it in errors. Malformed socket lines are skipped (the kernel writes the table; a line we
/// cannot read is not a listener we can name), a missing header is an error.
pub fn parse_listeners(input: impl Read, file: &str) -> Result<Vec<Listener>, UnixSocketsError> {
    let mut reader = BufReader::with_capacity(READ_BUFFER, input);
    let mut line = Vec::with_capacity(256);
    let mut out = Vec::new();
    let mut number = 0;
    loop {
        line.clear();
        let n = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| {
                UnixSocketsError::Read(FsError {
                    path: file.into(),
                    root: "/".into(),
                    source: e,
                })
            })?;
        if n == 0 {
            break;
        }
        number += 1;
        if line.len() > MAX_LINE {
            return Err(UnixSocketsError::LongLine {
                file: file.into(),
                line: number,
            });
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches('\n');
        if number == 1 {
            if !text.starts_with("Num") {
                return Err(UnixSocketsError::NoHeader { file: file.into() });
            }
            continue;
        }
        if let Some(l) = parse_line(text) {
            if out.len() == MAX_LISTENERS {
                return Err(UnixSocketsError::TooMany { file: file.into() });
            }
            out.push(l);
        }
    }
    if number == 0 {
        return Err(UnixSocketsError::NoHeader { file: file.into() });
    }
    Ok(out)
}

/// Parses one socket line; `Some` only for a bound listener.
fn parse_line(line: &str) -> Option<Listener> {
    // Seven fields separated by single spaces (the inode right-aligned, so skip runs), then
    // the path verbatim: it may itself contain spaces.
    let mut rest = line;
    let mut fields = [""; 7];
    for f in &mut fields {
        rest = rest.trim_start_matches(' ');
        let end = rest.find(' ').unwrap_or(rest.len());
        *f = &rest[..end];
        rest = &rest[end..];
    }
    if !fields[0].ends_with(':') {
        return None;
    }
    let flags = u32::from_str_radix(fields[3], 16).ok()?;
    let kind = u16::from_str_radix(fields[4], 16).ok()?;
    let state = u8::from_str_radix(fields[5], 16).ok()?;
    fields[6].parse::<u64>().ok()?;
    let name = rest.strip_prefix(' ')?;
    if flags & SO_ACCEPTCON == 0 || state != SS_UNCONNECTED || name.is_empty() {
        return None;
    }
    let socket_type = match kind {
        1 => "stream".to_string(),
        2 => "dgram".to_string(),
        5 => "seqpacket".to_string(),
        n => n.to_string(),
    };
    Some(Listener {
        name: name.to_string(),
        socket_type,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This machine's table while a test script held a path listener with a space in its
    /// name and its accepted-pending peer, an abstract multipathd listener (as Ubuntu's
    /// `multipathd.socket` holds it), a bound datagram socket and an abstract seqpacket
    /// listener; plus unbound connected ends.
    const THIS_MACHINE: &str = "Num       RefCount Protocol Flags    Type St Inode Path\n\
00000000fd76f3ea: 00000003 00000000 00000000 0001 03 2137304\n\
00000000832a69a3: 00000003 00000000 00000000 0001 03   111\n\
00000000313c49c5: 00000002 00000000 00010000 0001 01 2137301 /tmp/t sp.sock\n\
0000000065b8c6e3: 00000003 00000000 00000000 0001 02     0 /tmp/t sp.sock\n\
00000000211c6dc9: 00000002 00000000 00010000 0001 01 2137300 @/org/kernel/linux/storage/multipathd\n\
0000000014773a60: 00000002 00000000 00000000 0002 01 2137302 @dg@x\n\
00000000be45c973: 00000002 00000000 00010000 0005 01 2137303 @ISCSIADM_ABSTRACT_NAMESPACE\n";

    #[test]
    fn this_machines_table_keeps_only_listeners() {
        let l = parse_listeners(THIS_MACHINE.as_bytes(), "unix").unwrap();
        let names: Vec<&str> = l.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "/tmp/t sp.sock",
                "@/org/kernel/linux/storage/multipathd",
                "@ISCSIADM_ABSTRACT_NAMESPACE"
            ]
        );
        assert!(!l[0].is_abstract());
        assert!(l[1].is_abstract());
        assert_eq!(l[2].socket_type, "seqpacket");
    }

    #[test]
    fn header_only_and_missing_header() {
        let empty = "Num       RefCount Protocol Flags    Type St Inode Path\n";
        assert!(parse_listeners(empty.as_bytes(), "u").unwrap().is_empty());
        assert!(matches!(
            parse_listeners(&b""[..], "u"),
            Err(UnixSocketsError::NoHeader { .. })
        ));
        assert!(matches!(
            parse_listeners(&b"garbage\n"[..], "u"),
            Err(UnixSocketsError::NoHeader { .. })
        ));
    }

    #[test]
    fn damaged_lines_are_skipped_and_long_lines_refused() {
        let t = format!(
            "Num x\nzz: 1 2 3\n0: 00000002 00000000 0001000g 0001 01 5 /bad\n0: 00000002 00000000 00010000 0001 01 5 /good\n0: 00000002 00000000 00010000 0001 01 5 /{}\n",
            "a".repeat(MAX_LINE)
        );
        let e = parse_listeners(t.as_bytes(), "/proc/1/net/unix").unwrap_err();
        assert!(
            matches!(e, UnixSocketsError::LongLine { line: 5, .. }),
            "{e}"
        );
        let t = "Num x\nzz: 1 2 3\n0: 00000002 00000000 0001000g 0001 01 5 /bad\n0: 00000002 00000000 00010000 0001 01 5 /good\n";
        let l = parse_listeners(t.as_bytes(), "u").unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].name, "/good");
    }

    #[test]
    fn a_hundred_thousand_sockets_stream_and_too_many_listeners_is_an_error() {
        // 100,000 connected sockets stream through without being kept.
        let mut t = String::from("Num       RefCount Protocol Flags    Type St Inode Path\n");
        for i in 0..100_000 {
            t.push_str(&format!(
                "00000000fd76f3ea: 00000003 00000000 00000000 0001 03 {i}\n"
            ));
        }
        t.push_str("0: 00000002 00000000 00010000 0001 01 1 /run/containerd/containerd.sock\n");
        let l = parse_listeners(t.as_bytes(), "u").unwrap();
        assert_eq!(l.len(), 1);
        let mut t = String::from("Num\n");
        for i in 0..=MAX_LISTENERS {
            t.push_str(&format!(
                "0: 00000002 00000000 00010000 0001 01 {i} @l{i}\n"
            ));
        }
        let e = parse_listeners(t.as_bytes(), "/proc/1/net/unix").unwrap_err();
        assert!(e.to_string().contains("/proc/1/net/unix"), "{e}");
    }
}
