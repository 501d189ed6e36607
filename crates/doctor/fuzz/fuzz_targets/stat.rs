//! `/proc/<pid>/stat`, `statm` (hostready-host's parsers, as doctor's scan uses them), `cmdline`, `/proc/stat` and `/proc/uptime`; then grouping of
//! the process they describe (argument normalisation, keys, short names). The input is split
//! at the first NUL-NUL: stat text before, command line after.
#![no_main]
use hostready_doctor::pileup;
use hostready_doctor::proc::Proc;
use hostready_host::procfs as proc;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (stat, cmdline) = match data.windows(2).position(|w| w == b"\0\0") {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &b""[..]),
    };
    let text = String::from_utf8_lossy(stat);
    let _ = proc::parse_statm(&text);
    let _ = proc::parse_btime(&text);
    let _ = proc::parse_uptime(&text);
    let argv = proc::parse_cmdline(cmdline);
    if let Some(st) = proc::parse_stat(&text) {
        let p = Proc {
            pid: 7,
            ppid: u32::try_from(st.ppid).unwrap_or(0),
            comm: st.comm,
            state: st.state,
            exe: None,
            argv: argv.into(),
            cmdline_read: true,
            age_secs: st.starttime,
            started_at: None,
            rss_kb: st.rss_pages.saturating_mul(4),
        };
        let _ = pileup::key_of(&p);
        let _ = p.short();
        for a in &p.argv {
            let _ = pileup::normalise_arg(a);
        }
    }
});
