//! Calibration: the same figures computed over what really happened and over a replay of the
//! observed configuration, and the error of each. Both sides go through one function over
//! per-task times, so the definitions cannot drift apart.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::{Run, Workload};

/// The figures calibration compares.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    /// Steps finished per hour, hour by hour from the origin.
    pub per_hour: Vec<f64>,
    /// Queue wait from a build being queued to its first step's build starting, seconds.
    pub wait_p50_s: f64,
    pub wait_p90_s: f64,
    pub wait_p99_s: f64,
    /// Per machine: build time plus overhead of its steps, hours.
    pub busy_h: Vec<f64>,
    /// The same per machine type: machines alike in systems, features, maxJobs and speed
    /// factor, which the dispatcher tells apart only by their order in the machines file.
    pub busy_by_type_h: Vec<f64>,
    /// The largest evaluation (most builds queued by one jobset at one instant): from queued to
    /// its last step's build finishing, hours. `None` below [`MASS_REBUILD_MIN_BUILDS`].
    pub mass_rebuild_h: Option<f64>,
    /// Builds whose steps all finished, per day.
    pub builds_per_day: f64,
}

/// An evaluation this large counts as a mass rebuild: the sample's stdenv rebuild queues
/// thousands, an ordinary nixpkgs evaluation a few hundred new builds at most.
pub const MASS_REBUILD_MIN_BUILDS: usize = 500;

/// Per-task times in one shape, for history and simulation alike.
pub struct Times<'a> {
    /// Arrivals were sped up by this factor (queue times divide by it).
    pub load: f64,
    pub build_start: &'a dyn Fn(usize) -> u64,
    pub build_stop: &'a dyn Fn(usize) -> u64,
    pub busy_ms: &'a dyn Fn(usize) -> f64,
    pub machine: &'a dyn Fn(usize) -> u16,
}

/// The figures of `times` over workload `w`'s tasks.
pub fn figures(w: &Workload, times: &Times<'_>) -> Figures {
    let n = w.tasks.len();
    let hours = (w.span_ms / 3_600_000 + 1) as usize;
    let mut per_hour = vec![0.0; hours];
    let mut first: HashMap<i32, u64> = HashMap::new();
    let mut last: HashMap<i32, u64> = HashMap::new();
    let mut busy = vec![0.0; w.machines.len()];
    for t in 0..n {
        let (s, e) = ((times.build_start)(t), (times.build_stop)(t));
        let h = ((e / 3_600_000) as usize).min(hours - 1);
        per_hour[h] += 1.0;
        let b = w.tasks[t].build;
        first.entry(b).and_modify(|v| *v = (*v).min(s)).or_insert(s);
        last.entry(b).and_modify(|v| *v = (*v).max(e)).or_insert(e);
        busy[(times.machine)(t) as usize] += (times.busy_ms)(t);
    }
    let mut waits: Vec<f64> = first
        .iter()
        .map(|(b, &s)| s.saturating_sub(queued(w.builds[b].0, times.load)) as f64 / 1000.0)
        .collect();
    waits.sort_by(f64::total_cmp);
    let quantile = |p: f64| {
        if waits.is_empty() {
            0.0
        } else {
            waits[((waits.len() - 1) as f64 * p).round() as usize]
        }
    };
    // The mass rebuild: builds grouped by (jobset, queue time).
    let mut groups: BTreeMap<(i32, u64), Vec<i32>> = BTreeMap::new();
    for (&b, &(queued, jobset)) in &w.builds {
        groups.entry((jobset, queued)).or_default().push(b);
    }
    let biggest = groups.iter().max_by_key(|(k, v)| (v.len(), Reverse(**k)));
    let mass_rebuild_h = biggest
        .filter(|(_, v)| v.len() >= MASS_REBUILD_MIN_BUILDS)
        .and_then(|((_, queued), v)| {
            let end = v.iter().filter_map(|b| last.get(b)).max()?;
            Some(end.saturating_sub(self::queued(*queued, times.load)) as f64 / 3.6e6)
        });
    let days = (w.span_ms as f64 / times.load / 86_400_000.0).max(1.0 / 24.0);
    Figures {
        per_hour,
        wait_p50_s: quantile(0.5),
        wait_p90_s: quantile(0.9),
        wait_p99_s: quantile(0.99),
        busy_by_type_h: by_type(w, &busy),
        busy_h: busy.iter().map(|ms| ms / 3.6e6).collect(),
        mass_rebuild_h,
        builds_per_day: last.len() as f64 / days,
    }
}

fn by_type(w: &Workload, busy_ms: &[f64]) -> Vec<f64> {
    let mut types: BTreeMap<String, f64> = BTreeMap::new();
    for (m, b) in w.machines.iter().zip(busy_ms) {
        *types.entry(type_key(m)).or_default() += b / 3.6e6;
    }
    types.into_values().collect()
}

/// Machines with the same key are alike to the dispatcher.
fn type_key(m: &super::FarmMachine) -> String {
    format!(
        "{:?}/{}/{}/{}/{}",
        m.systems, m.supported, m.mandatory, m.max_jobs, m.speed
    )
}

/// A queue time under arrivals sped up by `load`, as the engine computes it.
pub(super) fn queued(ms: u64, load: f64) -> u64 {
    (ms as f64 / load).round() as u64
}

/// What really happened.
pub fn observed(w: &Workload) -> Figures {
    let t = &w.tasks;
    figures(
        w,
        &Times {
            load: 1.0,
            build_start: &|i| t[i].observed.start_ms,
            build_stop: &|i| t[i].observed.stop_ms,
            busy_ms: &|i| t[i].observed.slot_ms(),
            machine: &|i| t[i].observed.machine,
        },
    )
}

/// What a run produced, measured the way the history records it. The C++ runner records build
/// time plus overhead (sending, and for a success receiving, compressing and uploading; waits
/// are not recorded); the Rust runner the span from taking the step to its end, so a Rust row
/// reads the replay's dispatch and end as its start and stop.
pub fn simulated(w: &Workload, run: &Run, cfg: &super::Config) -> Figures {
    let t = &w.tasks;
    let busy = |i: usize| {
        if t[i].observed.rust {
            return run.end_ms[i].saturating_sub(run.dispatch_ms[i]) as f64;
        }
        let build = (run.build_stop_ms[i] - run.build_start_ms[i]) as f64;
        let after = if t[i].success {
            let bytes = t[i].out_bytes * cfg.codec.ratio;
            t[i].receive_ms
                + cfg.codec.compress_ms(t[i].out_bytes)
                + bytes / super::workload::UPLOAD_BYTES_PER_MS
        } else {
            0.0
        };
        build + t[i].send_ms + after
    };
    figures(
        w,
        &Times {
            load: cfg.load,
            build_start: &|i| {
                if t[i].observed.rust {
                    run.dispatch_ms[i]
                } else {
                    run.build_start_ms[i]
                }
            },
            build_stop: &|i| {
                if t[i].observed.rust {
                    run.end_ms[i]
                } else {
                    run.build_stop_ms[i]
                }
            },
            busy_ms: &busy,
            machine: &|i| run.machine[i],
        },
    )
}

/// One line of the calibration table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub metric: String,
    pub unit: String,
    pub observed: f64,
    pub modelled: f64,
    /// |modelled − observed| / observed, in per cent; for series, summed over the series.
    pub error_pct: f64,
}

/// The calibration table: observed against modelled.
pub fn compare(obs: &Figures, sim: &Figures) -> Vec<Row> {
    let rel = relative_pct;
    // Series are compared by their weighted mean absolute percentage error.
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    // Throughput per hour is compared over 6-hour blocks: single hours are dominated by when
    // within the hour the last seconds of a step fall, which no replay reproduces.
    let blocks = |v: &[f64]| {
        v.chunks(6)
            .map(|c| c.iter().sum::<f64>() / 6.0)
            .collect::<Vec<_>>()
    };
    let (ob, mb) = (blocks(&obs.per_hour), blocks(&sim.per_hour));
    let mut rows = vec![
        Row {
            metric: "throughput per hour (6-hour blocks)".into(),
            unit: "steps/h".into(),
            observed: mean(&obs.per_hour),
            modelled: mean(&sim.per_hour),
            error_pct: wape(&ob, &mb),
        },
        Row {
            metric: "queue wait p50".into(),
            unit: "s".into(),
            observed: obs.wait_p50_s,
            modelled: sim.wait_p50_s,
            error_pct: rel(obs.wait_p50_s, sim.wait_p50_s),
        },
        Row {
            metric: "queue wait p90".into(),
            unit: "s".into(),
            observed: obs.wait_p90_s,
            modelled: sim.wait_p90_s,
            error_pct: rel(obs.wait_p90_s, sim.wait_p90_s),
        },
        Row {
            metric: "busy time per machine".into(),
            unit: "h (total)".into(),
            observed: obs.busy_h.iter().sum(),
            modelled: sim.busy_h.iter().sum(),
            error_pct: wape(&obs.busy_h, &sim.busy_h),
        },
        Row {
            metric: "busy time per machine type".into(),
            unit: "h (total)".into(),
            observed: obs.busy_by_type_h.iter().sum(),
            modelled: sim.busy_by_type_h.iter().sum(),
            error_pct: wape(&obs.busy_by_type_h, &sim.busy_by_type_h),
        },
    ];
    if let (Some(o), Some(m)) = (obs.mass_rebuild_h, sim.mass_rebuild_h) {
        rows.push(Row {
            metric: "mass rebuild makespan".into(),
            unit: "h".into(),
            observed: o,
            modelled: m,
            error_pct: rel(o, m),
        });
    }
    rows
}

/// A bucket of the capacity ledger that the history measured (docs/hydra.md §5): what the
/// replay's own bucket is held against.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub bucket: Bucket,
    /// Slot-hours over the history's window ([`Bucket::Runnable`]: the mean over the hours).
    pub slot_h: f64,
    /// [`Bucket::Runnable`]: the mean number of runnable steps in each whole hour, as
    /// `(hour's start, unix seconds, mean)`; empty for the other buckets.
    pub per_hour: Vec<(i64, f64)>,
    /// Where the figure comes from ("the runner's series", "the sample's ground truth").
    pub source: String,
}

/// The ledger buckets calibration compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// Slots held while waiting for the send lock or a local worker slot.
    Held,
    /// Slots idle while a step they could build was ready.
    DispatchLoss,
    /// Steps on the runner's runnable list, hour by hour.
    Runnable,
}

/// Calibration rows for the measured buckets against the replay's (`replay`, the exact replay
/// of the observed configuration over the same span). A bucket the history only bounds is not
/// measured and has no row: an interval is no figure to calibrate against.
///
/// Runnable steps are compared hour by hour over the hours both cover (the weighted mean
/// absolute percentage error, as throughput is); `origin_ms` is the replay's origin, unix
/// milliseconds, and `runnable_ms_by_hour` its [`super::engine::Stages::runnable_ms_by_hour`]
/// (wall-clock hours from the origin's).
pub fn bucket_rows(
    measured: &[Measured],
    replay: &super::scenario::Buckets,
    origin_ms: i64,
    runnable_ms_by_hour: &[f64],
) -> Vec<Row> {
    measured
        .iter()
        .filter_map(|m| {
            let (name, unit, observed, modelled, error_pct) = match m.bucket {
                Bucket::Held => (
                    "held idle",
                    "slot-h",
                    m.slot_h,
                    replay.held_h,
                    relative_pct(m.slot_h, replay.held_h),
                ),
                Bucket::DispatchLoss => (
                    "dispatch loss",
                    "slot-h",
                    m.slot_h,
                    replay.dispatch_loss_h,
                    relative_pct(m.slot_h, replay.dispatch_loss_h),
                ),
                Bucket::Runnable => {
                    // The replay counts wall-clock hours from the one its origin falls in.
                    let first = origin_ms.div_euclid(3_600_000) * 3_600_000;
                    let (o, s): (Vec<f64>, Vec<f64>) = m
                        .per_hour
                        .iter()
                        .filter_map(|&(start, mean)| {
                            let h = (start * 1000 - first).div_euclid(3_600_000);
                            let r = runnable_ms_by_hour.get(usize::try_from(h).ok()?)?;
                            mean.is_finite().then_some((mean, r / 3.6e6))
                        })
                        .unzip();
                    if o.is_empty() {
                        return None;
                    }
                    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
                    (
                        "runnable steps, hour by hour",
                        "steps (mean)",
                        mean(&o),
                        mean(&s),
                        wape(&o, &s),
                    )
                }
            };
            Some(Row {
                metric: format!("{name} (observed: {})", m.source),
                unit: unit.into(),
                observed,
                modelled,
                error_pct,
            })
        })
        .collect()
}

/// The sum of absolute differences over the sum of observed values, in per cent (weighted mean
/// absolute percentage error), so quiet hours do not dominate.
fn wape(o: &[f64], m: &[f64]) -> f64 {
    let tot: f64 = o.iter().sum();
    let diff: f64 = o.iter().zip(m).map(|(a, b)| (a - b).abs()).sum();
    if tot > 0.0 { diff / tot * 100.0 } else { 0.0 }
}

/// |m − o| / |o| in per cent; 0 when both are 0 and 100 when only the observed is.
fn relative_pct(o: f64, m: f64) -> f64 {
    if o.abs() < 1e-9 {
        if m.abs() < 1e-9 { 0.0 } else { 100.0 }
    } else {
        (m - o).abs() / o.abs() * 100.0
    }
}

/// What the status JSON's per-machine step time means, and how the replay is measured alike.
pub const STATUS_DEFINITION: &str = "per machine, totalStepTime / nrStepsDone of the queue \
    runner's status JSON (wall time from a step getting the machine to its end: send lock, \
    sending, building, local worker slot, receiving and compressing, uploading), against the \
    mean of the same span over the replay's steps on that machine; the status counts steps \
    since the runner started, so the averages are compared, not the totals";

/// One machine of [`StatusCheck`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MachineStepTime {
    pub machine: String,
    pub status_steps: f64,
    pub status_avg_s: f64,
    pub modelled_steps: usize,
    pub modelled_avg_s: f64,
    pub error_pct: f64,
}

/// The replay's step times per machine against a status JSON's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusCheck {
    pub definition: &'static str,
    pub origin: String,
    pub machines: Vec<MachineStepTime>,
    /// Machines of the status JSON the workload does not have, or that report no steps.
    pub unmatched: Vec<String>,
    /// The row this adds to the calibration table.
    pub row: Row,
}

/// A machine name with its scheme and user dropped (`ssh://nix@b1` → `b1`): the C++ runner
/// names machines by store URI, the Rust runner by hostname, and a machines file may use
/// either.
fn host(name: &str) -> &str {
    let rest = name.split_once("://").map_or(name, |(_, r)| r);
    rest.rsplit_once('@').map_or(rest, |(_, h)| h)
}

/// Compares the per-machine average step time of `status` with the replay `run` of `w`.
/// `None` when no machine of the status JSON is in the workload with steps on both sides.
pub fn against_status(
    w: &Workload,
    run: &Run,
    status: &crate::status::Status,
    origin: &str,
) -> Option<StatusCheck> {
    let n = w.machines.len();
    let (mut steps, mut total_ms) = (vec![0usize; n], vec![0.0f64; n]);
    for t in 0..w.tasks.len() {
        let m = run.machine[t] as usize;
        steps[m] += 1;
        total_ms[m] += run.end_ms[t].saturating_sub(run.dispatch_ms[t]) as f64;
    }
    let mut machines = Vec::new();
    let mut matched = Vec::new();
    let mut unmatched = Vec::new();
    for sm in &status.machines {
        let avg = match (sm.total_step_time_s, sm.steps_done, sm.avg_step_time_s) {
            (Some(t), Some(d), _) if d > 0.0 => Some((d, t / d)),
            (_, Some(d), Some(a)) if d > 0.0 => Some((d, a)),
            _ => None,
        };
        let found = w
            .machines
            .iter()
            .position(|m| m.name == sm.name || host(&m.name) == host(&sm.name));
        match (avg, found) {
            (Some((d, a)), Some(m)) if steps[m] > 0 => {
                let modelled = total_ms[m] / steps[m] as f64 / 1000.0;
                matched.push(m);
                machines.push(MachineStepTime {
                    machine: sm.name.clone(),
                    status_steps: d,
                    status_avg_s: a,
                    modelled_steps: steps[m],
                    modelled_avg_s: modelled,
                    error_pct: if a > 0.0 {
                        (modelled - a).abs() / a * 100.0
                    } else {
                        0.0
                    },
                });
            }
            _ => unmatched.push(sm.name.clone()),
        }
    }
    if machines.is_empty() {
        return None;
    }
    // The row compares machine types (alike in systems, features, maxJobs and speed), as the
    // busy-time row does: the dispatcher tells such machines apart only by their order, so
    // which of them a step lands on is not something a replay can reproduce. Each side's mean
    // is its total over its step count; the error is weighted by the status JSON's steps.
    let mut types: BTreeMap<String, [f64; 4]> = BTreeMap::new();
    for (mt, &m) in machines.iter().zip(&matched) {
        let e = types.entry(type_key(&w.machines[m])).or_default();
        e[0] += mt.status_steps;
        e[1] += mt.status_steps * mt.status_avg_s;
        e[2] += steps[m] as f64;
        e[3] += total_ms[m] / 1000.0;
    }
    let weight: f64 = types.values().map(|t| t[0]).sum();
    let (mut observed, mut modelled, mut error) = (0.0, 0.0, 0.0);
    for [n, total, mn, mtotal] in types.values() {
        let (o, m) = (total / n, mtotal / mn.max(1.0));
        observed += o * n / weight;
        modelled += m * n / weight;
        if o > 0.0 {
            error += (m - o).abs() / o * 100.0 * n / weight;
        }
    }
    let row = Row {
        metric: "step time per machine type (status JSON)".into(),
        unit: "s (mean)".into(),
        observed,
        modelled,
        error_pct: error,
    };
    Some(StatusCheck {
        definition: STATUS_DEFINITION,
        origin: origin.to_string(),
        machines,
        unmatched,
        row,
    })
}

#[cfg(test)]
mod tests {
    use super::host;

    #[test]
    fn machines_match_by_host_whatever_the_runner_calls_them() {
        for name in ["ssh://nix@b1", "ssh-ng://b1", "b1", "nix@b1"] {
            assert_eq!(host(name), "b1", "{name}");
        }
        assert_ne!(host("ssh://b10"), host("ssh://b1"));
    }
}
