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

#[derive(Debug, Clone)]
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

/// Builds the ledger over `[lo, hi)`: the window as one span ([`Plan`], [`Parts`]).
pub fn ledger(input: &Inputs<'_>) -> Result<Ledger> {
    let ds = input.ds;
    let mut ran = Ran::default();
    ran.add(input.steps);
    let plan = Plan::new(&Setup {
        meta: &ds.meta,
        ran: &ran,
        machines: input.machines,
        peaks: input.peaks,
        timeline: input.timeline,
        has_truth: ds.truth.is_some(),
        runnable: input.runnable,
        lo: input.lo,
        hi: input.hi,
    });
    let held = match (&ds.truth, plan.held_from) {
        (Some(t), HeldFrom::Truth) => Some(TruthHeld::of(&t.steps)?),
        _ => None,
    };
    let mut parts = plan.parts();
    parts.add(
        &plan,
        Frame {
            meta: &ds.meta,
            steps: input.steps,
            usable: input.usable,
            queued: super::quality::step_queue_times(ds, input.steps)?,
            graph: ds.drv_graph.as_ref(),
            deps: Some(Deps::Edges(input.edges)),
            held: held.as_ref(),
            dispatched: None,
            waits: None,
        },
        (input.lo, input.hi),
        true,
    );
    Ok(plan.finish(parts))
}

/// The machines that ran steps, each with its system types in order of first appearance in
/// key order (a machine's first type is the system its row is grouped by): filled from the
/// whole window at once or from its days in any order, with the same result.
#[derive(Debug, Clone, Default)]
pub struct Ran {
    /// A machine's name → its place in `systems`.
    index: HashMap<String, usize>,
    /// Each machine's systems with the key of their first step.
    systems: Vec<Vec<((i32, i32), String)>>,
}

impl Ran {
    /// Every step with a machine, usable or not, as the window's machines are every one named.
    pub fn add(&mut self, steps: &Steps) {
        let mut last: Option<(&str, usize)> = None;
        for i in 0..steps.len() {
            let m = steps.machine(i);
            if m.is_empty() {
                continue;
            }
            // Steps of one machine often come in runs; skip the lookup for a repeat.
            let at = match last {
                Some((lm, at)) if lm == m => at,
                _ => {
                    let next = self.systems.len();
                    let at = *self.index.entry(m.to_string()).or_insert(next);
                    if at == next {
                        self.systems.push(Vec::new());
                    }
                    last = Some((m, at));
                    at
                }
            };
            let key = (steps.build(i), steps.stepnr(i));
            let sys = steps.system(i);
            let v = &mut self.systems[at];
            match v.iter_mut().find(|(_, s)| s == sys) {
                Some(e) => e.0 = e.0.min(key),
                None => v.push((key, sys.to_string())),
            }
        }
    }

    /// Each machine's systems in order of their first step.
    fn systems(&self) -> HashMap<&str, Vec<String>> {
        self.index
            .iter()
            .map(|(m, &at)| {
                let mut v: Vec<&((i32, i32), String)> = self.systems[at].iter().collect();
                v.sort();
                (m.as_str(), v.into_iter().map(|(_, s)| s.clone()).collect())
            })
            .collect()
    }
}

/// What [`Plan::new`] decides the window's ledger from.
pub struct Setup<'a> {
    pub meta: &'a crate::dataset::DatasetMeta,
    pub ran: &'a Ran,
    pub machines: Option<&'a [BuildMachine]>,
    pub peaks: &'a BTreeMap<String, usize>,
    pub timeline: Option<&'a crate::status::timeline::Timeline>,
    /// Whether the sample's ground truth is there (held slots from it, without a series).
    pub has_truth: bool,
    pub runnable: Runnable,
    pub lo: i64,
    pub hi: i64,
}

/// Where the held bucket comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeldFrom {
    Series,
    /// The sample's ground truth, step by step ([`TruthHeld`]).
    Truth,
    Nothing,
}

/// What is decided once for a window's ledger, before any step is counted: the machines and
/// their slots, the runner's rules, what the series measures on its own. Its [`Parts`] are
/// then counted over the window at once or over spans of it, and [`Plan::finish`] makes the
/// ledger of their sums.
pub struct Plan<'a> {
    lo: i64,
    hi: i64,
    slot: BTreeMap<String, Slot>,
    /// The machines in order of key (the ledger's rows), as the dispatch loss counts them.
    list: Vec<dispatch_loss::Machine>,
    /// A machine name as steps give it → its place in `list`.
    index: HashMap<String, usize>,
    timeline: Option<&'a crate::status::timeline::Timeline>,
    runnable: Runnable,
    window_runner: crate::dataset::Runner,
    cpp_steps: bool,
    series: Option<dispatch_loss::SeriesLoss>,
    pub held_from: HeldFrom,
    /// The grid dispatch loss is sampled on (the series' when free slots come from it).
    pub step: i64,
    slots_basis: String,
    held_basis: String,
    notes: Vec<String>,
}

impl<'a> Plan<'a> {
    pub fn new(s: &Setup<'a>) -> Plan<'a> {
        let (machines, peaks, lo, hi) = (s.machines, s.peaks, s.lo, s.hi);
        let ran = s.ran.systems();
        let mut notes = Vec::new();
        let span = (hi - lo).max(0);
        // Slots and systems per machine key (the URI as the steps name it).
        let mut slot: BTreeMap<String, Slot> = BTreeMap::new();
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
                let unknown = ran
                    .keys()
                    .filter(|k| {
                        !slot.contains_key(**k)
                            && !list
                                .iter()
                                .any(|m| m.host() == crate::nix::machines::host_of(k))
                    })
                    .count();
                if unknown > 0 {
                    notes.push(format!(
                        "{unknown} machine(s) ran steps but are not in the machines file; their \
                         slots are the peak concurrency observed"
                    ));
                }
            }
            None => {
                slots_basis = "inferred: the most steps seen building at once on each machine (an \
                     estimate; give --machines for the configured maxJobs)"
                    .to_string();
            }
        }
        // One key per machine: the machines file's URI where it lists the machine (by URI or
        // by host), else the name the steps use. A machine named both ways — a store URI by
        // the C++ runner, a bare hostname by the Rust one (`source::era`) — is one machine:
        // its names share the key of the URI form.
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
        // In order, the name a machine is keyed by before its other name, so that its systems
        // come first and every run lists them alike.
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
        let place: HashMap<&str, usize> = list
            .iter()
            .enumerate()
            .map(|(i, m)| (m.key.as_str(), i))
            .collect();
        let index = key_of
            .iter()
            .filter_map(|(m, k)| Some((m.to_string(), *place.get(k.as_str())?)))
            .collect();

        // Under one runner throughout, its rules; where the window spans the switch, each step
        // is read by its own era's (`DatasetMeta::runner_at`), and what is decided once for the
        // window — how the series counts held slots, the wording — by the era of its middle.
        let window_runner = s.meta.runner_at(Some(lo + (hi - lo) / 2));
        let cpp_steps = s.meta.runner == crate::dataset::Runner::Cpp
            || s.meta.runner_switch.is_some_and(|at| at > lo);
        let series = s
            .timeline
            .map(|tl| {
                let cpp = window_runner != crate::dataset::Runner::Rust;
                dispatch_loss::from_series(tl, &list, lo, hi, cpp)
            })
            .filter(|s| s.samples > s.missing);
        if let Some(se) = &series {
            let covered = se
                .covered
                .map_or(0.0, |(a, b)| (b - a) as f64 / span.max(1) as f64);
            if covered < 0.999 {
                notes.push(format!(
                    "the runner's series covers {:.0} % of the window; held slots and the \
                     dispatcher's loss are measured there only",
                    covered * 100.0
                ));
            }
            if !se.unmatched.is_empty() {
                notes.push(format!(
                    "{} machine(s) of the runner's series match no machine of the ledger: {}",
                    se.unmatched.len(),
                    se.unmatched.join(", ")
                ));
            }
        }
        let (held_from, held_basis) = match &series {
            Some(se) if se.has_stages => (
                HeldFrom::Series,
                format!(
                    "measured: the runner's stage counters ({}), {}, every {} s (sampling error \
                     ±{:.1} slot-h)",
                    s.timeline.map_or("", |t| t.source.as_str()),
                    se.held_how,
                    s.timeline.map_or(0, |t| t.step_s),
                    se.held.error_h
                ),
            ),
            _ if s.has_truth => (
                HeldFrom::Truth,
                "the sample's ground truth (send-lock and local-slot waits)".to_string(),
            ),
            _ => {
                notes.push(
                    "time held while waiting for the send lock or a local worker slot is not \
                     recorded in the database; it is counted in dispatch loss or idle"
                        .into(),
                );
                (
                    HeldFrom::Nothing,
                    "not recorded in the database (0)".to_string(),
                )
            }
        };
        let step = s.timeline.map_or(LOSS_STEP_S, |t| t.step_s.max(1));
        Plan {
            lo,
            hi,
            slot,
            list,
            index,
            timeline: s.timeline,
            runnable: s.runnable,
            window_runner,
            cpp_steps,
            series,
            held_from,
            step,
            slots_basis,
            held_basis,
            notes,
        }
    }

    /// Whether free slots come from the runner's series: its samples are then the instants
    /// dispatch loss is counted at (a span must start at one).
    pub fn free_from_series(&self) -> Option<&'a crate::status::timeline::Timeline> {
        self.timeline.filter(|_| self.series.is_some())
    }

    /// The series where a C++ runner's dispatch is inferred from it
    /// ([`super::dispatched::dispatched_from_series`]): free slots come from it and the
    /// window holds C++ steps.
    pub fn dispatch_from_series(&self) -> Option<&'a crate::status::timeline::Timeline> {
        self.free_from_series().filter(|_| self.cpp_steps)
    }

    /// Empty sums, to add the window's steps to.
    pub fn parts(&self) -> Parts {
        let n = self.list.len();
        Parts {
            building_s: vec![0; n],
            overhead_ms: vec![0; n],
            held_ms: vec![0; n],
            sweep: dispatch_loss::Sweep::new(n),
        }
    }

    /// Sets how many of the window's steps (with a machine, `asked`) had their `.drv` found,
    /// where the graph is joined a span at a time and the count is known only after the spans.
    pub fn graph_found(&mut self, found: usize, asked: usize) {
        if let Runnable::Graph { .. } = self.runnable {
            self.runnable = Runnable::Graph { found, asked };
        }
    }

    /// The ledger of the sums over the whole window.
    pub fn finish(self, parts: Parts) -> Ledger {
        let dispatched_known = self.dispatch_from_series().is_some();
        let Plan {
            lo,
            hi,
            slot,
            list,
            timeline,
            runnable,
            window_runner,
            series,
            held_from,
            step,
            slots_basis,
            held_basis,
            mut notes,
            ..
        } = self;
        let span = (hi - lo).max(0);
        let mut rows: Vec<Row> = (0..list.len())
            .map(|m| Row {
                building_h: parts.building_s[m] as f64 / 3600.0,
                overhead_h: parts.overhead_ms[m] as f64 / 3_600_000.0,
                held_h: match held_from {
                    HeldFrom::Truth => parts.held_ms[m] as f64 / 3_600_000.0,
                    _ => 0.0,
                },
                ..Row::default()
            })
            .collect();
        if let (HeldFrom::Series, Some(s)) = (held_from, &series) {
            for (row, h) in rows.iter_mut().zip(&s.held.hours) {
                row.held_h += h;
            }
        }
        let source = timeline.map_or("", |t| t.source.as_str());
        // Throttled: measured where the series says which machines the free function held back.
        let throttled = series
            .as_ref()
            .filter(|_| window_runner == crate::dataset::Runner::Rust)
            .filter(|_| timeline.is_some_and(|t| t.capacity_known));
        let throttled_basis = match (throttled, window_runner) {
            (Some(s), _) => format!(
                "measured: the runner's series ({source}): machines its free function held back \
                 (hasCapacity false below maxJobs: load or pressure over the builder's \
                 threshold), the slots below maxJobs that steps on its runnable list would have \
                 taken, every {} s (sampling error ±{:.1} slot-h)",
                timeline.map_or(0, |t| t.step_s),
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

        // Dispatch loss: the point figure where the derivation graph or the series measures
        // it, else an interval.
        let high = parts.sweep.finish();

        let mut split = None;
        let mut dispatch_error_h = None;
        let (loss, high, dispatch_basis) = match (runnable, &series) {
            (Runnable::Graph { found, asked }, _) => {
                // The graph knows each step's dependencies and required features. Without the
                // series it bounds the loss from above: a step's own lock wait and send time,
                // and the slots held meanwhile, are not recorded, so it looks waiting while no
                // slot could take it. With the series those come from the held slots
                // (`super::dispatched`); tests/losses.rs measures how near the truth each
                // lands.
                let (low, low_says) = match &series {
                    Some(s) => (
                        s.dispatcher.clone(),
                        "the runner's series: steps on its runnable list while a capable slot \
                         was free (measured)",
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
                // Under the Rust runner the series measures the free slots only where it says
                // which machines the machine-free function held back (`status --watch` of
                // `/status`).
                let capacity =
                    rust && series.is_some() && timeline.is_some_and(|t| t.capacity_known);
                let (until, free_from, kind) = if capacity {
                    (
                        "until the runner took it for a machine (its startTime)",
                        "free slots from the runner's series, less the machines its \
                         machine-free function held back (hasCapacity false: maxJobs, load or \
                         pressure)",
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
                } else if dispatched_known {
                    (
                        "until the series shows a slot held for it (its machine's held slots \
                         not building, first come first served)",
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
                        "an upper bound: a step's lock wait and send time count as waiting, \
                         and the slots held meanwhile as free",
                    )
                };
                let how = format!(
                    "the derivation graph ({found} of {asked} steps' .drv found), a step waiting \
                     from when its build was queued, any retry's back-off had passed and its \
                     inputs' steps had finished, {until}; {free_from}, sampled every {step} s \
                     (sampling error ±{:.1} slot-h), machine types with the .drv's required \
                     features",
                    high.error_h
                );
                if dispatched_known || capacity {
                    // Both ends of every wait and the free slots are measured or inferred from
                    // measurements: a figure, not a bound (within 10 % of the sample's truth,
                    // tests/losses.rs; under the Rust runner the start is the dispatch, and the
                    // series says which slots the runner would fill, tests/analysis.rs). It
                    // cannot be below the dispatcher's part, which the series measures
                    // directly.
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
                    let basis = format!(
                        "an interval: lower end from {low_says}; upper end from {how}; {kind}"
                    );
                    (low, Some(high), basis)
                }
            }
            (Runnable::Estimate, Some(s)) => {
                let basis = format!(
                    "an interval: from the runner's series, the dispatcher's part ({:.0} slot-h, \
                     steps on its runnable list while a capable slot was free; measured) up to \
                     the same with every step counted from when its build was queued (and any \
                     retry's back-off had passed) until a slot was held for it (an upper bound: \
                     dependencies are not known without the derivation graph, --drv-store)",
                    s.dispatcher.total()
                );
                (s.dispatcher.clone(), Some(high), basis)
            }
            (Runnable::Estimate, None) => {
                // Nothing in the database proves that a slot was free while a step was ready:
                // sending inputs and waiting for locks are not recorded, so even the
                // dependency estimate's waits may all have been spent in them.
                let low = dispatch_loss::PerMachine::new(list.len());
                let basis = "an interval (estimate, low confidence): the database alone proves \
                     no loss (lower end 0: sending inputs and waiting for locks are not \
                     recorded, so a slot that looks free may have been taken); the upper end \
                     counts every step as waiting from when its build was queued and every \
                     slot as free outside the steps' recorded times. The runner's own series \
                     with the derivation graph (--drv-store) measure it"
                    .to_string();
                (low, Some(high), basis)
            }
        };

        for (i, (key, s)) in slot.iter().enumerate() {
            let row = &mut rows[i];
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
                // Scale the recorded buckets down to the available total: the sum must hold,
                // and the excess is reported apart.
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

        let mut by_system: BTreeMap<String, Row> = BTreeMap::new();
        let mut total = Row {
            key: "all machines".into(),
            ..Row::default()
        };
        for (r, s) in rows.iter().zip(slot.values()) {
            let sys = s.systems.first().cloned().unwrap_or_default();
            let e = by_system.entry(sys.clone()).or_default();
            e.key = sys.clone();
            e.system = sys;
            e.add(r);
            total.add(r);
        }
        notes.shrink_to_fit();
        Ledger {
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
            machines: rows,
            by_system: by_system.into_values().collect(),
            total,
            notes,
        }
    }
}

/// The steps of a span of the window and what they are read with, for [`Parts::add`].
pub struct Frame<'a> {
    pub meta: &'a crate::dataset::DatasetMeta,
    pub steps: &'a Steps,
    pub usable: &'a [bool],
    /// Each step's build's queue time (turned into its ready time in place).
    pub queued: Vec<Option<i64>>,
    /// The derivation graph, for the machine types' required features.
    pub graph: Option<&'a crate::nix::graph::DrvGraph>,
    /// The dependencies, where the plan's runnable times come from the graph.
    pub deps: Option<Deps<'a>>,
    /// The truth's held time per step, where the plan takes held slots from it.
    pub held: Option<&'a TruthHeld>,
    /// Where a C++ runner's dispatch is read from the series, each step's dispatch found over
    /// the whole window's steps ([`super::dispatched::Sweep`]) when these are a span of it;
    /// `None`: found here from these steps, the whole window.
    pub dispatched: Option<&'a [Option<i64>]>,
    /// The waits of steps held only as waits ([`Kept::Wait`]), besides `steps`'.
    pub waits: Option<&'a Waits>,
}

/// Sums of a window's ledger over the spans counted so far: whole seconds and milliseconds,
/// so that any split of the window adds to the same figures, and the dispatch loss' sweep,
/// which takes spans in order.
pub struct Parts {
    building_s: Vec<i64>,
    overhead_ms: Vec<i64>,
    held_ms: Vec<i64>,
    sweep: dispatch_loss::Sweep,
}

impl Parts {
    /// Counts what `frame`'s steps hold of `[a, b)`: building time inside it, the overhead
    /// and held time of the steps that stopped inside it, and with `loss` the dispatch loss at
    /// its instants (spans must then come in order, each starting at an instant of the
    /// plan's grid, and `frame` hold every step that waited or held a slot in it).
    pub fn add(&mut self, plan: &Plan<'_>, frame: Frame<'_>, (a, b): (i64, i64), loss: bool) {
        let Frame {
            meta,
            steps,
            usable,
            queued,
            graph,
            deps,
            held,
            dispatched,
            waits,
        } = frame;
        let on = machine_of_steps(steps, usable, &plan.index);
        for i in 0..steps.len() {
            let Some(m) = on[i] else { continue };
            if let (Some(start), Some(mut stop)) = (steps.start(i), steps.stop(i)) {
                // Under the Rust runner a step's times span import, build and upload
                // (stopTime is the runner's clock) and overhead is import + upload: take it off
                // so that it is not counted twice. Under the C++ runner the times are the
                // build alone.
                if meta.runner_at(Some(start)) == crate::dataset::Runner::Rust {
                    stop = start.max(stop - steps.overhead_ms(i).unwrap_or(0).max(0) / 1000);
                }
                let (ca, cb) = (start.max(a), stop.min(b));
                if cb > ca {
                    self.building_s[m] += cb - ca;
                }
            }
            if let (Some(o), Some(stop)) = (steps.overhead_ms(i), steps.stop(i))
                && stop >= a
                && stop < b
            {
                self.overhead_ms[m] += o.max(0);
            }
        }
        if let Some(held) = held {
            // Every step named on a machine, usable or not, as the truth counts it.
            for i in 0..steps.len() {
                let in_span = steps.stop(i).is_some_and(|s| s >= a && s < b);
                if !in_span || steps.machine(i).is_empty() {
                    continue;
                }
                if let (Some(&m), Some(ms)) = (
                    plan.index.get(steps.machine(i)),
                    held.get(steps.build(i), steps.stepnr(i)),
                ) {
                    self.held_ms[m] += ms;
                }
            }
        }
        if !loss {
            return;
        }
        let occupied = occupied_intervals(steps, usable, &on);
        // When waiting ended: after a retry's back-off at the earliest, and under the C++
        // runner at the dispatch the series shows (its start records the build, after
        // sending).
        let not_before = super::dispatched::retry_not_before(steps, usable);
        let found;
        let dispatched = match (plan.dispatch_from_series(), dispatched) {
            (Some(_), Some(given)) => Some(given),
            (Some(tl), None) => {
                found =
                    super::dispatched::dispatched_from_series(tl, steps, usable, &plan.list, &on);
                Some(&found[..])
            }
            (None, _) => None,
        };
        let ends = Ends {
            not_before: &not_before,
            dispatched,
        };
        let free = match plan.free_from_series() {
            Some(tl) => dispatch_loss::Free::Series(tl),
            None => dispatch_loss::Free::Occupied(&occupied),
        };
        let deps = match plan.runnable {
            Runnable::Graph { .. } => deps,
            Runnable::Estimate => None,
        };
        let (mut waiting, mut names) =
            waiting_intervals(meta, steps, usable, queued, deps, graph, &ends);
        if let Some(w) = waits {
            w.append_to(&mut waiting, &mut names);
        }
        self.sweep
            .add(&waiting, &names, &free, &plan.list, a, b, plan.step);
    }
}

/// Which steps of the days read for a span `[a, b)` can change what [`Parts::add`] counts
/// there, so that a span holds those and not every step of the days around it (the days
/// before a span are read for the steps still building when it starts and for earlier tries
/// of a derivation, those after it for the steps that waited in it; a day holds a million and
/// a half steps on a large farm). A step is kept if it:
///
/// - started in the span (it built, or held a slot, or waited there), or stopped in it;
/// - started before it and stopped at `a` or later, or never (building time, overhead and held
///   time are counted by the instant they stopped, occupied slots at the span's instants);
/// - started after it from a build queued before `b` (it may have waited in the span: its wait
///   begins no earlier than its build's queue time). Such a step counts only its wait there,
///   and where nothing else is read with it (no earlier aborted try of its derivation, no
///   dispatch in the span read from the series, no derivation graph) the span keeps its wait
///   alone ([`Kept::Wait`], [`Waits`]): a large evaluation's builds wait for hours, each in
///   every span it waits through;
/// - is a try of a derivation some try of which was aborted (the retry back-off,
///   [`super::dispatched::retry_not_before`], counts each run of aborted tries);
/// - where a C++ runner's dispatch is read from the series, started after the span but was
///   dispatched in it (its dispatch is found over the whole window first,
///   [`super::dispatched::Sweep`]; a step dispatched at `b` or later waited in the span up to
///   its end, as it would up to its start, so it is cut as one without the series).
///
/// Every other step started before `a` and stopped before it: it held no slot in the span and
/// waited none there. The span's figures are therefore the same as with every step
/// (`tests/snapshot.rs` holds them equal to the whole window's).
pub struct SpanRows<'a> {
    pub a: i64,
    pub b: i64,
    /// The derivations with an aborted try ([`Aborted`]).
    pub aborted: &'a Aborted,
    /// Whether a step's wait starts from its build's queue time alone (no graph).
    estimate: bool,
}

/// What a span keeps of one step ([`SpanRows::keep`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    No,
    /// The step's row, read by every part of the count.
    Row,
    /// Only the step's wait for dispatch: what a step that started after the span, from a
    /// build queued in it, counts there ([`Waits`]).
    Wait,
}

/// The waits of the steps a span keeps as waits ([`Kept::Wait`]): 24 bytes a step where its
/// row took some 340 in the span's count, since the steps waiting at a span's end can be
/// millions (docs/scale.md).
#[derive(Debug, Clone, Default)]
pub struct Waits {
    /// Machine types by number (the step's system: no graph names features).
    names: Vec<String>,
    list: Vec<dispatch_loss::Waiting>,
}

impl Waits {
    /// Notes the wait of step `i` of `steps` (`usable`: whether it is; `queued`: its build's
    /// queue time), as [`waiting_intervals`] counts it without a graph, a retry or the series.
    pub fn add(
        &mut self,
        meta: &crate::dataset::DatasetMeta,
        steps: &Steps,
        i: usize,
        usable: bool,
        queued: Option<i64>,
    ) {
        if !usable || steps.machine(i).is_empty() {
            return;
        }
        let ready = queued.map(|q| surely_after(q, 0));
        if let Some((r, s)) = wait_of(meta, steps, i, ready, None, None) {
            let system = steps.system(i);
            let ty = match self.names.iter().position(|n| n == system) {
                Some(k) => k,
                None => {
                    self.names.push(system.to_string());
                    self.names.len() - 1
                }
            };
            self.list.push((ty as u32, r, s));
        }
    }

    /// The waits noted.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Appends these waits to `waiting`, whose machine types are named by `names` (a type not
    /// named there yet is added).
    fn append_to(&self, waiting: &mut Vec<dispatch_loss::Waiting>, names: &mut Vec<String>) {
        let ty: Vec<u32> = self
            .names
            .iter()
            .map(|n| match names.iter().position(|x| x == n) {
                Some(k) => k as u32,
                None => {
                    names.push(n.clone());
                    (names.len() - 1) as u32
                }
            })
            .collect();
        waiting.extend(self.list.iter().map(|&(t, r, s)| (ty[t as usize], r, s)));
    }
}

/// The derivations some usable try of which was aborted, as hashes of their paths (0.35 % of
/// the steps are aborted in the sample at scale 100; a colliding hash keeps a step more, never
/// one less).
#[derive(Debug, Clone, Default)]
pub struct Aborted(std::collections::HashSet<u64>);

impl Aborted {
    /// Notes the aborted tries among `steps` (`usable`: their usable mask), as
    /// [`super::dispatched::retry_not_before`] counts them.
    pub fn add(&mut self, steps: &Steps, usable: &[bool]) {
        for i in 0..steps.len() {
            if usable[i]
                && steps.status(i) == Some(crate::dispatch::BuildStatus::Aborted)
                && steps.stop(i).is_some()
                && let Some(d) = steps.drv_path(i)
            {
                self.0.insert(super::graph::hash(d));
            }
        }
    }

    fn holds(&self, drv: &str) -> bool {
        !self.0.is_empty() && self.0.contains(&super::graph::hash(drv))
    }
}

impl<'a> Plan<'a> {
    /// A sweep for each step's dispatch, where the plan reads it from the series
    /// ([`Plan::dispatch_from_series`]).
    pub fn dispatch_sweep(&self) -> Option<super::dispatched::Sweep<'a>> {
        self.dispatch_from_series()
            .map(|tl| super::dispatched::Sweep::new(tl, &self.list))
    }

    /// The usable steps of `steps` that ran on the plan's machines, in the order a
    /// [`super::dispatched::Sweep`] takes them, each with its handle `id(row)`.
    pub fn started(
        &self,
        steps: &Steps,
        usable: &[bool],
        id: impl Fn(usize) -> u64,
    ) -> Vec<super::dispatched::Started> {
        let on = machine_of_steps(steps, usable, &self.index);
        super::dispatched::started(steps, usable, &on, id)
    }

    /// The rule for which steps a span `[a, b)` keeps ([`SpanRows`]).
    pub fn span_rows(&'a self, (a, b): (i64, i64), aborted: &'a Aborted) -> SpanRows<'a> {
        SpanRows {
            a,
            b,
            aborted,
            estimate: matches!(self.runnable, Runnable::Estimate),
        }
    }
}

impl SpanRows<'_> {
    /// What to keep of each step of `steps` (`queued`: their builds' queue times;
    /// `dispatched`: their dispatch where the series shows it before their start, else empty).
    pub fn keep(
        &self,
        steps: &Steps,
        queued: &[Option<i64>],
        dispatched: &[Option<i64>],
    ) -> Vec<Kept> {
        let row = |keep: bool| if keep { Kept::Row } else { Kept::No };
        (0..steps.len())
            .map(|i| {
                let Some(start) = steps.start(i) else {
                    return Kept::Row;
                };
                if steps.drv_path(i).is_some_and(|d| self.aborted.holds(d)) {
                    return Kept::Row;
                }
                if start >= self.a {
                    // A row that stopped in the span counts there whatever its start (the
                    // truth's held time of a row recorded as stopping before it started).
                    let stopped_in = steps.stop(i).is_some_and(|s| s < self.b);
                    let sent_in = dispatched
                        .get(i)
                        .copied()
                        .flatten()
                        .is_some_and(|d| d < self.b);
                    if start < self.b || stopped_in || sent_in {
                        return Kept::Row;
                    }
                    return match queued[i].is_some_and(|q| q < self.b) {
                        true if self.estimate => Kept::Wait,
                        waited => row(waited),
                    };
                }
                row(steps.stop(i).is_none_or(|stop| stop >= self.a))
            })
            .collect()
    }
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

/// When the outputs of step `d` were back for the steps that need them, if it stopped: under
/// the C++ runner after the build's end, within the overhead (receiving follows it; sending
/// before the build is in it too, so this is late, never early); under the Rust runner at its
/// stop, `stopTime` being already the runner's clock after the builder uploaded them.
pub(super) fn outputs_back(
    meta: &crate::dataset::DatasetMeta,
    steps: &Steps,
    d: usize,
) -> Option<i64> {
    let after = match meta.runner_at(steps.start(d)) {
        crate::dataset::Runner::Rust => 0,
        _ => steps.overhead_ms(d).unwrap_or(0).max(0),
    };
    Some(surely_after(steps.stop(d)?, after))
}

/// Where a frame's steps learn when their dependencies' outputs were back.
#[derive(Debug, Clone, Copy)]
pub enum Deps<'a> {
    /// Edges between steps of the frame (the window read whole): each dependency's
    /// [`outputs_back`].
    Edges(&'a [Edge]),
    /// Each step's instant, row by row, where the graph was joined with the whole window's
    /// successes a span at a time ([`super::graph::join_span`]).
    Ready(&'a [Option<i64>]),
}

/// Steps waiting to be dispatched, as `(system, ready, dispatched)`: ready when the build was
/// queued (`queued`, each step's, turned into ready times in place: a second vector of them
/// was 160 MB at the ledger's peak over ten million steps), any retry's back-off had passed
/// and, with `deps`, every dependency's outputs were back ([`outputs_back`]); dispatched where
/// the series shows it, else at its recorded start.
fn waiting_intervals(
    meta: &crate::dataset::DatasetMeta,
    steps: &Steps,
    usable: &[bool],
    mut ready: Vec<Option<i64>>,
    deps: Option<Deps<'_>>,
    graph: Option<&crate::nix::graph::DrvGraph>,
    ends: &Ends<'_>,
) -> (Vec<dispatch_loss::Waiting>, Vec<String>) {
    for r in &mut ready {
        *r = r.map(|q| surely_after(q, 0));
    }
    let mut after = |s: usize, back: i64| ready[s] = Some(ready[s].map_or(back, |r| r.max(back)));
    match deps {
        Some(Deps::Edges(edges)) => {
            let index = steps.by_key();
            for e in edges {
                if let (Some(s), Some(d)) = (
                    index.get(e.build, e.stepnr),
                    index.get(e.dep_build, e.dep_stepnr),
                ) && let Some(back) = outputs_back(meta, steps, d)
                {
                    after(s, back);
                }
            }
        }
        Some(Deps::Ready(deps_ready)) => {
            for (s, back) in deps_ready.iter().enumerate() {
                if let Some(back) = *back {
                    after(s, back);
                }
            }
        }
        None => {}
    }
    let mut out = Vec::new();
    // Each machine type's number, and its names in that order.
    let mut types: HashMap<(&str, Option<&str>), u32> = HashMap::new();
    let mut names: Vec<String> = Vec::new();
    for i in 0..steps.len() {
        if !usable[i] || steps.machine(i).is_empty() {
            continue;
        }
        let dispatched = ends.dispatched.and_then(|d| d[i]);
        if let Some((r, s)) = wait_of(meta, steps, i, ready[i], ends.not_before.get(i), dispatched)
        {
            // With the graph, the step's machine type names its required features too.
            let features = deps
                .and(graph)
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
    (out, names)
}

/// When step `i` waited for dispatch, `[ready, dispatched)`, if it did: from `ready` (its
/// build's queue time or later, [`waiting_intervals`]), or after a retry's back-off
/// (`not_before`) if later; to the dispatch the series shows (`dispatched`, C++ runner), else to
/// its recorded start.
fn wait_of(
    meta: &crate::dataset::DatasetMeta,
    steps: &Steps,
    i: usize,
    ready: Option<i64>,
    not_before: Option<i64>,
    dispatched: Option<i64>,
) -> Option<(i64, i64)> {
    let rust = meta.runner_at(steps.start(i)) == crate::dataset::Runner::Rust;
    let ready = match (ready, not_before) {
        (Some(r), Some(b)) => Some(r.max(b)),
        (r, _) => r,
    };
    // The dispatch the series shows is the C++ runner's (its start records the build, and the
    // dispatch came before it: a sample instant is exact, the start a bound). Under the Rust
    // runner the start is the dispatch, a whole second cut down: the step still waited at that
    // second's instant, so its wait ends at the next (`surely_after`, as ready times begin).
    // On the 2026 sample that takes the figure from 28.9 to 30.8 slot-h against a truth of
    // 32.4.
    let start = dispatched.filter(|_| !rust).or_else(|| {
        let s = steps.start(i)?;
        Some(if rust { surely_after(s, 0) } else { s })
    });
    match (ready, start) {
        (Some(r), Some(s)) if s > r => Some((r, s)),
        _ => None,
    }
}

/// Slots the history shows taken: each step's `[start, stop)` on its machine (an index into
/// the plan's machines). Under the C++ runner that is the build alone: the send-lock wait and
/// sending before it, and the wait for a local slot after it, held the slot unrecorded, so this
/// undercounts what was taken. Under the Rust runner `startTime` is the runner's clock when it
/// took the step for a machine (`Job::result.set_start_time_now` in
/// `State::realise_drv_on_valid_machine`, `subprojects/hydra-queue-runner/src/state/mod.rs`,
/// 14332fbf) and `stopTime` when the builder reported it done, import and upload included, so
/// the span is the slot's whole hold.
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

/// The machine each usable step ran on, as its place among the plan's machines (`index`: a
/// machine's name as steps give it → that place).
fn machine_of_steps(
    steps: &Steps,
    usable: &[bool],
    index: &HashMap<String, usize>,
) -> Vec<Option<usize>> {
    let mut last: Option<(&str, Option<usize>)> = None;
    (0..steps.len())
        .map(|i| {
            if !usable[i] || steps.machine(i).is_empty() {
                return None;
            }
            // Steps of one machine often come in runs; skip the lookup for a repeat.
            let m = steps.machine(i);
            match last {
                Some((lm, at)) if lm == m => at,
                _ => {
                    let at = index.get(m).copied();
                    last = Some((m, at));
                    at
                }
            }
        })
        .collect()
}

/// The time each step's slot was held by send-lock and local-slot waits, from the sample's
/// truth (`truth_steps`): milliseconds by step key, 16 bytes a step that waited at all.
#[derive(Debug, Clone, Default)]
pub struct TruthHeld(Vec<(u64, i64)>);

impl TruthHeld {
    /// All of `truth_steps` at once.
    pub fn of(truth_steps: &polars::prelude::DataFrame) -> Result<TruthHeld> {
        let mut held = TruthHeld::default();
        held.add(truth_steps)?;
        held.finish();
        Ok(held)
    }

    /// A part of `truth_steps`; [`TruthHeld::finish`] once every part is in.
    pub fn add(&mut self, t: &polars::prelude::DataFrame) -> Result<()> {
        let err = |e| Error::frame("truth_steps", e);
        let col = |name: &str| t.column(name).map_err(err);
        let b = col("build")?.i32().map_err(err)?;
        let n = col("stepnr")?.i32().map_err(err)?;
        let send = col("send_lock_wait_ms")?.i64().map_err(err)?;
        let local = col("local_slot_wait_ms")?.i64().map_err(err)?;
        for r in 0..t.height() {
            let (Some(bb), Some(nn)) = (b.get(r), n.get(r)) else {
                continue;
            };
            let ms = send.get(r).unwrap_or(0).max(0) + local.get(r).unwrap_or(0).max(0);
            if ms > 0 {
                self.0.push((key(bb, nn), ms));
            }
        }
        Ok(())
    }

    /// Puts the steps in key order.
    pub fn finish(&mut self) {
        self.0.sort_unstable_by_key(|e| e.0);
    }

    fn get(&self, build: i32, stepnr: i32) -> Option<i64> {
        let k = self
            .0
            .binary_search_by_key(&key(build, stepnr), |e| e.0)
            .ok()?;
        Some(self.0[k].1)
    }
}

/// A step's key as one number, in key order.
fn key(build: i32, stepnr: i32) -> u64 {
    ((build as u32 ^ 0x8000_0000) as u64) << 32 | (stepnr as u32 ^ 0x8000_0000) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::test_steps::steps;

    const D: &str = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x.drv";
    const RETRIED: &str = "/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-y.drv";
    const OK: Option<i32> = Some(0);
    const FAILED: Option<i32> = Some(1);
    const ABORTED: Option<i32> = Some(3);

    #[test]
    fn a_span_keeps_the_steps_that_can_count_in_it_and_no_other() {
        // The span [1000, 2000).
        let rows = [
            (1, 1, D, OK, Some(1500), Some(1600), "m"), // in the span
            (2, 1, D, OK, Some(100), Some(1200), "m"),  // building into it
            (3, 1, D, None, Some(100), None, "m"),      // still running
            (4, 1, D, FAILED, Some(100), Some(500), "m"), // long before
            (5, 1, D, FAILED, Some(100), Some(950), "m"), // stopped just before it
            (6, 1, D, OK, Some(100), Some(800), "m"),   // a success before it
            (7, 1, D, OK, Some(2500), Some(2600), "m"), // queued in the span, started after
            (8, 1, D, OK, Some(2500), Some(2600), "m"), // queued after the span
            (9, 1, RETRIED, ABORTED, Some(50), Some(60), "m"), // an aborted try, long before
            (10, 1, D, None, None, None, ""),           // never started
            (11, 1, D, OK, Some(100), Some(800), "x"),  // a success on an unknown machine
            (12, 1, D, OK, Some(100), Some(-3000), "m"), // a success long before
            (13, 1, D, OK, Some(2005), Some(1995), "m"), // stopped in it, started after it
        ];
        let s = steps(&rows);
        let usable = vec![true; s.len()];
        let queued: Vec<Option<i64>> = rows
            .iter()
            .map(|r| {
                Some(if r.0 == 8 {
                    2100
                } else {
                    r.4.unwrap_or(0).min(1900)
                })
            })
            .collect();
        let mut aborted = Aborted::default();
        aborted.add(&s, &usable);
        let span = SpanRows {
            a: 1000,
            b: 2000,
            aborted: &aborted,
            estimate: true,
        };
        // The builds of the steps kept whole and of those kept as their wait.
        let kept = |keep: Vec<Kept>| {
            let of = |k| -> Vec<i32> {
                (0..s.len())
                    .filter(|&i| keep[i] == k)
                    .map(|i| s.build(i))
                    .collect()
            };
            (of(Kept::Row), of(Kept::Wait))
        };
        assert_eq!(
            kept(span.keep(&s, &queued, &[])),
            (vec![1, 2, 3, 9, 10, 13], vec![7]),
            "what held a slot in the span, and the wait of what waited there and started after it"
        );
        let with_graph = SpanRows {
            estimate: false,
            ..span
        };
        assert_eq!(
            kept(with_graph.keep(&s, &queued, &[])),
            (vec![1, 2, 3, 7, 9, 10, 13], vec![]),
            "where the graph sets when a step was ready, its row"
        );
        // Dispatch from the series: 8, queued after the span, was dispatched in it (a slot held
        // for it there); 7 was dispatched at the span's end, and waited in it as a step without
        // the series does; 2 was dispatched before it.
        let mut dispatched = vec![None; s.len()];
        dispatched[1] = Some(90);
        dispatched[6] = Some(2000);
        dispatched[7] = Some(1990);
        assert_eq!(
            kept(span.keep(&s, &queued, &dispatched)),
            (vec![1, 2, 3, 8, 9, 10, 13], vec![7]),
            "a step started after the span but dispatched in it, whole"
        );
    }
}
