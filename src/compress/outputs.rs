//! `compress --from-outputs N`: measure the codecs on what the farm really builds — output paths
//! of the dataset's builds, chosen across the range of their sizes, found in the local Nix store
//! or in given binary caches (local or HTTP).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::httpcache::HttpOptions;
use super::input::{CacheRef, NarSource, find_in_cache, spread};
use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::nix::binary_cache::Note;

/// Output paths of finished, non-cached builds with a recorded size, `n` of them at evenly
/// spaced ranks of `Builds.size` (so the pick spans small and large outputs). One path per build:
/// its `out` output, or its first.
pub fn pick(ds: &Dataset, n: usize) -> Result<Vec<(String, i64)>> {
    let err = |t: &'static str| move |e| Error::frame(t, e);
    let b = &ds.builds;
    let ids = b
        .column("id")
        .map_err(err("builds"))?
        .i32()
        .map_err(err("builds"))?;
    let drv = b
        .column("drv_path")
        .map_err(err("builds"))?
        .str()
        .map_err(err("builds"))?;
    let size = b
        .column("size")
        .map_err(err("builds"))?
        .i64()
        .map_err(err("builds"))?;
    let fin = b
        .column("finished")
        .map_err(err("builds"))?
        .bool()
        .map_err(err("builds"))?;
    let cached = b
        .column("is_cached_build")
        .map_err(err("builds"))?
        .bool()
        .map_err(err("builds"))?;
    let mut top: HashMap<(i32, &str), i64> = HashMap::new();
    for i in 0..b.height() {
        if let (Some(id), Some(d), Some(s), Some(true), Some(false)) = (
            ids.get(i),
            drv.get(i),
            size.get(i),
            fin.get(i),
            cached.get(i),
        ) {
            top.insert((id, d), s);
        }
    }
    let s = &ds.steps;
    let sb = s
        .column("build")
        .map_err(err("steps"))?
        .i32()
        .map_err(err("steps"))?;
    let sn = s
        .column("stepnr")
        .map_err(err("steps"))?
        .i32()
        .map_err(err("steps"))?;
    let sd = s
        .column("drv_path")
        .map_err(err("steps"))?
        .str()
        .map_err(err("steps"))?;
    let mut step_size: HashMap<(i32, i32), i64> = HashMap::new();
    for i in 0..s.height() {
        if let (Some(b), Some(n), Some(d)) = (sb.get(i), sn.get(i), sd.get(i))
            && let Some(&sz) = top.get(&(b, d))
        {
            step_size.insert((b, n), sz);
        }
    }
    let o = &ds.step_outputs;
    let ob = o
        .column("build")
        .map_err(err("step_outputs"))?
        .i32()
        .map_err(err("step_outputs"))?;
    let on = o
        .column("stepnr")
        .map_err(err("step_outputs"))?
        .i32()
        .map_err(err("step_outputs"))?;
    let oname = o
        .column("name")
        .map_err(err("step_outputs"))?
        .str()
        .map_err(err("step_outputs"))?;
    let opath = o
        .column("path")
        .map_err(err("step_outputs"))?
        .str()
        .map_err(err("step_outputs"))?;
    // Per build step: its `out` path if it has one, else the first.
    let mut chosen: BTreeMap<(i32, i32), (String, i64, bool)> = BTreeMap::new();
    for i in 0..o.height() {
        let (Some(b), Some(n), Some(p)) = (ob.get(i), on.get(i), opath.get(i)) else {
            continue;
        };
        let Some(&sz) = step_size.get(&(b, n)) else {
            continue;
        };
        let is_out = oname.get(i) == Some("out");
        let e = chosen
            .entry((b, n))
            .or_insert_with(|| (p.to_string(), sz, is_out));
        if is_out && !e.2 {
            *e = (p.to_string(), sz, true);
        }
    }
    let mut all: Vec<(String, i64)> = chosen.into_values().map(|(p, s, _)| (p, s)).collect();
    all.sort_by(|(a_path, a_size), (b_path, b_size)| (a_size, a_path).cmp(&(b_size, b_path)));
    all.dedup_by(|a, b| a.0 == b.0);
    Ok(spread(all, n))
}

/// Where the picked paths were found, and which were not.
#[derive(Debug, Default)]
pub struct Located {
    pub found: Vec<NarSource>,
    /// In no store or cache.
    pub missing: Vec<String>,
    /// In an HTTP cache, but larger than `--max-nar-mib`.
    pub too_large: Vec<String>,
}

/// Finds each picked path in the local store (packed from there) or in one of `caches`, tried
/// in order (`--cache`: directories, `file://` or `http(s)://` URLs). NARs of HTTP caches are
/// only looked up here; [`super::input::fetch`] downloads them.
pub fn locate(
    picks: &[(String, i64)],
    caches: &[String],
    http: &HttpOptions,
    note: Note,
) -> Result<Located> {
    let mut out = Located::default();
    let mut rest: Vec<String> = Vec::new();
    for (path, _) in picks {
        if Path::new(path).exists() {
            out.found.push(NarSource::pack(path));
        } else {
            rest.push(path.clone());
        }
    }
    for c in caches {
        if rest.is_empty() {
            break;
        }
        match CacheRef::open(c, http, note)? {
            CacheRef::Local(dir) => {
                let mut left = Vec::new();
                for path in rest {
                    match find_in_cache(&dir, &path)? {
                        Some(src) => out.found.push(src),
                        None => left.push(path),
                    }
                }
                rest = left;
            }
            CacheRef::Http(cache) => {
                let found = cache.find(&rest, http.progress, note)?;
                for info in found.infos {
                    out.found.push(NarSource::remote(cache.clone(), info)?);
                }
                out.too_large
                    .extend(found.too_large.into_iter().map(|(p, _)| p));
                rest = found.absent;
            }
        }
    }
    out.missing = rest;
    Ok(out)
}
