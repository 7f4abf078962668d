//! Findings folded over a snapshot's days: the steps are read a day at a time
//! ([`crate::source::snapshot::Days`]) and each finding's state takes them in order, so that
//! what is held is one day's steps and what crosses days, kept compact (each build's queue
//! time, 16 bytes a build). The states are the ones [`super::analyze`] fills with the whole
//! window at once, so both give the same findings. Today the data-quality checks, utilization,
//! the queue waits and waste fold; docs/scale.md has the plan for the others.

use super::table::Finding;
use super::{Findings, Need, Steps, quality, utilization, waiting, waste};
use crate::error::Result;
use crate::source::snapshot::Days;

/// Whether `finding` can be computed over days.
pub fn foldable(finding: Finding) -> bool {
    matches!(
        finding,
        Finding::Quality | Finding::Utilization | Finding::Waiting | Finding::Waste
    )
}

/// The findings `need` asks for (each [`foldable`]) over every day of `days`.
pub fn analyze(days: &Days, need: Need, gap_s: i64) -> Result<Findings> {
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
    let omit = need.omit();
    days.each_day(omit, |df| {
        let steps = Steps::from_frame(&df)?;
        let usable = tally.add(&steps, &quality::queue_times(&builds, &steps));
        if need.utilization {
            util.add(&steps, &usable);
        }
        if need.waiting {
            first.add(&steps, &usable);
        }
        if need.waste {
            wasted.add(&steps, &usable);
        }
        Ok(())
    })?;
    drop(builds);
    crate::progress::mark("folding: the days");
    let mut waits = need.waiting.then(|| waiting::Accumulator::new(first));
    if need.waiting || need.waste {
        days.builds(omit, |df| {
            if let Some(w) = &mut waits {
                w.add(&df)?;
            }
            if need.waste {
                wasted.add_owners(&df)?;
            }
            Ok(())
        })?;
        crate::progress::mark("folding: the builds");
    }
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
    Ok(Findings {
        utilization: if need.utilization {
            util.finish()
        } else {
            utilization::Utilization::default()
        },
        waiting,
        waste,
        ..Findings::of(&meta, lo, hi, tally.finish(), gap_s)
    })
}
