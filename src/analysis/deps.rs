//! Dependency estimate: which earlier steps each step waited for.
//!
//! Hydra does not store the step graph. What it does store constrains it: a step cannot start
//! before every step it depends on has finished, and the queue runner dispatches a step soon
//! after its last dependency's outputs are copied back. The estimator:
//!
//! > D is estimated to be a dependency of S when both belong to the same build, D finished
//! > successfully before S started, and S started within `gap` seconds of D finishing; and the
//! > latest-finishing such D is always taken, however long the gap (some dependency made S wait).
//!
//! Dependencies recorded under another build (a derivation shared by several builds is built
//! once and recorded under one of them) cannot be seen this way; [`Accuracy`] counts them as
//! misses, and reports the same-build recall apart.

use std::collections::HashSet;

use polars::prelude::*;
use serde::Serialize;

use super::Steps;
use crate::dispatch::BuildStatus;
use crate::error::{Error, Result};

/// Default gap: under the C++ runner a step starts after its last dependency's outputs are
/// copied back and compressed, the dispatcher wakes, and its own inputs are sent — typically
/// seconds to a few minutes. Measured on the sample (see README): 120 s balances precision and
/// recall.
pub const DEFAULT_GAP_S: i64 = 120;

/// An estimated edge: the step `(build, stepnr)` waited for `(build, dep_stepnr)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Edge {
    pub build: i32,
    pub stepnr: i32,
    pub dep_build: i32,
    pub dep_stepnr: i32,
}

impl Edge {
    /// Step `stepnr` of build `build` waited for step `dep_stepnr` of build `dep_build`.
    pub fn new(build: i32, stepnr: i32, dep_build: i32, dep_stepnr: i32) -> Edge {
        Edge {
            build,
            stepnr,
            dep_build,
            dep_stepnr,
        }
    }
}

pub fn estimate(steps: &Steps, usable: &[bool], gap_s: i64) -> Vec<Edge> {
    let n = steps.len();
    // Every source sorts steps by (build, stepnr), so a build's steps are one run of rows and
    // no map from build to its steps is needed (over ten million steps such a map held a vector
    // per build, most of a gigabyte). A frame in another order is walked through a sorted index.
    let in_order = (1..n).all(|k| steps.build(k - 1) <= steps.build(k));
    let order = if in_order {
        Vec::new()
    } else {
        super::sorted_by(n, |k| steps.build(k))
    };
    let row = |k: usize| if in_order { k } else { order[k] as usize };
    let mut edges = Vec::new();
    let mut members: Vec<usize> = Vec::new();
    let mut first = 0;
    while first < n {
        let build = steps.build(row(first));
        let end = (first..n)
            .find(|&k| steps.build(row(k)) != build)
            .unwrap_or(n);
        members.clear();
        members.extend(
            (first..end)
                .map(row)
                .filter(|&i| usable[i] && steps.start(i).is_some()),
        );
        build_edges(steps, &members, gap_s, &mut edges);
        first = end;
    }
    if !edges.is_sorted() {
        edges.sort_unstable();
    }
    edges
}

/// The estimated edges among the usable started steps of one build, appended to `edges`.
fn build_edges(steps: &Steps, members: &[usize], gap_s: i64, edges: &mut Vec<Edge>) {
    for &s in members {
        let Some(start) = steps.start(s) else {
            continue;
        };
        let mut latest: Option<(i64, usize)> = None;
        let mut within_gap = false;
        for &d in members {
            let (true, Some(stop)) = (d != s, steps.stop(d)) else {
                continue;
            };
            if steps.status(d) != Some(BuildStatus::Success) || stop > start {
                continue;
            }
            if start - stop <= gap_s {
                edges.push(edge(steps, s, d));
                within_gap = true;
            } else if latest.is_none_or(|(t, _)| stop > t) {
                latest = Some((stop, d));
            }
        }
        // No dependency within the gap: the latest-finishing one still made S wait.
        if let (false, Some((_, d))) = (within_gap, latest) {
            edges.push(edge(steps, s, d));
        }
    }
}

fn edge(steps: &Steps, s: usize, d: usize) -> Edge {
    Edge {
        build: steps.build(s),
        stepnr: steps.stepnr(s),
        dep_build: steps.build(d),
        dep_stepnr: steps.stepnr(d),
    }
}

/// How well the estimate matches a true graph.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Accuracy {
    pub gap_s: i64,
    pub estimated: usize,
    pub true_edges: usize,
    pub true_same_build: usize,
    pub correct: usize,
    /// correct / estimated.
    pub precision: f64,
    /// correct / all true edges.
    pub recall: f64,
    /// correct / true edges within one build (the only ones the estimator can see).
    pub recall_same_build: f64,
}

/// Compares `edges` with the truth frame (`truth_deps` of the sample).
pub fn accuracy(edges: &[Edge], truth: &DataFrame, gap_s: i64) -> Result<Accuracy> {
    let err = |e| Error::frame("truth_deps", e);
    let col = |n: &str| -> Result<Vec<i32>> {
        Ok(truth
            .column(n)
            .map_err(err)?
            .i32()
            .map_err(err)?
            .iter()
            .map(|v| v.unwrap_or(-1))
            .collect())
    };
    let (b, s, db, ds) = (
        col("build")?,
        col("stepnr")?,
        col("dep_build")?,
        col("dep_stepnr")?,
    );
    let truth: HashSet<Edge> = (0..b.len())
        .map(|i| Edge {
            build: b[i],
            stepnr: s[i],
            dep_build: db[i],
            dep_stepnr: ds[i],
        })
        .collect();
    let same = truth.iter().filter(|e| e.build == e.dep_build).count();
    let correct = edges.iter().filter(|e| truth.contains(e)).count();
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    Ok(Accuracy {
        gap_s,
        estimated: edges.len(),
        true_edges: truth.len(),
        true_same_build: same,
        correct,
        precision: ratio(correct, edges.len()),
        recall: ratio(correct, truth.len()),
        recall_same_build: ratio(correct, same),
    })
}
