//! What-if scenarios: small TOML files that change the farm or the queue runner, and their
//! comparison with the baseline over several seeds.
//!
//! ```toml
//! name = "two more x86_64 builders"
//! codec = "zstd-19"              # any codec of the reference table or of --compression
//! compress_on = "builders"       # or "queue-runner"
//! local_workers = 144
//! ordering = "with-critical-path" # cpp, legacy, with-rdeps, with-critical-path
//! machine_sort = "speed-factor"  # cpp, speed-factor, cores-speed
//! send_lock = false
//! free_fn = "static"             # Rust runner: static, dynamic, dynamic-with-max-job-limit
//! dispatch_timer_s = 10          # Rust runner: the dispatcher's trigger timer
//! load = 1.5                     # arrivals this much faster
//! remove_machines = ["b3"]
//! [[add_machines]]
//! like = "x86_64-linux"          # copies of the largest machine of this system...
//! count = 2
//! [[add_machines]]
//! line = "ssh://b9 x86_64-linux - 8 2 big-parallel - -"   # ...or a machines-file line
//! ```

use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::calibrate::{self, Figures};
use super::{Codec, CompressOn, Config, FreeFn, MachineSort, Run, StepSort, Workload, simulate};
use crate::compress::project::Costs;
use crate::error::{Error, Result};
use crate::interval::Interval;

/// A scenario file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub codec: Option<String>,
    #[serde(default)]
    pub compress_on: Option<CompressOn>,
    #[serde(default)]
    pub local_workers: Option<u32>,
    #[serde(default)]
    pub ordering: Option<StepSort>,
    #[serde(default)]
    pub machine_sort: Option<MachineSort>,
    #[serde(default)]
    pub send_lock: Option<bool>,
    /// The Rust runner's machine-free function.
    #[serde(default)]
    pub free_fn: Option<FreeFn>,
    /// The Rust dispatcher's trigger timer, seconds.
    #[serde(default)]
    pub dispatch_timer_s: Option<u64>,
    #[serde(default)]
    pub load: Option<f64>,
    #[serde(default)]
    pub remove_machines: Vec<String>,
    #[serde(default)]
    pub add_machines: Vec<AddMachines>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AddMachines {
    /// Copy the machine of this system type with the most capacity (maxJobs × speed factor)
    /// and no mandatory features.
    #[serde(default)]
    pub like: Option<String>,
    /// Or: one line of a machines file.
    #[serde(default)]
    pub line: Option<String>,
    #[serde(default = "one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

/// The example scenarios of `scenarios/`, built in: what `report` compares when given none.
pub const EXAMPLES: [(&str, &str); 6] = [
    (
        "two-more-x86_64-builders.toml",
        include_str!("../../scenarios/two-more-x86_64-builders.toml"),
    ),
    ("zstd-3.toml", include_str!("../../scenarios/zstd-3.toml")),
    ("zstd-19.toml", include_str!("../../scenarios/zstd-19.toml")),
    (
        "compress-on-builders.toml",
        include_str!("../../scenarios/compress-on-builders.toml"),
    ),
    (
        "local-workers-144.toml",
        include_str!("../../scenarios/local-workers-144.toml"),
    ),
    (
        "critical-path.toml",
        include_str!("../../scenarios/critical-path.toml"),
    ),
];

/// The example scenarios of `scenarios/rust/`, for a history the Rust runner wrote: the
/// questions its era raises (docs/hydra.md §7).
pub const RUST_EXAMPLES: [(&str, &str); 5] = [
    (
        "rust/dispatch-timer-10s.toml",
        include_str!("../../scenarios/rust/dispatch-timer-10s.toml"),
    ),
    (
        "rust/static-free-fn.toml",
        include_str!("../../scenarios/rust/static-free-fn.toml"),
    ),
    (
        "rust/legacy-ordering.toml",
        include_str!("../../scenarios/rust/legacy-ordering.toml"),
    ),
    (
        "rust/one-more-aarch64-darwin.toml",
        include_str!("../../scenarios/rust/one-more-aarch64-darwin.toml"),
    ),
    (
        "rust/zstd-9.toml",
        include_str!("../../scenarios/rust/zstd-9.toml"),
    ),
];

/// The built-in example scenarios for a history `runner` wrote, parsed (tests/report.rs runs
/// every one).
pub fn examples_for(runner: crate::dataset::Runner) -> Result<Vec<Scenario>> {
    let list: &[(&str, &str)] = match runner {
        crate::dataset::Runner::Cpp => &EXAMPLES,
        crate::dataset::Runner::Rust => &RUST_EXAMPLES,
    };
    list.iter()
        .map(|(name, text)| {
            parse(text).map_err(|e| Error::Internal(format!("built-in scenario {name}: {e}")))
        })
        .collect()
}

/// The most read of a scenario file: a scenario is a few dozen lines of TOML (the built-in
/// examples are under 2 KiB); 1 MiB leaves room for long comments and nothing else.
const SCENARIO_CAP: u64 = 1 << 20;

/// Reads a scenario file; errors name the file.
pub fn read(path: &Path) -> Result<Scenario> {
    let text = crate::readfile::read_capped_string(path, "scenario", SCENARIO_CAP)?;
    parse(&text).map_err(|e| Error::parse(path.display().to_string(), e))
}

/// The most machines a farm may have in the model: machines are numbered by `u16`, and
/// `u16::MAX` marks a removed one. Hydra.nixos.org runs about a hundred.
pub const MAX_MACHINES: usize = u16::MAX as usize - 1;

/// `load` is kept within this range: a thousand times the recorded arrivals (or a thousandth)
/// is far past saturation (or idleness) for any farm, so a value beyond is a typo; and the
/// simulation divides the recorded arrival times by it, which an extreme value would turn into
/// infinities or zeros.
pub const LOAD_RANGE: (f64, f64) = (1e-3, 1e3);

/// The most `local_workers`: Hydra's runner builds `preferLocalBuild` steps on its own host, a
/// machine of at most a few hundred cores; past this the value only says "unlimited".
pub const MAX_LOCAL_WORKERS: u32 = 100_000;

/// The longest dispatch trigger timer: a day, past which the dispatcher would wake only for
/// events, which a scenario says by leaving the timer out of a C++ history.
pub const MAX_DISPATCH_TIMER_S: u64 = 86_400;

/// Parses a scenario; the error says what is wrong (TOML's own message names line and column),
/// naming the key. Every number is range-checked here, before anything is built from it.
pub fn parse(text: &str) -> std::result::Result<Scenario, String> {
    let s: Scenario = toml::from_str(text).map_err(|e| e.to_string().trim().replace('\n', " "))?;
    if s.name.trim().is_empty() {
        return Err("`name` is empty".into());
    }
    if let Some(l) = s.load
        && !(LOAD_RANGE.0..=LOAD_RANGE.1).contains(&l)
    {
        // Far from 1 in scientific notation: 1e308 written out is 309 digits.
        let shown = if (1e-3..1e6).contains(&l.abs()) {
            l.to_string()
        } else {
            format!("{l:e}")
        };
        return Err(format!(
            "`load` is {shown}; it must be between {} and {} (a factor on the recorded arrivals)",
            LOAD_RANGE.0, LOAD_RANGE.1
        ));
    }
    if let Some(t) = s.dispatch_timer_s
        && !(1..=MAX_DISPATCH_TIMER_S).contains(&t)
    {
        return Err(format!(
            "`dispatch_timer_s` is {t}; it must be between 1 and {MAX_DISPATCH_TIMER_S} seconds"
        ));
    }
    if let Some(n) = s.local_workers
        && !(1..=MAX_LOCAL_WORKERS).contains(&n)
    {
        return Err(format!(
            "`local_workers` is {n}; it must be between 1 and {MAX_LOCAL_WORKERS}"
        ));
    }
    let mut added = 0usize;
    for a in &s.add_machines {
        if a.like.is_some() == a.line.is_some() {
            return Err("each [[add_machines]] needs exactly one of `like` or `line`".into());
        }
        added = added.saturating_add(a.count as usize);
        if a.count == 0 || added > MAX_MACHINES {
            return Err(format!(
                "`add_machines.count` is {}; it must be at least 1, and all the machines added \
                 at most {MAX_MACHINES}",
                a.count
            ));
        }
    }
    Ok(s)
}

/// Applies a scenario to a workload and configuration. `codecs`: codecs measured with
/// `--compression`, preferred over the reference table.
pub fn apply(
    s: &Scenario,
    w: &Workload,
    base: &Config,
    codecs: &[Codec],
) -> Result<(Workload, Config)> {
    let mut w = w.clone();
    let mut cfg = base.clone();
    if let Some(c) = &s.codec {
        cfg.codec = codec(c, codecs)?;
    }
    if let Some(v) = s.compress_on {
        cfg.compress_on = v;
    }
    if let Some(v) = s.local_workers {
        cfg.local_workers = v;
    }
    if let Some(v) = s.ordering {
        cfg.ordering = v;
    }
    if let Some(v) = s.machine_sort {
        cfg.machine_sort = v;
    }
    if let Some(v) = s.send_lock {
        cfg.send_lock = v;
    }
    if let Some(v) = s.free_fn {
        cfg.free_fn = v;
    }
    if let Some(v) = s.dispatch_timer_s {
        cfg.dispatch_timer_ms = Some(v * 1000);
    }
    if let Some(v) = s.load {
        cfg.load = v;
    }
    for name in &s.remove_machines {
        let before = w.machines.len();
        let keep: Vec<bool> = w
            .machines
            .iter()
            .map(|m| m.name != *name && crate::nix::machines::host_of(&m.name) != name)
            .collect();
        if keep.iter().all(|&k| k) {
            return Err(Error::Model(format!(
                "scenario `{}`: no machine `{name}` to remove",
                s.name
            )));
        }
        // Tasks keep their recorded machine index for calibration only; the simulation
        // chooses machines afresh, so indexes are remapped and removed ones become u16::MAX.
        let mut map = vec![u16::MAX; before];
        let mut next = 0u16;
        for (i, k) in keep.iter().enumerate() {
            if *k {
                map[i] = next;
                next += 1;
            }
        }
        let mut i = 0;
        w.machines.retain(|_| {
            i += 1;
            keep[i - 1]
        });
        for t in &mut w.tasks {
            let m = map[t.observed.machine as usize];
            t.observed.machine = if m == u16::MAX { 0 } else { m };
        }
    }
    for a in &s.add_machines {
        let template = match (&a.like, &a.line) {
            (Some(sys), _) => {
                let si = w.systems.iter().position(|x| x == sys).ok_or_else(|| {
                    Error::Model(format!(
                        "scenario `{}`: no {sys} machine to copy (systems: {})",
                        s.name,
                        w.systems.join(", ")
                    ))
                })? as u16;
                w.machines
                    .iter()
                    .filter(|m| m.systems.contains(&si) && m.mandatory == 0)
                    .max_by(|a, b| {
                        (f64::from(a.max_jobs) * a.speed)
                            .total_cmp(&(f64::from(b.max_jobs) * b.speed))
                    })
                    .cloned()
                    .ok_or_else(|| {
                        Error::Model(format!(
                            "scenario `{}`: every {sys} machine has mandatory features; add \
                             one with `line` instead",
                            s.name
                        ))
                    })?
            }
            (None, Some(line)) => {
                let parsed = crate::nix::machines::parse(line).map_err(|e| {
                    Error::Model(format!("scenario `{}`: add_machines line: {e}", s.name))
                })?;
                let Some(m) = parsed.first() else {
                    return Err(Error::Model(format!(
                        "scenario `{}`: an empty add_machines line",
                        s.name
                    )));
                };
                w.machine(m)?
            }
            (None, None) => unreachable!("parse checked"),
        };
        // Checked before the copies are made: a count of billions would otherwise be
        // allocated first and refused after.
        if w.machines.len() + a.count as usize > MAX_MACHINES {
            return Err(Error::Model(format!(
                "scenario `{}`: `add_machines.count` {} would make {} machines, more than the \
                 {MAX_MACHINES} the model can hold",
                s.name,
                a.count,
                w.machines.len() + a.count as usize
            )));
        }
        for k in 0..a.count {
            let mut m = template.clone();
            m.name = format!("{} (added {})", template.name, k + 1);
            w.machines.push(m);
        }
    }
    Ok((w, cfg))
}

/// A codec by name: a measured one first, then the reference table.
pub fn codec(name: &str, measured: &[Codec]) -> Result<Codec> {
    measured
        .iter()
        .find(|c| c.name == name)
        .cloned()
        .or_else(|| Codec::reference(name))
        .ok_or_else(|| {
            Error::Usage(format!(
                "unknown codec `{name}`: give a measurement with --compression, or use one of \
                 xz-6, zstd-1, zstd-3, zstd-19, none"
            ))
        })
}

/// Slot-hours of the simulated farm by where they went, the capacity ledger's buckets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Buckets {
    pub available_h: f64,
    pub building_h: f64,
    /// Sending inputs; with compression on builders also compressing and uploading.
    pub overhead_h: f64,
    /// Slots held while waiting: for the send lock, and for a local worker slot after building.
    pub held_h: f64,
    /// Build time of attempts that failed.
    pub waste_h: f64,
    /// Idle while runnable steps waited for this machine (disabled after failures), as the
    /// capacity ledger's dispatch loss.
    pub dispatch_loss_h: f64,
    pub idle_h: f64,
    /// CPU spent compressing, core-hours, wherever it ran (queue-runner host or builders).
    pub compress_core_h: f64,
    /// Compressed bytes uploaded to the cache (what it stores), GB.
    pub uploaded_gb: f64,
}

/// One scenario's figures over several seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub name: String,
    pub description: Option<String>,
    pub config: Config,
    pub machines: usize,
    pub builds_per_day: Interval,
    pub wait_p50_s: Interval,
    pub wait_p90_s: Interval,
    pub wait_p99_s: Interval,
    /// Builder slot utilization per system type (slot time held / slot time available).
    pub utilization: Vec<(String, Interval)>,
    /// Median over seeds.
    pub buckets: Buckets,
    /// Builders (machine-months) plus compression on the queue-runner host, per month; an
    /// estimate from the cost file.
    pub cost_per_month: Interval,
}

use crate::compress::project::MONTH_HOURS as HOURS_PER_MONTH;

/// Runs `w` under `cfg` with each seed (in parallel) and summarises.
pub fn evaluate(
    name: &str,
    description: Option<String>,
    w: &Workload,
    cfg: &Config,
    seeds: &[u64],
    costs: &Costs,
) -> Result<Outcome> {
    let runs: Vec<(Run, Figures)> = seeds
        .par_iter()
        .map(|&seed| {
            let mut c = cfg.clone();
            c.seed = seed;
            let run = simulate(w, &c)?;
            let f = calibrate::simulated(w, &run, &c);
            Ok((run, f))
        })
        .collect::<Result<_>>()?;
    let span_ms = (w.span_ms as f64 / cfg.load).max(1.0);
    let months = span_ms / 3.6e6 / HOURS_PER_MONTH;
    // Each builder at the cost file's price for its (first) system type.
    let machines_month: f64 = w
        .machines
        .iter()
        .map(|m| {
            let sys = m
                .systems
                .first()
                .map_or("", |&s| w.systems[s as usize].as_str());
            costs.machine_month_for(sys)
        })
        .sum();
    // Per system: the interval over seeds of each run's utilization.
    let per_run: Vec<Vec<(String, f64)>> = runs
        .iter()
        .map(|(r, _)| r.slot_utilization(w, span_ms))
        .collect();
    let utilization = per_run
        .first()
        .map(|first| {
            first
                .iter()
                .enumerate()
                .map(|(k, (sys, _))| {
                    (
                        sys.clone(),
                        Interval::of(per_run.iter().map(|u| u[k].1).collect()),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let pick = |f: &dyn Fn(&Figures) -> f64| Interval::of(runs.iter().map(|(_, x)| f(x)).collect());
    let cost = Interval::of(
        runs.iter()
            .map(|(r, _)| {
                let qr_core_h = r.stages.compress_qr_ms / 3.6e6;
                machines_month + qr_core_h / months * costs.core_hour
            })
            .collect(),
    );
    let mut all: Vec<Buckets> = runs.iter().map(|(r, _)| buckets(w, r, span_ms)).collect();
    all.sort_by(|a, b| a.idle_h.total_cmp(&b.idle_h));
    Ok(Outcome {
        name: name.to_string(),
        description,
        config: cfg.clone(),
        machines: w.machines.len(),
        builds_per_day: pick(&|f| f.builds_per_day),
        wait_p50_s: pick(&|f| f.wait_p50_s),
        wait_p90_s: pick(&|f| f.wait_p90_s),
        wait_p99_s: pick(&|f| f.wait_p99_s),
        utilization,
        buckets: all[all.len() / 2],
        cost_per_month: cost,
    })
}

pub(super) fn buckets(w: &Workload, r: &Run, span_ms: f64) -> Buckets {
    let mut b = Buckets {
        available_h: w
            .machines
            .iter()
            .map(|m| f64::from(m.max_jobs) * span_ms / 3.6e6)
            .sum(),
        ..Buckets::default()
    };
    for (i, t) in w.tasks.iter().enumerate() {
        let build = (r.build_stop_ms[i] - r.build_start_ms[i]) as f64 / 3.6e6;
        if t.success {
            b.building_h += build;
        } else {
            b.waste_h += build;
        }
        let before = (r.build_start_ms[i] - r.dispatch_ms[i]) as f64 / 3.6e6;
        // As the engine schedules it: whole milliseconds.
        let send = t.send_ms.round() / 3.6e6;
        b.overhead_h += send.min(before);
        b.held_h += (before - send).max(0.0);
    }
    let held_local: f64 = r.stages.held_waiting_ms.iter().sum::<f64>() / 3.6e6;
    b.held_h += held_local;
    b.overhead_h += r.stages.compress_builders_ms / 3.6e6;
    if r.stages.compress_builders_ms > 0.0 {
        b.overhead_h += r.stages.upload_ms / 3.6e6;
    }
    b.dispatch_loss_h = r.stages.dispatch_loss_ms / 3.6e6;
    b.compress_core_h = (r.stages.compress_qr_ms + r.stages.compress_builders_ms) / 3.6e6;
    b.uploaded_gb = r.stages.uploaded_bytes / 1e9;
    b.idle_h =
        (b.available_h - b.building_h - b.overhead_h - b.held_h - b.waste_h - b.dispatch_loss_h)
            .max(0.0);
    b
}
