//! `report`: the cost-reduction report, the whole pipeline: read the history, measure or read
//! the codecs, analyse, simulate the scenarios, assemble, and write the report's directory.

use std::path::PathBuf;

use super::render::{Printer, Render};
use super::{Context, inputs};
use crate::compress;
use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::output::Existing;
use crate::report::{self, Compression, Report, Simulation, Written};
use crate::source::SourceSpec;

/// What `report` is asked.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// The machines file; else the one that came with the data, else slots inferred.
    pub machines: Option<PathBuf>,
    /// A cost file; else the documented defaults.
    pub costs: Option<PathBuf>,
    /// The directory to write; `None`: `reports/<date>-<source>/`, numbered if it exists.
    pub out: Option<PathBuf>,
    /// Replace an existing `out`, only once the new report is complete.
    pub force: bool,
    /// A saved codec measurement (`compress --format json`, or a report's compression.json)
    /// instead of measuring now.
    pub compression: Option<PathBuf>,
    /// Leave out the codec measurement and the compression section.
    pub no_compression: bool,
    /// Codecs to measure when no `compression` file is given, as [`compress::parse_list`]
    /// reads them.
    pub codecs: String,
    /// Size of the default local corpus measured when no `compression` file is given, MiB.
    pub corpus_mib: u64,
    /// An earlier report's directory: a before/after column for each headline figure.
    pub compare: Option<PathBuf>,
    /// Also write PNG copies of the charts.
    pub png: bool,
    /// Scenario files for the simulation section; empty: the built-in examples.
    pub scenarios: Vec<PathBuf>,
    /// Simulation runs per configuration.
    pub seeds: u32,
    /// Local worker slots of the queue-runner host in the history.
    pub local_workers: Option<u32>,
    /// Include the simulation section.
    pub simulation: bool,
    /// A directory of `.drv` files (`--drv-store`) for the derivation graph.
    pub drv_store: Option<PathBuf>,
    /// The runner's series to read (`--prometheus`, `--runner-series`) instead of the data's.
    pub series: Option<super::SeriesSource>,
}

/// The codecs a report measures by default: the C++ runner's xz-6 and the zstd levels a
/// farm would choose between (fast, and the Rust runner's zstd-19).
pub const DEFAULT_CODECS: &str = "xz-6,zstd-3,zstd-19";

/// The default corpus a report measures, MiB: a quarter of `compress`'s, since the report
/// measures codecs on the side and a smaller corpus keeps that stage short.
pub const DEFAULT_CORPUS_MIB: u64 = 16;

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            machines: None,
            costs: None,
            out: None,
            force: false,
            compression: None,
            no_compression: false,
            codecs: DEFAULT_CODECS.into(),
            corpus_mib: DEFAULT_CORPUS_MIB,
            compare: None,
            png: true,
            scenarios: Vec::new(),
            seeds: crate::model::DEFAULT_SEEDS,
            local_workers: None,
            simulation: true,
            drv_store: None,
            series: None,
        }
    }
}

/// The report built, and where it was written.
#[derive(Debug, Clone)]
pub struct Reported {
    pub report: Report,
    pub written: Written,
}

/// `reports/<date>-<source>`; written with [`Existing::NextFree`], which numbers it `-2`, `-3`,
/// … when taken: the default never replaces an earlier report.
fn default_dir(spec: &SourceSpec) -> PathBuf {
    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let source = match spec {
        SourceSpec::Sample(_) => "sample".to_string(),
        SourceSpec::Snapshot(dir) => dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "snapshot".into()),
        SourceSpec::Postgres(_) => "db".to_string(),
    };
    let source: String = source
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    PathBuf::from("reports").join(format!("{date}-{source}"))
}

/// The report's simulation replays at most this many steps, the latest whole days: it runs
/// seven configurations with five seeds each and a load sweep, about forty runs, and a run costs
/// about 3 s and 1 GB per million steps (release build). A million steps, ten times the
/// built-in sample's week, is enough for every scenario's effect to show; `simulate` itself is
/// unbounded.
const SIMULATION_MAX_STEPS: usize = 1_000_000;

/// Where the report goes, checked before any work: an `out` that holds something needs `force`.
fn destination(ctx: &Context<'_>, opts: &ReportOptions) -> Result<(PathBuf, Existing)> {
    match &opts.out {
        Some(dir) => {
            if !opts.force && std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
                return Err(Error::Exists {
                    target: dir.display().to_string(),
                    reason: "exists and is not empty; choose another directory or pass --force \
                             to replace it"
                        .into(),
                });
            }
            let existing = if opts.force {
                Existing::Replace
            } else {
                Existing::Refuse
            };
            Ok((dir.clone(), existing))
        }
        // The name is taken when the report is complete, atomically: a run that finishes
        // meanwhile (or a second run started at the same moment) keeps its directory.
        None => Ok((default_dir(&ctx.source), Existing::NextFree)),
    }
}

/// Reads everything, builds the report and writes its directory. Everything given is read and
/// checked before minutes of work; Ctrl-C stops at the next stage, and nothing is written until
/// the report is complete (an old report given with `force` stays as it was).
pub fn run(ctx: &Context<'_>, opts: &ReportOptions) -> Result<Reported> {
    let progress = ctx.progress;
    let previous = opts
        .compare
        .as_deref()
        .map(report::compare::read)
        .transpose()?;
    let costs = inputs::costs(opts.costs.as_deref())?;
    // Files of one's own are read now; the examples are chosen by the runner of the data.
    let own_scenarios = opts
        .scenarios
        .iter()
        .map(|p| crate::model::scenario::read(p))
        .collect::<Result<Vec<_>>>()?;
    let saved = match &opts.compression {
        Some(p) => {
            let bytes = compress::read_saved_bytes(p)?;
            Some((compress::parse_saved(&bytes, p)?, bytes, p))
        }
        None => None,
    };
    let codecs = compress::parse_list(&opts.codecs)?;
    if let Some(dir) = &opts.drv_store {
        crate::source::drvstore::check_dir(dir)?;
    }
    if let Some(s) = &opts.series {
        s.check()?;
    }
    let (out, existing) = destination(ctx, opts)?;
    ctx.note_if_sample("reporting on the built-in sample workload");

    crate::interrupt::install()?;
    let stage = progress.stage("reading the history");
    let mut ds = ctx.load(crate::dataset::NOT_ANALYSED)?;
    stage.done();
    ctx.drv_graph(&mut ds, opts.drv_store.as_deref())?;
    ctx.runner_series(&mut ds, opts.series.as_ref())?;
    let machines = inputs::machines_or_bundled(opts.machines.as_deref(), &mut ds)?;

    let compression = if let Some((s, bytes, path)) = saved {
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        Some((
            Compression {
                source: format!("read from {name} (saved `compress --format json` results)"),
                default_corpus: s.default_corpus,
                nars: s.nars,
                nar_bytes: s.nar_bytes,
                codecs: s.codecs,
            },
            bytes,
        ))
    } else if opts.no_compression {
        None
    } else {
        Some(measure(ctx, codecs, opts.corpus_mib)?)
    };

    let stage = progress.stage("analysing");
    let findings = crate::analysis::analyze(
        &ds,
        &crate::analysis::Options {
            machines: machines.clone(),
            gap_s: None,
            codec_speeds: compression
                .as_ref()
                .map(|(c, _)| inputs::speeds(inputs::timed(&c.codecs)))
                .unwrap_or_default(),
            ignore_series: false,
            ignore_graph: false,
            need: crate::analysis::Need::ALL,
        },
    )?;
    let data = report::DataFacts::of(&ds)?;
    stage.done();
    crate::interrupt::check()?;
    let simulation = if opts.simulation {
        let runner = ds.meta.runner;
        let measured = inputs::measured_buckets(&ds, &findings.ledger)?;
        let codecs = compression
            .as_ref()
            .map(|(c, _)| {
                inputs::model_codecs(inputs::timed(&c.codecs), "measured for this report")
            })
            .unwrap_or_default();
        Some(simulate(
            ctx,
            ds,
            &crate::model::Options {
                machines: machines.clone(),
                scenarios: if own_scenarios.is_empty() {
                    crate::model::scenario::examples_for(runner)?
                } else {
                    own_scenarios
                },
                seeds: opts.seeds,
                local_workers: opts.local_workers,
                codecs,
                costs: costs.clone(),
                gap_s: None,
                verdict: true,
                status: None,
                measured,
            },
        )?)
    } else {
        None
    };
    let stage = progress.stage("assembling the report");
    let (compression, compression_json) = match compression {
        Some((c, b)) => (Some(c), Some(b)),
        None => (None, None),
    };
    let built = report::build(report::Inputs {
        data,
        findings: &findings,
        machines: machines.as_deref(),
        costs: &costs,
        compression,
        simulation,
        generated_at: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        previous,
    })?;
    stage.done();

    crate::interrupt::check()?;
    let stage = progress.stage("drawing charts and writing the report");
    let written = report::write(
        &built,
        &out,
        &report::WriteOptions {
            png: opts.png,
            existing,
            compression_json,
        },
    )?;
    stage.done();
    Ok(Reported {
        report: built,
        written,
    })
}

/// Measures `codecs` on a small local corpus of at most `corpus_mib`; the measurement, and its
/// JSON to save beside the report.
fn measure(
    ctx: &Context<'_>,
    codecs: Vec<compress::CodecSpec>,
    corpus_mib: u64,
) -> Result<(Compression, Vec<u8>)> {
    let stage = ctx
        .progress
        .stage("measuring codecs on a small local corpus");
    let cap = corpus_mib.max(1).saturating_mul(1 << 20);
    let opts = compress::Options {
        codecs,
        corpus_cap: cap,
        nar_cap: compress::DEFAULT_NAR_CAP.min(cap),
        ..compress::Options::default()
    };
    // The corpus's own notes (which files) are not the report's business.
    let measured = compress::run(&opts, &|_| {})?;
    stage.done();
    let bytes = serde_json::to_vec_pretty(&measured)
        .map_err(|e| Error::json("serialising the measurement", e))?;
    Ok((
        Compression {
            source: format!(
                "measured now on this machine ({} threads): {} of local files, at most {} MiB",
                measured.threads,
                if measured.default_corpus {
                    "the default corpus"
                } else {
                    "inputs"
                },
                corpus_mib
            ),
            default_corpus: measured.default_corpus,
            nars: measured.corpus.len(),
            nar_bytes: measured.corpus.iter().map(|c| c.nar_size).sum(),
            codecs: measured.codecs,
        },
        bytes,
    ))
}

/// The simulation section: the scenarios replayed over the latest days of `ds` (at most
/// [`SIMULATION_MAX_STEPS`] steps, said in the section when bounded).
fn simulate(ctx: &Context<'_>, ds: Dataset, model: &crate::model::Options) -> Result<Simulation> {
    let stage = ctx.progress.stage("simulating the scenarios");
    let (replayed, note) = match crate::model::latest_days(&ds, SIMULATION_MAX_STEPS)? {
        Some((latest, note)) => {
            ctx.note(&format!("simulation: {note}"));
            // The whole history is not read again: free it before the replay's own memory.
            drop(ds);
            (latest, Some(note))
        }
        None => (ds, None),
    };
    let summary = crate::model::run(&replayed, model)?;
    stage.done();
    drop(replayed);
    let mut sim = Simulation::from_summary(&summary);
    if let Some(note) = note {
        // After the binding constraint, before the replay's counts it explains.
        let at = usize::from(summary.verdict.is_some()).min(sim.verdict.len());
        sim.verdict.insert(at, format!("The simulation {note}."));
    }
    Ok(sim)
}

/// The one-screen summary, whatever the format: the report itself is the directory.
impl Render for Reported {
    fn render(&self, p: &mut Printer<'_>) -> Result<()> {
        p.text(&report::summary_text(&self.report, &self.written))
    }
}
