//! The `.narinfo` file a binary cache keeps for each store path (NixOS/nix
//! `src/libstore/nar-info.cc`; docs/hydra.md §6): `Key: value` lines naming the store path, the
//! URL of its NAR file relative to the cache, how that file is compressed, its size and hash,
//! and the size and hash of the NAR itself. Only the fields this tool checks are kept
//! (References, Deriver, Sig and CA are not).

use std::collections::BTreeMap;

use super::nar::NarHash;
use crate::error::{Error, Result};

/// The fields of a `.narinfo` we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NarInfo {
    pub store_path: String,
    pub url: String,
    /// The `Compression` field as written (`xz`, `zstd`, `bzip2`, `none`, …); see
    /// [`NarCompression::from_narinfo`] for the ones read here.
    pub compression: String,
    pub file_hash: Option<NarHash>,
    pub file_size: Option<u64>,
    pub nar_hash: NarHash,
    pub nar_size: u64,
}

/// Parses a narinfo; `what` names it in errors.
pub fn parse(text: &str, what: &str) -> Result<NarInfo> {
    let mut f: BTreeMap<&str, &str> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| Error::parse(what, format!("line '{line}' is not 'Key: value'")))?;
        f.insert(k.trim(), v.trim());
    }
    let get = |k: &str| {
        f.get(k)
            .copied()
            .ok_or_else(|| Error::parse(what, format!("no {k} field")))
    };
    let num = |k: &str, v: &str| {
        v.parse::<u64>()
            .map_err(|_| Error::parse(what, format!("{k} '{v}' is not a number")))
    };
    let hash = |k: &str, v: &str| {
        v.parse::<NarHash>()
            .map_err(|e| Error::parse(what, format!("{k}: {e}")))
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

/// How a NAR file is compressed: a narinfo's `Compression` field, or a `.nar[.xz|.zst|.bz2]`
/// file's extension. Binary caches may use other libarchive filters too (gzip, br, …); those
/// are not read here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NarCompression {
    None,
    Xz,
    Zstd,
    /// Old binary caches' default (Nix reads a narinfo without `Compression` as bzip2).
    Bzip2,
}

impl NarCompression {
    /// The name a narinfo gives it.
    pub fn narinfo_name(self) -> &'static str {
        match self {
            NarCompression::None => "none",
            NarCompression::Xz => "xz",
            NarCompression::Zstd => "zstd",
            NarCompression::Bzip2 => "bzip2",
        }
    }

    /// The compression a narinfo's `Compression` field names; `what` names the NAR in errors.
    pub fn from_narinfo(name: &str, what: &str) -> Result<Self> {
        match name {
            "none" | "" => Ok(NarCompression::None),
            "xz" => Ok(NarCompression::Xz),
            "zstd" => Ok(NarCompression::Zstd),
            "bzip2" => Ok(NarCompression::Bzip2),
            other => Err(Error::parse(
                what,
                format!("compression '{other}' is not supported (xz, zstd, bzip2 or none)"),
            )),
        }
    }
}
