//! Findings folded over a snapshot's days: the steps are read a day at a time
//! ([`crate::source::snapshot::Days`]) and each finding's state takes them in order, so that
//! what is held is one day's steps and what crosses days, kept compact (each build's queue
//! time, 16 bytes a build). The states are the ones [`super::analyze`] fills with the whole
//! window at once, so both give the same findings. Today the data-quality checks, utilization
//! and the queue waits fold; docs/scale.md has the plan for the others.

use super::table::Finding;
use super::{Findings, Need, Steps, quality, utilization, waiting};
use crate::error::Result;
use crate::source::snapshot::Days;

/// Whether `finding` can be computed over days.
pub fn foldable(finding: Finding) -> bool {
    matches!(
        finding,
        Finding::Quality | Finding::Utilization | Finding::Waiting
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
    let omit = need.omit();
    for day in 0..days.len() {
        let df = days.steps(day, omit)?;
        let steps = Steps::from_frame(&df)?;
        let usable = tally.add(&steps, &quality::queue_times(&builds, &steps));
        if need.utilization {
            util.add(&steps, &usable);
        }
        if need.waiting {
            first.add(&steps, &usable);
        }
    }
    drop(builds);
    crate::progress::mark("folding: the days");
    let waiting = if need.waiting {
        let mut waits = waiting::Accumulator::new(first);
        days.builds(omit, |df| waits.add(&df))?;
        crate::progress::mark("folding: the builds' waits");
        waits.finish()
    } else {
        waiting::Waiting::default()
    };
    Ok(Findings {
        utilization: if need.utilization {
            util.finish()
        } else {
            utilization::Utilization::default()
        },
        waiting,
        ..Findings::of(&meta, lo, hi, tally.finish(), gap_s)
    })
}
