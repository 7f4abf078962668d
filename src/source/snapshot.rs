//! Offline snapshots: a dataset saved as plain Parquet that DuckDB, Spark or Trino read as is.
//!
//! Layout of a snapshot directory:
//! ```text
//! manifest.json                          format version, origin, window, row counts, files
//! steps/day=2025-06-02/part-0.parquet    large tables: a file per UTC day (Hive-style), or several
//! steps/day=2025-06-02/part-1.parquet      where `snapshot --db` wrote the day in chunks
//! steps/day=unknown/part-0.parquet       rows without a time
//! jobsets/part-0.parquet                 small tables: one file
//! machines                               the machines file, when the source had one
//! store/<hash>-<name>.drv                the derivation graph as .drv files, when the data had one
//! runner_series/part-0.parquet           the queue runner's series, when the data had one
//! ```
//! Files are zstd-compressed Parquet. The manifest lists every file with its row count and byte
//! size; reading checks each against it, so a truncated, swapped or missing file is named.
//!
//! The runner's series ([`crate::status::timeline::Timeline`]) is one Parquet file, wide: a
//! `time` column (unix seconds, `step_s` apart) and one `Float64` column a series, named
//! `family/key` (`runnable/x86_64-linux`, `current_jobs/ssh://b1`, `stage/building`; see
//! [`SERIES_FAMILIES`]), `NaN` where a sample is missing. Wide rather than long (time, family,
//! key, value): a month every 30 s of 40 machines and 10 machine types is some 9 M long rows with
//! two strings each, several hundred MB in memory to write, where wide it is 86,400 rows of
//! numbers. The manifest's `runner_series` says where it came from and its step; it is not a
//! table of [`CORE_TABLES`], so older readers, which ignore fields they do not know, still read
//! the rest of the snapshot.
//!
//! A snapshot holds no symbolic links, and reading refuses one, naming it: a link to `.` made
//! the walk of a table's directory endless, and a link to `/` would walk (or read) the whole
//! filesystem. Files are read only if regular and within a cap, so a device or FIFO named
//! `manifest.json` cannot hang the read or fill memory.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::dataset::{
    BundledMachines, CORE_TABLES, Dataset, DatasetMeta, Omit, Origin, QueueRunnerConfig,
    TRUTH_TABLES, TableDef, Truth,
};
use crate::error::{Error, Result};
use crate::output::{Existing, StagedDir, write_file_atomic};
use crate::window::Window;

pub const FORMAT: &str = "hydra-bottleneck-snapshot";
/// Bumped whenever the layout or a table's columns change, so that an older reader refuses a
/// snapshot it would misread with one line saying so. Readers read every version from
/// [`OLDEST_READABLE`] to their own:
///
/// - 1: the Hydra tables by day, the machines file, and later the optional `.drv` store and the
///   runner's series (optional manifest fields, absent in the first snapshots);
/// - 2: adds the sample's truth table `truth_losses` (a version-1 reader would refuse it as an
///   unknown table, naming the table rather than the version).
pub const FORMAT_VERSION: u32 = 2;
/// The oldest version this reader still reads: a version-1 snapshot is a version-2 one without
/// `truth_losses`.
pub const OLDEST_READABLE: u32 = 1;
const MANIFEST: &str = "manifest.json";
const MACHINES: &str = "machines";
/// The directory of `.drv` files (a store-like directory, read by `source::drvstore`).
const STORE: &str = "store";
/// The runner's series, one file.
const SERIES: &str = "runner_series/part-0.parquet";
/// The series' time column.
const SERIES_TIME: &str = "time";
/// The families of a timeline as its columns name them, before the `/`.
pub const SERIES_FAMILIES: [&str; 5] = ["runnable", "running", "current_jobs", "disabled", "stage"];
const SECONDS_PER_DAY: i64 = 86_400;

/// The most read of `manifest.json`: about 150 bytes per file listed, one file per table per
/// day, so ten years of history is some 4 MiB; 64 MiB is far past any snapshot written here.
const MANIFEST_CAP: u64 = 64 << 20;

/// How deep the walk of a table's directory goes. A snapshot written here has one level
/// (`day=…/part-0.parquet`); Hive-style writers add a level per partition key, and a few keys
/// are all anyone uses. Links are refused, but a bind mount that contains itself is no link:
/// the bound is what ends the walk then.
const MAX_TABLE_DEPTH: usize = 4;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub tool_version: String,
    /// Unix seconds.
    pub created_at: i64,
    pub origin: Origin,
    pub schema_version: Option<i32>,
    pub runner: crate::dataset::Runner,
    pub runner_basis: String,
    /// When the history spans both runners (`DatasetMeta::runner_switch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_switch: Option<i64>,
    pub window: Window,
    /// Why `window` is narrower than the window the snapshot was asked for, if it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_note: Option<String>,
    pub tables: BTreeMap<String, TableEntry>,
    pub machines: Option<String>,
    /// The queue runner's configuration the source recorded (the sample's); absent in
    /// snapshots written before it was recorded, and then resolved from `origin` on reading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_runner: Option<QueueRunnerConfig>,
    /// The derivation graph as `.drv` files, when the data had one; absent in snapshots
    /// written before graphs were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drv_store: Option<StoreEntry>,
    /// The queue runner's series, when the data had one; absent in snapshots written before
    /// series were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_series: Option<SeriesEntry>,
    /// Set when the snapshot was written to be published (`snapshot --public`): what was left
    /// out and changed, and why ([`super::public`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public: Option<super::public::PublicSection>,
}

/// The runner's series of a snapshot: its file and what [`crate::status::timeline::Timeline`]
/// says beside the numbers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SeriesEntry {
    pub file: FileEntry,
    /// Where the series came from (never a credential: the timeline's source is redacted).
    pub source: String,
    /// Which metric names it was read under.
    pub naming: String,
    /// The sampling interval, seconds.
    pub step_s: i64,
    /// `Timeline::capacity_known`; absent (false) in snapshots written before it was kept.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub capacity_known: bool,
}

/// The `.drv` files of a snapshot.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoreEntry {
    /// Relative to the snapshot directory.
    pub path: String,
    /// How many `.drv` files it holds.
    pub files: u64,
    /// Where the graph came from when the snapshot was written.
    pub source: String,
}

/// The queue runner's configuration of a sample snapshot written before manifests recorded it:
/// the generator's at the snapshot's scale.
fn sample_config(origin: &Origin) -> Option<QueueRunnerConfig> {
    match origin {
        Origin::Sample { scale, .. } => Some(QueueRunnerConfig {
            local_workers: crate::sample::local_worker_slots(*scale),
        }),
        Origin::Snapshot { from, .. } => sample_config(from),
        Origin::Postgres { .. } => None,
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TableEntry {
    pub rows: u64,
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileEntry {
    /// Relative to the snapshot directory, `/`-separated.
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
}

/// Writes `ds` as a snapshot at `dest` (atomically: a partial snapshot is never left behind).
/// An existing snapshot there is replaced only with `replace`; without it, whatever appears at
/// `dest` while the snapshot is written is left as it is and the write fails.
pub fn write(ds: &Dataset, dest: &Path, replace: bool) -> Result<Manifest> {
    write_with(ds, dest, replace, None)
}

/// [`write`], with the manifest's `public` section when `ds` was made publishable
/// ([`super::public::publish`]).
pub fn write_with(
    ds: &Dataset,
    dest: &Path,
    replace: bool,
    public: Option<super::public::PublicSection>,
) -> Result<Manifest> {
    crate::interrupt::check()?;
    let mut w = Writer::new(dest, replace)?;
    for (def, df) in ds.tables() {
        // On Ctrl-C (here, or between day files) the writer is dropped and removes its files.
        w.write_whole(def, df)?;
    }
    if let Some(bundled) = &ds.machines {
        w.machines(&bundled.text)?;
    }
    if ds.drv_graph.is_some() {
        w.drv_store(ds)?;
    }
    if let Some(tl) = &ds.timeline {
        w.series(tl)?;
    }
    w.finish(&ds.meta, public)
}

/// Where a table's rows go: its one directory, or a day's (`None`: rows without a time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Slot {
    Whole,
    Day(Option<i64>),
}

impl Slot {
    /// The directory under the table's, `day=2025-06-02` or `day=unknown`; none for `Whole`.
    fn dir(self) -> Option<String> {
        match self {
            Slot::Whole => None,
            Slot::Day(Some(d)) => Some(
                chrono::DateTime::from_timestamp(d * SECONDS_PER_DAY, 0)
                    .map(|t| t.format("day=%Y-%m-%d").to_string())
                    .unwrap_or_else(|| format!("day={d}")),
            ),
            Slot::Day(None) => Some("day=unknown".into()),
        }
    }
}

/// `df`'s rows by the slot they go to, in order of the slots, as row numbers.
fn slots(def: &TableDef, df: &DataFrame) -> Result<Vec<(Slot, IdxCa)>> {
    let Some(time_col) = def.partition_by.filter(|_| df.height() > 0) else {
        return Ok(Vec::new());
    };
    let days = df
        .column(time_col)
        .and_then(|c| c.as_materialized_series().i64().cloned())
        .map_err(|e| Error::frame(def.name, e))?;
    let mut groups: BTreeMap<Option<i64>, Vec<IdxSize>> = BTreeMap::new();
    for (i, t) in days.iter().enumerate() {
        groups
            .entry(t.map(|t| t.div_euclid(SECONDS_PER_DAY)))
            .or_default()
            .push(i as IdxSize);
    }
    Ok(groups
        .into_iter()
        .map(|(day, idx)| (Slot::Day(day), IdxCa::from_vec("idx".into(), idx)))
        .collect())
}

/// One table as it is written: the files so far and the rows held for the next ones.
struct TableParts {
    def: &'static TableDef,
    entry: TableEntry,
    /// Rows not written yet, by slot.
    held: BTreeMap<Slot, Vec<DataFrame>>,
    held_rows: usize,
    /// How many files each slot has.
    parts: BTreeMap<Slot, u32>,
}

/// A snapshot being written, a table at a time ([`write`]) or a chunk at a time ([`Writer::add`],
/// for `snapshot --db`), into a staged directory that becomes the snapshot only at
/// [`Writer::finish`]. Dropped before that (an error, Ctrl-C), it leaves nothing behind.
///
/// Chunks are held per day until [`FLUSH_ROWS`] rows of a table are held, then each day's
/// rows are put in key order and written as that day's next file (`part-1.parquet`, …): a day
/// read over several chunks may have several files, which every Parquet reader takes as one
/// partition.
pub struct Writer {
    staged: StagedDir,
    /// Rows of a table held before they are written ([`FLUSH_ROWS`]).
    flush_rows: usize,
    tables: BTreeMap<&'static str, TableParts>,
    machines: Option<String>,
    drv_store: Option<StoreEntry>,
    runner_series: Option<SeriesEntry>,
}

/// The rows of one table held before they are written: a million steps are some 160 MB
/// decoded, so the three large tables together hold at most about half a gigabyte, and a year
/// of hydra.nixos.org becomes some 40 files a table beside its 365 days.
pub const FLUSH_ROWS: usize = 1_000_000;

impl Writer {
    pub fn new(dest: &Path, replace: bool) -> Result<Writer> {
        let existing = if replace {
            Existing::Replace
        } else {
            Existing::Refuse
        };
        Ok(Writer {
            staged: StagedDir::new(dest, existing)?,
            flush_rows: FLUSH_ROWS,
            tables: BTreeMap::new(),
            machines: None,
            drv_store: None,
            runner_series: None,
        })
    }

    /// The same writer holding at most `rows` rows of a table (at least one) before writing
    /// them: for tests, which make several files a day out of a small history.
    pub fn flushing_every(mut self, rows: usize) -> Writer {
        self.flush_rows = rows.max(1);
        self
    }

    fn table(&mut self, def: &'static TableDef) -> &mut TableParts {
        self.tables.entry(def.name).or_insert_with(|| TableParts {
            def,
            entry: TableEntry {
                rows: 0,
                files: Vec::new(),
            },
            held: BTreeMap::new(),
            held_rows: 0,
            parts: BTreeMap::new(),
        })
    }

    /// Writes `df` as the next file of `slot`.
    fn write_slot(&mut self, def: &'static TableDef, slot: Slot, df: DataFrame) -> Result<()> {
        let root = self.staged.path().to_path_buf();
        let t = self.table(def);
        let n = t.parts.entry(slot).or_insert(0);
        let rel = match slot.dir() {
            Some(dir) => format!("{}/{dir}/part-{n}.parquet", def.name),
            None => format!("{}/part-{n}.parquet", def.name),
        };
        *n += 1;
        let file = write_part(&root, &rel, df)?;
        t.entry.rows += file.rows;
        t.entry.files.push(file);
        Ok(())
    }

    /// Writes a whole table, in order already: one file a day, or one file.
    pub fn write_whole(&mut self, def: &'static TableDef, df: &DataFrame) -> Result<()> {
        let groups = slots(def, df)?;
        if groups.is_empty() {
            return self.write_slot(def, Slot::Whole, df.clone());
        }
        for (slot, idx) in groups {
            let part = df.take(&idx).map_err(|e| Error::frame(def.name, e))?;
            self.write_slot(def, slot, part)?;
        }
        Ok(())
    }

    /// Adds some rows of `def`, in any order; they are written once enough are held, or at
    /// [`Writer::finish`].
    pub fn add(&mut self, def: &'static TableDef, df: DataFrame) -> Result<()> {
        if df.height() == 0 {
            self.table(def);
            return Ok(());
        }
        let groups = slots(def, &df)?;
        let flush_rows = self.flush_rows;
        let t = self.table(def);
        t.held_rows += df.height();
        if groups.is_empty() {
            t.held.entry(Slot::Whole).or_default().push(df);
        } else {
            for (slot, idx) in groups {
                let part = df.take(&idx).map_err(|e| Error::frame(def.name, e))?;
                t.held.entry(slot).or_default().push(part);
            }
        }
        if t.held_rows >= flush_rows {
            self.flush(def)?;
        }
        Ok(())
    }

    /// Writes what is held of `def`, each slot's rows in key order as its next file.
    fn flush(&mut self, def: &'static TableDef) -> Result<()> {
        let held = match self.tables.get_mut(def.name) {
            Some(t) => {
                t.held_rows = 0;
                std::mem::take(&mut t.held)
            }
            None => return Ok(()),
        };
        for (slot, frames) in held {
            let mut frames = frames.into_iter();
            let Some(mut df) = frames.next() else {
                continue;
            };
            for more in frames {
                df.vstack_mut_owned(more)
                    .map_err(|e| Error::frame(def.name, e))?;
            }
            let df = super::sort_by_key(def, df).map_err(|e| Error::frame(def.name, e))?;
            def.check(&df)
                .map_err(|e| Error::Internal(format!("table {}: {e}", def.name)))?;
            self.write_slot(def, slot, df)?;
        }
        Ok(())
    }

    /// The rows of `def` taken so far, written or held.
    pub fn rows(&self, def: &TableDef) -> u64 {
        self.tables
            .get(def.name)
            .map_or(0, |t| t.entry.rows + t.held_rows as u64)
    }

    /// The machines file that came with the data.
    pub fn machines(&mut self, text: &str) -> Result<()> {
        let p = self.staged.path().join(MACHINES);
        std::fs::write(&p, text).map_err(|e| Error::io(&p, e))?;
        self.machines = Some(MACHINES.to_string());
        Ok(())
    }

    /// The `.drv` files of `ds`'s derivation graph, as `store/`.
    pub fn drv_store(&mut self, ds: &Dataset) -> Result<()> {
        let Some(g) = &ds.drv_graph else {
            return Ok(());
        };
        let p = self.staged.path().join(STORE);
        std::fs::create_dir(&p).map_err(|e| Error::io(&p, e))?;
        let files = super::drvstore::write(ds, &p)? as u64;
        self.drv_store = Some(StoreEntry {
            path: STORE.into(),
            files,
            source: g.source.clone(),
        });
        Ok(())
    }

    /// The runner's series.
    pub fn series(&mut self, tl: &crate::status::timeline::Timeline) -> Result<()> {
        self.runner_series = Some(write_series(self.staged.path(), tl)?);
        Ok(())
    }

    /// Writes what is held, every core table not given as an empty file, and the manifest with
    /// `meta`; then the staged directory becomes the snapshot.
    pub fn finish(
        mut self,
        meta: &DatasetMeta,
        public: Option<super::public::PublicSection>,
    ) -> Result<Manifest> {
        crate::interrupt::check()?;
        let names: Vec<&'static TableDef> = self.tables.values().map(|t| t.def).collect();
        for def in names {
            self.flush(def)?;
        }
        for def in CORE_TABLES {
            if self
                .tables
                .get(def.name)
                .is_none_or(|t| t.entry.files.is_empty())
            {
                self.write_slot(def, Slot::Whole, def.empty())?;
            }
        }
        let manifest = Manifest {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            tool_version: env!("CARGO_PKG_VERSION").into(),
            created_at: chrono::Utc::now().timestamp(),
            origin: meta.origin.clone(),
            schema_version: meta.schema_version,
            runner: meta.runner,
            runner_basis: meta.runner_basis.clone(),
            runner_switch: meta.runner_switch,
            window: meta.window,
            window_note: meta.window_note.clone(),
            tables: std::mem::take(&mut self.tables)
                .into_iter()
                .map(|(name, t)| (name.to_string(), t.entry))
                .collect(),
            machines: self.machines.take(),
            queue_runner: meta.queue_runner,
            drv_store: self.drv_store.take(),
            runner_series: self.runner_series.take(),
            public,
        };
        let json = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::json("manifest", e))?;
        write_file_atomic(&self.staged.path().join(MANIFEST), &json)?;
        // The last point to stop: after the commit the snapshot is complete, and kept.
        crate::interrupt::check()?;
        self.staged.commit()?;
        Ok(manifest)
    }
}

fn series_columns(tl: &crate::status::timeline::Timeline) -> Vec<(String, &Vec<f64>)> {
    fn keyed<'a>(family: &str, m: &'a BTreeMap<String, Vec<f64>>) -> Vec<(String, &'a Vec<f64>)> {
        m.iter()
            .map(|(k, v)| (format!("{family}/{k}"), v))
            .collect()
    }
    let mut all = keyed(SERIES_FAMILIES[0], &tl.runnable);
    all.extend(keyed(SERIES_FAMILIES[1], &tl.running));
    all.extend(keyed(SERIES_FAMILIES[2], &tl.current_jobs));
    all.extend(keyed(SERIES_FAMILIES[3], &tl.disabled));
    all.extend(
        tl.stages
            .iter()
            .map(|(s, v)| (format!("{}/{}", SERIES_FAMILIES[4], s.as_str()), v)),
    );
    all
}

/// Writes the runner's series as [`SERIES`].
fn write_series(root: &Path, tl: &crate::status::timeline::Timeline) -> Result<SeriesEntry> {
    let n = tl.len();
    let mut cols = vec![Column::new(SERIES_TIME.into(), tl.times.clone())];
    for (name, v) in series_columns(tl) {
        if v.len() != n {
            return Err(Error::snapshot(
                root.join(SERIES),
                format!("series `{name}` has {} points, the grid {n}", v.len()),
            ));
        }
        cols.push(Column::new(name.as_str().into(), v.clone()));
    }
    let df = DataFrame::new(n, cols).map_err(|e| Error::frame("runner_series", e))?;
    Ok(SeriesEntry {
        file: write_part(root, SERIES, df)?,
        source: tl.source.clone(),
        naming: tl.naming.clone(),
        step_s: tl.step_s,
        capacity_known: tl.capacity_known,
    })
}

/// Reads the runner's series a manifest lists, checking it as a table's file is checked and
/// its grid and column names against what [`write_series`] writes.
fn read_series(dir: &Path, entry: &SeriesEntry) -> Result<crate::status::timeline::Timeline> {
    use crate::status::timeline::{Stage, Timeline};
    let path = no_links(dir, &entry.file.path)?;
    let meta = std::fs::metadata(&path)
        .map_err(|_| Error::snapshot(&path, "listed in manifest.json but missing"))?;
    if !meta.is_file() {
        return Err(Error::snapshot(&path, "is not a regular file"));
    }
    if meta.len() != entry.file.bytes {
        return Err(Error::snapshot(
            &path,
            format!(
                "is {} bytes, manifest.json says {}",
                meta.len(),
                entry.file.bytes
            ),
        ));
    }
    let (file, _) = crate::readfile::open_regular(&path, "snapshot file")?;
    let corrupt = |e: PolarsError| Error::snapshot(&path, format!("corrupt Parquet: {e}"));
    let df = contain(&path, || {
        let mut reader = ParquetReader::new(file);
        let footer = reader.get_metadata().map_err(corrupt)?;
        check_footer(footer, meta.len(), entry.file.rows)
            .map_err(|why| Error::snapshot(&path, format!("corrupt Parquet: its footer {why}")))?;
        reader.finish().map_err(corrupt)
    })?;
    let bad = |why: String| Error::snapshot(&path, format!("not a runner's series: {why}"));
    if entry.step_s <= 0 {
        return Err(bad(format!("its step is {} s", entry.step_s)));
    }
    let mut cols = df.columns().iter();
    let times: Vec<i64> = match cols.next() {
        Some(c) if c.name().as_str() == SERIES_TIME && c.dtype() == &DataType::Int64 => c
            .i64()
            .map_err(corrupt)?
            .iter()
            .collect::<Option<Vec<i64>>>()
            .ok_or_else(|| bad("a time is null".into()))?,
        _ => {
            return Err(bad(format!(
                "its first column is not `{SERIES_TIME}` (Int64)"
            )));
        }
    };
    if let Some(w) = times.windows(2).find(|w| w[1] - w[0] != entry.step_s) {
        return Err(bad(format!(
            "times {} and {} are not {} s apart",
            w[0], w[1], entry.step_s
        )));
    }
    let mut tl = Timeline {
        source: entry.source.clone(),
        naming: entry.naming.clone(),
        step_s: entry.step_s,
        times,
        capacity_known: entry.capacity_known,
        ..Timeline::default()
    };
    for c in cols {
        let name = c.name().as_str();
        let values: Vec<f64> = c
            .f64()
            .map_err(|_| bad(format!("column `{name}` is not Float64")))?
            .iter()
            .map(|v| v.unwrap_or(f64::NAN))
            .collect();
        let (family, key) = name
            .split_once('/')
            .ok_or_else(|| bad(format!("column `{name}` is not `family/key`")))?;
        let key = key.to_string();
        match family {
            "runnable" => tl.runnable.insert(key, values),
            "running" => tl.running.insert(key, values),
            "current_jobs" => tl.current_jobs.insert(key, values),
            "disabled" => tl.disabled.insert(key, values),
            "stage" => {
                let stage = Stage::parse(&key)
                    .ok_or_else(|| bad(format!("column `{name}` names no stage")))?;
                tl.stages.insert(stage, values)
            }
            _ => return Err(bad(format!("column `{name}` names no family"))),
        };
    }
    Ok(tl)
}

fn write_part(root: &Path, rel: &str, mut df: DataFrame) -> Result<FileEntry> {
    crate::interrupt::check()?;
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
    let bytes = ParquetWriter::new(file)
        // zstd at its default level: a fifth the size of plain data, and fast both ways.
        .with_compression(ParquetCompression::Zstd(None))
        .finish(&mut df)
        .map_err(|e| Error::snapshot(&path, e))?;
    Ok(FileEntry {
        path: rel.into(),
        rows: df.height() as u64,
        bytes,
    })
}

/// Reads and checks the manifest of the snapshot at `dir`.
pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST);
    if !dir.is_dir() {
        return Err(Error::snapshot(dir, "no such directory"));
    }
    let text =
        read_inside(dir, MANIFEST, "snapshot manifest", MANIFEST_CAP).map_err(|e| match e {
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Error::snapshot(
                    &path,
                    "missing: this directory is not a hydra-bottleneck snapshot",
                )
            }
            other => other,
        })?;
    parse_manifest(&text, &path)
}

/// `dir/rel`, refused if it or a directory on the way is a symbolic link (`rel` is
/// `/`-separated and checked to stay inside). A missing part is no error here: whoever opens
/// the path says so.
fn no_links(dir: &Path, rel: &str) -> Result<PathBuf> {
    let mut p = dir.to_path_buf();
    for part in rel.split('/') {
        p.push(part);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => return Err(link_refused(&p)),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    Ok(dir.join(rel))
}

fn link_refused(p: &Path) -> Error {
    Error::snapshot(
        p,
        "is a symbolic link; a snapshot holds none (copy the file in its place)",
    )
}

/// Reads the file `rel` of the snapshot at `dir`: no link, a regular file, at most `cap` bytes.
fn read_inside(dir: &Path, rel: &str, what: &str, cap: u64) -> Result<Vec<u8>> {
    crate::readfile::read_capped(&no_links(dir, rel)?, what, cap)
}

/// Parses and checks the bytes of a manifest; `path` names it in errors. Whatever the bytes,
/// the answer is a manifest or an error (the fuzz target `manifest` holds it to that).
pub fn parse_manifest(text: &[u8], path: &Path) -> Result<Manifest> {
    // Check the format before the full structure, so an unknown version gets the right error.
    let probe: serde_json::Value = serde_json::from_slice(text)
        .map_err(|e| Error::snapshot(path, format!("not JSON: {e}")))?;
    if probe.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
        return Err(Error::snapshot(path, format!("not a {FORMAT} manifest")));
    }
    let version = probe.get("format_version").and_then(|v| v.as_u64());
    if !version
        .is_some_and(|v| (u64::from(OLDEST_READABLE)..=u64::from(FORMAT_VERSION)).contains(&v))
    {
        return Err(Error::snapshot(
            path,
            format!(
                "format version {} is not supported (this tool reads versions \
                 {OLDEST_READABLE} to {FORMAT_VERSION})",
                version.map(|v| v.to_string()).unwrap_or_else(|| "?".into())
            ),
        ));
    }
    let manifest: Manifest = serde_json::from_value(probe)
        .map_err(|e| Error::snapshot(path, format!("malformed: {e}")))?;
    // Every file the manifest names is read relative to the snapshot directory; a name that
    // climbs out of it (`..`, an absolute path) would make reading a snapshot read any file.
    let files = manifest.tables.values().flat_map(|t| &t.files);
    for name in files
        .map(|f| f.path.as_str())
        .chain(manifest.machines.as_deref())
        .chain(manifest.drv_store.as_ref().map(|s| s.path.as_str()))
        .chain(
            manifest
                .runner_series
                .as_ref()
                .map(|s| s.file.path.as_str()),
        )
    {
        if !crate::output::is_relative_inside(name) {
            return Err(Error::snapshot(
                path,
                format!("file path `{name}` leaves the snapshot"),
            ));
        }
    }
    Ok(manifest)
}

/// Reads the whole snapshot at `dir`, checking every file against the manifest.
pub fn read(dir: &Path) -> Result<Dataset> {
    read_omitting(dir, &[])
}

/// [`read`], leaving out the columns in `omit` (they read as nulls and are never decoded).
pub fn read_omitting(dir: &Path, omit: Omit) -> Result<Dataset> {
    read_frames(dir, omit, None, true, true)
}

/// [`read_omitting`], and the derivation graph of the snapshot's store and the runner's series
/// only when `graph_and_series`: a question of the tables alone (`query`, a finding other than the ledger)
/// need not parse a million `.drv` files nor decode the series. The sample's ground truth only
/// when `truth`; `omit_with_truth` replaces `omit` when the snapshot has it.
pub fn read_frames(
    dir: &Path,
    omit: Omit,
    omit_with_truth: Option<Omit>,
    graph_and_series: bool,
    truth: bool,
) -> Result<Dataset> {
    let manifest = read_manifest(dir)?;
    let omit = omit_for(&manifest, omit, omit_with_truth, truth);
    let mut frames: BTreeMap<&str, DataFrame> = BTreeMap::new();
    for def in tables_read(truth) {
        if let Some(entry) = listed_table(dir, &manifest, def)? {
            let df = read_table(dir, def, entry, omit)?;
            crate::progress::mark(&format!(
                "reading table {} ({} rows, about {} MiB in frames)",
                def.name,
                df.height(),
                df.estimated_size() >> 20
            ));
            frames.insert(def.name, df);
        }
    }
    assemble(dir, &manifest, frames, graph_and_series)
}

/// [`read_frames`] of the rows inside `window` only (by [`crate::source::Cut`], the rule
/// [`crate::source::restrict`] applies to a dataset read whole), each file cut as it is read
/// ([`cut_within`]): what is held is the window's rows and a file, not the snapshot's (a month
/// of a year's snapshot read the year, 15 GiB, to keep a month). With `evidence`, every step's
/// start and machine (not only the window's) go to it, for deciding the runner as from the
/// whole snapshot. The dataset's window is the manifest's; the caller sets the one cut.
pub fn read_within(
    dir: &Path,
    window: Window,
    omit: (Omit, Option<Omit>),
    graph_and_series: bool,
    truth: bool,
    evidence: Option<&mut super::era::Evidence>,
) -> Result<Dataset> {
    use super::Chunks;
    let manifest = read_manifest(dir)?;
    let mut held = super::Held::default();
    let found = cut_within(
        dir,
        &manifest,
        window,
        omit,
        truth,
        evidence,
        &mut |def, df| held.add(def, df),
    )?;
    let mut frames: BTreeMap<&str, DataFrame> = held.tables.into_iter().collect();
    for def in found {
        frames.entry(def.name).or_insert_with(|| def.empty());
    }
    crate::progress::mark("reading the tables' rows inside the window");
    assemble(dir, &manifest, frames, graph_and_series)
}

/// The rows inside `window` of the snapshot at `dir` (its `manifest`), handed to `out` a file
/// at a time, each cut as it is read by [`crate::source::Cut`]: the steps (all of them before
/// any other table, whose rows follow the steps kept), then the other core tables, and the
/// truth's with `truth`. What is held besides a file is the ids of the builds queued inside and
/// the keys of the steps kept (8 bytes a step). With `evidence`, every step's start and machine
/// go to it, not only the window's. Returns the tables the snapshot has (a truth table may be
/// absent); one may have reached `out` in no file.
pub fn cut_within(
    dir: &Path,
    manifest: &Manifest,
    window: Window,
    (omit, omit_with_truth): (Omit, Option<Omit>),
    truth: bool,
    mut evidence: Option<&mut super::era::Evidence>,
    out: &mut dyn FnMut(&'static TableDef, DataFrame) -> Result<()>,
) -> Result<Vec<&'static TableDef>> {
    use crate::dataset::{BUILDS, EVALS, STEPS};
    let omit = omit_for(manifest, omit, omit_with_truth, truth);
    let cut = super::Cut::new(window);
    // Hands `f` each file of `def` read without `omit`; false when the snapshot has no such
    // table (the truth's, which are optional).
    let each_file =
        |def: &'static TableDef, omit: Omit, f: &mut dyn FnMut(DataFrame) -> Result<()>| {
            let Some(entry) = listed_table(dir, manifest, def)? else {
                return Ok(false);
            };
            each_file_of(dir, def, entry, omit, f)?;
            Ok(true)
        };
    // The builds queued inside, from their ids and queue times alone.
    let mut queued = Vec::new();
    each_file(&BUILDS, all_but_queue_times(), &mut |df| {
        queued.extend(cut.queued(&df)?);
        Ok(())
    })?;
    let queued = super::Ids::from(queued);
    let mut found = vec![&STEPS];
    let (mut step_builds, mut keys) = (Vec::new(), Vec::new());
    each_file(&STEPS, omit, &mut |df| {
        if let Some(ev) = evidence.as_deref_mut() {
            for (start, machine) in super::step_machines(&df)? {
                ev.push(start, machine);
            }
        }
        let kept = cut.steps(df, &queued)?;
        step_builds.extend(super::Cut::builds_of(&kept)?.0);
        keys.extend(super::step_keys(&kept).map_err(|e| Error::frame("steps", e))?);
        out(&STEPS, kept)
    })?;
    drop(queued);
    let step_builds = super::Ids::from(step_builds);
    keys.sort_unstable();
    for def in tables_read(truth).filter(|d| d.name != STEPS.name) {
        let listed = each_file(def, omit, &mut |df| {
            let df = match def.name {
                n if n == BUILDS.name => cut.builds(df, &step_builds)?,
                n if n == EVALS.name => cut.evals(df)?,
                _ if def.columns.iter().any(|c| c.name == "stepnr") => {
                    super::Cut::following(df, &keys, def.name)?
                }
                // The jobsets, and the truth's losses per machine and hour (the ledger sums
                // the hours of its window), whole.
                _ => df,
            };
            out(def, df)
        })?;
        if listed {
            found.push(def);
        }
    }
    Ok(found)
}

/// Hands the files of table `def` (listed by `entry`) to `each` one at a time, each read as
/// [`read_file`] reads it, and checks that they held the rows the manifest lists.
fn each_file_of(
    dir: &Path,
    def: &'static TableDef,
    entry: &TableEntry,
    omit: Omit,
    each: &mut dyn FnMut(DataFrame) -> Result<()>,
) -> Result<()> {
    let listed = listed_files(dir, def, entry)?;
    let mut rows = 0;
    for (file, path) in entry.files.iter().zip(&listed) {
        let df = read_file(def, file, path, omit)?;
        rows += df.height();
        each(df)?;
    }
    rows_as_listed(dir, def, entry, rows)
}

/// The tables a read takes: the core ones, and the truth's with `truth`.
fn tables_read(truth: bool) -> impl Iterator<Item = &'static TableDef> {
    let truth_tables = if truth { &TRUTH_TABLES[..] } else { &[] };
    CORE_TABLES.iter().chain(truth_tables).copied()
}

/// What a read leaves out: `omit_with_truth` where the truth is read and the snapshot has it.
fn omit_for(manifest: &Manifest, omit: Omit, omit_with_truth: Option<Omit>, truth: bool) -> Omit {
    let has_truth = truth
        && manifest
            .tables
            .contains_key(crate::dataset::TRUTH_STEPS.name);
    super::omit_given_truth(omit, omit_with_truth, has_truth)
}

/// The manifest's entry for `def`; a core table it does not list is an error, a truth table
/// may be absent.
fn listed_table<'m>(
    dir: &Path,
    manifest: &'m Manifest,
    def: &'static TableDef,
) -> Result<Option<&'m TableEntry>> {
    match manifest.tables.get(def.name) {
        Some(entry) => Ok(Some(entry)),
        None if CORE_TABLES.iter().any(|t| t.name == def.name) => Err(Error::snapshot(
            dir.join(MANIFEST),
            format!("lists no table `{}`", def.name),
        )),
        None => Ok(None),
    }
}

/// The machines file the snapshot keeps, if any.
fn bundled_machines(dir: &Path, manifest: &Manifest) -> Result<Option<BundledMachines>> {
    let Some(name) = &manifest.machines else {
        return Ok(None);
    };
    let bytes = read_inside(
        dir,
        name,
        "machines file",
        crate::nix::machines::MACHINES_FILE_CAP,
    )?;
    let p = dir.join(name);
    let text = String::from_utf8(bytes).map_err(|_| Error::snapshot(&p, "not UTF-8 text"))?;
    Ok(Some(
        BundledMachines::parse(text).map_err(|e| Error::snapshot(&p, e))?,
    ))
}

/// The dataset of the tables read (`frames`, by name) and what the manifest adds: the machines
/// file, the runner's series and the derivation graph of the steps read (with
/// `graph_and_series`), the tables put in key order.
fn assemble(
    dir: &Path,
    manifest: &Manifest,
    mut frames: BTreeMap<&str, DataFrame>,
    graph_and_series: bool,
) -> Result<Dataset> {
    if let Some(unknown) = manifest
        .tables
        .keys()
        .find(|k| crate::dataset::table_def(k).is_none())
    {
        return Err(Error::snapshot(
            dir.join(MANIFEST),
            format!("lists unknown table `{unknown}`"),
        ));
    }
    let machines = bundled_machines(dir, manifest)?;
    let mut take = |def: &TableDef| frames.remove(def.name);
    let core = |t: Option<DataFrame>| t.unwrap_or_default();
    let steps = core(take(&crate::dataset::STEPS));
    let builds = core(take(&crate::dataset::BUILDS));
    let step_outputs = core(take(&crate::dataset::STEP_OUTPUTS));
    let jobsets = core(take(&crate::dataset::JOBSETS));
    let evals = core(take(&crate::dataset::EVALS));
    let truth = match (
        take(&crate::dataset::TRUTH_DEPS),
        take(&crate::dataset::TRUTH_STEPS),
    ) {
        (Some(deps), Some(steps)) => Some(Truth {
            deps,
            steps,
            losses: take(&crate::dataset::TRUTH_LOSSES),
            throttled: None,
        }),
        _ => None,
    };
    let ds = super::normalize(Dataset {
        meta: meta_of(dir, manifest),
        steps,
        builds,
        step_outputs,
        jobsets,
        evals,
        truth,
        machines,
        timeline: manifest
            .runner_series
            .as_ref()
            .filter(|_| graph_and_series)
            .map(|e| read_series(dir, e))
            .transpose()?,
        drv_graph: None,
    })?;
    crate::progress::mark("putting the tables in key order");
    let mut ds = ds;
    if let Some((p, source)) = store_of(dir, manifest).filter(|_| graph_and_series) {
        let p = p?;
        let steps = crate::analysis::Steps::from_frame(&ds.steps)?;
        let paths = super::drvstore::distinct_drv_paths(&steps);
        let graph =
            super::drvstore::read_graph(&p, &paths, &source).map_err(|e| Error::snapshot(&p, e))?;
        drop(paths);
        drop(steps);
        ds.drv_graph = Some(graph);
    }
    Ok(ds)
}

/// The snapshot's `store/` directory, checked, with how the graph read from it is named.
fn store_of(dir: &Path, manifest: &Manifest) -> Option<(Result<PathBuf>, String)> {
    let store = manifest.drv_store.as_ref()?;
    let p = no_links(dir, &store.path);
    let source = match &p {
        Ok(p) => format!("{} ({})", p.display(), store.source),
        Err(_) => String::new(),
    };
    Some((p, source))
}

/// One file of table `def` as the manifest lists it (`f`, at `path`), checked against the
/// listing and the table's definition, without the columns in `omit`.
fn read_file(def: &'static TableDef, f: &FileEntry, path: &Path, omit: Omit) -> Result<DataFrame> {
    let kept: Vec<String> = def.kept(omit).into_iter().map(String::from).collect();
    let meta = std::fs::metadata(path)
        .map_err(|_| Error::snapshot(path, "listed in manifest.json but missing"))?;
    if !meta.is_file() {
        return Err(Error::snapshot(path, "is not a regular file"));
    }
    if meta.len() != f.bytes {
        return Err(Error::snapshot(
            path,
            format!("is {} bytes, manifest.json says {}", meta.len(), f.bytes),
        ));
    }
    let (file, _) = crate::readfile::open_regular(path, "snapshot file")?;
    let corrupt = |e: PolarsError| Error::snapshot(path, format!("corrupt Parquet: {e}"));
    let df = contain(path, || {
        let mut reader = ParquetReader::new(file);
        let footer = reader.get_metadata().map_err(corrupt)?;
        check_footer(footer, meta.len(), f.rows)
            .map_err(|why| Error::snapshot(path, format!("corrupt Parquet: its footer {why}")))?;
        // The file's own schema is checked whole, whatever is left out of the reading.
        let schema = reader.schema().map_err(corrupt)?;
        let full = DataFrame::empty_with_schema(&Schema::from_arrow_schema(&schema));
        def.check(&full)
            .map_err(|e| Error::snapshot(path, format!("not a `{}` table: {e}", def.name)))?;
        reader
            .with_columns(Some(kept.clone()))
            .finish()
            .map_err(corrupt)
    })?;
    let df = def.blank(&df, omit).map_err(corrupt)?;
    if df.height() as u64 != f.rows {
        return Err(Error::snapshot(
            path,
            format!("holds {} rows, manifest.json says {}", df.height(), f.rows),
        ));
    }
    def.check(&df)
        .map_err(|e| Error::snapshot(path, format!("not a `{}` table: {e}", def.name)))?;
    Ok(df)
}

/// What a snapshot's manifest says of its rows, as a dataset read from it describes them.
pub(crate) fn meta_of(dir: &Path, manifest: &Manifest) -> DatasetMeta {
    DatasetMeta {
        origin: Origin::Snapshot {
            dir: dir.display().to_string(),
            from: Box::new(manifest.origin.clone()),
        },
        schema_version: manifest.schema_version,
        runner: manifest.runner,
        runner_basis: manifest.runner_basis.clone(),
        runner_switch: manifest.runner_switch,
        window: manifest.window,
        window_note: manifest.window_note.clone(),
        queue_runner: manifest
            .queue_runner
            .or_else(|| sample_config(&manifest.origin)),
    }
}

/// Every column of `def` but those named in `keep`, as the columns a read leaves out.
fn all_but(def: &'static TableDef, keep: &[&str]) -> Vec<(&'static str, &'static str)> {
    def.columns
        .iter()
        .filter(|c| !keep.contains(&c.name))
        .map(|c| (def.name, c.name))
        .collect()
}

/// What a read of the builds' ids and queue times leaves out.
fn all_but_queue_times() -> Omit {
    static OMIT: std::sync::LazyLock<Vec<(&str, &str)>> =
        std::sync::LazyLock::new(|| all_but(&crate::dataset::BUILDS, &["id", "timestamp"]));
    &OMIT
}

/// What a read of the steps' times leaves out.
fn all_but_times() -> Omit {
    static OMIT: std::sync::LazyLock<Vec<(&str, &str)>> =
        std::sync::LazyLock::new(|| all_but(&crate::dataset::STEPS, &["start_time", "stop_time"]));
    &OMIT
}

/// What a read of the steps' times, busy flag and build leaves out (the time each step is kept
/// from by the window rule).
pub fn only_kept_from() -> Omit {
    static OMIT: std::sync::LazyLock<Vec<(&str, &str)>> = std::sync::LazyLock::new(|| {
        all_but(
            &crate::dataset::STEPS,
            &["start_time", "stop_time", "busy", "build"],
        )
    });
    &OMIT
}

/// What a read of the builds' volume (`compress::project::VolumeSums`) leaves out.
pub fn only_volume() -> Omit {
    static OMIT: std::sync::LazyLock<Vec<(&str, &str)>> = std::sync::LazyLock::new(|| {
        all_but(
            &crate::dataset::BUILDS,
            &["size", "stop_time", "finished", "is_cached_build"],
        )
    });
    &OMIT
}

/// What a read of the steps' derivation paths leaves out.
pub fn only_drv_paths() -> Omit {
    static OMIT: std::sync::LazyLock<Vec<(&str, &str)>> =
        std::sync::LazyLock::new(|| all_but(&crate::dataset::STEPS, &["drv_path"]));
    &OMIT
}

/// A snapshot's steps a day at a time (`steps/day=…/`, the days in order and the steps without
/// a start last), for the findings folded over days (`analysis::fold`): a day's steps are held,
/// not the window's.
pub struct Days {
    dir: PathBuf,
    manifest: Manifest,
    /// What the manifest says of the rows, the runner as decided ([`Days::set_meta`]).
    meta: DatasetMeta,
    /// The steps' files of each day, in order of the days.
    days: Vec<Vec<(FileEntry, PathBuf)>>,
    /// The temporary directory holding the snapshot when it was spilled from a database
    /// (`source::spill`): removed with the days.
    spill: Option<tempfile::TempDir>,
    /// The span the rows cover ([`Days::extent`]), where the read that wrote them found it.
    extent: Option<(Option<i64>, Option<i64>)>,
    /// The snapshot a window of these days was cut from (`source::cut_days`), with its
    /// manifest: its machines file, runner's series and `store/` are the days' own, read where
    /// they are rather than copied.
    cut_from: Option<Box<(PathBuf, Manifest)>>,
}

impl Days {
    /// Opens the snapshot at `dir`, checking its manifest and that its steps' and builds' files
    /// are the ones listed.
    pub fn open(dir: &Path) -> Result<Days> {
        let manifest = read_manifest(dir)?;
        let entry = |def: &TableDef| {
            manifest.tables.get(def.name).ok_or_else(|| {
                Error::snapshot(dir.join(MANIFEST), format!("lists no table `{}`", def.name))
            })
        };
        let steps = entry(&crate::dataset::STEPS)?;
        let listed = listed_files(dir, &crate::dataset::STEPS, steps)?;
        entry(&crate::dataset::BUILDS)?;
        // Every table's files are checked (no link, none unlisted), those a command never
        // reads too, as a whole read checks them: a snapshot that holds a link is refused
        // whatever is asked of it.
        let defs = crate::dataset::CORE_TABLES
            .into_iter()
            .chain(crate::dataset::TRUTH_TABLES);
        for def in defs.filter(|d| d.name != crate::dataset::STEPS.name) {
            if let Some(table) = manifest.tables.get(def.name) {
                listed_files(dir, def, table)?;
            }
        }
        // `day=YYYY-MM-DD` sorts in time order, and `day=unknown` after every date.
        let mut by_day: BTreeMap<&str, Vec<(FileEntry, PathBuf)>> = BTreeMap::new();
        for (f, path) in steps.files.iter().zip(listed) {
            let day = f.path.rsplit_once('/').map_or("", |(d, _)| d);
            by_day.entry(day).or_default().push((f.clone(), path));
        }
        let days = by_day.into_values().collect();
        Ok(Days {
            dir: dir.to_path_buf(),
            days,
            meta: meta_of(dir, &manifest),
            manifest,
            spill: None,
            extent: None,
            cut_from: None,
        })
    }

    /// The days of the snapshot at `dir` inside the temporary directory `spill`, which is
    /// removed when the days are dropped; `extent`: the span its rows cover, as the read that
    /// wrote them found it (so [`Days::extent`] need not read them again).
    pub fn open_spilled(
        dir: &Path,
        spill: tempfile::TempDir,
        extent: (Option<i64>, Option<i64>),
    ) -> Result<Days> {
        let mut days = Days::open(dir)?;
        days.spill = Some(spill);
        days.extent = Some(extent);
        Ok(days)
    }

    /// The same days, a window of the snapshot at `dir`: its machines file, runner's series
    /// and `store/` are theirs.
    pub fn cut_from(mut self, dir: &Path, manifest: Manifest) -> Days {
        self.cut_from = Some(Box::new((dir.to_path_buf(), manifest)));
        self
    }

    /// Where the machines file, runner's series and `store/` are: the snapshot a window was
    /// cut from, else this one.
    fn side(&self) -> (&Path, &Manifest) {
        match &self.cut_from {
            Some(from) => (&from.0, &from.1),
            None => (&self.dir, &self.manifest),
        }
    }

    /// The snapshot's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The snapshot read whole, without the columns in `omit`, its rows described as
    /// [`Days::meta`] says (for an analysis that cannot fold over days). Days cut from another
    /// snapshot ([`Days::cut_from`]) are read without that one's machines, series and store.
    pub fn read_whole(&self, omit: Omit) -> Result<Dataset> {
        let mut ds = read_frames(&self.dir, omit, None, true, true)?;
        ds.meta = self.meta();
        Ok(ds)
    }

    /// What the manifest says of the rows, with the runner as [`Days::set_meta`] decided it.
    pub fn meta(&self) -> DatasetMeta {
        self.meta.clone()
    }

    /// Replaces what is said of the rows (`source::open_days` decides the runner from them, as
    /// a whole read does).
    pub fn set_meta(&mut self, meta: DatasetMeta) {
        self.meta = meta;
    }

    /// Hands `each` every step's start and machine, a file at a time (for deciding the runner).
    pub fn each_start_and_machine(
        &self,
        mut each: impl FnMut(Option<i64>, Option<&str>),
    ) -> Result<()> {
        static OMIT: std::sync::LazyLock<Vec<(&str, &str)>> = std::sync::LazyLock::new(|| {
            all_but(&crate::dataset::STEPS, &["start_time", "machine"])
        });
        for (f, path) in self.days.iter().flatten() {
            let df = read_file(&crate::dataset::STEPS, f, path, &OMIT)?;
            for (start, machine) in super::step_machines(&df)? {
                each(start, machine);
            }
        }
        Ok(())
    }

    /// How many steps the snapshot holds.
    pub fn steps_rows(&self) -> usize {
        self.manifest.tables[crate::dataset::STEPS.name].rows as usize
    }

    /// How many days (the steps without a start count as one).
    pub fn len(&self) -> usize {
        self.days.len()
    }

    pub fn is_empty(&self) -> bool {
        self.days.is_empty()
    }

    /// When day `day` begins (unix seconds), from its directory's name; `None` for the steps
    /// without a start (`day=unknown`).
    pub fn day_start(&self, day: usize) -> Option<i64> {
        let (f, _) = self.days.get(day)?.first()?;
        let name = f.path.rsplit_once('/')?.0.rsplit_once("day=")?.1;
        let date = chrono::NaiveDate::parse_from_str(name, "%Y-%m-%d").ok()?;
        Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp())
    }

    /// The steps of day `day`, without the columns in `omit`.
    pub fn steps(&self, day: usize, omit: Omit) -> Result<DataFrame> {
        let files = self.days[day].iter().map(|(f, p)| (f, p.as_path()));
        read_files(&crate::dataset::STEPS, files, omit)
    }

    /// Hands `each` the steps of every day in order, without the columns in `omit`, reading
    /// the next day while `each` takes the one before (on the threads there are).
    pub fn each_day(
        &self,
        omit: Omit,
        mut each: impl FnMut(DataFrame) -> Result<()> + Send,
    ) -> Result<()> {
        let mut next = (!self.is_empty()).then(|| self.steps(0, omit));
        for day in 0..self.len() {
            // A pass over a year takes a minute: Ctrl-C ends it at the next day.
            crate::interrupt::check()?;
            let Some(today) = next.take() else { break };
            let today = today?;
            let (ahead, done) = rayon::join(
                || (day + 1 < self.len()).then(|| self.steps(day + 1, omit)),
                || each(today),
            );
            done?;
            next = ahead;
        }
        Ok(())
    }

    /// Hands the builds to `each` a file at a time, without the columns in `omit`.
    pub fn builds(&self, omit: Omit, each: impl FnMut(DataFrame) -> Result<()>) -> Result<()> {
        self.files_of(&crate::dataset::BUILDS, omit, each)
    }

    /// The machines file the snapshot keeps, if any.
    pub fn machines(&self) -> Result<Option<BundledMachines>> {
        let (dir, manifest) = self.side();
        bundled_machines(dir, manifest)
    }

    /// The runner's series the snapshot keeps, if any.
    pub fn runner_series(&self) -> Result<Option<crate::status::timeline::Timeline>> {
        let (dir, manifest) = self.side();
        manifest
            .runner_series
            .as_ref()
            .map(|e| read_series(dir, e))
            .transpose()
    }

    /// Whether the snapshot keeps the steps' derivations (`store/`).
    pub fn has_drv_store(&self) -> bool {
        self.side().1.drv_store.is_some()
    }

    /// The snapshot's `store/` directory, if it keeps one, with how the graph read from it is
    /// named (as a whole read names it).
    pub fn drv_store(&self) -> Result<Option<(PathBuf, String)>> {
        let (dir, manifest) = self.side();
        store_of(dir, manifest)
            .map(|(p, source)| Ok((p?, source)))
            .transpose()
    }

    /// Whether the snapshot holds the sample's ground truth.
    pub fn has_truth(&self) -> bool {
        self.manifest
            .tables
            .contains_key(crate::dataset::TRUTH_STEPS.name)
    }

    /// Hands the truth's steps to `each` a file at a time, without the columns in `omit`
    /// (nothing where the snapshot has no truth).
    pub fn truth_steps(&self, omit: Omit, each: impl FnMut(DataFrame) -> Result<()>) -> Result<()> {
        match self.has_truth() {
            true => self.files_of(&crate::dataset::TRUTH_STEPS, omit, each),
            false => Ok(()),
        }
    }

    /// Hands the truth's dependencies to `each` a file at a time, without the columns in
    /// `omit` (nothing where the snapshot has no truth).
    pub fn truth_deps(&self, omit: Omit, each: impl FnMut(DataFrame) -> Result<()>) -> Result<()> {
        match self.has_truth() {
            true => self.files_of(&crate::dataset::TRUTH_DEPS, omit, each),
            false => Ok(()),
        }
    }

    /// Hands the files of table `def` (one the manifest lists) to `each` one at a time.
    fn files_of(
        &self,
        def: &'static TableDef,
        omit: Omit,
        mut each: impl FnMut(DataFrame) -> Result<()>,
    ) -> Result<()> {
        // Days::open found the steps and builds listed; an optional table may be absent.
        match self.manifest.tables.get(def.name) {
            Some(entry) => each_file_of(&self.dir, def, entry, omit, &mut each),
            None => Ok(()),
        }
    }

    /// Every build's id and queue time, by id (16 bytes a build).
    pub fn queue_times(&self) -> Result<Vec<(i32, i64)>> {
        let rows = self.manifest.tables[crate::dataset::BUILDS.name].rows;
        let mut out = Vec::with_capacity(rows as usize);
        self.builds(all_but_queue_times(), |df| {
            crate::analysis::quality::add_queue_times(&df, &mut out)
        })?;
        out.sort_unstable_by_key(|b| b.0);
        Ok(out)
    }

    /// The span the rows cover, as [`Dataset::extent`] gives it, read a file at a time.
    pub fn extent(&self) -> Result<(Option<i64>, Option<i64>)> {
        if let Some(known) = self.extent {
            return Ok(known);
        }
        let mut e = crate::dataset::Extent::new(None);
        for (f, path) in self.days.iter().flatten() {
            let df = read_file(&crate::dataset::STEPS, f, path, all_but_times())?;
            e.add_steps(&df).map_err(|e| Error::snapshot(path, e))?;
        }
        self.builds(all_but_queue_times(), |df| {
            e.add_builds(&df).map_err(|e| Error::frame("builds", e))
        })?;
        Ok(e.span())
    }
}

fn read_table(
    dir: &Path,
    def: &'static TableDef,
    entry: &TableEntry,
    omit: Omit,
) -> Result<DataFrame> {
    let listed = listed_files(dir, def, entry)?;
    let files = entry.files.iter().zip(listed.iter().map(PathBuf::as_path));
    let df = read_files(def, files, omit)?;
    rows_as_listed(dir, def, entry, df.height())?;
    Ok(df)
}

/// The files of table `def`, each read as [`read_file`] reads it, stacked in the order given
/// (the table's empty frame for none).
fn read_files<'a>(
    def: &'static TableDef,
    files: impl Iterator<Item = (&'a FileEntry, &'a Path)>,
    omit: Omit,
) -> Result<DataFrame> {
    let mut out: Option<DataFrame> = None;
    for (f, path) in files {
        let df = read_file(def, f, path, omit)?;
        match &mut out {
            None => out = Some(df),
            Some(acc) => {
                acc.vstack_mut_owned(df)
                    .map_err(|e| Error::snapshot(path, e))?;
            }
        }
    }
    Ok(out.unwrap_or_else(|| def.empty()))
}

/// The paths of a table's files, in the manifest's order, once each is known to stay inside
/// the snapshot and no other Parquet file is under the table's directory.
fn listed_files(dir: &Path, def: &'static TableDef, entry: &TableEntry) -> Result<Vec<PathBuf>> {
    // The paths were checked to stay inside the snapshot when the manifest was parsed; here,
    // that no link on the way leads out of it.
    let listed: Vec<PathBuf> = entry
        .files
        .iter()
        .map(|f| no_links(dir, &f.path))
        .collect::<Result<_>>()?;
    // Every Parquet file under the table's directory must be listed: a stray file means the
    // directory and the manifest disagree about what the table holds.
    let mut found = Vec::new();
    collect_parquet(&no_links(dir, def.name)?, 0, &mut found)?;
    if let Some(stray) = found.iter().find(|p| !listed.contains(p)) {
        return Err(Error::snapshot(stray, "is not listed in manifest.json"));
    }
    Ok(listed)
}

/// Fails unless the `rows` read of a table are as many as the manifest lists.
fn rows_as_listed(dir: &Path, def: &TableDef, entry: &TableEntry, rows: usize) -> Result<()> {
    if rows as u64 != entry.rows {
        return Err(Error::snapshot(
            dir.join(MANIFEST),
            format!(
                "table `{}` has {} rows in its files but {} in the manifest",
                def.name, rows, entry.rows
            ),
        ));
    }
    Ok(())
}

/// Checks a Parquet footer against the file it came from before polars reads by it: polars'
/// reader trusts the offsets and sizes of the column chunks (a size of 2^40 in a 2.5 KB file
/// ended in a slice out of range, a panic) and sizes buffers by the counts. Every chunk must lie
/// between the leading magic and the footer, no count may be negative, and a flat column holds
/// no more values than its row group has rows; the rows must be those the manifest lists, which
/// also bounds what the counts can make polars reserve. Returns what is wrong.
fn check_footer(
    footer: &polars::io::parquet::read::FileMetadata,
    file_len: u64,
    rows: u64,
) -> std::result::Result<(), String> {
    // A Parquet file opens with the 4-byte magic and closes with the footer's length and the
    // magic again (8 bytes); the footer itself lies before those, so this is a loose bound.
    const MAGIC: u64 = 4;
    let data_end = file_len.saturating_sub(2 * MAGIC);
    if footer.num_rows as u64 != rows {
        return Err(format!(
            "says {} rows, manifest.json says {rows}",
            footer.num_rows
        ));
    }
    let mut total = 0u64;
    for (g, rg) in footer.row_groups.iter().enumerate() {
        total = total.saturating_add(rg.num_rows() as u64);
        for c in rg.parquet_columns() {
            let name = &c.descriptor().path_in_schema.join(".");
            let start = c.dictionary_page_offset().unwrap_or(c.data_page_offset());
            let size = c.compressed_size();
            let end = start.checked_add(size);
            let inside = |x: i64| (MAGIC as i64..=data_end as i64).contains(&x);
            if !inside(start)
                || size < 0
                || !end.is_some_and(inside)
                || !(start..end.unwrap_or(start)).contains(&c.data_page_offset())
            {
                return Err(format!(
                    "puts column `{name}` of row group {g} at bytes {start} to {} of a file of \
                     {file_len} bytes",
                    start as i128 + size as i128
                ));
            }
            let values = c.num_values();
            let flat = c.descriptor().descriptor.max_rep_level == 0;
            if values < 0
                || c.uncompressed_size() < 0
                || (flat && values as u64 > rg.num_rows() as u64)
            {
                return Err(format!(
                    "says column `{name}` of row group {g} holds {values} values in {} rows",
                    rg.num_rows()
                ));
            }
        }
    }
    if total != rows {
        return Err(format!(
            "has row groups of {total} rows in all, manifest.json says {rows}"
        ));
    }
    Ok(())
}

/// How many [`contain`] calls are running; while any is, the panic hook keeps quiet and keeps
/// the message for the error instead.
static CONTAINING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static CONTAINED_MESSAGE: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Runs `f`, a read by polars of the Parquet file `path`, turning a panic inside it into the
/// same one-line error as any other corrupt file. The checks of [`check_footer`] stop the
/// corruptions known to panic polars' reader; this catches those nobody has found yet. A panic
/// in polars' own threads reaches here too: rayon carries it back to the caller.
fn contain<T>(path: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    use std::sync::atomic::Ordering::SeqCst;
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CONTAINING.load(SeqCst) == 0 {
                return previous(info);
            }
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            let mut kept = CONTAINED_MESSAGE.lock().unwrap_or_else(|e| e.into_inner());
            kept.get_or_insert(msg);
        }));
    });
    CONTAINING.fetch_add(1, SeqCst);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    CONTAINING.fetch_sub(1, SeqCst);
    r.unwrap_or_else(|_| {
        let msg = CONTAINED_MESSAGE
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_else(|| "a panic".into());
        Err(Error::snapshot(
            path,
            format!(
                "corrupt Parquet: the reader failed on it ({})",
                msg.replace('\n', " ")
            ),
        ))
    })
}

/// The Parquet files under `dir`, `depth` levels below a table's directory; a symbolic link
/// is refused, not followed, and the walk stops at [`MAX_TABLE_DEPTH`].
fn collect_parquet(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries {
        let e = e.map_err(|err| Error::io(dir, err))?;
        let p = e.path();
        // The entry's own type: a link is not followed to what it names.
        let kind = e.file_type().map_err(|err| Error::io(&p, err))?;
        if kind.is_symlink() {
            return Err(link_refused(&p));
        } else if kind.is_dir() {
            if depth + 1 > MAX_TABLE_DEPTH {
                return Err(Error::snapshot(
                    &p,
                    format!(
                        "is nested more than {MAX_TABLE_DEPTH} directories deep in its table; \
                         not a snapshot's layout"
                    ),
                ));
            }
            collect_parquet(&p, depth + 1, out)?;
        } else if p.extension().is_some_and(|x| x == "parquet") {
            out.push(p);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_in_a_read_becomes_one_error_naming_the_file() {
        let e = contain(Path::new("x/part-0.parquet"), || -> Result<()> {
            panic!("range end index 1099511627780 out of range\nfor slice")
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("snapshot x/part-0.parquet: corrupt Parquet")
                && e.contains("1099511627780"),
            "{e}"
        );
        assert_eq!(e.lines().count(), 1, "{e}");
        // Outside `contain`, and after it, a read goes on as before.
        assert_eq!(contain(Path::new("y"), || Ok(7)).unwrap(), 7);
    }
}
