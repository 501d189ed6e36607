//! Active swap areas from `/proc/swaps` — what `swapon --show` prints, with no process.
//!
//! The parser refuses a malformed line instead of skipping it: a skipped line would read as
//! "no swap" and pass the kubelet's rule on a host that has swap on. Memory bound: the file is
//! read with a cap of [`MAX_SWAPS_BYTES`] (the kernel allows at most 32 swap areas, each line a
//! path of at most `PATH_MAX` escaped bytes plus four numbers).

use serde::Serialize;

use crate::procfs::unescape_octal;

/// The largest `/proc/swaps` read.
pub const MAX_SWAPS_BYTES: u64 = 1 << 20;

/// One active swap area.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SwapArea {
    /// The device or file, with the kernel's octal escapes (`\040` for a space) decoded.
    pub filename: String,
    /// `partition` or `file`.
    pub kind: String,
    pub size_kib: u64,
    pub used_kib: u64,
    pub priority: i32,
}

/// A line of `/proc/swaps` that is not what the kernel writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("/proc/swaps line {line}: {why}")]
pub struct ParseError {
    pub line: usize,
    pub why: String,
}

/// Parses `/proc/swaps`: a header line (`Filename Type Size Used Priority`), then one line per
/// area. An empty file (no header) is accepted as no swap: kernels built without
/// `CONFIG_SWAP` have no `/proc/swaps` at all, and a kernel with it always writes the header.
pub fn parse(text: &str) -> Result<Vec<SwapArea>, ParseError> {
    let mut lines = text.lines().enumerate();
    match lines.next() {
        None => return Ok(Vec::new()),
        Some((_, h)) if h.split_whitespace().next() == Some("Filename") => {}
        Some((_, h)) => {
            return Err(ParseError {
                line: 1,
                why: format!("expected the header `Filename Type Size Used Priority`, found {h:?}"),
            });
        }
    }
    lines
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let bad = |why: &str| ParseError {
                line: i + 1,
                why: why.to_string(),
            };
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() != 5 {
                return Err(bad(
                    "expected five fields: filename, type, size, used, priority",
                ));
            }
            Ok(SwapArea {
                filename: unescape_octal(f[0]),
                kind: f[1].to_string(),
                size_kib: f[2].parse().map_err(|_| bad("size is not a number"))?,
                used_kib: f[3].parse().map_err(|_| bad("used is not a number"))?,
                priority: f[4].parse().map_err(|_| bad("priority is not a number"))?,
            })
        })
        .collect()
}

/// The largest `/etc/fstab` read.
pub const MAX_FSTAB_BYTES: u64 = 1 << 20;

/// Returns the swap entries of an `fstab(5)` that the boot activates: type `swap`, not
/// commented out, without `noauto`. Each is `(line, device)`.
pub fn fstab_swaps(text: &str) -> Vec<(usize, String)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.first().is_none_or(|d| d.starts_with('#')) || f.len() < 3 || f[2] != "swap" {
                return None;
            }
            let noauto = f
                .get(3)
                .is_some_and(|o| o.split(',').any(|o| o == "noauto"));
            (!noauto).then(|| (i + 1, unescape_octal(f[0])))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_has_no_swap() {
        // This machine's /proc/swaps, byte for byte.
        let t = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n";
        assert_eq!(parse(t).unwrap(), []);
        assert_eq!(parse("").unwrap(), []);
    }

    #[test]
    fn areas_real_samples() {
        // Ubuntu 22.04 cloud image with a swap file, and a zram device (negative priority is
        // the default for areas without one).
        let t = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n\
                 /swap.img                               file\t\t4194300\t\t0\t\t-2\n\
                 /dev/zram0                              partition\t8388604\t\t1024\t\t100\n\
                 /var/my\\040swap                          file\t\t1024\t\t0\t\t-3\n";
        let a = parse(t).unwrap();
        assert_eq!(a.len(), 3);
        assert_eq!(
            a[0],
            SwapArea {
                filename: "/swap.img".into(),
                kind: "file".into(),
                size_kib: 4_194_300,
                used_kib: 0,
                priority: -2
            }
        );
        assert_eq!(a[1].priority, 100);
        assert_eq!(a[2].filename, "/var/my swap");
    }

    #[test]
    fn fstab_swap_lines() {
        // Ubuntu's installer line, a commented one, a noauto one and an ordinary mount.
        let t = "# /etc/fstab\nUUID=1 / ext4 defaults 0 1\n/swap.img\tnone\tswap\tsw\t0\t0\n#/dev/sdb2 none swap sw 0 0\n/dev/sdc1 none swap noauto,sw 0 0\n";
        assert_eq!(fstab_swaps(t), [(3, "/swap.img".to_string())]);
        assert!(fstab_swaps("").is_empty());
    }

    #[test]
    fn malformed_lines_are_errors_not_skipped() {
        let e = parse("Filename Type Size Used Priority\n/swap.img file 10 0\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse("Filename Type Size Used Priority\n/swap.img file ten 0 -2\n").unwrap_err();
        assert!(e.to_string().contains("size"), "{e}");
        let e = parse("/swap.img file 10 0 -2\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert_eq!(unescape_octal("a\\\\b\\9"), "a\\\\b\\9");
        assert_eq!(unescape_octal("x\\134y"), "x\\y");
    }
}
