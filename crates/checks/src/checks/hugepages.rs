//! `hugepages.<size>kib`: enough huge pages of one size reserved (the v2 engine's SPDK needs
//! 1024 pages of 2 MiB).

use crate::facts::Facts;
use crate::finding::{Evidence, Outcome, Remediation};

/// Checks that at least `min_pages` pages of `size_kib` are reserved.
pub fn check(size_kib: u64, min_pages: u64, facts: &Facts<'_>) -> Outcome {
    let mut ev = Evidence::default();
    // The per-size count lives in sysfs; /proc/meminfo only shows the default size.
    let sysfs = format!("/sys/kernel/mm/hugepages/hugepages-{size_kib}kB/nr_hugepages");
    let from_sysfs = match facts.fs().read_to_string_bounded(&sysfs, 64) {
        Ok(t) => t.trim().parse::<u64>().ok(),
        Err(e) => {
            if !e.is_not_found() {
                ev.add(&sysfs, format!("unreadable: {}", e.source));
            }
            None
        }
    };
    let pages = match from_sysfs {
        Some(n) => {
            ev.add("source", &sysfs);
            n
        }
        None => match facts.meminfo() {
            Ok(m) if m.fields.get("Hugepagesize") == Some(&size_kib) => {
                ev.add("source", "/proc/meminfo");
                match m.fields.get("HugePages_Total") {
                    Some(n) => *n,
                    None => {
                        return Outcome::unknown(
                            "/proc/meminfo has a Hugepagesize but no HugePages_Total",
                            ev,
                        );
                    }
                }
            }
            Ok(m) => {
                let default = m.fields.get("Hugepagesize").copied().unwrap_or(0);
                ev.add("Hugepagesize", format!("{default} kB"));
                return Outcome::unknown(
                    format!(
                        "{sysfs} is not readable and the default huge page size is {default} kB, not {size_kib} kB"
                    ),
                    ev,
                );
            }
            Err(why) => {
                return Outcome::unknown(format!("cannot read huge page counts: {why}"), ev);
            }
        },
    };
    ev.add("pages", pages.to_string());
    ev.add("needed", min_pages.to_string());
    let mib = size_kib.saturating_mul(min_pages) / 1024;
    if pages >= min_pages {
        return Outcome::pass(
            format!("{pages} huge pages of {size_kib} kB reserved (at least {min_pages} needed)"),
            ev,
        );
    }
    let sysctl = if size_kib == 2048 {
        format!("vm.nr_hugepages={min_pages}")
    } else {
        format!("hugepages-{size_kib}kB nr_hugepages={min_pages}")
    };
    Outcome::fail(
        format!("{pages} huge pages of {size_kib} kB reserved; {min_pages} ({mib} MiB) needed"),
        ev,
        Remediation {
            summary: format!(
                "reserve {min_pages} huge pages of {size_kib} kB, then restart the kubelet so the node advertises them"
            ),
            commands: vec![
                format!("echo {min_pages} > {sysfs}"),
                format!("echo '{sysctl}' > /etc/sysctl.d/90-hugepages.conf"),
                "systemctl restart kubelet".into(),
            ],
            ..Remediation::default()
        },
    )
}
