//! What the sample's runner knew at every instant, swept once over the finished simulation:
//!
//! - the **truth of dispatch loss** per machine and hour, for the tests and the report to hold
//!   the ledger's other sources against: slot time that an undelayed dispatcher
//!   ([`crate::dispatch::Ideal`]) would have used, with waiting steps counted two ways — from
//!   when they were *ready* (a queued build needed them and their dependencies' outputs were
//!   valid) and from when the runner had them on its runnable list. The first is the whole loss;
//!   the second its dispatcher part; the difference is the queue monitor's (builds queued but not
//!   yet loaded);
//! - the **series its runner would have exported** every [`SERIES_STEP_MS`]: runnable and running
//!   steps per machine type, jobs per machine, and the stage counters, sampled at the instant as
//!   a scrape would.
//!
//! Free slots: a machine's `maxJobs` less the slots its dispatched steps hold (C++: from dispatch
//! until output copying starts; Rust: until the upload ends, docs/hydra.md §3), none while it is
//! disabled after a failure or, under the Rust runner's dynamic free functions, held back for its
//! pressure. The slot time so held back while a step it could build was ready is the truth of
//! the **throttled** bucket, kept apart from dispatch loss.

use std::collections::BTreeMap;

use polars::prelude::*;

use super::params::*;
use super::sim::{Phase, Sim};
use crate::dispatch::Ideal;
use crate::error::{Error, Result};
use crate::status::timeline::{Stage, Timeline};

/// The sample's series interval: the 30 s that `status --watch` and hydra.nixos.org's
/// Prometheus scrape job use by default.
pub(super) const SERIES_STEP_MS: u64 = 30_000;

/// The truth table's time resolution: an hour, so that any window of whole hours can be summed.
const HOUR_MS: u64 = 3_600_000;

/// One change of state at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum What {
    /// A step became ready (`+1`) or was dispatched (`-1`), in class `i`.
    Ready,
    /// On the runner's runnable list, class `i`.
    Runnable,
    /// Dispatched and not yet finished, class `i`.
    Running,
    /// Slots held on machine `i`.
    Busy,
    /// Machine `i` disabled.
    Disabled,
    /// Slots of machine `i` held by a step waiting for the send lock or a local slot.
    Held,
    /// Machine `i` held back by its free function for its pressure, as the runner saw it.
    Throttled,
    /// Steps in stage `i` (index into [`Stage::ALL`]).
    Stage,
}

#[derive(Debug, Clone, Copy)]
struct Change {
    t: u64,
    what: What,
    i: u16,
    delta: i32,
}

/// What the sweep produced.
pub(super) struct Losses {
    /// Truth per machine and hour.
    pub truth: DataFrame,
    /// Throttled slot time per machine and hour (`machine`, `hour`, `throttled_ms`): the slot
    /// time a machine's free function held back while a step it could build was ready.
    pub throttled: DataFrame,
    /// The series the runner would have exported.
    pub timeline: Timeline,
}

/// The machine type a step of `sys` requiring `feat` belongs to, as the C++ runner names it
/// (`State::createStep`: the platform, then `:` and the sorted required features if any).
fn class_name(sys: u8, feat: u8) -> String {
    let features = feature_names(feat);
    let system = SYSTEMS[sys as usize];
    if features.is_empty() {
        system.to_string()
    } else {
        format!("{system}:{}", features.join(","))
    }
}

fn hours_of_week() -> usize {
    WEEK_MS.div_ceil(HOUR_MS) as usize
}

pub(super) fn sweep(sim: &Sim) -> Result<Losses> {
    // The classes the runner created, with their names and capable machines.
    let mut classes: Vec<(usize, String, Vec<usize>)> = Vec::new();
    for (sys, row) in sim.class_of.iter().enumerate() {
        for (feat, &c) in row.iter().enumerate() {
            if c != u8::MAX {
                let capable = (0..sim.machines.len())
                    .filter(|&m| sim.machines[m].supports(sys as u8, feat as u8))
                    .collect();
                classes.push((usize::from(c), class_name(sys as u8, feat as u8), capable));
            }
        }
    }
    classes.sort_by_key(|c| c.0);
    let nc = classes.iter().map(|c| c.0 + 1).max().unwrap_or(0);
    let mut capable = vec![Vec::new(); nc];
    let mut names = vec![String::new(); nc];
    for (c, name, cap) in classes {
        capable[c] = cap;
        names[c] = name;
    }
    let nm = sim.machines.len();
    let max_jobs: Vec<f64> = sim.machines.iter().map(|m| f64::from(m.max_jobs)).collect();
    let ideal = Ideal::new(capable, &max_jobs);

    let rust = sim.form.is_rust();
    let mut changes: Vec<Change> = Vec::with_capacity(sim.rows.len() * 8);
    let mut push = |a: u64, b: u64, what: What, i: usize| {
        let b = b.min(WEEK_MS);
        if b > a {
            let i = i as u16;
            changes.push(Change {
                t: a,
                what,
                i,
                delta: 1,
            });
            changes.push(Change {
                t: b,
                what,
                i,
                delta: -1,
            });
        }
    };
    for row in &sim.rows {
        if !row.dispatched {
            continue;
        }
        let node = &sim.nodes[row.node as usize];
        let c = usize::from(node.class);
        let m = usize::from(row.machine);
        push(row.ready_ms, row.dispatch_ms, What::Ready, c);
        push(row.runnable_ms, row.dispatch_ms, What::Runnable, c);
        let running_end = row.status.map_or(WEEK_MS, |_| {
            row.recv_start + if row.cancelled { 0 } else { row.recv_ms }
        });
        push(row.dispatch_ms, running_end, What::Running, c);
        for (stage, a, b) in phases(row) {
            push(a, b, What::Stage, stage as usize);
            if stage != Stage::CopyingFrom || rust {
                // C++: every phase before output copying holds the builder slot; Rust: every
                // phase, the upload included.
                push(a, b, What::Busy, m);
            }
            if matches!(stage, Stage::WaitingSendLock | Stage::WaitingDownloadSlot) {
                push(a, b, What::Held, m);
            }
        }
    }
    // Steps still waiting at the end of the week.
    for node in &sim.nodes {
        if node.state == super::sim::NState::Runnable {
            let c = usize::from(node.class);
            push(node.runnable_at, WEEK_MS, What::Ready, c);
            push(node.runnable_at, WEEK_MS, What::Runnable, c);
        }
    }
    for &(m, from, until) in &sim.disabled {
        push(from, until, What::Disabled, usize::from(m));
    }
    for &(m, from, until) in &sim.throttled {
        push(from, until, What::Throttled, usize::from(m));
    }
    changes.sort_unstable_by_key(|c| c.t);

    let mut ready = vec![0.0; nc];
    let mut runnable = vec![0.0; nc];
    let mut running = vec![0.0; nc];
    let mut busy = vec![0.0; nm];
    let mut disabled = vec![0i32; nm];
    let mut throttled = vec![0i32; nm];
    let mut throttled_ms = vec![vec![0.0; hours_of_week()]; nm];
    let mut held = vec![0.0; nm];
    let mut stages = [0.0; 5];
    let hours = hours_of_week();
    let mut total_ms = vec![vec![0.0; hours]; nm];
    let mut dispatcher_ms = vec![vec![0.0; hours]; nm];
    let mut held_ms = vec![vec![0.0; hours]; nm];
    let points = WEEK_MS.div_ceil(SERIES_STEP_MS) as usize;
    let mut s_runnable = (0..nc)
        .map(|_| Vec::with_capacity(points))
        .collect::<Vec<Vec<f64>>>();
    let mut s_running = (0..nc)
        .map(|_| Vec::with_capacity(points))
        .collect::<Vec<Vec<f64>>>();
    let mut s_jobs = (0..nm)
        .map(|_| Vec::with_capacity(points))
        .collect::<Vec<Vec<f64>>>();
    let mut s_disabled = (0..nm)
        .map(|_| Vec::with_capacity(points))
        .collect::<Vec<Vec<f64>>>();
    let mut s_stages: Vec<Vec<f64>> = (0..5)
        .map(|_| Vec::with_capacity(points))
        .collect::<Vec<Vec<f64>>>();
    let (mut free, mut scratch, mut claimed) = (vec![0.0; nm], vec![0.0; nm], vec![0.0; nm]);

    let mut k = 0; // next change
    let mut t = 0u64;
    let mut next_sample = 0u64;
    while t < WEEK_MS {
        // Apply every change at `t`.
        while k < changes.len() && changes[k].t <= t {
            let ch = changes[k];
            let d = f64::from(ch.delta);
            let i = usize::from(ch.i);
            match ch.what {
                What::Ready => ready[i] += d,
                What::Runnable => runnable[i] += d,
                What::Running => running[i] += d,
                What::Busy => busy[i] += d,
                What::Disabled => disabled[i] += ch.delta,
                What::Held => held[i] += d,
                What::Throttled => throttled[i] += ch.delta,
                What::Stage => stages[i] += d,
            }
            k += 1;
        }
        if t == next_sample {
            for c in 0..nc {
                s_runnable[c].push(runnable[c]);
                s_running[c].push(running[c]);
            }
            for m in 0..nm {
                s_jobs[m].push(busy[m]);
                // Under the Rust runner the series is `/status`'s, whose `hasCapacity` says
                // when the free function holds a machine back (`Timeline::capacity_known`).
                s_disabled[m].push(f64::from(u8::from(disabled[m] > 0 || throttled[m] > 0)));
            }
            for (i, s) in s_stages.iter_mut().enumerate() {
                s.push(stages[i]);
            }
            next_sample += SERIES_STEP_MS;
        }
        let next = changes
            .get(k)
            .map_or(WEEK_MS, |c| c.t)
            .min(next_sample)
            .min(WEEK_MS);
        let dt = (next - t) as f64;
        let hour = (t / HOUR_MS) as usize;
        let mut any_throttled = false;
        for m in 0..nm {
            held_ms[m][hour] += held[m] * dt;
            free[m] = if disabled[m] > 0 || throttled[m] > 0 {
                0.0
            } else {
                (max_jobs[m] - busy[m]).max(0.0)
            };
            any_throttled |= throttled[m] > 0 && disabled[m] == 0;
        }
        if ready.iter().any(|&w| w > 0.0) {
            scratch.copy_from_slice(&free);
            claimed.fill(0.0);
            ideal.claim(&ready, &mut scratch, &mut claimed);
            for m in 0..nm {
                total_ms[m][hour] += claimed[m] * dt;
            }
            if any_throttled {
                // What the held-back machines would have taken with their free slots given.
                for m in 0..nm {
                    scratch[m] = if disabled[m] > 0 {
                        0.0
                    } else {
                        (max_jobs[m] - busy[m]).max(0.0)
                    };
                }
                claimed.fill(0.0);
                ideal.claim(&ready, &mut scratch, &mut claimed);
                for m in 0..nm {
                    if throttled[m] > 0 && disabled[m] == 0 {
                        throttled_ms[m][hour] += claimed[m] * dt;
                    }
                }
            }
        }
        if runnable.iter().any(|&w| w > 0.0) {
            scratch.copy_from_slice(&free);
            claimed.fill(0.0);
            ideal.claim(&runnable, &mut scratch, &mut claimed);
            for m in 0..nm {
                dispatcher_ms[m][hour] += claimed[m] * dt;
            }
        }
        t = next;
    }

    // The truth table: per machine and hour, in the order of its key (hour, machine).
    let (mut machine, mut hour_start) = (vec![], vec![]);
    let (mut loss, mut disp, mut hold, mut thr) = (vec![], vec![], vec![], vec![]);
    let mut by_uri: Vec<usize> = (0..nm).collect();
    by_uri.sort_by(|&a, &b| sim.machines[a].uri.cmp(&sim.machines[b].uri));
    for h in 0..hours {
        for &m in &by_uri {
            machine.push(sim.machines[m].uri.clone());
            hour_start.push(sim.week_start_s + (h as u64 * HOUR_MS / 1000) as i64);
            loss.push(total_ms[m][h].round() as i64);
            disp.push(dispatcher_ms[m][h].round() as i64);
            hold.push(held_ms[m][h].round() as i64);
            thr.push(throttled_ms[m][h].round() as i64);
        }
    }
    let height = machine.len();
    let throttled = DataFrame::new(
        height,
        vec![
            Column::new("machine".into(), machine.clone()),
            Column::new("hour".into(), hour_start.clone()),
            Column::new("throttled_ms".into(), thr),
        ],
    )
    .map_err(|e| Error::frame("truth_throttled", e))?;
    let truth = DataFrame::new(
        height,
        vec![
            Column::new("machine".into(), machine),
            Column::new("hour".into(), hour_start),
            Column::new("dispatch_loss_ms".into(), loss),
            Column::new("dispatcher_ms".into(), disp),
            Column::new("held_ms".into(), hold),
        ],
    )
    .map_err(|e| Error::frame("truth_losses", e))?;

    let mut timeline = Timeline {
        source: if rust {
            "the sample's runner (its /status as `status --watch` records it, every 30 s)".into()
        } else {
            "the sample's runner (what it would have exported, sampled every 30 s)".into()
        },
        capacity_known: rust,
        naming: "sample".into(),
        step_s: (SERIES_STEP_MS / 1000) as i64,
        times: (0..s_jobs.first().map_or(0, Vec::len))
            .map(|i| sim.week_start_s + (i as u64 * SERIES_STEP_MS / 1000) as i64)
            .collect(),
        ..Timeline::default()
    };
    for (c, name) in names.iter().enumerate() {
        if !name.is_empty() {
            timeline
                .runnable
                .insert(name.clone(), std::mem::take(&mut s_runnable[c]));
            timeline
                .running
                .insert(name.clone(), std::mem::take(&mut s_running[c]));
        }
    }
    for (m, (jobs, disabled)) in s_jobs.into_iter().zip(s_disabled).enumerate() {
        let uri = &sim.machines[m].uri;
        timeline.current_jobs.insert(uri.clone(), jobs);
        timeline.disabled.insert(uri.clone(), disabled);
    }
    let stages: BTreeMap<Stage, Vec<f64>> = Stage::ALL.into_iter().zip(s_stages).collect();
    timeline.stages = stages;
    Ok(Losses {
        truth,
        throttled,
        timeline,
    })
}

/// The stages a dispatched row went through, with their spans (ms from the week start); a row
/// still running at the end of the week is in its current phase until then.
fn phases(row: &super::sim::Row) -> Vec<(Stage, u64, u64)> {
    let running = row.status.is_none();
    let reached = |p: Phase| !running || row.phase >= p;
    let end_of = |p: Phase, end: u64| {
        if running && row.phase == p {
            WEEK_MS
        } else {
            end
        }
    };
    let mut out = Vec::with_capacity(5);
    let send_start = if reached(Phase::Sending) {
        row.send_start
    } else {
        WEEK_MS
    };
    out.push((
        Stage::WaitingSendLock,
        row.dispatch_ms,
        end_of(Phase::WaitLock, send_start),
    ));
    if !reached(Phase::Sending) {
        return out;
    }
    out.push((
        Stage::CopyingTo,
        row.send_start,
        end_of(Phase::Sending, row.send_start + row.send_ms),
    ));
    if !reached(Phase::Building) {
        return out;
    }
    out.push((
        Stage::Building,
        row.build_start,
        end_of(Phase::Building, row.build_stop),
    ));
    if !reached(Phase::WaitLocal) {
        return out;
    }
    out.push((
        Stage::WaitingDownloadSlot,
        row.build_stop,
        end_of(Phase::WaitLocal, row.recv_start),
    ));
    if !reached(Phase::Receiving) {
        return out;
    }
    out.push((
        Stage::CopyingFrom,
        row.recv_start,
        end_of(Phase::Receiving, row.recv_start + row.recv_ms),
    ));
    out
}
