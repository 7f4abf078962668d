//! Where the NARs come from: a directory or store path (packed here), a `.nar`, a compressed
//! `.nar.xz`/`.nar.zst`/`.nar.bz2`, a binary cache — local (a directory with `nix-cache-info`,
//! or a `file://` URL) or remote (`http(s)://`, read by [`super::httpcache`]) — or, without
//! any input, a small default corpus of real files on this machine. The formats (NAR,
//! narinfo) are [`crate::nix`]'s.
//!
//! Every NAR is validated by the reader when it is loaded; NARs from a binary cache are also
//! checked against their narinfo (FileSize, FileHash, NarSize, NarHash).

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::codecs::decompress_stream;
use super::httpcache::{self, HttpCache, HttpOptions};
use super::spool::{IO_CHUNK, NarBytes, Spill, Spool, read_at};
use crate::error::{Error, Result};
use crate::nix::binary_cache::{MAX_NARINFO, Note};
use crate::nix::nar::{self, NarHash, NarSummary};
use crate::nix::narinfo::{self, NarCompression, NarInfo};
use crate::nix::store_path::hash_part;

/// One NAR to measure, before it is read.
#[derive(Debug, Clone, Serialize)]
pub struct NarSource {
    /// How the NAR is named in the results: a path, or a store path from a narinfo.
    pub name: String,
    #[serde(skip)]
    kind: Kind,
    #[serde(skip)]
    expected: Option<NarInfo>,
    /// Where the NAR file was downloaded from (redacted), to name it in errors.
    #[serde(skip)]
    origin: Option<String>,
}

#[derive(Debug, Clone)]
enum Kind {
    /// A file system tree, packed here.
    Pack(PathBuf),
    /// A NAR file, compressed or not.
    File(PathBuf, NarCompression),
    /// A NAR file of an HTTP binary cache, to be downloaded ([`fetch`]).
    Remote(Arc<HttpCache>, NarCompression),
}

/// A NAR ready to be read as often as needed (in memory, or in a file when large), validated.
pub struct LoadedNar {
    pub name: String,
    pub bytes: NarBytes,
    pub summary: NarSummary,
    /// For a NAR from a binary cache: the size of its compressed file, and how it is compressed.
    pub file: Option<(u64, &'static str)>,
}

/// Evenly spaced ranks from the smallest to the largest of `sorted` (sorted by size): `n` of
/// them, so that a sample spans the sizes. All of them when `n` is 0 or not smaller.
pub fn spread<T: Clone + PartialEq>(sorted: Vec<T>, n: usize) -> Vec<T> {
    if n == 0 || n >= sorted.len() {
        return sorted;
    }
    let last = sorted.len() - 1;
    let mut picks: Vec<T> = (0..n)
        .map(|i| if n == 1 { last / 2 } else { i * last / (n - 1) })
        .map(|i| sorted[i].clone())
        .collect();
    picks.dedup();
    picks
}

/// Is `input` an http(s):// URL (the scheme in any case)?
pub fn is_http(input: &str) -> bool {
    crate::redact::is_http(input)
}

/// The local path `input` names: a plain path, or a `file://` URL (the scheme in any case;
/// `file:///dir?compression=xz`, whose store options do not matter for reading, or
/// `file://localhost/dir`). A URL of another scheme, or a `file://` URL with a user or password,
/// is refused (redacted) rather than taken for a path and quoted in a "no such file" error.
fn local_path(input: &str) -> Result<PathBuf> {
    let Some(sch) = crate::redact::scheme(input) else {
        return Ok(PathBuf::from(input));
    };
    let shown = || crate::redact::redact(input);
    let Some(rest) = crate::redact::strip_scheme(input, "file") else {
        return Err(Error::Usage(format!(
            "{}: a {sch}:// URL is not read here; give a path, a file:// URL or an http(s):// URL",
            shown()
        )));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(Error::Usage(format!(
            "{}: a file:// URL names no user or password; write file:///path",
            shown()
        )));
    }
    let rest = if authority.eq_ignore_ascii_case("localhost") {
        &rest[authority.len()..]
    } else {
        rest
    };
    Ok(PathBuf::from(rest.split('?').next().unwrap_or(rest)))
}

/// Resolves `--input` values into NAR sources. `sample` keeps that many NARs of each binary
/// cache, spread evenly over the range of their NarSize. HTTP caches are refused here (they
/// need store paths and options: [`resolve_with`]).
pub fn resolve(inputs: &[String], sample: Option<usize>) -> Result<Vec<NarSource>> {
    resolve_with(inputs, sample, None, &HttpOptions::default(), &|_| {})
}

/// [`resolve`] with the store paths to take from binary caches (`--paths`; required for an
/// HTTP cache, which cannot be listed) and how HTTP caches are read. NARs of HTTP caches are
/// only looked up here; [`fetch`] downloads them.
pub fn resolve_with(
    inputs: &[String],
    sample: Option<usize>,
    paths: Option<&[String]>,
    http: &HttpOptions,
    note: Note,
) -> Result<Vec<NarSource>> {
    let mut out = Vec::new();
    let mut caches = 0;
    for input in inputs {
        if is_http(input) {
            let shown = crate::redact::redact(input);
            let Some(paths) = paths else {
                return Err(Error::Usage(format!(
                    "{shown}: an HTTP binary cache cannot be listed; name the store paths to \
                     measure with --paths FILE (one store path or hash a line), or use \
                     --from-outputs N --cache URL"
                )));
            };
            caches += 1;
            out.extend(http_cache(input, sample, paths, http, note)?);
            continue;
        }
        let path = local_path(input)?;
        let meta = fs::symlink_metadata(&path).map_err(|e| Error::io(&path, e))?;
        if meta.is_dir() && path.join("nix-cache-info").is_file() {
            caches += 1;
            out.extend(cache(&path, sample, paths, note)?);
            continue;
        }
        let name = path.to_string_lossy().into_owned();
        let lower = name.to_ascii_lowercase();
        let kind = if !meta.is_file() {
            Kind::Pack(path)
        } else if lower.ends_with(".nar") {
            Kind::File(path, NarCompression::None)
        } else if lower.ends_with(".xz") {
            Kind::File(path, NarCompression::Xz)
        } else if lower.ends_with(".zst") {
            Kind::File(path, NarCompression::Zstd)
        } else if lower.ends_with(".bz2") {
            Kind::File(path, NarCompression::Bzip2)
        } else {
            Kind::Pack(path)
        };
        out.push(NarSource {
            name,
            kind,
            expected: None,
            origin: None,
        });
    }
    if paths.is_some() && caches == 0 {
        return Err(Error::Usage(
            "--paths names store paths to take from a binary cache, and no --input is one".into(),
        ));
    }
    Ok(out)
}

/// The NARs of the HTTP binary cache at `url` for `paths`: every narinfo is read (they are
/// small), then `sample` of them are chosen by NarSize.
fn http_cache(
    url: &str,
    sample: Option<usize>,
    paths: &[String],
    http: &HttpOptions,
    note: Note,
) -> Result<Vec<NarSource>> {
    let cache = Arc::new(HttpCache::open(url, http, note)?);
    let found = cache.find(paths, http.progress, note)?;
    if let Some(msg) = found.describe_skipped(cache.shown(), paths.len(), http.max_nar_bytes) {
        note(&msg);
    }
    if found.infos.is_empty() {
        return Err(Error::NoData(format!(
            "{}: none of the {} paths given has a NAR to measure there{}",
            cache.shown(),
            paths.len(),
            found
                .absent
                .first()
                .map(|p| format!(" (no narinfo for {p})"))
                .unwrap_or_default()
        )));
    }
    let mut infos = found.infos;
    infos.sort_by(|a, b| (a.nar_size, &a.store_path).cmp(&(b.nar_size, &b.store_path)));
    spread(infos, sample.unwrap_or(0))
        .into_iter()
        .map(|info| NarSource::remote(cache.clone(), info))
        .collect()
}

/// The NARs of a binary cache directory, by its narinfo files (only those of `paths`, if
/// given).
fn cache(
    dir: &Path,
    sample: Option<usize>,
    paths: Option<&[String]>,
    note: Note,
) -> Result<Vec<NarSource>> {
    let wanted: Option<HashSet<&str>> =
        paths.map(|ps| ps.iter().filter_map(|p| hash_part(p)).collect());
    let mut infos = Vec::new();
    for e in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let p = e.map_err(|e| Error::io(dir, e))?.path();
        if p.extension().is_some_and(|x| x == "narinfo") {
            if let Some(w) = &wanted
                && !p
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .is_some_and(|s| w.contains(s))
            {
                continue;
            }
            let text = crate::readfile::read_capped_string(&p, "narinfo", MAX_NARINFO)?;
            infos.push(narinfo::parse(&text, &p.display().to_string())?);
        }
    }
    if let Some(w) = &wanted {
        let got: HashSet<&str> = infos
            .iter()
            .filter_map(|i| hash_part(&i.store_path))
            .collect();
        let absent: Vec<&String> = paths
            .unwrap_or_default()
            .iter()
            .filter(|p| hash_part(p).is_some_and(|h| !got.contains(h)))
            .collect();
        if let Some(first) = absent.first() {
            note(&format!(
                "{} of {} paths are not in {} (no narinfo; the first: {first})",
                absent.len(),
                w.len(),
                dir.display()
            ));
        }
    }
    if infos.is_empty() {
        return Err(Error::NoData(format!(
            "{}: a binary cache without any .narinfo{}",
            dir.display(),
            if wanted.is_some() {
                " for the --paths given"
            } else {
                ""
            }
        )));
    }
    infos.sort_by(|a, b| (a.nar_size, &a.store_path).cmp(&(b.nar_size, &b.store_path)));
    spread(infos, sample.unwrap_or(0))
        .into_iter()
        .map(|info| NarSource::from_cache(dir, info))
        .collect()
}

/// A binary cache to find store paths in (`--cache`): a directory or `file://` URL, or an
/// `http(s)://` URL.
#[derive(Debug, Clone)]
pub enum CacheRef {
    Local(PathBuf),
    Http(Arc<HttpCache>),
}

impl CacheRef {
    /// Opens `--cache` `s`; an HTTP cache is asked for its nix-cache-info.
    pub fn open(s: &str, http: &HttpOptions, note: Note) -> Result<Self> {
        if is_http(s) {
            return Ok(CacheRef::Http(Arc::new(HttpCache::open(s, http, note)?)));
        }
        Ok(CacheRef::Local(local_path(s)?))
    }
}

/// Looks up a store path in a local binary cache by its hash part (`<hash>.narinfo`).
pub fn find_in_cache(dir: &Path, store_path: &str) -> Result<Option<NarSource>> {
    let Some(hash) = hash_part(store_path) else {
        return Ok(None);
    };
    let p = dir.join(format!("{hash}.narinfo"));
    if !p.is_file() {
        return Ok(None);
    }
    let text = crate::readfile::read_capped_string(&p, "narinfo", MAX_NARINFO)?;
    let info = narinfo::parse(&text, &p.display().to_string())?;
    NarSource::from_cache(dir, info).map(Some)
}

/// Downloads the NAR files of every source from an HTTP cache ([`crate::nix::binary_cache::MAX_CONCURRENT`]
/// at a time, resumable, verified), after which they are read like local files. Says on
/// stderr what was downloaded and what was found complete in the download directory.
pub fn fetch(sources: &mut [NarSource], http: &HttpOptions, note: Note) -> Result<()> {
    let jobs: Vec<(&HttpCache, &NarInfo)> = sources
        .iter()
        .filter_map(|s| match (&s.kind, &s.expected) {
            (Kind::Remote(c, _), Some(info)) => Some((c.as_ref(), info)),
            _ => None,
        })
        .collect();
    if jobs.is_empty() {
        return Ok(());
    }
    let (n, bytes, reused) = httpcache::download_all(&jobs, http.progress, note)?;
    let dir = jobs[0].0.local_path(jobs[0].1);
    let dir = dir
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."));
    note(&format!(
        "downloaded {n} NAR file{} ({:.1} MB) into {}; {reused} {} there already",
        if n == 1 { "" } else { "s" },
        bytes as f64 / 1e6,
        dir.display(),
        if reused == 1 { "was" } else { "were" }
    ));
    for s in sources.iter_mut() {
        if let (Kind::Remote(c, comp), Some(info)) = (&s.kind, &s.expected) {
            s.origin = Some(crate::redact::redact(&c.nar_url(&info.url)));
            s.kind = Kind::File(c.local_path(info), *comp);
        }
    }
    Ok(())
}

impl NarSource {
    /// A NAR of the binary cache at `dir`, described by `info`.
    fn from_cache(dir: &Path, info: NarInfo) -> Result<Self> {
        let what = format!("{} (in {})", info.store_path, dir.display());
        let compression = NarCompression::from_narinfo(&info.compression, &what)?;
        // The narinfo names the file; it must be one of the cache's, not any file on the host.
        if !crate::output::is_relative_inside(&info.url) {
            return Err(Error::refused(
                what,
                format!(
                    "the narinfo's URL `{}` points outside the binary cache",
                    info.url
                ),
            ));
        }
        Ok(NarSource {
            name: info.store_path.clone(),
            kind: Kind::File(dir.join(&info.url), compression),
            expected: Some(info),
            origin: None,
        })
    }

    /// A tree to pack, named by its path.
    pub fn pack(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        NarSource {
            name: path.to_string_lossy().into_owned(),
            kind: Kind::Pack(path),
            expected: None,
            origin: None,
        }
    }

    /// An NAR of the HTTP binary cache `cache`, described by `info`; [`fetch`] downloads it.
    pub fn remote(cache: Arc<HttpCache>, info: NarInfo) -> Result<Self> {
        let what = format!("{} (in {})", info.store_path, cache.shown());
        let compression = NarCompression::from_narinfo(&info.compression, &what)?;
        Ok(NarSource {
            name: info.store_path.clone(),
            kind: Kind::Remote(cache, compression),
            expected: Some(info),
            origin: None,
        })
    }

    /// [`NarSource::load_with`] with the default spill settings.
    pub fn load(&self) -> Result<LoadedNar> {
        self.load_with(&Spill::default())
    }

    /// Reads, decompresses, validates, and checks the NAR against its narinfo if it has one;
    /// a large NAR is kept in a temporary file of `spill`, never whole in memory. A NAR of an
    /// HTTP cache not fetched yet is downloaded first.
    pub fn load_with(&self, spill: &Spill) -> Result<LoadedNar> {
        let mut file = None;
        let bytes = match &self.kind {
            Kind::Pack(p) => {
                // A tree whose files alone pass the bound goes to the file from the first byte,
                // instead of filling memory up to the bound first (walking it costs only stats).
                let files = tree_size(p, spill.in_memory_max);
                let known_large = (files > spill.in_memory_max).then_some(files);
                let mut spool = Spool::new(spill, known_large).map_err(|e| Error::io(p, e))?;
                nar::dump_path(p, &mut spool)?;
                spool.finish().map_err(|e| Error::io(p, e))?
            }
            Kind::Remote(cache, c) => {
                let Some(info) = &self.expected else {
                    return Err(Error::Internal(format!("{}: no narinfo", self.name)));
                };
                cache.download(info, &indicatif::ProgressBar::hidden(), &|_| {})?;
                let (bytes, size) = self.read_file(&cache.local_path(info), *c, spill)?;
                file = Some((size, c.narinfo_name()));
                bytes
            }
            Kind::File(p, c) => {
                let (bytes, size) = self.read_file(p, *c, spill)?;
                if self.expected.is_some() {
                    file = Some((size, c.narinfo_name()));
                }
                bytes
            }
        };
        let summary = nar::validate(bytes.reader()).map_err(|e| e.in_nar(self.shown_name()))?;
        if let Some(info) = &self.expected
            && (info.nar_size != summary.nar_size || info.nar_hash != summary.nar_hash)
        {
            return Err(Error::corrupt(
                self.shown_name(),
                format!(
                    "narinfo says NarSize {} NarHash {}, the NAR has {} bytes and {}",
                    info.nar_size, info.nar_hash, summary.nar_size, summary.nar_hash
                ),
            ));
        }
        Ok(LoadedNar {
            name: self.name.clone(),
            bytes,
            summary,
            file,
        })
    }

    /// A NAR file checked against the narinfo's FileSize and FileHash, and decompressed (to no
    /// more than the narinfo's NarSize) into a spool; an uncompressed one is read in place when
    /// large. Returns the NAR and the file's size.
    fn read_file(&self, p: &Path, c: NarCompression, spill: &Spill) -> Result<(NarBytes, u64)> {
        let f = File::open(p).map_err(|e| Error::io(p, e))?;
        let size = f.metadata().map_err(|e| Error::io(p, e))?.len();
        if let Some(info) = &self.expected {
            self.check_file(info, p, &f, size)?;
        }
        let nar_size = self.expected.as_ref().map_or(u64::MAX, |i| i.nar_size);
        let too_long = || {
            Error::corrupt(
                self.shown_name(),
                format!(
                    "narinfo says NarSize {nar_size}, {} decompresses to more",
                    p.display()
                ),
            )
        };
        if c == NarCompression::None {
            // A plain `.nar` already takes its size on disk and is read in place: no bound of
            // ours makes it any smaller, so only the narinfo's is checked.
            if size > nar_size {
                return Err(too_long());
            }
            let bytes = NarBytes::from_file(f, size, spill).map_err(|e| Error::io(p, e))?;
            return Ok((bytes, size));
        }
        // A narinfo announcing more than --max-nar-mib was skipped when the cache was read; one
        // whose file decompresses past either bound is stopped one byte past it, so that a
        // small hostile file cannot fill the spill directory.
        let limit = nar_size.min(spill.max_nar);
        let expected = self.expected.as_ref().map(|i| i.nar_size.min(limit));
        let mut spool = Spool::new(spill, expected).map_err(|e| Error::io(p, e))?;
        let n = decompress_stream(
            c,
            BufReader::with_capacity(IO_CHUNK, read_at(&f, size)),
            &mut spool,
            limit,
        )
        .map_err(|e| Error::io(p, e))?;
        if n > nar_size {
            return Err(too_long());
        }
        if n > limit {
            // A local file is its own name; a cache's file is named by its store path too.
            let file = p.display().to_string();
            let shown = self.shown_name();
            let named = if shown == file {
                file
            } else {
                format!("{shown} ({file})")
            };
            return Err(Error::refused(
                named,
                format!(
                    "decompresses to more than --max-nar-mib {} MiB ({size} bytes compressed); \
                     refused (raise --max-nar-mib to measure a NAR this large)",
                    spill.max_nar >> 20
                ),
            ));
        }
        Ok((spool.finish().map_err(|e| Error::io(p, e))?, size))
    }

    /// The NAR's name, and the URL it was downloaded from if it was.
    fn shown_name(&self) -> String {
        match &self.origin {
            Some(url) => format!("{} (from {url})", self.name),
            None => self.name.clone(),
        }
    }

    /// The file's size against FileSize, then its hash against FileHash (read a piece at a
    /// time: a file of GiB is hashed without holding it).
    fn check_file(&self, info: &NarInfo, path: &Path, f: &File, size: u64) -> Result<()> {
        if let Some(want) = info.file_size
            && want != size
        {
            return Err(Error::corrupt(
                path.display().to_string(),
                format!("narinfo says FileSize {want}, the file has {size} bytes"),
            ));
        }
        if let Some(h) = info.file_hash {
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; IO_CHUNK];
            let mut r = read_at(f, size);
            loop {
                let n = r.read(&mut buf).map_err(|e| Error::io(path, e))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
            let got = NarHash(hasher.finalize().into());
            if got != h {
                return Err(Error::corrupt(
                    path.display().to_string(),
                    format!("narinfo says FileHash {h}, the file hashes to {got}"),
                ));
            }
        }
        Ok(())
    }
}

/// Bytes of regular files under `path` (symlinks not followed), stopping once past `limit`.
fn tree_size(path: &Path, limit: u64) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return u64::MAX;
    };
    if meta.is_file() {
        return meta.len();
    }
    if !meta.is_dir() {
        return if meta.file_type().is_symlink() {
            0
        } else {
            u64::MAX
        };
    }
    let Ok(rd) = fs::read_dir(path) else {
        return u64::MAX;
    };
    let mut total = 0u64;
    for e in rd {
        let Ok(e) = e else { return u64::MAX };
        total = total.saturating_add(tree_size(&e.path(), limit.saturating_sub(total)));
        if total > limit {
            break;
        }
    }
    total
}

/// The default corpus: real files of this machine, packed as NARs of at most `per_nar` bytes,
/// at most `cap` bytes in all, shared evenly between the roots found: the Rust toolchain's
/// libraries (machine code, like most of a binary cache), the system's shared libraries, the
/// Python standard library (source text) and documentation (text, some of it already gzipped).
/// Deterministic: children are taken in name order.
pub fn default_corpus(cap: u64, per_nar: u64) -> Vec<NarSource> {
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(out) = Command::new("rustc").args(["--print", "sysroot"]).output()
        && out.status.success()
    {
        let sysroot = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        roots.extend(
            sorted_children(&sysroot.join("lib/rustlib"))
                .into_iter()
                .map(|t| t.join("lib")),
        );
    }
    roots.extend(
        sorted_children(Path::new("/usr/lib"))
            .into_iter()
            .filter(|p| {
                p.file_name().is_some_and(|n| {
                    let n = n.to_string_lossy();
                    n.ends_with("-linux-gnu") || (n.starts_with("python3") && !n.contains("dist"))
                })
            }),
    );
    roots.push(PathBuf::from("/usr/share/doc"));
    roots.retain(|r| r.is_dir());
    let mut out = Vec::new();
    if roots.is_empty() {
        return out;
    }
    let share = cap / roots.len() as u64;
    let mut total = 0;
    for root in &roots {
        let mut used = 0;
        for child in sorted_children(root) {
            let size = tree_size(&child, per_nar);
            // Tiny trees tell little about a codec; the floor keeps the corpus to real payloads.
            if size < (64 << 10) || size > per_nar || used + size > share || total + size > cap {
                continue;
            }
            used += size;
            total += size;
            out.push(NarSource::pack(child));
        }
    }
    out
}

fn sorted_children(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.sort();
    v
}
