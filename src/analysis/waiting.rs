//! Queue waiting: how long builds wait from being queued to their first step starting, and to
//! finishing; by system type, jobset, priority and day; and the backlog over time.

use std::collections::{BTreeMap, HashMap};

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

#[derive(Debug, Clone, Serialize, PartialEq)]
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

#[derive(Debug, Clone, Serialize, PartialEq)]
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

struct Build<'a> {
    system: &'a str,
    project: &'a str,
    jobset: &'a str,
    priority: i32,
    queued: i64,
    stop: Option<i64>,
    finished: bool,
    cached: bool,
}

/// Waits of every build in the dataset; `usable` is the data-quality mask over `steps`.
pub fn waiting(ds: &Dataset, steps: &Steps, usable: &[bool]) -> Result<Waiting> {
    let builds = read_builds(ds)?;
    let mut first_start: HashMap<i32, i64> = HashMap::new();
    for i in 0..steps.len() {
        if let (true, Some(s)) = (usable[i], steps.start[i]) {
            first_start
                .entry(steps.build[i])
                .and_modify(|v| *v = (*v).min(s))
                .or_insert(s);
        }
    }
    type Acc = (Vec<f64>, Vec<f64>);
    let mut overall: Acc = Default::default();
    // Grouped by borrowed keys (no string built per build); named once at the end.
    let mut by_system: HashMap<&str, Acc> = HashMap::new();
    let mut by_jobset: HashMap<(&str, &str), Acc> = HashMap::new();
    let mut by_priority: HashMap<i32, Acc> = HashMap::new();
    let mut by_day: HashMap<i64, Acc> = HashMap::new();
    let mut cached_builds = 0;
    for (id, b) in &builds {
        let to_start = if b.cached {
            cached_builds += 1;
            None
        } else {
            first_start.get(id).map(|s| (s - b.queued).max(0) as f64)
        };
        let to_finish = match (b.finished, b.stop) {
            (true, Some(stop)) if stop >= b.queued => Some((stop - b.queued) as f64),
            _ => None,
        };
        for acc in [
            &mut overall,
            by_system.entry(b.system).or_default(),
            by_jobset.entry((b.project, b.jobset)).or_default(),
            by_priority.entry(b.priority).or_default(),
            by_day.entry(b.queued.div_euclid(86_400)).or_default(),
        ] {
            acc.0.extend(to_start);
            acc.1.extend(to_finish);
        }
    }
    let finish = |key: String, (mut s, mut f): Acc| Group {
        key,
        to_start_histogram: histogram(&s),
        to_start: Distribution::of(&mut s),
        to_finish: Distribution::of(&mut f),
    };
    let named = |groups: Vec<(String, Acc)>| {
        let mut v: Vec<Group> = groups.into_iter().map(|(k, a)| finish(k, a)).collect();
        v.sort_by(|a, b| a.key.cmp(&b.key));
        v
    };
    let sys = named(
        by_system
            .into_iter()
            .map(|(k, a)| (k.to_string(), a))
            .collect(),
    );
    let js = named(
        by_jobset
            .into_iter()
            .map(|((p, j), a)| (format!("{p}:{j}"), a))
            .collect(),
    );
    let mut prio: Vec<(i32, Acc)> = by_priority.into_iter().collect();
    prio.sort_by_key(|(p, _)| *p);
    let prio: Vec<Group> = prio
        .into_iter()
        .map(|(p, a)| finish(p.to_string(), a))
        .collect();
    let day = named(
        by_day
            .into_iter()
            .map(|(d, a)| (crate::window::fmt_time(d * 86_400)[..10].to_string(), a))
            .collect(),
    );
    let (backlog_resolution_s, backlog) = backlog(&builds);
    Ok(Waiting {
        definition: DEFINITION,
        overall: finish("all".into(), overall),
        by_system: sys,
        by_jobset: js,
        by_priority: prio,
        by_day: day,
        backlog_resolution_s,
        backlog,
        cached_builds,
    })
}

/// Builds in the queue over time, by a sweep over queue and stop times.
fn backlog(builds: &BTreeMap<i32, Build<'_>>) -> (i64, Vec<BacklogPoint>) {
    let mut events: Vec<(i64, i64)> = Vec::with_capacity(builds.len() * 2);
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    for b in builds.values() {
        events.push((b.queued, 1));
        lo = lo.min(b.queued);
        hi = hi.max(b.queued);
        if let (true, Some(s)) = (b.finished, b.stop) {
            events.push((s.max(b.queued), -1));
            hi = hi.max(s);
        }
    }
    if events.is_empty() {
        return (super::resolution(0), Vec::new());
    }
    events.sort_unstable();
    let res = super::resolution(hi - lo);
    let mut out = Vec::new();
    let mut level: i64 = 0;
    let mut e = 0;
    let mut t = lo.div_euclid(res) * res;
    while t <= hi {
        while e < events.len() && events[e].0 <= t {
            level += events[e].1;
            e += 1;
        }
        out.push(BacklogPoint {
            time: t,
            queued: level.max(0) as usize,
        });
        t += res;
    }
    (res, out)
}

fn read_builds(ds: &Dataset) -> Result<BTreeMap<i32, Build<'_>>> {
    let df = &ds.builds;
    let err = |e| Error::frame("builds", e);
    let col = |n: &str| df.column(n).map_err(err);
    let ids = col("id")?.i32().map_err(err)?;
    let sys = col("system")?.str().map_err(err)?;
    let project = col("project")?.str().map_err(err)?;
    let jobset = col("jobset")?.str().map_err(err)?;
    let prio = col("priority")?.i32().map_err(err)?;
    let ts = col("timestamp")?.i64().map_err(err)?;
    let stop = col("stop_time")?.i64().map_err(err)?;
    let fin = col("finished")?.bool().map_err(err)?;
    let cached = col("is_cached_build")?.bool().map_err(err)?;
    let mut out = BTreeMap::new();
    for i in 0..df.height() {
        let (Some(id), Some(queued)) = (ids.get(i), ts.get(i)) else {
            continue;
        };
        out.insert(
            id,
            Build {
                system: sys.get(i).unwrap_or(""),
                project: project.get(i).unwrap_or("?"),
                jobset: jobset.get(i).unwrap_or("?"),
                priority: prio.get(i).unwrap_or(0),
                queued,
                stop: stop.get(i),
                finished: fin.get(i).unwrap_or(false),
                cached: cached.get(i).unwrap_or(false),
            },
        );
    }
    Ok(out)
}
