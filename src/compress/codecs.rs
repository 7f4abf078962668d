//! The codecs measured, by name: xz presets 0–9 (and `e`xtreme), single- or multi-threaded;
//! zstd levels 1–22, with long-distance matching, worker threads, or Nix's layout of
//! independent 16 MiB frames. Each compresses a buffer and decompresses it again.
//!
//! Names: `xz-6`, `xz-9e`, `xz-6-t2` (2 threads, liblzma's block-splitting encoder),
//! `zstd-3`, `zstd-19-long` (long-distance matching, 128 MiB window as `zstd --long`),
//! `zstd-19-t2` (2 worker threads), `zstd-19-nix` (Nix 2.35's binary-cache layout: independent
//! 16 MiB frames compressed by up to 4 threads; `-nix-t2` for another thread count).
//! Settings mirror the command-line tools so that ratios compare: xz with a CRC64 check as
//! `xz` writes, zstd with its content checksum as `zstd` writes.

use std::fmt;
use std::io::{self, Read};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;
use xz2::stream::{Action, Check, MtStreamBuilder, Status, Stream};
use zstd::stream::raw::CParameter;

use crate::error::{Error, Result};

/// The grid run when `--codecs` is not given: the two defaults Hydra deployments use (xz-6 and
/// zstd-19, the latter also in Nix's frame layout), the fast ends of both families, and zstd-9
/// between them. About 90 s of CPU on the 64 MiB default corpus.
pub const DEFAULT_GRID: &str = "xz-1,xz-6,zstd-1,zstd-3,zstd-9,zstd-19,zstd-19-nix";

/// `--codecs full`: every preset and level, extreme xz, long-distance zstd, and the threaded
/// variants. Slow (xz-9e and zstd-22 run at about 1 MB/s): for a small corpus.
pub const FULL_GRID: &str = "xz-0,xz-1,xz-2,xz-3,xz-4,xz-5,xz-6,xz-7,xz-8,xz-9,xz-6e,xz-9e,\
    xz-6-t2,zstd-1,zstd-2,zstd-3,zstd-4,zstd-5,zstd-6,zstd-7,zstd-8,zstd-9,zstd-10,zstd-11,\
    zstd-12,zstd-13,zstd-14,zstd-15,zstd-16,zstd-17,zstd-18,zstd-19,zstd-20,zstd-21,zstd-22,\
    zstd-19-long,zstd-3-t2,zstd-19-t2,zstd-19-nix";

/// Nix 2.35 cuts zstd output into independent frames of this much input each.
pub const NIX_FRAME: usize = 16 << 20;

/// ... and compresses them with up to this many threads.
pub const NIX_THREADS: u32 = 4;

/// Window of `zstd --long` (2^27 = 128 MiB), which decoders accept without options.
const LONG_WINDOW_LOG: u32 = 27;

/// liblzma's flag for the `-e` presets (`LZMA_PRESET_EXTREME`).
const XZ_EXTREME: u32 = 0x8000_0000;

/// Encoder memory of each xz preset in MiB, single-threaded, as the xz(1) manual tabulates it
/// (liblzma does not expose it through xz2).
const XZ_ENCODER_MIB: [u64; 10] = [3, 9, 17, 32, 48, 94, 94, 186, 370, 674];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "family", rename_all = "lowercase")]
pub enum Codec {
    Xz {
        preset: u32,
        extreme: bool,
        threads: u32,
    },
    Zstd {
        level: i32,
        long: bool,
        threads: u32,
        nix_frames: bool,
    },
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Codec::Xz {
                preset,
                extreme,
                threads,
            } => {
                write!(f, "xz-{preset}{}", if extreme { "e" } else { "" })?;
                if threads > 1 {
                    write!(f, "-t{threads}")?;
                }
                Ok(())
            }
            Codec::Zstd {
                level,
                long,
                threads,
                nix_frames,
            } => {
                write!(f, "zstd-{level}")?;
                if long {
                    write!(f, "-long")?;
                }
                if nix_frames {
                    write!(f, "-nix")?;
                    if threads != NIX_THREADS {
                        write!(f, "-t{threads}")?;
                    }
                } else if threads > 1 {
                    write!(f, "-t{threads}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::str::FromStr for Codec {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::Invalid(format!(
                "codec '{s}': {why} (examples: xz-6, xz-9e, xz-6-t2, zstd-3, zstd-19-long, zstd-19-t2, zstd-19-nix)"
            ))
        };
        let mut parts = s.trim().split('-');
        let family = parts.next().unwrap_or_default();
        let level = parts.next().ok_or_else(|| bad("no level"))?;
        let mut long = false;
        let mut nix_frames = false;
        let mut threads = None;
        for p in parts {
            match p {
                "long" => long = true,
                "nix" => nix_frames = true,
                t if t.starts_with('t') => {
                    let n: u32 = t[1..].parse().map_err(|_| bad("bad thread count"))?;
                    if !(1..=256).contains(&n) {
                        return Err(bad("threads must be 1 to 256"));
                    }
                    threads = Some(n);
                }
                _ => return Err(bad(&format!("unknown option '{p}'"))),
            }
        }
        match family {
            "xz" => {
                if long || nix_frames {
                    return Err(bad("-long and -nix are zstd options"));
                }
                let (digits, extreme) = match level.strip_suffix('e') {
                    Some(d) => (d, true),
                    None => (level, false),
                };
                let preset: u32 = digits.parse().map_err(|_| bad("bad preset"))?;
                if preset > 9 {
                    return Err(bad("xz presets are 0 to 9"));
                }
                Ok(Codec::Xz {
                    preset,
                    extreme,
                    threads: threads.unwrap_or(1),
                })
            }
            "zstd" => {
                let level: i32 = level.parse().map_err(|_| bad("bad level"))?;
                if !(1..=22).contains(&level) {
                    return Err(bad("zstd levels are 1 to 22"));
                }
                let default_threads = if nix_frames { NIX_THREADS } else { 1 };
                Ok(Codec::Zstd {
                    level,
                    long,
                    threads: threads.unwrap_or(default_threads),
                    nix_frames,
                })
            }
            _ => Err(bad("unknown codec family")),
        }
    }
}

/// Parses `--codecs`: a comma-separated list, or `default` / `full`.
pub fn parse_list(s: &str) -> Result<Vec<Codec>> {
    let s = match s.trim() {
        "default" => DEFAULT_GRID,
        "full" => FULL_GRID,
        other => other,
    };
    let mut out: Vec<Codec> = Vec::new();
    for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let c: Codec = name.parse()?;
        if !out.contains(&c) {
            out.push(c);
        }
    }
    if out.is_empty() {
        return Err(Error::Invalid("--codecs: no codec given".into()));
    }
    Ok(out)
}

impl Codec {
    /// Threads the codec runs (besides the caller's). A codec with more than one is measured
    /// alone, by process CPU time, because its worker threads are invisible to thread CPU time.
    pub fn threads(&self) -> u32 {
        match *self {
            Codec::Xz { threads, .. } | Codec::Zstd { threads, .. } => threads,
        }
    }

    /// Encoder working memory in bytes: zstd's own account of its context after compressing
    /// (passed in), liblzma's for multi-threaded xz, the xz(1) table for single-threaded xz.
    fn xz_memory(preset: u32, extreme: bool, threads: u32) -> Option<u64> {
        if threads > 1 {
            let mut b = MtStreamBuilder::new();
            b.preset(preset | if extreme { XZ_EXTREME } else { 0 })
                .threads(threads);
            Some(b.memusage()).filter(|&m| m != u64::MAX)
        } else {
            XZ_ENCODER_MIB.get(preset as usize).map(|m| m << 20)
        }
    }

    /// Compresses `input`; returns the compressed bytes and the encoder's working memory.
    pub fn compress(&self, input: &[u8]) -> Result<(Vec<u8>, Option<u64>)> {
        let what = || format!("compressing with {self}");
        match *self {
            Codec::Xz {
                preset,
                extreme,
                threads,
            } => {
                let p = preset | if extreme { XZ_EXTREME } else { 0 };
                let stream = if threads > 1 {
                    MtStreamBuilder::new()
                        .preset(p)
                        .threads(threads)
                        .check(Check::Crc64)
                        .encoder()
                } else {
                    Stream::new_easy_encoder(p, Check::Crc64)
                }
                .map_err(|e| Error::codec(what(), e))?;
                let out = xz_run(stream, input, input.len() / 4, Action::Finish)
                    .map_err(|e| Error::codec(what(), e))?;
                Ok((out, Self::xz_memory(preset, extreme, threads)))
            }
            Codec::Zstd {
                level,
                long,
                threads,
                nix_frames,
            } => {
                if nix_frames {
                    return zstd_frames(input, level, long, threads)
                        .map_err(|e| Error::codec(what(), e));
                }
                zstd_one(input, level, long, threads).map_err(|e| Error::codec(what(), e))
            }
        }
    }

    /// Decompresses `compressed` into `out` (cleared first; `hint` is the expected size).
    pub fn decompress(&self, compressed: &[u8], hint: usize, out: &mut Vec<u8>) -> Result<()> {
        let family = match self {
            Codec::Xz { .. } => Compression::Xz,
            Codec::Zstd { .. } => Compression::Zstd,
        };
        decompress(family, compressed, hint, out)
            .map_err(|e| Error::codec(format!("decompressing {self}"), e))
    }
}

fn zstd_compressor(
    level: i32,
    long: bool,
    workers: u32,
) -> io::Result<zstd::bulk::Compressor<'static>> {
    let mut c = zstd::bulk::Compressor::new(level)?;
    c.set_parameter(CParameter::ChecksumFlag(true))?;
    if long {
        c.set_parameter(CParameter::EnableLongDistanceMatching(true))?;
        c.set_parameter(CParameter::WindowLog(LONG_WINDOW_LOG))?;
    }
    if workers > 1 {
        c.set_parameter(CParameter::NbWorkers(workers))?;
    }
    Ok(c)
}

fn zstd_one(
    input: &[u8],
    level: i32,
    long: bool,
    threads: u32,
) -> io::Result<(Vec<u8>, Option<u64>)> {
    let mut c = zstd_compressor(level, long, threads)?;
    let out = c.compress(input)?;
    let mem = c.context_mut().sizeof() as u64;
    Ok((out, Some(mem)))
}

/// Nix 2.35's layout: the input cut into independent 16 MiB frames, compressed by up to
/// `threads` threads, concatenated in order (a plain zstd decoder reads them as one stream).
fn zstd_frames(
    input: &[u8],
    level: i32,
    long: bool,
    threads: u32,
) -> io::Result<(Vec<u8>, Option<u64>)> {
    let chunks: Vec<&[u8]> = input.chunks(NIX_FRAME).collect();
    if chunks.is_empty() {
        return zstd_one(input, level, long, 1);
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<io::Result<Vec<u8>>>>> =
        Mutex::new((0..chunks.len()).map(|_| None).collect());
    let mem = AtomicUsize::new(0);
    let workers = (threads as usize).clamp(1, chunks.len());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                let mut c = match zstd_compressor(level, long, 1) {
                    Ok(c) => c,
                    Err(e) => {
                        if let Ok(mut r) = results.lock() {
                            r[0] = Some(Err(e));
                        }
                        return;
                    }
                };
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(chunk) = chunks.get(i) else { break };
                    let r = c.compress(chunk);
                    if let Ok(mut all) = results.lock() {
                        all[i] = Some(r);
                    }
                }
                mem.fetch_add(c.context_mut().sizeof(), Ordering::Relaxed);
            });
        }
    });
    let results = results
        .into_inner()
        .map_err(|_| io::Error::other("a compression thread panicked"))?;
    let mut out = Vec::new();
    for r in results {
        out.extend_from_slice(&r.ok_or_else(|| io::Error::other("a frame was not compressed"))??);
    }
    Ok((out, Some(mem.into_inner() as u64)))
}

/// Runs an xz stream over all of `input` to the end, growing the output as needed. A stream
/// that stops making progress before its end is a truncated input.
fn xz_run(mut stream: Stream, input: &[u8], hint: usize, action: Action) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(hint.max(4096));
    loop {
        if out.len() == out.capacity() {
            out.reserve(out.capacity().max(64 << 10));
        }
        let (in0, out0) = (stream.total_in(), stream.total_out());
        let rest = input.get(stream.total_in() as usize..).unwrap_or_default();
        let status = stream
            .process_vec(rest, &mut out, action)
            .map_err(io::Error::other)?;
        if status == Status::StreamEnd {
            return Ok(out);
        }
        if stream.total_in() == in0 && stream.total_out() == out0 && out.len() < out.capacity() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "truncated xz stream: it ends after {} compressed bytes without its end marker",
                    input.len()
                ),
            ));
        }
    }
}

/// How a NAR file or narinfo says it is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Xz,
    Zstd,
    /// Old binary caches' default (Nix reads a narinfo without `Compression` as bzip2).
    Bzip2,
}

/// Decompresses a whole `.xz` (possibly several concatenated streams) or `.zst` (possibly many
/// frames) buffer into `out`. Truncated or corrupt input is an error that says so.
pub fn decompress(
    kind: Compression,
    input: &[u8],
    hint: usize,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    decompress_at_most(kind, input, hint, u64::MAX, out)
}

/// [`decompress`], stopping with an error once the output passes `limit` bytes (`out` then
/// holds more than `limit`): a file from elsewhere (a binary cache) cannot make us hold much
/// more than its narinfo announced.
pub fn decompress_at_most(
    kind: Compression,
    input: &[u8],
    hint: usize,
    limit: u64,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    out.clear();
    out.reserve(hint.min(usize::try_from(limit).unwrap_or(usize::MAX)));
    let over = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("it decompresses to more than {limit} bytes"),
        )
    };
    match kind {
        Compression::None => {
            out.extend_from_slice(input);
            Ok(())
        }
        Compression::Xz => {
            let stream = Stream::new_stream_decoder(u64::MAX, xz2::stream::CONCATENATED)
                .map_err(io::Error::other)?;
            xz_into(stream, input, limit, out)
        }
        Compression::Bzip2 => read_all(
            bzip2::read::MultiBzDecoder::new(input),
            limit,
            out,
            &format!(
                "truncated bzip2 stream: it ends after {} compressed bytes",
                input.len()
            ),
        ),
        Compression::Zstd => read_all(
            zstd::stream::read::Decoder::with_buffer(input)?,
            limit,
            out,
            &format!(
                "truncated zstd stream: it ends after {} compressed bytes inside a frame",
                input.len()
            ),
        ),
    }
    .and_then(|()| {
        if out.len() as u64 > limit {
            Err(over())
        } else {
            Ok(())
        }
    })
}

/// Reads a whole decoder into `out`, at most one byte past `limit` (the caller refuses that);
/// an early end of input becomes `truncated`, said plainly.
fn read_all(d: impl Read, limit: u64, out: &mut Vec<u8>, truncated: &str) -> io::Result<()> {
    d.take(limit.saturating_add(1))
        .read_to_end(out)
        .map(|_| ())
        .map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                io::Error::new(e.kind(), truncated.to_string())
            } else {
                e
            }
        })
}

fn xz_into(mut stream: Stream, input: &[u8], limit: u64, out: &mut Vec<u8>) -> io::Result<()> {
    loop {
        if out.len() as u64 > limit {
            // The caller says so; decoding on would only use more memory.
            return Ok(());
        }
        if out.len() == out.capacity() {
            out.reserve(out.capacity().max(64 << 10));
        }
        let (in0, out0) = (stream.total_in(), stream.total_out());
        let rest = input.get(stream.total_in() as usize..).unwrap_or_default();
        // With CONCATENATED, the decoder only knows the input ended when told to finish.
        let action = if rest.is_empty() {
            Action::Finish
        } else {
            Action::Run
        };
        let status = stream.process_vec(rest, out, action).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("xz: {e} after {} compressed bytes", stream.total_in()),
            )
        })?;
        if status == Status::StreamEnd {
            return Ok(());
        }
        if stream.total_in() == in0 && stream.total_out() == out0 && out.len() < out.capacity() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "truncated xz stream: it ends after {} compressed bytes without its end marker",
                    input.len()
                ),
            ));
        }
    }
}
