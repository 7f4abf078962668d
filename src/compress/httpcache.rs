//! Reading an `http(s)://` binary cache: this module owns every request made to one —
//! `nix-cache-info` (its StoreDir checked), `<hash>.narinfo` (bounded, parsed by
//! [`super::input::parse_narinfo`]) and the NAR file a narinfo points to — and the download
//! directory the NAR files are kept in.
//!
//! A binary cache cannot be listed over HTTP, so the NARs are named by store paths (`--paths`,
//! or the outputs of the dataset's builds). Downloads are resumable: bytes go to `<file>.part`,
//! an interrupted transfer continues with `Range: bytes=N-` (a server that answers the whole
//! file instead is read from the start), and the file is renamed into place only once its
//! FileSize and FileHash verify; a verified file already there is used without a request. The
//! decompressed NAR is checked against NarSize and NarHash when it is loaded
//! ([`super::input`]).
//!
//! Politeness: at most [`MAX_CONCURRENT`] requests at once, a User-Agent naming this tool,
//! [`TRIES`] tries with doubling waits (or the server's Retry-After) on connection failures,
//! timeouts, 408, 429 and 5xx, a timeout on every request, and a size bound on every answer.
//! Credentials in the cache URL are sent (ureq turns them into Basic authentication) but never
//! shown: every message carries the URL redacted.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use indicatif::ProgressBar;
use sha2::{Digest, Sha256};

use super::input::{NarInfo, parse_narinfo};
use crate::error::{Error, Result};
use crate::http::{describe, humantime, status_line};
use crate::nar::{NarHash, parse_nix_base32};
use crate::progress::Progress;
use crate::redact::{redact, scrub};

/// Where notes for stderr go (progress lines, retries, skipped paths).
pub type Note<'a> = &'a (dyn Fn(&str) + Sync);

/// Requests in flight to one cache at most. Nix itself opens up to 25 connections
/// (`http-connections`), but it serves builds that wait on those paths; a measurement can take
/// its time, and four transfers already fill most links to a CDN while leaving the cache's
/// operators no reason to notice us.
pub const MAX_CONCURRENT: usize = 4;

/// Tries of one request before giving up: Nix's own default (`download-attempts = 5`).
pub const TRIES: u32 = 5;

/// The wait before the first retry, doubled before each next one (1, 2, 4, 8 s): long enough
/// for a restarting server or a rate limiter to recover, short enough that a one-off failure
/// costs a second.
pub const FIRST_RETRY: Duration = Duration::from_secs(1);

/// The longest wait before a retry, and the longest Retry-After honoured: a server asking for
/// more is not coming back within a measurement, and we say so rather than hang.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(120);

/// Bound on `nix-cache-info` and each narinfo. Real narinfos are a few hundred bytes (a few KiB
/// with many references and signatures); 64 KiB is far past any, and stops a wrong URL from
/// streaming a large file into memory.
pub const MAX_NARINFO: u64 = 64 << 10;

/// Default `--timeout`: for narinfos the whole request, for NARs the wait for the answer's
/// headers and then for each piece of the body (a stalled transfer), since a large NAR on a
/// slow link may take far longer in all. Nix waits 300 s for a stalled download
/// (`stalled-download-timeout`); 30 s is enough for any healthy cache and resumes sooner.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Default `--max-nar-mib`. Memory no longer limits it (a large NAR is measured streaming, from
/// a temporary file), time and transfer do: 512 MiB covers all but the largest outputs (typical
/// NARs are KiB to tens of MiB; CUDA or TeX Live run to GiB), whose download and measurement —
/// xz-6 at about 2 MB/s per core, minutes per codec — would dwarf the rest of a sample. The
/// same bound stops a compressed NAR file, local too, from decompressing to more: past it a
/// file is either one of those rare outputs (raise the bound to measure it) or a bomb, a few
/// hundred KiB that would fill the spill directory with GiB.
pub const DEFAULT_MAX_NAR_MIB: u64 = 512;

/// Bytes read from the network per write to the `.part` file.
const CHUNK: usize = 64 << 10;

/// A transfer that brings fewer bytes than this within one `--timeout` (30 s by default) is
/// stalled: ended and resumed like a cut one. 64 KiB in 30 s is about 2 KiB/s, below any link
/// worth measuring over, and it keeps a server that trickles a byte just within each read's
/// timeout from holding a download open for ever. (Nix's own rule is gentler, 1 byte/s over
/// 300 s; it fetches what builds need, we only measure.)
const LOW_SPEED_BYTES: u64 = CHUNK as u64;

/// How many times a download that made progress may start its count of [`TRIES`] anew: a
/// flaky link cuts a large transfer a few times, but a server that cuts every transfer after
/// a few bytes would otherwise keep us for ever.
const MAX_RESUMES: u32 = 10;

/// How HTTP binary caches are read.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// `--download-dir`; `None` for [`default_download_dir`].
    pub download_dir: Option<PathBuf>,
    /// NARs whose FileSize or NarSize exceeds this many bytes are skipped, with a note.
    pub max_nar_bytes: u64,
    pub timeout: Duration,
    pub progress: Progress,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            download_dir: None,
            max_nar_bytes: DEFAULT_MAX_NAR_MIB << 20,
            timeout: DEFAULT_TIMEOUT,
            progress: Progress::hidden(),
        }
    }
}

/// `$XDG_CACHE_HOME/hydra-bottleneck/nar`, or `~/.cache/hydra-bottleneck/nar` (the XDG base
/// directory rules: a relative XDG_CACHE_HOME is ignored).
pub fn default_download_dir() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    let base = xdg.or_else(|| {
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .map(|h| h.join(".cache"))
    })?;
    Some(base.join("hydra-bottleneck").join("nar"))
}

impl HttpOptions {
    fn dir(&self) -> Result<PathBuf> {
        self.download_dir
            .clone()
            .or_else(default_download_dir)
            .ok_or_else(|| {
                Error::Invalid(
                    "no download directory: neither XDG_CACHE_HOME nor HOME is set; give \
                     --download-dir DIR"
                        .into(),
                )
            })
    }
}

/// The 32-character hash part of a store path (`/nix/store/<hash>-name`), its base name, or a
/// bare hash; `None` if `s` is none of these.
pub fn hash_part(s: &str) -> Option<&str> {
    let base = s.trim().rsplit('/').next().unwrap_or_default();
    let hash = base.get(..32)?;
    let rest = &base[32..];
    (parse_nix_base32(hash, 20).is_some() && (rest.is_empty() || rest.starts_with('-')))
        .then_some(hash)
}

/// The most read of a `--paths` list: a store path is under 200 bytes, so 64 MiB is some
/// 300 000 paths, more NARs than a measurement downloads.
const PATHS_CAP: u64 = 64 << 20;

/// Reads `--paths`: one store path or hash a line; blank lines and `#` comments are skipped,
/// repeats dropped. `-` reads stdin.
pub fn read_paths(file: &Path) -> Result<Vec<String>> {
    let bytes = if file == Path::new("-") {
        crate::readfile::read_stream_capped(
            &mut std::io::stdin().lock(),
            "stdin",
            "list of store paths",
            PATHS_CAP,
        )?
    } else {
        crate::readfile::read_capped(file, "list of store paths", PATHS_CAP)?
    };
    let text = String::from_utf8(bytes)
        .map_err(|_| Error::Invalid(format!("{}: not UTF-8 text", file.display())))?;
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let hash = hash_part(line).ok_or_else(|| {
            Error::Invalid(format!(
                "{} line {}: '{line}' is neither a store path nor a store path hash",
                file.display(),
                i + 1
            ))
        })?;
        if seen.insert(hash.to_string()) {
            out.push(line.to_string());
        }
    }
    if out.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: no store paths in it",
            file.display()
        )));
    }
    Ok(out)
}

/// What a cache says about one store path.
#[derive(Debug, Clone)]
pub enum Lookup {
    Found(NarInfo),
    /// No narinfo (HTTP 404, or 403 as S3 answers for a missing key; Nix reads both so).
    Absent,
    /// Its FileSize or NarSize is over `--max-nar-mib`.
    TooLarge(NarInfo),
}

/// The answer of [`HttpCache::find`]: narinfos found, and the paths left out.
#[derive(Debug, Default)]
pub struct Found {
    pub infos: Vec<NarInfo>,
    pub absent: Vec<String>,
    /// Paths over the size bound, with the larger of their NarSize and FileSize.
    pub too_large: Vec<(String, u64)>,
}

impl Found {
    /// One note on what was left out, or `None` when nothing was.
    pub fn describe_skipped(&self, cache: &str, of: usize, max_bytes: u64) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(first) = self.absent.first() {
            parts.push(format!(
                "{} of {of} paths are not in {cache} (no narinfo; the first: {first})",
                self.absent.len()
            ));
        }
        if let Some((first, size)) = self.too_large.first() {
            parts.push(format!(
                "{} of {of} NARs are larger than --max-nar-mib {} and skipped (the first: {first}, \
                 {:.1} MiB)",
                self.too_large.len(),
                max_bytes >> 20,
                *size as f64 / 1_048_576.0
            ));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// One HTTP binary cache.
pub struct HttpCache {
    /// The URL requests go to: no query, no trailing slash, credentials kept.
    url: String,
    /// The URL as shown: credentials redacted.
    shown: String,
    store_dir: Option<String>,
    /// For nix-cache-info and narinfos: the whole request within the timeout.
    small: ureq::Agent,
    /// For NARs: the connection and the answer's headers within the timeout, then each read.
    bulk: ureq::Agent,
    timeout: Duration,
    max_bytes: u64,
    dir: PathBuf,
}

impl std::fmt::Debug for HttpCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpCache")
            .field("url", &self.shown)
            .field("store_dir", &self.store_dir)
            .finish_non_exhaustive()
    }
}

/// Why one try failed and whether another may succeed.
enum Failure {
    /// Worth another try: a connection or server problem. `progress` says the try moved the
    /// download on, `retry_after` is what the server asked for.
    Again {
        why: String,
        retry_after: Option<Duration>,
        progress: bool,
    },
    /// No use trying again.
    Fatal(String),
    /// Ctrl-C: the bytes received so far are in the `.part` file, for the next run to resume.
    Interrupted,
}

/// Statuses another try may cure: the server is busy or failing now. 501 and 505 say the
/// request can never work.
fn retryable_status(code: u16) -> bool {
    matches!(code, 408 | 429) || (500..600).contains(&code) && !matches!(code, 501 | 505)
}

/// Errors another try may cure: the network, not the request. A host name that does not
/// exist is not retried (std says so only in words: "failed to lookup address information:
/// Name or service not known"); a resolver's temporary failure is.
fn retryable_error(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::Io(io) => {
            let m = io.to_string();
            !m.contains("failed to lookup address information") || m.contains("Temporary failure")
        }
        ureq::Error::Timeout(_) | ureq::Error::ConnectionFailed | ureq::Error::BodyStalled => true,
        _ => false,
    }
}

/// The wait a `Retry-After` value asks for: seconds, or an HTTP date.
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let v = value.trim();
    if let Ok(s) = v.parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    Some(
        (when.with_timezone(&chrono::Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

fn retry_after(resp: &ureq::http::Response<ureq::Body>) -> Option<Duration> {
    resp.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, chrono::Utc::now()))
}

/// The wait before try `tries + 1`, after `tries` failed ones.
pub fn backoff(tries: u32) -> Duration {
    FIRST_RETRY
        .checked_mul(1u32 << tries.saturating_sub(1).min(16))
        .unwrap_or(MAX_RETRY_WAIT)
        .min(MAX_RETRY_WAIT)
}

/// `bytes 100-199/1000` → (100, Some(1000)); `*` for an unknown total.
pub fn parse_content_range(v: &str) -> Option<(u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let first: u64 = first.trim().parse().ok()?;
    let last: u64 = last.trim().parse().ok()?;
    if last < first {
        return None;
    }
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    Some((first, total))
}

/// A name safe as one path component: letters, digits and `._+=-` kept, the rest `_`.
fn safe_component(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._+=-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with('.') {
        out.insert_str(0, "nar");
    }
    out
}

/// Sleeps for `wait`, or less if Ctrl-C comes first (a wait before a retry may be minutes).
fn sleep_unless_interrupted(wait: Duration) -> Result<()> {
    /// Short enough that Ctrl-C feels immediate, long enough to cost nothing.
    const STEP: Duration = Duration::from_millis(100);
    let end = std::time::Instant::now() + wait;
    loop {
        crate::interrupt::check()?;
        let left = end.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        std::thread::sleep(left.min(STEP));
    }
}

/// Runs `f` on every item, at most `workers` at once, in order of the items; the first error
/// (in item order) is returned, and no new item is started once one has failed.
fn bounded_map<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<R>>>> =
        Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..workers.clamp(1, items.len().max(1)) {
            s.spawn(|| {
                loop {
                    if failed.load(Ordering::Relaxed) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let r = f(item);
                    if r.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    if let Ok(mut all) = results.lock() {
                        all[i] = Some(r);
                    }
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    // An item is missing only if another failed (and stopped the rest): that error is returned.
    let mut out = Vec::with_capacity(items.len());
    let mut missing = false;
    for r in results {
        match r {
            Some(Ok(v)) => out.push(v),
            Some(Err(e)) => return Err(e),
            None => missing = true,
        }
    }
    if missing {
        return Err(Error::Invalid("a worker thread stopped early".into()));
    }
    Ok(out)
}

/// SHA-256 and length of a file, read in pieces.
fn hash_file(path: &Path) -> std::io::Result<(NarHash, u64)> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((NarHash(h.finalize().into()), n))
}

/// Checks a downloaded file against the narinfo's FileSize and FileHash (those it has).
fn verify_file(path: &Path, info: &NarInfo) -> std::result::Result<(), String> {
    let len = fs::metadata(path).map_err(|e| e.to_string())?.len();
    if let Some(size) = info.file_size
        && size != len
    {
        return Err(format!(
            "narinfo says FileSize {size}, the download has {len} bytes"
        ));
    }
    if let Some(want) = info.file_hash {
        let (got, _) = hash_file(path).map_err(|e| e.to_string())?;
        if got != want {
            return Err(format!(
                "narinfo says FileHash {want}, the download hashes to {got}"
            ));
        }
    }
    Ok(())
}

impl HttpCache {
    /// Opens the cache at `url`: reads its `nix-cache-info` and checks its StoreDir.
    pub fn open(url: &str, opts: &HttpOptions, note: Note) -> Result<Self> {
        let base = url.split(['?', '#']).next().unwrap_or(url);
        let base = base.trim_end_matches('/').to_string();
        let small = crate::http::config("binary-cache reader")
            .timeout_per_call(Some(opts.timeout))
            .build()
            .into();
        let bulk = crate::http::config("binary-cache reader")
            .timeout_connect(Some(opts.timeout))
            .timeout_recv_response(Some(opts.timeout))
            .timeout_per_read(Some(opts.timeout))
            .build()
            .into();
        let mut cache = HttpCache {
            shown: redact(&base),
            url: base,
            store_dir: None,
            small,
            bulk,
            timeout: opts.timeout,
            max_bytes: opts.max_nar_bytes,
            dir: opts.dir()?,
        };
        let info_url = format!("{}/nix-cache-info", cache.url);
        let Some(text) = cache.get_small(&info_url, note)? else {
            return Err(cache.fail(
                &info_url,
                "not a binary cache: it has no nix-cache-info (HTTP 404)",
            ));
        };
        for line in text.lines() {
            if let Some((k, v)) = line.split_once(':')
                && k.trim() == "StoreDir"
            {
                let dir = v.trim().trim_end_matches('/');
                if !dir.starts_with('/') {
                    return Err(cache.fail(
                        &info_url,
                        format!("StoreDir '{}' is not an absolute path", v.trim()),
                    ));
                }
                cache.store_dir = Some(dir.to_string());
            }
        }
        Ok(cache)
    }

    /// The cache's URL as people may see it (credentials redacted).
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// An error about `url`, credentials redacted in the URL and the reason.
    fn fail(&self, url: &str, reason: impl Into<String>) -> Error {
        Error::Http {
            url: redact(url),
            reason: scrub(&reason.into(), url),
        }
    }

    /// Waits before try `tries + 1` of `url`, saying why on stderr; an error once [`TRIES`]
    /// tries have failed or the server asks for a longer wait than we give.
    fn pause(
        &self,
        url: &str,
        tries: u32,
        why: &str,
        retry_after: Option<Duration>,
        note: Note,
    ) -> Result<()> {
        if tries >= TRIES {
            return Err(self.fail(url, format!("{why} (gave up after {tries} tries)")));
        }
        if let Some(wait) = retry_after
            && wait > MAX_RETRY_WAIT
        {
            return Err(self.fail(
                url,
                format!(
                    "{why}; the server asks to come back in {} (Retry-After), longer than we wait",
                    humantime(wait)
                ),
            ));
        }
        let wait = retry_after.unwrap_or_else(|| backoff(tries));
        note(&format!(
            "GET {}: {}; try {} of {TRIES} in {}",
            redact(url),
            scrub(why, url),
            tries + 1,
            humantime(wait)
        ));
        sleep_unless_interrupted(wait)
    }

    /// GETs a small document (nix-cache-info, a narinfo) as text, with retries; `None` if the
    /// server has no such file (404, 403 or 410).
    fn get_small(&self, url: &str, note: Note) -> Result<Option<String>> {
        let mut tries = 0;
        loop {
            crate::interrupt::check()?;
            tries += 1;
            let failure = match self.small.get(url).call() {
                Err(e) if retryable_error(&e) => Failure::Again {
                    why: describe(&e, self.timeout, "64 KiB"),
                    retry_after: None,
                    progress: false,
                },
                Err(e) => Failure::Fatal(describe(&e, self.timeout, "64 KiB")),
                Ok(mut resp) => {
                    let code = resp.status().as_u16();
                    if matches!(code, 403 | 404 | 410) {
                        return Ok(None);
                    }
                    if retryable_status(code) {
                        Failure::Again {
                            why: format!("the server answered {}", status_line(resp.status())),
                            retry_after: retry_after(&resp),
                            progress: false,
                        }
                    } else if !resp.status().is_success() {
                        Failure::Fatal(format!(
                            "the server answered {}",
                            status_line(resp.status())
                        ))
                    } else {
                        match resp
                            .body_mut()
                            .with_config()
                            .limit(MAX_NARINFO)
                            .read_to_vec()
                        {
                            Ok(bytes) => {
                                return String::from_utf8(bytes)
                                    .map(Some)
                                    .map_err(|_| self.fail(url, "the answer is not UTF-8 text"));
                            }
                            Err(e) if retryable_error(&e) => Failure::Again {
                                why: describe(&e, self.timeout, "64 KiB"),
                                retry_after: None,
                                progress: false,
                            },
                            Err(e) => {
                                Failure::Fatal(describe(&e, self.timeout, "64 KiB; not a narinfo?"))
                            }
                        }
                    }
                }
            };
            match failure {
                Failure::Fatal(why) => return Err(self.fail(url, why)),
                Failure::Interrupted => return Err(Error::Interrupted),
                Failure::Again {
                    why, retry_after, ..
                } => self.pause(url, tries, &why, retry_after, note)?,
            }
        }
    }

    /// The narinfo of one store path (or hash), checked: it must be for that path, in the
    /// cache's store directory.
    pub fn lookup(&self, path: &str, note: Note) -> Result<Lookup> {
        let hash = hash_part(path).ok_or_else(|| {
            Error::Invalid(format!(
                "'{path}' is neither a store path nor a store path hash"
            ))
        })?;
        if let Some(dir) = &self.store_dir
            && path.starts_with('/')
            && !path.starts_with(&format!("{dir}/"))
        {
            return Err(Error::Invalid(format!(
                "{path} is not in {}'s store directory {dir}",
                self.shown
            )));
        }
        let url = format!("{}/{hash}.narinfo", self.url);
        let Some(text) = self.get_small(&url, note)? else {
            return Ok(Lookup::Absent);
        };
        let info = parse_narinfo(&text, &redact(&url))?;
        if hash_part(&info.store_path) != Some(hash) {
            return Err(self.fail(
                &url,
                format!("the narinfo is for another path, {}", info.store_path),
            ));
        }
        if let Some(dir) = &self.store_dir
            && !info.store_path.starts_with(&format!("{dir}/"))
        {
            return Err(self.fail(
                &url,
                format!(
                    "StorePath {} is outside the cache's StoreDir {dir}",
                    info.store_path
                ),
            ));
        }
        if info.nar_size > self.max_bytes || info.file_size.unwrap_or(0) > self.max_bytes {
            return Ok(Lookup::TooLarge(info));
        }
        Ok(Lookup::Found(info))
    }

    /// Looks up every path, [`MAX_CONCURRENT`] at a time; the narinfos are cheap, so all of
    /// them are read before any NAR is chosen.
    pub fn find(&self, paths: &[String], progress: Progress, note: Note) -> Result<Found> {
        let bar = progress.items(&format!("narinfo from {}", self.shown), paths.len() as u64);
        let note_above = |m: &str| bar.suspend(|| note(m));
        let looked = bounded_map(paths, MAX_CONCURRENT, |p| {
            let r = self.lookup(p, &note_above);
            bar.inc(1);
            r
        });
        bar.finish_and_clear();
        let mut found = Found::default();
        for (path, l) in paths.iter().zip(looked?) {
            match l {
                Lookup::Found(info) => found.infos.push(info),
                Lookup::Absent => found.absent.push(path.clone()),
                Lookup::TooLarge(info) => found
                    .too_large
                    .push((path.clone(), info.nar_size.max(info.file_size.unwrap_or(0)))),
            }
        }
        Ok(found)
    }

    /// The absolute URL of a narinfo's `URL:` field (relative to the cache, unless absolute).
    pub fn nar_url(&self, rel: &str) -> String {
        if crate::redact::is_http(rel) {
            rel.to_string()
        } else {
            format!("{}/{}", self.url, rel.trim_start_matches('/'))
        }
    }

    /// Where the NAR file of `info` is kept: `<download dir>/<host and path of the cache>/<file
    /// name of its URL>`. Binary caches name NAR files by their hash, so names do not clash
    /// within a cache, and the directory per cache keeps caches apart.
    pub fn local_path(&self, info: &NarInfo) -> PathBuf {
        let shown = redact(&self.url);
        let after_scheme = shown.split_once("://").map_or(shown.as_str(), |x| x.1);
        let site = after_scheme
            .split_once("@")
            .map_or(after_scheme, |x| x.1)
            .replace(['/', ':'], "_");
        let name = info
            .url
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
            .rsplit('/')
            .next()
            .unwrap_or_default();
        self.dir
            .join(safe_component(&site))
            .join(safe_component(name))
    }

    /// Makes the NAR file of `info` present and verified at [`Self::local_path`], downloading
    /// what is missing; returns whether anything was downloaded. `bar` counts bytes received.
    pub fn download(&self, info: &NarInfo, bar: &ProgressBar, note: Note) -> Result<bool> {
        let url = self.nar_url(&info.url);
        let dest = self.local_path(info);
        let what = |why: &str| format!("{}: {why}", info.store_path);
        if dest.is_file() {
            match verify_file(&dest, info) {
                Ok(()) => return Ok(false),
                Err(why) => {
                    note(&format!("{}: {why}; downloading it again", dest.display()));
                    fs::remove_file(&dest).map_err(|e| Error::io(&dest, e))?;
                }
            }
        }
        let dir = dest.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let mut part_name = dest.file_name().unwrap_or_default().to_os_string();
        part_name.push(".part");
        let part_path = dest.with_file_name(part_name);
        let io = |e| Error::io(&part_path, e);
        let mut part = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&part_path)
            .map_err(io)?;
        // Another run downloading the same file: wait for it, then use what it left.
        match part.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                note(&format!(
                    "{}: another run is downloading it; waiting",
                    part_path.display()
                ));
                part.lock().map_err(io)?;
            }
            Err(fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        if dest.is_file() && verify_file(&dest, info).is_ok() {
            if part.metadata().is_ok_and(|m| m.len() == 0) {
                let _ = fs::remove_file(&part_path);
            }
            return Ok(false);
        }
        let kept = part.metadata().map_err(io)?.len();
        let inherited = kept > 0;
        bar.inc(kept);
        let mut started_over = false;
        let mut tries = 0;
        // Tries that moved the download on, each of which starts the count of tries anew.
        let mut resumed = 0;
        loop {
            let mut have = part.metadata().map_err(io)?.len();
            if info.file_size.is_some_and(|size| have > size) {
                part.set_len(0).map_err(io)?;
                have = 0;
            }
            let complete = info.file_size == Some(have);
            if !complete {
                tries += 1;
                match self.transfer(&url, &mut part, &part_path, have, info, bar) {
                    Ok(()) => {}
                    Err(Failure::Interrupted) => {
                        // What arrived is on disk, for the next run to resume; an empty file
                        // would only be clutter.
                        let empty = part.metadata().is_ok_and(|m| m.len() == 0);
                        drop(part);
                        if empty {
                            let _ = fs::remove_file(&part_path);
                        }
                        return Err(Error::Interrupted);
                    }
                    Err(Failure::Fatal(why)) => {
                        // Bytes received are kept for the next run to resume; an empty file is not.
                        if part.metadata().is_ok_and(|m| m.len() == 0) {
                            drop(part);
                            let _ = fs::remove_file(&part_path);
                        }
                        return Err(self.fail(&url, what(&why)));
                    }
                    Err(Failure::Again {
                        why,
                        retry_after,
                        progress,
                    }) => {
                        if progress && resumed < MAX_RESUMES {
                            // The transfer moved on: a flaky link, not a dead server.
                            resumed += 1;
                            tries = 1;
                        }
                        self.pause(&url, tries, &what(&why), retry_after, note)?;
                        continue;
                    }
                }
            }
            part.flush().map_err(io)?;
            match verify_file(&part_path, info) {
                Ok(()) => break,
                Err(why) => {
                    let len = part.metadata().map_err(io)?.len();
                    bar.set_position(bar.position().saturating_sub(len));
                    part.set_len(0).map_err(io)?;
                    if inherited && !started_over {
                        // The bytes kept from an earlier run may be the wrong ones.
                        note(&format!(
                            "{}: {why}, after resuming an earlier partial download; starting over",
                            redact(&url)
                        ));
                        started_over = true;
                        tries = 0;
                        continue;
                    }
                    drop(part);
                    let _ = fs::remove_file(&part_path);
                    return Err(self.fail(&url, what(&why)));
                }
            }
        }
        part.sync_all().map_err(io)?;
        fs::rename(&part_path, &dest).map_err(|e| Error::io(&dest, e))?;
        Ok(true)
    }

    /// One GET of the NAR from byte `have` on, appended to `part`.
    fn transfer(
        &self,
        url: &str,
        part: &mut File,
        part_path: &Path,
        have: u64,
        info: &NarInfo,
        bar: &ProgressBar,
    ) -> std::result::Result<(), Failure> {
        let io = |e: std::io::Error| Failure::Fatal(format!("{}: {e}", part_path.display()));
        let mut req = self.bulk.get(url);
        if have > 0 {
            req = req.header("Range", format!("bytes={have}-"));
        }
        let mut resp = match req.call() {
            Ok(r) => r,
            Err(e) if retryable_error(&e) => {
                return Err(Failure::Again {
                    why: describe(&e, self.timeout, "the announced size"),
                    retry_after: None,
                    progress: false,
                });
            }
            Err(e) => {
                return Err(Failure::Fatal(describe(
                    &e,
                    self.timeout,
                    "the announced size",
                )));
            }
        };
        let code = resp.status().as_u16();
        let start = match code {
            200 => {
                if have > 0 {
                    // The server sends the whole file instead of the rest: start again.
                    part.set_len(0).map_err(io)?;
                    bar.set_position(bar.position().saturating_sub(have));
                }
                0
            }
            206 if have > 0 => {
                let range = resp
                    .headers()
                    .get("content-range")
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_content_range);
                match range {
                    Some((first, total)) if first == have => {
                        if let (Some(t), Some(size)) = (total, info.file_size)
                            && t != size
                        {
                            return Err(Failure::Fatal(format!(
                                "the server's file has {t} bytes, the narinfo says FileSize {size}"
                            )));
                        }
                        have
                    }
                    _ => {
                        // A range we did not ask for: drop what we have and start over.
                        part.set_len(0).map_err(io)?;
                        bar.set_position(bar.position().saturating_sub(have));
                        return Err(Failure::Again {
                            why: "the server answered another range than asked for".into(),
                            retry_after: None,
                            progress: false,
                        });
                    }
                }
            }
            416 if have > 0 => {
                part.set_len(0).map_err(io)?;
                bar.set_position(bar.position().saturating_sub(have));
                return Err(Failure::Again {
                    why: format!(
                        "the server cannot resume at byte {have} (HTTP 416); starting over"
                    ),
                    retry_after: None,
                    progress: false,
                });
            }
            403 | 404 | 410 => {
                return Err(Failure::Fatal(format!(
                    "the narinfo points to a NAR the cache does not have ({})",
                    status_line(resp.status())
                )));
            }
            c if retryable_status(c) => {
                return Err(Failure::Again {
                    why: format!("the server answered {}", status_line(resp.status())),
                    retry_after: retry_after(&resp),
                    progress: false,
                });
            }
            _ => {
                return Err(Failure::Fatal(format!(
                    "the server answered {}",
                    status_line(resp.status())
                )));
            }
        };
        // What may come: the rest of FileSize, or what the server announces, within the bound.
        let remaining = info.file_size.map(|size| size.saturating_sub(start));
        let announced = resp.body().content_length();
        if let (Some(r), Some(a)) = (remaining, announced)
            && a != r
        {
            return Err(Failure::Fatal(format!(
                "the server announces {a} bytes from byte {start}, the narinfo's FileSize {} \
                 leaves {r}",
                info.file_size.unwrap_or_default()
            )));
        }
        let room = self.max_bytes.saturating_sub(start);
        let limit = remaining.or(announced).unwrap_or(room);
        if limit > room {
            return Err(Failure::Fatal(format!(
                "the NAR file is larger than --max-nar-mib {}",
                self.max_bytes >> 20
            )));
        }
        part.seek(SeekFrom::Start(start)).map_err(io)?;
        let mut body = resp.body_mut().as_reader();
        let mut buf = vec![0u8; CHUNK];
        let mut got = 0u64;
        // Bytes received since `window` began: fewer than LOW_SPEED_BYTES in a whole timeout is
        // a stall, even if no single read waited that long.
        let (mut window, mut window_bytes) = (std::time::Instant::now(), 0u64);
        loop {
            if window.elapsed() >= self.timeout {
                if window_bytes < LOW_SPEED_BYTES {
                    part.flush().map_err(io)?;
                    return Err(Failure::Again {
                        why: format!(
                            "the transfer stalled ({window_bytes} bytes in {}) after byte {}",
                            humantime(self.timeout),
                            start + got
                        ),
                        retry_after: None,
                        progress: got > 0,
                    });
                }
                (window, window_bytes) = (std::time::Instant::now(), 0);
            }
            if crate::interrupt::requested() {
                part.flush().map_err(io)?;
                return Err(Failure::Interrupted);
            }
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    part.flush().map_err(io)?;
                    let e = ureq::Error::from(e);
                    let why = format!(
                        "{} after byte {}",
                        describe(&e, self.timeout, "the announced size"),
                        start + got
                    );
                    return Err(if retryable_error(&e) {
                        Failure::Again {
                            why,
                            retry_after: None,
                            progress: got > 0,
                        }
                    } else {
                        Failure::Fatal(why)
                    });
                }
            };
            if got + n as u64 > limit {
                // Nothing of this answer can be trusted.
                part.set_len(0).map_err(io)?;
                return Err(Failure::Fatal(format!(
                    "the body runs past the announced size ({} bytes); the partial download is \
                     dropped",
                    start + limit
                )));
            }
            part.write_all(&buf[..n]).map_err(io)?;
            got += n as u64;
            window_bytes += n as u64;
            bar.inc(n as u64);
        }
        if let Some(r) = remaining
            && got < r
        {
            // A body without a length that ended early.
            return Err(Failure::Again {
                why: format!("the body ended after byte {} of {}", start + got, start + r),
                retry_after: None,
                progress: got > 0,
            });
        }
        Ok(())
    }
}

/// Downloads the NAR files of `jobs` (a cache and a narinfo each; the same file once),
/// [`MAX_CONCURRENT`] at a time, with one progress bar over their bytes. Returns the number of
/// files downloaded and of bytes they hold, and the number found complete already.
pub fn download_all(
    jobs: &[(&HttpCache, &NarInfo)],
    progress: Progress,
    note: Note,
) -> Result<(usize, u64, usize)> {
    let mut seen = HashSet::new();
    let unique: Vec<&(&HttpCache, &NarInfo)> = jobs
        .iter()
        .filter(|(c, i)| seen.insert(c.local_path(i)))
        .collect();
    if unique.is_empty() {
        return Ok((0, 0, 0));
    }
    let total: u64 = unique
        .iter()
        .map(|(_, i)| i.file_size.unwrap_or(i.nar_size))
        .sum();
    let bar = progress.bytes("downloading NARs", total);
    let note_above = |m: &str| bar.suspend(|| note(m));
    let fetched = bounded_map(&unique, MAX_CONCURRENT, |(cache, info)| {
        let got = cache.download(info, &bar, &note_above)?;
        if !got {
            // Already complete: count its bytes as done.
            bar.inc(info.file_size.unwrap_or(info.nar_size));
        }
        Ok(got.then(|| fs::metadata(cache.local_path(info)).map_or(0, |m| m.len())))
    });
    bar.finish_and_clear();
    let fetched = fetched?;
    let n = fetched.iter().filter(|f| f.is_some()).count();
    let bytes = fetched.iter().flatten().sum();
    Ok((n, bytes, fetched.len() - n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_parts() {
        assert_eq!(
            hash_part("0a1b2c3d4e5g6h7i8j9kalbmcndpfqgr"),
            None,
            "e, o, u, t are not Nix base32"
        );
        let h = "0a1b2c3d4f5g6h7i8j9kalbmcndpfqgs";
        assert_eq!(hash_part(h), Some(h));
        assert_eq!(hash_part(&format!("/nix/store/{h}-hello-2.12")), Some(h));
        assert_eq!(hash_part(&format!("{h}-hello")), Some(h));
        assert_eq!(hash_part(&format!("{h}x")), None);
        assert_eq!(hash_part("/nix/store/short-hello"), None);
        assert_eq!(hash_part(""), None);
    }

    #[test]
    fn paths_files_skip_comments_and_repeats() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("paths");
        let h = "0a1b2c3d4f5g6h7i8j9kalbmcndpfqgs";
        fs::write(
            &p,
            format!("# outputs\n\n/nix/store/{h}-a\n  {h}  \n/nix/store/{h}-a\n"),
        )
        .unwrap();
        assert_eq!(read_paths(&p).unwrap(), vec![format!("/nix/store/{h}-a")]);
        fs::write(&p, "hello\n").unwrap();
        let e = read_paths(&p).unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("'hello'"), "{e}");
        fs::write(&p, "# nothing\n").unwrap();
        assert!(
            read_paths(&p)
                .unwrap_err()
                .to_string()
                .contains("no store paths")
        );
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = chrono::DateTime::parse_from_rfc2822("Wed, 21 Oct 2015 07:28:00 GMT")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        // A date in the past means now.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(4), Duration::from_secs(8));
        assert_eq!(backoff(40), MAX_RETRY_WAIT);
    }

    #[test]
    fn content_ranges() {
        assert_eq!(
            parse_content_range("bytes 100-199/1000"),
            Some((100, Some(1000)))
        );
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, None)));
        assert_eq!(parse_content_range("bytes */1000"), None);
        assert_eq!(parse_content_range("bytes 9-5/10"), None);
        assert_eq!(parse_content_range("items 1-2/3"), None);
    }

    #[test]
    fn statuses_worth_a_retry() {
        for c in [408, 429, 500, 502, 503, 504] {
            assert!(retryable_status(c), "{c}");
        }
        for c in [200, 400, 401, 403, 404, 416, 501, 505] {
            assert!(!retryable_status(c), "{c}");
        }
    }

    #[test]
    fn local_names_are_safe() {
        assert_eq!(safe_component("127.0.0.1_8080"), "127.0.0.1_8080");
        assert_eq!(safe_component(".."), "nar..");
        assert_eq!(safe_component("a b/c"), "a_b_c");
        assert_eq!(safe_component(""), "nar");
    }

    /// A cache as [`HttpCache::open`] would make it, without asking a server.
    fn cache_at(url: &str, dir: &Path) -> HttpCache {
        let agent = || crate::http::config("test").build().into();
        HttpCache {
            url: url.into(),
            shown: redact(url),
            store_dir: Some("/nix/store".into()),
            small: agent(),
            bulk: agent(),
            timeout: DEFAULT_TIMEOUT,
            max_bytes: 1 << 20,
            dir: dir.to_path_buf(),
        }
    }

    #[test]
    fn a_hostile_narinfo_url_cannot_name_a_file_outside_the_download_dir() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("downloads");
        let h = "0a1b2c3d4f5g6h7i8j9kalbmcndpfqgs";
        for cache_url in [
            "https://user:pw@cache.example:8443/sub/dir",
            "http://127.0.0.1:9",
            "https://../..",
        ] {
            let cache = cache_at(cache_url, &dir);
            for url in [
                "../../x",
                "/etc/passwd",
                "nar/../../../x",
                "..",
                ".",
                "",
                "nar/",
                "nar/..",
                "..\\..\\x",
                "%2e%2e/%2e%2e/x",
                "https://elsewhere.example/../../x",
                "nar/x.nar.xz?a=../../y#../../z",
                "nar/.hidden",
                "nar/x\0y",
            ] {
                let info = NarInfo {
                    store_path: format!("/nix/store/{h}-x"),
                    url: url.into(),
                    compression: "xz".into(),
                    file_hash: None,
                    file_size: None,
                    nar_hash: NarHash([0; 32]),
                    nar_size: 1,
                };
                let local = cache.local_path(&info);
                // Exactly two names below the download directory, neither of them special.
                let rel = local.strip_prefix(&dir).unwrap_or_else(|_| {
                    panic!("{cache_url} + {url}: {} is outside", local.display())
                });
                let parts: Vec<_> = rel.components().collect();
                assert_eq!(parts.len(), 2, "{cache_url} + {url}: {}", local.display());
                for c in parts {
                    let std::path::Component::Normal(name) = c else {
                        panic!("{cache_url} + {url}: {c:?} in {}", local.display());
                    };
                    let name = name.to_string_lossy();
                    assert!(!name.starts_with('.'), "{url}: hidden or special {name}");
                    assert!(!name.contains(['/', '\\', '\0']), "{url}: {name}");
                }
                // The cache's credentials are not part of any file name.
                assert!(!rel.to_string_lossy().contains("pw"), "{}", rel.display());
            }
        }
    }

    #[test]
    fn bounded_map_keeps_order_and_stops_at_an_error() {
        let items: Vec<u32> = (0..50).collect();
        let out = bounded_map(&items, 4, |x| Ok(x * 2)).unwrap();
        assert_eq!(out, items.iter().map(|x| x * 2).collect::<Vec<_>>());
        let e = bounded_map(&items, 4, |&x| {
            if x == 7 {
                Err(Error::Invalid("seven".into()))
            } else {
                Ok(x)
            }
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "seven");
        assert!(
            bounded_map(&[] as &[u32], 4, |&x| Ok(x))
                .unwrap()
                .is_empty()
        );
    }
}
