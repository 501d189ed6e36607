//! Waiting for something another process does, by polling with a deadline: the one loop every
//! test uses (a test that waits without a deadline hangs CI instead of failing).

use std::time::{Duration, Instant};

/// How long [`wait_until`] waits: long enough for a loaded 2-core CI machine, short enough
/// that a broken test fails in the same minute.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Calls `f` every `step` until it returns `Some`, for at most `limit`; `None` after that.
/// The one polling loop of the kit; the functions below say what happens on timeout.
pub fn poll<T>(limit: Duration, step: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() >= limit {
            return None;
        }
        std::thread::sleep(step);
    }
}

/// Polls `f` every 200 ms until it returns `Some`, or panics after `limit` naming `what`.
pub fn wait_for<T>(what: &str, limit: Duration, f: impl FnMut() -> Option<T>) -> T {
    poll(limit, Duration::from_millis(200), f)
        .unwrap_or_else(|| panic!("timed out after {limit:?} waiting for {what}"))
}

/// Polls `cond` every 50 ms for up to [`PATIENCE`]; returns whether it came true, so the
/// caller's assertion says what did not happen.
pub fn wait_until(mut cond: impl FnMut() -> bool) -> bool {
    poll(PATIENCE, Duration::from_millis(50), || cond().then_some(())).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_gives_up_after_its_limit_and_returns_the_first_value() {
        let start = Instant::now();
        assert_eq!(
            poll(
                Duration::from_millis(100),
                Duration::from_millis(10),
                || None::<()>
            ),
            None
        );
        assert!(start.elapsed() >= Duration::from_millis(100));
        let mut n = 0;
        let v = poll(Duration::from_secs(5), Duration::from_millis(1), || {
            n += 1;
            (n == 3).then_some(n)
        });
        assert_eq!(v, Some(3));
    }

    #[test]
    #[should_panic(expected = "waiting for the impossible")]
    fn wait_for_panics_naming_what_it_waited_for() {
        wait_for("the impossible", Duration::from_millis(10), || None::<()>);
    }
}
