//! Jobset share accounting (docs/hydra.md §4): a jobset's share used is the build seconds its
//! steps spent in the scheduling window divided by its scheduling shares; the dispatcher
//! prefers the step whose jobset has used least.

use std::collections::VecDeque;

/// How far back build seconds count: `Jobset::schedulingWindow`, 24 h (NixOS/hydra
/// src/hydra-queue-runner/state.hh, a9581bcd).
pub const SCHEDULING_WINDOW_MS: u64 = 86_400_000;

/// Whether `runner` charges a finished step's build time to its jobsets' shares. The C++ runner
/// does (`doBuildStep`, a9581bcd); the Rust runner loads a jobset's history once when it first
/// sees the jobset and never adds to it (subprojects/hydra-queue-runner/src/state/jobset.rs,
/// 14332fbf; docs/hydra.md §4).
pub fn charges_finished_steps(runner: crate::dataset::Runner) -> bool {
    runner == crate::dataset::Runner::Cpp
}

/// Each jobset's build seconds within the window, and the share used they make.
///
/// Follows NixOS/hydra src/hydra-queue-runner/dispatcher.cc, `Jobset::addStep`,
/// `Jobset::pruneSteps`, and state.hh, `Jobset::shareUsed` (a9581bcd). Two simplifications,
/// shared by both simulations: a step is charged when it ends (upstream files it under its start
/// time, so it leaves the window 24 h after it started), and its seconds are not rounded down to
/// whole seconds nor split over several jobsets (a step here has one).
#[derive(Debug, Clone)]
pub struct JobsetShares {
    /// Per jobset: (when charged, build seconds) of the steps in the window, oldest first.
    log: Vec<VecDeque<(u64, f64)>>,
    seconds: Vec<f64>,
    /// `schedulingShares`, at least 1 (upstream refuses 0).
    shares: Vec<f64>,
    used: Vec<f64>,
}

impl JobsetShares {
    /// Jobsets with these scheduling shares, none of them charged yet.
    pub fn new(shares: impl IntoIterator<Item = u32>) -> JobsetShares {
        let shares: Vec<f64> = shares.into_iter().map(|s| f64::from(s.max(1))).collect();
        let n = shares.len();
        JobsetShares {
            log: vec![VecDeque::new(); n],
            seconds: vec![0.0; n],
            shares,
            used: vec![0.0; n],
        }
    }

    /// Charges `seconds` of building to `jobset` at `at_ms`.
    pub fn charge(&mut self, jobset: usize, at_ms: u64, seconds: f64) {
        self.log[jobset].push_back((at_ms, seconds));
        self.seconds[jobset] += seconds;
    }

    /// Drops what fell out of the window at `now_ms` and recomputes every jobset's share used
    /// (read with [`JobsetShares::used`]).
    pub fn update(&mut self, now_ms: u64) {
        let horizon = now_ms.saturating_sub(SCHEDULING_WINDOW_MS);
        for j in 0..self.log.len() {
            while let Some(&(t, s)) = self.log[j].front() {
                if t >= horizon {
                    break;
                }
                self.seconds[j] -= s;
                self.log[j].pop_front();
            }
            self.used[j] = self.seconds[j].max(0.0) / self.shares[j];
        }
    }

    /// Each jobset's share used as of the last [`JobsetShares::update`].
    pub fn used(&self) -> &[f64] {
        &self.used
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_over_shares_within_the_last_day() {
        let mut s = JobsetShares::new([100, 0]);
        s.charge(0, 1_000, 50.0);
        s.charge(0, 2_000, 150.0);
        s.charge(1, 2_000, 3.0);
        s.update(10_000);
        assert_eq!(s.used(), [2.0, 3.0]);
        // A day after the first charge it still counts; a moment later it is gone.
        s.update(1_000 + SCHEDULING_WINDOW_MS);
        assert_eq!(s.used(), [2.0, 3.0]);
        s.update(1_001 + SCHEDULING_WINDOW_MS);
        assert_eq!(s.used(), [1.5, 3.0]);
        s.update(2_001 + SCHEDULING_WINDOW_MS);
        assert_eq!(s.used(), [0.0, 0.0]);
    }
}
