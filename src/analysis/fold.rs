//! Findings folded over a snapshot's days: the steps are read a day at a time
//! ([`crate::source::snapshot::Days`]) and each finding's state takes them in order, so that
//! what is held is one day's steps and what crosses days, kept compact (each build's queue
//! time, 16 bytes a build). The states are the ones [`super::analyze`] fills with the whole
//! window at once, so both give the same findings: the data-quality checks, utilization, the
//! queue waits, waste, the overhead fit, the dependency estimate, and the capacity ledger with
//! the derivation graph or without ([`ledger`]: counted over spans of days, each with the days
//! whose steps can count in it, their `.drv` files read span by span; docs/scale.md).

use super::table::Finding;
use super::{
    Dependencies, Findings, Need, Overhead, OverheadPoints, RunnableBasis, Steps, deps, quality,
    utilization, waiting, waste,
};
use crate::error::Result;
use crate::source::snapshot::Days;

/// What the ledger is read with besides the days, when it is asked for.
#[derive(Clone, Copy, Default)]
pub struct Side<'a> {
    /// The machines file, if any (given, or the snapshot's).
    pub machines: Option<&'a [crate::nix::BuildMachine]>,
    /// The runner's series, if any.
    pub timeline: Option<&'a crate::status::timeline::Timeline>,
    /// Where the steps' `.drv` files are read, if the ledger reads the derivation graph.
    pub graph: Option<&'a Store>,
}

/// Where a folded ledger reads the `.drv` files of its spans' steps (`--drv-store`, a
/// snapshot's `store/`, the local `/nix/store`), and how the graph's source is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    pub dir: std::path::PathBuf,
    pub source: String,
}

/// The findings `need` asks for over every day of `days`; `codec_speeds` (codec, MB/s per
/// core) to set beside the overhead fit; `side`, what the ledger reads besides (with a
/// derivation graph, the findings' runnable basis is the graph's, as the whole analysis
/// gives it).
pub fn analyze(
    days: &Days,
    need: Need,
    gap_s: i64,
    codec_speeds: &[(String, f64)],
    side: Side<'_>,
) -> Result<Findings> {
    // The ledger's slots fall back to each machine's peak concurrency.
    let need = Need {
        utilization: need.utilization || need.ledger,
        ..need
    };
    let meta = days.meta();
    let builds = days.queue_times()?;
    crate::progress::mark("folding: the builds' queue times");
    let (lo, hi) = super::span_of(meta.window, || days.extent())?.unwrap_or((0, 0));
    let mut tally = quality::Tally::default();
    let mut util = utilization::Accumulator::new(lo, hi);
    let mut first = waiting::FirstStarts::default();
    let mut wasted = if need.waste {
        waste::Accumulator::with_capacity(days.steps_rows())
    } else {
        waste::Accumulator::default()
    };
    let mut points = OverheadPoints::default();
    let mut members = deps::Gathered::default();
    let graph = side.graph.filter(|_| need.ledger);
    let mut scan = Scan::new(graph.is_some());
    // The same-build estimate: its edges are a finding of their own, and the ledger's runnable
    // times without the graph.
    let estimate = need.deps || (need.ledger && graph.is_none());
    // The overhead fit takes its sizes from the truth where there is one, and then reads
    // neither the derivation paths nor the builds' sizes.
    let omit = match days.has_truth() {
        true => need.omit_with_truth().unwrap_or(need.omit()),
        false => need.omit(),
    };
    days.each_day(omit, |df| {
        let steps = Steps::from_frame(&df)?;
        let queued = quality::queue_times(&builds, &steps);
        let usable = tally.add(&steps, &queued);
        let (steps, usable, queued) = (&steps, &usable[..], &queued[..]);
        // Each finding's state takes the day on its own, side by side on the threads there
        // are, as the whole analysis runs them (one after the other, `analyze waiting
        // utilization waste overhead` over a million steps took 1.66 s where the whole
        // analysis took 1.41).
        rayon::scope(|s| {
            if need.utilization {
                s.spawn(|_| util.add(steps, usable));
            }
            if need.waiting {
                s.spawn(|_| first.add(steps, usable));
            }
            if need.waste {
                s.spawn(|_| wasted.add(steps, usable));
            }
            if need.overhead {
                s.spawn(|_| points.add(steps, usable));
            }
            if estimate {
                s.spawn(|_| members.add(steps, usable));
            }
            if need.ledger {
                s.spawn(|_| scan.add(&meta, steps, usable, queued, hi));
            }
        });
        Ok(())
    })?;
    crate::progress::mark("folding: the days");
    // Only the ledger reads the queue times after the days (its spans' usable steps).
    let builds = need.ledger.then_some(builds);
    let mut waits = need.waiting.then(|| waiting::Accumulator::new(first));
    points.in_key_order();
    let sizes_from_builds = need.overhead && !days.has_truth();
    if need.waiting || need.waste || sizes_from_builds {
        days.builds(omit, |df| {
            if let Some(w) = &mut waits {
                w.add(&df)?;
            }
            if need.waste {
                wasted.add_owners(&df)?;
            }
            if sizes_from_builds {
                points.sizes_from_builds(&df)?;
            }
            Ok(())
        })?;
        crate::progress::mark("folding: the builds");
    }
    let overhead = if need.overhead {
        if days.has_truth() {
            days.truth_steps(omit, |df| points.sizes_from_truth(&df))?;
        }
        let sizes_from = match days.has_truth() {
            true => super::SIZES_FROM_TRUTH,
            false => super::SIZES_FROM_BUILDS,
        };
        Overhead::of(sizes_from.to_string(), &points.finish(), codec_speeds)
    } else {
        Overhead::default()
    };
    let waste = if need.waste {
        // The paths of the derivations built most often, from a second look at the days.
        let wanted = wasted.candidates();
        let mut paths = std::collections::HashMap::new();
        if !wanted.is_empty() {
            days.each_day(crate::source::snapshot::only_drv_paths(), |df| {
                waste::add_paths(&Steps::from_frame(&df)?, &wanted, &mut paths);
                Ok(())
            })?;
        }
        wasted.finish(&paths)
    } else {
        waste::Waste::default()
    };
    let waiting = waits.map(waiting::Accumulator::finish).unwrap_or_default();
    let mut findings = Findings {
        utilization: if need.utilization {
            util.finish()
        } else {
            utilization::Utilization::default()
        },
        waiting,
        waste,
        overhead,
        ..Findings::of(&meta, lo, hi, tally.finish(), gap_s)
    };
    // The ledger without a graph says how many edges the same-build estimate found, as the
    // whole analysis does; the estimate is finished (its members freed) before the ledger.
    if estimate {
        let edges = members.finish(gap_s);
        let accuracy = if need.deps && days.has_truth() {
            let mut truth = deps::TruthEdges::default();
            days.truth_deps(omit, |df| truth.add(&df))?;
            Some(truth.accuracy(&edges, gap_s))
        } else {
            None
        };
        findings.dependencies = Dependencies {
            accuracy,
            edges: edges.len(),
            ..findings.dependencies
        };
        findings.runnable_basis = RunnableBasis::Estimate {
            gap_s,
            edges: edges.len(),
        };
    }
    if let Some(builds) = &builds {
        let (ledger, _, joined) = ledger_with(
            days,
            &LedgerInputs {
                machines: side.machines,
                timeline: side.timeline,
                graph,
                peaks: &findings.utilization.peak_by_machine,
                builds,
                lo,
                hi,
                spans: Spans::Steps(SPAN_STEPS),
            },
            scan,
        )?;
        findings.ledger = ledger;
        if let Some(j) = joined {
            // As the whole analysis: the graph's edges against the sample's true ones.
            let accuracy = match j.kept {
                Some(kept) if days.has_truth() => {
                    let mut truth = deps::TruthEdges::default();
                    days.truth_deps(omit, |df| truth.add(&df))?;
                    Some(truth.accuracy(&kept, gap_s))
                }
                _ => None,
            };
            findings.runnable_basis = RunnableBasis::Graph {
                coverage: j.coverage,
                edges: j.edges,
                accuracy,
            };
        }
    }
    Ok(findings)
}

/// What the folded ledger is computed with besides the days.
pub struct LedgerInputs<'a> {
    /// The machines file, if any (given, or the snapshot's).
    pub machines: Option<&'a [crate::nix::BuildMachine]>,
    /// The runner's series, if any.
    pub timeline: Option<&'a crate::status::timeline::Timeline>,
    /// Where the steps' `.drv` files are read, for when steps became runnable; without it,
    /// the same-build estimate's runnable times.
    pub graph: Option<&'a Store>,
    /// Each machine's peak concurrency, from the utilization fold.
    pub peaks: &'a std::collections::BTreeMap<String, usize>,
    /// Every build's id and queue time, by id ([`Days::queue_times`]).
    pub builds: &'a [(i32, i64)],
    pub lo: i64,
    pub hi: i64,
    /// How the window is cut into spans: any cut gives the same ledger (tests/snapshot.rs).
    pub spans: Spans,
}

/// How the folded ledger's window is cut into spans ([`span_cuts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spans {
    /// Spans of this many whole days.
    Days(i64),
    /// Spans of whole hours holding at most this many steps (an hour that holds more is a span
    /// of its own), a week at most ([`SPAN_DAYS`]).
    Steps(usize),
}

/// The most days a span covers. The days read for a span are its own, the days before it that
/// can hold steps still building at its start (the longest run up to [`RUN_CAP_S`]) and the
/// days after it up to the longest wait; of the days around it only the steps that can count
/// in it are kept ([`super::ledger::SpanRows`]). A longer span reads the days around it fewer
/// times: a week of the 38.7 M-step year is about 0.75 M steps, and its spans read some nine
/// days each (a 10 h longest run before, a 20 h longest wait after).
pub const SPAN_DAYS: i64 = 7;

/// The steps a span is sized to hold: a million. The ledger's state takes some 340 bytes a step
/// held (13.2 M steps held peaked at 4.25 GiB, docs/scale.md). A span holds the steps that
/// started in it, with the few still building at its start, and the waits alone (24 bytes each)
/// of the steps queued in it that started later, so a million steps a span keeps the ledger's
/// span near 0.4 GiB however dense the farm (by those two figures), with the series' dispatch
/// as without it (docs/scale.md).
pub const SPAN_STEPS: usize = 1_000_000;

/// Where spans after the first begin over the window `[lo, hi)` (before they are put on the
/// dispatch loss' grid): `hours` are the steps that started in each hour (its start), in order.
/// Any cut gives the same ledger; a finer one reads the days around each span more often.
pub fn span_cuts(hours: &[(i64, usize)], lo: i64, hi: i64, spans: Spans) -> Vec<i64> {
    let mut cuts = Vec::new();
    match spans {
        Spans::Days(n) => {
            let step = n.max(1) * DAY;
            let mut c = lo + step;
            while c < hi {
                cuts.push(c);
                c += step;
            }
        }
        Spans::Steps(most) => {
            let most = most.max(1);
            // The steps of the span being gathered, and its first hour.
            let (mut held, mut first) = (0usize, None::<i64>);
            for &(hour, rows) in hours {
                if first.is_some_and(|f| held + rows > most || hour - f >= SPAN_DAYS * DAY) {
                    cuts.push(hour);
                    (held, first) = (0, None);
                }
                held += rows;
                first.get_or_insert(hour);
            }
        }
    }
    cuts
}

/// The longest a step may hold its slot and still set how many days before a span the span
/// reads: a day. Hydra's default build timeout is 10 h and hydra.nixos.org's runner sets 24 h
/// (docs/hydra.md); a step recorded as running longer is one still running at the window's end
/// or stuck, and one such step from the window's first day would make every span read every
/// day before it (a year's report, 52 spans, would read 1,352 weeks). Such steps' days are read
/// for the spans they reach instead ([`Scan`]).
const RUN_CAP_S: i64 = DAY;

const DAY: i64 = 86_400;
const HOUR: i64 = 3_600;

/// What the folded ledger needs from a first look at every day: each machine's systems, and
/// how far the steps that count in a span reach beyond it, from the window's usable steps
/// (`docs/scale.md`, "the ledger over spans"). [`analyze`] fills it in its own pass over the
/// days.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    ran: super::ledger::Ran,
    /// The longest a step held its slot (to the end of the window for one still running),
    /// up to [`RUN_CAP_S`].
    run_s: i64,
    /// The days (their start) that hold a step that held its slot longer than [`RUN_CAP_S`],
    /// each with the latest such a step held one until: read for the spans it reaches
    /// instead of widening every span's margin.
    long: std::collections::BTreeMap<i64, i64>,
    /// The longest from a build's queue time to one of its steps' start.
    wait_s: i64,
    /// The derivations with an aborted try, whose every try a span keeps.
    aborted: super::ledger::Aborted,
    /// How many steps started in each hour (its start): what a span that begins or ends there
    /// holds ([`span_cuts`]).
    hours: std::collections::BTreeMap<i64, usize>,
    /// With the derivation graph: the window's successes, which the spans' steps are matched
    /// against, and the tally of its coverage, which knows the window's derivations.
    graph: Option<(super::graph::Done, super::graph::Tally)>,
}

impl Scan {
    /// A first look that gathers what the graph is joined with, where it is read (`graph`).
    pub fn new(graph: bool) -> Scan {
        Scan {
            graph: graph.then(Default::default),
            ..Scan::default()
        }
    }

    /// A day's steps, with their usable mask and their builds' queue times; `hi`: the
    /// window's end.
    fn add(
        &mut self,
        meta: &crate::dataset::DatasetMeta,
        steps: &Steps,
        usable: &[bool],
        queued: &[Option<i64>],
        hi: i64,
    ) {
        if let Some((done, tally)) = &mut self.graph {
            done.add(meta, steps, usable);
            tally.ask(steps);
        }
        self.ran.add(steps);
        self.aborted.add(steps, usable);
        for i in 0..steps.len() {
            if let Some(start) = steps.start(i) {
                *self.hours.entry(start.div_euclid(HOUR) * HOUR).or_default() += 1;
            }
        }
        for i in 0..steps.len() {
            let Some(start) = steps.start(i) else {
                continue;
            };
            // A usable step still running holds its slot to the window's end. An unusable one
            // that stopped still counts the held time the truth records for it by its stop
            // (`Parts::add`), so its reach counts too; one that did not is counted nowhere.
            let stop = match steps.stop(i) {
                Some(stop) => stop,
                None if usable[i] => hi.max(start),
                None => continue,
            };
            if stop - start > RUN_CAP_S {
                let day = start.div_euclid(DAY) * DAY;
                let reach = self.long.entry(day).or_insert(stop);
                *reach = (*reach).max(stop);
            } else {
                self.run_s = self.run_s.max(stop - start);
            }
            if let Some(q) = queued[i].filter(|_| usable[i]) {
                self.wait_s = self.wait_s.max(start - q);
            }
        }
    }
}

/// The capacity ledger over a snapshot's days: equal to [`super::ledger::ledger`] over the
/// whole window (`tests/snapshot.rs`), with the derivation graph read from `inp.graph` or with
/// the same-build estimate's runnable times. A first look at the days ([`Scan`], which
/// [`analyze`] takes in its own pass) finds each machine's systems, how far steps reach and,
/// with the graph, the window's successes; the window is then counted a span at a time, each
/// span with the days' steps that can count in it ([`super::ledger::SpanRows`]), and the sums
/// are finished once. With it, each span's size: the steps its days hold and the steps it
/// kept, in order.
pub fn ledger(
    days: &Days,
    inp: &LedgerInputs<'_>,
) -> Result<(super::ledger::Ledger, Vec<SpanSize>)> {
    let meta = days.meta();
    let mut scan = Scan::new(inp.graph.is_some());
    days.each_day(Need::of(Finding::Ledger).omit(), |df| {
        let steps = Steps::from_frame(&df)?;
        let (usable, queued) = usable_of(inp.builds, &steps);
        scan.add(&meta, &steps, &usable, &queued, inp.hi);
        Ok(())
    })?;
    let (ledger, sizes, _) = ledger_with(days, inp, scan)?;
    Ok((ledger, sizes))
}

/// What a span's cut found of the steps it keeps whole, row by row: their usable mask, their
/// builds' queue times and, with the graph, when their inputs' outputs were back.
#[derive(Default)]
struct Known {
    usable: Vec<bool>,
    queued: Vec<Option<i64>>,
    ready: Vec<Option<i64>>,
    /// Each step's dispatch as the series shows it, where the plan reads it ([`Dispatch`]).
    dispatched: Vec<Option<i64>>,
}

/// A day's steps' usable mask and their builds' queue times (`builds`: [`Days::queue_times`]).
fn usable_of(builds: &[(i32, i64)], steps: &Steps) -> (Vec<bool>, Vec<Option<i64>>) {
    let queued = quality::queue_times(builds, steps);
    let usable = quality::Tally::default().add(steps, &queued);
    (usable, queued)
}

/// Each step's dispatch as a C++ runner's series shows it, found over the whole window's days
/// in order before the ledger's spans ([`super::dispatched::Sweep`]), so that a span needs
/// of the steps after it only those dispatched in it: per dated day (its start), in the day's
/// row order, the dispatch in seconds from the day's start, [`Dispatch::NONE`] for a step not
/// dispatched before its start. Four bytes a step (42 MB over the 10.4 M-step sample), where
/// the steps after each span were held whole for the series before: 5.25 M of them at the
/// sample at scale 100 (docs/scale.md).
struct Dispatch(Vec<(i64, Vec<i32>)>);

impl Dispatch {
    const NONE: i32 = i32::MIN;

    /// Sweeps the runner's series over the days of `days` in order, with the plan's machines.
    /// Only the days that can matter at its samples are read: from the longest run before the
    /// first sample (the steps still building then), with the earlier days whose steps that
    /// ran longer than the cap still held a slot then (`scan`), up to the day by which every
    /// slot held at the last sample has gone to a step. A step of an earlier day can still be
    /// one of the latest successes at a sample where the days read hold fewer than the series
    /// counts waiting for a local slot: then every day is read again. The year's series of its
    /// last week reads that week, not the year.
    fn sweep(
        days: &Days,
        builds: &[(i32, i64)],
        plan: &super::ledger::Plan<'_>,
        omit: crate::dataset::Omit,
        scan: &Scan,
    ) -> Result<Self> {
        let empty = || vec![(0, Vec::new()); days.len()];
        let Some(&first) = plan.dispatch_from_series().and_then(|tl| tl.times.first()) else {
            return Ok(Dispatch(empty()));
        };
        let mut dated: Vec<(i64, usize)> = (0..days.len())
            .filter_map(|d| Some((days.day_start(d)?, d)))
            .collect();
        dated.sort_unstable();
        let wanted = |s: i64| {
            s + DAY > first - scan.run_s || scan.long.get(&s).is_some_and(|&reach| reach >= first)
        };
        let note = |at: &mut Vec<(i64, Vec<i32>)>,
                    settled: &mut dyn Iterator<Item = (u64, i64)>| {
            for (id, t) in settled {
                let (d, row) = ((id >> 32) as usize, (id & 0xffff_ffff) as usize);
                let (day, v) = &mut at[d];
                v[row] = i32::try_from(t - *day).unwrap_or(Self::NONE);
            }
        };
        for every_day in [false, true] {
            let mut at = empty();
            let Some(mut sweep) = plan.dispatch_sweep() else {
                break;
            };
            let mut skipped = false;
            for &(start, d) in &dated {
                if !every_day && !wanted(start) {
                    skipped = true;
                    continue;
                }
                if !sweep.wants_steps() {
                    break;
                }
                crate::interrupt::check()?;
                let df = days.steps(d, omit)?;
                let steps = Steps::from_frame(&df)?;
                let (usable, _) = usable_of(builds, &steps);
                at[d] = (start, vec![Self::NONE; steps.len()]);
                sweep.add(plan.started(&steps, &usable, |i| (d as u64) << 32 | i as u64));
                sweep.through(start + DAY);
                note(&mut at, &mut sweep.settled());
            }
            sweep.through(i64::MAX);
            let short = sweep.short_of_successes();
            note(&mut at, &mut sweep.finish().into_iter());
            if !(skipped && short) {
                crate::progress::mark(
                    "folding the ledger: every step's dispatch from the runner's series",
                );
                return Ok(Dispatch(at));
            }
        }
        Ok(Dispatch(empty()))
    }

    /// The dispatch of each of day `d`'s steps (`steps`, in the day's row order).
    fn of_day(&self, d: usize, steps: &Steps) -> Vec<Option<i64>> {
        match self.0.get(d) {
            Some((day, v)) if v.len() == steps.len() => v
                .iter()
                .map(|&x| (x != Self::NONE).then(|| day + i64::from(x)))
                .collect(),
            _ => vec![None; steps.len()],
        }
    }
}

/// A span of the folded ledger: the steps of the days read for it, those it kept whole, and
/// those it kept as their wait alone ([`super::ledger::Kept`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanSize {
    pub read: usize,
    pub held: usize,
    pub waits: usize,
}

/// The derivation graph as a folded ledger joined it: the window's coverage, how many edges
/// and, where kept for the sample's accuracy, the edges.
pub struct Joined {
    pub coverage: super::graph::Coverage,
    pub edges: usize,
    pub kept: Option<Vec<super::deps::Edge>>,
}

/// How many of a span's steps have their `.drv` files read and joined at once: the graph of a
/// part is held until it is joined, some 100 bytes an input derivation and a few inputs a
/// step, so 128 Ki steps hold some 100 MB however many the span holds.
const READ_ROWS: usize = 128 * 1024;

/// What a folded ledger joins the derivation graph with: where the `.drv` files are, the
/// store's entries, the window's successes and the tally of its derivations.
type GraphState<'a> = (
    &'a Store,
    crate::source::drvstore::Names,
    super::graph::Done,
    super::graph::Tally,
);

/// Reads the `.drv` files of a span's `steps` (`usable`: their mask) and joins them with the
/// window's successes, a part at a time, adding what the join counted of the steps the span
/// `owns` to `sums`. Gives each step's instant its inputs were back, and the graph that names
/// the required features of the steps' derivations (their machine types).
fn join_span(
    (store, names, done, tally): &mut GraphState<'_>,
    steps: &Steps,
    usable: &[bool],
    owns: impl Fn(usize) -> bool + Sync,
    sums: &mut super::graph::Sums,
) -> Result<(Vec<Option<i64>>, crate::nix::graph::DrvGraph)> {
    let n = steps.len();
    let mut ready = Vec::with_capacity(n);
    let mut features = crate::nix::graph::DrvGraph {
        source: store.source.clone(),
        ..Default::default()
    };
    for first in (0..n).step_by(READ_ROWS) {
        let part = first..(first + READ_ROWS).min(n);
        let paths = crate::source::drvstore::distinct_drv_paths_in(steps, part.clone());
        let (g, bad) = crate::source::drvstore::read_graph_listing(
            &store.dir,
            &paths,
            &store.source,
            Some(names),
        )?;
        tally.read(&g, &bad);
        let mut j = super::graph::join_span(&g, done, steps, usable, part, &owns);
        ready.append(&mut j.ready);
        sums.add(j);
        features.features.extend(g.features);
    }
    Ok((ready, features))
}

/// [`ledger`] with the first look at the days already taken (`scan`); with the graph, what
/// it joined.
fn ledger_with(
    days: &Days,
    inp: &LedgerInputs<'_>,
    mut scan: Scan,
) -> Result<(super::ledger::Ledger, Vec<SpanSize>, Option<Joined>)> {
    use super::ledger::{
        Deps, Frame, HeldFrom, Kept, Parts, Plan, Runnable, Setup, TruthHeld, Waits,
    };
    let meta = days.meta();
    let (lo, hi) = (inp.lo, inp.hi);
    let omit = Need::of(Finding::Ledger).omit();
    crate::progress::mark(&format!(
        "folding the ledger: how far steps reach (longest run {} s, longest wait {} s)",
        scan.run_s, scan.wait_s
    ));
    // With the graph: the window's successes in the rule's order, its derivations counted.
    let mut graph = match (scan.graph.take(), inp.graph) {
        (Some((mut done, mut tally)), Some(store)) => {
            done.finish();
            tally.asked_all();
            let names = crate::source::drvstore::Names::of(&store.dir)?;
            crate::progress::mark(&format!(
                "folding the ledger: {} successes to match the derivation graph's inputs against",
                done.len()
            ));
            Some((store, names, done, tally))
        }
        _ => None,
    };
    let mut plan = Plan::new(&Setup {
        meta: &meta,
        ran: &scan.ran,
        machines: inp.machines,
        peaks: inp.peaks,
        timeline: inp.timeline,
        has_truth: days.has_truth(),
        // How many steps the graph found is known once the spans are joined.
        runnable: match graph {
            Some(_) => Runnable::Graph { found: 0, asked: 0 },
            None => Runnable::Estimate,
        },
        lo,
        hi,
    });
    let held = match plan.held_from {
        HeldFrom::Truth => {
            let mut held = TruthHeld::default();
            days.truth_steps(&[], |df| held.add(&df))?;
            held.finish();
            Some(held)
        }
        _ => None,
    };
    let mut parts: Parts = plan.parts();
    // Where a C++ runner's dispatch is read from the series, every step's, found over the
    // whole window before the spans.
    let dispatch = match plan.dispatch_from_series() {
        Some(_) => Some(Dispatch::sweep(days, inp.builds, &plan, omit, &scan)?),
        None => None,
    };
    // What the spans' joins with the graph counted, with the edges for the sample's accuracy.
    let mut sums = super::graph::Sums::new(days.has_truth());
    // Counts `df`'s steps and `waits` in `span`. `known`: what the cut found of the steps, where
    // it found it. With the graph, the steps are joined with it first, the span counting the
    // coverage of those it `owns`.
    let mut count = |plan: &Plan<'_>,
                     graph: &mut Option<GraphState<'_>>,
                     df: polars::prelude::DataFrame,
                     known: Option<Known>,
                     waits: Option<&Waits>,
                     owns: &(dyn Fn(Option<i64>) -> bool + Sync),
                     span,
                     loss|
     -> Result<usize> {
        let steps = Steps::from_frame(&df)?;
        let mut known = match known {
            Some(known) => known,
            None => {
                let (usable, queued) = usable_of(inp.builds, &steps);
                Known {
                    usable,
                    queued,
                    ..Known::default()
                }
            }
        };
        let features = match graph {
            Some(g) => {
                let owned = |i: usize| owns(steps.start(i));
                let (ready, features) = join_span(g, &steps, &known.usable, owned, &mut sums)?;
                known.ready = ready;
                Some(features)
            }
            None => None,
        };
        let frame = Frame {
            meta: &meta,
            steps: &steps,
            usable: &known.usable,
            queued: known.queued,
            graph: features.as_ref(),
            deps: features.as_ref().map(|_| Deps::Ready(&known.ready)),
            held: held.as_ref(),
            dispatched: dispatch.as_ref().map(|_| &known.dispatched[..]),
            waits,
        };
        parts.add(plan, frame, span, loss);
        Ok(steps.len())
    };
    // Spans start on the grid dispatch loss is sampled on, so that no instant is counted in
    // two: where free slots come from the series, at one of its samples, or outside the
    // samples (before the first, a step after the last), where there is no instant; else at
    // `lo + k·step`.
    let on_grid = |t: i64| match plan.free_from_series() {
        Some(tl) => match (tl.times.first(), tl.times.last()) {
            (Some(&first), Some(&last)) if t > first => tl
                .times
                .get(tl.times.partition_point(|&x| x < t))
                .copied()
                .unwrap_or(t.max(last + tl.step_s)),
            _ => t,
        },
        None => lo + (t - lo + plan.step - 1).div_euclid(plan.step) * plan.step,
    };
    let dated: Vec<(usize, i64)> = (0..days.len())
        .filter_map(|d| Some((d, days.day_start(d)?)))
        .collect();
    let hours: Vec<(i64, usize)> = scan.hours.iter().map(|(&h, &n)| (h, n)).collect();
    let mut bounds = vec![lo];
    for c in span_cuts(&hours, lo, hi, inp.spans) {
        let b = on_grid(c);
        if bounds.last().is_some_and(|&last| b > last) && b < hi {
            bounds.push(b);
        }
    }
    bounds.push(hi);
    // A step counts in `[a, b)` if it held a slot there (it started at most the longest run
    // before `a`, or is one of the few longer, `Scan::long`) or waited there (it started at
    // most the longest wait after `b`).
    let before = scan.run_s;
    // A day's steps cut to those that can count in a span: the frame of those kept whole with
    // what the cut found of them, appended to `known` (the waits of those kept as their wait
    // go to `waits`), and the rows read. With the graph, the steps whose coverage the span
    // counts (`owns`, by their start) are kept whole too: the few of them that count nothing
    // in the span (a step wholly before the window, one that started after it) then count
    // their coverage once, and nothing else.
    let graphed = graph.is_some();
    let cut = |df: polars::prelude::DataFrame,
               d: usize,
               rows: &super::ledger::SpanRows<'_>,
               owns: &(dyn Fn(Option<i64>) -> bool + Sync),
               known: &mut Known,
               waits: &mut Waits|
     -> Result<(polars::prelude::DataFrame, usize)> {
        let steps = Steps::from_frame(&df)?;
        let (usable, queued) = usable_of(inp.builds, &steps);
        let dispatched = match &dispatch {
            Some(at) => at.of_day(d, &steps),
            None => Vec::new(),
        };
        let mut keep = rows.keep(&steps, &queued, &dispatched);
        if graphed {
            for (i, k) in keep.iter_mut().enumerate() {
                if *k != Kept::Row && owns(steps.start(i)) {
                    *k = Kept::Row;
                }
            }
        }
        let n = keep.len();
        if keep.iter().all(|&k| k == Kept::Row) {
            known.usable.extend(usable);
            known.queued.extend(queued);
            known.dispatched.extend(dispatched);
            return Ok((df, n));
        }
        for (i, k) in keep.iter().enumerate() {
            match k {
                Kept::Row => {
                    known.usable.push(usable[i]);
                    known.queued.push(queued[i]);
                    if let Some(&at) = dispatched.get(i) {
                        known.dispatched.push(at);
                    }
                }
                Kept::Wait => waits.add(&meta, &steps, i, usable[i], queued[i]),
                Kept::No => {}
            }
        }
        let mask: polars::prelude::BooleanChunked =
            keep.into_iter().map(|k| k == Kept::Row).collect();
        let df = df
            .filter(&mask)
            .map_err(|e| crate::error::Error::frame("cutting a span's days", e))?;
        Ok((df, n))
    };
    let mut sizes = Vec::new();
    for w in bounds.windows(2) {
        let (a, b) = (w[0], w[1]);
        // The steps whose coverage of the graph this span counts: those that started in it,
        // the first span's also those before, the last's those after.
        let owns =
            |start: Option<i64>| start.is_some_and(|t| (t >= a || a == lo) && (t < b || b == hi));
        let around: Vec<&(usize, i64)> = dated
            .iter()
            .filter(|(_, s)| s + DAY > a - before && *s <= b + scan.wait_s)
            .collect();
        // Earlier days whose steps that ran longer than the cap still held a slot at `a`.
        let long = dated.iter().filter(|(_, s)| {
            s + DAY <= a - before && scan.long.get(s).is_some_and(|&reach| reach >= a)
        });
        let held_days: Vec<&(usize, i64)> = long.chain(around).collect();
        let rows = plan.span_rows((a, b), &scan.aborted);
        let (mut frames, mut known, mut waits) = (Vec::new(), Known::default(), Waits::default());
        let mut read = 0;
        for (d, _) in &held_days {
            let df = days.steps(*d, omit)?;
            let (df, n) = cut(df, *d, &rows, &owns, &mut known, &mut waits)?;
            frames.push(df);
            read += n;
        }
        let held_steps = count(
            &plan,
            &mut graph,
            stack(frames)?,
            Some(known),
            Some(&waits),
            &owns,
            (a, b),
            true,
        )?;
        sizes.push(SpanSize {
            read,
            held: held_steps,
            waits: waits.len(),
        });
        crate::progress::mark(&format!(
            "folding the ledger: the span from {} ({held_steps} steps and {} waits held of {read} \
             steps read)",
            crate::window::fmt_time(a),
            waits.len(),
        ));
    }
    // The steps without a start (`day=unknown`) hold no slot and wait for none; they still
    // count the overhead and held time recorded for them, and the graph's coverage.
    for d in (0..days.len()).filter(|&d| days.day_start(d).is_none()) {
        let df = days.steps(d, omit)?;
        let all = |_: Option<i64>| true;
        count(&plan, &mut graph, df, None, None, &all, (lo, hi), false)?;
    }
    let joined = match graph {
        Some((store, _, _, tally)) => {
            let (coverage, edges, kept) = tally.finish(sums, &store.source);
            plan.graph_found(coverage.steps_found, coverage.steps);
            Some(Joined {
                coverage,
                edges,
                kept,
            })
        }
        None => None,
    };
    Ok((plan.finish(parts), sizes, joined))
}

/// Frames of one table stacked in order.
fn stack(frames: Vec<polars::prelude::DataFrame>) -> Result<polars::prelude::DataFrame> {
    let mut it = frames.into_iter();
    let Some(mut acc) = it.next() else {
        return Ok(crate::dataset::STEPS.empty());
    };
    for df in it {
        acc.vstack_mut_owned(df)
            .map_err(|e| crate::error::Error::frame("stacking a span's days", e))?;
    }
    Ok(acc)
}

/// Whether the local Nix store holds the snapshot's derivations (probed on its first and last
/// days, as the whole analysis probes the window's): the ledger then reads the derivation
/// graph from it.
pub fn local_store_holds(days: &Days) -> Result<bool> {
    let dated: Vec<usize> = (0..days.len())
        .filter(|&d| days.day_start(d).is_some())
        .collect();
    for d in [dated.first(), dated.last()].into_iter().flatten() {
        let df = days.steps(*d, crate::source::snapshot::only_drv_paths())?;
        let steps = Steps::from_frame(&df)?;
        let paths = crate::source::drvstore::distinct_drv_paths(&steps);
        let store = std::path::Path::new(crate::source::drvstore::DEFAULT_STORE);
        if crate::source::drvstore::holds_any(store, &paths) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Every finding over a snapshot's days, as a report asks for them, in five passes over the
/// days that each hold only their own findings' states: utilization and the ledger (whose
/// slots come from utilization's peaks), the queue waits, waste, the overhead fit, the
/// dependency estimate. One pass holding every state at once peaked at 6.07 GiB over a
/// year of 38.7 M steps (docs/scale.md), the waits with waste 3.8 GiB, the overhead fit with
/// the estimate 3.7 GiB; a pass reads the days again in 20–50 s of it.
pub fn every_finding(
    days: &Days,
    gap_s: i64,
    codec_speeds: &[(String, f64)],
    side: Side<'_>,
) -> Result<Findings> {
    let one = |f: Finding| analyze(days, Need::of(f), gap_s, codec_speeds, side);
    let mut findings = one(Finding::Ledger)?;
    findings.waiting = one(Finding::Waiting)?.waiting;
    findings.waste = one(Finding::Waste)?.waste;
    findings.overhead = one(Finding::Overhead)?.overhead;
    let rest = one(Finding::Deps)?;
    findings.dependencies = rest.dependencies;
    // The ledger's pass gave the graph's basis where it read one.
    if !matches!(findings.runnable_basis, RunnableBasis::Graph { .. }) {
        findings.runnable_basis = rest.runnable_basis;
    }
    Ok(findings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_hold_about_as_many_steps_whatever_the_farm() {
        const M: usize = 1_000_000;
        // Steps a day, spread evenly over its hours.
        let days = |rows: &[usize]| -> Vec<(i64, usize)> {
            (0..rows.len() as i64 * 24)
                .map(|h| (h * HOUR, rows[(h / 24) as usize] / 24))
                .collect()
        };
        let at = |d: f64| (d * DAY as f64) as i64;
        // A year of a large farm (about 106,000 steps a day): a week a span.
        let cuts = span_cuts(&days(&[106_000; 364]), 0, 364 * DAY, Spans::Steps(M));
        assert_eq!(cuts, (1..52).map(|w| w * 7 * DAY).collect::<Vec<_>>());
        // 240,000 steps a day: four days and four hours hold a million.
        let cuts = span_cuts(&days(&[240_000; 9]), 0, 9 * DAY, Spans::Steps(M));
        assert_eq!(cuts, vec![100 * HOUR, 200 * HOUR]);
        // The scale-100 sample's busiest day: 3.76 M steps, 2.8 M of them in six hours, between
        // days of fewer. An hour that holds more than a million is a span of its own.
        let mut busy = days(&[300_000, 300_000, 300_000, 300_000, 0, 200_000]);
        for (h, n) in [
            (96, 100_000),
            (102, 400_000),
            (103, 1_200_000),
            (104, 700_000),
        ] {
            busy[h].1 = n;
        }
        let cuts = span_cuts(&busy, 0, 6 * DAY, Spans::Steps(M));
        assert_eq!(
            cuts,
            vec![at(3.0) + 8 * HOUR, 103 * HOUR, 104 * HOUR],
            "{busy:?}"
        );
        // Whole days, as the tests ask.
        assert_eq!(
            span_cuts(&[], 0, 7 * DAY, Spans::Days(3)),
            vec![at(3.0), at(6.0)]
        );
        assert!(span_cuts(&[], 0, 3_600, Spans::Days(1)).is_empty());
        assert!(span_cuts(&[(0, 5)], 0, 3_600, Spans::Steps(M)).is_empty());
    }
}
