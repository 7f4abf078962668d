//! The simulation's findings as rows of text, for the terminal, CSV and the report.

use super::Summary;
use super::scenario::Outcome;
use crate::interval::Interval;

pub const CALIBRATION_HEADER: [&str; 5] = ["metric", "unit", "observed", "modelled", "error %"];

pub fn calibration_rows(s: &Summary) -> Vec<Vec<String>> {
    s.calibration
        .iter()
        .map(|r| {
            vec![
                r.metric.clone(),
                r.unit.clone(),
                num(r.observed),
                num(r.modelled),
                format!("{:.1}", r.error_pct),
            ]
        })
        .collect()
}

pub const STATUS_HEADER: [&str; 6] = [
    "machine",
    "steps (status)",
    "mean step s (status)",
    "steps (replay)",
    "mean step s (replay)",
    "error %",
];

/// One row per machine of a status JSON comparison.
pub fn status_rows(c: &super::calibrate::StatusCheck) -> Vec<Vec<String>> {
    c.machines
        .iter()
        .map(|m| {
            vec![
                m.machine.clone(),
                num(m.status_steps),
                num(m.status_avg_s),
                m.modelled_steps.to_string(),
                num(m.modelled_avg_s),
                format!("{:.1}", m.error_pct),
            ]
        })
        .collect()
}

/// Rows of the comparison: one per figure, one column per configuration.
pub fn comparison(s: &Summary) -> (Vec<String>, Vec<Vec<String>>) {
    let all: Vec<&Outcome> = std::iter::once(&s.baseline).chain(&s.scenarios).collect();
    let mut header = vec!["figure".to_string()];
    header.extend(all.iter().map(|o| o.name.clone()));
    let mut rows = Vec::new();
    let mut row = |name: &str, f: &dyn Fn(&Outcome) -> String| {
        let mut r = vec![name.to_string()];
        r.extend(all.iter().map(|o| f(o)));
        rows.push(r);
    };
    row("machines", &|o| o.machines.to_string());
    row("builds finished / day", &|o| {
        interval(o.builds_per_day, 1.0)
    });
    row("queue wait p50 (s)", &|o| interval(o.wait_p50_s, 1.0));
    row("queue wait p90 (s)", &|o| interval(o.wait_p90_s, 1.0));
    row("queue wait p99 (s)", &|o| interval(o.wait_p99_s, 1.0));
    let systems: Vec<String> = s
        .baseline
        .utilization
        .iter()
        .map(|(k, _)| k.clone())
        .collect();
    for sys in &systems {
        row(&format!("utilization {sys} (%)"), &|o| {
            o.utilization
                .iter()
                .find(|(k, _)| k == sys)
                .map_or("-".into(), |(_, v)| interval(*v, 100.0))
        });
    }
    row("slot-h building", &|o| num(o.buckets.building_h));
    row("slot-h overhead", &|o| num(o.buckets.overhead_h));
    row("slot-h held idle", &|o| num(o.buckets.held_h));
    row("slot-h waste", &|o| num(o.buckets.waste_h));
    row("slot-h dispatch loss", &|o| num(o.buckets.dispatch_loss_h));
    row("slot-h idle", &|o| num(o.buckets.idle_h));
    row("compression core-h", &|o| num(o.buckets.compress_core_h));
    row("GB uploaded (stored)", &|o| num(o.buckets.uploaded_gb));
    row("cost / month (estimate)", &|o| {
        interval(o.cost_per_month, 1.0)
    });
    (header, rows)
}

/// `mid (lo–hi)`, scaled.
pub fn interval(v: Interval, scale: f64) -> String {
    let (lo, mid, hi) = (v.lo * scale, v.mid * scale, v.hi * scale);
    if (hi - lo).abs() < 0.05 * mid.abs().max(1e-9) && (hi - lo).abs() < 0.5 {
        num(mid)
    } else {
        format!("{} ({}–{})", num(mid), num(lo), num(hi))
    }
}

/// A number with sensible precision for a table.
pub fn num(x: f64) -> String {
    let a = x.abs();
    if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}
