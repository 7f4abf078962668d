//! `analyze`: the findings of one dataset, one or several of them printed (or all, as JSON).

use std::path::PathBuf;

use super::render::{Format, Printer, Render};
use super::{Context, SeriesSource, inputs};
use crate::analysis::Findings;
use crate::analysis::table::{Finding, tabulate};
use crate::error::{Error, Result};

/// What `analyze` is asked.
#[derive(Debug, Clone)]
pub struct AnalyzeOptions {
    /// Which findings to print, in order: one, several (computed in one pass over the data,
    /// printed as tables one after the other or as one JSON object), or [`Finding::All`] alone
    /// and only as JSON. Empty means the ledger.
    pub findings: Vec<Finding>,
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
            findings: vec![Finding::Ledger],
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
    /// At least one, each once, [`Finding::All`] only alone.
    pub shown: Vec<Finding>,
}

/// The findings asked for, each once in the order given; the ledger when none is.
fn shown(asked: &[Finding]) -> Result<Vec<Finding>> {
    let mut shown: Vec<Finding> = Vec::with_capacity(asked.len());
    for &f in asked {
        if !shown.contains(&f) {
            shown.push(f);
        }
    }
    if shown.len() > 1 && shown.contains(&Finding::All) {
        return Err(Error::Usage(
            "`all` is every finding already: give it alone, or name the findings".into(),
        ));
    }
    if shown.is_empty() {
        shown.push(Finding::Ledger);
    }
    Ok(shown)
}

/// Reads the history and computes every finding.
pub fn run(ctx: &Context<'_>, opts: &AnalyzeOptions) -> Result<Analysis> {
    let shown = shown(&opts.findings)?;
    if let Some(dir) = &opts.drv_store {
        crate::source::drvstore::check_dir(dir)?;
    }
    if let Some(s) = &opts.series {
        s.check()?;
    }
    ctx.note_if_sample("analysing the built-in sample workload");
    // A database's window is written to a temporary snapshot, which Ctrl-C must not leave.
    crate::interrupt::install()?;
    // Only what the findings asked for is read and computed, once for all of them: the
    // derivation graph and the runner's series serve the ledger alone.
    let need = shown.iter().fold(crate::analysis::Need::NONE, |need, &f| {
        need.and(crate::analysis::Need::of(f))
    });
    // The measured codecs set beside the overhead fit (`--compression`).
    let codec_speeds = || -> Result<Vec<(String, f64)>> {
        Ok(match &opts.compression {
            Some(p) => inputs::speeds(&inputs::saved_codecs(p)?),
            None => Vec::new(),
        })
    };
    // Over a whole snapshot or a database's window, the findings that fold read a day at a
    // time.
    if let inputs::Reading::Days(days, store) = ctx.reading(need, opts.drv_store.as_deref())? {
        let gap_s = opts.gap_s.unwrap_or(crate::analysis::deps::DEFAULT_GAP_S);
        let (machines, timeline) =
            ctx.fold_side(&days, need, opts.machines.as_deref(), opts.series.as_ref())?;
        let side = crate::analysis::fold::Side {
            machines: machines.as_deref(),
            timeline: timeline.as_ref(),
            graph: store.as_ref(),
        };
        let findings = crate::analysis::fold::analyze(&days, need, gap_s, &codec_speeds()?, side)?;
        ctx.note_folded_graph(&findings);
        return Ok(Analysis { findings, shown });
    }
    let mut ds = if need.graph_and_series() {
        ctx.load_whole(opts.drv_store.as_deref(), opts.series.as_ref())?
    } else {
        ctx.load_tables(need)?
    };
    let machines = inputs::machines_or_bundled(opts.machines.as_deref(), &mut ds)?;
    let findings = crate::analysis::analyze(
        &ds,
        &crate::analysis::Options {
            machines,
            gap_s: opts.gap_s,
            codec_speeds: codec_speeds()?,
            ignore_series: false,
            ignore_graph: false,
            need,
        },
    )?;
    Ok(Analysis { findings, shown })
}

/// Whether `findings` can be printed as `format`: `all` only as JSON, several not as CSV (which
/// holds one table). The command line asks before reading anything; printing asks again.
pub fn printable(findings: &[Finding], format: Format) -> Result<()> {
    let shown = shown(findings)?;
    if shown.contains(&Finding::All) && format != Format::Json {
        return Err(Error::Usage(
            "`analyze all` prints every finding and needs --format json".into(),
        ));
    }
    if shown.len() > 1 && format == Format::Csv {
        return Err(Error::Usage(
            "CSV holds one table: ask for one finding at a time, or use --format json".into(),
        ));
    }
    Ok(())
}

impl Render for Analysis {
    fn render(&self, p: &mut Printer<'_>) -> Result<()> {
        printable(&self.shown, p.format())?;
        let [one] = self.shown.as_slice() else {
            return self.render_several(p);
        };
        let (header, rows, json) = tabulate(&self.findings, *one)?;
        p.rows(&header, &rows, &json)
    }
}

impl Analysis {
    /// Several findings: as JSON one object, each finding under its name as `analyze FINDING`
    /// prints it; as tables, one after the other, each under its name (never as CSV:
    /// [`printable`]).
    fn render_several(&self, p: &mut Printer<'_>) -> Result<()> {
        match p.format() {
            Format::Json => {
                let mut all = serde_json::Map::new();
                for &f in &self.shown {
                    all.insert(f.name().to_string(), tabulate(&self.findings, f)?.2);
                }
                p.rows(&[], &[], &all)
            }
            // Tables; CSV never gets here (`printable`).
            Format::Table | Format::Csv => {
                for (i, &f) in self.shown.iter().enumerate() {
                    let (header, rows, json) = tabulate(&self.findings, f)?;
                    p.text(&format!("{}{}:\n", if i > 0 { "\n" } else { "" }, f.name()))?;
                    p.rows(&header, &rows, &json)?;
                }
                Ok(())
            }
        }
    }
}
