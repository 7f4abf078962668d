//! `compress`: what each codec and level costs on *our* NARs — compressed size, compression CPU,
//! decompression speed — measured here, every result decompressed and verified.
//!
//! [`input`] finds and loads the NARs (trees packed by [`crate::nix::nar`], NAR files, binary
//! caches, or a default corpus of local files); [`httpcache`] chooses what to take from
//! http(s):// binary caches and keeps it in a download directory (the formats and the cache
//! protocol are [`crate::nix`]'s); [`outputs`] picks the farm's own build outputs; [`codecs`]
//! names and runs xz and zstd; [`measure`] times one codec on one NAR honestly (CPU time per
//! core), streaming, and summarises; [`project`] turns the figures into the farm's costs; [`spool`] keeps each NAR readable for every codec — in memory when small, in an
//! unnamed temporary file when large — so that memory does not grow with the NAR's size;
//! [`cpu`] reads the kernel's clocks. rayon spreads the work over NARs and codecs.

pub mod codecs;
pub mod cpu;
pub mod httpcache;
pub mod input;
pub mod measure;
pub mod outputs;
pub mod project;
pub mod spool;

use std::sync::RwLock;

use rayon::prelude::*;
use serde::Serialize;

pub use codecs::{CodecSpec, DEFAULT_GRID, parse_list};
pub use httpcache::HttpOptions;
pub use input::{LoadedNar, NarSource};
pub use measure::{CodecSummary, Measurement};
pub use spool::{NarBytes, Spill};

use crate::error::{Error, Result};
use crate::nix::nar::NarHash;

/// The default corpus is capped at this many bytes of file contents: large enough that every
/// codec's speed settles (xz and zstd -19 reach steady state within a few MiB per NAR), small
/// enough that the default grid runs in about a minute on two cores.
pub const DEFAULT_CORPUS_CAP: u64 = 64 << 20;

/// No NAR of the default corpus is larger than this: a typical package output's NAR is a few
/// MiB, and several mid-sized NARs show the spread between kinds of content better than one big.
pub const DEFAULT_NAR_CAP: u64 = 16 << 20;

#[derive(Debug, Clone)]
pub struct Options {
    /// `--input` values; empty for the default corpus.
    pub inputs: Vec<String>,
    pub codecs: Vec<CodecSpec>,
    /// `--sample N`: NARs per binary cache, spread over their sizes.
    pub sample: Option<usize>,
    /// `--paths`: the store paths (or hashes) to take from binary caches; an HTTP cache,
    /// which cannot be listed, needs them.
    pub paths: Option<Vec<String>>,
    /// How HTTP binary caches are read.
    pub http: HttpOptions,
    pub corpus_cap: u64,
    pub nar_cap: u64,
    /// NARs chosen elsewhere (`--from-outputs`), measured with the inputs.
    pub extra: Vec<input::NarSource>,
    /// Where NARs too large for memory wait while their codecs are measured.
    pub spill: Spill,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            inputs: Vec::new(),
            codecs: parse_list(DEFAULT_GRID).unwrap_or_default(),
            sample: None,
            paths: None,
            http: HttpOptions::default(),
            corpus_cap: DEFAULT_CORPUS_CAP,
            nar_cap: DEFAULT_NAR_CAP,
            extra: Vec::new(),
            spill: Spill::default(),
        }
    }
}

/// A NAR that was measured.
#[derive(Debug, Clone, Serialize)]
pub struct CorpusEntry {
    pub nar: String,
    pub nar_size: u64,
    pub nar_hash: NarHash,
    pub files: u64,
    /// Whether the NAR was held in memory (up to `--in-memory-mib`) or read from a file. Only
    /// zstd levels in a single frame tell the difference: they compress a NAR in memory in one
    /// call, and stream one from a file, slightly less tightly (see `codecs`).
    pub in_memory: bool,
    /// For a NAR from a binary cache: the size of the cache's compressed file (its FileSize)…
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_size: Option<u64>,
    /// … and how the cache compressed it (its Compression).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_compression: Option<&'static str>,
}

/// What one run of the codec grid measured: the corpus, each codec's summary and every single
/// measurement. (The cost-reduction report is `report::Report`.)
#[derive(Debug, Clone, Serialize)]
pub struct CodecReport {
    /// True when no input was given and the default corpus of local files was measured.
    pub default_corpus: bool,
    pub threads: usize,
    pub corpus: Vec<CorpusEntry>,
    pub codecs: Vec<CodecSummary>,
    pub measurements: Vec<Measurement>,
}

/// Measures every codec on every NAR. `note` receives progress lines for stderr.
pub fn run(opts: &Options, note: &(dyn Fn(&str) + Sync)) -> Result<CodecReport> {
    let default_corpus = opts.inputs.is_empty() && opts.extra.is_empty();
    let sources = if default_corpus {
        let s = input::default_corpus(opts.corpus_cap, opts.nar_cap);
        note(&format!(
            "no --input given: measuring a default corpus of {} local trees (at most {} MiB; \
             the Rust toolchain, system libraries, Python, documentation)",
            s.len(),
            opts.corpus_cap >> 20
        ));
        s
    } else {
        let mut s = input::resolve_with(
            &opts.inputs,
            opts.sample,
            opts.paths.as_deref(),
            &opts.http,
            note,
        )?;
        s.extend(opts.extra.iter().cloned());
        // Downloads first, all of them: network time stays out of the measurements.
        input::fetch(&mut s, &opts.http, note)?;
        s
    };
    if sources.is_empty() {
        return Err(Error::NoData(
            "no NARs to measure (give --input DIR, FILE.nar[.xz|.zst] or a binary cache)".into(),
        ));
    }
    let gate = RwLock::new(());
    let per_nar: Vec<(CorpusEntry, Vec<Measurement>)> = sources
        .par_iter()
        .map(|src| {
            // Safe points before each NAR and each measurement: nothing is written until the
            // report, so stopping loses only the measurements of this run.
            crate::interrupt::check()?;
            let nar = {
                // Loading (packing, decompressing) is CPU work too: keep it out of the way of a
                // threaded codec being timed by process CPU.
                let _g = gate.read().unwrap_or_else(|e| e.into_inner());
                src.load_with(&opts.spill)?
            };
            let ms = opts
                .codecs
                .par_iter()
                .map(|c| {
                    crate::interrupt::check()?;
                    measure::measure(&nar, *c, &gate)
                })
                .collect::<Result<Vec<_>>>()?;
            note(&format!(
                "measured {} ({:.1} MB) with {} codecs",
                nar.name,
                nar.bytes.len() as f64 / 1e6,
                ms.len()
            ));
            let entry = CorpusEntry {
                nar: nar.name.clone(),
                nar_size: nar.summary.nar_size,
                nar_hash: nar.summary.nar_hash,
                files: nar.summary.regular_files,
                in_memory: nar.bytes.in_memory().is_some(),
                file_size: nar.file.map(|f| f.0),
                file_compression: nar.file.map(|f| f.1),
            };
            Ok((entry, ms))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut corpus = Vec::new();
    let mut measurements = Vec::new();
    for (e, ms) in per_nar {
        corpus.push(e);
        measurements.extend(ms);
    }
    measure::flag_outliers(&mut measurements);
    let codecs = measure::summarize(&opts.codecs, &measurements);
    Ok(CodecReport {
        default_corpus,
        threads: rayon::current_num_threads(),
        corpus,
        codecs,
        measurements,
    })
}

/// Reads `(codec, compression MB/s per core)` from the JSON `compress --format json` writes:
/// what the analysis sets beside the overhead fit.
pub fn codec_speeds(path: &std::path::Path) -> Result<Vec<(String, f64)>> {
    Ok(read_saved(path)?
        .codecs
        .into_iter()
        .map(|c| (c.codec, c.compress_mb_s_core))
        .collect())
}

/// A measurement saved by `compress --format json`, as far as a projection needs it.
#[derive(Debug, Clone)]
pub struct Saved {
    pub default_corpus: bool,
    pub nars: usize,
    pub nar_bytes: u64,
    pub codecs: Vec<CodecSummary>,
}

/// Reads the JSON `compress --format json` writes. Lenient where the writer is: a speed it
/// could not time (an instant run) was written as `null` and reads as 0, which projections
/// skip.
pub fn read_saved(path: &std::path::Path) -> Result<Saved> {
    parse_saved(&read_saved_bytes(path)?, path)
}

/// The most read of a saved measurement: it lists each measured NAR in a few hundred bytes, so
/// 256 MiB is about a million NARs, more than any corpus is measured on.
const SAVED_MEASUREMENT_CAP: u64 = 256 << 20;

/// The bytes of a saved measurement, within [`SAVED_MEASUREMENT_CAP`].
pub fn read_saved_bytes(path: &std::path::Path) -> Result<Vec<u8>> {
    crate::readfile::read_capped(path, "saved measurement", SAVED_MEASUREMENT_CAP)
}

/// Parses what [`read_saved_bytes`] read; `path` names it in errors.
pub fn parse_saved(text: &[u8], path: &std::path::Path) -> Result<Saved> {
    let bad = |why: String| Error::parse(path.display().to_string(), why);
    let v: serde_json::Value =
        serde_json::from_slice(text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let codecs = v.get("codecs").and_then(|c| c.as_array()).ok_or_else(|| {
        bad("no `codecs` list: expected the output of `compress --format json`".into())
    })?;
    let f = |c: &serde_json::Value, k: &str| {
        c.get(k).and_then(serde_json::Value::as_f64).unwrap_or(0.0)
    };
    let u =
        |c: &serde_json::Value, k: &str| c.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
    let codecs = codecs
        .iter()
        .map(|c| {
            let name = c
                .get("codec")
                .and_then(|x| x.as_str())
                .ok_or_else(|| bad("a codec entry has no `codec` name".into()))?;
            let spec: CodecSpec = name.parse().map_err(|e| bad(format!("{e}")))?;
            Ok(CodecSummary {
                codec: name.to_string(),
                spec,
                nars: u(c, "nars") as usize,
                nar_bytes: u(c, "nar_bytes"),
                compressed_bytes: u(c, "compressed_bytes"),
                ratio_pct: f(c, "ratio_pct"),
                compress_cpu_s: f(c, "compress_cpu_s"),
                compress_wall_s: f(c, "compress_wall_s"),
                compress_mb_s_core: f(c, "compress_mb_s_core"),
                compress_mb_s: f(c, "compress_mb_s"),
                decompress_mb_s: f(c, "decompress_mb_s"),
                encoder_memory_bytes: c.get("encoder_memory_bytes").and_then(|x| x.as_u64()),
                pareto: c.get("pareto").and_then(|x| x.as_bool()).unwrap_or(false),
                outliers: u(c, "outliers") as usize,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let corpus = v.get("corpus").and_then(|c| c.as_array());
    Ok(Saved {
        default_corpus: v
            .get("default_corpus")
            .and_then(|x| x.as_bool())
            .unwrap_or(false),
        nars: corpus.map_or(0, Vec::len),
        nar_bytes: corpus.map_or(0, |c| c.iter().map(|e| u(e, "nar_size")).sum()),
        codecs,
    })
}
