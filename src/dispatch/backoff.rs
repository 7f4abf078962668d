//! Waiting after failures: a step retried after an abort, and a machine disabled after it failed
//! (docs/hydra.md §4). Both grow as 60 · 3^(n−1) s, the C++ runner's `retryInterval` and
//! `retryBackoff` (NixOS/hydra src/hydra-queue-runner/state.hh, a9581bcd).

use crate::dataset::Runner;

/// Tries of a step before an abort becomes final: `maxTries` (state.hh, a9581bcd).
pub const MAX_TRIES: u32 = 5;
/// The first wait: `retryInterval`, 60 s (state.hh, a9581bcd).
pub const RETRY_INTERVAL_MS: u64 = 60_000;
/// Each further wait is this many times the one before: `retryBackoff` (state.hh, a9581bcd).
pub const RETRY_BACKOFF: u64 = 3;
/// A retried step also waits a random 0–9 s, `rand() % 10` (builder.cc, `State::builder`,
/// a9581bcd), so that steps aborted together do not come back together.
pub const RETRY_JITTER_MS: u64 = 10_000;
/// Consecutive failures of a machine stop counting at 4, so it is never disabled for more than
/// 60 · 3³ s = 27 min plus jitter (build-remote.cc, `State::buildRemote`, a9581bcd).
pub const MAX_CONSECUTIVE_FAILURES: u32 = 4;
/// A disabled machine also waits a random 0–29 s, `rand() % 30` (build-remote.cc,
/// `State::buildRemote`, a9581bcd).
pub const DISABLE_JITTER_MS: u64 = 30_000;
/// A machine failure within 30 s of the one before is not counted again: steps started in
/// parallel on a machine that went away fail together, and that is one failure
/// (build-remote.cc, `State::buildRemote`, a9581bcd).
pub const FAILURE_DEBOUNCE_MS: u64 = 30_000;

/// Whether `runner` disables a machine after it failed a step. The C++ runner does
/// (build-remote.cc, `State::buildRemote`, a9581bcd); the Rust runner counts consecutive
/// failures but never sets `disabledUntil` (subprojects/hydra-queue-runner/src/state/machine.rs,
/// 14332fbf).
pub fn disables_machines(runner: Runner) -> bool {
    runner == Runner::Cpp
}

/// Whether `runner` adds [`RETRY_JITTER_MS`] of jitter to a retry's wait: the C++ runner does;
/// the Rust runner's `fail_step` waits 60 · 3^(n−1) s exactly (14332fbf).
pub fn jitters_retries(runner: Runner) -> bool {
    runner == Runner::Cpp
}

/// The wait after the `n`-th failure in a row (n ≥ 1), jitter aside: 60 · 3^(n−1) s.
///
/// Follows NixOS/hydra src/hydra-queue-runner/builder.cc, `State::builder` (steps), and
/// build-remote.cc, `State::buildRemote` (machines) (a9581bcd).
pub fn backoff_ms(n: u32) -> u64 {
    RETRY_INTERVAL_MS * RETRY_BACKOFF.pow(n.max(1) - 1)
}

/// Whether a step that failed in a retryable way `tries` times (this one included) is tried
/// again: at most [`MAX_TRIES`] tries in all.
///
/// Follows NixOS/hydra src/hydra-queue-runner/builder.cc, `State::doBuildStep`
/// (`tries + 1 < maxTries` before the count is raised) (a9581bcd).
pub fn may_retry(tries: u32) -> bool {
    tries < MAX_TRIES
}

/// A machine's record of failures, and until when it is disabled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MachineHealth {
    consecutive_failures: u32,
    last_failure_ms: u64,
    disabled_until_ms: u64,
}

impl MachineHealth {
    /// Whether the dispatcher may give the machine a step at `now_ms`.
    ///
    /// Follows NixOS/hydra src/hydra-queue-runner/dispatcher.cc, `State::doDispatch`
    /// (machines with failures and `disabledUntil > now` are left out) (a9581bcd).
    pub fn enabled_at(&self, now_ms: u64) -> bool {
        now_ms >= self.disabled_until_ms
    }

    pub fn disabled_until_ms(&self) -> u64 {
        self.disabled_until_ms
    }

    /// Records a failure at `now_ms`. Unless one was counted in the last
    /// [`FAILURE_DEBOUNCE_MS`], the machine is disabled for [`backoff_ms`] of its consecutive
    /// failures (at most [`MAX_CONSECUTIVE_FAILURES`]) plus `jitter_ms`; returns when it is
    /// enabled again, or `None` when the failure was not counted.
    ///
    /// Follows NixOS/hydra src/hydra-queue-runner/build-remote.cc, `State::buildRemote`
    /// (a9581bcd). Upstream does not count a failure exactly 30 s after the last either; here
    /// that one counts.
    pub fn failed(&mut self, now_ms: u64, jitter_ms: u64) -> Option<u64> {
        if self.consecutive_failures > 0 && self.last_failure_ms + FAILURE_DEBOUNCE_MS > now_ms {
            return None;
        }
        self.consecutive_failures = (self.consecutive_failures + 1).min(MAX_CONSECUTIVE_FAILURES);
        self.last_failure_ms = now_ms;
        self.disabled_until_ms = now_ms + backoff_ms(self.consecutive_failures) + jitter_ms;
        Some(self.disabled_until_ms)
    }

    /// The machine worked: the next failure counts as the first.
    ///
    /// Upstream resets the count on every successful connection (build-remote.cc,
    /// `State::buildRemote`, a9581bcd); the simulations reset it when a step ends without an
    /// abort.
    pub fn worked(&mut self) {
        self.consecutive_failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_threefold_from_a_minute() {
        let mins: Vec<u64> = (1..=4).map(|n| backoff_ms(n) / 60_000).collect();
        assert_eq!(mins, [1, 3, 9, 27]);
        assert!((1..5).all(may_retry) && !may_retry(5));
    }

    #[test]
    fn a_machine_is_disabled_longer_after_each_failure_up_to_the_fourth() {
        let mut h = MachineHealth::default();
        assert!(h.enabled_at(0));
        assert_eq!(h.failed(1_000, 7), Some(61_007));
        assert!(!h.enabled_at(61_006) && h.enabled_at(61_007));
        // Within 30 s of the last: not counted, the machine stays as it was.
        assert_eq!(h.failed(30_999, 0), None);
        assert_eq!(h.disabled_until_ms(), 61_007);
        assert_eq!(h.failed(31_000, 0), Some(31_000 + 180_000));
        assert_eq!(h.failed(300_000, 0), Some(300_000 + 540_000));
        assert_eq!(h.failed(900_000, 0), Some(900_000 + 1_620_000));
        assert_eq!(h.failed(3_000_000, 0), Some(3_000_000 + 1_620_000));
        h.worked();
        assert_eq!(h.failed(3_000_001, 0), Some(3_000_001 + 60_000));
    }
}
