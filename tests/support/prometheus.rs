//! A Prometheus server's range-query API over series it holds, for the loopback tests and the
//! benchmark of `status::prometheus`: [`Prom::answer`] answers `GET /api/v1/query_range` as
//! Prometheus' `web/api/v1/api.go` (`queryRange`) does, and nothing else.
//!
//! What it evaluates, really rather than by rote: the expressions `NAME`, `sum(NAME)`,
//! `sum by (LABEL) (NAME)` and `max by (LABEL) (NAME)` over the raw samples it holds, at `start`, `start + step`, … up to
//! `end`, each series taking its latest sample at or before the instant and no older than the
//! lookback (five minutes, Prometheus' default `--query.lookback-delta`). So a runner scraped
//! under two `instance` labels is summed, as Prometheus would sum it. A point no series has is
//! left out of the answer, and a series with no point is left out whole, as Prometheus does.
//!
//! What it refuses as Prometheus does, with 400 and `{"status":"error","errorType":"bad_data",
//! …}`: a range of more than 11,000 steps (`(end − start) / step > 11000`), an end before the
//! start, a step that is not positive, a parameter that does not parse, and an expression it
//! does not know (Prometheus would evaluate more; these tests need no more).

#![allow(dead_code)] // the tests and the benchmark each use a part

use std::collections::BTreeMap;

use hydra_bottleneck::status::exporters::{self, Exporter};
use hydra_bottleneck::status::timeline::Timeline;

use super::http::{Request, Response};

/// Prometheus' default lookback: a sample stands for the five minutes after it.
pub(crate) const LOOKBACK_S: f64 = 300.0;

/// Prometheus' bound on a range query's steps (`web/api/v1/api.go`, `queryRange`).
pub(crate) const MAX_STEPS: f64 = 11_000.0;

/// One raw series: its labels (the metric's name under `__name__`) and samples, ascending.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) samples: Vec<(f64, f64)>,
}

/// What the server holds.
#[derive(Debug, Clone, Default)]
pub(crate) struct Prom {
    pub(crate) series: Vec<Series>,
}

fn bad(msg: &str) -> Response {
    let body = serde_json::json!({"status": "error", "errorType": "bad_data", "error": msg});
    Response::new(400, "Bad Request")
        .header("Content-Type", "application/json")
        .body(body.to_string())
}

/// `%XX` and `+` of a query string.
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let h = u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap_or(b'?');
                out.push(h);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The request's query parameters.
fn params(req: &Request) -> BTreeMap<String, String> {
    let q = req.target.split_once('?').map_or("", |(_, q)| q);
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// A time: unix seconds, possibly fractional (RFC 3339 is not needed here).
fn time(v: Option<&String>, name: &str) -> Result<f64, String> {
    v.and_then(|s| s.parse::<f64>().ok()).ok_or_else(|| {
        format!(
            "invalid parameter \"{name}\": cannot parse \"{}\" to a valid timestamp",
            v.map_or("", |s| s.as_str())
        )
    })
}

/// A step: seconds as a number, or with an `s` (`30s`).
fn step(v: Option<&String>) -> Result<f64, String> {
    let s = v.map_or("", |s| s.as_str());
    s.trim_end_matches('s').parse::<f64>().map_err(|_| {
        format!("invalid parameter \"step\": cannot parse \"{s}\" to a valid duration")
    })
}

/// An expression this server evaluates: the metric's name, the label aggregated by (`Some("")`
/// for `sum(…)`, `None` for the bare name), and whether the aggregation is `max` (else `sum`).
fn parse_expr(q: &str) -> Option<(String, Option<String>, bool)> {
    let q = q.trim();
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    if let Some(rest) = q.strip_prefix("max by (") {
        let (label, rest) = rest.split_once(')')?;
        let inner = rest.trim().strip_prefix('(')?.strip_suffix(')')?.trim();
        return name_ok(inner).then(|| (inner.to_string(), Some(label.trim().to_string()), true));
    }
    if let Some(rest) = q.strip_prefix("sum by (") {
        let (label, rest) = rest.split_once(')')?;
        let inner = rest.trim().strip_prefix('(')?.strip_suffix(')')?.trim();
        return name_ok(inner).then(|| (inner.to_string(), Some(label.trim().to_string()), false));
    }
    if let Some(rest) = q.strip_prefix("sum(") {
        let inner = rest.strip_suffix(')')?.trim();
        return name_ok(inner).then(|| (inner.to_string(), Some(String::new()), false));
    }
    name_ok(q).then(|| (q.to_string(), None, false))
}

/// The value as Prometheus writes it (Go's `strconv.FormatFloat(v, 'f', -1, 64)`).
fn value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

impl Prom {
    /// Adds samples of `name` with `labels` (besides the name) at `times`; a `NaN` value is a
    /// scrape that failed: no sample.
    pub(crate) fn add(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        times: &[i64],
        values: &[f64],
    ) {
        let mut l: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        l.insert("__name__".into(), name.into());
        let samples = times
            .iter()
            .zip(values)
            .filter(|(_, v)| v.is_finite())
            .map(|(&t, &v)| (t as f64, v))
            .collect();
        self.series.push(Series { labels: l, samples });
    }

    /// The series a runner with timeline `tl` would have exported under `exp`'s names, scraped
    /// as each of `instances` (the `instance` label; the same values under each). Under the
    /// Rust runner's names the runnable gauge counts the running steps too, as the runner's
    /// does; hydra_exporter exports no download-slot stage, and each machine's disabled state as
    /// its disabled-until time.
    pub(crate) fn of_timeline(tl: &Timeline, exp: Exporter, instances: &[&str]) -> Prom {
        let mut p = Prom::default();
        let pre = exp.prefix();
        for inst in instances {
            let base = [("instance", *inst), ("job", "hydra")];
            for (ty, waiting) in &tl.runnable {
                let lab = [base[0], base[1], (exp.type_label(), ty.as_str())];
                let running = tl.running.get(ty);
                let runnable: Vec<f64> = if exp.runnable_includes_running() {
                    let r = running.expect("the timeline has running steps per type");
                    waiting.iter().zip(r).map(|(w, r)| w + r).collect()
                } else {
                    waiting.clone()
                };
                p.add(
                    &format!("{pre}{}", exporters::TYPE_RUNNABLE),
                    &lab,
                    &tl.times,
                    &runnable,
                );
                if let Some(r) = running {
                    p.add(
                        &format!("{pre}{}", exporters::TYPE_RUNNING),
                        &lab,
                        &tl.times,
                        r,
                    );
                }
            }
            for (m, jobs) in &tl.current_jobs {
                let lab = [base[0], base[1], (exp.machine_label(), m.as_str())];
                p.add(
                    &format!("{pre}{}", exporters::MACHINE_CURRENT_JOBS),
                    &lab,
                    &tl.times,
                    jobs,
                );
            }
            if !exp.runnable_includes_running() {
                // hydra_exporter's copy of the C++ `disabledUntil`: a time past the sample's
                // while the machine is disabled, else 0.
                for (m, flags) in &tl.disabled {
                    let lab = [base[0], base[1], (exp.machine_label(), m.as_str())];
                    let until: Vec<f64> = tl
                        .times
                        .iter()
                        .zip(flags)
                        .map(|(&t, &f)| if f > 0.0 { (t + tl.step_s) as f64 } else { 0.0 })
                        .collect();
                    let name = format!("{pre}{}", exporters::MACHINE_DISABLED_UNTIL);
                    p.add(&name, &lab, &tl.times, &until);
                }
            }
            for (stage, v) in &tl.stages {
                if let Some(f) = exp.stage_family(*stage) {
                    p.add(&format!("{pre}{f}"), &base, &tl.times, v);
                }
            }
        }
        p
    }

    /// Drops every series of `name`.
    pub(crate) fn without(mut self, name: &str) -> Prom {
        self.series
            .retain(|s| s.labels.get("__name__").map(String::as_str) != Some(name));
        self
    }

    /// The answer to one request.
    pub(crate) fn answer(&self, req: &Request) -> Response {
        if req.path != "/api/v1/query_range" {
            return Response::not_found();
        }
        match self.query_range(&params(req)) {
            Ok(body) => Response::json(body),
            Err(why) => bad(&why),
        }
    }

    /// The answer's body, or why the request is bad data.
    fn query_range(&self, p: &BTreeMap<String, String>) -> Result<String, String> {
        let start = time(p.get("start"), "start")?;
        let end = time(p.get("end"), "end")?;
        if end < start {
            return Err(String::from("end timestamp must not be before start time"));
        }
        let step = step(p.get("step"))?;
        if step <= 0.0 {
            return Err(String::from(
                "zero or negative query resolution step widths are not accepted. Try a positive integer",
            ));
        }
        // Go divides two durations as integers (nanoseconds): whole steps.
        if ((end - start) / step).floor() > MAX_STEPS {
            return Err(String::from(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
            ));
        }
        let q = p.get("query").map_or("", |s| s.as_str());
        let Some((name, by, max)) = parse_expr(q) else {
            return Err(format!("1:1: parse error: unexpected expression {q:?}"));
        };
        let chosen: Vec<&Series> = self
            .series
            .iter()
            .filter(|s| s.labels.get("__name__") == Some(&name))
            .collect();
        // Output series: their labels, and their points by step index.
        let mut out: BTreeMap<BTreeMap<String, String>, BTreeMap<usize, f64>> = BTreeMap::new();
        let n = ((end - start) / step).floor() as usize + 1;
        for s in &chosen {
            let key: BTreeMap<String, String> = match &by {
                None => s.labels.clone(),
                Some(l) if l.is_empty() => BTreeMap::new(),
                Some(l) => s
                    .labels
                    .get(l)
                    .map(|v| (l.clone(), v.clone()))
                    .into_iter()
                    .collect(),
            };
            for k in 0..n {
                let t = start + k as f64 * step;
                let i = s.samples.partition_point(|(ts, _)| *ts <= t);
                let Some(&(ts, v)) = i.checked_sub(1).and_then(|j| s.samples.get(j)) else {
                    continue;
                };
                if t - ts > LOOKBACK_S {
                    continue;
                }
                let row = out.entry(key.clone()).or_default();
                let e = row
                    .entry(k)
                    .or_insert(if max { f64::NEG_INFINITY } else { 0.0 });
                *e = if max { e.max(v) } else { *e + v };
            }
        }
        let mut body =
            String::from(r#"{"status":"success","data":{"resultType":"matrix","result":["#);
        for (i, (labels, points)) in out.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(r#"{"metric":"#);
            body.push_str(&serde_json::to_string(labels).expect("labels"));
            body.push_str(r#","values":["#);
            for (j, (k, v)) in points.iter().enumerate() {
                if j > 0 {
                    body.push(',');
                }
                let t = start + *k as f64 * step;
                body.push_str(&format!("[{t},\"{}\"]", value(*v)));
            }
            body.push_str("]}");
        }
        body.push_str("]}}");
        Ok(body)
    }
}
