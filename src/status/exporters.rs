//! The queue runner's Prometheus metrics, read into the same [`Status`] a status document
//! becomes, so that one `/metrics` scrape is one more sample of the series `status --watch`
//! keeps and `status --series` summarises.
//!
//! Two exporters write such metrics, and each name below is cited from the code that registers
//! it (names are facts; no upstream text is copied):
//!
//! - **the Rust queue runner** itself, `hydraqueuerunner_*` on its `/metrics`: NixOS/hydra
//!   `subprojects/hydra-queue-runner/src/state/metrics.rs`, `PromMetrics::new` (the names) and
//!   `refresh_per_machine_type_metrics`, `refresh_per_machine_metrics`,
//!   `refresh_transfer_metrics`, `refresh_s3_metrics` (what fills them), at 14332fbf; served by
//!   `server/http.rs` `handler::metrics::get` as `text/plain; version=0.0.4`.
//! - **helsinki-systems/hydra_exporter**, `hydra_queue_runner_*`, which reads the C++ runner's
//!   status JSON and exports its fields: `collector/queue_runner.go`, the `prom:` tags of
//!   `queueRunnerResponse` and the structs it nests, at a68d9bd5; labels `host` (machines),
//!   `machineType` and `name` (jobsets).
//!
//! What the metrics do not carry stays missing, as in a document that lacks a field: neither
//! exporter has a machine's maxJobs, systems or features (the machines file supplies them,
//! `--machines`), and the Rust runner's metrics have no active-step count, no bytes sent or
//! received, and no machine enabled or disabled-until state.
//!
//! Two meanings differ from the names, and the mapping follows the meaning:
//! - the Rust runner's `hydraqueuerunner_machine_type_runnable` is the length of the system's
//!   queue, which keeps a step until it finishes, so it counts the running steps too
//!   (`state/queue.rs`: `BuildQueue::scrube_jobs` sets it, `InnerQueues::remove_job` is what
//!   drops a step, `add_job_to_scheduled` raises `machine_type_running`). [`Status`] means by
//!   runnable the steps not yet running, as the C++ runner's `machineTypes.runnable` does, so the
//!   Rust figure becomes runnable − running;
//! - `hydraqueuerunner_machine_type_wait_time` is milliseconds (`BuildQueue::wait_time_ms`),
//!   hydra_exporter's `machine_type_wait_time_total` seconds (the C++ `waitTime`).

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::document::{
    MachineStatus, MachineTypeStatus, RunnerKind, S3Status, Status, StoreStatus, check_ranges,
};
use super::metrics::{self, Exposition, Family, Suffix};
use super::timeline::Stage;
use crate::error::{Error, Result};

/// Who wrote a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Exporter {
    /// The Rust queue runner's own `/metrics`.
    RustRunner,
    /// helsinki-systems/hydra_exporter, in front of the C++ runner.
    HydraExporter,
}

impl Exporter {
    /// The prefix of every name it writes.
    pub fn prefix(self) -> &'static str {
        match self {
            Exporter::RustRunner => "hydraqueuerunner_",
            Exporter::HydraExporter => "hydra_queue_runner_",
        }
    }

    /// The runner whose figures it carries: hydra_exporter reads the C++ document (it expects
    /// a numeric `time` and `s3` inside `store`, so the Rust document does not fit it;
    /// docs/hydra.md §5).
    pub fn runner(self) -> RunnerKind {
        match self {
            Exporter::RustRunner => RunnerKind::Rust,
            Exporter::HydraExporter => RunnerKind::Cpp,
        }
    }
}

impl std::fmt::Display for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Exporter::RustRunner => "the Rust queue runner's /metrics (hydraqueuerunner_*)",
            Exporter::HydraExporter => "hydra_exporter (hydra_queue_runner_*)",
        })
    }
}

/// How an exported number becomes the figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Same,
    /// Milliseconds to seconds.
    Ms,
}

/// One figure of `T` and its name under each exporter (without the prefix), `None` where the
/// exporter has none.
struct Name<T> {
    rust: Option<(&'static str, Unit)>,
    exporter: Option<(&'static str, Unit)>,
    set: fn(&mut T, f64),
}

impl<T> Name<T> {
    fn of(&self, exp: Exporter) -> Option<(&'static str, Unit)> {
        match exp {
            Exporter::RustRunner => self.rust,
            Exporter::HydraExporter => self.exporter,
        }
    }
}

const S: Unit = Unit::Same;
const MS: Unit = Unit::Ms;

macro_rules! to {
    ($t:ty, $field:ident) => {
        |x: &mut $t, v: f64| x.$field = Some(v)
    };
}

/// The runner's own figures, unlabelled.
const GLOBAL: &[Name<Status>] = &[
    Name {
        rust: Some(("current_time_seconds", S)),
        exporter: Some(("time", S)),
        set: to!(Status, time),
    },
    Name {
        rust: Some(("uptime_seconds", S)),
        exporter: Some(("uptime", S)),
        set: to!(Status, uptime_s),
    },
    Name {
        // Rust: `nr_builds_unfinished`, the builds the runner holds (`state.builds.len()`).
        rust: Some(("builds_unfinished", S)),
        exporter: Some(("builds_queued", S)),
        set: to!(Status, queued_builds),
    },
    Name {
        rust: Some(("steps_unfinished", S)),
        exporter: Some(("steps_queued", S)),
        set: to!(Status, unfinished_steps),
    },
    Name {
        rust: Some(("steps_runnable", S)),
        exporter: Some(("steps_runnable", S)),
        set: to!(Status, runnable_steps),
    },
    Name {
        rust: None,
        exporter: Some(("steps_active", S)),
        set: to!(Status, active_steps),
    },
    Name {
        rust: Some(("steps_building", S)),
        exporter: Some(("steps_building", S)),
        set: to!(Status, steps_building),
    },
    Name {
        // Rust: the builders' uploading path counts summed (`refresh_transfer_metrics`).
        rust: Some(("steps_copying_to", S)),
        exporter: Some(("steps_copying_to", S)),
        set: to!(Status, steps_copying_to),
    },
    Name {
        // Rust: the builders' downloading counts summed.
        rust: Some(("steps_copying_from", S)),
        exporter: Some(("steps_copying_from", S)),
        set: to!(Status, steps_copying_from),
    },
    Name {
        rust: Some(("steps_waiting", S)),
        exporter: Some(("steps_waiting", S)),
        set: to!(Status, steps_waiting),
    },
    Name {
        rust: Some(("steps_unsupported", S)),
        exporter: Some(("steps_unsupported", S)),
        set: to!(Status, unsupported_steps),
    },
    Name {
        rust: Some(("builds_finished", S)),
        exporter: Some(("builds_done", S)),
        set: to!(Status, builds_done),
    },
    Name {
        rust: Some(("steps_started", S)),
        exporter: Some(("steps_started", S)),
        set: to!(Status, steps_started),
    },
    Name {
        rust: Some(("steps_finished", S)),
        exporter: Some(("steps_done", S)),
        set: to!(Status, steps_done),
    },
    Name {
        rust: Some(("steps_retries", S)),
        exporter: Some(("retries", S)),
        set: to!(Status, retries),
    },
    Name {
        rust: Some(("steps_max_retries", S)),
        exporter: Some(("max_retries", S)),
        set: to!(Status, max_retries),
    },
    Name {
        rust: None,
        exporter: Some(("build_inputs_sent_bytes", S)),
        set: to!(Status, bytes_sent),
    },
    Name {
        rust: None,
        exporter: Some(("build_outputs_received_bytes", S)),
        set: to!(Status, bytes_received),
    },
    Name {
        rust: Some(("steps_total_time_ms", MS)),
        exporter: Some(("step_time", S)),
        set: to!(Status, total_step_time_s),
    },
    Name {
        rust: Some(("steps_total_build_time_ms", MS)),
        exporter: Some(("step_build_time", S)),
        set: to!(Status, total_step_build_time_s),
    },
    Name {
        // The builders' import and upload phases (the C++ runner has no such split).
        rust: Some(("steps_total_import_time_ms", MS)),
        exporter: None,
        set: to!(Status, total_step_import_time_s),
    },
    Name {
        rust: Some(("steps_total_upload_time_ms", MS)),
        exporter: None,
        set: to!(Status, total_step_upload_time_s),
    },
    Name {
        rust: Some(("machines_total", S)),
        exporter: None,
        set: to!(Status, machines_total),
    },
    Name {
        rust: Some(("machines_in_use", S)),
        exporter: None,
        set: to!(Status, machines_in_use),
    },
    Name {
        rust: Some(("monitor_checks", S)),
        exporter: Some(("queue_wakeups", S)),
        set: to!(Status, queue_wakeups),
    },
    Name {
        rust: Some(("dispatch_wakeup", S)),
        exporter: Some(("dispatcher_wakeup", S)),
        set: to!(Status, dispatcher_wakeups),
    },
    Name {
        rust: Some(("dispatch_time_ms", S)),
        exporter: Some(("dispatch_execution_ms", S)),
        set: to!(Status, dispatch_time_ms),
    },
];

/// A machine's label: the Rust runner's builder hostname, hydra_exporter's machine key (the
/// C++ runner's store URI).
const MACHINE_LABEL: (&str, &str) = ("hostname", "host");

const MACHINE: &[Name<MachineStatus>] = &[
    Name {
        rust: None,
        exporter: Some(("machine_enabled", S)),
        set: |m: &mut MachineStatus, v: f64| m.enabled = Some(v != 0.0),
    },
    Name {
        rust: Some((MACHINE_CURRENT_JOBS, S)),
        exporter: Some((MACHINE_CURRENT_JOBS, S)),
        set: to!(MachineStatus, current_jobs),
    },
    Name {
        rust: Some(("machine_steps_done", S)),
        exporter: Some(("machine_steps_done", S)),
        set: to!(MachineStatus, steps_done),
    },
    Name {
        rust: Some(("machine_total_step_time_ms", MS)),
        exporter: Some(("machine_step_time", S)),
        set: to!(MachineStatus, total_step_time_s),
    },
    Name {
        rust: Some(("machine_total_step_build_time_ms", MS)),
        exporter: Some(("machine_step_build_time", S)),
        set: to!(MachineStatus, total_step_build_time_s),
    },
    Name {
        rust: Some(("machine_total_step_import_time_ms", MS)),
        exporter: None,
        set: to!(MachineStatus, total_step_import_time_s),
    },
    Name {
        rust: Some(("machine_total_step_upload_time_ms", MS)),
        exporter: None,
        set: to!(MachineStatus, total_step_upload_time_s),
    },
    Name {
        rust: Some(("machine_consecutive_failures", S)),
        exporter: Some(("machine_consecutive_failures", S)),
        set: to!(MachineStatus, consecutive_failures),
    },
    Name {
        rust: Some(("machine_idle_since_timestamp", S)),
        exporter: Some(("machine_idle_since", S)),
        set: to!(MachineStatus, idle_since),
    },
    Name {
        rust: None,
        exporter: Some((MACHINE_DISABLED_UNTIL, S)),
        set: to!(MachineStatus, disabled_until),
    },
    Name {
        rust: None,
        exporter: Some(("machine_last_failure", S)),
        set: to!(MachineStatus, last_failure),
    },
];

/// A machine type's label: the Rust runner's queue (a system), the C++ runner's system type.
const TYPE_LABEL: (&str, &str) = ("machine_type", "machineType");

const TYPE: &[Name<MachineTypeStatus>] = &[
    Name {
        // Rust: queue length, running steps included; made runnable − running below.
        rust: Some((TYPE_RUNNABLE, S)),
        exporter: Some((TYPE_RUNNABLE, S)),
        set: to!(MachineTypeStatus, runnable),
    },
    Name {
        rust: Some((TYPE_RUNNING, S)),
        exporter: Some((TYPE_RUNNING, S)),
        set: to!(MachineTypeStatus, running),
    },
    Name {
        rust: Some(("machine_type_waiting", S)),
        exporter: None,
        set: to!(MachineTypeStatus, waiting),
    },
    Name {
        rust: Some(("machine_type_disabled", S)),
        exporter: None,
        set: to!(MachineTypeStatus, disabled),
    },
    Name {
        rust: Some(("machine_type_wait_time", MS)),
        exporter: Some(("machine_type_wait_time_total", S)),
        set: to!(MachineTypeStatus, wait_time_s),
    },
    Name {
        rust: None,
        exporter: Some(("machine_type_last_active_total", S)),
        set: to!(MachineTypeStatus, last_active),
    },
];

const STORE: &[Name<StoreStatus>] = &[
    Name {
        rust: Some(("store_nar_info_read", S)),
        exporter: Some(("store_nar_info_read", S)),
        set: to!(StoreStatus, nar_info_read),
    },
    Name {
        rust: Some(("store_nar_info_missing", S)),
        exporter: Some(("store_nar_info_missing", S)),
        set: to!(StoreStatus, nar_info_missing),
    },
    Name {
        rust: Some(("store_nar_read", S)),
        exporter: Some(("store_nar_read", S)),
        set: to!(StoreStatus, nar_read),
    },
    Name {
        rust: Some(("store_nar_read_bytes", S)),
        exporter: Some(("store_nar_read_bytes", S)),
        set: to!(StoreStatus, nar_read_bytes),
    },
    Name {
        rust: Some(("store_nar_write", S)),
        exporter: Some(("store_nar_write", S)),
        set: to!(StoreStatus, nar_write),
    },
    Name {
        rust: Some(("store_nar_write_bytes", S)),
        exporter: Some(("store_nar_write_bytes", S)),
        set: to!(StoreStatus, nar_write_bytes),
    },
    Name {
        rust: Some(("store_nar_write_compressed_bytes", S)),
        exporter: Some(("store_nar_write_compressed_bytes", S)),
        set: to!(StoreStatus, nar_write_compressed_bytes),
    },
    Name {
        // Milliseconds under both names; the figure is in milliseconds too.
        rust: Some(("store_nar_write_compression_time_ms", S)),
        exporter: Some(("store_nar_write_compression_ms", S)),
        set: to!(StoreStatus, nar_write_compression_time_ms),
    },
    Name {
        rust: Some(("store_nar_compression_savings", S)),
        exporter: Some(("store_nar_compression_savings", S)),
        set: to!(StoreStatus, nar_compression_savings),
    },
    Name {
        rust: Some(("store_nar_compression_speed", S)),
        exporter: Some(("store_nar_compression_speed", S)),
        set: to!(StoreStatus, nar_compression_speed_mib_s),
    },
];

/// The Rust runner labels S3 figures by bucket; hydra_exporter has one unlabelled set.
const S3_LABEL: &str = "remote_store";

const S3: &[Name<S3Status>] = &[
    Name {
        rust: Some(("s3_put", S)),
        exporter: Some(("store_s3_put", S)),
        set: to!(S3Status, put),
    },
    Name {
        rust: Some(("s3_put_bytes", S)),
        exporter: Some(("store_s3_put_bytes", S)),
        set: to!(S3Status, put_bytes),
    },
    Name {
        rust: Some(("s3_put_time_ms", S)),
        exporter: Some(("store_s3_put_ms", S)),
        set: to!(S3Status, put_time_ms),
    },
    Name {
        rust: Some(("s3_put_speed", S)),
        exporter: Some(("store_s3_put_speed", S)),
        set: to!(S3Status, put_speed_mib_s),
    },
    Name {
        rust: Some(("s3_get", S)),
        exporter: Some(("store_s3_get", S)),
        set: to!(S3Status, get),
    },
    Name {
        rust: Some(("s3_get_bytes", S)),
        exporter: Some(("store_s3_get_bytes", S)),
        set: to!(S3Status, get_bytes),
    },
    Name {
        rust: Some(("s3_get_time_ms", S)),
        exporter: Some(("store_s3_get_ms", S)),
        set: to!(S3Status, get_time_ms),
    },
    Name {
        rust: Some(("s3_head", S)),
        exporter: Some(("store_s3_head", S)),
        set: to!(S3Status, head),
    },
    Name {
        rust: Some(("s3_cost_dollar_approx", S)),
        exporter: Some(("store_s3_cost_approximate_dollars", S)),
        set: to!(S3Status, cost_dollar_approx),
    },
];

/// Jobsets are only counted: the family and its label under each exporter.
const JOBSETS: ((&str, &str), (&str, &str)) = (
    ("jobset_seconds", "jobset_name"),
    ("jobset_seconds_total", "name"),
);

/// The names the runner's series is read under (`status::prometheus`, and the watch file's
/// resampling through [`Status`]): runnable and running steps per machine type, each machine's
/// current jobs, and the farm's stage counters, without the prefix.
pub const TYPE_RUNNABLE: &str = "machine_type_runnable";
pub const TYPE_RUNNING: &str = "machine_type_running";
pub const MACHINE_CURRENT_JOBS: &str = "machine_current_jobs";
/// hydra_exporter's copy of the C++ `disabledUntil` (unix seconds; a machine is disabled after
/// failures while it is in the future). The Rust runner never disables a machine.
pub const MACHINE_DISABLED_UNTIL: &str = "machine_disabled_until";

impl Exporter {
    /// The label of a machine type's samples.
    pub fn type_label(self) -> &'static str {
        match self {
            Exporter::RustRunner => TYPE_LABEL.0,
            Exporter::HydraExporter => TYPE_LABEL.1,
        }
    }

    /// The label of a machine's samples.
    pub fn machine_label(self) -> &'static str {
        match self {
            Exporter::RustRunner => MACHINE_LABEL.0,
            Exporter::HydraExporter => MACHINE_LABEL.1,
        }
    }

    /// Whether its runnable-per-type gauge counts the running steps too (the Rust runner's
    /// queue length; see the module doc), so that the steps waiting are runnable − running.
    pub fn runnable_includes_running(self) -> bool {
        self == Exporter::RustRunner
    }

    /// The family (without prefix) of a stage counter, where this exporter has one. Neither
    /// exports the C++ runner's `nrStepsWaitingForDownloadSlot`: hydra_exporter's struct has
    /// no field for it, and the Rust runner has no local download slots.
    pub fn stage_family(self, stage: Stage) -> Option<&'static str> {
        match stage {
            Stage::Building => Some("steps_building"),
            Stage::CopyingTo => Some("steps_copying_to"),
            Stage::CopyingFrom => Some("steps_copying_from"),
            Stage::WaitingSendLock => Some("steps_waiting"),
            Stage::WaitingDownloadSlot => None,
        }
    }
}

/// The families of the ledger: without any of them a series says nothing of lost capacity.
/// Each is (figure, Rust runner's name, hydra_exporter's name).
const CORE: &[(&str, Option<&str>, Option<&str>)] = &[
    (
        "runnable steps",
        Some("steps_runnable"),
        Some("steps_runnable"),
    ),
    (
        "runnable steps per machine type",
        Some(TYPE_RUNNABLE),
        Some(TYPE_RUNNABLE),
    ),
    (
        "running steps per machine type",
        Some(TYPE_RUNNING),
        Some(TYPE_RUNNING),
    ),
    (
        "steps building",
        Some("steps_building"),
        Some("steps_building"),
    ),
    (
        "current jobs per machine",
        Some(MACHINE_CURRENT_JOBS),
        Some(MACHINE_CURRENT_JOBS),
    ),
];

/// Every family name (with its prefix) the mapping reads for `exp`.
pub fn names(exp: Exporter) -> Vec<String> {
    let p = exp.prefix();
    let mut out: Vec<String> = Vec::new();
    let mut add = |n: Option<(&str, Unit)>| {
        if let Some((n, _)) = n {
            out.push(format!("{p}{n}"));
        }
    };
    GLOBAL.iter().for_each(|n| add(n.of(exp)));
    MACHINE.iter().for_each(|n| add(n.of(exp)));
    TYPE.iter().for_each(|n| add(n.of(exp)));
    STORE.iter().for_each(|n| add(n.of(exp)));
    S3.iter().for_each(|n| add(n.of(exp)));
    let (jobsets, _) = jobset_family(exp);
    out.push(format!("{p}{jobsets}"));
    out
}

fn jobset_family(exp: Exporter) -> (&'static str, &'static str) {
    match exp {
        Exporter::RustRunner => JOBSETS.0,
        Exporter::HydraExporter => JOBSETS.1,
    }
}

/// Which exporter wrote `e`, by the names it holds; an error says what was looked for.
pub fn detect(e: &Exposition) -> std::result::Result<Exporter, String> {
    let has = |exp: Exporter| {
        let known = names(exp);
        e.families.iter().any(|f| known.contains(&f.name))
    };
    let (rust, exporter) = (has(Exporter::RustRunner), has(Exporter::HydraExporter));
    match (rust, exporter) {
        (true, false) => Ok(Exporter::RustRunner),
        (false, true) => Ok(Exporter::HydraExporter),
        (true, true) => Err(format!(
            "it holds both {} and {}; scrape one at a time",
            Exporter::RustRunner,
            Exporter::HydraExporter
        )),
        (false, false) => {
            let example: Vec<&str> = e.families.iter().take(3).map(|f| f.name.as_str()).collect();
            let cpp_own = e
                .families
                .iter()
                .any(|f| f.name.starts_with(Exporter::RustRunner.prefix()));
            let found = if e.families.is_empty() {
                "it holds no metrics".to_string()
            } else if cpp_own {
                // The C++ runner's own endpoint (127.0.0.1:9198) shares the prefix but has only
                // its nine queue-monitor counters (docs/hydra.md §5).
                "its hydraqueuerunner_* metrics are not the Rust runner's (the C++ runner's own \
                 endpoint has only nine queue-monitor counters; read its status JSON instead)"
                    .to_string()
            } else {
                format!(
                    "it holds {} metrics, none of them a queue runner's (first: {})",
                    e.families.len(),
                    example.join(", ")
                )
            };
            Err(format!(
                "expected {} (e.g. {}steps_runnable) or {} (e.g. {}steps_runnable); {found}",
                Exporter::RustRunner,
                Exporter::RustRunner.prefix(),
                Exporter::HydraExporter,
                Exporter::HydraExporter.prefix(),
            ))
        }
    }
}

/// The core families (see [`CORE`]) `e` lacks, each as "figure (full name)": what a series
/// from `e` cannot say.
pub fn absent(e: &Exposition, exp: Exporter) -> Vec<String> {
    CORE.iter()
        .filter_map(|(figure, rust, exporter)| {
            let name = match exp {
                Exporter::RustRunner => rust,
                Exporter::HydraExporter => exporter,
            };
            let full = format!("{}{}", exp.prefix(), (*name)?);
            e.family(&full)
                .is_none()
                .then(|| format!("{figure} ({full})"))
        })
        .collect()
}

/// A sample's value as a figure: non-finite values (`NaN`, `±Inf`, which the Rust runner's
/// speed gauges write before anything was timed) are missing, as in a document.
fn figure(v: f64, unit: Unit) -> Option<f64> {
    v.is_finite().then_some(match unit {
        Unit::Same => v,
        Unit::Ms => v / 1000.0,
    })
}

/// An exposition's families by name, looked up once per figure.
struct Families<'e> {
    by_name: HashMap<&'e str, &'e Family>,
    exp: Exporter,
}

impl<'e> Families<'e> {
    fn new(e: &'e Exposition, exp: Exporter) -> Families<'e> {
        Families {
            by_name: e.families.iter().map(|f| (f.name.as_str(), f)).collect(),
            exp,
        }
    }

    /// The family `name` (without prefix), if present.
    fn get(&self, name: &str) -> Option<&'e Family> {
        let full = format!("{}{name}", self.exp.prefix());
        self.by_name.get(full.as_str()).copied()
    }
}

/// Fills `T`s keyed by the value of `label` from the labelled samples of each name in `table`.
fn labelled<T: Default>(
    e: &Families<'_>,
    table: &[Name<T>],
    label: &str,
    make: impl Fn(&str) -> T,
) -> BTreeMap<String, T> {
    let mut out: BTreeMap<String, T> = BTreeMap::new();
    for n in table {
        let Some((name, unit)) = n.of(e.exp) else {
            continue;
        };
        let Some(f) = e.get(name) else {
            continue;
        };
        for s in f.samples.iter().filter(|s| s.suffix == Suffix::None) {
            // A sample without the label (a future exporter's total, say) is not one of them.
            let Some(key) = s.label(label) else {
                continue;
            };
            let Some(v) = figure(s.value, unit) else {
                continue;
            };
            let t = out.entry(key.to_string()).or_insert_with(|| make(key));
            (n.set)(t, v);
        }
    }
    out
}

/// Fills one `T` from the unlabelled samples of `table`; `None` when none is present.
fn unlabelled<T: Default>(e: &Families<'_>, table: &[Name<T>]) -> Option<T> {
    let mut t = T::default();
    let mut any = false;
    for n in table {
        let Some((name, unit)) = n.of(e.exp) else {
            continue;
        };
        if let Some(v) = e
            .get(name)
            .and_then(Family::value)
            .and_then(|v| figure(v, unit))
        {
            (n.set)(&mut t, v);
            any = true;
        }
    }
    any.then_some(t)
}

/// Reads `e` (written by either exporter) into a [`Status`]; `origin` names it in errors.
pub fn to_status(e: &Exposition, origin: &str) -> Result<(Exporter, Status)> {
    let fail = |reason: String| Error::StatusDocument {
        origin: origin.to_string(),
        reason,
    };
    let exp = detect(e).map_err(|why| fail(format!("Prometheus text, but {why}")))?;
    let fams = Families::new(e, exp);
    let mut status = Status::empty(exp.runner());
    for n in GLOBAL {
        let Some((name, unit)) = n.of(exp) else {
            continue;
        };
        if let Some(v) = fams
            .get(name)
            .and_then(Family::value)
            .and_then(|v| figure(v, unit))
        {
            (n.set)(&mut status, v);
        }
    }

    let machine_label = exp.machine_label();
    status.machines = labelled(&fams, MACHINE, machine_label, |name| MachineStatus {
        name: name.to_string(),
        ..MachineStatus::default()
    })
    .into_values()
    .collect();

    let type_label = exp.type_label();
    status.machine_types = labelled(&fams, TYPE, type_label, |name| MachineTypeStatus {
        name: name.to_string(),
        ..MachineTypeStatus::default()
    })
    .into_values()
    .collect();
    if exp.runnable_includes_running() {
        for t in &mut status.machine_types {
            // The queue's length counts the running steps too (see the module doc). A scrape
            // between the two updates can show fewer queued than running; that is none waiting.
            if let (Some(total), Some(running)) = (t.runnable, t.running) {
                t.runnable = Some((total - running).max(0.0));
            }
        }
    }

    status.store = unlabelled(&fams, STORE);
    status.s3 = match exp {
        Exporter::RustRunner => labelled(&fams, S3, S3_LABEL, |bucket| S3Status {
            bucket: Some(bucket.to_string()),
            ..S3Status::default()
        })
        .into_values()
        .collect(),
        // hydra_exporter writes its S3 figures whether or not the runner reported any (a Go
        // struct's zero values), and reads them from inside `store`, where only older C++
        // runners put them: all zero means "not reported", not "nothing uploaded".
        Exporter::HydraExporter => unlabelled(&fams, S3)
            .filter(|s: &S3Status| {
                [s.put, s.put_bytes, s.get, s.get_bytes, s.head]
                    .iter()
                    .any(|v| v.is_some_and(|v| v != 0.0))
            })
            .into_iter()
            .collect(),
    };

    let (jobsets, label) = jobset_family(exp);
    if let Some(f) = fams.get(jobsets) {
        let mut names: Vec<&str> = f.samples.iter().filter_map(|s| s.label(label)).collect();
        names.sort_unstable();
        names.dedup();
        status.jobsets = names.len();
    }

    check_ranges(&status).map_err(fail)?;
    Ok((exp, status))
}

/// The part of `e` a series keeps: the families the mapping reads for `exp` but the jobsets,
/// without their HELP lines, in the format. A `/metrics` body also carries the process's own
/// metrics, histograms the ledger does not use, and two samples per jobset in the queue (1,600
/// of the 2,400 samples of hydra.nixos.org's size) only to be counted; leaving those out holds a
/// line of a week's series near the size of a status document (25 KB for 40 machines and 10
/// systems), so a series read back counts no jobsets.
pub fn record(e: &Exposition, exp: Exporter) -> String {
    let (jobsets, _) = jobset_family(exp);
    let jobsets = format!("{}{jobsets}", exp.prefix());
    let keep: Vec<String> = names(exp).into_iter().filter(|n| *n != jobsets).collect();
    let mut out = String::new();
    for f in e.families.iter().filter(|f| keep.contains(&f.name)) {
        metrics::render_family(&mut out, f, false);
    }
    out
}

/// What a runner whose series is `tl` would have served on `/metrics` at sample `k`, under
/// `exp`'s names: runnable and running steps per machine type (the Rust runner's runnable
/// counting its running steps too, as its queue does), each machine's current jobs, its
/// disabled-until time (hydra_exporter's copy of the C++ `disabledUntil`: one step past the
/// sample while disabled, else 0), and the stage counters the exporter has. Only the families
/// the ledger reads, so the text is what [`record`] would keep of a real scrape. A figure the
/// series lacks at `k` (`NaN`) is left out, as a failed field would be.
pub fn exposition(tl: &super::timeline::Timeline, k: usize, exp: Exporter) -> String {
    use std::fmt::Write as _;
    let pre = exp.prefix();
    let at = |v: &[f64]| v.get(k).copied().filter(|x| x.is_finite());
    // Label values as the text format quotes them.
    let quote = |v: &str| {
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    let mut out = String::new();
    let mut family = |name: &str, samples: Vec<(Option<(&str, &str)>, f64)>| {
        if samples.is_empty() {
            return;
        }
        let _ = writeln!(out, "# TYPE {pre}{name} gauge");
        for (label, v) in samples {
            match label {
                Some((l, value)) => {
                    let _ = writeln!(out, "{pre}{name}{{{l}=\"{}\"}} {v}", quote(value));
                }
                None => {
                    let _ = writeln!(out, "{pre}{name} {v}");
                }
            }
        }
    };
    let running = |ty: &str| tl.running.get(ty).and_then(|r| at(r));
    let runnable: Vec<_> = tl
        .runnable
        .iter()
        .filter_map(|(ty, w)| {
            let waiting = at(w)?;
            let v = if exp.runnable_includes_running() {
                waiting + running(ty)?
            } else {
                waiting
            };
            Some((Some((exp.type_label(), ty.as_str())), v))
        })
        .collect();
    family(TYPE_RUNNABLE, runnable);
    /// A series per label value, as it stands at sample `k`.
    fn labelled<'a>(
        series: &'a BTreeMap<String, Vec<f64>>,
        label: &'static str,
        k: usize,
    ) -> Vec<(Option<(&'static str, &'a str)>, f64)> {
        series
            .iter()
            .filter_map(|(key, v)| {
                let x = v.get(k).copied().filter(|x| x.is_finite())?;
                Some((Some((label, key.as_str())), x))
            })
            .collect()
    }
    family(TYPE_RUNNING, labelled(&tl.running, exp.type_label(), k));
    family(
        MACHINE_CURRENT_JOBS,
        labelled(&tl.current_jobs, exp.machine_label(), k),
    );
    if !exp.runnable_includes_running() {
        let t = tl.times.get(k).copied().unwrap_or(0);
        let until: Vec<_> = tl
            .disabled
            .iter()
            .filter_map(|(m, d)| {
                let v = if at(d)? > 0.0 {
                    (t + tl.step_s) as f64
                } else {
                    0.0
                };
                Some((Some((exp.machine_label(), m.as_str())), v))
            })
            .collect();
        family(MACHINE_DISABLED_UNTIL, until);
    }
    for (stage, v) in &tl.stages {
        if let (Some(name), Some(x)) = (exp.stage_family(*stage), at(v)) {
            family(name, vec![(None, x)]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_unique_per_exporter() {
        for exp in [Exporter::RustRunner, Exporter::HydraExporter] {
            let mut n = names(exp);
            let len = n.len();
            n.sort();
            n.dedup();
            assert_eq!(n.len(), len, "{exp}");
            assert!(n.iter().all(|x| x.starts_with(exp.prefix())));
        }
    }

    #[test]
    fn rust_runnable_excludes_running() {
        let text = "# TYPE hydraqueuerunner_machine_type_runnable gauge\n\
            hydraqueuerunner_machine_type_runnable{machine_type=\"x86_64-linux\"} 12\n\
            hydraqueuerunner_machine_type_runnable{machine_type=\"aarch64-linux\"} 1\n\
            # TYPE hydraqueuerunner_machine_type_running gauge\n\
            hydraqueuerunner_machine_type_running{machine_type=\"x86_64-linux\"} 8\n\
            hydraqueuerunner_machine_type_running{machine_type=\"aarch64-linux\"} 2\n\
            # TYPE hydraqueuerunner_machine_type_wait_time gauge\n\
            hydraqueuerunner_machine_type_wait_time{machine_type=\"x86_64-linux\"} 4500\n";
        let e = metrics::parse(text).unwrap();
        let (exp, s) = to_status(&e, "t").unwrap();
        assert_eq!(exp, Exporter::RustRunner);
        assert_eq!(s.runner, RunnerKind::Rust);
        // Sorted by name, as a document's types are.
        assert_eq!(s.machine_types[0].name, "aarch64-linux");
        assert_eq!(s.machine_types[0].runnable, Some(0.0));
        assert_eq!(s.machine_types[1].runnable, Some(4.0));
        assert_eq!(s.machine_types[1].running, Some(8.0));
        assert_eq!(s.machine_types[1].wait_time_s, Some(4.5));
        assert_eq!(
            absent(&e, exp),
            [
                "runnable steps (hydraqueuerunner_steps_runnable)",
                "steps building (hydraqueuerunner_steps_building)",
                "current jobs per machine (hydraqueuerunner_machine_current_jobs)"
            ]
        );
    }

    #[test]
    fn neither_exporter_is_one_clear_line() {
        let e = metrics::parse("# TYPE go_goroutines gauge\ngo_goroutines 7\n").unwrap();
        let err = to_status(&e, "m.prom").unwrap_err().to_string();
        assert!(
            err.starts_with("m.prom: not a queue-runner status: Prometheus text, but expected"),
            "{err}"
        );
        assert!(
            err.contains("hydraqueuerunner_steps_runnable")
                && err.contains("hydra_queue_runner_steps_runnable")
                && err.contains("go_goroutines"),
            "{err}"
        );
        let e = metrics::parse("hydraqueuerunner_queue_checks_started_total 3\n").unwrap();
        let err = to_status(&e, "m").unwrap_err().to_string();
        assert!(err.contains("nine queue-monitor counters"), "{err}");
        let e = metrics::parse(
            "hydraqueuerunner_steps_runnable 1\nhydra_queue_runner_steps_runnable 2\n",
        )
        .unwrap();
        assert!(to_status(&e, "m").unwrap_err().to_string().contains("both"));
    }

    #[test]
    fn absurd_values_are_refused_like_a_documents() {
        let e = metrics::parse("hydraqueuerunner_steps_building -1\n").unwrap();
        let err = to_status(&e, "m").unwrap_err().to_string();
        assert!(err.contains("`steps_building` is -1"), "{err}");
        // Non-finite values are missing, not refused.
        let e = metrics::parse("hydraqueuerunner_steps_building NaN\n").unwrap();
        assert_eq!(to_status(&e, "m").unwrap().1.steps_building, None);
    }
}
