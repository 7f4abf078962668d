//! Waste: slot-hours spent on work that bought nothing — failed, timed-out, aborted and
//! cancelled steps, successful builds of a derivation already built successfully in the window,
//! and the extra rounds of determinism checks — by category, by jobset and job, with the top
//! offenders.

use std::collections::HashMap;

use polars::prelude::{PlHashMap, PlHashSet};

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
    extra rounds of determinism checks ((timesBuilt − 1) / timesBuilt of the build time, to the \
    millisecond). Each step counts in one category only.";

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
    let mut acc = Accumulator::with_capacity(steps.len());
    acc.add(steps, usable);
    acc.add_owners(&ds.builds)?;
    let wanted = acc.candidates();
    let mut paths = HashMap::new();
    add_paths(steps, &wanted, &mut paths);
    Ok(acc.finish(&paths))
}

/// The key a derivation is counted under: 64 bits of its store path's hash (the first 13 of
/// its base-32 characters; a store path's hash already stands for its name), else, for a path
/// that is not a store path, a 64-bit hash of the whole of it. Two of `n` distinct derivations
/// share a key with a chance of about `n² / 2⁶⁵`: 4 × 10⁻⁵ over a year of a large farm (40
/// million), where keeping the paths would cost gigabytes (docs/scale.md).
pub fn drv_key(path: &str) -> u64 {
    if let Some(rest) = path.strip_prefix("/nix/store/")
        && rest.len() > 32
        && rest.as_bytes()[32] == b'-'
    {
        let digits = rest.as_bytes()[..13]
            .iter()
            .map(|&c| NIX32_DIGIT[c as usize]);
        if let Some(key) = digits
            .into_iter()
            .try_fold(0u64, |k, d| (d < 32).then_some((k << 5) | u64::from(d)))
        {
            return key;
        }
    }
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    path.hash(&mut h);
    h.finish()
}

/// Each byte's value as a digit of Nix's base 32 (`0123456789abcdfghijklmnpqrsvwxyz`), 32 for a
/// byte that is not one: a table, as a search of the alphabet per character was a tenth of
/// `analyze waste` over a million steps.
const NIX32_DIGIT: [u8; 256] = {
    let alphabet = b"0123456789abcdfghijklmnpqrsvwxyz";
    let mut t = [32u8; 256];
    let mut i = 0;
    while i < 32 {
        t[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// A derivation's builds so far: whether one succeeded, and its first build's slot time while
/// it has one build (8 bytes in all: most derivations of a window are built once); once built
/// again, its builds and slot time are counted in [`Accumulator::repeated`].
#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    first_ms: u32,
    flags: u32,
}

/// [`Seen::flags`]: a build of the derivation succeeded.
const BUILT_OK: u32 = 1;
/// [`Seen::flags`]: the builds and slot time are in [`Accumulator::repeated`].
const REPEATED: u32 = 2;

/// Waste over steps given in parts, each part's steps starting no earlier than those of the
/// parts before (a window at once, or its days in order). Every amount is whole milliseconds
/// (a determinism round's share rounded to the millisecond), so sums are exact whatever the
/// order; a derivation is known by [`drv_key`] (16 bytes a distinct derivation, 24 more for one
/// built again), and a build by its id only while it has wasted something.
#[derive(Debug, Clone, Default)]
pub struct Accumulator {
    /// Per category of [`ORDER`]: steps and wasted milliseconds.
    per_cat: [(usize, i64); ORDER.len()],
    total_ms: i64,
    wasted_overhead_ms: i64,
    /// Wasted steps and milliseconds per build.
    per_build: PlHashMap<i32, (usize, i64)>,
    drvs: PlHashMap<u64, Seen>,
    /// Builds and slot milliseconds of the derivations built more than once.
    repeated: PlHashMap<u64, (u32, i64)>,
    /// Wasted steps and milliseconds per (project, jobset) and per (project, jobset, job), once
    /// the builds' owners are known ([`Accumulator::add_owners`]).
    per_jobset: HashMap<(String, String), (usize, i64)>,
    per_job: HashMap<(String, String, String), (usize, i64)>,
}

impl Accumulator {
    /// For about `steps` steps: the derivations' table is made once at its size (growing it
    /// held the old table beside the new one, 1.7 GB over a year of a large farm).
    pub fn with_capacity(steps: usize) -> Accumulator {
        Accumulator {
            drvs: PlHashMap::with_capacity(steps),
            ..Accumulator::default()
        }
    }

    /// Adds the usable steps of `steps` that ran on a machine.
    pub fn add(&mut self, steps: &Steps, usable: &[bool]) {
        let build_ms = |i: usize| steps.duration(i).unwrap_or(0) * 1000;
        let overhead_ms = |i: usize| steps.overhead_ms(i).unwrap_or(0).max(0);
        // The steps that held a slot, in order of their start (then build, step number): a
        // successful build of a derivation built successfully before is rebuilt.
        // Made, sorted and keyed on the threads there are: the other findings leave one idle
        // while this one, the longest, runs (0.75 s of a million steps one row at a time).
        use rayon::prelude::*;
        let mut rows: Vec<(i64, i32, i32, u32)> = (0..steps.len())
            .into_par_iter()
            .filter(|&i| usable[i] && !steps.machine(i).is_empty() && steps.duration(i).is_some())
            .map(|i| {
                let start = steps.start(i).unwrap_or_default();
                (start, steps.build(i), steps.stepnr(i), i as u32)
            })
            .collect();
        rows.par_sort_unstable();
        let keys: Vec<Option<u64>> = rows
            .par_iter()
            .map(|&(.., i)| {
                let i = i as usize;
                (steps.kind(i) == 0).then(|| steps.drv_path(i).map(drv_key))?
            })
            .collect();
        for ((.., i), key) in rows.into_iter().zip(keys) {
            let i = i as usize;
            let (build_ms, overhead_ms) = (build_ms(i), overhead_ms(i));
            let slot_ms = build_ms + overhead_ms;
            self.total_ms += slot_ms;
            let success = steps.status(i) == Some(BuildStatus::Success);
            let mut rebuilt = false;
            if let Some(key) = key {
                match self.drvs.get_mut(&key) {
                    None => {
                        // Its first build: its slot time kept in the 8 bytes when it fits.
                        let mut seen = Seen::default();
                        match u32::try_from(slot_ms) {
                            Ok(ms) => seen.first_ms = ms,
                            Err(_) => {
                                seen.flags = REPEATED;
                                self.repeated.insert(key, (1, slot_ms));
                            }
                        }
                        if success {
                            seen.flags |= BUILT_OK;
                        }
                        self.drvs.insert(key, seen);
                    }
                    Some(seen) => {
                        if seen.flags & REPEATED == 0 {
                            seen.flags |= REPEATED;
                            self.repeated.insert(key, (1, i64::from(seen.first_ms)));
                        }
                        let r = self.repeated.entry(key).or_default();
                        r.0 += 1;
                        r.1 += slot_ms;
                        if success {
                            rebuilt = seen.flags & BUILT_OK != 0;
                            seen.flags |= BUILT_OK;
                        }
                    }
                }
            }
            let (cat, wasted_ms) = match steps.status(i).and_then(category) {
                Some(c) => (c, slot_ms),
                None if success => {
                    let rounds = i64::from(steps.times_built(i).unwrap_or(1).max(1));
                    if rebuilt {
                        ("rebuilt", slot_ms)
                    } else if rounds > 1 {
                        let share = (build_ms * (rounds - 1) + rounds / 2) / rounds;
                        ("determinism rounds", share)
                    } else {
                        ("useful", 0)
                    }
                }
                None => ("useful", 0),
            };
            let k = ORDER
                .iter()
                .position(|&c| c == cat)
                .unwrap_or(ORDER.len() - 1);
            self.per_cat[k].0 += 1;
            self.per_cat[k].1 += wasted_ms;
            // Determinism rounds waste build time only; every other category the whole slot.
            if wasted_ms > 0 {
                if cat != "determinism rounds" {
                    self.wasted_overhead_ms += overhead_ms;
                }
                let e = self.per_build.entry(steps.build(i)).or_default();
                e.0 += 1;
                e.1 += wasted_ms;
            }
        }
    }

    /// Rolls the waste of the builds in `builds` (some or all of them; each build once) up to
    /// their jobsets and jobs. Rolled up by name once per build, not once per step: three names
    /// hashed per wasted step were a tenth of `analyze waste` at a million steps.
    pub fn add_owners(&mut self, builds: &DataFrame) -> Result<()> {
        let err = |e| Error::frame("builds", e);
        let col = |n: &str| builds.column(n).and_then(|c| c.str().cloned()).map_err(err);
        let ids = builds.column("id").map_err(err)?.i32().map_err(err)?;
        let (project, jobset, job) = (col("project")?, col("jobset")?, col("job")?);
        for (row, id) in ids.iter().enumerate() {
            let Some(&(n, ms)) = id.and_then(|id| self.per_build.get(&id)) else {
                continue;
            };
            let name = |c: &StringChunked| c.get(row).unwrap_or("?").to_string();
            let (p, js, j) = (name(&project), name(&jobset), name(&job));
            let e = self.per_jobset.entry((p.clone(), js.clone())).or_default();
            e.0 += n;
            e.1 += ms;
            let e = self.per_job.entry((p, js, j)).or_default();
            e.0 += n;
            e.1 += ms;
        }
        Ok(())
    }

    /// The derivations that may be among the [`TOP`] built most often: the first by builds
    /// and slot time, and every one tied with the last of them (their paths break the tie).
    pub fn candidates(&self) -> PlHashSet<u64> {
        let mut often: Vec<(u32, i64, u64)> = self
            .repeated
            .iter()
            .filter(|(_, r)| r.0 > 1)
            .map(|(k, r)| (r.0, r.1, *k))
            .collect();
        often.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
        let Some(&(n, ms, _)) = often.get(TOP.min(often.len()).saturating_sub(1)) else {
            return PlHashSet::default();
        };
        often
            .iter()
            .take_while(|&&(b, s, _)| (b, s) >= (n, ms))
            .map(|&(_, _, k)| k)
            .collect()
    }

    /// The findings, with `paths` the paths of the [`Accumulator::candidates`].
    pub fn finish(self, paths: &HashMap<u64, String>) -> Waste {
        let hours = |ms: i64| ms as f64 / 3_600_000.0;
        let categories: Vec<Category> = ORDER
            .iter()
            .zip(self.per_cat)
            .filter(|(c, _)| **c != "useful")
            .map(|(&name, (n, ms))| Category {
                name,
                steps: n,
                slot_hours: hours(ms),
            })
            .collect();
        let wasted = hours(
            ORDER
                .iter()
                .zip(self.per_cat)
                .filter(|(c, _)| **c != "useful")
                .map(|(_, (_, ms))| ms)
                .sum(),
        );
        let top = |mut v: Vec<(Offender, i64)>| {
            v.sort_by(|(a, a_ms), (b, b_ms)| {
                b_ms.cmp(a_ms)
                    .then(a.jobset.cmp(&b.jobset))
                    .then(a.job.cmp(&b.job))
            });
            v.truncate(TOP);
            v.into_iter().map(|(o, _)| o).collect::<Vec<_>>()
        };
        let offender = |jobset: String, job: String, (n, ms): (usize, i64)| {
            let o = Offender {
                jobset,
                job,
                steps: n,
                slot_hours: hours(ms),
            };
            (o, ms)
        };
        let by_jobset = top(self
            .per_jobset
            .into_iter()
            .map(|((p, j), e)| offender(format!("{p}:{j}"), String::new(), e))
            .collect());
        let top_jobs = top(self
            .per_job
            .into_iter()
            .map(|((p, js, j), e)| offender(format!("{p}:{js}"), j, e))
            .collect());
        // The most builds first, then the most slot time, then by path.
        let mut most_rebuilt: Vec<(String, usize, i64)> = paths
            .iter()
            .filter_map(|(k, p)| {
                let &(builds, ms) = self.repeated.get(k)?;
                Some((p.clone(), builds as usize, ms))
            })
            .collect();
        most_rebuilt.sort_by(|(a_path, a_n, a_ms), (b_path, b_n, b_ms)| {
            b_n.cmp(a_n).then(b_ms.cmp(a_ms)).then(a_path.cmp(b_path))
        });
        most_rebuilt.truncate(TOP);
        Waste {
            definition: DEFINITION,
            total_slot_hours: hours(self.total_ms),
            wasted_slot_hours: wasted,
            wasted_overhead_slot_hours: hours(self.wasted_overhead_ms),
            categories,
            by_jobset,
            top_jobs,
            most_rebuilt: most_rebuilt
                .into_iter()
                .map(|(p, n, ms)| (p, n, hours(ms)))
                .collect(),
        }
    }
}

/// Adds to `paths` the derivation path of each step whose [`drv_key`] is `wanted`.
pub fn add_paths(steps: &Steps, wanted: &PlHashSet<u64>, paths: &mut HashMap<u64, String>) {
    if wanted.is_empty() {
        return;
    }
    for i in 0..steps.len() {
        if let Some(p) = steps.drv_path(i) {
            let k = drv_key(p);
            if wanted.contains(&k) && !paths.contains_key(&k) {
                paths.insert(k, p.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::test_steps::steps;

    #[test]
    fn a_store_path_is_known_by_its_hash_and_anything_else_by_a_hash_of_it() {
        let a = "/nix/store/3sgyws3slavw4ipzi0x7632ijwjhi9as-holwyn-11.7.7.drv";
        let b = "/nix/store/3sgyws3slavw4ipzi0x7632ijwjhi9as-other-name.drv";
        let c = "/nix/store/3sgyw03slavw4ipzi0x7632ijwjhi9as-holwyn-11.7.7.drv";
        assert_eq!(drv_key(a), drv_key(b), "the hash stands for the path");
        assert_ne!(drv_key(a), drv_key(c));
        // The first 13 base-32 digits, 65 bits, the first one's top bit left out: "3" is 3.
        assert_eq!(drv_key(a) >> 60, 3);
        assert_ne!(drv_key("a.drv"), drv_key("b.drv"));
    }

    /// The same steps in one part or split in two (a derivation built in the first and again
    /// in the second): the same waste, the rebuild found across the parts, and the derivations
    /// built as often in the same slot time listed by path.
    #[test]
    fn parts_give_the_same_waste_as_the_whole() {
        let (x, y, z) = (
            "/nix/store/0000000000000000000000000000000x-x.drv",
            "/nix/store/1111111111111111111111111111111y-y.drv",
            "/nix/store/2222222222222222222222222222222z-z.drv",
        );
        let rows: Vec<crate::analysis::test_steps::Row<'_>> = vec![
            (1, 1, y, Some(0), Some(100), Some(200), "m"),
            (1, 2, x, Some(0), Some(100), Some(200), "m"),
            (2, 1, z, Some(1), Some(150), Some(160), "m"),
            (3, 1, x, Some(0), Some(1000), Some(1100), "m"),
            (3, 2, y, Some(1), Some(1000), Some(1100), "m"),
            (4, 1, z, Some(1), Some(1200), Some(1290), "m"),
        ];
        let whole = {
            let s = steps(&rows);
            let mut acc = Accumulator::default();
            acc.add(&s, &vec![true; s.len()]);
            let mut paths = HashMap::new();
            add_paths(&s, &acc.candidates(), &mut paths);
            acc.finish(&paths)
        };
        let (early, late) = (steps(&rows[..3]), steps(&rows[3..]));
        let mut acc = Accumulator::default();
        acc.add(&early, &[true; 3]);
        acc.add(&late, &[true; 3]);
        let mut paths = HashMap::new();
        for part in [&early, &late] {
            add_paths(part, &acc.candidates(), &mut paths);
        }
        let parts = acc.finish(&paths);
        assert_eq!(parts, whole);
        let rebuilt = whole.categories.iter().find(|c| c.name == "rebuilt");
        assert_eq!(rebuilt.map(|c| c.steps), Some(1));
        let listed: Vec<&str> = whole.most_rebuilt.iter().map(|r| r.0.as_str()).collect();
        // x and y: built twice in 200 s each, by path; z: twice in 100 s.
        assert_eq!(listed, [x, y, z]);
    }
}
