//! The clock of a discrete-event simulation: events due at a millisecond, taken earliest first
//! and, among events of one instant, in the order they were scheduled. Both simulations of the
//! queue runner (the sample generator and the model) run on it, so neither depends on how a
//! heap breaks ties, and a run is reproducible from its inputs alone.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// Events of type `E` in the order they fall due.
#[derive(Debug)]
pub struct Agenda<E> {
    heap: BinaryHeap<Reverse<Due<E>>>,
    /// Scheduling order: unique, so the order of two events never depends on `E`.
    seq: u64,
}

#[derive(Debug)]
struct Due<E> {
    at_ms: u64,
    seq: u64,
    ev: E,
}

impl<E> PartialEq for Due<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.at_ms, self.seq) == (other.at_ms, other.seq)
    }
}

impl<E> Eq for Due<E> {}

impl<E> PartialOrd for Due<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Due<E> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at_ms, self.seq).cmp(&(other.at_ms, other.seq))
    }
}

impl<E> Default for Agenda<E> {
    fn default() -> Self {
        Agenda::with_capacity(0)
    }
}

impl<E> Agenda<E> {
    pub fn with_capacity(n: usize) -> Self {
        Agenda {
            heap: BinaryHeap::with_capacity(n),
            seq: 0,
        }
    }

    /// `ev` falls due at `at_ms`, after every event already scheduled for that instant.
    pub fn schedule(&mut self, at_ms: u64, ev: E) {
        self.seq += 1;
        self.heap.push(Reverse(Due {
            at_ms,
            seq: self.seq,
            ev,
        }));
    }

    /// The next event due, and when.
    pub fn pop(&mut self) -> Option<(u64, E)> {
        self.heap.pop().map(|Reverse(d)| (d.at_ms, d.ev))
    }

    /// When the next event falls due.
    pub fn next_at(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse(d)| d.at_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_first_and_one_instant_in_scheduling_order() {
        let mut t = Agenda::default();
        // Events that would sort the other way by value: the order must come from scheduling.
        t.schedule(20, 'a');
        t.schedule(10, 'z');
        t.schedule(10, 'b');
        t.schedule(10, 'a');
        assert_eq!(t.next_at(), Some(10));
        let order: Vec<(u64, char)> = std::iter::from_fn(|| t.pop()).collect();
        assert_eq!(order, [(10, 'z'), (10, 'b'), (10, 'a'), (20, 'a')]);
        assert_eq!(t.next_at(), None);
    }
}
