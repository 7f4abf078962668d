//! The model's input: a dataset's history turned into tasks, dependencies and machines.
//!
//! A task is one recorded step attempt on a builder (a `BuildSteps` row of type build with a
//! machine and times). Its service times come from the history:
//! - build work = (stopTime − startTime) × the speed factor of the machine it ran on, so that on
//!   another machine it takes work / that machine's speed factor;
//! - the recorded overhead is split into sending inputs and receiving outputs: the receive part
//!   is estimated from the output size (setup + transfer + compression with the history's codec +
//!   upload), capped at the recorded overhead, and the rest is sending. A failed attempt copies
//!   nothing back: all its overhead is sending.
//!
//! Dependencies are the sample's ground truth when present, else the derivation graph joined
//! with the steps (`analysis::graph`) when the data came with one, else the estimate of
//! `analysis::deps`; a retried attempt also waits for the attempt before it, plus the queue
//! runner's back-off of 60 · 3^(n−1) s. Required system features are the derivation's own
//! (`requiredSystemFeatures` of its `.drv`) where the graph has it. Else, since the database does
//! not record them, a task may run only on machines that support every feature of the machine
//! it ran on (never on a machine that might lack what it needed), and a machine's mandatory
//! features admit only tasks that ran on a machine with them. That guess confines plain steps
//! that ran on a big-parallel builder to the big-parallel builders: on the built-in sample it
//! doubled the replay's send-lock waits (held idle 532 slot-h against a true 279; with the
//! graph's features, 290). A step a time limit ended (status 7) keeps its wall-clock time on
//! any machine ([`Task::time_limited`]).

use std::collections::HashMap;

use serde::Serialize;

use super::Codec;
use crate::analysis::{self, Steps};
use crate::dataset::{Dataset, Runner};
use crate::dispatch::{BuildStatus, backoff, machine::supports_features};
use crate::error::{Error, Result};

/// Receiving outputs: a fixed cost per step (connection, `nix-store --import` set-up, database
/// writes), assumed 1.5 s.
pub const RECEIVE_SETUP_MS: f64 = 1_500.0;
/// Bytes per millisecond between builders and the queue-runner host: a 1 Gbit/s link at about a
/// third of its line rate for one SSH stream, assumed 40 MB/s.
pub const LINK_BYTES_PER_MS: f64 = 40_000.0;
/// Bytes per millisecond of one upload to the binary cache (S3), assumed 30 MB/s per stream.
pub const UPLOAD_BYTES_PER_MS: f64 = 30_000.0;
/// Under the Rust runner with presigned uploads, the fixed cost of a builder's upload per step:
/// asking the runner for presigned URLs, the narinfo and the listing (assumed 0.8 s, a few round
/// trips to the runner and to S3).
pub const PRESIGNED_SETUP_MS: f64 = 800.0;
/// The queue monitor loads one build at a time: reading its derivation graph from the store,
/// assumed 5 ms a build; substitutions of the build's inputs happen in the same pass, taking
/// their recorded time (docs/hydra.md §3; queue-monitor.cc).
pub const LOAD_MS_PER_BUILD: u64 = 5;

/// A builder of the farm the model simulates: what it can build and how fast (the machines
/// file's line is `nix::BuildMachine`; the sample generator has its own, with dispatcher state).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FarmMachine {
    pub name: String,
    /// Indexes into [`Workload::systems`].
    pub systems: Vec<u16>,
    /// Bit i: feature i of [`Workload::features`]; includes the mandatory ones.
    pub supported: u64,
    pub mandatory: u64,
    pub max_jobs: u32,
    pub speed: f64,
}

impl FarmMachine {
    pub fn supports(&self, system: u16, required: u64) -> bool {
        self.systems.contains(&system)
            && supports_features(self.supported, self.mandatory, required)
    }
}

/// One recorded step attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Task {
    pub build: i32,
    pub stepnr: i32,
    /// When its build was queued, milliseconds from [`Workload::origin_ms`].
    pub release_ms: u64,
    /// Its build in [`Workload::loads`].
    pub load: u32,
    pub system: u16,
    pub required: u64,
    pub jobset: u16,
    pub global_priority: i32,
    pub priority: i32,
    /// Build time at speed factor 1, milliseconds; where `time_limited`, the wall-clock time
    /// itself.
    pub work_ms: f64,
    /// A time limit ended the attempt (`timeout` or `maxSilent`, status 7): it ran until the
    /// limit on whichever machine, so its time does not scale with the machine's speed. Scaled,
    /// a hung test seen on a fast builder would run for several times its limit on a slow one
    /// (on the built-in sample, with the limit kept, the replay's busy time per machine moved
    /// from 6.7 % to 5.2 % off the history's and its held idle from 6.3 % to 4.1 %).
    pub time_limited: bool,
    pub send_ms: f64,
    /// Receiving outputs without compression and upload: setup and transfer.
    pub receive_ms: f64,
    /// Output NAR bytes (estimated where unknown).
    pub out_bytes: f64,
    /// Its outputs were copied back (the attempt succeeded).
    pub success: bool,
    /// The attempt was aborted (the machine failed it): the queue runner disables the machine.
    pub aborted: bool,
    /// What happened, for calibration.
    pub observed: Observed,
}

/// A task as recorded, in milliseconds from the origin.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Observed {
    pub machine: u16,
    pub start_ms: u64,
    pub stop_ms: u64,
    pub overhead_ms: u64,
    /// The Rust runner wrote the row: start is when it took the step, stop the builder's report
    /// of its end, and the overhead (import + upload) lies between them (docs/hydra.md §3).
    pub rust: bool,
}

impl Observed {
    /// The builder slot time the row records: the C++ runner's build time plus its overhead
    /// (waits are not recorded), the Rust runner's whole span.
    pub fn slot_ms(&self) -> f64 {
        let span = self.stop_ms.saturating_sub(self.start_ms) as f64;
        if self.rust {
            span
        } else {
            span + self.overhead_ms as f64
        }
    }
}

/// Everything one simulation run reads.
#[derive(Debug, Clone, Serialize)]
pub struct Workload {
    /// Unix milliseconds of time zero.
    pub origin_ms: i64,
    /// Window length, milliseconds.
    pub span_ms: u64,
    pub systems: Vec<String>,
    pub features: Vec<String>,
    pub machines: Vec<FarmMachine>,
    /// Where the machines come from.
    pub machines_from: String,
    pub tasks: Vec<Task>,
    /// `deps[dep_start[t]..dep_start[t+1]]`: (task it waits for, extra delay in ms).
    pub dep_start: Vec<u32>,
    pub deps: Vec<(u32, u32)>,
    pub deps_from: String,
    /// Scheduling shares per jobset index.
    pub shares: Vec<u32>,
    /// Queue time of every build with a task, ms from the origin, and its jobset id.
    pub builds: HashMap<i32, (u64, i32)>,
    /// Every build of the window in the order the queue monitor loads them: (queued ms, time
    /// to load it in ms including its substitutions).
    pub loads: Vec<(u64, u64)>,
    /// The codec the history's overhead was paid with.
    pub history_codec: Codec,
    pub sizes_from: String,
    pub runner: Runner,
    /// Per machine, the spans (ms from the origin) the Rust runner's machine-free function held
    /// it back for its pressure, as the history's series of `/status` recorded them
    /// (`hasCapacity` false while below maxJobs; `Timeline::capacity_known`). Empty without
    /// such a series: the replay cannot know the builders' pressure, and says so.
    #[serde(skip)]
    pub held_back: Vec<Vec<(u64, u64)>>,
}

impl Workload {
    pub fn deps_of(&self, t: usize) -> &[(u32, u32)] {
        &self.deps[self.dep_start[t] as usize..self.dep_start[t + 1] as usize]
    }

    /// Dependents of every task, in the same compressed layout.
    pub fn dependents(&self) -> (Vec<u32>, Vec<(u32, u32)>) {
        let n = self.tasks.len();
        let mut count = vec![0u32; n + 1];
        for &(d, _) in &self.deps {
            count[d as usize + 1] += 1;
        }
        for i in 0..n {
            count[i + 1] += count[i];
        }
        let mut fill = count.clone();
        let mut out = vec![(0u32, 0u32); self.deps.len()];
        for t in 0..n {
            for &(d, delay) in self.deps_of(t) {
                let slot = &mut fill[d as usize];
                out[*slot as usize] = (t as u32, delay);
                *slot += 1;
            }
        }
        (count, out)
    }

    /// Index of a system type, added if new (scenarios may bring machines for new systems).
    pub fn system_index(&mut self, name: &str) -> u16 {
        index_of(&mut self.systems, name)
    }

    /// Feature mask of `names`, adding unknown features.
    pub fn feature_mask(&mut self, names: &[String]) -> Result<u64> {
        let mut mask = 0u64;
        for n in names {
            let i = index_of(&mut self.features, n);
            if i >= 64 {
                return Err(Error::Model(
                    "the model supports at most 64 distinct system features".into(),
                ));
            }
            mask |= 1 << i;
        }
        Ok(mask)
    }

    /// A machine of the machines file, in this workload's indexes.
    pub fn machine(&mut self, m: &crate::nix::BuildMachine) -> Result<FarmMachine> {
        let systems = m.systems.iter().map(|s| self.system_index(s)).collect();
        let supported =
            self.feature_mask(&m.supported_features)? | self.feature_mask(&m.mandatory_features)?;
        Ok(FarmMachine {
            name: m.uri.clone(),
            systems,
            supported,
            mandatory: self.feature_mask(&m.mandatory_features)?,
            max_jobs: m.max_jobs.max(1),
            speed: if m.speed_factor > 0.0 {
                m.speed_factor
            } else {
                1.0
            },
        })
    }
}

fn index_of(list: &mut Vec<String>, name: &str) -> u16 {
    match list.iter().position(|s| s == name) {
        Some(i) => i as u16,
        None => {
            list.push(name.to_string());
            (list.len() - 1) as u16
        }
    }
}

/// Which dependencies to replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DepsFrom {
    /// Ground truth where the dataset has it (the sample), else the derivation graph where it
    /// has one, else the estimate.
    Best,
    /// Always the estimate, with this gap in seconds.
    Estimate(i64),
}

/// Builds the workload of a dataset. `machines`: the machines file, else machines are inferred
/// from the history (slots = peak concurrency, speed factor 1, no features; said so).
pub fn from_dataset(
    ds: &Dataset,
    machines: Option<&[crate::nix::BuildMachine]>,
    deps_from: DepsFrom,
    history_codec: Codec,
) -> Result<Workload> {
    let steps = Steps::from_frame(&ds.steps)?;
    let (_, usable) = analysis::quality::check(ds, &steps)?;
    let (sizes_from, sizes) = analysis::step_sizes(ds, &steps)?;
    let builds = read_builds(ds)?;

    // The rows the model replays: builds (not substitutions) that ran on a machine.
    let rows: Vec<usize> = (0..steps.len())
        .filter(|&i| {
            usable[i]
                && steps.kind(i) == 0
                && !steps.machine(i).is_empty()
                && steps.start(i).is_some()
                && steps.stop(i).is_some()
                && builds.contains_key(&steps.build(i))
        })
        .collect();
    if rows.is_empty() {
        return Err(Error::NoData(
            "the window holds no build steps that ran on a machine: nothing to simulate".into(),
        ));
    }
    let origin_s = rows
        .iter()
        .map(|&i| {
            builds[&steps.build(i)]
                .queued
                .min(steps.start(i).unwrap_or(i64::MAX))
        })
        .min()
        .unwrap_or(0);
    let end_s = rows
        .iter()
        .filter_map(|&i| steps.stop(i))
        .max()
        .unwrap_or(origin_s);
    let ms = |s: i64| ((s - origin_s).max(0) as u64) * 1000;

    let mut w = Workload {
        origin_ms: origin_s * 1000,
        span_ms: ms(end_s),
        systems: Vec::new(),
        features: Vec::new(),
        machines: Vec::new(),
        machines_from: String::new(),
        tasks: Vec::with_capacity(rows.len()),
        dep_start: Vec::new(),
        deps: Vec::new(),
        deps_from: String::new(),
        shares: Vec::new(),
        builds: HashMap::new(),
        loads: Vec::new(),
        history_codec,
        sizes_from,
        runner: ds.meta.runner,
        held_back: Vec::new(),
    };

    // Machines: the file, plus any machine the history names that the file lacks.
    let mut by_name: HashMap<String, u16> = HashMap::new();
    if let Some(list) = machines {
        for m in list {
            let mm = w.machine(m)?;
            by_name.insert(m.uri.clone(), w.machines.len() as u16);
            by_name
                .entry(m.host().to_string())
                .or_insert(w.machines.len() as u16);
            w.machines.push(mm);
        }
        w.machines_from = "the machines file".into();
    } else {
        w.machines_from = "inferred from the history: maxJobs = peak concurrency observed, \
                           speed factor 1, no features (give --machines for the real ones)"
            .into();
    }
    let peaks = peak_concurrency(&steps, &rows);
    let mut inferred = 0;
    for &i in &rows {
        let name = steps.machine(i);
        let found = machine_named(&by_name, name);
        let m = match found {
            Some(m) => m,
            None => {
                inferred += 1;
                let idx = w.machines.len() as u16;
                w.machines.push(FarmMachine {
                    name: name.to_string(),
                    systems: Vec::new(),
                    supported: 0,
                    mandatory: 0,
                    max_jobs: peaks.get(name).copied().unwrap_or(1).max(1),
                    speed: 1.0,
                });
                by_name.insert(name.to_string(), idx);
                idx
            }
        };
        let sys = w.system_index(steps.system(i));
        let mach = &mut w.machines[m as usize];
        if !mach.systems.contains(&sys) {
            // The history shows it built this system: it supports it, whatever the file says.
            mach.systems.push(sys);
        }
    }
    if inferred > 0 && machines.is_some() {
        w.machines_from
            .push_str("; machines the history names but the file lacks are inferred");
    }
    let max_jobs: Vec<u32> = w.machines.iter().map(|m| m.max_jobs).collect();
    w.held_back = held_back(ds, &by_name, &max_jobs, w.origin_ms);

    // The queue monitor's order: every build of the window by queue time, with the time its
    // substitutions took.
    let mut subst: HashMap<i32, u64> = HashMap::new();
    for i in 0..steps.len() {
        if steps.kind(i) == 1
            && let Some(d) = steps.duration(i)
        {
            *subst.entry(steps.build(i)).or_default() += (d.max(0) as u64) * 1000;
        }
    }
    let mut order: Vec<(u64, i32)> = builds
        .iter()
        .filter(|(_, b)| b.queued >= origin_s && b.queued <= end_s)
        .map(|(&id, b)| (ms(b.queued), id))
        .collect();
    order.sort_unstable();
    let load_of: HashMap<i32, u32> = order
        .iter()
        .enumerate()
        .map(|(k, &(_, id))| (id, k as u32))
        .collect();
    w.loads = order
        .iter()
        .map(|&(q, id)| (q, LOAD_MS_PER_BUILD + subst.get(&id).copied().unwrap_or(0)))
        .collect();

    // Jobsets and their shares.
    let jobset_shares = read_shares(ds)?;
    let mut jobset_index: HashMap<i32, u16> = HashMap::new();

    // Tasks.
    let mut index: HashMap<(i32, i32), u32> = HashMap::with_capacity(rows.len());
    for &i in &rows {
        let b = &builds[&steps.build(i)];
        let js = *jobset_index.entry(b.jobset_id).or_insert_with(|| {
            w.shares.push(
                jobset_shares
                    .get(&b.jobset_id)
                    .copied()
                    .unwrap_or(100)
                    .max(1),
            );
            (w.shares.len() - 1) as u16
        });
        let m = by_name[steps.machine(i)];
        let system = w.system_index(steps.system(i));
        // The derivation's own required features where the graph has them; else every feature
        // of the machine it ran on (see the module's doc).
        let listed = ds.drv_graph.as_ref().and_then(|g| {
            let d = steps.drv_path(i)?;
            g.inputs
                .contains_key(d)
                .then(|| g.features.get(d).map_or("", String::as_str))
        });
        let required = match listed {
            Some("") => 0,
            Some(f) => {
                let names: Vec<String> = f.split(',').map(str::to_string).collect();
                w.feature_mask(&names)?
            }
            None => w.machines[m as usize].supported,
        };
        let mach = &w.machines[m as usize];
        let (start, stop) = (steps.start(i).unwrap_or(0), steps.stop(i).unwrap_or(0));
        let overhead = steps.overhead_ms(i).unwrap_or(0).max(0) as f64;
        let build_ms = ((stop - start).max(0) * 1000) as f64;
        // Under the Rust runner stopTime is the runner's clock at the end: take the overhead out.
        let rust = ds.meta.runner_at(steps.start(i)) == Runner::Rust;
        let build_ms = if rust {
            (build_ms - overhead).max(0.0)
        } else {
            build_ms
        };
        let success = steps.status(i) == Some(BuildStatus::Success);
        let time_limited = steps.status(i) == Some(BuildStatus::TimedOut);
        let out = sizes[i].map(|s| s.max(0) as f64);
        let (send, receive, out_bytes) =
            split_overhead(overhead, success, out, &w.history_codec, rust);
        index.insert((steps.build(i), steps.stepnr(i)), w.tasks.len() as u32);
        w.builds.insert(steps.build(i), (ms(b.queued), b.jobset_id));
        w.tasks.push(Task {
            build: steps.build(i),
            stepnr: steps.stepnr(i),
            release_ms: ms(b.queued),
            load: load_of[&steps.build(i)],
            system,
            required,
            jobset: js,
            global_priority: b.global_priority,
            priority: b.priority,
            work_ms: if time_limited {
                build_ms
            } else {
                build_ms * mach.speed
            },
            time_limited,
            send_ms: send,
            receive_ms: receive,
            out_bytes,
            success,
            aborted: steps.status(i) == Some(BuildStatus::Aborted),
            observed: Observed {
                machine: m,
                start_ms: ms(start),
                stop_ms: ms(stop),
                overhead_ms: overhead as u64,
                rust,
            },
        });
    }

    // Dependencies.
    let mut edges: Vec<(u32, u32, u32)> = Vec::new();
    let truth = match (deps_from, &ds.truth) {
        (DepsFrom::Best, Some(t)) => Some(&t.deps),
        _ => None,
    };
    if let Some(df) = truth {
        let err = |e| Error::frame("truth_deps", e);
        let c = |n: &str| -> Result<Vec<Option<i32>>> {
            Ok(df
                .column(n)
                .map_err(err)?
                .i32()
                .map_err(err)?
                .iter()
                .collect())
        };
        let (b, s, db, dsn) = (c("build")?, c("stepnr")?, c("dep_build")?, c("dep_stepnr")?);
        for k in 0..df.height() {
            if let (Some(b), Some(s), Some(db), Some(dsn)) = (b[k], s[k], db[k], dsn[k])
                && let (Some(&t), Some(&d)) = (index.get(&(b, s)), index.get(&(db, dsn)))
            {
                edges.push((t, d, 0));
            }
        }
        w.deps_from = "the sample's ground truth".into();
    } else if let (DepsFrom::Best, Some(g)) = (deps_from, &ds.drv_graph) {
        for e in analysis::graph::join(g, &ds.meta, &steps, &usable).edges {
            if let (Some(&t), Some(&d)) = (
                index.get(&(e.build, e.stepnr)),
                index.get(&(e.dep_build, e.dep_stepnr)),
            ) {
                edges.push((t, d, 0));
            }
        }
        w.deps_from = format!("the derivation graph ({})", g.source);
    } else {
        let gap = match deps_from {
            DepsFrom::Estimate(g) => g,
            DepsFrom::Best => analysis::deps::DEFAULT_GAP_S,
        };
        for e in analysis::deps::estimate(&steps, &usable, gap) {
            if let (Some(&t), Some(&d)) = (
                index.get(&(e.build, e.stepnr)),
                index.get(&(e.dep_build, e.dep_stepnr)),
            ) {
                edges.push((t, d, 0));
            }
        }
        w.deps_from = format!(
            "estimated (same build, started within {gap} s of a dependency finishing; \
             dependencies recorded under other builds are not seen)"
        );
    }
    // Retries: attempts of one derivation, in order; each waits for the one before, plus the
    // back-off after that many failures.
    let mut attempts: HashMap<&str, Vec<u32>> = HashMap::new();
    for &i in &rows {
        if let Some(d) = steps.drv_path(i) {
            attempts
                .entry(d)
                .or_default()
                .push(index[&(steps.build(i), steps.stepnr(i))]);
        }
    }
    for list in attempts.values_mut() {
        list.sort_by_key(|&t| (w.tasks[t as usize].observed.start_ms, t));
        let mut failures = 0u32;
        for pair in list.windows(2) {
            let prev = &w.tasks[pair[0] as usize];
            if prev.success {
                failures = 0;
                continue;
            }
            failures += 1;
            // History may hold more failed tries of a derivation than one build's tries (it
            // was queued again): the wait never grows past the last one a runner makes.
            let wait = backoff::backoff_ms(failures.min(backoff::MAX_TRIES - 1));
            edges.push((pair[1], pair[0], wait.min(u64::from(u32::MAX)) as u32));
        }
    }
    edges.sort_unstable();
    edges.dedup_by_key(|e| (e.0, e.1));
    // A dependency never starts after its dependent; drop any edge that would (clock skew).
    // Ties of the one-second timestamps are broken by task index, which keeps the graph
    // acyclic whatever the estimate says.
    edges.retain(|&(t, d, _)| {
        let key = |i: u32| (w.tasks[i as usize].observed.start_ms, i);
        key(d) < key(t)
    });
    w.dep_start = vec![0; w.tasks.len() + 1];
    for &(t, _, _) in &edges {
        w.dep_start[t as usize + 1] += 1;
    }
    for i in 0..w.tasks.len() {
        w.dep_start[i + 1] += w.dep_start[i];
    }
    w.deps = edges.iter().map(|&(_, d, delay)| (d, delay)).collect();
    Ok(w)
}

/// The machine `name` stands for: the same name, else the same host (the Rust runner names
/// machines by hostname, a machines file by URI).
fn machine_named(by_name: &HashMap<String, u16>, name: &str) -> Option<u16> {
    by_name
        .get(name)
        .or_else(|| by_name.get(crate::nix::machines::host_of(name)))
        .copied()
}

/// The pressure holds of the history's series, per machine: each sample that marks a machine
/// held back stands for its interval (`step_s`), merged into spans.
fn held_back(
    ds: &Dataset,
    by_name: &HashMap<String, u16>,
    max_jobs: &[u32],
    origin_ms: i64,
) -> Vec<Vec<(u64, u64)>> {
    let mut out = vec![Vec::new(); max_jobs.len()];
    let Some(tl) = ds.timeline.as_ref().filter(|t| t.capacity_known) else {
        return out;
    };
    let step = (tl.step_s.max(1) * 1000) as u64;
    for (name, series) in &tl.disabled {
        let Some(m) = machine_named(by_name, name) else {
            continue;
        };
        // A machine that was full reports no capacity whatever its pressure: only a hold
        // below maxJobs is the free function's.
        let jobs = tl.current_jobs.get(name);
        let spans: &mut Vec<(u64, u64)> = &mut out[usize::from(m)];
        for (i, (&t, &v)) in tl.times.iter().zip(series).enumerate() {
            let full = jobs
                .and_then(|j| j.get(i))
                .is_some_and(|&j| j >= f64::from(max_jobs[usize::from(m)]));
            if v <= 0.0 || full {
                continue;
            }
            let from = (t * 1000 - origin_ms).max(0) as u64;
            match spans.last_mut() {
                Some(last) if last.1 == from => last.1 = from + step,
                _ => spans.push((from, from + step)),
            }
        }
    }
    out
}

/// Splits a step's recorded overhead into (send, receive without compression and upload,
/// output bytes): the receive part is what the output size implies, capped at the overhead.
/// Under the C++ runner receiving is a set-up, the copy over the link, compression and upload;
/// under the Rust runner (`rust`) the builder's upload: a presigned set-up, compression and
/// upload, with no copy back — its "receive" is the set-up alone, and sending is the import.
fn split_overhead(
    overhead: f64,
    success: bool,
    out: Option<f64>,
    codec: &Codec,
    rust: bool,
) -> (f64, f64, f64) {
    if !success {
        return (overhead, 0.0, out.unwrap_or(0.0));
    }
    let (setup, link) = if rust {
        (PRESIGNED_SETUP_MS, 0.0)
    } else {
        (RECEIVE_SETUP_MS, 1.0 / LINK_BYTES_PER_MS)
    };
    let per_byte = link + codec.compress_ms(1.0) + codec.ratio / UPLOAD_BYTES_PER_MS;
    let bytes = match out {
        Some(b) => b,
        // Unknown size: all of the overhead beyond the setup is taken as output-driven (an
        // upper bound on the output's share, said in the method).
        None => ((overhead - setup) / per_byte).max(0.0),
    };
    let full = setup + bytes * per_byte;
    if full <= overhead || full <= 0.0 {
        (overhead - full, setup + bytes * link, bytes)
    } else {
        // The recorded overhead is smaller than the estimate: scale the whole estimate down so
        // the parts add up to what was recorded, and keep the bytes so codec changes scale.
        let k = overhead / full;
        let bytes = bytes * k;
        (0.0, (setup + bytes * link) * k, bytes)
    }
}

struct BuildRow {
    queued: i64,
    jobset_id: i32,
    priority: i32,
    global_priority: i32,
}

fn read_builds(ds: &Dataset) -> Result<HashMap<i32, BuildRow>> {
    let df = &ds.builds;
    let err = |e| Error::frame("builds", e);
    let col = |n: &str| df.column(n).map_err(err);
    let ids = col("id")?.i32().map_err(err)?;
    let ts = col("timestamp")?.i64().map_err(err)?;
    let js = col("jobset_id")?.i32().map_err(err)?;
    let prio = col("priority")?.i32().map_err(err)?;
    let gprio = col("global_priority")?.i32().map_err(err)?;
    let mut out = HashMap::with_capacity(df.height());
    for i in 0..df.height() {
        if let (Some(id), Some(queued)) = (ids.get(i), ts.get(i)) {
            out.insert(
                id,
                BuildRow {
                    queued,
                    jobset_id: js.get(i).unwrap_or(0),
                    priority: prio.get(i).unwrap_or(0),
                    global_priority: gprio.get(i).unwrap_or(0),
                },
            );
        }
    }
    Ok(out)
}

fn read_shares(ds: &Dataset) -> Result<HashMap<i32, u32>> {
    let df = &ds.jobsets;
    let err = |e| Error::frame("jobsets", e);
    let ids = df.column("id").map_err(err)?.i32().map_err(err)?;
    let shares = df
        .column("scheduling_shares")
        .map_err(err)?
        .i32()
        .map_err(err)?;
    Ok((0..df.height())
        .filter_map(|i| Some((ids.get(i)?, shares.get(i)?.max(1) as u32)))
        .collect())
}

/// The most steps each machine ran at once, from build start to build stop.
fn peak_concurrency(steps: &Steps, rows: &[usize]) -> HashMap<String, u32> {
    let mut ev: HashMap<&str, Vec<(i64, i32)>> = HashMap::new();
    for &i in rows {
        if let (Some(a), Some(b)) = (steps.start(i), steps.stop(i)) {
            let e = ev.entry(steps.machine(i)).or_default();
            e.push((a, 1));
            e.push((b.max(a + 1), -1));
        }
    }
    ev.into_iter()
        .map(|(m, mut e)| {
            e.sort_unstable();
            let (mut cur, mut peak) = (0i32, 0i32);
            for (_, d) in e {
                cur += d;
                peak = peak.max(cur);
            }
            (m.to_string(), peak.max(1) as u32)
        })
        .collect()
}
