//! Turns the finished simulation into the dataset's frames and the machines file.

use std::fmt::Write;

use polars::prelude::DataFrame;

use super::params::*;
use super::sim::{Form, NO_MACHINE, NONE, Phase, Sim};
use super::workload::output_names;
use crate::Result;
use crate::dataset::{
    BUILDS, EVALS, JOBSETS as JOBSETS_T, STEP_OUTPUTS, STEPS, TRUTH_DEPS, TRUTH_STEPS, TableBuilder,
};
use crate::dispatch::BuildStatus;

/// Rows per finished batch of a frame.
const BATCH: usize = 1 << 16;

/// Nix's base-32 alphabet (no e, o, t, u).
const NIX32: &[u8; 32] = b"0123456789abcdfghijklmnpqrsvwxyz";

fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A store path's 32-character hash part, derived from a seed.
fn push_hash(buf: &mut String, seed: u64) {
    let mut state = seed;
    let mut bits = 0u64;
    let mut left = 0;
    for _ in 0..32 {
        if left < 5 {
            bits = splitmix(&mut state);
            left = 64;
        }
        buf.push(NIX32[(bits & 31) as usize] as char);
        bits >>= 5;
        left -= 5;
    }
}

/// Unix seconds of `ms` after the start of the simulated week.
fn abs_s(sim: &Sim, ms: u64) -> i64 {
    sim.week_start_s + (ms / 1000) as i64
}

fn build_id(sim: &Sim, b: u32) -> i32 {
    sim.ids.build + b as i32
}

pub(super) struct Frames {
    pub steps: DataFrame,
    pub builds: DataFrame,
    pub step_outputs: DataFrame,
    pub jobsets: DataFrame,
    pub evals: DataFrame,
    pub truth_deps: DataFrame,
    pub truth_steps: DataFrame,
}

pub(super) fn frames(sim: &Sim) -> Result<Frames> {
    let mut order: Vec<u32> = (0..sim.rows.len() as u32).collect();
    order.sort_unstable_by_key(|&r| {
        let row = &sim.rows[r as usize];
        (row.build, row.stepnr)
    });
    Ok(Frames {
        steps: steps(sim, &order)?,
        builds: builds(sim)?,
        step_outputs: step_outputs(sim, &order)?,
        jobsets: jobsets()?,
        evals: evals(sim)?,
        truth_deps: truth_deps(sim, &order)?,
        truth_steps: truth_steps(sim, &order)?,
    })
}

fn drv_path(buf: &mut String, sim: &Sim, n: u32) {
    let node = &sim.nodes[n as usize];
    buf.clear();
    buf.push_str("/nix/store/");
    push_hash(buf, node.hash);
    buf.push('-');
    buf.push_str(&sim.names[node.name as usize]);
    buf.push_str(".drv");
}

fn steps(sim: &Sim, order: &[u32]) -> Result<DataFrame> {
    let mut t = TableBuilder::new(&STEPS, BATCH);
    let mut buf = String::new();
    for &r in order {
        let row = &sim.rows[r as usize];
        let node = &sim.nodes[row.node as usize];
        t.i32(0, Some(build_id(sim, row.build)));
        t.i32(1, Some(row.stepnr));
        t.i32(2, Some(i32::from(row.substitution)));
        drv_path(&mut buf, sim, row.node);
        t.str(3, Some(&buf));
        let busy = if row.status.is_none() {
            row.phase.busy()
        } else {
            0
        };
        // A runner restarting at the week's end clears the steps it left busy, as both runners
        // do when they start (docs/hydra.md §3): aborted, not busy, and the stop time each
        // writes, none (C++ `clearBusy(conn, 0)`) or 0 (Rust `clear_busy(0)`).
        let stop = if busy != 0 && sim.restart_at_end {
            match sim.form {
                Form::Cpp => None,
                Form::Rust { .. } => Some(0),
            }
        } else {
            row.stop_ms.map(|ms| abs_s(sim, ms))
        };
        let (busy, status) = if busy != 0 && sim.restart_at_end {
            (0, Some(BuildStatus::Aborted))
        } else {
            (busy, row.status)
        };
        t.i32(4, Some(busy));
        t.i32(5, status.map(BuildStatus::code));
        t.i64(6, row.start_ms.map(|ms| abs_s(sim, ms)));
        t.i64(7, stop);
        let machine = if row.machine == NO_MACHINE {
            ""
        } else {
            sim.machines[row.machine as usize].uri.as_str()
        };
        t.str(8, Some(machine));
        t.str(9, Some(SYSTEMS[node.sys as usize]));
        t.i32(
            10,
            (row.propagated_from != NONE).then(|| build_id(sim, row.propagated_from)),
        );
        t.i64(11, row.overhead_ms.map(|v| v as i64));
        t.i32(12, row.times_built);
        t.bool(13, row.nondet);
        t.end_row();
    }
    t.finish()
}

fn builds(sim: &Sim) -> Result<DataFrame> {
    let mut t = TableBuilder::new(&BUILDS, BATCH);
    let mut buf = String::new();
    for (b, build) in sim.builds.iter().enumerate() {
        let def = &JOBSETS[build.jobset as usize];
        let top = &sim.nodes[build.top as usize];
        t.i32(0, Some(build_id(sim, b as u32)));
        t.i32(1, Some(i32::from(build.jobset) + 1));
        t.str(2, Some(def.project));
        t.str(3, Some(def.name));
        t.str(4, Some(&sim.jobs[build.job as usize]));
        t.str(5, Some(SYSTEMS[top.sys as usize]));
        t.str(6, Some(&sim.names[top.name as usize]));
        t.i64(7, Some(abs_s(sim, build.queued_ms)));
        let done = build.finished;
        t.i64(8, build.start_ms.filter(|_| done).map(|ms| abs_s(sim, ms)));
        t.i64(9, build.stop_ms.filter(|_| done).map(|ms| abs_s(sim, ms)));
        t.bool(10, Some(done));
        t.i32(11, done.then_some(build.status.code()));
        t.bool(12, done.then_some(build.is_cached));
        t.i32(13, Some(build.prio));
        t.i32(14, Some(build.gprio));
        t.i64(15, build.size.filter(|_| done).map(|v| v as i64));
        t.i64(16, build.closure.filter(|_| done).map(|v| v as i64));
        drv_path(&mut buf, sim, build.top);
        t.str(17, Some(&buf));
        t.end_row();
    }
    t.finish()
}

fn step_outputs(sim: &Sim, order: &[u32]) -> Result<DataFrame> {
    let mut t = TableBuilder::new(&STEP_OUTPUTS, BATCH);
    let mut buf = String::new();
    for &r in order {
        let row = &sim.rows[r as usize];
        let node = &sim.nodes[row.node as usize];
        let name = &sim.names[node.name as usize];
        for (i, out) in output_names(node.outputs).enumerate() {
            buf.clear();
            buf.push_str("/nix/store/");
            push_hash(
                &mut buf,
                node.hash ^ (0x5851_F42D_4C95_7F2D_u64.wrapping_mul(i as u64 + 1)),
            );
            buf.push('-');
            buf.push_str(name);
            if out != "out" {
                buf.push('-');
                buf.push_str(out);
            }
            t.i32(0, Some(build_id(sim, row.build)));
            t.i32(1, Some(row.stepnr));
            t.str(2, Some(out));
            t.str(3, Some(&buf));
            t.end_row();
        }
    }
    t.finish()
}

fn jobsets() -> Result<DataFrame> {
    let mut t = TableBuilder::new(&JOBSETS_T, BATCH);
    for (j, def) in JOBSETS.iter().enumerate() {
        t.i32(0, Some(j as i32 + 1));
        t.str(1, Some(def.project));
        t.str(2, Some(def.name));
        t.i32(3, Some(def.enabled));
        t.i32(4, Some(def.shares));
        t.i32(5, Some(def.check_interval_s));
        t.end_row();
    }
    t.finish()
}

fn evals(sim: &Sim) -> Result<DataFrame> {
    let mut t = TableBuilder::new(&EVALS, BATCH);
    for (e, ev) in sim.evals.iter().enumerate() {
        let range = ev.builds_start as usize..(ev.builds_start + ev.builds_len) as usize;
        let new = ev.builds_len as f64;
        let members = ev.members.round().max(new);
        let all_done = sim.builds[range.clone()].iter().all(|b| b.finished);
        let succeeded = sim.builds[range]
            .iter()
            .filter(|b| b.finished && b.status == BuildStatus::Success)
            .count();
        // nrSucceeded is filled in once every build of the evaluation has finished.
        let nr_succeeded = all_done
            .then(|| ((members - new) * UNCHANGED_SUCCESS).round() as i32 + succeeded as i32);
        t.i32(0, Some(sim.ids.eval + e as i32));
        t.i32(1, Some(i32::from(ev.jobset) + 1));
        t.i64(2, Some(abs_s(sim, ev.at_ms)));
        t.i64(3, Some(ev.checkout_s));
        t.i64(4, Some(ev.eval_s));
        t.bool(5, Some(ev.builds_len > 0));
        t.i32(6, Some(members as i32));
        t.i32(7, nr_succeeded);
        t.end_row();
    }
    t.finish()
}

fn truth_deps(sim: &Sim, order: &[u32]) -> Result<DataFrame> {
    let mut t = TableBuilder::new(&TRUTH_DEPS, BATCH);
    let mut edges: Vec<(i32, i32)> = Vec::new();
    for &r in order {
        let row = &sim.rows[r as usize];
        if !row.dispatched {
            continue;
        }
        edges.clear();
        for i in sim.node_deps(row.node) {
            let d = &sim.nodes[sim.deps[i] as usize];
            if d.last_row != NONE {
                let dr = &sim.rows[d.last_row as usize];
                edges.push((build_id(sim, dr.build), dr.stepnr));
            }
        }
        edges.sort_unstable();
        for &(db, ds) in &edges {
            t.i32(0, Some(build_id(sim, row.build)));
            t.i32(1, Some(row.stepnr));
            t.i32(2, Some(db));
            t.i32(3, Some(ds));
            t.end_row();
        }
    }
    t.finish()
}

fn truth_steps(sim: &Sim, order: &[u32]) -> Result<DataFrame> {
    let mut t = TableBuilder::new(&TRUTH_STEPS, BATCH);
    let base_ms = sim.week_start_s * 1000;
    for &r in order {
        let row = &sim.rows[r as usize];
        let node = &sim.nodes[row.node as usize];
        t.i32(0, Some(build_id(sim, row.build)));
        t.i32(1, Some(row.stepnr));
        t.i64(2, Some(node.out_size as i64));
        t.i64(
            3,
            Some(if row.substitution {
                0
            } else {
                node.in_size as i64
            }),
        );
        let on_machine = row.dispatched;
        let running = row.status.is_none();
        // Phases the step has completed; a step still running at the end of the week has
        // `None` for the phase it is in and those after it.
        let past = |p: Phase| on_machine && (!running || row.phase > p);
        let v = |ok: bool, x: u64| ok.then_some(x as i64);
        t.i64(4, on_machine.then_some(base_ms + row.dispatch_ms as i64));
        t.i64(
            5,
            v(
                past(Phase::WaitLock),
                row.send_start.saturating_sub(row.dispatch_ms),
            ),
        );
        t.i64(6, v(past(Phase::Sending), row.send_ms));
        t.i64(
            7,
            v(
                past(Phase::Building),
                row.build_stop.saturating_sub(row.build_start),
            ),
        );
        t.i64(
            8,
            v(
                past(Phase::WaitLocal),
                row.recv_start.saturating_sub(row.build_stop),
            ),
        );
        t.i64(9, v(past(Phase::Receiving), row.recv_ms));
        t.end_row();
    }
    t.finish()
}

/// The farm as an `/etc/nix/machines` file.
pub(super) fn machines_file(sim: &Sim) -> String {
    let mut s = String::from(if sim.form.is_rust() {
        "# hydra-bottleneck built-in sample: the builders the history was simulated on. The Rust\n\
         # runner has no machines file (builders announce themselves); this is what they announced,\n\
         # named by hostname as the runner names them, in the machines file's columns.\n\
         # host systems sshKey maxJobs speedFactor supportedFeatures mandatoryFeatures publicHostKey\n"
    } else {
        "# hydra-bottleneck built-in sample (nixos-week): the farm the history was simulated on.\n\
         # URI systems sshKey maxJobs speedFactor supportedFeatures mandatoryFeatures publicHostKey\n"
    });
    let features = |mask: u8| {
        let names = feature_names(mask);
        if names.is_empty() {
            "-".to_string()
        } else {
            names.join(",")
        }
    };
    for m in &sim.machines {
        let _ = writeln!(
            s,
            "{} {} {} {} {} {} {} -",
            m.uri,
            (0..SYSTEMS.len() as u8)
                .filter(|&i| m.systems & sys_bit(i) != 0)
                .map(|i| MACHINE_SYSTEMS[usize::from(i)])
                .collect::<Vec<_>>()
                .join(","),
            if sim.form.is_rust() { "-" } else { SSH_KEY },
            m.max_jobs,
            m.speed,
            features(m.supported),
            features(m.mandatory),
        );
    }
    s
}

/// The derivation graph of the steps, as their `.drv` files would give it: for the derivation
/// of every step row, the derivations it depends on (`inputDrvs`), whether or not they were
/// built in the week; source "the sample's derivations".
pub(super) fn drv_graph(sim: &Sim) -> crate::nix::graph::DrvGraph {
    let mut g = crate::nix::graph::DrvGraph {
        source: "the sample's derivations".into(),
        ..Default::default()
    };
    let mut seen = vec![false; sim.nodes.len()];
    let mut buf = String::new();
    for row in &sim.rows {
        let n = row.node;
        if std::mem::replace(&mut seen[n as usize], true) {
            continue;
        }
        let mut inputs: Vec<String> = sim
            .node_deps(n)
            .map(|i| {
                drv_path(&mut buf, sim, sim.deps[i]);
                buf.clone()
            })
            .collect();
        // As a `.drv` lists them: sorted, each once.
        inputs.sort_unstable();
        inputs.dedup();
        drv_path(&mut buf, sim, n);
        let feat = sim.nodes[n as usize].feat;
        let features = feature_names(feat);
        if !features.is_empty() {
            g.features.insert(buf.clone(), features.join(","));
        }
        g.inputs.insert(buf.clone(), inputs);
    }
    g.asked = g.inputs.len();
    g.found = g.inputs.len();
    g
}
