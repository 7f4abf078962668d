//! Waste: slot-hours spent on work that bought nothing — failed, timed-out, aborted and
//! cancelled steps, successful builds of a derivation already built successfully in the window,
//! and the extra rounds of determinism checks — by category, by jobset and job, with the top
//! offenders.

use std::collections::{BTreeMap, HashMap};

use polars::prelude::*;
use serde::Serialize;

use super::Steps;
use crate::dataset::Dataset;
use crate::dispatch::BuildStatus;
use crate::error::{Error, Result};

pub const DEFINITION: &str = "A step's slot time is its build time (stopTime − startTime) plus its \
    overhead (copying inputs and outputs). Wasted: the slot time of steps that ended failed, timed \
    out, over a log or size limit, not deterministic, aborted or cancelled; of successful builds of \
    a derivation that had already been built successfully earlier in the window (rebuilt); and the \
    extra rounds of determinism checks ((timesBuilt − 1) / timesBuilt of the build time). Each step \
    counts in one category only.";

/// How many offenders to list.
const TOP: usize = 10;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Category {
    pub name: &'static str,
    pub steps: usize,
    pub slot_hours: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Offender {
    pub jobset: String,
    pub job: String,
    pub steps: usize,
    pub slot_hours: f64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Waste {
    pub definition: &'static str,
    /// Slot-hours of every usable step that ran on a machine, for scale.
    pub total_slot_hours: f64,
    pub wasted_slot_hours: f64,
    /// The part of `wasted_slot_hours` that was overhead (copying inputs and outputs) rather
    /// than building, so that a capacity waterfall can take waste out of both without counting
    /// it twice.
    pub wasted_overhead_slot_hours: f64,
    pub categories: Vec<Category>,
    pub by_jobset: Vec<Offender>,
    pub top_jobs: Vec<Offender>,
    /// Derivations built most often in the window: (drvPath, times built, slot-hours).
    pub most_rebuilt: Vec<(String, usize, f64)>,
}

fn category(status: BuildStatus) -> Option<&'static str> {
    Some(match status {
        BuildStatus::Failed | BuildStatus::FailedWithOutput => "failed",
        BuildStatus::TimedOut => "timed out",
        BuildStatus::LogLimitExceeded | BuildStatus::NarSizeLimitExceeded => "over a limit",
        BuildStatus::NotDeterministic => "not deterministic",
        BuildStatus::Aborted => "aborted",
        BuildStatus::Cancelled => "cancelled",
        _ => return None,
    })
}

const ORDER: [&str; 9] = [
    "failed",
    "timed out",
    "over a limit",
    "not deterministic",
    "aborted",
    "cancelled",
    "rebuilt",
    "determinism rounds",
    "useful",
];

pub fn waste(ds: &Dataset, steps: &Steps, usable: &[bool]) -> Result<Waste> {
    let owners = build_owners(ds)?;
    // The steps that held a slot, in storage order: only the rebuilt derivations need time
    // order, and `rebuilds` sorts those itself.
    let rows: Vec<u32> = (0..steps.len())
        .filter(|&i| usable[i] && !steps.machine(i).is_empty() && steps.duration(i).is_some())
        .map(|i| i as u32)
        .collect();
    let build_s = |i: usize| steps.duration(i).unwrap_or(0) as f64;
    let overhead_s = |i: usize| steps.overhead_ms(i).unwrap_or(0).max(0) as f64 / 1000.0;
    let (rebuilt, most_rebuilt) = rebuilds(steps, &rows, |i| build_s(i) + overhead_s(i));
    let mut per_cat: BTreeMap<&'static str, (usize, f64)> = BTreeMap::new();
    let mut per_jobset: HashMap<(&str, &str), (usize, f64)> = HashMap::new();
    let mut per_job: HashMap<(&str, &str, &str), (usize, f64)> = HashMap::new();
    // Wasted steps and seconds per build, by its position in `owners`.
    let mut per_build: Vec<(usize, f64)> = vec![(0, 0.0); owners.len()];
    let mut total = 0.0;
    let mut wasted_overhead_s = 0.0;
    for &i in &rows {
        let i = i as usize;
        let (build_s, overhead_s) = (build_s(i), overhead_s(i));
        let slot_s = build_s + overhead_s;
        total += slot_s;
        let (cat, wasted_s) = match steps.status(i).and_then(category) {
            Some(c) => (c, slot_s),
            None if steps.status(i) == Some(BuildStatus::Success) => {
                let rounds = steps.times_built(i).unwrap_or(1).max(1);
                if rebuilt[i] {
                    ("rebuilt", slot_s)
                } else if rounds > 1 {
                    (
                        "determinism rounds",
                        build_s * f64::from(rounds - 1) / f64::from(rounds),
                    )
                } else {
                    ("useful", 0.0)
                }
            }
            None => ("useful", 0.0),
        };
        let e = per_cat.entry(cat).or_default();
        e.0 += 1;
        e.1 += wasted_s;
        // Determinism rounds waste build time only; every other category the whole slot time.
        if wasted_s > 0.0 && cat != "determinism rounds" {
            wasted_overhead_s += overhead_s;
        }
        if wasted_s > 0.0
            && let Some(k) = owners.position(steps.build(i))
        {
            let e = &mut per_build[k];
            e.0 += 1;
            e.1 += wasted_s;
        }
    }
    // Rolled up by name once per build, not once per step: three names hashed per wasted step
    // were a tenth of `analyze waste` at a million steps.
    for (k, &(n, s)) in per_build.iter().enumerate().filter(|(_, e)| e.0 > 0) {
        let (project, jobset, job) = owners.names(k);
        let e = per_jobset.entry((project, jobset)).or_default();
        e.0 += n;
        e.1 += s;
        let e = per_job.entry((project, jobset, job)).or_default();
        e.0 += n;
        e.1 += s;
    }
    let hours = |s: f64| s / 3600.0;
    let categories: Vec<Category> = ORDER
        .iter()
        .filter(|c| **c != "useful")
        .map(|&name| {
            let (n, s) = per_cat.get(name).copied().unwrap_or_default();
            Category {
                name,
                steps: n,
                slot_hours: hours(s),
            }
        })
        .collect();
    let wasted: f64 = categories.iter().map(|c| c.slot_hours).sum();
    let top = |mut v: Vec<Offender>| {
        v.sort_by(|a, b| {
            b.slot_hours
                .total_cmp(&a.slot_hours)
                .then(a.jobset.cmp(&b.jobset))
                .then(a.job.cmp(&b.job))
        });
        v.truncate(TOP);
        v
    };
    let by_jobset = top(per_jobset
        .into_iter()
        .map(|((p, j), (n, s))| Offender {
            jobset: format!("{p}:{j}"),
            job: String::new(),
            steps: n,
            slot_hours: hours(s),
        })
        .collect());
    let top_jobs = top(per_job
        .into_iter()
        .map(|((p, js, j), (n, s))| Offender {
            jobset: format!("{p}:{js}"),
            job: j.to_string(),
            steps: n,
            slot_hours: hours(s),
        })
        .collect());
    let most_rebuilt = most_rebuilt
        .into_iter()
        .map(|(d, n, s)| (d.to_string(), n, hours(s)))
        .collect();
    Ok(Waste {
        definition: DEFINITION,
        total_slot_hours: hours(total),
        wasted_slot_hours: wasted,
        wasted_overhead_slot_hours: hours(wasted_overhead_s),
        categories,
        by_jobset,
        top_jobs,
        most_rebuilt,
    })
}

/// Which of the steps in `rows` are successful builds of a derivation already built
/// successfully earlier (a flag per step row), and the [`TOP`] derivations built most often:
/// (path, builds, slot seconds by `slot_s`).
///
/// Found by sorting the builds by derivation, which costs 16 bytes a step; a map keyed by path
/// cost about 80 bytes a step, over a gigabyte at ten million steps.
fn rebuilds<'a>(
    steps: &'a Steps,
    rows: &[u32],
    slot_s: impl Fn(usize) -> f64,
) -> (Vec<bool>, Vec<(&'a str, usize, f64)>) {
    // (the path's first 8 bytes of hash, row): paths are compared whole only where those bytes
    // tie (the same derivation, or a rare collision of prefixes), which made this sort three
    // times as fast as one over the paths (a sixth of `analyze waste` at a million steps);
    // then each derivation's builds in time order (start, build, step number), which spares
    // sorting every step by time first.
    let path = |i: u32| steps.drv_path(i as usize).unwrap_or_default();
    let when = |i: u32| {
        let i = i as usize;
        (steps.start(i), steps.build(i), steps.stepnr(i))
    };
    let mut keyed: Vec<(u64, u32)> = rows
        .iter()
        .copied()
        .filter(|&i| steps.kind(i as usize) == 0 && steps.drv_path(i as usize).is_some())
        .map(|i| (hash_prefix(path(i)), i))
        .collect();
    keyed.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| path(a.1).cmp(path(b.1)))
            .then_with(|| when(a.1).cmp(&when(b.1)))
    });
    let mut rebuilt = vec![false; steps.len()];
    let mut often: Vec<(&str, usize, f64)> = Vec::new();
    // Neighbours with different prefixes are different derivations: only equal prefixes are
    // compared whole.
    for group in keyed.chunk_by(|a, b| a.0 == b.0 && path(a.1) == path(b.1)) {
        let mut built_ok = false;
        let mut seconds = 0.0;
        for &(_, i) in group {
            let i = i as usize;
            seconds += slot_s(i);
            if steps.status(i) == Some(BuildStatus::Success) {
                rebuilt[i] = built_ok;
                built_ok = true;
            }
        }
        if group.len() > 1 {
            often.push((path(group[0].1), group.len(), seconds));
        }
    }
    // The most builds first, then the most slot time, then by path.
    often.sort_by(|(a_path, a_builds, a_s), (b_path, b_builds, b_s)| {
        b_builds
            .cmp(a_builds)
            .then(b_s.total_cmp(a_s))
            .then(a_path.cmp(b_path))
    });
    often.truncate(TOP);
    (rebuilt, often)
}

/// Eight bytes of a store path's hash as a number, to sort by before the whole path: the bytes
/// after `/nix/store/` (any eight bytes from there on tell paths apart as well as the hash
/// does), else the path's first eight.
fn hash_prefix(path: &str) -> u64 {
    let b = path.as_bytes();
    let from = if b.len() >= 19 && path.starts_with("/nix/store/") {
        11
    } else {
        0
    };
    let mut k = [0u8; 8];
    let n = (b.len() - from).min(8);
    k[..n].copy_from_slice(&b[from..from + n]);
    u64::from_be_bytes(k)
}

/// Build id → (project, jobset, job), borrowed from the frame: a sorted (id, row) index of 8
/// bytes a build, where a hash map of three names per build costs ten times that.
struct Owners<'a> {
    index: Vec<(i32, u32)>,
    project: &'a StringChunked,
    jobset: &'a StringChunked,
    job: &'a StringChunked,
}

impl<'a> Owners<'a> {
    fn len(&self) -> usize {
        self.index.len()
    }

    /// The build's position in the index, for [`Owners::names`].
    fn position(&self, build: i32) -> Option<usize> {
        self.index.binary_search_by_key(&build, |e| e.0).ok()
    }

    /// (project, jobset, job) of the build at `position`.
    fn names(&self, position: usize) -> (&'a str, &'a str, &'a str) {
        let row = self.index[position].1 as usize;
        (
            self.project.get(row).unwrap_or("?"),
            self.jobset.get(row).unwrap_or("?"),
            self.job.get(row).unwrap_or("?"),
        )
    }
}

fn build_owners(ds: &Dataset) -> Result<Owners<'_>> {
    let df = &ds.builds;
    let err = |e| Error::frame("builds", e);
    let ids = df.column("id").map_err(err)?.i32().map_err(err)?;
    let mut index: Vec<(i32, u32)> = ids
        .iter()
        .enumerate()
        .filter_map(|(row, id)| Some((id?, row as u32)))
        .collect();
    index.sort_unstable();
    Ok(Owners {
        index,
        project: df.column("project").map_err(err)?.str().map_err(err)?,
        jobset: df.column("jobset").map_err(err)?.str().map_err(err)?,
        job: df.column("job").map_err(err)?.str().map_err(err)?,
    })
}
