//! The order in which runnable steps are offered to a machine (docs/hydra.md §4).
//!
//! Every ordering starts with the highest global priority and then the lowest jobset share used;
//! they differ in what breaks the remaining ties. The share changes while a step waits, so it is
//! not part of a key: steps are queued per jobset, where the share is the same for all, and
//! [`across_jobsets`] puts it second when queues are compared. Each key is a struct whose field
//! order is the comparison order; a greater key goes first.

use std::cmp::{Ordering, Reverse};

use serde::{Deserialize, Serialize};

/// Which queue runner's step ordering to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepSort {
    /// The C++ runner: global priority, jobset share used, local priority, required features,
    /// reverse dependencies, build id ([`CppStepKey`]).
    Cpp,
    /// Rust runner `Legacy`: global priority, share, local priority, build id
    /// ([`LegacyStepKey`]).
    Legacy,
    /// Rust runner `WithRdeps`: reverse dependencies right after the share
    /// ([`RdepsStepKey`]).
    WithRdeps,
    /// Rust runner `WithCriticalPath`: critical-path length right after the share
    /// ([`CriticalPathStepKey`]).
    WithCriticalPath,
}

/// What any ordering may look at about a runnable step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepFacts {
    /// Highest global priority of the builds needing the step.
    pub global_priority: i32,
    /// Highest local (`meta.schedulingPriority`) priority of those builds.
    pub local_priority: i32,
    /// How many system features the step requires.
    pub required_features: u32,
    /// Direct reverse dependencies still waiting.
    pub rdeps: u32,
    /// Length of the longest chain of waiting dependents, the step included. The Rust runner
    /// counts steps; a caller may measure it in build time instead.
    pub critical_path: u64,
    /// Lowest id of the builds needing the step.
    pub lowest_build: i64,
    /// The caller's index of the step: a last tie-break, so that every order is total and a run
    /// repeats exactly (upstream leaves such ties to its sort).
    pub step: u32,
}

/// A step ordering's key: compared whole inside a jobset's queue, and after the global priority
/// and the share used across queues ([`across_jobsets`]).
pub trait StepKey: Ord + Copy {
    fn global_priority(&self) -> i32;
}

/// The C++ runner's order.
///
/// Follows NixOS/hydra src/hydra-queue-runner/dispatcher.cc, `State::doDispatch`, the sort of
/// `runnableSorted` (a9581bcd).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CppStepKey {
    pub global_priority: i32,
    pub local_priority: i32,
    pub required_features: u32,
    pub rdeps: u32,
    pub lowest_build: Reverse<i64>,
    pub step: Reverse<u32>,
}

/// The Rust runner's `Legacy` order.
///
/// Follows NixOS/hydra subprojects/hydra-queue-runner/src/state/step_info.rs,
/// `StepInfo::legacy_compare` (14332fbf).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LegacyStepKey {
    pub global_priority: i32,
    pub local_priority: i32,
    pub lowest_build: Reverse<i64>,
    pub step: Reverse<u32>,
}

/// The Rust runner's `WithRdeps` order (its default `stepSortFn`).
///
/// Follows NixOS/hydra subprojects/hydra-queue-runner/src/state/step_info.rs,
/// `StepInfo::compare_with_rdeps` (14332fbf).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RdepsStepKey {
    pub global_priority: i32,
    pub rdeps: u32,
    pub local_priority: i32,
    pub lowest_build: Reverse<i64>,
    pub step: Reverse<u32>,
}

/// The Rust runner's `WithCriticalPath` order.
///
/// Follows NixOS/hydra subprojects/hydra-queue-runner/src/state/step_info.rs,
/// `StepInfo::compare_with_critical_path` (14332fbf).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CriticalPathStepKey {
    pub global_priority: i32,
    pub critical_path: u64,
    pub local_priority: i32,
    pub lowest_build: Reverse<i64>,
    pub step: Reverse<u32>,
}

/// The key of any ordering, for a caller that chooses the ordering at run time. Keys of one run
/// are all of one kind, so comparing kinds never decides anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AnyStepKey {
    Cpp(CppStepKey),
    Legacy(LegacyStepKey),
    WithRdeps(RdepsStepKey),
    WithCriticalPath(CriticalPathStepKey),
}

impl From<&StepFacts> for CppStepKey {
    fn from(f: &StepFacts) -> CppStepKey {
        CppStepKey {
            global_priority: f.global_priority,
            local_priority: f.local_priority,
            required_features: f.required_features,
            rdeps: f.rdeps,
            lowest_build: Reverse(f.lowest_build),
            step: Reverse(f.step),
        }
    }
}

impl From<&StepFacts> for LegacyStepKey {
    fn from(f: &StepFacts) -> LegacyStepKey {
        LegacyStepKey {
            global_priority: f.global_priority,
            local_priority: f.local_priority,
            lowest_build: Reverse(f.lowest_build),
            step: Reverse(f.step),
        }
    }
}

impl From<&StepFacts> for RdepsStepKey {
    fn from(f: &StepFacts) -> RdepsStepKey {
        RdepsStepKey {
            global_priority: f.global_priority,
            rdeps: f.rdeps,
            local_priority: f.local_priority,
            lowest_build: Reverse(f.lowest_build),
            step: Reverse(f.step),
        }
    }
}

impl From<&StepFacts> for CriticalPathStepKey {
    fn from(f: &StepFacts) -> CriticalPathStepKey {
        CriticalPathStepKey {
            global_priority: f.global_priority,
            critical_path: f.critical_path,
            local_priority: f.local_priority,
            lowest_build: Reverse(f.lowest_build),
            step: Reverse(f.step),
        }
    }
}

impl StepSort {
    /// The key of a step under this ordering.
    pub fn key(self, facts: &StepFacts) -> AnyStepKey {
        match self {
            StepSort::Cpp => AnyStepKey::Cpp(facts.into()),
            StepSort::Legacy => AnyStepKey::Legacy(facts.into()),
            StepSort::WithRdeps => AnyStepKey::WithRdeps(facts.into()),
            StepSort::WithCriticalPath => AnyStepKey::WithCriticalPath(facts.into()),
        }
    }
}

impl StepKey for CppStepKey {
    fn global_priority(&self) -> i32 {
        self.global_priority
    }
}

impl StepKey for LegacyStepKey {
    fn global_priority(&self) -> i32 {
        self.global_priority
    }
}

impl StepKey for RdepsStepKey {
    fn global_priority(&self) -> i32 {
        self.global_priority
    }
}

impl StepKey for CriticalPathStepKey {
    fn global_priority(&self) -> i32 {
        self.global_priority
    }
}

impl StepKey for AnyStepKey {
    fn global_priority(&self) -> i32 {
        match self {
            AnyStepKey::Cpp(k) => k.global_priority,
            AnyStepKey::Legacy(k) => k.global_priority,
            AnyStepKey::WithRdeps(k) => k.global_priority,
            AnyStepKey::WithCriticalPath(k) => k.global_priority,
        }
    }
}

/// Compares the heads of two jobsets' queues: highest global priority, then the lower share
/// used, then the rest of the key. `Greater` means `a` goes first.
///
/// Every ordering puts the share second: NixOS/hydra src/hydra-queue-runner/dispatcher.cc,
/// `State::doDispatch` (a9581bcd), and subprojects/hydra-queue-runner/src/state/step_info.rs,
/// `StepInfo::legacy_compare`, `compare_with_rdeps`, `compare_with_critical_path` (14332fbf).
pub fn across_jobsets<K: StepKey>(a: &K, a_share: f64, b: &K, b_share: f64) -> Ordering {
    a.global_priority()
        .cmp(&b.global_priority())
        .then_with(|| b_share.total_cmp(&a_share))
        .then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Five steps that each ordering ranks differently: (local priority, required features,
    /// reverse dependencies, critical path, lowest build), all at global priority 0.
    fn facts() -> Vec<StepFacts> {
        [
            (1, 0, 0, 10, 1),
            (1, 2, 1, 30, 2),
            (1, 2, 3, 20, 3),
            (2, 0, 2, 5, 4),
            (1, 0, 3, 30, 5),
        ]
        .iter()
        .enumerate()
        .map(|(i, &(p, nf, rd, cp, b))| StepFacts {
            global_priority: 0,
            local_priority: p,
            required_features: nf,
            rdeps: rd,
            critical_path: cp,
            lowest_build: b,
            step: i as u32,
        })
        .collect()
    }

    /// The steps' indices in dispatch order under `sort`, all in one jobset.
    fn order(sort: StepSort) -> Vec<u32> {
        let mut f = facts();
        f.sort_by_key(|f| Reverse(sort.key(f)));
        f.iter().map(|f| f.step).collect()
    }

    #[test]
    fn cpp_local_priority_then_features_then_rdeps_then_lowest_build() {
        // 3 has the highest local priority; of the rest 1 and 2 need two features, and 2 has
        // more dependents; 4 has more dependents than 0.
        assert_eq!(order(StepSort::Cpp), [3, 2, 1, 4, 0]);
    }

    #[test]
    fn legacy_local_priority_then_lowest_build() {
        assert_eq!(order(StepSort::Legacy), [3, 0, 1, 2, 4]);
    }

    #[test]
    fn with_rdeps_dependents_before_local_priority() {
        // 2 and 4 have three dependents (2 is the older build), 3 two, 1 one, 0 none.
        assert_eq!(order(StepSort::WithRdeps), [2, 4, 3, 1, 0]);
    }

    #[test]
    fn with_critical_path_longest_chain_before_local_priority() {
        // 1 and 4 tie on 30 (1 is the older build), then 2 (20), 0 (10), 3 (5).
        assert_eq!(order(StepSort::WithCriticalPath), [1, 4, 2, 0, 3]);
    }

    #[test]
    fn global_priority_beats_share_which_beats_the_rest_of_the_key() {
        let f = facts();
        let key = |i: usize, gp: i32| {
            let mut x = f[i];
            x.global_priority = gp;
            CppStepKey::from(&x)
        };
        // Step 3 ranks first in its queue, but its jobset has used more of its share.
        assert_eq!(
            across_jobsets(&key(3, 0), 2.0, &key(0, 0), 1.0),
            Ordering::Less
        );
        assert_eq!(
            across_jobsets(&key(0, 0), 1.0, &key(3, 0), 2.0),
            Ordering::Greater
        );
        // A higher global priority wins whatever the share.
        assert_eq!(
            across_jobsets(&key(0, 1), 9.0, &key(3, 0), 0.0),
            Ordering::Greater
        );
        // Equal shares: the key decides.
        assert_eq!(
            across_jobsets(&key(3, 0), 1.0, &key(0, 0), 1.0),
            Ordering::Greater
        );
        let any = |i: usize| StepSort::Legacy.key(&f[i]);
        assert_eq!(across_jobsets(&any(0), 0.5, &any(3), 0.5), Ordering::Less);
    }
}
