//! Queue waiting: how long builds wait from being queued to their first step starting, and to
//! finishing; by system type, jobset, priority and day; and the backlog over time.

use std::collections::HashMap;

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

/// The builds table's columns that the waits need: the frame's own arrays (shared, not copied,
/// when they are one chunk already), in one chunk each so that reading row `i` is an index.
struct Builds {
    ids: Int32Chunked,
    system: StringChunked,
    project: StringChunked,
    jobset: StringChunked,
    priority: Int32Chunked,
    queued: Int64Chunked,
    stop: Int64Chunked,
    finished: BooleanChunked,
    cached: BooleanChunked,
}

impl Builds {
    fn len(&self) -> usize {
        self.ids.len()
    }

    /// Rows with an id and a queue time; the others cannot have a wait.
    fn rows(&self) -> impl Iterator<Item = (usize, i64)> + '_ {
        (0..self.len())
            .filter_map(|i| Some((i, self.queued.get(i).filter(|_| self.ids.get(i).is_some())?)))
    }

    /// When build `i` left the queue for good: its stop time, for a finished build.
    fn done(&self, i: usize) -> Option<i64> {
        self.stop
            .get(i)
            .filter(|_| self.finished.get(i) == Some(true))
    }
}

/// Per build, its two waits as NaN-for-none `f64`s: two vectors of 8 bytes a build, where a
/// struct per build with its names would cost ten times that over ten million builds.
type Waits = (Vec<f64>, Vec<f64>);

/// Waits of every build in the dataset; `usable` is the data-quality mask over `steps`.
pub fn waiting(ds: &Dataset, steps: &Steps, usable: &[bool]) -> Result<Waiting> {
    let builds = read_builds(ds)?;
    // Earliest usable step start per build, sorted by build for a binary search (a hash map
    // of ten million builds costs several times as much). The steps come in key order, a
    // build's steps together, so each build's earliest is found in one pass; sorted only if
    // they did not (sorting a million starts was half of this finding's first part).
    let mut first_start: Vec<(i32, i64)> = Vec::new();
    for i in (0..steps.len()).filter(|&i| usable[i]) {
        let (build, Some(start)) = (steps.build(i), steps.start(i)) else {
            continue;
        };
        match first_start.last_mut() {
            Some((b, s)) if *b == build => *s = (*s).min(start),
            _ => first_start.push((build, start)),
        }
    }
    if !first_start.is_sorted_by(|a, b| a.0 < b.0) {
        first_start.sort_unstable();
        first_start.dedup_by_key(|(b, _)| *b);
    }
    let mut cached_builds = 0;
    let mut waits: Waits = (vec![f64::NAN; builds.len()], vec![f64::NAN; builds.len()]);
    for (i, queued) in builds.rows() {
        let id = builds.ids.get(i).unwrap_or_default();
        if builds.cached.get(i) == Some(true) {
            cached_builds += 1;
        } else if let Ok(k) = first_start.binary_search_by_key(&id, |(b, _)| *b) {
            waits.0[i] = (first_start[k].1 - queued).max(0) as f64;
        }
        if let Some(stop) = builds.done(i)
            && stop >= queued
        {
            waits.1[i] = (stop - queued) as f64;
        }
    }
    drop(first_start);
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
    // One grouping at a time, so that only one set of per-group copies of the waits lives at
    // once. Grouped by borrowed keys (no string built per build); named once at the end.
    let overall = finish(
        "all".into(),
        grouped(&builds, &waits, |_| Some(()))
            .pop()
            .map_or_else(Waits::default, |(_, w)| w),
    );
    let sys = named(
        grouped(&builds, &waits, |i| {
            Some(builds.system.get(i).unwrap_or(""))
        })
        .into_iter()
        .map(|(k, a)| (k.to_string(), a))
        .collect(),
    );
    let js = named(
        grouped(&builds, &waits, |i| {
            Some((
                builds.project.get(i).unwrap_or("?"),
                builds.jobset.get(i).unwrap_or("?"),
            ))
        })
        .into_iter()
        .map(|((p, j), a)| (format!("{p}:{j}"), a))
        .collect(),
    );
    let mut prio = grouped(&builds, &waits, |i| {
        Some(builds.priority.get(i).unwrap_or(0))
    });
    prio.sort_by_key(|(p, _)| *p);
    let prio: Vec<Group> = prio
        .into_iter()
        .map(|(p, a)| finish(p.to_string(), a))
        .collect();
    let day = named(
        grouped(&builds, &waits, |i| {
            Some(builds.queued.get(i)?.div_euclid(86_400))
        })
        .into_iter()
        .map(|(d, a)| (crate::window::fmt_time(d * 86_400)[..10].to_string(), a))
        .collect(),
    );
    drop(waits);
    let (backlog_resolution_s, backlog) = backlog(&builds);
    Ok(Waiting {
        definition: DEFINITION,
        overall,
        by_system: sys,
        by_jobset: js,
        by_priority: prio,
        by_day: day,
        backlog_resolution_s,
        backlog,
        cached_builds,
    })
}

/// The waits of the builds with a queue time, split by `key` (dropping the NaNs of "no wait").
fn grouped<K: std::hash::Hash + Eq>(
    builds: &Builds,
    waits: &Waits,
    key: impl Fn(usize) -> Option<K>,
) -> Vec<(K, Waits)> {
    let mut groups: HashMap<K, Waits> = HashMap::new();
    for (i, _) in builds.rows() {
        let Some(k) = key(i) else { continue };
        let g = groups.entry(k).or_default();
        for (from, to) in [(&waits.0, &mut g.0), (&waits.1, &mut g.1)] {
            if !from[i].is_nan() {
                to.push(from[i]);
            }
        }
    }
    groups.into_iter().collect()
}

/// Builds in the queue over time, by a sweep over queue and stop times (two sorted lists of
/// times rather than one list of signed events: half the memory over millions of builds).
fn backlog(builds: &Builds) -> (i64, Vec<BacklogPoint>) {
    let mut queued: Vec<i64> = Vec::with_capacity(builds.len());
    let mut left: Vec<i64> = Vec::new();
    for (i, q) in builds.rows() {
        queued.push(q);
        if let Some(s) = builds.done(i) {
            left.push(s.max(q));
        }
    }
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

fn read_builds(ds: &Dataset) -> Result<Builds> {
    let df = &ds.builds;
    let err = |e| Error::frame("builds", e);
    let col = |n: &str| df.column(n).map_err(err);
    Ok(Builds {
        ids: col("id")?.i32().map_err(err)?.rechunk().into_owned(),
        system: col("system")?.str().map_err(err)?.rechunk().into_owned(),
        project: col("project")?.str().map_err(err)?.rechunk().into_owned(),
        jobset: col("jobset")?.str().map_err(err)?.rechunk().into_owned(),
        priority: col("priority")?.i32().map_err(err)?.rechunk().into_owned(),
        queued: col("timestamp")?.i64().map_err(err)?.rechunk().into_owned(),
        stop: col("stop_time")?.i64().map_err(err)?.rechunk().into_owned(),
        finished: col("finished")?.bool().map_err(err)?.rechunk().into_owned(),
        cached: col("is_cached_build")?
            .bool()
            .map_err(err)?
            .rechunk()
            .into_owned(),
    })
}
