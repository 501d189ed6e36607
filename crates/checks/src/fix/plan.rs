//! From findings to a [`FixPlan`]: one match arm per [`Subject`] kind. A kind without an arm
//! (a check family added later) falls to the wildcard arm and is planned as "no automatic
//! fix", with its remediation as comments — never silently dropped.
//!
//! Which package, which command: the finding's remediation, written by `remedy.rs`, is read
//! back here (its `package`, and whether it is exactly what `remedy` gives for a module load
//! or a reinstall), so the script does what the finding's advice says.

use hostready_host::os_release::OsRelease;

use super::{Action, FixPlan, Present};
use crate::finding::{Finding, Remediation, Status, Subject};
use crate::remedy::{self, Installer};

impl FixPlan {
    /// Builds the plan that would fix `findings` on a host running `os`: a step for every
    /// finding that failed or warned, and an [`Action::Undecided`] note for every `unknown`.
    pub fn build(findings: &[Finding], os: Option<&OsRelease>) -> FixPlan {
        let mut plan = FixPlan::default();
        for f in findings {
            match f.status {
                Status::Pass => {}
                Status::Unknown => plan.add(
                    Action::Undecided {
                        why: f.message.clone(),
                    },
                    &f.id,
                ),
                Status::Fail | Status::Warn => {
                    for action in actions(f, os) {
                        plan.add(action, &f.id);
                    }
                }
            }
        }
        plan
    }
}

/// The actions that fix one failed or warned finding.
fn actions(f: &Finding, os: Option<&OsRelease>) -> Vec<Action> {
    let fix = f.remediation.as_ref();
    match &f.subject {
        // Present but unable to start: reinstalling over a file that exists cannot be made
        // idempotent by looking for the file, so that one is left to the operator.
        Subject::Executable(exe) if f.evidence.get("path").is_none() => {
            executable(exe, f, os).unwrap_or_else(|| vec![manual(f)])
        }
        Subject::KernelModule(m) => module(m, fix, os).unwrap_or_else(|| vec![manual(f)]),
        // nfs.client fails with the nfsv4 module's own remediation when it can be loaded.
        Subject::NfsClient => module("nfsv4", fix, os).unwrap_or_else(|| vec![manual(f)]),
        // Only "neither running nor socket-activated" (whose remediation is start_service's,
        // at either level): a daemon that runs but is unreachable needs a look, not a
        // restart in a script.
        Subject::Service(name)
            if fix.is_some_and(|r| r.commands == remedy::start_service(name, os).commands)
                && fix.is_some_and(|r| !r.commands.is_empty()) =>
        {
            vec![Action::enable_service(name, os)]
        }
        // A sysctl whose remediation sets it (not one the OS configures elsewhere): the
        // wanted value is the finding's `needed` evidence.
        Subject::Sysctl(name) if fix.is_some_and(|r| !r.commands.is_empty()) => {
            match f.evidence.get("needed") {
                Some(value) => vec![Action::sysctl(name, value, os)],
                None => vec![manual(f)],
            }
        }
        // Only where modprobe.d sets it (a loadable module): a built-in module's parameter
        // is a kernel command line change, which needs a reboot and stays a comment.
        Subject::ModuleParameter { module, parameter }
            if fix
                .is_some_and(|r| r.commands.iter().any(|c| c.contains(remedy::MODPROBE_FILE))) =>
        {
            match f.evidence.get("needed") {
                Some(value) => vec![Action::module_option(module, parameter, value, os)],
                None => vec![manual(f)],
            }
        }
        _ => vec![manual(f)],
    }
}

/// Installs the executable's package, as its remediation says: a remediation without
/// commands (corrupt package database, no installer on this OS) is not acted on.
fn executable(exe: &str, f: &Finding, os: Option<&OsRelease>) -> Option<Vec<Action>> {
    let fix = f.remediation.as_ref()?;
    let package = fix.package.as_ref()?;
    if fix.commands.is_empty() {
        return None;
    }
    let installer = Installer::of(os)?;
    Some(vec![Action::Install {
        installer,
        package: package.clone(),
        reinstall: fix.commands == remedy::reinstall(package, os),
        unless: Present::Executable(exe.to_string()),
    }])
}

/// Loads `module` when its remediation is [`remedy::load_module`]'s; installs the package that
/// provides its file first when the remediation names one (Ubuntu's linux-modules-extra).
fn module(module: &str, fix: Option<&Remediation>, os: Option<&OsRelease>) -> Option<Vec<Action>> {
    let fix = fix?;
    if *fix == remedy::load_module(module, os) {
        return Some(vec![Action::load_module(module, os)]);
    }
    let package = fix.package.as_ref()?;
    let installer = Installer::of(os)?;
    Some(vec![
        Action::Install {
            installer,
            package: package.clone(),
            reinstall: false,
            unless: Present::Module(module.to_string()),
        },
        Action::load_module(module, os),
    ])
}

/// A step that says what the finding needs and that this script does not do it.
fn manual(f: &Finding) -> Action {
    let (what, commands, notes) = match &f.remediation {
        Some(r) => (r.summary.clone(), r.commands.clone(), r.notes.clone()),
        None => (f.message.clone(), vec![], vec![]),
    };
    Action::Manual {
        what: if what.is_empty() {
            f.message.clone()
        } else {
            what
        },
        commands,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{Evidence, Level};
    use crate::fix::{ModuleList, ServiceManager};

    fn os(text: &str) -> OsRelease {
        OsRelease::parse(text, "/etc/os-release")
    }

    fn finding(id: &str, subject: Subject, status: Status, fix: Option<Remediation>) -> Finding {
        Finding {
            id: id.into(),
            profile: "p".into(),
            level: Level::Required,
            status,
            message: format!("{id} is not right"),
            evidence: Evidence::default(),
            remediation: fix,
            subject,
            probe: None,
        }
    }

    #[test]
    fn findings_become_ordered_steps_with_the_remediations_packages() {
        let deb = os("ID=debian\n");
        let none = Default::default();
        let exe = |n: &str| {
            finding(
                &format!("exe.{n}"),
                Subject::Executable(n.into()),
                Status::Fail,
                Some(remedy::missing_executable(n, Some(&deb), &none)),
            )
        };
        let findings = vec![
            finding(
                "svc.iscsid",
                Subject::Service("iscsid".into()),
                Status::Fail,
                Some(remedy::start_service("iscsid", Some(&deb))),
            ),
            finding(
                "kmod.iscsi_tcp",
                Subject::KernelModule("iscsi_tcp".into()),
                Status::Fail,
                Some(remedy::load_module("iscsi_tcp", Some(&deb))),
            ),
            exe("iscsiadm"),
            exe("mount.nfs"),
            exe("mount.nfs4"),
            finding("kernel.version", Subject::KernelVersion, Status::Fail, None),
            finding("cpu.flags", Subject::CpuFlags, Status::Unknown, None),
            finding(
                "exe.grep",
                Subject::Executable("grep".into()),
                Status::Pass,
                None,
            ),
        ];
        let plan = FixPlan::build(&findings, Some(&deb));
        let got: Vec<(&Action, Vec<&str>)> = plan
            .steps
            .iter()
            .map(|s| (&s.action, s.fixes.iter().map(String::as_str).collect()))
            .collect();
        let install = |p: &str, e: &str| Action::Install {
            installer: Installer::Apt,
            package: p.into(),
            reinstall: false,
            unless: Present::Executable(e.into()),
        };
        assert_eq!(
            got[0],
            (&install("open-iscsi", "iscsiadm"), vec!["exe.iscsiadm"])
        );
        assert_eq!(
            got[1],
            (&install("nfs-common", "mount.nfs"), vec!["exe.mount.nfs"])
        );
        assert_eq!(
            got[2],
            (&install("nfs-common", "mount.nfs4"), vec!["exe.mount.nfs4"])
        );
        assert_eq!(
            got[3],
            (
                &Action::LoadModule {
                    module: "iscsi_tcp".into(),
                    list: ModuleList::ModulesLoadD
                },
                vec!["kmod.iscsi_tcp"]
            )
        );
        assert_eq!(
            got[4],
            (
                &Action::EnableService {
                    name: "iscsid".into(),
                    manager: ServiceManager::Systemd
                },
                vec!["svc.iscsid"]
            )
        );
        assert!(matches!(got[5].0, Action::Manual { .. }), "{got:?}");
        assert_eq!(got[5].1, ["kernel.version"]);
        assert!(matches!(got[6].0, Action::Undecided { .. }), "{got:?}");
        assert_eq!(got.len(), 7);
    }

    /// A recommended service that is down warns, and is still started; one that runs but is
    /// unreachable is left to the operator.
    #[test]
    fn services_are_started_only_when_down() {
        let deb = os("ID=debian\n");
        let mut down = finding(
            "svc.iscsid",
            Subject::Service("iscsid".into()),
            Status::Warn,
            Some(remedy::start_service("iscsid", Some(&deb))),
        );
        down.level = Level::Recommended;
        let plan = FixPlan::build(&[down], Some(&deb));
        assert!(matches!(plan.steps[0].action, Action::EnableService { .. }));
        let unreachable = finding(
            "svc.iscsid",
            Subject::Service("iscsid".into()),
            Status::Warn,
            Some(Remediation {
                summary: "run iscsid in the host's network namespace".into(),
                commands: vec!["systemctl restart iscsid".into()],
                ..Remediation::default()
            }),
        );
        assert!(!FixPlan::build(&[unreachable], Some(&deb)).changes_anything());
    }

    /// A sysctl and a loadable module's parameter become their steps, with the value the
    /// finding's `needed` evidence holds (the check families write it); a built-in module's
    /// parameter (a kernel command line change) and a Talos host's sysctl stay comments.
    #[test]
    fn sysctls_and_module_options_take_the_needed_value() {
        let deb = os("ID=debian\n");
        let mut sysctl = finding(
            "sysctl.net.ipv4.ip_forward",
            Subject::Sysctl("net.ipv4.ip_forward".into()),
            Status::Fail,
            Some(remedy::set_sysctl(
                "net.ipv4.ip_forward",
                "1",
                None,
                Some(&deb),
            )),
        );
        sysctl.evidence.add("needed", "1");
        let module_parameter = |builtin: bool| {
            let mut f = finding(
                "kmod.nvme_core.multipath",
                Subject::ModuleParameter {
                    module: "nvme_core".into(),
                    parameter: "multipath".into(),
                },
                Status::Fail,
                Some(remedy::module_parameter(
                    "nvme_core",
                    "multipath",
                    "N",
                    builtin,
                    false,
                    Some(&deb),
                )),
            );
            f.evidence.add("needed", "N");
            f
        };
        let plan = FixPlan::build(&[sysctl.clone(), module_parameter(false)], Some(&deb));
        let actions: Vec<_> = plan.steps.iter().map(|s| &s.action).collect();
        assert!(
            actions
                .iter()
                .any(|a| matches!(a, Action::Sysctl { name, value }
                if name == "net.ipv4.ip_forward" && value == "1")),
            "{plan:?}"
        );
        assert!(
            actions.iter().any(
                |a| matches!(a, Action::ModuleOption { module, parameter, value }
                if module == "nvme_core" && parameter == "multipath" && value == "N")
            ),
            "{plan:?}"
        );
        assert!(!FixPlan::build(&[module_parameter(true)], Some(&deb)).changes_anything());
        let talos = os("ID=talos\n");
        sysctl.remediation = Some(remedy::set_sysctl(
            "net.ipv4.ip_forward",
            "1",
            None,
            Some(&talos),
        ));
        assert!(!FixPlan::build(&[sysctl], Some(&talos)).changes_anything());
    }

    /// One action for two findings: nfs.client and kmod.nfsv4 both ask for nfsv4.
    #[test]
    fn the_same_action_is_planned_once_for_every_finding_it_fixes() {
        let deb = os("ID=debian\n");
        let load = remedy::load_module("nfsv4", Some(&deb));
        let findings = [
            finding(
                "kmod.nfsv4",
                Subject::KernelModule("nfsv4".into()),
                Status::Fail,
                Some(load.clone()),
            ),
            finding("nfs.client", Subject::NfsClient, Status::Fail, Some(load)),
        ];
        let plan = FixPlan::build(&findings, Some(&deb));
        assert_eq!(plan.steps.len(), 1);
        assert_eq!(plan.steps[0].fixes, ["kmod.nfsv4", "nfs.client"]);
    }

    #[test]
    fn what_cannot_be_done_here_is_a_manual_step() {
        let none = Default::default();
        // Talos: no installer and no /etc: the machine config, as comments.
        let talos = os("ID=talos\n");
        let f = finding(
            "exe.iscsiadm",
            Subject::Executable("iscsiadm".into()),
            Status::Fail,
            Some(remedy::missing_executable("iscsiadm", Some(&talos), &none)),
        );
        let m = finding(
            "kmod.iscsi_tcp",
            Subject::KernelModule("iscsi_tcp".into()),
            Status::Fail,
            Some(remedy::load_module("iscsi_tcp", Some(&talos))),
        );
        let plan = FixPlan::build(&[f, m], Some(&talos));
        assert!(!plan.changes_anything(), "{plan:?}");
        let Action::Manual { notes, .. } = &plan.steps[1].action else {
            panic!("{plan:?}")
        };
        assert!(notes[0].contains("machine.kernel.modules"), "{notes:?}");
        // A module the kernel does not have, on Debian (no extra modules package): manual.
        let deb = os("ID=debian\n");
        let gone = finding(
            "kmod.nvme_tcp",
            Subject::KernelModule("nvme_tcp".into()),
            Status::Fail,
            Some(remedy::missing_module(
                "nvme_tcp",
                None,
                Some(&deb),
                "6.1.0-18-amd64",
            )),
        );
        assert!(!FixPlan::build(&[gone], Some(&deb)).changes_anything());
        // On Ubuntu the module comes from linux-modules-extra: install it, then load.
        let ubuntu = os("ID=ubuntu\nID_LIKE=debian\n");
        let extra = finding(
            "kmod.nvme_tcp",
            Subject::KernelModule("nvme_tcp".into()),
            Status::Fail,
            Some(remedy::missing_module(
                "nvme_tcp",
                None,
                Some(&ubuntu),
                "6.8.0-31-generic",
            )),
        );
        let plan = FixPlan::build(&[extra], Some(&ubuntu));
        assert_eq!(
            plan.steps[0].action,
            Action::Install {
                installer: Installer::Apt,
                package: "linux-modules-extra-6.8.0-31-generic".into(),
                reinstall: false,
                unless: Present::Module("nvme_tcp".into()),
            }
        );
        assert!(matches!(plan.steps[1].action, Action::LoadModule { .. }));
    }

    /// explain.rs turns "install" into "reinstall" when dpkg records the package: the plan
    /// follows, and does nothing at all when the package database is corrupt (no commands).
    #[test]
    fn reinstall_and_corrupt_database_follow_the_remediation() {
        let deb = os("ID=debian\n");
        let mut fix = remedy::missing_executable("iscsiadm", Some(&deb), &Default::default());
        fix.commands = remedy::reinstall("open-iscsi", Some(&deb));
        let f = finding(
            "exe.iscsiadm",
            Subject::Executable("iscsiadm".into()),
            Status::Fail,
            Some(fix.clone()),
        );
        let plan = FixPlan::build(std::slice::from_ref(&f), Some(&deb));
        assert!(matches!(
            plan.steps[0].action,
            Action::Install {
                reinstall: true,
                ..
            }
        ));
        fix.commands.clear();
        let corrupt = Finding {
            remediation: Some(fix),
            ..f
        };
        assert!(!FixPlan::build(&[corrupt], Some(&deb)).changes_anything());
    }
}
