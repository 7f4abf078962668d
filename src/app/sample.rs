//! `sample`: the built-in sample workload, written as a snapshot or loaded into an empty
//! database (the only command that writes to a database).

use std::path::PathBuf;

use super::render::{Printer, Render};
use super::{Context, inputs};
use crate::dataset::{Dataset, JOBSETS};
use crate::error::Result;
use crate::sample::{self, SampleSpec};
use crate::source::into::{Ddl, LoadSummary};
use crate::source::snapshot::{self, Manifest};

/// Where the sample goes.
#[derive(Debug, Clone)]
pub enum SampleTarget {
    /// A snapshot directory; `force` replaces one that exists, only once the new one is
    /// complete; `drv_store`: with the derivations' `.drv` files.
    Snapshot {
        out: PathBuf,
        force: bool,
        drv_store: bool,
    },
    /// An empty database (a libpq connection string), given Hydra's schema `schema` when it
    /// has no Hydra tables.
    Database { conninfo: String, schema: Ddl },
}

/// What `sample` is asked.
#[derive(Debug, Clone)]
pub struct SampleOptions {
    pub spec: SampleSpec,
    /// Consecutive weeks ending with the preset's (1: the preset's week alone).
    pub weeks: u32,
    pub target: SampleTarget,
    /// Also write the series the sample's runner would have exported, as a `status --watch`
    /// file of `/metrics` scrapes under these names.
    pub series: Option<SeriesOut>,
}

/// Where the sample's series goes, and under whose metric names.
#[derive(Debug, Clone)]
pub struct SeriesOut {
    pub file: PathBuf,
    pub names: crate::status::exporters::Exporter,
    /// Replace an existing file.
    pub force: bool,
}

/// What `sample` did.
#[derive(Debug, Clone)]
pub enum Sampled {
    /// The snapshot written.
    Snapshot(Box<Manifest>),
    /// Rows loaded per table.
    Loaded(LoadSummary),
}

/// Generates the sample and writes or loads it.
pub fn run(ctx: &Context<'_>, opts: &SampleOptions) -> Result<Sampled> {
    if let SampleTarget::Snapshot { .. } = opts.target {
        // Only the snapshot is staged and safe to stop; loading into a database is one
        // transaction, which a killed client aborts on the server.
        crate::interrupt::install()?;
    }
    if let Some(s) = &opts.series
        && !s.force
        && s.file.exists()
    {
        return Err(crate::error::Error::Usage(format!(
            "{} exists; give --force to replace it",
            s.file.display()
        )));
    }
    // Only a snapshot with its `.drv` files takes the derivation graph.
    let with_graph = matches!(
        opts.target,
        SampleTarget::Snapshot {
            drv_store: true,
            ..
        }
    );
    let bar = (opts.weeks > 1).then(|| ctx.progress.items("weeks", u64::from(opts.weeks)));
    let mut made = 0u32;
    // Counts each week as it comes and says whether it is the first, the preset's week, which
    // alone has the series (written here when asked) and the `.drv` files.
    let mut arrived = |ds: &Dataset| -> Result<bool> {
        if let Some(b) = &bar {
            b.inc(1);
        }
        made += 1;
        if made == 1
            && let Some(s) = &opts.series
        {
            write_series(ctx, ds, s, opts.weeks)?;
        }
        Ok(made == 1)
    };
    let what = match opts.weeks {
        1 => format!(
            "the {} sample (seed {}, scale {})",
            opts.spec.preset, opts.spec.seed, opts.spec.scale
        ),
        n => format!(
            "the {} sample (seed {}, scale {}, {n} weeks)",
            opts.spec.preset, opts.spec.seed, opts.spec.scale
        ),
    };
    match &opts.target {
        SampleTarget::Snapshot { out, force, .. } => {
            // Each week is written as it is made (a day's rows are one week's), so a long
            // sample is never held whole.
            let mut w = snapshot::Writer::new(out, *force)?;
            let meta = sample::generate_weeks(&opts.spec, opts.weeks, with_graph, |ds| {
                let first = arrived(&ds)?;
                for (def, df) in ds.tables() {
                    // Every week has the same jobsets.
                    if def.name != JOBSETS.name || first {
                        w.write_whole(def, df)?;
                    }
                }
                if first && let Some(bundled) = &ds.machines {
                    w.machines(&bundled.text)?;
                }
                w.drv_store(&ds)?;
                if let Some(tl) = &ds.timeline {
                    w.series(tl)?;
                }
                Ok(())
            })?;
            if let Some(b) = &bar {
                b.finish_and_clear();
            }
            let manifest = w.finish(&meta, None)?;
            ctx.note(&format!("wrote {what} to {}", out.display()));
            Ok(Sampled::Snapshot(Box::new(manifest)))
        }
        SampleTarget::Database { conninfo, schema } => {
            let params = inputs::conninfo(conninfo)?;
            // A load is one transaction; each week is written into it as it is made, so a long
            // history is never held whole (a year at scale 6.5: docs/scale.md).
            let rt = inputs::runtime()?;
            let mut load = rt.block_on(crate::source::into::Load::begin(&params, *schema))?;
            let meta = sample::generate_weeks(&opts.spec, opts.weeks, false, |ds| {
                arrived(&ds)?;
                rt.block_on(load.add(&ds))
            })?;
            if let Some(b) = &bar {
                b.finish_and_clear();
            }
            let summary = rt.block_on(load.finish(meta.runner))?;
            let how = match (summary.created, summary.schema_version) {
                (true, v) => format!(
                    "created Hydra's tables (schema {})",
                    v.map_or("?".into(), |v| v.to_string())
                ),
                (false, Some(v)) => format!("filled the new Hydra's empty tables (schema {v})"),
                (false, None) => "filled the new Hydra's empty tables; their SchemaVersion is \
                                  empty (hydra.sql without hydra-init), so readers cannot tell \
                                  the runner from it: give them --runner"
                    .to_string(),
            };
            ctx.note(&format!("loaded {what} into {}: {how}", params.redacted()));
            Ok(Sampled::Loaded(summary))
        }
    }
}

/// Writes the sample's runner's series as `s` asks, whole or not at all: the preset's week's
/// (the last of `weeks`).
fn write_series(ctx: &Context<'_>, ds: &Dataset, s: &SeriesOut, weeks: u32) -> Result<()> {
    let Some(tl) = &ds.timeline else {
        return Err(crate::error::Error::NoData(
            "this sample has no runner's series to write".into(),
        ));
    };
    let text = crate::status::series::to_watch_lines(tl, s.names, "the built-in sample's runner")?;
    crate::output::write_file_atomic(&s.file, text.as_bytes())?;
    let last = if weeks > 1 { ", its last week" } else { "" };
    ctx.note(&format!(
        "wrote the sample's runner's series{last} ({} samples every {} s, {} names) to {}",
        tl.times.len(),
        tl.step_s,
        s.names,
        s.file.display()
    ));
    Ok(())
}

impl Render for Sampled {
    fn render(&self, p: &mut Printer<'_>) -> Result<()> {
        match self {
            Sampled::Snapshot(manifest) => manifest.render(p),
            Sampled::Loaded(summary) => {
                let rows: Vec<Vec<String>> = summary
                    .tables
                    .iter()
                    .map(|(t, n)| vec![t.to_string(), n.to_string()])
                    .collect();
                let json: Vec<serde_json::Value> = summary
                    .tables
                    .iter()
                    .map(|(t, n)| serde_json::json!({"table": t, "rows": n}))
                    .collect();
                p.rows(&["table", "rows"], &rows, &json)
            }
        }
    }
}
