//! The queue runner's live status: reading the JSON document Hydra already exposes (the C++
//! runner's `/queue-runner-status` and `hydra-queue-runner --status`, the Rust runner's
//! `/status`), deriving what it says about lost builder capacity, collecting it over time, and
//! summarising such a series.
//!
//! - [`document`]: lenient parsing of both runners' documents into one [`Status`].
//! - [`metrics`]: the Prometheus text format a `/metrics` URL serves (strict parser, renderer).
//! - [`exporters`]: the Rust runner's `hydraqueuerunner_*` and hydra_exporter's
//!   `hydra_queue_runner_*` metrics read into the same [`Status`].
//! - [`queues`]: the Rust runner's queue listings (`/status/queues`), the current waits
//!   `/status` lacks.
//! - [`figures`]: derived figures of one document (pure functions).
//! - [`series`]: the JSON-lines series `--watch` writes, and its summary (pure functions).
//! - [`timeline`]: the runner's series on a regular grid, as the capacity ledger reads it.
//! - [`prometheus`]: the runner's series over a window from a Prometheus server's range query.
//! - [`fetch`]: the HTTP client (bounded in time and size) and the watch loop.
//!
//! The `status` command itself (which of these to run, and how the result is printed) is
//! `app::status`.

pub mod document;
pub mod exporters;
pub mod fetch;
pub mod figures;
pub mod metrics;
pub mod prometheus;
pub mod queues;
pub mod series;
pub mod timeline;

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

pub use document::{RunnerKind, Status, parse};
pub use exporters::Exporter;
pub use fetch::{Body, WatchOptions, WatchReport};
pub use figures::{Figures, Row, derive};
pub use series::{SeriesSummary, summarise};

use crate::error::{Error, Result};

/// Where one document comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    Stdin,
    Url(String),
}

impl Source {
    /// `-` is stdin, `http://…`/`https://…` (in any case) a URL, anything else a file.
    pub fn parse(s: &str) -> Source {
        if s == "-" {
            Source::Stdin
        } else if crate::redact::is_http(s) {
            Source::Url(s.to_string())
        } else {
            Source::File(PathBuf::from(s))
        }
    }

    /// The source as people may see it: a URL's credentials redacted.
    pub fn describe(&self) -> String {
        match self {
            Source::File(p) => p.display().to_string(),
            Source::Stdin => "stdin".into(),
            Source::Url(u) => crate::redact::redact(u),
        }
    }
}

/// Reads one document's text, within [`fetch::MAX_BODY`] whatever the source; a URL's answer
/// comes with its `Content-Type`.
pub fn read_source(source: &Source, timeout: Duration) -> Result<Body> {
    let too_large = || Error::StatusDocument {
        origin: source.describe(),
        reason: format!(
            "larger than {} MiB; not a status document?",
            fetch::MAX_BODY / (1024 * 1024)
        ),
    };
    let bounded = |r: &mut dyn Read, name: &str| -> Result<String> {
        let mut buf = Vec::new();
        r.take(fetch::MAX_BODY + 1)
            .read_to_end(&mut buf)
            .map_err(|e| Error::io(name, e))?;
        if buf.len() as u64 > fetch::MAX_BODY {
            return Err(too_large());
        }
        String::from_utf8(buf).map_err(|_| Error::StatusDocument {
            origin: source.describe(),
            reason: "not UTF-8 text".into(),
        })
    };
    let text = match source {
        Source::Url(u) => return fetch::get(u, timeout),
        Source::Stdin => bounded(&mut std::io::stdin().lock(), "stdin")?,
        Source::File(p) => {
            // A regular file only: a FIFO or a device would block or never end.
            let (mut f, _) = crate::readfile::open_regular(p, "status document")?;
            bounded(&mut f, &p.display().to_string())?
        }
    };
    Ok(Body {
        text,
        content_type: None,
    })
}

/// Reads and parses one document or `/metrics` answer.
pub fn load(source: &Source, timeout: Duration) -> Result<Status> {
    let body = read_source(source, timeout)?;
    parse_body(&body.text, body.content_type.as_deref(), &source.describe())
}

/// Adds to a Rust runner's `status` what its queue listings say of the steps waiting now
/// ([`queues::endpoints`]: only when `source` is the runner's own `/status` URL). A listing
/// that cannot be read leaves the figures without it; each such failure comes back as one
/// line for the user.
pub fn add_queue_waits(status: &mut Status, source: &Source, timeout: Duration) -> Vec<String> {
    let Source::Url(url) = source else {
        return Vec::new();
    };
    if status.runner != RunnerKind::Rust {
        return Vec::new();
    }
    // The runner's clock at /status, else ours: both requests are a moment apart.
    let now = status.time.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    });
    let mut notes = Vec::new();
    for (queue, u) in queues::endpoints(url, status) {
        let origin = crate::redact::redact(&u);
        match fetch::get(&u, timeout).and_then(|b| queues::parse(&b.text, &origin, &queue, now)) {
            Ok(w) => status.waits.extend(w),
            Err(e) => notes.push(format!("the current waits are not shown: {e}")),
        }
    }
    notes
}

/// The two formats a status source may serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A queue runner's status document.
    Json,
    /// The Prometheus text format of a `/metrics` URL.
    Metrics,
}

/// Which format a body is in: what its `Content-Type` says (`text/plain; version=0.0.4`, or
/// JSON), else what it starts with (a JSON document with `{`, the text format with `#` or a
/// metric name). Anything else is taken for JSON, whose parser says best what is wrong with an
/// HTML error page or an empty answer.
pub fn format_of(text: &str, content_type: Option<&str>, origin: &str) -> Result<Format> {
    if let Some(ct) = content_type {
        if metrics::is_content_type(ct) {
            return Ok(Format::Metrics);
        }
        let mime = ct.split(';').next().unwrap_or("").trim();
        if mime.eq_ignore_ascii_case("application/openmetrics-text") {
            return Err(Error::StatusDocument {
                origin: origin.to_string(),
                reason: "the answer is OpenMetrics, which is not read; serve the Prometheus text \
                 format (text/plain; version=0.0.4)"
                    .into(),
            });
        }
        if mime.to_ascii_lowercase().ends_with("json") {
            return Ok(Format::Json);
        }
    }
    Ok(if metrics::looks_like(text) {
        Format::Metrics
    } else {
        Format::Json
    })
}

/// Parses one body of either format into a [`Status`]; `origin` names it in errors.
pub fn parse_body(text: &str, content_type: Option<&str>, origin: &str) -> Result<Status> {
    match format_of(text, content_type, origin)? {
        Format::Json => document::parse(text, origin),
        Format::Metrics => parse_metrics(text, origin).map(|(_, _, s)| s),
    }
}

/// Parses a `/metrics` text and reads it into a [`Status`]: the parsed text, who wrote it, and
/// the status.
pub fn parse_metrics(text: &str, origin: &str) -> Result<(metrics::Exposition, Exporter, Status)> {
    let e = metrics::parse(text).map_err(|e| Error::StatusDocument {
        origin: origin.to_string(),
        reason: format!("Prometheus text, {e}"),
    })?;
    let (exp, status) = exporters::to_status(&e, origin)?;
    Ok((e, exp, status))
}

/// `30s`, `500ms`, `2m`, `1h`, or a number of seconds (`0.5`).
pub fn parse_interval(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    let bad = || format!("`{s}` is not a duration (examples: 30s, 500ms, 2m, 1h)");
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num.trim().parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_and_intervals() {
        assert_eq!(Source::parse("-"), Source::Stdin);
        assert_eq!(
            Source::parse("https://hydra.example/queue-runner-status"),
            Source::Url("https://hydra.example/queue-runner-status".into())
        );
        assert_eq!(Source::parse("s.json"), Source::File("s.json".into()));
        assert_eq!(parse_interval("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_interval("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_interval("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_interval("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_interval("0s").is_err());
        assert!(parse_interval("-1s").is_err());
        assert!(parse_interval("fast").is_err());
    }
}
