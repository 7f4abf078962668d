//! `compress`: codecs measured on NARs (given, from binary caches, from the dataset's own
//! outputs, or a small default corpus), and optionally projected onto the farm's output volume.

use std::path::PathBuf;
use std::time::Duration;

use super::render::{Printer, Render};
use super::{Context, inputs};
use crate::compress::project::{Costs, Projection, Volume};
use crate::compress::{self, httpcache, spool};
use crate::error::{Error, Result};

/// What `compress` is asked.
#[derive(Debug, Clone)]
pub struct CompressOptions {
    /// NARs to measure: directories or store paths, NAR files (plain or compressed), binary
    /// caches. Empty: the default corpus of local files.
    pub inputs: Vec<String>,
    /// A file of store paths (or hashes) to take from the binary caches of `inputs`; `-` is
    /// stdin.
    pub paths: Option<PathBuf>,
    /// The codecs, as [`compress::parse_list`] reads them (`default`, `full`, or a list).
    pub codecs: String,
    /// From each binary cache, this many NARs spread over their sizes.
    pub sample: Option<usize>,
    /// Print a row per NAR and codec rather than per codec (JSON always has them).
    pub per_nar: bool,
    /// Cap of the default corpus, MiB.
    pub corpus_mib: u64,
    /// Measure this many of the dataset's output paths, across the range of their sizes.
    pub from_outputs: Option<usize>,
    /// With `from_outputs`: binary caches to find them in, tried in order.
    pub caches: Vec<String>,
    /// Where NARs from HTTP caches are kept and resumed; `None` for the XDG cache directory.
    pub download_dir: Option<PathBuf>,
    /// NARs larger than this are skipped (HTTP caches) or refused (decompressing), MiB.
    pub max_nar_mib: u64,
    /// NARs up to this size are held in memory while measured; larger ones wait in a file, MiB.
    pub in_memory_mib: u64,
    /// Where a NAR larger than `in_memory_mib` waits; `None` for `$TMPDIR`, else /var/tmp.
    pub spill_dir: Option<PathBuf>,
    /// Bound on each request to an HTTP cache.
    pub timeout: Duration,
    /// Project each codec onto the farm's output volume.
    pub project: bool,
    /// With `project`: a cost file.
    pub costs: Option<PathBuf>,
}

impl Default for CompressOptions {
    fn default() -> Self {
        CompressOptions {
            inputs: Vec::new(),
            paths: None,
            codecs: "default".into(),
            sample: None,
            per_nar: false,
            corpus_mib: DEFAULT_CORPUS_MIB,
            from_outputs: None,
            caches: Vec::new(),
            download_dir: None,
            max_nar_mib: httpcache::DEFAULT_MAX_NAR_MIB,
            in_memory_mib: spool::IN_MEMORY_MAX >> 20,
            spill_dir: None,
            timeout: crate::nix::binary_cache::DEFAULT_TIMEOUT,
            project: false,
            costs: None,
        }
    }
}

/// The default corpus's cap, MiB (`compress::DEFAULT_CORPUS_CAP`).
pub const DEFAULT_CORPUS_MIB: u64 = compress::DEFAULT_CORPUS_CAP >> 20;

/// What `compress` measured.
#[derive(Debug, Clone)]
pub enum Compressed {
    /// The measurement; `per_nar`: printed a row per NAR and codec.
    Measured {
        report: compress::CodecReport,
        per_nar: bool,
    },
    /// The measurement projected onto the farm's output volume at `costs`.
    Projected {
        volume: Volume,
        costs: Costs,
        projections: Vec<Projection>,
        report: compress::CodecReport,
    },
}

/// Measures, and projects when asked. Ctrl-C stops between downloaded chunks and between
/// measurements; a partial download is kept as its `.part` file for the next run to resume.
pub fn run(ctx: &Context<'_>, opts: &CompressOptions) -> Result<Compressed> {
    crate::interrupt::install()?;
    let mib = |n: u64| n.saturating_mul(1 << 20);
    let mut measure = compress::Options {
        inputs: opts.inputs.clone(),
        codecs: compress::parse_list(&opts.codecs)?,
        sample: opts.sample,
        paths: opts
            .paths
            .as_deref()
            .map(httpcache::read_paths)
            .transpose()?,
        http: compress::HttpOptions {
            download_dir: opts.download_dir.clone(),
            max_nar_bytes: mib(opts.max_nar_mib),
            timeout: opts.timeout,
            progress: ctx.progress,
        },
        corpus_cap: mib(opts.corpus_mib),
        spill: compress::Spill {
            in_memory_max: mib(opts.in_memory_mib),
            dir: opts
                .spill_dir
                .clone()
                .unwrap_or_else(crate::output::scratch_dir),
            max_nar: mib(opts.max_nar_mib),
        },
        ..compress::Options::default()
    };
    // Read the dataset first: a bad source should fail before minutes of compressing.
    let ds = if opts.project || opts.from_outputs.is_some() {
        ctx.note_if_sample("using the built-in sample's builds");
        Some(ctx.load(&[])?)
    } else {
        None
    };
    if let (Some(n), Some(ds)) = (opts.from_outputs, &ds) {
        let picks = compress::outputs::pick(ds, n)?;
        let located = compress::outputs::locate(&picks, &opts.caches, &measure.http, ctx.note)?;
        if located.found.is_empty() {
            return Err(Error::NoData(format!(
                "none of the {} output paths picked from {} is in the local store or a --cache \
                 (the first: {})",
                picks.len(),
                ds.meta.origin.describe(),
                located
                    .missing
                    .first()
                    .or(located.too_large.first())
                    .map(String::as_str)
                    .unwrap_or("none")
            )));
        }
        let too_large = if located.too_large.is_empty() {
            String::new()
        } else {
            format!(
                ", {} larger than --max-nar-mib {}",
                located.too_large.len(),
                opts.max_nar_mib
            )
        };
        ctx.note(&format!(
            "--from-outputs: measuring {} of {} picked output paths ({} not found locally or in a \
             cache{too_large})",
            located.found.len(),
            picks.len(),
            located.missing.len()
        ));
        measure.extra = located.found;
    }
    let projection = match (opts.project, &ds) {
        (true, Some(ds)) => {
            let costs = inputs::costs(opts.costs.as_deref())?;
            Some((compress::project::volume(ds)?, costs))
        }
        _ => None,
    };
    let report = compress::run(&measure, ctx.note)?;
    let Some((volume, costs)) = projection else {
        return Ok(Compressed::Measured {
            report,
            per_nar: opts.per_nar,
        });
    };
    let projections = compress::project::project(&volume, &report.codecs, &costs);
    ctx.note(&format!(
        "output volume: {:.1} GB/day over {:.1} days ({} builds), busiest hour {:.2} GB at {} — {}",
        volume.bytes_per_day / 1e9,
        volume.days,
        volume.builds,
        volume.peak_hour_bytes / 1e9,
        crate::window::fmt_time(volume.peak_hour),
        compress::project::VOLUME_BASIS
    ));
    Ok(Compressed::Projected {
        volume,
        costs,
        projections,
        report,
    })
}

fn num(x: f64, prec: usize) -> String {
    format!("{x:.prec$}")
}

/// Encoder memory in MiB, `-` where it was not measured.
fn mem(m: Option<u64>) -> String {
    m.map_or_else(|| "-".into(), |b| (b >> 20).to_string())
}

impl Render for Compressed {
    fn render(&self, p: &mut Printer<'_>) -> Result<()> {
        match self {
            Compressed::Projected {
                volume,
                costs,
                projections,
                report,
            } => {
                let cur = &costs.currency;
                let rows: Vec<Vec<String>> = projections
                    .iter()
                    .map(|p| {
                        vec![
                            p.codec.clone(),
                            format!("{:.2}", p.compress_core_hours_per_day),
                            format!("{:.2}", p.peak_hour_cores),
                            format!("{:.3}", p.stored_tib_per_month),
                            format!("{:.0}", p.client_decompress_core_hours_per_month),
                            format!("{:.2} {cur}", p.farm_cost_per_month),
                            format!("{:.2} {cur}", p.client_cost_per_month),
                        ]
                    })
                    .collect();
                // Built as a JSON value, as it always was: the keys print in sorted order.
                let json = serde_json::json!({
                    "volume": volume,
                    "costs": costs,
                    "projections": projections,
                    "measurements": report,
                });
                p.rows(
                    &[
                        "codec",
                        "compress core-h/day",
                        "peak-hour cores",
                        "stored TiB/month",
                        "client decompress core-h/month",
                        "farm cost/month (estimate)",
                        "client cost/month (estimate)",
                    ],
                    &rows,
                    &json,
                )
            }
            Compressed::Measured {
                report,
                per_nar: false,
            } => {
                let rows: Vec<Vec<String>> = report
                    .codecs
                    .iter()
                    .map(|c| {
                        vec![
                            c.codec.clone(),
                            c.nars.to_string(),
                            num(c.nar_bytes as f64 / 1e6, 1),
                            num(c.ratio_pct, 2),
                            num(c.compress_cpu_s, 2),
                            num(c.compress_mb_s_core, 1),
                            num(c.compress_mb_s, 1),
                            num(c.decompress_mb_s, 0),
                            mem(c.encoder_memory_bytes),
                            if c.pareto { "*".into() } else { String::new() },
                            c.outliers.to_string(),
                        ]
                    })
                    .collect();
                p.rows(
                    &[
                        "codec",
                        "nars",
                        "MB",
                        "ratio %",
                        "comp CPU s",
                        "comp MB/s/core",
                        "comp MB/s wall",
                        "decomp MB/s",
                        "enc MiB",
                        "pareto",
                        "outliers",
                    ],
                    &rows,
                    report,
                )
            }
            Compressed::Measured {
                report,
                per_nar: true,
            } => {
                let rows: Vec<Vec<String>> = report
                    .measurements
                    .iter()
                    .map(|m| {
                        vec![
                            m.nar.clone(),
                            m.codec.clone(),
                            "1".into(),
                            num(m.nar_bytes as f64 / 1e6, 1),
                            num(m.ratio_pct, 2),
                            num(m.compress_cpu_s, 2),
                            num(m.compress_mb_s_core, 1),
                            num(m.compress_mb_s, 1),
                            num(m.decompress_mb_s, 0),
                            mem(m.encoder_memory_bytes),
                            m.outlier.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                p.rows(
                    &[
                        "nar",
                        "codec",
                        "nars",
                        "MB",
                        "ratio %",
                        "comp CPU s",
                        "comp MB/s/core",
                        "comp MB/s wall",
                        "decomp MB/s",
                        "enc MiB",
                        "outlier",
                    ],
                    &rows,
                    report,
                )
            }
        }
    }
}
