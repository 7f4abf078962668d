//! Data quality: odd rows are counted, named and, where they would distort a figure, excluded
//! from it — never a crash, never silently dropped.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Steps;
use crate::dataset::Dataset;
use crate::dispatch::BuildStatus;
use crate::error::{Error, Result};

/// A build step longer than this is not a build: Hydra's default timeout is 10 h and jobs rarely
/// raise it past a day; a week means a broken clock or a row never closed.
pub const ABSURD_DURATION_S: i64 = 7 * 86_400;
/// Copying one step's inputs and outputs for more than a day is not a transfer but a stuck
/// connection or a unit mix-up (overhead is milliseconds).
pub const ABSURD_OVERHEAD_MS: i64 = 86_400_000;
/// A step may appear to start this long before its build was queued without suspicion: builder
/// and queue-runner clocks drift by seconds under NTP, and times are whole seconds.
pub const SKEW_TOLERANCE_S: i64 = 60;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Check {
    pub name: &'static str,
    pub definition: &'static str,
    pub count: usize,
    /// Whether rows failing this check are left out of time-based figures.
    pub excluded: bool,
    /// A few offending steps as `build/stepnr`, to look up.
    pub examples: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MachineSkew {
    pub machine: String,
    /// Steps that started before their build was queued (by more than the tolerance).
    pub steps: usize,
    /// The median of how much earlier, seconds: the builder's clock is roughly this far behind.
    pub median_s: i64,
    pub max_s: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Quality {
    pub steps: usize,
    pub checks: Vec<Check>,
    pub clock_skew: Vec<MachineSkew>,
    /// Steps left out of time-based figures by at least one check.
    pub excluded_steps: usize,
}

/// How many of a check's rows it names as examples.
const EXAMPLES: usize = 3;

/// Rows a thread checks at a time: 64 Ki rows give both threads many blocks over a week of
/// even a small farm, and few enough blocks that adding up their counts costs nothing.
const BLOCK: usize = 1 << 16;

/// Runs every check. Returns the findings and, per step, whether its times and overhead may be
/// used in figures.
pub fn check(ds: &Dataset, steps: &Steps) -> Result<(Quality, Vec<bool>)> {
    let queued = step_queue_times(ds, steps)?;
    let mut tally = Tally::default();
    let usable = tally.add(steps, &queued);
    Ok((tally.finish(), usable))
}

/// A step's key, `(build, stepnr)`: examples are the offending steps of the smallest keys.
type Key = (i32, i32);

/// One check's count so far and its offending steps of the smallest keys.
#[derive(Debug, Clone, Default)]
struct Count {
    count: usize,
    first: Vec<Key>,
}

impl Count {
    /// Keeps `key` if it is among the [`EXAMPLES`] smallest seen.
    fn offer(&mut self, key: Key) {
        if self.first.len() == EXAMPLES && self.first.last().is_some_and(|&l| l <= key) {
            return;
        }
        let at = self.first.partition_point(|&k| k < key);
        self.first.insert(at, key);
        self.first.truncate(EXAMPLES);
    }

    fn merge(mut self, other: Count) -> Count {
        self.count += other.count;
        for k in other.first {
            self.offer(k);
        }
        self
    }
}

/// The checks over steps given in parts (a window at once, or a day at a time): counts add up,
/// examples are the offending steps of the smallest keys whatever the order of the parts (with
/// a window in key order, its first offending rows), and the clock skew is taken over all.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    steps: usize,
    checks: Vec<(&'static str, &'static str, bool, Count)>,
    /// Per machine, how many seconds early each step that started before its build was queued.
    early: BTreeMap<String, Vec<i64>>,
    excluded_steps: usize,
}

impl Tally {
    /// Checks `steps` (`queued`: each one's build's queue time, [`step_queue_times`]) and
    /// returns, per step, whether its times and overhead may be used in figures.
    pub fn add(&mut self, steps: &Steps, queued: &[Option<i64>]) -> Vec<bool> {
        let n = steps.len();
        let mut usable = vec![true; n];
        let mut at = 0;
        // Each check is a pass over the rows, made in blocks on the threads there are (the
        // checks took 0.8 s one row after another over ten million steps); the blocks' counts
        // and examples merge.
        let mut run = |name: &'static str,
                       definition: &'static str,
                       excluded: bool,
                       bad: &(dyn Fn(usize) -> bool + Sync)| {
            use rayon::prelude::*;
            let found = usable
                .par_chunks_mut(BLOCK)
                .enumerate()
                .map(|(b, block)| {
                    let mut c = Count::default();
                    for (k, ok) in block.iter_mut().enumerate() {
                        let i = b * BLOCK + k;
                        if bad(i) {
                            c.count += 1;
                            c.offer((steps.build(i), steps.stepnr(i)));
                            if excluded {
                                *ok = false;
                            }
                        }
                    }
                    c
                })
                .reduce(Count::default, Count::merge);
            if self.checks.len() == at {
                self.checks
                    .push((name, definition, excluded, Count::default()));
            }
            let c = &mut self.checks[at].3;
            *c = std::mem::take(c).merge(found);
            at += 1;
        };
        let finished = |i: usize| steps.status(i).is_some();
        let built_remotely = |i: usize| {
            finished(i)
                && !matches!(
                    steps.status(i),
                    Some(
                        BuildStatus::DepFailed
                            | BuildStatus::CachedFailure
                            | BuildStatus::Unsupported
                    )
                )
        };
        run(
            "stop_before_start",
            "the step's stopTime is earlier than its startTime",
            true,
            &|i| matches!((steps.start(i), steps.stop(i)), (Some(a), Some(b)) if b < a),
        );
        run(
            "running_without_start",
            "the step is still running (no status) but has no startTime",
            true,
            &|i| !finished(i) && steps.start(i).is_none(),
        );
        run(
            "finished_without_times",
            "the step finished on a machine but lacks its startTime or stopTime (rows recording a \
             failure propagated from another build legitimately have no times and are not counted)",
            true,
            &|i| {
                built_remotely(i)
                    && steps.propagated_from(i).is_none()
                    && !steps.machine(i).is_empty()
                    && (steps.start(i).is_none() || steps.stop(i).is_none())
            },
        );
        run(
            "built_without_machine",
            "a build step (not a substitution) ran for a while but names no machine",
            false,
            &|i| {
                built_remotely(i)
                    && steps.kind(i) == 0
                    && steps.duration(i).is_some_and(|d| d > 0)
                    && steps.machine(i).is_empty()
            },
        );
        run(
            "negative_overhead",
            "the step's overhead (ms) is negative",
            true,
            &|i| steps.overhead_ms(i).is_some_and(|o| o < 0),
        );
        run(
            "absurd_overhead",
            "the step's overhead is more than a day",
            true,
            &|i| steps.overhead_ms(i).is_some_and(|o| o > ABSURD_OVERHEAD_MS),
        );
        run(
            "absurd_duration",
            "the step ran for more than a week",
            true,
            &|i| steps.duration(i).is_some_and(|d| d > ABSURD_DURATION_S),
        );
        let early: Vec<Option<i64>> = (0..n)
            .map(|i| {
                let q = queued[i]?;
                let s = steps.start(i)?;
                (s < q - SKEW_TOLERANCE_S).then_some(q - s)
            })
            .collect();
        run(
            "started_before_queued",
            "the step started more than a minute before its build was queued: under the C++ \
             runner step times are the builder's clock, so this is clock skew (kept: durations \
             stay valid)",
            false,
            &|i| early[i].is_some(),
        );
        for (i, d) in early.iter().enumerate() {
            if let Some(d) = d {
                self.early
                    .entry(steps.machine(i).to_string())
                    .or_default()
                    .push(*d);
            }
        }
        self.steps += n;
        self.excluded_steps += usable.iter().filter(|u| !**u).count();
        usable
    }

    /// The findings over every part added.
    pub fn finish(self) -> Quality {
        let clock_skew = self
            .early
            .into_iter()
            .map(|(m, mut v)| {
                v.sort_unstable();
                MachineSkew {
                    machine: m,
                    steps: v.len(),
                    median_s: v[v.len() / 2],
                    max_s: v[v.len() - 1],
                }
            })
            .collect();
        Quality {
            steps: self.steps,
            checks: self
                .checks
                .into_iter()
                .map(|(name, definition, excluded, c)| Check {
                    name,
                    definition,
                    count: c.count,
                    excluded,
                    examples: c.first.iter().map(|(b, n)| format!("{b}/{n}")).collect(),
                })
                .collect(),
            clock_skew,
            excluded_steps: self.excluded_steps,
        }
    }
}

/// When each step's build was queued (`Builds.timestamp`), per step; `None` for a build the
/// window does not hold. Builds are matched in one merge when both tables are in key order, as
/// `source::normalize` leaves them (a hash map of a million builds took a sixth of a finding's
/// time), and by binary search otherwise.
pub(crate) fn step_queue_times(ds: &Dataset, steps: &Steps) -> Result<Vec<Option<i64>>> {
    let mut builds = Vec::with_capacity(ds.builds.height());
    add_queue_times(&ds.builds, &mut builds)?;
    if !builds.is_sorted_by_key(|b| b.0) {
        builds.sort_unstable_by_key(|b| b.0);
    }
    Ok(queue_times(&builds, steps))
}

/// Adds the `(id, queued time)` of every build of `df` that has both.
pub fn add_queue_times(df: &polars::prelude::DataFrame, out: &mut Vec<(i32, i64)>) -> Result<()> {
    let err = |e| Error::frame("builds", e);
    let ids = df.column("id").map_err(err)?.i32().map_err(err)?;
    let ts = df.column("timestamp").map_err(err)?.i64().map_err(err)?;
    out.extend(
        ids.iter()
            .zip(ts.iter())
            .filter_map(|(id, t)| Some((id?, t?))),
    );
    Ok(())
}

/// Each step's build's queued time from `builds` (`(id, queued)` by id), `None` for a build
/// not among them; a merge while the steps come in build order, a search where they do not.
pub fn queue_times(builds: &[(i32, i64)], steps: &Steps) -> Vec<Option<i64>> {
    let mut out = Vec::with_capacity(steps.len());
    let (mut j, mut prev) = (0usize, i32::MIN);
    for i in 0..steps.len() {
        let b = steps.build(i);
        if b < prev {
            j = builds.partition_point(|x| x.0 < b);
        } else {
            while j < builds.len() && builds[j].0 < b {
                j += 1;
            }
        }
        prev = b;
        out.push(builds.get(j).filter(|x| x.0 == b).map(|x| x.1));
    }
    out
}
