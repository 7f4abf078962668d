//! `sample`: the built-in sample workload, written as a snapshot or loaded into an empty
//! database (the only command that writes to a database).

use std::path::PathBuf;

use super::render::{Printer, Render};
use super::{Context, inputs};
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
    let ds = match opts.target {
        SampleTarget::Snapshot {
            drv_store: true, ..
        } => sample::generate(&opts.spec)?,
        _ => sample::generate_without_drv_graph(&opts.spec)?,
    };
    if let Some(s) = &opts.series {
        write_series(ctx, &ds, s)?;
    }
    match &opts.target {
        SampleTarget::Snapshot { out, force, .. } => {
            let manifest = snapshot::write(&ds, out, *force)?;
            ctx.note(&format!(
                "wrote the {} sample (seed {}, scale {}) to {}",
                opts.spec.preset,
                opts.spec.seed,
                opts.spec.scale,
                out.display()
            ));
            Ok(Sampled::Snapshot(Box::new(manifest)))
        }
        SampleTarget::Database { conninfo, schema } => {
            let params = inputs::conninfo(conninfo)?;
            let summary = inputs::runtime()?
                .block_on(crate::source::into::load_into(&params, &ds, *schema))?;
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
            ctx.note(&format!(
                "loaded the sample into {}: {how}",
                params.redacted()
            ));
            Ok(Sampled::Loaded(summary))
        }
    }
}

/// Writes the sample's runner's series as `s` asks, whole or not at all.
fn write_series(ctx: &Context<'_>, ds: &crate::dataset::Dataset, s: &SeriesOut) -> Result<()> {
    let Some(tl) = &ds.timeline else {
        return Err(crate::error::Error::NoData(
            "this sample has no runner's series to write".into(),
        ));
    };
    let text = crate::status::series::to_watch_lines(tl, s.names, "the built-in sample's runner")?;
    crate::output::write_file_atomic(&s.file, text.as_bytes())?;
    ctx.note(&format!(
        "wrote the sample's runner's series ({} samples every {} s, {} names) to {}",
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
