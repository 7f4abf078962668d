//! The dispatcher's state and its one decision: which machine takes which runnable step next.
//!
//! Runnable steps are queued per machine class (a system and the features a step requires) and
//! per jobset, in binary heaps by their [`StepKey`]; machines with a free slot are kept, per
//! class they can build, in ordered sets by their [`MachineKey`]. Both are kept up to date as
//! steps and slots come and go, so each decision costs O(classes × jobsets + log n) rather than
//! the C++ runner's sort of everything. The jobset shares ([`JobsetShares`]) live here too, since
//! only the decision reads them.

use std::collections::{BTreeSet, BinaryHeap};

use super::backoff::MachineHealth;
use super::machine::{FreeFn, MachineKey, MachineSort};
use super::share::JobsetShares;
use super::step::{StepKey, across_jobsets};

/// What the dispatcher knows of one machine.
#[derive(Debug, Clone)]
struct Slots {
    max_jobs: u32,
    speed: f64,
    current_jobs: u32,
    health: MachineHealth,
    /// Its pressure, as last reported, is under its thresholds (the dynamic free functions).
    under_thresholds: bool,
    /// Its key while it has a free slot and is enabled.
    key: Option<MachineKey>,
    /// The classes it can build.
    classes: Vec<usize>,
}

/// The runnable steps of one machine class, and the free machines that can build them.
#[derive(Debug)]
struct Class<K: Ord, T: Ord> {
    /// One queue per jobset, because a jobset's share used changes while its steps wait.
    heaps: Vec<BinaryHeap<(K, T)>>,
    /// Queued entries still runnable (the rest are stale, skipped when met).
    runnable: usize,
    free: BTreeSet<MachineKey>,
}

/// Runnable steps (`T`, ranked by `K`), machine slots and jobset shares.
#[derive(Debug)]
pub struct Dispatcher<K: Ord, T: Ord> {
    sort: MachineSort,
    free_fn: FreeFn,
    shares: JobsetShares,
    machines: Vec<Slots>,
    classes: Vec<Class<K, T>>,
}

impl<K: StepKey, T: Ord + Copy> Dispatcher<K, T> {
    /// A dispatcher over machines given as (maxJobs, speed factor), ordered by `sort`, for
    /// steps of jobsets with these scheduling shares; every machine is idle and enabled.
    pub fn new(
        sort: MachineSort,
        shares: impl IntoIterator<Item = u32>,
        machines: impl IntoIterator<Item = (u32, f64)>,
    ) -> Self {
        let machines = machines
            .into_iter()
            .map(|(max_jobs, speed)| Slots {
                max_jobs,
                speed,
                current_jobs: 0,
                health: MachineHealth::default(),
                under_thresholds: true,
                key: None,
                classes: Vec::new(),
            })
            .collect();
        let mut d = Dispatcher {
            sort,
            free_fn: FreeFn::Static,
            shares: JobsetShares::new(shares),
            machines,
            classes: Vec::new(),
        };
        for m in 0..d.machines.len() {
            d.refresh(m, 0);
        }
        d
    }

    /// Decides free machines by `free_fn` from now on (the default is [`FreeFn::Static`], the
    /// C++ runner's only rule).
    pub fn set_free_fn(&mut self, free_fn: FreeFn, now_ms: u64) {
        self.free_fn = free_fn;
        for m in 0..self.machines.len() {
            self.refresh(m, now_ms);
        }
    }

    /// Machine `m` reported its pressure: `under` its thresholds or not. Returns whether that
    /// changed anything.
    pub fn report_pressure(&mut self, m: usize, under: bool, now_ms: u64) -> bool {
        if self.machines[m].under_thresholds == under {
            return false;
        }
        self.machines[m].under_thresholds = under;
        self.refresh(m, now_ms);
        true
    }

    /// Adds a machine class that the machines for which `supports` holds can build; returns
    /// its index.
    pub fn add_class(&mut self, supports: impl Fn(usize) -> bool) -> usize {
        let c = self.classes.len();
        let mut free = BTreeSet::new();
        for (m, slots) in self.machines.iter_mut().enumerate() {
            if supports(m) {
                slots.classes.push(c);
                if let Some(k) = slots.key {
                    free.insert(k);
                }
            }
        }
        self.classes.push(Class {
            heaps: (0..self.shares.used().len())
                .map(|_| BinaryHeap::new())
                .collect(),
            runnable: 0,
            free,
        });
        c
    }

    /// Queues a runnable step of class `class` and jobset `jobset`.
    pub fn push(&mut self, class: usize, jobset: usize, key: K, step: T) {
        self.classes[class].heaps[jobset].push((key, step));
        self.classes[class].runnable += 1;
    }

    /// A queued step of `class` is no longer runnable; its entry is skipped when met.
    pub fn withdraw(&mut self, class: usize) {
        self.classes[class].runnable -= 1;
    }

    pub fn has_runnable(&self) -> bool {
        self.classes.iter().any(|c| c.runnable > 0)
    }

    /// Charges a finished step's build `seconds` to `jobset` at `at_ms` ([`JobsetShares`]).
    pub fn charge(&mut self, jobset: usize, at_ms: u64, seconds: f64) {
        self.shares.charge(jobset, at_ms, seconds);
    }

    /// Starts a dispatch pass at `now_ms`: brings the shares up to date, as the C++ runner does
    /// at the start of `State::doDispatch` (dispatcher.cc, a9581bcd). Returns `false`, doing
    /// nothing, when no step is runnable; otherwise call [`Dispatcher::next`] until it returns
    /// `None`.
    pub fn start_pass(&mut self, now_ms: u64) -> bool {
        if !self.has_runnable() {
            return false;
        }
        self.shares.update(now_ms);
        true
    }

    /// Runnable steps of `class`.
    pub fn runnable(&self, class: usize) -> usize {
        self.classes[class].runnable
    }

    /// The classes machine `m` can build.
    pub fn classes_of(&self, m: usize) -> &[usize] {
        &self.machines[m].classes
    }

    pub fn current_jobs(&self, m: usize) -> u32 {
        self.machines[m].current_jobs
    }

    pub fn disabled_until_ms(&self, m: usize) -> u64 {
        self.machines[m].health.disabled_until_ms()
    }

    /// Machine `m` got a step (the C++ runner's `MachineReservation`, dispatcher.cc).
    pub fn take_slot(&mut self, m: usize, now_ms: u64) {
        self.machines[m].current_jobs += 1;
        self.refresh(m, now_ms);
    }

    /// Machine `m` gave a slot back.
    pub fn release_slot(&mut self, m: usize, now_ms: u64) {
        let slots = &mut self.machines[m];
        slots.current_jobs = slots.current_jobs.saturating_sub(1);
        self.refresh(m, now_ms);
    }

    /// Machine `m` failed at `now_ms` ([`MachineHealth::failed`]): returns when it is enabled
    /// again (call [`Dispatcher::refresh`] then), or `None` when the failure was not counted.
    pub fn machine_failed(&mut self, m: usize, now_ms: u64, jitter_ms: u64) -> Option<u64> {
        let until = self.machines[m].health.failed(now_ms, jitter_ms)?;
        self.refresh(m, now_ms);
        Some(until)
    }

    /// Machine `m` finished a step without an abort ([`MachineHealth::worked`]).
    pub fn machine_worked(&mut self, m: usize) {
        self.machines[m].health.worked();
    }

    /// Re-files machine `m` after its job count, pressure or health changed: it is free while
    /// its free function gives it capacity ([`FreeFn::has_capacity`]) and it is enabled
    /// (dispatcher.cc, `State::doDispatch`).
    pub fn refresh(&mut self, m: usize, now_ms: u64) {
        let slots = &mut self.machines[m];
        if let Some(old) = slots.key.take() {
            for &c in &slots.classes {
                self.classes[c].free.remove(&old);
            }
        }
        let capacity =
            self.free_fn
                .has_capacity(slots.current_jobs, slots.max_jobs, slots.under_thresholds);
        if capacity && slots.health.enabled_at(now_ms) {
            let key = self
                .sort
                .key(m, slots.current_jobs, slots.max_jobs, slots.speed);
            slots.key = Some(key);
            for &c in &slots.classes {
                self.classes[c].free.insert(key);
            }
        }
    }

    /// The next dispatch of a pass ([`Dispatcher::start_pass`]): the first machine in machine
    /// order with a free slot and a runnable step it can build takes the best such step,
    /// jobsets' queues compared by the shares used at the pass's start ([`across_jobsets`]).
    /// `live` tells whether a queued entry is still runnable. Returns the machine and the step,
    /// taken off its queue (the caller takes the slot); `None` when no free machine can build
    /// any runnable step.
    ///
    /// Follows NixOS/hydra src/hydra-queue-runner/dispatcher.cc, `State::doDispatch` (a9581bcd):
    /// machine-major, re-sorting machines after each step. The C++ runner sorts every step once
    /// per pass, so a share that changes during a pass is seen at the next; here it is seen at
    /// once.
    pub fn next(&mut self, mut live: impl FnMut(&T) -> bool) -> Option<(usize, T)> {
        let mut best: Option<MachineKey> = None;
        for c in &self.classes {
            if c.runnable == 0 {
                continue;
            }
            if let Some(&k) = c.free.first()
                && best.is_none_or(|b| k < b)
            {
                best = Some(k);
            }
        }
        let m = best?.index();
        let share_used = self.shares.used();
        let mut pick: Option<(K, f64, usize, usize)> = None;
        for &c in &self.machines[m].classes {
            let class = &mut self.classes[c];
            if class.runnable == 0 {
                continue;
            }
            for (j, heap) in class.heaps.iter_mut().enumerate() {
                while let Some((_, step)) = heap.peek() {
                    if live(step) {
                        break;
                    }
                    heap.pop();
                }
                let Some(&(key, _)) = heap.peek() else {
                    continue;
                };
                let share = share_used[j];
                let better = pick.is_none_or(|(pk, ps, _, _)| {
                    across_jobsets(&key, share, &pk, ps) == std::cmp::Ordering::Greater
                });
                if better {
                    pick = Some((key, share, c, j));
                }
            }
        }
        let (_, _, c, j) = pick?;
        let (_, step) = self.classes[c].heaps[j].pop()?;
        self.classes[c].runnable -= 1;
        Some((m, step))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::step::{CppStepKey, StepFacts};

    fn key(local_priority: i32, step: u32) -> CppStepKey {
        CppStepKey::from(&StepFacts {
            global_priority: 0,
            local_priority,
            required_features: 0,
            rdeps: 0,
            critical_path: 0,
            lowest_build: i64::from(step),
            step,
        })
    }

    /// Two machines (0: speed 1, 1 slot; 1: speed 2, 2 slots), two classes (0: both machines;
    /// 1: machine 0 only) and two jobsets.
    fn farm() -> Dispatcher<CppStepKey, u32> {
        let mut d = Dispatcher::new(MachineSort::Cpp, [1, 1], [(1, 1.0), (2, 2.0)]);
        assert_eq!(d.add_class(|_| true), 0);
        assert_eq!(d.add_class(|m| m == 0), 1);
        d
    }

    /// A pass at `now`: (machine, step) in order.
    fn drain(d: &mut Dispatcher<CppStepKey, u32>, now: u64) -> Vec<(usize, u32)> {
        let mut out = Vec::new();
        if !d.start_pass(now) {
            return out;
        }
        while let Some((m, s)) = d.next(|_| true) {
            d.take_slot(m, 0);
            out.push((m, s));
        }
        out
    }

    #[test]
    fn the_fastest_idle_machine_takes_the_best_step_it_can_build() {
        let mut d = farm();
        d.push(0, 0, key(1, 10), 10);
        d.push(0, 0, key(5, 11), 11);
        d.push(1, 0, key(9, 12), 12);
        d.push(0, 1, key(3, 13), 13);
        // Machine 1 (load 0, faster) first: it cannot build class 1, so it takes 11 (priority
        // 5); then, at load round(1 / 2) = 1, machine 0 (load 0) takes 12 (priority 9); machine
        // 1 takes 13; it is full and machine 0 too, so 10 waits.
        assert_eq!(drain(&mut d, 0), [(1, 11), (0, 12), (1, 13)]);
        assert!(d.has_runnable() && d.classes.iter().all(|c| c.free.is_empty()));
        d.release_slot(0, 5);
        assert_eq!(drain(&mut d, 5), [(0, 10)]);
        assert!(!d.has_runnable() && drain(&mut d, 6).is_empty());
    }

    #[test]
    fn a_jobset_that_used_less_of_its_share_goes_first() {
        let mut d = farm();
        d.push(0, 0, key(5, 10), 10);
        d.push(0, 1, key(1, 11), 11);
        d.charge(0, 0, 2.0);
        d.charge(1, 0, 1.0);
        // Jobset 0 has used more: its better-ranked step waits.
        assert!(d.start_pass(1));
        assert_eq!(d.next(|_| true), Some((1, 11)));
    }

    #[test]
    fn a_machine_over_its_pressure_threshold_gets_nothing_under_a_dynamic_free_function() {
        let mut d = farm();
        d.push(0, 0, key(1, 10), 10);
        // Static: pressure does not matter.
        assert!(d.report_pressure(1, false, 0));
        assert!(!d.report_pressure(1, false, 0));
        assert!(d.start_pass(0));
        assert_eq!(d.next(|_| true), Some((1, 10)));
        d.set_free_fn(FreeFn::DynamicWithMaxJobLimit, 0);
        d.push(0, 0, key(1, 11), 11);
        assert!(d.start_pass(0));
        assert_eq!(
            d.next(|_| true),
            Some((0, 11)),
            "the machine under pressure is skipped"
        );
        d.take_slot(0, 0);
        d.push(0, 0, key(1, 12), 12);
        assert!(d.start_pass(0));
        assert_eq!(d.next(|_| true), None);
        d.report_pressure(1, true, 0);
        assert!(d.start_pass(0));
        assert_eq!(d.next(|_| true), Some((1, 12)));
    }

    #[test]
    fn stale_entries_are_skipped_and_disabled_machines_get_nothing() {
        let mut d = farm();
        d.push(1, 0, key(5, 10), 10);
        d.push(1, 0, key(1, 11), 11);
        d.withdraw(1);
        assert_eq!(d.machine_failed(0, 1_000, 0), Some(61_000));
        assert!(d.start_pass(1_000));
        assert_eq!(d.next(|&s| s != 10), None);
        d.refresh(0, 61_000);
        assert!(d.start_pass(61_000));
        assert_eq!(d.next(|&s| s != 10), Some((0, 11)));
        assert!(!d.has_runnable());
    }
}
