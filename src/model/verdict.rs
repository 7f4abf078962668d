//! The bottleneck verdict: replay the baseline with arrivals sped up step by step and watch each
//! stage's utilization — builder slots per system type, the per-machine send locks, the local
//! worker slots and the compression CPU of the queue-runner host, the upload link. The stage
//! that saturates first as load grows is the binding constraint.

use serde::Serialize;

use super::{CompressOn, Config, Workload, simulate};
use crate::error::Result;

/// The load factors tried: from the recorded load to eight times it, dense at first, where the
/// answer usually falls.
pub const LOADS: [f64; 7] = [1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0];

/// A stage at or above this utilization is saturated: queueing theory's waits grow without
/// bound as utilization nears 1, and at 85 % they are already several service times.
pub const SATURATED: f64 = 0.85;

/// The queue-runner host's cores: the C++ runner defaults its local worker slots to
/// max(4, CPUs) − 2 (docs/hydra.md §3), so a host with W slots is taken to have W + 2 cores.
pub const EXTRA_CORES: u32 = 2;

/// The upload link of the queue-runner host (or of all builders together), assumed 10 Gbit/s.
pub const UPLINK_BYTES_PER_MS: f64 = 1_250_000.0;

/// One stage at one load.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stage {
    pub stage: String,
    pub utilization: f64,
}

/// Every stage at one load factor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Level {
    pub load: f64,
    pub stages: Vec<Stage>,
    pub wait_p90_s: f64,
}

/// The verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub levels: Vec<Level>,
    /// The first stage to reach [`SATURATED`], and the load at which it did.
    pub binding: Option<(String, f64)>,
    /// In words, with the evidence.
    pub statement: String,
}

/// Runs the sweep (seed of `cfg`, no other randomness).
pub fn verdict(w: &Workload, cfg: &Config) -> Result<Verdict> {
    let mut levels = Vec::new();
    let mut binding: Option<(String, f64)> = None;
    for &load in &LOADS {
        let mut c = cfg.clone();
        c.load = cfg.load * load;
        let run = simulate(w, &c)?;
        let span = (w.span_ms as f64 / c.load).max(1.0);
        let mut stages = Vec::new();
        for (sys, u) in run.slot_utilization(w, span) {
            stages.push(Stage {
                stage: format!("builder slots {sys}"),
                utilization: u,
            });
        }
        if c.send_lock {
            let busiest = run
                .stages
                .send_lock_ms
                .iter()
                .copied()
                .fold(0.0f64, f64::max);
            stages.push(Stage {
                stage: "send lock (busiest machine)".into(),
                utilization: busiest / span,
            });
        }
        if c.compress_on == CompressOn::QueueRunner {
            let workers = f64::from(c.local_workers.max(1));
            stages.push(Stage {
                stage: "local worker slots".into(),
                utilization: run.stages.local_slot_ms / (workers * span),
            });
            stages.push(Stage {
                stage: "compression CPU (queue-runner host)".into(),
                utilization: run.stages.compress_qr_ms
                    / (f64::from(c.local_workers + EXTRA_CORES) * span),
            });
        }
        stages.push(Stage {
            stage: "upload link".into(),
            utilization: run.stages.uploaded_bytes / (UPLINK_BYTES_PER_MS * span),
        });
        let wait_p90_s = super::calibrate::simulated(w, &run, &c).wait_p90_s;
        if binding.is_none()
            && let Some(s) = stages
                .iter()
                .filter(|s| s.utilization >= SATURATED)
                .max_by(|a, b| a.utilization.total_cmp(&b.utilization))
        {
            binding = Some((s.stage.clone(), load));
        }
        levels.push(Level {
            load,
            stages,
            wait_p90_s,
        });
        if binding.is_some() {
            break;
        }
    }
    // A binding stage is only found at a level that was then pushed, so `levels.last()` is that
    // level whenever `binding` is set.
    let statement = match (&binding, levels.last()) {
        (Some((stage, load)), Some(l)) => {
            let others: Vec<String> = l
                .stages
                .iter()
                .filter(|s| &s.stage != stage)
                .map(|s| format!("{} {:.0} %", s.stage, s.utilization * 100.0))
                .collect();
            let base = levels[0]
                .stages
                .iter()
                .find(|s| &s.stage == stage)
                .map_or(0.0, |s| s.utilization);
            format!(
                "{stage} saturate first: {:.0} % busy at the recorded load, ≥ {:.0} % at {load}× \
                 the load (queue wait p90 {:.0} s there), while {}.",
                base * 100.0,
                SATURATED * 100.0,
                l.wait_p90_s,
                others.join(", ")
            )
        }
        _ => format!(
            "no stage reaches {:.0} % even at {}× the recorded load",
            SATURATED * 100.0,
            LOADS[LOADS.len() - 1]
        ),
    };
    Ok(Verdict {
        levels,
        binding,
        statement,
    })
}
