//! Utilization timelines: how many steps were building at once, per machine and per system
//! type, averaged over buckets of a resolution chosen for the window (ready for heatmaps), and
//! the instantaneous peak per machine (what a machine demonstrably could run at once).

use std::collections::BTreeMap;

use polars::prelude::*;
use serde::Serialize;

use super::Steps;
use crate::error::{Error, Result};

pub const DEFINITION: &str = "Average number of steps building at once in each bucket: the \
    overlap of every step's [startTime, stopTime) with the bucket, divided by the bucket's length. \
    Under the C++ runner these are the builder's own build times, so time spent sending inputs and \
    waiting is not included.";

/// One timeline per key (a machine or a system type), all on the same buckets.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Timeline {
    pub start: i64,
    pub resolution_s: i64,
    pub buckets: usize,
    /// Key → average concurrency per bucket.
    pub series: BTreeMap<String, Vec<f64>>,
}

impl Timeline {
    /// Long form (time, key, concurrency), for charts and `--format csv`.
    pub fn frame(&self) -> Result<DataFrame> {
        let mut time = Vec::new();
        let mut key = Vec::new();
        let mut value = Vec::new();
        for (k, v) in &self.series {
            for (b, c) in v.iter().enumerate() {
                time.push(self.start + b as i64 * self.resolution_s);
                key.push(k.as_str());
                value.push(*c);
            }
        }
        let n = time.len();
        DataFrame::new(
            n,
            vec![
                Column::new("time".into(), time),
                Column::new("key".into(), key),
                Column::new("concurrency".into(), value),
            ],
        )
        .map_err(|e| Error::frame("utilization timeline", e))
    }
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Utilization {
    pub definition: &'static str,
    pub by_machine: Timeline,
    pub by_system: Timeline,
    /// Most steps seen building at the same instant, per machine.
    pub peak_by_machine: BTreeMap<String, usize>,
}

/// Timelines over `[lo, hi)` from the usable steps that ran on a machine.
pub fn utilization(steps: &Steps, usable: &[bool], lo: i64, hi: i64) -> Utilization {
    let res = super::resolution(hi - lo);
    let start = lo.div_euclid(res) * res;
    let buckets = ((hi - start) + res - 1).div_euclid(res).max(0) as usize;
    let mut by_machine: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut by_system: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut events: BTreeMap<&str, Vec<(i64, i32)>> = BTreeMap::new();
    for i in 0..steps.len() {
        let (Some(a), Some(b)) = (steps.start(i), steps.stop(i)) else {
            continue;
        };
        if !usable[i] || steps.machine(i).is_empty() || b <= a {
            continue;
        }
        let ev = events.entry(steps.machine(i)).or_default();
        ev.push((a, 1));
        ev.push((b, -1));
        let (a, b) = (a.max(start), b.min(start + buckets as i64 * res));
        if b <= a {
            continue;
        }
        for series in [
            by_machine
                .entry(steps.machine(i).to_string())
                .or_insert_with(|| vec![0.0; buckets]),
            by_system
                .entry(steps.system(i).to_string())
                .or_insert_with(|| vec![0.0; buckets]),
        ] {
            add_interval(series, start, res, a, b);
        }
    }
    let peak_by_machine = events
        .into_iter()
        .map(|(m, mut ev)| {
            // Ends sort before starts at the same second: a slot freed and reused in the same
            // second is one slot, not two.
            ev.sort_unstable();
            let (mut level, mut peak) = (0i32, 0i32);
            for (_, d) in ev {
                level += d;
                peak = peak.max(level);
            }
            (m.to_string(), peak.max(0) as usize)
        })
        .collect();
    let tl = |series| Timeline {
        start,
        resolution_s: res,
        buckets,
        series,
    };
    Utilization {
        definition: DEFINITION,
        by_machine: tl(by_machine),
        by_system: tl(by_system),
        peak_by_machine,
    }
}

/// Adds the interval `[a, b)` (clipped to the buckets) to `series` as fractions of buckets.
pub fn add_interval(series: &mut [f64], start: i64, res: i64, a: i64, b: i64) {
    let mut t = a;
    while t < b {
        let idx = (t - start).div_euclid(res);
        let bucket_end = start + (idx + 1) * res;
        let end = bucket_end.min(b);
        if let Some(v) = usize::try_from(idx).ok().and_then(|i| series.get_mut(i)) {
            *v += (end - t) as f64 / res as f64;
        }
        t = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_split_across_buckets_exactly() {
        let mut s = vec![0.0; 4];
        add_interval(&mut s, 0, 10, 5, 25);
        assert_eq!(s, vec![0.5, 1.0, 0.5, 0.0]);
    }
}
