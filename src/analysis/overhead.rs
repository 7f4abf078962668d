//! Overhead decomposition: how much of a step's overhead grows with its output size (copying
//! and, under the C++ runner, compressing) and how much is fixed per step (connecting, sending
//! inputs, bookkeeping).
//!
//! The fit is Theil–Sen: the slope is the median of the slopes between pairs of points, the
//! intercept the median of what the slope leaves. A few stuck copies of hours, common in real
//! histories, move it no more than any other point — least squares would follow them.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// Pairs drawn for the median slope. The median of 200 k slopes is within a fraction of a
/// percent of the median over all pairs for any realistic spread, at a fixed, small cost.
const PAIRS: usize = 200_000;
/// Fixed seed: the same data gives the same fit.
const SEED: u64 = 0x0068_7964_7261;

pub const DEFINITION: &str = "Theil–Sen fit of overhead (ms) against the output NAR size (bytes) \
    of steps whose output size is known: overhead ≈ fixed_ms + size / bytes_per_ms. The implied \
    throughput is the rate at which overhead grows with output size; under the C++ runner it \
    bundles copying the outputs back and compressing them on the queue-runner host.";

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Fit {
    pub points: usize,
    /// Overhead every step pays regardless of size, milliseconds.
    pub fixed_ms: f64,
    /// Extra overhead per MiB of output, milliseconds.
    pub ms_per_mib: f64,
    /// The throughput that slope implies, MB/s (10^6 bytes), `None` for a flat or negative slope.
    pub implied_mb_per_s: Option<f64>,
    /// Median absolute residual, milliseconds: how well one line describes the steps.
    pub median_abs_residual_ms: f64,
    /// Share of all overhead (over the fitted points) explained by output size, 0–1.
    pub size_share: f64,
}

/// Fits `(size_bytes, overhead_ms)` points; `None` with fewer than two distinct sizes.
pub fn fit(points: &[(f64, f64)]) -> Option<Fit> {
    let n = points.len();
    if n < 2 {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let all_pairs = n * (n - 1) / 2;
    let mut slopes = Vec::with_capacity(all_pairs.min(PAIRS));
    let mut push = |i: usize, j: usize| {
        let (x1, y1) = points[i];
        let (x2, y2) = points[j];
        if x1 != x2 {
            slopes.push((y2 - y1) / (x2 - x1));
        }
    };
    if all_pairs <= PAIRS {
        for i in 0..n {
            for j in i + 1..n {
                push(i, j);
            }
        }
    } else {
        for _ in 0..PAIRS {
            let i = rng.random_range(0..n);
            let j = rng.random_range(0..n);
            push(i, j);
        }
    }
    if slopes.is_empty() {
        return None;
    }
    let slope = median(&mut slopes);
    let mut rest: Vec<f64> = points.iter().map(|(x, y)| y - slope * x).collect();
    let fixed = median(&mut rest);
    let mut resid: Vec<f64> = points
        .iter()
        .map(|(x, y)| (y - fixed - slope * x).abs())
        .collect();
    let total: f64 = points.iter().map(|(_, y)| y.max(0.0)).sum();
    let from_size: f64 = points.iter().map(|(x, _)| (slope * x).max(0.0)).sum();
    Some(Fit {
        points: n,
        fixed_ms: fixed,
        ms_per_mib: slope * 1_048_576.0,
        implied_mb_per_s: (slope > 0.0).then(|| 1.0 / slope * 1000.0 / 1e6),
        median_abs_residual_ms: median(&mut resid),
        size_share: if total > 0.0 {
            (from_size / total).min(1.0)
        } else {
            0.0
        },
    })
}

/// The median of `v` (not empty), found by selection rather than a whole sort: the fit takes
/// three medians, two of them over every point (a million at a million steps). The same value
/// a sort gives: the middle element, or the mean of the two middle ones.
fn median(v: &mut [f64]) -> f64 {
    let n = v.len();
    let (below, mid, _) = v.select_nth_unstable_by(n / 2, f64::total_cmp);
    if n % 2 == 1 {
        *mid
    } else {
        // The element just below the middle is the largest of those before it.
        let low = below.iter().copied().max_by(f64::total_cmp).unwrap_or(*mid);
        (low + *mid) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_by_selection_is_the_sorted_middle() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for n in [1usize, 2, 3, 4, 10, 11, 1000, 1001] {
            let v: Vec<f64> = (0..n)
                .map(|_| rng.random_range(-5.0..5.0f64).round())
                .collect();
            let mut sorted = v.clone();
            sorted.sort_by(f64::total_cmp);
            let want = if n % 2 == 1 {
                sorted[n / 2]
            } else {
                (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
            };
            assert_eq!(median(&mut v.clone()), want, "{n}: {v:?}");
        }
    }

    #[test]
    fn recovers_a_line_despite_outliers() {
        // 2 s fixed, 10 MB/s (0.1 ms per kB), plus a few stuck copies of an hour.
        let mut pts: Vec<(f64, f64)> = (1..=500)
            .map(|i| {
                let size = f64::from(i) * 1e6;
                (size, 2000.0 + size / 10e6 * 1000.0)
            })
            .collect();
        for i in 0..20 {
            pts[i * 7].1 = 3_600_000.0;
        }
        let f = fit(&pts).unwrap();
        assert!((f.fixed_ms - 2000.0).abs() < 1.0, "{f:?}");
        assert!((f.implied_mb_per_s.unwrap() - 10.0).abs() < 0.01, "{f:?}");
        assert!(fit(&[(1.0, 1.0)]).is_none());
        assert!(fit(&[(1.0, 1.0), (1.0, 2.0)]).is_none());
    }
}
