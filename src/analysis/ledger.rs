//! The capacity ledger: every builder slot-hour of the window in exactly one bucket.
//!
//! | bucket | definition |
//! |---|---|
//! | available | slots × window length; slots from the machines file, else the peak concurrency observed on the machine (said which) |
//! | building | the part of each step's `[startTime, stopTime)` inside the window (under the Rust runner, less the step's overhead, which those times include) |
//! | overhead | `BuildSteps.overhead` of the steps that stopped inside the window: sending inputs and receiving outputs (under the C++ runner receiving includes compressing, and newer C++ runners release the builder slot once receiving starts, so this is an upper bound on the slot time it takes) |
//! | held | slot time held while nothing is recorded: waiting for the per-machine send lock and, under the C++ runner, for a local worker slot after building. The database does not record it; only the sample's ground truth (or a status series) gives it, otherwise 0 and said so |
//! | throttled | under the Rust runner's dynamic machine-free functions, idle slot time below maxJobs that the runner withheld because the builder's load or pressure was over its threshold, while steps it could build were runnable. Measured only from a series that says which machines were held back (`status --watch` of `/status`, `hasCapacity`); otherwise 0 and said so |
//! | dispatch loss | idle slot time while steps this machine could build were runnable but not started (runnable: the build was queued and every estimated dependency had finished) — capacity the dispatcher left unused |
//! | idle | the rest: idle with nothing runnable for this machine |
//!
//! `building + overhead + held + throttled + dispatch loss + idle = available`, per machine, per system and in
//! total. Where the recorded work exceeds the slots (inferred slots too low, or overhead counted
//! after the slot was released) the excess is reported as `over_committed` and idle is zero.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::Steps;
use super::deps::Edge;
use super::dispatch_loss;
use super::dispatched::surely_after;
use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::nix::BuildMachine;

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Row {
    pub key: String,
    /// The machine's first system type (what `by_system` groups by); a system row's own key.
    pub system: String,
    pub slots: u32,
    pub available_h: f64,
    pub building_h: f64,
    pub overhead_h: f64,
    pub held_h: f64,
    /// Slot time held back by the machine-free function while work waited (0 unless
    /// measured; not in `report.json` then).
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_h: f64,
    pub dispatch_loss_h: f64,
    /// When dispatch loss is an interval, its upper end (`dispatch_loss_h` is then the lower).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dispatch_loss_high_h: Option<f64>,
    pub idle_h: f64,
    /// Recorded work beyond the slots, hours (not part of the sum).
    pub over_committed_h: f64,
}

impl Row {
    /// The buckets, which add up to `available_h`.
    pub fn buckets(&self) -> [f64; 6] {
        [
            self.building_h,
            self.overhead_h,
            self.held_h,
            self.throttled_h,
            self.dispatch_loss_h,
            self.idle_h,
        ]
    }

    fn add(&mut self, o: &Row) {
        self.slots += o.slots;
        self.available_h += o.available_h;
        self.building_h += o.building_h;
        self.overhead_h += o.overhead_h;
        self.held_h += o.held_h;
        self.throttled_h += o.throttled_h;
        self.dispatch_loss_h += o.dispatch_loss_h;
        if let Some(h) = o.dispatch_loss_high_h {
            *self.dispatch_loss_high_h.get_or_insert(0.0) += h;
        }
        self.idle_h += o.idle_h;
        self.over_committed_h += o.over_committed_h;
    }
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Ledger {
    pub since: i64,
    pub until: i64,
    /// Where the slot counts come from.
    pub slots_basis: String,
    /// Where the held bucket comes from.
    pub held_basis: String,
    /// Where the dispatch-loss bucket comes from, and how it is built.
    pub dispatch_basis: String,
    /// Where the throttled bucket comes from.
    pub throttled_basis: String,
    /// Dispatch loss split by stage of the runner, hours, where the data allows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dispatch_split: Option<DispatchSplit>,
    /// The sampling error (about 95 %) of a held or dispatch-loss figure measured on a grid of
    /// samples, hours (`analysis::dispatch_loss`'s doc says how it is estimated); `None` where
    /// the figure is not sampled or is an interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_error_h: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dispatch_error_h: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttled_error_h: Option<f64>,
    pub machines: Vec<Row>,
    /// Machines grouped by their first system type.
    pub by_system: Vec<Row>,
    pub total: Row,
    pub notes: Vec<String>,
}

/// Whether a ledger's throttled bucket applies at all, from its basis: only the Rust runner's
/// free function can hold a machine back (a C++ basis says "none"; a report from before the
/// bucket has none).
pub fn throttling_applies(throttled_basis: &str) -> bool {
    !throttled_basis.is_empty() && !throttled_basis.starts_with("none")
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

/// Whether a basis of the ledger (`held_basis`, `dispatch_basis`) is of a measured figure: the
/// ledger starts such a basis, and only such a one, with "measured".
pub fn is_measured(basis: &str) -> bool {
    basis.starts_with("measured")
}

/// Dispatch loss by the runner's stage that lost it.
#[derive(Debug, Clone, Copy, Serialize, serde::Deserialize, PartialEq)]
pub struct DispatchSplit {
    /// Builds queued but not yet loaded by the queue monitor: their ready steps could not be
    /// dispatched (at most the derivation graph's bound less the series' dispatcher part).
    pub queue_monitor_h: f64,
    /// Steps on the runner's runnable list while a capable slot was free (the series).
    pub dispatcher_h: f64,
}

struct Slot {
    slots: u32,
    systems: Vec<String>,
}

/// Where the dependencies in [`Inputs::edges`] come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runnable {
    /// The derivation graph: `found` of `asked` steps had their `.drv` read.
    Graph { found: usize, asked: usize },
    /// The same-build estimate ([`super::deps`]).
    Estimate,
}

/// What the ledger is computed from.
pub struct Inputs<'a> {
    pub ds: &'a Dataset,
    pub steps: &'a Steps,
    /// The data-quality mask over `steps`.
    pub usable: &'a [bool],
    /// The machines file, if given.
    pub machines: Option<&'a [BuildMachine]>,
    /// Peak concurrency per machine (from [`super::utilization`]), for unknown slot counts.
    pub peaks: &'a BTreeMap<String, usize>,
    /// The dependencies, for when steps became runnable: the derivation graph's or the
    /// estimate's, as `runnable` says.
    pub edges: &'a [Edge],
    pub runnable: Runnable,
    /// The runner's own series, if any.
    pub timeline: Option<&'a crate::status::timeline::Timeline>,
    pub lo: i64,
    pub hi: i64,
}

/// Builds the ledger over `[lo, hi)`.
pub fn ledger(input: &Inputs<'_>) -> Result<Ledger> {
    let &Inputs {
        ds,
        steps,
        usable,
        machines,
        peaks,
        lo,
        hi,
        ..
    } = input;
    let mut notes = Vec::new();
    let span = (hi - lo).max(0);

    // Slots and systems per machine key (the URI as the steps name it).
    let mut slot: BTreeMap<String, Slot> = BTreeMap::new();
    let mut ran: HashMap<&str, Vec<String>> = HashMap::new();
    for i in 0..steps.len() {
        if !steps.machine(i).is_empty() {
            let v = ran.entry(steps.machine(i)).or_default();
            if !v.iter().any(|s| s == steps.system(i)) {
                v.push(steps.system(i).to_string());
            }
        }
    }
    let slots_basis;
    match machines {
        Some(list) => {
            slots_basis = "maxJobs from the machines file".to_string();
            for m in list {
                slot.insert(
                    m.uri.clone(),
                    Slot {
                        slots: m.max_jobs,
                        systems: m.systems.clone(),
                    },
                );
            }
            let unknown: Vec<&&str> = ran
                .keys()
                .filter(|k| {
                    !slot.contains_key(**k)
                        && !list
                            .iter()
                            .any(|m| m.host() == crate::nix::machines::host_of(k))
                })
                .collect();
            if !unknown.is_empty() {
                notes.push(format!(
                    "{} machine(s) ran steps but are not in the machines file; their slots are the \
                     peak concurrency observed",
                    unknown.len()
                ));
            }
        }
        None => {
            slots_basis =
                "inferred: the most steps seen building at once on each machine (an estimate; \
                 give --machines for the configured maxJobs)"
                    .to_string();
        }
    }
    // One key per machine: the machines file's URI where it lists the machine (by URI or by
    // host), else the name the steps use. A machine named both ways — a store URI by the C++
    // runner, a bare hostname by the Rust one (`source::era`) — is one machine: its names
    // share the key of the URI form.
    let mut by_host: HashMap<&str, &str> = HashMap::new();
    for m in ran.keys() {
        let host = crate::nix::machines::host_of(m);
        let e = by_host.entry(host).or_insert(m);
        if m.contains("://") && !e.contains("://")
            || m.contains("://") == e.contains("://") && m < e
        {
            *e = m;
        }
    }
    let key_for = |m: &str| -> String {
        machines
            .and_then(|list| {
                list.iter()
                    .find(|x| x.uri == m)
                    .or_else(|| {
                        list.iter()
                            .find(|x| x.host() == crate::nix::machines::host_of(m))
                    })
                    .map(|x| x.uri.clone())
            })
            .unwrap_or_else(|| {
                by_host
                    .get(crate::nix::machines::host_of(m))
                    .map_or(m, |k| *k)
                    .to_string()
            })
    };
    let key_of: HashMap<&str, String> = ran.keys().map(|m| (*m, key_for(m))).collect();
    // In order, the name a machine is keyed by before its other name, so that its systems come
    // first and every run lists them alike.
    let mut names: Vec<&str> = ran.keys().copied().collect();
    names.sort_unstable_by_key(|m| (key_of[m] != *m, *m));
    for m in names {
        let (key, systems) = (&key_of[m], &ran[m]);
        // Listed in the machines file: its maxJobs stands.
        if machines.is_some_and(|l| l.iter().any(|x| &x.uri == key)) {
            continue;
        }
        // Else the most steps seen at once, the larger where a machine has two names.
        let peak = peaks.get(m).copied().unwrap_or(1).max(1) as u32;
        let s = slot.entry(key.clone()).or_insert_with(|| Slot {
            slots: peak,
            systems: Vec::new(),
        });
        s.slots = s.slots.max(peak);
        for sys in systems {
            if !s.systems.contains(sys) {
                s.systems.push(sys.clone());
            }
        }
    }

    // Building and overhead per machine. Rows exist for every machine up front, so the
    // per-step loop only looks them up (a million steps, a few dozen machines).
    let mut rows: BTreeMap<String, Row> =
        slot.keys().map(|k| (k.clone(), Row::default())).collect();
    let mut last: Option<(&str, &String)> = None;
    for i in 0..steps.len() {
        if !usable[i] || steps.machine(i).is_empty() {
            continue;
        }
        // Steps of one machine often come in runs; skip the hash lookup for a repeat.
        let m = steps.machine(i);
        let key = match last {
            Some((lm, k)) if lm == m => k,
            _ => {
                let k = &key_of[m];
                last = Some((m, k));
                k
            }
        };
        let Some(row) = rows.get_mut(key) else {
            continue;
        };
        if let (Some(a), Some(mut b)) = (steps.start(i), steps.stop(i)) {
            // Under the Rust runner a step's times span import, build and upload (stopTime is the
            // runner's clock) and overhead is import + upload: take it off so that it is not
            // counted twice. Under the C++ runner the times are the build alone.
            if ds.meta.runner_at(Some(a)) == crate::dataset::Runner::Rust {
                b = a.max(b - steps.overhead_ms(i).unwrap_or(0).max(0) / 1000);
            }
            let (ca, cb) = (a.max(lo), b.min(hi));
            if cb > ca {
                row.building_h += (cb - ca) as f64 / 3600.0;
            }
        }
        if let (Some(o), Some(b)) = (steps.overhead_ms(i), steps.stop(i))
            && b >= lo
            && b < hi
        {
            row.overhead_h += o.max(0) as f64 / 3_600_000.0;
        }
    }

    // Held slots and dispatch loss, from the best source the data has (`dispatch_loss`).
    let list: Vec<dispatch_loss::Machine> = slot
        .iter()
        .map(|(key, s)| {
            let file = machines.and_then(|l| l.iter().find(|m| m.uri == *key));
            dispatch_loss::Machine {
                key: key.clone(),
                slots: f64::from(s.slots),
                systems: s.systems.clone(),
                supported: file
                    .map(|m| m.supported_features.clone())
                    .unwrap_or_default(),
                mandatory: file
                    .map(|m| m.mandatory_features.clone())
                    .unwrap_or_default(),
                features_known: file.is_some(),
            }
        })
        .collect();
    // Under one runner throughout, its rules; where the window spans the switch, each step is
    // read by its own era's (`DatasetMeta::runner_at`), and what is decided once for the
    // window — how the series counts held slots, the wording — by the era of its middle.
    let window_runner = ds.meta.runner_at(Some(lo + (hi - lo) / 2));
    let cpp_steps = ds.meta.runner == crate::dataset::Runner::Cpp
        || ds.meta.runner_switch.is_some_and(|at| at > lo);
    let series = input
        .timeline
        .map(|tl| {
            let cpp = window_runner != crate::dataset::Runner::Rust;
            dispatch_loss::from_series(tl, &list, lo, hi, cpp)
        })
        .filter(|s| s.samples > s.missing);
    let covered = |s: &dispatch_loss::SeriesLoss| {
        s.covered
            .map_or(0.0, |(a, b)| (b - a) as f64 / span.max(1) as f64)
    };
    if let Some(s) = &series {
        if covered(s) < 0.999 {
            notes.push(format!(
                "the runner's series covers {:.0} % of the window; held slots and the \
                 dispatcher's loss are measured there only",
                covered(s) * 100.0
            ));
        }
        if !s.unmatched.is_empty() {
            notes.push(format!(
                "{} machine(s) of the runner's series match no machine of the ledger: {}",
                s.unmatched.len(),
                s.unmatched.join(", ")
            ));
        }
    }
    let held_basis = match (&series, &ds.truth) {
        (Some(s), _) if s.has_stages => {
            for (m, h) in list.iter().zip(&s.held.hours) {
                rows.entry(m.key.clone()).or_default().held_h += h;
            }
            format!(
                "measured: the runner's stage counters ({}), {}, every {} s (sampling error ±{:.1} \
                 slot-h)",
                input.timeline.map_or("", |t| t.source.as_str()),
                s.held_how,
                input.timeline.map_or(0, |t| t.step_s),
                s.held.error_h
            )
        }
        (_, Some(t)) => {
            let held = truth_held(t, steps, lo, hi)?;
            for (m, h) in held {
                if let Some(k) = key_of.get(m.as_str()) {
                    rows.entry(k.clone()).or_default().held_h += h;
                }
            }
            "the sample's ground truth (send-lock and local-slot waits)".to_string()
        }
        _ => {
            notes.push(
                "time held while waiting for the send lock or a local worker slot is not \
                 recorded in the database; it is counted in dispatch loss or idle"
                    .into(),
            );
            "not recorded in the database (0)".to_string()
        }
    };

    // Throttled: measured where the series says which machines the free function held back.
    let throttled = series
        .as_ref()
        .filter(|_| window_runner == crate::dataset::Runner::Rust)
        .filter(|_| input.timeline.is_some_and(|t| t.capacity_known));
    let throttled_basis = match (throttled, window_runner) {
        (Some(s), _) => format!(
            "measured: the runner's series ({}): machines its free function held back \
             (hasCapacity false below maxJobs: load or pressure over the builder's threshold), \
             the slots below maxJobs that steps on its runnable list would have taken, every \
             {} s (sampling error ±{:.1} slot-h)",
            input.timeline.map_or("", |t| t.source.as_str()),
            input.timeline.map_or(0, |t| t.step_s),
            s.throttled.error_h
        ),
        (None, crate::dataset::Runner::Rust) => "not measured (0): only a series of the \
             runner's /status (status --watch) says which machines its free function held \
             back; without it such slots count as free, in dispatch loss"
            .to_string(),
        (None, crate::dataset::Runner::Cpp) => {
            "none: the C++ runner gives a machine work whenever it is below maxJobs".to_string()
        }
    };

    // Dispatch loss: the point figure where the derivation graph or the series measures it,
    // else an interval.
    let on = machine_of_steps(steps, usable, &list, &key_of);
    let occupied = occupied_intervals(steps, usable, &on);
    // When waiting ended: after a retry's back-off at the earliest, and under the C++ runner at
    // the dispatch the series shows (its start records the build, after sending).
    let not_before = super::dispatched::retry_not_before(steps, usable);
    let dispatched = match (input.timeline, &series) {
        (Some(tl), Some(_)) if cpp_steps => Some(super::dispatched::dispatched_from_series(
            tl, steps, usable, &list, &on,
        )),
        _ => None,
    };
    let ends = Ends {
        not_before: &not_before,
        dispatched: dispatched.as_deref(),
    };
    let free = match input.timeline {
        Some(tl) if series.is_some() => dispatch_loss::Free::Series(tl),
        _ => dispatch_loss::Free::Occupied(&occupied),
    };
    let step = input.timeline.map_or(LOSS_STEP_S, |t| t.step_s.max(1));
    let from = |edges: Option<&[Edge]>, free: &dispatch_loss::Free<'_>| -> Result<_> {
        let (waiting, names) = waiting_intervals(ds, steps, usable, edges, &ends)?;
        Ok(dispatch_loss::from_intervals(
            &waiting, &names, free, &list, lo, hi, step,
        ))
    };
    let mut split = None;
    let mut dispatch_error_h = None;
    let (loss, high, dispatch_basis) = match (input.runnable, &series) {
        (Runnable::Graph { found, asked }, _) => {
            // The graph knows each step's dependencies and required features. Without the
            // series it bounds the loss from above: a step's own lock wait and send time, and
            // the slots held meanwhile, are not recorded, so it looks waiting while no slot
            // could take it. With the series those come from the held slots
            // (`super::dispatched`); tests/losses.rs measures how near the truth each lands.
            let high = from(Some(input.edges), &free)?;
            let (low, low_says) = match &series {
                Some(s) => (
                    s.dispatcher.clone(),
                    "the runner's series: steps on its runnable list while a capable slot was \
                     free (measured)",
                ),
                None => (
                    dispatch_loss::PerMachine::new(list.len()),
                    "0: the database proves no loss",
                ),
            };
            if let Some(s) = &series {
                split = Some((
                    (high.total() - s.dispatcher.total()).max(0.0),
                    s.dispatcher.total(),
                ));
            }
            let rust = window_runner == crate::dataset::Runner::Rust;
            // Under the Rust runner the series measures the free slots only where it says which
            // machines the machine-free function held back (`status --watch` of `/status`).
            let capacity =
                rust && series.is_some() && input.timeline.is_some_and(|t| t.capacity_known);
            let (until, free_from, kind) = if capacity {
                (
                    "until the runner took it for a machine (its startTime)",
                    "free slots from the runner's series, less the machines its machine-free \
                     function held back (hasCapacity false: maxJobs, load or pressure)",
                    "",
                )
            } else if rust {
                (
                    "until the runner took it for a machine (its startTime)",
                    if series.is_some() {
                        "free slots from the runner's series"
                    } else {
                        "free slots from the steps' times (the slot's whole hold)"
                    },
                    "an upper bound: a machine below maxJobs that its load or pressure \
                     thresholds held back counts as free",
                )
            } else if ends.dispatched.is_some() {
                (
                    "until the series shows a slot held for it (its machine's held slots not \
                     building, first come first served)",
                    "free slots from the runner's series",
                    "",
                )
            } else if series.is_some() {
                (
                    "until it started",
                    "free slots from the runner's series",
                    "an upper bound: a step's lock wait and send time count as waiting",
                )
            } else {
                (
                    "until it started",
                    "free slots from the steps' build times",
                    "an upper bound: a step's lock wait and send time count as waiting, and \
                     the slots held meanwhile as free",
                )
            };
            let how = format!(
                "the derivation graph ({found} of {asked} steps' .drv found), a step waiting from \
                 when its build was queued, any retry's back-off had passed and its inputs' steps \
                 had finished, {until}; {free_from}, sampled every {step} s (sampling error ±{:.1} \
                 slot-h), machine types with the .drv's required features",
                high.error_h
            );
            if ends.dispatched.is_some() || capacity {
                // Both ends of every wait and the free slots are measured or inferred from
                // measurements: a figure, not a bound (within 10 % of the sample's truth,
                // tests/losses.rs; under the Rust runner the start is the dispatch, and the
                // series says which slots the runner would fill, tests/analysis.rs). It cannot
                // be below the dispatcher's part, which the series measures directly.
                dispatch_error_h = Some(high.error_h);
                let mut point = high;
                for (p, l) in point.hours.iter_mut().zip(&low.hours) {
                    *p = p.max(*l);
                }
                let basis = format!(
                    "measured: the runner's series with {how}; the dispatcher's part from \
                     {low_says}"
                );
                (point, None, basis)
            } else {
                let basis =
                    format!("an interval: lower end from {low_says}; upper end from {how}; {kind}");
                (low, Some(high), basis)
            }
        }
        (Runnable::Estimate, Some(s)) => {
            let high = from(None, &free)?;
            let basis = format!(
                "an interval: from the runner's series, the dispatcher's part ({:.0} slot-h, \
                 steps on its runnable list while a capable slot was free; measured) up to the \
                 same with every step counted from when its build was queued (and any retry's \
                 back-off had passed) until a slot was held for it (an upper bound: dependencies \
                 are not known without the derivation graph, --drv-store)",
                s.dispatcher.total()
            );
            (s.dispatcher.clone(), Some(high), basis)
        }
        (Runnable::Estimate, None) => {
            // Nothing in the database proves that a slot was free while a step was ready:
            // sending inputs and waiting for locks are not recorded, so even the
            // dependency estimate's waits (`input.edges`) may all have been spent in them.
            let low = dispatch_loss::PerMachine::new(list.len());
            let high = from(None, &free)?;
            let basis = "an interval (estimate, low confidence): the database alone proves no \
                 loss (lower end 0: sending inputs and waiting for locks are not recorded, so a \
                 slot that looks free may have been taken); the upper end counts every step as \
                 waiting from when its build was queued and every slot as free outside the \
                 steps' recorded times. The runner's own series with the derivation graph \
                 (--drv-store) measure it"
                .to_string();
            (low, Some(high), basis)
        }
    };

    for (i, (key, s)) in slot.iter().enumerate() {
        let row = rows.entry(key.clone()).or_default();
        row.key = key.clone();
        row.system = s.systems.first().cloned().unwrap_or_default();
        row.slots = s.slots;
        row.available_h = f64::from(s.slots) * span as f64 / 3600.0;
        let used = row.building_h + row.overhead_h + row.held_h;
        let idle_total = row.available_h - used;
        if idle_total < 0.0 {
            row.over_committed_h = -idle_total;
            row.dispatch_loss_h = 0.0;
            row.idle_h = 0.0;
            // Scale the recorded buckets down to the available total: the sum must hold, and the
            // excess is reported apart.
            let f = if used > 0.0 {
                row.available_h / used
            } else {
                0.0
            };
            row.building_h *= f;
            row.overhead_h *= f;
            row.held_h *= f;
            continue;
        }
        row.throttled_h = throttled.map_or(0.0, |s| s.throttled.hours[i].min(idle_total));
        let idle_total = idle_total - row.throttled_h;
        row.dispatch_loss_h = loss.hours[i].min(idle_total);
        row.dispatch_loss_high_h = high.as_ref().map(|h| h.hours[i].min(idle_total));
        row.idle_h = idle_total - row.dispatch_loss_h;
    }
    rows.retain(|k, _| slot.contains_key(k));

    let mut by_system: BTreeMap<String, Row> = BTreeMap::new();
    let mut total = Row {
        key: "all machines".into(),
        ..Row::default()
    };
    for (k, r) in &rows {
        let sys = slot[k].systems.first().cloned().unwrap_or_default();
        let e = by_system.entry(sys.clone()).or_default();
        e.key = sys.clone();
        e.system = sys;
        e.add(r);
        total.add(r);
    }
    Ok(Ledger {
        since: lo,
        until: hi,
        slots_basis,
        held_basis,
        dispatch_basis,
        throttled_basis,
        throttled_error_h: throttled.map(|s| s.throttled.error_h),
        held_error_h: series
            .as_ref()
            .filter(|s| s.has_stages)
            .map(|s| s.held.error_h),
        dispatch_error_h,
        dispatch_split: split.map(|(queue_monitor_h, dispatcher_h)| DispatchSplit {
            queue_monitor_h,
            dispatcher_h,
        }),
        machines: rows.into_values().collect(),
        by_system: by_system.into_values().collect(),
        total,
        notes,
    })
}

/// The grid dispatch loss is sampled on when no series sets it: a minute, fine enough that a
/// step waiting a few minutes is seen (a week is 10,080 instants, a year 525,600).
const LOSS_STEP_S: i64 = 60;

/// What ends a step's wait besides its build start, per step row ([`super::dispatched`]).
struct Ends<'a> {
    /// Runnable again only after the back-off that follows aborted tries.
    not_before: &'a super::dispatched::NotBefore,
    /// Dispatched (a slot held for it) before its recorded start, as the series shows.
    dispatched: Option<&'a [Option<i64>]>,
}

/// Steps waiting to be dispatched, as `(system, ready, dispatched)`: ready when the build was
/// queued, any retry's back-off had passed and, with `edges`, every dependency's outputs had
/// been copied back (C++ runner: its stop plus its overhead, which includes that copy; Rust
/// runner: its stop); dispatched where the series shows it, else at its recorded start.
fn waiting_intervals(
    ds: &Dataset,
    steps: &Steps,
    usable: &[bool],
    edges: Option<&[Edge]>,
    ends: &Ends<'_>,
) -> Result<(Vec<dispatch_loss::Waiting>, Vec<String>)> {
    let rust = |i: usize| ds.meta.runner_at(steps.start(i)) == crate::dataset::Runner::Rust;
    // Each step's queue time turned into its ready time in place: a second vector of them
    // was 160 MB at the ledger's peak over ten million steps. The quality checks found the
    // same queue times; found again here (0.3 s at ten million steps) rather than kept
    // through the analysis, where they would add those 160 MB to this peak.
    let mut ready = super::quality::step_queue_times(ds, steps)?;
    for r in &mut ready {
        *r = r.map(|q| surely_after(q, 0));
    }
    if let Some(edges) = edges {
        let index = steps.by_key();
        for e in edges {
            if let (Some(s), Some(d)) = (
                index.get(e.build, e.stepnr),
                index.get(e.dep_build, e.dep_stepnr),
            ) && let Some(stop) = steps.stop(d)
            {
                // Under the C++ runner the outputs came back after the build's end, within
                // the overhead (receiving follows it; sending before the build is in it too, so
                // this is late, never early). Under the Rust runner `stopTime` is already the
                // runner's clock after the builder uploaded them.
                let after = if rust(d) {
                    0
                } else {
                    steps.overhead_ms(d).unwrap_or(0).max(0)
                };
                let copied = surely_after(stop, after);
                ready[s] = Some(ready[s].map_or(copied, |r| r.max(copied)));
            }
        }
    }
    let mut out = Vec::new();
    // Each machine type's number, and its names in that order.
    let mut types: HashMap<(&str, Option<&str>), u32> = HashMap::new();
    let mut names: Vec<String> = Vec::new();
    for i in 0..steps.len() {
        if !usable[i] || steps.machine(i).is_empty() {
            continue;
        }
        let ready = match (ready[i], ends.not_before.get(i)) {
            (Some(r), Some(b)) => Some(r.max(b)),
            (r, _) => r,
        };
        // The dispatch the series shows is the C++ runner's (its start records the build, and
        // the dispatch came before it: a sample instant is exact, the start a bound). Under
        // the Rust runner the start is the dispatch, a whole second cut down: the step still
        // waited at that second's instant, so its wait ends at the next (`surely_after`, as
        // ready times begin). On the 2026 sample that takes the figure from 28.9 to 30.8
        // slot-h against a truth of 32.4.
        let start = ends
            .dispatched
            .filter(|_| !rust(i))
            .and_then(|d| d[i])
            .or_else(|| {
                let s = steps.start(i)?;
                Some(if rust(i) { surely_after(s, 0) } else { s })
            });
        if let (Some(r), Some(s)) = (ready, start)
            && s > r
        {
            // With the graph, the step's machine type names its required features too.
            let features = edges
                .and(ds.drv_graph.as_ref())
                .and_then(|g| g.features.get(steps.drv_path(i)?));
            // A number per machine type, not a name per waiting step (a shared name's 16
            // bytes were 160 MB at the ledger's peak over ten million steps).
            let ty = *types
                .entry((steps.system(i), features.map(String::as_str)))
                .or_insert_with(|| {
                    names.push(match features {
                        Some(f) => format!("{}:{f}", steps.system(i)),
                        None => steps.system(i).to_string(),
                    });
                    (names.len() - 1) as u32
                });
            out.push((ty, r, s));
        }
    }
    Ok((out, names))
}

/// Slots the history shows taken: each step's `[start, stop)` on its machine (an index into
/// `list`). Under the C++ runner that is the build alone: the send-lock wait and sending before
/// it, and the wait for a local slot after it, held the slot unrecorded, so this undercounts
/// what was taken. Under the Rust runner `startTime` is the runner's clock when it took the
/// step for a machine (`Job::result.set_start_time_now` in `State::realise_drv_on_valid_machine`,
/// `subprojects/hydra-queue-runner/src/state/mod.rs`, 14332fbf) and `stopTime` when the builder
/// reported it done, import and upload included, so the span is the slot's whole hold.
fn occupied_intervals(
    steps: &Steps,
    usable: &[bool],
    on: &[Option<usize>],
) -> Vec<(usize, i64, i64)> {
    (0..steps.len())
        .filter(|&i| usable[i])
        .filter_map(|i| {
            let m = on[i]?;
            let a = steps.start(i)?;
            // A step still running holds its slot to the end of the window.
            let b = steps.stop(i).unwrap_or(i64::MAX);
            Some((m, a, b))
        })
        .collect()
}

/// The machine each usable step ran on, as an index into `list`.
fn machine_of_steps(
    steps: &Steps,
    usable: &[bool],
    list: &[dispatch_loss::Machine],
    key_of: &HashMap<&str, String>,
) -> Vec<Option<usize>> {
    let index: HashMap<&str, usize> = list
        .iter()
        .enumerate()
        .map(|(i, m)| (m.key.as_str(), i))
        .collect();
    (0..steps.len())
        .map(|i| {
            if !usable[i] || steps.machine(i).is_empty() {
                return None;
            }
            index.get(key_of.get(steps.machine(i))?.as_str()).copied()
        })
        .collect()
}

/// Hours each machine's slots were held by send-lock and local-slot waits, from the truth.
fn truth_held(
    truth: &crate::dataset::Truth,
    steps: &Steps,
    lo: i64,
    hi: i64,
) -> Result<HashMap<String, f64>> {
    let t = &truth.steps;
    let err = |e| Error::frame("truth_steps", e);
    let b = t.column("build").map_err(err)?.i32().map_err(err)?;
    let n = t.column("stepnr").map_err(err)?.i32().map_err(err)?;
    let send = t
        .column("send_lock_wait_ms")
        .map_err(err)?
        .i64()
        .map_err(err)?;
    let local = t
        .column("local_slot_wait_ms")
        .map_err(err)?
        .i64()
        .map_err(err)?;
    let index = steps.by_key();
    let mut out: HashMap<String, f64> = HashMap::new();
    for r in 0..t.height() {
        let (Some(bb), Some(nn)) = (b.get(r), n.get(r)) else {
            continue;
        };
        let Some(i) = index.get(bb, nn) else {
            continue;
        };
        let in_window = steps.stop(i).is_some_and(|s| s >= lo && s < hi);
        if steps.machine(i).is_empty() || !in_window {
            continue;
        }
        let ms = send.get(r).unwrap_or(0).max(0) + local.get(r).unwrap_or(0).max(0);
        *out.entry(steps.machine(i).to_string()).or_default() += ms as f64 / 3_600_000.0;
    }
    Ok(out)
}
