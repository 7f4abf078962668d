//! Offline snapshots: a dataset saved as plain Parquet that DuckDB, Spark or Trino read as is.
//!
//! Layout of a snapshot directory:
//! ```text
//! manifest.json                          format version, origin, window, row counts, files
//! steps/day=2025-06-02/part-0.parquet    large tables: one file per UTC day (Hive-style)
//! steps/day=unknown/part-0.parquet       rows without a time
//! jobsets/part-0.parquet                 small tables: one file
//! machines                               the machines file, when the source had one
//! ```
//! Files are zstd-compressed Parquet. The manifest lists every file with its row count and byte
//! size; reading checks each against it, so a truncated, swapped or missing file is named.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::dataset::{
    CORE_TABLES, Dataset, DatasetMeta, Omit, Origin, TRUTH_TABLES, TableDef, Truth,
};
use crate::error::{Error, Result};
use crate::output::{StagedDir, write_file_atomic};
use crate::window::Window;

pub const FORMAT: &str = "hydra-bottleneck-snapshot";
/// Bumped whenever the layout or a table's columns change; readers refuse other versions.
pub const FORMAT_VERSION: u32 = 1;
const MANIFEST: &str = "manifest.json";
const MACHINES: &str = "machines";
const SECONDS_PER_DAY: i64 = 86_400;

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
    pub window: Window,
    /// Why `window` is narrower than the window the snapshot was asked for, if it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_note: Option<String>,
    pub tables: BTreeMap<String, TableEntry>,
    pub machines: Option<String>,
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
pub fn write(ds: &Dataset, dest: &Path, replace: bool) -> Result<Manifest> {
    crate::interrupt::check()?;
    let staged = StagedDir::new(dest, replace)?;
    let mut tables = BTreeMap::new();
    for (def, df) in ds.tables() {
        // On Ctrl-C (here, or between day files) `staged` is dropped and removes itself.
        let entry = write_table(staged.path(), def, df)?;
        tables.insert(def.name.to_string(), entry);
    }
    let machines = match &ds.machines {
        Some(text) => {
            let p = staged.path().join(MACHINES);
            std::fs::write(&p, text).map_err(|e| Error::io(&p, e))?;
            Some(MACHINES.to_string())
        }
        None => None,
    };
    let manifest = Manifest {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").into(),
        created_at: chrono::Utc::now().timestamp(),
        origin: ds.meta.origin.clone(),
        schema_version: ds.meta.schema_version,
        runner: ds.meta.runner,
        runner_basis: ds.meta.runner_basis.clone(),
        window: ds.meta.window,
        window_note: ds.meta.window_note.clone(),
        tables,
        machines,
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::frame("manifest", e))?;
    write_file_atomic(&staged.path().join(MANIFEST), &json)?;
    // The last point to stop: after the commit the snapshot is complete, and kept.
    crate::interrupt::check()?;
    staged.commit()?;
    Ok(manifest)
}

fn write_table(root: &Path, def: &TableDef, df: &DataFrame) -> Result<TableEntry> {
    let dir = root.join(def.name);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let mut files = Vec::new();
    match def.partition_by {
        Some(time_col) if df.height() > 0 => {
            let days = df
                .column(time_col)
                .and_then(|c| c.as_materialized_series().i64().cloned())
                .map_err(|e| Error::frame(def.name, e))?;
            // Group row indices by UTC day; `None` collects rows without a time.
            let mut groups: BTreeMap<Option<i64>, Vec<IdxSize>> = BTreeMap::new();
            for (i, t) in days.iter().enumerate() {
                groups
                    .entry(t.map(|t| t.div_euclid(SECONDS_PER_DAY)))
                    .or_default()
                    .push(i as IdxSize);
            }
            for (day, idx) in groups {
                let part = df
                    .take(&IdxCa::from_vec("idx".into(), idx))
                    .map_err(|e| Error::frame(def.name, e))?;
                let name = match day {
                    Some(d) => chrono::DateTime::from_timestamp(d * SECONDS_PER_DAY, 0)
                        .map(|t| t.format("day=%Y-%m-%d").to_string())
                        .unwrap_or_else(|| format!("day={d}")),
                    None => "day=unknown".into(),
                };
                files.push(write_part(
                    root,
                    &format!("{}/{name}/part-0.parquet", def.name),
                    part,
                )?);
            }
        }
        _ => files.push(write_part(
            root,
            &format!("{}/part-0.parquet", def.name),
            df.clone(),
        )?),
    }
    Ok(TableEntry {
        rows: df.height() as u64,
        files,
    })
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
    let text = std::fs::read(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::snapshot(
                &path,
                "missing: this directory is not a hydra-bottleneck snapshot",
            )
        } else {
            Error::io(&path, e)
        }
    })?;
    parse_manifest(&text, &path)
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
    if version != Some(u64::from(FORMAT_VERSION)) {
        return Err(Error::snapshot(
            path,
            format!(
                "format version {} is not supported (this tool reads version {FORMAT_VERSION})",
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
    let manifest = read_manifest(dir)?;
    let mut frames: BTreeMap<&str, DataFrame> = BTreeMap::new();
    for def in CORE_TABLES.into_iter().chain(TRUTH_TABLES) {
        match manifest.tables.get(def.name) {
            Some(entry) => {
                frames.insert(def.name, read_table(dir, def, entry, omit)?);
            }
            None if CORE_TABLES.iter().any(|t| t.name == def.name) => {
                return Err(Error::snapshot(
                    dir.join(MANIFEST),
                    format!("lists no table `{}`", def.name),
                ));
            }
            None => {}
        }
    }
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
    let machines = match &manifest.machines {
        Some(name) => {
            let p = dir.join(name);
            Some(std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?)
        }
        None => None,
    };
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
        (Some(deps), Some(steps)) => Some(Truth { deps, steps }),
        _ => None,
    };
    super::normalize(Dataset {
        meta: DatasetMeta {
            origin: Origin::Snapshot {
                dir: dir.display().to_string(),
                from: Box::new(manifest.origin.clone()),
            },
            schema_version: manifest.schema_version,
            runner: manifest.runner,
            runner_basis: manifest.runner_basis.clone(),
            window: manifest.window,
            window_note: manifest.window_note.clone(),
        },
        steps,
        builds,
        step_outputs,
        jobsets,
        evals,
        truth,
        machines,
    })
}

fn read_table(
    dir: &Path,
    def: &'static TableDef,
    entry: &TableEntry,
    omit: Omit,
) -> Result<DataFrame> {
    let kept: Vec<String> = def.kept(omit).into_iter().map(String::from).collect();
    // The paths were checked to stay inside the snapshot when the manifest was parsed.
    let listed: Vec<PathBuf> = entry.files.iter().map(|f| dir.join(&f.path)).collect();
    // Every Parquet file under the table's directory must be listed: a stray file means the
    // directory and the manifest disagree about what the table holds.
    let mut found = Vec::new();
    collect_parquet(&dir.join(def.name), &mut found)?;
    if let Some(stray) = found.iter().find(|p| !listed.contains(p)) {
        return Err(Error::snapshot(stray, "is not listed in manifest.json"));
    }
    let mut out: Option<DataFrame> = None;
    for (f, path) in entry.files.iter().zip(&listed) {
        let meta = std::fs::metadata(path)
            .map_err(|_| Error::snapshot(path, "listed in manifest.json but missing"))?;
        if meta.len() != f.bytes {
            return Err(Error::snapshot(
                path,
                format!("is {} bytes, manifest.json says {}", meta.len(), f.bytes),
            ));
        }
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let corrupt = |e: PolarsError| Error::snapshot(path, format!("corrupt Parquet: {e}"));
        let mut reader = ParquetReader::new(file);
        // The file's own schema is checked whole, whatever is left out of the reading.
        let schema = reader.schema().map_err(corrupt)?;
        let full = DataFrame::empty_with_schema(&Schema::from_arrow_schema(&schema));
        def.check(&full)
            .map_err(|e| Error::snapshot(path, format!("not a `{}` table: {e}", def.name)))?;
        let df = reader
            .with_columns(Some(kept.clone()))
            .finish()
            .map_err(corrupt)?;
        let df = def.blank(&df, omit).map_err(corrupt)?;
        if df.height() as u64 != f.rows {
            return Err(Error::snapshot(
                path,
                format!("holds {} rows, manifest.json says {}", df.height(), f.rows),
            ));
        }
        def.check(&df)
            .map_err(|e| Error::snapshot(path, format!("not a `{}` table: {e}", def.name)))?;
        match &mut out {
            None => out = Some(df),
            Some(acc) => {
                acc.vstack_mut_owned(df)
                    .map_err(|e| Error::snapshot(path, e))?;
            }
        }
    }
    let df = out.unwrap_or_else(|| def.empty());
    if df.height() as u64 != entry.rows {
        return Err(Error::snapshot(
            dir.join(MANIFEST),
            format!(
                "table `{}` has {} rows in its files but {} in the manifest",
                def.name,
                df.height(),
                entry.rows
            ),
        ));
    }
    Ok(df)
}

fn collect_parquet(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries {
        let e = e.map_err(|err| Error::io(dir, err))?;
        let p = e.path();
        if p.is_dir() {
            collect_parquet(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "parquet") {
            out.push(p);
        }
    }
    Ok(())
}
