//! The derivation graph joined with the steps: which step built each input derivation of each
//! step, as the same [`Edge`]s the estimate ([`super::deps`]) gives, plus how much of the window
//! the graph covers. Pure: the graph was read by `source::drvstore` (or made by the sample).
//!
//! # The rule
//!
//! For a step S of derivation P and each input derivation D of P (P's `.drv`, `inputDrvs`), the
//! step that built D is a usable step of `drvPath` D with status 0 (success), in any build —
//! a derivation needed by several builds is built once and recorded under one of them
//! (docs/hydra.md §1), which is what the same-build estimate cannot see. Of several:
//!
//! - the one that finished **latest at or before S's start**: S could not start before D's
//!   outputs existed, and the latest success before it is the one whose outputs S waited for
//!   (an earlier one was followed by a later rebuild only if its outputs were lost);
//! - if none finished by then, the one that finished **earliest after** S's start. Under the C++
//!   runner a step's times are the builder's own clock (docs/hydra.md §3), so a dependency built
//!   on a machine whose clock runs ahead can seem to stop after its dependent started; the
//!   nearest success in time is then the likeliest one it waited for. The ledger takes such an
//!   edge as "runnable after it started", which adds no waiting: the data cannot say when S
//!   became runnable. These edges are counted ([`Coverage::after_start`]) so that clock skew
//!   shows;
//! - a step that has not started waits for the latest success.
//!
//! An input with no successful step in the window was valid before the window began (built
//! earlier, or substituted): no constraint, counted as [`Coverage::inputs_before_window`].
//! Derivations are compared by base name, so full paths and storeDir-scheme base names (or two
//! store directories) meet.
//!
//! # Speed
//!
//! Successful steps are numbered by derivation (a hash map of base names), sorted once by
//! (number, stop); each input is one hash look-up and a binary search. The steps are joined in parallel
//! (rayon) over row chunks.

use std::collections::HashMap;

use rayon::prelude::*;
use serde::Serialize;

use super::Steps;
use super::deps::Edge;
use crate::dispatch::BuildStatus;
use crate::nix::graph::DrvGraph;

/// How much of the window the derivation graph covers, and how its edges were matched.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Coverage {
    /// Where the `.drv` files were read.
    pub source: String,
    /// Steps of the window with a machine (the ones the ledger places on a builder).
    pub steps: usize,
    /// Of those, how many had their `.drv` found.
    pub steps_found: usize,
    /// `steps_found / steps` (0 when there is no step).
    pub share_found: f64,
    /// Input derivations of the steps found (with a machine), one per step and input.
    pub inputs: usize,
    /// Of those, matched to a successful step in the window.
    pub inputs_matched: usize,
    /// Of the matched, those whose step finished only after the dependent started (see the
    /// module's rule).
    pub after_start: usize,
    /// Of those, with no successful step in the window: valid before it, no constraint.
    pub inputs_before_window: usize,
    /// Distinct derivations asked of the store, found, missing and unreadable.
    pub drvs_asked: usize,
    pub drvs_found: usize,
    pub drvs_missing: usize,
    pub drvs_unparsable: usize,
}

/// The edges of the graph over the steps, sorted, and its coverage.
#[derive(Debug, Clone, PartialEq)]
pub struct Joined {
    pub edges: Vec<Edge>,
    pub coverage: Coverage,
}

/// The base name of a store path (the path itself when it has no `/`).
fn base(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(_, b)| b)
}

/// Rows per parallel task: large enough that a task's bookkeeping is noise beside its look-ups.
const CHUNK: usize = 16 * 1024;

/// Counts of one chunk of steps, added up after the parallel join.
#[derive(Default)]
struct Counts {
    steps: usize,
    found: usize,
    inputs: usize,
    matched: usize,
    after: usize,
    before_window: usize,
}

/// Joins `graph` with `steps` (the usable ones, by `usable`): see the module's rule.
pub fn join(graph: &DrvGraph, steps: &Steps, usable: &[bool]) -> Joined {
    let n = steps.len();
    // Successful usable steps with a stop, each derivation numbered (by base name) so that
    // they sort as integers, in order of (derivation, stop, row).
    let mut ids: HashMap<&str, u32> = HashMap::with_capacity(n);
    let mut done: Vec<(u32, i64, u32)> = (0..n)
        .filter(|&i| usable[i] && steps.status(i) == Some(BuildStatus::Success))
        .filter_map(|i| {
            let d = base(steps.drv_path(i)?);
            let stop = steps.stop(i)?;
            let next = ids.len() as u32;
            Some((*ids.entry(d).or_insert(next), stop, i as u32))
        })
        .collect();
    done.par_sort_unstable();
    // Each derivation's run of `done`, by its number.
    let mut runs: Vec<(u32, u32)> = vec![(0, 0); ids.len()];
    let mut k = 0;
    while k < done.len() {
        let d = done[k].0;
        let end = k + done[k..].partition_point(|e| e.0 == d);
        runs[d as usize] = (k as u32, end as u32);
        k = end;
    }
    let chunks: Vec<(Vec<Edge>, Counts)> = (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| {
            let mut edges = Vec::new();
            let mut counts = Counts::default();
            for s in c * CHUNK..((c + 1) * CHUNK).min(n) {
                let counted = !steps.machine(s).is_empty();
                counts.steps += usize::from(counted);
                let Some(inputs) = steps.drv_path(s).and_then(|p| graph.inputs.get(p)) else {
                    continue;
                };
                if counted {
                    counts.found += 1;
                    counts.inputs += inputs.len();
                }
                if !usable[s] {
                    continue;
                }
                let start = steps.start(s);
                for d in inputs {
                    let Some(&(lo, hi)) = ids.get(base(d)).map(|&id| &runs[id as usize]) else {
                        counts.before_window += usize::from(counted);
                        continue;
                    };
                    let run = &done[lo as usize..hi as usize];
                    let (row, after) = match start {
                        None => (run[run.len() - 1].2, false),
                        Some(t) => match run.partition_point(|e| e.1 <= t) {
                            0 => (run[0].2, true),
                            k => (run[k - 1].2, false),
                        },
                    };
                    if counted {
                        counts.matched += 1;
                        counts.after += usize::from(after);
                    }
                    let d = row as usize;
                    edges.push(Edge {
                        build: steps.build(s),
                        stepnr: steps.stepnr(s),
                        dep_build: steps.build(d),
                        dep_stepnr: steps.stepnr(d),
                    });
                }
            }
            (edges, counts)
        })
        .collect();
    let mut edges = Vec::with_capacity(chunks.iter().map(|(e, _)| e.len()).sum());
    let mut t = Counts::default();
    for (e, c) in chunks {
        edges.extend(e);
        t.steps += c.steps;
        t.found += c.found;
        t.inputs += c.inputs;
        t.matched += c.matched;
        t.after += c.after;
        t.before_window += c.before_window;
    }
    if !edges.is_sorted() {
        edges.par_sort_unstable();
    }
    edges.dedup();
    // Inputs of unusable steps are counted among the inputs but matched to nothing: they are
    // neither matched nor before the window, so the two do not always add up to `inputs`.
    Joined {
        edges,
        coverage: Coverage {
            source: graph.source.clone(),
            steps: t.steps,
            steps_found: t.found,
            share_found: if t.steps == 0 {
                0.0
            } else {
                t.found as f64 / t.steps as f64
            },
            inputs: t.inputs,
            inputs_matched: t.matched,
            after_start: t.after,
            inputs_before_window: t.before_window,
            drvs_asked: graph.asked,
            drvs_found: graph.found,
            drvs_missing: graph.missing,
            drvs_unparsable: graph.unparsable,
        },
    }
}

/// Steps with a machine, and how many of them had their `.drv` found: the share the note on
/// the command line gives, without joining.
pub fn found_share(graph: &DrvGraph, steps: &Steps) -> (usize, usize) {
    (0..steps.len())
        .filter(|&i| !steps.machine(i).is_empty())
        .fold((0, 0), |(found, all), i| {
            let f = steps
                .drv_path(i)
                .is_some_and(|p| graph.inputs.contains_key(p));
            (found + usize::from(f), all + 1)
        })
}

/// The one line a command prints about the graph: how many of the window's steps had their
/// `.drv` found, and where.
pub fn note(graph: &DrvGraph, steps: &Steps) -> String {
    let (found, all) = found_share(graph, steps);
    let pct = if all == 0 {
        0.0
    } else {
        100.0 * found as f64 / all as f64
    };
    format!(
        "derivation graph from {}: the .drv of {found} of the window's {all} steps was found \
         ({pct:.1} %); {} missing, {} unreadable of {} derivations",
        graph.source, graph.missing, graph.unparsable, graph.asked
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "/nix/store/";

    fn drv(h: char, name: &str) -> String {
        format!("{P}{}-{name}.drv", h.to_string().repeat(32))
    }

    use crate::analysis::test_steps::steps;

    fn edge(b: i32, s: i32, db: i32, ds: i32) -> Edge {
        Edge::new(b, s, db, ds)
    }

    #[test]
    fn the_latest_success_before_the_start_in_any_build_else_the_earliest_after() {
        let (lib, app, tool, old) = (
            drv('a', "lib"),
            drv('b', "app"),
            drv('c', "tool"),
            drv('d', "old"),
        );
        let m = "ssh://b1";
        let st = steps(&[
            // lib: failed once, built in build 1 at 100, rebuilt in build 2 at 300.
            (1, 1, &lib, Some(1), Some(10), Some(50), m),
            (1, 2, &lib, Some(0), Some(60), Some(100), m),
            (2, 1, &lib, Some(0), Some(200), Some(300), m),
            // tool: its only success stops at 420, after app started (a builder's clock ahead).
            (2, 2, &tool, Some(0), Some(380), Some(420), m),
            // app in build 3 starts at 400: lib's success at 300, tool's (after) at 420.
            (3, 1, &app, Some(0), Some(400), Some(500), m),
            // app queued, not started in build 4: the latest lib.
            (4, 1, &app, None, None, None, ""),
        ]);
        let mut g = DrvGraph {
            source: "test".into(),
            asked: 3,
            found: 2,
            missing: 1,
            ..Default::default()
        };
        // A base name as a storeDir-converted row would hold it, for an input.
        let lib_base = lib.rsplit('/').next().unwrap().to_string();
        g.inputs
            .insert(app.clone(), vec![lib_base, tool.clone(), old.clone()]);
        g.inputs.insert(lib.clone(), vec![]);
        let j = join(&g, &st, &[true; 6]);
        assert_eq!(
            j.edges,
            vec![
                edge(3, 1, 2, 1),
                edge(3, 1, 2, 2),
                edge(4, 1, 2, 1),
                edge(4, 1, 2, 2)
            ]
        );
        let c = &j.coverage;
        // Steps with a machine: five; found: lib's three and app's one.
        assert_eq!((c.steps, c.steps_found), (5, 4));
        assert_eq!(c.share_found, 0.8);
        assert_eq!((c.inputs, c.inputs_matched), (3, 2));
        assert_eq!((c.after_start, c.inputs_before_window), (1, 1));
        assert_eq!((c.drvs_asked, c.drvs_found, c.drvs_missing), (3, 2, 1));
        assert_eq!(found_share(&g, &st), (4, 5));
        assert!(note(&g, &st).contains("4 of the window's 5 steps was found (80.0 %)"));
        // A step outside the data-quality mask gets no edge, and its dependencies are not used.
        let j = join(&g, &st, &[true, true, false, true, true, true]);
        assert_eq!(j.edges[0], edge(3, 1, 1, 2));
    }
}
