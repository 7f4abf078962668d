//! Build and step status codes: the values of `Builds.buildStatus` and `BuildSteps.status`
//! (docs/hydra.md §2), and the queue runner's rules that turn one into another.
//!
//! Both runners write the same numbers: NixOS/hydra src/hydra-queue-runner/state.hh, enum
//! `BuildStatus` (a9581bcd), and subprojects/crates/db/src/models.rs, enum `BuildStatus`
//! (14332fbf), which adds 13. The in-memory "busy" value (100) is never stored, and 5 is obsolete.

/// One status code as stored in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BuildStatus {
    /// 0
    Success,
    /// 1: the builder reported a failure (also a build whose top-level step is a cached failure).
    Failed,
    /// 2: builds only, a dependency of the top-level step failed.
    DepFailed,
    /// 3: lost connection, builder crash, a miscellaneous failure; retried.
    Aborted,
    /// 4
    Cancelled,
    /// 6: builds only, the build succeeded and wrote `nix-support/failed`.
    FailedWithOutput,
    /// 7: the build timeout or max-silent time ran out.
    TimedOut,
    /// 8: steps only, the derivation is in FailedPaths.
    CachedFailure,
    /// 9: no machine supports the step's system and features.
    Unsupported,
    /// 10
    LogLimitExceeded,
    /// 11: an output is larger than `max_output_size`.
    NarSizeLimitExceeded,
    /// 12: a repeated build gave different outputs.
    NotDeterministic,
    /// 13: Rust runner only, a content-addressed derivation was resolved.
    Resolved,
    /// A code neither runner defines for a stored row (5 is obsolete; newer runners may add
    /// more): kept as read, so a reader can count it without mistaking it for a known one.
    Other(i32),
}

impl BuildStatus {
    /// The code as stored.
    pub const fn code(self) -> i32 {
        match self {
            BuildStatus::Success => 0,
            BuildStatus::Failed => 1,
            BuildStatus::DepFailed => 2,
            BuildStatus::Aborted => 3,
            BuildStatus::Cancelled => 4,
            BuildStatus::FailedWithOutput => 6,
            BuildStatus::TimedOut => 7,
            BuildStatus::CachedFailure => 8,
            BuildStatus::Unsupported => 9,
            BuildStatus::LogLimitExceeded => 10,
            BuildStatus::NarSizeLimitExceeded => 11,
            BuildStatus::NotDeterministic => 12,
            BuildStatus::Resolved => 13,
            BuildStatus::Other(code) => code,
        }
    }

    /// The status a stored code stands for.
    pub const fn from_code(code: i32) -> BuildStatus {
        match code {
            0 => BuildStatus::Success,
            1 => BuildStatus::Failed,
            2 => BuildStatus::DepFailed,
            3 => BuildStatus::Aborted,
            4 => BuildStatus::Cancelled,
            6 => BuildStatus::FailedWithOutput,
            7 => BuildStatus::TimedOut,
            8 => BuildStatus::CachedFailure,
            9 => BuildStatus::Unsupported,
            10 => BuildStatus::LogLimitExceeded,
            11 => BuildStatus::NarSizeLimitExceeded,
            12 => BuildStatus::NotDeterministic,
            13 => BuildStatus::Resolved,
            other => BuildStatus::Other(other),
        }
    }

    /// A short name for people.
    pub fn name(self) -> &'static str {
        match self {
            BuildStatus::Success => "success",
            BuildStatus::Failed => "failed",
            BuildStatus::DepFailed => "dependency failed",
            BuildStatus::Aborted => "aborted",
            BuildStatus::Cancelled => "cancelled",
            BuildStatus::FailedWithOutput => "failed with output",
            BuildStatus::TimedOut => "timed out",
            BuildStatus::CachedFailure => "cached failure",
            BuildStatus::Unsupported => "unsupported system",
            BuildStatus::LogLimitExceeded => "log limit exceeded",
            BuildStatus::NarSizeLimitExceeded => "output size limit exceeded",
            BuildStatus::NotDeterministic => "not deterministic",
            BuildStatus::Resolved => "resolved",
            BuildStatus::Other(_) => "unknown",
        }
    }

    /// Whether a step that failed with this status is recorded in FailedPaths, so that later
    /// builds needing it fail at once with a cached failure: permanent failures and
    /// non-determinism are; time-outs, log limits and aborts are built again.
    ///
    /// Follows NixOS/hydra src/hydra-queue-runner/build-remote.cc,
    /// `RemoteResult::updateWithBuildResult` (`canCache`), and builder.cc, `State::failStep`
    /// (a9581bcd). Upstream also sets `canCache` for rejected inputs or outputs, which are
    /// reported as `Failed` too.
    pub fn cached_in_failed_paths(self) -> bool {
        matches!(self, BuildStatus::Failed | BuildStatus::NotDeterministic)
    }

    /// The status a build gets when this step of it fails for good: a cached failure reads as a
    /// plain failure, and a failure of any step but the build's top level as a dependency
    /// failure; other statuses pass through unchanged.
    ///
    /// Follows NixOS/hydra src/hydra-queue-runner/builder.cc, `State::failStep`, and state.hh,
    /// `RemoteResult::buildStatus` (a9581bcd).
    pub fn for_build(self, step_is_top_level: bool) -> BuildStatus {
        let status = if self == BuildStatus::CachedFailure {
            BuildStatus::Failed
        } else {
            self
        };
        if !step_is_top_level && status == BuildStatus::Failed {
            BuildStatus::DepFailed
        } else {
            status
        }
    }
}

/// What a running step is doing, as the C++ runner stores it in `BuildSteps.busy` while the
/// step runs (0 once it ended): NixOS/hydra src/hydra-queue-runner/state.hh, enum `StepState`
/// (a9581bcd), set by `buildRemote` in build-remote.cc through `updateStep`. The wait for a
/// machine's send lock happens inside `sendInputs`, after `updateStep(ssSendingInputs)`, so a
/// step waiting for the lock reads as sending inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepState {
    Preparing,
    Connecting,
    SendingInputs,
    Building,
    WaitingForLocalSlot,
    ReceivingOutputs,
    PostProcessing,
}

impl StepState {
    /// The value stored in `BuildSteps.busy`.
    pub fn code(self) -> i32 {
        match self {
            StepState::Preparing => 1,
            StepState::Connecting => 10,
            StepState::SendingInputs => 20,
            StepState::Building => 30,
            StepState::WaitingForLocalSlot => 35,
            StepState::ReceivingOutputs => 40,
            StepState::PostProcessing => 50,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reads_back_as_itself() {
        for code in -1..=101 {
            assert_eq!(BuildStatus::from_code(code).code(), code);
        }
        assert_eq!(BuildStatus::from_code(5), BuildStatus::Other(5));
        assert_eq!(BuildStatus::from_code(100), BuildStatus::Other(100));
        assert_eq!(BuildStatus::from_code(13), BuildStatus::Resolved);
    }

    #[test]
    fn a_dependents_build_fails_as_dependency_failed_only_for_plain_failures() {
        use BuildStatus::*;
        assert_eq!(Failed.for_build(true), Failed);
        assert_eq!(Failed.for_build(false), DepFailed);
        assert_eq!(CachedFailure.for_build(true), Failed);
        assert_eq!(CachedFailure.for_build(false), DepFailed);
        assert_eq!(TimedOut.for_build(false), TimedOut);
        assert_eq!(NotDeterministic.for_build(false), NotDeterministic);
        assert!(Failed.cached_in_failed_paths() && NotDeterministic.cached_in_failed_paths());
        assert!(!TimedOut.cached_in_failed_paths() && !Aborted.cached_in_failed_paths());
    }

    #[test]
    fn step_states_store_upstreams_busy_values() {
        use StepState::*;
        let codes: Vec<i32> = [
            Preparing,
            Connecting,
            SendingInputs,
            Building,
            WaitingForLocalSlot,
            ReceivingOutputs,
            PostProcessing,
        ]
        .iter()
        .map(|s| s.code())
        .collect();
        assert_eq!(codes, [1, 10, 20, 30, 35, 40, 50]);
    }
}
