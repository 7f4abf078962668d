//! `compress --from-outputs N`: measure the codecs on what the farm really builds — output paths
//! of the dataset's builds, chosen across the range of their sizes, found in the local Nix store
//! or in a given binary cache.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::input::{NarSource, find_in_cache};
use crate::dataset::Dataset;
use crate::error::{Error, Result};

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
    all.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    all.dedup_by(|a, b| a.0 == b.0);
    if n == 0 || all.len() <= n {
        return Ok(all);
    }
    let last = all.len() - 1;
    let mut picks: Vec<(String, i64)> = (0..n)
        .map(|i| if n == 1 { last / 2 } else { i * last / (n - 1) })
        .map(|i| all[i].clone())
        .collect();
    picks.dedup();
    Ok(picks)
}

/// Finds each picked path in the local store (packed from there) or in one of `caches`.
/// Returns the sources found and the paths not found.
pub fn locate(
    picks: &[(String, i64)],
    caches: &[PathBuf],
) -> Result<(Vec<NarSource>, Vec<String>)> {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    'paths: for (path, _) in picks {
        if Path::new(path).exists() {
            found.push(NarSource::pack(path));
            continue;
        }
        for c in caches {
            if let Some(src) = find_in_cache(c, path)? {
                found.push(src);
                continue 'paths;
            }
        }
        missing.push(path.clone());
    }
    Ok((found, missing))
}
