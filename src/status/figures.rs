//! Derived figures of one status document: pure functions of a [`Status`] (and, optionally, the
//! machines file), so they are tested without a server.

use serde::Serialize;

use super::document::{MachineStatus, QueueStats, RunnerKind, Status};
use crate::nix::machines::{BuildMachine, host_of};

/// Everything `status SOURCE` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    pub runner: RunnerKind,
    pub state: Option<String>,
    pub time: Option<f64>,
    pub uptime_s: Option<f64>,
    pub queue: Queue,
    pub machines: Vec<MachineFigures>,
    pub machine_types: Vec<TypeFigures>,
    /// Rust runner: each queue's per-system figures as reported (`queueStats`, or
    /// `mainQueueStats` and `ofborgQueueStats`).
    pub queues: Vec<QueueStats>,
    pub stages: Stages,
    /// Rust runner: where the listed machines' slot time went, summed over them.
    pub phases: Option<Phases>,
    /// Rust runner: the same from the runner's own totals (`queueRunner.totalStep…TimeMs`).
    pub runner_phases: Option<Phases>,
    pub store: Option<StoreFigures>,
    pub s3: Vec<S3Figures>,
    /// What makes a reported figure meaningless or partial, one line each.
    pub notes: Vec<Note>,
}

/// Where the slot time of finished steps went under the Rust runner. A step holds its slot
/// from dispatch to the builder's report on the runner's clock (`totalStepTimeMs`,
/// `state/build.rs` `RemoteBuild::get_total_step_time_ms`, start set in
/// `realise_drv_on_valid_machine`); within it the builder reports three phases
/// (`BuildTimings`: importing the inputs, building, uploading the outputs). The rest
/// (`other`) is sending the step, the builder's own waits and the runner's handling of the
/// result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Phases {
    pub steps: Option<f64>,
    /// The slot time: the runner's total, or the phases' sum where that is larger.
    pub slot_s: f64,
    pub import_s: f64,
    pub build_s: f64,
    pub upload_s: f64,
    pub other_s: f64,
    /// Each phase's share of the slot time.
    pub import_share: f64,
    pub build_share: f64,
    pub upload_share: f64,
    pub other_share: f64,
    /// `totals`, or `averages` (× steps done) when the totals are not reported.
    pub basis: &'static str,
}

/// One line on a figure the runner reports but which does not mean what its name says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Note {
    /// The field (or fields) it is about.
    pub field: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Queue {
    pub queued_builds: Option<f64>,
    pub unfinished_steps: Option<f64>,
    pub runnable_steps: Option<f64>,
    pub unsupported_steps: Option<f64>,
    pub steps_done: Option<f64>,
    pub builds_done: Option<f64>,
    pub retries: Option<f64>,
    /// Over all machines' cumulative step time: 1 − build time / step time.
    pub not_building_share: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MachineFigures {
    pub name: String,
    pub systems: Vec<String>,
    pub steps_done: Option<f64>,
    /// Share of the slot time of its finished steps not spent building:
    /// 1 − totalStepBuildTime / totalStepTime (or the same ratio of the averages).
    pub not_building_share: Option<f64>,
    /// `totals`, `averages`, or `none` when the runner did not report them (no finished steps).
    pub not_building_basis: &'static str,
    /// Cumulative slot hours of finished steps, and the part of them not building.
    pub slot_hours: Option<f64>,
    pub not_building_hours: Option<f64>,
    pub current_jobs: Option<f64>,
    pub max_jobs: Option<f64>,
    /// `status` (Rust runner), `machines file`, or `unknown`.
    pub max_jobs_from: &'static str,
    pub free_slots: Option<f64>,
    /// `ok`, `disabled`, `disabled until …`, `N consecutive failures`, `not in status`.
    pub state: String,
    pub consecutive_failures: Option<f64>,
    pub last_failure: Option<f64>,
    pub idle_since: Option<f64>,
    /// Rust runner: the import/build/upload split of its finished steps' slot time.
    pub phases: Option<Phases>,
    /// Rust runner: whether it would take a step now (`hasCapacity`), and which of the
    /// runner's limits its last ping exceeds (`state/machine.rs` `Machine::has_capacity`).
    pub has_capacity: Option<bool>,
    pub capacity_limits: Vec<String>,
    pub load1: Option<f64>,
    pub cpu_some_avg10: Option<f64>,
    pub mem_full_avg10: Option<f64>,
    pub io_full_avg10: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TypeFigures {
    pub name: String,
    pub runnable: Option<f64>,
    pub running: Option<f64>,
    /// Rust runner: runnable steps the dispatcher found no builder ready for.
    pub waiting: Option<f64>,
    /// Rust runner: runnable steps waiting out a retry delay.
    pub disabled: Option<f64>,
    pub wait_time_s: Option<f64>,
    /// What `wait_time_s` is (the two runners' figures differ).
    pub wait_time_meaning: &'static str,
    /// Summed wait over the runnable steps, per step (C++ runner; the Rust runner's figure is
    /// a counter, which divides into nothing).
    pub wait_per_runnable_s: Option<f64>,
    /// Rust runner, from its queue listing (`/status/queues`): the steps waiting for a
    /// builder now, and how long they have been runnable.
    pub waiting_now: Option<f64>,
    pub oldest_wait_s: Option<f64>,
    pub mean_wait_s: Option<f64>,
    /// Machines that can build this type (system, features) and are not disabled.
    pub machines: usize,
    /// Their free job slots, when every one's maxJobs is known.
    pub free_slots: Option<f64>,
    /// min(runnable, free slots): slots idle although steps of this type were waiting — the
    /// dispatch loss at this instant.
    pub idle_while_runnable: Option<f64>,
}

/// Steps in each stage right now, and their share of the active steps.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stages {
    pub active: Option<f64>,
    pub building: Option<f64>,
    pub copying_to: Option<f64>,
    pub copying_from: Option<f64>,
    /// C++ runner: waiting for a local worker slot to copy and compress outputs (busy = 35).
    pub waiting_for_local_slot: Option<f64>,
    /// `nrStepsWaiting` as reported (the C++ runner sets it only for an instant).
    pub waiting: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoreFigures {
    pub nar_write: Option<f64>,
    pub nar_write_bytes: Option<f64>,
    pub nar_write_compressed_bytes: Option<f64>,
    /// 1 − compressed / uncompressed, from the byte counters when present.
    pub compression_savings: Option<f64>,
    /// MiB of NAR per second spent compressing, from the counters when present.
    pub compression_speed_mib_s: Option<f64>,
    pub compression_time_s: Option<f64>,
    pub nar_read: Option<f64>,
    pub nar_read_bytes: Option<f64>,
    pub nar_info_read: Option<f64>,
    pub nar_info_missing: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct S3Figures {
    pub bucket: Option<String>,
    pub put: Option<f64>,
    pub put_bytes: Option<f64>,
    /// MiB/s while uploading, from the counters when present.
    pub put_speed_mib_s: Option<f64>,
    pub get_bytes: Option<f64>,
    /// The runner's own estimate (request and transfer prices, not storage).
    pub cost_dollar_approx: Option<f64>,
}

const MIB: f64 = 1024.0 * 1024.0;

fn ratio(num: Option<f64>, den: Option<f64>) -> Option<f64> {
    match (num, den) {
        (Some(n), Some(d)) if d > 0.0 => Some(n / d),
        _ => None,
    }
}

/// 1 − build/total, from the totals when both are there, else from the averages (the same
/// ratio: both are totals divided by the steps done, rounded by the runner).
fn not_building(m: &MachineStatus) -> (Option<f64>, &'static str) {
    if let Some(r) = ratio(m.total_step_build_time_s, m.total_step_time_s) {
        return (Some(1.0 - r), "totals");
    }
    if let Some(r) = ratio(m.avg_step_build_time_s, m.avg_step_time_s) {
        return (Some(1.0 - r), "averages");
    }
    (None, "none")
}

/// The machines-file entry for a status machine: the same URI, else the same host.
fn file_entry<'a>(name: &str, file: &'a [BuildMachine]) -> Option<&'a BuildMachine> {
    file.iter()
        .find(|m| m.uri == name)
        .or_else(|| file.iter().find(|m| m.host() == host_of(name)))
}

fn state_of(m: &MachineStatus, now: Option<f64>) -> String {
    let failures = m.consecutive_failures.unwrap_or(0.0);
    if m.enabled == Some(false) {
        return "disabled".into();
    }
    if let (Some(until), Some(now)) = (m.disabled_until, now)
        && until > now
    {
        return format!(
            "disabled until {} after {failures} consecutive failures",
            crate::window::fmt_time(until as i64)
        );
    }
    if failures > 0.0 {
        return format!("{failures} consecutive failures");
    }
    "ok".into()
}

/// Whether a machine can take a step of `machine_type` (`system` or `system:f1,f2`): it builds
/// the system, supports every required feature, and every feature it demands is required.
pub fn supports(m: &MachineStatus, machine_type: &str) -> bool {
    crate::dispatch::machine::supports_type(
        &m.systems,
        &m.supported_features,
        &m.mandatory_features,
        machine_type,
    )
}

/// Fills what the status lacks (maxJobs above all, under the C++ runner) from the machines
/// file, and adds the file's machines the runner does not list. Returns where maxJobs came from.
pub fn merge_machines(
    status: &[MachineStatus],
    file: Option<&[BuildMachine]>,
) -> Vec<(MachineStatus, &'static str, bool)> {
    let mut out: Vec<(MachineStatus, &'static str, bool)> = status
        .iter()
        .map(|m| {
            let mut m = m.clone();
            let mut from = if m.max_jobs.is_some() {
                "status"
            } else {
                "unknown"
            };
            if let Some(e) = file.and_then(|f| file_entry(&m.name, f)) {
                if m.max_jobs.is_none() {
                    m.max_jobs = Some(f64::from(e.max_jobs));
                    from = "machines file";
                }
                if m.systems.is_empty() {
                    m.systems = e.systems.clone();
                }
                if m.supported_features.is_empty() && m.mandatory_features.is_empty() {
                    m.supported_features = e.supported_features.clone();
                    m.mandatory_features = e.mandatory_features.clone();
                }
                if m.speed_factor.is_none() {
                    m.speed_factor = Some(e.speed_factor);
                }
            }
            (m, from, true)
        })
        .collect();
    for e in file.unwrap_or(&[]) {
        let listed = status
            .iter()
            .any(|m| m.name == e.uri || host_of(&m.name) == e.host());
        if !listed {
            out.push((
                MachineStatus {
                    name: e.uri.clone(),
                    enabled: None,
                    systems: e.systems.clone(),
                    supported_features: e.supported_features.clone(),
                    mandatory_features: e.mandatory_features.clone(),
                    max_jobs: Some(f64::from(e.max_jobs)),
                    speed_factor: Some(e.speed_factor),
                    ..MachineStatus::default()
                },
                "machines file",
                false,
            ));
        }
    }
    out
}

/// A machine whose slots the dispatcher may use now.
fn available(m: &MachineStatus, now: Option<f64>) -> bool {
    m.enabled != Some(false) && !matches!((m.disabled_until, now), (Some(u), Some(n)) if u > n)
}

fn free_slots(m: &MachineStatus) -> Option<f64> {
    Some((m.max_jobs? - m.current_jobs.unwrap_or(0.0)).max(0.0))
}

/// Free slots per machine type, for `types` given by name (used by the series too).
pub fn type_slots(
    machines: &[MachineStatus],
    machine_type: &str,
    now: Option<f64>,
) -> (usize, Option<f64>) {
    let able: Vec<&MachineStatus> = machines
        .iter()
        .filter(|m| available(m, now) && supports(m, machine_type))
        .collect();
    // Folded from +0.0: an empty f64 sum is −0.0, which would print as "-0".
    let free = able
        .iter()
        .try_fold(0.0, |acc, m| Some(acc + free_slots(m)?));
    (able.len(), free)
}

/// The derived figures of one document.
pub fn derive(status: &Status, file: Option<&[BuildMachine]>) -> Figures {
    let merged = merge_machines(&status.machines, file);
    let now = status.time;
    let machines: Vec<MachineFigures> = merged
        .iter()
        .map(|(m, from, listed)| {
            let (share, basis) = not_building(m);
            let slot_hours = m
                .total_step_time_s
                .or_else(|| Some(m.avg_step_time_s? * m.steps_done?))
                .map(|s| s / 3600.0);
            MachineFigures {
                name: m.name.clone(),
                systems: m.systems.clone(),
                steps_done: m.steps_done,
                not_building_share: share,
                not_building_basis: basis,
                slot_hours,
                not_building_hours: slot_hours.zip(share).map(|(h, s)| h * s),
                current_jobs: m.current_jobs,
                max_jobs: m.max_jobs,
                max_jobs_from: from,
                free_slots: if available(m, now) {
                    free_slots(m)
                } else {
                    Some(0.0).filter(|_| m.max_jobs.is_some())
                },
                state: if *listed {
                    state_of(m, now)
                } else {
                    "in machines file, not in status".into()
                },
                consecutive_failures: m.consecutive_failures,
                last_failure: m.last_failure.filter(|t| *t > 0.0),
                idle_since: m.idle_since.filter(|t| *t > 0.0),
                phases: machine_phases(m),
                has_capacity: m.has_capacity,
                capacity_limits: capacity_limits(m),
                load1: m.load1,
                cpu_some_avg10: m.cpu_some_avg10,
                mem_full_avg10: m.mem_full_avg10,
                io_full_avg10: m.io_full_avg10,
            }
        })
        .collect();

    let all: Vec<MachineStatus> = merged.into_iter().map(|(m, _, _)| m).collect();
    let rust = status.runner == RunnerKind::Rust;
    let waits = super::queues::by_system(&status.waits);
    let machine_types = status
        .machine_types
        .iter()
        .map(|t| {
            let (n, free) = type_slots(&all, &t.name, now);
            let w = waits.get(t.name.as_str());
            TypeFigures {
                name: t.name.clone(),
                runnable: t.runnable,
                running: t.running,
                waiting: t.waiting,
                disabled: t.disabled,
                wait_time_s: t.wait_time_s,
                wait_time_meaning: if rust {
                    "counter since the runner started: each step's delay from runnable to \
                     entering the queue, added once"
                } else {
                    "summed over the runnable steps"
                },
                wait_per_runnable_s: if rust {
                    None
                } else {
                    ratio(t.wait_time_s, t.runnable)
                },
                waiting_now: w.map(|w| w.waiting),
                oldest_wait_s: w.and_then(|w| w.oldest_wait_s),
                mean_wait_s: w.and_then(|w| w.mean_wait_s),
                machines: n,
                free_slots: free,
                idle_while_runnable: free.zip(t.runnable).map(|(f, r)| f.min(r)),
            }
        })
        .collect();

    let store = status.store.as_ref().map(|s| StoreFigures {
        nar_write: s.nar_write,
        nar_write_bytes: s.nar_write_bytes,
        nar_write_compressed_bytes: s.nar_write_compressed_bytes,
        compression_savings: ratio(s.nar_write_compressed_bytes, s.nar_write_bytes)
            .map(|r| 1.0 - r)
            .or(s.nar_compression_savings),
        compression_speed_mib_s: ratio(s.nar_write_bytes, s.nar_write_compression_time_ms)
            .map(|r| r * 1000.0 / MIB)
            .or(s.nar_compression_speed_mib_s),
        compression_time_s: s.nar_write_compression_time_ms.map(|v| v / 1000.0),
        nar_read: s.nar_read,
        nar_read_bytes: s.nar_read_bytes,
        nar_info_read: s.nar_info_read,
        nar_info_missing: s.nar_info_missing,
    });
    let s3 = status
        .s3
        .iter()
        .map(|s| S3Figures {
            bucket: s.bucket.clone(),
            put: s.put,
            put_bytes: s.put_bytes,
            put_speed_mib_s: ratio(s.put_bytes, s.put_time_ms)
                .map(|r| r * 1000.0 / MIB)
                .or(s.put_speed_mib_s),
            get_bytes: s.get_bytes,
            cost_dollar_approx: s.cost_dollar_approx,
        })
        .collect();

    // Over all machines, from their step and build times (totals, else averages × steps) when
    // every machine with finished steps has them; the runner's own totals otherwise.
    let times = |m: &MachineStatus| -> Option<(f64, f64)> {
        let steps = m.steps_done;
        let total = m
            .total_step_time_s
            .or_else(|| Some(m.avg_step_time_s? * steps?))?;
        let build = m
            .total_step_build_time_s
            .or_else(|| Some(m.avg_step_build_time_s? * steps?))?;
        Some((build, total))
    };
    let sums = status
        .machines
        .iter()
        .filter(|m| m.steps_done.unwrap_or(0.0) > 0.0)
        .map(times)
        .collect::<Option<Vec<_>>>()
        .filter(|v| !v.is_empty())
        .map(|v| v.iter().fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1)));
    let overall = sums
        .and_then(|(b, t)| ratio(Some(b), Some(t)))
        .or_else(|| ratio(status.total_step_build_time_s, status.total_step_time_s))
        .map(|r| 1.0 - r);

    let listed: Vec<&Phases> = machines.iter().filter_map(|m| m.phases.as_ref()).collect();
    let phases = sum_phases(&listed);
    let runner_phases = split(
        status.total_step_time_s,
        [
            status.total_step_import_time_s,
            status.total_step_build_time_s,
            status.total_step_upload_time_s,
        ],
        status.steps_done,
        "totals",
    );
    let notes = notes(status, phases.as_ref(), runner_phases.as_ref());

    Figures {
        runner: status.runner,
        state: status.state.clone(),
        time: status.time,
        uptime_s: status.uptime_s,
        queue: Queue {
            queued_builds: status.queued_builds,
            unfinished_steps: status.unfinished_steps,
            runnable_steps: status.runnable_steps,
            unsupported_steps: status.unsupported_steps,
            steps_done: status.steps_done,
            builds_done: status.builds_done,
            retries: status.retries,
            not_building_share: overall,
        },
        machines,
        machine_types,
        queues: status.queues.clone(),
        stages: Stages {
            active: status.active_steps,
            building: status.steps_building,
            copying_to: status.steps_copying_to,
            copying_from: status.steps_copying_from,
            waiting_for_local_slot: status.steps_waiting_for_local_slot,
            waiting: status.steps_waiting,
        },
        phases,
        runner_phases,
        store,
        s3,
        notes,
    }
}

/// A split of `slot` seconds into import, build and upload (in that order) and the rest;
/// `None` unless all four are known and there is slot time. Phases summing past the slot
/// (the builder's clock against the runner's, or rounded averages) widen the slot to them.
fn split(
    slot: Option<f64>,
    [import, build, upload]: [Option<f64>; 3],
    steps: Option<f64>,
    basis: &'static str,
) -> Option<Phases> {
    let (total, import, build, upload) = (slot?, import?, build?, upload?);
    let parts = import + build + upload;
    let slot = total.max(parts);
    if slot <= 0.0 {
        return None;
    }
    Some(Phases {
        steps,
        slot_s: slot,
        import_s: import,
        build_s: build,
        upload_s: upload,
        other_s: slot - parts,
        import_share: import / slot,
        build_share: build / slot,
        upload_share: upload / slot,
        other_share: (slot - parts) / slot,
        basis,
    })
}

/// A machine's split, from its totals, else from its averages × steps done (the runner's
/// averages are the totals divided by the steps, in whole milliseconds).
fn machine_phases(m: &MachineStatus) -> Option<Phases> {
    split(
        m.total_step_time_s,
        [
            m.total_step_import_time_s,
            m.total_step_build_time_s,
            m.total_step_upload_time_s,
        ],
        m.steps_done,
        "totals",
    )
    .or_else(|| {
        let n = m.steps_done?;
        let x = |a: Option<f64>| a.map(|v| v * n);
        split(
            x(m.avg_step_time_s),
            [
                x(m.avg_step_import_time_s),
                x(m.avg_step_build_time_s),
                x(m.avg_step_upload_time_s),
            ],
            Some(n),
            "averages",
        )
    })
}

/// The machines' splits summed.
fn sum_phases(ps: &[&Phases]) -> Option<Phases> {
    if ps.is_empty() {
        return None;
    }
    let sum = |f: fn(&Phases) -> f64| ps.iter().map(|p| f(p)).sum::<f64>();
    let steps = ps.iter().map(|p| p.steps).sum::<Option<f64>>();
    let basis = if ps.iter().all(|p| p.basis == "totals") {
        "totals"
    } else {
        "averages"
    };
    split(
        Some(sum(|p| p.slot_s)),
        [
            Some(sum(|p| p.import_s)),
            Some(sum(|p| p.build_s)),
            Some(sum(|p| p.upload_s)),
        ],
        steps,
        basis,
    )
}

/// The runner's limits a machine's last report exceeds, as `state/machine.rs`
/// `Machine::has_capacity` and `has_dynamic_capacity` test them (14332fbf): free space of the
/// build directory and the store below their thresholds; maxJobs reached (a limit under the
/// `Static` and `DynamicWithMaxJobLimit` machine-free functions); and, when the builder reports
/// CPU pressure, CPU (some), memory (full) and I/O (full) pressure above theirs, else the load
/// above its threshold (under the two dynamic functions).
fn capacity_limits(m: &MachineStatus) -> Vec<String> {
    let mut out = Vec::new();
    for (what, free, min) in [
        (
            "build dir",
            m.build_dir_free_percent,
            m.build_dir_avail_threshold,
        ),
        ("store", m.store_free_percent, m.store_avail_threshold),
    ] {
        if let (Some(f), Some(t)) = (free, min)
            && f < t
        {
            out.push(format!("{what} {f:.1} % free < {t} %"));
        }
    }
    if let (Some(c), Some(j)) = (m.current_jobs, m.max_jobs)
        && c >= j
    {
        out.push(format!("maxJobs reached ({c} of {j})"));
    }
    let over = |what: &str, v: Option<f64>, t: Option<f64>| match (v, t) {
        (Some(v), Some(t)) if v > t => Some(format!("{what} {v:.1} > {t}")),
        _ => None,
    };
    if m.cpu_some_avg10.is_some() {
        out.extend(over("CPU pressure", m.cpu_some_avg10, m.cpu_psi_threshold));
        out.extend(over(
            "memory pressure",
            m.mem_full_avg10,
            m.mem_psi_threshold,
        ));
        out.extend(over("I/O pressure", m.io_full_avg10, m.io_psi_threshold));
    } else {
        out.extend(over("load", m.load1, m.load1_threshold));
    }
    out
}

/// Share of a whole above which two sums that should agree are said to differ: the runner's
/// totals and its machines' are the same counters, so any real gap is a builder that left,
/// while 1 % absorbs the rounding of a document read between two updates.
const DIFFERS: f64 = 0.01;

/// The lines on what a figure of this document does not mean (docs/hydra.md §5; each from
/// the upstream code named, NixOS/hydra `subprojects/hydra-queue-runner/src/`, 14332fbf).
fn notes(status: &Status, phases: Option<&Phases>, runner: Option<&Phases>) -> Vec<Note> {
    let mut out = Vec::new();
    let mut note = |field: &str, text: String| {
        out.push(Note {
            field: field.to_string(),
            text,
        })
    };
    if status.runner != RunnerKind::Rust {
        return out;
    }
    let field = status.queue_stats_field.as_deref().unwrap_or("queueStats");
    if !status.queues.is_empty() {
        note(
            &format!("{field}.*.avgRunnableTime"),
            format!(
                "never written by the runner (state/queue.rs BuildQueue), always 0: not shown; {}",
                if status.waits.is_empty() {
                    "the waits now are in /status/queues, read when the URL is the runner's own \
                     /status"
                } else {
                    "the waits now are from /status/queues"
                }
            ),
        );
        note(
            &format!("{field}.*.waitTimeMs"),
            "a counter since the runner started: each step adds its delay from runnable to \
             entering the queue, once (BuildQueue::insert_new_jobs); not the wait of the steps \
             queued now"
                .into(),
        );
        note(
            &format!("{field}.*.totalRunnable"),
            "the queue's length, its steps running on a builder included (activeRunnable): \
             runnable here is totalRunnable − activeRunnable"
                .into(),
        );
        let per_system: Option<f64> = status.queues.iter().map(|q| q.nr_runnable_waiting).sum();
        note(
            &format!("{field}.*.nrRunnableWaiting"),
            format!(
                "partial: stored after each step the dispatcher tries on a builder \
                 (Queues::process), so the steps counted after the capacity ran out or after \
                 the last step tried are dropped, a queue none of whose steps is tried keeps its \
                 old figures, and a system with no free builder gets its whole queue, running \
                 steps included{}",
                match (per_system, status.steps_waiting) {
                    (Some(p), Some(w)) if p != w =>
                        format!("; summed {p} against the runner's nrStepsWaiting {w}"),
                    _ => String::new(),
                }
            ),
        );
    }
    let listed = status.machines.len() as f64;
    if let Some(total) = status.machines_total
        && total > listed
    {
        note(
            "machines",
            format!(
                "builders connected (machinesTotal): {total}, listed: {listed}; the map is \
                 keyed by hostname (server/http.rs), so builders sharing one hide each other"
            ),
        );
    }
    if status
        .machines
        .iter()
        .any(|m| m.disabled_until == Some(0.0))
    {
        note(
            "machines.*.stats.disabledUntil",
            "never written by the Rust runner (state/machine.rs Stats), always 0: a failing \
             builder is not shown disabled; consecutiveFailures still counts its failures"
                .into(),
        );
    }
    let over: Vec<String> = status
        .machines
        .iter()
        .filter(|m| matches!((m.current_jobs, m.max_jobs), (Some(c), Some(j)) if c > j))
        .map(|m| m.name.clone())
        .collect();
    if !over.is_empty() {
        note(
            "machines.*.maxJobs",
            format!(
                "more jobs than maxJobs on {}: the machine-free function is Dynamic, which \
                 ignores maxJobs (Machine::has_capacity); their free slots are shown as 0 and \
                 hasCapacity is the runner's own verdict",
                over.join(", ")
            ),
        );
    }
    // Only a document has the averages (the runner's /metrics carries the totals alone).
    if status
        .machines
        .iter()
        .any(|m| m.avg_step_import_time_s.is_some())
    {
        note(
            "machines.*.stats.avgStep*TimeMs",
            "whole milliseconds of the totals over nrStepsDone, which also counts a step \
             dropped without a time (Machine::remove_job); the split uses the totals"
                .into(),
        );
    }
    if let (Some(p), Some(r)) = (phases, runner)
        && r.slot_s - p.slot_s > DIFFERS * r.slot_s
    {
        note(
            "machines.*.stats.totalStepTimeMs",
            format!(
                "the listed machines hold {:.1} h of the runner's {:.1} h of slot time: a \
                 builder that disconnects takes its counters with it",
                p.slot_s / 3600.0,
                r.slot_s / 3600.0
            ),
        );
    }
    if status.store.is_none() {
        note(
            "store",
            "null from this runner (io/response_types.rs DumpResponse: not available over the \
             daemon protocol): no NAR or compression figures"
                .into(),
        );
    }
    out
}

/// One row of the long output table: what it is about, which figure, its value, its unit, and
/// how it was obtained.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub section: &'static str,
    pub subject: String,
    pub figure: &'static str,
    pub value: Option<f64>,
    pub unit: &'static str,
    pub note: String,
}

pub(crate) fn row(
    section: &'static str,
    subject: impl Into<String>,
    figure: &'static str,
    value: Option<f64>,
    unit: &'static str,
    note: impl Into<String>,
) -> Row {
    Row {
        section,
        subject: subject.into(),
        figure,
        value,
        unit,
        note: note.into(),
    }
}

/// A share as a percentage, for the rows.
fn pct(v: Option<f64>) -> Option<f64> {
    v.map(|x| x * 100.0)
}

/// The figures as rows (table and CSV output).
pub fn rows(f: &Figures) -> Vec<Row> {
    let mut r = Vec::new();
    let runner = f.runner.to_string();
    let state = match (f.state.as_deref(), f.time) {
        (Some(s), Some(t)) => format!("{s} at {}", crate::window::fmt_time(t as i64)),
        (Some(s), None) => s.to_string(),
        (None, Some(t)) => format!("as of {}", crate::window::fmt_time(t as i64)),
        (None, None) => "not reported".into(),
    };
    r.push(row("runner", runner.clone(), "state", None, "", state));
    r.push(row(
        "runner",
        runner.clone(),
        "uptime",
        f.uptime_s.map(|s| s / 3600.0),
        "h",
        "",
    ));
    let q = &f.queue;
    for (fig, v, note) in [
        ("queued builds", q.queued_builds, "now"),
        ("unfinished steps", q.unfinished_steps, "now"),
        ("runnable steps", q.runnable_steps, "now"),
        ("unsupported steps", q.unsupported_steps, "now"),
        ("steps done", q.steps_done, "since the runner started"),
        ("builds done", q.builds_done, "since the runner started"),
        ("retries", q.retries, "since the runner started"),
    ] {
        r.push(row("queue", runner.clone(), fig, v, "", note));
    }
    r.push(row(
        "queue",
        runner.clone(),
        "not building",
        pct(q.not_building_share),
        "% of slot time",
        "all machines since the runner started: 1 − build time / step time",
    ));
    for m in &f.machines {
        let n = m.name.clone();
        r.push(row(
            "machine",
            n.clone(),
            "state",
            None,
            "",
            m.state.clone(),
        ));
        r.push(row(
            "machine",
            n.clone(),
            "steps done",
            m.steps_done,
            "",
            "",
        ));
        r.push(row(
            "machine",
            n.clone(),
            "not building",
            pct(m.not_building_share),
            "% of slot time",
            match m.not_building_basis {
                "none" => "no finished steps reported".to_string(),
                basis => format!("from the {basis}: 1 − build time / step time"),
            },
        ));
        r.push(row(
            "machine",
            n.clone(),
            "slot time",
            m.slot_hours,
            "h",
            "finished steps",
        ));
        r.push(row(
            "machine",
            n.clone(),
            "slot time not building",
            m.not_building_hours,
            "h",
            "",
        ));
        r.push(row(
            "machine",
            n.clone(),
            "current jobs",
            m.current_jobs,
            "",
            "",
        ));
        r.push(row(
            "machine",
            n.clone(),
            "max jobs",
            m.max_jobs,
            "",
            if m.max_jobs.is_some() {
                format!("from the {}", m.max_jobs_from)
            } else {
                "not reported by the runner; give --machines".into()
            },
        ));
        r.push(row(
            "machine",
            n.clone(),
            "free slots",
            m.free_slots,
            "",
            "max jobs − current jobs",
        ));
        if let Some(ok) = m.has_capacity {
            r.push(row(
                "machine",
                n.clone(),
                "takes a step now",
                Some(if ok { 1.0 } else { 0.0 }),
                "yes = 1",
                if m.capacity_limits.is_empty() {
                    "the runner's hasCapacity".to_string()
                } else {
                    format!(
                        "the runner's hasCapacity; over: {}",
                        m.capacity_limits.join(", ")
                    )
                },
            ));
        }
        r.push(row(
            "machine",
            n.clone(),
            "load",
            m.load1,
            "",
            "average over a minute",
        ));
        r.push(row(
            "machine",
            n.clone(),
            "CPU pressure",
            m.cpu_some_avg10,
            "%",
            "some, 10 s average",
        ));
        if let Some(p) = &m.phases {
            phase_rows(&mut r, "machine", &n, p);
        }
    }
    for t in &f.machine_types {
        let n = t.name.clone();
        r.push(row(
            "machine type",
            n.clone(),
            "runnable",
            t.runnable,
            "steps",
            "",
        ));
        r.push(row(
            "machine type",
            n.clone(),
            "running",
            t.running,
            "steps",
            "",
        ));
        r.push(row(
            "machine type",
            n.clone(),
            "waiting for a builder",
            t.waiting,
            "steps",
            "runnable, no builder was ready at the last dispatch",
        ));
        r.push(row(
            "machine type",
            n.clone(),
            "in retry delay",
            t.disabled,
            "steps",
            "",
        ));
        r.push(row(
            "machine type",
            n.clone(),
            "wait time",
            t.wait_time_s,
            "s",
            t.wait_time_meaning,
        ));
        r.push(row(
            "machine type",
            n.clone(),
            "wait per runnable step",
            t.wait_per_runnable_s,
            "s",
            "",
        ));
        r.push(row(
            "machine type",
            n.clone(),
            "free slots",
            t.free_slots,
            "",
            format!("on {} machines that can build it", t.machines),
        ));
        r.push(row(
            "machine type",
            n.clone(),
            "idle while runnable",
            t.idle_while_runnable,
            "slots",
            "min(runnable, free slots)",
        ));
        for (fig, v, unit, note) in [
            (
                "waiting now",
                t.waiting_now,
                "steps",
                "on the queue, not on a builder (/status/queues)",
            ),
            (
                "longest wait now",
                t.oldest_wait_s,
                "s",
                "since runnable, at the runner's time",
            ),
            ("mean wait now", t.mean_wait_s, "s", ""),
        ] {
            r.push(row("machine type", n.clone(), fig, v, unit, note));
        }
    }
    // The queues apart only when there is more than the main one: the machine types above are
    // their sums.
    if f.queues.iter().any(|q| q.queue != "main") {
        for q in &f.queues {
            let subject = format!("{} ({} queue)", q.system, q.queue);
            let not_running = q
                .total_runnable
                .zip(q.active_runnable)
                .map(|(t, a)| (t - a).max(0.0));
            for (fig, v, note) in [
                ("runnable", not_running, "totalRunnable − activeRunnable"),
                ("running", q.active_runnable, "activeRunnable"),
                (
                    "waiting for a builder",
                    q.nr_runnable_waiting,
                    "nrRunnableWaiting",
                ),
                (
                    "in retry delay",
                    q.nr_runnable_disabled,
                    "nrRunnableDisabled",
                ),
            ] {
                r.push(row("queues", subject.clone(), fig, v, "steps", note));
            }
        }
    }
    if let Some(p) = &f.phases {
        phase_rows(&mut r, "phases", "all listed machines", p);
    }
    if let Some(p) = &f.runner_phases {
        phase_rows(&mut r, "phases", "runner totals", p);
    }
    let s = &f.stages;
    for (fig, v) in [
        ("active", s.active),
        ("building", s.building),
        ("copying to builder", s.copying_to),
        ("copying from builder", s.copying_from),
        ("waiting for a local slot", s.waiting_for_local_slot),
        ("waiting", s.waiting),
    ] {
        let share = if fig == "active" {
            String::new()
        } else {
            ratio(v, s.active)
                .map(|x| format!("{:.1} % of active", x * 100.0))
                .unwrap_or_default()
        };
        r.push(row("stage", "now", fig, v, "steps", share));
    }
    if let Some(st) = &f.store {
        for (fig, v, unit, note) in [
            ("NARs written", st.nar_write, "", ""),
            (
                "NAR bytes written",
                st.nar_write_bytes.map(|b| b / MIB),
                "MiB",
                "uncompressed",
            ),
            (
                "NAR bytes written, compressed",
                st.nar_write_compressed_bytes.map(|b| b / MIB),
                "MiB",
                "",
            ),
            (
                "compression savings",
                pct(st.compression_savings),
                "%",
                "from the byte counters: 1 − compressed / uncompressed",
            ),
            (
                "compression speed",
                st.compression_speed_mib_s,
                "MiB/s",
                "uncompressed MiB per second compressing",
            ),
            (
                "compression time",
                st.compression_time_s.map(|s| s / 3600.0),
                "h",
                "",
            ),
            ("NARs read", st.nar_read, "", ""),
            ("narinfo reads", st.nar_info_read, "", ""),
            ("narinfo misses", st.nar_info_missing, "", ""),
        ] {
            r.push(row("store", "destination store", fig, v, unit, note));
        }
    }
    for s in &f.s3 {
        let b = s.bucket.clone().unwrap_or_else(|| "s3".into());
        r.push(row("s3", b.clone(), "PUTs", s.put, "", ""));
        r.push(row(
            "s3",
            b.clone(),
            "bytes uploaded",
            s.put_bytes.map(|v| v / MIB),
            "MiB",
            "",
        ));
        r.push(row(
            "s3",
            b.clone(),
            "upload speed",
            s.put_speed_mib_s,
            "MiB/s",
            "",
        ));
        r.push(row(
            "s3",
            b.clone(),
            "bytes downloaded",
            s.get_bytes.map(|v| v / MIB),
            "MiB",
            "",
        ));
        r.push(row(
            "s3",
            b,
            "approximate cost",
            s.cost_dollar_approx,
            "USD",
            "the runner's estimate: requests and transfer, not storage",
        ));
    }
    // What the runner did not report is left out of the table (JSON keeps it as null), except
    // states and maxJobs, whose absence is itself worth saying.
    for n in &f.notes {
        r.push(row(
            "note",
            n.field.clone(),
            "quirk",
            None,
            "",
            n.text.clone(),
        ));
    }
    r.retain(|x| {
        x.value.is_some() || x.figure == "state" || x.figure == "max jobs" || x.section == "note"
    });
    r
}

/// The slot time of finished steps and each phase's share of it, as rows.
fn phase_rows(r: &mut Vec<Row>, section: &'static str, subject: &str, p: &Phases) {
    r.push(row(
        section,
        subject,
        "slot time of finished steps",
        Some(p.slot_s / 3600.0),
        "h",
        format!(
            "dispatch to report on the runner's clock{}, from the {}",
            p.steps.map(|n| format!(", {n} steps")).unwrap_or_default(),
            p.basis
        ),
    ));
    let per_step = |s: f64| {
        p.steps
            .filter(|n| *n > 0.0)
            .map(|n| format!(", {:.1} s per step", s / n))
            .unwrap_or_default()
    };
    for (fig, secs, share, what) in [
        (
            "import",
            p.import_s,
            p.import_share,
            "builder copying the inputs in",
        ),
        ("build", p.build_s, p.build_share, "builder building"),
        (
            "upload",
            p.upload_s,
            p.upload_share,
            "builder copying the outputs out",
        ),
        (
            "other",
            p.other_s,
            p.other_share,
            "sending the step, the builder's waits, the result's handling",
        ),
    ] {
        r.push(row(
            section,
            subject,
            fig,
            Some(share * 100.0),
            "% of slot time",
            format!("{what}: {:.2} h{}", secs / 3600.0, per_step(secs)),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::super::document::parse;
    use super::*;

    #[test]
    fn machine_type_support() {
        let s = parse(
            r#"{"machines": {"a": {"systemTypes": ["x86_64-linux"],
                   "supportedFeatures": ["kvm"], "mandatoryFeatures": ["benchmark"]}}}"#,
            "t",
        )
        .unwrap();
        let m = &s.machines[0];
        assert!(supports(m, "x86_64-linux:benchmark"));
        assert!(supports(m, "x86_64-linux:benchmark,kvm"));
        assert!(!supports(m, "x86_64-linux"), "benchmark is mandatory");
        assert!(!supports(m, "aarch64-linux:benchmark"));
        assert!(!supports(m, "x86_64-linux:benchmark,big-parallel"));
    }

    #[test]
    fn free_slots_need_every_max_jobs_and_skip_disabled_machines() {
        let s = parse(
            r#"{"time": 1000, "machines": {
                 "ssh://a": {"systemTypes": ["x"], "currentJobs": 1},
                 "ssh://b": {"systemTypes": ["x"], "currentJobs": 2, "disabledUntil": 2000,
                             "consecutiveFailures": 2}},
               "machineTypes": {"x": {"runnable": 10, "running": 3, "waitTime": 50}}}"#,
            "t",
        )
        .unwrap();
        let f = derive(&s, None);
        assert_eq!(f.machine_types[0].free_slots, None);
        assert_eq!(f.machine_types[0].wait_per_runnable_s, Some(5.0));
        let file =
            crate::nix::machines::parse("ssh://a x - 4\nssh://build@b x - 4\nc x - 2\n").unwrap();
        let f = derive(&s, Some(&file));
        let t = &f.machine_types[0];
        // a: 4 − 1 free; b disabled (time 1000 < 2000); c: in the file only, 2 free.
        assert_eq!((t.machines, t.free_slots), (2, Some(5.0)));
        assert_eq!(t.idle_while_runnable, Some(5.0));
        assert_eq!(f.machines[1].state.split(' ').next(), Some("disabled"));
        assert_eq!(f.machines[1].free_slots, Some(0.0));
        assert_eq!(f.machines[2].state, "in machines file, not in status");
        assert_eq!(f.machines[0].max_jobs_from, "machines file");
    }

    #[test]
    fn phase_split_from_totals_or_averages() {
        let m = MachineStatus {
            steps_done: Some(4.0),
            avg_step_time_s: Some(100.0),
            avg_step_import_time_s: Some(10.0),
            avg_step_build_time_s: Some(70.0),
            avg_step_upload_time_s: Some(5.0),
            ..MachineStatus::default()
        };
        let p = machine_phases(&m).unwrap();
        assert_eq!(p.basis, "averages");
        assert_eq!((p.slot_s, p.other_s, p.build_share), (400.0, 60.0, 0.7));
        // Phases past the runner's total (the builder's clock against the runner's) widen the
        // slot: no negative rest.
        let q = split(
            Some(10.0),
            [Some(2.0), Some(9.0), Some(1.0)],
            Some(1.0),
            "totals",
        )
        .unwrap();
        assert_eq!((q.slot_s, q.other_s, q.other_share), (12.0, 0.0, 0.0));
        assert!(split(Some(0.0), [Some(0.0); 3], Some(0.0), "totals").is_none());
        // The C++ runner has no import/upload: no split.
        assert!(
            machine_phases(&MachineStatus {
                total_step_time_s: Some(5.0),
                total_step_build_time_s: Some(4.0),
                ..MachineStatus::default()
            })
            .is_none()
        );
        let both = sum_phases(&[&p, &q]).unwrap();
        assert_eq!(
            (both.slot_s, both.steps, both.basis),
            (412.0, Some(5.0), "averages")
        );
    }

    #[test]
    fn capacity_limits_as_the_runner_tests_them() {
        let base = MachineStatus {
            load1: Some(9.0),
            load1_threshold: Some(8.0),
            store_free_percent: Some(5.0),
            store_avail_threshold: Some(10.0),
            current_jobs: Some(2.0),
            max_jobs: Some(4.0),
            ..MachineStatus::default()
        };
        assert_eq!(
            capacity_limits(&base),
            ["store 5.0 % free < 10 %", "load 9.0 > 8"]
        );
        // With CPU pressure reported, load is not looked at; memory and I/O pressure are.
        let psi = MachineStatus {
            cpu_some_avg10: Some(10.0),
            cpu_psi_threshold: Some(75.0),
            mem_full_avg10: Some(90.0),
            mem_psi_threshold: Some(80.0),
            io_full_avg10: Some(99.0),
            io_psi_threshold: None,
            store_free_percent: None,
            current_jobs: Some(4.0),
            ..base
        };
        assert_eq!(
            capacity_limits(&psi),
            ["maxJobs reached (4 of 4)", "memory pressure 90.0 > 80"]
        );
    }

    #[test]
    fn no_rust_notes_on_a_cpp_document() {
        let s = parse(
            r#"{"machines": {"a": {"systemTypes": ["x"], "currentJobs": 9}},
                "machineTypes": {"x": {"runnable": 1, "waitTime": 5}}}"#,
            "t",
        )
        .unwrap();
        let f = derive(&s, None);
        assert!(f.notes.is_empty(), "{:?}", f.notes);
        assert_eq!(f.machine_types[0].wait_per_runnable_s, Some(5.0));
        assert!(f.phases.is_none() && f.runner_phases.is_none());
    }

    #[test]
    fn store_figures_from_counters() {
        let s = parse(
            r#"{"store": {"narWriteBytes": 10485760, "narWriteCompressedBytes": 2097152,
                          "narWriteCompressionTimeMs": 4000, "narCompressionSpeed": 99},
                "s3": {"put": 3, "putBytes": 1048576, "putTimeMs": 500}}"#,
            "t",
        )
        .unwrap();
        let f = derive(&s, None);
        let st = f.store.unwrap();
        assert!((st.compression_savings.unwrap() - 0.8).abs() < 1e-12);
        assert!((st.compression_speed_mib_s.unwrap() - 2.5).abs() < 1e-12);
        assert!((f.s3[0].put_speed_mib_s.unwrap() - 2.0).abs() < 1e-12);
    }
}
