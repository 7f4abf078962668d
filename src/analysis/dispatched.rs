//! The two ends of a step's wait for dispatch that the history does not record directly
//! (docs/hydra.md §5, "when a step stopped waiting"):
//!
//! - [`retry_not_before`]: a step that follows aborted tries of the same derivation was not
//!   runnable before the last try stopped plus the runner's back-off (60 · 3^(n−1) s after the
//!   n-th, [`crate::dispatch::backoff`]). Counting it as waiting from when its inputs were built
//!   would count the back-off as dispatch loss; the runner waits on purpose.
//! - [`dispatched_from_series`]: under the C++ runner a step's `startTime` is when the builder
//!   started building, after the step waited for the machine's send lock and had its inputs
//!   sent — a slot was held for it before that. The runner's series says how many slots each
//!   machine held at each sample (`currentJobs`); the history says how many of them were
//!   building. The rest were held before a build (lock wait, sending) or after one (waiting for
//!   a local slot to receive outputs). Both queues are taken as first come, first served (the
//!   send lock per machine, the local slots farm-wide; NixOS/hydra
//!   src/hydra-queue-runner/build-remote.cc and state.hh, a9581bcd), so the steps held before
//!   their build on a machine are the next ones to start there, and the steps waiting for a
//!   local slot are the latest to have finished building, across the farm (the stage counter
//!   `nrStepsWaitingForDownloadSlot` says how many). A step is taken as dispatched from the
//!   first sample of the unbroken run of samples, up to its start, at which it was among its
//!   machine's held-before-build steps. The runner's primitives (a `std::timed_mutex`, a
//!   `std::counting_semaphore`) do not promise that order; where they break it, the count held
//!   at each sample stays exact and only which of a machine's steps it is put on moves
//!   (docs/hydra.md §5, "What the series and the graph measure"). It is found in one sweep over
//!   the samples in time order ([`Sweep`]), which needs at each sample only the steps started
//!   by then, so a window's days can be handed over one at a time (docs/scale.md).
//!
//! The history's times are whole seconds, cut down (`time(0)`), and the waits measured here
//! are often shorter than a second: a step ready in second `s` became ready somewhere in
//! `[s, s + 1)`. Counted from `s`, every step would look waiting for half a second too long,
//! and on a farm with free slots that half second is all dispatch loss (on the built-in sample
//! 4 slot-h of 12). [`surely_after`] gives the first whole second at or after the event's
//! expected instant, which counts it at the sample instants (whole seconds) as often as the
//! true instant would.
//!
//! Pure: the ledger ([`super::ledger`]) passes the steps, the series and which machine each
//! step ran on.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

use super::Steps;
use super::dispatch_loss::{Machine, match_machine};
use crate::dispatch::BuildStatus;
use crate::dispatch::backoff::backoff_ms;
use crate::status::timeline::{Stage, Timeline};

/// The first whole second at which an event recorded in second `second`, `plus_ms` later, had
/// happened on average: `second + 0.5 s + plus_ms`, rounded up (see the module's doc).
pub fn surely_after(second: i64, plus_ms: i64) -> i64 {
    (second * 1000 + 500 + plus_ms + 999).div_euclid(1000)
}

/// The steps that follow aborted tries of their derivation, each with the earliest time it was
/// runnable again, in row order: few rows on any farm, where a vector of options a step held
/// 160 MB at the ledger's peak over ten million steps.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NotBefore(Vec<(u32, i64)>);

impl NotBefore {
    /// When the step of row `row` was runnable again, if aborted tries preceded it.
    pub fn get(&self, row: usize) -> Option<i64> {
        let row = u32::try_from(row).ok()?;
        let k = self.0.binary_search_by_key(&row, |e| e.0).ok()?;
        Some(self.0[k].1)
    }
}

/// For each step (row), the earliest time it was runnable again after aborted tries of its
/// derivation: the latest aborted try that stopped at or before the step's start (any build:
/// the runner's step object is shared by the builds that need it), plus the back-off after as
/// many aborted tries in a row as end there. None for a step no abort precedes.
pub fn retry_not_before(steps: &Steps, usable: &[bool]) -> NotBefore {
    let n = steps.len();
    // Stops of the aborted tries, per derivation, ascending.
    let mut aborted: HashMap<&str, Vec<i64>> = HashMap::new();
    for i in 0..n {
        if usable[i]
            && steps.status(i) == Some(BuildStatus::Aborted)
            && let (Some(d), Some(stop)) = (steps.drv_path(i), steps.stop(i))
        {
            aborted.entry(d).or_default().push(stop);
        }
    }
    if aborted.is_empty() {
        return NotBefore::default();
    }
    // Every try of a derivation that had an abort, in order of start: a success or a
    // non-retried failure between aborts ends a run of tries.
    let mut tries: HashMap<&str, Vec<(i64, i64, bool)>> = HashMap::new();
    for i in 0..n {
        if let Some(d) = steps.drv_path(i)
            && usable[i]
            && aborted.contains_key(d)
            && let Some(start) = steps.start(i)
        {
            let stop = steps.stop(i).unwrap_or(i64::MAX);
            let was_aborted = steps.status(i) == Some(BuildStatus::Aborted);
            tries.entry(d).or_default().push((start, stop, was_aborted));
        }
    }
    for v in tries.values_mut() {
        v.sort_unstable();
    }
    let after = |i: usize| {
        let d = steps.drv_path(i)?;
        let start = steps.start(i)?;
        let v = tries.get(d)?;
        // Tries that stopped by this one's start, latest last.
        let before: Vec<&(i64, i64, bool)> =
            v.iter().filter(|t| t.0 < start && t.1 <= start).collect();
        let run = before.iter().rev().take_while(|t| t.2).count();
        let last = before.last().filter(|t| t.2)?;
        Some(surely_after(last.1, backoff_ms(run as u32) as i64))
    };
    NotBefore(
        (0..n)
            .filter_map(|i| Some((u32::try_from(i).ok()?, after(i)?)))
            .collect(),
    )
}

/// A step handed to [`Sweep`]: when it started, its key (the order of steps that started in
/// the same second), when it stopped, whether it succeeded, its machine (an index into the
/// sweep's machines) and the caller's handle for it.
#[derive(Debug, Clone, Copy)]
pub struct Started {
    pub start: i64,
    pub key: (i32, i32),
    pub stop: Option<i64>,
    pub success: bool,
    pub machine: usize,
    pub id: u64,
}

/// One machine's state in a [`Sweep`].
#[derive(Debug, Default)]
struct Place<'a> {
    /// Its current-jobs series (a machine may be named more than once).
    series: Vec<&'a [f64]>,
    /// Steps handed over that had not started by the last sample swept, in order of start.
    pending: VecDeque<Started>,
    /// The stops of those that had and were still building then (`i64::MAX`: never stopped).
    building: BinaryHeap<Reverse<i64>>,
    /// For each position from the first step not yet started on: the sample a run of being
    /// held before a build began at, and the last sample it was held at.
    runs: VecDeque<(usize, usize)>,
}

/// Each step's dispatch as the series shows it (see the module's doc), found in one pass over
/// the runner's samples in order, with the steps handed over in order of start a part at a
/// time ([`Sweep::add`], then [`Sweep::through`] the time up to which every step that started
/// has been handed over). What it holds is the steps handed over and not yet started at the
/// sample reached, each machine's building steps and a few held positions, and the latest
/// successes across the farm: not the window. So the capacity ledger finds every step's
/// dispatch once, over the whole window's days, and a span of it needs of the steps after it
/// only those dispatched in it (`super::fold`).
/// A sample at which a machine's count is missing reads nothing of that machine.
pub struct Sweep<'a> {
    tl: &'a Timeline,
    places: Vec<Place<'a>>,
    /// The machines with a series, the only ones whose steps can be dispatched early.
    named: Vec<usize>,
    /// The next sample to sweep.
    next: usize,
    /// Successes handed over that had not stopped by the last sample swept, `(stop,
    /// machine)`, and the latest that had, up to `most_local` of them: at a sample the steps
    /// waiting for a local slot are taken to be the latest to have succeeded before it.
    finishing: BinaryHeap<Reverse<(i64, usize)>>,
    finished: VecDeque<(i64, usize)>,
    most_local: usize,
    /// Whether a sample counted more steps waiting for a local slot than successes handed
    /// over had stopped by it.
    short: bool,
    /// Per machine, its steps held after their build at the sample being swept.
    after: Vec<u32>,
    /// `(id, dispatched)` of each step dispatched before its start.
    out: Vec<(u64, i64)>,
}

impl<'a> Sweep<'a> {
    /// A sweep over `tl`'s samples, `machines` the places steps are handed over on.
    pub fn new(tl: &'a Timeline, machines: &[Machine]) -> Self {
        let mut places: Vec<Place<'a>> = (0..machines.len()).map(|_| Place::default()).collect();
        for (name, s) in &tl.current_jobs {
            if let Some(m) = match_machine(machines, name) {
                places[m].series.push(s);
            }
        }
        let named = (0..places.len())
            .filter(|&m| !places[m].series.is_empty())
            .collect();
        let most_local = tl
            .stages
            .get(&Stage::WaitingDownloadSlot)
            .map_or(0, |w| w.iter().map(|&c| local_count(c)).max().unwrap_or(0));
        Sweep {
            tl,
            places,
            named,
            next: 0,
            finishing: BinaryHeap::new(),
            finished: VecDeque::new(),
            most_local,
            short: false,
            after: vec![0; machines.len()],
            out: Vec::new(),
        }
    }

    /// Hands over steps that start no earlier than any handed over before, in order of
    /// `(start, key)` ([`started`]). A machine outside the sweep's is ignored.
    pub fn add(&mut self, steps: impl IntoIterator<Item = Started>) {
        for s in steps {
            let Some(place) = self.places.get_mut(s.machine) else {
                continue;
            };
            if s.success
                && let Some(stop) = s.stop
            {
                self.finishing.push(Reverse((stop, s.machine)));
            }
            // A machine the series does not name holds no slot before a build.
            if !place.series.is_empty() {
                place.pending.push_back(s);
            }
        }
    }

    /// Sweeps the samples before `until`: every step that started before it must have been
    /// handed over.
    pub fn through(&mut self, until: i64) {
        let tl = self.tl;
        while self.next < tl.times.len() && tl.times[self.next] < until {
            self.sample(self.next);
            self.next += 1;
        }
    }

    /// Whether steps that start later can still be dispatched before their start: samples are
    /// left to sweep, or a machine held slots at the last sample for steps not handed over
    /// yet. Where not, every later step is settled as not dispatched early.
    pub fn wants_steps(&self) -> bool {
        let Some(last) = self.tl.times.len().checked_sub(1) else {
            return false;
        };
        self.next <= last
            || self.named.iter().any(|&m| {
                let p = &self.places[m];
                p.runs.iter().skip(p.pending.len()).any(|r| r.1 == last)
            })
    }

    /// Whether some sample counted more steps waiting for a local slot than the successes
    /// handed over had stopped by it: steps left out before the first sample could then have
    /// been among them.
    pub fn short_of_successes(&self) -> bool {
        self.short
    }

    /// `(id, dispatched)` of the steps settled so far that were dispatched before their start,
    /// in no particular order; each is given once.
    pub fn settled(&mut self) -> std::vec::Drain<'_, (u64, i64)> {
        self.out.drain(..)
    }

    /// Sweeps the remaining samples and settles every step handed over: `(id, dispatched)` of
    /// those dispatched before their start not yet taken ([`Sweep::settled`]).
    pub fn finish(mut self) -> Vec<(u64, i64)> {
        self.through(i64::MAX);
        let tl = self.tl;
        for place in &mut self.places {
            while let Some(s) = place.pending.pop_front() {
                let run = place.runs.pop_front();
                settle(tl, &s, run, &mut self.out);
            }
        }
        self.out
    }

    fn sample(&mut self, k: usize) {
        let tl = self.tl;
        let t = tl.times[k];
        while let Some(&Reverse(f)) = self.finishing.peek()
            && f.0 <= t
        {
            self.finishing.pop();
            self.finished.push_back(f);
            if self.finished.len() > self.most_local {
                self.finished.pop_front();
            }
        }
        let waiting = tl
            .stages
            .get(&Stage::WaitingDownloadSlot)
            .map_or(0, |w| local_count(w.get(k).copied().unwrap_or(0.0)));
        self.short |= waiting > self.finished.len();
        let latest = self.finished.len().saturating_sub(waiting);
        for &(_, m) in self.finished.range(latest..) {
            self.after[m] += 1;
        }
        for &m in &self.named {
            let place = &mut self.places[m];
            // The steps that started by this sample leave the positions held before a build.
            while place.pending.front().is_some_and(|s| s.start <= t) {
                let Some(s) = place.pending.pop_front() else {
                    break;
                };
                let run = place.runs.pop_front();
                settle(tl, &s, run, &mut self.out);
                place.building.push(Reverse(s.stop.unwrap_or(i64::MAX)));
            }
            while place
                .building
                .peek()
                .is_some_and(|&Reverse(stop)| stop <= t)
            {
                place.building.pop();
            }
            // Slots held at this sample; none read where a sample is missing.
            let held: f64 = place
                .series
                .iter()
                .map(|s| s.get(k).copied().unwrap_or(f64::NAN))
                .sum();
            if !held.is_finite() {
                continue;
            }
            let before =
                (held.round() as i64 - place.building.len() as i64 - i64::from(self.after[m]))
                    .max(0) as usize;
            if place.runs.len() < before {
                place.runs.resize(before, (usize::MAX, usize::MAX));
            }
            for run in place.runs.iter_mut().take(before) {
                if k == 0 || run.1 != k - 1 {
                    run.0 = k;
                }
                run.1 = k;
            }
        }
        for &(_, m) in self.finished.range(latest..) {
            self.after[m] = 0;
        }
    }
}

/// The steps the series counts waiting for a local slot at a sample (0 where it is missing).
fn local_count(c: f64) -> usize {
    if c.is_finite() {
        c.round().max(0.0) as usize
    } else {
        0
    }
}

/// Settles step `s`, whose place had the run `run` when it started: dispatched at the run's
/// first sample if it was held up to the last sample before its start.
fn settle(tl: &Timeline, s: &Started, run: Option<(usize, usize)>, out: &mut Vec<(u64, i64)>) {
    let before_start = tl.times.partition_point(|&t| t < s.start);
    if let Some((since, last)) = run
        && before_start > 0
        && last == before_start - 1
    {
        out.push((s.id, tl.times[since]));
    }
}

/// For each step (row), when it was dispatched as the series shows it (see the module's doc),
/// where that is before its start; `None` elsewhere (no series sample before its start, a
/// machine the series does not name, or no held slot left for it). `on`: the step's machine,
/// an index into `machines`, for steps placed on one. The steps' own [`Sweep`], for a window
/// read whole.
pub fn dispatched_from_series(
    tl: &Timeline,
    steps: &Steps,
    usable: &[bool],
    machines: &[Machine],
    on: &[Option<usize>],
) -> Vec<Option<i64>> {
    let mut sweep = Sweep::new(tl, machines);
    sweep.add(started(steps, usable, on, |i| i as u64));
    let mut out = vec![None; steps.len()];
    for (row, at) in sweep.finish() {
        out[row as usize] = Some(at);
    }
    out
}

/// The usable steps of `steps` that started on a machine (`on`), in the order a [`Sweep`]
/// takes them, each with its handle `id(row)`.
pub fn started(
    steps: &Steps,
    usable: &[bool],
    on: &[Option<usize>],
    id: impl Fn(usize) -> u64,
) -> Vec<Started> {
    let mut v: Vec<Started> = (0..steps.len())
        .filter_map(|i| {
            let (Some(m), Some(start)) = (on[i], steps.start(i)) else {
                return None;
            };
            usable[i].then(|| Started {
                start,
                key: (steps.build(i), steps.stepnr(i)),
                stop: steps.stop(i),
                success: steps.status(i) == Some(BuildStatus::Success),
                machine: m,
                id: id(i),
            })
        })
        .collect();
    v.sort_unstable_by_key(|s| (s.start, s.key, s.id));
    v
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::analysis::test_steps::steps;

    const D: &str = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x.drv";
    const ABORTED: Option<i32> = Some(3);
    const OK: Option<i32> = Some(0);

    #[test]
    fn a_retry_waits_out_the_back_off_of_the_aborts_before_it() {
        let s = steps(&[
            (1, 1, D, ABORTED, Some(0), Some(100), "m"),
            (1, 2, D, ABORTED, Some(200), Some(300), "m"),
            // Two aborts in a row: 60 · 3 s after the second.
            (1, 3, D, OK, Some(1000), Some(1100), "m"),
            // A success ends the run: the next abort starts it again.
            (2, 1, D, ABORTED, Some(2000), Some(2100), "m"),
            (2, 2, D, OK, Some(2500), Some(2600), "m"),
        ]);
        let got = retry_not_before(&s, &[true; 5]);
        assert_eq!(
            (0..5).map(|i| got.get(i)).collect::<Vec<_>>(),
            vec![None, Some(161), Some(481), None, Some(2161)],
            "after one abort 60 s, after two 180 s (each from the middle of its second)"
        );
        assert_eq!(surely_after(10, 0), 11, "within second 10: surely so at 11");
        assert_eq!(surely_after(10, 400), 11);
        assert_eq!(surely_after(10, 600), 12, "10.5 s + 0.6 s is past 11");
        // An unusable abort is no evidence of a retry.
        let got = retry_not_before(&s, &[true, false, true, true, true]);
        assert_eq!(got.get(2), Some(161), "{got:?}");
    }

    fn machine(key: &str, slots: f64) -> Machine {
        Machine {
            key: key.into(),
            slots,
            systems: vec!["x86_64-linux".into()],
            supported: vec![],
            mandatory: vec![],
            features_known: false,
        }
    }

    fn timeline(jobs: &[(&str, Vec<f64>)], local: Vec<f64>) -> Timeline {
        let n = jobs[0].1.len();
        Timeline {
            step_s: 30,
            times: (0..n as i64).map(|k| k * 30).collect(),
            current_jobs: jobs
                .iter()
                .map(|(m, v)| (m.to_string(), v.clone()))
                .collect(),
            stages: BTreeMap::from([(Stage::WaitingDownloadSlot, local)]),
            ..Timeline::default()
        }
    }

    #[test]
    fn the_next_steps_to_start_on_a_machine_hold_its_slots_not_building() {
        // On m: A builds 0–600; B dispatched at 60, sent until its start at 200; C dispatched at
        // 120 behind B's send lock, starts at 400. Samples every 30 s.
        let s = steps(&[
            (1, 1, D, OK, Some(0), Some(600), "m"),
            (1, 2, D, OK, Some(200), Some(700), "m"),
            (1, 3, D, OK, Some(400), Some(800), "m"),
        ]);
        let jobs: Vec<f64> = (0..30)
            .map(|k| match k * 30 {
                t if t < 60 => 1.0,
                t if t < 120 => 2.0,
                t if t < 600 => 3.0,
                t if t < 700 => 2.0,
                t if t < 800 => 1.0,
                _ => 0.0,
            })
            .collect();
        let tl = timeline(&[("m", jobs)], vec![0.0; 30]);
        let on = vec![Some(0); 3];
        let got = dispatched_from_series(&tl, &s, &[true; 3], &[machine("m", 4.0)], &on);
        assert_eq!(got, vec![None, Some(60), Some(120)]);
    }

    #[test]
    fn slots_held_waiting_for_a_local_slot_are_the_latest_finished_builds() {
        // On m: A builds 0–100 and then waits for a local slot until 300, holding its slot; B is
        // dispatched at 240 and starts at 330. Without the stage counter A's wait would read as
        // B's dispatch from 120 on.
        let s = steps(&[
            (1, 1, D, OK, Some(0), Some(100), "m"),
            (1, 2, D, OK, Some(330), Some(500), "m"),
        ]);
        let jobs: Vec<f64> = (0..20)
            .map(|k| match k * 30 {
                t if t < 240 => 1.0,
                t if t < 300 => 2.0,
                t if t < 500 => 1.0,
                _ => 0.0,
            })
            .collect();
        let local: Vec<f64> = (0..20)
            .map(|k| {
                if (120..300).contains(&(k * 30)) {
                    1.0
                } else {
                    0.0
                }
            })
            .collect();
        let on = vec![Some(0); 2];
        let m = [machine("m", 4.0)];
        let tl = timeline(&[("m", jobs.clone())], local);
        assert_eq!(
            dispatched_from_series(&tl, &s, &[true; 2], &m, &on),
            vec![None, Some(240)]
        );
        let blind = timeline(&[("m", jobs)], vec![0.0; 20]);
        assert_eq!(
            dispatched_from_series(&blind, &s, &[true; 2], &m, &on)[1],
            Some(120),
            "the test's premise: the counter is what tells the two apart"
        );
        // A machine the series does not name: nothing inferred.
        let other = [machine("n", 4.0)];
        let on_n = vec![Some(0); 2];
        let tl_n = timeline(&[("elsewhere", vec![9.0; 20])], vec![0.0; 20]);
        assert_eq!(
            dispatched_from_series(&tl_n, &s, &[true; 2], &other, &on_n),
            vec![None, None]
        );
    }

    #[test]
    fn a_sweep_asks_for_steps_while_slots_held_at_its_last_sample_wait_for_them() {
        // m holds one slot at every sample, 0–570 s, with nothing building: the slot waits for
        // a step not handed over yet.
        let tl = timeline(&[("m", vec![1.0; 20])], vec![0.0; 20]);
        let m = [machine("m", 4.0)];
        let mut sweep = Sweep::new(&tl, &m);
        assert!(sweep.wants_steps(), "samples are left");
        sweep.through(i64::MAX);
        assert!(sweep.wants_steps(), "a slot held at the last sample");
        assert!(!sweep.short_of_successes());
        // The next step to start there, a day later, takes it: held since the first sample.
        let s = steps(&[(1, 1, D, OK, Some(86_400), Some(90_000), "m")]);
        sweep.add(started(&s, &[true], &[Some(0)], |i| i as u64));
        assert!(!sweep.wants_steps(), "every held slot has its step");
        assert_eq!(sweep.finish(), vec![(0, 0)]);

        // Two steps counted waiting for a local slot at a sample where one success had
        // stopped: the steps left out before the sweep's first sample could be the other.
        let tl = timeline(&[("m", vec![0.0; 4])], vec![0.0, 2.0, 0.0, 0.0]);
        let mut sweep = Sweep::new(&tl, &m);
        let s = steps(&[(1, 1, D, OK, Some(0), Some(10), "m")]);
        sweep.add(started(&s, &[true], &[Some(0)], |i| i as u64));
        sweep.through(i64::MAX);
        assert!(sweep.short_of_successes());
    }
}
