//! The discrete-event simulation of a queue runner and its farm, in either runner's form
//! ([`Form`]): the C++ runner (send lock, builder slot released when outputs are copied back,
//! compression in the runner's local worker slots) or the Rust runner (builders import their
//! inputs, build, compress and upload themselves within their slot; a machine-free function that
//! may hold a builder back for its pressure; a dispatcher woken by events and by its timer).
//!
//! State lives in flat vectors indexed by `u32` (derivations, builds, step rows); the dependency
//! graph is static (edges are fixed when a derivation is created) and each derivation's
//! dependents are a linked list in one arena, so a million steps need no per-step allocation.
//! Events are kept in one binary heap ordered by (time, sequence number); runnable steps and free
//! machines are the [`Dispatcher`]'s, which applies the queue runner's rules
//! ([`crate::dispatch`]): O(n log n) overall. Stale queue entries are skipped lazily (a version
//! number per derivation).

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::params::*;
use super::{lognormal, normal, uniform};
use crate::dispatch::machine::supports_features;
use crate::dispatch::{
    Agenda, AnyStepKey, BuildStatus, DispatchTimer, Dispatcher, FifoSemaphore, FreeFn, MachineSort,
    StepFacts, StepSort, StepState, backoff,
};

/// Which queue runner the simulation follows (docs/hydra.md §3 and §4).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Form {
    /// The C++ runner, as hydra.nixos.org ran it until 2025-12-22.
    Cpp,
    /// The Rust runner with presigned uploads.
    Rust {
        free_fn: FreeFn,
        ordering: StepSort,
        /// The dispatcher's trigger timer: it also runs this long after its last pass.
        dispatch_timer_ms: u64,
    },
}

impl Form {
    /// hydra.nixos.org's Rust runner settings (docs/hydra.md §7).
    pub(super) const NIXOS_2026: Form = Form::Rust {
        free_fn: FreeFn::DynamicWithMaxJobLimit,
        ordering: StepSort::WithCriticalPath,
        dispatch_timer_ms: DISPATCH_TIMER_MS,
    };

    pub(super) fn is_rust(self) -> bool {
        matches!(self, Form::Rust { .. })
    }

    /// The runner whose rules apply.
    fn runner(self) -> crate::dataset::Runner {
        match self {
            Form::Cpp => crate::dataset::Runner::Cpp,
            Form::Rust { .. } => crate::dataset::Runner::Rust,
        }
    }

    fn ordering(self) -> StepSort {
        match self {
            Form::Cpp => StepSort::Cpp,
            Form::Rust { ordering, .. } => ordering,
        }
    }

    /// (build timeout, max silent time, largest output), ms and bytes.
    fn limits(self) -> (f64, f64, u64) {
        match self {
            Form::Cpp => (TIMEOUT_MS, MAX_SILENT_MS, MAX_OUTPUT_SIZE),
            Form::Rust { .. } => (TIMEOUT_2026_MS, MAX_SILENT_2026_MS, MAX_OUTPUT_SIZE_2026),
        }
    }
}

pub(super) const NONE: u32 = u32::MAX;
pub(super) const NO_MACHINE: u16 = u16::MAX;

/// Where a derivation is in the queue runner's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NState {
    /// Not in the runner's memory: never queued, or dropped when no build needed it any more,
    /// or failed in a way that is not cached (it is built again when queued again).
    Inactive,
    /// Waiting for dependencies.
    Pending,
    /// All dependencies built; waiting for a machine.
    Runnable,
    /// Aborted; waiting for its retry time.
    Retry,
    /// Dispatched to a machine.
    Running,
    /// Outputs valid in the destination store (built, substituted, or there before the week).
    Done,
    /// Failed permanently and recorded in FailedPaths: later builds needing it fail at once.
    FailedCached,
}

impl NState {
    fn active(self) -> bool {
        matches!(
            self,
            NState::Pending | NState::Runnable | NState::Retry | NState::Running
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Leaf,
    Test,
    Core,
    Private,
    Chain,
    Subst,
    Aggregate,
}

/// One derivation.
#[derive(Debug, Clone)]
pub(super) struct Node {
    pub state: NState,
    /// Bumped whenever a queued entry for this node becomes stale.
    pub ver: u32,
    pub sys: u8,
    pub feat: u8,
    pub class: u8,
    pub kind: Kind,
    pub tries: u8,
    pub pending: u32,
    /// Active dependents plus loaded builds whose top-level derivation this is.
    pub needed: u32,
    pub base_ms: f64,
    pub fail_p: f64,
    pub out_size: u64,
    pub in_size: u64,
    pub closure_extra: u64,
    pub deps_start: u32,
    pub deps_len: u32,
    pub rdeps_head: u32,
    pub first_build: u32,
    pub prio: i32,
    pub gprio: i32,
    pub jobset: u8,
    pub rdeps_count: u32,
    pub mark: u32,
    pub name: u32,
    pub hash: u64,
    pub outputs: u8,
    pub last_row: u32,
    pub cur_row: u32,
    /// When the runner last put it on its runnable list (ms from the week start).
    pub runnable_at: u64,
    /// When its outputs became valid in the destination store (0: before the week).
    pub done_at: u64,
}

/// A dependent of a derivation: a derivation that needs it, or a build whose top level it is.
#[derive(Debug, Clone, Copy)]
struct Rdep {
    target: u32,
    next: u32,
    is_build: bool,
}

/// One row of Builds.
#[derive(Debug, Clone)]
pub(super) struct Build {
    pub jobset: u8,
    pub job: u32,
    pub top: u32,
    pub prio: i32,
    pub gprio: i32,
    pub queued_ms: u64,
    pub load_start_ms: u64,
    pub subst_start: u32,
    pub subst_len: u32,
    pub loaded: bool,
    pub holds_ref: bool,
    pub finished: bool,
    pub status: BuildStatus,
    pub start_ms: Option<u64>,
    pub stop_ms: Option<u64>,
    pub is_cached: bool,
    pub size: Option<u64>,
    pub closure: Option<u64>,
    pub next_stepnr: i32,
}

/// Where a dispatched step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Phase {
    /// Not a dispatched row (substitution, cached or propagated failure).
    NotDispatched,
    WaitLock,
    Sending,
    Building,
    WaitLocal,
    Receiving,
    Finished,
}

impl Phase {
    /// BuildSteps.busy of a step still in this phase (docs/hydra.md §2): its
    /// [`StepState`], whose doc says why waiting for the send lock reads as sending inputs.
    pub(super) fn busy(self) -> i32 {
        let state = match self {
            Phase::WaitLock | Phase::Sending => StepState::SendingInputs,
            Phase::Building => StepState::Building,
            Phase::WaitLocal => StepState::WaitingForLocalSlot,
            Phase::Receiving => StepState::ReceivingOutputs,
            Phase::NotDispatched | Phase::Finished => return 0,
        };
        state.code()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    Success,
    Abort,
    Fail(BuildStatus),
}

/// One row of BuildSteps, with the truth of its life.
#[derive(Debug, Clone)]
pub(super) struct Row {
    /// Got a builder slot (the other rows are substitutions and cached or propagated failures).
    pub dispatched: bool,
    pub build: u32,
    pub stepnr: i32,
    pub node: u32,
    pub substitution: bool,
    pub machine: u16,
    /// `None` while running.
    pub status: Option<BuildStatus>,
    pub start_ms: Option<u64>,
    pub stop_ms: Option<u64>,
    pub propagated_from: u32,
    pub overhead_ms: Option<u64>,
    pub times_built: Option<i32>,
    pub nondet: Option<bool>,
    pub phase: Phase,
    pub cancelled: bool,
    pub outcome: Outcome,
    pub failed_with_output: bool,
    pub dispatch_ms: u64,
    pub send_start: u64,
    pub build_start: u64,
    pub build_stop: u64,
    pub recv_start: u64,
    pub send_ms: u64,
    pub build_ms: u64,
    pub recv_ms: u64,
    /// When the step became runnable in the sense of the ledger's truth (`losses`): a queued
    /// build needed it and every dependency's outputs were valid. Not later than `runnable_ms`.
    pub ready_ms: u64,
    /// When the runner put it on its runnable list (the queue monitor had loaded a build
    /// needing it, or its last dependency finished, or its retry time came).
    pub runnable_ms: u64,
    /// Threads it keeps runnable while building (Rust form's pressure model; 0 otherwise).
    pub threads: f64,
}

impl Row {
    fn plain(build: u32, stepnr: i32, node: u32) -> Row {
        Row {
            dispatched: false,
            build,
            stepnr,
            node,
            substitution: false,
            machine: NO_MACHINE,
            status: None,
            start_ms: None,
            stop_ms: None,
            propagated_from: NONE,
            overhead_ms: None,
            times_built: None,
            nondet: None,
            phase: Phase::NotDispatched,
            cancelled: false,
            outcome: Outcome::Success,
            failed_with_output: false,
            dispatch_ms: 0,
            send_start: 0,
            build_start: 0,
            build_stop: 0,
            recv_start: 0,
            send_ms: 0,
            build_ms: 0,
            recv_ms: 0,
            ready_ms: 0,
            runnable_ms: 0,
            threads: 0.0,
        }
    }
}

/// One builder the generator invents (and writes into the sample's machines file), with its
/// dispatcher state and whether it fails steps (`flaky`).
#[derive(Debug, Clone)]
pub(super) struct GeneratedMachine {
    /// The systems it builds, a set of [`sys_bit`]s.
    pub systems: u8,
    pub supported: u8,
    pub mandatory: u8,
    pub max_jobs: u32,
    /// The speed factor it announces (the machines file's, or the builder's).
    pub speed: f64,
    /// How fast it builds: build time is the workload's at speed factor 1 divided by this.
    pub pace: f64,
    pub flaky: bool,
    /// Its store URI (C++ runner) or hostname (Rust runner): how the runner names it.
    pub uri: String,
    /// Step rows sending inputs to it, one at a time.
    send_lock: FifoSemaphore<u32>,
    /// Its pressure, for the dynamic machine-free functions (Rust form only).
    pub pressure: Option<Pressure>,
}

/// A builder's CPU load as it reports it: the thread demand of its steps, averaged as the
/// kernel does (PSI cpu-some avg10 on Linux, load1 on macOS).
#[derive(Debug, Clone)]
pub(super) struct Pressure {
    pub cpus: f64,
    pub psi: bool,
    /// Nix's `cores` per build.
    pub cores_per_job: f64,
    /// Threads its steps keep runnable now.
    pub demand: f64,
    /// The reported figure's running average, as of `at`.
    avg: f64,
    at: u64,
}

impl Pressure {
    pub(super) fn new(cpus: u32, psi: bool, cores_per_job: u32) -> Pressure {
        Pressure {
            cpus: f64::from(cpus),
            psi,
            cores_per_job: f64::from(cores_per_job),
            demand: 0.0,
            avg: 0.0,
            at: 0,
        }
    }

    /// What the figure tends to under the present demand: PSI some from the demand against
    /// the CPUs (params' `PSI_FROM`, `PSI_SPAN`), or the demand itself as load1.
    fn instant(&self) -> f64 {
        if self.psi {
            100.0 * ((self.demand / self.cpus - PSI_FROM) / PSI_SPAN).clamp(0.0, 1.0)
        } else {
            self.demand
        }
    }

    /// The reported figure at `now` (demand constant since the last change).
    pub(super) fn reported(&mut self, now: u64) -> f64 {
        let tau = if self.psi { PSI_TAU_MS } else { LOAD1_TAU_MS };
        let target = self.instant();
        let decay = (-((now - self.at) as f64) / tau).exp();
        self.avg = target + (self.avg - target) * decay;
        self.at = now;
        self.avg
    }

    /// The demand changes by `delta` threads at `now`.
    fn add(&mut self, now: u64, delta: f64) {
        self.reported(now);
        self.demand = (self.demand + delta).max(0.0);
    }

    /// Whether the reported figure is within the builder's threshold.
    pub(super) fn under_threshold(&mut self, now: u64) -> bool {
        let threshold = if self.psi {
            CPU_PSI_THRESHOLD
        } else {
            LOAD1_THRESHOLD
        };
        self.reported(now) <= threshold
    }
}

impl GeneratedMachine {
    pub(super) fn new(sys: u8, t: &MachineTemplate, flaky: bool, uri: String) -> GeneratedMachine {
        GeneratedMachine {
            systems: sys_bit(sys),
            supported: t.supported,
            mandatory: t.mandatory,
            max_jobs: t.max_jobs,
            speed: t.speed,
            pace: t.speed,
            flaky,
            uri,
            send_lock: FifoSemaphore::new(1),
            pressure: None,
        }
    }

    /// A builder of the 2026 fleet, named `host`.
    pub(super) fn builder(f: &FleetMachine, flaky: bool, host: String) -> GeneratedMachine {
        GeneratedMachine {
            systems: f.systems,
            supported: f.supported,
            mandatory: f.mandatory,
            max_jobs: f.max_jobs,
            speed: 1.0,
            pace: f.pace,
            flaky,
            uri: host,
            send_lock: FifoSemaphore::new(1),
            pressure: Some(Pressure::new(f.cpus, f.psi, f.cores_per_job)),
        }
    }

    pub(super) fn supports(&self, sys: u8, feat: u8) -> bool {
        self.systems & sys_bit(sys) != 0
            && supports_features(
                u64::from(self.supported),
                u64::from(self.mandatory),
                u64::from(feat),
            )
    }
}

/// What happens at an instant; the `u32` is an evaluation, build, step row or derivation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Ev {
    Eval(u32),
    Load(u32),
    SendDone(u32),
    BuildDone(u32),
    ReceiveDone(u32),
    Retry(u32, u32),
    Enable(u16),
    Cancel(u32),
    CancelBuild(u32),
    /// A builder reports its pressure (Rust form).
    Ping(u16),
    /// The dispatcher's trigger timer (Rust form).
    DispatchTimer,
}

/// One evaluation.
#[derive(Debug, Clone)]
pub(super) struct Eval {
    pub jobset: u8,
    /// When it finished and queued its builds (JobsetEvals.timestamp), from the week start.
    pub at_ms: u64,
    /// Expected new builds (scale included).
    pub size: f64,
    pub mass: bool,
    pub checkout_s: i64,
    pub eval_s: i64,
    pub members: f64,
    pub builds_start: u32,
    pub builds_len: u32,
}

/// The farm, the queue runner and everything queued, at simulated time `now` (milliseconds
/// from the week's start).
pub(super) struct Sim {
    /// What is queued (derivations, sizes, names, cancellations).
    pub rng: ChaCha8Rng,
    /// What happens on the machines (durations, outcomes): a stream of its own.
    pub exec: ChaCha8Rng,
    pub now: u64,
    events: Agenda<Ev>,
    pub machines: Vec<GeneratedMachine>,
    /// Runnable steps, queued as (derivation, version), and machine slots: the C++ runner's
    /// dispatcher (docs/hydra.md §4).
    queue: Dispatcher<AnyStepKey, (u32, u32)>,
    /// Machine class in `queue` per (system, required features).
    pub(super) class_of: [[u8; 8]; 4],
    /// The queue-runner host's local worker slots, for step rows copying outputs back.
    local_slots: FifoSemaphore<u32>,
    pub nodes: Vec<Node>,
    pub deps: Vec<u32>,
    rdeps: Vec<Rdep>,
    pub builds: Vec<Build>,
    pub rows: Vec<Row>,
    pub names: Vec<String>,
    pub jobs: Vec<String>,
    pub evals: Vec<Eval>,
    /// Substituted derivations of each build (ranges given by the build).
    pub subst_nodes: Vec<u32>,
    /// When the queue monitor is done loading what it was given so far.
    pub monitor_free_at: u64,
    /// Latest evaluation per jobset (superseded ones may be cancelled).
    pub last_eval: Vec<u32>,
    /// Top-level derivations of trunk's latest evaluation, per system, for trunk-combined.
    pub trunk_recent: [Vec<u32>; 4],
    /// Visit mark for graph walks.
    epoch: u32,
    /// Machines disabled after a failure: (machine, from, until), ms from the week start.
    pub disabled: Vec<(u16, u64, u64)>,
    /// Which runner the farm runs.
    pub form: Form,
    /// The week's start, unix seconds.
    pub week_start_s: i64,
    /// The first build and evaluation ids the week's rows are numbered from (`emit`), set once
    /// the week has run and its counts are known.
    pub ids: Ids,
    /// Whether the queue runner restarts at the week's end, as it does when the next week of a
    /// longer sample follows (`super::generate_weeks`), clearing the steps it leaves busy.
    pub restart_at_end: bool,
    /// How many weeks before the preset's this week is.
    pub back: u32,
    /// Machines the free function held back for their pressure: (machine, from, until).
    pub throttled: Vec<(u16, u64, u64)>,
    /// Since when each machine is held back, while it is.
    throttled_since: Vec<Option<u64>>,
    /// Rust form: the dispatcher's trigger timer.
    timer: DispatchTimer,
    /// Critical-path lengths, memoised per walk (`epoch`), for `WithCriticalPath`.
    critical: Vec<(u32, u32)>,
}

/// The first build id and evaluation id of a week's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ids {
    pub build: i32,
    pub eval: i32,
}

impl Ids {
    /// The preset's own week (the latest of a longer sample) starts at these.
    pub(super) const FIRST: Ids = Ids {
        build: BUILD_ID_BASE,
        eval: EVAL_ID_BASE,
    };
}

impl Sim {
    pub(super) fn new(
        scale: f64,
        rng: ChaCha8Rng,
        exec: ChaCha8Rng,
        machines: Vec<GeneratedMachine>,
        form: Form,
        week_start_s: i64,
    ) -> Sim {
        let local = super::local_worker_slots(scale);
        let jobsets = JOBSETS.len();
        // The Rust runner's default machine order is by bogomips × cores × speed factor; the
        // fleet's builders are alike within a system and announce speed factor 1, so the order
        // comes down to its tie-break, fewer current jobs first: `SpeedFactor` gives that.
        let sort = match form {
            Form::Cpp => MachineSort::Cpp,
            Form::Rust { .. } => MachineSort::SpeedFactor,
        };
        let mut queue = Dispatcher::new(
            sort,
            JOBSETS.iter().map(|d| d.shares.max(1).unsigned_abs()),
            machines.iter().map(|m| (m.max_jobs, m.speed)),
        );
        let mut events = Agenda::default();
        if let Form::Rust { free_fn, .. } = form {
            queue.set_free_fn(free_fn, 0);
            // Builders ping on their own clocks: spread the first reports over the interval.
            let n = machines.len() as u64;
            for m in 0..machines.len() {
                events.schedule(PING_MS * m as u64 / n.max(1), Ev::Ping(m as u16));
            }
        }
        let nm = machines.len();
        Sim {
            rng,
            exec,
            now: 0,
            events,
            machines,
            queue,
            class_of: [[u8::MAX; 8]; 4],
            local_slots: FifoSemaphore::new(local),
            nodes: Vec::new(),
            deps: Vec::new(),
            rdeps: Vec::new(),
            builds: Vec::new(),
            rows: Vec::new(),
            names: Vec::new(),
            jobs: Vec::new(),
            evals: Vec::new(),
            subst_nodes: Vec::new(),
            monitor_free_at: 0,
            last_eval: vec![NONE; jobsets],
            trunk_recent: Default::default(),
            epoch: 0,
            disabled: Vec::new(),
            form,
            week_start_s,
            ids: Ids::FIRST,
            restart_at_end: false,
            back: 0,
            throttled: Vec::new(),
            throttled_since: vec![None; nm],
            timer: DispatchTimer::new(match form {
                Form::Cpp => None,
                Form::Rust {
                    dispatch_timer_ms, ..
                } => Some(dispatch_timer_ms),
            }),
            critical: Vec::new(),
        }
    }

    pub(super) fn schedule(&mut self, at: u64, ev: Ev) {
        self.events.schedule(at, ev);
    }

    /// Runs every event before the end of the week.
    pub(super) fn run(&mut self) {
        while let Some((t, ev)) = self.events.pop() {
            if t >= WEEK_MS {
                break;
            }
            self.now = t;
            let mut trigger = true;
            match ev {
                Ev::Eval(e) => self.on_eval(e),
                Ev::Load(b) => self.on_load(b),
                Ev::SendDone(r) => self.on_send_done(r),
                Ev::BuildDone(r) => self.on_build_done(r),
                Ev::ReceiveDone(r) => self.on_receive_done(r),
                Ev::Retry(n, ver) => {
                    let node = &self.nodes[n as usize];
                    if node.state == NState::Retry && node.ver == ver {
                        self.make_runnable(n);
                    }
                }
                Ev::Enable(m) => self.queue.refresh(usize::from(m), t),
                Ev::Cancel(e) => self.on_cancel(e),
                Ev::CancelBuild(b) => self.cancel_build(b),
                // A report of pressure wakes nobody: the next trigger sees it.
                Ev::Ping(m) => {
                    self.on_ping(usize::from(m));
                    trigger = false;
                }
                Ev::DispatchTimer => {
                    let (wakes, again) = self.timer.fired(t);
                    trigger = wakes;
                    if let Some(at) = again {
                        self.schedule(at, Ev::DispatchTimer);
                    }
                }
            }
            if trigger {
                self.dispatch();
            }
        }
        for m in 0..self.throttled_since.len() {
            if let Some(from) = self.throttled_since[m].take() {
                self.throttled.push((m as u16, from, WEEK_MS));
            }
        }
        self.now = WEEK_MS;
    }

    // -----------------------------------------------------------------------------------------
    // Graph construction (used by the workload generator)
    // -----------------------------------------------------------------------------------------

    /// Adds a derivation with its dependencies (distinct, created earlier: the graph is a DAG).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn add_node(
        &mut self,
        kind: Kind,
        sys: u8,
        feat: u8,
        base_ms: f64,
        fail_p: f64,
        sizes: (u64, u64, u64),
        deps: &[u32],
        name: u32,
        hash: u64,
        outputs: u8,
    ) -> u32 {
        let id = self.nodes.len() as u32;
        let class = self.class_for(sys, feat);
        let deps_start = self.deps.len() as u32;
        for &d in deps {
            self.deps.push(d);
            self.push_rdep(d, id, false);
        }
        self.nodes.push(Node {
            state: NState::Inactive,
            ver: 0,
            sys,
            feat,
            class,
            kind,
            tries: 0,
            pending: 0,
            needed: 0,
            base_ms,
            fail_p,
            out_size: sizes.0,
            in_size: sizes.1,
            closure_extra: sizes.2,
            deps_start,
            deps_len: deps.len() as u32,
            rdeps_head: NONE,
            first_build: NONE,
            prio: DEFAULT_PRIORITY,
            gprio: 0,
            jobset: 0,
            rdeps_count: 0,
            mark: 0,
            name,
            hash,
            outputs,
            last_row: NONE,
            cur_row: NONE,
            runnable_at: 0,
            done_at: 0,
        });
        id
    }

    fn push_rdep(&mut self, of: u32, target: u32, is_build: bool) {
        let next = self.nodes[of as usize].rdeps_head;
        self.rdeps.push(Rdep {
            target,
            next,
            is_build,
        });
        self.nodes[of as usize].rdeps_head = (self.rdeps.len() - 1) as u32;
    }

    /// Registers build `b` as a direct dependent of its top-level derivation.
    pub(super) fn link_build(&mut self, b: u32) {
        let top = self.builds[b as usize].top;
        self.push_rdep(top, b, true);
    }

    pub(super) fn node_deps(&self, n: u32) -> std::ops::Range<usize> {
        let node = &self.nodes[n as usize];
        node.deps_start as usize..(node.deps_start + node.deps_len) as usize
    }

    fn class_for(&mut self, sys: u8, feat: u8) -> u8 {
        let c = self.class_of[sys as usize][feat as usize & 7];
        if c != u8::MAX {
            return c;
        }
        let machines = &self.machines;
        let c = self.queue.add_class(|m| machines[m].supports(sys, feat));
        self.class_of[sys as usize][feat as usize & 7] = c as u8;
        c as u8
    }

    // -----------------------------------------------------------------------------------------
    // Loading builds (the queue monitor)
    // -----------------------------------------------------------------------------------------

    fn on_load(&mut self, b: u32) {
        let bi = b as usize;
        if self.builds[bi].finished {
            // Cancelled before the queue monitor got to it.
            return;
        }
        self.builds[bi].loaded = true;
        let top = self.builds[bi].top;
        if self.nodes[top as usize].state == NState::Done {
            // Every output is valid already: a cached build, no step (queue-monitor.cc).
            let node = &self.nodes[top as usize];
            let (size, closure) = (node.out_size, node.out_size + node.closure_extra);
            let now = self.now;
            let sizes = Some((size, closure));
            self.finish_build(b, BuildStatus::Success, Some(now), Some(now), true, sizes);
            return;
        }
        // Substitutions happen while the build is loaded, before its steps exist.
        let mut t = self.builds[bi].load_start_ms;
        let (s0, sl) = (self.builds[bi].subst_start, self.builds[bi].subst_len);
        for i in s0..s0 + sl {
            let n = self.subst_nodes[i as usize];
            if self.nodes[n as usize].state != NState::Inactive {
                continue;
            }
            let dur = subst_ms(self.nodes[n as usize].out_size);
            let stepnr = self.alloc_stepnr(b);
            let mut row = Row::plain(b, stepnr, n);
            row.substitution = true;
            row.status = Some(BuildStatus::Success);
            row.start_ms = Some(t);
            row.stop_ms = Some(t + dur);
            row.phase = Phase::Finished;
            t += dur;
            self.rows.push(row);
            let node = &mut self.nodes[n as usize];
            node.state = NState::Done;
            node.done_at = t;
            node.last_row = (self.rows.len() - 1) as u32;
        }
        let failed = self.activate(b);
        self.builds[bi].holds_ref = true;
        if let Some(f) = failed {
            // A derivation of the closure is in FailedPaths: the build fails at once with a
            // cached-failure step (queue-monitor.cc).
            let stepnr = self.alloc_stepnr(b);
            let mut row = Row::plain(b, stepnr, f);
            row.status = Some(BuildStatus::CachedFailure);
            row.phase = Phase::Finished;
            self.rows.push(row);
            let status = BuildStatus::CachedFailure.for_build(f == top);
            let now = self.now;
            self.finish_build(b, status, Some(now), Some(now), true, None);
            self.release(b, false);
        }
    }

    /// Brings the build's closure into the runner's memory. Returns a cached failure met on the
    /// way, if any.
    fn activate(&mut self, b: u32) -> Option<u32> {
        let top = self.builds[b as usize].top;
        let (prio, gprio, jobset) = {
            let build = &self.builds[b as usize];
            (build.prio, build.gprio, build.jobset)
        };
        let mut failed = None;
        let mut stack = Vec::new();
        match self.nodes[top as usize].state {
            NState::FailedCached => return Some(top),
            NState::Done => return None,
            NState::Inactive => {
                self.nodes[top as usize].state = NState::Pending;
                self.nodes[top as usize].needed = 1;
                stack.push(top);
            }
            _ => self.nodes[top as usize].needed += 1,
        }
        while let Some(n) = stack.pop() {
            {
                let node = &mut self.nodes[n as usize];
                node.first_build = b;
                node.prio = prio;
                node.gprio = gprio;
                node.jobset = jobset;
                node.tries = 0;
            }
            let mut pending = 0;
            for i in self.node_deps(n) {
                let d = self.deps[i];
                let dn = &mut self.nodes[d as usize];
                match dn.state {
                    NState::Done => {}
                    NState::FailedCached => {
                        failed.get_or_insert(d);
                        pending += 1;
                    }
                    NState::Inactive => {
                        dn.state = NState::Pending;
                        dn.needed = 1;
                        stack.push(d);
                        pending += 1;
                    }
                    _ => {
                        dn.needed += 1;
                        pending += 1;
                    }
                }
            }
            self.nodes[n as usize].pending = pending;
            if pending == 0 {
                self.make_runnable(n);
            }
        }
        failed
    }

    fn make_runnable(&mut self, n: u32) {
        // Reverse dependencies still waiting, for the dispatcher's sort (docs/hydra.md §4): the
        // steps that refer to it. A build needing it directly is not one: the C++ queue monitor
        // files a referring build under the step's `builds`, and the sort counts `rdeps` only
        // (`createStep` in queue-monitor.cc, `StepInfo` in dispatcher.cc).
        let mut rd = 0;
        let mut l = self.nodes[n as usize].rdeps_head;
        while l != NONE {
            let r = self.rdeps[l as usize];
            rd += u32::from(!r.is_build && self.nodes[r.target as usize].state.active());
            l = r.next;
        }
        let now = self.now;
        let node = &mut self.nodes[n as usize];
        node.state = NState::Runnable;
        node.runnable_at = now;
        node.ver += 1;
        node.rdeps_count = rd;
        let ordering = self.form.ordering();
        let critical_path = if ordering == StepSort::WithCriticalPath {
            u64::from(self.critical_path(n))
        } else {
            0
        };
        let node = &self.nodes[n as usize];
        let key = ordering.key(&StepFacts {
            global_priority: node.gprio,
            local_priority: node.prio,
            required_features: node.feat.count_ones(),
            rdeps: rd,
            critical_path,
            lowest_build: i64::from(node.first_build),
            step: n,
        });
        let (c, j, ver) = (node.class as usize, node.jobset as usize, node.ver);
        self.queue.push(c, j, key, (n, ver));
    }

    /// Steps on the longest chain of unfinished derivations that need `n`, `n` included: the
    /// Rust runner's critical-path length (`state/step.rs` `compute_critical_paths`, 14332fbf).
    /// The runner recomputes it at most every 60 s and counts a new step 0 until then; here it
    /// is computed when the step becomes runnable, which is what it converges to.
    fn critical_path(&mut self, n: u32) -> u32 {
        self.epoch += 1;
        let epoch = self.epoch;
        if self.critical.len() < self.nodes.len() {
            self.critical.resize(self.nodes.len(), (0, 0));
        }
        // Iterative depth-first walk up the dependents; a node's length is 1 + its longest
        // unfinished dependent's.
        let mut stack = vec![(n, false)];
        while let Some((x, expanded)) = stack.pop() {
            if self.critical[x as usize].0 == epoch && !expanded {
                continue;
            }
            if !expanded {
                self.critical[x as usize] = (epoch, 0);
                stack.push((x, true));
                let mut l = self.nodes[x as usize].rdeps_head;
                while l != NONE {
                    let r = self.rdeps[l as usize];
                    l = r.next;
                    if !r.is_build
                        && self.nodes[r.target as usize].state.active()
                        && self.critical[r.target as usize].0 != epoch
                    {
                        stack.push((r.target, false));
                    }
                }
            } else {
                let mut best = 0;
                let mut l = self.nodes[x as usize].rdeps_head;
                while l != NONE {
                    let r = self.rdeps[l as usize];
                    l = r.next;
                    if !r.is_build && self.nodes[r.target as usize].state.active() {
                        let (e, len) = self.critical[r.target as usize];
                        if e == epoch {
                            best = best.max(len);
                        }
                    }
                }
                self.critical[x as usize] = (epoch, best + 1);
            }
        }
        self.critical[n as usize].1
    }

    /// Drops one reference to `n`; derivations no build needs any more leave the runner's
    /// memory, and with `cancel` a running one is killed (the C++ runner kills active steps
    /// without dependents when builds are cancelled).
    fn unref(&mut self, n: u32, cancel: bool) {
        let mut stack = vec![n];
        while let Some(x) = stack.pop() {
            let node = &mut self.nodes[x as usize];
            if !node.state.active() {
                continue;
            }
            node.needed = node.needed.saturating_sub(1);
            if node.needed > 0 {
                continue;
            }
            match node.state {
                NState::Pending | NState::Runnable | NState::Retry => {
                    if node.state == NState::Runnable {
                        self.queue.withdraw(node.class as usize);
                    }
                    let node = &mut self.nodes[x as usize];
                    node.state = NState::Inactive;
                    node.ver += 1;
                    for i in self.node_deps(x) {
                        stack.push(self.deps[i]);
                    }
                }
                NState::Running if cancel => self.kill(x),
                _ => {}
            }
        }
    }

    fn release(&mut self, b: u32, cancel: bool) {
        if std::mem::take(&mut self.builds[b as usize].holds_ref) {
            let top = self.builds[b as usize].top;
            self.unref(top, cancel);
        }
    }

    fn alloc_stepnr(&mut self, b: u32) -> i32 {
        let build = &mut self.builds[b as usize];
        build.next_stepnr += 1;
        build.next_stepnr
    }

    fn finish_build(
        &mut self,
        b: u32,
        status: BuildStatus,
        start: Option<u64>,
        stop: Option<u64>,
        cached: bool,
        sizes: Option<(u64, u64)>,
    ) {
        let build = &mut self.builds[b as usize];
        build.finished = true;
        build.status = status;
        build.start_ms = start;
        build.stop_ms = stop;
        build.is_cached = cached;
        build.size = sizes.map(|s| s.0);
        build.closure = sizes.map(|s| s.1);
    }

    // -----------------------------------------------------------------------------------------
    // Evaluations and cancellations
    // -----------------------------------------------------------------------------------------

    fn on_eval(&mut self, e: u32) {
        let j = self.evals[e as usize].jobset as usize;
        let prev = self.last_eval[j];
        if JOBSETS[j].cancellable
            && prev != NONE
            && !self.evals[prev as usize].mass
            && self.rng.random::<f64>() < SUPERSEDE_CANCEL_P
        {
            let now = self.now;
            self.schedule(now, Ev::Cancel(prev));
        }
        self.last_eval[j] = e;
        self.generate_eval(e);
    }

    fn on_cancel(&mut self, e: u32) {
        let ev = &self.evals[e as usize];
        for b in ev.builds_start..ev.builds_start + ev.builds_len {
            self.cancel_build(b);
        }
    }

    fn cancel_build(&mut self, b: u32) {
        if self.builds[b as usize].finished {
            return;
        }
        // Hydra's web UI sets start and stop to the time of the cancellation.
        let now = self.now;
        self.finish_build(b, BuildStatus::Cancelled, Some(now), Some(now), false, None);
        self.release(b, true);
    }

    /// Kills a running step nobody needs any more: status 4, its builder slot freed. A step
    /// already copying its outputs back is left to finish (its build is over).
    fn kill(&mut self, n: u32) {
        let r = self.nodes[n as usize].cur_row;
        if r == NONE {
            return;
        }
        let now = self.now;
        let phase = self.rows[r as usize].phase;
        if phase == Phase::Receiving {
            return;
        }
        let m = self.rows[r as usize].machine as usize;
        let row = &mut self.rows[r as usize];
        match phase {
            Phase::WaitLock => {
                row.send_start = now;
                row.send_ms = 0;
                row.build_start = now;
                row.build_ms = 0;
                row.build_stop = now;
            }
            Phase::Sending => {
                row.send_ms = now - row.send_start;
                row.build_start = now;
                row.build_ms = 0;
                row.build_stop = now;
            }
            Phase::Building => {
                row.build_ms = now - row.build_start;
                row.build_stop = now;
            }
            _ => {}
        }
        row.recv_start = now;
        row.recv_ms = 0;
        row.cancelled = true;
        row.phase = Phase::Finished;
        row.status = Some(BuildStatus::Cancelled);
        row.start_ms = Some(if phase >= Phase::Building {
            row.build_start
        } else {
            row.dispatch_ms
        });
        row.stop_ms = Some(now);
        row.overhead_ms = nonzero(row.send_ms);
        let rust = self.form.is_rust();
        if rust {
            row.start_ms = Some(row.dispatch_ms);
        }
        let threads = match phase {
            Phase::Sending => COPY_THREADS,
            Phase::Building => row.threads,
            _ => 0.0,
        };
        if phase == Phase::Sending && !rust {
            self.release_send_lock(m);
        }
        self.demand(m, -threads);
        self.free_slot(m);
        let node = &mut self.nodes[n as usize];
        node.state = NState::Inactive;
        node.ver += 1;
        node.needed = 0;
        node.cur_row = NONE;
    }

    // -----------------------------------------------------------------------------------------
    // Dispatching (the rules are crate::dispatch's)
    // -----------------------------------------------------------------------------------------

    /// Repeatedly: the first machine in sort order with a free slot that supports a runnable
    /// step takes the best step it supports. Stops when no such pair is left.
    fn dispatch(&mut self) {
        // Each pass restarts the dispatcher's timer (Rust form).
        if let Some(at) = self.timer.passed(self.now) {
            self.schedule(at, Ev::DispatchTimer);
        }
        if !self.queue.start_pass(self.now) {
            return;
        }
        while let Some((m, (n, _))) = self.queue.next(|&(n, ver)| {
            let node = &self.nodes[n as usize];
            node.state == NState::Runnable && node.ver == ver
        }) {
            self.assign(n, m);
        }
    }

    /// A builder reports its pressure; the runner keeps the report for its next pass.
    fn on_ping(&mut self, m: usize) {
        let now = self.now;
        let Some(p) = self.machines[m].pressure.as_mut() else {
            return;
        };
        let under = p.under_threshold(now);
        self.schedule(now + PING_MS, Ev::Ping(m as u16));
        if !self.queue.report_pressure(m, under, now) {
            return;
        }
        if matches!(self.form, Form::Rust { free_fn, .. } if free_fn != FreeFn::Static) {
            match (under, self.throttled_since[m]) {
                (false, None) => self.throttled_since[m] = Some(now),
                (true, Some(from)) => {
                    self.throttled.push((m as u16, from, now));
                    self.throttled_since[m] = None;
                }
                _ => {}
            }
        }
    }

    /// A step on machine `m` changes the threads it keeps runnable by `delta`.
    fn demand(&mut self, m: usize, delta: f64) {
        let now = self.now;
        if let Some(p) = self.machines[m].pressure.as_mut() {
            p.add(now, delta);
        }
    }

    /// The build a dispatched step is recorded under: one whose top level it is, else the
    /// build that first needed it if still queued, else the lowest-id queued build needing it.
    fn pick_build(&mut self, n: u32) -> u32 {
        let mut best = NONE;
        let mut l = self.nodes[n as usize].rdeps_head;
        while l != NONE {
            let r = self.rdeps[l as usize];
            if r.is_build {
                let b = &self.builds[r.target as usize];
                if b.loaded && !b.finished {
                    best = best.min(r.target);
                }
            }
            l = r.next;
        }
        if best != NONE {
            return best;
        }
        let fb = self.nodes[n as usize].first_build;
        if fb != NONE && !self.builds[fb as usize].finished {
            return fb;
        }
        let found = self.dependent_builds(n);
        found.first().copied().unwrap_or(fb)
    }

    /// Every queued build that needs `n`, by id.
    fn dependent_builds(&mut self, n: u32) -> Vec<u32> {
        self.epoch += 1;
        let epoch = self.epoch;
        let mut out = Vec::new();
        let mut stack = vec![n];
        self.nodes[n as usize].mark = epoch;
        while let Some(x) = stack.pop() {
            let mut l = self.nodes[x as usize].rdeps_head;
            while l != NONE {
                let r = self.rdeps[l as usize];
                l = r.next;
                if r.is_build {
                    let b = &self.builds[r.target as usize];
                    if b.loaded && !b.finished {
                        out.push(r.target);
                    }
                } else {
                    let p = &mut self.nodes[r.target as usize];
                    if p.state.active() && p.mark != epoch {
                        p.mark = epoch;
                        stack.push(r.target);
                    }
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// When `n` became runnable for the ledger's truth: the first loaded build needing it was
    /// queued and every dependency's outputs were valid.
    fn ready_at(&self, n: u32) -> u64 {
        let node = &self.nodes[n as usize];
        let queued = match node.first_build {
            NONE => node.runnable_at,
            b => self.builds[b as usize].queued_ms,
        };
        self.node_deps(n)
            .map(|i| self.nodes[self.deps[i] as usize].done_at)
            .fold(queued, u64::max)
    }

    fn assign(&mut self, n: u32, m: usize) {
        let now = self.now;
        let rec = self.pick_build(n);
        let stepnr = self.alloc_stepnr(rec);
        let node = &self.nodes[n as usize];
        let mach = &self.machines[m];
        let rng = &mut self.exec;
        let rust = self.form.is_rust();
        let (timeout_ms, max_silent_ms, max_output) = self.form.limits();

        // C++: the runner sends the inputs over SSH. Rust: the builder imports them itself,
        // substituting from the binary cache. Either way `send_ms` holds it.
        let send_ms = if rust {
            lognormal(rng, IMPORT_SETUP_MEDIAN_MS, IMPORT_SETUP_SIGMA)
                + node.in_size as f64 / IMPORT_BYTES_PER_MS
        } else {
            lognormal(rng, SEND_SETUP_MEDIAN_MS, SEND_SETUP_SIGMA)
                + node.in_size as f64 / LINK_BYTES_PER_MS
        };
        let natural = node.base_ms / mach.pace * (BUILD_JITTER_SIGMA * normal(rng)).exp();
        let abort_p = if mach.flaky { FLAKY_ABORT_P } else { ABORT_P };
        let hang_p = if node.kind == Kind::Test {
            HANG_P_TEST
        } else {
            HANG_P
        };
        let u: f64 = rng.random();
        let mut build_ms = natural;
        let mut outcome = Outcome::Success;
        let mut times_built = 1;
        let mut nondet = false;
        let mut fwo = false;
        if u < abort_p {
            outcome = Outcome::Abort;
            build_ms = natural * uniform(rng);
        } else if natural > timeout_ms {
            outcome = Outcome::Fail(BuildStatus::TimedOut);
            build_ms = timeout_ms;
        } else if u < abort_p + node.fail_p {
            outcome = Outcome::Fail(BuildStatus::Failed);
            build_ms = natural * (0.05 + 0.95 * uniform(rng));
        } else if u < abort_p + node.fail_p + hang_p {
            outcome = Outcome::Fail(BuildStatus::TimedOut);
            build_ms = (natural * uniform(rng) + max_silent_ms).min(timeout_ms);
        } else if u < abort_p + node.fail_p + hang_p + LOG_LIMIT_P {
            outcome = Outcome::Fail(BuildStatus::LogLimitExceeded);
            build_ms = natural * (0.3 + 0.7 * uniform(rng));
        } else {
            if rng.random::<f64>() < DET_CHECK_P {
                times_built = 2;
                build_ms = (natural * 2.0).min(timeout_ms);
                if rng.random::<f64>() < NONDET_P {
                    nondet = true;
                    if rng.random::<f64>() < NONDET_FAIL_P {
                        outcome = Outcome::Fail(BuildStatus::NotDeterministic);
                    }
                }
            }
            if outcome == Outcome::Success && node.out_size > max_output {
                outcome = Outcome::Fail(BuildStatus::NarSizeLimitExceeded);
            }
            if outcome == Outcome::Success
                && node.kind == Kind::Test
                && rng.random::<f64>() < FAILED_WITH_OUTPUT_P
            {
                fwo = true;
            }
        }
        let out = node.out_size as f64;
        // C++: the runner receives the outputs, compresses them with xz and uploads them.
        // Rust: the builder compresses them with zstd-19 and uploads them through presigned
        // URLs. Either way `recv_ms` holds it.
        let recv_ms = if rust {
            UPLOAD_SETUP_MS + out / ZSTD19_BYTES_PER_MS + out * ZSTD19_RATIO / UPLOAD_BYTES_PER_MS
        } else {
            RECEIVE_SETUP_MS
                + out / LINK_BYTES_PER_MS
                + out / XZ_BYTES_PER_MS
                + out * XZ_RATIO / UPLOAD_BYTES_PER_MS
        };
        // Drawn in the Rust form only, so the C++ form's stream of draws is unchanged.
        let threads = match &mach.pressure {
            Some(p) if rust => {
                p.cores_per_job * lognormal(rng, THREADS_PER_CORE_MEDIAN, THREADS_PER_CORE_SIGMA)
            }
            _ => 0.0,
        };

        let mut row = Row::plain(rec, stepnr, n);
        row.dispatched = true;
        row.machine = m as u16;
        row.phase = Phase::WaitLock;
        row.outcome = outcome;
        row.failed_with_output = fwo;
        row.dispatch_ms = now;
        row.start_ms = Some(now);
        row.runnable_ms = node.runnable_at;
        row.ready_ms = if node.tries > 0 {
            // A retry waits for its back-off on purpose: runnable again when the runner says.
            node.runnable_at
        } else {
            self.ready_at(n).min(node.runnable_at)
        };
        row.send_ms = send_ms.round().max(1.0) as u64;
        row.build_ms = build_ms.round().max(1.0) as u64;
        row.recv_ms = recv_ms.round() as u64;
        row.threads = threads;
        match outcome {
            Outcome::Abort => {}
            _ => {
                row.times_built = Some(times_built);
                if times_built > 1 {
                    row.nondet = Some(nondet);
                }
            }
        }
        self.rows.push(row);
        let r = (self.rows.len() - 1) as u32;
        let node = &mut self.nodes[n as usize];
        node.state = NState::Running;
        node.cur_row = r;
        self.queue.take_slot(m, now);
        // The Rust runner has no send lock: the builder starts importing at once.
        if rust || self.machines[m].send_lock.acquire(r) {
            self.start_send(r);
        }
    }

    // -----------------------------------------------------------------------------------------
    // A step's life on a machine
    // -----------------------------------------------------------------------------------------

    fn start_send(&mut self, r: u32) {
        let now = self.now;
        let row = &mut self.rows[r as usize];
        row.phase = Phase::Sending;
        row.send_start = now;
        let (m, at) = (row.machine as usize, now + row.send_ms);
        self.schedule(at, Ev::SendDone(r));
        self.demand(m, COPY_THREADS);
    }

    fn release_send_lock(&mut self, m: usize) {
        let rows = &self.rows;
        if let Some(next) = self.machines[m]
            .send_lock
            .release(|&r| !rows[r as usize].cancelled)
        {
            self.start_send(next);
        }
    }

    fn free_slot(&mut self, m: usize) {
        self.queue.release_slot(m, self.now);
    }

    fn on_send_done(&mut self, r: u32) {
        if self.rows[r as usize].cancelled {
            return;
        }
        let now = self.now;
        let m = self.rows[r as usize].machine as usize;
        if !self.form.is_rust() {
            self.release_send_lock(m);
        }
        let row = &mut self.rows[r as usize];
        row.phase = Phase::Building;
        row.build_start = now;
        let (at, threads) = (now + row.build_ms, row.threads);
        self.schedule(at, Ev::BuildDone(r));
        self.demand(m, threads - COPY_THREADS);
    }

    fn on_build_done(&mut self, r: u32) {
        if self.rows[r as usize].cancelled {
            return;
        }
        let now = self.now;
        let (m, n, outcome, threads) = {
            let row = &mut self.rows[r as usize];
            row.build_stop = now;
            (row.machine as usize, row.node, row.outcome, row.threads)
        };
        let rust = self.form.is_rust();
        if outcome == Outcome::Success {
            self.queue.machine_worked(m);
            self.rows[r as usize].phase = Phase::WaitLocal;
            // The Rust runner's builder uploads at once, in its slot (no local worker slots).
            if rust {
                self.demand(m, COPY_THREADS - threads);
                self.start_receive(r);
            } else if self.local_slots.acquire(r) {
                self.start_receive(r);
            }
            return;
        }
        self.demand(m, -threads);
        let status = match outcome {
            Outcome::Fail(s) => s,
            _ => BuildStatus::Aborted,
        };
        self.end_row(r, status, false);
        self.free_slot(m);
        if outcome == Outcome::Abort {
            if backoff::disables_machines(self.form.runner()) {
                self.machine_failed(m);
            }
            let node = &mut self.nodes[n as usize];
            node.tries += 1;
            node.cur_row = NONE;
            if backoff::may_retry(u32::from(node.tries)) {
                node.state = NState::Retry;
                node.ver += 1;
                let ver = node.ver;
                let back = backoff::backoff_ms(u32::from(node.tries));
                let jitter = if backoff::jitters_retries(self.form.runner()) {
                    self.exec.random_range(0..backoff::RETRY_JITTER_MS)
                } else {
                    0
                };
                self.schedule(now + back + jitter, Ev::Retry(n, ver));
                return;
            }
        } else {
            self.queue.machine_worked(m);
        }
        self.fail_node(n, r, status, status.cached_in_failed_paths());
    }

    /// An abort disables the machine for a while (docs/hydra.md §4).
    fn machine_failed(&mut self, m: usize) {
        // Drawn whether or not the failure counts, so the stream of draws does not depend on it.
        let jitter = self.exec.random_range(0..backoff::DISABLE_JITTER_MS);
        if let Some(until) = self.queue.machine_failed(m, self.now, jitter) {
            self.disabled.push((m as u16, self.now, until));
            self.schedule(until, Ev::Enable(m as u16));
        }
    }

    fn start_receive(&mut self, r: u32) {
        let now = self.now;
        let row = &mut self.rows[r as usize];
        row.phase = Phase::Receiving;
        row.recv_start = now;
        let (m, at) = (row.machine as usize, now + row.recv_ms);
        // C++: the builder slot is released once output copying starts (docs/hydra.md §3);
        // Rust: it is held until the builder reports the upload done.
        if !self.form.is_rust() {
            self.free_slot(m);
        }
        self.schedule(at, Ev::ReceiveDone(r));
    }

    fn on_receive_done(&mut self, r: u32) {
        if self.form.is_rust() {
            let m = self.rows[r as usize].machine as usize;
            self.demand(m, -COPY_THREADS);
            self.free_slot(m);
        } else {
            let rows = &self.rows;
            if let Some(next) = self.local_slots.release(|&r| !rows[r as usize].cancelled) {
                self.start_receive(next);
            }
        }
        self.end_row(r, BuildStatus::Success, true);
        let n = self.rows[r as usize].node;
        {
            let node = &mut self.nodes[n as usize];
            node.state = NState::Done;
            node.done_at = self.now;
            node.last_row = r;
            node.cur_row = NONE;
            node.needed = 0;
        }
        let (start, stop, rec, fwo) = {
            let row = &self.rows[r as usize];
            (row.start_ms, row.stop_ms, row.build, row.failed_with_output)
        };
        let (size, closure) = {
            let node = &self.nodes[n as usize];
            (node.out_size, node.out_size + node.closure_extra)
        };
        let mut l = self.nodes[n as usize].rdeps_head;
        while l != NONE {
            let rd = self.rdeps[l as usize];
            l = rd.next;
            if rd.is_build {
                let b = &self.builds[rd.target as usize];
                if b.loaded && !b.finished {
                    // markSucceededBuild: builds other than the one the step is recorded
                    // under count as cached; `nix-support/failed` makes the build status 6.
                    let status = if fwo {
                        BuildStatus::FailedWithOutput
                    } else {
                        BuildStatus::Success
                    };
                    self.finish_build(
                        rd.target,
                        status,
                        start,
                        stop,
                        rd.target != rec,
                        Some((size, closure)),
                    );
                    self.builds[rd.target as usize].holds_ref = false;
                }
            } else {
                let p = &mut self.nodes[rd.target as usize];
                if p.state == NState::Pending {
                    p.pending -= 1;
                    if p.pending == 0 {
                        self.make_runnable(rd.target);
                    }
                }
            }
        }
    }

    /// Records the end of a dispatched row: the builder's start and stop, and the overhead.
    fn end_row(&mut self, r: u32, status: BuildStatus, received: bool) {
        let row = &mut self.rows[r as usize];
        row.phase = Phase::Finished;
        row.status = Some(status);
        if !received {
            row.recv_start = row.build_stop;
            row.recv_ms = 0;
        }
        let now = self.now;
        // What each runner writes (docs/hydra.md §3): C++ the builder's build start and stop;
        // Rust the runner's clock from taking the step to the builder's report of its end.
        if self.form.is_rust() {
            row.start_ms = Some(row.dispatch_ms);
            row.stop_ms = Some(now);
        } else {
            row.start_ms = Some(row.build_start);
            row.stop_ms = Some(row.build_stop);
        }
        row.overhead_ms = nonzero(row.send_ms + row.recv_ms);
        let secs = (row.build_stop - row.build_start) as f64 / 1000.0;
        let j = self.builds[row.build as usize].jobset as usize;
        if crate::dispatch::share::charges_finished_steps(self.form.runner()) {
            self.queue.charge(j, now, secs);
        }
    }

    /// A step failed for good: every queued build needing it fails (builder.cc failStep), each
    /// other one with a step row naming the build it inherited the failure from.
    fn fail_node(&mut self, n: u32, r: u32, status: BuildStatus, cacheable: bool) {
        let dependents = self.dependent_builds(n);
        {
            let node = &mut self.nodes[n as usize];
            node.cur_row = NONE;
            node.tries = 0;
            node.ver += 1;
            node.needed = 0;
            node.state = if cacheable {
                NState::FailedCached
            } else {
                NState::Inactive
            };
        }
        let (rec, machine, start, stop) = {
            let row = &self.rows[r as usize];
            (row.build, row.machine, row.start_ms, row.stop_ms)
        };
        for b2 in dependents {
            if b2 != rec {
                let stepnr = self.alloc_stepnr(b2);
                let mut row = Row::plain(b2, stepnr, n);
                row.status = Some(status);
                row.machine = machine;
                row.propagated_from = rec;
                row.phase = Phase::Finished;
                self.rows.push(row);
            }
            let top = self.builds[b2 as usize].top;
            let build_status = status.for_build(top == n);
            self.finish_build(b2, build_status, start, stop, false, None);
            self.release(b2, false);
        }
    }

    /// Ends the week: whatever is still running keeps its row open (status null, busy set).
    pub(super) fn finalize(&mut self) {
        for row in &mut self.rows {
            if row.phase != Phase::Finished && row.phase != Phase::NotDispatched {
                row.status = None;
                row.stop_ms = None;
                row.overhead_ms = None;
                row.times_built = None;
                row.nondet = None;
            }
        }
    }
}

fn nonzero(ms: u64) -> Option<u64> {
    (ms > 0).then_some(ms)
}

/// Time to substitute a path of `size` bytes from the binary cache.
pub(super) fn subst_ms(size: u64) -> u64 {
    (SUBST_SETUP_MS + size as f64 / SUBST_BYTES_PER_MS).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The C++ runner takes a machine's send lock inside `sendInputs`, after reporting
    /// `ssSendingInputs`: a step waiting for the lock is stored as sending, not connecting.
    #[test]
    fn a_step_waiting_for_the_send_lock_reads_as_sending_inputs() {
        assert_eq!(Phase::WaitLock.busy(), StepState::SendingInputs.code());
        assert_eq!(Phase::Sending.busy(), 20);
        assert_eq!(Phase::Finished.busy(), 0);
    }
}
