//! Counting what came back: per-client tallies merged at the end, latency percentiles by
//! nearest rank over every sample (a run is at most a few million samples, so no sketch).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// What one client (or, merged, the whole run) saw.
#[derive(Debug, Default)]
pub struct Tally {
    /// Microseconds per completed request.
    pub latencies_us: Vec<u64>,
    pub statuses: BTreeMap<u16, u64>,
    pub unexpected: u64,
    pub transport_errors: u64,
    pub refreshes: u64,
    pub challenges: u64,
    pub reconnects: u64,
    pub first_error: Option<String>,
}

impl Tally {
    pub fn record(&mut self, status: u16, latency: Duration, expected: bool) {
        self.latencies_us
            .push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
        *self.statuses.entry(status).or_default() += 1;
        if !expected {
            self.unexpected += 1;
            self.first_error
                .get_or_insert_with(|| format!("unexpected status {status}"));
        }
    }

    pub fn transport_error(&mut self, error: String) {
        self.transport_errors += 1;
        self.first_error.get_or_insert(error);
    }

    pub fn merge(&mut self, other: Tally) {
        self.latencies_us.extend(other.latencies_us);
        for (status, count) in other.statuses {
            *self.statuses.entry(status).or_default() += count;
        }
        self.unexpected += other.unexpected;
        self.transport_errors += other.transport_errors;
        self.refreshes += other.refreshes;
        self.challenges += other.challenges;
        self.reconnects += other.reconnects;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    /// Whether the run saw only the statuses its scenario expects.
    pub fn clean(&self) -> bool {
        self.unexpected == 0 && self.transport_errors == 0
    }
}

/// Latency figures in microseconds.
#[derive(Debug, PartialEq)]
pub struct Latency {
    pub mean: f64,
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
}

/// The nearest-rank percentile `p` (0 < p <= 100) of ascending `sorted` samples.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() || !(p > 0.0 && p <= 100.0) {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// Mean, p50, p99 and max of `samples` (sorted in place); `None` when there are none.
pub fn latency(samples: &mut [u64]) -> Option<Latency> {
    samples.sort_unstable();
    let total: u128 = samples.iter().map(|&s| u128::from(s)).sum();
    Some(Latency {
        mean: total as f64 / samples.len() as f64,
        p50: percentile(samples, 50.0)?,
        p99: percentile(samples, 99.0)?,
        max: *samples.last()?,
    })
}

/// The human-readable report and a last `summary key=value ...` line for scripts.
pub fn report(scenario: &str, clients: usize, elapsed: Duration, tally: &mut Tally) -> String {
    let requests = tally.latencies_us.len();
    let seconds = elapsed.as_secs_f64();
    let rate = if seconds > 0.0 {
        requests as f64 / seconds
    } else {
        0.0
    };
    let ms = |us: f64| us / 1000.0;
    let lat = latency(&mut tally.latencies_us).unwrap_or(Latency {
        mean: 0.0,
        p50: 0,
        p99: 0,
        max: 0,
    });
    let statuses: Vec<String> = tally
        .statuses
        .iter()
        .map(|(status, count)| format!("{status} x{count}"))
        .collect();
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "{scenario}: {clients} clients, {seconds:.2} s, {requests} requests, {rate:.1} requests/s"
    );
    let _ = writeln!(
        out,
        "latency ms: mean {:.3}  p50 {:.3}  p99 {:.3}  max {:.3}",
        ms(lat.mean),
        ms(lat.p50 as f64),
        ms(lat.p99 as f64),
        ms(lat.max as f64)
    );
    let _ = writeln!(
        out,
        "statuses: {}; 401 re-challenges {}; 412 refreshes {}; reconnects {}; transport errors {}",
        if statuses.is_empty() {
            "none".to_owned()
        } else {
            statuses.join(", ")
        },
        tally.challenges,
        tally.refreshes,
        tally.reconnects,
        tally.transport_errors
    );
    if let Some(error) = &tally.first_error {
        let _ = writeln!(out, "first error: {error}");
    }
    let _ = writeln!(
        out,
        "summary scenario={scenario} clients={clients} seconds={seconds:.3} requests={requests} \
         rps={rate:.1} mean_ms={:.3} p50_ms={:.3} p99_ms={:.3} max_ms={:.3} unexpected={}",
        ms(lat.mean),
        ms(lat.p50 as f64),
        ms(lat.p99 as f64),
        ms(lat.max as f64),
        tally.unexpected + tally.transport_errors
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let hundred: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&hundred, 50.0), Some(50));
        assert_eq!(percentile(&hundred, 99.0), Some(99));
        assert_eq!(percentile(&hundred, 99.5), Some(100));
        assert_eq!(percentile(&hundred, 100.0), Some(100));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[10, 20, 30, 40], 50.0), Some(20));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&hundred, 0.0), None);
        assert_eq!(percentile(&hundred, f64::NAN), None);
    }

    #[test]
    fn latency_sorts_and_summarizes() {
        // 1000 samples: 990 fast ones at 100 us and a slow tail of 10 at 5000..=5009 us.
        let mut samples: Vec<u64> = (0..10).map(|i| 5000 + i).collect();
        samples.extend(std::iter::repeat_n(100, 990));
        let lat = latency(&mut samples).unwrap();
        assert_eq!((lat.p50, lat.p99, lat.max), (100, 100, 5009));
        assert!((lat.mean - 149.045).abs() < 1e-9, "{}", lat.mean);
        assert_eq!(latency(&mut []), None);
    }

    #[test]
    fn merged_tallies_and_the_summary_line() {
        let mut a = Tally::default();
        a.record(200, Duration::from_micros(1500), true);
        a.record(200, Duration::from_micros(500), true);
        let mut b = Tally::default();
        b.record(500, Duration::from_micros(2500), false);
        b.transport_error("connect refused".into());
        a.merge(b);
        assert!(!a.clean());
        assert_eq!(a.statuses, BTreeMap::from([(200, 2), (500, 1)]));
        let text = report("get-doc", 2, Duration::from_secs(2), &mut a);
        let summary = text.lines().last().unwrap();
        assert_eq!(
            summary,
            "summary scenario=get-doc clients=2 seconds=2.000 requests=3 rps=1.5 \
             mean_ms=1.500 p50_ms=1.500 p99_ms=2.500 max_ms=2.500 unexpected=2"
        );
        assert!(text.contains("statuses: 200 x2, 500 x1;"), "{text}");
        assert!(
            text.contains("first error: unexpected status 500"),
            "{text}"
        );
    }
}
