//! The queue runner's own series as the capacity ledger reads it: on a regular grid of sample
//! times, the runnable steps waiting per machine type, the jobs each machine holds, and the farm's
//! stage counters. One type whatever the series came from: a `status --watch` file, a `/metrics`
//! scrape, a Prometheus server's `query_range` (`status::prometheus`), a snapshot's
//! `runner_series` table, or the sample generator (which records what its runner would export).
//!
//! A value is the gauge as sampled at that instant; `NaN` marks a sample that is missing (a
//! scrape that failed, a gap in Prometheus), which the ledger skips rather than fills. Counting a
//! gauge sampled every `step_s` seconds as held until the next sample is what the ledger does;
//! the error bound that implies is the ledger's to state (`analysis::ledger`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The farm-wide stage counters both runners export (docs/hydra.md §5): how many steps are in
/// each phase of a dispatched step's life at the sample time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Building on the builder (`nrStepsBuilding`, `steps_building`).
    Building,
    /// Sending the input closure (`nrStepsCopyingTo`, `steps_copying_to`).
    CopyingTo,
    /// Receiving outputs (`nrStepsCopyingFrom`, `steps_copying_from`).
    CopyingFrom,
    /// Waiting for the machine's send lock (`nrStepsWaiting`, `steps_waiting`).
    WaitingSendLock,
    /// Finished building, waiting for a local worker slot to receive outputs
    /// (`nrStepsWaitingForDownloadSlot`; C++ runner only).
    WaitingDownloadSlot,
}

impl Stage {
    pub const ALL: [Stage; 5] = [
        Stage::Building,
        Stage::CopyingTo,
        Stage::CopyingFrom,
        Stage::WaitingSendLock,
        Stage::WaitingDownloadSlot,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Building => "building",
            Stage::CopyingTo => "copying_to",
            Stage::CopyingFrom => "copying_from",
            Stage::WaitingSendLock => "waiting_send_lock",
            Stage::WaitingDownloadSlot => "waiting_download_slot",
        }
    }

    pub fn parse(s: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// The runner's series on a regular grid.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timeline {
    /// Where the series came from, as the report says it ("Prometheus at http://…, query_range
    /// step 30 s", "the sample's runner", a file name). Never holds a credential.
    pub source: String,
    /// Which metric names it was read under ("hydraqueuerunner", "hydra_queue_runner", "status
    /// JSON").
    pub naming: String,
    /// The sampling interval, seconds.
    pub step_s: i64,
    /// Sample times, unix seconds, ascending, `step_s` apart.
    pub times: Vec<i64>,
    /// Runnable steps not yet dispatched, per machine type (`x86_64-linux`, or
    /// `x86_64-linux:big-parallel` for a step that requires features). Under the Rust runner
    /// `machine_type_runnable` counts running steps too; whoever builds the timeline subtracts
    /// `machine_type_running`, so this is always the steps waiting.
    pub runnable: BTreeMap<String, Vec<f64>>,
    /// Steps running per machine type (`machine_type_running`, the C++ `machineTypes.running`),
    /// where the source has it; may be empty.
    pub running: BTreeMap<String, Vec<f64>>,
    /// Jobs each machine holds (its `currentJobs`: builder slots reserved, whatever the step is
    /// doing), by machine name (hostname under the Rust runner, URI under the C++ runner).
    pub current_jobs: BTreeMap<String, Vec<f64>>,
    /// 1 while a machine is disabled after failures (C++ `disabledUntil` in the future), 0
    /// otherwise, where the source says; a disabled machine's free slots are not free to the
    /// dispatcher. The Rust runner never disables machines.
    pub disabled: BTreeMap<String, Vec<f64>>,
    /// Whether `disabled` also marks the machines the Rust runner's machine-free function held
    /// back (`hasCapacity` false in its `/status`: maxJobs, load or pressure over their
    /// thresholds), so that free slots from the series are the ones the runner would fill.
    /// Its `/metrics` has no such gauge: only `status --watch` of `/status` records it.
    pub capacity_known: bool,
    /// Farm-wide stage counters.
    pub stages: BTreeMap<Stage, Vec<f64>>,
}

impl Timeline {
    pub fn len(&self) -> usize {
        self.times.len()
    }

    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    /// The span the samples cover, `[first, last + step)`.
    pub fn span(&self) -> Option<(i64, i64)> {
        Some((*self.times.first()?, *self.times.last()? + self.step_s))
    }

    /// The index of the first sample at or after `t`.
    pub fn index_at(&self, t: i64) -> usize {
        self.times.partition_point(|&x| x < t)
    }

    /// The samples in `[lo, hi)`: index range.
    pub fn range(&self, lo: i64, hi: i64) -> std::ops::Range<usize> {
        self.index_at(lo)..self.index_at(hi)
    }
}
