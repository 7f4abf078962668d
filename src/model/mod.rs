//! The throughput model: a seeded, clock-free discrete-event simulation of the queue runner and
//! its builders that replays a dataset's history under a configuration, so that "what if?" can
//! be answered with numbers.
//!
//! - [`workload`] turns a dataset into tasks (one per recorded step attempt on a builder), their
//!   dependencies and the machines; service times come from the history.
//! - [`engine`] runs the simulation: the dispatcher (docs/hydra.md §4), the per-machine send lock,
//!   building, the local worker slots, compression and upload.
//! - [`calibrate`] compares a replay of the observed configuration with what really happened.
//! - [`scenario`] reads what-if files and compares them with the baseline over several seeds.
//! - [`verdict`] grows the load until a stage saturates: the binding constraint.

pub mod calibrate;
pub mod engine;
pub mod scenario;
pub mod table;
pub mod verdict;
pub mod workload;

use serde::{Deserialize, Serialize};

pub use crate::dispatch::{FreeFn, MachineSort, StepSort};
pub use engine::{Run, simulate};
pub use workload::{FarmMachine, Task, Workload};

/// Where outputs are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CompressOn {
    /// The C++ runner: the queue-runner host copies outputs back and compresses them in a local
    /// worker slot, while the builder slot stays held until copying starts.
    QueueRunner,
    /// The Rust runner with presigned uploads: the builder compresses and uploads, in its slot.
    Builders,
}

/// A codec as the model needs it: compression speed per core and compressed size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Codec {
    pub name: String,
    /// Compression throughput of one core, MB/s of NAR.
    pub mb_s_core: f64,
    /// Compressed size as a fraction of the NAR size.
    pub ratio: f64,
    /// Where the figures come from.
    pub source: String,
}

impl Codec {
    /// Reference figures, used unless `--compression` gives figures measured on the user's own
    /// NARs (docs/hydra.md §6): xz-6, zstd-19 and zstd-3 measured on this project's development
    /// machine (Debian xz 5.4.1 / zstd 1.5.4, one thread, a 52.5 MB NAR of the Python standard
    /// library); zstd-1 from lzbench on the Silesia corpus (one core).
    pub fn reference(name: &str) -> Option<Codec> {
        let (speed, ratio, source) = match name {
            "xz-6" => (
                2.9,
                0.195,
                "measured on a Python stdlib NAR (docs/hydra.md §6)",
            ),
            "zstd-19" => (
                2.6,
                0.212,
                "measured on a Python stdlib NAR (docs/hydra.md §6)",
            ),
            "zstd-3" => (
                305.0,
                0.281,
                "measured on a Python stdlib NAR (docs/hydra.md §6)",
            ),
            "zstd-9" => (
                43.8,
                0.242,
                "measured on the same Python stdlib NAR beside zstd-19 and xz-6 \
                 (docs/hydra.md §6)",
            ),
            "zstd-1" => (422.0, 0.346, "lzbench, Silesia corpus (docs/hydra.md §6)"),
            "none" => (f64::INFINITY, 1.0, "no compression"),
            _ => return None,
        };
        Some(Codec {
            name: name.to_string(),
            mb_s_core: speed,
            ratio,
            source: format!("reference figure: {source}; not your NARs"),
        })
    }

    /// Milliseconds of one core to compress `bytes`.
    pub fn compress_ms(&self, bytes: f64) -> f64 {
        if self.mb_s_core.is_finite() && self.mb_s_core > 0.0 {
            bytes / (self.mb_s_core * 1000.0)
        } else {
            0.0
        }
    }
}

/// Everything about the queue runner that a scenario may change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    pub ordering: StepSort,
    pub machine_sort: MachineSort,
    /// Local worker slots of the queue-runner host (`max_local_worker_threads`).
    pub local_workers: u32,
    pub compress_on: CompressOn,
    /// One step at a time sends inputs to a machine (the C++ runner's send lock).
    pub send_lock: bool,
    /// The runner whose remaining rules apply: the Rust runner never disables a machine and
    /// does not charge finished steps to jobset shares (docs/hydra.md §4).
    pub runner: crate::dataset::Runner,
    /// When a machine takes work (the Rust runner's `machineFreeFn`). The dynamic ones replay
    /// the pressure holds the history's series recorded ([`Workload::held_back`]).
    pub free_fn: FreeFn,
    /// The Rust dispatcher's trigger timer: a pass also runs this long after the last one, and
    /// a builder's pressure falling wakes nobody. `None`: every event wakes it (the C++ runner).
    pub dispatch_timer_ms: Option<u64>,
    pub codec: Codec,
    /// Arrivals sped up by this factor (1 = as recorded): how the verdict grows the load.
    pub load: f64,
    /// Spread of build times between seeds: each build time is multiplied by a mean-one
    /// log-normal factor with this sigma.
    pub noise_sigma: f64,
    pub seed: u64,
}

/// The spread of build times between seeded runs. Repeated builds of the same derivation on
/// the same machine vary by roughly 10–20 % (CPU frequency, I/O, neighbours); 0.15 sits there.
pub const NOISE_SIGMA: f64 = 0.15;

/// The codec a history's outputs were compressed with, by the runner that wrote it: under the C++
/// runner Nix's binary-cache default, `compression=xz` at preset 6, on the queue-runner host
/// (docs/hydra.md §6); under the Rust runner hydra.nixos.org's `compression=zstd&
/// compression-level=19`, on the builders with presigned uploads (§7).
pub fn history_codec(runner: crate::dataset::Runner) -> &'static str {
    match runner {
        crate::dataset::Runner::Cpp => "xz-6",
        crate::dataset::Runner::Rust => "zstd-19",
    }
}

/// The Rust dispatcher's trigger timer at its default (`dispatchTriggerTimerInS`, 120 s;
/// docs/hydra.md §7), which hydra.nixos.org keeps.
pub const DISPATCH_TIMER_MS: u64 = 120_000;

/// Local worker slots when the history does not say: hydra.nixos.org's old queue-runner host
/// ran with 30 (docs/hydra.md §3).
pub const DEFAULT_LOCAL_WORKERS: u32 = 30;

/// What `simulate` is asked.
#[derive(Debug, Clone)]
pub struct Options {
    /// The build machines (the caller decides between a given file and the one that came with
    /// the data); without them, slots are inferred from the history.
    pub machines: Option<Vec<crate::nix::BuildMachine>>,
    pub scenarios: Vec<scenario::Scenario>,
    /// Seeds per configuration (each a run with its own build-time noise).
    pub seeds: u32,
    /// Local worker slots of the history's queue-runner host, when known.
    pub local_workers: Option<u32>,
    /// Codecs measured with `compress --format json`, preferred over the reference table.
    pub codecs: Vec<Codec>,
    pub costs: crate::compress::project::Costs,
    /// Estimate dependencies with this gap instead of using the sample's ground truth.
    pub gap_s: Option<i64>,
    /// Also run the load sweep for the bottleneck verdict.
    pub verdict: bool,
    /// A queue-runner status JSON and where it came from: its per-machine step times join the
    /// calibration.
    pub status: Option<(String, crate::status::Status)>,
    /// Ledger buckets the history measured (held slots, dispatch loss), for calibration rows.
    pub measured: Vec<calibrate::Measured>,
}

/// Default seeds per configuration: five runs give a lowest–median–highest interval in a few
/// seconds on the sample.
pub const DEFAULT_SEEDS: u32 = 5;

/// Everything `simulate` found.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub origin: String,
    pub is_sample: bool,
    pub runner: crate::dataset::Runner,
    pub tasks: usize,
    pub dependencies: usize,
    pub deps_from: String,
    pub machines_from: String,
    pub sizes_from: String,
    pub local_workers_from: String,
    pub baseline_config: Config,
    /// A replay of the observed configuration with the recorded build times (no noise),
    /// against the history.
    pub calibration: Vec<calibrate::Row>,
    /// The replay against a status JSON's per-machine step times, when one was given.
    pub status_check: Option<calibrate::StatusCheck>,
    pub seeds: Vec<u64>,
    pub baseline: scenario::Outcome,
    pub scenarios: Vec<scenario::Outcome>,
    pub verdict: Option<verdict::Verdict>,
    pub assumptions: Vec<String>,
}

/// The most recent whole UTC days of `ds` that hold at most `max_steps` steps, and a sentence
/// saying so; `None` when all of `ds` fits. A report runs every configuration with several
/// seeds, so its simulation is bounded by steps rather than by the window the user asked for.
pub fn latest_days(
    ds: &crate::dataset::Dataset,
    max_steps: usize,
) -> crate::Result<Option<(crate::dataset::Dataset, String)>> {
    let total = ds.steps.height();
    if total <= max_steps {
        return Ok(None);
    }
    let err = |e| crate::Error::frame("builds", e);
    let queued: std::collections::HashMap<i32, i64> = ds
        .builds
        .column("id")
        .and_then(|c| c.i32().cloned())
        .map_err(err)?
        .iter()
        .zip(
            ds.builds
                .column("timestamp")
                .and_then(|c| c.i64().cloned())
                .map_err(err)?
                .iter(),
        )
        .filter_map(|(id, t)| Some((id?, t?)))
        .collect();
    let mut latest = Latest::default();
    latest.add(&ds.steps, |b| queued.get(&b).copied())?;
    let Some(window) = latest.window(max_steps, ds.meta.window.until) else {
        return Ok(None);
    };
    let kept = crate::source::restrict(ds.clone(), window)?;
    let note = latest_note(window, kept.steps.height(), total, max_steps);
    Ok(Some((kept, note)))
}

/// Where the latest whole days holding at most a number of steps begin, from each step's time
/// it is kept from by the window rule ([`crate::window::Window::kept_from`]): the steps handed
/// in parts (a snapshot's days) or at once.
#[derive(Debug, Clone, Default)]
pub struct Latest {
    /// Steps seen.
    pub total: usize,
    /// Steps every window keeps.
    always: usize,
    /// The time each other kept step is kept from.
    ends: Vec<i64>,
}

impl Latest {
    /// The steps of `steps` (a frame of the steps table); `queued`: a build's queue time.
    pub fn add(
        &mut self,
        steps: &polars::prelude::DataFrame,
        queued: impl Fn(i32) -> Option<i64>,
    ) -> crate::Result<()> {
        let err = |e| crate::Error::frame("steps", e);
        let i64s = |name: &str| {
            steps
                .column(name)
                .and_then(|c| c.i64().cloned())
                .map_err(err)
        };
        let i32s = |name: &str| {
            steps
                .column(name)
                .and_then(|c| c.i32().cloned())
                .map_err(err)
        };
        let (starts, stops) = (i64s("start_time")?, i64s("stop_time")?);
        let (busy, builds) = (i32s("busy")?, i32s("build")?);
        self.total += steps.height();
        let rows = starts
            .iter()
            .zip(stops.iter())
            .zip(busy.iter().zip(builds.iter()));
        for ((start, stop), (busy, build)) in rows {
            let queued_at = build.and_then(&queued);
            match crate::window::Window::kept_from(start, stop, busy, queued_at) {
                crate::window::KeptFrom::Since(t) => self.ends.push(t),
                crate::window::KeptFrom::Always => self.always += 1,
                crate::window::KeptFrom::Never => {}
            }
        }
        Ok(())
    }

    /// The window of the latest days holding at most `max_steps` of the steps, to `until`;
    /// `None` when all of them fit.
    pub fn window(mut self, max_steps: usize, until: Option<i64>) -> Option<crate::window::Window> {
        if self.total <= max_steps {
            return None;
        }
        let budget = max_steps.saturating_sub(self.always);
        if self.ends.len() <= budget {
            return None;
        }
        let k = self.ends.len() - budget.max(1);
        let (_, &mut cut, _) = self.ends.select_nth_unstable(k);
        let end = until.unwrap_or(i64::MAX);
        // Whole days read better and keep a day's pattern whole; a single day over the bound
        // is cut where it must be.
        let day = cut.div_euclid(86_400) * 86_400 + if cut % 86_400 == 0 { 0 } else { 86_400 };
        let since = if day < end { day } else { cut };
        Some(crate::window::Window {
            since: Some(since),
            until,
        })
    }
}

/// What [`latest_days`] says of the steps it kept.
pub fn latest_note(
    window: crate::window::Window,
    kept: usize,
    total: usize,
    max_steps: usize,
) -> String {
    format!(
        "replays the steps from {} on ({} of the window's {} steps): it runs every \
         configuration with several seeds, so it is bounded to about the latest {} steps",
        crate::window::fmt_time(window.since.unwrap_or(0)),
        kept,
        total,
        max_steps
    )
}

/// Builds the workload, calibrates, and runs the baseline and every scenario.
pub fn run(ds: &crate::dataset::Dataset, opts: &Options) -> crate::Result<Summary> {
    use crate::dataset::Runner;
    let machines = opts.machines.clone();
    // The history's configuration, by runner (docs/hydra.md §3): the C++ runner compressed with
    // xz-6 on the queue-runner host behind a send lock; the Rust runner on hydra.nixos.org
    // compresses zstd-19 on the builders and orders by critical path.
    // The Rust runner as hydra.nixos.org runs it (docs/hydra.md §7): DynamicWithMaxJobLimit
    // and the dispatcher's 120 s timer.
    let (base, free_fn, timer) = match ds.meta.runner {
        Runner::Cpp => (
            (
                StepSort::Cpp,
                MachineSort::Cpp,
                CompressOn::QueueRunner,
                true,
            ),
            FreeFn::Static,
            None,
        ),
        Runner::Rust => (
            (
                StepSort::WithCriticalPath,
                MachineSort::SpeedFactor,
                CompressOn::Builders,
                false,
            ),
            FreeFn::DynamicWithMaxJobLimit,
            Some(DISPATCH_TIMER_MS),
        ),
    };
    let history_codec = scenario::codec(history_codec(ds.meta.runner), &opts.codecs)?;
    let deps = match opts.gap_s {
        Some(g) => workload::DepsFrom::Estimate(g),
        None => workload::DepsFrom::Best,
    };
    let w = workload::from_dataset(ds, machines.as_deref(), deps, history_codec.clone())?;
    let (local_workers, local_workers_from) = match (opts.local_workers, &ds.meta.queue_runner) {
        (Some(n), _) => (n, "given with --local-workers".to_string()),
        (None, Some(q)) => (
            q.local_workers,
            "the sample generator's configuration".to_string(),
        ),
        (None, None) if ds.meta.runner == Runner::Rust => (
            DEFAULT_LOCAL_WORKERS,
            format!(
                "none under the Rust runner (a scenario that moves compression back to the \
                 queue-runner host gets {DEFAULT_LOCAL_WORKERS}, hydra.nixos.org's old host)"
            ),
        ),
        (None, None) => (
            DEFAULT_LOCAL_WORKERS,
            format!(
                "assumed {DEFAULT_LOCAL_WORKERS} (hydra.nixos.org's old host); give --local-workers"
            ),
        ),
    };
    let cfg = Config {
        ordering: base.0,
        machine_sort: base.1,
        compress_on: base.2,
        send_lock: base.3,
        runner: ds.meta.runner,
        free_fn,
        dispatch_timer_ms: timer,
        local_workers,
        codec: history_codec,
        load: 1.0,
        noise_sigma: NOISE_SIGMA,
        seed: 0,
    };
    let exact = Config {
        noise_sigma: 0.0,
        ..cfg.clone()
    };
    let replay = simulate(&w, &exact)?;
    let mut calibration = calibrate::compare(
        &calibrate::observed(&w),
        &calibrate::simulated(&w, &replay, &exact),
    );
    let status_check = opts
        .status
        .as_ref()
        .and_then(|(origin, s)| calibrate::against_status(&w, &replay, s, origin));
    if let Some(c) = &status_check {
        calibration.push(c.row.clone());
    }
    calibration.extend(calibrate::bucket_rows(
        &opts.measured,
        &scenario::buckets(&w, &replay, w.span_ms as f64),
        w.origin_ms,
        &replay.stages.runnable_ms_by_hour,
    ));
    let seeds: Vec<u64> = (1..=u64::from(opts.seeds.max(1))).collect();
    let baseline = scenario::evaluate("baseline", None, &w, &cfg, &seeds, &opts.costs)?;
    let mut scenarios = Vec::new();
    for s in &opts.scenarios {
        // Between configurations is a safe point for Ctrl-C (a no-op unless a command asked).
        crate::interrupt::check()?;
        let (sw, sc) = scenario::apply(s, &w, &cfg, &opts.codecs)?;
        scenarios.push(scenario::evaluate(
            &s.name,
            s.description.clone(),
            &sw,
            &sc,
            &seeds,
            &opts.costs,
        )?);
    }
    crate::interrupt::check()?;
    let verdict = if opts.verdict {
        Some(verdict::verdict(&w, &exact)?)
    } else {
        None
    };
    let rust = ds.meta.runner == Runner::Rust;
    let mut assumptions = vec![
        if rust {
            format!(
                "import/upload split of the recorded overhead (import + upload under the Rust \
                 runner): upload = {:.1} s presigned set-up + size / codec speed + compressed \
                 size / {:.0} MB/s (assumed); the rest is the import",
                workload::PRESIGNED_SETUP_MS / 1000.0,
                workload::UPLOAD_BYTES_PER_MS / 1000.0
            )
        } else {
            format!(
                "send/receive split of the recorded overhead: receive = {:.1} s + size / {:.0} \
                 MB/s link + size / codec speed + compressed size / {:.0} MB/s upload (assumed)",
                workload::RECEIVE_SETUP_MS / 1000.0,
                workload::LINK_BYTES_PER_MS / 1000.0,
                workload::UPLOAD_BYTES_PER_MS / 1000.0
            )
        },
        match &ds.drv_graph {
            Some(g) => format!(
                "required system features from the derivations ({}); a step whose .drv was not \
                 found may run only where every feature of the machine it ran on is supported",
                g.source
            ),
            None => "required system features are not recorded: a step may run only where every \
                 feature of the machine it ran on is supported (give --drv-store for the \
                 derivations' own)"
                .into(),
        },
        format!(
            "build times vary between seeds by a mean-one log-normal factor (sigma {NOISE_SIGMA})"
        ),
        if rust {
            "money: builders at the cost file's machine-month price for their system; the \
             builders' compression is in their slots (an estimate)"
                .into()
        } else {
            "money: builders at the cost file's machine-month price for their system, plus \
             compression core-hours on the queue-runner host (an estimate)"
                .into()
        },
    ];
    if cfg.free_fn != FreeFn::Static {
        let spans: usize = w.held_back.iter().map(Vec::len).sum();
        let machines = w.held_back.iter().filter(|s| !s.is_empty()).count();
        assumptions.push(if spans > 0 {
            format!(
                "machine-free function {}: the {spans} holds below maxJobs that the runner's \
                 /status series recorded on {machines} machines are replayed at their recorded \
                 times; a scenario that moves work does not move the builders' pressure",
                cfg.free_fn.name()
            )
        } else {
            format!(
                "machine-free function {}: no series of the runner's /status says when pressure \
                 held builders back, so the replay holds none (its throughput is an upper end)",
                cfg.free_fn.name()
            )
        });
    }
    if let Some(t) = cfg.dispatch_timer_ms {
        assumptions.push(format!(
            "the dispatcher wakes on events and {} s after its last pass; a builder's falling \
             pressure wakes nobody",
            t / 1000
        ));
    }
    let mut codecs_used: Vec<&Codec> = vec![&cfg.codec];
    for o in &scenarios {
        if !codecs_used.iter().any(|c| c.name == o.config.codec.name) {
            codecs_used.push(&o.config.codec);
        }
    }
    for c in codecs_used {
        // The speed as people read it (`3.22`, `274`): it may be a measurement's every digit.
        assumptions.push(format!(
            "{}: {} MB/s per core, {:.1} % of the NAR size ({})",
            c.name,
            table::num(c.mb_s_core),
            c.ratio * 100.0,
            c.source
        ));
    }
    if cfg.machine_sort == MachineSort::CoresSpeed
        || opts
            .scenarios
            .iter()
            .any(|s| s.machine_sort == Some(MachineSort::CoresSpeed))
    {
        assumptions.push("cores-speed machine sort: maxJobs stands in for CPU cores".into());
    }
    Ok(Summary {
        origin: ds.meta.origin.describe(),
        is_sample: ds.meta.origin.is_sample(),
        runner: ds.meta.runner,
        tasks: w.tasks.len(),
        dependencies: w.deps.len(),
        deps_from: w.deps_from.clone(),
        machines_from: w.machines_from.clone(),
        sizes_from: w.sizes_from.clone(),
        local_workers_from,
        baseline_config: cfg,
        calibration,
        status_check,
        seeds,
        baseline,
        scenarios,
        verdict,
        assumptions,
    })
}
