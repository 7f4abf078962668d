//! What several commands read the same way, written once: the note that the built-in sample is
//! used, the dataset, the machines file (given, or the one that came with the data), a cost
//! file, a saved codec measurement and which of its codecs have a usable speed, a connection
//! string, the derivation graph (`--drv-store`), the runner's series (`--prometheus`,
//! `--runner-series`), and the async runtime.

use std::path::{Path, PathBuf};

use super::Context;
use crate::compress::CodecSummary;
use crate::compress::project::Costs;
use crate::conninfo::ConnParams;
use crate::dataset::{Dataset, Omit};
use crate::error::{Error, Result};
use crate::nix::machines::BuildMachine;
use crate::source::snapshot::Days;
use crate::status::timeline::Timeline;

/// How the history is read ([`Context::reading`]).
pub(super) enum Reading {
    /// Folded over these days (a whole snapshot's, or a database's window spilled to a
    /// temporary snapshot), with where the ledger reads the derivation graph, if it does.
    Days(Box<Days>, Option<crate::analysis::fold::Store>),
    /// Read whole from the source.
    Whole,
}

impl Context<'_> {
    /// Says that no source was given and the built-in sample is used: "no --db or --snapshot
    /// given: " and what the command does with it ("analysing the built-in sample workload").
    pub(super) fn note_if_sample(&self, doing: &str) {
        if self.source.is_sample() {
            self.note(&format!("no --db or --snapshot given: {doing}"));
        }
    }

    /// Reads the history in the window; `omit`: the columns the command never reads.
    pub(super) fn load(&self, omit: Omit) -> Result<Dataset> {
        crate::source::load(&self.source, &self.read_options(omit))
    }

    /// How the history is read for the findings in `need`. They fold over days
    /// (`analysis::fold`) from a whole snapshot (no window), from a window of a snapshot, first
    /// cut to a temporary snapshot ([`crate::source::cut_days`]), and from a database, whose
    /// window is first spilled to one ([`crate::source::spill`]); with the ledger,
    /// the derivation graph is read from `drv_store`, else the snapshot's `store/`, else the
    /// local store when it holds the steps' derivations, else none, which is noted. The
    /// built-in sample is read whole.
    pub(super) fn reading(
        &self,
        need: crate::analysis::Need,
        drv_store: Option<&Path>,
    ) -> Result<Reading> {
        use crate::source::SourceSpec;
        let days = match &self.source {
            SourceSpec::Snapshot(dir) if self.window.is_unbounded() => {
                crate::source::open_days(dir, &self.read_options(crate::dataset::NOT_ANALYSED))?
            }
            SourceSpec::Snapshot(dir) => {
                let mut read = self.read_options(need.omit());
                read.truth = need.truth();
                read.omit_with_truth = need.omit_with_truth();
                let made = |tmp: &Path| self.note_scratch("cut", tmp);
                crate::source::cut_days(dir, &read, &crate::output::scratch_dir(), made)?
            }
            SourceSpec::Postgres(conn) => {
                let read = self.read_options(need.omit());
                let made = |tmp: &Path| self.note_scratch("read", tmp);
                crate::source::spill(conn, &read, &crate::output::scratch_dir(), made)?
            }
            SourceSpec::Sample(_) => return Ok(Reading::Whole),
        };
        let store = match need.ledger {
            true => graph_store(&days, drv_store)?,
            false => None,
        };
        // As the whole read says when it finds no graph (`Context::drv_graph`).
        if need.ledger && store.is_none() {
            self.note_no_graph();
        }
        Ok(Reading::Days(Box::new(days), store))
    }

    /// Says where the window was `how` (cut, read) into a temporary snapshot to fold over.
    fn note_scratch(&self, how: &str, tmp: &Path) {
        self.note(&format!(
            "the window is {how} once into a temporary snapshot, {} (removed when done; TMPDIR \
             chooses where)",
            tmp.display()
        ));
    }

    /// The history read whole for the ledger with its derivation graph and the runner's series:
    /// from the source ([`Context::load`]); then the graph (`drv_store`, else the data's, else
    /// the local store) and the series (`series`, else the data's) attached.
    pub(super) fn load_whole(
        &self,
        drv_store: Option<&Path>,
        series: Option<&SeriesSource>,
    ) -> Result<Dataset> {
        let mut ds = self.load(crate::dataset::NOT_ANALYSED)?;
        self.drv_graph(&mut ds, drv_store)?;
        self.runner_series(&mut ds, series)?;
        Ok(ds)
    }

    /// Notes how much of the window the derivation graph a folded ledger read covers, as
    /// [`Context::drv_graph`] notes it for a window read whole.
    pub(super) fn note_folded_graph(&self, findings: &crate::analysis::Findings) {
        if let crate::analysis::RunnableBasis::Graph { coverage, .. } = &findings.runnable_basis {
            self.note(&coverage.note());
            for n in &coverage.notes {
                self.note(n);
            }
        }
    }

    /// What a folded ledger reads besides the days: the machines file given, else the
    /// snapshot's; the runner's series given, else the snapshot's (none without the ledger).
    pub(super) fn fold_side(
        &self,
        days: &Days,
        need: crate::analysis::Need,
        machines: Option<&Path>,
        series: Option<&SeriesSource>,
    ) -> Result<(Option<Vec<BuildMachine>>, Option<Timeline>)> {
        let given = machines_file(machines)?;
        let machines = match given {
            Some(m) => Some(m),
            None => days.machines()?.map(|b| b.machines),
        };
        if !need.ledger {
            return Ok((machines, None));
        }
        let own = days.runner_series()?;
        let timeline = match series {
            Some(given) => {
                let window = crate::analysis::span_of(days.meta().window, || days.extent())?;
                let replaced = own.as_ref().map(|t| t.source.as_str());
                Some(self.series_over(window, given, replaced)?)
            }
            None => own,
        };
        Ok((machines, timeline))
    }

    /// [`Context::load`] without the derivation graph and the runner's series, for a command
    /// that uses neither (reading a million `.drv` files is most of such a command's time).
    /// `truth`: whether the sample's ground truth is read too.
    pub(super) fn load_tables(&self, need: crate::analysis::Need) -> Result<Dataset> {
        let mut read = self.read_options(need.omit());
        read.tables_only = true;
        read.truth = need.truth();
        read.omit_with_truth = need.omit_with_truth();
        crate::source::load(&self.source, &read)
    }

    /// Notes that no derivation graph is read.
    pub(super) fn note_no_graph(&self) {
        self.note(&format!(
            "no --drv-store given and {} holds none of the steps' derivations: when steps \
             became runnable is estimated from dependencies within each build",
            crate::source::drvstore::DEFAULT_STORE
        ));
    }

    /// Gives `ds` its derivation graph: the `.drv` files of `given` (`--drv-store`), else the
    /// graph the data came with (the sample's, a snapshot's `store/`), else the local
    /// `/nix/store` when it holds the steps' derivations. Notes in one line how many of the
    /// window's steps had their `.drv` found, or that there is no graph.
    pub(super) fn drv_graph(&self, ds: &mut Dataset, given: Option<&Path>) -> Result<()> {
        use crate::source::drvstore;
        if drvstore::attach(ds, given)? == drvstore::Attached::None {
            self.note_no_graph();
        }
        if let Some(g) = &ds.drv_graph {
            let steps = crate::analysis::Steps::from_frame(&ds.steps)?;
            self.note(&crate::analysis::graph::note(g, &steps));
            for n in &g.notes {
                self.note(n);
            }
        }
        Ok(())
    }
}

/// Where a folded ledger reads the derivation graph: the directory given (`--drv-store`), else
/// the snapshot's `store/`, else [`crate::source::drvstore::DEFAULT_STORE`] when it holds the
/// steps' derivations ([`crate::analysis::fold::local_store_holds`]); `None`: no graph.
fn graph_store(days: &Days, given: Option<&Path>) -> Result<Option<crate::analysis::fold::Store>> {
    use crate::analysis::fold::Store;
    use crate::source::drvstore;
    if let Some(dir) = given {
        drvstore::check_dir(dir)?;
        let source = dir.display().to_string();
        return Ok(Some(Store {
            dir: dir.to_path_buf(),
            source,
        }));
    }
    if let Some((dir, source)) = days.drv_store()? {
        return Ok(Some(Store { dir, source }));
    }
    if crate::analysis::fold::local_store_holds(days)? {
        let dir = PathBuf::from(drvstore::DEFAULT_STORE);
        let source = dir.display().to_string();
        return Ok(Some(Store { dir, source }));
    }
    Ok(None)
}

/// Where the runner's series is read from when the command line names one (`--prometheus`,
/// `--runner-series`). It replaces the series the data came with (the sample's runner, a
/// snapshot's `runner_series`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeriesSource {
    /// A Prometheus server's HTTP API (`status::prometheus`).
    Prometheus {
        /// The server's base URL, credentials and all as given (they are taken out before any
        /// request and never shown).
        url: String,
        /// The grid's step, seconds; `None`: [`crate::status::prometheus::DEFAULT_STEP_S`].
        step_s: Option<i64>,
        /// A file holding a bearer token.
        token_file: Option<PathBuf>,
    },
    /// A JSON-lines file `status --watch` wrote (`status::series`).
    WatchFile(PathBuf),
}

impl SeriesSource {
    /// What can be checked before the history is read, which may take minutes: the token file
    /// holds one token, the step is positive, the watch file is a regular file.
    pub(super) fn check(&self) -> Result<()> {
        match self {
            SeriesSource::Prometheus {
                url,
                step_s,
                token_file,
            } => {
                if let Some(s) = step_s.filter(|s| *s <= 0) {
                    return Err(Error::Usage(format!(
                        "--prometheus-step {s} is not a positive number of seconds"
                    )));
                }
                crate::status::prometheus::resolve_auth(url, token_file.as_deref(), &env)?;
                Ok(())
            }
            SeriesSource::WatchFile(p) => {
                crate::readfile::open_regular(p, "status series")?;
                Ok(())
            }
        }
    }
}

/// The process environment, as `status::prometheus::resolve_auth` takes it.
fn env(key: &str) -> Option<String> {
    std::env::var(key).ok()
}

/// How many of a timeline's points hold a sample of some machine type or machine.
fn sampled_points(tl: &Timeline) -> usize {
    (0..tl.len())
        .filter(|&i| {
            tl.runnable
                .values()
                .chain(tl.current_jobs.values())
                .any(|s| s.get(i).is_some_and(|v| v.is_finite()))
        })
        .count()
}

impl Context<'_> {
    /// Gives `ds` the runner's series read from `given` over the dataset's window, replacing the
    /// one it came with; notes in one line where from, on which grid, how many points and how
    /// much of the window they cover, and in another line each stage counter the server held
    /// no series of. Without `given`, `ds` keeps its own.
    pub(super) fn runner_series(
        &self,
        ds: &mut Dataset,
        given: Option<&SeriesSource>,
    ) -> Result<()> {
        let Some(given) = given else {
            return Ok(());
        };
        let window = crate::analysis::span(ds)?;
        let replaced = ds.timeline.as_ref().map(|old| old.source.as_str());
        ds.timeline = Some(self.series_over(window, given, replaced)?);
        Ok(())
    }

    /// The runner's series read from `given` over `window` (the data's span, `None` when it has
    /// none); notes as [`Context::runner_series`] says. `replaced`: the source of the series the
    /// data came with, which it replaces.
    pub(super) fn series_over(
        &self,
        window: Option<(i64, i64)>,
        given: &SeriesSource,
        replaced: Option<&str>,
    ) -> Result<Timeline> {
        let Some(window) = window else {
            return Err(Error::NoData(
                "the data has no window to read the runner's series over (no step or build \
                 with a time)"
                    .into(),
            ));
        };
        let shown = crate::window::Window {
            since: Some(window.0),
            until: Some(window.1),
        }
        .describe();
        let (tl, how) = match given {
            SeriesSource::Prometheus {
                url,
                step_s,
                token_file,
            } => {
                use crate::status::prometheus;
                let (bare, auth) = prometheus::resolve_auth(url, token_file.as_deref(), &env)?;
                let mut opts = prometheus::Options::new(bare, window);
                opts.step_s = step_s.unwrap_or(prometheus::DEFAULT_STEP_S);
                opts.auth = auth;
                opts.progress = self.progress;
                let got = prometheus::fetch(&opts)?;
                let p = got.exporter.prefix();
                for stage in &got.stages_absent {
                    let name = got
                        .exporter
                        .stage_family(*stage)
                        .map_or_else(String::new, |f| format!("{p}{f}"));
                    self.note(&format!(
                        "runner's series: Prometheus held no series of `{name}` ({} steps) in \
                         the window, which {} exports; the ledger goes without that stage \
                         counter",
                        stage.as_str().replace('_', " "),
                        got.exporter
                    ));
                }
                let step_said = match step_s {
                    Some(s) => format!("step {s} s"),
                    None => format!(
                        "step {} s (the default; --prometheus-step)",
                        prometheus::DEFAULT_STEP_S
                    ),
                };
                let pieces = got.timeline.len().div_ceil(prometheus::MAX_POINTS);
                let how = format!(
                    "{} ({}), {step_said}, {} piece(s) of at most {} points, {} requests",
                    got.timeline.source.split(',').next().unwrap_or_default(),
                    got.exporter,
                    pieces,
                    prometheus::MAX_POINTS,
                    got.requests
                );
                (got.timeline, how)
            }
            SeriesSource::WatchFile(path) => {
                let stage = self.progress.stage("reading the runner's series");
                let series = crate::status::series::read(path)?;
                let name = path.display().to_string();
                let tl = crate::status::series::to_timeline(&series, None, Some(window), &name)
                    .ok_or_else(|| {
                        Error::NoData(format!(
                            "{name}: no sample of the runner's series falls in the window {shown} \
                             ({} samples read, {} error lines, {} lines not a sample)",
                            series.samples.len(),
                            series.errors,
                            series.bad_lines
                        ))
                    })?;
                stage.done();
                let how = format!(
                    "{name} ({}), step {} s (the median interval between its samples), \
                     {} samples, {} error lines, {} lines not a sample",
                    tl.naming,
                    tl.step_s,
                    series.samples.len(),
                    series.errors,
                    series.bad_lines
                );
                (tl, how)
            }
        };
        let sampled = sampled_points(&tl);
        let whole = crate::status::prometheus::grid(window, tl.step_s.max(1)).len();
        self.note(&format!(
            "runner's series: {how}; {} of {} points of the window {shown} hold a sample \
             ({:.0} %); {} machine types, {} machines, stage counters: {}{}",
            sampled,
            whole,
            100.0 * sampled as f64 / whole.max(1) as f64,
            tl.runnable.len(),
            tl.current_jobs.len(),
            if tl.stages.is_empty() {
                "none".to_string()
            } else {
                tl.stages
                    .keys()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            match replaced {
                Some(old) => format!("; replaces the series the data came with ({old})"),
                None => String::new(),
            }
        ));
        Ok(tl)
    }
}

/// The machines file at `given`, if one is given.
pub(super) fn machines_file(given: Option<&Path>) -> Result<Option<Vec<BuildMachine>>> {
    given.map(crate::nix::machines::read).transpose()
}

/// The machines file at `given`; else the one that came with the data (taken out of `ds`,
/// parsed when the data was loaded); else none, and slots are inferred from the history.
pub(super) fn machines_or_bundled(
    given: Option<&Path>,
    ds: &mut Dataset,
) -> Result<Option<Vec<BuildMachine>>> {
    Ok(given_or_bundled(machines_file(given)?, ds))
}

/// The machines given, else the ones that came with the data (taken out of `ds`).
pub(super) fn given_or_bundled(
    given: Option<Vec<BuildMachine>>,
    ds: &mut Dataset,
) -> Option<Vec<BuildMachine>> {
    given.or_else(|| ds.machines.take().map(|bundled| bundled.machines))
}

/// The cost file at `given`, else the documented defaults.
pub(super) fn costs(given: Option<&Path>) -> Result<Costs> {
    given.map_or_else(
        || Ok(Costs::default()),
        crate::compress::project::read_costs,
    )
}

/// The codecs of a saved `compress --format json` measurement.
pub(super) fn saved_codecs(path: &Path) -> Result<Vec<CodecSummary>> {
    Ok(crate::compress::read_saved(path)?.codecs)
}

/// The codecs whose compression speed was timed: an instant run could not be timed and reads
/// as 0, which would make a codec look infinitely slow.
pub(super) fn timed(codecs: &[CodecSummary]) -> impl Iterator<Item = &CodecSummary> {
    codecs
        .iter()
        .filter(|k| k.compress_mb_s_core.is_finite() && k.compress_mb_s_core > 0.0)
}

/// `(codec, compression MB/s per core)`, set beside the overhead fit.
pub(super) fn speeds<'c>(codecs: impl IntoIterator<Item = &'c CodecSummary>) -> Vec<(String, f64)> {
    codecs
        .into_iter()
        .map(|c| (c.codec.clone(), c.compress_mb_s_core))
        .collect()
}

/// The codecs as the model takes them; `source` says where the figures come from.
pub(super) fn model_codecs<'c>(
    codecs: impl IntoIterator<Item = &'c CodecSummary>,
    source: &str,
) -> Vec<crate::model::Codec> {
    codecs
        .into_iter()
        .map(|c| crate::model::Codec {
            name: c.codec.clone(),
            mb_s_core: c.compress_mb_s_core,
            ratio: c.ratio_pct / 100.0,
            source: source.to_string(),
        })
        .collect()
}

/// A connection string completed from the PG* environment and ~/.pgpass, as psql does.
pub(super) fn conninfo(given: &str) -> Result<ConnParams> {
    crate::conninfo::resolve(given, &|k| std::env::var(k).ok())
}

/// The runtime a command that talks to PostgreSQL runs its async part on.
pub(super) fn runtime() -> Result<tokio::runtime::Runtime> {
    crate::source::postgres::runtime().map_err(|e| Error::system("starting the async runtime", e))
}

/// The ledger buckets the history measured, to calibrate the replay's against: the sample's
/// ground truth where the data has one; else held slots where the runner's series measured
/// them, and dispatch loss where a source measured it as a figure, not an interval.
pub(super) fn measured_buckets(
    ds: &Dataset,
    ledger: &crate::analysis::ledger::Ledger,
) -> Result<Vec<crate::model::calibrate::Measured>> {
    use crate::model::calibrate::{Bucket, Measured};
    let truth = match &ds.truth {
        Some(t) => t
            .losses_in(ledger.since, ledger.until)
            .map_err(|e| Error::frame("truth_losses", e))?,
        None => None,
    };
    let measured = |bucket, slot_h, source: &str| Measured {
        bucket,
        slot_h,
        per_hour: Vec::new(),
        source: source.to_string(),
    };
    let mut out = Vec::new();
    if let Some(tl) = &ds.timeline {
        let per_hour = runnable_per_hour(tl, ledger.since, ledger.until);
        if !per_hour.is_empty() {
            let mean = per_hour.iter().map(|h| h.1).sum::<f64>() / per_hour.len() as f64;
            out.push(Measured {
                per_hour,
                ..measured(Bucket::Runnable, mean, "the runner's series")
            });
        }
    }
    if let Some(t) = truth {
        let source = "the sample's ground truth";
        out.push(measured(Bucket::Held, t.held_h, source));
        out.push(measured(Bucket::DispatchLoss, t.dispatch_loss_h, source));
        return Ok(out);
    }
    if crate::analysis::ledger::is_measured(&ledger.held_basis) {
        out.push(measured(
            Bucket::Held,
            ledger.total.held_h,
            "the runner's series",
        ));
    }
    if ledger.total.dispatch_loss_high_h.is_none() {
        out.push(measured(
            Bucket::DispatchLoss,
            ledger.total.dispatch_loss_h,
            "the ledger",
        ));
    }
    Ok(out)
}

/// The series' runnable steps (all machine types) averaged over each whole hour of `[lo, hi)`,
/// as `(hour's start, mean)`; an hour with fewer than half its samples is left out rather than
/// averaged from a few.
fn runnable_per_hour(tl: &crate::status::timeline::Timeline, lo: i64, hi: i64) -> Vec<(i64, f64)> {
    let per_hour = (3600 / tl.step_s.max(1)).max(1) as usize;
    let mut hours: std::collections::BTreeMap<i64, (f64, usize)> = Default::default();
    for (k, &t) in tl.times.iter().enumerate() {
        let start = t.div_euclid(3600) * 3600;
        if start < lo || start + 3600 > hi {
            continue;
        }
        let v: f64 = tl
            .runnable
            .values()
            .map(|s| s.get(k).copied().unwrap_or(f64::NAN))
            .sum();
        if v.is_finite() {
            let e = hours.entry(start).or_default();
            e.0 += v;
            e.1 += 1;
        }
    }
    hours
        .into_iter()
        .filter(|(_, (_, n))| 2 * n >= per_hour)
        .map(|(h, (sum, n))| (h, sum / n as f64))
        .collect()
}
