//! `os-release(5)`: which distribution the host runs, decided by `ID` and `ID_LIKE`, never by
//! substrings of `NAME` (Longhorn's `"ol"` test matched unrelated names: longhorn/longhorn#9829).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{FsError, Root};

/// The most of an `os-release` file read; real ones are under 1 KiB.
pub const MAX_OS_RELEASE_BYTES: u64 = 64 << 10;

/// Where `os-release` may live, in the order `os-release(5)` says to try.
pub const OS_RELEASE_PATHS: [&str; 2] = ["/etc/os-release", "/usr/lib/os-release"];

/// A distribution family: hosts in one family install the same packages the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Debian,
    Rhel,
    Suse,
    Arch,
    Gentoo,
    Alpine,
    /// Hosts whose OS is an image, not a package set (Talos, Flatcar, Bottlerocket).
    Image,
    Unknown,
}

/// Hosts whose root filesystem is read-only or image-based, where "install a package" is the
/// wrong advice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Immutable {
    Talos,
    Flatcar,
    FedoraCoreos,
    RhelCoreos,
    SleMicro,
    OpensuseMicroos,
    Bottlerocket,
}

/// The parsed `os-release` and what follows from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OsRelease {
    pub id: String,
    pub id_like: Vec<String>,
    pub name: String,
    pub pretty_name: String,
    pub version_id: String,
    pub variant_id: String,
    pub family: Family,
    pub immutable: Option<Immutable>,
    /// Which file it was read from, inside the root.
    pub source: String,
}

impl OsRelease {
    /// Parses the text of an `os-release` file read from `source`.
    pub fn parse(text: &str, source: &str) -> OsRelease {
        let vars = parse_vars(text);
        let get = |k: &str| vars.get(k).cloned().unwrap_or_default();
        // os-release(5): ID defaults to "linux" when absent.
        let id = vars
            .get("ID")
            .cloned()
            .unwrap_or_else(|| "linux".into())
            .to_ascii_lowercase();
        let id_like: Vec<String> = get("ID_LIKE")
            .split_whitespace()
            .map(|s| s.to_ascii_lowercase())
            .collect();
        let variant_id = get("VARIANT_ID").to_ascii_lowercase();
        let immutable = immutable_of(&id, &variant_id);
        let family = family_of(&id, &id_like, immutable);
        OsRelease {
            id,
            id_like,
            name: get("NAME"),
            pretty_name: get("PRETTY_NAME"),
            version_id: get("VERSION_ID"),
            variant_id,
            family,
            immutable,
            source: source.to_string(),
        }
    }

    /// Reads the host's `os-release`; `None` when neither file exists or is readable.
    pub fn read(root: &Root) -> Option<OsRelease> {
        Self::try_read(root).ok().flatten()
    }

    /// Reads the host's `os-release`: `Ok(None)` when neither file exists, an error when one
    /// exists but cannot be read (permission denied, not a regular file, over
    /// [`MAX_OS_RELEASE_BYTES`]). `/etc/os-release` that exists but is unreadable is not
    /// skipped for `/usr/lib/os-release`: os-release(5) says the first one wins, and an older
    /// copy could name another distribution.
    pub fn try_read(root: &Root) -> Result<Option<OsRelease>, FsError> {
        for p in OS_RELEASE_PATHS {
            match root.read_to_string_bounded(p, MAX_OS_RELEASE_BYTES) {
                Ok(t) => return Ok(Some(OsRelease::parse(&t, p))),
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// Returns a short human name: `PRETTY_NAME`, else `NAME VERSION_ID`, else `ID`.
    pub fn display_name(&self) -> String {
        if !self.pretty_name.is_empty() {
            self.pretty_name.clone()
        } else if !self.name.is_empty() {
            format!("{} {}", self.name, self.version_id)
                .trim()
                .to_string()
        } else {
            self.id.clone()
        }
    }
}

fn immutable_of(id: &str, variant: &str) -> Option<Immutable> {
    Some(match id {
        "talos" => Immutable::Talos,
        "flatcar" => Immutable::Flatcar,
        "bottlerocket" => Immutable::Bottlerocket,
        "rhcos" => Immutable::RhelCoreos,
        "fedora" if variant == "coreos" => Immutable::FedoraCoreos,
        "sle-micro" | "sl-micro" | "suse-microos" => Immutable::SleMicro,
        "opensuse-microos" | "opensuse-leap-micro" => Immutable::OpensuseMicroos,
        _ => return None,
    })
}

/// Decides the family from `ID` first, then each `ID_LIKE` entry in order (most specific first,
/// as os-release(5) asks).
fn family_of(id: &str, id_like: &[String], immutable: Option<Immutable>) -> Family {
    if matches!(
        immutable,
        Some(Immutable::Talos | Immutable::Flatcar | Immutable::Bottlerocket)
    ) {
        return Family::Image;
    }
    std::iter::once(id)
        .chain(id_like.iter().map(String::as_str))
        .map(family_of_id)
        .find(|f| *f != Family::Unknown)
        .unwrap_or(Family::Unknown)
}

fn family_of_id(id: &str) -> Family {
    match id {
        "debian" | "ubuntu" | "linuxmint" | "pop" | "raspbian" | "kali" | "devuan"
        | "elementary" | "zorin" | "pureos" | "deepin" => Family::Debian,
        "rhel" | "centos" | "fedora" | "rocky" | "almalinux" | "ol" | "amzn" | "scientific"
        | "eurolinux" | "circle" | "navylinux" | "openeuler" | "anolis" | "kylin" | "redos"
        | "photon" | "mariner" | "azurelinux" | "rhcos" | "virtuozzo" | "cloudlinux" => {
            Family::Rhel
        }
        "suse"
        | "sles"
        | "sled"
        | "opensuse"
        | "opensuse-leap"
        | "opensuse-tumbleweed"
        | "opensuse-microos"
        | "opensuse-leap-micro"
        | "sle-micro"
        | "sl-micro"
        | "suse-microos"
        | "harvester"
        | "sle_hpc" => Family::Suse,
        "arch" | "manjaro" | "endeavouros" | "garuda" | "archarm" => Family::Arch,
        "gentoo" | "funtoo" | "chromeos" => Family::Gentoo,
        "alpine" | "postmarketos" => Family::Alpine,
        _ => Family::Unknown,
    }
}

/// Parses `KEY=value` lines with shell-style quoting, as os-release(5) specifies.
fn parse_vars(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        out.insert(k.trim().to_string(), unquote(v.trim()));
    }
    out
}

fn unquote(v: &str) -> String {
    let quoted = |q: char| v.len() >= 2 && v.starts_with(q) && v.ends_with(q);
    let inner = if quoted('"') || quoted('\'') {
        &v[1..v.len() - 1]
    } else {
        v
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn family(text: &str) -> (Family, Option<Immutable>) {
        let o = OsRelease::parse(text, "/etc/os-release");
        (o.family, o.immutable)
    }

    #[test]
    fn debian_bookworm() {
        let t = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n";
        let o = OsRelease::parse(t, "/etc/os-release");
        assert_eq!(o.family, Family::Debian);
        assert_eq!(o.version_id, "12");
        assert_eq!(o.display_name(), "Debian GNU/Linux 12 (bookworm)");
    }

    #[test]
    fn rocky_uses_id_like() {
        let t = "NAME=\"Rocky Linux\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"8.9\"\n";
        assert_eq!(family(t), (Family::Rhel, None));
    }

    #[test]
    fn unknown_rhel_derivative_falls_back_to_id_like() {
        let t = "ID=\"somenewel\"\nID_LIKE=\"rhel fedora\"\n";
        assert_eq!(family(t).0, Family::Rhel);
    }

    #[test]
    fn oracle_is_rhel_without_substring_matching() {
        assert_eq!(family("ID=\"ol\"\nID_LIKE=\"fedora\"\n").0, Family::Rhel);
        // A name containing "ol" must not be mistaken for Oracle Linux (longhorn#9829).
        assert_eq!(family("ID=solus\nNAME=Solus\n").0, Family::Unknown);
    }

    #[test]
    fn suse_and_sle_micro() {
        assert_eq!(
            family("ID=\"sles\"\nID_LIKE=\"suse\"\n"),
            (Family::Suse, None)
        );
        assert_eq!(
            family("NAME=\"SLE Micro\"\nID=\"sle-micro\"\nID_LIKE=\"suse\"\n"),
            (Family::Suse, Some(Immutable::SleMicro))
        );
        assert_eq!(
            family("ID=\"opensuse-leap\"\nID_LIKE=\"suse opensuse\"\n").0,
            Family::Suse
        );
    }

    #[test]
    fn immutable_hosts() {
        assert_eq!(
            family("ID=talos\n"),
            (Family::Image, Some(Immutable::Talos))
        );
        assert_eq!(
            family("ID=flatcar\nID_LIKE=coreos\n"),
            (Family::Image, Some(Immutable::Flatcar))
        );
        assert_eq!(
            family("ID=bottlerocket\n"),
            (Family::Image, Some(Immutable::Bottlerocket))
        );
        assert_eq!(
            family("ID=fedora\nVARIANT_ID=coreos\n"),
            (Family::Rhel, Some(Immutable::FedoraCoreos))
        );
        assert_eq!(
            family("ID=fedora\nVARIANT_ID=server\n"),
            (Family::Rhel, None)
        );
    }

    #[test]
    fn other_families() {
        assert_eq!(family("ID=ubuntu\nID_LIKE=debian\n").0, Family::Debian);
        assert_eq!(family("ID=arch\n").0, Family::Arch);
        assert_eq!(family("ID=gentoo\n").0, Family::Gentoo);
        assert_eq!(family("ID=alpine\n").0, Family::Alpine);
        assert_eq!(
            family("ID=amzn\nID_LIKE=\"centos rhel fedora\"\n").0,
            Family::Rhel
        );
        assert_eq!(family("ID=\"openEuler\"\n").0, Family::Rhel);
    }

    #[test]
    fn quoting_and_comments() {
        let o = OsRelease::parse("# c\nNAME='It\\'s'\nID=\"x\\\"y\"\nbogus line\n", "/x");
        assert_eq!(o.id, "x\"y");
        assert_eq!(o.name, "It's");
        assert_eq!(OsRelease::parse("", "/x").id, "linux");
    }
}
