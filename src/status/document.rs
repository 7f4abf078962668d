//! Parsing a status document into one normalised [`Status`], whichever runner wrote it.
//!
//! Both runners' documents are read through the same lenient serde structs: every field is
//! optional (`#[serde(default)]`), unknown fields are ignored, numbers may come as integers,
//! floats or numeric strings, and a field of an unexpected type is treated as missing rather
//! than failing the whole document — fields come and go between Hydra versions, and one odd
//! field should not hide all the others. Only a document that is not JSON, or not a JSON
//! object, is an error.
//!
//! Units are normalised: the C++ runner reports step times in seconds, the Rust runner in
//! milliseconds (`…Ms`); [`Status`] holds seconds.
//!
//! The Rust runner's `/status` is read from the structs that write it (NixOS/hydra
//! `subprojects/hydra-queue-runner/src/io/`, all `rename_all = "camelCase"`, at 14332fbf):
//! `response_types.rs` `DumpResponse` (`queueRunner`, `machines` by hostname, `jobsets`,
//! `store`, `s3` by bucket), `queue_runner.rs` `QueueRunnerStats`, `stats.rs`
//! `BuildQueueStats`, `machine.rs` `Machine`, `MachineStats`, `PressureState`. Master names the
//! per-system map `queueStats`; the named-queues line of development (pull request #1777,
//! 85df2b89) calls it `mainQueueStats` and adds `ofborgQueueStats` (left out when ofborg is not
//! configured). Both are read; [`Status::queues`] keeps each queue's figures as reported.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};

/// A number that tolerates ints, floats, numeric strings and `null`; anything else is "missing".
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Num(pub Option<f64>);

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(Num(match Value::deserialize(d)? {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        }
        .filter(|v| v.is_finite())))
    }
}

/// A time: unix seconds as a number (C++ runner) or an RFC 3339 string (Rust runner).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Time(Option<f64>);

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(Time(
            match Value::deserialize(d)? {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse::<f64>().ok().or_else(|| {
                    chrono::DateTime::parse_from_rfc3339(s.trim())
                        .ok()
                        .map(|t| {
                            t.timestamp() as f64 + f64::from(t.timestamp_subsec_millis()) / 1e3
                        })
                }),
                _ => None,
            }
            .filter(|v| v.is_finite()),
        ))
    }
}

/// A string, or missing when the field holds anything else.
#[derive(Debug, Default, Clone, PartialEq)]
struct Text(Option<String>);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(Text(match Value::deserialize(d)? {
            Value::String(s) => Some(s),
            _ => None,
        }))
    }
}

/// A boolean (or 0/1), or missing.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Flag(Option<bool>);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(Flag(match Value::deserialize(d)? {
            Value::Bool(b) => Some(b),
            Value::Number(n) => n.as_f64().map(|v| v != 0.0),
            _ => None,
        }))
    }
}

/// A list of strings: an array (non-strings skipped) or one comma-separated string.
#[derive(Debug, Default, Clone, PartialEq)]
struct Strings(Vec<String>);

impl<'de> Deserialize<'de> for Strings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(Strings(match Value::deserialize(d)? {
            Value::Array(a) => a
                .into_iter()
                .filter_map(|v| match v {
                    Value::String(s) => Some(s),
                    _ => None,
                })
                .collect(),
            Value::String(s) => s
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        }))
    }
}

/// An object of `T` by name; entries that are not a `T` are skipped, and a non-object is empty.
#[derive(Debug, Clone)]
struct Map<T>(BTreeMap<String, T>);

impl<T> Default for Map<T> {
    fn default() -> Self {
        Map(BTreeMap::new())
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Map<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(Map(match Value::deserialize(d)? {
            Value::Object(o) => o
                .into_iter()
                .filter_map(|(k, v)| T::deserialize(v).ok().map(|t| (k, t)))
                .collect(),
            _ => BTreeMap::new(),
        }))
    }
}

/// A nested object, or missing when the field is absent or not that object.
#[derive(Debug, Clone)]
struct Nested<T>(Option<T>);

impl<T> Default for Nested<T> {
    fn default() -> Self {
        Nested(None)
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Nested<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Ok(Nested(if v.is_object() {
            T::deserialize(v).ok()
        } else {
            None
        }))
    }
}

/// The top level of both documents. The Rust runner puts its counters under `queueRunner`
/// with the same camelCase names, so that object is read with this same struct.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RawStatus {
    status: Text,
    time: Time,
    uptime: Num,
    nr_queued_builds: Num,
    build_count: Num,
    nr_unfinished_steps: Num,
    nr_steps_unfinished: Num,
    nr_runnable_steps: Num,
    nr_steps_runnable: Num,
    runnable_count: Num,
    nr_active_steps: Num,
    nr_steps_building: Num,
    nr_steps_copying_to: Num,
    nr_steps_copying_from: Num,
    nr_steps_waiting: Num,
    nr_steps_waiting_for_download_slot: Num,
    nr_unsupported_steps: Num,
    bytes_sent: Num,
    bytes_received: Num,
    nr_builds_done: Num,
    nr_steps_started: Num,
    nr_steps_done: Num,
    nr_retries: Num,
    max_nr_retries: Num,
    total_step_time: Num,
    total_step_build_time: Num,
    total_step_time_ms: Num,
    total_step_build_time_ms: Num,
    nr_queue_wakeups: Num,
    nr_dispatcher_wakeups: Num,
    dispatch_time_ms: Num,
    machines: Map<RawMachine>,
    jobsets: Map<Value>,
    machine_types: Map<RawMachineType>,
    /// Rust runner, master: the per-system queue statistics.
    queue_stats: Map<RawQueueStats>,
    /// Rust runner, named-queues line: the same map for the main queue, and ofborg's.
    main_queue_stats: Map<RawQueueStats>,
    ofborg_queue_stats: Map<RawQueueStats>,
    total_step_import_time_ms: Num,
    total_step_upload_time_ms: Num,
    machines_total: Num,
    machines_in_use: Num,
    store: Nested<RawStore>,
    s3: Value,
    queue_runner: Nested<Box<RawStatus>>,
}

/// One machine. The Rust runner nests its counters under `stats` (with `…Ms` names); that
/// object is read with this same struct and fills what the top level lacks.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RawMachine {
    enabled: Flag,
    system_types: Strings,
    systems: Strings,
    supported_features: Strings,
    mandatory_features: Strings,
    hostname: Text,
    max_jobs: Num,
    speed_factor: Num,
    current_jobs: Num,
    idle_since: Num,
    nr_steps_done: Num,
    total_step_time: Num,
    total_step_build_time: Num,
    avg_step_time: Num,
    avg_step_build_time: Num,
    total_step_time_ms: Num,
    total_step_build_time_ms: Num,
    avg_step_time_ms: Num,
    avg_step_build_time_ms: Num,
    total_step_import_time_ms: Num,
    total_step_upload_time_ms: Num,
    avg_step_import_time_ms: Num,
    avg_step_upload_time_ms: Num,
    disabled_until: Num,
    last_failure: Num,
    consecutive_failures: Num,
    since_last_ping: Num,
    last_ping: Num,
    has_capacity: Flag,
    has_dynamic_capacity: Flag,
    has_static_capacity: Flag,
    load1: Num,
    load5: Num,
    load15: Num,
    load1_threshold: Num,
    cpu_psi_threshold: Num,
    mem_psi_threshold: Num,
    io_psi_threshold: Num,
    build_dir_free_percent: Num,
    store_free_percent: Num,
    build_dir_avail_threshold: Num,
    store_avail_threshold: Num,
    pressure: Nested<RawPressureState>,
    stats: Nested<Box<RawMachine>>,
}

/// A builder's pressure stall information (`io/machine.rs` `PressureState`; each part is
/// `null` when the builder's kernel does not report it).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RawPressureState {
    cpu_some: Nested<RawPressure>,
    mem_full: Nested<RawPressure>,
    io_full: Nested<RawPressure>,
}

/// One PSI line (`io/machine.rs` `Pressure`: `avg10`, `avg60`, `avg300` in percent, `total`).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RawPressure {
    avg10: Num,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RawMachineType {
    runnable: Num,
    running: Num,
    wait_time: Num,
    last_active: Num,
}

/// The Rust runner's per-system queue statistics (`queueRunner.queueStats`, or
/// `mainQueueStats` and `ofborgQueueStats`): `io/stats.rs` `BuildQueueStats`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RawQueueStats {
    total_runnable: Num,
    active_runnable: Num,
    nr_runnable_waiting: Num,
    nr_runnable_disabled: Num,
    avg_runnable_time: Num,
    wait_time_ms: Num,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RawStore {
    nar_info_read: Num,
    nar_info_missing: Num,
    nar_read: Num,
    nar_read_bytes: Num,
    nar_write: Num,
    nar_write_bytes: Num,
    nar_write_compressed_bytes: Num,
    nar_write_compression_time_ms: Num,
    nar_compression_savings: Num,
    nar_compression_speed: Num,
    /// Older C++ runners nested the S3 figures here.
    s3: Value,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RawS3 {
    put: Num,
    put_bytes: Num,
    put_time_ms: Num,
    put_speed: Num,
    get: Num,
    get_bytes: Num,
    get_time_ms: Num,
    head: Num,
    cost_dollar_approx: Num,
}

/// Which queue runner wrote a document (their step times mean different things).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunnerKind {
    Cpp,
    Rust,
}

impl std::fmt::Display for RunnerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RunnerKind::Cpp => "C++ queue runner",
            RunnerKind::Rust => "Rust queue runner",
        })
    }
}

/// One status document, normalised: times in seconds, every figure optional.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    pub runner: RunnerKind,
    /// `up` or `down`, as reported.
    pub state: Option<String>,
    /// When the runner wrote the document (unix seconds).
    pub time: Option<f64>,
    pub uptime_s: Option<f64>,
    pub queued_builds: Option<f64>,
    pub unfinished_steps: Option<f64>,
    pub runnable_steps: Option<f64>,
    pub active_steps: Option<f64>,
    pub steps_building: Option<f64>,
    pub steps_copying_to: Option<f64>,
    pub steps_copying_from: Option<f64>,
    pub steps_waiting: Option<f64>,
    pub steps_waiting_for_local_slot: Option<f64>,
    pub unsupported_steps: Option<f64>,
    pub builds_done: Option<f64>,
    pub steps_started: Option<f64>,
    pub steps_done: Option<f64>,
    pub retries: Option<f64>,
    pub max_retries: Option<f64>,
    pub bytes_sent: Option<f64>,
    pub bytes_received: Option<f64>,
    pub total_step_time_s: Option<f64>,
    pub total_step_build_time_s: Option<f64>,
    /// Rust runner: the builders' import (inputs in) and upload (outputs out) phases of the
    /// finished steps, summed by the runner (`totalStepImportTimeMs`, `totalStepUploadTimeMs`).
    pub total_step_import_time_s: Option<f64>,
    pub total_step_upload_time_s: Option<f64>,
    /// Rust runner: builders connected (`machinesTotal`, which counts builders sharing a
    /// hostname apart, where `machines` keeps one of them) and those with jobs.
    pub machines_total: Option<f64>,
    pub machines_in_use: Option<f64>,
    pub queue_wakeups: Option<f64>,
    pub dispatcher_wakeups: Option<f64>,
    pub dispatch_time_ms: Option<f64>,
    pub jobsets: usize,
    pub machines: Vec<MachineStatus>,
    pub machine_types: Vec<MachineTypeStatus>,
    /// Rust runner: each queue's per-system statistics as reported (the figures of
    /// [`Status::machine_types`] are derived from them).
    pub queues: Vec<QueueStats>,
    /// Rust runner: the name of the map they came from, `queueStats` (master) or
    /// `mainQueueStats` (the named-queues line).
    pub queue_stats_field: Option<String>,
    /// Rust runner: what its queue listings (`/status/queues`) say of the steps waiting now;
    /// filled by [`super::add_queue_waits`], empty from a document alone.
    pub waits: Vec<super::queues::QueueWaits>,
    pub store: Option<StoreStatus>,
    pub s3: Vec<S3Status>,
}

/// One queue of one system under the Rust runner, as `BuildQueueStats` reports it
/// (`io/stats.rs`; what each figure counts is in `state/queue.rs`, docs/hydra.md §5).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct QueueStats {
    /// `main` (master's only queue, or the named-queues line's main queue) or `ofborg`.
    pub queue: String,
    pub system: String,
    /// Steps of the queue handed to a builder and not finished (`activeRunnable`).
    pub active_runnable: Option<f64>,
    /// The queue's length at the dispatcher's last pass, its active steps included
    /// (`totalRunnable`).
    pub total_runnable: Option<f64>,
    /// `nrRunnableWaiting`: found no builder at the dispatcher's last pass (see the notes of
    /// `figures`: a partial count).
    pub nr_runnable_waiting: Option<f64>,
    /// `nrRunnableDisabled`: waiting out a retry delay.
    pub nr_runnable_disabled: Option<f64>,
    /// `avgRunnableTime`: never written upstream, so 0.
    pub avg_runnable_time: Option<f64>,
    /// `waitTimeMs`: a counter since the runner started, not a current wait.
    pub wait_time_ms: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MachineStatus {
    /// The runner's name for it: the store URI (C++) or the builder's hostname (Rust).
    pub name: String,
    pub enabled: Option<bool>,
    pub systems: Vec<String>,
    pub supported_features: Vec<String>,
    pub mandatory_features: Vec<String>,
    /// Only the Rust runner reports it; otherwise it comes from a machines file.
    pub max_jobs: Option<f64>,
    pub speed_factor: Option<f64>,
    pub current_jobs: Option<f64>,
    pub steps_done: Option<f64>,
    pub total_step_time_s: Option<f64>,
    pub total_step_build_time_s: Option<f64>,
    pub avg_step_time_s: Option<f64>,
    pub avg_step_build_time_s: Option<f64>,
    /// Rust runner: the builder's import and upload phases of its finished steps.
    pub total_step_import_time_s: Option<f64>,
    pub total_step_upload_time_s: Option<f64>,
    pub avg_step_import_time_s: Option<f64>,
    pub avg_step_upload_time_s: Option<f64>,
    /// Rust runner: whether the runner would hand it a step now, by its machine-free
    /// function (`hasCapacity`), by maxJobs alone (`hasStaticCapacity`) and by load and
    /// pressure alone (`hasDynamicCapacity`); `state/machine.rs` `Machine::has_capacity`.
    pub has_capacity: Option<bool>,
    pub has_static_capacity: Option<bool>,
    pub has_dynamic_capacity: Option<bool>,
    /// Rust runner: the builder's last ping: load averages, and the 10-second pressure
    /// averages (%) that `has_dynamic_capacity` compares with the thresholds.
    pub load1: Option<f64>,
    pub load5: Option<f64>,
    pub load15: Option<f64>,
    pub load1_threshold: Option<f64>,
    pub cpu_some_avg10: Option<f64>,
    pub cpu_psi_threshold: Option<f64>,
    pub mem_full_avg10: Option<f64>,
    pub mem_psi_threshold: Option<f64>,
    pub io_full_avg10: Option<f64>,
    pub io_psi_threshold: Option<f64>,
    pub build_dir_free_percent: Option<f64>,
    pub build_dir_avail_threshold: Option<f64>,
    pub store_free_percent: Option<f64>,
    pub store_avail_threshold: Option<f64>,
    pub idle_since: Option<f64>,
    pub disabled_until: Option<f64>,
    pub last_failure: Option<f64>,
    pub consecutive_failures: Option<f64>,
    pub since_last_ping_s: Option<f64>,
}

/// Steps waiting per machine type (`system` or `system:feature,…`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MachineTypeStatus {
    pub name: String,
    pub runnable: Option<f64>,
    /// The C++ runner, and the Rust runner's `/metrics`.
    pub running: Option<f64>,
    /// Rust runner: runnable steps the dispatcher tried and found no builder ready for
    /// (`nrRunnableWaiting`, `hydraqueuerunner_machine_type_waiting`).
    pub waiting: Option<f64>,
    /// Rust runner: runnable steps waiting out a retry delay (`nrRunnableDisabled`,
    /// `hydraqueuerunner_machine_type_disabled`).
    pub disabled: Option<f64>,
    /// Summed seconds that the runnable steps of this type have waited.
    pub wait_time_s: Option<f64>,
    pub last_active: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StoreStatus {
    pub nar_info_read: Option<f64>,
    pub nar_info_missing: Option<f64>,
    pub nar_read: Option<f64>,
    pub nar_read_bytes: Option<f64>,
    pub nar_write: Option<f64>,
    pub nar_write_bytes: Option<f64>,
    pub nar_write_compressed_bytes: Option<f64>,
    pub nar_write_compression_time_ms: Option<f64>,
    /// As reported: 1 − compressed / uncompressed.
    pub nar_compression_savings: Option<f64>,
    /// As reported, MiB of NAR per second of compression.
    pub nar_compression_speed_mib_s: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct S3Status {
    /// The bucket (Rust runner); `None` for the C++ runner's single store.
    pub bucket: Option<String>,
    pub put: Option<f64>,
    pub put_bytes: Option<f64>,
    pub put_time_ms: Option<f64>,
    pub put_speed_mib_s: Option<f64>,
    pub get: Option<f64>,
    pub get_bytes: Option<f64>,
    pub get_time_ms: Option<f64>,
    pub head: Option<f64>,
    pub cost_dollar_approx: Option<f64>,
}

impl Status {
    /// A status of `runner` that says nothing yet: every figure missing, no machines.
    pub fn empty(runner: RunnerKind) -> Status {
        Status {
            runner,
            state: None,
            time: None,
            uptime_s: None,
            queued_builds: None,
            unfinished_steps: None,
            runnable_steps: None,
            active_steps: None,
            steps_building: None,
            steps_copying_to: None,
            steps_copying_from: None,
            steps_waiting: None,
            steps_waiting_for_local_slot: None,
            unsupported_steps: None,
            builds_done: None,
            steps_started: None,
            steps_done: None,
            retries: None,
            max_retries: None,
            bytes_sent: None,
            bytes_received: None,
            total_step_time_s: None,
            total_step_build_time_s: None,
            total_step_import_time_s: None,
            total_step_upload_time_s: None,
            machines_total: None,
            machines_in_use: None,
            queue_wakeups: None,
            dispatcher_wakeups: None,
            dispatch_time_ms: None,
            jobsets: 0,
            machines: Vec::new(),
            machine_types: Vec::new(),
            queues: Vec::new(),
            queue_stats_field: None,
            waits: Vec::new(),
            store: None,
            s3: Vec::new(),
        }
    }
}

/// Parses a status document; `origin` names where it came from, for the error message.
pub fn parse(text: &str, origin: &str) -> Result<Status> {
    let value: Value = serde_json::from_str(text).map_err(|e| Error::StatusDocument {
        origin: origin.to_string(),
        reason: describe_json_error(&e),
    })?;
    from_value(value, origin)
}

/// Normalises an already-parsed document.
pub fn from_value(value: Value, origin: &str) -> Result<Status> {
    if !value.is_object() {
        return Err(Error::StatusDocument {
            origin: origin.to_string(),
            reason: format!("expected a JSON object, found {}", json_kind(&value)),
        });
    }
    // Every field is lenient, so this cannot fail on an object; map it anyway rather than panic.
    let raw = RawStatus::deserialize(value).map_err(|e| Error::StatusDocument {
        origin: origin.to_string(),
        reason: e.to_string(),
    })?;
    let status = normalise(raw);
    check_ranges(&status).map_err(|reason| Error::StatusDocument {
        origin: origin.to_string(),
        reason,
    })?;
    Ok(status)
}

/// No figure either runner reports is wider than 64 bits (the C++ runner counts in `uint64_t`
/// and `time_t`, the Rust runner in `u64` and `i64`), times and durations included: a value
/// beyond 2^64 is not one a runner wrote, and taken as it is (5e307 ms) it turns shares and
/// rates into nonsense.
const MAX_FIGURE: f64 = 18_446_744_073_709_551_616.0;

/// The figures that may be negative: the share compression saved is below zero when a NAR
/// grew. Every other figure is a count, a size, a time or a duration.
const SIGNED: [&str; 1] = ["nar_compression_savings"];

/// Checks every figure of `status` (walked through its serialised form, so that none is
/// forgotten) against [`MAX_FIGURE`] and, but for [`SIGNED`], against zero. Non-finite values
/// were already dropped by [`Num`]. Returns which field is wrong, as a path of the normalised
/// document (`machines.<name>.current_jobs`).
pub(super) fn check_ranges(status: &Status) -> std::result::Result<(), String> {
    let v = serde_json::to_value(status).map_err(|e| e.to_string())?;
    check_value(&v, "", "")
}

fn check_value(v: &Value, path: &str, key: &str) -> std::result::Result<(), String> {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match v {
        Value::Object(m) => m.iter().try_for_each(|(k, x)| check_value(x, &join(k), k)),
        // Machines and the like are named by their name, which says more than an index.
        Value::Array(a) => a.iter().enumerate().try_for_each(|(i, x)| {
            let name = x.get("name").and_then(Value::as_str);
            let here = name.map_or_else(|| format!("{path}[{i}]"), &join);
            check_value(x, &here, key)
        }),
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            if !x.is_finite() || x.abs() > MAX_FIGURE {
                Err(format!(
                    "`{path}` is {x:e}, beyond any figure a runner reports (2^64)"
                ))
            } else if x < 0.0 && !SIGNED.contains(&key) {
                Err(format!(
                    "`{path}` is {x}: a count, size, time or duration cannot be negative"
                ))
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

/// serde_json's message, said the way a user reads it (a cut-off body is the common case).
fn describe_json_error(e: &serde_json::Error) -> String {
    match e.classify() {
        serde_json::error::Category::Eof => format!(
            "not valid JSON: the document ends early (line {}, column {}); truncated?",
            e.line(),
            e.column()
        ),
        _ => format!("not valid JSON: {e}"),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn ms_to_s(n: Num) -> Option<f64> {
    n.0.map(|v| v / 1000.0)
}

fn normalise(raw: RawStatus) -> Status {
    // The Rust runner nests its counters under `queueRunner` and a machine's under `stats`.
    let rust = raw.queue_runner.0.is_some()
        || !raw.queue_stats.0.is_empty()
        || !raw.main_queue_stats.0.is_empty()
        || raw.machines.0.values().any(|m| m.stats.0.is_some());
    let qr = raw.queue_runner.0.map(|b| *b).unwrap_or_default();
    // The top level wins, the Rust runner's `queueRunner` object fills in.
    let pick = |a: Num, b: Num| a.0.or(b.0);
    let first = |xs: &[Num]| xs.iter().find_map(|n| n.0);

    let machines = raw
        .machines
        .0
        .into_iter()
        .map(|(name, m)| machine(name, m))
        .collect();

    let mut machine_types: Vec<MachineTypeStatus> = raw
        .machine_types
        .0
        .into_iter()
        .map(|(name, t)| MachineTypeStatus {
            name,
            runnable: t.runnable.0,
            running: t.running.0,
            waiting: None,
            disabled: None,
            wait_time_s: t.wait_time.0,
            last_active: t.last_active.0,
        })
        .collect();
    let (queues, queue_stats_field) = rust_queues(
        [raw.queue_stats, qr.queue_stats],
        [raw.main_queue_stats, qr.main_queue_stats],
        [raw.ofborg_queue_stats, qr.ofborg_queue_stats],
    );
    if machine_types.is_empty() {
        machine_types = types_of_queues(&queues);
    }

    let mut s3 = s3_list(&raw.s3);
    let store = raw.store.0.map(|st| {
        if s3.is_empty() {
            s3 = s3_list(&st.s3);
        }
        StoreStatus {
            nar_info_read: st.nar_info_read.0,
            nar_info_missing: st.nar_info_missing.0,
            nar_read: st.nar_read.0,
            nar_read_bytes: st.nar_read_bytes.0,
            nar_write: st.nar_write.0,
            nar_write_bytes: st.nar_write_bytes.0,
            nar_write_compressed_bytes: st.nar_write_compressed_bytes.0,
            nar_write_compression_time_ms: st.nar_write_compression_time_ms.0,
            nar_compression_savings: st.nar_compression_savings.0,
            nar_compression_speed_mib_s: st.nar_compression_speed.0,
        }
    });

    Status {
        runner: if rust {
            RunnerKind::Rust
        } else {
            RunnerKind::Cpp
        },
        state: raw.status.0.or(qr.status.0),
        time: raw.time.0.or(qr.time.0),
        uptime_s: pick(raw.uptime, qr.uptime),
        queued_builds: first(&[
            raw.nr_queued_builds,
            qr.nr_queued_builds,
            raw.build_count,
            qr.build_count,
        ]),
        unfinished_steps: first(&[
            raw.nr_unfinished_steps,
            qr.nr_unfinished_steps,
            raw.nr_steps_unfinished,
            qr.nr_steps_unfinished,
        ]),
        runnable_steps: first(&[
            raw.nr_runnable_steps,
            qr.nr_runnable_steps,
            raw.nr_steps_runnable,
            qr.nr_steps_runnable,
            raw.runnable_count,
            qr.runnable_count,
        ]),
        active_steps: pick(raw.nr_active_steps, qr.nr_active_steps),
        steps_building: pick(raw.nr_steps_building, qr.nr_steps_building),
        steps_copying_to: pick(raw.nr_steps_copying_to, qr.nr_steps_copying_to),
        steps_copying_from: pick(raw.nr_steps_copying_from, qr.nr_steps_copying_from),
        steps_waiting: pick(raw.nr_steps_waiting, qr.nr_steps_waiting),
        steps_waiting_for_local_slot: pick(
            raw.nr_steps_waiting_for_download_slot,
            qr.nr_steps_waiting_for_download_slot,
        ),
        unsupported_steps: pick(raw.nr_unsupported_steps, qr.nr_unsupported_steps),
        builds_done: pick(raw.nr_builds_done, qr.nr_builds_done),
        steps_started: pick(raw.nr_steps_started, qr.nr_steps_started),
        steps_done: pick(raw.nr_steps_done, qr.nr_steps_done),
        retries: pick(raw.nr_retries, qr.nr_retries),
        max_retries: pick(raw.max_nr_retries, qr.max_nr_retries),
        bytes_sent: pick(raw.bytes_sent, qr.bytes_sent),
        bytes_received: pick(raw.bytes_received, qr.bytes_received),
        total_step_time_s: raw
            .total_step_time
            .0
            .or(qr.total_step_time.0)
            .or(ms_to_s(raw.total_step_time_ms))
            .or(ms_to_s(qr.total_step_time_ms)),
        total_step_build_time_s: raw
            .total_step_build_time
            .0
            .or(qr.total_step_build_time.0)
            .or(ms_to_s(raw.total_step_build_time_ms))
            .or(ms_to_s(qr.total_step_build_time_ms)),
        total_step_import_time_s: ms_to_s(raw.total_step_import_time_ms)
            .or(ms_to_s(qr.total_step_import_time_ms)),
        total_step_upload_time_s: ms_to_s(raw.total_step_upload_time_ms)
            .or(ms_to_s(qr.total_step_upload_time_ms)),
        machines_total: pick(raw.machines_total, qr.machines_total),
        machines_in_use: pick(raw.machines_in_use, qr.machines_in_use),
        queue_wakeups: pick(raw.nr_queue_wakeups, qr.nr_queue_wakeups),
        dispatcher_wakeups: pick(raw.nr_dispatcher_wakeups, qr.nr_dispatcher_wakeups),
        dispatch_time_ms: pick(raw.dispatch_time_ms, qr.dispatch_time_ms),
        jobsets: raw.jobsets.0.len().max(qr.jobsets.0.len()),
        machines,
        machine_types,
        queues,
        queue_stats_field,
        waits: Vec::new(),
        store,
        s3,
    }
}

/// The Rust runner's queues: master's `queueStats` (the main queue), else the named-queues
/// line's `mainQueueStats`, and its `ofborgQueueStats`; each map from the top level or, as
/// the runner writes it, from `queueRunner`. Returns them with the name of the map read.
fn rust_queues(
    master: [Map<RawQueueStats>; 2],
    named: [Map<RawQueueStats>; 2],
    ofborg: [Map<RawQueueStats>; 2],
) -> (Vec<QueueStats>, Option<String>) {
    let either = |[a, b]: [Map<RawQueueStats>; 2]| if a.0.is_empty() { b.0 } else { a.0 };
    let (master, named, ofborg) = (either(master), either(named), either(ofborg));
    let field = if !master.is_empty() {
        Some("queueStats")
    } else if !named.is_empty() || !ofborg.is_empty() {
        Some("mainQueueStats")
    } else {
        None
    };
    let main = if master.is_empty() { named } else { master };
    let one = |queue: &str, (system, q): (String, RawQueueStats)| QueueStats {
        queue: queue.to_string(),
        system,
        active_runnable: q.active_runnable.0,
        total_runnable: q.total_runnable.0,
        nr_runnable_waiting: q.nr_runnable_waiting.0,
        nr_runnable_disabled: q.nr_runnable_disabled.0,
        avg_runnable_time: q.avg_runnable_time.0,
        wait_time_ms: q.wait_time_ms.0,
    };
    let queues = main
        .into_iter()
        .map(|e| one("main", e))
        .chain(ofborg.into_iter().map(|e| one("ofborg", e)))
        .collect();
    (queues, field.map(str::to_string))
}

/// Per system over the Rust runner's queues (both queues' steps wait for the same builders):
/// runnable is the steps not handed to a builder, `totalRunnable − activeRunnable` (the
/// queue keeps a step until it finishes, `state/queue.rs` `BuildQueue::scrube_jobs`; between
/// the two updates the difference can dip below zero, which is none), running the active
/// ones, and the wait-time counter in seconds, as the runner's `/metrics` read the same
/// (`super::exporters`).
fn types_of_queues(queues: &[QueueStats]) -> Vec<MachineTypeStatus> {
    let mut by: BTreeMap<&str, MachineTypeStatus> = BTreeMap::new();
    let add = |a: &mut Option<f64>, b: Option<f64>| {
        if let Some(b) = b {
            *a = Some(a.unwrap_or(0.0) + b);
        }
    };
    for q in queues {
        let t = by
            .entry(q.system.as_str())
            .or_insert_with(|| MachineTypeStatus {
                name: q.system.clone(),
                ..MachineTypeStatus::default()
            });
        let not_running = match (q.total_runnable, q.active_runnable) {
            (Some(total), Some(active)) => Some((total - active).max(0.0)),
            (total, _) => total,
        };
        add(&mut t.runnable, not_running);
        add(&mut t.running, q.active_runnable);
        add(&mut t.waiting, q.nr_runnable_waiting);
        add(&mut t.disabled, q.nr_runnable_disabled);
        add(&mut t.wait_time_s, q.wait_time_ms.map(|v| v / 1000.0));
    }
    by.into_values().collect()
}

fn machine(name: String, m: RawMachine) -> MachineStatus {
    let s = m.stats.0.map(|b| *b).unwrap_or_default();
    // The Rust runner's field (under `stats`) where the C++ runner's is absent.
    let first = |a: Num, b: Num| a.0.or(b.0);
    let secs =
        |a: Num, b: Num, a_ms: Num, b_ms: Num| a.0.or(b.0).or(ms_to_s(a_ms)).or(ms_to_s(b_ms));
    let first_ms = |a: Num, b: Num| ms_to_s(a).or(ms_to_s(b));
    // Pressure is under `stats` as the runner writes it; a part is null when the builder's
    // kernel has no PSI.
    let psi = [&m.pressure.0, &s.pressure.0];
    let pressure = |part: fn(&RawPressureState) -> &Nested<RawPressure>| {
        psi.iter()
            .filter_map(|p| p.as_ref())
            .find_map(|p| part(p).0.as_ref().and_then(|x| x.avg10.0))
    };
    let systems = if !m.system_types.0.is_empty() {
        m.system_types.0
    } else if !m.systems.0.is_empty() {
        m.systems.0
    } else if !s.system_types.0.is_empty() {
        s.system_types.0
    } else {
        s.systems.0
    };
    let mut supported = m.supported_features.0;
    let mandatory = m.mandatory_features.0;
    for f in &mandatory {
        if !supported.contains(f) {
            supported.push(f.clone());
        }
    }
    MachineStatus {
        name: if name.is_empty() {
            m.hostname.0.unwrap_or_default()
        } else {
            name
        },
        enabled: m.enabled.0.or(s.enabled.0),
        systems,
        supported_features: supported,
        mandatory_features: mandatory,
        max_jobs: first(m.max_jobs, s.max_jobs),
        speed_factor: first(m.speed_factor, s.speed_factor),
        current_jobs: first(m.current_jobs, s.current_jobs),
        steps_done: first(m.nr_steps_done, s.nr_steps_done),
        total_step_time_s: secs(
            m.total_step_time,
            s.total_step_time,
            m.total_step_time_ms,
            s.total_step_time_ms,
        ),
        total_step_build_time_s: secs(
            m.total_step_build_time,
            s.total_step_build_time,
            m.total_step_build_time_ms,
            s.total_step_build_time_ms,
        ),
        avg_step_time_s: secs(
            m.avg_step_time,
            s.avg_step_time,
            m.avg_step_time_ms,
            s.avg_step_time_ms,
        ),
        avg_step_build_time_s: secs(
            m.avg_step_build_time,
            s.avg_step_build_time,
            m.avg_step_build_time_ms,
            s.avg_step_build_time_ms,
        ),
        total_step_import_time_s: first_ms(
            m.total_step_import_time_ms,
            s.total_step_import_time_ms,
        ),
        total_step_upload_time_s: first_ms(
            m.total_step_upload_time_ms,
            s.total_step_upload_time_ms,
        ),
        avg_step_import_time_s: first_ms(m.avg_step_import_time_ms, s.avg_step_import_time_ms),
        avg_step_upload_time_s: first_ms(m.avg_step_upload_time_ms, s.avg_step_upload_time_ms),
        has_capacity: m.has_capacity.0.or(s.has_capacity.0),
        has_static_capacity: m.has_static_capacity.0.or(s.has_static_capacity.0),
        has_dynamic_capacity: m.has_dynamic_capacity.0.or(s.has_dynamic_capacity.0),
        load1: first(m.load1, s.load1),
        load5: first(m.load5, s.load5),
        load15: first(m.load15, s.load15),
        load1_threshold: first(m.load1_threshold, s.load1_threshold),
        cpu_some_avg10: pressure(|p| &p.cpu_some),
        cpu_psi_threshold: first(m.cpu_psi_threshold, s.cpu_psi_threshold),
        mem_full_avg10: pressure(|p| &p.mem_full),
        mem_psi_threshold: first(m.mem_psi_threshold, s.mem_psi_threshold),
        io_full_avg10: pressure(|p| &p.io_full),
        io_psi_threshold: first(m.io_psi_threshold, s.io_psi_threshold),
        build_dir_free_percent: first(m.build_dir_free_percent, s.build_dir_free_percent),
        build_dir_avail_threshold: first(m.build_dir_avail_threshold, s.build_dir_avail_threshold),
        store_free_percent: first(m.store_free_percent, s.store_free_percent),
        store_avail_threshold: first(m.store_avail_threshold, s.store_avail_threshold),
        idle_since: first(m.idle_since, s.idle_since),
        disabled_until: first(m.disabled_until, s.disabled_until),
        last_failure: first(m.last_failure, s.last_failure),
        consecutive_failures: first(m.consecutive_failures, s.consecutive_failures),
        since_last_ping_s: first(m.since_last_ping, s.since_last_ping),
    }
}

/// `s3` is one object of counters (C++ runner) or an object of them per bucket (Rust runner).
fn s3_list(v: &Value) -> Vec<S3Status> {
    let Value::Object(o) = v else {
        return Vec::new();
    };
    let one = |bucket: Option<String>, v: &Value| {
        RawS3::deserialize(v.clone()).ok().map(|r| S3Status {
            bucket,
            put: r.put.0,
            put_bytes: r.put_bytes.0,
            put_time_ms: r.put_time_ms.0,
            put_speed_mib_s: r.put_speed.0,
            get: r.get.0,
            get_bytes: r.get_bytes.0,
            get_time_ms: r.get_time_ms.0,
            head: r.head.0,
            cost_dollar_approx: r.cost_dollar_approx.0,
        })
    };
    let counters = ["put", "putBytes", "get", "head", "costDollarApprox"];
    if counters.iter().any(|k| o.contains_key(*k)) {
        one(None, v).into_iter().collect()
    } else {
        o.iter()
            .filter(|(_, b)| b.is_object())
            .filter_map(|(k, b)| one(Some(k.clone()), b))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_any_form() {
        let s = parse(
            r#"{"nrRunnableSteps": 3.0, "nrActiveSteps": "4", "nrStepsBuilding": [1],
                "nrStepsDone": null, "uptime": 10, "whatever": {"x": 1}}"#,
            "t",
        )
        .unwrap();
        assert_eq!(s.runnable_steps, Some(3.0));
        assert_eq!(s.active_steps, Some(4.0));
        assert_eq!(s.steps_building, None);
        assert_eq!(s.steps_done, None);
        assert_eq!(s.uptime_s, Some(10.0));
        assert_eq!(s.runner, RunnerKind::Cpp);
    }

    #[test]
    fn empty_object_and_down() {
        let s = parse(r#"{"status":"down"}"#, "t").unwrap();
        assert_eq!(s.state.as_deref(), Some("down"));
        assert!(s.machines.is_empty() && s.store.is_none() && s.s3.is_empty());
    }

    #[test]
    fn clear_errors() {
        let e = parse("[1,2]", "x.json").unwrap_err().to_string();
        assert_eq!(
            e,
            "x.json: not a queue-runner status: expected a JSON object, found an array"
        );
        let e = parse(r#"{"status": "up", "machi"#, "x.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("ends early") && !e.contains('\n'), "{e}");
        let e = parse("<html>", "x.json").unwrap_err().to_string();
        assert!(
            e.starts_with("x.json: not a queue-runner status: not valid JSON"),
            "{e}"
        );
    }

    #[test]
    fn rust_runner_document() {
        let s = parse(
            r#"{"queueRunner": {"status": "up", "time": "2026-03-01T12:00:00Z",
                  "nrStepsBuilding": 5, "nrStepsRunnable": 7, "nrStepsDone": 100,
                  "totalStepTimeMs": 50000, "totalStepBuildTimeMs": 30000,
                  "mainQueueStats": {"x86_64-linux": {"totalRunnable": 7, "activeRunnable": 2,
                                                      "waitTimeMs": 9000}}},
                "machines": {"b1": {"hostname": "b1", "systems": ["x86_64-linux"], "maxJobs": 8,
                  "supportedFeatures": ["kvm"], "mandatoryFeatures": [],
                  "stats": {"currentJobs": 3, "nrStepsDone": 10, "totalStepTimeMs": 4000,
                            "totalStepBuildTimeMs": 3000, "lastFailure": 0,
                            "disabledUntil": 0, "consecutiveFailures": 0, "sinceLastPing": 2}}},
                "jobsets": {"p:j": {"seconds": 1}},
                "store": null,
                "s3": {"cache": {"put": 2, "putBytes": 2048, "putTimeMs": 1000,
                                 "costDollarApprox": 0.01}}}"#,
            "t",
        )
        .unwrap();
        assert_eq!(s.runner, RunnerKind::Rust);
        assert_eq!(s.time, Some(1_772_366_400.0));
        assert_eq!(s.runnable_steps, Some(7.0));
        assert_eq!(s.total_step_time_s, Some(50.0));
        let m = &s.machines[0];
        assert_eq!(m.max_jobs, Some(8.0));
        assert_eq!(m.current_jobs, Some(3.0));
        assert_eq!(m.total_step_time_s, Some(4.0));
        assert_eq!(m.systems, ["x86_64-linux"]);
        // 7 on the queue, 2 of them handed to a builder.
        assert_eq!(s.machine_types[0].runnable, Some(5.0));
        assert_eq!(s.machine_types[0].running, Some(2.0));
        assert_eq!(s.machine_types[0].wait_time_s, Some(9.0));
        assert_eq!(s.s3[0].bucket.as_deref(), Some("cache"));
        assert_eq!(s.jobsets, 1);
    }

    /// One queue entry as `io/stats.rs` `BuildQueueStats` writes it.
    fn queue(active: u32, total: u32, waiting: u32, disabled: u32, wait_ms: u32) -> String {
        format!(
            r#"{{"activeRunnable": {active}, "totalRunnable": {total},
                "nrRunnableWaiting": {waiting}, "nrRunnableDisabled": {disabled},
                "avgRunnableTime": 0, "waitTimeMs": {wait_ms}}}"#
        )
    }

    #[test]
    fn masters_queue_stats_and_the_named_queues_line_read_alike() {
        let x86 = queue(8, 38, 5, 1, 90_000);
        let master = format!(r#"{{"queueRunner": {{"queueStats": {{"x86_64-linux": {x86}}}}}}}"#);
        let named = format!(
            r#"{{"queueRunner": {{"mainQueueStats": {{"x86_64-linux": {x86}}},
                 "ofborgQueueStats": {{"x86_64-linux": {}}}}}}}"#,
            queue(2, 5, 3, 0, 1_000)
        );
        let m = parse(&master, "t").unwrap();
        assert_eq!(m.runner, RunnerKind::Rust);
        assert_eq!(m.queue_stats_field.as_deref(), Some("queueStats"));
        assert_eq!(m.queues.len(), 1);
        let t = &m.machine_types[0];
        // The queue keeps its running steps: runnable and not running is 38 − 8.
        assert_eq!(
            (t.runnable, t.running, t.waiting, t.disabled, t.wait_time_s),
            (Some(30.0), Some(8.0), Some(5.0), Some(1.0), Some(90.0))
        );
        let n = parse(&named, "t").unwrap();
        assert_eq!(n.queue_stats_field.as_deref(), Some("mainQueueStats"));
        let names: Vec<&str> = n.queues.iter().map(|q| q.queue.as_str()).collect();
        assert_eq!(names, ["main", "ofborg"]);
        // Both queues wait for the same builders: one type, summed.
        let t = &n.machine_types[0];
        assert_eq!(
            (t.runnable, t.running, t.waiting, t.wait_time_s),
            (Some(33.0), Some(10.0), Some(8.0), Some(91.0))
        );
        // ofborgQueueStats is left out when ofborg is not configured, and a dip of the queue
        // below its active steps (between two updates) is none waiting.
        let dip = format!(
            r#"{{"queueRunner": {{"mainQueueStats": {{"x": {}}}}}}}"#,
            queue(4, 3, 0, 0, 0)
        );
        let d = parse(&dip, "t").unwrap();
        assert_eq!(d.queues.len(), 1);
        assert_eq!(d.machine_types[0].runnable, Some(0.0));
    }

    #[test]
    fn a_machines_phases_capacity_and_pressure() {
        let s = parse(
            r#"{"queueRunner": {"totalStepImportTimeMs": 7000, "totalStepUploadTimeMs": 9000,
                  "machinesTotal": 3, "machinesInUse": 1},
                "machines": {"b": {"hostname": "b", "maxJobs": 4, "hasCapacity": false,
                  "hasDynamicCapacity": false, "hasStaticCapacity": true,
                  "load1Threshold": 8.0, "cpuPsiThreshold": 75.0, "memPsiThreshold": 80.0,
                  "ioPsiThreshold": null, "storeAvailThreshold": 10.0,
                  "stats": {"currentJobs": 1, "totalStepImportTimeMs": 3000,
                    "totalStepUploadTimeMs": 4000, "avgStepImportTimeMs": 1500,
                    "load1": 9.5, "storeFreePercent": 55.5,
                    "pressure": {"cpuSome": {"avg10": 90.5, "avg60": 1.0, "avg300": 1.0,
                                             "total": 5}, "memSome": null, "memFull": null,
                                 "ioSome": null, "ioFull": null, "irqFull": null}}}}}"#,
            "t",
        )
        .unwrap();
        assert_eq!(
            (s.total_step_import_time_s, s.total_step_upload_time_s),
            (Some(7.0), Some(9.0))
        );
        assert_eq!(
            (s.machines_total, s.machines_in_use),
            (Some(3.0), Some(1.0))
        );
        let m = &s.machines[0];
        assert_eq!(
            (m.total_step_import_time_s, m.total_step_upload_time_s),
            (Some(3.0), Some(4.0))
        );
        assert_eq!(m.avg_step_import_time_s, Some(1.5));
        assert_eq!(
            (
                m.has_capacity,
                m.has_static_capacity,
                m.has_dynamic_capacity
            ),
            (Some(false), Some(true), Some(false))
        );
        assert_eq!((m.load1, m.load1_threshold), (Some(9.5), Some(8.0)));
        assert_eq!(
            (m.cpu_some_avg10, m.cpu_psi_threshold),
            (Some(90.5), Some(75.0))
        );
        assert_eq!((m.mem_full_avg10, m.io_psi_threshold), (None, None));
        assert_eq!(m.store_free_percent, Some(55.5));
    }

    #[test]
    fn old_cpp_store_with_nested_s3() {
        let s = parse(
            r#"{"store": {"narWriteBytes": 100, "s3": {"put": 1, "putBytes": 50}}}"#,
            "t",
        )
        .unwrap();
        assert_eq!(s.s3.len(), 1);
        assert_eq!(s.s3[0].bucket, None);
        assert_eq!(s.s3[0].put_bytes, Some(50.0));
    }
}
