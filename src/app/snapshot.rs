//! `snapshot`: the history in the window saved as an offline snapshot.

use std::path::PathBuf;

use super::Context;
use super::render::{Printer, Render};
use crate::error::{Error, Result};
use crate::source::SourceSpec;
use crate::source::public;
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
    /// Write a snapshot safe to publish (`--public`, [`crate::source::public`]).
    pub public: bool,
    /// With `public`: the file whose bytes key the machines' pseudonyms
    /// (`--pseudonymize-machines`).
    pub pseudonym_key: Option<PathBuf>,
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
    if opts.public {
        return run_public(ctx, opts);
    }
    if opts.pseudonym_key.is_some() {
        return Err(Error::Usage(
            "--pseudonymize-machines is for public snapshots: give --public too".into(),
        ));
    }
    if let SourceSpec::Postgres(conn) = &ctx.source
        && opts.drv_store.is_none()
    {
        return run_streamed(ctx, opts, conn);
    }
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

/// `snapshot --db`: the window read a chunk at a time and written as it comes
/// ([`crate::source::read_into`]), so that memory holds a chunk and the rows waiting to be
/// written, not the window.
fn run_streamed(ctx: &Context<'_>, opts: &SnapshotOptions, conn: &str) -> Result<Manifest> {
    let mut out = snapshot::Writer::new(&opts.out, opts.force)?;
    let crate::source::ReadInto {
        meta,
        whole: extent,
        ..
    } = crate::source::read_into(conn, &ctx.read_options(&[]), &mut out, false)?;
    if let Some(given) = &opts.series {
        let window = crate::analysis::span_of(meta.window, || Ok(extent.span()))?;
        out.series(&ctx.series_over(window, given, None)?)?;
    }
    ctx.note(&format!(
        "read {} steps and {} builds from {} ({}; runner {}: {})",
        out.rows(&crate::dataset::STEPS),
        out.rows(&crate::dataset::BUILDS),
        meta.origin.describe(),
        meta.window.describe(),
        meta.runner,
        meta.runner_basis
    ));
    let manifest = out.finish(&meta, None)?;
    ctx.note(&format!("wrote snapshot {}", opts.out.display()));
    Ok(manifest)
}

/// `snapshot --public`: reads the history with the hidden flags, makes it publishable and
/// writes it with the manifest's `public` section.
fn run_public(ctx: &Context<'_>, opts: &SnapshotOptions) -> Result<Manifest> {
    if opts.drv_store.is_some() {
        return Err(Error::Usage(
            "--drv-store: a public snapshot holds no .drv store (derivations' environments can \
             hold anything); leave it out"
                .into(),
        ));
    }
    let key = opts
        .pseudonym_key
        .as_deref()
        .map(public::PseudonymKey::read)
        .transpose()?;
    // What was hidden is known from a database (its flags) and the sample (nothing); a
    // snapshot says it only if it was public itself, and then it holds nothing hidden.
    let earlier = match &ctx.source {
        SourceSpec::Snapshot(dir) => {
            let m = snapshot::read_manifest(dir)?;
            Some(m.public.ok_or_else(|| {
                Error::refused(
                    format!("--public from snapshot {}", dir.display()),
                    "it was not written with --public, so it cannot say which projects and \
                     jobsets were hidden; write the public snapshot from --db",
                )
            })?)
        }
        _ => None,
    };
    let (mut ds, hidden) =
        crate::source::load_with_hidden(&ctx.source, &ctx.read_options(&[]), true)?;
    if matches!(ctx.source, SourceSpec::Postgres(_)) && hidden.is_none() {
        return Err(Error::Internal(
            "the database was read without its hidden flags".into(),
        ));
    }
    ctx.runner_series(&mut ds, opts.series.as_ref())?;
    let (before_steps, before_builds) = (ds.steps.height(), ds.builds.height());
    let (ds, section) = public::publish(
        ds,
        hidden.as_ref(),
        key.as_ref(),
        earlier.unwrap_or_default(),
    )?;
    ctx.note(&format!(
        "public: kept {} of {before_steps} steps and {} of {before_builds} builds; left out {} \
         hidden project(s) and {} hidden jobset(s); machines {}",
        ds.steps.height(),
        ds.builds.height(),
        section.hidden_projects,
        section.hidden_jobsets,
        if section.machines_pseudonymized {
            "pseudonymized"
        } else {
            "without users"
        }
    ));
    let manifest = snapshot::write_with(&ds, &opts.out, opts.force, Some(section))?;
    ctx.note(&format!("wrote public snapshot {}", opts.out.display()));
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
