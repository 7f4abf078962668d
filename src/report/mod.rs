//! The report: one [`Report`] value holding every figure, built by pure functions from the
//! dataset's findings, the codec measurements and their projection, and (when the model has
//! run) the simulation; then written as Markdown, self-contained HTML, JSON and charts.
//!
//! Its first answer is the capacity waterfall — every builder slot-hour of the window in one
//! bucket, priced — and the recommendations ranked by what they are expected to save
//! ([`recommend`]); the rest is the evidence. [`doc`] lays the report out once as blocks that
//! [`markdown`] and [`html`] render, so both say the same; [`charts`] draws with plotters;
//! [`compare`] sets an older report's headline figures beside the new ones. Nothing here reads a
//! database or measures anything: the caller passes the results in.

pub mod charts;
pub mod compare;
pub mod doc;
pub mod fmt;
pub mod html;
pub mod markdown;
pub mod recommend;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::analysis::{self, Distribution, Findings};
use crate::compress::CodecSummary;
use crate::compress::project::{self, Costs, MONTH_HOURS, Projection};
use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::interval::finite;
use crate::nix::BuildMachine;

/// The version of `report.json`'s layout. Raised when a field changes meaning or is removed
/// (adding one does not); `--compare` refuses a report of another version, save the older ones
/// it still reads ([`compare::OLDEST_FORMAT`]). 2: figures at full precision, where 1 rounded
/// them (hours to 0.01 h, 36 s); the same fields, but a reader that took a figure as it was
/// printed, or compared two for equality, now sees every digit — so raised.
pub const FORMAT_VERSION: u32 = 2;

/// The codec a Hydra compresses with ([`crate::model::history_codec`]) and where it runs, by the
/// runner that wrote the history. The compression recommendation prices a change away from it.
pub fn current_codec(runner: crate::dataset::Runner) -> (&'static str, &'static str) {
    let place = match runner {
        crate::dataset::Runner::Cpp => {
            "under the C++ runner, on the queue-runner host, within its local worker slots"
        }
        crate::dataset::Runner::Rust => {
            "under the Rust runner with presigned uploads, on the builders, within their slots"
        }
    };
    (crate::model::history_codec(runner), place)
}

/// A figure with its uncertainty: the low, middle and high estimates (the model's type).
pub use crate::interval::Interval;

/// One figure the model is checked against: the history's value and the model's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationRow {
    pub metric: String,
    pub unit: String,
    pub observed: f64,
    pub modelled: f64,
    pub error_pct: f64,
}

/// One what-if scenario as the throughput model ran it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioRow {
    pub name: String,
    pub builds_per_day: Interval,
    pub wait_p50_s: Interval,
    pub wait_p90_s: Interval,
    pub wait_p99_s: Interval,
    /// Share of slot time building, 0–1, per system type.
    pub utilization_by_system: Vec<(String, f64)>,
    pub cost_per_month: Option<Interval>,
    /// Slot-hours per ledger bucket (`overhead`, `held`, `dispatch_loss`, …).
    pub lost_slot_hours_by_bucket: Vec<(String, f64)>,
}

/// The throughput model's section, filled by the caller from the simulation (`simulate`); the
/// first scenario is the baseline the others are compared with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Simulation {
    pub calibration: Vec<CalibrationRow>,
    pub scenarios: Vec<ScenarioRow>,
    pub verdict: Vec<String>,
}

impl Simulation {
    /// The section from what `simulate` found: the baseline first, then each scenario.
    pub fn from_summary(s: &crate::model::Summary) -> Simulation {
        let calibration = s
            .calibration
            .iter()
            .map(|r| CalibrationRow {
                metric: r.metric.clone(),
                unit: r.unit.clone(),
                observed: finite(r.observed),
                modelled: finite(r.modelled),
                error_pct: finite(r.error_pct),
            })
            .collect();
        let scenarios = std::iter::once(&s.baseline)
            .chain(&s.scenarios)
            .map(|o| ScenarioRow {
                name: o.name.clone(),
                builds_per_day: o.builds_per_day.finite(),
                wait_p50_s: o.wait_p50_s.finite(),
                wait_p90_s: o.wait_p90_s.finite(),
                wait_p99_s: o.wait_p99_s.finite(),
                utilization_by_system: o
                    .utilization
                    .iter()
                    .map(|(k, v)| (k.clone(), finite(v.mid)))
                    .collect(),
                cost_per_month: Some(o.cost_per_month.finite()),
                lost_slot_hours_by_bucket: vec![
                    ("overhead".into(), finite(o.buckets.overhead_h)),
                    ("held".into(), finite(o.buckets.held_h)),
                    ("waste".into(), finite(o.buckets.waste_h)),
                    ("dispatch loss".into(), finite(o.buckets.dispatch_loss_h)),
                    ("idle".into(), finite(o.buckets.idle_h)),
                ],
            })
            .collect();
        let mut verdict = Vec::new();
        if let Some(v) = &s.verdict {
            verdict.push(format!("Binding constraint: {}", v.statement));
        }
        verdict.push(format!(
            "{} steps replayed with {} dependencies ({}); machines: {}; local worker slots: {}; \
             {} seeds per configuration.",
            s.tasks,
            s.dependencies,
            s.deps_from,
            s.machines_from,
            s.local_workers_from,
            s.seeds.len()
        ));
        verdict.extend(s.assumptions.iter().map(|a| format!("Assumed: {a}.")));
        Simulation {
            calibration,
            scenarios,
            verdict,
        }
    }
}

/// Every figure of one report. `report.json` is this value; `reports/README.md` documents it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub format_version: u32,
    pub tool_version: String,
    /// When the report was written, UTC (RFC 3339).
    pub generated_at: String,
    pub source: SourceInfo,
    pub window: WindowInfo,
    /// The prices every money figure comes from (an estimate; see `method`).
    pub costs: Costs,
    /// The figures `--compare` sets side by side, per month where they are amounts.
    pub headlines: Vec<Headline>,
    pub waterfall: Vec<WaterfallStep>,
    pub recommendations: Vec<recommend::Recommendation>,
    pub capacity: Capacity,
    pub utilization: UtilizationSection,
    pub waiting: WaitingSection,
    pub overhead: OverheadSection,
    pub waste: WasteSection,
    pub compression: Option<CompressionSection>,
    pub simulation: Option<Simulation>,
    pub quality: QualitySection,
    pub method: Method,
    pub comparison: Option<compare::Comparison>,
    /// The chart files, in the order the report shows them.
    pub charts: Vec<ChartInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    pub origin: String,
    pub is_sample: bool,
    pub schema_version: Option<i32>,
    pub runner: String,
    pub runner_basis: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowInfo {
    pub since: i64,
    pub until: i64,
    pub since_utc: String,
    pub until_utc: String,
    pub days: f64,
    /// Multiplies a figure of the window into a figure per month (730 h ÷ the window's hours).
    pub month_factor: f64,
    /// Set when the window asked for reached beyond the data, and so was narrowed to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Headline {
    pub key: String,
    pub label: String,
    pub unit: String,
    pub value: f64,
}

/// One bar of the capacity waterfall.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaterfallStep {
    /// `available`, `building`, `overhead`, `held`, `dispatch_loss`, `waste` or `idle`.
    pub key: String,
    pub label: String,
    pub slot_hours: f64,
    /// Share of the available slot-hours.
    pub share_pct: f64,
    pub slot_hours_per_month: f64,
    /// What these slot-hours cost per month at the machines' prices (an estimate).
    pub cost_per_month: f64,
    pub definition: String,
    /// Where the figure comes from: database columns, the runner's series, the derivation
    /// graph, the sample's truth, or an estimate.
    #[serde(default)]
    pub source: String,
    /// When the bucket is an interval, its upper end (`slot_hours` is the lower).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot_hours_high: Option<f64>,
}

/// A ledger row as the report shows it: hours over the window, and money per month.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerRow {
    pub key: String,
    pub system: String,
    pub slots: u32,
    pub available_h: f64,
    pub building_h: f64,
    pub overhead_h: f64,
    pub held_h: f64,
    /// Held back by the Rust runner's machine-free function while work waited; absent where
    /// not measured (`analysis::ledger`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub throttled_h: f64,
    pub dispatch_loss_h: f64,
    /// When dispatch loss is an interval, its upper end (`dispatch_loss_h` is the lower).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatch_loss_high_h: Option<f64>,
    pub idle_h: f64,
    pub over_committed_h: f64,
    /// Share of the available slot time not idle (building, overhead, held), percent.
    pub busy_pct: f64,
    pub cost_per_month: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capacity {
    pub slots_basis: String,
    pub held_basis: String,
    /// Where dispatch loss comes from, and how it is built.
    #[serde(default)]
    pub dispatch_basis: String,
    /// Dispatch loss by the runner's stage, where the data allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatch_split: Option<crate::analysis::ledger::DispatchSplit>,
    /// The sampling error (about 95 %) of held and dispatch loss where a grid of samples
    /// measured them, hours (`analysis::ledger::Ledger`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_error_h: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatch_error_h: Option<f64>,
    /// Where the throttled bucket comes from (empty in reports from before it).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub throttled_basis: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttled_error_h: Option<f64>,
    pub by_system: Vec<LedgerRow>,
    pub machines: Vec<LedgerRow>,
    pub total: LedgerRow,
    pub notes: Vec<String>,
}

/// One machine's row of the utilization heatmap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeatRow {
    pub key: String,
    /// The name shown on the chart (the host, less the domain all machines share).
    pub label: String,
    pub system: String,
    pub slots: u32,
    /// Share of the machine's slots building, 0–1, per column.
    pub values: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemUse {
    pub system: String,
    pub slots: u32,
    pub mean_building: f64,
    pub busiest_column: f64,
    /// Mean steps building ÷ slots, percent.
    pub mean_pct: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UtilizationSection {
    pub definition: String,
    /// Start of the first heatmap column (unix seconds) and each column's width.
    pub start: i64,
    pub column_s: i64,
    pub columns: usize,
    /// The resolution `by_system`'s busiest figure is taken at, seconds.
    pub bucket_s: i64,
    pub machines: Vec<HeatRow>,
    pub by_system: Vec<SystemUse>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitRow {
    pub key: String,
    pub to_start: Distribution,
    pub to_finish: Distribution,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    pub key: String,
    pub counts: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitingSection {
    pub definition: String,
    pub overall: WaitRow,
    pub by_system: Vec<WaitRow>,
    pub by_priority: Vec<WaitRow>,
    pub by_day: Vec<WaitRow>,
    /// The jobsets whose builds waited longest to start (by p90), at most [`TOP_JOBSETS`].
    pub slowest_jobsets: Vec<WaitRow>,
    /// Lower edges of the histogram bins, seconds (the last bin is open).
    pub histogram_edges_s: Vec<f64>,
    /// Queued → first step started, overall (`all`) and per system.
    pub histograms: Vec<Histogram>,
    pub backlog_resolution_s: i64,
    /// (unix seconds, builds queued and not finished).
    pub backlog: Vec<(i64, usize)>,
    pub backlog_max: usize,
    pub backlog_max_at: i64,
    pub cached_builds: usize,
}

/// Jobsets listed by their wait: the ten slowest are where a reader looks first.
pub const TOP_JOBSETS: usize = 10;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitInfo {
    pub points: usize,
    pub fixed_ms: f64,
    pub ms_per_mib: f64,
    pub implied_mb_per_s: Option<f64>,
    pub median_abs_residual_ms: f64,
    pub size_share: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodecVsFit {
    pub codec: String,
    pub compress_mb_s_core: f64,
    pub share_of_size_overhead: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverheadSection {
    pub definition: String,
    pub sizes_from: String,
    /// Overhead slot-hours of the window (the ledger's bucket).
    pub slot_hours: f64,
    /// Overhead in percent of building + overhead.
    pub share_of_work_pct: f64,
    pub fit: Option<FitInfo>,
    /// The fit's split of the overhead: growing with output size, and fixed per step, hours.
    pub size_part_h: f64,
    pub fixed_part_h: f64,
    pub codecs: Vec<CodecVsFit>,
    /// (output size bytes, overhead ms) of a spread of the fitted steps.
    pub scatter: Vec<(f64, f64)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WasteCategory {
    pub name: String,
    pub steps: usize,
    pub slot_hours: f64,
    pub cost_per_month: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offender {
    pub name: String,
    pub steps: usize,
    pub slot_hours: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WasteSection {
    pub definition: String,
    pub total_slot_hours: f64,
    pub wasted_slot_hours: f64,
    pub wasted_pct: f64,
    pub categories: Vec<WasteCategory>,
    pub by_jobset: Vec<Offender>,
    pub top_jobs: Vec<Offender>,
    /// (drvPath, times built, slot-hours).
    pub most_rebuilt: Vec<(String, usize, f64)>,
}

/// One measured codec as the report shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodecRow {
    pub codec: String,
    pub nars: usize,
    pub nar_bytes: u64,
    pub ratio_pct: f64,
    pub compress_mb_s_core: f64,
    pub decompress_mb_s: f64,
    pub pareto: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeInfo {
    pub basis: String,
    pub builds: usize,
    pub days: f64,
    pub gb_per_day: f64,
    pub peak_hour: i64,
    pub peak_hour_gb: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompressionSection {
    /// Where the measurement comes from (measured now, or a `compress --format json` file).
    pub source: String,
    pub default_corpus: bool,
    pub nars: usize,
    pub nar_bytes: u64,
    pub codecs: Vec<CodecRow>,
    pub volume: VolumeInfo,
    pub projections: Vec<Projection>,
    pub current_codec: String,
    /// Cores the current codec needs to keep up with the busiest hour's output, if measured.
    pub peak_hour_cores_current: Option<f64>,
    /// Where the current codec runs (queue-runner host or builders), as the text says it.
    #[serde(default)]
    pub compressed_where: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckRow {
    pub name: String,
    pub count: usize,
    pub excluded: bool,
    pub examples: Vec<String>,
    pub definition: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkewRow {
    pub machine: String,
    pub steps: usize,
    pub median_s: i64,
    pub max_s: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualitySection {
    pub steps: usize,
    pub builds: usize,
    pub excluded_steps: usize,
    pub checks: Vec<CheckRow>,
    pub clock_skew: Vec<SkewRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Definition {
    pub term: String,
    pub meaning: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Method {
    pub definitions: Vec<Definition>,
    pub sources: Vec<String>,
    pub assumptions: Vec<String>,
    pub dependency_estimate: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChartInfo {
    /// File name without extension; `.svg` always, `.png` unless `--no-png`.
    pub name: String,
    pub title: String,
    /// What the chart shows, for readers who cannot see it.
    pub alt: String,
}

/// The codec measurement the report uses, however it was obtained.
#[derive(Debug, Clone)]
pub struct Compression {
    /// Said in the report: "measured on this machine …" or the file it was read from.
    pub source: String,
    pub default_corpus: bool,
    pub nars: usize,
    pub nar_bytes: u64,
    pub codecs: Vec<CodecSummary>,
}

/// Everything [`build`] turns into a report.
pub struct Inputs<'a> {
    /// What the report needs of the dataset itself (the findings hold the rest), taken before
    /// the simulation so that the history's frames need not outlive the analysis.
    pub data: DataFacts,
    pub findings: &'a Findings,
    /// The machines file, for the machines' features (a machine that alone has a feature is
    /// never proposed for retirement).
    pub machines: Option<&'a [BuildMachine]>,
    pub costs: &'a Costs,
    pub compression: Option<Compression>,
    pub simulation: Option<Simulation>,
    pub generated_at: String,
    /// An older report's headline figures (`--compare`).
    pub previous: Option<compare::Previous>,
}

/// The few figures the report reads from the dataset rather than from the findings.
#[derive(Debug, Clone)]
pub struct DataFacts {
    pub builds: usize,
    pub schema_version: Option<i32>,
    /// The farm's output volume, which the compression section projects codecs onto.
    pub volume: project::Volume,
}

impl DataFacts {
    pub fn of(ds: &Dataset) -> Result<DataFacts> {
        Ok(DataFacts {
            builds: ds.builds.height(),
            schema_version: ds.meta.schema_version,
            volume: project::volume(ds)?,
        })
    }
}

/// Builds the report. Pure: the same inputs give the same report, to the byte once serialised.
pub fn build(inp: Inputs<'_>) -> Result<Report> {
    let f = inp.findings;
    let window_h = ((f.until - f.since) as f64 / 3600.0).max(0.0);
    if window_h <= 0.0 {
        return Err(Error::NoData(
            "the window holds no step times: nothing to report".into(),
        ));
    }
    let month = MONTH_HOURS / window_h;
    let costs = inp.costs;
    let capacity = capacity(f, costs, month);
    let prices = BucketPrices::of(&capacity.machines, costs);
    let waterfall = waterfall(f, &capacity.total, &prices, month);
    let compression = match &inp.compression {
        Some(c) => Some(compression_section(
            &inp.data.volume,
            c,
            costs,
            inp.findings.runner,
        )),
        None => None,
    };
    let utilization = utilization_section(f, &capacity);
    let waiting = waiting_section(f);
    let overhead = overhead_section(f, &capacity.total);
    let waste = waste_section(f, &prices, month);
    let ctx = recommend::Context {
        findings: f,
        capacity: &capacity,
        prices: &prices,
        month,
        costs,
        compression: compression.as_ref(),
        simulation: inp.simulation.as_ref(),
        machines: inp.machines,
    };
    let recommendations = recommend::all(&ctx);
    let quality = QualitySection {
        steps: f.quality.steps,
        builds: inp.data.builds,
        excluded_steps: f.quality.excluded_steps,
        checks: f
            .quality
            .checks
            .iter()
            .map(|c| CheckRow {
                name: c.name.to_string(),
                count: c.count,
                excluded: c.excluded,
                examples: c.examples.clone(),
                definition: c.definition.to_string(),
            })
            .collect(),
        clock_skew: f
            .quality
            .clock_skew
            .iter()
            .map(|m| SkewRow {
                machine: m.machine.clone(),
                steps: m.steps,
                median_s: m.median_s,
                max_s: m.max_s,
            })
            .collect(),
    };
    let mut report = Report {
        format_version: FORMAT_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        generated_at: inp.generated_at,
        source: SourceInfo {
            origin: f.origin.clone(),
            is_sample: f.is_sample,
            schema_version: inp.data.schema_version,
            runner: f.runner.to_string(),
            runner_basis: f.runner_basis.clone(),
        },
        window: WindowInfo {
            since: f.since,
            until: f.until,
            since_utc: crate::window::fmt_time(f.since),
            until_utc: crate::window::fmt_time(f.until),
            days: finite(window_h / 24.0),
            month_factor: finite(month),
            note: f.window_note.clone(),
        },
        costs: costs.clone(),
        headlines: Vec::new(),
        waterfall,
        recommendations,
        capacity,
        utilization,
        waiting,
        overhead,
        waste,
        compression,
        simulation: inp.simulation,
        quality,
        method: method(f, inp.compression.as_ref()),
        comparison: None,
        charts: Vec::new(),
    };
    report.charts = charts::list(&report);
    report.headlines = compare::headlines(&report);
    if let Some(prev) = inp.previous {
        report.comparison = Some(compare::compare(&prev, &report));
    }
    Ok(report)
}

/// The average price of a slot-hour in each ledger bucket, weighted by where the bucket's hours
/// fell (machines of different prices and slot counts).
#[derive(Debug, Clone, Default)]
pub struct BucketPrices {
    pub available: f64,
    pub building: f64,
    pub overhead: f64,
    pub held: f64,
    pub throttled: f64,
    pub dispatch_loss: f64,
    pub idle: f64,
    pub currency: String,
}

impl BucketPrices {
    fn of(machines: &[LedgerRow], costs: &Costs) -> BucketPrices {
        let mut money = [0.0; 7];
        let mut hours = [0.0; 7];
        for m in machines {
            let p = slot_hour_price(costs, &m.system, m.slots);
            let hs = [
                m.available_h,
                m.building_h,
                m.overhead_h,
                m.held_h,
                m.dispatch_loss_h,
                m.idle_h,
                m.throttled_h,
            ];
            for (k, h) in hs.iter().enumerate() {
                money[k] += h * p;
                hours[k] += h;
            }
        }
        let avg = |k: usize| {
            if hours[k] > 0.0 {
                money[k] / hours[k]
            } else if hours[0] > 0.0 {
                money[0] / hours[0]
            } else {
                0.0
            }
        };
        BucketPrices {
            available: avg(0),
            building: avg(1),
            overhead: avg(2),
            held: avg(3),
            dispatch_loss: avg(4),
            idle: avg(5),
            throttled: avg(6),
            currency: costs.currency.clone(),
        }
    }
}

/// A slot-hour of a machine with `slots` slots whose first system is `system`.
pub fn slot_hour_price(costs: &Costs, system: &str, slots: u32) -> f64 {
    costs.machine_month_for(system) / (MONTH_HOURS * f64::from(slots.max(1)))
}

fn ledger_row(
    r: &analysis::ledger::Row,
    costs: &Costs,
    month: f64,
    price: Option<f64>,
) -> LedgerRow {
    let busy = r.building_h + r.overhead_h + r.held_h;
    let price = price.unwrap_or_else(|| slot_hour_price(costs, &r.system, r.slots));
    LedgerRow {
        key: r.key.clone(),
        system: r.system.clone(),
        slots: r.slots,
        available_h: finite(r.available_h),
        building_h: finite(r.building_h),
        overhead_h: finite(r.overhead_h),
        held_h: finite(r.held_h),
        throttled_h: finite(r.throttled_h),
        dispatch_loss_h: finite(r.dispatch_loss_h),
        dispatch_loss_high_h: r.dispatch_loss_high_h.map(finite),
        idle_h: finite(r.idle_h),
        over_committed_h: finite(r.over_committed_h),
        busy_pct: finite(pct_of(busy, r.available_h)),
        cost_per_month: finite(r.available_h * price * month),
    }
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

fn pct_of(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        100.0 * part / whole
    } else {
        0.0
    }
}

fn capacity(f: &Findings, costs: &Costs, month: f64) -> Capacity {
    let l = &f.ledger;
    let machines: Vec<LedgerRow> = l
        .machines
        .iter()
        .map(|r| ledger_row(r, costs, month, None))
        .collect();
    // A group's price is its machines' money over its hours, so groups and total add up.
    let group = |r: &analysis::ledger::Row, members: &mut dyn Iterator<Item = &LedgerRow>| {
        let money: f64 = members.map(|m| m.cost_per_month).sum();
        let price = if r.available_h > 0.0 {
            money / (r.available_h * month)
        } else {
            0.0
        };
        ledger_row(r, costs, month, Some(price))
    };
    let by_system = l
        .by_system
        .iter()
        .map(|r| group(r, &mut machines.iter().filter(|m| m.system == r.key)))
        .collect();
    let total = group(&l.total, &mut machines.iter());
    Capacity {
        slots_basis: l.slots_basis.clone(),
        held_basis: l.held_basis.clone(),
        dispatch_basis: l.dispatch_basis.clone(),
        dispatch_split: l.dispatch_split,
        held_error_h: l.held_error_h,
        dispatch_error_h: l.dispatch_error_h,
        throttled_basis: l.throttled_basis.clone(),
        throttled_error_h: l.throttled_error_h,
        by_system,
        machines,
        total,
        notes: l.notes.clone(),
    }
}

pub const WATERFALL_DEFINITIONS: [(&str, &str, &str); 8] = [
    (
        "available",
        "available",
        "slots × the window's length: every slot-hour the builders offered",
    ),
    (
        "building",
        "building (useful)",
        "steps building, less the building of wasted steps",
    ),
    (
        "overhead",
        "overhead",
        "sending inputs and receiving (under the C++ runner also compressing) outputs, less that of wasted steps",
    ),
    (
        "held",
        "held idle",
        "a slot reserved while nothing runs on it: waiting for the per-machine send lock or a local worker slot",
    ),
    (
        "throttled",
        "throttled",
        "Rust runner only: a slot below maxJobs that the machine-free function withheld while steps the machine could build were runnable, because the builder's load or pressure was over its threshold",
    ),
    (
        "dispatch_loss",
        "dispatch loss",
        "idle while steps the machine could build were runnable",
    ),
    (
        "waste",
        "waste",
        "building and overhead of steps that failed, timed out, were aborted or cancelled, rebuilt what was built, or repeated determinism checks",
    ),
    (
        "idle",
        "true idle",
        "idle with nothing runnable for the machine",
    ),
];

/// The overhead bucket under the Rust runner (docs/hydra.md §3): the builder's own phases.
const RUST_OVERHEAD: &str = "the builder importing the inputs it lacks and compressing and \
     uploading its outputs (BuildSteps overhead = import + upload), less that of wasted steps";

fn waterfall(f: &Findings, t: &LedgerRow, p: &BucketPrices, month: f64) -> Vec<WaterfallStep> {
    // Waste is carved out of building and overhead (where its slot time was counted), never
    // more than they hold, so the bars still add up to the available slot-hours.
    let w = &f.waste;
    let waste_oh = w.wasted_overhead_slot_hours.min(t.overhead_h).max(0.0);
    let waste_build = (w.wasted_slot_hours - w.wasted_overhead_slot_hours)
        .min(t.building_h)
        .max(0.0);
    let vals = [
        (t.available_h, t.available_h * p.available),
        (
            t.building_h - waste_build,
            (t.building_h - waste_build) * p.building,
        ),
        (
            t.overhead_h - waste_oh,
            (t.overhead_h - waste_oh) * p.overhead,
        ),
        (t.held_h, t.held_h * p.held),
        (t.throttled_h, t.throttled_h * p.throttled),
        (t.dispatch_loss_h, t.dispatch_loss_h * p.dispatch_loss),
        (
            waste_build + waste_oh,
            waste_build * p.building + waste_oh * p.overhead,
        ),
        (t.idle_h, t.idle_h * p.idle),
    ];
    let l = &f.ledger;
    let held_source = if crate::analysis::ledger::is_measured(&l.held_basis) {
        "the runner's series (stage counters)"
    } else if l.held_basis.contains("ground truth") {
        "the sample's ground truth"
    } else {
        "not recorded (0)"
    };
    let dispatch_source = match (
        l.dispatch_basis.contains("derivation graph ("),
        l.dispatch_basis.contains("runner's series:"),
    ) {
        _ if crate::analysis::ledger::is_measured(&l.dispatch_basis) => {
            "the runner's series with the derivation graph (measured)"
        }
        (true, true) => "interval: the runner's series up to the derivation graph",
        (true, false) => "interval: 0 up to the derivation graph",
        (false, true) => "interval: the runner's series up to queue times",
        (false, false) => "interval (estimate): 0 up to queue times",
    };
    let throttled_source = if crate::analysis::ledger::is_measured(&l.throttled_basis) {
        "the runner's series (hasCapacity)"
    } else {
        "not measured (0)"
    };
    let rust = analysis::ledger::throttling_applies(&l.throttled_basis);
    let sources = [
        "the machines file (maxJobs) or observed concurrency",
        "BuildSteps startTime/stopTime",
        "BuildSteps overhead",
        held_source,
        throttled_source,
        dispatch_source,
        "BuildSteps status and times",
        "the remainder",
    ];
    WATERFALL_DEFINITIONS
        .iter()
        .zip(vals)
        .zip(sources)
        .filter(|((def, _), _)| def.0 != "throttled" || rust)
        .map(|((&(key, label, def), (h, money)), source)| WaterfallStep {
            key: key.into(),
            label: label.into(),
            slot_hours: finite(h),
            share_pct: finite(pct_of(h, t.available_h)),
            slot_hours_per_month: finite(h * month),
            cost_per_month: finite(money * month),
            definition: match key {
                "overhead" if rust => RUST_OVERHEAD.into(),
                _ => def.into(),
            },
            source: source.into(),
            slot_hours_high: (key == "dispatch_loss")
                .then_some(t.dispatch_loss_high_h)
                .flatten()
                .map(finite),
        })
        .collect()
}

/// Heatmap columns: at most this many, so that a row of a page-wide chart keeps a column a few
/// pixels wide.
const HEAT_MAX_COLUMNS: i64 = 240;
/// Column widths the heatmap chooses from: round numbers on a time axis.
const HEAT_WIDTHS: [i64; 7] = [900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86_400];

fn utilization_section(f: &Findings, cap: &Capacity) -> UtilizationSection {
    let tl = &f.utilization.by_machine;
    let span = f.until - f.since;
    let width = HEAT_WIDTHS
        .into_iter()
        .find(|w| *w >= tl.resolution_s && span / w <= HEAT_MAX_COLUMNS)
        .unwrap_or(86_400)
        .max(tl.resolution_s);
    let per = (width / tl.resolution_s.max(1)).max(1) as usize;
    let columns = tl.buckets.div_ceil(per);
    let labels = short_names(cap.machines.iter().map(|m| m.key.as_str()));
    let machines: Vec<HeatRow> = cap
        .machines
        .iter()
        .zip(labels)
        .map(|(m, label)| {
            let series = series_for(&tl.series, &m.key);
            let slots = f64::from(m.slots.max(1));
            let values = (0..columns)
                .map(|c| {
                    let chunk = series
                        .map(|s| &s[(c * per).min(s.len())..((c + 1) * per).min(s.len())])
                        .unwrap_or(&[]);
                    let mean = if chunk.is_empty() {
                        0.0
                    } else {
                        chunk.iter().sum::<f64>() / chunk.len() as f64
                    };
                    finite((mean / slots).min(1.0))
                })
                .collect();
            HeatRow {
                key: m.key.clone(),
                label,
                system: m.system.clone(),
                slots: m.slots,
                values,
            }
        })
        .collect();
    let by_system = cap
        .by_system
        .iter()
        .map(|g| {
            let mut sum = vec![0.0; tl.buckets];
            for m in cap.machines.iter().filter(|m| m.system == g.key) {
                if let Some(s) = series_for(&tl.series, &m.key) {
                    for (a, b) in sum.iter_mut().zip(s) {
                        *a += b;
                    }
                }
            }
            let mean = sum.iter().sum::<f64>() / sum.len().max(1) as f64;
            let busiest = sum.iter().copied().fold(0.0, f64::max);
            SystemUse {
                system: g.key.clone(),
                slots: g.slots,
                mean_building: finite(mean),
                busiest_column: finite(busiest),
                mean_pct: finite(pct_of(mean, f64::from(g.slots))),
            }
        })
        .collect();
    UtilizationSection {
        definition: f.utilization.definition.to_string(),
        start: tl.start,
        column_s: width,
        columns,
        bucket_s: tl.resolution_s,
        machines,
        by_system,
    }
}

/// The utilization series of a ledger machine: the same key, or the same host (a machines file
/// may name `ssh://build@b1` where the steps say `b1`).
pub fn series_for<'a>(series: &'a BTreeMap<String, Vec<f64>>, key: &str) -> Option<&'a [f64]> {
    series.get(key).map(Vec::as_slice).or_else(|| {
        let host = crate::nix::machines::host_of(key);
        series
            .iter()
            .find(|(k, _)| crate::nix::machines::host_of(k) == host)
            .map(|(_, v)| v.as_slice())
    })
}

/// Hosts without the domain every one of them shares: `ssh://build@x86-01.farm.example` →
/// `x86-01`.
pub fn short_names<'a>(keys: impl Iterator<Item = &'a str>) -> Vec<String> {
    let hosts: Vec<&str> = keys.map(crate::nix::machines::host_of).collect();
    let mut suffix: Option<&str> = None;
    if hosts.len() > 1
        && let Some(first) = hosts.first()
    {
        // The longest `.domain` tail of the first host that every host ends with.
        suffix = first
            .match_indices('.')
            .map(|(i, _)| &first[i..])
            .find(|s| hosts.iter().all(|h| h.ends_with(s) && h.len() > s.len()));
    }
    hosts
        .iter()
        .map(|h| suffix.map_or(*h, |s| &h[..h.len() - s.len()]).to_string())
        .collect()
}

fn dist(d: &Distribution) -> Distribution {
    Distribution {
        count: d.count,
        p50: finite(d.p50),
        p90: finite(d.p90),
        p99: finite(d.p99),
        max: finite(d.max),
        mean: finite(d.mean),
    }
}

fn wait_row(g: &analysis::waiting::Group) -> WaitRow {
    WaitRow {
        key: g.key.clone(),
        to_start: dist(&g.to_start),
        to_finish: dist(&g.to_finish),
    }
}

fn waiting_section(f: &Findings) -> WaitingSection {
    let w = &f.waiting;
    let mut slowest: Vec<&analysis::waiting::Group> = w
        .by_jobset
        .iter()
        .filter(|g| g.to_start.count > 0)
        .collect();
    slowest.sort_by(|a, b| {
        b.to_start
            .p90
            .total_cmp(&a.to_start.p90)
            .then(a.key.cmp(&b.key))
    });
    slowest.truncate(TOP_JOBSETS);
    let mut histograms = vec![Histogram {
        key: "all".into(),
        counts: w.overall.to_start_histogram.clone(),
    }];
    histograms.extend(w.by_system.iter().map(|g| Histogram {
        key: g.key.clone(),
        counts: g.to_start_histogram.clone(),
    }));
    let (backlog_max_at, backlog_max) = w
        .backlog
        .iter()
        .map(|p| (p.time, p.queued))
        .fold((f.since, 0), |a, b| if b.1 > a.1 { b } else { a });
    WaitingSection {
        definition: w.definition.to_string(),
        overall: wait_row(&w.overall),
        by_system: w.by_system.iter().map(wait_row).collect(),
        by_priority: w.by_priority.iter().map(wait_row).collect(),
        by_day: w.by_day.iter().map(wait_row).collect(),
        slowest_jobsets: slowest.into_iter().map(wait_row).collect(),
        histogram_edges_s: analysis::waiting::HISTOGRAM_EDGES_S.to_vec(),
        histograms,
        backlog_resolution_s: w.backlog_resolution_s,
        backlog: w.backlog.iter().map(|p| (p.time, p.queued)).collect(),
        backlog_max,
        backlog_max_at,
        cached_builds: w.cached_builds,
    }
}

fn overhead_section(f: &Findings, t: &LedgerRow) -> OverheadSection {
    let o = &f.overhead;
    let size_share = o.fit.map_or(0.0, |fit| fit.size_share.clamp(0.0, 1.0));
    OverheadSection {
        definition: o.definition.to_string(),
        sizes_from: o.sizes_from.clone(),
        slot_hours: t.overhead_h,
        share_of_work_pct: finite(pct_of(t.overhead_h, t.overhead_h + t.building_h)),
        fit: o.fit.map(|fit| FitInfo {
            points: fit.points,
            fixed_ms: finite(fit.fixed_ms),
            ms_per_mib: finite(fit.ms_per_mib),
            implied_mb_per_s: fit.implied_mb_per_s.map(finite),
            median_abs_residual_ms: finite(fit.median_abs_residual_ms),
            size_share: finite(fit.size_share),
        }),
        size_part_h: finite(t.overhead_h * size_share),
        fixed_part_h: finite(t.overhead_h * (1.0 - size_share)),
        codecs: o
            .codecs
            .iter()
            .map(|c| CodecVsFit {
                codec: c.codec.clone(),
                compress_mb_s_core: finite(c.compress_mb_s_core),
                share_of_size_overhead: c.share_of_size_overhead.map(finite),
            })
            .collect(),
        scatter: o
            .sample
            .iter()
            .map(|&(s, ms)| (finite(s), finite(ms)))
            .collect(),
    }
}

fn waste_section(f: &Findings, p: &BucketPrices, month: f64) -> WasteSection {
    let w = &f.waste;
    let offender = |o: &analysis::waste::Offender, with_job: bool| Offender {
        name: if with_job {
            format!("{}:{}", o.jobset, o.job)
        } else {
            o.jobset.clone()
        },
        steps: o.steps,
        slot_hours: finite(o.slot_hours),
    };
    WasteSection {
        definition: w.definition.to_string(),
        total_slot_hours: finite(w.total_slot_hours),
        wasted_slot_hours: finite(w.wasted_slot_hours),
        wasted_pct: finite(pct_of(w.wasted_slot_hours, w.total_slot_hours)),
        categories: w
            .categories
            .iter()
            .map(|c| WasteCategory {
                name: c.name.to_string(),
                steps: c.steps,
                slot_hours: finite(c.slot_hours),
                cost_per_month: finite(c.slot_hours * p.building * month),
            })
            .collect(),
        by_jobset: w.by_jobset.iter().map(|o| offender(o, false)).collect(),
        top_jobs: w.top_jobs.iter().map(|o| offender(o, true)).collect(),
        most_rebuilt: w
            .most_rebuilt
            .iter()
            .map(|(d, n, h)| (d.clone(), *n, finite(*h)))
            .collect(),
    }
}

fn compression_section(
    volume: &project::Volume,
    c: &Compression,
    costs: &Costs,
    runner: crate::dataset::Runner,
) -> CompressionSection {
    let (codec_now, where_now) = current_codec(runner);
    let projections: Vec<Projection> = project::project(volume, &c.codecs, costs)
        .into_iter()
        .map(|p| Projection {
            codec: p.codec,
            compress_core_hours_per_day: finite(p.compress_core_hours_per_day),
            peak_hour_cores: finite(p.peak_hour_cores),
            stored_tib_per_month: finite(p.stored_tib_per_month),
            client_decompress_core_hours_per_month: finite(
                p.client_decompress_core_hours_per_month,
            ),
            farm_cost_per_month: finite(p.farm_cost_per_month),
            client_cost_per_month: finite(p.client_cost_per_month),
        })
        .collect();
    let current = projections
        .iter()
        .find(|p| p.codec == codec_now)
        .map(|p| p.peak_hour_cores);
    CompressionSection {
        source: c.source.clone(),
        default_corpus: c.default_corpus,
        nars: c.nars,
        nar_bytes: c.nar_bytes,
        codecs: c
            .codecs
            .iter()
            .map(|s| CodecRow {
                codec: s.codec.clone(),
                nars: s.nars,
                nar_bytes: s.nar_bytes,
                ratio_pct: finite(s.ratio_pct),
                compress_mb_s_core: finite(s.compress_mb_s_core),
                decompress_mb_s: finite(s.decompress_mb_s),
                pareto: s.pareto,
            })
            .collect(),
        volume: VolumeInfo {
            basis: volume.basis.to_string(),
            builds: volume.builds,
            days: finite(volume.days),
            gb_per_day: finite(volume.bytes_per_day / 1e9),
            peak_hour: volume.peak_hour,
            peak_hour_gb: finite(volume.peak_hour_bytes / 1e9),
        },
        projections,
        current_codec: codec_now.to_string(),
        compressed_where: where_now.to_string(),
        peak_hour_cores_current: current,
    }
}

fn method(f: &Findings, c: Option<&Compression>) -> Method {
    let rust = analysis::ledger::throttling_applies(&f.ledger.throttled_basis);
    let mut definitions: Vec<Definition> = WATERFALL_DEFINITIONS
        .iter()
        .filter(|(key, _, _)| *key != "throttled" || rust)
        .map(|(key, label, def)| Definition {
            term: (*label).to_string(),
            meaning: match *key {
                "overhead" if rust => RUST_OVERHEAD.to_string(),
                _ => (*def).to_string(),
            },
        })
        .collect();
    for (term, meaning) in [
        ("queue wait", f.waiting.definition),
        ("utilization", f.utilization.definition),
        ("waste", f.waste.definition),
        ("overhead fit", f.overhead.definition),
    ] {
        definitions.push(Definition {
            term: term.into(),
            meaning: meaning.into(),
        });
    }
    let mut sources = vec![
        format!("history: {}", f.origin),
        format!("queue runner: {} ({})", f.runner, f.runner_basis),
        format!("slots: {}", f.ledger.slots_basis),
        format!("held time: {}", f.ledger.held_basis),
        format!("throttled: {}", f.ledger.throttled_basis),
        format!("dispatch loss: {}", f.ledger.dispatch_basis),
        format!("output sizes: {}", f.overhead.sizes_from),
    ];
    sources.push(match c {
        Some(c) => format!("codec measurements: {}", c.source),
        None => "codec measurements: none (compression section left out)".into(),
    });
    let assumptions = vec![
        format!(
            "A month is {MONTH_HOURS} hours; figures of the window are scaled to a month by \
             730 h ÷ the window's hours, so a window with a mass rebuild in it overstates a \
             quiet month."
        ),
        "Money figures are estimates from the cost file's prices (defaults: public figures, \
         listed with their sources in src/compress/project.rs), not a bill. A slot-hour costs \
         the machine's monthly price ÷ (730 h × its slots)."
            .into(),
        match f.runner {
            crate::dataset::Runner::Cpp => "The codec Hydra compresses with is taken to be xz-6 \
                 (the binary-cache default, compression=xz)."
                .to_string(),
            crate::dataset::Runner::Rust => "The codec the builders compress with is taken to be \
                 zstd-19 (hydra.nixos.org's store URI under the Rust runner)."
                .to_string(),
        },
        "Expected savings are intervals: the low and high ends carry the stated assumptions of \
         each recommendation; they overlap (two fixes of the same idle time do not add)."
            .into(),
    ];
    Method {
        definitions,
        sources,
        assumptions,
        dependency_estimate: format!(
            "{} (gap {} s; {} edges{})",
            f.dependencies.estimator,
            f.dependencies.gap_s,
            f.dependencies.edges,
            f.dependencies
                .accuracy
                .map(|a| format!(
                    "; against the sample's true graph: precision {:.3}, recall {:.3}, \
                     same-build recall {:.3}",
                    a.precision, a.recall, a.recall_same_build
                ))
                .unwrap_or_default()
        ),
    }
}

/// How the report files are written.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    pub png: bool,
    /// What to do about an existing output directory: refuse it, replace it (only once the
    /// new one is complete), or take the next free numbered name (the default directory).
    pub existing: crate::output::Existing,
    /// Bytes of the codec measurement used, saved as `compression.json` beside the report so
    /// that a later run can reuse it with `--compression`.
    pub compression_json: Option<Vec<u8>>,
}

/// What [`write`] wrote.
#[derive(Debug, Clone)]
pub struct Written {
    pub dir: PathBuf,
    pub files: Vec<String>,
}

/// Writes the report into `dir` (report.md, report.html, report.json, the charts): all into a
/// temporary sibling first, renamed into place at the end. [`Written::dir`] says where it went
/// (with [`crate::output::Existing::NextFree`], perhaps a numbered sibling of `dir`).
pub fn write(report: &Report, dir: &Path, opts: &WriteOptions) -> Result<Written> {
    let staged = crate::output::StagedDir::new(dir, opts.existing)?;
    let mut files = Vec::new();
    let put = |name: &str, bytes: &[u8], files: &mut Vec<String>| -> Result<()> {
        let p = staged.path().join(name);
        std::fs::write(&p, bytes).map_err(|e| Error::io(&p, e))?;
        files.push(name.to_string());
        Ok(())
    };
    let drawn = charts::draw(report)?;
    for c in &drawn {
        put(&format!("{}.svg", c.name), c.svg.as_bytes(), &mut files)?;
        if opts.png {
            let p = staged.path().join(format!("{}.png", c.name));
            charts::png(report, &c.name, &p)?;
            files.push(format!("{}.png", c.name));
        }
    }
    let blocks = doc::layout(report);
    put(
        "report.md",
        markdown::render(&blocks).as_bytes(),
        &mut files,
    )?;
    put(
        "report.html",
        html::render(report, &blocks, &drawn).as_bytes(),
        &mut files,
    )?;
    let mut json = serde_json::to_vec_pretty(report).map_err(|e| Error::json("report", e))?;
    json.push(b'\n');
    put("report.json", &json, &mut files)?;
    if let Some(c) = &opts.compression_json {
        put("compression.json", c, &mut files)?;
    }
    let dir = staged.commit()?;
    files.sort();
    Ok(Written { dir, files })
}

/// The one-screen summary `report` prints on stdout at the end.
pub fn summary_text(r: &Report, w: &Written) -> String {
    use fmt::{int, money, pct};
    let cur = r.costs.currency.as_str();
    let mut s = String::new();
    s.push_str(&doc::title(r));
    s.push('\n');
    s.push_str(&format!(
        "window {} – {} ({} days), queue runner {}, {} machines, {} slots\n",
        r.window.since_utc,
        r.window.until_utc,
        fmt::num(r.window.days, 1),
        r.source.runner,
        r.capacity.machines.len(),
        r.capacity.total.slots
    ));
    if let Some(note) = &r.window.note {
        s.push_str(&format!("note: {note}\n"));
    }
    s.push('\n');
    s.push_str(&format!(
        "capacity a month ({cur}, estimates from the cost file):\n"
    ));
    for step in &r.waterfall {
        s.push_str(&format!(
            "  {:<18} {:>10} slot-h  {:>7}  {:>12}\n",
            step.label,
            int(step.slot_hours_per_month),
            if step.key == "available" {
                String::new()
            } else {
                pct(step.share_pct)
            },
            money(step.cost_per_month, cur)
        ));
    }
    s.push_str("\nchanges, by expected saving a month:\n");
    if r.recommendations.is_empty() {
        s.push_str("  none found\n");
    }
    for x in r.recommendations.iter().take(5) {
        s.push_str(&format!(
            "  {}. {} — {}, confidence {}\n",
            x.rank,
            x.title,
            doc::range(x.saving_per_month, cur),
            x.confidence
        ));
    }
    if let Some(c) = &r.comparison {
        let moved: Vec<&compare::Row> = c
            .rows
            .iter()
            .filter(|row| row.change.is_some_and(|x| x != 0.0))
            .collect();
        s.push_str(&format!(
            "\ncompared with {}: {} of {} headline figures changed\n",
            c.old_dir,
            moved.len(),
            c.rows.len()
        ));
    }
    let charts = w.files.iter().filter(|f| f.ends_with(".svg")).count();
    s.push_str(&format!(
        "\nwrote {}/report.html (and report.md, report.json, {} charts)\n",
        w.dir.display(),
        charts
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_drop_the_shared_domain() {
        let keys = [
            "ssh://build@x86-01.farm.example",
            "ssh://b@mac-01.farm.example:22",
        ];
        assert_eq!(short_names(keys.into_iter()), ["x86-01", "mac-01"]);
        assert_eq!(short_names(["b1"].into_iter()), ["b1"]);
        assert_eq!(
            short_names(["a.example", "b.a.example"].into_iter()),
            ["a", "b.a"]
        );
    }

    #[test]
    fn series_match_by_key_or_host() {
        let mut s = BTreeMap::new();
        s.insert("b1".to_string(), vec![1.0]);
        assert_eq!(series_for(&s, "ssh://build@b1"), Some(&[1.0][..]));
        assert_eq!(series_for(&s, "b2"), None);
    }
}
