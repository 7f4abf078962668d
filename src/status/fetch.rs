//! Getting status documents over HTTP, once or as a polite time series.
//!
//! One blocking GET at a time (ureq, rustls), bounded in time and size. The watch loop runs the
//! GET on a blocking thread under a small tokio runtime, so that Ctrl-C stops it at once even
//! in the middle of a slow request; every sample is one line appended to the output file with
//! a single write and flushed to disk before the next request, so a crash, a kill or a full
//! disk loses at most the line being written, never the ones before it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

use super::document;
use super::series::SampleLine;
use super::{Format, exporters};
use crate::error::{Error, Result};
use crate::http::humantime;

/// Upper bound on a status document. hydra.nixos.org's, with a few thousand jobsets and its
/// machines, is a few hundred KiB; 16 MiB leaves room for far larger farms while keeping a
/// misbehaving server (or a wrong URL serving a large file) from filling memory.
pub const MAX_BODY: u64 = 16 * 1024 * 1024;

/// Default bound on one request, connect to last byte. Hydra's `/queue-runner-status` asks the
/// C++ runner for a fresh dump and waits up to 5 s for it before serving the previous one; 15 s
/// covers that wait plus a slow link, and still fails well before the next 30 s sample is due.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// Default time between samples. The runner's counters move in seconds, but queue depth and
/// stage occupancy change over minutes; 30 s resolves a dispatch stall while costing the Hydra
/// server one small request a half-minute (2,880 a day, about the load of one open status page).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);

/// The longest wait between tries after repeated failures (doubling from the interval): long
/// enough to stop hammering a Hydra that is down, short enough that a restart is noticed within
/// minutes and the series keeps its shape.
pub const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// The shortest interval accepted. Below it the loop only measures itself; a real Hydra should
/// be polled every 10 s or slower, but tests on loopback need short intervals.
pub const MIN_INTERVAL: Duration = Duration::from_millis(50);

fn agent(timeout: Duration) -> ureq::Agent {
    crate::http::config("read-only status poller")
        .timeout_global(Some(timeout))
        .build()
        .into()
}

/// A body as served: its text and, when the server said, its `Content-Type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    pub text: String,
    pub content_type: Option<String>,
}

/// GETs `url` and returns the body; every failure is one line naming the URL.
pub fn get(url: &str, timeout: Duration) -> Result<Body> {
    get_with(&agent(timeout), url, timeout)
}

fn get_with(agent: &ureq::Agent, url: &str, timeout: Duration) -> Result<Body> {
    let fail = |reason: String| Error::Http {
        url: crate::redact::redact(url),
        reason: crate::redact::scrub(&reason, url),
    };
    let mut resp = agent
        .get(url)
        // Hydra's web server answers JSON to clients that ask for it. A /metrics endpoint
        // serves its text format whatever is asked (the Rust runner), or falls back to it for a
        // client that does not ask for protobuf or OpenMetrics (client_golang, hydra_exporter).
        .header("Accept", "application/json")
        .call()
        .map_err(|e| fail(describe(&e, timeout)))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(fail(format!(
            "the server answered {}",
            crate::http::status_line(status)
        )));
    }
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = resp
        .body_mut()
        .with_config()
        .limit(MAX_BODY)
        .read_to_vec()
        .map_err(|e| fail(describe(&e, timeout)))?;
    let text = String::from_utf8(bytes).map_err(|_| fail("the body is not UTF-8 text".into()))?;
    Ok(Body { text, content_type })
}

fn describe(e: &ureq::Error, timeout: Duration) -> String {
    crate::http::describe(
        e,
        timeout,
        &format!("{} MiB; not a status document?", MAX_BODY / (1024 * 1024)),
    )
}

/// What `status --watch` is asked to do.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    pub url: String,
    pub out: PathBuf,
    pub interval: Duration,
    pub timeout: Duration,
    /// Stop after this many requests (each is one line); `None` runs until Ctrl-C.
    pub samples: Option<u64>,
}

/// What a watch did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WatchReport {
    pub out: PathBuf,
    /// Lines appended: documents plus failed requests.
    pub lines: u64,
    pub documents: u64,
    pub failed: u64,
    /// `Ctrl-C` or `sample count`.
    pub stopped_by: &'static str,
}

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The output file, opened for appending. A last line cut off by an earlier crash gets its
/// newline first, so the next sample starts a line of its own.
fn open_append(path: &Path) -> Result<std::fs::File> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let len = f.metadata().map_err(|e| Error::io(path, e))?.len();
    if len > 0 {
        use std::io::{Read, Seek, SeekFrom};
        let mut last = [0u8; 1];
        f.seek(SeekFrom::Start(len - 1))
            .and_then(|_| f.read_exact(&mut last))
            .map_err(|e| Error::io(path, e))?;
        if last[0] != b'\n' {
            f.write_all(b"\n").map_err(|e| Error::io(path, e))?;
        }
    }
    Ok(f)
}

fn append(f: &mut std::fs::File, path: &Path, line: &SampleLine) -> Result<()> {
    let mut text =
        serde_json::to_string(line).map_err(|e| Error::io(path, std::io::Error::other(e)))?;
    text.push('\n');
    // One write of the whole line (append mode keeps it whole), then to disk before going on.
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_data())
        .map_err(|e| Error::io(path, e))
}

/// The wait before the next try after `failures` failures in a row.
pub fn next_delay(interval: Duration, failures: u32) -> Duration {
    if failures == 0 {
        return interval;
    }
    let cap = MAX_BACKOFF.max(interval);
    interval
        .checked_mul(1u32.checked_shl(failures.min(20)).unwrap_or(u32::MAX))
        .unwrap_or(cap)
        .min(cap)
}

/// Polls `opts.url` until Ctrl-C or the sample count, appending one line per request; `note`
/// hears of each sample as it is taken.
pub fn watch(opts: &WatchOptions, note: &dyn Fn(&str)) -> Result<WatchReport> {
    if opts.interval < MIN_INTERVAL {
        return Err(Error::Usage(format!(
            "--interval {} is too short; poll a Hydra every 10 s or slower",
            humantime(opts.interval)
        )));
    }
    let mut file = open_append(&opts.out)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::system("starting the async runtime", e))?;
    let result = rt.block_on(watch_loop(opts, &mut file, note));
    // A request still running after Ctrl-C is abandoned, not waited for.
    rt.shutdown_background();
    result
}

async fn watch_loop(
    opts: &WatchOptions,
    file: &mut std::fs::File,
    note: &dyn Fn(&str),
) -> Result<WatchReport> {
    let agent = agent(opts.timeout);
    // Ctrl-C as `app::status` installed it (crate::interrupt); without that, nothing ends the
    // watch but the sample count or a kill, which loses nothing either (each line is written
    // whole).
    let ctrl_c = crate::interrupt::signalled();
    tokio::pin!(ctrl_c);
    let mut report = WatchReport {
        out: opts.out.clone(),
        lines: 0,
        documents: 0,
        failed: 0,
        stopped_by: "sample count",
    };
    // The URL as written into the series and into messages: credentials in it are sent with
    // each request but never recorded.
    let shown = crate::redact::redact(&opts.url);
    let mut failures: u32 = 0;
    let mut last_error = String::new();
    loop {
        if opts.samples.is_some_and(|n| report.lines >= n) {
            break;
        }
        let started = tokio::time::Instant::now();
        let t = now_s();
        let (url, agent2, timeout) = (opts.url.clone(), agent.clone(), opts.timeout);
        // The one use of the URL as given: the request itself.
        let request = tokio::task::spawn_blocking(move || get_with(&agent2, &url, timeout));
        let outcome = tokio::select! {
            r = request => r.map_err(|e| Error::Http { url: shown.clone(), reason: format!("request thread failed: {e}") }).and_then(|r| r),
            _ = &mut ctrl_c => { report.stopped_by = "Ctrl-C"; break; }
        };
        // A status document is kept whole; a /metrics text as the families the mapping reads.
        let checked = outcome.and_then(|body| {
            match super::format_of(&body.text, body.content_type.as_deref(), &shown)? {
                Format::Json => {
                    let value: Value = serde_json::from_str(&body.text).map_err(|_| {
                        // Reuse the parser's wording (truncated or not JSON).
                        document::parse(&body.text, &shown)
                            .err()
                            .unwrap_or_else(|| Error::StatusDocument {
                                origin: shown.clone(),
                                reason: "not valid JSON".into(),
                            })
                    })?;
                    let status = document::from_value(value.clone(), &shown)?;
                    Ok((status, Some(value), None))
                }
                Format::Metrics => {
                    let (e, exp, status) = super::parse_metrics(&body.text, &shown)?;
                    Ok((status, None, Some(exporters::record(&e, exp))))
                }
            }
        });
        let line = match checked {
            Ok((status, value, metrics)) => {
                failures = 0;
                report.documents += 1;
                note(&format!(
                    "sample {}: {} runnable, {} active steps",
                    report.lines + 1,
                    fmt_opt(status.runnable_steps),
                    fmt_opt(status.active_steps)
                ));
                SampleLine {
                    t,
                    source: shown.clone(),
                    status: value,
                    metrics,
                    error: None,
                }
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                report.failed += 1;
                last_error = e.line();
                note(&format!(
                    "sample {}: {last_error}; next try in {}",
                    report.lines + 1,
                    humantime(next_delay(opts.interval, failures))
                ));
                SampleLine {
                    t,
                    source: shown.clone(),
                    status: None,
                    metrics: None,
                    error: Some(last_error.clone()),
                }
            }
        };
        append(file, &opts.out, &line)?;
        report.lines += 1;
        if opts.samples.is_some_and(|n| report.lines >= n) {
            break;
        }
        let wake = started + next_delay(opts.interval, failures);
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => {}
            _ = &mut ctrl_c => { report.stopped_by = "Ctrl-C"; break; }
        }
    }
    if report.documents == 0 && report.failed > 0 {
        return Err(Error::Http {
            url: shown,
            reason: format!(
                "none of {} requests succeeded (the failures are recorded in {}); last: {last_error}",
                report.failed,
                opts.out.display()
            ),
        });
    }
    Ok(report)
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map(|v| format!("{v}")).unwrap_or_else(|| "?".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let i = Duration::from_secs(30);
        assert_eq!(next_delay(i, 0), i);
        assert_eq!(next_delay(i, 1), Duration::from_secs(60));
        assert_eq!(next_delay(i, 3), Duration::from_secs(240));
        assert_eq!(next_delay(i, 5), MAX_BACKOFF);
        assert_eq!(next_delay(i, 1000), MAX_BACKOFF);
        // An interval longer than the cap is never shortened.
        let h = Duration::from_secs(3600);
        assert_eq!(next_delay(h, 4), h);
    }

    #[test]
    fn appending_mends_a_cut_off_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.jsonl");
        std::fs::write(
            &p,
            "{\"t\": 1, \"source\": \"x\", \"error\": \"e\"}\n{\"t\": 2, \"sou",
        )
        .unwrap();
        let mut f = open_append(&p).unwrap();
        let line = SampleLine {
            t: 3.0,
            source: "x".into(),
            status: None,
            metrics: None,
            error: Some("e".into()),
        };
        append(&mut f, &p, &line).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[2].starts_with("{\"t\":3.0"), "{text}");
    }
}
