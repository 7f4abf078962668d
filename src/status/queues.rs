//! The Rust runner's queue listing: `GET /status/queues` (master) or `/status/queues/main` and
//! `/status/queues/ofborg` (the named-queues line), which give what `/status` lacks — how long
//! the steps on each system's queue have waited now. `/status` has no such figure:
//! `avgRunnableTime` is never written and `waitTimeMs` is a counter since the runner started
//! (docs/hydra.md §5).
//!
//! Read from NixOS/hydra `subprojects/hydra-queue-runner/src/server/http.rs` (`router`,
//! `handler::status::queues`), `io/response_types.rs` `QueueResponse` (`{"queues": {system:
//! [StepInfo]}}`) and `io/step_info.rs` `StepInfo` (camelCase: `drvPath`, `alreadyScheduled`,
//! `runnable`, `finished`, `cancelled`, `runnableSince` as RFC 3339, `tries`, …), at 14332fbf;
//! the named-queues routes from pull request #1777 (85df2b89).
//!
//! Only the runner itself serves these paths: hydra-server proxies `/status` alone (as
//! `/queue-runner-status`), so they are asked only of a URL whose path ends in `/status`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::document::Status;
use crate::error::{Error, Result};

/// One system's queue as listed: its steps, those not yet handed to a builder, and how long
/// those have been runnable at the runner's `time` of the `/status` document.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct QueueWaits {
    /// `main` or `ofborg`.
    pub queue: String,
    pub system: String,
    /// Steps on the queue (running ones included, as the queue keeps them).
    pub listed: f64,
    /// Not scheduled on a builder, not finished, not cancelled: waiting for a slot.
    pub waiting: f64,
    /// The longest and the mean time the waiting steps have been runnable (s).
    pub oldest_wait_s: Option<f64>,
    pub mean_wait_s: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RawStepInfo {
    already_scheduled: Option<bool>,
    finished: Option<bool>,
    cancelled: Option<bool>,
    runnable_since: Option<String>,
}

/// The queue listings to ask for a document read from `url`: none unless the URL is the Rust
/// runner's own `/status` (hydra-server's proxy serves nothing else). `(queue, url)` pairs.
pub fn endpoints(url: &str, status: &Status) -> Vec<(String, String)> {
    let path_end = url.find(['?', '#']).unwrap_or(url.len());
    let path = url[..path_end].trim_end_matches('/');
    let Some(base) = path.strip_suffix("/status") else {
        return Vec::new();
    };
    let at = |p: &str| format!("{base}/status/{p}");
    if status.queue_stats_field.as_deref() == Some("mainQueueStats") {
        let mut out = vec![("main".to_string(), at("queues/main"))];
        if status.queues.iter().any(|q| q.queue == "ofborg") {
            out.push(("ofborg".to_string(), at("queues/ofborg")));
        }
        out
    } else {
        vec![("main".to_string(), at("queues"))]
    }
}

/// Parses one listing; `now` is the runner's time of the `/status` document (unix seconds).
/// A listing that is not `{"queues": {…}}` is an error naming `origin`; a step that is not an
/// object, or has no readable `runnableSince`, counts as listed without a wait.
pub fn parse(text: &str, origin: &str, queue: &str, now: f64) -> Result<Vec<QueueWaits>> {
    let bad = |reason: String| Error::StatusDocument {
        origin: origin.to_string(),
        reason,
    };
    let v: Value = serde_json::from_str(text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
    let Some(Value::Object(queues)) = v.get("queues") else {
        return Err(bad(
            "not a queue listing: expected an object with `queues` (the Rust runner's \
             /status/queues)"
                .into(),
        ));
    };
    let mut out = Vec::new();
    for (system, steps) in queues {
        let steps = steps.as_array().map(Vec::as_slice).unwrap_or(&[]);
        let mut w = QueueWaits {
            queue: queue.to_string(),
            system: system.clone(),
            listed: steps.len() as f64,
            ..QueueWaits::default()
        };
        let mut waits = Vec::new();
        for s in steps {
            let s = RawStepInfo::deserialize(s).unwrap_or_default();
            let taken = s.already_scheduled == Some(true)
                || s.finished == Some(true)
                || s.cancelled == Some(true);
            if taken {
                continue;
            }
            w.waiting += 1.0;
            let since = s
                .runnable_since
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t.trim()).ok())
                .map(|t| t.timestamp() as f64 + f64::from(t.timestamp_subsec_millis()) / 1e3);
            // A clock step between the runner and its builders can put a step a moment in
            // the future; it has waited none.
            waits.extend(since.map(|t| (now - t).max(0.0)));
        }
        w.oldest_wait_s = waits.iter().copied().reduce(f64::max);
        w.mean_wait_s = (!waits.is_empty()).then(|| waits.iter().sum::<f64>() / waits.len() as f64);
        out.push(w);
    }
    Ok(out)
}

/// Per system over the queues: waiting steps summed, the oldest wait the longest, the mean
/// weighted by the steps with a wait.
pub fn by_system(waits: &[QueueWaits]) -> BTreeMap<&str, QueueWaits> {
    let mut by: BTreeMap<&str, (QueueWaits, f64, f64)> = BTreeMap::new();
    for w in waits {
        let (acc, sum, n) = by.entry(w.system.as_str()).or_insert_with(|| {
            (
                QueueWaits {
                    queue: "all".into(),
                    system: w.system.clone(),
                    ..QueueWaits::default()
                },
                0.0,
                0.0,
            )
        });
        acc.listed += w.listed;
        acc.waiting += w.waiting;
        acc.oldest_wait_s = match (acc.oldest_wait_s, w.oldest_wait_s) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        if let Some(m) = w.mean_wait_s {
            // The steps with a wait, as many as the waiting ones unless a time was unreadable.
            *sum += m * w.waiting;
            *n += w.waiting;
        }
    }
    by.into_iter()
        .map(|(k, (mut w, sum, n))| {
            w.mean_wait_s = (n > 0.0).then(|| sum / n);
            (k, w)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::document::{QueueStats, RunnerKind};

    #[test]
    fn endpoints_only_for_the_runners_own_status() {
        let mut s = Status::empty(RunnerKind::Rust);
        s.queue_stats_field = Some("queueStats".into());
        assert_eq!(
            endpoints("http://[::1]:8080/status/", &s),
            [(
                "main".to_string(),
                "http://[::1]:8080/status/queues".to_string()
            )]
        );
        assert!(endpoints("https://hydra.example/queue-runner-status", &s).is_empty());
        s.queue_stats_field = Some("mainQueueStats".into());
        s.queues.push(QueueStats {
            queue: "ofborg".into(),
            ..QueueStats::default()
        });
        let e: Vec<String> = endpoints("http://r/status?x=1", &s)
            .into_iter()
            .map(|(_, u)| u)
            .collect();
        assert_eq!(
            e,
            [
                "http://r/status/queues/main",
                "http://r/status/queues/ofborg"
            ]
        );
    }

    #[test]
    fn waits_of_the_steps_not_scheduled() {
        let text = r#"{"queues": {"x86_64-linux": [
            {"drvPath": "a.drv", "alreadyScheduled": true, "runnable": true, "finished": false,
             "cancelled": false, "runnableSince": "2026-06-01T11:00:00Z", "tries": 0},
            {"drvPath": "b.drv", "alreadyScheduled": false, "runnable": true, "finished": false,
             "cancelled": false, "runnableSince": "2026-06-01T11:50:00Z", "tries": 0},
            {"drvPath": "c.drv", "alreadyScheduled": false, "runnable": true, "finished": false,
             "cancelled": false, "runnableSince": "2026-06-01T11:30:00Z", "tries": 1}],
            "aarch64-linux": []}}"#;
        let now = 1_780_315_200.0; // 2026-06-01T12:00:00Z
        let w = parse(text, "q", "main", now).unwrap();
        let x = w.iter().find(|w| w.system == "x86_64-linux").unwrap();
        assert_eq!((x.listed, x.waiting), (3.0, 2.0));
        assert_eq!(
            (x.oldest_wait_s, x.mean_wait_s),
            (Some(1800.0), Some(1200.0))
        );
        let arm = w.iter().find(|w| w.system == "aarch64-linux").unwrap();
        assert_eq!((arm.waiting, arm.oldest_wait_s), (0.0, None));
        let e = parse(r#"{"steps": []}"#, "q", "main", now).unwrap_err();
        assert!(e.to_string().starts_with("q: "), "{e}");
        let ofborg = parse(
            r#"{"queues": {"x86_64-linux": [{"runnableSince": "2026-06-01T11:59:00Z"}]}}"#,
            "q",
            "ofborg",
            now,
        )
        .unwrap();
        let all = [w.clone(), ofborg].concat();
        let both = by_system(&all);
        let x = &both["x86_64-linux"];
        assert_eq!((x.waiting, x.oldest_wait_s), (3.0, Some(1800.0)));
        assert_eq!(x.mean_wait_s, Some((1200.0 * 2.0 + 60.0) / 3.0));
    }
}
