//! node-problem-detector's custom-plugin convention, so existing NPD plugin scripts work as
//! hostready command checks unchanged: exit 0 → OK, 1 → problem, anything else → unknown, and
//! stdout (trimmed, capped) is the message.
//! See kubernetes/node-problem-detector `pkg/custompluginmonitor/types` (`Status`, `max_output_length`).

use crate::outcome::{Outcome, ProbeResult};

/// The verdict of a command check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Exit code 0.
    Pass,
    /// Exit code 1.
    Fail,
    /// Any other exit, a signal, a timeout, or not run.
    Unknown,
}

/// A verdict and its one-line message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpdVerdict {
    /// Pass, fail or unknown.
    pub verdict: Verdict,
    /// Trimmed stdout, at most the requested length, cut at a character boundary.
    pub message: String,
}

/// NPD's default `max_output_length`.
pub const NPD_MAX_OUTPUT: usize = 80;

/// Maps an exit code and stdout to a verdict: `Some(0)` → pass, `Some(1)` → fail, anything else
/// (another code, or `None` for a signal) → unknown. The message is `stdout` trimmed of
/// whitespace, invalid UTF-8 replaced, and cut to at most `max_len` bytes.
pub fn npd_verdict(code: Option<i32>, stdout: &[u8], max_len: usize) -> NpdVerdict {
    let verdict = match code {
        Some(0) => Verdict::Pass,
        Some(1) => Verdict::Fail,
        _ => Verdict::Unknown,
    };
    let text = String::from_utf8_lossy(stdout);
    let mut message = text.trim();
    if message.len() > max_len {
        let mut end = max_len;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message = message[..end].trim_end();
    }
    NpdVerdict {
        verdict,
        message: message.to_string(),
    }
}

impl ProbeResult {
    /// Returns the NPD verdict for this run. A run that did not exit normally is `Unknown`
    /// with a message saying why (timed out, stuck since ..., busy, could not start).
    pub fn npd_verdict(&self, max_len: usize) -> NpdVerdict {
        let unknown = |message: String| NpdVerdict {
            verdict: Verdict::Unknown,
            message,
        };
        match &self.outcome {
            Outcome::Exited(e) => {
                let mut v = npd_verdict(e.code(), &self.stdout.head, max_len);
                if e.code().is_none() && v.message.is_empty() {
                    v.message = format!("{}: {e}", self.command);
                }
                v
            }
            Outcome::TimedOut { .. } => {
                let mut m = format!("timed out after {:?}: {}", self.duration, self.command);
                if let Some(p) = self.leftovers.first() {
                    m.push_str(&format!("; {p}"));
                }
                unknown(m)
            }
            Outcome::StillRunning(p) => unknown(format!("not started again: previous run {p}")),
            Outcome::Busy { max_concurrent } => unknown(format!(
                "not started: {max_concurrent} probes already running"
            )),
            Outcome::NotStarted(e) => unknown(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_exit_codes_like_npd() {
        assert_eq!(npd_verdict(Some(0), b"ok\n", 80).verdict, Verdict::Pass);
        assert_eq!(npd_verdict(Some(1), b"", 80).verdict, Verdict::Fail);
        assert_eq!(npd_verdict(Some(2), b"", 80).verdict, Verdict::Unknown);
        assert_eq!(npd_verdict(Some(-1), b"", 80).verdict, Verdict::Unknown);
        assert_eq!(npd_verdict(None, b"", 80).verdict, Verdict::Unknown);
    }

    #[test]
    fn message_is_trimmed_and_capped_on_a_char_boundary() {
        assert_eq!(
            npd_verdict(Some(1), b"  disk sdb gone \n", 80).message,
            "disk sdb gone"
        );
        assert_eq!(
            npd_verdict(Some(1), "ab\u{e9}cd".as_bytes(), 3).message,
            "ab"
        );
        assert_eq!(
            npd_verdict(Some(1), b"\xff\xfe", 80).message,
            "\u{fffd}\u{fffd}"
        );
    }
}
