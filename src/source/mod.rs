//! Sources of a dataset: a live Hydra database (read-only), a Parquet snapshot, or the built-in
//! sample. Only this module talks to PostgreSQL or reads files of Hydra; every source returns the
//! same [`Dataset`], sorted by each table's key and filtered by one window rule. The queries of
//! `query` run on a database here too ([`sql`]).

pub mod chunked;
pub mod drvstore;
pub mod era;
pub mod into;
pub mod pgcopy;
pub mod postgres;
pub mod public;

pub mod snapshot;
pub mod sql;
mod tls;

use std::path::PathBuf;

use polars::prelude::*;

use crate::conninfo;
use crate::dataset::{Dataset, DatasetMeta, Extent, Origin, Runner, TableDef, Truth};

use crate::error::{Error, Result};
use crate::window::Window;

use crate::sample::SampleSpec;
pub use postgres::ReadOptions;

/// Where to read from.
#[derive(Debug, Clone)]
pub enum SourceSpec {
    /// A libpq connection string (completed from the PG* environment).
    Postgres(String),
    Snapshot(PathBuf),
    Sample(SampleSpec),
}

impl SourceSpec {
    pub fn is_sample(&self) -> bool {
        matches!(self, SourceSpec::Sample(_))
    }
}

/// Reads a dataset from `spec`, restricted to `opts.window`. Ctrl-C, once
/// [`crate::interrupt::install`]ed, ends a database read between two chunks of rows.
///
/// For a database, relative bounds (`--since 30d`) count back from the server's clock; for a
/// snapshot or the sample, from the end of the recorded window, so the same command gives the
/// same rows whenever it runs.
pub fn load(spec: &SourceSpec, opts: &ReadOptions) -> Result<Dataset> {
    load_with_hidden(spec, opts, false).map(|(ds, _)| ds)
}

/// [`load`], and with `hidden` a database's hidden projects and jobsets, read in the same
/// transaction (`None` from a snapshot or the sample, which hold none to read).
pub fn load_with_hidden(
    spec: &SourceSpec,
    opts: &ReadOptions,
    hidden: bool,
) -> Result<(Dataset, Option<public::Hidden>)> {
    let mut ds = match spec {
        SourceSpec::Postgres(conn) => {
            // Read a chunk at a time, as `snapshot --db` writes them: the server's COPY of the
            // whole window is never one buffer. The chunks are put in order once read.
            let mut held = Held::default();
            let read = read_into(conn, opts, &mut held, hidden)?;
            let ds = normalize(held.into_dataset(read.meta)?)?;
            return Ok((ds, read.hidden));
        }
        // A window of a snapshot: each file cut as it is read.
        SourceSpec::Snapshot(dir) if !opts.window.is_unbounded() => {
            return Ok((snapshot_within(dir, opts)?, None));
        }
        // A snapshot's tables are put in order as they are read.
        SourceSpec::Snapshot(dir) => snapshot::read_frames(
            dir,
            opts.omit,
            opts.omit_with_truth,
            !opts.tables_only,
            opts.truth,
        )?,
        // The sample is generated whole; what was not asked for is dropped as a snapshot's
        // reader leaves it unread.
        SourceSpec::Sample(s) => {
            let mut ds = if opts.tables_only {
                let mut ds = crate::sample::generate_without_drv_graph(s)?;
                ds.timeline = None;
                ds
            } else {
                crate::sample::generate(s)?
            };
            if !opts.truth {
                ds.truth = None;
            }
            let omit = omit_given_truth(opts.omit, opts.omit_with_truth, ds.truth.is_some());
            normalize(omitting(ds, omit)?)?
        }
    };
    decide_runner(&mut ds, opts)?;
    let recorded = ds.meta.window;
    let anchor = recorded
        .until
        .unwrap_or_else(|| chrono::Utc::now().timestamp());
    let window = opts.window.resolve(anchor).map_err(Error::Usage)?;
    if opts.window.is_unbounded() {
        return Ok((ds, None));
    }
    let inside = inside_of(window, recorded)?;
    // The rows kept stay in order, but polars' filter may leave a column in several chunks or
    // compact its strings apart from the builds' paths that shared them.
    Ok((
        cover(normalize(restrict(ds, inside)?)?, window, recorded)?,
        None,
    ))
}

/// The part of `window` inside the data's `recorded` window; none is an error naming both.
fn inside_of(window: Window, recorded: Window) -> Result<Window> {
    let inside = window.within(recorded);
    if let (Some(s), Some(u)) = (inside.since, inside.until)
        && s >= u
    {
        return Err(Error::NoData(format!(
            "the window {} lies outside the data, which covers {}",
            window.describe(),
            recorded.describe()
        )));
    }
    Ok(inside)
}

/// A window of the snapshot at `dir`, as [`load`] gives it (the runner decided from every step
/// of the snapshot, the rows cut by [`restrict`]'s rule, the window covered), its files cut as
/// they are read ([`snapshot::read_within`]): a month of a year's snapshot holds a month.
fn snapshot_within(dir: &std::path::Path, opts: &ReadOptions) -> Result<Dataset> {
    let recorded = snapshot::read_manifest(dir)?.window;
    let (window, inside) = snapshot_window(recorded, opts)?;
    let mut evidence = opts.runner.is_none().then(era::Evidence::default);
    let mut ds = snapshot::read_within(
        dir,
        inside,
        (opts.omit, opts.omit_with_truth),
        !opts.tables_only,
        opts.truth,
        evidence.as_mut(),
    )?;
    decide_runner_by(&mut ds.meta, opts, || {
        Ok(evidence.and_then(era::Evidence::decide))
    })?;
    ds.meta.window = inside;
    cover(ds, window, recorded)
}

/// The window asked of a snapshot that recorded `recorded` (relative bounds counted back from
/// its end), and the part of it inside `recorded`.
fn snapshot_window(recorded: Window, opts: &ReadOptions) -> Result<(Window, Window)> {
    let anchor = recorded
        .until
        .unwrap_or_else(|| chrono::Utc::now().timestamp());
    let window = opts.window.resolve(anchor).map_err(Error::Usage)?;
    Ok((window, inside_of(window, recorded)?))
}

/// The window of the snapshot at `dir` (`opts.window`, which is bounded) cut file by file
/// ([`snapshot::cut_within`]) into a snapshot in a new temporary directory under `under`
/// (`made` is told its path), and its days opened to fold over, described as [`load`]
/// describes that window read whole (the runner decided from every step of the snapshot, the
/// window covered); its machines file, runner's series and `store/` are read from `dir`. The
/// directory is removed as [`spill`]'s is.
///
/// Why cut to disk rather than fold over the snapshot's own days with the window as a filter:
/// a build queued inside the window keeps its steps that ran after it, and a step kept keeps
/// its build and outputs wherever their files are, so what is inside is only known once every
/// build's queue time is read; the rule is [`Cut`]'s, written once for the whole read and for
/// this. A year's snapshot cut to a year holds a file and 8 bytes a step kept at once
/// (docs/scale.md).
pub fn cut_days(
    dir: &std::path::Path,
    opts: &ReadOptions,
    under: &std::path::Path,
    made: impl FnOnce(&std::path::Path),
) -> Result<snapshot::Days> {
    use crate::dataset::{BUILDS, STEPS};
    let manifest = snapshot::read_manifest(dir)?;
    let recorded = manifest.window;
    let (window, inside) = snapshot_window(recorded, opts)?;
    let tmp = scratch(under)?;
    made(tmp.path());
    let spilled = tmp.path().join("snapshot");
    let mut out = snapshot::Writer::new(&spilled, false)?;
    let mut evidence = opts.runner.is_none().then(era::Evidence::default);
    // The figures of the rows kept: from the window's start (how a window asked for is
    // covered), and with no lower bound (what a series is read over, as `Dataset::extent`).
    let mut extent = Extent::new(inside.since);
    let mut whole = Extent::new(None);
    let mut steps = 0usize;
    let err = |what: &'static str| move |e: PolarsError| Error::frame(what, e);
    snapshot::cut_within(
        dir,
        &manifest,
        inside,
        (opts.omit, opts.omit_with_truth),
        opts.truth,
        evidence.as_mut(),
        &mut |def, df| {
            // A year's cut takes a minute or two: Ctrl-C ends it at the next file.
            crate::interrupt::check()?;
            if def.name == STEPS.name {
                steps += df.height();
                extent.add_steps(&df).map_err(err("steps"))?;
                whole.add_steps(&df).map_err(err("steps"))?;
            } else if def.name == BUILDS.name {
                extent.add_builds(&df).map_err(err("builds"))?;
                whole.add_builds(&df).map_err(err("builds"))?;
            }
            out.add(def, df)
        },
    )?;
    let mut meta = snapshot::meta_of(dir, &manifest);
    decide_runner_by(&mut meta, opts, || {
        Ok(evidence.and_then(era::Evidence::decide))
    })?;
    meta.window = inside;
    cover_meta(
        &mut meta,
        window,
        recorded,
        (steps > 0).then(|| extent.span()),
    )?;
    out.finish(&meta, None)?;
    let mut days =
        snapshot::Days::open_spilled(&spilled, tmp, whole.span())?.cut_from(dir, manifest);
    days.set_meta(meta);
    Ok(days)
}

/// The days of the snapshot at `dir` to fold over (`analysis::fold`), the runner decided as
/// [`load`] decides it for the whole snapshot: `--runner` where given, else every step's
/// evidence (8 bytes a step while it is gathered).
pub fn open_days(dir: &std::path::Path, opts: &ReadOptions) -> Result<snapshot::Days> {
    let mut days = snapshot::Days::open(dir)?;
    let mut meta = days.meta();
    decide_runner_by(&mut meta, opts, || {
        let mut evidence = era::Evidence::default();
        days.each_start_and_machine(|start, machine| evidence.push(start, machine))?;
        Ok(evidence.decide())
    })?;
    days.set_meta(meta);
    Ok(days)
}

/// The window of the database `conn` read as `snapshot --db` reads it ([`read_into`]: one
/// read-only transaction, a chunk at a time) into a snapshot in a new temporary directory under
/// `under` (`made` is told its path once it is made), and its days opened to fold over,
/// described as [`load`] describes the rows (the origin the database, the runner decided from
/// every step). The directory is removed when the days are dropped, or at once if the read
/// fails or is interrupted.
///
/// Why a snapshot on disk rather than folding the COPY as it streams: the report folds in five
/// passes and the ledger reads each span with the days around it, so a stream would read the
/// window from the server five times over and more, or hold the transaction open on the
/// primary for the whole analysis; spilled, the server is read once and the transaction ends
/// before the first finding (docs/scale.md).
pub fn spill(
    conn: &str,
    opts: &ReadOptions,
    under: &std::path::Path,
    made: impl FnOnce(&std::path::Path),
) -> Result<snapshot::Days> {
    let tmp = scratch(under)?;
    made(tmp.path());
    let dir = tmp.path().join("snapshot");
    let mut out = snapshot::Writer::new(&dir, false)?;
    let read = read_into(conn, opts, &mut out, false)?;
    out.finish(&read.meta, None)?;
    let mut days = snapshot::Days::open_spilled(&dir, tmp, read.whole.span())?;
    days.set_meta(read.meta);
    Ok(days)
}

/// A new temporary directory under `under` for a snapshot made to fold over ([`spill`],
/// [`cut_days`]), removed when dropped.
fn scratch(under: &std::path::Path) -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("hydra-bottleneck-spill-")
        .tempdir_in(under)
        .map_err(|e| {
            // tempfile's error names a path it made up and keeps the system's words to itself:
            // where `under` is not there (or not reachable) the system says why, else the kind
            // says it (permission denied, read-only file system, no storage space).
            let cause = match std::fs::metadata(under) {
                Err(os) => os,
                Ok(m) if !m.is_dir() => {
                    std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory")
                }
                Ok(_) => std::io::Error::from(e.kind()),
            };
            let why = format!("cannot hold the temporary snapshot (TMPDIR chooses where): {cause}");
            Error::io(under, std::io::Error::new(cause.kind(), why))
        })
}

/// Where the chunks of a database read go ([`read_into`]): a snapshot being written
/// ([`snapshot::Writer`]), or frames held for an analysis ([`Held`]).
pub trait Chunks {
    /// Takes some rows of table `def`, in the order the server sent them.
    fn add(&mut self, def: &'static TableDef, df: DataFrame) -> Result<()>;
}

impl Chunks for snapshot::Writer {
    fn add(&mut self, def: &'static TableDef, df: DataFrame) -> Result<()> {
        snapshot::Writer::add(self, def, df)
    }
}

/// The chunks of each table, held in memory and stacked into one frame per table at the end
/// (their arrays are kept as they came, not copied into one).
#[derive(Default)]
pub struct Held {
    tables: std::collections::HashMap<&'static str, DataFrame>,
}

impl Chunks for Held {
    fn add(&mut self, def: &'static TableDef, df: DataFrame) -> Result<()> {
        use std::collections::hash_map::Entry;
        match self.tables.entry(def.name) {
            Entry::Occupied(mut acc) => acc
                .get_mut()
                .vstack_mut_owned(df)
                .map(|_| ())
                .map_err(|e| Error::frame(def.name, e)),
            Entry::Vacant(slot) => {
                slot.insert(df);
                Ok(())
            }
        }
    }
}

impl Held {
    /// The dataset the chunks make, described by `meta`; a table no chunk came for is empty.
    pub fn into_dataset(mut self, meta: DatasetMeta) -> Result<Dataset> {
        use crate::dataset::{BUILDS, EVALS, JOBSETS, STEP_OUTPUTS, STEPS};
        let mut take = |def: &TableDef| self.tables.remove(def.name).unwrap_or_else(|| def.empty());
        Ok(Dataset {
            steps: take(&STEPS),
            builds: take(&BUILDS),
            step_outputs: take(&STEP_OUTPUTS),
            jobsets: take(&JOBSETS),
            evals: take(&EVALS),
            truth: None,
            machines: None,
            timeline: None,
            drv_graph: None,
            meta,
        })
    }
}

/// What [`read_into`] found besides the rows.
pub struct ReadInto {
    /// The dataset's description as [`load`] makes it: the runner decided from the rows, the
    /// window narrowed to what they cover.
    pub meta: DatasetMeta,
    /// Every figure of the window, with no lower bound: what a series is read over.
    pub whole: Extent,
    /// The hidden projects and jobsets, when asked for.
    pub hidden: Option<public::Hidden>,
}

/// Reads the window of the database `conn` a chunk at a time ([`chunked`]) into `out`, inside
/// one read-only transaction; with `hidden`, the hidden projects and jobsets too, in the same
/// transaction. What is held at once is a chunk and what `out` keeps, however long the window.
/// Ctrl-C ends it between chunks; a snapshot `out` is then dropped unfinished, leaving nothing.
pub fn read_into(
    conn: &str,
    opts: &ReadOptions,
    out: &mut impl Chunks,
    hidden: bool,
) -> Result<ReadInto> {
    use crate::dataset::{BUILDS, STEPS};
    let params = conninfo::resolve(conn, &|k| std::env::var(k).ok())?;
    let runtime =
        postgres::runtime().map_err(|e| Error::system("starting the async runtime", e))?;
    let mut read = runtime.block_on(crate::interrupt::until(chunked::ChunkedRead::open(
        &params, opts,
    )))?;
    let hidden = if hidden {
        Some(runtime.block_on(crate::interrupt::until(read.hidden()))?)
    } else {
        None
    };
    let asked = read.window();
    // Every figure of the window, and the unbounded extent a series is read over.
    let mut extent = Extent::new(asked.since);
    let mut whole = Extent::new(None);
    let mut evidence = era::Evidence::default();
    let mut steps = 0usize;
    let err = |what: &'static str| move |e: PolarsError| Error::frame(what, e);
    // Each chunk is written outside the runtime (Parquet must not run on it).
    while let Some((def, df)) = runtime.block_on(crate::interrupt::until(read.next(opts)))? {
        if def.name == STEPS.name {
            steps += df.height();
            extent.add_steps(&df).map_err(err("steps"))?;
            whole.add_steps(&df).map_err(err("steps"))?;
            for (start, machine) in step_machines(&df)? {
                evidence.push(start, machine);
            }
        } else if def.name == BUILDS.name {
            extent.add_builds(&df).map_err(err("builds"))?;
            whole.add_builds(&df).map_err(err("builds"))?;
        }
        out.add(def, df)?;
    }
    let (schema_version, runner, runner_basis) = read.schema();
    let mut meta = DatasetMeta {
        origin: Origin::Postgres {
            conninfo: params.redacted(),
        },
        schema_version,
        runner,
        runner_basis: runner_basis.to_string(),
        runner_switch: None,
        window: asked,
        window_note: None,
        queue_runner: None,
    };
    runtime.block_on(read.commit())?;
    decide_runner_by(&mut meta, opts, || Ok(evidence.decide()))?;
    // A database vouches for no bound: its history may begin after --since.
    cover_meta(
        &mut meta,
        asked,
        Window::default(),
        (steps > 0).then(|| extent.span()),
    )?;
    Ok(ReadInto {
        meta,
        whole,
        hidden,
    })
}

/// What to leave unread: `with_truth` where the source holds the sample's ground truth and
/// reads it (`ReadOptions::omit_with_truth`), else `omit`.
pub(crate) fn omit_given_truth(
    omit: crate::dataset::Omit,
    with_truth: Option<crate::dataset::Omit>,
    has_truth: bool,
) -> crate::dataset::Omit {
    match with_truth {
        Some(o) if has_truth => o,
        _ => omit,
    }
}

/// Which runner wrote the steps: the one given (`--runner`), else the rows' evidence
/// ([`era::detect`]) where they have any, else the source's own guess (the schema version, a
/// snapshot's manifest, the sample's configuration) stands.
fn decide_runner(ds: &mut Dataset, opts: &ReadOptions) -> Result<()> {
    let steps = &ds.steps;
    decide_runner_by(&mut ds.meta, opts, || {
        Ok(era::detect(step_machines(steps)?))
    })
}

/// `--runner` where given, else the rows' own evidence (`evidence`, asked only then) where they
/// have any, over the schema's guess.
fn decide_runner_by(
    meta: &mut DatasetMeta,
    opts: &ReadOptions,
    evidence: impl FnOnce() -> Result<Option<era::Era>>,
) -> Result<()> {
    match opts.runner {
        Some(r) => {
            meta.runner = r;
            meta.runner_switch = opts.runner_switch.filter(|_| r == Runner::Rust);
            meta.runner_basis = match meta.runner_switch {
                Some(_) => "given with --runner rust@TIME".into(),
                None => "given with --runner".into(),
            };
        }
        None => {
            if let Some(e) = evidence()? {
                meta.runner = e.runner;
                meta.runner_switch = e.switch;
                meta.runner_basis = e.basis;
            }
        }
    }
    Ok(())
}

/// `(startTime, machine)` of every step, for [`era::detect`].
pub(crate) fn step_machines(
    steps: &DataFrame,
) -> Result<impl Iterator<Item = (Option<i64>, Option<&str>)>> {
    let err = |e| Error::frame("steps", e);
    let start = steps
        .column("start_time")
        .map_err(err)?
        .i64()
        .map_err(err)?;
    let machine = steps.column("machine").map_err(err)?.str().map_err(err)?;
    Ok(start.iter().zip(machine.iter()))
}

/// Narrows `ds.meta.window` to the span the data covers, and notes it when the window asked
/// for reached further, so that no figure counts hours nobody recorded as idle capacity.
///
/// Where `vouched` is bounded (the sample's week, a snapshot's recorded window) the source
/// recorded everything up to that bound, so a window asked for is only cut to it (by
/// [`Window::within`], before): a farm idle at the edge of a recorded window was idle. Where it is
/// open (every side of a database, which may have begun its history after --since, and a
/// snapshot read whole from one) a bound asked for moves in to the earliest step start or build
/// queued time inside it, and to the latest step stop (or start). An open bound stays open: the
/// analysis takes the data's extent there already. A window asked for that holds no step at all
/// is refused.
fn cover(mut ds: Dataset, asked: Window, vouched: Window) -> Result<Dataset> {
    if asked == Window::default() {
        return Ok(ds);
    }
    let extent = if ds.steps.height() == 0 {
        None
    } else {
        let err = |e: PolarsError| Error::frame("the window's data extent", e);
        Some(ds.extent(ds.meta.window.since).map_err(err)?)
    };
    cover_meta(&mut ds.meta, asked, vouched, extent)?;
    Ok(ds)
}

/// [`cover`] of `meta` given the data's extent ([`crate::dataset::Extent`]), `None` when the
/// window holds no step.
fn cover_meta(
    meta: &mut DatasetMeta,
    asked: Window,
    vouched: Window,
    extent: Option<(Option<i64>, Option<i64>)>,
) -> Result<()> {
    if asked == Window::default() {
        return Ok(());
    }
    // A snapshot's own note spoke of the window it was asked for, not of this one.
    meta.window_note = None;
    let Some((first, last)) = extent else {
        return Err(Error::NoData(format!(
            "no build step of {} lies in the window {}: there is nothing to measure",
            meta.origin.describe(),
            asked.describe()
        )));
    };
    let mut w = meta.window;
    if let (Some(s), Some(first)) = (w.since, first)
        && vouched.since.is_none()
    {
        w.since = Some(s.max(first));
    }
    if let (Some(u), Some(last)) = (w.until, last)
        && vouched.until.is_none()
    {
        // The step that stopped last stopped before `u`: +1 keeps it inside `[since, until)`.
        w.until = Some(u.min(last.saturating_add(1)));
    }
    if let (Some(s), Some(u)) = (w.since, w.until)
        && s >= u
    {
        return Err(Error::NoData(format!(
            "the build steps of {} in the window {} have no times: there is nothing to measure",
            meta.origin.describe(),
            asked.describe()
        )));
    }
    let reaches = |a: Option<i64>, b: Option<i64>, beyond: fn(&i64, &i64) -> bool| matches!((a, b), (Some(a), Some(b)) if beyond(&a, &b));
    if reaches(asked.since, w.since, i64::lt) || reaches(asked.until, w.until, i64::gt) {
        meta.window_note = Some(format!(
            "the window asked for ({}) reaches beyond the data: every figure is measured over \
             {}, the span the data covers",
            asked.describe(),
            w.describe()
        ));
    }
    meta.window = w;
    Ok(())
}

/// `ds` with the columns in `omit` replaced by nulls that hold no data: for the sample, which is
/// generated whole (the database and snapshot readers never decode them).
fn omitting(mut ds: Dataset, omit: crate::dataset::Omit) -> Result<Dataset> {
    if omit.is_empty() {
        return Ok(ds);
    }
    use crate::dataset::*;
    let blank = |def: &TableDef, df: &DataFrame| -> Result<DataFrame> {
        def.blank(df, omit).map_err(|e| Error::frame(def.name, e))
    };
    ds.steps = blank(&STEPS, &ds.steps)?;
    ds.builds = blank(&BUILDS, &ds.builds)?;
    ds.step_outputs = blank(&STEP_OUTPUTS, &ds.step_outputs)?;
    ds.jobsets = blank(&JOBSETS, &ds.jobsets)?;
    ds.evals = blank(&EVALS, &ds.evals)?;
    Ok(ds)
}

/// Sorts every table by its key and checks it against its definition.
pub fn normalize(mut ds: Dataset) -> Result<Dataset> {
    let sort = |def: &TableDef, df: DataFrame| -> Result<DataFrame> {
        let df = crate::dataset::share_repeated(def, df)
            .and_then(|df| sort_by_key(def, df))
            .map_err(|e| Error::frame(def.name, e))?;
        // Every reader builds its frames by the definitions: a mismatch is our bug.
        def.check(&df)
            .map_err(|e| Error::Internal(format!("table {}: {e}", def.name)))?;
        crate::progress::mark(&format!("putting table {} in key order", def.name));
        Ok(df)
    };
    use crate::dataset::*;
    // The two large tables side by side: the builds' job names are interned on one thread
    // while the steps are gathered on the other (0.15 s and 0.13 s over a million steps).
    let (steps, builds) = rayon::join(|| sort(&STEPS, ds.steps), || sort(&BUILDS, ds.builds));
    (ds.steps, ds.builds) = (steps?, builds?);
    let drv = shared_drv_paths(&ds.steps, &ds.builds).map_err(|e| Error::frame("builds", e))?;
    ds.builds
        .replace("drv_path", drv.into_column())
        .map_err(|e| Error::frame("builds", e))?;
    crate::progress::mark("sharing the builds' derivation paths with their steps'");
    ds.step_outputs = sort(&STEP_OUTPUTS, ds.step_outputs)?;
    ds.jobsets = sort(&JOBSETS, ds.jobsets)?;
    ds.evals = sort(&EVALS, ds.evals)?;
    if let Some(t) = ds.truth.take() {
        ds.truth = Some(Truth {
            deps: sort(&TRUTH_DEPS, t.deps)?,
            steps: sort(&TRUTH_STEPS, t.steps)?,
            losses: t.losses,
            throttled: t.throttled,
        });
    }
    Ok(ds)
}

/// `df` in the order of `def.key`, gathered one column at a time so that the peak is the table
/// plus one column rather than two copies of it (polars' own sort gathers every column at
/// once: over ten million steps that is gigabytes). A table already in order, as PostgreSQL
/// often returns it, is only joined into one chunk per column.
pub(crate) fn sort_by_key(def: &TableDef, df: DataFrame) -> PolarsResult<DataFrame> {
    let order = key_order(def, &df)?;
    let height = df.height();
    let rows = order.as_ref().map(|o| o.cont_slice()).transpose()?;
    // Either way each column ends in one chunk, which the analyses read without copying.
    // Columns are gathered side by side on the threads there are (the peak grows by one column
    // a thread): over a million steps gathering them one after another took 0.13 s.
    use rayon::prelude::*;
    let columns = df
        .into_columns()
        .into_par_iter()
        .map(|c| {
            if c.null_count() == c.len() {
                // A column left out (or never filled) stays one null value that holds no
                // rows: gathering it would write a value and a validity bit a row.
                return Ok(Column::full_null(c.name().clone(), height, c.dtype()));
            }
            match (&order, rows) {
                (Some(order), Some(rows)) => match c.str() {
                    Ok(strings) => Ok(crate::strings::take(strings, rows).into_column()),
                    Err(_) => c.take(order),
                },
                _ => Ok(c.rechunk()),
            }
        })
        .collect::<PolarsResult<Vec<_>>>()?;
    DataFrame::new(height, columns)
}

/// The row order of `df` by `def.key`, or `None` when its rows are in that order already.
fn key_order(def: &TableDef, df: &DataFrame) -> PolarsResult<Option<IdxCa>> {
    if let Some(packed) = integer_key_order(def, df)? {
        return Ok(packed);
    }
    const ROW: &str = "__row";
    let order = df
        .select(def.key.iter().copied())?
        .with_row_index(ROW.into(), None)?
        .sort(
            def.key.to_vec(),
            SortMultipleOptions::default().with_maintain_order(true),
        )?;
    let order = order.column(ROW)?.idx()?.rechunk().into_owned();
    let in_order = order
        .iter()
        .enumerate()
        .all(|(i, v)| v == Some(i as IdxSize));
    Ok((!in_order).then_some(order))
}

/// The row order of `df` by `def.key` where the key is one or two 32-bit integer columns
/// without nulls, besides any left unread (the steps', the builds' and the outputs' keys, the
/// truth's steps): each row's key packed into one number and sorted with its row number.
/// `Some(None)` when the rows are in order already, nothing to sort. Polars' sort over two
/// columns compares them one value at a time through its generic accessors: over ten million
/// steps that was about a fifth of reading a snapshot. `None` for any other key, which polars
/// sorts.
fn integer_key_order(def: &TableDef, df: &DataFrame) -> PolarsResult<Option<Option<IdxCa>>> {
    let mut cols = Vec::with_capacity(2);
    for name in def.key {
        let c = df.column(name)?;
        // A column left unread (all null) orders nothing: the outputs' name when only their
        // steps are asked for.
        if c.null_count() == c.len() {
            continue;
        }
        let Ok(ca) = c.i32() else {
            return Ok(None);
        };
        if ca.null_count() > 0 {
            return Ok(None);
        }
        cols.push(ca.rechunk());
    }
    if cols.len() > 2 {
        return Ok(None);
    }
    // Nothing of the key was read: every order is the key's.
    let Some(first) = cols.first() else {
        return Ok(Some(None));
    };
    // Each i32 mapped to a u32 of the same order (the sign bit flipped), the first column in
    // the high half.
    let part = |ca: &Int32Chunked| -> Vec<u64> {
        ca.downcast_iter()
            .flat_map(|a| {
                a.values()
                    .iter()
                    .map(|&v| u64::from((v as u32) ^ 0x8000_0000))
            })
            .collect()
    };
    let mut keys = part(first);
    if let Some(second) = cols.get(1) {
        for (k, lo) in keys.iter_mut().zip(part(second)) {
            *k = (*k << 32) | lo;
        }
    }
    if keys.is_sorted() {
        return Ok(Some(None));
    }
    let mut pairs: Vec<(u64, IdxSize)> = keys
        .into_iter()
        .enumerate()
        .map(|(i, k)| (k, i as IdxSize))
        .collect();
    // The row number breaks ties: the order of equal keys is kept, as polars' sort with
    // `maintain_order` keeps it.
    pairs.sort_unstable();
    let rows = pairs.into_iter().map(|(_, r)| r).collect();
    Ok(Some(Some(IdxCa::from_vec(
        PlSmallStr::from_static("__row"),
        rows,
    ))))
}

/// The builds' `drv_path` column, each path that one of the build's own steps also holds (its
/// top-level step) pointing at that step's bytes instead of a copy: the same strings, about
/// 60 bytes a build less (over half a gigabyte at ten million steps). Both tables must be in key
/// order, as [`normalize`] leaves them.
fn shared_drv_paths(steps: &DataFrame, builds: &DataFrame) -> PolarsResult<StringChunked> {
    let step_build = steps.column("build")?.i32()?.rechunk();
    let step_drv = steps.column("drv_path")?.str()?.rechunk();
    let ids = builds.column("id")?.i32()?;
    let paths = builds.column("drv_path")?.str()?;
    let Some(from_steps) = step_drv.downcast_iter().next() else {
        return Ok(paths.clone());
    };
    // The paths no step holds, each written once.
    let mut own = crate::strings::StrBuilder::default();
    // Both tables are in key order, so one cursor walks the steps alongside the builds.
    let mut first = 0;
    // Per build, where its path comes from, 8 bytes a build: a step row (>= 0), the i-th row
    // of `own` (-1 - i), or nowhere (null).
    const NULL: i64 = i64::MIN;
    let source: Vec<i64> = ids
        .iter()
        .zip(paths.iter())
        .map(|(id, path)| {
            while first < step_build.len() && step_build.get(first) < id {
                first += 1;
            }
            let Some(path) = path else { return NULL };
            let step = (first..step_build.len())
                .take_while(|&j| step_build.get(j) == id)
                .find(|&j| step_drv.get(j) == Some(path));
            match step {
                Some(j) => j as i64,
                None => {
                    own.push(Some(path));
                    -(own.len() as i64)
                }
            }
        })
        .collect();
    let own = own.finish();
    Ok(crate::strings::gather(
        paths.name().clone(),
        &[from_steps, &own],
        source.into_iter().map(|s| match s {
            NULL => None,
            j if j >= 0 => Some((0, j as usize)),
            i => Some((1, (-1 - i) as usize)),
        }),
    ))
}

/// Each step's `(build, stepnr)` as one number, in order (whatever the frame's order).
pub(crate) fn step_keys(steps: &DataFrame) -> PolarsResult<Vec<u64>> {
    let builds = steps.column("build")?.i32()?;
    let stepnrs = steps.column("stepnr")?.i32()?;
    let mut keys: Vec<u64> = builds
        .iter()
        .zip(stepnrs.iter())
        .filter_map(|(b, s)| Some(step_key(b?, s?)))
        .collect();
    if !keys.is_sorted() {
        keys.sort_unstable();
    }
    Ok(keys)
}

fn step_key(build: i32, stepnr: i32) -> u64 {
    ((build as u32 as u64) << 32) | stepnr as u32 as u64
}

/// The rows of `df` that belong to one of the steps in `keys` (from [`step_keys`]): a semi join
/// by binary search, which needs 8 bytes a step and a bit a row where polars' join encodes and
/// hashes the keys of both sides (over half a gigabyte at ten million steps).
fn following(df: DataFrame, keys: &[u64]) -> PolarsResult<DataFrame> {
    let builds = df.column("build")?.i32()?;
    let stepnrs = df.column("stepnr")?.i32()?;
    let keep: BooleanChunked = builds
        .iter()
        .zip(stepnrs.iter())
        .map(|(b, s)| match (b, s) {
            (Some(b), Some(s)) => keys.binary_search(&step_key(b, s)).is_ok(),
            _ => false,
        })
        .collect();
    df.filter(&keep)
}

/// Keeps the rows inside `window`, by the rule in [`crate::window`] (the same rule the SQL
/// applies on a database).
pub fn restrict(ds: Dataset, window: Window) -> Result<Dataset> {
    let cut = Cut::new(window);
    let queued = Ids::from(cut.queued(&ds.builds)?);
    let steps = cut.steps(ds.steps, &queued)?;
    let builds = cut.builds(ds.builds, &Cut::builds_of(&steps)?)?;
    let keys = step_keys(&steps).map_err(Cut::err("steps"))?;
    let step_outputs = Cut::following(ds.step_outputs, &keys, "step outputs")?;
    let truth = match ds.truth {
        Some(t) => Some(Truth {
            deps: Cut::following(t.deps, &keys, "truth_deps")?,
            steps: Cut::following(t.steps, &keys, "truth_steps")?,
            // Per machine and hour: the ledger sums the hours of its window.
            losses: t.losses,
            throttled: t.throttled,
        }),
        None => None,
    };
    let evals = cut.evals(ds.evals)?;
    let mut meta = ds.meta;
    meta.window = window;
    Ok(Dataset {
        meta,
        steps,
        builds,
        step_outputs,
        jobsets: ds.jobsets,
        evals,
        truth,
        machines: ds.machines,
        timeline: ds.timeline,
        drv_graph: ds.drv_graph,
    })
}

/// Build ids, sorted and each once: a row's membership is a binary search. polars' `is_in`
/// hashes its list at every call, and a snapshot's window cut file by file called it for each
/// of some 800 files with a month's 2.8 million ids: 130 s of a year's read.
pub(crate) struct Ids(Vec<i32>);

impl Ids {
    pub(crate) fn from(mut ids: Vec<i32>) -> Ids {
        ids.sort_unstable();
        ids.dedup();
        Ids(ids)
    }

    /// Whether each row's id (a null: no) is one of these, as a column to filter by.
    fn mask(&self, ids: &Int32Chunked) -> Series {
        let keep: BooleanChunked = ids
            .iter()
            .map(|id| id.is_some_and(|id| self.0.binary_search(&id).is_ok()))
            .collect();
        keep.with_name("in".into()).into_series()
    }
}

/// The window's rule ([`crate::window`]) table by table, each cut a row at a time against what
/// the tables before it decided, so that a table can be cut a part at a time (a snapshot's
/// files, `snapshot::read_within`) and the parts stacked: the same rows as cutting it whole.
pub(crate) struct Cut {
    window: Window,
}

impl Cut {
    pub(crate) fn new(window: Window) -> Cut {
        Cut { window }
    }

    fn err(what: &'static str) -> impl Fn(PolarsError) -> Error {
        move |e| Error::frame(format!("restricting {what}"), e)
    }

    /// The ids of the builds of `builds` queued inside the window: a finished step without
    /// times belongs to them. [`Ids::from`] puts those of several parts together.
    pub(crate) fn queued(&self, builds: &DataFrame) -> Result<Vec<i32>> {
        let err = Cut::err("builds");
        let ids = builds
            .clone()
            .lazy()
            .filter(self.window.time_expr("timestamp"))
            .select([col("id")])
            .collect()
            .map_err(&err)?;
        let ids = ids.column("id").map_err(&err)?.i32().map_err(&err)?;
        Ok(ids.into_no_null_iter().collect())
    }

    /// The steps inside, given the ids of every build queued inside ([`Cut::queued`]).
    pub(crate) fn steps(&self, steps: DataFrame, queued: &Ids) -> Result<DataFrame> {
        let err = Cut::err("steps");
        let mask = queued.mask(steps.column("build").map_err(&err)?.i32().map_err(&err)?);
        steps
            .lazy()
            .filter(self.window.step_expr(lit(mask)))
            .collect()
            .map_err(&err)
    }

    /// The builds the steps kept belong to.
    pub(crate) fn builds_of(steps: &DataFrame) -> Result<Ids> {
        let err = Cut::err("steps");
        let b = steps.column("build").map_err(&err)?.i32().map_err(&err)?;
        Ok(Ids::from(b.into_no_null_iter().collect()))
    }

    /// The builds inside: queued inside, or holding a step kept ([`Cut::builds_of`] of every
    /// step kept).
    pub(crate) fn builds(&self, builds: DataFrame, step_builds: &Ids) -> Result<DataFrame> {
        let err = Cut::err("builds");
        let mask = step_builds.mask(builds.column("id").map_err(&err)?.i32().map_err(&err)?);
        builds
            .lazy()
            .filter(self.window.time_expr("timestamp").or(lit(mask)))
            .collect()
            .map_err(&err)
    }

    /// The rows of a table keyed by step (step outputs, the truth's steps and dependencies)
    /// that belong to a step kept (`keys`, from [`step_keys`] of every step kept).
    pub(crate) fn following(df: DataFrame, keys: &[u64], what: &'static str) -> Result<DataFrame> {
        following(df, keys).map_err(Cut::err(what))
    }

    /// The evaluations made inside.
    pub(crate) fn evals(&self, evals: DataFrame) -> Result<DataFrame> {
        evals
            .lazy()
            .filter(self.window.time_expr("timestamp"))
            .collect()
            .map_err(Cut::err("evals"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// polars' own semi join on `(build, stepnr)`: the reference for [`following`].
    fn semi_join(df: &DataFrame, steps: &DataFrame) -> DataFrame {
        df.clone()
            .lazy()
            .join(
                steps.select(["build", "stepnr"]).unwrap().lazy(),
                [col("build"), col("stepnr")],
                [col("build"), col("stepnr")],
                JoinArgs::new(JoinType::Semi),
            )
            .collect()
            .unwrap()
    }

    #[test]
    fn a_window_keeps_exactly_the_outputs_and_truth_of_its_steps() {
        let spec = SampleSpec {
            scale: 0.05,
            ..Default::default()
        };
        let ds = normalize(crate::sample::generate(&spec).unwrap()).unwrap();
        let (since, until) = (ds.meta.window.since.unwrap(), ds.meta.window.until.unwrap());
        let window = Window {
            since: Some(since + (until - since) / 2),
            until: Some(until),
        };
        let all_outputs = ds.step_outputs.height();
        let truth = ds.truth.clone().unwrap();
        let kept = restrict(ds, window).unwrap();
        assert!(kept.steps.height() > 0 && kept.step_outputs.height() < all_outputs);
        assert!(kept.step_outputs.height() > 0);
        assert!(
            kept.step_outputs
                .equals_missing(&semi_join(&kept.step_outputs, &kept.steps))
        );
        // Nothing of a kept step is lost, in whatever order the steps come.
        let shuffled = kept
            .steps
            .sort(["stop_time"], SortMultipleOptions::default())
            .unwrap();
        let keys = step_keys(&shuffled).unwrap();
        for (name, full) in [("deps", &truth.deps), ("steps", &truth.steps)] {
            let ours = following(full.clone(), &keys).unwrap();
            assert!(ours.height() > 0, "{name}");
            assert!(ours.equals_missing(&semi_join(full, &kept.steps)), "{name}");
        }
    }

    #[test]
    fn sorting_a_table_of_several_chunks_keeps_rows_whole_and_strings_unmoved() {
        let long = |i: i32| format!("/nix/store/{i:032}-output-of-step");
        let part = |builds: [i32; 2], names: [Option<String>; 2]| {
            df! {
                "build" => builds,
                "stepnr" => [1, 1],
                "name" => names,
                "path" => [None::<&str>, None],
            }
            .unwrap()
        };
        let mut df = part([3, 1], [Some(long(3)), None]);
        df.vstack_mut_owned(part([2, 0], [Some("dev".into()), Some(long(0))]))
            .unwrap();
        // Where the names' bytes are.
        let buffers = |df: &DataFrame| -> Vec<*const u8> {
            let names = df.column("name").unwrap().str().unwrap().clone();
            let mut at: Vec<_> = names
                .downcast_iter()
                .flat_map(|a| a.data_buffers().iter().map(|b| b.as_ptr()))
                .collect();
            at.sort();
            at.dedup();
            at
        };
        let before = buffers(&df);
        let want = df.sort(["build"], SortMultipleOptions::default()).unwrap();
        let sorted = sort_by_key(&crate::dataset::STEP_OUTPUTS, df).unwrap();
        assert!(sorted.equals_missing(&want));
        assert_eq!(sorted.column("name").unwrap().n_chunks(), 1);
        // The long names are views of the bytes read, not copies of them.
        assert_eq!(buffers(&sorted), before);
        assert_eq!(sorted.column("path").unwrap().null_count(), 4);
    }

    /// Keys of one or two 32-bit columns are sorted packed into one number: the same order as
    /// polars' stable sort, negative values and ties (kept in their order) included.
    #[test]
    fn an_integer_key_sorts_as_polars_sorts_it() {
        let df = df! {
            "build" => [7, -3, 7, 2, -3, i32::MAX, i32::MIN, 2],
            "stepnr" => [2, 5, 1, 1, 5, -1, 0, 1],
            "x" => [0, 1, 2, 3, 4, 5, 6, 7],
        }
        .unwrap();
        let want = df
            .sort(
                ["build", "stepnr"],
                SortMultipleOptions::default().with_maintain_order(true),
            )
            .unwrap();
        let got = sort_by_key(&crate::dataset::TRUTH_STEPS, df.clone()).unwrap();
        assert!(got.equals_missing(&want), "{got}");
        // Ties keep their order: (-3, 5) is x 1 then x 4, (2, 1) x 3 then x 7.
        let x: Vec<Option<i32>> = got.column("x").unwrap().i32().unwrap().iter().collect();
        assert_eq!(x, [6, 1, 4, 3, 7, 2, 0, 5].map(Some).to_vec(), "{got}");
        // In order already: nothing moves.
        let again = sort_by_key(&crate::dataset::TRUTH_STEPS, got.clone()).unwrap();
        assert!(again.equals_missing(&got));
        // A key left unread (all null) orders nothing: the rows stay as they came.
        let unread = df! {
            "build" => [None::<i32>, None, None],
            "stepnr" => [None::<i32>, None, None],
            "x" => [3, 1, 2],
        }
        .unwrap();
        let kept = sort_by_key(&crate::dataset::TRUTH_STEPS, unread.clone()).unwrap();
        assert!(kept.equals_missing(&unread));
    }
}
