//! Percentiles and medians of benchmark samples.

use std::time::Duration;

/// The `q` quantile (0..=1) of sorted samples, nearest rank.
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Latency summary of microsecond samples.
#[derive(Clone, Copy, Debug, Default)]
pub struct Summary {
    /// Samples.
    pub n: usize,
    /// Median (us).
    pub p50: u64,
    /// 90th percentile (us).
    pub p90: u64,
    /// 99th percentile (us).
    pub p99: u64,
    /// 99.9th percentile (us).
    pub p999: u64,
    /// Largest (us).
    pub max: u64,
}

impl Summary {
    /// Summarises samples (sorts them).
    pub fn of(mut us: Vec<u64>) -> Summary {
        us.sort_unstable();
        Summary {
            n: us.len(),
            p50: quantile(&us, 0.50),
            p90: quantile(&us, 0.90),
            p99: quantile(&us, 0.99),
            p999: quantile(&us, 0.999),
            max: us.last().copied().unwrap_or(0),
        }
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "n={} p50={} p90={} p99={} p99.9={} max={}",
            self.n,
            ms(self.p50),
            ms(self.p90),
            ms(self.p99),
            ms(self.p999),
            ms(self.max)
        )
    }
}

/// Microseconds as milliseconds with 2 decimals.
pub fn ms(us: u64) -> String {
    format!("{:.2}ms", us as f64 / 1000.0)
}

/// Median of figures (the middle one; the lower middle for an even count).
pub fn median(mut xs: Vec<f64>) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    xs.sort_by(f64::total_cmp);
    xs[(xs.len() - 1) / 2]
}

/// Events per second.
pub fn rate(events: usize, d: Duration) -> f64 {
    events as f64 / d.as_secs_f64().max(1e-9)
}
