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
//! # Whole, or a span at a time
//!
//! The window's successes ([`Done`]) are all the rule needs of the steps besides the one it
//! matches, so the same rule serves the window read whole ([`join`]) and a window read a span
//! at a time ([`join_span`], `analysis::fold`): there each span's steps have their `.drv` read
//! and are matched against the successes of the whole window, gathered in a first look at its
//! days. A span gives each step the instant its inputs' outputs were back (the ledger's ready
//! time) rather than edges, since the step that built an input may lie in a day the span does
//! not read; what the window's coverage counts is added up over the spans by [`Tally`], each
//! step in the span it started in.
//!
//! # Speed and size
//!
//! Successful steps are kept as 32 bytes each (a hash of the derivation's base name, its stop,
//! the instant its outputs were back and its key), sorted once by (derivation, stop, key); each
//! input is a binary search. Two base names share a 64-bit hash with a chance of about 4·10⁻⁵
//! among forty million derivations (a year of a large farm), and a shared hash misleads only
//! where one of the two is an input of a step of the other's window. The steps are joined in
//! parallel (rayon) over row chunks.

use rayon::prelude::*;
use serde::Serialize;

use super::Steps;
use super::deps::Edge;
use crate::dataset::DatasetMeta;
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
    /// What a reader should know of how the graph was read (the first unreadable `.drv`,
    /// named: over spans, the first met).
    #[serde(skip)]
    pub notes: Vec<String>,
}

impl Coverage {
    fn of(source: &str, t: &Counts, drvs: (usize, usize, usize, usize)) -> Coverage {
        Coverage {
            source: source.to_string(),
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
            drvs_asked: drvs.0,
            drvs_found: drvs.1,
            drvs_missing: drvs.2,
            drvs_unparsable: drvs.3,
            notes: Vec::new(),
        }
    }

    /// The one line a command prints about the graph: how many of the window's steps had
    /// their `.drv` found, and where.
    pub fn note(&self) -> String {
        let pct = match self.steps {
            0 => 0.0,
            all => 100.0 * self.steps_found as f64 / all as f64,
        };
        format!(
            "derivation graph from {}: the .drv of {} of the window's {} steps was found \
             ({pct:.1} %); {} missing, {} unreadable of {} derivations",
            self.source,
            self.steps_found,
            self.steps,
            self.drvs_missing,
            self.drvs_unparsable,
            self.drvs_asked
        )
    }
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

/// A string's 64-bit hash, the same in every run (SipHash with fixed keys): how derivation
/// paths and store entries are held where millions of them would not fit as strings.
pub(crate) fn hash(s: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

/// Rows per parallel task: large enough that a task's bookkeeping is noise beside its look-ups.
const CHUNK: usize = 16 * 1024;

/// What the coverage counts of some steps, added up after a parallel join or over spans.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    steps: usize,
    found: usize,
    inputs: usize,
    matched: usize,
    after: usize,
    before_window: usize,
}

impl Counts {
    fn add(&mut self, c: &Counts) {
        self.steps += c.steps;
        self.found += c.found;
        self.inputs += c.inputs;
        self.matched += c.matched;
        self.after += c.after;
        self.before_window += c.before_window;
    }
}

/// A successful usable step as the rule reads it. Ordered by derivation, stop and key, as the
/// rule picks among a derivation's successes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Built {
    /// The hash of its derivation's base name.
    drv: u64,
    stop: i64,
    build: i32,
    stepnr: i32,
    /// When its outputs were back for the steps that need them
    /// ([`super::ledger::outputs_back`]).
    back: i64,
}

/// The window's successful usable steps by derivation: what the rule matches an input
/// derivation against. Filled from the window whole or a day at a time, in any order, then
/// [`Done::finish`]ed.
#[derive(Debug, Clone, Default)]
pub struct Done {
    built: Vec<Built>,
    /// Where each derivation's successes are, once finished.
    index: Buckets,
}

/// Where the entries of a list sorted by a uniform 64-bit hash lie, by the hash's top bits: a
/// bucket holds about [`PER_BUCKET`] entries, so a look-up reads one bucket's bounds and scans a
/// few entries, where a binary search over the list made a cache miss a step (at a million
/// steps, the ledger's join with the graph spent some 6 s in them; over a year's 36.6 M
/// successes a search is 25 steps). Four bytes a bucket: a byte an entry.
#[derive(Debug, Clone, Default)]
struct Buckets {
    bits: u32,
    /// Bucket `j` is `starts[j]..starts[j + 1]`.
    starts: Vec<u32>,
}

/// About how many entries a bucket of [`Buckets`] holds.
const PER_BUCKET: usize = 4;

impl Buckets {
    /// The buckets of `sorted` (by `key`, ascending).
    fn of<T>(sorted: &[T], key: impl Fn(&T) -> u64) -> Buckets {
        let bits = (sorted.len() / PER_BUCKET).max(1).ilog2();
        let mut starts = Vec::with_capacity((1 << bits) + 1);
        let top = |h: u64| Buckets::top(bits, h);
        let mut k = 0;
        for j in 0..1usize << bits {
            while k < sorted.len() && top(key(&sorted[k])) < j {
                k += 1;
            }
            starts.push(k as u32);
        }
        starts.push(sorted.len() as u32);
        Buckets { bits, starts }
    }

    fn top(bits: u32, h: u64) -> usize {
        match bits {
            0 => 0,
            b => (h >> (64 - b)) as usize,
        }
    }

    /// The entries whose key may be `h`.
    fn range(&self, h: u64) -> std::ops::Range<usize> {
        if self.starts.is_empty() {
            return 0..0;
        }
        let j = Buckets::top(self.bits, h);
        self.starts[j] as usize..self.starts[j + 1] as usize
    }
}

impl Done {
    /// Takes the successes among `steps` (`usable`: their data-quality mask).
    pub fn add(&mut self, meta: &DatasetMeta, steps: &Steps, usable: &[bool]) {
        self.built.extend((0..steps.len()).filter_map(|i| {
            if !usable[i] || steps.status(i) != Some(BuildStatus::Success) {
                return None;
            }
            Some(Built {
                drv: hash(base(steps.drv_path(i)?)),
                stop: steps.stop(i)?,
                build: steps.build(i),
                stepnr: steps.stepnr(i),
                back: super::ledger::outputs_back(meta, steps, i)?,
            })
        }));
    }

    /// Puts the successes in the rule's order, once all are taken.
    pub fn finish(&mut self) {
        self.built.par_sort_unstable();
        self.built.shrink_to_fit();
        self.index = Buckets::of(&self.built, |b| b.drv);
    }

    /// How many successes are held.
    pub fn len(&self) -> usize {
        self.built.len()
    }

    pub fn is_empty(&self) -> bool {
        self.built.is_empty()
    }

    /// The success an input derivation `drv` of a step that started at `start` (or has not)
    /// waited for, by the module's rule, and whether it finished only after that start;
    /// `None`: no success in the window.
    fn pick(&self, drv: &str, start: Option<i64>) -> Option<(&Built, bool)> {
        let h = hash(base(drv));
        let bucket = &self.built[self.index.range(h)];
        let lo = bucket.partition_point(|b| b.drv < h);
        let run = &bucket[lo..lo + bucket[lo..].partition_point(|b| b.drv == h)];
        let last = run.last()?;
        Some(match start {
            None => (last, false),
            Some(t) => match run.partition_point(|b| b.stop <= t) {
                0 => (&run[0], true),
                k => (&run[k - 1], false),
            },
        })
    }
}

/// What a join matches steps with: the graph of their derivations, the window's successes,
/// the steps and their data-quality mask.
struct Joining<'a, 'd> {
    graph: &'a DrvGraph,
    done: &'d Done,
    steps: &'a Steps,
    usable: &'a [bool],
}

/// Matches each input derivation of step `s` (its `.drv` in the graph) to the success it
/// waited for, calling `matched` with each; counts what the coverage counts where `counted`.
fn match_inputs<'d>(
    j: &Joining<'_, 'd>,
    s: usize,
    counted: bool,
    counts: &mut Counts,
    mut matched: impl FnMut(&'d Built),
) {
    let Joining {
        graph,
        done,
        steps,
        usable,
    } = *j;
    // Steps with a machine are the ones the coverage counts.
    let counted = counted && !steps.machine(s).is_empty();
    counts.steps += usize::from(counted);
    let Some(inputs) = steps.drv_path(s).and_then(|p| graph.inputs.get(p)) else {
        return;
    };
    if counted {
        counts.found += 1;
        counts.inputs += inputs.len();
    }
    // Inputs of unusable steps are counted among the inputs but matched to nothing: they are
    // neither matched nor before the window, so the two do not always add up to `inputs`.
    if !usable[s] {
        return;
    }
    for d in inputs {
        match done.pick(d, steps.start(s)) {
            None => counts.before_window += usize::from(counted),
            Some((b, after)) => {
                if counted {
                    counts.matched += 1;
                    counts.after += usize::from(after);
                }
                matched(b);
            }
        }
    }
}

/// The edge from step `s` to the success `b` it waited for.
fn edge(steps: &Steps, s: usize, b: &Built) -> Edge {
    Edge::new(steps.build(s), steps.stepnr(s), b.build, b.stepnr)
}

/// Joins `graph` with the window's `steps` read whole (`usable`: their data-quality mask;
/// `meta`: the window's runners): see the module's rule.
pub fn join(graph: &DrvGraph, meta: &DatasetMeta, steps: &Steps, usable: &[bool]) -> Joined {
    let mut done = Done::default();
    done.add(meta, steps, usable);
    done.finish();
    let n = steps.len();
    let joining = Joining {
        graph,
        done: &done,
        steps,
        usable,
    };
    let chunks: Vec<(Vec<Edge>, Counts)> = (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| {
            let mut edges = Vec::new();
            let mut counts = Counts::default();
            for s in c * CHUNK..((c + 1) * CHUNK).min(n) {
                match_inputs(&joining, s, true, &mut counts, |b| {
                    edges.push(edge(steps, s, b))
                });
            }
            (edges, counts)
        })
        .collect();
    let mut edges = Vec::with_capacity(chunks.iter().map(|(e, _)| e.len()).sum());
    let mut t = Counts::default();
    for (e, c) in chunks {
        edges.extend(e);
        t.add(&c);
    }
    if !edges.is_sorted() {
        edges.par_sort_unstable();
    }
    edges.dedup();
    let drvs = (graph.asked, graph.found, graph.missing, graph.unparsable);
    let mut coverage = Coverage::of(&graph.source, &t, drvs);
    coverage.notes = graph.notes.clone();
    Joined { edges, coverage }
}

/// What some of a span's steps take from the graph ([`join_span`]).
#[derive(Debug, Clone, Default)]
pub struct SpanJoin {
    /// Each step's instant its matched inputs' outputs were all back (`None`: no input
    /// matched), in row order.
    pub ready: Vec<Option<i64>>,
    /// The edges of the steps the span owns, sorted, without repeats.
    edges: Vec<Edge>,
    counts: Counts,
}

/// Joins `graph` (the `.drv` files of the steps of rows `rows`) with those of a span's `steps`
/// (`usable`: their mask) against the whole window's successes (`done`); `ready` is given in
/// the order of `rows`. The coverage and edges count only the steps `owns` names, so that over
/// spans each step counts once. A span's steps are joined a part of them at a time, each
/// part's graph read for it, so that no more than a part's `.drv` files are held
/// (`analysis::fold`).
pub fn join_span(
    graph: &DrvGraph,
    done: &Done,
    steps: &Steps,
    usable: &[bool],
    rows: std::ops::Range<usize>,
    owns: impl Fn(usize) -> bool + Sync,
) -> SpanJoin {
    let joining = Joining {
        graph,
        done,
        steps,
        usable,
    };
    let chunks: Vec<(Vec<Option<i64>>, Vec<Edge>, Counts)> = (0..rows.len().div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| {
            let part = rows.start + c * CHUNK..(rows.start + (c + 1) * CHUNK).min(rows.end);
            let mut ready = Vec::with_capacity(part.len());
            let mut edges = Vec::new();
            let mut counts = Counts::default();
            for s in part {
                let owned = owns(s);
                let mut r: Option<i64> = None;
                match_inputs(&joining, s, owned, &mut counts, |b| {
                    r = Some(r.map_or(b.back, |r| r.max(b.back)));
                    if owned {
                        edges.push(edge(steps, s, b));
                    }
                });
                ready.push(r);
            }
            (ready, edges, counts)
        })
        .collect();
    let mut out = SpanJoin {
        ready: Vec::with_capacity(rows.len()),
        ..SpanJoin::default()
    };
    for (r, e, c) in chunks {
        out.ready.extend(r);
        out.edges.extend(e);
        out.counts.add(&c);
    }
    out.edges.sort_unstable();
    out.edges.dedup();
    out
}

/// What the spans' joins counted, added up ([`join_span`]): each step in the one span that
/// owns it.
#[derive(Debug, Clone, Default)]
pub struct Sums {
    counts: Counts,
    edges: usize,
    /// The edges themselves, where they are compared with the sample's true ones.
    kept: Option<Vec<Edge>>,
}

impl Sums {
    /// Empty sums that keep the edges too (`keep_edges`), for the sample's accuracy.
    pub fn new(keep_edges: bool) -> Sums {
        Sums {
            kept: keep_edges.then(Vec::new),
            ..Sums::default()
        }
    }

    /// Adds a part of a span's join.
    pub fn add(&mut self, span: SpanJoin) {
        self.counts.add(&span.counts);
        self.edges += span.edges.len();
        if let Some(k) = &mut self.kept {
            k.extend(span.edges);
        }
    }
}

/// The window's derivations as a window read a span at a time asks them of the store: each
/// distinct one counted once, however many spans read its `.drv` ([`Tally::finish`] makes the
/// window's coverage of them and of the spans' [`Sums`]).
#[derive(Debug, Clone)]
pub struct Tally {
    /// Hashes of the window's distinct derivation paths, sorted once all are taken.
    asked: Vec<u64>,
    /// What became of each of `asked` when read: [`UNREAD`], [`FOUND`] or [`UNPARSABLE`].
    state: Vec<u8>,
    first_bad: Option<String>,
    /// How long `asked` may grow before its repeats are folded away.
    fold_at: usize,
    /// Where each of `asked` is, once all are taken.
    index: Buckets,
}

/// How many derivation paths [`Tally::ask`] takes before folding away repeats the first time:
/// a million hashes, 8 MB, so that a small window sorts once.
const FOLD_AT: usize = 1 << 20;

const UNREAD: u8 = 0;
const FOUND: u8 = 1;
const UNPARSABLE: u8 = 2;

impl Default for Tally {
    fn default() -> Tally {
        Tally {
            asked: Vec::new(),
            state: Vec::new(),
            first_bad: None,
            fold_at: FOLD_AT,
            index: Buckets::default(),
        }
    }
}

impl Tally {
    /// Takes the derivation paths of some of the window's steps, every step once before
    /// [`Tally::asked_all`].
    pub fn ask(&mut self, steps: &Steps) {
        self.asked
            .extend((0..steps.len()).filter_map(|i| Some(hash(steps.drv_path(i)?))));
        // Repeats are many (every try of a derivation, every build that needs it): folded
        // away as they pile up, so that the list holds about the distinct ones.
        if self.asked.len() >= self.fold_at {
            self.asked.par_sort_unstable();
            self.asked.dedup();
            self.fold_at = (2 * self.asked.len()).max(FOLD_AT);
        }
    }

    /// Every step's derivation taken: the distinct ones set.
    pub fn asked_all(&mut self) {
        self.asked.par_sort_unstable();
        self.asked.dedup();
        self.asked.shrink_to_fit();
        self.state = vec![UNREAD; self.asked.len()];
        self.index = Buckets::of(&self.asked, |&h| h);
    }

    /// Notes what reading some of the window's derivations gave: found where `graph` holds
    /// it, unreadable where `unparsable` (path, and why) names it, else missing.
    pub fn read(&mut self, graph: &DrvGraph, unparsable: &[(String, String)]) {
        let mut mark = |path: &str, state: u8| {
            let h = hash(path);
            let r = self.index.range(h);
            if let Ok(k) = self.asked[r.clone()].binary_search(&h) {
                self.state[r.start + k] = state;
            }
        };
        for p in graph.inputs.keys() {
            mark(p, FOUND);
        }
        for (p, _) in unparsable {
            mark(p, UNPARSABLE);
        }
        if let Some((_, why)) = unparsable.first() {
            self.first_bad.get_or_insert_with(|| why.clone());
        }
    }

    /// The window's coverage of the graph read from `source`, with the spans' `sums`: the
    /// coverage, how many edges, and the edges where kept (sorted).
    pub fn finish(self, sums: Sums, source: &str) -> (Coverage, usize, Option<Vec<Edge>>) {
        let count = |s: u8| self.state.iter().filter(|&&x| x == s).count();
        let (asked, found, bad) = (self.asked.len(), count(FOUND), count(UNPARSABLE));
        let drvs = (asked, found, asked - found - bad, bad);
        let mut coverage = Coverage::of(source, &sums.counts, drvs);
        if let Some(why) = self.first_bad {
            coverage.notes.push(unreadable_note(bad, source, &why));
        }
        let kept = sums.kept.map(|mut k| {
            k.sort_unstable();
            k
        });
        (coverage, sums.edges, kept)
    }
}

/// The note on the `.drv` files that could not be read: how many, where, the first's reason.
pub fn unreadable_note(count: usize, source: &str, first: &str) -> String {
    format!(
        "{count} derivation(s) in {source} could not be read and were left out; the first: {first}"
    )
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

/// The one line a command prints about the graph read whole ([`Coverage::note`]).
pub fn note(graph: &DrvGraph, steps: &Steps) -> String {
    let (found, all) = found_share(graph, steps);
    let counts = Counts {
        steps: all,
        found,
        ..Counts::default()
    };
    let drvs = (graph.asked, graph.found, graph.missing, graph.unparsable);
    Coverage::of(&graph.source, &counts, drvs).note()
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

    /// Six steps of three derivations, and a graph that knows two of them.
    fn fixture() -> (Steps, DrvGraph, [String; 3]) {
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
        (st, g, [lib, app, tool])
    }

    #[test]
    fn the_latest_success_before_the_start_in_any_build_else_the_earliest_after() {
        let (st, g, _) = fixture();
        let j = join(&g, &crate::analysis::test_steps::meta(), &st, &[true; 6]);
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
        let j = join(
            &g,
            &crate::analysis::test_steps::meta(),
            &st,
            &[true, true, false, true, true, true],
        );
        assert_eq!(j.edges[0], edge(3, 1, 1, 2));
    }

    #[test]
    fn joined_a_span_at_a_time_the_graph_counts_what_the_whole_join_counts() {
        let (st, g, [_, _, tool]) = fixture();
        let meta = crate::analysis::test_steps::meta();
        let usable = [true; 6];
        let whole = join(&g, &meta, &st, &usable);
        let mut done = Done::default();
        done.add(&meta, &st, &usable);
        done.finish();
        assert_eq!(done.len(), 4, "lib's two successes, tool's and app's");
        let mut tally = Tally::default();
        tally.ask(&st);
        tally.asked_all();
        let mut sums = Sums::new(true);
        // Two spans split at 250 and the step that did not start, each reading some rows
        // owned by the other; a row's coverage counts in the span it started in.
        let starts = |i: usize| st.start(i);
        type Span<'a> = (
            std::ops::Range<usize>,
            Box<dyn Fn(usize) -> bool + Sync + 'a>,
        );
        let spans: [Span<'_>; 3] = [
            (0..4, Box::new(|i| starts(i).is_some_and(|t| t < 250))),
            (2..5, Box::new(|i| starts(i).is_some_and(|t| t >= 250))),
            (5..6, Box::new(|_| true)),
        ];
        let mut ready = Vec::new();
        for (rows, owns) in spans {
            tally.read(&g, &[]);
            let j = join_span(&g, &done, &st, &usable, rows, owns);
            ready.push(j.ready.clone());
            sums.add(j);
        }
        // app at 400 waited for lib's success at 300 and tool's at 420 (outputs back half a
        // second after the recorded second, rounded up); so did the app never started.
        assert_eq!(ready[1], vec![None, None, Some(421)]);
        assert_eq!(ready[2], vec![Some(421)]);
        let (coverage, edges, kept) = tally.clone().finish(sums.clone(), "test");
        assert_eq!(coverage, whole.coverage);
        assert_eq!(
            (edges, kept),
            (whole.edges.len(), Some(whole.edges.clone()))
        );
        assert!(
            coverage
                .note()
                .contains("4 of the window's 5 steps was found (80.0 %)")
        );
        // A derivation read as unreadable in one span is counted once, and named.
        tally.read(&g, &[(tool.clone(), "malformed".into())]);
        tally.read(&g, &[(tool, "malformed".into())]);
        let (bad, _, _) = tally.finish(sums, "test");
        assert_eq!(
            (bad.drvs_unparsable, bad.drvs_missing, bad.drvs_found),
            (1, 0, 2)
        );
        assert!(bad.notes[0].starts_with("1 derivation(s) in test could not be read"));
    }
}
