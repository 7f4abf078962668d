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
    let mut members: Vec<Member> = Vec::new();
    let mut first = 0;
    while first < n {
        let build = steps.build(row(first));
        let end = (first..n)
            .find(|&k| steps.build(row(k)) != build)
            .unwrap_or(n);
        members.clear();
        members.extend((first..end).filter_map(|k| Member::of(steps, usable, row(k))));
        build_edges(&members, gap_s, &mut edges);
        first = end;
    }
    if !edges.is_sorted() {
        edges.sort_unstable();
    }
    edges
}

/// What the estimate reads of a step: a usable one that started (24 bytes).
#[derive(Debug, Clone, Copy)]
pub struct Member {
    build: i32,
    stepnr: i32,
    start: i64,
    /// Its stop where it succeeded (only a successful step is waited for).
    succeeded_at: Option<i64>,
}

impl Member {
    /// Row `i` of `steps` where the estimate considers it.
    fn of(steps: &Steps, usable: &[bool], i: usize) -> Option<Member> {
        let start = steps.start(i).filter(|_| usable[i])?;
        Some(Member {
            build: steps.build(i),
            stepnr: steps.stepnr(i),
            start,
            succeeded_at: steps
                .stop(i)
                .filter(|_| steps.status(i) == Some(BuildStatus::Success)),
        })
    }
}

/// The estimate gathered a part at a time (`analysis::fold`): a build's steps may lie in
/// several days, so each considered step is kept (24 bytes) and the builds are estimated once
/// every part is in, in the order [`estimate`] takes them, for the same edges.
#[derive(Debug, Default)]
pub struct Gathered {
    members: Vec<Member>,
}

impl Gathered {
    pub fn add(&mut self, steps: &Steps, usable: &[bool]) {
        self.members
            .extend((0..steps.len()).filter_map(|i| Member::of(steps, usable, i)));
    }

    /// The edges of every build, sorted.
    pub fn finish(mut self, gap_s: i64) -> Vec<Edge> {
        self.members.sort_unstable_by_key(|m| (m.build, m.stepnr));
        let mut edges = Vec::new();
        for build in self.members.chunk_by(|a, b| a.build == b.build) {
            build_edges(build, gap_s, &mut edges);
        }
        if !edges.is_sorted() {
            edges.sort_unstable();
        }
        edges
    }
}

/// The estimated edges among the usable started steps of one build, appended to `edges`.
fn build_edges(members: &[Member], gap_s: i64, edges: &mut Vec<Edge>) {
    let edge = |s: &Member, d: &Member| Edge::new(s.build, s.stepnr, d.build, d.stepnr);
    for (si, s) in members.iter().enumerate() {
        let mut latest: Option<(i64, &Member)> = None;
        let mut within_gap = false;
        for (di, d) in members.iter().enumerate() {
            let (true, Some(stop)) = (di != si, d.succeeded_at) else {
                continue;
            };
            if stop > s.start {
                continue;
            }
            if s.start - stop <= gap_s {
                edges.push(edge(s, d));
                within_gap = true;
            } else if latest.is_none_or(|(t, _)| stop > t) {
                latest = Some((stop, d));
            }
        }
        // No dependency within the gap: the latest-finishing one still made S wait.
        if let (false, Some((_, d))) = (within_gap, latest) {
            edges.push(edge(s, d));
        }
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
    let mut t = TruthEdges::default();
    t.add(truth)?;
    Ok(t.accuracy(edges, gap_s))
}

/// The true edges (`truth_deps` of the sample), taken a part at a time, each once.
#[derive(Debug, Default)]
pub struct TruthEdges {
    edges: Vec<Edge>,
}

impl TruthEdges {
    /// Takes some rows of `truth_deps` (a null reads as -1, as no step is numbered).
    pub fn add(&mut self, truth: &DataFrame) -> Result<()> {
        let err = |e| Error::frame("truth_deps", e);
        let col = |n: &str| -> Result<Int32Chunked> {
            Ok(truth.column(n).map_err(err)?.i32().map_err(err)?.clone())
        };
        let (b, s, db, ds) = (
            col("build")?,
            col("stepnr")?,
            col("dep_build")?,
            col("dep_stepnr")?,
        );
        let v = |c: &Int32Chunked, i: usize| c.get(i).unwrap_or(-1);
        self.edges
            .extend((0..b.len()).map(|i| Edge::new(v(&b, i), v(&s, i), v(&db, i), v(&ds, i))));
        Ok(())
    }

    /// How well `edges` (sorted or not) match the true ones.
    pub fn accuracy(mut self, edges: &[Edge], gap_s: i64) -> Accuracy {
        let truth = &mut self.edges;
        truth.sort_unstable();
        truth.dedup();
        let same = truth.iter().filter(|e| e.build == e.dep_build).count();
        let correct = edges
            .iter()
            .filter(|e| truth.binary_search(e).is_ok())
            .count();
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        Accuracy {
            gap_s,
            estimated: edges.len(),
            true_edges: truth.len(),
            true_same_build: same,
            correct,
            precision: ratio(correct, edges.len()),
            recall: ratio(correct, truth.len()),
            recall_same_build: ratio(correct, same),
        }
    }
}
