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
    let mut acc = Accumulator::new(lo, hi);
    acc.add(steps, usable);
    acc.finish()
}

/// One machine's steps building, swept in order of their starts: a slot freed and reused in
/// the same second is one slot, not two.
#[derive(Debug, Clone, Default)]
struct Sweep {
    /// Stop times of the steps started and not yet ended, earliest first.
    running: std::collections::BinaryHeap<std::cmp::Reverse<i64>>,
    peak: usize,
}

impl Sweep {
    fn start(&mut self, a: i64, b: i64) {
        while self.running.peek().is_some_and(|e| e.0 <= a) {
            self.running.pop();
        }
        self.running.push(std::cmp::Reverse(b));
        self.peak = self.peak.max(self.running.len());
    }
}

/// The timelines over steps given in parts, each part's steps starting no earlier than those
/// of the parts before (a window at once, or its days in order): each bucket sums whole
/// seconds, so the figures are the same whatever the parts and the order of rows within them,
/// and only the steps still building at a part's end are carried to the next.
#[derive(Debug, Clone)]
pub struct Accumulator {
    start: i64,
    res: i64,
    buckets: usize,
    by_machine: BTreeMap<String, Vec<i64>>,
    by_system: BTreeMap<String, Vec<i64>>,
    sweeps: BTreeMap<String, Sweep>,
}

impl Accumulator {
    /// Buckets over `[lo, hi)` at the resolution its span calls for ([`super::resolution`]).
    pub fn new(lo: i64, hi: i64) -> Accumulator {
        let res = super::resolution(hi - lo);
        let start = lo.div_euclid(res) * res;
        Accumulator {
            start,
            res,
            buckets: ((hi - start) + res - 1).div_euclid(res).max(0) as usize,
            by_machine: BTreeMap::new(),
            by_system: BTreeMap::new(),
            sweeps: BTreeMap::new(),
        }
    }

    /// Adds the usable steps of `steps` that ran on a machine.
    pub fn add(&mut self, steps: &Steps, usable: &[bool]) {
        let (start, res, buckets) = (self.start, self.res, self.buckets);
        let end = start + buckets as i64 * res;
        let mut started: Vec<(i64, i64, u32)> = Vec::new();
        for i in 0..steps.len() {
            let (Some(a), Some(b)) = (steps.start(i), steps.stop(i)) else {
                continue;
            };
            if !usable[i] || steps.machine(i).is_empty() || b <= a {
                continue;
            }
            started.push((a, b, i as u32));
            let (a, b) = (a.max(start), b.min(end));
            if b <= a {
                continue;
            }
            for (map, key) in [
                (&mut self.by_machine, steps.machine(i)),
                (&mut self.by_system, steps.system(i)),
            ] {
                if !map.contains_key(key) {
                    map.insert(key.to_string(), vec![0; buckets]);
                }
                if let Some(series) = map.get_mut(key) {
                    add_seconds(series, start, res, a, b);
                }
            }
        }
        started.sort_unstable();
        for (a, b, i) in started {
            let m = steps.machine(i as usize);
            if !self.sweeps.contains_key(m) {
                self.sweeps.insert(m.to_string(), Sweep::default());
            }
            if let Some(s) = self.sweeps.get_mut(m) {
                s.start(a, b);
            }
        }
    }

    pub fn finish(self) -> Utilization {
        let res = self.res;
        let tl = |series: BTreeMap<String, Vec<i64>>| Timeline {
            start: self.start,
            resolution_s: res,
            buckets: self.buckets,
            series: series
                .into_iter()
                .map(|(k, v)| (k, v.into_iter().map(|s| s as f64 / res as f64).collect()))
                .collect(),
        };
        Utilization {
            definition: DEFINITION,
            by_machine: tl(self.by_machine),
            by_system: tl(self.by_system),
            peak_by_machine: self.sweeps.into_iter().map(|(m, s)| (m, s.peak)).collect(),
        }
    }
}

/// Adds the seconds of `[a, b)` that fall in each bucket of `series` (clipped to the buckets).
pub fn add_seconds(series: &mut [i64], start: i64, res: i64, a: i64, b: i64) {
    let mut t = a;
    while t < b {
        let idx = (t - start).div_euclid(res);
        let end = (start + (idx + 1) * res).min(b);
        if let Some(v) = usize::try_from(idx).ok().and_then(|i| series.get_mut(i)) {
            *v += end - t;
        }
        t = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_split_across_buckets_exactly() {
        let mut s = vec![0; 4];
        add_seconds(&mut s, 0, 10, 5, 25);
        assert_eq!(s, vec![5, 10, 5, 0]);
    }
}
