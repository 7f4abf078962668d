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
    // A snapshot (its window cut to a temporary snapshot first), or a database's window, is
    // read a day at a time (`analysis::fold`), the derivation graph's `.drv` files span by
    // span; the built-in sample is read whole.
    let (history, machines) =
        match ctx.reading(crate::analysis::Need::ALL, opts.drv_store.as_deref())? {
            inputs::Reading::Days(days, store) => {
                let (machines, timeline) = ctx.fold_side(
                    &days,
                    crate::analysis::Need::ALL,
                    opts.machines.as_deref(),
                    opts.series.as_ref(),
                )?;
                stage.done();
                (
                    History::Days {
                        days: *days,
                        timeline,
                        store,
                    },
                    machines,
                )
            }
            inputs::Reading::Whole => {
                let mut ds = ctx.load_whole(opts.drv_store.as_deref(), opts.series.as_ref())?;
                stage.done();
                let machines = inputs::machines_or_bundled(opts.machines.as_deref(), &mut ds)?;
                (History::Whole(ds), machines)
            }
        };

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
    let codec_speeds = compression
        .as_ref()
        .map(|(c, _)| inputs::speeds(inputs::timed(&c.codecs)))
        .unwrap_or_default();
    let (findings, data) = match &history {
        History::Whole(ds) => (
            crate::analysis::analyze(
                ds,
                &crate::analysis::Options {
                    machines: machines.clone(),
                    gap_s: None,
                    codec_speeds,
                    ignore_series: false,
                    ignore_graph: false,
                    need: crate::analysis::Need::ALL,
                },
            )?,
            report::DataFacts::of(ds)?,
        ),
        History::Days {
            days,
            timeline,
            store,
        } => {
            let side = crate::analysis::fold::Side {
                machines: machines.as_deref(),
                timeline: timeline.as_ref(),
                graph: store.as_ref(),
            };
            let gap_s = crate::analysis::deps::DEFAULT_GAP_S;
            let findings = crate::analysis::fold::every_finding(days, gap_s, &codec_speeds, side)?;
            ctx.note_folded_graph(&findings);
            (findings, data_facts(days)?)
        }
    };
    stage.done();
    crate::interrupt::check()?;
    let simulation = if opts.simulation {
        let stage = ctx.progress.stage("simulating the scenarios");
        let (replayed, note) = latest_days(ctx, history)?;
        let runner = replayed.meta.runner;
        let measured = inputs::measured_buckets(&replayed, &findings.ledger)?;
        let codecs = compression
            .as_ref()
            .map(|(c, _)| {
                inputs::model_codecs(inputs::timed(&c.codecs), "measured for this report")
            })
            .unwrap_or_default();
        let sim = simulate(
            replayed,
            note,
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
        )?;
        stage.done();
        Some(sim)
    } else {
        // The history (and a database's temporary snapshot) is not needed any more.
        drop(history);
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

/// The history a report reads: whole, or a snapshot's days to fold over (with the runner's
/// series, given or the snapshot's).
enum History {
    Whole(Dataset),
    Days {
        days: crate::source::snapshot::Days,
        timeline: Option<crate::status::timeline::Timeline>,
        /// Where the derivation graph is read, if it is.
        store: Option<crate::analysis::fold::Store>,
    },
}

/// What the report says of the data (`report::DataFacts`) from a snapshot's builds, a file at
/// a time.
fn data_facts(days: &crate::source::snapshot::Days) -> Result<report::DataFacts> {
    let meta = days.meta();
    let (mut builds, mut volume) = (0, crate::compress::project::VolumeSums::default());
    days.builds(crate::source::snapshot::only_volume(), |df| {
        builds += df.height();
        volume.add(&df)
    })?;
    Ok(report::DataFacts {
        builds,
        schema_version: meta.schema_version,
        volume: volume.finish(meta.window),
    })
}

/// The history the simulation replays: its latest whole days holding at most
/// [`SIMULATION_MAX_STEPS`] steps (and a sentence saying so, noted), else all of it. From a
/// snapshot's days, those days are found from every step's times and then read alone, with the
/// runner, the window's end and the runner's series of the whole history, as the whole
/// history read and cut would give them.
fn latest_days(ctx: &Context<'_>, history: History) -> Result<(Dataset, Option<String>)> {
    let (replayed, note) = match history {
        History::Whole(ds) => match crate::model::latest_days(&ds, SIMULATION_MAX_STEPS)? {
            // The whole history is not read again: it is freed before the replay's memory.
            Some((latest, note)) => (latest, Some(note)),
            None => (ds, None),
        },
        History::Days {
            days,
            timeline,
            store,
        } => {
            let builds = days.queue_times()?;
            let mut latest = crate::model::Latest::default();
            days.each_day(crate::source::snapshot::only_kept_from(), |df| {
                latest.add(&df, |b| {
                    let k = builds.binary_search_by_key(&b, |x| x.0).ok()?;
                    Some(builds[k].1)
                })
            })?;
            drop(builds);
            let total = latest.total;
            let meta = days.meta();
            let window = latest.window(SIMULATION_MAX_STEPS, meta.window.until);
            let at = |t: Option<i64>| t.map(crate::window::TimeSpec::At);
            let read = crate::source::ReadOptions {
                window: crate::window::WindowSpec {
                    since: at(window.and_then(|w| w.since)),
                    until: at(window.and_then(|w| w.until)),
                },
                // Decided already, from every step.
                runner: Some(meta.runner),
                runner_switch: meta.runner_switch,
                ..ctx.read_options(crate::dataset::NOT_ANALYSED)
            };
            // The days' own snapshot: the one given, or the one a database was spilled to.
            let snapshot = crate::source::SourceSpec::Snapshot(days.dir().to_path_buf());
            let mut ds = crate::source::load(&snapshot, &read)?;
            drop(days);
            // The graph the findings read, where it is not the snapshot's own that came with
            // the days (`--drv-store`, the local store).
            if let Some(s) = &store
                && ds.drv_graph.as_ref().is_none_or(|g| g.source != s.source)
            {
                crate::source::drvstore::attach(&mut ds, Some(&s.dir))?;
            }
            ds.meta = crate::dataset::DatasetMeta {
                window: window.unwrap_or(meta.window),
                ..meta
            };
            ds.timeline = timeline;
            ds.machines = None;
            let note = window.map(|w| {
                crate::model::latest_note(w, ds.steps.height(), total, SIMULATION_MAX_STEPS)
            });
            (ds, note)
        }
    };
    if let Some(note) = &note {
        ctx.note(&format!("simulation: {note}"));
    }
    Ok((replayed, note))
}

/// The simulation section: the scenarios replayed over `replayed` (`note`: how it was
/// bounded, said in the section).
fn simulate(
    replayed: Dataset,
    note: Option<String>,
    model: &crate::model::Options,
) -> Result<Simulation> {
    let summary = crate::model::run(&replayed, model)?;
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
