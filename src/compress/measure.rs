//! Measuring one codec on one NAR, and summarising the measurements: per-codec totals, the
//! Pareto frontier, and outliers.
//!
//! Honest per-core figures: a single-threaded codec is timed by the CPU time of the thread that
//! ran it, so rayon may run several at once; a codec with its own worker threads is timed by the
//! CPU time of the whole process and runs alone (an exclusive lock keeps everything else of ours
//! off the CPU meanwhile). Every result is decompressed and its SHA-256 compared with the NAR's:
//! a codec that does not give back the NAR is an error, never a row.
//! MB are 10^6 bytes, as xz, zstd and lzbench count them.

use std::sync::RwLock;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::codecs::Codec;
use super::cpu::{process_cpu, thread_cpu};
use super::input::LoadedNar;
use crate::error::{Error, Result};
use crate::nar::NarHash;

/// One codec on one NAR.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    pub nar: String,
    pub codec: String,
    pub nar_bytes: u64,
    pub compressed_bytes: u64,
    /// Compressed size as a percentage of the NAR.
    pub ratio_pct: f64,
    pub compress_cpu_s: f64,
    pub compress_wall_s: f64,
    pub decompress_cpu_s: f64,
    /// NAR MB compressed per second of CPU time.
    pub compress_mb_s_core: f64,
    /// NAR MB compressed per second of wall time (differs from per-core for threaded codecs).
    pub compress_mb_s: f64,
    /// NAR MB decompressed per second of CPU time (decompression is single-threaded).
    pub decompress_mb_s: f64,
    /// Encoder working memory, where the library accounts for it.
    pub encoder_memory_bytes: Option<u64>,
    /// "speed" and/or "ratio" when this NAR is far from the codec's median on other NARs.
    pub outlier: Option<String>,
}

/// One codec over all NARs.
#[derive(Debug, Clone, Serialize)]
pub struct CodecSummary {
    pub codec: String,
    pub spec: Codec,
    pub nars: usize,
    pub nar_bytes: u64,
    pub compressed_bytes: u64,
    pub ratio_pct: f64,
    pub compress_cpu_s: f64,
    pub compress_wall_s: f64,
    pub compress_mb_s_core: f64,
    pub compress_mb_s: f64,
    pub decompress_mb_s: f64,
    pub encoder_memory_bytes: Option<u64>,
    /// No other codec is at least as good on ratio, compression CPU and decompression speed,
    /// and better on one.
    pub pareto: bool,
    pub outliers: usize,
}

fn mb_per_s(bytes: u64, d: f64) -> f64 {
    if d > 0.0 {
        bytes as f64 / 1e6 / d
    } else {
        f64::INFINITY
    }
}

/// Measures `codec` on `nar`. `gate` is shared by all measurements of a run: single-threaded
/// codecs hold it shared, threaded ones exclusively.
pub fn measure(nar: &LoadedNar, codec: Codec, gate: &RwLock<()>) -> Result<Measurement> {
    let threaded = codec.threads() > 1;
    let (_shared, _exclusive);
    let clock: fn() -> Duration = if threaded {
        _exclusive = gate.write().unwrap_or_else(|e| e.into_inner());
        process_cpu
    } else {
        _shared = gate.read().unwrap_or_else(|e| e.into_inner());
        thread_cpu
    };
    let len = nar.bytes.len();
    let (c0, w0) = (clock(), Instant::now());
    let (compressed, memory) = codec.compress(&nar.bytes)?;
    let (c1, w1) = (clock(), Instant::now());
    // Touch the output buffer before timing, so decompression is not charged for page faults
    // that a streaming decoder writing to a small buffer (as the CLI does) never takes.
    let mut out = vec![0u8; len];
    out.clear();
    let d0 = thread_cpu();
    codec.decompress(&compressed, len, &mut out)?;
    let d1 = thread_cpu();
    let got = NarHash::of(&out);
    if got != nar.summary.nar_hash || out.len() != len {
        return Err(Error::codec(
            format!("{codec} on {}", nar.name),
            format!(
                "decompressed {} bytes hashing to {got}, but the NAR is {len} bytes hashing to {}",
                out.len(),
                nar.summary.nar_hash
            ),
        ));
    }
    let (cpu, wall, dcpu) = (
        (c1 - c0).as_secs_f64(),
        (w1 - w0).as_secs_f64(),
        (d1 - d0).as_secs_f64(),
    );
    Ok(Measurement {
        nar: nar.name.clone(),
        codec: codec.to_string(),
        nar_bytes: len as u64,
        compressed_bytes: compressed.len() as u64,
        ratio_pct: if len > 0 {
            100.0 * compressed.len() as f64 / len as f64
        } else {
            0.0
        },
        compress_cpu_s: cpu,
        compress_wall_s: wall,
        decompress_cpu_s: dcpu,
        compress_mb_s_core: mb_per_s(len as u64, cpu),
        compress_mb_s: mb_per_s(len as u64, wall),
        decompress_mb_s: mb_per_s(len as u64, dcpu),
        encoder_memory_bytes: memory,
        outlier: None,
    })
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Outliers need a distribution: below this many NARs per codec none are flagged.
const MIN_FOR_OUTLIERS: usize = 4;

/// Flags a value this many robust standard deviations (1.4826 × MAD) from the median: the
/// usual robust rule, wide enough that ordinary variation between NARs is not flagged.
const OUTLIER_SIGMAS: f64 = 3.0;

/// Reads one figure of a measurement.
type Metric = fn(&Measurement) -> f64;

/// Marks measurements whose speed or ratio is far from their codec's median.
pub fn flag_outliers(ms: &mut [Measurement]) {
    let mut codecs: Vec<String> = ms.iter().map(|m| m.codec.clone()).collect();
    codecs.sort();
    codecs.dedup();
    for codec in codecs {
        let idx: Vec<usize> = (0..ms.len()).filter(|&i| ms[i].codec == codec).collect();
        if idx.len() < MIN_FOR_OUTLIERS {
            continue;
        }
        let metrics: [(&str, Metric); 2] = [
            ("speed", |m| m.compress_mb_s_core),
            ("ratio", |m| m.ratio_pct),
        ];
        for (label, get) in metrics {
            let mut vals: Vec<f64> = idx.iter().map(|&i| get(&ms[i])).collect();
            let med = median(&mut vals);
            let mut dev: Vec<f64> = vals.iter().map(|v| (v - med).abs()).collect();
            let mad = median(&mut dev) * 1.4826;
            // A zero (or NaN) spread flags nothing: every NAR is alike.
            if mad.is_nan() || mad <= 0.0 {
                continue;
            }
            for &i in &idx {
                if (get(&ms[i]) - med).abs() > OUTLIER_SIGMAS * mad {
                    let o = ms[i].outlier.get_or_insert_with(String::new);
                    if !o.is_empty() {
                        o.push(',');
                    }
                    o.push_str(label);
                }
            }
        }
    }
}

/// Totals per codec, in the order of `codecs`, with the Pareto frontier marked.
pub fn summarize(codecs: &[Codec], ms: &[Measurement]) -> Vec<CodecSummary> {
    let mut out: Vec<CodecSummary> = codecs
        .iter()
        .map(|c| {
            let name = c.to_string();
            let mine: Vec<&Measurement> = ms.iter().filter(|m| m.codec == name).collect();
            let nar_bytes: u64 = mine.iter().map(|m| m.nar_bytes).sum();
            let compressed: u64 = mine.iter().map(|m| m.compressed_bytes).sum();
            let cpu: f64 = mine.iter().map(|m| m.compress_cpu_s).sum();
            let wall: f64 = mine.iter().map(|m| m.compress_wall_s).sum();
            let dcpu: f64 = mine.iter().map(|m| m.decompress_cpu_s).sum();
            CodecSummary {
                codec: name,
                spec: *c,
                nars: mine.len(),
                nar_bytes,
                compressed_bytes: compressed,
                ratio_pct: if nar_bytes > 0 {
                    100.0 * compressed as f64 / nar_bytes as f64
                } else {
                    0.0
                },
                compress_cpu_s: cpu,
                compress_wall_s: wall,
                compress_mb_s_core: mb_per_s(nar_bytes, cpu),
                compress_mb_s: mb_per_s(nar_bytes, wall),
                decompress_mb_s: mb_per_s(nar_bytes, dcpu),
                encoder_memory_bytes: mine.iter().filter_map(|m| m.encoder_memory_bytes).max(),
                pareto: false,
                outliers: mine.iter().filter(|m| m.outlier.is_some()).count(),
            }
        })
        .collect();
    mark_pareto(&mut out);
    out
}

/// Marks the codecs no other codec dominates: smaller or equal ratio, less or equal compression
/// CPU, faster or equal decompression, and strictly better on at least one.
pub fn mark_pareto(s: &mut [CodecSummary]) {
    let key = |c: &CodecSummary| (c.ratio_pct, c.compress_cpu_s, -c.decompress_mb_s);
    for i in 0..s.len() {
        let a = key(&s[i]);
        s[i].pareto = !s.iter().enumerate().any(|(j, o)| {
            let b = key(o);
            j != i
                && b.0 <= a.0
                && b.1 <= a.1
                && b.2 <= a.2
                && (b.0 < a.0 || b.1 < a.1 || b.2 < a.2)
        });
    }
}
