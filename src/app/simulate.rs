//! `simulate`: the history replayed through the model of the queue runner, with what-if
//! scenarios beside the baseline.

use std::path::PathBuf;
use std::time::Duration;

use super::render::{Format, Printer, Render};
use super::{Context, inputs};
use crate::error::Result;
use crate::model::{self, Summary, table};

/// What `simulate` is asked.
#[derive(Debug, Clone)]
pub struct SimulateOptions {
    /// Scenario files (TOML), each compared side by side with the baseline.
    pub scenarios: Vec<PathBuf>,
    /// The machines file; else the one that came with the data, else machines are inferred.
    pub machines: Option<PathBuf>,
    /// Runs per configuration, each with its own seed.
    pub seeds: u32,
    /// Local worker slots of the queue-runner host in the history.
    pub local_workers: Option<u32>,
    /// A saved `compress --format json`: codec speeds and ratios measured on the user's NARs.
    pub compression: Option<PathBuf>,
    /// A cost file, for cost per month.
    pub costs: Option<PathBuf>,
    /// Estimate dependencies with this gap in seconds even where ground truth exists.
    pub gap_s: Option<i64>,
    /// Run the load sweep that finds the binding constraint.
    pub verdict: bool,
    /// A queue-runner status document (a file, `-` or a URL): its per-machine step times join
    /// the calibration.
    pub status: Option<crate::status::Source>,
    /// A directory of `.drv` files (`--drv-store`) for the derivation graph.
    pub drv_store: Option<PathBuf>,
    /// The runner's series to read (`--prometheus`, `--runner-series`) instead of the data's:
    /// the calibration holds the replay's held slots and runnable steps against it.
    pub series: Option<super::SeriesSource>,
}

impl Default for SimulateOptions {
    fn default() -> Self {
        SimulateOptions {
            scenarios: Vec::new(),
            machines: None,
            seeds: model::DEFAULT_SEEDS,
            local_workers: None,
            compression: None,
            costs: None,
            gap_s: None,
            verdict: true,
            status: None,
            drv_store: None,
            series: None,
        }
    }
}

/// Bound on fetching a status document given by URL: one small JSON answer.
const STATUS_TIMEOUT: Duration = Duration::from_secs(30);

/// Reads every input, then the history, and runs the baseline and each scenario.
pub fn run(ctx: &Context<'_>, opts: &SimulateOptions) -> Result<Summary> {
    let scenarios = opts
        .scenarios
        .iter()
        .map(|p| model::scenario::read(p))
        .collect::<Result<Vec<_>>>()?;
    let given = inputs::machines_file(opts.machines.as_deref())?;
    let codecs = match &opts.compression {
        Some(p) => inputs::model_codecs(
            &inputs::saved_codecs(p)?,
            &format!("measured ({})", p.display()),
        ),
        None => Vec::new(),
    };
    let costs = inputs::costs(opts.costs.as_deref())?;
    if let Some(dir) = &opts.drv_store {
        crate::source::drvstore::check_dir(dir)?;
    }
    if let Some(s) = &opts.series {
        s.check()?;
    }
    // Read before the dataset: a bad status document should fail before minutes of loading.
    let status = match &opts.status {
        Some(source) => Some((
            source.describe(),
            crate::status::load(source, STATUS_TIMEOUT)?,
        )),
        None => None,
    };
    ctx.note_if_sample("simulating the built-in sample workload");
    let mut ds = ctx.load(crate::dataset::NOT_ANALYSED)?;
    ctx.drv_graph(&mut ds, opts.drv_store.as_deref())?;
    ctx.runner_series(&mut ds, opts.series.as_ref())?;
    let machines = inputs::given_or_bundled(given, &mut ds);
    // The ledger's measured buckets, for the replay's held slots and dispatch loss to be
    // calibrated against.
    let findings = crate::analysis::analyze(
        &ds,
        &crate::analysis::Options {
            machines: machines.clone(),
            ..crate::analysis::Options::default()
        },
    )?;
    let measured = inputs::measured_buckets(&ds, &findings.ledger)?;
    let stage = ctx.progress.stage("simulating");
    let summary = model::run(
        &ds,
        &model::Options {
            machines,
            scenarios,
            seeds: opts.seeds,
            local_workers: opts.local_workers,
            codecs,
            costs,
            gap_s: opts.gap_s,
            verdict: opts.verdict,
            status,
            measured,
        },
    )?;
    stage.done();
    Ok(summary)
}

/// JSON: the whole summary. CSV: the comparison table. Table: the calibration, the comparison,
/// the status check, the verdict and the assumptions, each under a heading.
impl Render for Summary {
    fn render(&self, p: &mut Printer<'_>) -> Result<()> {
        let format = p.format();
        if format == Format::Json {
            return p.rows(&[], &[], self);
        }
        let (header, rows) = table::comparison(self);
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        if format == Format::Csv {
            return p.rows(&header, &rows, &());
        }
        p.text(&format!(
            "{}: {} steps, {} dependencies ({}); runner {}\n",
            self.origin, self.tasks, self.dependencies, self.deps_from, self.runner
        ))?;
        p.text("\nCalibration: a replay of the observed configuration against the history\n")?;
        p.rows(
            &table::CALIBRATION_HEADER,
            &table::calibration_rows(self),
            &(),
        )?;
        p.text(&format!(
            "\nBaseline and scenarios: median (lowest–highest) over {} seeds\n",
            self.seeds.len()
        ))?;
        p.rows(&header, &rows, &())?;
        if let Some(c) = &self.status_check {
            p.text(&format!(
                "\nStep time per machine: the replay against {}\n",
                c.origin
            ))?;
            p.rows(&table::STATUS_HEADER, &table::status_rows(c), &())?;
            if !c.unmatched.is_empty() {
                p.text(&format!(
                    "not compared (not in the data, or no steps): {}\n",
                    c.unmatched.join(", ")
                ))?;
            }
        }
        if let Some(v) = &self.verdict {
            p.text(&format!("\nBinding constraint: {}\n", v.statement))?;
        }
        p.text("\nAssumptions:\n")?;
        for a in std::iter::once(&self.machines_from)
            .chain(std::iter::once(&self.local_workers_from))
            .chain(&self.assumptions)
        {
            p.text(&format!("- {a}\n"))?;
        }
        Ok(())
    }
}
