//! The C++ runner's two waits after dispatch (docs/hydra.md §3): a machine's send lock, one step
//! at a time sending inputs to it (NixOS/hydra src/hydra-queue-runner/build-remote.cc,
//! `copyClosureTo`, `sendLock`), and the local worker slots of the queue-runner host, which a
//! finished build needs before its outputs are copied back (build-remote.cc,
//! `State::buildRemote`, `localWorkThrottler`; hydra-queue-runner.cc, `State::State`) (a9581bcd).

use std::collections::VecDeque;

/// A counting semaphore whose waiters are served in arrival order. Upstream's mutex and
/// semaphore promise no order; first come, first served is the simulations' assumption.
#[derive(Debug, Clone)]
pub struct FifoSemaphore<T> {
    free: u32,
    waiting: VecDeque<T>,
}

impl<T> FifoSemaphore<T> {
    /// A semaphore with `permits` permits (1 for a lock).
    pub fn new(permits: u32) -> FifoSemaphore<T> {
        FifoSemaphore {
            free: permits,
            waiting: VecDeque::new(),
        }
    }

    /// `holder` asks for a permit: `true` if it has one now; otherwise it waits its turn.
    pub fn acquire(&mut self, holder: T) -> bool {
        if self.free > 0 {
            self.free -= 1;
            true
        } else {
            self.waiting.push_back(holder);
            false
        }
    }

    /// A holder gives its permit back. The first waiter that still `wants` one gets it and is
    /// returned (waiters that no longer want it are dropped).
    pub fn release(&mut self, mut wants: impl FnMut(&T) -> bool) -> Option<T> {
        self.free += 1;
        while let Some(next) = self.waiting.pop_front() {
            if wants(&next) {
                self.free -= 1;
                return Some(next);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiters_get_permits_in_arrival_order_skipping_those_gone() {
        let mut s = FifoSemaphore::new(2);
        assert!(s.acquire(1) && s.acquire(2));
        assert!(!s.acquire(3) && !s.acquire(4) && !s.acquire(5));
        assert_eq!(s.release(|&w| w != 3), Some(4));
        assert_eq!(s.release(|_| true), Some(5));
        assert_eq!(s.release(|_| true), None);
        assert!(s.acquire(6));
        assert!(!s.acquire(7));
    }
}
