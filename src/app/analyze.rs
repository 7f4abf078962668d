//! `analyze`: the findings of one dataset, one of them printed (or all, as JSON).

use std::path::PathBuf;

use super::render::{Format, Printer, Render};
use super::{Context, SeriesSource, inputs};
use crate::analysis::Findings;
use crate::analysis::table::{Finding, tabulate};
use crate::error::{Error, Result};

/// What `analyze` is asked.
#[derive(Debug, Clone)]
pub struct AnalyzeOptions {
    /// Which finding to print ([`Finding::All`] only as JSON).
    pub finding: Finding,
    /// The machines file for configured slot counts; else the one that came with the data,
    /// else slots are inferred from the peak concurrency observed.
    pub machines: Option<PathBuf>,
    /// The dependency estimator's gap in seconds.
    pub gap_s: Option<i64>,
    /// A saved `compress --format json`, to set measured codec speeds beside the overhead fit.
    pub compression: Option<PathBuf>,
    /// A directory of `.drv` files (`--drv-store`) for the derivation graph.
    pub drv_store: Option<PathBuf>,
    /// The runner's series to read (`--prometheus`, `--runner-series`) instead of the data's.
    pub series: Option<SeriesSource>,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        AnalyzeOptions {
            finding: Finding::Ledger,
            machines: None,
            gap_s: None,
            compression: None,
            drv_store: None,
            series: None,
        }
    }
}

/// The findings, and which of them to print.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub findings: Findings,
    pub finding: Finding,
}

/// Reads the history and computes every finding.
pub fn run(ctx: &Context<'_>, opts: &AnalyzeOptions) -> Result<Analysis> {
    if let Some(dir) = &opts.drv_store {
        crate::source::drvstore::check_dir(dir)?;
    }
    if let Some(s) = &opts.series {
        s.check()?;
    }
    ctx.note_if_sample("analysing the built-in sample workload");
    // Only what the finding asked for is read and computed: the derivation graph and the
    // runner's series serve the ledger alone.
    let need = crate::analysis::Need::of(opts.finding);
    let mut ds = if need.graph_and_series() {
        let mut ds = ctx.load(crate::dataset::NOT_ANALYSED)?;
        ctx.drv_graph(&mut ds, opts.drv_store.as_deref())?;
        ctx.runner_series(&mut ds, opts.series.as_ref())?;
        ds
    } else {
        ctx.load_tables(need)?
    };
    let machines = inputs::machines_or_bundled(opts.machines.as_deref(), &mut ds)?;
    let codec_speeds = match &opts.compression {
        Some(p) => inputs::speeds(&inputs::saved_codecs(p)?),
        None => Vec::new(),
    };
    let findings = crate::analysis::analyze(
        &ds,
        &crate::analysis::Options {
            machines,
            gap_s: opts.gap_s,
            codec_speeds,
            ignore_series: false,
            ignore_graph: false,
            need,
        },
    )?;
    Ok(Analysis {
        findings,
        finding: opts.finding,
    })
}

impl Render for Analysis {
    fn render(&self, p: &mut Printer<'_>) -> Result<()> {
        if self.finding == Finding::All && p.format() != Format::Json {
            return Err(Error::Usage(
                "`analyze all` prints every finding and needs --format json".into(),
            ));
        }
        let (header, rows, json) = tabulate(&self.findings, self.finding)?;
        p.rows(&header, &rows, &json)
    }
}
