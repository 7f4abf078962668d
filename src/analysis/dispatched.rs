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
//!   (docs/hydra.md §5, "What the series and the graph measure").
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

use std::collections::HashMap;

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

/// The most successful steps [`dispatched_from_series`] takes from before a sample as the
/// ones waiting for a local slot, over the samples in `[from, to)`: the largest count the
/// series' `WaitingDownloadSlot` stage shows there (0 without that stage). A caller that
/// hands over fewer steps than the window holds keeps at least this many successes that
/// stopped by `from` (`super::ledger::SpanRows`).
pub fn local_queue_reads(tl: &Timeline, (from, to): (i64, i64)) -> usize {
    let Some(w) = tl.stages.get(&Stage::WaitingDownloadSlot) else {
        return 0;
    };
    tl.range(from, to)
        .filter_map(|k| w.get(k).copied().filter(|x| x.is_finite()))
        .map(|c| c.round().max(0.0) as usize)
        .max()
        .unwrap_or(0)
}

/// A step by its start: `(start, (build, stepnr), row)`.
type StartedStep = (i64, (i32, i32), usize);

/// For each step (row), when it was dispatched as the series shows it (see the module's doc),
/// where that is before its start; `None` elsewhere (no series sample before its start, a
/// machine the series does not name, or no held slot left for it). `on`: the step's machine,
/// an index into `machines`, for steps placed on one. Only the samples in `[from, to)` are
/// read: where `steps` are the window's from some time on (a span of it, `analysis::fold`),
/// a sample before `from` would count the steps started before those given as not yet
/// started; the caller sets `from` late enough that every step building or held at a sample
/// read is among `steps`.
pub fn dispatched_from_series(
    tl: &Timeline,
    steps: &Steps,
    usable: &[bool],
    machines: &[Machine],
    on: &[Option<usize>],
    (from, to): (i64, i64),
) -> Vec<Option<i64>> {
    let n = steps.len();
    let mut out = vec![None; n];
    let points = tl.times.len();
    let read = tl.times.partition_point(|&t| t < from)..tl.times.partition_point(|&t| t < to);
    if points == 0 || read.is_empty() {
        return out;
    }
    // Each machine's current-jobs series (a machine may be named more than once). The slots
    // held at each sample are summed one machine at a time below: a matrix of machines by
    // samples held 650 MB for the sample's 4,000 machines over a week every 30 s.
    let mut series: Vec<Vec<&[f64]>> = vec![Vec::new(); machines.len()];
    for (name, s) in &tl.current_jobs {
        if let Some(m) = match_machine(machines, name) {
            series[m].push(s);
        }
    }
    // Steps per machine in order of start (and of key, which is row order over a whole
    // window and not over a span's days), and their stops sorted.
    let mut starts: Vec<Vec<StartedStep>> = vec![Vec::new(); machines.len()];
    let mut stops: Vec<Vec<i64>> = vec![Vec::new(); machines.len()];
    // Successful builds' stops across the farm, with their machine: candidates for the local
    // slot queue.
    let mut finished: Vec<(i64, usize)> = Vec::new();
    for i in 0..n {
        let (Some(m), Some(start)) = (on[i], steps.start(i)) else {
            continue;
        };
        if !usable[i] || m >= machines.len() {
            continue;
        }
        starts[m].push((start, (steps.build(i), steps.stepnr(i)), i));
        if let Some(stop) = steps.stop(i) {
            stops[m].push(stop);
            if steps.status(i) == Some(BuildStatus::Success) {
                finished.push((stop, m));
            }
        }
    }
    for v in &mut starts {
        v.sort_unstable();
    }
    for v in &mut stops {
        v.sort_unstable();
    }
    finished.sort_unstable();
    let waiting_local = tl.stages.get(&Stage::WaitingDownloadSlot);
    // The samples' steps held after their build, as `(machine, sample)`, by machine: as many
    // as the waiting counts sum to, not a cell per machine and sample.
    let mut after: Vec<(usize, usize)> = Vec::new();
    if let Some(w) = waiting_local {
        for k in read.clone() {
            let t = tl.times[k];
            let c = w.get(k).copied().filter(|x| x.is_finite()).unwrap_or(0.0);
            let p = finished.partition_point(|f| f.0 <= t);
            for &(_, m) in &finished[p.saturating_sub(c.round().max(0.0) as usize)..p] {
                after.push((m, k));
            }
        }
    }
    after.sort_unstable();
    let mut held = vec![0.0f64; points];
    let mut after_m = vec![0u32; points];
    for m in 0..machines.len() {
        let (first, end) = (
            after.partition_point(|a| a.0 < m),
            after.partition_point(|a| a.0 <= m),
        );
        if series[m].is_empty() || starts[m].is_empty() {
            continue;
        }
        // Slots held at each sample; NaN where a machine's sample is missing.
        held.fill(0.0);
        for s in &series[m] {
            for k in read.clone() {
                held[k] += s.get(k).copied().unwrap_or(f64::NAN);
            }
        }
        after_m.fill(0);
        for &(_, k) in &after[first..end] {
            after_m[k] += 1;
        }
        let s = &starts[m];
        // For each of the machine's steps (by position in `s`): the sample a run of being held
        // began at, and the last sample it was held at.
        let mut since = vec![usize::MAX; s.len()];
        let mut last = vec![usize::MAX; s.len()];
        for k in read.clone() {
            let (t, h) = (tl.times[k], held[k]);
            if !h.is_finite() {
                continue;
            }
            let started = s.partition_point(|x| x.0 <= t);
            let building = started - stops[m].partition_point(|&x| x <= t);
            let before = (h.round() as i64 - building as i64 - i64::from(after_m[k])).max(0);
            for j in started..(started + before as usize).min(s.len()) {
                if k == 0 || last[j] != k - 1 {
                    since[j] = k;
                }
                last[j] = k;
            }
        }
        for (j, &(start, _, row)) in s.iter().enumerate() {
            // Held up to the last sample before its start: dispatched at the run's first.
            let before_start = tl.times.partition_point(|&t| t < start);
            if before_start > 0 && last[j] == before_start - 1 {
                out[row] = Some(tl.times[since[j]]);
            }
        }
    }
    out
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

    /// Every sample of a series.
    const ALL: (i64, i64) = (i64::MIN, i64::MAX);

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
        let got = dispatched_from_series(&tl, &s, &[true; 3], &[machine("m", 4.0)], &on, ALL);
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
            dispatched_from_series(&tl, &s, &[true; 2], &m, &on, ALL),
            vec![None, Some(240)]
        );
        let blind = timeline(&[("m", jobs)], vec![0.0; 20]);
        assert_eq!(
            dispatched_from_series(&blind, &s, &[true; 2], &m, &on, ALL)[1],
            Some(120),
            "the test's premise: the counter is what tells the two apart"
        );
        // A machine the series does not name: nothing inferred.
        let other = [machine("n", 4.0)];
        let on_n = vec![Some(0); 2];
        let tl_n = timeline(&[("elsewhere", vec![9.0; 20])], vec![0.0; 20]);
        assert_eq!(
            dispatched_from_series(&tl_n, &s, &[true; 2], &other, &on_n, ALL),
            vec![None, None]
        );
    }
}
