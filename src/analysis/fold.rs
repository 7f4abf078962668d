//! Findings folded over a snapshot's days: the steps are read a day at a time
//! ([`crate::source::snapshot::Days`]) and each finding's state takes them in order, so that
//! what is held is one day's steps and what crosses days, kept compact (each build's queue
//! time, 16 bytes a build). The states are the ones [`super::analyze`] fills with the whole
//! window at once, so both give the same findings. Today the data-quality checks, utilization,
//! the queue waits, waste, the overhead fit and the dependency estimate fold; docs/scale.md has
//! the plan for the ledger.

use super::table::Finding;
use super::{
    Dependencies, Findings, Need, Overhead, OverheadPoints, RunnableBasis, Steps, deps, quality,
    utilization, waiting, waste,
};
use crate::error::Result;
use crate::source::snapshot::Days;

/// Whether `finding` can be computed over days.
pub fn foldable(finding: Finding) -> bool {
    matches!(
        finding,
        Finding::Quality
            | Finding::Utilization
            | Finding::Waiting
            | Finding::Waste
            | Finding::Overhead
            | Finding::Deps
    )
}

/// The findings `need` asks for (each [`foldable`]) over every day of `days`; `codec_speeds`
/// (codec, MB/s per core) to set beside the overhead fit.
pub fn analyze(
    days: &Days,
    need: Need,
    gap_s: i64,
    codec_speeds: &[(String, f64)],
) -> Result<Findings> {
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
    // The overhead fit takes its sizes from the truth where there is one, and then reads
    // neither the derivation paths nor the builds' sizes.
    let omit = match days.has_truth() {
        true => need.omit_with_truth().unwrap_or(need.omit()),
        false => need.omit(),
    };
    days.each_day(omit, |df| {
        let steps = Steps::from_frame(&df)?;
        let usable = tally.add(&steps, &quality::queue_times(&builds, &steps));
        let (steps, usable) = (&steps, &usable[..]);
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
            if need.deps {
                s.spawn(|_| members.add(steps, usable));
            }
        });
        Ok(())
    })?;
    drop(builds);
    crate::progress::mark("folding: the days");
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
    if need.deps {
        let edges = members.finish(gap_s);
        let accuracy = if days.has_truth() {
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
    Ok(findings)
}
