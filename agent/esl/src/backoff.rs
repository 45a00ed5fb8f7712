//! Reconnect delays: capped exponential backoff with full jitter, for ESL
//! and Redis alike.
//!
//! Full jitter (a uniform delay in `[0, min(cap, base * 2^n)]`) is what
//! spreads a farm of agents that lost the same Redis at the same moment;
//! without it they all reconnect in lock step.

use std::time::Duration;

use rand::Rng;

/// Largest exponent used: `2^20 * base` is already past any sensible cap,
/// and stopping there keeps the multiplication from overflowing.
const MAX_EXP: u32 = 20;

/// Capped exponential backoff with full jitter.
#[derive(Clone, Debug)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Backoff {
    /// Delays start below `base` and never exceed `cap` (a `cap` below
    /// `base` is raised to `base`).
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap: cap.max(base),
            attempt: 0,
        }
    }

    /// Upper bound of the next delay: `min(cap, base * 2^attempt)`.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32 << self.attempt.min(MAX_EXP);
        self.base
            .checked_mul(factor)
            .map_or(self.cap, |d| d.min(self.cap))
    }

    /// The delay before the next attempt, uniform in `[0, ceiling]`; each
    /// call doubles the ceiling until it reaches the cap. Never runs out:
    /// a peer is retried forever, only the pace changes.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1).min(MAX_EXP + 1);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rand::rng().random_range(0..=nanos))
    }

    /// Attempts since the last [`Backoff::reset`].
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Back to the first delay, after a connection that worked.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn ceiling_doubles_then_caps() {
        let mut b = Backoff::new(100 * MS, 1000 * MS);
        let ceilings: Vec<_> = (0..7)
            .map(|_| {
                let c = b.ceiling();
                b.next();
                c
            })
            .collect();
        let want = [100, 200, 400, 800, 1000, 1000, 1000].map(|n| n * MS);
        assert_eq!(ceilings, want);
    }

    #[test]
    fn every_delay_is_within_bounds_and_jittered() {
        let mut b = Backoff::new(10 * MS, 500 * MS);
        let mut seen = Vec::new();
        for _ in 0..500 {
            let ceiling = b.ceiling();
            let d = b.next();
            assert!(d <= ceiling && d <= 500 * MS, "{d:?} > {ceiling:?}");
            seen.push(d);
        }
        // Jitter: capped delays are spread, not all equal to the cap.
        let capped = &seen[10..];
        assert!(capped.iter().any(|d| *d < 250 * MS));
        assert!(capped.iter().any(|d| *d > 250 * MS));
    }

    #[test]
    fn reset_starts_over() {
        let mut b = Backoff::new(50 * MS, 10_000 * MS);
        for _ in 0..5 {
            b.next();
        }
        assert_eq!(b.attempts(), 5);
        b.reset();
        assert_eq!(b.ceiling(), 50 * MS);
        assert!(b.next() <= 50 * MS);
    }

    #[test]
    fn never_overflows() {
        let mut b = Backoff::new(Duration::from_secs(3600), Duration::MAX);
        for _ in 0..1000 {
            b.next();
        }
        assert_eq!(b.attempts(), MAX_EXP + 1);
        let mut tiny = Backoff::new(Duration::ZERO, Duration::ZERO);
        assert_eq!(tiny.next(), Duration::ZERO);
    }
}
