//! The Rust dispatcher's trigger timer (`dispatchTriggerTimerInS`): besides being woken by
//! events, the dispatch loop runs a pass once the timer's length has passed since its last one
//! (NixOS/hydra subprojects/hydra-queue-runner/src/state/mod.rs `start_dispatch_loop`,
//! 14332fbf; docs/hydra.md §7). A simulation keeps one timer event queued at a time: a pass
//! restarts the timer, and an event that comes before the timer runs out (because a pass came
//! in between) is queued again for the new end.

/// The timer of one simulation; without a length (the C++ runner) it never runs.
#[derive(Debug, Clone, Default)]
pub struct DispatchTimer {
    period_ms: Option<u64>,
    due: u64,
    queued: bool,
}

impl DispatchTimer {
    pub fn new(period_ms: Option<u64>) -> DispatchTimer {
        DispatchTimer {
            period_ms,
            ..DispatchTimer::default()
        }
    }

    /// A pass ran at `now`: the timer restarts. Returns when to queue a timer event, unless
    /// one is queued already (or the timer is off).
    pub fn passed(&mut self, now: u64) -> Option<u64> {
        self.due = now + self.period_ms?;
        self.arm()
    }

    /// The queued timer event came at `t`: whether it wakes the dispatcher, and, when it came
    /// early, when to queue it again.
    pub fn fired(&mut self, t: u64) -> (bool, Option<u64>) {
        self.queued = false;
        if t >= self.due {
            (true, None)
        } else {
            (false, self.arm())
        }
    }

    fn arm(&mut self) -> Option<u64> {
        if self.queued {
            return None;
        }
        self.queued = true;
        Some(self.due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_restarts_the_timer_and_an_early_event_waits_for_the_new_end() {
        let mut t = DispatchTimer::new(Some(120));
        assert_eq!(t.passed(0), Some(120));
        // A pass at 50 moves the end to 170; the event queued for 120 stays queued.
        assert_eq!(t.passed(50), None);
        assert_eq!(t.fired(120), (false, Some(170)));
        assert_eq!(t.fired(170), (true, None));
        assert_eq!(t.passed(170), Some(290));
        let mut off = DispatchTimer::new(None);
        assert_eq!(off.passed(0), None);
    }
}
