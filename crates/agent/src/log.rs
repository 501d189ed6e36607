//! One-line logs on stderr: `<RFC 3339 time> <level> <message>`. The agent logs little (a
//! line per transition, config reload or API failure), so no logging framework is carried.

use std::io::Write;

fn line(level: &str, msg: &str) {
    let now = crate::condition::rfc3339(k8s_openapi::chrono::Utc::now());
    let _ = writeln!(std::io::stderr().lock(), "{now} {level} {msg}");
}

/// Logs an informational line.
pub fn info(msg: &str) {
    line("info", msg);
}

/// Logs a warning.
pub fn warn(msg: &str) {
    line("warn", msg);
}
