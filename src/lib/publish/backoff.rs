//! Exponential backoff with jitter between retries of one batch.

use std::time::Duration;

/// Delays that double from `min` up to `max`, each drawn between half and all of its step so
/// that many publishers retrying one backend do not hit it in lockstep.
#[derive(Clone, Debug)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    rng: crate::rng::XorShift,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max: max.max(min),
            rng: crate::rng::XorShift::seeded(),
        }
    }

    /// The delay before retry number `attempt` (1 for the first retry).
    pub fn delay(&mut self, attempt: u32) -> Duration {
        let step = self
            .min
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.max);
        let half = step / 2;
        half + half.mul_f64(self.rng.unit())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_within_jitter_up_to_the_cap() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        for (attempt, step) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1600),
            (6, 2000),
            (40, 2000),
        ] {
            for _ in 0..50 {
                let d = b.delay(attempt).as_millis() as u64;
                assert!(d >= step / 2 && d <= step, "attempt {attempt}: {d} ms");
            }
        }
    }

    #[test]
    fn jitter_spreads() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(1));
        let draws: std::collections::BTreeSet<u128> =
            (0..20).map(|_| b.delay(1).as_micros()).collect();
        assert!(draws.len() > 10);
    }
}
