//! Dispatch loss and held slots per machine, from whichever source the data has: the ledger's
//! two buckets that the database does not record (docs/hydra.md §3, "what the step timings
//! mean"). Pure functions; the ledger ([`super::ledger`]) chooses the source and labels it.
//!
//! Dispatch loss at an instant is what an undelayed dispatcher would have started
//! ([`crate::dispatch::Ideal`]): waiting steps matched against free slots of machines that can
//! build them. It is sampled on a grid and each sample stands for one interval:
//!
//! - [`from_series`]: the runner's own series. Waiting steps are its runnable gauge per machine
//!   type (steps on the runner's list: the **dispatcher's** part of the loss, since a build the
//!   queue monitor has not loaded yet has no runnable step); free slots are `maxJobs` less the
//!   machine's current jobs. Held slots are the stage counters' steps that hold a slot without
//!   building or copying (waiting for the send lock or a local download slot; else current jobs
//!   less building and copying), shared among machines by their current jobs.
//! - [`from_intervals`]: waiting steps as intervals `[ready, started)` from the history, with
//!   `ready` from the derivation graph (exact) or bounded without it; free slots from the series
//!   when there is one, else from the steps' own times. Counting steps from when they were
//!   ready, this is the **whole** loss (queue monitor and dispatcher).
//!
//! Error of the grid: a sample stands for `step` seconds, so each change of the sampled value
//! between two samples — a burst of waiting steps beginning or ending, a slot freed — lands
//! somewhere in that interval unseen, misplaced by up to half a step either way. Taking the
//! instant of each change as uniform within its interval, a change of height `Δ` adds a
//! variance of `Δ² · step² / 12`, and a burst seen by one sample alone more than its two edges
//! would (it may have lasted from an instant to two intervals). Gundersen and Jensen's variance
//! of a systematic sample of a discontinuous integrand (J. Microsc. 147, 1987) counts both
//! from the differences of neighbouring samples and of samples two apart; twice its root is
//! the error the ledger states (about 95 %). On the built-in sample this is what the data
//! allows: the same waits sampled at other phases of a 30 s grid give between 10.1 and 13.3
//! slot-h against a truth of 12.2 (docs/hydra.md §5, "What the series and the graph
//! measure").

use crate::dispatch::Ideal;
use crate::dispatch::machine::supports_type;
use crate::status::timeline::{Stage, Timeline};

/// A machine of the ledger, as the dispatch-loss sources need it.
#[derive(Debug, Clone)]
pub struct Machine {
    /// The ledger's key for it (a URI from the machines file, or the name the steps use).
    pub key: String,
    pub slots: f64,
    pub systems: Vec<String>,
    /// Includes the mandatory features.
    pub supported: Vec<String>,
    pub mandatory: Vec<String>,
    /// Whether the features are known (a machines file); else only systems are compared.
    pub features_known: bool,
}

impl Machine {
    /// Whether it can build steps of machine type `ty`. Without a machines file the features
    /// are unknown and only the system is compared.
    pub fn can_build(&self, ty: &str) -> bool {
        if !self.features_known {
            let system = ty.split_once(':').map_or(ty, |(s, _)| s);
            return self.systems.iter().any(|s| s == system);
        }
        supports_type(&self.systems, &self.supported, &self.mandatory, ty)
    }
}

/// Hours per machine (in the order of the machines given), with the grid's error estimate.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PerMachine {
    pub hours: Vec<f64>,
    /// The grid's sampling error of the total (two standard deviations), hours.
    pub error_h: f64,
}

impl PerMachine {
    pub fn new(n: usize) -> PerMachine {
        PerMachine {
            hours: vec![0.0; n],
            error_h: 0.0,
        }
    }

    pub fn total(&self) -> f64 {
        self.hours.iter().sum()
    }
}

/// The sampling error of a figure summed over a grid (see the module's doc): fed each sample's
/// value in order, it sums the squared differences between neighbours and between samples two
/// apart, within each unbroken run of samples.
#[derive(Debug, Clone, Copy, Default)]
struct SamplingError {
    prev: Option<f64>,
    before_prev: Option<f64>,
    /// Σ (f[i+1] − f[i])².
    squares: f64,
    /// Σ (f[i+2] − f[i])².
    squares_2: f64,
}

impl SamplingError {
    fn push(&mut self, v: f64) {
        if let Some(p) = self.prev {
            self.squares += (v - p) * (v - p);
        }
        if let Some(pp) = self.before_prev {
            self.squares_2 += (v - pp) * (v - pp);
        }
        self.before_prev = self.prev;
        self.prev = Some(v);
    }

    /// A sample with no value: the next one is not compared across the gap.
    fn gap(&mut self) {
        self.prev = None;
        self.before_prev = None;
    }

    /// Two standard deviations, hours, for samples `step_s` seconds apart: Gundersen and
    /// Jensen's variance of a systematic sample of a discontinuous integrand,
    /// `step² · (3 C₀ − 4 C₁ + C₂) / 12` with `C_k = Σ f[i] f[i+k]`, written with the
    /// differences (`2 Σ Δ₁² − Σ Δ₂² / 2`) so that the ends of the series add nothing.
    fn hours(&self, step_s: i64) -> f64 {
        let sum = (2.0 * self.squares - 0.5 * self.squares_2).max(0.0);
        2.0 * step_s as f64 * (sum / 12.0).sqrt() / 3600.0
    }
}

/// What the series says about `[lo, hi)`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeriesLoss {
    /// The dispatcher's part of dispatch loss.
    pub dispatcher: PerMachine,
    pub held: PerMachine,
    /// Slot time the machine-free function held back while steps on the runnable list could
    /// have used it: what the held-back machines' free slots below maxJobs would have taken.
    /// Only where the series says which machines were held back (`Timeline::capacity_known`,
    /// the Rust runner's `/status`); 0 otherwise.
    pub throttled: PerMachine,
    /// Whether the series has stage counters to measure held slots with.
    pub has_stages: bool,
    /// How held slots were counted from them, as the ledger says it.
    pub held_how: &'static str,
    /// The part of the window the samples cover, `[a, b)`.
    pub covered: Option<(i64, i64)>,
    pub samples: usize,
    /// Samples in the covered part with no value (a failed scrape, a gap).
    pub missing: usize,
    /// Machines of the series that match no machine of the ledger.
    pub unmatched: Vec<String>,
}

/// Which of `machines` a series' machine name is: the same key, else the same host (the Rust
/// runner names machines by hostname, the machines file by URI).
pub fn match_machine(machines: &[Machine], name: &str) -> Option<usize> {
    machines.iter().position(|m| m.key == name).or_else(|| {
        let host = crate::nix::machines::host_of(name);
        machines
            .iter()
            .position(|m| crate::nix::machines::host_of(&m.key) == host)
    })
}

fn ideal_for(types: &[&str], machines: &[Machine]) -> Ideal {
    let capable = types
        .iter()
        .map(|ty| {
            (0..machines.len())
                .filter(|&m| machines[m].can_build(ty))
                .collect()
        })
        .collect();
    let slots: Vec<f64> = machines.iter().map(|m| m.slots).collect();
    Ideal::new(capable, &slots)
}

/// The seconds of `[lo, hi)` that the sample at `t` stands for (`[t, t + step)`).
fn weight(t: i64, step: i64, lo: i64, hi: i64) -> f64 {
    ((t + step).min(hi) - t.max(lo)).max(0) as f64
}

/// Dispatcher loss and held slots from the runner's series over `[lo, hi)`. `cpp`: the C++
/// runner wrote the history, whose finished builds hold their slot until receiving starts, so
/// that a series without the download-slot counter (neither exporter has it) still measures
/// held slots as current jobs less building and sending.
pub fn from_series(tl: &Timeline, machines: &[Machine], lo: i64, hi: i64, cpp: bool) -> SeriesLoss {
    let n = machines.len();
    let mut out = SeriesLoss {
        dispatcher: PerMachine::new(n),
        held: PerMachine::new(n),
        throttled: PerMachine::new(n),
        ..SeriesLoss::default()
    };
    let types: Vec<&str> = tl.runnable.keys().map(String::as_str).collect();
    let ideal = ideal_for(&types, machines);
    let runnable: Vec<&Vec<f64>> = tl.runnable.values().collect();
    let disabled: Vec<(usize, &Vec<f64>)> = tl
        .disabled
        .iter()
        .filter_map(|(name, s)| Some((match_machine(machines, name)?, s)))
        .collect();
    let mut off = vec![false; n];
    let mut jobs: Vec<(usize, &Vec<f64>)> = Vec::new();
    for (name, series) in &tl.current_jobs {
        match match_machine(machines, name) {
            Some(m) => jobs.push((m, series)),
            None => out.unmatched.push(name.clone()),
        }
    }
    let stage = |s: Stage| tl.stages.get(&s);
    let mut held_stages: Vec<&Vec<f64>> = [Stage::WaitingSendLock, Stage::WaitingDownloadSlot]
        .into_iter()
        .filter_map(stage)
        .collect();
    let working: Vec<&Vec<f64>> = [Stage::Building, Stage::CopyingTo]
        .into_iter()
        .filter_map(stage)
        .collect();
    // Under the C++ runner without the download-slot counter, the send-lock counter alone
    // misses the finished builds waiting for a local slot: the difference counts both.
    out.held_how = "steps holding a slot while waiting for the send lock or a local download slot";
    if cpp && stage(Stage::WaitingDownloadSlot).is_none() && working.len() == 2 {
        held_stages.clear();
        out.held_how = "current jobs less the steps building and sending (the exporter has no \
                        download-slot counter)";
    } else if held_stages.is_empty() && !working.is_empty() {
        out.held_how = "current jobs less the steps building and sending";
    }
    out.has_stages = !held_stages.is_empty() || !working.is_empty();

    let range = tl.range(lo - tl.step_s + 1, hi);
    let (mut first, mut last) = (None, None);
    let mut waiting = vec![0.0; types.len()];
    let (mut free, mut claimed, mut cur) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    let (mut err_disp, mut err_held) = (SamplingError::default(), SamplingError::default());
    let mut err_thr = SamplingError::default();
    // Under the Rust runner a machine off in the series was held back by its free function
    // (it never disables machines); under the C++ runner, disabled after failures.
    let throttling = tl.capacity_known && !cpp;
    for i in range {
        let t = tl.times[i];
        let w = weight(t, tl.step_s, lo, hi);
        if w <= 0.0 {
            continue;
        }
        first.get_or_insert(t.max(lo));
        last = Some((t + tl.step_s).min(hi));
        out.samples += 1;
        cur.fill(0.0);
        let mut ok = !jobs.is_empty();
        for &(m, s) in &jobs {
            let v = s.get(i).copied().unwrap_or(f64::NAN);
            ok &= v.is_finite();
            cur[m] += v;
        }
        for (k, s) in runnable.iter().enumerate() {
            let v = s.get(i).copied().unwrap_or(f64::NAN);
            ok &= v.is_finite();
            waiting[k] = v.max(0.0);
        }
        if !ok {
            out.missing += 1;
            err_disp.gap();
            err_held.gap();
            err_thr.gap();
            continue;
        }
        off.fill(false);
        for &(m, s) in &disabled {
            off[m] |= s.get(i).is_some_and(|&v| v > 0.0);
        }
        for m in 0..n {
            free[m] = if off[m] {
                0.0
            } else {
                (machines[m].slots - cur[m]).max(0.0)
            };
        }
        claimed.fill(0.0);
        let got = ideal.claim(&waiting, &mut free, &mut claimed);
        let h = w / 3600.0;
        for m in 0..n {
            out.dispatcher.hours[m] += claimed[m] * h;
        }
        err_disp.push(got);
        if throttling && off.iter().any(|&o| o) {
            // The same claim with the held-back machines' slots below maxJobs given back:
            // what they take is the throttled slot time.
            for m in 0..n {
                free[m] = (machines[m].slots - cur[m]).max(0.0);
            }
            claimed.fill(0.0);
            let all = ideal.claim(&waiting, &mut free, &mut claimed);
            // The steps the held-back slots would have added, shared among those machines by
            // what they took (the claim may give them steps an open machine would have taken).
            let extra = (all - got).max(0.0);
            let theirs: f64 = (0..n).filter(|&m| off[m]).map(|m| claimed[m]).sum();
            if extra > 0.0 && theirs > 0.0 {
                for m in (0..n).filter(|&m| off[m]) {
                    out.throttled.hours[m] += extra * claimed[m] / theirs * h;
                }
            }
            err_thr.push(extra);
        } else {
            err_thr.push(0.0);
        }

        // Held: slots reserved while the step neither builds nor copies.
        let value = |s: &Vec<f64>| s.get(i).copied().filter(|v| v.is_finite()).unwrap_or(0.0);
        let held = if !held_stages.is_empty() {
            held_stages.iter().map(|s| value(s)).sum::<f64>()
        } else if !working.is_empty() {
            (cur.iter().sum::<f64>() - working.iter().map(|s| value(s)).sum::<f64>()).max(0.0)
        } else {
            0.0
        };
        let total_jobs: f64 = cur.iter().sum();
        if held > 0.0 && total_jobs > 0.0 {
            for m in 0..n {
                out.held.hours[m] += held * cur[m] / total_jobs * h;
            }
        }
        err_held.push(if total_jobs > 0.0 { held } else { 0.0 });
    }
    out.dispatcher.error_h = err_disp.hours(tl.step_s);
    out.held.error_h = err_held.hours(tl.step_s);
    out.throttled.error_h = err_thr.hours(tl.step_s);
    out.covered = first.zip(last);
    out
}

/// Turns rows of +1/−1 changes into running counts.
fn cumulate(rows: &mut [Vec<f64>]) {
    for row in rows {
        let mut acc = 0.0;
        for v in row.iter_mut() {
            acc += *v;
            *v = acc;
        }
    }
}

/// Steps waiting, as intervals: `(machine type, ready, started)`, unix seconds; the machine
/// type is its number in the list of names given beside the intervals.
pub type Waiting = (u32, i64, i64);

/// Free slots over time for [`from_intervals`]: from the series where it has a sample, else
/// from what the history records as occupying each machine.
pub enum Free<'a> {
    Series(&'a Timeline),
    /// Intervals `(machine index, from, to)` during which a slot was taken.
    Occupied(&'a [(usize, i64, i64)]),
}

/// Slots taken on each machine at the instants of [`from_intervals`], in order of instant,
/// without a matrix of machines by instants: from the series, each machine's samples are summed
/// at the instant asked; from the history, the intervals' starts and ends are applied as the
/// instants pass them.
struct Taken<'a> {
    now: Vec<f64>,
    how: TakenFrom<'a>,
}

enum TakenFrom<'a> {
    /// The series' first sample in the range, and each of its machines' current-jobs and
    /// disabled series with the machine's index.
    Series {
        first: usize,
        jobs: Vec<(usize, &'a [f64])>,
        disabled: Vec<(usize, &'a [f64])>,
    },
    /// Changes `(instant, machine, ±1)` sorted by instant, and how many were applied.
    Occupied {
        changes: Vec<(usize, u32, f64)>,
        applied: usize,
    },
}

impl<'a> Taken<'a> {
    fn new(
        free: &Free<'a>,
        machines: &[Machine],
        lo: i64,
        hi: i64,
        index: &impl Fn(i64) -> usize,
    ) -> Taken<'a> {
        let n = machines.len();
        let how = match free {
            Free::Series(tl) => {
                let named = |family: &'a std::collections::BTreeMap<String, Vec<f64>>| {
                    family
                        .iter()
                        .filter_map(|(name, s)| Some((match_machine(machines, name)?, &s[..])))
                        .collect()
                };
                TakenFrom::Series {
                    first: tl.range(lo - tl.step_s + 1, hi).start,
                    jobs: named(&tl.current_jobs),
                    disabled: named(&tl.disabled),
                }
            }
            Free::Occupied(intervals) => {
                let mut changes = Vec::with_capacity(2 * intervals.len());
                for &(m, a, b) in *intervals {
                    let (ka, kb) = (index(a), index(b));
                    if kb > ka && m < n {
                        changes.push((ka, m as u32, 1.0));
                        changes.push((kb, m as u32, -1.0));
                    }
                }
                changes.sort_by_key(|c| c.0);
                TakenFrom::Occupied {
                    changes,
                    applied: 0,
                }
            }
        };
        Taken {
            now: vec![0.0; n],
            how,
        }
    }

    /// The slots taken on each machine at instant `k`; `k` must not go back.
    fn at(&mut self, k: usize) -> &[f64] {
        match &mut self.how {
            TakenFrom::Series {
                first,
                jobs,
                disabled,
            } => {
                self.now.fill(0.0);
                let i = *first + k;
                for &(m, s) in jobs.iter() {
                    let v = s.get(i).copied().unwrap_or(f64::NAN);
                    // A missing sample: assume the machine full (nothing claimed).
                    self.now[m] += if v.is_finite() { v } else { f64::INFINITY };
                }
                for &(m, s) in disabled.iter() {
                    if s.get(i).is_some_and(|&v| v > 0.0) {
                        self.now[m] = f64::INFINITY;
                    }
                }
            }
            TakenFrom::Occupied { changes, applied } => {
                while let Some(&(at, m, d)) = changes.get(*applied)
                    && at <= k
                {
                    self.now[m as usize] += d;
                    *applied += 1;
                }
            }
        }
        &self.now
    }
}

/// Dispatch loss over `[lo, hi)` from waiting intervals, sampled every `step` seconds at the
/// instants `lo + k·step` (or at the series' sample times when free slots come from a series).
pub fn from_intervals(
    waiting: &[Waiting],
    names: &[String],
    free: &Free<'_>,
    machines: &[Machine],
    lo: i64,
    hi: i64,
    step: i64,
) -> PerMachine {
    let mut sweep = Sweep::new(machines.len());
    sweep.add(waiting, names, free, machines, lo, hi, step);
    sweep.finish()
}

/// [`from_intervals`] over consecutive spans of a window, one after the other: what crosses a
/// span's end is each machine's hours so far and the sampling error's last samples, so that
/// spans `[lo, a)`, `[a, b)`, … `[z, hi)` give what `[lo, hi)` gives at once, to the bit, when
/// each span starts at an instant of the grid (`lo + k·step`, or a sample of the series) and
/// its intervals are every one of the window's that reach into it.
#[derive(Debug, Clone, Default)]
pub struct Sweep {
    out: PerMachine,
    err: SamplingError,
    step: i64,
}

impl Sweep {
    pub fn new(machines: usize) -> Sweep {
        Sweep {
            out: PerMachine::new(machines),
            ..Sweep::default()
        }
    }

    /// The instants of `[lo, hi)`, the next span after those already added.
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        waiting: &[Waiting],
        names: &[String],
        free: &Free<'_>,
        machines: &[Machine],
        lo: i64,
        hi: i64,
        step: i64,
    ) {
        let n = machines.len();
        let (t0, step, points) = match free {
            Free::Series(tl) => {
                let r = tl.range(lo - tl.step_s + 1, hi);
                let t0 = tl.times.get(r.start).copied().unwrap_or(lo);
                (t0, tl.step_s, r.len())
            }
            Free::Occupied(_) => (
                lo,
                step,
                ((hi - lo) + step - 1).div_euclid(step).max(0) as usize,
            ),
        };
        self.step = step;
        if points == 0 || step <= 0 {
            return;
        }
        // Instants `t0 + k·step` inside `[a, b)`: k from ceil((a − t0)/step) to ceil((b − t0)/step).
        let index = |t: i64| {
            ((t - t0) + step - 1)
                .div_euclid(step)
                .clamp(0, points as i64) as usize
        };
        // The machine types some step waited for, in order of name, and each number's place there.
        let mut used = vec![false; names.len()];
        for w in waiting {
            if let Some(u) = used.get_mut(w.0 as usize) {
                *u = true;
            }
        }
        let mut types: Vec<&str> = names
            .iter()
            .zip(&used)
            .filter(|(_, u)| **u)
            .map(|(n, _)| n.as_str())
            .collect();
        types.sort_unstable();
        types.dedup();
        let place: Vec<Option<usize>> = names
            .iter()
            .map(|n| types.binary_search(&n.as_str()).ok())
            .collect();
        let mut counts = vec![vec![0.0f64; points + 1]; types.len()];
        for &(ty, a, b) in waiting {
            let (ka, kb) = (index(a), index(b));
            if kb > ka
                && let Some(&Some(c)) = place.get(ty as usize)
            {
                counts[c][ka] += 1.0;
                counts[c][kb] -= 1.0;
            }
        }
        cumulate(&mut counts);
        // Slots taken per machine, one instant at a time: a matrix of machines by instants held
        // 650 MB for the sample's 4,000 machines over a week every 30 s.
        let mut taken = Taken::new(free, machines, lo, hi, &index);
        let ideal = ideal_for(&types, machines);
        let mut wait_k = vec![0.0; types.len()];
        let (mut free_k, mut claimed) = (vec![0.0; n], vec![0.0; n]);
        for k in 0..points {
            let t = t0 + k as i64 * step;
            let w = weight(t, step, lo, hi);
            if w <= 0.0 {
                continue;
            }
            for (c, counts) in counts.iter().enumerate() {
                wait_k[c] = counts[k];
            }
            if wait_k.iter().all(|&x| x <= 0.0) {
                self.err.push(0.0);
                continue;
            }
            let taken = taken.at(k);
            for m in 0..n {
                free_k[m] = (machines[m].slots - taken[m]).max(0.0);
            }
            claimed.fill(0.0);
            let got = ideal.claim(&wait_k, &mut free_k, &mut claimed);
            let h = w / 3600.0;
            for m in 0..n {
                self.out.hours[m] += claimed[m] * h;
            }
            self.err.push(got);
        }
    }

    /// Each machine's hours over the spans added, with the grid's sampling error.
    pub fn finish(mut self) -> PerMachine {
        self.out.error_h = self.err.hours(self.step);
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(key: &str, slots: f64, systems: &[&str]) -> Machine {
        Machine {
            key: key.into(),
            slots,
            systems: systems.iter().map(|s| s.to_string()).collect(),
            supported: vec![],
            mandatory: vec![],
            features_known: false,
        }
    }

    /// One machine with 2 slots, one busy throughout; 3 steps runnable during the first half
    /// of an hour sampled every 60 s: one free slot is lost for half an hour.
    #[test]
    fn the_series_counts_free_slots_against_runnable_steps() {
        let times: Vec<i64> = (0..60).map(|k| k * 60).collect();
        let mut tl = Timeline {
            step_s: 60,
            times: times.clone(),
            ..Timeline::default()
        };
        tl.runnable.insert(
            "x86_64-linux".into(),
            times
                .iter()
                .map(|&t| if t < 1800 { 3.0 } else { 0.0 })
                .collect(),
        );
        tl.current_jobs
            .insert("ssh://b1".into(), vec![1.0; times.len()]);
        tl.stages
            .insert(Stage::WaitingSendLock, vec![0.5; times.len()]);
        let ms = [machine("b1", 2.0, &["x86_64-linux"])];
        let s = from_series(&tl, &ms, 0, 3600, true);
        assert!((s.dispatcher.total() - 0.5).abs() < 1e-9, "{s:?}");
        assert!((s.held.total() - 0.5).abs() < 1e-9, "{s:?}");
        assert_eq!(s.samples, 60);
        assert_eq!(s.covered, Some((0, 3600)));
    }

    /// A burst of 2 waiting steps seen by three samples 30 s apart has two edges, each
    /// misplaced by up to 15 s either way: sd = 30 s · √(2·2² / 12), stated twice over. Seen by
    /// one sample alone, it may have lasted anything from an instant to two intervals: half as
    /// much variance again. A gap breaks the comparison.
    #[test]
    fn the_sampling_error_grows_with_the_edges_a_grid_cannot_place() {
        let mut e = SamplingError::default();
        for v in [0.0, 0.0, 2.0, 2.0, 2.0, 0.0, 0.0] {
            e.push(v);
        }
        let want = 2.0 * 30.0 * (8.0f64 / 12.0).sqrt() / 3600.0;
        assert!((e.hours(30) - want).abs() < 1e-12, "{}", e.hours(30));
        assert!(
            (e.hours(60) - 2.0 * want).abs() < 1e-12,
            "a coarser grid, a larger error"
        );
        let mut spike = SamplingError::default();
        for v in [0.0, 0.0, 2.0, 0.0, 0.0] {
            spike.push(v);
        }
        let want = 2.0 * 30.0 * (12.0f64 / 12.0).sqrt() / 3600.0;
        assert!(
            (spike.hours(30) - want).abs() < 1e-12,
            "{}",
            spike.hours(30)
        );
        let mut flat = SamplingError::default();
        for v in [3.0, 3.0, 3.0] {
            flat.push(v);
        }
        assert_eq!(flat.hours(30), 0.0, "a constant is sampled exactly");
        flat.gap();
        flat.push(0.0);
        assert_eq!(
            flat.hours(30),
            0.0,
            "no difference is taken across a missing sample"
        );
    }

    #[test]
    fn intervals_are_counted_at_the_instants_they_contain() {
        let ms = [machine("b1", 4.0, &["x86_64-linux"])];
        // Two steps waiting for 10 minutes each, the machine idle: 20 slot-minutes.
        let names = ["x86_64-linux".to_string(), "aarch64-linux".to_string()];
        let waiting = vec![(0, 600, 1200), (0, 900, 1500)];
        let got = from_intervals(&waiting, &names, &Free::Occupied(&[]), &ms, 0, 3600, 60);
        assert!((got.total() - 20.0 / 60.0).abs() < 1e-9, "{got:?}");
        // The machine full meanwhile: nothing lost.
        let full = [(0, 0, 3600), (0, 0, 3600), (0, 0, 3600), (0, 0, 3600)];
        let got = from_intervals(&waiting, &names, &Free::Occupied(&full), &ms, 0, 3600, 60);
        assert_eq!(got.total(), 0.0);
        // A step of a system the machine does not build is not its loss.
        let other = vec![(1, 0, 3600)];
        let got = from_intervals(&other, &names, &Free::Occupied(&[]), &ms, 0, 3600, 60);
        assert_eq!(got.total(), 0.0);
    }
}
