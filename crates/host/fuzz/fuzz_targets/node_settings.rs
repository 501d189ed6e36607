//! The parsers of issue 13's kernel-side families: `sysctl.d` files and sysctl names,
//! `/proc/swaps`, `fstab` swap lines, `mountinfo` to a cgroup layout, `cgroup.controllers`, `/proc/cgroups`, the
//! kernel command line, `modprobe.d` options, `/proc/drbd`, version comparison and
//! `modules.builtin.modinfo`. The input is split at the first NUL: file text before, a name
//! to look up after.
#![no_main]
use hostready_host::{cgroup, modparam, mounts, swap, sysctl};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (text, name) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"net.ipv4.ip_forward"[..]),
    };
    let _ = modparam::builtin_has_version(data, "drbd");
    let text = String::from_utf8_lossy(text).into_owned();
    let name = String::from_utf8_lossy(name).into_owned();
    for a in sysctl::parse_conf(&text) {
        let _ = sysctl::name_matches(&a.name, &name);
    }
    if let Some(p) = sysctl::proc_path(&name) {
        // The path never climbs out of /proc/sys.
        assert!(p.starts_with("/sys/") && !p.split('/').any(|c| c == ".."));
    }
    let _ = sysctl::normalize(&text);
    if let Ok(areas) = swap::parse(&text) {
        assert!(areas.len() <= text.lines().count());
    }
    for (line, _) in swap::fstab_swaps(&text) {
        assert!(line >= 1 && line <= text.lines().count());
    }
    let _ = cgroup::layout(mounts::parse_mountinfo(&text));
    let _ = cgroup::parse_controllers(&text);
    let _ = cgroup::parse_proc_cgroups(&text);
    let _ = modparam::cmdline_parameter(&text, &name, "multipath");
    let _ = modparam::modprobe_option(&text, &name, "multipath");
    let _ = modparam::parse_proc_drbd(&text);
    for line in text.lines().take(16) {
        if let (Some(a), Some(b)) = (
            modparam::compare_versions(line, &name),
            modparam::compare_versions(&name, line),
        ) {
            assert_eq!(a, b.reverse());
        }
    }
});
