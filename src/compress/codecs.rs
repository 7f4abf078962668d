//! The codecs measured, by name: xz presets 0–9 (and `e`xtreme), single- or multi-threaded;
//! zstd levels 1–22, with long-distance matching, worker threads, or Nix's layout of
//! independent 16 MiB frames. Each compresses a stream, a bounded piece at a time, and a stream
//! decompresses again the same way; in-memory forms wrap the streaming ones.
//!
//! Names: `xz-6`, `xz-9e`, `xz-6-t2` (2 threads, liblzma's block-splitting encoder),
//! `zstd-3`, `zstd-19-long` (long-distance matching, 128 MiB window as `zstd --long`),
//! `zstd-19-t2` (2 worker threads), `zstd-19-nix` (Nix 2.35's binary-cache layout: independent
//! 16 MiB frames compressed by up to 4 threads; `-nix-t2` for another thread count).
//! Settings mirror the command-line tools so that ratios compare: xz with a CRC64 check as
//! `xz` writes, zstd with its content checksum as `zstd` writes.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, BufRead, Read, Write};
use std::sync::{Mutex, mpsc};

use serde::Serialize;
use xz2::stream::{Action, Check, MtStreamBuilder, Status, Stream};
use zstd::stream::raw::CParameter;

use crate::error::{Error, Result};
use crate::nix::narinfo::NarCompression;

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

/// A codec with its settings, as named on the command line (`xz-6`, `zstd-19-nix`): what is
/// measured, and what compresses and decompresses. (The model's figures for a codec, its speed
/// and ratio, are [`crate::model::Codec`].)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "family", rename_all = "lowercase")]
pub enum CodecSpec {
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

impl fmt::Display for CodecSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            CodecSpec::Xz {
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
            CodecSpec::Zstd {
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

impl std::str::FromStr for CodecSpec {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::Usage(format!(
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
                Ok(CodecSpec::Xz {
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
                Ok(CodecSpec::Zstd {
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
pub fn parse_list(s: &str) -> Result<Vec<CodecSpec>> {
    let s = match s.trim() {
        "default" => DEFAULT_GRID,
        "full" => FULL_GRID,
        other => other,
    };
    let mut out: Vec<CodecSpec> = Vec::new();
    for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let c: CodecSpec = name.parse()?;
        if !out.contains(&c) {
            out.push(c);
        }
    }
    if out.is_empty() {
        return Err(Error::Usage("--codecs: no codec given".into()));
    }
    Ok(out)
}

impl CodecSpec {
    /// Threads the codec runs (besides the caller's). A codec with more than one is measured
    /// alone, by process CPU time, because its worker threads are invisible to thread CPU time.
    pub fn threads(&self) -> u32 {
        match *self {
            CodecSpec::Xz { threads, .. } | CodecSpec::Zstd { threads, .. } => threads,
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

    /// The format the codec writes.
    pub fn family(&self) -> NarCompression {
        match self {
            CodecSpec::Xz { .. } => NarCompression::Xz,
            CodecSpec::Zstd { .. } => NarCompression::Zstd,
        }
    }

    /// Compresses everything `input` holds — `len` bytes, which zstd writes into its frame
    /// header and sizes its parameters by, as the `zstd` tool does for a file — into `out`, a
    /// bounded piece at a time, however large the input. Returns the encoder's working memory.
    pub fn compress_stream(
        &self,
        input: &mut dyn BufRead,
        len: u64,
        out: &mut dyn Write,
    ) -> Result<Option<u64>> {
        let what = || format!("compressing with {self}");
        match *self {
            CodecSpec::Xz {
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
                .map_err(|e| Error::codec(what(), io::Error::other(e)))?;
                xz_stream(stream, input, out).map_err(|e| Error::codec(what(), e))?;
                Ok(Self::xz_memory(preset, extreme, threads))
            }
            CodecSpec::Zstd {
                level,
                long,
                threads,
                nix_frames,
            } => if nix_frames {
                zstd_frames(input, level, long, threads, out)
            } else {
                zstd_stream(input, len, level, long, threads, out)
            }
            .map_err(|e| Error::codec(what(), e)),
        }
    }

    /// Compresses `input` in memory ([`CodecSpec::compress_stream`] into a buffer); returns the
    /// compressed bytes and the encoder's working memory.
    pub fn compress(&self, input: &[u8]) -> Result<(Vec<u8>, Option<u64>)> {
        let mut out = Vec::with_capacity(input.len() / 4);
        let memory = self.compress_stream(&mut &input[..], input.len() as u64, &mut out)?;
        Ok((out, memory))
    }

    /// Decompresses `compressed` into `out` (cleared first; `hint` is the expected size).
    pub fn decompress(&self, compressed: &[u8], hint: usize, out: &mut Vec<u8>) -> Result<()> {
        decompress(self.family(), compressed, hint, out)
            .map_err(|e| Error::codec(format!("decompressing {self}"), e))
    }
}

/// Output of the xz encoder is handed on in pieces of this size: big enough that the hand-over
/// costs nothing next to xz's own speed, small next to any memory bound.
const XZ_OUT: usize = 64 << 10;

/// Runs an xz encoder over everything `input` holds, straight from the reader's buffer.
fn xz_stream(mut stream: Stream, input: &mut dyn BufRead, out: &mut dyn Write) -> io::Result<()> {
    let mut buf = Vec::with_capacity(XZ_OUT);
    loop {
        let data = input.fill_buf()?;
        let action = if data.is_empty() {
            Action::Finish
        } else {
            Action::Run
        };
        let (in0, out0) = (stream.total_in(), stream.total_out());
        let status = stream
            .process_vec(data, &mut buf, action)
            .map_err(io::Error::other)?;
        let used = (stream.total_in() - in0) as usize;
        input.consume(used);
        if buf.len() == buf.capacity() || status == Status::StreamEnd {
            out.write_all(&buf)?;
            buf.clear();
        }
        if status == Status::StreamEnd {
            return Ok(());
        }
        // With room for output, liblzma always moves; standing still would loop for ever.
        if used == 0 && stream.total_out() == out0 && buf.len() < buf.capacity() {
            return Err(io::Error::other("the xz encoder stopped making progress"));
        }
    }
}

/// zstd's settings for a level: its content checksum as `zstd` writes it, the long window of
/// `zstd --long`, worker threads.
fn zstd_params(level: i32, long: bool, workers: u32) -> Vec<CParameter> {
    let mut p = vec![
        CParameter::CompressionLevel(level),
        CParameter::ChecksumFlag(true),
    ];
    if long {
        p.push(CParameter::EnableLongDistanceMatching(true));
        p.push(CParameter::WindowLog(LONG_WINDOW_LOG));
    }
    if workers > 1 {
        p.push(CParameter::NbWorkers(workers));
    }
    p
}

fn zstd_error(code: usize) -> io::Error {
    io::Error::other(zstd::zstd_safe::get_error_name(code))
}

/// One zstd frame over the whole input, its header carrying `len` as the `zstd` tool writes for
/// a file. When the whole input is at hand (a NAR held in memory) it is compressed in one call;
/// otherwise it is streamed. Unlike xz and the Nix layout, the two do not write the same bytes:
/// single-threaded, the one call sees the whole input at once and finds matches the streaming
/// path, working through zstd's window buffer, does not (0.4 points of ratio at level 3 on a
/// 52 MB NAR, 0.03 at level 19); with worker threads, by a few bytes (4 of 18 MB at level 1 on
/// the 20 MiB NAR of tests/compress.rs). Streaming is what Nix's compression sink does; one call is what this tool measured
/// before it could stream, and still measures for a NAR in memory, so results stay comparable.
fn zstd_stream(
    input: &mut dyn BufRead,
    len: u64,
    level: i32,
    long: bool,
    workers: u32,
    out: &mut dyn Write,
) -> io::Result<Option<u64>> {
    let whole = input.fill_buf()?;
    if whole.len() as u64 == len {
        let mut c = zstd_compressor(level, long, workers)?;
        let compressed = c.compress(whole)?;
        input.consume(len as usize);
        out.write_all(&compressed)?;
        return Ok(Some(c.context_mut().sizeof() as u64));
    }
    let mut cctx = zstd::zstd_safe::CCtx::try_create()
        .ok_or_else(|| io::Error::other("cannot allocate a zstd context"))?;
    for p in zstd_params(level, long, workers) {
        cctx.set_parameter(p).map_err(zstd_error)?;
    }
    cctx.set_pledged_src_size(Some(len)).map_err(zstd_error)?;
    let mut enc = zstd::stream::write::Encoder::with_context(out, &mut cctx);
    pump(input, &mut enc)?;
    enc.finish()?;
    Ok(Some(cctx.sizeof() as u64))
}

/// Writes everything `input` holds to `w`, straight from the reader's buffer.
fn pump(input: &mut dyn BufRead, w: &mut impl Write) -> io::Result<()> {
    loop {
        let data = input.fill_buf()?;
        if data.is_empty() {
            return Ok(());
        }
        let n = data.len();
        w.write_all(data)?;
        input.consume(n);
    }
}

fn zstd_compressor(
    level: i32,
    long: bool,
    workers: u32,
) -> io::Result<zstd::bulk::Compressor<'static>> {
    let mut c = zstd::bulk::Compressor::new(level)?;
    for p in zstd_params(level, long, workers) {
        c.set_parameter(p)?;
    }
    Ok(c)
}

/// Reads up to one frame's worth of input into `buf` (cleared first); shorter only at the end.
fn read_frame(input: &mut dyn BufRead, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    (&mut *input).take(NIX_FRAME as u64).read_to_end(buf)?;
    Ok(())
}

/// A frame done with (its index, the compressed bytes, its input buffer for reuse).
type DoneFrame = (usize, io::Result<Vec<u8>>, Vec<u8>);

/// Reports a frame as failed if its thread panics while compressing it: the writer waits for
/// frames in order, and would otherwise wait for this one for ever.
struct Unfinished<'a> {
    frame: usize,
    done: &'a mpsc::Sender<DoneFrame>,
}

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let failed = io::Error::other("a compression thread panicked");
            let _ = self.done.send((self.frame, Err(failed), Vec::new()));
        }
    }
}

/// Nix 2.35's layout: the input cut into independent 16 MiB frames, compressed by up to
/// `threads` threads, written in order (a plain zstd decoder reads them as one stream). At most
/// `threads + 1` frames are read and not yet written — one being compressed by each thread and
/// one read ahead, so that a thread finishing finds work while the output waits for the frame
/// before — which bounds the memory at about `threads + 1` times 16 MiB in and out, whatever the
/// input's size.
fn zstd_frames(
    input: &mut dyn BufRead,
    level: i32,
    long: bool,
    threads: u32,
    out: &mut dyn Write,
) -> io::Result<Option<u64>> {
    let mut first = Vec::with_capacity(NIX_FRAME);
    read_frame(input, &mut first)?;
    if first.is_empty() {
        // No input is still one (empty) frame, as in one-shot compression.
        let mut c = zstd_compressor(level, long, 1)?;
        out.write_all(&c.compress(&[])?)?;
        return Ok(Some(c.context_mut().sizeof() as u64));
    }
    let workers = threads.max(1) as usize;
    let compressors = (0..workers)
        .map(|_| zstd_compressor(level, long, 1))
        .collect::<io::Result<Vec<_>>>()?;
    let (job_tx, job_rx) = mpsc::sync_channel::<(usize, Vec<u8>)>(workers);
    let job_rx = Mutex::new(job_rx);
    let (done_tx, done_rx) = mpsc::channel::<DoneFrame>();
    std::thread::scope(|s| {
        let handles: Vec<_> = compressors
            .into_iter()
            .map(|mut c| {
                let (job_rx, done_tx) = (&job_rx, done_tx.clone());
                s.spawn(move || {
                    loop {
                        let job = match job_rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => break,
                        };
                        let Ok((i, frame)) = job else { break };
                        let _unfinished = Unfinished {
                            frame: i,
                            done: &done_tx,
                        };
                        let r = c.compress(&frame);
                        if done_tx.send((i, r, frame)).is_err() {
                            break;
                        }
                    }
                    c.context_mut().sizeof() as u64
                })
            })
            .collect();
        drop(done_tx);
        let written = (|| -> io::Result<()> {
            let mut spare: Vec<Vec<u8>> = Vec::new();
            let mut next_frame = Some(first);
            let (mut sent, mut written) = (0usize, 0usize);
            let mut ready: BTreeMap<usize, Vec<u8>> = BTreeMap::new();
            let mut at_end = false;
            loop {
                while !at_end && sent - written < workers + 1 {
                    let frame = match next_frame.take() {
                        Some(f) => f,
                        None => {
                            let mut f =
                                spare.pop().unwrap_or_else(|| Vec::with_capacity(NIX_FRAME));
                            read_frame(input, &mut f)?;
                            f
                        }
                    };
                    if frame.is_empty() {
                        at_end = true;
                        break;
                    }
                    at_end = frame.len() < NIX_FRAME;
                    job_tx
                        .send((sent, frame))
                        .map_err(|_| io::Error::other("a compression thread stopped"))?;
                    sent += 1;
                }
                if written == sent {
                    return Ok(());
                }
                let (i, r, frame) = done_rx
                    .recv()
                    .map_err(|_| io::Error::other("a compression thread stopped"))?;
                spare.push(frame);
                ready.insert(i, r?);
                while let Some(c) = ready.remove(&written) {
                    out.write_all(&c)?;
                    written += 1;
                }
            }
        })();
        // Closing the queue ends the threads, after an error as well.
        drop(job_tx);
        let mut memory = 0;
        for h in handles {
            memory += h
                .join()
                .map_err(|_| io::Error::other("a compression thread panicked"))?;
        }
        written.map(|()| Some(memory))
    })
}

/// Memory liblzma may take to decode an xz stream; a stream whose headers ask for more (its
/// LZMA2 dictionary, which a header may declare up to 4 GiB and the decoder allocates) is
/// refused before the allocation. xz's largest preset, -9, has a 64 MiB dictionary and decodes
/// in 65 MiB; Nix and Hydra write presets. 128 MiB leaves room for a dictionary of twice that
/// and matches zstd's default bound on a frame's window (2^27, `ZSTD_WINDOWLOG_LIMIT_DEFAULT`),
/// which decoders apply without being asked.
pub const XZ_DECODER_MEMLIMIT: u64 = 128 << 20;

/// Decompressed bytes are handed on in pieces of this size: a fixed buffer, reused, so the
/// decoder never takes a page fault a command-line decoder writing to a pipe would not.
const DECODE_CHUNK: usize = 256 << 10;

/// Decompresses a whole `.xz` (possibly several concatenated streams), `.zst` (possibly many
/// frames) or `.bz2` buffer into `out` (cleared first; `hint` is the expected size). Truncated or
/// corrupt input is an error that says so.
pub fn decompress(
    kind: NarCompression,
    input: &[u8],
    hint: usize,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    out.clear();
    out.reserve(hint);
    decompress_stream(kind, input, out, u64::MAX).map(|_| ())
}

/// Decompresses everything `input` holds into `out`, a fixed-size piece at a time, and returns
/// the number of bytes written. Stops once past `limit` bytes (it then returns `limit + 1`, which
/// the caller refuses): a file from elsewhere (a binary cache) cannot make us write much more than
/// its narinfo announced. Truncated or corrupt input is an error that says so and how far in.
pub fn decompress_stream(
    kind: NarCompression,
    input: impl BufRead,
    out: &mut dyn Write,
    limit: u64,
) -> io::Result<u64> {
    let mut counted = Counted { inner: input, n: 0 };
    let mut d = decoder(kind, &mut counted)?;
    let mut buf = vec![0u8; DECODE_CHUNK];
    let mut total = 0u64;
    while total <= limit {
        let room = usize::try_from((limit - total).saturating_add(1))
            .map_or(buf.len(), |r| r.min(buf.len()));
        let n = match d.read(&mut buf[..room]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                drop(d);
                return Err(explain(kind, e, counted.n));
            }
        };
        // A failure to write is the output's, not the input's: it goes up as it is.
        out.write_all(&buf[..n])?;
        total += n as u64;
    }
    Ok(total)
}

/// A streaming decoder of `kind` over `input`.
fn decoder<'a>(kind: NarCompression, input: impl BufRead + 'a) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match kind {
        NarCompression::None => Box::new(input),
        NarCompression::Xz => {
            let stream = Stream::new_stream_decoder(XZ_DECODER_MEMLIMIT, xz2::stream::CONCATENATED)
                .map_err(io::Error::other)?;
            Box::new(xz2::bufread::XzDecoder::new_stream(input, stream))
        }
        NarCompression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(input)?),
        NarCompression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(input)),
    })
}

/// A decoder's error said plainly: an early end of input as truncation, anything else with how
/// many compressed bytes had been read.
fn explain(kind: NarCompression, e: io::Error, read: u64) -> io::Error {
    let name = kind.narinfo_name();
    if e.kind() == io::ErrorKind::UnexpectedEof {
        let where_ = match kind {
            NarCompression::Xz => " without its end marker",
            NarCompression::Zstd => " inside a frame",
            _ => "",
        };
        return io::Error::new(
            e.kind(),
            format!("truncated {name} stream: it ends after {read} compressed bytes{where_}"),
        );
    }
    let over_memlimit = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<xz2::stream::Error>())
        .is_some_and(|x| matches!(x, xz2::stream::Error::MemLimit));
    if over_memlimit {
        return io::Error::other(format!(
            "xz: the stream needs more than {} MiB of memory to decode (a dictionary larger \
             than any xz preset's; -9 needs 65 MiB), refused after {read} compressed bytes",
            XZ_DECODER_MEMLIMIT >> 20
        ));
    }
    io::Error::new(
        e.kind(),
        format!("{name}: {e} (after {read} compressed bytes)"),
    )
}

/// Counts the bytes a decoder takes from its input.
struct Counted<R> {
    inner: R,
    n: u64,
}

impl<R: BufRead> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counted<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        self.n += amt as u64;
        self.inner.consume(amt);
    }
}
