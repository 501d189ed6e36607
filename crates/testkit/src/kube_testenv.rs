//! A real control plane for a test (`scripts/kube-testenv`: embedded etcd and kube-apiserver
//! on loopback) in a temp dir of its own, told the test's pid (it stops by itself if the test
//! dies without cleaning up), and taken down, state deleted, on drop.
//!
//! The kit holds no Kubernetes client (it would bring kube-rs into every crate's tests); a test
//! makes its own from [`KubeTestenv::kubeconfig`].

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::WORKSPACE;

fn script() -> String {
    format!("{WORKSPACE}/scripts/kube-testenv")
}

/// Runs `scripts/kube-testenv ARGS --dir DIR`, told this test's pid, and returns its output:
/// for the tests that run the script's own steps (the README's), with a guard of their own.
pub fn run(args: &[&str], dir: &Path) -> Output {
    Command::new(script())
        .args(args)
        .arg("--dir")
        .arg(dir)
        .env("KUBE_TESTENV_PARENT", std::process::id().to_string())
        .output()
        .expect("run scripts/kube-testenv")
}

/// A running control plane; `scripts/kube-testenv down` on drop.
#[derive(Debug)]
pub struct KubeTestenv {
    pub dir: tempfile::TempDir,
    /// The admin's kubeconfig (its token has every right).
    pub kubeconfig: PathBuf,
}

impl KubeTestenv {
    /// Builds kube-testenv if needed (minutes, once; cached under `.cache/`) and starts it;
    /// panics if it does not come up, after which the drop still tears down what it started.
    pub fn up() -> KubeTestenv {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = Command::new(script())
            .args(["up", "--dir"])
            .arg(dir.path())
            .env("KUBE_TESTENV_PARENT", std::process::id().to_string())
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/kube-testenv");
        let mut env = KubeTestenv {
            dir,
            kubeconfig: PathBuf::new(),
        };
        assert!(out.status.success(), "scripts/kube-testenv up failed");
        let stdout = String::from_utf8(out.stdout).unwrap();
        let kc = stdout
            .lines()
            .last()
            .and_then(|l| l.strip_prefix("KUBECONFIG="))
            .unwrap_or_else(|| panic!("no KUBECONFIG= line: {stdout}"));
        env.kubeconfig = PathBuf::from(kc);
        env
    }
}

impl Drop for KubeTestenv {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .args(["down", "--dir"])
            .arg(self.dir.path())
            .status();
    }
}
