//! The capacity ledger: every builder slot-hour of the window in exactly one bucket.
//!
//! | bucket | definition |
//! |---|---|
//! | available | slots × window length; slots from the machines file, else the peak concurrency observed on the machine (said which) |
//! | building | the part of each step's `[startTime, stopTime)` inside the window (under the Rust runner, less the step's overhead, which those times include) |
//! | overhead | `BuildSteps.overhead` of the steps that stopped inside the window: sending inputs and receiving outputs (under the C++ runner receiving includes compressing, and newer C++ runners release the builder slot once receiving starts, so this is an upper bound on the slot time it takes) |
//! | held | slot time held while nothing is recorded: waiting for the per-machine send lock and, under the C++ runner, for a local worker slot after building. The database does not record it; only the sample's ground truth (or a status series) gives it, otherwise 0 and said so |
//! | dispatch loss | idle slot time while steps this machine could build were runnable but not started (runnable: the build was queued and every estimated dependency had finished) — capacity the dispatcher left unused |
//! | idle | the rest: idle with nothing runnable for this machine |
//!
//! `building + overhead + held + dispatch loss + idle = available`, per machine, per system and in
//! total. Where the recorded work exceeds the slots (inferred slots too low, or overhead counted
//! after the slot was released) the excess is reported as `over_committed` and idle is zero.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::Steps;
use super::deps::Edge;
use super::utilization::add_interval;
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
    pub dispatch_loss_h: f64,
    pub idle_h: f64,
    /// Recorded work beyond the slots, hours (not part of the sum).
    pub over_committed_h: f64,
}

impl Row {
    /// The buckets, which add up to `available_h`.
    pub fn buckets(&self) -> [f64; 5] {
        [
            self.building_h,
            self.overhead_h,
            self.held_h,
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
        self.dispatch_loss_h += o.dispatch_loss_h;
        self.idle_h += o.idle_h;
        self.over_committed_h += o.over_committed_h;
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Ledger {
    pub since: i64,
    pub until: i64,
    /// Where the slot counts come from.
    pub slots_basis: String,
    /// Where the held bucket comes from.
    pub held_basis: String,
    pub machines: Vec<Row>,
    /// Machines grouped by their first system type.
    pub by_system: Vec<Row>,
    pub total: Row,
    pub notes: Vec<String>,
}

struct Slot {
    slots: u32,
    systems: Vec<String>,
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
    /// The estimated dependencies, for when steps became runnable.
    pub edges: &'a [Edge],
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
        edges,
        lo,
        hi,
    } = input;
    let mut notes = Vec::new();
    let span = (hi - lo).max(0);
    let res = super::resolution(span);
    let start = lo.div_euclid(res) * res;
    let nb = ((hi - start) + res - 1).div_euclid(res).max(0) as usize;

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
    for (m, systems) in &ran {
        let key = machines
            .and_then(|list| {
                list.iter()
                    .find(|x| x.uri == *m || x.host() == crate::nix::machines::host_of(m))
                    .map(|x| x.uri.clone())
            })
            .unwrap_or_else(|| m.to_string());
        slot.entry(key).or_insert_with(|| Slot {
            slots: peaks.get(*m).copied().unwrap_or(1).max(1) as u32,
            systems: systems.clone(),
        });
    }
    let key_of: HashMap<&str, String> = ran
        .keys()
        .map(|m| {
            let k = if slot.contains_key(*m) {
                m.to_string()
            } else {
                machines
                    .and_then(|list| {
                        list.iter()
                            .find(|x| x.host() == crate::nix::machines::host_of(m))
                            .map(|x| x.uri.clone())
                    })
                    .unwrap_or_else(|| m.to_string())
            };
            (*m, k)
        })
        .collect();

    // Building and overhead per machine, and building concurrency per bucket.
    // Rows and timelines exist for every machine up front, so the per-step loop only looks them
    // up (a million steps, a few dozen machines).
    let mut rows: BTreeMap<String, Row> =
        slot.keys().map(|k| (k.clone(), Row::default())).collect();
    let mut busy: HashMap<String, Vec<f64>> =
        slot.keys().map(|k| (k.clone(), vec![0.0; nb])).collect();
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
            if ds.meta.runner == crate::dataset::Runner::Rust {
                b = a.max(b - steps.overhead_ms(i).unwrap_or(0).max(0) / 1000);
            }
            let (ca, cb) = (a.max(lo), b.min(hi));
            if cb > ca {
                row.building_h += (cb - ca) as f64 / 3600.0;
                if let Some(series) = busy.get_mut(key) {
                    add_interval(series, start, res, ca, cb);
                }
            }
        }
        if let (Some(o), Some(b)) = (steps.overhead_ms(i), steps.stop(i))
            && b >= lo
            && b < hi
        {
            row.overhead_h += o.max(0) as f64 / 3_600_000.0;
        }
    }

    // Held: only the sample's ground truth knows it.
    let held_basis = match &ds.truth {
        Some(t) => {
            let held = truth_held(t, steps, lo, hi)?;
            for (m, h) in held {
                if let Some(k) = key_of.get(m.as_str()) {
                    rows.entry(k.clone()).or_default().held_h += h;
                }
            }
            "the sample's ground truth (send-lock and local-slot waits)".to_string()
        }
        None => {
            notes.push(
                "time held while waiting for the send lock or a local worker slot is not \
                 recorded in the database; it is counted in dispatch loss or idle"
                    .into(),
            );
            "not recorded in the database (0)".to_string()
        }
    };

    // Runnable-but-waiting step-time per system and bucket.
    let waiting = waiting_by_system(ds, steps, usable, edges, start, res, nb)?;

    // Allocate idle slot time: dispatch loss where runnable work for the machine's systems waited
    // (greedily, so that the same waiting step-time is not claimed by two machines), else idle.
    let mut remaining = waiting;
    let bucket_h = res as f64 / 3600.0;
    for (key, s) in &slot {
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
        // Idle per bucket from building concurrency; its share in buckets with waiting work.
        let b = busy.get(key);
        let (mut idle_sum, mut loss_sum) = (0.0, 0.0);
        for bi in 0..nb {
            let idle_b = (f64::from(s.slots) - b.map_or(0.0, |v| v[bi])).max(0.0) * bucket_h;
            idle_sum += idle_b;
            let mut claim = 0.0;
            for sys in &s.systems {
                if let Some(w) = remaining.get_mut(sys) {
                    let take = (idle_b - claim).min(w[bi] * bucket_h).max(0.0);
                    w[bi] -= take / bucket_h;
                    claim += take;
                }
            }
            loss_sum += claim;
        }
        let share = if idle_sum > 0.0 {
            loss_sum / idle_sum
        } else {
            0.0
        };
        row.dispatch_loss_h = idle_total * share;
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
        machines: rows.into_values().collect(),
        by_system: by_system.into_values().collect(),
        total,
        notes,
    })
}

/// For each system, the number of runnable-but-not-started steps per bucket (averaged).
fn waiting_by_system(
    ds: &Dataset,
    steps: &Steps,
    usable: &[bool],
    edges: &[Edge],
    start: i64,
    res: i64,
    nb: usize,
) -> Result<HashMap<String, Vec<f64>>> {
    let queued = super::quality::build_queue_times(ds)?;
    let index: HashMap<(i32, i32), usize> = (0..steps.len())
        .map(|i| ((steps.build(i), steps.stepnr(i)), i))
        .collect();
    let mut ready: Vec<Option<i64>> = (0..steps.len())
        .map(|i| queued.get(&steps.build(i)).copied())
        .collect();
    for e in edges {
        if let (Some(&s), Some(&d)) = (
            index.get(&(e.build, e.stepnr)),
            index.get(&(e.dep_build, e.dep_stepnr)),
        ) && let Some(stop) = steps.stop(d)
        {
            // The dependency's outputs are copied back after it stops building; that copy is
            // part of its overhead, so the step cannot be runnable before stop + overhead.
            let copied = stop + steps.overhead_ms(d).unwrap_or(0).max(0) / 1000;
            ready[s] = Some(ready[s].map_or(copied, |r| r.max(copied)));
        }
    }
    let mut out: HashMap<String, Vec<f64>> = HashMap::new();
    for i in 0..steps.len() {
        if !usable[i] || steps.machine(i).is_empty() {
            continue;
        }
        if let (Some(r), Some(s)) = (ready[i], steps.start(i))
            && s > r
        {
            let sys = steps.system(i);
            if !out.contains_key(sys) {
                out.insert(sys.to_string(), vec![0.0; nb]);
            }
            if let Some(series) = out.get_mut(sys) {
                add_interval(series, start, res, r, s);
            }
        }
    }
    Ok(out)
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
    let index: HashMap<(i32, i32), usize> = (0..steps.len())
        .map(|i| ((steps.build(i), steps.stepnr(i)), i))
        .collect();
    let mut out: HashMap<String, f64> = HashMap::new();
    for r in 0..t.height() {
        let (Some(bb), Some(nn)) = (b.get(r), n.get(r)) else {
            continue;
        };
        let Some(&i) = index.get(&(bb, nn)) else {
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
