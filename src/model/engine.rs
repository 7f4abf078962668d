//! The simulation itself: events in one binary heap ordered by (time, sequence); runnable tasks
//! and machine slots are the [`Dispatcher`]'s, which applies the queue runner's rules
//! ([`crate::dispatch`]). Each task on a machine passes through: the per-machine send lock (when
//! the configuration has one), sending inputs, building, then either a local worker slot on the
//! queue-runner host (holding the builder slot until copying starts, as the C++ runner does) for
//! receiving, compressing and uploading, or compression and upload on the builder itself. Time
//! is integer milliseconds from the workload's origin; nothing reads a clock, and the seed fixes
//! every random draw.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;

use super::workload::UPLOAD_BYTES_PER_MS;
use super::{CompressOn, Config, Workload};
use crate::dispatch::{
    Agenda, AnyStepKey, DispatchTimer, Dispatcher, FifoSemaphore, FreeFn, Ideal, StepFacts,
    StepSort,
};
use crate::error::{Error, Result};

/// What a run produced: per task its times and machine, and per stage how busy it was.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Run {
    pub dispatch_ms: Vec<u64>,
    pub build_start_ms: Vec<u64>,
    pub build_stop_ms: Vec<u64>,
    /// The builder slot given back.
    pub slot_free_ms: Vec<u64>,
    /// Outputs copied, compressed and uploaded (or the failure recorded).
    pub end_ms: Vec<u64>,
    pub machine: Vec<u16>,
    pub stages: Stages,
    /// The last task's end.
    pub makespan_ms: u64,
}

impl Run {
    /// Builder-slot utilization per system type over `span_ms`: slot time held over slot time
    /// offered, machines counted under their first system. Systems without machines are left out.
    pub fn slot_utilization(&self, w: &Workload, span_ms: f64) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        for (si, sys) in w.systems.iter().enumerate() {
            let ms: Vec<usize> = (0..w.machines.len())
                .filter(|&m| w.machines[m].systems.first() == Some(&(si as u16)))
                .collect();
            if ms.is_empty() {
                continue;
            }
            let cap: f64 = ms
                .iter()
                .map(|&m| f64::from(w.machines[m].max_jobs) * span_ms)
                .sum();
            let used: f64 = ms.iter().map(|&m| self.stages.slot_ms[m]).sum();
            out.push((sys.clone(), used / cap));
        }
        out
    }
}

/// Milliseconds each stage was held, summed, for utilization.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stages {
    /// Per machine: builder slots held, from dispatch until released.
    pub slot_ms: Vec<f64>,
    /// Per machine: the send lock held.
    pub send_lock_ms: Vec<f64>,
    /// Per machine: slots held by finished builds waiting for a local worker slot.
    pub held_waiting_ms: Vec<f64>,
    /// Local worker slots held on the queue-runner host.
    pub local_slot_ms: f64,
    /// CPU spent compressing on the queue-runner host, and on builders.
    pub compress_qr_ms: f64,
    pub compress_builders_ms: f64,
    /// Time spent uploading (one stream each; from builders, with each upload's set-up).
    pub upload_ms: f64,
    /// Bytes uploaded.
    pub uploaded_bytes: f64,
    /// Builder-slot time left idle while a step the machine could build was ready: the
    /// ledger's dispatch loss, by the same rule ([`crate::dispatch::Ideal`]): a step is ready
    /// once its build is queued and its dependencies are done, and waits until dispatched;
    /// free slots are those of enabled machines. The dispatcher here starts a step the moment a
    /// slot and a loaded step meet, so what it counts is the queue monitor's part: steps of
    /// builds queued but not loaded yet.
    pub dispatch_loss_ms: f64,
    /// Steps on the runnable list (loaded, ready, not yet dispatched), integrated over each
    /// wall-clock hour, the first being the one the origin falls in (`Workload::origin_ms`):
    /// step-milliseconds, so `/ 3.6e6` is the hour's mean — what the runner's runnable gauge
    /// averages to over that hour.
    pub runnable_ms_by_hour: Vec<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    /// Build queued and dependencies done: ready, though not yet loaded (dispatch loss counts
    /// from here).
    Queued,
    /// Dependencies done and released: runnable.
    Ready,
    SendDone,
    BuildDone,
    /// Receive, compress and upload finished.
    Done,
    /// A disabled machine is enabled again.
    Enable,
    /// The Rust runner's free function holds a machine back for its pressure, or lets it go
    /// (the builder's report; it wakes nobody).
    Hold,
    Unhold,
    /// The Rust dispatcher's trigger timer.
    Timer,
}

const HOUR_MS: u64 = 3_600_000;

/// Runs the workload under `cfg`.
pub fn simulate(w: &Workload, cfg: &Config) -> Result<Run> {
    Sim::new(w, cfg)?.run()
}

struct Sim<'a> {
    w: &'a Workload,
    cfg: &'a Config,
    now: u64,
    /// The event, and the task it concerns (the machine for [`Ev::Enable`]).
    events: Agenda<(Ev, u32)>,
    pending: Vec<u32>,
    ready_at: Vec<u64>,
    release: Vec<u64>,
    work: Vec<f64>,
    dependents: (Vec<u32>, Vec<(u32, u32)>),
    /// Each task's machine class (a system and required features) in `queue`.
    class_of: Vec<u32>,
    /// Runnable tasks and machine slots: the dispatcher's state (docs/hydra.md §4).
    queue: Dispatcher<AnyStepKey, u32>,
    /// Ready steps not yet dispatched, per class, and the rule that matches them with free
    /// slots ([`Stages::dispatch_loss_ms`]).
    ready: Vec<f64>,
    ready_total: u64,
    /// Steps on the runnable list: pushed to the dispatcher and not yet dispatched.
    runnable_total: u64,
    ideal: Ideal,
    free: Vec<f64>,
    claimed: Vec<f64>,
    /// Per machine, tasks sending inputs one at a time (when `cfg.send_lock`).
    send_lock: Vec<FifoSemaphore<u32>>,
    local_slots: FifoSemaphore<u32>,
    critical: Vec<f64>,
    nfeat: Vec<u32>,
    run: Run,
    done: usize,
    /// The Rust dispatcher's trigger timer (off under the C++ runner).
    timer: DispatchTimer,
    /// Machines the free function holds back now.
    held: Vec<bool>,
}

impl<'a> Sim<'a> {
    fn new(w: &'a Workload, cfg: &'a Config) -> Result<Sim<'a>> {
        let n = w.tasks.len();
        let nm = w.machines.len();
        if cfg.load <= 0.0 || !cfg.load.is_finite() {
            return Err(Error::Model(format!(
                "load factor {} must be positive",
                cfg.load
            )));
        }
        // Machine classes, (system, required features), and which machines serve them.
        let mut classes: Vec<(u16, u64)> = Vec::new();
        let mut class_of = Vec::with_capacity(n);
        for t in &w.tasks {
            let class = (t.system, t.required);
            let c = match classes.iter().position(|&c| c == class) {
                Some(c) => c,
                None => {
                    classes.push(class);
                    classes.len() - 1
                }
            };
            class_of.push(c as u32);
        }
        let mut queue = Dispatcher::new(
            cfg.machine_sort,
            w.shares.iter().copied(),
            w.machines.iter().map(|m| (m.max_jobs, m.speed)),
        );
        for &(system, required) in &classes {
            if !w.machines.iter().any(|m| m.supports(system, required)) {
                let sys = &w.systems[system as usize];
                return Err(Error::Model(format!(
                    "no machine can build {sys} steps that ran with features [{}]: the \
                     scenario removed every machine for them",
                    features(w, required)
                )));
            }
            queue.add_class(|m| w.machines[m].supports(system, required));
        }
        let ideal = Ideal::new(
            classes
                .iter()
                .map(|&(system, required)| {
                    (0..nm)
                        .filter(|&m| w.machines[m].supports(system, required))
                        .collect()
                })
                .collect(),
            &w.machines
                .iter()
                .map(|m| f64::from(m.max_jobs))
                .collect::<Vec<_>>(),
        );
        let nclasses = classes.len();

        let dependents = w.dependents();
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let sigma = cfg.noise_sigma.max(0.0);
        let work: Vec<f64> = w
            .tasks
            .iter()
            .map(|t| {
                // A time limit does not vary between runs.
                if sigma > 0.0 && !t.time_limited {
                    let z: f64 = StandardNormal.sample(&mut rng);
                    // Mean one: exp(σz − σ²/2).
                    t.work_ms * (sigma * z - sigma * sigma / 2.0).exp()
                } else {
                    t.work_ms
                }
            })
            .collect();
        // The queue monitor loads builds one at a time in queue order: a task is released when
        // its build has been loaded.
        let mut free_at = 0u64;
        let loaded: Vec<u64> = w
            .loads
            .iter()
            .map(|&(q, cost)| {
                free_at = free_at.max(super::calibrate::queued(q, cfg.load)) + cost;
                free_at
            })
            .collect();
        let release = w.tasks.iter().map(|t| loaded[t.load as usize]).collect();
        let critical = if cfg.ordering == StepSort::WithCriticalPath {
            critical_paths(w, &dependents)
        } else {
            Vec::new()
        };
        let nfeat = w.tasks.iter().map(|t| t.required.count_ones()).collect();
        let mut sim = Sim {
            w,
            cfg,
            now: 0,
            events: Agenda::with_capacity(n),
            pending: (0..n).map(|t| w.deps_of(t).len() as u32).collect(),
            ready_at: vec![0; n],
            release,
            work,
            dependents,
            class_of,
            queue,
            ready: vec![0.0; nclasses],
            ready_total: 0,
            runnable_total: 0,
            ideal,
            free: vec![0.0; nm],
            claimed: vec![0.0; nm],
            send_lock: vec![FifoSemaphore::new(1); nm],
            local_slots: FifoSemaphore::new(cfg.local_workers.max(1)),
            critical,
            nfeat,
            run: Run {
                dispatch_ms: vec![0; n],
                build_start_ms: vec![0; n],
                build_stop_ms: vec![0; n],
                slot_free_ms: vec![0; n],
                end_ms: vec![0; n],
                machine: vec![u16::MAX; n],
                stages: Stages {
                    slot_ms: vec![0.0; nm],
                    send_lock_ms: vec![0.0; nm],
                    held_waiting_ms: vec![0.0; nm],
                    ..Stages::default()
                },
                makespan_ms: 0,
            },
            done: 0,
            timer: DispatchTimer::new(cfg.dispatch_timer_ms),
            held: vec![false; nm],
        };
        if cfg.free_fn != FreeFn::Static {
            sim.queue.set_free_fn(cfg.free_fn, 0);
            // The holds the history's series recorded; without one, none (the workload says
            // so): the replay cannot know the builders' pressure.
            for (m, spans) in w.held_back.iter().enumerate() {
                for &(from, to) in spans {
                    sim.schedule(from, Ev::Hold, m as u32);
                    sim.schedule(to, Ev::Unhold, m as u32);
                }
            }
        }
        for t in 0..n {
            if sim.pending[t] == 0 {
                let at = sim.release[t];
                sim.schedule(sim.queued_at(t), Ev::Queued, t as u32);
                sim.schedule(at, Ev::Ready, t as u32);
            }
        }
        Ok(sim)
    }

    fn schedule(&mut self, at: u64, ev: Ev, idx: u32) {
        self.events.schedule(at.max(self.now), (ev, idx));
    }

    fn run(mut self) -> Result<Run> {
        // Slots idle with ready work for them, from the last instant to the next.
        let mut loss_slots = 0.0;
        // Whether an event of this instant wakes the dispatcher.
        let mut woken = false;
        while let Some((t, (ev, idx))) = self.events.pop() {
            self.run.stages.dispatch_loss_ms += loss_slots * (t - self.now) as f64;
            loss_slots = 0.0;
            self.count_runnable(t);
            self.now = t;
            woken |= !matches!(ev, Ev::Hold | Ev::Unhold | Ev::Timer);
            match ev {
                Ev::Queued => {
                    self.ready[self.class_of[idx as usize] as usize] += 1.0;
                    self.ready_total += 1;
                }
                Ev::Ready => self.on_ready(idx),
                Ev::SendDone => self.on_send_done(idx),
                Ev::BuildDone => self.on_build_done(idx),
                Ev::Done => self.on_done(idx),
                Ev::Enable => self.queue.refresh(idx as usize, self.now),
                Ev::Hold | Ev::Unhold => {
                    self.held[idx as usize] = ev == Ev::Hold;
                    self.queue
                        .report_pressure(idx as usize, ev == Ev::Unhold, self.now);
                }
                Ev::Timer => {
                    let (wakes, again) = self.timer.fired(t);
                    woken |= wakes;
                    if let Some(at) = again {
                        self.schedule_timer(at);
                    }
                }
            }
            // Dispatch once all events of this instant are in; under the Rust runner only when
            // something woke the dispatcher (a builder's report does not).
            if self.events.next_at().is_none_or(|next| next > t) {
                if woken || self.cfg.dispatch_timer_ms.is_none() {
                    self.dispatch();
                }
                woken = false;
                loss_slots = self.idle_with_work();
            }
        }
        if self.done != self.w.tasks.len() {
            return Err(Error::Model(format!(
                "the simulation stopped with {} of {} steps never run (a dependency cycle or \
                 a step no machine can take)",
                self.w.tasks.len() - self.done,
                self.w.tasks.len()
            )));
        }
        self.run.makespan_ms = self.run.end_ms.iter().copied().max().unwrap_or(0);
        Ok(self.run)
    }

    fn skey(&self, t: usize) -> AnyStepKey {
        let task = &self.w.tasks[t];
        self.cfg.ordering.key(&StepFacts {
            global_priority: task.global_priority,
            local_priority: task.priority,
            required_features: self.nfeat[t],
            rdeps: self.live_rdeps(t),
            critical_path: self.critical.get(t).map_or(0, |&ms| ms.round() as u64),
            lowest_build: i64::from(task.build),
            step: t as u32,
        })
    }

    /// Task `t`'s dependents the runner knows of now: those whose build the queue monitor has
    /// loaded (the C++ runner counts a step's live reverse dependencies when it makes the step
    /// runnable; dependents of builds not yet queued are not in its memory).
    fn live_rdeps(&self, t: usize) -> u32 {
        let (a, b) = (
            self.dependents.0[t] as usize,
            self.dependents.0[t + 1] as usize,
        );
        self.dependents.1[a..b]
            .iter()
            .filter(|&&(d, _)| self.release[d as usize] <= self.now)
            .count() as u32
    }

    /// Adds the runnable steps from now to `until` to the hours they fall in.
    fn count_runnable(&mut self, until: u64) {
        if self.runnable_total == 0 {
            return;
        }
        let n = self.runnable_total as f64;
        let by_hour = &mut self.run.stages.runnable_ms_by_hour;
        // Time from the start of the origin's wall-clock hour.
        let offset = self.w.origin_ms.rem_euclid(HOUR_MS as i64) as u64;
        let (mut from, until) = (self.now + offset, until + offset);
        while from < until {
            let h = (from / HOUR_MS) as usize;
            let to = until.min((h as u64 + 1) * HOUR_MS);
            if by_hour.len() <= h {
                by_hour.resize(h + 1, 0.0);
            }
            by_hour[h] += n * (to - from) as f64;
            from = to;
        }
    }

    fn on_ready(&mut self, t: u32) {
        self.runnable_total += 1;
        let key = self.skey(t as usize);
        let c = self.class_of[t as usize] as usize;
        let j = self.w.tasks[t as usize].jobset as usize;
        self.queue.push(c, j, key, t);
    }

    /// Repeatedly: the first machine in sort order with a free slot that supports a runnable
    /// task takes the best task it supports (docs/hydra.md §4).
    fn dispatch(&mut self) {
        if let Some(at) = self.timer.passed(self.now) {
            self.schedule_timer(at);
        }
        if !self.queue.start_pass(self.now) {
            return;
        }
        while let Some((m, t)) = self.queue.next(|_| true) {
            self.assign(t, m);
        }
    }

    /// Queues the timer's event, while steps are left to run (else the simulation would never
    /// end).
    fn schedule_timer(&mut self, at: u64) {
        if self.done < self.w.tasks.len() {
            self.schedule(at, Ev::Timer, 0);
        }
    }

    fn assign(&mut self, t: u32, m: usize) {
        let ti = t as usize;
        self.ready[self.class_of[ti] as usize] -= 1.0;
        self.ready_total -= 1;
        self.runnable_total -= 1;
        self.run.dispatch_ms[ti] = self.now;
        self.run.machine[ti] = m as u16;
        self.queue.take_slot(m, self.now);
        if self.cfg.send_lock {
            if self.send_lock[m].acquire(t) {
                self.start_send(t);
            }
        } else {
            let at = self.now + self.w.tasks[ti].send_ms.round() as u64;
            self.schedule(at, Ev::SendDone, t);
        }
    }

    fn start_send(&mut self, t: u32) {
        let m = self.run.machine[t as usize] as usize;
        let send = self.w.tasks[t as usize].send_ms.round() as u64;
        self.run.stages.send_lock_ms[m] += send as f64;
        let at = self.now + send;
        self.schedule(at, Ev::SendDone, t);
    }

    fn on_send_done(&mut self, t: u32) {
        let ti = t as usize;
        let m = self.run.machine[ti] as usize;
        if self.cfg.send_lock
            && let Some(next) = self.send_lock[m].release(|_| true)
        {
            self.start_send(next);
        }
        self.run.build_start_ms[ti] = self.now;
        let speed = if self.w.tasks[ti].time_limited {
            1.0
        } else {
            self.w.machines[m].speed
        };
        let build = (self.work[ti] / speed).round().max(0.0) as u64;
        let at = self.now + build;
        self.schedule(at, Ev::BuildDone, t);
    }

    /// Compression and upload of task `t`'s outputs with the configured codec: (compress ms of
    /// one core at speed factor 1, upload ms, bytes uploaded).
    fn compress_upload(&self, t: usize) -> (f64, f64, f64) {
        let task = &self.w.tasks[t];
        let codec = &self.cfg.codec;
        let bytes = task.out_bytes * codec.ratio;
        (
            codec.compress_ms(task.out_bytes),
            bytes / UPLOAD_BYTES_PER_MS,
            bytes,
        )
    }

    fn on_build_done(&mut self, t: u32) {
        let ti = t as usize;
        self.run.build_stop_ms[ti] = self.now;
        let m = self.run.machine[ti] as usize;
        let task = &self.w.tasks[ti];
        if task.aborted && crate::dispatch::backoff::disables_machines(self.cfg.runner) {
            self.machine_failed(m);
        } else {
            self.queue.machine_worked(m);
        }
        if !task.success {
            self.release_slot(m, ti);
            self.complete(t);
            return;
        }
        match self.cfg.compress_on {
            CompressOn::QueueRunner => {
                if self.local_slots.acquire(t) {
                    self.start_receive(t);
                }
            }
            CompressOn::Builders => {
                let (cpu, up, bytes) = self.compress_upload(ti);
                let cpu = cpu / self.w.machines[m].speed;
                self.run.stages.compress_builders_ms += cpu;
                self.run.stages.upload_ms += up;
                self.run.stages.uploaded_bytes += bytes;
                // The builder copies nothing back: what a C++ history paid for receiving is
                // replaced by the presigned upload's set-up, compressing and uploading (a Rust
                // history's receive part is that set-up already).
                let task = &self.w.tasks[ti];
                let setup = if task.observed.rust {
                    task.receive_ms
                } else {
                    super::workload::PRESIGNED_SETUP_MS
                };
                self.run.stages.upload_ms += setup;
                let at = self.now + (setup + cpu + up).round() as u64;
                self.schedule(at, Ev::Done, t);
            }
        }
    }

    /// Free slots of enabled machines that ready steps could use, each step counted for one
    /// slot only ([`Ideal::claim`], the rule the ledger and the sample's truth use).
    fn idle_with_work(&mut self) -> f64 {
        if self.ready_total == 0 {
            return 0.0;
        }
        let now = self.now;
        for (m, f) in self.free.iter_mut().enumerate() {
            // Disabled, or held back by the free function: not free to the dispatcher, and
            // not dispatch loss (the ledger counts a hold as throttled).
            *f = if self.queue.disabled_until_ms(m) > now || self.held[m] {
                0.0
            } else {
                f64::from(
                    self.w.machines[m]
                        .max_jobs
                        .saturating_sub(self.queue.current_jobs(m)),
                )
            };
        }
        self.claimed.fill(0.0);
        self.ideal
            .claim(&self.ready, &mut self.free, &mut self.claimed)
    }

    /// When task `t`'s build was queued, under the configured load.
    fn queued_at(&self, t: usize) -> u64 {
        super::calibrate::queued(self.w.tasks[t].release_ms, self.cfg.load)
    }

    /// An abort disables the machine for a while (docs/hydra.md §4). The replay draws no
    /// jitter for it: the 0–29 s the C++ runner adds would only blur the history's timings.
    fn machine_failed(&mut self, m: usize) {
        let Some(until) = self.queue.machine_failed(m, self.now, 0) else {
            return;
        };
        self.schedule(until, Ev::Enable, m as u32);
    }

    fn release_slot(&mut self, m: usize, t: usize) {
        self.run.stages.slot_ms[m] += (self.now - self.run.dispatch_ms[t]) as f64;
        self.run.slot_free_ms[t] = self.now;
        self.queue.release_slot(m, self.now);
    }

    fn start_receive(&mut self, t: u32) {
        let ti = t as usize;
        let m = self.run.machine[ti] as usize;
        self.run.stages.held_waiting_ms[m] += (self.now - self.run.build_stop_ms[ti]) as f64;
        // The builder slot is released once output copying starts (docs/hydra.md §3).
        self.release_slot(m, ti);
        let (cpu, up, bytes) = self.compress_upload(ti);
        self.run.stages.compress_qr_ms += cpu;
        self.run.stages.upload_ms += up;
        self.run.stages.uploaded_bytes += bytes;
        let total = self.w.tasks[ti].receive_ms + cpu + up;
        self.run.stages.local_slot_ms += total;
        let at = self.now + total.round() as u64;
        self.schedule(at, Ev::Done, t);
    }

    fn on_done(&mut self, t: u32) {
        let ti = t as usize;
        match self.cfg.compress_on {
            CompressOn::QueueRunner => {
                if let Some(next) = self.local_slots.release(|_| true) {
                    self.start_receive(next);
                }
            }
            CompressOn::Builders => {
                let m = self.run.machine[ti] as usize;
                self.release_slot(m, ti);
            }
        }
        self.complete(t);
    }

    fn complete(&mut self, t: u32) {
        let ti = t as usize;
        self.run.end_ms[ti] = self.now;
        self.done += 1;
        let j = self.w.tasks[ti].jobset as usize;
        let secs = (self.run.build_stop_ms[ti] - self.run.build_start_ms[ti]) as f64 / 1000.0;
        if crate::dispatch::share::charges_finished_steps(self.cfg.runner) {
            self.queue.charge(j, self.now, secs);
        }
        let (start, end) = (
            self.dependents.0[ti] as usize,
            self.dependents.0[ti + 1] as usize,
        );
        for k in start..end {
            let (d, delay) = self.dependents.1[k];
            let di = d as usize;
            self.ready_at[di] = self.ready_at[di].max(self.now + u64::from(delay));
            self.pending[di] -= 1;
            if self.pending[di] == 0 {
                let at = self.ready_at[di].max(self.release[di]);
                let queued = self.ready_at[di].max(self.queued_at(di));
                self.schedule(queued, Ev::Queued, d);
                self.schedule(at, Ev::Ready, d);
            }
        }
    }
}

/// Longest chain of build work from each task to the end of the graph, including its own.
/// Each task's critical-path length: the steps on the longest chain of tasks that depend on
/// it, itself included, as the Rust runner counts it (`state/step.rs`
/// `compute_critical_paths`, 14332fbf: steps, not time).
fn critical_paths(w: &Workload, dependents: &(Vec<u32>, Vec<(u32, u32)>)) -> Vec<f64> {
    let n = w.tasks.len();
    // Kahn's order over dependencies, then lengths in reverse.
    let mut indeg: Vec<u32> = (0..n).map(|t| w.deps_of(t).len() as u32).collect();
    let mut order: Vec<u32> = (0..n as u32).filter(|&t| indeg[t as usize] == 0).collect();
    let mut i = 0;
    while i < order.len() {
        let t = order[i] as usize;
        for k in dependents.0[t] as usize..dependents.0[t + 1] as usize {
            let d = dependents.1[k].0 as usize;
            indeg[d] -= 1;
            if indeg[d] == 0 {
                order.push(d as u32);
            }
        }
        i += 1;
    }
    let mut len = vec![1.0; n];
    for &t in order.iter().rev() {
        let t = t as usize;
        let mut best = 0.0f64;
        for k in dependents.0[t] as usize..dependents.0[t + 1] as usize {
            best = best.max(len[dependents.1[k].0 as usize]);
        }
        len[t] = 1.0 + best;
    }
    len
}

fn features(w: &Workload, mask: u64) -> String {
    (0..64)
        .filter(|i| mask & (1 << i) != 0)
        .filter_map(|i| w.features.get(i).cloned())
        .collect::<Vec<_>>()
        .join(",")
}
