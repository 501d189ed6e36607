//! Requirements and their evaluation: profiles (YAML, built-ins embedded) list requirements,
//! each requirement is checked against a [`hostready_host::Host`] by reading files only, and
//! every requirement yields a [`Finding`] with evidence and a remediation for this host's distro.

pub mod checks;
pub mod conflicts;
mod explain;
mod facts;
pub mod finding;
pub mod fix;
mod probes;
pub mod profile;
mod remedy;
mod report;

pub use facts::Facts;
pub use finding::{
    Evidence, Finding, Level, Outcome, Remediation, Status, Summary, all_required_met,
};
pub use probes::Probing;
pub use profile::{Check, DEFAULT_PROFILE, Profile, ProfileError, Requirement};
pub use report::{HostInfo, ProfileFindings, Report, evaluate};
