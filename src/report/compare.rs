//! `report --compare OLD_DIR`: an older report's headline figures beside this one's, with the
//! change of each. Only `format_version` and `headlines` of the old `report.json` are read, so
//! a report from a later version of the same format still compares; a missing, corrupt or
//! other-format file is one clear error before anything is written. Format 1 (figures rounded
//! to 0.01) is read too: see [`OLDEST_FORMAT`].

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{FORMAT_VERSION, Headline, Report};
use crate::error::{Error, Result};
use crate::interval::{finite, round};

/// The oldest `report.json` format `--compare` reads. Format 1 differs from 2 only in that its
/// figures were rounded; its headlines mean the same, so a report written before the change
/// still serves as "before", compared at the precision it holds ([`Previous::decimals`]).
pub const OLDEST_FORMAT: u32 = 1;

/// What is kept of an older report.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Previous {
    pub format_version: u32,
    pub generated_at: String,
    pub source: PreviousSource,
    pub window: PreviousWindow,
    pub headlines: Vec<Headline>,
    /// The directory it was read from, as given.
    #[serde(skip)]
    pub dir: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PreviousSource {
    pub origin: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PreviousWindow {
    pub since_utc: String,
    pub until_utc: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub old_dir: String,
    pub old_generated_at: String,
    pub old_origin: String,
    pub old_window: String,
    pub rows: Vec<Row>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub key: String,
    pub label: String,
    pub unit: String,
    /// `None` when the old report lacks the figure (or this one does).
    pub before: Option<f64>,
    pub after: Option<f64>,
    pub change: Option<f64>,
    pub change_pct: Option<f64>,
}

/// The most read of an old `report.json`: the built-in sample's is about 200 KiB, and it grows
/// with machines, jobsets and systems, not with history; 256 MiB is a thousand times that.
const REPORT_JSON_CAP: u64 = 256 << 20;

/// Reads `dir/report.json`.
pub fn read(dir: &Path) -> Result<Previous> {
    let path = dir.join("report.json");
    let bad = |why: String| Error::parse(format!("--compare {}", path.display()), why);
    let bytes = match crate::readfile::read_capped(&path, "report", REPORT_JSON_CAP) {
        Ok(b) => b,
        Err(Error::Io { source, .. }) => {
            return Err(Error::Usage(format!(
                "--compare {}: cannot read it ({source})",
                path.display()
            )));
        }
        Err(Error::Unreadable { what, path, reason }) => {
            return Err(Error::Unreadable {
                what: format!("--compare: {what}"),
                path,
                reason,
            });
        }
        Err(e) => return Err(e),
    };
    let v: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("not a JSON document ({e})")))?;
    match v.get("format_version").and_then(serde_json::Value::as_u64) {
        Some(n) if (u64::from(OLDEST_FORMAT)..=u64::from(FORMAT_VERSION)).contains(&n) => {}
        Some(n) => {
            return Err(bad(format!(
                "a report of format {n}; this version of hydra-bottleneck compares formats \
                 {OLDEST_FORMAT} to {FORMAT_VERSION}"
            )));
        }
        None => {
            return Err(bad(
                "not a hydra-bottleneck report (no format_version)".into()
            ));
        }
    }
    let mut prev: Previous =
        serde_json::from_value(v).map_err(|e| bad(format!("not a complete report ({e})")))?;
    prev.dir = dir.display().to_string();
    Ok(prev)
}

impl Previous {
    /// The decimals the old report's headline `key` was rounded to, if any. Later formats keep
    /// every digit; format 1 rounded each headline to 0.01 after rounding the figure it came
    /// from: slot-hours a month, waits and the fixed overhead to 0.1 (its `builds_per_day`
    /// divided by the window's days rounded to 0.01, a difference this cannot undo: at most
    /// 0.07 % of a window of a week).
    pub fn decimals(&self, key: &str) -> Option<i32> {
        if self.format_version >= 2 {
            return None;
        }
        let tenths = key.ends_with("_slot_hours_per_month")
            || key.starts_with("wait_to_start_")
            || key == "overhead_fixed_ms";
        Some(if tenths { 1 } else { 2 })
    }
}

fn headline(key: &str, label: &str, unit: &str, value: f64) -> Headline {
    Headline {
        key: key.into(),
        label: label.into(),
        unit: unit.into(),
        value: finite(value),
    }
}

/// The figures a reader follows from one report to the next: amounts per month, so that
/// windows of different lengths compare.
pub fn headlines(r: &Report) -> Vec<Headline> {
    let cur = r.costs.currency.as_str();
    let mut v = Vec::new();
    for w in &r.waterfall {
        v.push(headline(
            &format!("{}_slot_hours_per_month", w.key),
            &format!("{} (slot-hours/month)", w.label),
            "h",
            w.slot_hours_per_month,
        ));
        if w.key != "available" {
            v.push(headline(
                &format!("{}_share_pct", w.key),
                &format!("{} (share of available)", w.label),
                "%",
                w.share_pct,
            ));
        }
        v.push(headline(
            &format!("{}_cost_per_month", w.key),
            &format!("{} (cost/month, estimate)", w.label),
            cur,
            w.cost_per_month,
        ));
    }
    let ws = &r.waiting.overall.to_start;
    v.push(headline(
        "wait_to_start_p50_s",
        "queue wait p50",
        "s",
        ws.p50,
    ));
    v.push(headline(
        "wait_to_start_p90_s",
        "queue wait p90",
        "s",
        ws.p90,
    ));
    v.push(headline(
        "wait_to_start_p99_s",
        "queue wait p99",
        "s",
        ws.p99,
    ));
    v.push(headline(
        "backlog_max",
        "largest backlog (builds queued)",
        "builds",
        r.waiting.backlog_max as f64,
    ));
    v.push(headline(
        "builds_per_day",
        "builds started per day",
        "builds",
        ws.count as f64 / r.window.days.max(1e-9),
    ));
    v.push(headline(
        "wasted_pct",
        "wasted share of step slot time",
        "%",
        r.waste.wasted_pct,
    ));
    if let Some(fit) = &r.overhead.fit {
        v.push(headline(
            "overhead_fixed_ms",
            "overhead per step, fixed part",
            "ms",
            fit.fixed_ms,
        ));
        if let Some(mb) = fit.implied_mb_per_s {
            v.push(headline(
                "overhead_mb_per_s",
                "overhead throughput (size-proportional part)",
                "MB/s",
                mb,
            ));
        }
    }
    if let Some(c) = r
        .compression
        .as_ref()
        .and_then(|c| c.peak_hour_cores_current.map(|x| (c, x)))
    {
        v.push(headline(
            "peak_hour_cores_current_codec",
            &format!("cores {} needs in the busiest hour", c.0.current_codec),
            "cores",
            c.1,
        ));
    }
    let best = r.recommendations.first();
    v.push(headline(
        "top_saving_per_month",
        "expected saving of the top recommendation (per month)",
        cur,
        best.map_or(0.0, |b| b.saving_per_month.mid),
    ));
    v.push(headline(
        "excluded_steps",
        "steps excluded by data-quality checks",
        "steps",
        r.quality.excluded_steps as f64,
    ));
    v
}

/// Old and new headline figures side by side, in the new report's order (figures only the
/// old one has come last).
pub fn compare(prev: &Previous, r: &Report) -> Comparison {
    let mut rows: Vec<Row> = r
        .headlines
        .iter()
        .map(|n| {
            let before = prev
                .headlines
                .iter()
                .find(|o| o.key == n.key)
                .map(|o| o.value);
            // Against a rounded old report, the new figure at the same precision: an unchanged
            // farm then shows no change, not the digits the old report dropped.
            let (now, change) = match prev.decimals(&n.key) {
                Some(d) => {
                    let now = round(n.value, d);
                    (now, before.map(|b| round(now - b, d)))
                }
                None => (n.value, before.map(|b| finite(n.value - b))),
            };
            Row {
                key: n.key.clone(),
                label: n.label.clone(),
                unit: n.unit.clone(),
                before,
                after: Some(n.value),
                change,
                change_pct: before
                    .filter(|b| *b != 0.0)
                    .map(|b| finite(100.0 * (now - b) / b.abs())),
            }
        })
        .collect();
    rows.extend(
        prev.headlines
            .iter()
            .filter(|o| !r.headlines.iter().any(|n| n.key == o.key))
            .map(|o| Row {
                key: o.key.clone(),
                label: o.label.clone(),
                unit: o.unit.clone(),
                before: Some(o.value),
                after: None,
                change: None,
                change_pct: None,
            }),
    );
    Comparison {
        old_dir: prev.dir.clone(),
        old_generated_at: prev.generated_at.clone(),
        old_origin: prev.source.origin.clone(),
        old_window: format!("{} – {}", prev.window.since_utc, prev.window.until_utc),
        rows,
    }
}
