//! How `compress` reads `http(s)://` binary caches: the store paths to take (`--paths`, or the
//! outputs of the dataset's builds; a binary cache cannot be listed over HTTP), their narinfos
//! looked up [`MAX_CONCURRENT`] at a time with a progress bar, the NAR files kept in a download
//! directory (`--download-dir`, by default under `$XDG_CACHE_HOME`), and what was skipped said
//! once. The requests themselves — nix-cache-info, narinfos, resumable and verified NAR
//! downloads, retries — are [`crate::nix::binary_cache`]'s. The decompressed NAR is checked
//! against NarSize and NarHash when it is loaded ([`super::input`]).

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use indicatif::ProgressBar;

use crate::error::{Error, Result};
use crate::nix::binary_cache::{BinaryCache, DEFAULT_TIMEOUT, Lookup, MAX_CONCURRENT, Note};
use crate::nix::narinfo::NarInfo;
use crate::nix::store_path::hash_part;
use crate::progress::Progress;

/// Default `--max-nar-mib`. Memory no longer limits it (a large NAR is measured streaming, from
/// a temporary file), time and transfer do: 512 MiB covers all but the largest outputs (typical
/// NARs are KiB to tens of MiB; CUDA or TeX Live run to GiB), whose download and measurement —
/// xz-6 at about 2 MB/s per core, minutes per codec — would dwarf the rest of a sample. The
/// same bound stops a compressed NAR file, local too, from decompressing to more: past it a
/// file is either one of those rare outputs (raise the bound to measure it) or a bomb, a few
/// hundred KiB that would fill the spill directory with GiB.
pub const DEFAULT_MAX_NAR_MIB: u64 = 512;

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
                Error::Usage(
                    "no download directory: neither XDG_CACHE_HOME nor HOME is set; give \
                     --download-dir DIR"
                        .into(),
                )
            })
    }
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
        .map_err(|_| Error::parse(file.display().to_string(), "not UTF-8 text"))?;
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let hash = hash_part(line).ok_or_else(|| {
            Error::parse(
                format!("{} line {}", file.display(), i + 1),
                format!("'{line}' is neither a store path nor a store path hash"),
            )
        })?;
        if seen.insert(hash.to_string()) {
            out.push(line.to_string());
        }
    }
    if out.is_empty() {
        return Err(Error::parse(
            file.display().to_string(),
            "no store paths in it",
        ));
    }
    Ok(out)
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

/// An HTTP binary cache, and the directory its NAR files are downloaded into.
#[derive(Debug)]
pub struct HttpCache {
    cache: BinaryCache,
    dir: PathBuf,
}

impl HttpCache {
    /// Opens the cache at `url` (asking for its nix-cache-info), its NAR files to be kept in
    /// `opts`' download directory.
    pub fn open(url: &str, opts: &HttpOptions, note: Note) -> Result<Self> {
        let dir = opts.dir()?;
        let cache = BinaryCache::open(url, opts.timeout, opts.max_nar_bytes, note)?;
        Ok(HttpCache { cache, dir })
    }

    /// The cache's URL as people may see it (credentials redacted).
    pub fn shown(&self) -> &str {
        self.cache.shown()
    }

    /// The absolute URL of a narinfo's `URL:` field.
    pub fn nar_url(&self, rel: &str) -> String {
        self.cache.nar_url(rel)
    }

    /// Looks up every path, [`MAX_CONCURRENT`] at a time; the narinfos are cheap, so all of
    /// them are read before any NAR is chosen.
    pub fn find(&self, paths: &[String], progress: Progress, note: Note) -> Result<Found> {
        let bar = progress.items(
            &format!("narinfo from {}", self.cache.shown()),
            paths.len() as u64,
        );
        let note_above = |m: &str| bar.suspend(|| note(m));
        let looked = bounded_map(paths, MAX_CONCURRENT, |p| {
            let r = self.cache.lookup(p, &note_above);
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

    /// Where the NAR file of `info` is kept: `<download dir>/<host and path of the cache>/<file
    /// name of its URL>`. Binary caches name NAR files by their hash, so names do not clash
    /// within a cache, and the directory per cache keeps caches apart.
    pub fn local_path(&self, info: &NarInfo) -> PathBuf {
        local_path(&self.dir, self.cache.shown(), info)
    }

    /// Makes the NAR file of `info` present and verified at [`Self::local_path`], downloading
    /// what is missing; returns whether anything was downloaded. `bar` counts bytes received.
    pub fn download(&self, info: &NarInfo, bar: &ProgressBar, note: Note) -> Result<bool> {
        self.cache.download(info, &self.local_path(info), bar, note)
    }
}

/// [`HttpCache::local_path`] in the download directory `dir`, for the cache shown as `cache`
/// (its URL, credentials redacted: they are no part of a file name).
fn local_path(dir: &Path, cache: &str, info: &NarInfo) -> PathBuf {
    let after_scheme = cache.split_once("://").map_or(cache, |x| x.1);
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
    dir.join(safe_component(&site)).join(safe_component(name))
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
        return Err(Error::Internal("a worker thread stopped early".into()));
    }
    Ok(out)
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
    use crate::nix::nar::NarHash;

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
    fn local_names_are_safe() {
        assert_eq!(safe_component("127.0.0.1_8080"), "127.0.0.1_8080");
        assert_eq!(safe_component(".."), "nar..");
        assert_eq!(safe_component("a b/c"), "a_b_c");
        assert_eq!(safe_component(""), "nar");
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
            let shown = crate::redact::redact(cache_url);
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
                let local = local_path(&dir, &shown, &info);
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
                Err(Error::Internal("seven".into()))
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
