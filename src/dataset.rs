//! The dataset: the one place that names every table and column the tool works with.
//!
//! Every source (PostgreSQL, a Parquet snapshot, the built-in sample) produces a [`Dataset`] whose
//! frames follow the [`TableDef`]s below exactly: same column names, same order, same types. The
//! analysis never sees a Hydra column name; it sees these. Times are unix seconds (`i64`, so that
//! sums over millions of steps cannot overflow), sizes are bytes, `overhead_ms` is milliseconds.

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::strings::{Interner, StrBuilder};
use crate::window::Window;

/// The physical type of a column. Four are enough for everything Hydra stores that we read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    I32,
    I64,
    Bool,
    Str,
}

impl ColType {
    pub fn dtype(self) -> DataType {
        match self {
            ColType::I32 => DataType::Int32,
            ColType::I64 => DataType::Int64,
            ColType::Bool => DataType::Boolean,
            ColType::Str => DataType::String,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct ColumnDef {
    pub name: &'static str,
    pub ty: ColType,
    /// What the column holds and where it comes from in Hydra.
    pub doc: &'static str,
}

const fn col(name: &'static str, ty: ColType, doc: &'static str) -> ColumnDef {
    ColumnDef { name, ty, doc }
}

#[derive(Debug)]
pub struct TableDef {
    pub name: &'static str,
    pub doc: &'static str,
    pub columns: &'static [ColumnDef],
    /// Snapshots split this table into one Parquet file per UTC day of this time column, because
    /// it grows with history (millions of rows a month on a large Hydra); small tables stay whole.
    pub partition_by: Option<&'static str>,
    /// The columns that identify a row; every source sorts by them, so the same data always
    /// gives the same frames.
    pub key: &'static [&'static str],
}

impl TableDef {
    pub fn schema(&self) -> Schema {
        self.columns
            .iter()
            .map(|c| Field::new(c.name.into(), c.ty.dtype()))
            .collect()
    }

    pub fn empty(&self) -> DataFrame {
        DataFrame::empty_with_schema(&self.schema())
    }

    pub fn column(&self, name: &str) -> Option<&ColumnDef> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The names of this table's columns that `omit` keeps, in order.
    pub fn kept(&self, omit: Omit) -> Vec<&'static str> {
        self.columns
            .iter()
            .filter(|c| !is_omitted(omit, self.name, c.name))
            .map(|c| c.name)
            .collect()
    }

    /// `df` with this table's columns in order, those that `omit` leaves out as columns of
    /// nulls that hold no data (whether or not `df` has them).
    pub fn blank(&self, df: &DataFrame, omit: Omit) -> PolarsResult<DataFrame> {
        let height = df.height();
        let cols: PolarsResult<Vec<Column>> = self
            .columns
            .iter()
            .map(|c| {
                if is_omitted(omit, self.name, c.name) {
                    Ok(Column::full_null(c.name.into(), height, &c.ty.dtype()))
                } else {
                    df.column(c.name).cloned()
                }
            })
            .collect();
        DataFrame::new(height, cols?)
    }

    /// Checks that `df` has exactly this table's columns, in order, with their types; the error
    /// names the first column that differs.
    pub fn check(&self, df: &DataFrame) -> Result<(), String> {
        let got: Vec<(String, DataType)> = df
            .columns()
            .iter()
            .map(|c| (c.name().to_string(), c.dtype().clone()))
            .collect();
        for (i, def) in self.columns.iter().enumerate() {
            match got.get(i) {
                None => return Err(format!("column `{}` is missing", def.name)),
                Some((name, _)) if name != def.name => {
                    return Err(format!(
                        "column {} is `{name}`, expected `{}`",
                        i + 1,
                        def.name
                    ));
                }
                Some((_, dtype)) if *dtype != def.ty.dtype() => {
                    return Err(format!(
                        "column `{}` has type {dtype}, expected {}",
                        def.name,
                        def.ty.dtype()
                    ));
                }
                Some(_) => {}
            }
        }
        if got.len() > self.columns.len() {
            return Err(format!("unexpected column `{}`", got[self.columns.len()].0));
        }
        Ok(())
    }
}

/// Columns a command never reads, as (table, column): left out when a dataset is loaded, each
/// becomes a column of nulls that costs no memory. Every table keeps its shape, so nothing else
/// changes; a command that reads an omitted column would see nulls, so only commands whose
/// every reader is known use an omission.
pub type Omit = &'static [(&'static str, &'static str)];

/// What the analyses, the report and the simulation never read (a step's `busy` is read: the
/// window rule tells running steps from finished ones by it, `window::Window::step_expr`): the
/// step outputs (only `compress --from-outputs` picks from them, and a snapshot's store
/// writes them into each `.drv`), builds' names (over ten million steps these
/// hold about 1.3 GB of strings), and the status columns kept for `query` and snapshots
/// (a step's determinism flag, a build's status and closure size), and the
/// sample's true step timings but for the two waits the ledger counts as held.
pub const NOT_ANALYSED: Omit = crate::not_analysed_and![];

/// [`NOT_ANALYSED`] and the columns listed, as `(table, column)` pairs: what one finding leaves
/// unread on top of what no analysis reads (`analysis::Need::omit`).
#[macro_export]
macro_rules! not_analysed_and {
    [$(($t:literal, $c:literal)),* $(,)?] => {
        &[
            ("step_outputs", "build"),
            ("step_outputs", "stepnr"),
            ("step_outputs", "name"),
            ("step_outputs", "path"),
            ("builds", "nix_name"),
            ("steps", "is_non_deterministic"),
            ("builds", "build_status"),
            ("builds", "closure_size"),
            ("truth_steps", "input_closure_size"),
            ("truth_steps", "dispatch_time_ms"),
            ("truth_steps", "send_ms"),
            ("truth_steps", "build_ms"),
            ("truth_steps", "receive_ms"),
            $(($t, $c)),*
        ]
    };
}

/// String columns whose values repeat over millions of rows: machine, platform, project,
/// jobset and job names. [`share_repeated`] stores each distinct value once per column.
pub const REPEATED: &[(&str, &str)] = &[
    ("steps", "machine"),
    ("steps", "system"),
    ("builds", "project"),
    ("builds", "jobset"),
    ("builds", "job"),
    ("builds", "system"),
];

/// `df` with each of its [`REPEATED`] columns holding every distinct value once, all rows that
/// hold it pointing at the same bytes. Polars' string views leave values of up to 12 bytes
/// inline but copy every longer one per row: a 35-byte machine URI costs 35 bytes a step,
/// about 360 MB over ten million steps, where shared it costs nothing beyond the view.
/// Values are unchanged; only where they are stored changes.
pub fn share_repeated(def: &TableDef, mut df: DataFrame) -> PolarsResult<DataFrame> {
    for &(table, name) in REPEATED {
        if table != def.name || !df.get_column_names().iter().any(|c| c.as_str() == name) {
            continue;
        }
        let shared = crate::strings::shared(df.column(name)?.str()?);
        df.replace(name, shared.into_column())?;
    }
    Ok(df)
}

fn is_repeated(table: &str, column: &str) -> bool {
    REPEATED.iter().any(|&(t, c)| t == table && c == column)
}

fn is_omitted(omit: Omit, table: &str, column: &str) -> bool {
    omit.iter().any(|&(t, c)| t == table && c == column)
}

use ColType::{Bool, I32, I64, Str};

pub const STEPS: TableDef = TableDef {
    name: "steps",
    doc: "One row per derivation the queue runner built or substituted (Hydra's BuildSteps).",
    partition_by: Some("start_time"),
    key: &["build", "stepnr"],
    columns: &[
        col(
            "build",
            I32,
            "BuildSteps.build: the build the step is recorded under",
        ),
        col(
            "stepnr",
            I32,
            "BuildSteps.stepnr: number of the step within that build",
        ),
        col("type", I32, "BuildSteps.type: 0 build, 1 substitution"),
        col(
            "drv_path",
            Str,
            "BuildSteps.drvPath (null in some pre-86 rows)",
        ),
        col(
            "busy",
            I32,
            "BuildSteps.busy: 0 finished, otherwise the stage a running step is in",
        ),
        col(
            "status",
            I32,
            "BuildSteps.status: the step's status code, null while running",
        ),
        col(
            "start_time",
            I64,
            "BuildSteps.startTime, unix seconds; meaning depends on the runner",
        ),
        col(
            "stop_time",
            I64,
            "BuildSteps.stopTime, unix seconds; meaning depends on the runner",
        ),
        col(
            "machine",
            Str,
            "BuildSteps.machine: store URI of the builder, '' when local or unknown",
        ),
        col(
            "system",
            Str,
            "BuildSteps.system: the derivation's system type",
        ),
        col(
            "propagated_from",
            I32,
            "BuildSteps.propagatedFrom: the build whose failure this step inherited",
        ),
        col(
            "overhead_ms",
            I64,
            "BuildSteps.overhead: milliseconds copying inputs and outputs (since schema 45)",
        ),
        col(
            "times_built",
            I32,
            "BuildSteps.timesBuilt: builds done for determinism checks (since 52)",
        ),
        col(
            "is_non_deterministic",
            Bool,
            "BuildSteps.isNonDeterministic (since 52)",
        ),
    ],
};

pub const BUILDS: TableDef = TableDef {
    name: "builds",
    doc: "One row per job instance queued by an evaluation (Hydra's Builds, joined to Jobsets).",
    partition_by: Some("timestamp"),
    key: &["id"],
    columns: &[
        col("id", I32, "Builds.id"),
        col("jobset_id", I32, "Builds.jobset_id"),
        col("project", Str, "Jobsets.project of the build's jobset"),
        col("jobset", Str, "Jobsets.name of the build's jobset"),
        col("job", Str, "Builds.job"),
        col("system", Str, "Builds.system"),
        col("nix_name", Str, "Builds.nixName"),
        col(
            "timestamp",
            I64,
            "Builds.timestamp: when the build was queued, unix seconds",
        ),
        col("start_time", I64, "Builds.startTime, unix seconds"),
        col("stop_time", I64, "Builds.stopTime, unix seconds"),
        col("finished", Bool, "Builds.finished = 1"),
        col(
            "build_status",
            I32,
            "Builds.buildStatus: the build's status code",
        ),
        col(
            "is_cached_build",
            Bool,
            "Builds.isCachedBuild = 1: nothing was built",
        ),
        col("priority", I32, "Builds.priority (meta.schedulingPriority)"),
        col("global_priority", I32, "Builds.globalPriority"),
        col(
            "size",
            I64,
            "Builds.size: NAR size of the build's outputs, bytes",
        ),
        col(
            "closure_size",
            I64,
            "Builds.closureSize: NAR size of the outputs' closure, bytes",
        ),
        col(
            "drv_path",
            Str,
            "Builds.drvPath: the build's own derivation (its top-level step's)",
        ),
    ],
};

pub const STEP_OUTPUTS: TableDef = TableDef {
    name: "step_outputs",
    doc: "The outputs each step produced (Hydra's BuildStepOutputs).",
    partition_by: None,
    key: &["build", "stepnr", "name"],
    columns: &[
        col("build", I32, "BuildStepOutputs.build"),
        col("stepnr", I32, "BuildStepOutputs.stepnr"),
        col(
            "name",
            Str,
            "BuildStepOutputs.name: output name such as `out`",
        ),
        col(
            "path",
            Str,
            "BuildStepOutputs.path: the store path (nullable since 84)",
        ),
    ],
};

pub const JOBSETS: TableDef = TableDef {
    name: "jobsets",
    doc: "Every jobset (Hydra's Jobsets).",
    partition_by: None,
    key: &["id"],
    columns: &[
        col("id", I32, "Jobsets.id"),
        col("project", Str, "Jobsets.project"),
        col("name", Str, "Jobsets.name"),
        col(
            "enabled",
            I32,
            "Jobsets.enabled: 0 off, 1 on, 2 one-shot, 3 one-at-a-time",
        ),
        col("scheduling_shares", I32, "Jobsets.schedulingShares"),
        col("check_interval", I32, "Jobsets.checkInterval, seconds"),
    ],
};

pub const EVALS: TableDef = TableDef {
    name: "evals",
    doc: "Evaluations of jobsets (Hydra's JobsetEvals).",
    partition_by: None,
    key: &["id"],
    columns: &[
        col("id", I32, "JobsetEvals.id"),
        col("jobset_id", I32, "JobsetEvals.jobset_id"),
        col("timestamp", I64, "JobsetEvals.timestamp, unix seconds"),
        col("checkout_time", I64, "JobsetEvals.checkoutTime, seconds"),
        col("eval_time", I64, "JobsetEvals.evalTime, seconds"),
        col("has_new_builds", Bool, "JobsetEvals.hasNewBuilds = 1"),
        col("nr_builds", I32, "JobsetEvals.nrBuilds"),
        col("nr_succeeded", I32, "JobsetEvals.nrSucceeded"),
    ],
};

/// Ground truth only the sample generator knows: which steps each step waited for. Hydra does not
/// store the step graph, so this table exists to validate estimators of it.
pub const TRUTH_DEPS: TableDef = TableDef {
    name: "truth_deps",
    doc: "Sample only: the true dependency edges between steps (step waited for dep).",
    partition_by: None,
    key: &["build", "stepnr", "dep_build", "dep_stepnr"],
    columns: &[
        col("build", I32, "the dependent step's build"),
        col("stepnr", I32, "the dependent step's stepnr"),
        col("dep_build", I32, "the dependency's build"),
        col("dep_stepnr", I32, "the dependency's stepnr"),
    ],
};

/// Ground truth only the sample generator knows: the parts of each step's life that Hydra does
/// not store, for validating the ledger and calibrating the model.
pub const TRUTH_STEPS: TableDef = TableDef {
    name: "truth_steps",
    doc: "Sample only: per-step quantities Hydra does not record.",
    partition_by: None,
    key: &["build", "stepnr"],
    columns: &[
        col("build", I32, "the step's build"),
        col("stepnr", I32, "the step's stepnr"),
        col(
            "output_nar_size",
            I64,
            "NAR size of the step's outputs, bytes",
        ),
        col(
            "input_closure_size",
            I64,
            "NAR size of inputs copied to the builder, bytes",
        ),
        col(
            "dispatch_time_ms",
            I64,
            "when the step got a builder slot, unix milliseconds",
        ),
        col(
            "send_lock_wait_ms",
            I64,
            "waiting for the per-machine send lock",
        ),
        col("send_ms", I64, "copying inputs to the builder"),
        col("build_ms", I64, "building on the builder"),
        col(
            "local_slot_wait_ms",
            I64,
            "waiting for a local worker slot, builder slot held",
        ),
        col(
            "receive_ms",
            I64,
            "copying outputs back, compression included",
        ),
    ],
};

/// Ground truth only the sample generator knows: the ledger's unrecorded buckets, exactly, per
/// machine and hour (`sample::losses`), for the ledger's sources to be held against.
pub const TRUTH_LOSSES: TableDef = TableDef {
    name: "truth_losses",
    doc: "Sample only: true dispatch loss (and its dispatcher part) and held slot time per \
          machine and hour.",
    partition_by: None,
    key: &["hour", "machine"],
    columns: &[
        col("machine", Str, "the machine's store URI"),
        col("hour", I64, "the hour's start, unix seconds"),
        col(
            "dispatch_loss_ms",
            I64,
            "slot time idle while a step it could build was ready (build queued, inputs valid)",
        ),
        col(
            "dispatcher_ms",
            I64,
            "of it, while the step was on the runner's runnable list; the rest is the queue \
             monitor's",
        ),
        col(
            "held_ms",
            I64,
            "slot time held waiting for the send lock or a local worker slot",
        ),
    ],
};

/// The tables every source provides, in the order snapshots list them.
pub const CORE_TABLES: [&TableDef; 5] = [&STEPS, &BUILDS, &STEP_OUTPUTS, &JOBSETS, &EVALS];
/// The sample's extra ground-truth tables.
pub const TRUTH_TABLES: [&TableDef; 3] = [&TRUTH_DEPS, &TRUTH_STEPS, &TRUTH_LOSSES];

pub fn table_def(name: &str) -> Option<&'static TableDef> {
    CORE_TABLES
        .into_iter()
        .chain(TRUTH_TABLES)
        .find(|t| t.name == name)
}

/// Which queue runner wrote the step rows. Step times mean different things under each
/// (docs/hydra.md §3), so every analysis must know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runner {
    /// The C++ hydra-queue-runner: start/stop are the builder's build times, overhead includes
    /// compression on the queue-runner host.
    Cpp,
    /// The Rust queue runner (2026): stop is the runner's clock, overhead = import + upload.
    Rust,
}

impl std::fmt::Display for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Runner::Cpp => "cpp",
            Runner::Rust => "rust",
        })
    }
}

/// Where a dataset came from, said in every output so real and sample data are never confused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Origin {
    /// A live database; `conninfo` is redacted (no password).
    Postgres { conninfo: String },
    /// A snapshot directory, and the origin recorded in its manifest.
    Snapshot { dir: String, from: Box<Origin> },
    /// The built-in generator.
    Sample {
        preset: String,
        seed: u64,
        scale: f64,
        /// Consecutive weeks, ending with the preset's (`sample --weeks`); 1, and not written,
        /// for the preset's week alone.
        #[serde(default = "one_week", skip_serializing_if = "is_one_week")]
        weeks: u32,
    },
}

fn one_week() -> u32 {
    1
}

fn is_one_week(w: &u32) -> bool {
    *w == 1
}

impl Origin {
    pub fn is_sample(&self) -> bool {
        match self {
            Origin::Sample { .. } => true,
            Origin::Snapshot { from, .. } => from.is_sample(),
            Origin::Postgres { .. } => false,
        }
    }

    /// A short description for one line of output.
    pub fn describe(&self) -> String {
        match self {
            Origin::Postgres { conninfo } => format!("PostgreSQL {conninfo}"),
            Origin::Snapshot { dir, from } => format!("snapshot {dir} (of {})", from.describe()),
            Origin::Sample {
                preset,
                seed,
                scale,
                weeks: 1,
            } => format!("built-in sample {preset} (seed {seed}, scale {scale})"),
            Origin::Sample {
                preset,
                seed,
                scale,
                weeks,
            } => format!("built-in sample {preset} (seed {seed}, scale {scale}, {weeks} weeks)"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetMeta {
    pub origin: Origin,
    /// `SchemaVersion.version` of the source database, when known.
    pub schema_version: Option<i32>,
    pub runner: Runner,
    /// How `runner` was decided: given by the user, or the evidence it was detected from.
    pub runner_basis: String,
    /// When the history spans both runners (`source::era`): steps that started at or after
    /// this instant (unix seconds) were written by the Rust runner, earlier ones by the C++
    /// runner; `runner` is then the Rust one. [`DatasetMeta::runner_at`] reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_switch: Option<i64>,
    /// The window the rows were selected with (absolute unix seconds): the span the data covers,
    /// which is narrower than the window asked for when that reached beyond the data.
    pub window: Window,
    /// Set when the window asked for reached beyond the data: what was asked, what is measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_note: Option<String>,
    /// The queue runner's configuration, where the data states it: the sample generator records
    /// the one it simulated. A Hydra database does not hold it; the model then assumes values
    /// and says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_runner: Option<QueueRunnerConfig>,
}

impl DatasetMeta {
    /// The runner that wrote a step that started at `start`: each step is read by its own
    /// era's rules. A step with no start (never started) belongs to the latest era.
    pub fn runner_at(&self, start: Option<i64>) -> Runner {
        match (self.runner_switch, start) {
            (Some(at), Some(s)) if s < at => Runner::Cpp,
            _ => self.runner,
        }
    }
}

/// What of the queue runner's configuration a dataset can carry beside its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueRunnerConfig {
    /// Local worker slots on the queue-runner host (the C++ runner's `--max-local-workers`
    /// analogue the sample models): what receiving and compressing outputs queue for.
    pub local_workers: u32,
}

/// The machines file that came with the data: its text (what a snapshot writes back) and its
/// machines, parsed once when the data is loaded so that no command parses it again.
#[derive(Debug, Clone, PartialEq)]
pub struct BundledMachines {
    pub text: String,
    pub machines: Vec<crate::nix::BuildMachine>,
}

impl BundledMachines {
    /// Parses `text`; a file that does not parse is an error of the data it came with.
    pub fn parse(text: String) -> crate::Result<BundledMachines> {
        let machines = crate::nix::machines::parse(&text)?;
        Ok(BundledMachines { text, machines })
    }
}

/// Everything one analysis run reads.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub meta: DatasetMeta,
    pub steps: DataFrame,
    pub builds: DataFrame,
    pub step_outputs: DataFrame,
    pub jobsets: DataFrame,
    pub evals: DataFrame,
    /// Ground truth, present only for the built-in sample (and snapshots of it).
    pub truth: Option<Truth>,
    /// The machines file (`/etc/nix/machines` format) that came with the data, if any.
    pub machines: Option<BundledMachines>,
    /// The queue runner's own series over the window (Prometheus, `status --watch`, a snapshot's
    /// `runner_series`, or the sample's runner), if any.
    pub timeline: Option<crate::status::timeline::Timeline>,
    /// The derivation graph of the steps, as far as a store held it (`--drv-store`, the sample).
    pub drv_graph: Option<crate::nix::graph::DrvGraph>,
}

#[derive(Debug, Clone)]
pub struct Truth {
    pub deps: DataFrame,
    pub steps: DataFrame,
    /// Dispatch loss per machine and hour, as the generator's runner lived it
    /// (`sample::losses`): `machine`, `hour` (unix seconds), `dispatch_loss_ms` (slot time an
    /// undelayed dispatcher would have used, counting steps from when they were ready) and
    /// `dispatcher_ms` (the same counting steps from when the runner listed them as runnable;
    /// the rest is the queue monitor's) and `held_ms` (slots held waiting for the send lock or
    /// a local worker slot); a snapshot keeps it as the table `truth_losses` ([`TRUTH_LOSSES`]).
    pub losses: Option<DataFrame>,
    /// The Rust-runner sample only, and not kept by snapshots: per machine and hour
    /// (`machine`, `hour`, `throttled_ms`), the slot time the machine-free function held back
    /// for the builder's pressure while a step the machine could build was ready.
    pub throttled: Option<DataFrame>,
}

/// The truth of the ledger's unrecorded buckets over a window, slot-hours.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TruthLosses {
    /// Whole dispatch loss (steps counted from when they were ready).
    pub dispatch_loss_h: f64,
    /// Its dispatcher part (steps on the runner's runnable list); the rest is the queue monitor's.
    pub dispatcher_h: f64,
    pub held_h: f64,
    /// The same per machine (URI).
    pub by_machine: std::collections::BTreeMap<String, (f64, f64, f64)>,
}

impl Truth {
    /// Sums [`Truth::losses`] over the whole hours inside `[lo, hi)` (unix seconds).
    pub fn losses_in(&self, lo: i64, hi: i64) -> PolarsResult<Option<TruthLosses>> {
        let Some(df) = &self.losses else {
            return Ok(None);
        };
        let machine = df.column("machine")?.str()?;
        let hour = df.column("hour")?.i64()?;
        let cols = ["dispatch_loss_ms", "dispatcher_ms", "held_ms"]
            .map(|c| df.column(c).and_then(|c| c.i64().cloned()));
        let [loss, disp, held] = cols;
        let (loss, disp, held) = (loss?, disp?, held?);
        let mut out = TruthLosses::default();
        for i in 0..df.height() {
            let (Some(m), Some(h)) = (machine.get(i), hour.get(i)) else {
                continue;
            };
            if h < lo || h + 3600 > hi {
                continue;
            }
            let v = |c: &Int64Chunked| c.get(i).unwrap_or(0) as f64 / 3.6e6;
            let e = out.by_machine.entry(m.to_string()).or_default();
            e.0 += v(&loss);
            e.1 += v(&disp);
            e.2 += v(&held);
            out.dispatch_loss_h += v(&loss);
            out.dispatcher_h += v(&disp);
            out.held_h += v(&held);
        }
        Ok(Some(out))
    }
}

/// [`Dataset::extent`] gathered a chunk of rows at a time (`snapshot --db` never holds the
/// window whole).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extent {
    since: Option<i64>,
    first: Option<i64>,
    last: Option<i64>,
}

impl Extent {
    /// Queued times before `since` will not count.
    pub fn new(since: Option<i64>) -> Extent {
        Extent {
            since,
            first: None,
            last: None,
        }
    }

    fn times(df: &DataFrame, name: &str) -> PolarsResult<Int64Chunked> {
        Ok(df.column(name)?.as_materialized_series().i64()?.clone())
    }

    /// Some steps: their starts and stops.
    pub fn add_steps(&mut self, steps: &DataFrame) -> PolarsResult<()> {
        let (start, stop) = (
            Self::times(steps, "start_time")?,
            Self::times(steps, "stop_time")?,
        );
        self.first = self.first.into_iter().chain(start.min()).min();
        self.last = [self.last, stop.max(), start.max()]
            .into_iter()
            .flatten()
            .max();
        Ok(())
    }

    /// Some builds: their queued times at or after `since`.
    pub fn add_builds(&mut self, builds: &DataFrame) -> PolarsResult<()> {
        let queued = Self::times(builds, "timestamp")?;
        let queued = match self.since {
            Some(s) => queued.filter(&queued.gt_eq(s))?.min(),
            None => queued.min(),
        };
        self.first = self.first.into_iter().chain(queued).min();
        Ok(())
    }

    /// The earliest time and the latest, as [`Dataset::extent`] gives them.
    pub fn span(&self) -> (Option<i64>, Option<i64>) {
        (self.first, self.last)
    }
}

impl Dataset {
    /// The span the rows cover: the earliest step start or build queued time at or after
    /// `since`, and the latest step stop or start. A build owning a step in the window may have
    /// been queued long before it, so queued times before `since` do not count.
    pub fn extent(&self, since: Option<i64>) -> PolarsResult<(Option<i64>, Option<i64>)> {
        let mut e = Extent::new(since);
        e.add_steps(&self.steps)?;
        e.add_builds(&self.builds)?;
        Ok(e.span())
    }

    /// The core tables with their definitions, in snapshot order.
    pub fn core_tables(&self) -> [(&'static TableDef, &DataFrame); 5] {
        [
            (&STEPS, &self.steps),
            (&BUILDS, &self.builds),
            (&STEP_OUTPUTS, &self.step_outputs),
            (&JOBSETS, &self.jobsets),
            (&EVALS, &self.evals),
        ]
    }

    /// Every table present, truth included.
    pub fn tables(&self) -> Vec<(&'static TableDef, &DataFrame)> {
        let mut all = self.core_tables().to_vec();
        if let Some(t) = &self.truth {
            all.push((&TRUTH_DEPS, &t.deps));
            all.push((&TRUTH_STEPS, &t.steps));
            if let Some(l) = &t.losses {
                all.push((&TRUTH_LOSSES, l));
            }
        }
        all
    }

    /// Checks every frame against its definition.
    pub fn check(&self) -> Result<(), String> {
        for (def, df) in self.tables() {
            def.check(df)
                .map_err(|e| format!("table {}: {e}", def.name))?;
        }
        Ok(())
    }
}

/// Builds one column of a table value by value, in the column's physical type.
pub enum ColumnBuilder {
    I32(PrimitiveChunkedBuilder<Int32Type>),
    I64(PrimitiveChunkedBuilder<Int64Type>),
    Bool(BooleanChunkedBuilder),
    Str(StrBuilder),
    /// A [`REPEATED`] column: its values go to the table's [`Interner`] for that column, which
    /// lives across batches so that each distinct value is stored once for the whole table.
    Shared,
    /// An omitted column: its values (nulls) are dropped, and the finished table gets a column
    /// of nulls that holds no data.
    Skip,
}

impl ColumnBuilder {
    fn new(table: &str, def: &ColumnDef, capacity: usize, omit: Omit) -> Self {
        let name = PlSmallStr::from_static(def.name);
        if is_omitted(omit, table, def.name) {
            return ColumnBuilder::Skip;
        }
        if is_repeated(table, def.name) {
            return ColumnBuilder::Shared;
        }
        match def.ty {
            I32 => ColumnBuilder::I32(PrimitiveChunkedBuilder::new(name, capacity)),
            I64 => ColumnBuilder::I64(PrimitiveChunkedBuilder::new(name, capacity)),
            Bool => ColumnBuilder::Bool(BooleanChunkedBuilder::new(name, capacity)),
            Str => ColumnBuilder::Str(StrBuilder::with_capacity(capacity)),
        }
    }

    /// The batch's column; `None` for the columns the table finishes itself.
    fn finish(self, def: &ColumnDef) -> Option<Column> {
        Some(match self {
            ColumnBuilder::I32(b) => b.finish().into_column(),
            ColumnBuilder::I64(b) => b.finish().into_column(),
            ColumnBuilder::Bool(b) => b.finish().into_column(),
            ColumnBuilder::Str(b) => b.finish_chunked(def.name.into()).into_column(),
            ColumnBuilder::Shared | ColumnBuilder::Skip => return None,
        })
    }
}

/// Fills a table's frame row by row into typed column builders (no struct per row), finishing
/// one batch at a time so that memory stays proportional to the batch, not to a copy of the rows.
pub struct TableBuilder {
    def: &'static TableDef,
    omit: Omit,
    capacity: usize,
    pub cols: Vec<ColumnBuilder>,
    /// Per column, the interner of a [`ColumnBuilder::Shared`] one.
    interned: Vec<Option<Interner>>,
    rows: usize,
    done: Vec<DataFrame>,
    /// The first batch that could not be made into a frame (see `flush`).
    failed: Option<crate::Error>,
}

impl TableBuilder {
    pub fn new(def: &'static TableDef, batch_rows: usize) -> Self {
        Self::omitting(def, batch_rows, &[])
    }

    /// A builder that drops the values of the columns in `omit` as they arrive (they finish as
    /// columns of nulls), so that a left-out column never costs memory, not even for a batch.
    pub fn omitting(def: &'static TableDef, batch_rows: usize, omit: Omit) -> Self {
        let cols = Self::fresh(def, batch_rows, omit);
        let interned = cols
            .iter()
            .map(|c| matches!(c, ColumnBuilder::Shared).then(Interner::default))
            .collect();
        TableBuilder {
            def,
            omit,
            capacity: batch_rows,
            cols,
            interned,
            rows: 0,
            done: Vec::new(),
            failed: None,
        }
    }

    fn fresh(def: &TableDef, capacity: usize, omit: Omit) -> Vec<ColumnBuilder> {
        def.columns
            .iter()
            .map(|c| ColumnBuilder::new(def.name, c, capacity, omit))
            .collect()
    }

    pub fn def(&self) -> &'static TableDef {
        self.def
    }

    /// Marks the end of one row; finishes a batch when it is full.
    pub fn end_row(&mut self) {
        self.rows += 1;
        if self.rows == self.capacity {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.rows == 0 {
            return;
        }
        let cols = std::mem::replace(
            &mut self.cols,
            Self::fresh(self.def, self.capacity, self.omit),
        );
        let columns = cols
            .into_iter()
            .zip(self.def.columns)
            .filter_map(|(b, def)| b.finish(def))
            .collect();
        match DataFrame::new(self.rows, columns) {
            Ok(df) => self.done.push(df),
            // Only a caller that appended a column twice, or not at all, in one row gets here:
            // the table is wrong from then on, and `finish` says so.
            Err(e) => {
                self.failed.get_or_insert(self.error(e));
            }
        }
        self.rows = 0;
    }

    #[inline]
    pub fn i32(&mut self, col: usize, v: Option<i32>) {
        match &mut self.cols[col] {
            ColumnBuilder::I32(b) => b.append_option(v),
            ColumnBuilder::Skip => {}
            _ => unreachable!("column {} of {} is not i32", col, self.def.name),
        }
    }

    #[inline]
    pub fn i64(&mut self, col: usize, v: Option<i64>) {
        match &mut self.cols[col] {
            ColumnBuilder::I64(b) => b.append_option(v),
            ColumnBuilder::Skip => {}
            _ => unreachable!("column {} of {} is not i64", col, self.def.name),
        }
    }

    #[inline]
    pub fn bool(&mut self, col: usize, v: Option<bool>) {
        match &mut self.cols[col] {
            ColumnBuilder::Bool(b) => b.append_option(v),
            ColumnBuilder::Skip => {}
            _ => unreachable!("column {} of {} is not bool", col, self.def.name),
        }
    }

    #[inline]
    pub fn str(&mut self, col: usize, v: Option<&str>) {
        match &mut self.cols[col] {
            ColumnBuilder::Str(b) => b.push(v),
            // Every `Shared` column has its interner (`omitting` makes one for each, and `fresh`
            // rebuilds the same kinds of column at the same places).
            ColumnBuilder::Shared => {
                if let Some(interner) = self.interned[col].as_mut() {
                    interner.push(v);
                }
            }
            ColumnBuilder::Skip => {}
            _ => unreachable!("column {} of {} is not str", col, self.def.name),
        }
    }

    /// Number of rows added so far.
    pub fn len(&self) -> usize {
        self.done.iter().map(DataFrame::height).sum::<usize>() + self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A frame error while building this table.
    fn error(&self, cause: PolarsError) -> crate::Error {
        crate::Error::frame(format!("building table {}", self.def.name), cause)
    }

    /// The rows added so far as one frame ([`TableBuilder::finish`]), leaving the builder empty
    /// to take more: a long stream of rows handed on in pieces.
    pub fn take(&mut self) -> crate::Result<DataFrame> {
        let fresh = TableBuilder::omitting(self.def, self.capacity, self.omit);
        std::mem::replace(self, fresh).finish()
    }

    /// All rows as one frame (one chunk per batch, and one for each shared column). Fails only if
    /// a row did not get exactly one value for each column.
    pub fn finish(mut self) -> crate::Result<DataFrame> {
        self.flush();
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let height = self.len();
        let mut parts = std::mem::take(&mut self.done).into_iter();
        let mut df = parts.next().unwrap_or_default();
        for part in parts {
            df.vstack_mut_owned(part).map_err(|e| self.error(e))?;
        }
        let mut interned = std::mem::take(&mut self.interned).into_iter();
        let columns = self
            .def
            .columns
            .iter()
            .map(|c| {
                Ok(match interned.next().flatten() {
                    Some(i) => i.finish(c.name.into()).into_column(),
                    None if is_omitted(self.omit, self.def.name, c.name) => {
                        Column::full_null(c.name.into(), height, &c.ty.dtype())
                    }
                    None if height == 0 => Column::new_empty(c.name.into(), &c.ty.dtype()),
                    None => df.column(c.name).map_err(|e| self.error(e))?.clone(),
                })
            })
            .collect::<crate::Result<Vec<_>>>()?;
        DataFrame::new(height, columns).map_err(|e| self.error(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_with_a_column_set_twice_is_an_error_not_a_panic() {
        for batch in [1, 4] {
            let mut t = TableBuilder::new(&JOBSETS, batch);
            t.i32(0, Some(1));
            t.i32(0, Some(2));
            t.end_row();
            let err = t.finish().unwrap_err().line();
            assert!(err.starts_with("building table jobsets: "), "{err}");
        }
    }
}
