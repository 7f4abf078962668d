//! Where the NARs come from: a directory or store path (packed here), a `.nar`, a compressed
//! `.nar.xz`/`.nar.zst`, a local binary cache (a directory with `nix-cache-info`, or a
//! `file://` URL), or, without any input, a small default corpus of real files on this machine.
//!
//! Every NAR is validated by the reader when it is loaded; NARs from a binary cache are also
//! checked against their narinfo (FileSize, FileHash, NarSize, NarHash).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::codecs::{Compression, decompress};
use crate::error::{Error, Result};
use crate::nar::{self, NarHash, NarSummary};

/// One NAR to measure, before it is read.
#[derive(Debug, Clone, Serialize)]
pub struct NarSource {
    /// How the NAR is named in the results: a path, or a store path from a narinfo.
    pub name: String,
    #[serde(skip)]
    kind: Kind,
    #[serde(skip)]
    expected: Option<NarInfo>,
}

#[derive(Debug, Clone)]
enum Kind {
    /// A file system tree, packed here.
    Pack(PathBuf),
    /// A NAR file, compressed or not.
    File(PathBuf, Compression),
}

/// A NAR in memory, validated.
pub struct LoadedNar {
    pub name: String,
    pub bytes: Vec<u8>,
    pub summary: NarSummary,
}

/// The fields of a `.narinfo` we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NarInfo {
    pub store_path: String,
    pub url: String,
    pub compression: String,
    pub file_hash: Option<NarHash>,
    pub file_size: Option<u64>,
    pub nar_hash: NarHash,
    pub nar_size: u64,
}

/// Parses a narinfo; `what` names it in errors.
pub fn parse_narinfo(text: &str, what: &str) -> Result<NarInfo> {
    let mut f: BTreeMap<&str, &str> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| Error::Invalid(format!("{what}: line '{line}' is not 'Key: value'")))?;
        f.insert(k.trim(), v.trim());
    }
    let get = |k: &str| {
        f.get(k)
            .copied()
            .ok_or_else(|| Error::Invalid(format!("{what}: no {k} field")))
    };
    let num = |k: &str, v: &str| {
        v.parse::<u64>()
            .map_err(|_| Error::Invalid(format!("{what}: {k} '{v}' is not a number")))
    };
    let hash = |k: &str, v: &str| {
        v.parse::<NarHash>()
            .map_err(|e| Error::Invalid(format!("{what}: {k}: {e}")))
    };
    Ok(NarInfo {
        store_path: get("StorePath")?.to_string(),
        url: get("URL")?.to_string(),
        // Nix reads a narinfo without Compression as bzip2, its historical default.
        compression: f.get("Compression").copied().unwrap_or("bzip2").to_string(),
        file_hash: f.get("FileHash").map(|v| hash("FileHash", v)).transpose()?,
        file_size: f.get("FileSize").map(|v| num("FileSize", v)).transpose()?,
        nar_hash: hash("NarHash", get("NarHash")?)?,
        nar_size: num("NarSize", get("NarSize")?)?,
    })
}

fn compression_of(name: &str, what: &str) -> Result<Compression> {
    match name {
        "none" | "" => Ok(Compression::None),
        "xz" => Ok(Compression::Xz),
        "zstd" => Ok(Compression::Zstd),
        "bzip2" => Ok(Compression::Bzip2),
        other => Err(Error::Invalid(format!(
            "{what}: compression '{other}' is not supported (xz, zstd, bzip2 or none)"
        ))),
    }
}

/// Resolves `--input` values into NAR sources. `sample` keeps that many NARs of each binary
/// cache, spread evenly over the range of their NarSize.
pub fn resolve(inputs: &[String], sample: Option<usize>) -> Result<Vec<NarSource>> {
    let mut out = Vec::new();
    for input in inputs {
        if input.starts_with("http://") || input.starts_with("https://") {
            return Err(Error::NotAvailable("compress --input http(s)://"));
        }
        let path = PathBuf::from(input.strip_prefix("file://").map_or(input.as_str(), |p| {
            // file:///dir?compression=xz: the store options do not matter for reading.
            p.split('?').next().unwrap_or(p)
        }));
        let meta = fs::symlink_metadata(&path).map_err(|e| Error::io(&path, e))?;
        if meta.is_dir() && path.join("nix-cache-info").is_file() {
            out.extend(cache(&path, sample)?);
            continue;
        }
        let name = path.to_string_lossy().into_owned();
        let lower = name.to_ascii_lowercase();
        let kind = if !meta.is_file() {
            Kind::Pack(path)
        } else if lower.ends_with(".nar") {
            Kind::File(path, Compression::None)
        } else if lower.ends_with(".xz") {
            Kind::File(path, Compression::Xz)
        } else if lower.ends_with(".zst") {
            Kind::File(path, Compression::Zstd)
        } else if lower.ends_with(".bz2") {
            Kind::File(path, Compression::Bzip2)
        } else {
            Kind::Pack(path)
        };
        out.push(NarSource {
            name,
            kind,
            expected: None,
        });
    }
    Ok(out)
}

/// The NARs of a binary cache directory, by its narinfo files.
fn cache(dir: &Path, sample: Option<usize>) -> Result<Vec<NarSource>> {
    let mut infos = Vec::new();
    for e in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let p = e.map_err(|e| Error::io(dir, e))?.path();
        if p.extension().is_some_and(|x| x == "narinfo") {
            let text = fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
            infos.push(parse_narinfo(&text, &p.display().to_string())?);
        }
    }
    if infos.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: a binary cache without any .narinfo",
            dir.display()
        )));
    }
    infos.sort_by(|a, b| (a.nar_size, &a.store_path).cmp(&(b.nar_size, &b.store_path)));
    if let Some(n) = sample.filter(|&n| n > 0 && n < infos.len()) {
        // Evenly spaced ranks from the smallest to the largest: the sample spans the sizes.
        let last = infos.len() - 1;
        let picks: Vec<usize> = (0..n)
            .map(|i| if n == 1 { last / 2 } else { i * last / (n - 1) })
            .collect();
        infos = picks.into_iter().map(|i| infos[i].clone()).collect();
        infos.dedup();
    }
    infos
        .into_iter()
        .map(|info| NarSource::from_cache(dir, info))
        .collect()
}

/// Looks up a store path in a local binary cache by its hash part (`<hash>.narinfo`).
pub fn find_in_cache(dir: &Path, store_path: &str) -> Result<Option<NarSource>> {
    let base = store_path.rsplit('/').next().unwrap_or(store_path);
    let Some(hash) = base.get(..32) else {
        return Ok(None);
    };
    let p = dir.join(format!("{hash}.narinfo"));
    if !p.is_file() {
        return Ok(None);
    }
    let text = fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
    let info = parse_narinfo(&text, &p.display().to_string())?;
    NarSource::from_cache(dir, info).map(Some)
}

impl NarSource {
    /// A NAR of the binary cache at `dir`, described by `info`.
    fn from_cache(dir: &Path, info: NarInfo) -> Result<Self> {
        let what = format!("{} (in {})", info.store_path, dir.display());
        let compression = compression_of(&info.compression, &what)?;
        Ok(NarSource {
            name: info.store_path.clone(),
            kind: Kind::File(dir.join(&info.url), compression),
            expected: Some(info),
        })
    }

    /// A tree to pack, named by its path.
    pub fn pack(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        NarSource {
            name: path.to_string_lossy().into_owned(),
            kind: Kind::Pack(path),
            expected: None,
        }
    }

    /// Reads, decompresses, validates, and checks the NAR against its narinfo if it has one.
    pub fn load(&self) -> Result<LoadedNar> {
        let bytes = match &self.kind {
            Kind::Pack(p) => {
                let mut v = Vec::new();
                nar::dump_path(p, &mut v)?;
                v
            }
            Kind::File(p, c) => {
                let raw = fs::read(p).map_err(|e| Error::io(p, e))?;
                if let Some(info) = &self.expected {
                    self.check_file(info, p, &raw)?;
                }
                let mut out = Vec::new();
                decompress(
                    *c,
                    &raw,
                    self.expected
                        .as_ref()
                        .map_or(raw.len() * 4, |i| i.nar_size as usize),
                    &mut out,
                )
                .map_err(|e| Error::io(p, e))?;
                out
            }
        };
        let summary = nar::validate(&bytes[..]).map_err(|e| e.in_nar(&self.name))?;
        if let Some(info) = &self.expected
            && (info.nar_size != summary.nar_size || info.nar_hash != summary.nar_hash)
        {
            return Err(Error::Invalid(format!(
                "{}: narinfo says NarSize {} NarHash {}, the NAR has {} bytes and {}",
                self.name, info.nar_size, info.nar_hash, summary.nar_size, summary.nar_hash
            )));
        }
        Ok(LoadedNar {
            name: self.name.clone(),
            bytes,
            summary,
        })
    }

    fn check_file(&self, info: &NarInfo, path: &Path, raw: &[u8]) -> Result<()> {
        if let Some(size) = info.file_size
            && size != raw.len() as u64
        {
            return Err(Error::Invalid(format!(
                "{}: narinfo says FileSize {size}, the file has {} bytes",
                path.display(),
                raw.len()
            )));
        }
        if let Some(h) = info.file_hash {
            let got = NarHash(Sha256::digest(raw).into());
            if got != h {
                return Err(Error::Invalid(format!(
                    "{}: narinfo says FileHash {h}, the file hashes to {got}",
                    path.display()
                )));
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
