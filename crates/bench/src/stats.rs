//! Latency statistics: nearest-rank percentiles over recorded durations, and the formatting of
//! durations, rates and sizes in the printed figures.

use std::time::Duration;

/// The nearest-rank `p`-th percentile (0 < p ≤ 100) of an ascending slice; `None` when empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    let last = sorted.len().checked_sub(1)?;
    let rank = (p * sorted.len() as f64 / 100.0).ceil() as usize;
    Some(sorted[rank.saturating_sub(1).min(last)])
}

/// The usual figures of a set of latencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latencies {
    pub count: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Latencies {
    /// Sorts the samples and summarises them; `None` when there are none.
    pub fn of(mut samples: Vec<Duration>) -> Option<Self> {
        samples.sort_unstable();
        Some(Self {
            count: samples.len(),
            p50: percentile(&samples, 50.0)?,
            p99: percentile(&samples, 99.0)?,
            max: *samples.last()?,
        })
    }

    /// `p50 1.23 ms  p99 4.56 ms  max 7.89 ms`
    pub fn brief(&self) -> String {
        format!(
            "p50 {}  p99 {}  max {}",
            ms(self.p50),
            ms(self.p99),
            ms(self.max)
        )
    }
}

/// A duration in milliseconds with a precision that suits its size.
pub fn ms(duration: Duration) -> String {
    let millis = duration.as_secs_f64() * 1000.0;
    if millis < 10.0 {
        format!("{millis:.2} ms")
    } else if millis < 1000.0 {
        format!("{millis:.1} ms")
    } else {
        format!("{millis:.0} ms")
    }
}

/// Kibibytes as mebibytes with one decimal.
pub fn mb(kib: u64) -> String {
    format!("{:.1} MB", kib as f64 / 1024.0)
}

/// Completed operations per second over `elapsed`.
pub fn rate(count: usize, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { count as f64 / secs } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(values: &[u64]) -> Vec<Duration> {
        values.iter().copied().map(Duration::from_millis).collect()
    }

    #[test]
    fn nearest_rank_percentiles() {
        let samples = millis(&(1..=100).collect::<Vec<_>>());
        assert_eq!(percentile(&samples, 50.0), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&samples, 99.0), Some(Duration::from_millis(99)));
        assert_eq!(
            percentile(&samples, 100.0),
            Some(Duration::from_millis(100))
        );
        assert_eq!(percentile(&samples, 0.1), Some(Duration::from_millis(1)));
    }

    #[test]
    fn small_and_empty_sets() {
        assert_eq!(percentile(&[], 50.0), None);
        let one = millis(&[7]);
        assert_eq!(percentile(&one, 50.0), Some(Duration::from_millis(7)));
        assert_eq!(percentile(&one, 99.0), Some(Duration::from_millis(7)));
        // Ten rounds: p50 is the 5th, p99 the 10th.
        let ten = millis(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(percentile(&ten, 50.0), Some(Duration::from_millis(5)));
        assert_eq!(percentile(&ten, 99.0), Some(Duration::from_millis(10)));
    }

    #[test]
    fn summaries_sort_their_samples() {
        let summary = Latencies::of(millis(&[9, 1, 5, 3, 7])).expect("samples");
        assert_eq!(summary.count, 5);
        assert_eq!(summary.p50, Duration::from_millis(5));
        assert_eq!(summary.p99, Duration::from_millis(9));
        assert_eq!(summary.max, Duration::from_millis(9));
        assert_eq!(Latencies::of(Vec::new()), None);
    }

    #[test]
    fn formatting() {
        assert_eq!(ms(Duration::from_micros(1234)), "1.23 ms");
        assert_eq!(ms(Duration::from_micros(45_678)), "45.7 ms");
        assert_eq!(ms(Duration::from_millis(2500)), "2500 ms");
        assert_eq!(mb(2048), "2.0 MB");
        assert_eq!(rate(500, Duration::from_secs(2)), 250.0);
        assert_eq!(rate(5, Duration::ZERO), 0.0);
    }
}
