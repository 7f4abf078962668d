//! A Nix binary cache read over `http(s)://`: the requests its protocol consists of
//! (NixOS/nix `src/libstore/http-binary-cache-store.cc`, `binary-cache-store.cc`;
//! docs/hydra.md §6) and nothing about what they are used for.
//!
//! - `nix-cache-info`, asked for when the cache is opened ([`BinaryCache::open`]); its
//!   `StoreDir` must be an absolute path, and every store path looked up must lie in it;
//! - `<hash>.narinfo` for a store path ([`BinaryCache::lookup`]), bounded to
//!   [`MAX_NARINFO`], parsed by [`super::narinfo`] and checked to be for that path;
//! - the NAR file a narinfo's `URL` names, relative to the cache unless absolute
//!   ([`BinaryCache::nar_url`]), fetched into a file the caller names
//!   ([`BinaryCache::download`]).
//!
//! Downloads are resumable: bytes go to `<file>.part`, an interrupted transfer continues with
//! `Range: bytes=N-` (a server that answers the whole file instead is read from the start), and
//! the file is renamed into place only once its FileSize and FileHash verify; a verified file
//! already there is used without a request. Decompressing the NAR and checking NarSize and
//! NarHash is the caller's part.
//!
//! Politeness: at most [`MAX_CONCURRENT`] requests at once (the callers keep to it), a
//! User-Agent naming this tool, [`TRIES`] tries with doubling waits (or the server's
//! Retry-After) on connection failures, timeouts, 408, 429 and 5xx, a timeout on every request,
//! and a size bound on every answer. Credentials in the cache URL are sent (ureq turns them into
//! Basic authentication) but never shown: every message carries the URL redacted.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

use indicatif::ProgressBar;
use sha2::{Digest, Sha256};

use super::nar::NarHash;
use super::narinfo::{self, NarInfo};
use super::store_path::hash_part;
use crate::error::{Error, Result};
use crate::http::{describe, humantime, status_line};
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

/// What a cache says about one store path.
#[derive(Debug, Clone)]
pub enum Lookup {
    Found(NarInfo),
    /// No narinfo (HTTP 404, or 403 as S3 answers for a missing key; Nix reads both so).
    Absent,
    /// Its FileSize or NarSize is over the bound the cache was opened with (`--max-nar-mib`).
    TooLarge(NarInfo),
}

/// One HTTP binary cache, opened.
pub struct BinaryCache {
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
    /// The largest NAR (its FileSize or NarSize) fetched from it; a larger one is
    /// [`Lookup::TooLarge`].
    max_bytes: u64,
}

impl std::fmt::Debug for BinaryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BinaryCache")
            .field("url", &self.shown)
            .field("store_dir", &self.store_dir)
            .finish_non_exhaustive()
    }
}

/// What `nix-cache-info` says that matters here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheInfo {
    /// `StoreDir`, without a trailing slash; `None` when the file does not say.
    pub store_dir: Option<String>,
}

impl CacheInfo {
    /// Parses the text of `nix-cache-info` (`Key: value` lines; keys other than `StoreDir` are
    /// ignored). The error says what is wrong, for the caller to name the URL.
    pub fn parse(text: &str) -> std::result::Result<CacheInfo, String> {
        let mut info = CacheInfo::default();
        for line in text.lines() {
            if let Some((k, v)) = line.split_once(':')
                && k.trim() == "StoreDir"
            {
                let dir = v.trim().trim_end_matches('/');
                if !dir.starts_with('/') {
                    return Err(format!("StoreDir '{}' is not an absolute path", v.trim()));
                }
                info.store_dir = Some(dir.to_string());
            }
        }
        Ok(info)
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

impl BinaryCache {
    /// Opens the cache at `url`: reads its `nix-cache-info` and checks its StoreDir. Every
    /// request waits at most `timeout` (for a NAR: for the answer's headers, then for each
    /// read); NARs larger than `max_nar_bytes` are not fetched.
    pub fn open(url: &str, timeout: Duration, max_nar_bytes: u64, note: Note) -> Result<Self> {
        let base = url.split(['?', '#']).next().unwrap_or(url);
        let base = base.trim_end_matches('/').to_string();
        let small = crate::http::config("binary-cache reader")
            .timeout_per_call(Some(timeout))
            .build()
            .into();
        let bulk = crate::http::config("binary-cache reader")
            .timeout_connect(Some(timeout))
            .timeout_recv_response(Some(timeout))
            .timeout_per_read(Some(timeout))
            .build()
            .into();
        let mut cache = BinaryCache {
            shown: redact(&base),
            url: base,
            store_dir: None,
            small,
            bulk,
            timeout,
            max_bytes: max_nar_bytes,
        };
        let info_url = format!("{}/nix-cache-info", cache.url);
        let Some(text) = cache.get_small(&info_url, note)? else {
            return Err(cache.fail(
                &info_url,
                "not a binary cache: it has no nix-cache-info (HTTP 404)",
            ));
        };
        let info = CacheInfo::parse(&text).map_err(|why| cache.fail(&info_url, why))?;
        cache.store_dir = info.store_dir;
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
            Error::Usage(format!(
                "'{path}' is neither a store path nor a store path hash"
            ))
        })?;
        if let Some(dir) = &self.store_dir
            && path.starts_with('/')
            && !path.starts_with(&format!("{dir}/"))
        {
            return Err(Error::Usage(format!(
                "{path} is not in {}'s store directory {dir}",
                self.shown
            )));
        }
        let url = format!("{}/{hash}.narinfo", self.url);
        let Some(text) = self.get_small(&url, note)? else {
            return Ok(Lookup::Absent);
        };
        let info = narinfo::parse(&text, &redact(&url))?;
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

    /// The absolute URL of a narinfo's `URL:` field (relative to the cache, unless absolute).
    pub fn nar_url(&self, rel: &str) -> String {
        if crate::redact::is_http(rel) {
            rel.to_string()
        } else {
            format!("{}/{}", self.url, rel.trim_start_matches('/'))
        }
    }
    /// Makes the NAR file of `info` present and verified at `dest`, downloading what is
    /// missing; returns whether anything was downloaded. `bar` counts bytes received.
    pub fn download(
        &self,
        info: &NarInfo,
        dest: &Path,
        bar: &ProgressBar,
        note: Note,
    ) -> Result<bool> {
        let url = self.nar_url(&info.url);
        let what = |why: &str| format!("{}: {why}", info.store_path);
        if dest.is_file() {
            match verify_file(dest, info) {
                Ok(()) => return Ok(false),
                Err(why) => {
                    note(&format!("{}: {why}; downloading it again", dest.display()));
                    fs::remove_file(dest).map_err(|e| Error::io(dest, e))?;
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
        if dest.is_file() && verify_file(dest, info).is_ok() {
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
        fs::rename(&part_path, dest).map_err(|e| Error::io(dest, e))?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn cache_info_store_dirs() {
        let info = CacheInfo::parse("StoreDir: /nix/store/\nWantMassQuery: 1\nPriority: 40\n");
        assert_eq!(info.unwrap().store_dir.as_deref(), Some("/nix/store"));
        assert_eq!(CacheInfo::parse("Priority: 40\n").unwrap().store_dir, None);
        let e = CacheInfo::parse("StoreDir: nix/store\n").unwrap_err();
        assert_eq!(e, "StoreDir 'nix/store' is not an absolute path");
    }
}
