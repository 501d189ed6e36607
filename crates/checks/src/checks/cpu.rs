//! `cpu.flags`: the CPU has the instruction-set extensions a storage engine is built for
//! (SPDK: SSE4.2 on x86_64, ASIMD on arm64).

use std::collections::BTreeMap;

use crate::facts::Facts;
use crate::finding::{Evidence, Outcome, Remediation};

/// Checks the flags listed for this machine; a machine the profile does not list needs none.
pub fn flags(per_machine: &BTreeMap<String, Vec<String>>, facts: &Facts<'_>) -> Outcome {
    let mut ev = Evidence::default();
    let machine = facts.machine();
    ev.add("machine", machine);
    let Some(needed) = per_machine.get(machine) else {
        return Outcome::pass(format!("no CPU flags required on {machine}"), ev);
    };
    let flags = match facts.cpu_flags() {
        Ok(f) => f,
        Err(why) => return Outcome::unknown(format!("cannot read CPU flags: {why}"), ev),
    };
    let missing: Vec<&str> = needed
        .iter()
        .filter(|n| !flags.contains(n))
        .map(String::as_str)
        .collect();
    ev.add("needed", needed.join(" "));
    if missing.is_empty() {
        return Outcome::pass(format!("CPU has {}", needed.join(", ")), ev);
    }
    Outcome::fail(
        format!("CPU lacks {}", missing.join(", ")),
        ev,
        Remediation {
            summary: format!(
                "run this workload on nodes whose CPUs have {} (or expose them to the VM)",
                missing.join(", ")
            ),
            ..Remediation::default()
        },
    )
}
