//! The runner's series from a Prometheus server: a client of its HTTP API's range query
//! (`GET /api/v1/query_range`) that reads the queue runner's gauges over a window onto a
//! [`Timeline`].
//!
//! What it asks. One PromQL expression per family, summed by the family's own label (`sum by
//! (machine_type)`, `sum by (hostname)`, `sum(…)` for a farm-wide counter), so that the labels
//! Prometheus adds per scrape target (`instance`, `job`) do not split a machine type or a
//! machine into several series when the runner moved host or port, or was scraped under two
//! jobs over the window. The names are those of [`super::exporters`]: the Rust runner's
//! `hydraqueuerunner_*` are tried first, then hydra_exporter's `hydra_queue_runner_*`; the
//! first whose runnable-per-type family holds a series in the window is the one read. Under
//! the Rust runner `machine_type_runnable` counts running steps too, so the steps waiting are
//! runnable − running (read as its own family and subtracted here, point by point). Under
//! hydra_exporter each machine's `machine_disabled_until` is read as `max by (host)` (a time,
//! which a sum would push decades ahead) and a machine is disabled at a point while it is later
//! than the point.
//!
//! The answer, as the API documents it: `{"status":"success","data":{"resultType":"matrix",
//! "result":[{"metric":{labels},"values":[[<unix seconds>,"<value>"],…]}]}}`, or
//! `{"status":"error","errorType":…,"error":…}` with a 4xx or 5xx status. Prometheus refuses a
//! range of more than 11,000 steps per series (`web/api/v1/api.go`, `queryRange`: "exceeded
//! maximum resolution of 11,000 points per timeseries"), so a long window is asked in pieces of
//! at most [`MAX_POINTS`] grid points and joined. A point the answer lacks (a failed scrape, a
//! series older than the lookback) stays `NaN` on the grid.
//!
//! Credentials: a bearer token (`HYDRA_BOTTLENECK_PROMETHEUS_TOKEN`, or a token file) or basic
//! auth (user:password in the URL, or `HYDRA_BOTTLENECK_PROMETHEUS_USER`/`_PASSWORD`), sent as
//! an `Authorization` header and never shown: every message names the URL redacted
//! ([`crate::redact`]) and has the token and password replaced by `***`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::exporters::{self, Exporter};
use super::timeline::{Stage, Timeline};
use crate::error::{Error, Result};
use crate::http::humantime;
use crate::progress::Progress;

/// The environment variable holding a bearer token.
pub const ENV_TOKEN: &str = "HYDRA_BOTTLENECK_PROMETHEUS_TOKEN";
/// The environment variables holding a basic-auth user and password.
pub const ENV_USER: &str = "HYDRA_BOTTLENECK_PROMETHEUS_USER";
pub const ENV_PASSWORD: &str = "HYDRA_BOTTLENECK_PROMETHEUS_PASSWORD";

/// The grid's default step, seconds: the interval `status --watch` samples at
/// ([`super::fetch::DEFAULT_INTERVAL`]) and a common scrape interval, so each point is about
/// one scrape; finer would repeat samples, coarser would blur dispatch stalls of a minute.
pub const DEFAULT_STEP_S: i64 = 30;

/// Grid points per request. Prometheus refuses a range whose (end − start) / step exceeds
/// 11,000 (`web/api/v1/api.go`); a piece of 11,000 points has 10,999 steps, within it.
pub const MAX_POINTS: usize = 11_000;

/// The most read of one answer. A piece holds at most [`MAX_POINTS`] points per series, some
/// 25 bytes each in JSON (`[1764892800,"12"],`), so 275 KB per series; 128 MiB holds about 480
/// series, past the machine types and machines of the largest farm (hydra.nixos.org has some
/// 40 builders and 10 systems), while a query that went wrong cannot fill memory.
pub const MAX_ANSWER: u64 = 128 * 1024 * 1024;

/// Tries of one request before its failure is final. Four waits of 1, 2, 4 and 8 s ride out a
/// Prometheus restart or a proxy's brief 502 without making a dead server take long to report.
pub const MAX_TRIES: u32 = 5;

/// The first wait after a failed try, doubled after each further one.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// The longest wait a `Retry-After` is honoured for: a server asking for more is busier than a
/// read of its history should wait on, and the failure is then reported instead.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The most read of a token file: a bearer token (a JWT, say) is at most a few KiB.
const TOKEN_FILE_CAP: u64 = 64 * 1024;

/// How requests prove who sends them.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Auth {
    #[default]
    None,
    Bearer(String),
    Basic {
        user: String,
        password: String,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret itself, even in a debug print.
        f.write_str(match self {
            Auth::None => "Auth::None",
            Auth::Bearer(_) => "Auth::Bearer(***)",
            Auth::Basic { .. } => "Auth::Basic(***)",
        })
    }
}

impl Auth {
    /// The `Authorization` header's value.
    fn header(&self) -> Option<String> {
        match self {
            Auth::None => None,
            Auth::Bearer(t) => Some(format!("Bearer {t}")),
            Auth::Basic { user, password } => Some(format!(
                "Basic {}",
                base64(format!("{user}:{password}").as_bytes())
            )),
        }
    }

    /// The secrets to hide in any text shown.
    fn secrets(&self) -> Vec<&str> {
        let mut s = match self {
            Auth::None => vec![],
            Auth::Bearer(t) => vec![t.as_str()],
            Auth::Basic { password, .. } => vec![password.as_str()],
        };
        s.retain(|x| !x.is_empty());
        s
    }
}

/// The server's base URL without its userinfo, and the credentials to send: the token file
/// first, then the token variable, then the URL's user:password, then the user and password
/// variables. `env` reads the environment (a parameter, so tests give their own).
pub fn resolve_auth(
    url: &str,
    token_file: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, Auth)> {
    let (bare, userinfo) = split_userinfo(url);
    if let Some(p) = token_file {
        let text = crate::readfile::read_capped_string(p, "Prometheus token file", TOKEN_FILE_CAP)?;
        let token = text.trim();
        if token.is_empty() || token.contains(['\n', '\r']) {
            return Err(Error::Unreadable {
                what: "Prometheus token file".into(),
                path: p.to_path_buf(),
                reason: "does not hold one token on one line".into(),
            });
        }
        return Ok((bare, Auth::Bearer(token.to_string())));
    }
    if let Some(t) = env(ENV_TOKEN).filter(|t| !t.trim().is_empty()) {
        return Ok((bare, Auth::Bearer(t.trim().to_string())));
    }
    if let Some(info) = userinfo {
        let (user, password) = info.split_once(':').unwrap_or((info.as_str(), ""));
        return Ok((
            bare,
            Auth::Basic {
                user: percent_decode(user),
                password: percent_decode(password),
            },
        ));
    }
    if let Some(user) = env(ENV_USER).filter(|u| !u.is_empty()) {
        let password = env(ENV_PASSWORD).unwrap_or_default();
        return Ok((bare, Auth::Basic { user, password }));
    }
    Ok((bare, Auth::None))
}

/// `http://user:pw@host/p` → (`http://host/p`, `user:pw`).
fn split_userinfo(url: &str) -> (String, Option<String>) {
    let Some(scheme) = crate::redact::scheme(url) else {
        return (url.to_string(), None);
    };
    let head = scheme.len() + "://".len();
    let rest = &url[head..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => (
            format!("{}{}", &url[..head], &rest[at + 1..]),
            Some(rest[..at].to_string()),
        ),
        None => (url.to_string(), None),
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Standard base64 with padding (RFC 4648 §4), for the basic-auth header.
fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(ABC[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// What to read.
#[derive(Debug, Clone)]
pub struct Options {
    /// The server's base URL (`http://prometheus:9090`, or with a path prefix behind a proxy),
    /// without credentials: [`resolve_auth`] takes them out.
    pub url: String,
    /// The window, unix seconds, `[lo, hi)`.
    pub window: (i64, i64),
    /// The grid's step, seconds.
    pub step_s: i64,
    /// Bound on one request, connect to last byte.
    pub timeout: Duration,
    pub auth: Auth,
    /// The first wait after a failed try ([`FIRST_BACKOFF`]; tests shorten it).
    pub backoff: Duration,
    pub progress: Progress,
}

impl Options {
    pub fn new(url: impl Into<String>, window: (i64, i64)) -> Options {
        Options {
            url: url.into(),
            window,
            step_s: DEFAULT_STEP_S,
            timeout: super::fetch::DEFAULT_TIMEOUT,
            auth: Auth::None,
            backoff: FIRST_BACKOFF,
            progress: Progress::hidden(),
        }
    }
}

/// The grid of a window: the multiples of `step` in `[lo, hi)`. Aligned to the step, so the
/// same window gives the same points (and Prometheus' caches see the same queries).
pub fn grid(window: (i64, i64), step: i64) -> Vec<i64> {
    if step <= 0 || window.1 <= window.0 {
        return Vec::new();
    }
    let first = window.0.div_euclid(step) * step
        + if window.0.rem_euclid(step) == 0 {
            0
        } else {
            step
        };
    (0..)
        .map(|k| first + k * step)
        .take_while(|&t| t < window.1)
        .collect()
}

/// One series of an answer: its labels and points.
#[derive(Deserialize)]
struct MatrixSeries<'a> {
    #[serde(borrow, default)]
    metric: BTreeMap<Cow<'a, str>, Cow<'a, str>>,
    #[serde(borrow, default)]
    values: Vec<(f64, Cow<'a, str>)>,
}

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(rename = "resultType")]
    result_type: Cow<'a, str>,
    #[serde(borrow, default)]
    result: Vec<MatrixSeries<'a>>,
}

#[derive(Deserialize)]
struct Answer<'a> {
    status: Cow<'a, str>,
    #[serde(borrow, default)]
    data: Option<Data<'a>>,
    #[serde(rename = "errorType", default)]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// One family as read: its series by the value of the label summed by (`""` for a sum over
/// everything), each on the grid.
type Family = BTreeMap<String, Vec<f64>>;

/// A client for one read: the agent, the grid and where messages point.
struct Client<'o> {
    opts: &'o Options,
    agent: ureq::Agent,
    endpoint: String,
    shown: String,
    times: Vec<i64>,
    bar: indicatif::ProgressBar,
}

impl Client<'_> {
    /// `text` with the URL's secrets and the credentials replaced.
    fn hide(&self, text: &str) -> String {
        let mut t = crate::redact::scrub(text, &self.opts.url);
        for s in self.opts.auth.secrets() {
            t = t.replace(s, "***");
        }
        t
    }

    fn fail(&self, reason: String) -> Error {
        Error::Http {
            url: self.shown.clone(),
            reason: self.hide(&reason),
        }
    }

    /// Reads `query` over the whole grid, in pieces, into one family keyed by `label`.
    fn family(&self, query: &str, label: Option<&str>) -> Result<Family> {
        let mut out: Family = BTreeMap::new();
        let n = self.times.len();
        let step = self.opts.step_s;
        let first = self.times.first().copied().unwrap_or(0);
        for (piece, idx) in (0..n).step_by(MAX_POINTS).enumerate() {
            crate::interrupt::check()?;
            let last = (idx + MAX_POINTS).min(n) - 1;
            let (start, end) = (self.times[idx], self.times[last]);
            let body = self.get(query, start, end)?;
            let answer: Answer<'_> = serde_json::from_slice(&body).map_err(|e| {
                self.fail(format!(
                    "the answer to piece {} of `{query}` is not a Prometheus API answer ({e})",
                    piece + 1
                ))
            })?;
            let data = self.success(answer, query)?;
            for s in data.result {
                let key = match label {
                    Some(l) => match s.metric.get(l) {
                        Some(v) => v.to_string(),
                        // A series without the label summed by: not one of ours.
                        None => continue,
                    },
                    None => String::new(),
                };
                let row = out.entry(key).or_insert_with(|| vec![f64::NAN; n]);
                for (t, v) in s.values {
                    let k = ((t - first as f64) / step as f64).round();
                    if !(0.0..n as f64).contains(&k) {
                        continue;
                    }
                    // A value that is not a finite number (`NaN`, `+Inf`) is a missing sample.
                    let v: f64 = v.parse().unwrap_or(f64::NAN);
                    row[k as usize] = if v.is_finite() { v } else { f64::NAN };
                }
            }
            self.bar.inc(1);
        }
        Ok(out)
    }

    /// The data of a successful answer, or the error Prometheus said.
    fn success<'a>(&self, answer: Answer<'a>, query: &str) -> Result<Data<'a>> {
        if answer.status != "success" {
            return Err(self.fail(format!(
                "Prometheus refused `{query}`: {}",
                prom_error(answer.error_type.as_deref(), answer.error.as_deref())
            )));
        }
        match answer.data {
            Some(d) if d.result_type == "matrix" => Ok(d),
            Some(d) => Err(self.fail(format!(
                "the answer to `{query}` is a {}, not a matrix",
                d.result_type
            ))),
            None => Err(self.fail(format!("the answer to `{query}` has no data"))),
        }
    }

    /// One range query, retried on connection errors, 5xx and 429; the body of a 2xx answer.
    fn get(&self, query: &str, start: i64, end: i64) -> Result<Vec<u8>> {
        let mut tries = 0;
        let mut wait = self.opts.backoff;
        loop {
            tries += 1;
            let outcome = self.try_get(query, start, end);
            let retry_after = match outcome {
                Attempt::Done(body) => return Ok(body),
                Attempt::Final(reason) => return Err(self.fail(reason)),
                Attempt::Again(reason, after) if tries >= MAX_TRIES => {
                    let _ = after;
                    return Err(self.fail(format!("{reason} (after {tries} tries)")));
                }
                Attempt::Again(reason, after) => {
                    tracing::info!("{}: {}; trying again", self.shown, self.hide(&reason));
                    after
                }
            };
            let pause = match retry_after {
                Some(a) if a <= MAX_RETRY_AFTER => a.max(wait),
                Some(a) => {
                    return Err(self.fail(format!(
                        "the server asks to wait {} before trying again (Retry-After), longer \
                         than the {} this read waits",
                        humantime(a),
                        humantime(MAX_RETRY_AFTER)
                    )));
                }
                None => wait,
            };
            std::thread::sleep(pause);
            crate::interrupt::check()?;
            wait = wait.saturating_mul(2);
        }
    }

    fn try_get(&self, query: &str, start: i64, end: i64) -> Attempt {
        let mut req = self
            .agent
            .get(&self.endpoint)
            .query("query", query)
            .query("start", start.to_string())
            .query("end", end.to_string())
            .query("step", self.opts.step_s.to_string())
            .header("Accept", "application/json");
        if let Some(h) = self.opts.auth.header() {
            req = req.header("Authorization", h);
        }
        let mut resp = match req.call() {
            Ok(r) => r,
            Err(e @ ureq::Error::BodyExceedsLimit(_)) => {
                return Attempt::Final(describe(&e, self.opts.timeout));
            }
            Err(e) => return Attempt::Again(describe(&e, self.opts.timeout), None),
        };
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = match resp
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_vec()
        {
            Ok(b) => b,
            Err(e @ ureq::Error::BodyExceedsLimit(_)) => {
                return Attempt::Final(describe(&e, self.opts.timeout));
            }
            Err(e) if status.is_success() => {
                return Attempt::Again(describe(&e, self.opts.timeout), None);
            }
            Err(_) => Vec::new(),
        };
        if status.is_success() {
            return Attempt::Done(body);
        }
        let line = crate::http::status_line(status);
        let said = said_in(&body);
        let reason = match &said {
            Some(s) => format!("the server answered {line}: {s}"),
            None => format!("the server answered {line}"),
        };
        let code = status.as_u16();
        if code == 429 || status.is_server_error() {
            Attempt::Again(reason, retry_after)
        } else if code == 401 || code == 403 {
            let hint = match self.opts.auth {
                Auth::None => format!(
                    "; no credentials were sent (give a token in {ENV_TOKEN} or \
                     --prometheus-token-file, or user:password in the URL or {ENV_USER}/\
                     {ENV_PASSWORD})"
                ),
                _ => "; the credentials sent were refused".to_string(),
            };
            Attempt::Final(format!("{reason}{hint}"))
        } else {
            Attempt::Final(reason)
        }
    }
}

/// The outcome of one try.
enum Attempt {
    Done(Vec<u8>),
    /// Worth another try, after the server's `Retry-After` if it gave one.
    Again(String, Option<Duration>),
    Final(String),
}

fn describe(e: &ureq::Error, timeout: Duration) -> String {
    crate::http::describe(
        e,
        timeout,
        &format!(
            "{} MiB; narrow the window or raise --prometheus-step",
            MAX_ANSWER / (1024 * 1024)
        ),
    )
}

/// `bad_data: exceeded maximum resolution …`.
fn prom_error(kind: Option<&str>, error: Option<&str>) -> String {
    match (kind, error) {
        (Some(k), Some(e)) => format!("{k}: {}", crate::http::one_line(e)),
        (None, Some(e)) => crate::http::one_line(e),
        (Some(k), None) => k.to_string(),
        (None, None) => "no reason given".into(),
    }
}

/// What an error answer's body says: Prometheus' own error, or the first line of a proxy's
/// text (cut short), or nothing.
fn said_in(body: &[u8]) -> Option<String> {
    if let Ok(a) = serde_json::from_slice::<Answer<'_>>(body)
        && (a.error.is_some() || a.error_type.is_some())
    {
        return Some(prom_error(a.error_type.as_deref(), a.error.as_deref()));
    }
    let text = String::from_utf8_lossy(body);
    let line = crate::http::one_line(text.lines().next().unwrap_or(""));
    // A proxy's HTML page says nothing a line can use.
    if line.is_empty() || line.starts_with('<') {
        return None;
    }
    Some(line.chars().take(200).collect())
}

/// What was read, beside the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    pub timeline: Timeline,
    pub exporter: Exporter,
    /// Requests made (pieces × families, and the detection's).
    pub requests: usize,
    /// Stage counters the exporter has but the server held no series of.
    pub stages_absent: Vec<Stage>,
}

/// The expression of a family: `sum by (label) (name)`, or `sum(name)`.
fn expr(name: &str, label: Option<&str>) -> String {
    match label {
        Some(l) => format!("sum by ({l}) ({name})"),
        None => format!("sum({name})"),
    }
}

/// Reads the runner's series over `opts.window` from the Prometheus server at `opts.url`.
pub fn fetch(opts: &Options) -> Result<Fetched> {
    let shown = format!(
        "{}/api/v1/query_range",
        crate::redact::redact(opts.url.trim_end_matches('/'))
    );
    if opts.step_s <= 0 {
        return Err(Error::Usage(format!(
            "--prometheus-step {} is not a positive number of seconds",
            opts.step_s
        )));
    }
    let times = grid(opts.window, opts.step_s);
    if times.is_empty() {
        return Err(Error::NoData(format!(
            "{shown}: the window holds no point of a {} s grid",
            opts.step_s
        )));
    }
    let pieces = times.len().div_ceil(MAX_POINTS);
    let agent: ureq::Agent = crate::http::config("read-only Prometheus reader")
        .timeout_global(Some(opts.timeout))
        .build()
        .into();
    let client = Client {
        opts,
        agent,
        endpoint: format!("{}/api/v1/query_range", opts.url.trim_end_matches('/')),
        shown,
        times,
        // Runnable, running (Rust) or disabled-until (hydra_exporter), current jobs and four
        // stages: seven families past the detection.
        bar: opts.progress.items(
            "reading the runner's series from Prometheus",
            (8 * pieces) as u64,
        ),
    };
    let mut requests = 0;

    // Which names: the first exporter whose runnable-per-type family has a series.
    let mut tried = Vec::new();
    let mut found = None;
    for exp in [Exporter::RustRunner, Exporter::HydraExporter] {
        let name = format!("{}{}", exp.prefix(), exporters::TYPE_RUNNABLE);
        let fam = client.family(&expr(&name, Some(exp.type_label())), Some(exp.type_label()))?;
        requests += pieces;
        tried.push(name);
        if !fam.is_empty() {
            found = Some((exp, fam));
            break;
        }
    }
    let Some((exp, mut runnable)) = found else {
        client.bar.finish_and_clear();
        return Err(client.fail(format!(
            "no series of the runnable steps per machine type in the window: expected {} or {}, \
             tried {}",
            Exporter::RustRunner,
            Exporter::HydraExporter,
            tried.join(", ")
        )));
    };
    let p = exp.prefix();
    let absent = |name: &str| {
        client.fail(format!(
            "no series of {name} in the window, which {exp} should export (tried `{}`)",
            expr(name, None)
        ))
    };
    if exp.runnable_includes_running() {
        let name = format!("{p}{}", exporters::TYPE_RUNNING);
        let running =
            client.family(&expr(&name, Some(exp.type_label())), Some(exp.type_label()))?;
        requests += pieces;
        if running.is_empty() {
            client.bar.finish_and_clear();
            return Err(absent(&name));
        }
        for (ty, row) in runnable.iter_mut() {
            let run = running.get(ty);
            for (i, v) in row.iter_mut().enumerate() {
                // A type with no running series ran nothing; a missing point stays missing.
                let r = run.map_or(0.0, |r| r[i]);
                // Between the runner's two updates the queue can read shorter than the running
                // steps; that is none waiting (as `exporters::to_status` reads one scrape).
                // (`max` would turn a missing point into 0, hence the test first.)
                *v = if v.is_nan() || r.is_nan() {
                    f64::NAN
                } else {
                    (*v - r).max(0.0)
                };
            }
        }
    }
    let name = format!("{p}{}", exporters::MACHINE_CURRENT_JOBS);
    let current_jobs = client.family(
        &expr(&name, Some(exp.machine_label())),
        Some(exp.machine_label()),
    )?;
    requests += pieces;
    if current_jobs.is_empty() {
        client.bar.finish_and_clear();
        return Err(absent(&name));
    }
    // Machines disabled after failures (C++ runner, through hydra_exporter): disabled while
    // their disabled-until time is past the point's. `max`, not `sum`: a time summed over two
    // scrapes of the same runner would lie decades ahead.
    let mut disabled = BTreeMap::new();
    if exp == Exporter::HydraExporter {
        let label = exp.machine_label();
        let name = format!("{p}{}", exporters::MACHINE_DISABLED_UNTIL);
        let until = client.family(&format!("max by ({label}) ({name})"), Some(label))?;
        requests += pieces;
        for (m, row) in until {
            let flags = row
                .iter()
                .zip(&client.times)
                .map(|(u, &t)| {
                    if u.is_nan() {
                        f64::NAN
                    } else {
                        f64::from(u8::from(*u > t as f64))
                    }
                })
                .collect();
            disabled.insert(m, flags);
        }
    }
    let mut stages = BTreeMap::new();
    let mut stages_absent = Vec::new();
    for stage in Stage::ALL {
        let Some(fam) = exp.stage_family(stage) else {
            continue;
        };
        let name = format!("{p}{fam}");
        let mut got = client.family(&expr(&name, None), None)?;
        requests += pieces;
        match got.remove("") {
            Some(row) => {
                stages.insert(stage, row);
            }
            None => stages_absent.push(stage),
        }
    }
    client.bar.finish_and_clear();
    Ok(Fetched {
        timeline: Timeline {
            source: format!(
                "Prometheus at {}, query_range step {} s",
                crate::redact::redact(opts.url.trim_end_matches('/')),
                opts.step_s
            ),
            naming: p.trim_end_matches('_').to_string(),
            step_s: opts.step_s,
            times: client.times.clone(),
            runnable,
            current_jobs,
            disabled,
            stages,
            ..Timeline::default()
        },
        exporter: exp,
        requests,
        stages_absent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_as_rfc_4648_gives_it() {
        // RFC 4648 §10's test vectors.
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn credentials_come_out_of_the_url_and_the_environment() {
        let none = |_: &str| None;
        let (u, a) = resolve_auth("https://al%40x:p%3Aw@prom.example/p", None, &none).unwrap();
        assert_eq!(u, "https://prom.example/p");
        assert_eq!(
            a,
            Auth::Basic {
                user: "al@x".into(),
                password: "p:w".into()
            }
        );
        let env = |k: &str| (k == ENV_TOKEN).then(|| " t0k \n".to_string());
        let (u, a) = resolve_auth("http://u:p@h:9090", None, &env).unwrap();
        assert_eq!(
            (u.as_str(), a),
            ("http://h:9090", Auth::Bearer("t0k".into()))
        );
        let env = |k: &str| match k {
            ENV_USER => Some("me".to_string()),
            ENV_PASSWORD => Some("pw".to_string()),
            _ => None,
        };
        let (_, a) = resolve_auth("http://h", None, &env).unwrap();
        assert_eq!(a.header().unwrap(), "Basic bWU6cHc=");
        assert_eq!(format!("{a:?}"), "Auth::Basic(***)");
    }

    #[test]
    fn the_grid_is_aligned_to_the_step() {
        assert_eq!(grid((1, 100), 30), [30, 60, 90]);
        assert_eq!(grid((0, 90), 30), [0, 30, 60]);
        assert_eq!(grid((-45, 0), 30), [-30]);
        assert!(grid((10, 10), 30).is_empty());
        assert_eq!(split_userinfo("http://a@b@h/x@y").0, "http://h/x@y");
    }
}
