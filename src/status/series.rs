//! A time series of status documents or `/metrics` answers (the JSON lines `status --watch`
//! appends) and its summary:
//! runnable steps against free slots per machine type, stage occupancy, and counter rates.
//!
//! Every sample counts the same (a mean over samples, not over time): `--watch` takes them at a
//! steady interval, and an error line leaves a gap rather than a made-up sample. Counters are
//! turned into rates over consecutive pairs of samples; a counter that goes down means the
//! runner restarted, and the new value is then taken as the increase since the restart.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::document::{self, Status};
use super::figures::{Row, merge_machines, row, type_slots};
use super::timeline::{Stage, Timeline};
use crate::error::Result;
use crate::nix::BuildMachine;

/// One line of a series file, as `--watch` writes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SampleLine {
    /// When the sample was taken (unix seconds, this machine's clock).
    pub t: f64,
    pub source: String,
    /// The document as served, whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
    /// A `/metrics` answer instead: the families `status::exporters` reads, in the Prometheus
    /// text format (`exporters::record`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<String>,
    /// Why there is no document this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A series as read: the samples that parsed, and what did not.
#[derive(Debug, Clone, Default)]
pub struct Series {
    pub samples: Vec<(f64, Status)>,
    /// Lines `--watch` wrote for a failed request.
    pub errors: usize,
    /// Lines that are not a sample at all (say, the cut-off last line of a killed writer),
    /// with the first one's number.
    pub bad_lines: usize,
    pub first_bad_line: Option<usize>,
}

/// The most read of a series file, which is held in memory whole and parsed: a week of samples
/// at the default 30 s interval is 20 160 lines, and at some 50 KB per status document (a
/// runner with a hundred machines) that is about 1 GB. A longer series is split (`split -l`)
/// and summarised in parts.
const SERIES_CAP: u64 = 1 << 30;

/// Reads a series file; a line that is not a sample is counted, not fatal.
pub fn read(path: &Path) -> Result<Series> {
    let text = crate::readfile::read_capped_string(path, "status series", SERIES_CAP)?;
    Ok(parse(&text, &path.display().to_string()))
}

pub fn parse(text: &str, origin: &str) -> Series {
    let mut s = Series::default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let sample = serde_json::from_str::<SampleLine>(line).ok();
        match sample {
            Some(SampleLine {
                t, status: Some(v), ..
            }) => match document::from_value(v, &format!("{origin}, line {}", i + 1)) {
                Ok(st) => s.samples.push((t, st)),
                Err(_) => {
                    s.bad_lines += 1;
                    s.first_bad_line.get_or_insert(i + 1);
                }
            },
            Some(SampleLine {
                t,
                metrics: Some(m),
                ..
            }) => match super::parse_metrics(&m, &format!("{origin}, line {}", i + 1)) {
                Ok((_, _, st)) => s.samples.push((t, st)),
                Err(_) => {
                    s.bad_lines += 1;
                    s.first_bad_line.get_or_insert(i + 1);
                }
            },
            Some(SampleLine { error: Some(_), .. }) => s.errors += 1,
            _ => {
                s.bad_lines += 1;
                s.first_bad_line.get_or_insert(i + 1);
            }
        }
    }
    s
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesSummary {
    pub samples: usize,
    pub errors: usize,
    pub bad_lines: usize,
    pub first: Option<f64>,
    pub last: Option<f64>,
    pub span_s: Option<f64>,
    pub machine_types: Vec<TypeOverTime>,
    pub stages: Vec<StageOverTime>,
    pub rates: Vec<Rate>,
    pub machines: Vec<MachineOverTime>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TypeOverTime {
    pub name: String,
    /// Samples that list this type.
    pub samples: usize,
    pub mean_runnable: f64,
    pub max_runnable: f64,
    pub mean_running: Option<f64>,
    /// `None` unless every machine's maxJobs was known in every sample.
    pub mean_free_slots: Option<f64>,
    /// Mean of min(runnable, free slots): slots idle while steps of this type waited.
    pub mean_idle_while_runnable: Option<f64>,
    /// Share of samples with steps runnable and a slot free at once.
    pub share_runnable_and_free: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageOverTime {
    pub stage: &'static str,
    pub samples: usize,
    pub mean: f64,
    pub max: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rate {
    pub counter: &'static str,
    /// Increase per `per` over the sampled time.
    pub value: f64,
    pub per: &'static str,
    pub increase: f64,
    pub over_s: f64,
    /// Times the counter went down (runner restarts).
    pub resets: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MachineOverTime {
    pub name: String,
    pub steps_per_hour: Option<f64>,
    /// 1 − Δbuild time / Δstep time over the series (steps finished in it).
    pub not_building_share: Option<f64>,
    pub mean_current_jobs: Option<f64>,
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Σ increase and Σ elapsed over consecutive pairs where both samples have the counter.
fn increase(
    samples: &[(f64, &Status)],
    get: impl Fn(&Status) -> Option<f64>,
) -> Option<(f64, f64, usize)> {
    let mut inc = 0.0;
    let mut over = 0.0;
    let mut resets = 0;
    let mut pairs = 0;
    for w in samples.windows(2) {
        let ((t0, s0), (t1, s1)) = (w[0], w[1]);
        let (Some(a), Some(b)) = (get(s0), get(s1)) else {
            continue;
        };
        if t1 <= t0 {
            continue;
        }
        pairs += 1;
        over += t1 - t0;
        if b >= a {
            inc += b - a;
        } else {
            resets += 1;
            inc += b;
        }
    }
    (pairs > 0).then_some((inc, over, resets))
}

const MIB: f64 = 1024.0 * 1024.0;

/// A counter to turn into a rate: its name, the unit of the rate, the factor from "per second"
/// to that unit, and how to read it from a document.
type Counter = (
    &'static str,
    &'static str,
    f64,
    Box<dyn Fn(&Status) -> Option<f64>>,
);

/// Summarises a series. `file` supplies maxJobs the runner does not report (C++ runner).
pub fn summarise(series: &Series, file: Option<&[BuildMachine]>) -> SeriesSummary {
    let mut ordered: Vec<(f64, &Status)> = series.samples.iter().map(|(t, s)| (*t, s)).collect();
    ordered.sort_by(|(a_time, _), (b_time, _)| a_time.total_cmp(b_time));
    let first = ordered.first().map(|s| s.0);
    let last = ordered.last().map(|s| s.0);

    // Machine types, in order of first appearance.
    let mut names: Vec<String> = Vec::new();
    for (_, s) in &ordered {
        for t in &s.machine_types {
            if !names.contains(&t.name) {
                names.push(t.name.clone());
            }
        }
    }
    let machine_types = names
        .into_iter()
        .map(|name| {
            let mut runnable = Vec::new();
            let mut running = Vec::new();
            let mut free = Vec::new();
            let mut idle = Vec::new();
            let mut both = 0usize;
            let mut free_known = true;
            for (t, s) in &ordered {
                let Some(mt) = s.machine_types.iter().find(|m| m.name == name) else {
                    continue;
                };
                let r = mt.runnable.unwrap_or(0.0);
                runnable.push(r);
                if let Some(x) = mt.running {
                    running.push(x);
                }
                let machines: Vec<_> = merge_machines(&s.machines, file)
                    .into_iter()
                    .map(|(m, _, _)| m)
                    .collect();
                match type_slots(&machines, &name, s.time.or(Some(*t))).1 {
                    Some(f) => {
                        free.push(f);
                        idle.push(f.min(r));
                        if f > 0.0 && r > 0.0 {
                            both += 1;
                        }
                    }
                    None => free_known = false,
                }
            }
            let n = runnable.len();
            TypeOverTime {
                name,
                samples: n,
                mean_runnable: mean(&runnable).unwrap_or(0.0),
                max_runnable: runnable.iter().copied().fold(0.0, f64::max),
                mean_running: mean(&running),
                mean_free_slots: mean(&free).filter(|_| free_known),
                mean_idle_while_runnable: mean(&idle).filter(|_| free_known),
                share_runnable_and_free: (free_known && n > 0).then(|| both as f64 / n as f64),
            }
        })
        .collect();

    type Get = fn(&Status) -> Option<f64>;
    let stage_getters: [(&'static str, Get); 6] = [
        ("active", |s| s.active_steps),
        ("building", |s| s.steps_building),
        ("copying to builder", |s| s.steps_copying_to),
        ("copying from builder", |s| s.steps_copying_from),
        ("waiting for a local slot", |s| {
            s.steps_waiting_for_local_slot
        }),
        ("runnable", |s| s.runnable_steps),
    ];
    let stages = stage_getters
        .iter()
        .filter_map(|(stage, get)| {
            let v: Vec<f64> = ordered.iter().filter_map(|(_, s)| get(s)).collect();
            Some(StageOverTime {
                stage,
                samples: v.len(),
                mean: mean(&v)?,
                max: v.iter().copied().fold(f64::MIN, f64::max),
            })
        })
        .collect();

    let sum_s3 = |s: &Status, f: fn(&document::S3Status) -> Option<f64>| -> Option<f64> {
        s.s3.iter()
            .map(f)
            .sum::<Option<f64>>()
            .filter(|_| !s.s3.is_empty())
    };
    let store =
        |s: &Status, f: fn(&document::StoreStatus) -> Option<f64>| s.store.as_ref().and_then(f);
    let counters: Vec<Counter> = vec![
        (
            "steps done",
            "hour",
            3600.0,
            Box::new(|s: &Status| s.steps_done),
        ),
        (
            "builds done",
            "hour",
            3600.0,
            Box::new(|s: &Status| s.builds_done),
        ),
        ("retries", "hour", 3600.0, Box::new(|s: &Status| s.retries)),
        (
            "bytes sent to builders",
            "MiB/s",
            1.0 / MIB,
            Box::new(|s: &Status| s.bytes_sent),
        ),
        (
            "bytes received from builders",
            "MiB/s",
            1.0 / MIB,
            Box::new(|s: &Status| s.bytes_received),
        ),
        (
            "NAR bytes written",
            "MiB/s",
            1.0 / MIB,
            Box::new(move |s: &Status| store(s, |x| x.nar_write_bytes)),
        ),
        (
            "NAR bytes written, compressed",
            "MiB/s",
            1.0 / MIB,
            Box::new(move |s: &Status| store(s, |x| x.nar_write_compressed_bytes)),
        ),
        (
            "compression busy",
            "threads",
            1.0 / 1000.0,
            Box::new(move |s: &Status| store(s, |x| x.nar_write_compression_time_ms)),
        ),
        (
            "S3 bytes uploaded",
            "MiB/s",
            1.0 / MIB,
            Box::new(move |s: &Status| sum_s3(s, |x| x.put_bytes)),
        ),
        (
            "S3 approximate cost",
            "USD/day",
            86_400.0,
            Box::new(move |s: &Status| sum_s3(s, |x| x.cost_dollar_approx)),
        ),
    ];
    let rates = counters
        .iter()
        .filter_map(|(counter, per, scale, get)| {
            let (inc, over, resets) = increase(&ordered, get)?;
            // `scale` turns "per second" into the unit: ×3600 for per hour, ÷MiB for MiB/s,
            // ÷1000 for milliseconds of compressing per second (threads busy on average).
            let value = inc / over * scale;
            Some(Rate {
                counter,
                value,
                per,
                increase: inc,
                over_s: over,
                resets,
            })
        })
        .collect();

    let mut mnames: Vec<String> = Vec::new();
    for (_, s) in &ordered {
        for m in &s.machines {
            if !mnames.contains(&m.name) {
                mnames.push(m.name.clone());
            }
        }
    }
    let machines = mnames
        .into_iter()
        .map(|name| {
            let get = |f: fn(&document::MachineStatus) -> Option<f64>| {
                let name = name.clone();
                move |s: &Status| s.machines.iter().find(|m| m.name == name).and_then(f)
            };
            let steps = increase(&ordered, get(|m| m.steps_done));
            let total = increase(&ordered, get(|m| m.total_step_time_s));
            let build = increase(&ordered, get(|m| m.total_step_build_time_s));
            let jobs: Vec<f64> = ordered
                .iter()
                .filter_map(|(_, s)| get(|m| m.current_jobs)(s))
                .collect();
            MachineOverTime {
                steps_per_hour: steps.map(|(i, o, _)| i / o * 3600.0),
                not_building_share: match (build, total) {
                    (Some((b, _, _)), Some((t, _, _))) if t > 0.0 => Some(1.0 - b / t),
                    _ => None,
                },
                mean_current_jobs: mean(&jobs),
                name,
            }
        })
        .collect();

    SeriesSummary {
        samples: series.samples.len(),
        errors: series.errors,
        bad_lines: series.bad_lines,
        first,
        last,
        span_s: first.zip(last).map(|(a, b)| b - a),
        machine_types,
        stages,
        rates,
        machines,
    }
}

/// The summary as rows (table and CSV output).
pub fn rows(s: &SeriesSummary) -> Vec<Row> {
    let mut r = Vec::new();
    let span = match (s.first, s.last) {
        (Some(a), Some(b)) => format!(
            "from {} to {}",
            crate::window::fmt_time(a as i64),
            crate::window::fmt_time(b as i64)
        ),
        _ => "no samples".into(),
    };
    r.push(row(
        "series",
        "samples",
        "documents",
        Some(s.samples as f64),
        "",
        span,
    ));
    r.push(row(
        "series",
        "samples",
        "failed requests",
        Some(s.errors as f64),
        "",
        "",
    ));
    r.push(row(
        "series",
        "samples",
        "unreadable lines",
        Some(s.bad_lines as f64),
        "",
        "",
    ));
    r.push(row(
        "series",
        "samples",
        "span",
        s.span_s.map(|v| v / 3600.0),
        "h",
        "",
    ));
    for t in &s.machine_types {
        let n = t.name.clone();
        let note = format!("mean over {} samples", t.samples);
        r.push(row(
            "machine type",
            n.clone(),
            "runnable",
            Some(t.mean_runnable),
            "steps",
            note.clone(),
        ));
        r.push(row(
            "machine type",
            n.clone(),
            "runnable, max",
            Some(t.max_runnable),
            "steps",
            "",
        ));
        r.push(row(
            "machine type",
            n.clone(),
            "running",
            t.mean_running,
            "steps",
            note.clone(),
        ));
        r.push(row(
            "machine type",
            n.clone(),
            "free slots",
            t.mean_free_slots,
            "",
            note.clone(),
        ));
        r.push(row(
            "machine type",
            n.clone(),
            "idle while runnable",
            t.mean_idle_while_runnable,
            "slots",
            "mean of min(runnable, free slots)",
        ));
        r.push(row(
            "machine type",
            n,
            "runnable and free at once",
            t.share_runnable_and_free.map(|v| v * 100.0),
            "% of samples",
            "",
        ));
    }
    for st in &s.stages {
        r.push(row(
            "stage",
            st.stage,
            "mean",
            Some(st.mean),
            "steps",
            format!("over {} samples", st.samples),
        ));
        r.push(row("stage", st.stage, "max", Some(st.max), "steps", ""));
    }
    for rt in &s.rates {
        let unit = match rt.per {
            "hour" => "per hour",
            other => other,
        };
        r.push(row(
            "rate",
            rt.counter,
            "rate",
            Some(rt.value),
            unit,
            if rt.resets > 0 {
                format!("over {:.0} s; {} runner restart(s)", rt.over_s, rt.resets)
            } else {
                format!("over {:.0} s", rt.over_s)
            },
        ));
    }
    for m in &s.machines {
        r.push(row(
            "machine",
            m.name.clone(),
            "steps",
            m.steps_per_hour,
            "per hour",
            "",
        ));
        r.push(row(
            "machine",
            m.name.clone(),
            "not building",
            m.not_building_share.map(|v| v * 100.0),
            "% of slot time",
            "steps finished in the series",
        ));
        r.push(row(
            "machine",
            m.name.clone(),
            "current jobs",
            m.mean_current_jobs,
            "",
            "mean",
        ));
    }
    // Figures the series cannot give (no maxJobs, say) are left out; JSON keeps them as null.
    r.retain(|x| x.value.is_some());
    r
}

/// `tl` as the lines `status --watch` would have appended had it scraped, every sample, a
/// runner exporting under `exp`'s names ([`super::exporters::exposition`]): what a deployment
/// that watched its runner has, to be read back with `--runner-series`. `source` names where the
/// scrapes are said to come from.
pub fn to_watch_lines(
    tl: &Timeline,
    exp: super::exporters::Exporter,
    source: &str,
) -> Result<String> {
    let mut out = String::new();
    for (k, &t) in tl.times.iter().enumerate() {
        let line = SampleLine {
            t: t as f64,
            source: source.to_string(),
            status: None,
            metrics: Some(super::exporters::exposition(tl, k, exp)),
            error: None,
        };
        let json = serde_json::to_string(&line).map_err(|e| {
            crate::error::Error::system("writing a series line", std::io::Error::other(e))
        })?;
        out.push_str(&json);
        out.push('\n');
    }
    Ok(out)
}

/// The series on a regular grid, as the capacity ledger reads it: the multiples of `step_s`
/// (seconds; `None`: the median interval between samples, in whole seconds) within `window`
/// (`[lo, hi)`, unix seconds) and the span of the samples. Each point takes the latest sample at
/// or before it, if that is less than one step old; else it is `NaN`, as is a figure the sample
/// lacks. A document's runnable steps per machine type are already those waiting (the Rust
/// runner's queue length less its running steps, `super::exporters`); machines are keyed by the
/// runner's name for them. `None` when no sample falls in the window.
pub fn to_timeline(
    series: &Series,
    step_s: Option<i64>,
    window: Option<(i64, i64)>,
    source: &str,
) -> Option<Timeline> {
    let mut ordered: Vec<(f64, &Status)> = series
        .samples
        .iter()
        .filter(|(t, _)| t.is_finite())
        .map(|(t, s)| (*t, s))
        .collect();
    ordered.sort_by(|a, b| a.0.total_cmp(&b.0));
    let step = step_s.unwrap_or_else(|| median_interval(&ordered)).max(1);
    let (first, last) = (ordered.first()?.0, ordered.last()?.0);
    let (lo, hi) = window.unwrap_or((i64::MIN, i64::MAX));
    // The grid: multiples of the step from the first sample (or the window's start) to the
    // last sample's interval (or the window's end).
    let start = (first.ceil() as i64).max(lo);
    let end = (last.floor() as i64).saturating_add(step).min(hi);
    let times = super::prometheus::grid((start, end), step);
    if times.is_empty() {
        return None;
    }
    let n = times.len();
    let mut tl = Timeline {
        source: source.to_string(),
        naming: format!(
            "status --watch samples ({})",
            ordered
                .first()
                .map(|(_, s)| s.runner.to_string())
                .unwrap_or_default()
        ),
        step_s: step,
        times,
        ..Timeline::default()
    };
    let nan = || vec![f64::NAN; n];
    let mut j = 0usize;
    for (i, &t) in tl.times.iter().enumerate() {
        // The latest sample at or before t.
        while j < ordered.len() && ordered[j].0 <= t as f64 {
            j += 1;
        }
        let Some(&(ts, s)) = j.checked_sub(1).and_then(|k| ordered.get(k)) else {
            continue;
        };
        if t as f64 - ts >= step as f64 {
            continue;
        }
        let val = |v: Option<f64>| v.filter(|x| x.is_finite()).unwrap_or(f64::NAN);
        for mt in &s.machine_types {
            tl.runnable.entry(mt.name.clone()).or_insert_with(nan)[i] = val(mt.runnable);
        }
        for m in &s.machines {
            tl.current_jobs.entry(m.name.clone()).or_insert_with(nan)[i] = val(m.current_jobs);
            // Taking no work at the sample: disabled after failures (C++ `disabledUntil` still
            // ahead), or held back by the Rust runner's machine-free function.
            let off = match (m.has_capacity, m.disabled_until) {
                (Some(has), _) => Some(!has),
                (None, Some(until)) => Some(until > ts),
                (None, None) => None,
            };
            if let Some(off) = off {
                tl.disabled.entry(m.name.clone()).or_insert_with(nan)[i] = f64::from(u8::from(off));
            }
            tl.capacity_known |= m.has_capacity.is_some();
        }
        for (stage, v) in [
            (Stage::Building, s.steps_building),
            (Stage::CopyingTo, s.steps_copying_to),
            (Stage::CopyingFrom, s.steps_copying_from),
            (Stage::WaitingSendLock, s.steps_waiting),
            (Stage::WaitingDownloadSlot, s.steps_waiting_for_local_slot),
        ] {
            if let Some(v) = v {
                tl.stages.entry(stage).or_insert_with(nan)[i] = val(Some(v));
            }
        }
    }
    Some(tl)
}

/// The median time between consecutive samples, whole seconds (at least 1); the default
/// interval of `--watch` when there are fewer than two.
fn median_interval(ordered: &[(f64, &Status)]) -> i64 {
    let mut gaps: Vec<f64> = ordered
        .windows(2)
        .map(|w| w[1].0 - w[0].0)
        .filter(|g| *g > 0.0)
        .collect();
    if gaps.is_empty() {
        return super::fetch::DEFAULT_INTERVAL.as_secs() as i64;
    }
    gaps.sort_by(f64::total_cmp);
    (gaps[gaps.len() / 2].round() as i64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_across_a_restart() {
        let text = [
            r#"{"t": 0, "source": "x", "status": {"nrStepsDone": 10}}"#,
            r#"{"t": 1800, "source": "x", "status": {"nrStepsDone": 40}}"#,
            r#"{"t": 3600, "source": "x", "status": {"nrStepsDone": 5}}"#,
            r#"{"t": 3700, "source": "x", "error": "GET x: timed out"}"#,
            r#"{"t": 37"#,
        ]
        .join("\n");
        let series = parse(&text, "s.jsonl");
        assert_eq!(
            (series.samples.len(), series.errors, series.bad_lines),
            (3, 1, 1)
        );
        assert_eq!(series.first_bad_line, Some(5));
        let s = summarise(&series, None);
        let r = s.rates.iter().find(|r| r.counter == "steps done").unwrap();
        // 30 before the restart, 5 after it, over one hour.
        assert_eq!((r.increase, r.over_s, r.resets), (35.0, 3600.0, 1));
        assert!((r.value - 35.0).abs() < 1e-9);
    }

    /// Watched `/status` documents of the Rust runner say per machine whether its machine-free
    /// function would hand it a step: a machine it holds back takes no work at that sample.
    #[test]
    fn the_rust_runners_held_back_machines_take_no_work_in_the_series() {
        let doc = include_str!("../../tests/fixtures/status/rust-runner-master.json");
        let compact: serde_json::Value = serde_json::from_str(doc).unwrap();
        let text = format!(r#"{{"t": 60, "source": "x", "status": {compact}}}"#);
        let tl = to_timeline(&parse(&text, "w.jsonl"), Some(30), None, "w.jsonl").unwrap();
        assert!(tl.capacity_known);
        assert_eq!(tl.disabled["x86-1.example"][0], 1.0, "hasCapacity false");
        assert_eq!(tl.disabled["x86-2.example"][0], 0.0, "hasCapacity true");
        // A C++ document: disabled while disabledUntil is ahead of the sample, and nothing
        // said about capacity.
        let line = |until: u32| {
            format!(
                r#"{{"t": 60, "source": "x", "status": {{"machines": {{"ssh://b1": {{"currentJobs": 1, "disabledUntil": {until}}}}}}}}}"#
            )
        };
        for (until, off) in [(0, 0.0), (1000, 1.0)] {
            let tl = to_timeline(&parse(&line(until), "c"), Some(30), None, "c").unwrap();
            assert!(!tl.capacity_known);
            assert_eq!(tl.disabled["ssh://b1"][0], off, "disabledUntil {until}");
        }
    }

    #[test]
    fn a_series_on_a_grid_takes_the_latest_sample_within_one_step() {
        let line = |t: f64, runnable: u32, jobs: u32| {
            format!(
                r#"{{"t": {t}, "source": "x", "status": {{"nrStepsBuilding": {jobs}, "machineTypes": {{"x86_64-linux": {{"runnable": {runnable}, "running": 1}}}}, "machines": {{"ssh://b1": {{"currentJobs": {jobs}}}}}}}}}"#
            )
        };
        // Samples at 1 s past 0, 30 and 60; none near 90 and 120; one at 150.
        let text = [
            line(1.0, 5, 2),
            line(31.0, 6, 3),
            line(61.0, 7, 4),
            line(150.0, 8, 5),
        ]
        .join("\n");
        let series = parse(&text, "s.jsonl");
        let tl = to_timeline(&series, Some(30), None, "s.jsonl").unwrap();
        assert_eq!(tl.times, [30, 60, 90, 120, 150]);
        let r = &tl.runnable["x86_64-linux"];
        assert_eq!(r[..3], [5.0, 6.0, 7.0]);
        assert!(
            r[3].is_nan(),
            "the sample at 61 is a step old at 120: {r:?}"
        );
        assert_eq!(r[4], 8.0);
        assert_eq!(tl.current_jobs["ssh://b1"][0], 2.0);
        assert_eq!(tl.stages[&Stage::Building][2], 4.0);
        assert!(!tl.stages.contains_key(&Stage::CopyingTo));
        // The window bounds the grid; the median interval is the default step.
        let tl = to_timeline(&series, None, Some((60, 100)), "s").unwrap();
        assert_eq!((tl.step_s, tl.times.as_slice()), (30, &[60, 90][..]));
        assert!(to_timeline(&series, None, Some((1000, 2000)), "s").is_none());
    }
}
