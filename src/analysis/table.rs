//! Findings as rows for `analyze --format table|csv`, and as JSON values for `--format json`.

use serde::Serialize;
use serde_json::Value;

use super::Findings;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finding {
    All,
    Ledger,
    Waiting,
    Utilization,
    Waste,
    Quality,
    Deps,
    Overhead,
}

impl Finding {
    /// Its name on the command line (`analyze NAME`), and its key in `analyze all`'s JSON.
    pub fn name(self) -> &'static str {
        match self {
            Finding::All => "all",
            Finding::Ledger => "ledger",
            Finding::Waiting => "waiting",
            Finding::Utilization => "utilization",
            Finding::Waste => "waste",
            Finding::Quality => "quality",
            Finding::Deps => "deps",
            Finding::Overhead => "overhead",
        }
    }
}

type Table = (Vec<&'static str>, Vec<Vec<String>>, Value);

fn json<T: Serialize>(v: &T) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| Error::json("findings", e))
}

fn one_decimal(x: f64) -> String {
    format!("{x:.1}")
}

fn whole(x: f64) -> String {
    format!("{x:.0}")
}

pub fn tabulate(f: &Findings, which: Finding) -> Result<Table> {
    Ok(match which {
        Finding::All => (vec![], vec![], json(f)?),
        Finding::Ledger => {
            let l = &f.ledger;
            let row = |scope: &str, r: &super::ledger::Row| {
                vec![
                    scope.to_string(),
                    r.key.clone(),
                    r.slots.to_string(),
                    one_decimal(r.available_h),
                    one_decimal(r.building_h),
                    one_decimal(r.overhead_h),
                    one_decimal(r.held_h),
                    one_decimal(r.dispatch_loss_h),
                    one_decimal(r.idle_h),
                    one_decimal(r.over_committed_h),
                    // Last, so the columns before keep their places for scripts.
                    one_decimal(r.throttled_h),
                ]
            };
            let mut rows: Vec<Vec<String>> = l.machines.iter().map(|r| row("machine", r)).collect();
            rows.extend(l.by_system.iter().map(|r| row("system", r)));
            rows.push(row("total", &l.total));
            (
                vec![
                    "scope",
                    "key",
                    "slots",
                    "available_h",
                    "building_h",
                    "overhead_h",
                    "held_h",
                    "dispatch_loss_h",
                    "idle_h",
                    "over_committed_h",
                    "throttled_h",
                ],
                rows,
                json(l)?,
            )
        }
        Finding::Waiting => {
            let w = &f.waiting;
            let mut rows = Vec::new();
            let scopes = [
                ("all", std::slice::from_ref(&w.overall)),
                ("system", &w.by_system[..]),
                ("jobset", &w.by_jobset[..]),
                ("priority", &w.by_priority[..]),
                ("day", &w.by_day[..]),
            ];
            for (scope, groups) in scopes {
                for g in groups {
                    rows.push(vec![
                        scope.to_string(),
                        g.key.clone(),
                        g.to_start.count.to_string(),
                        whole(g.to_start.p50),
                        whole(g.to_start.p90),
                        whole(g.to_start.p99),
                        whole(g.to_start.max),
                        g.to_finish.count.to_string(),
                        whole(g.to_finish.p50),
                        whole(g.to_finish.p90),
                        whole(g.to_finish.p99),
                        whole(g.to_finish.max),
                    ]);
                }
            }
            (
                vec![
                    "scope",
                    "key",
                    "builds_started",
                    "to_start_p50_s",
                    "to_start_p90_s",
                    "to_start_p99_s",
                    "to_start_max_s",
                    "builds_finished",
                    "to_finish_p50_s",
                    "to_finish_p90_s",
                    "to_finish_p99_s",
                    "to_finish_max_s",
                ],
                rows,
                json(w)?,
            )
        }
        Finding::Utilization => {
            let u = &f.utilization;
            let mut rows = Vec::new();
            for (scope, tl) in [("machine", &u.by_machine), ("system", &u.by_system)] {
                for (key, series) in &tl.series {
                    let mean = series.iter().sum::<f64>() / series.len().max(1) as f64;
                    let busiest = series.iter().copied().fold(0.0, f64::max);
                    let peak = if scope == "machine" {
                        u.peak_by_machine
                            .get(key)
                            .map(|p| p.to_string())
                            .unwrap_or_default()
                    } else {
                        String::new()
                    };
                    rows.push(vec![
                        scope.to_string(),
                        key.clone(),
                        format!("{mean:.2}"),
                        format!("{busiest:.2}"),
                        peak,
                    ]);
                }
            }
            (
                vec![
                    "scope",
                    "key",
                    "mean_concurrency",
                    "busiest_bucket",
                    "peak_instant",
                ],
                rows,
                json(u)?,
            )
        }
        Finding::Waste => {
            let w = &f.waste;
            let mut rows: Vec<Vec<String>> = w
                .categories
                .iter()
                .map(|c| {
                    vec![
                        "category".into(),
                        c.name.into(),
                        c.steps.to_string(),
                        one_decimal(c.slot_hours),
                    ]
                })
                .collect();
            rows.push(vec![
                "total".into(),
                "wasted".into(),
                String::new(),
                one_decimal(w.wasted_slot_hours),
            ]);
            rows.extend(w.by_jobset.iter().map(|o| {
                vec![
                    "jobset".into(),
                    o.jobset.clone(),
                    o.steps.to_string(),
                    one_decimal(o.slot_hours),
                ]
            }));
            rows.extend(w.top_jobs.iter().map(|o| {
                vec![
                    "job".into(),
                    format!("{}:{}", o.jobset, o.job),
                    o.steps.to_string(),
                    one_decimal(o.slot_hours),
                ]
            }));
            (vec!["scope", "name", "steps", "slot_hours"], rows, json(w)?)
        }
        Finding::Quality => {
            let q = &f.quality;
            let mut rows: Vec<Vec<String>> = q
                .checks
                .iter()
                .map(|c| {
                    vec![
                        c.name.into(),
                        c.count.to_string(),
                        if c.excluded { "excluded" } else { "kept" }.into(),
                        c.examples.join(" "),
                        c.definition.into(),
                    ]
                })
                .collect();
            rows.extend(q.clock_skew.iter().map(|m| {
                vec![
                    format!("clock_skew {}", m.machine),
                    m.steps.to_string(),
                    "kept".into(),
                    format!("median {} s, max {} s", m.median_s, m.max_s),
                    "steps on this machine that started before their build was queued".into(),
                ]
            }));
            (
                vec!["check", "steps", "treatment", "examples", "definition"],
                rows,
                json(q)?,
            )
        }
        Finding::Deps => {
            let d = &f.dependencies;
            let (p, r, rs) =
                d.accuracy
                    .map_or((String::new(), String::new(), String::new()), |a| {
                        (
                            format!("{:.3}", a.precision),
                            format!("{:.3}", a.recall),
                            format!("{:.3}", a.recall_same_build),
                        )
                    });
            (
                vec!["gap_s", "edges", "precision", "recall", "recall_same_build"],
                vec![vec![d.gap_s.to_string(), d.edges.to_string(), p, r, rs]],
                json(d)?,
            )
        }
        Finding::Overhead => {
            let o = &f.overhead;
            let row = match &o.fit {
                Some(fit) => vec![
                    fit.points.to_string(),
                    whole(fit.fixed_ms),
                    format!("{:.1}", fit.ms_per_mib),
                    fit.implied_mb_per_s
                        .map(|v| format!("{v:.2}"))
                        .unwrap_or_default(),
                    format!("{:.2}", fit.size_share),
                    o.sizes_from.clone(),
                ],
                None => vec![
                    "0".into(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    o.sizes_from.clone(),
                ],
            };
            let mut rows = vec![row];
            rows.extend(o.codecs.iter().map(|c| {
                vec![
                    format!("codec {}", c.codec),
                    String::new(),
                    String::new(),
                    format!("{:.2}", c.compress_mb_s_core),
                    c.share_of_size_overhead
                        .map(|x| format!("{x:.2}"))
                        .unwrap_or_default(),
                    "compress: MB/s per core; share of the size-proportional overhead that \
                     compressing alone would take"
                        .into(),
                ]
            }));
            (
                vec![
                    "steps",
                    "fixed_ms",
                    "ms_per_mib",
                    "implied_mb_per_s",
                    "size_share",
                    "sizes_from",
                ],
                rows,
                json(o)?,
            )
        }
    })
}
