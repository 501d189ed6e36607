//! Shared test helpers: tiny rpm packages built once per test binary with Debian's real
//! `rpmbuild`, installed with the real `rpm` into fresh SQLite rpmdbs. (The guard that kills
//! and reaps a child is `hostready_testkit::process::Reaped`.)

// Tests build fake hosts and read fixtures on this machine directly, not a host's root.
#![allow(clippy::disallowed_methods)]
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Builds (once per test binary) `count` tiny noarch packages from one spec with subpackages:
/// `hrpkg0..` each owning `/usr/share/hr/fileN`, plus `hralpha` (owns `/usr/bin/hralpha` and
/// the shared `/usr/share/hrshared/README`) and `hrbeta` (epoch 2, owns `/usr/bin/hrbeta`
/// and the same README). Returns the directory holding the .rpm files.
pub fn built_rpms(count: usize) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            // Rebuilt on every run (test binaries run one after another, so no clash).
            let top = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("pkgdb-rpms-{count}"));
            let _ = std::fs::remove_dir_all(&top);
            std::fs::create_dir_all(&top).unwrap();
            let spec = top.join("hr.spec");
            std::fs::write(&spec, spec_text(count)).unwrap();
            let out = Command::new("rpmbuild")
                .arg("-bb")
                .arg("--quiet")
                .arg("--define")
                .arg(format!("_topdir {}", top.display()))
                .args(["--define", "_build_id_links none"])
                .args(["--define", "_binary_payload w0.ufdio"])
                .arg(&spec)
                .stdin(Stdio::null())
                .output()
                .expect("rpmbuild (scripts/setup installs the rpm package)");
            assert!(
                out.status.success(),
                "rpmbuild failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            top.join("RPMS/noarch")
        })
        .clone()
}

fn spec_text(count: usize) -> String {
    let mut s = String::from(
        "Name: hralpha\nVersion: 1.0\nRelease: 1\nSummary: t\nLicense: MIT\nBuildArch: noarch\n\
         %description\nt\n\
         %package -n hrbeta\nSummary: b\nEpoch: 2\nVersion: 3.1\nRelease: 7.el9\n\
         %description -n hrbeta\nb\n",
    );
    for i in 0..count {
        s += &format!("%package -n hrpkg{i}\nSummary: p\n%description -n hrpkg{i}\np\n");
    }
    s += "%install\nmkdir -p %{buildroot}/usr/bin %{buildroot}/usr/share/hrshared %{buildroot}/usr/share/hr\n\
          echo a > %{buildroot}/usr/bin/hralpha\necho b > %{buildroot}/usr/bin/hrbeta\n\
          echo s > %{buildroot}/usr/share/hrshared/README\n";
    s += &format!(
        "for i in $(seq 0 {}); do echo $i > %{{buildroot}}/usr/share/hr/file$i; done\n",
        count as i64 - 1
    );
    s += "%files\n/usr/bin/hralpha\n/usr/share/hrshared/README\n\
          %files -n hrbeta\n/usr/bin/hrbeta\n/usr/share/hrshared/README\n";
    for i in 0..count {
        s += &format!("%files -n hrpkg{i}\n/usr/share/hr/file{i}\n");
    }
    s
}

/// Installs every built package into a fresh SQLite rpmdb under `root` (database only).
pub fn install(root: &Path, rpms: &Path) {
    let files: Vec<PathBuf> = std::fs::read_dir(rpms)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rpm"))
        .collect();
    let out = rpm(root)
        .args(["-i", "--nodeps", "--justdb", "--noscripts"])
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rpm -i failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `rpm --root ROOT --dbpath /var/lib/rpm`, stdin closed.
pub fn rpm(root: &Path) -> Command {
    let mut c = Command::new("rpm");
    c.arg("--root")
        .arg(root)
        .args(["--dbpath", "/var/lib/rpm"])
        .stdin(Stdio::null());
    c
}
