//! Measuring one codec on one NAR, and summarising the measurements: per-codec totals, the
//! Pareto frontier, and outliers.
//!
//! One measurement is a pipeline with bounded buffers, so its memory does not depend on the
//! NAR's size: the NAR is read (from memory or its file) by the thread running the encoder, the
//! compressed bytes go through a pipe of a few MiB to a second thread, which hashes them,
//! decompresses them and hashes what comes out; nothing is held whole. Every result is checked
//! that way — SHA-256 and size against the NAR's — so a codec that does not give back the NAR is
//! an error, never a row.
//!
//! Honest per-core figures: the compression CPU is the encoder's alone. A single-threaded codec
//! is timed by the CPU time of the thread that ran it, so rayon may run several at once; a codec
//! with its own worker threads is timed by the CPU time of the whole process and runs alone (an
//! exclusive lock keeps everything else of ours off the CPU meanwhile), less the checking
//! thread's CPU, which that thread measures itself. Either way the time the encoder's thread
//! spends reading the NAR is measured per read and taken out. Decompression is the checking
//! thread's CPU time less its hashing, timed per call. MB are 10^6 bytes, as xz, zstd and
//! lzbench count them.

use std::io::{self, BufRead, Read, Write};
use std::mem;
use std::sync::RwLock;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::codecs::{CodecSpec, decompress_stream};
use super::cpu::{process_cpu, thread_cpu};
use super::input::LoadedNar;
use crate::error::{Error, Result};
use crate::nix::nar::NarHash;
use crate::nix::narinfo::NarCompression;

/// Compressed bytes go from the encoder to the checking thread in pieces of this size: large
/// enough that handing one over (a channel send, a wake-up) costs nothing next to producing it,
/// small next to any memory bound.
const PIPE_CHUNK: usize = 1 << 20;

/// Pieces that may wait in the pipe: enough to absorb the checking thread being briefly off
/// the CPU without stopping the encoder, and the pipe never holds more than
/// `PIPE_DEPTH + 3` pieces (those waiting, the one being filled, the one being read, one spare).
const PIPE_DEPTH: usize = 4;

/// One codec on one NAR.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    pub nar: String,
    pub codec: String,
    pub nar_bytes: u64,
    pub compressed_bytes: u64,
    /// SHA-256 of the compressed bytes (as a narinfo's FileHash): the same codec on the same NAR
    /// writes the same bytes on any machine with the same library, held in memory or streamed
    /// alike — except zstd in a single frame, which compresses the two ways (see `codecs`).
    pub compressed_hash: NarHash,
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
    pub spec: CodecSpec,
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
pub fn measure(nar: &LoadedNar, codec: CodecSpec, gate: &RwLock<()>) -> Result<Measurement> {
    let threaded = codec.threads() > 1;
    let (_shared, _exclusive);
    let clock: fn() -> Duration = if threaded {
        _exclusive = gate.write().unwrap_or_else(|e| e.into_inner());
        process_cpu
    } else {
        _shared = gate.read().unwrap_or_else(|e| e.into_inner());
        thread_cpu
    };
    let what = || format!("{codec} on {}", nar.name);
    let len = nar.bytes.len();
    let family = codec.family();
    let (tx, rx) = mpsc::sync_channel(PIPE_DEPTH);
    let (spare_tx, spare_rx) = mpsc::sync_channel(PIPE_DEPTH + 3);
    let (c0, w0) = (clock(), Instant::now());
    let (compressed, checked, c2) = std::thread::scope(|s| {
        let checker = s.spawn(move || check(family, rx, spare_tx));
        let mut input = Timed {
            inner: nar.bytes.reader(),
            spent: Duration::ZERO,
        };
        let mut pipe = Pipe {
            tx,
            spare: spare_rx,
            buf: Vec::with_capacity(PIPE_CHUNK),
            broken: false,
        };
        let r = codec
            .compress_stream(&mut input, len, &mut pipe)
            .and_then(|memory| {
                pipe.send()
                    .map_err(|e| Error::codec(format!("compressing with {codec}"), e))?;
                Ok(memory)
            });
        let (c1, w1) = (clock(), Instant::now());
        let broken = pipe.broken;
        // Closing the pipe tells the checking thread the stream ended (early, after an error).
        drop(pipe);
        let checked = checker
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the checking thread panicked")));
        let c2 = clock();
        let compressed = match r {
            Ok(memory) => Ok((memory, input.spent, c1, w1)),
            // The encoder stopped because the checking thread did: its error is the cause.
            Err(e) if broken => Err(match &checked {
                // Said again rather than moved: `checked` is returned as it is.
                Err(c) => Error::codec(
                    format!("decompressing {codec}"),
                    io::Error::new(c.kind(), c.to_string()),
                ),
                Ok(_) => e,
            }),
            Err(e) => Err(e),
        };
        (compressed, checked, c2)
    });
    let (memory, read_cpu, c1, w1) = compressed?;
    let checked = checked.map_err(|e| Error::codec(format!("decompressing {codec}"), e))?;
    if checked.nar_hash != nar.summary.nar_hash || checked.nar_bytes != len {
        return Err(Error::corrupt(
            what(),
            format!(
                "decompressed {} bytes hashing to {}, but the NAR is {len} bytes hashing to {}",
                checked.nar_bytes, checked.nar_hash, nar.summary.nar_hash
            ),
        ));
    }
    let cpu = if threaded {
        // The process's CPU until the checking thread ended, less that thread's own.
        (c2 - c0).saturating_sub(checked.cpu)
    } else {
        c1 - c0
    }
    .saturating_sub(read_cpu)
    .as_secs_f64();
    let wall = (w1 - w0).as_secs_f64();
    let dcpu = checked.cpu.saturating_sub(checked.hashing).as_secs_f64();
    let compressed_bytes = checked.compressed_bytes;
    Ok(Measurement {
        nar: nar.name.clone(),
        codec: codec.to_string(),
        nar_bytes: len,
        compressed_bytes,
        compressed_hash: checked.compressed_hash,
        ratio_pct: if len > 0 {
            100.0 * compressed_bytes as f64 / len as f64
        } else {
            0.0
        },
        compress_cpu_s: cpu,
        compress_wall_s: wall,
        decompress_cpu_s: dcpu,
        compress_mb_s_core: mb_per_s(len, cpu),
        compress_mb_s: mb_per_s(len, wall),
        decompress_mb_s: mb_per_s(len, dcpu),
        encoder_memory_bytes: memory,
        outlier: None,
    })
}

/// What the checking thread found, and what it cost.
struct Checked {
    nar_hash: NarHash,
    nar_bytes: u64,
    compressed_hash: NarHash,
    compressed_bytes: u64,
    /// The thread's whole CPU time…
    cpu: Duration,
    /// … of which hashing (compressed and decompressed bytes).
    hashing: Duration,
}

/// The checking thread: hashes the compressed stream as it arrives, decompresses it, hashes
/// the result. Ends when the encoder closes the pipe; a stream that is cut or corrupt is an
/// error.
fn check(
    family: NarCompression,
    rx: Receiver<Vec<u8>>,
    spare: SyncSender<Vec<u8>>,
) -> io::Result<Checked> {
    let t0 = thread_cpu();
    let mut pipe = PipeReader {
        rx,
        spare,
        cur: Vec::new(),
        pos: 0,
        hash: TimedHash::default(),
    };
    let mut out = TimedHash::default();
    decompress_stream(family, &mut pipe, &mut out, u64::MAX)?;
    // A decoder may stop at the end of its stream; whatever follows is hashed all the same
    // (and never does follow: the decoders read to the end of their input).
    loop {
        let n = pipe.fill_buf()?.len();
        if n == 0 {
            break;
        }
        pipe.consume(n);
    }
    let cpu = thread_cpu() - t0;
    Ok(Checked {
        nar_hash: NarHash(out.hasher.finalize().into()),
        nar_bytes: out.bytes,
        compressed_hash: NarHash(pipe.hash.hasher.finalize().into()),
        compressed_bytes: pipe.hash.bytes,
        cpu,
        hashing: out.spent + pipe.hash.spent,
    })
}

/// A reader that measures the CPU time its reads take on the calling thread, so that reading
/// the NAR (from a file: system calls, page-cache copies) is not charged to the encoder.
struct Timed<R> {
    inner: R,
    spent: Duration,
}

impl<R: BufRead> Read for Timed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let t = thread_cpu();
        let r = self.inner.read(buf);
        self.spent += thread_cpu().saturating_sub(t);
        r
    }
}

impl<R: BufRead> BufRead for Timed<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let t = thread_cpu();
        let r = self.inner.fill_buf();
        self.spent += thread_cpu().saturating_sub(t);
        r
    }

    fn consume(&mut self, amt: usize) {
        self.inner.consume(amt);
    }
}

/// The encoder's end of the pipe: fills a piece, sends it when full (waiting, without using
/// CPU, while the pipe is full), and takes an emptied piece back from the other end to refill.
struct Pipe {
    tx: SyncSender<Vec<u8>>,
    spare: Receiver<Vec<u8>>,
    buf: Vec<u8>,
    /// The checking thread has gone (it stopped on an error).
    broken: bool,
}

impl Pipe {
    /// Sends the piece being filled, if it holds anything.
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut next = self.spare.try_recv().unwrap_or_default();
        next.clear();
        next.reserve_exact(PIPE_CHUNK);
        let full = mem::replace(&mut self.buf, next);
        self.tx.send(full).map_err(|_| {
            self.broken = true;
            io::Error::new(io::ErrorKind::BrokenPipe, "the checking thread stopped")
        })
    }
}

impl Write for Pipe {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(PIPE_CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == PIPE_CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    /// Pieces go whole; the last one is sent by [`Pipe::send`] once the encoder is done.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The checking thread's end of the pipe, hashing every piece as it arrives.
struct PipeReader {
    rx: Receiver<Vec<u8>>,
    spare: SyncSender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    hash: TimedHash,
}

impl Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = {
            let data = self.fill_buf()?;
            let n = data.len().min(buf.len());
            buf[..n].copy_from_slice(&data[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for PipeReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos == self.cur.len() {
            // A closed pipe is the end of the stream. Pieces are never empty.
            if let Ok(next) = self.rx.recv() {
                let used = mem::replace(&mut self.cur, next);
                // Back for reuse; if the encoder has enough spares, it is simply freed.
                let _ = self.spare.try_send(used);
                self.pos = 0;
                self.hash.update(&self.cur);
            }
        }
        Ok(&self.cur[self.pos..])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.cur.len());
    }
}

/// SHA-256 and length of what is written to it, with the CPU time hashing took.
#[derive(Default)]
struct TimedHash {
    hasher: Sha256,
    bytes: u64,
    spent: Duration,
}

impl TimedHash {
    fn update(&mut self, data: &[u8]) {
        let t = thread_cpu();
        self.hasher.update(data);
        self.bytes += data.len() as u64;
        self.spent += thread_cpu().saturating_sub(t);
    }
}

impl Write for TimedHash {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.update(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
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
pub fn summarize(codecs: &[CodecSpec], ms: &[Measurement]) -> Vec<CodecSummary> {
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
