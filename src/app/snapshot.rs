//! `snapshot`: the history in the window saved as an offline snapshot.

use std::path::PathBuf;

use super::Context;
use super::render::{Printer, Render};
use crate::error::Result;
use crate::source::snapshot::{self, Manifest};

/// What `snapshot` is asked.
#[derive(Debug, Clone)]
pub struct SnapshotOptions {
    /// The directory to write; it must not exist or be empty, unless `force`.
    pub out: PathBuf,
    /// Replace an existing snapshot at `out`, only once the new one is complete.
    pub force: bool,
    /// A directory of `.drv` files (`--drv-store`): the graph is written into `store/`.
    pub drv_store: Option<PathBuf>,
    /// The runner's series to read (`--prometheus`, `--runner-series`) and write into the
    /// snapshot instead of the data's own.
    pub series: Option<super::SeriesSource>,
}

/// Reads the history and writes it as a snapshot; Ctrl-C leaves nothing half-written.
pub fn run(ctx: &Context<'_>, opts: &SnapshotOptions) -> Result<Manifest> {
    crate::interrupt::install()?;
    if let Some(dir) = &opts.drv_store {
        crate::source::drvstore::check_dir(dir)?;
    }
    if let Some(s) = &opts.series {
        s.check()?;
    }
    ctx.note_if_sample("snapshotting the built-in sample workload");
    let mut ds = ctx.load(&[])?;
    ctx.drv_graph(&mut ds, opts.drv_store.as_deref())?;
    ctx.runner_series(&mut ds, opts.series.as_ref())?;
    ctx.note(&format!(
        "read {} steps and {} builds from {} ({}; runner {}: {})",
        ds.steps.height(),
        ds.builds.height(),
        ds.meta.origin.describe(),
        ds.meta.window.describe(),
        ds.meta.runner,
        ds.meta.runner_basis
    ));
    let manifest = snapshot::write(&ds, &opts.out, opts.force)?;
    ctx.note(&format!("wrote snapshot {}", opts.out.display()));
    Ok(manifest)
}

/// A snapshot as written: a row per table (also what `sample --out` prints).
impl Render for Manifest {
    fn render(&self, p: &mut Printer<'_>) -> Result<()> {
        let mut rows: Vec<Vec<String>> = self
            .tables
            .iter()
            .map(|(name, t)| {
                vec![
                    name.clone(),
                    t.rows.to_string(),
                    t.files.len().to_string(),
                    t.files.iter().map(|f| f.bytes).sum::<u64>().to_string(),
                ]
            })
            .collect();
        // The derivations: one .drv file a derivation.
        if let Some(s) = &self.drv_store {
            let n = s.files.to_string();
            rows.push(vec![s.path.clone(), n.clone(), n, String::new()]);
        }
        // The runner's series: one file, a row a sample time.
        if let Some(s) = &self.runner_series {
            rows.push(vec![
                "runner_series".into(),
                s.file.rows.to_string(),
                "1".into(),
                s.file.bytes.to_string(),
            ]);
        }
        p.rows(&["table", "rows", "files", "bytes"], &rows, self)
    }
}
