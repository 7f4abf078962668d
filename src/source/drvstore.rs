//! The derivation graph read from a store directory (`--drv-store DIR`, a snapshot's `store/`,
//! or the local `/nix/store` when it holds the steps' derivations), and written back as `.drv`
//! files into a snapshot.
//!
//! Reading: each distinct `drvPath` of the steps is looked up by its base name under the
//! directory ([`crate::nix::drv::drv_file`]), so steps naming `/nix/store/<hash>-x.drv` are
//! read from a store copied anywhere, and rows converted to the storeDir scheme (a base name,
//! docs/hydra.md §1) read the same. Files are read in parallel (rayon), each bounded by the
//! parser's [`MAX_DRV_SIZE`], and parsed by [`crate::nix::drv`]. A derivation whose file is
//! missing, unreadable or malformed is counted and left out (the first unreadable one is named
//! in a note), never fatal: the analysis falls back to no constraint for it. Only a directory
//! that is not there, or is not a directory, is an error.
//!
//! Writing ([`write`]): one ATerm `.drv` per derivation of the graph, from what the dataset
//! knows of it (outputs from the step outputs, the platform from the steps, input derivations
//! from the graph), with a fixed, plausible builder, arguments and environment. For the
//! built-in sample these are its derivations; for a graph read from a store they are
//! reconstructions that keep what the analysis reads (the graph), not the original files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use rayon::prelude::*;

use crate::analysis::Steps;
use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::nix::drv::{self, Derivation, DrvOutput, Format, InputDrv, MAX_DRV_SIZE};
use crate::nix::graph::DrvGraph;
use crate::readfile;

/// The store a Nix installation keeps its derivations in, probed when no `--drv-store` is given.
pub const DEFAULT_STORE: &str = "/nix/store";

/// How many of the steps' derivations are looked for in [`DEFAULT_STORE`] before reading it
/// whole: a farm's own Hydra host holds nearly all of them, another machine almost none, so a
/// handful (spread over the window) tells the two apart in a few microseconds; reading a store
/// that holds none would only count every step as missing.
pub const PROBES: usize = 16;

/// The distinct derivation paths of `steps`, in first-seen order.
pub fn distinct_drv_paths(steps: &Steps) -> Vec<&str> {
    distinct_drv_paths_in(steps, 0..steps.len())
}

/// The distinct derivation paths of the steps of rows `rows`, in first-seen order.
pub fn distinct_drv_paths_in(steps: &Steps, rows: impl IntoIterator<Item = usize>) -> Vec<&str> {
    let mut seen: std::collections::HashSet<&str> = Default::default();
    rows.into_iter()
        .filter_map(|i| steps.drv_path(i))
        .filter(|p| seen.insert(p))
        .collect()
}

/// Refuses `dir` unless it is a directory, as one line naming it.
pub fn check_dir(dir: &Path) -> Result<()> {
    let unreadable = |reason: String| Error::Unreadable {
        what: "derivation store (--drv-store)".into(),
        path: dir.to_path_buf(),
        reason,
    };
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(unreadable("is not a directory".into())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(unreadable("does not exist".into()))
        }
        Err(e) => Err(unreadable(format!("cannot be read: {e}"))),
    }
}

/// What became of one derivation asked about.
enum Read {
    Found(Vec<String>, Option<String>),
    Missing,
    Unparsable(String),
}

/// The derivation's `requiredSystemFeatures` (whitespace-separated in its environment), sorted
/// and joined with `,`: how both runners name the machine type of a step that requires features
/// (C++ `State::createStep`, a9581bcd; docs/hydra.md §5).
fn required_features(d: &Derivation<'_>) -> Option<String> {
    let (_, v) = d
        .env
        .iter()
        .find(|(k, _)| k.as_ref() == "requiredSystemFeatures")?;
    let mut f: Vec<&str> = v.as_ref().split_whitespace().collect();
    f.sort_unstable();
    f.dedup();
    (!f.is_empty()).then(|| f.join(","))
}

/// The names of a store directory's entries, as hashes, read once where the same directory is
/// asked about many times (a window read a span at a time, `analysis::fold`), so that a
/// derivation it does not hold is known missing without a failed open: over a year whose store
/// kept the last week's `.drv` files, each week's span asked some 900,000 paths in vain, and
/// the failed opens took 4 s a span, 200 s of the year's report.
pub struct Names(Vec<u64>);

impl Names {
    /// Lists `dir`.
    pub fn of(dir: &Path) -> Result<Names> {
        check_dir(dir)?;
        let unreadable = |e: std::io::Error| Error::Unreadable {
            what: "derivation store (--drv-store)".into(),
            path: dir.to_path_buf(),
            reason: format!("cannot be listed: {e}"),
        };
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(unreadable)? {
            if let Some(name) = entry.map_err(unreadable)?.file_name().to_str() {
                names.push(crate::analysis::graph::hash(name));
            }
        }
        names.sort_unstable();
        names.dedup();
        Ok(Names(names))
    }

    /// Whether an entry may be named `name` (a shared hash says yes; the open then decides).
    fn may_hold(&self, name: &str) -> bool {
        self.0
            .binary_search(&crate::analysis::graph::hash(name))
            .is_ok()
    }
}

fn read_one(dir: &Path, drv_path: &str, names: Option<&Names>) -> Read {
    let Ok(file) = drv::drv_file(dir, drv_path) else {
        // Not a store path of a `.drv` (schema 86's placeholders for old substitutions): no
        // store holds it.
        return Read::Missing;
    };
    let listed = |n: &Names| {
        let name = file.file_name().and_then(|f| f.to_str());
        name.is_some_and(|f| n.may_hold(f))
    };
    if names.is_some_and(|n| !listed(n)) {
        return Read::Missing;
    }
    let bytes = match readfile::read_capped(&file, "derivation", MAX_DRV_SIZE) {
        Ok(b) => b,
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Read::Missing;
        }
        Err(e) => return Read::Unparsable(e.to_string()),
    };
    match drv::parse(&bytes, &file.display().to_string()) {
        Ok(d) => Read::Found(
            d.input_drvs.iter().map(|i| i.path.to_string()).collect(),
            required_features(&d),
        ),
        Err(e) => Read::Unparsable(e.to_string()),
    }
}

/// Reads the input derivations of each of `drv_paths` (distinct) from the directory `dir`;
/// `source` names the directory in the graph.
pub fn read_graph(dir: &Path, drv_paths: &[&str], source: &str) -> Result<DrvGraph> {
    let (mut g, bad) = read_graph_listing(dir, drv_paths, source, None)?;
    if let Some((_, why)) = bad.first() {
        let note = crate::analysis::graph::unreadable_note(g.unparsable, source, why);
        g.notes.push(note);
    }
    Ok(g)
}

/// [`read_graph`], with the derivations that could not be read listed (path, and why) rather
/// than noted: a window read a span at a time notes them once over its spans
/// ([`crate::analysis::graph::Tally`]); `names`: the directory's entries, where listed once.
pub fn read_graph_listing(
    dir: &Path,
    drv_paths: &[&str],
    source: &str,
    names: Option<&Names>,
) -> Result<(DrvGraph, Vec<(String, String)>)> {
    check_dir(dir)?;
    let read: Vec<Read> = drv_paths
        .par_iter()
        .map(|p| read_one(dir, p, names))
        .collect();
    let mut g = DrvGraph {
        source: source.to_string(),
        asked: drv_paths.len(),
        ..DrvGraph::default()
    };
    g.inputs.reserve(drv_paths.len());
    let mut bad = Vec::new();
    for (path, r) in drv_paths.iter().zip(read) {
        match r {
            Read::Found(inputs, features) => {
                g.found += 1;
                g.inputs.insert(path.to_string(), inputs);
                if let Some(f) = features {
                    g.features.insert(path.to_string(), f);
                }
            }
            Read::Missing => g.missing += 1,
            Read::Unparsable(why) => {
                g.unparsable += 1;
                bad.push((path.to_string(), why));
            }
        }
    }
    Ok((g, bad))
}

/// Whether [`DEFAULT_STORE`] (or `dir`) holds any of up to [`PROBES`] of `drv_paths`, taken
/// evenly over the list.
pub fn holds_any(dir: &Path, drv_paths: &[&str]) -> bool {
    if drv_paths.is_empty() || !dir.is_dir() {
        return false;
    }
    let n = drv_paths.len();
    (0..PROBES.min(n))
        .map(|k| drv_paths[k * n / PROBES.min(n)])
        .any(|p| drv::drv_file(dir, p).is_ok_and(|f| f.is_file()))
}

/// What [`attach`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Attached {
    /// The graph was read from this directory.
    Read(PathBuf),
    /// The dataset came with its graph (the sample, a snapshot's `store/`).
    Kept,
    /// No directory given, and [`DEFAULT_STORE`] holds none of the derivations probed.
    None,
}

/// Fills `ds.drv_graph`: from `given` when given (replacing any graph the data came with),
/// else keeps the graph the data came with, else reads [`DEFAULT_STORE`] when it holds some of
/// the steps' derivations.
pub fn attach(ds: &mut Dataset, given: Option<&Path>) -> Result<Attached> {
    if given.is_none() && ds.drv_graph.is_some() {
        return Ok(Attached::Kept);
    }
    if let Some(dir) = given {
        check_dir(dir)?;
    }
    let steps = Steps::from_frame(&ds.steps)?;
    let paths = distinct_drv_paths(&steps);
    let dir = match given {
        Some(dir) => dir.to_path_buf(),
        None if holds_any(Path::new(DEFAULT_STORE), &paths) => PathBuf::from(DEFAULT_STORE),
        None => return Ok(Attached::None),
    };
    let graph = read_graph(&dir, &paths, &dir.display().to_string())?;
    drop(paths);
    drop(steps);
    ds.drv_graph = Some(graph);
    Ok(Attached::Read(dir))
}

/// The builder every written derivation names: a shell, as stdenv's derivations have.
const BUILDER: &str = "/nix/store/0aqsjc8m4yv2rjhph5zlzqpx0xvzcdj9-bash-5.2p37/bin/bash";
/// Its script, the one input source of every written derivation.
const BUILDER_SCRIPT: &str = "/nix/store/1b9p07z77phvv2hf6gm9f28syp53b99q-default-builder.sh";

/// Writes one `.drv` per derivation of `ds.drv_graph` into the directory `dir` (which must
/// exist), named by its base name; returns how many. Nothing is written without a graph.
pub fn write(ds: &Dataset, dir: &Path) -> Result<usize> {
    let Some(graph) = &ds.drv_graph else {
        return Ok(0);
    };
    let known = Known::of(ds)?;
    let mut keys: Vec<&String> = graph.inputs.keys().collect();
    keys.sort_unstable();
    keys.par_iter()
        .map(|path| -> Result<()> {
            let text = drv::unparse(&known.derivation(
                path,
                &graph.inputs[*path],
                graph.features.get(*path).map(String::as_str),
            ));
            let file = drv::drv_file(dir, path)?;
            crate::output::write_file_atomic(&file, text.as_bytes())
        })
        .collect::<Result<Vec<()>>>()?;
    Ok(keys.len())
}

/// What the dataset says of each derivation: its platform and outputs, from a step of it.
struct Known<'a> {
    system: HashMap<&'a str, &'a str>,
    outputs: HashMap<&'a str, Vec<(&'a str, &'a str)>>,
}

fn base(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(_, b)| b)
}

impl<'a> Known<'a> {
    fn of(ds: &'a Dataset) -> Result<Known<'a>> {
        let err = |what: &'static str| move |e: PolarsError| Error::frame(what, e);
        let s = &ds.steps;
        let build = s
            .column("build")
            .map_err(err("steps"))?
            .i32()
            .map_err(err("steps"))?;
        let stepnr = s
            .column("stepnr")
            .map_err(err("steps"))?
            .i32()
            .map_err(err("steps"))?;
        let drv = s
            .column("drv_path")
            .map_err(err("steps"))?
            .str()
            .map_err(err("steps"))?;
        let sys = s
            .column("system")
            .map_err(err("steps"))?
            .str()
            .map_err(err("steps"))?;
        let mut system = HashMap::new();
        let mut by_step: HashMap<(i32, i32), &'a str> = HashMap::new();
        for (((b, n), d), y) in build
            .iter()
            .zip(stepnr.iter())
            .zip(drv.iter())
            .zip(sys.iter())
        {
            if let Some(d) = d {
                if let Some(y) = y.filter(|y| !y.is_empty()) {
                    system.entry(base(d)).or_insert(y);
                }
                if let (Some(b), Some(n)) = (b, n) {
                    by_step.insert((b, n), d);
                }
            }
        }
        let o = &ds.step_outputs;
        let e = err("step outputs");
        let ob = o.column("build").map_err(e)?.i32().map_err(e)?;
        let on = o.column("stepnr").map_err(e)?.i32().map_err(e)?;
        let name = o.column("name").map_err(e)?.str().map_err(e)?;
        let path = o.column("path").map_err(e)?.str().map_err(e)?;
        let mut outputs: HashMap<&'a str, Vec<(&'a str, &'a str)>> = HashMap::new();
        for (((b, n), name), path) in ob.iter().zip(on.iter()).zip(name.iter()).zip(path.iter()) {
            let (Some(b), Some(n), Some(name), Some(path)) = (b, n, name, path) else {
                continue;
            };
            if let Some(d) = by_step.get(&(b, n)) {
                let v = outputs.entry(base(d)).or_default();
                if !v.iter().any(|(k, _)| *k == name) {
                    v.push((name, path));
                }
            }
        }
        for v in outputs.values_mut() {
            v.sort_unstable();
        }
        Ok(Known { system, outputs })
    }

    /// The derivation `path` as written: its outputs (input-addressed, with the paths the steps
    /// recorded; `out` with no path when none was), its inputs needing `out` where they have one
    /// (else their first output), the builder, and an environment as `derivation` sets it.
    fn derivation(
        &self,
        path: &'a str,
        inputs: &'a [String],
        features: Option<&'a str>,
    ) -> Derivation<'a> {
        let key = base(path);
        let name = key
            .split_once('-')
            .map_or(key, |(_, n)| n)
            .trim_end_matches(".drv");
        let platform = self.system.get(key).copied().unwrap_or("x86_64-linux");
        let outputs: Vec<(&str, &str)> = match self.outputs.get(key) {
            Some(v) if !v.is_empty() => v.clone(),
            _ => vec![("out", "")],
        };
        let mut input_drvs: Vec<InputDrv<'a>> = inputs
            .iter()
            .map(|i| {
                let wanted = match self.outputs.get(base(i)) {
                    Some(v) if !v.is_empty() && !v.iter().any(|(k, _)| *k == "out") => v[0].0,
                    _ => "out",
                };
                InputDrv {
                    path: i.as_str().into(),
                    outputs: vec![wanted.into()],
                    dynamic: Vec::new(),
                }
            })
            .collect();
        input_drvs.sort_by(|a, b| a.path.cmp(&b.path));
        input_drvs.dedup_by(|a, b| a.path == b.path);
        let names: Vec<&str> = outputs.iter().map(|(n, _)| *n).collect();
        let mut env: Vec<(drv::Str<'a>, drv::Str<'a>)> = vec![
            ("builder".into(), BUILDER.into()),
            ("name".into(), name.into()),
            ("outputs".into(), names.join(" ").into()),
            ("system".into(), platform.into()),
        ];
        env.extend(outputs.iter().map(|(n, p)| ((*n).into(), (*p).into())));
        if let Some(f) = features {
            env.push(("requiredSystemFeatures".into(), f.replace(',', " ").into()));
        }
        env.sort_by(|a, b| a.0.cmp(&b.0));
        env.dedup_by(|a, b| a.0 == b.0);
        Derivation {
            format: Format::Derive,
            outputs: outputs
                .iter()
                .map(|(n, p)| DrvOutput {
                    name: (*n).into(),
                    path: (*p).into(),
                    hash_algo: "".into(),
                    hash: "".into(),
                })
                .collect(),
            input_drvs,
            input_srcs: vec![BUILDER_SCRIPT.into()],
            platform: platform.into(),
            builder: BUILDER.into(),
            args: vec!["-e".into(), BUILDER_SCRIPT.into()],
            env,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixed_store_paths_are_store_paths() {
        for p in [BUILDER.trim_end_matches("/bin/bash"), BUILDER_SCRIPT] {
            assert!(crate::nix::store_path::hash_part(p).is_some(), "{p}");
        }
    }
}
