//! The simulation itself: events in one binary heap ordered by (time, sequence), runnable tasks
//! in per-(machine class, jobset) heaps, machines with a free slot in one ordered set. Each task
//! on a machine passes through: the per-machine send lock (when the configuration has one),
//! sending inputs, building, then either a local worker slot on the queue-runner host (holding
//! the builder slot until copying starts, as the C++ runner does) for receiving, compressing and
//! uploading, or compression and upload on the builder itself. Time is integer milliseconds from
//! the workload's origin; nothing reads a clock, and the seed fixes every random draw.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, VecDeque};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;

use super::workload::UPLOAD_BYTES_PER_MS;
use super::{CompressOn, Config, MachineSort, Ordering, Workload};
use crate::error::{Error, Result};

/// Jobset shares look back this far: a jobset's build seconds of the last 24 h (docs/hydra.md §4).
const SHARE_WINDOW_MS: u64 = 86_400_000;

/// A failing machine is disabled for 60 · 3^(n−1) s after its n-th failure in a row, n ≤ 4
/// (build-remote.cc; docs/hydra.md §4); a failure within 30 s of the last is not counted again.
const DISABLE_BASE_MS: u64 = 60_000;
const DISABLE_MAX_STEPS: u32 = 4;
const FAILURE_DEBOUNCE_MS: u64 = 30_000;

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
    /// Time spent uploading (one stream each).
    pub upload_ms: f64,
    /// Bytes uploaded.
    pub uploaded_bytes: f64,
    /// Builder-slot time left idle while a step the machine could build was runnable: the
    /// ledger's dispatch loss. The dispatcher here starts a step the moment a slot and a step
    /// meet, so this is the free slots of machines disabled after a failure.
    pub dispatch_loss_ms: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    /// Dependencies done and released: runnable.
    Ready,
    SendDone,
    BuildDone,
    /// Receive, compress and upload finished.
    Done,
    /// A disabled machine is enabled again.
    Enable,
}

/// Ordering key of a runnable task apart from the jobset share (compared first after the
/// global priority): larger is better.
type SKey = (i32, i64, i64, i64, Reverse<i32>, Reverse<u32>);

/// Machine sort key: smaller is better; the last field is the machine index.
type MKey = (i64, i64, i64, u16);

/// One (system, required features) pair and the tasks of it that are runnable.
struct Class {
    system: u16,
    required: u64,
    /// One heap per jobset, since a jobset's share used changes over time.
    heaps: Vec<BinaryHeap<(SKey, u32)>>,
    runnable: usize,
}

/// Runs the workload under `cfg`.
pub fn simulate(w: &Workload, cfg: &Config) -> Result<Run> {
    Sim::new(w, cfg)?.run()
}

struct Sim<'a> {
    w: &'a Workload,
    cfg: &'a Config,
    now: u64,
    seq: u64,
    events: BinaryHeap<Reverse<(u64, u64, Ev, u32)>>,
    pending: Vec<u32>,
    ready_at: Vec<u64>,
    release: Vec<u64>,
    work: Vec<f64>,
    dependents: (Vec<u32>, Vec<(u32, u32)>),
    class_of: Vec<u32>,
    classes: Vec<Class>,
    machine_classes: Vec<Vec<u32>>,
    cur: Vec<u32>,
    disabled_until: Vec<u64>,
    /// Machines that may be disabled now (pruned as they come back): few at any time, so the
    /// dispatch-loss count need not look at every machine at every instant.
    disabled: Vec<usize>,
    failures: Vec<(u32, u64)>,
    key: Vec<Option<MKey>>,
    free: BTreeSet<MKey>,
    send_busy: Vec<bool>,
    send_queue: Vec<VecDeque<u32>>,
    local_free: u32,
    local_queue: VecDeque<u32>,
    share_log: Vec<VecDeque<(u64, f64)>>,
    share_sum: Vec<f64>,
    rdeps: Vec<u32>,
    critical: Vec<f64>,
    nfeat: Vec<u32>,
    run: Run,
    done: usize,
}

impl<'a> Sim<'a> {
    fn new(w: &'a Workload, cfg: &'a Config) -> Result<Sim<'a>> {
        let n = w.tasks.len();
        let nm = w.machines.len();
        if cfg.load <= 0.0 || !cfg.load.is_finite() {
            return Err(Error::Invalid(format!(
                "load factor {} must be positive",
                cfg.load
            )));
        }
        // Classes and which machines serve them.
        let mut classes: Vec<Class> = Vec::new();
        let mut class_of = Vec::with_capacity(n);
        for t in &w.tasks {
            let c = match classes
                .iter()
                .position(|c| c.system == t.system && c.required == t.required)
            {
                Some(c) => c,
                None => {
                    classes.push(Class {
                        system: t.system,
                        required: t.required,
                        heaps: (0..w.shares.len()).map(|_| BinaryHeap::new()).collect(),
                        runnable: 0,
                    });
                    classes.len() - 1
                }
            };
            class_of.push(c as u32);
        }
        let machine_classes: Vec<Vec<u32>> = w
            .machines
            .iter()
            .map(|m| {
                (0..classes.len() as u32)
                    .filter(|&c| {
                        let c = &classes[c as usize];
                        m.supports(c.system, c.required)
                    })
                    .collect()
            })
            .collect();
        for (c, class) in classes.iter().enumerate() {
            if !machine_classes.iter().any(|mc| mc.contains(&(c as u32))) {
                let sys = &w.systems[class.system as usize];
                return Err(Error::Invalid(format!(
                    "no machine can build {sys} steps that ran with features [{}]: the \
                     scenario removed every machine for them",
                    features(w, class.required)
                )));
            }
        }

        let dependents = w.dependents();
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let sigma = cfg.noise_sigma.max(0.0);
        let work: Vec<f64> = w
            .tasks
            .iter()
            .map(|t| {
                if sigma > 0.0 {
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
        let rdeps: Vec<u32> = (0..n)
            .map(|t| dependents.0[t + 1] - dependents.0[t])
            .collect();
        let critical = if cfg.ordering == Ordering::WithCriticalPath {
            critical_paths(w, &dependents, &work)
        } else {
            Vec::new()
        };
        let nfeat = w.tasks.iter().map(|t| t.required.count_ones()).collect();
        let mut sim = Sim {
            w,
            cfg,
            now: 0,
            seq: 0,
            events: BinaryHeap::with_capacity(n),
            pending: (0..n).map(|t| w.deps_of(t).len() as u32).collect(),
            ready_at: vec![0; n],
            release,
            work,
            dependents,
            class_of,
            classes,
            machine_classes,
            cur: vec![0; nm],
            disabled_until: vec![0; nm],
            disabled: Vec::new(),
            failures: vec![(0, 0); nm],
            key: vec![None; nm],
            free: BTreeSet::new(),
            send_busy: vec![false; nm],
            send_queue: vec![VecDeque::new(); nm],
            local_free: cfg.local_workers.max(1),
            local_queue: VecDeque::new(),
            share_log: vec![VecDeque::new(); w.shares.len()],
            share_sum: vec![0.0; w.shares.len()],
            rdeps,
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
        };
        for m in 0..nm {
            sim.refresh(m);
        }
        for t in 0..n {
            if sim.pending[t] == 0 {
                let at = sim.release[t];
                sim.schedule(at, Ev::Ready, t as u32);
            }
        }
        Ok(sim)
    }

    fn schedule(&mut self, at: u64, ev: Ev, idx: u32) {
        self.seq += 1;
        self.events
            .push(Reverse((at.max(self.now), self.seq, ev, idx)));
    }

    fn run(mut self) -> Result<Run> {
        // Slots idle with runnable work for them, from the last instant to the next.
        let mut loss_slots = 0u32;
        while let Some(Reverse((t, _, ev, idx))) = self.events.pop() {
            self.run.stages.dispatch_loss_ms += f64::from(loss_slots) * (t - self.now) as f64;
            loss_slots = 0;
            self.now = t;
            match ev {
                Ev::Ready => self.on_ready(idx),
                Ev::SendDone => self.on_send_done(idx),
                Ev::BuildDone => self.on_build_done(idx),
                Ev::Done => self.on_done(idx),
                Ev::Enable => self.refresh(idx as usize),
            }
            // Dispatch once all events of this instant are in.
            if self.events.peek().is_none_or(|Reverse(e)| e.0 > t) {
                self.dispatch();
                loss_slots = self.idle_with_work();
            }
        }
        if self.done != self.w.tasks.len() {
            return Err(Error::Invalid(format!(
                "the simulation stopped with {} of {} steps never run (a dependency cycle or \
                 a step no machine can take)",
                self.w.tasks.len() - self.done,
                self.w.tasks.len()
            )));
        }
        self.run.makespan_ms = self.run.end_ms.iter().copied().max().unwrap_or(0);
        Ok(self.run)
    }

    fn skey(&self, t: usize) -> SKey {
        let task = &self.w.tasks[t];
        let id = Reverse(task.build);
        let tie = Reverse(t as u32);
        let (p, rd, nf) = (
            i64::from(task.priority),
            i64::from(self.rdeps[t]),
            i64::from(self.nfeat[t]),
        );
        match self.cfg.ordering {
            Ordering::Cpp => (task.global_priority, p, nf, rd, id, tie),
            Ordering::Legacy => (task.global_priority, p, 0, 0, id, tie),
            Ordering::WithRdeps => (task.global_priority, rd, p, 0, id, tie),
            Ordering::WithCriticalPath => (
                task.global_priority,
                self.critical[t].round() as i64,
                p,
                0,
                id,
                tie,
            ),
        }
    }

    fn on_ready(&mut self, t: u32) {
        let key = self.skey(t as usize);
        let c = self.class_of[t as usize] as usize;
        let j = self.w.tasks[t as usize].jobset as usize;
        self.classes[c].heaps[j].push((key, t));
        self.classes[c].runnable += 1;
    }

    fn mkey(&self, m: usize) -> MKey {
        let mach = &self.w.machines[m];
        let cur = i64::from(self.cur[m]);
        let speed_milli = (mach.speed * 1000.0).round() as i64;
        match self.cfg.machine_sort {
            MachineSort::Cpp => (
                (cur as f64 / mach.speed).round() as i64,
                -speed_milli,
                -cur,
                m as u16,
            ),
            MachineSort::SpeedFactor => (-speed_milli, cur, 0, m as u16),
            MachineSort::CoresSpeed => {
                (-(i64::from(mach.max_jobs) * speed_milli), cur, 0, m as u16)
            }
        }
    }

    /// Re-files machine `m` in the free set after its job count changed.
    fn refresh(&mut self, m: usize) {
        if let Some(old) = self.key[m].take() {
            self.free.remove(&old);
        }
        if self.cur[m] < self.w.machines[m].max_jobs && self.now >= self.disabled_until[m] {
            let k = self.mkey(m);
            self.key[m] = Some(k);
            self.free.insert(k);
        }
    }

    fn shares(&mut self) -> Vec<f64> {
        let horizon = self.now.saturating_sub(SHARE_WINDOW_MS);
        for j in 0..self.share_log.len() {
            while let Some(&(t, s)) = self.share_log[j].front() {
                if t >= horizon {
                    break;
                }
                self.share_sum[j] -= s;
                self.share_log[j].pop_front();
            }
        }
        self.share_sum
            .iter()
            .zip(&self.w.shares)
            .map(|(s, &sh)| s.max(0.0) / f64::from(sh.max(1)))
            .collect()
    }

    /// Repeatedly: the first machine in sort order with a free slot that supports a runnable
    /// task takes the best task it supports (docs/hydra.md §4).
    fn dispatch(&mut self) {
        if self.classes.iter().all(|c| c.runnable == 0) || self.free.is_empty() {
            return;
        }
        let shares = self.shares();
        loop {
            let mut chosen = None;
            for &k in &self.free {
                let m = k.3 as usize;
                if self.machine_classes[m]
                    .iter()
                    .any(|&c| self.classes[c as usize].runnable > 0)
                {
                    chosen = Some(m);
                    break;
                }
            }
            let Some(m) = chosen else { break };
            let mut pick: Option<(SKey, f64, usize, usize)> = None;
            for &c in &self.machine_classes[m] {
                let class = &self.classes[c as usize];
                if class.runnable == 0 {
                    continue;
                }
                for (j, heap) in class.heaps.iter().enumerate() {
                    let Some(&(key, _)) = heap.peek() else {
                        continue;
                    };
                    let better = match pick {
                        None => true,
                        Some((pk, ps, _, _)) => {
                            better_step(key, shares[j], pk, ps) == std::cmp::Ordering::Greater
                        }
                    };
                    if better {
                        pick = Some((key, shares[j], c as usize, j));
                    }
                }
            }
            let Some((_, _, c, j)) = pick else { break };
            let Some((_, t)) = self.classes[c].heaps[j].pop() else {
                break;
            };
            self.classes[c].runnable -= 1;
            self.assign(t, m);
        }
    }

    fn assign(&mut self, t: u32, m: usize) {
        let ti = t as usize;
        self.run.dispatch_ms[ti] = self.now;
        self.run.machine[ti] = m as u16;
        self.cur[m] += 1;
        self.refresh(m);
        if self.cfg.send_lock {
            if self.send_busy[m] {
                self.send_queue[m].push_back(t);
            } else {
                self.start_send(t);
            }
        } else {
            let at = self.now + self.w.tasks[ti].send_ms.round() as u64;
            self.schedule(at, Ev::SendDone, t);
        }
    }

    fn start_send(&mut self, t: u32) {
        let m = self.run.machine[t as usize] as usize;
        self.send_busy[m] = true;
        let send = self.w.tasks[t as usize].send_ms.round() as u64;
        self.run.stages.send_lock_ms[m] += send as f64;
        let at = self.now + send;
        self.schedule(at, Ev::SendDone, t);
    }

    fn on_send_done(&mut self, t: u32) {
        let ti = t as usize;
        let m = self.run.machine[ti] as usize;
        if self.cfg.send_lock {
            self.send_busy[m] = false;
            if let Some(next) = self.send_queue[m].pop_front() {
                self.start_send(next);
            }
        }
        self.run.build_start_ms[ti] = self.now;
        let build = (self.work[ti] / self.w.machines[m].speed).round().max(0.0) as u64;
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
        if task.aborted {
            self.machine_failed(m);
        } else {
            self.failures[m].0 = 0;
        }
        if !task.success {
            self.release_slot(m, ti);
            self.complete(t);
            return;
        }
        match self.cfg.compress_on {
            CompressOn::QueueRunner => {
                if self.local_free > 0 {
                    self.start_receive(t);
                } else {
                    self.local_queue.push_back(t);
                }
            }
            CompressOn::Builders => {
                let (cpu, up, bytes) = self.compress_upload(ti);
                let cpu = cpu / self.w.machines[m].speed;
                self.run.stages.compress_builders_ms += cpu;
                self.run.stages.upload_ms += up;
                self.run.stages.uploaded_bytes += bytes;
                // The builder imports nothing back: what the history paid for receiving is
                // replaced by compressing and uploading from the builder.
                let at = self.now + (cpu + up).round() as u64;
                self.schedule(at, Ev::Done, t);
            }
        }
    }

    /// Free slots of disabled machines that runnable steps could use, each runnable step
    /// counted for one slot only (after [`Sim::dispatch`], an enabled machine's free slot has
    /// no runnable step it supports).
    fn idle_with_work(&mut self) -> u32 {
        let now = self.now;
        self.disabled.retain(|&m| self.disabled_until[m] > now);
        if self.disabled.is_empty() {
            return 0;
        }
        let mut left: Vec<usize> = Vec::new();
        let mut slots = 0;
        for &m in &self.disabled {
            let mut free = self.w.machines[m].max_jobs.saturating_sub(self.cur[m]) as usize;
            for &c in &self.machine_classes[m] {
                let c = c as usize;
                if left.len() <= c {
                    left.resize(c + 1, usize::MAX);
                }
                if left[c] == usize::MAX {
                    left[c] = self.classes[c].runnable;
                }
                let take = free.min(left[c]);
                left[c] -= take;
                free -= take;
                slots += take as u32;
            }
        }
        slots
    }

    fn machine_failed(&mut self, m: usize) {
        let (n, last) = self.failures[m];
        if n > 0 && last + FAILURE_DEBOUNCE_MS > self.now {
            return;
        }
        let n = (n + 1).min(DISABLE_MAX_STEPS);
        self.failures[m] = (n, self.now);
        self.disabled_until[m] = self.now + DISABLE_BASE_MS * 3u64.pow(n - 1);
        if !self.disabled.contains(&m) {
            self.disabled.push(m);
        }
        self.refresh(m);
        let at = self.disabled_until[m];
        self.schedule(at, Ev::Enable, m as u32);
    }

    fn release_slot(&mut self, m: usize, t: usize) {
        self.run.stages.slot_ms[m] += (self.now - self.run.dispatch_ms[t]) as f64;
        self.run.slot_free_ms[t] = self.now;
        self.cur[m] -= 1;
        self.refresh(m);
    }

    fn start_receive(&mut self, t: u32) {
        let ti = t as usize;
        self.local_free -= 1;
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
                self.local_free += 1;
                if let Some(next) = self.local_queue.pop_front() {
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
        self.share_log[j].push_back((self.now, secs));
        self.share_sum[j] += secs;
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
                self.schedule(at, Ev::Ready, d);
            }
        }
    }
}

/// `Greater` when step a goes before step b: higher global priority, then lower share used,
/// then the rest of the key.
fn better_step(a: SKey, a_share: f64, b: SKey, b_share: f64) -> std::cmp::Ordering {
    a.0.cmp(&b.0)
        .then_with(|| b_share.total_cmp(&a_share))
        .then_with(|| (a.1, a.2, a.3, a.4, a.5).cmp(&(b.1, b.2, b.3, b.4, b.5)))
}

/// Longest chain of build work from each task to the end of the graph, including its own.
fn critical_paths(
    w: &Workload,
    dependents: &(Vec<u32>, Vec<(u32, u32)>),
    work: &[f64],
) -> Vec<f64> {
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
    let mut len = work.to_vec();
    for &t in order.iter().rev() {
        let t = t as usize;
        let mut best = 0.0f64;
        for k in dependents.0[t] as usize..dependents.0[t + 1] as usize {
            best = best.max(len[dependents.1[k].0 as usize]);
        }
        len[t] = work[t] + best;
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
