//! Capped exponential backoff with jitter for API retries, and the jitter of check periods.
//!
//! Hundreds of agents that lose the API server together must not come back in lockstep, so
//! every wait is randomised ("equal jitter": between half and all of the exponential step).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A small, non-cryptographic random source (xorshift64*), seeded from the clock and pid.
#[derive(Debug, Clone)]
pub struct Jitter(u64);

impl Jitter {
    /// Returns a source seeded from the wall clock and this process's id.
    pub fn from_entropy() -> Jitter {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Jitter::seeded(nanos ^ (u64::from(std::process::id()) << 32))
    }

    /// Returns a source with a fixed seed (tests).
    pub fn seeded(seed: u64) -> Jitter {
        Jitter(seed | 1)
    }

    /// Returns a uniform value in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Returns `d` scaled by a uniform factor in `[1 - spread, 1 + spread]`.
    pub fn spread(&mut self, d: Duration, spread: f64) -> Duration {
        d.mul_f64(1.0 - spread + 2.0 * spread * self.unit())
    }

    /// Returns a uniform duration in `[0, d)`.
    pub fn upto(&mut self, d: Duration) -> Duration {
        d.mul_f64(self.unit())
    }
}

/// Capped exponential backoff: `base`, `2·base`, `4·base` ... up to `cap`, each jittered.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    failures: u32,
    jitter: Jitter,
}

impl Backoff {
    /// Returns a backoff starting at `base` and never waiting more than `cap`.
    pub fn new(base: Duration, cap: Duration, jitter: Jitter) -> Backoff {
        Backoff {
            base,
            cap,
            failures: 0,
            jitter,
        }
    }

    /// Records a failure and returns how long to wait before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let step = self
            .base
            .saturating_mul(1u32 << self.failures.min(20))
            .min(self.cap);
        self.failures = self.failures.saturating_add(1);
        step / 2 + self.jitter.upto(step / 2)
    }

    /// Returns the number of consecutive failures recorded.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Forgets the failures after a success.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_doubling_then_stays_under_the_cap() {
        let mut b = Backoff::new(
            Duration::from_secs(1),
            Duration::from_secs(60),
            Jitter::seeded(7),
        );
        let delays: Vec<Duration> = (0..12).map(|_| b.next_delay()).collect();
        for (i, d) in delays.iter().enumerate() {
            let step = Duration::from_secs(1 << i.min(6)).min(Duration::from_secs(60));
            assert!(
                *d >= step / 2 && *d <= step,
                "attempt {i}: {d:?} vs step {step:?}"
            );
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_secs(1));
    }

    #[test]
    fn jitter_stays_in_range_and_varies() {
        let mut j = Jitter::seeded(42);
        let d = Duration::from_secs(100);
        let xs: Vec<Duration> = (0..1000).map(|_| j.spread(d, 0.1)).collect();
        assert!(
            xs.iter()
                .all(|x| *x >= Duration::from_secs(90) && *x <= Duration::from_secs(110))
        );
        assert!(xs.iter().any(|x| *x < Duration::from_secs(95)));
        assert!(xs.iter().any(|x| *x > Duration::from_secs(105)));
    }
}
