//! Queue waiting: how long builds wait from being queued to their first step starting, and to
//! finishing; by system type, jobset, priority and day; and the backlog over time.

use polars::prelude::*;

use serde::Serialize;

use super::{Distribution, Steps};
use crate::dataset::Dataset;
use crate::error::{Error, Result};

pub const DEFINITION: &str = "to_start: from Builds.timestamp (queued) to the earliest startTime of \
    the build's own steps; to_finish: from Builds.timestamp to Builds.stopTime. Cached builds \
    (nothing built) and builds without usable steps have no to_start. A step that appears to start \
    before its build was queued (clock skew) counts as a wait of zero.";

/// Lower edges, seconds, of the bins of [`Group::to_start_histogram`]: a 1-2-5 series, so that
/// waits of seconds and of days both get bins a log-scaled chart shows evenly; the last bin is
/// open-ended.
pub const HISTOGRAM_EDGES_S: [f64; 20] = [
    0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5,
    2e5, 5e5, 1e6,
];

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Group {
    pub key: String,
    pub to_start: Distribution,
    pub to_finish: Distribution,
    /// Builds whose `to_start` falls in each bin of [`HISTOGRAM_EDGES_S`].
    pub to_start_histogram: Vec<usize>,
}

/// Counts of `values` in the bins of [`HISTOGRAM_EDGES_S`].
pub fn histogram(values: &[f64]) -> Vec<usize> {
    let mut counts = vec![0; HISTOGRAM_EDGES_S.len()];
    for &v in values {
        let bin = HISTOGRAM_EDGES_S.partition_point(|&e| e <= v).max(1) - 1;
        counts[bin] += 1;
    }
    counts
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct BacklogPoint {
    /// Unix seconds.
    pub time: i64,
    /// Builds queued at or before `time` and not finished by then.
    pub queued: usize,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Waiting {
    pub definition: &'static str,
    pub overall: Group,
    pub by_system: Vec<Group>,
    pub by_jobset: Vec<Group>,
    pub by_priority: Vec<Group>,
    /// By the UTC day the build was queued.
    pub by_day: Vec<Group>,
    pub backlog_resolution_s: i64,
    pub backlog: Vec<BacklogPoint>,
    pub cached_builds: usize,
}

/// Each build's earliest usable step start, over steps given in parts (a window at once, or
/// its days in any order): a `(build, start)` per build and part, 16 bytes, sorted by build
/// for a binary search at the end (a hash map of ten million builds costs several times as
/// much).
#[derive(Debug, Clone, Default)]
pub struct FirstStarts(Vec<(i32, i64)>);

impl FirstStarts {
    /// Adds the usable steps of `steps` (`usable`: the data-quality mask).
    pub fn add(&mut self, steps: &Steps, usable: &[bool]) {
        // Steps in key order come a build's together, so each build's earliest is found in
        // one pass; `sorted` sorts only if they did not (sorting a million starts was half
        // of this finding's first part).
        for i in (0..steps.len()).filter(|&i| usable[i]) {
            let (build, Some(start)) = (steps.build(i), steps.start(i)) else {
                continue;
            };
            match self.0.last_mut() {
                Some((b, s)) if *b == build => *s = (*s).min(start),
                _ => self.0.push((build, start)),
            }
        }
    }

    /// One `(build, earliest start)` per build, by build.
    fn sorted(self) -> Vec<(i32, i64)> {
        let mut v = self.0;
        if !v.is_sorted_by(|a, b| a.0 < b.0) {
            v.sort_unstable();
            v.dedup_by_key(|(b, _)| *b);
        }
        v
    }
}

/// Distinct names, numbered in order of first sight.
#[derive(Debug, Clone, Default)]
struct Names {
    index: PlHashMap<String, u32>,
    names: Vec<String>,
}

impl Names {
    fn code(&mut self, name: &str) -> u32 {
        if let Some(&c) = self.index.get(name) {
            return c;
        }
        let c = self.names.len() as u32;
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), c);
        c
    }
}

/// The builds' waits and what they are grouped by, over builds given in parts (a window's
/// builds at once, or a snapshot's files one after the other): per build with an id and a
/// queue time, its two waits as NaN-for-none `f64`s, its system and jobset as numbers into
/// their names, its priority and queue time, 36 bytes, and its stop for the backlog; the
/// groups are made at the end, one grouping at a time.
#[derive(Debug, Clone, Default)]
pub struct Accumulator {
    first: Vec<(i32, i64)>,
    cached_builds: usize,
    to_start: Vec<f64>,
    to_finish: Vec<f64>,
    system: Vec<u32>,
    jobset: Vec<u32>,
    priority: Vec<i32>,
    queued: Vec<i64>,
    /// When each finished build left the queue (its stop, not before its queue time).
    left: Vec<i64>,
    systems: Names,
    jobsets: Names,
}

impl Accumulator {
    /// Waits measured against the steps' earliest starts in `first`.
    pub fn new(first: FirstStarts) -> Accumulator {
        Accumulator {
            first: first.sorted(),
            ..Accumulator::default()
        }
    }

    /// Adds the builds of `df` (Hydra's columns as [`crate::dataset::BUILDS`] names them).
    pub fn add(&mut self, df: &DataFrame) -> Result<()> {
        let err = |e| Error::frame("builds", e);
        let col = |n: &str| df.column(n).map_err(err);
        let ids = col("id")?.i32().map_err(err)?;
        let system = col("system")?.str().map_err(err)?;
        let project = col("project")?.str().map_err(err)?;
        let jobset = col("jobset")?.str().map_err(err)?;
        let priority = col("priority")?.i32().map_err(err)?;
        let queued = col("timestamp")?.i64().map_err(err)?;
        let stop = col("stop_time")?.i64().map_err(err)?;
        let finished = col("finished")?.bool().map_err(err)?;
        let cached = col("is_cached_build")?.bool().map_err(err)?;
        let mut pair = String::new();
        let rows = ids
            .iter()
            .zip(queued.iter())
            .zip(system.iter().zip(project.iter().zip(jobset.iter())))
            .zip(priority.iter().zip(stop.iter()))
            .zip(finished.iter().zip(cached.iter()));
        // Rows without an id or a queue time cannot have a wait.
        for ((((id, q), (sys, (p, j))), (prio, stop)), (finished, cached)) in rows {
            let (Some(id), Some(q)) = (id, q) else {
                continue;
            };
            let mut to_start = f64::NAN;
            if cached == Some(true) {
                self.cached_builds += 1;
            } else if let Ok(k) = self.first.binary_search_by_key(&id, |(b, _)| *b) {
                to_start = (self.first[k].1 - q).max(0) as f64;
            }
            let done = stop.filter(|_| finished == Some(true));
            self.to_start.push(to_start);
            self.to_finish.push(
                done.filter(|&s| s >= q)
                    .map_or(f64::NAN, |s| (s - q) as f64),
            );
            if let Some(s) = done {
                self.left.push(s.max(q));
            }
            self.system.push(self.systems.code(sys.unwrap_or("")));
            pair.clear();
            pair.push_str(p.unwrap_or("?"));
            pair.push(':');
            pair.push_str(j.unwrap_or("?"));
            self.jobset.push(self.jobsets.code(&pair));
            self.priority.push(prio.unwrap_or(0));
            self.queued.push(q);
        }
        Ok(())
    }

    pub fn finish(self) -> Waiting {
        let finish = |key: String, (mut s, mut f): Waits| Group {
            key,
            to_start_histogram: histogram(&s),
            to_start: Distribution::of(&mut s),
            to_finish: Distribution::of(&mut f),
        };
        let named = |groups: Vec<(String, Waits)>| {
            let mut v: Vec<Group> = groups.into_iter().map(|(k, a)| finish(k, a)).collect();
            v.sort_by(|a, b| a.key.cmp(&b.key));
            v
        };
        let by_code = |names: &Names, code: &[u32]| {
            named(
                self.grouped(|i| code[i])
                    .into_iter()
                    .map(|(c, w)| (names.names[c as usize].clone(), w))
                    .collect(),
            )
        };
        // One grouping at a time, so that only one set of per-group copies of the waits
        // lives at once.
        let overall = finish(
            "all".into(),
            self.grouped(|_| ())
                .pop()
                .map_or_else(Waits::default, |(_, w)| w),
        );
        let by_system = by_code(&self.systems, &self.system);
        let by_jobset = by_code(&self.jobsets, &self.jobset);
        let mut prio = self.grouped(|i| self.priority[i]);
        prio.sort_by_key(|(p, _)| *p);
        let by_priority: Vec<Group> = prio
            .into_iter()
            .map(|(p, a)| finish(p.to_string(), a))
            .collect();
        let by_day = named(
            self.grouped(|i| self.queued[i].div_euclid(86_400))
                .into_iter()
                .map(|(d, a)| (crate::window::fmt_time(d * 86_400)[..10].to_string(), a))
                .collect(),
        );
        let (backlog_resolution_s, backlog) = backlog(self.queued, self.left);
        Waiting {
            definition: DEFINITION,
            overall,
            by_system,
            by_jobset,
            by_priority,
            by_day,
            backlog_resolution_s,
            backlog,
            cached_builds: self.cached_builds,
        }
    }

    /// The waits split by `key` of each build (dropping the NaNs of "no wait").
    fn grouped<K: std::hash::Hash + Eq>(&self, key: impl Fn(usize) -> K) -> Vec<(K, Waits)> {
        let mut groups: PlHashMap<K, Waits> = PlHashMap::default();
        for i in 0..self.queued.len() {
            let g = groups.entry(key(i)).or_default();
            for (from, to) in [(&self.to_start, &mut g.0), (&self.to_finish, &mut g.1)] {
                if !from[i].is_nan() {
                    to.push(from[i]);
                }
            }
        }
        groups.into_iter().collect()
    }
}

/// Per group, its two waits.
type Waits = (Vec<f64>, Vec<f64>);

/// Waits of every build in the dataset; `usable` is the data-quality mask over `steps`.
pub fn waiting(ds: &Dataset, steps: &Steps, usable: &[bool]) -> Result<Waiting> {
    let mut first = FirstStarts::default();
    first.add(steps, usable);
    let mut acc = Accumulator::new(first);
    acc.add(&ds.builds)?;
    Ok(acc.finish())
}

/// Builds in the queue over time, by a sweep over queue and stop times (two sorted lists of
/// times rather than one list of signed events: half the memory over millions of builds).
fn backlog(mut queued: Vec<i64>, mut left: Vec<i64>) -> (i64, Vec<BacklogPoint>) {
    if queued.is_empty() {
        return (super::resolution(0), Vec::new());
    }
    queued.sort_unstable();
    left.sort_unstable();
    let lo = queued[0];
    let hi = queued[queued.len() - 1].max(left.last().copied().unwrap_or(lo));
    let res = super::resolution(hi - lo);
    let mut out = Vec::new();
    let (mut q, mut l) = (0, 0);
    let mut t = lo.div_euclid(res) * res;
    while t <= hi {
        q += queued[q..].partition_point(|&v| v <= t);
        l += left[l..].partition_point(|&v| v <= t);
        out.push(BacklogPoint {
            time: t,
            queued: q.saturating_sub(l),
        });
        t += res;
    }
    (res, out)
}
