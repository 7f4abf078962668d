//! The time window: parsing `--since`/`--until`, and the one definition of which rows fall inside.
//!
//! A bound is a date (`2026-11-01`, midnight UTC), a date and time (`2026-11-01T12:00:00Z`,
//! `2026-11-01 12:00`, UTC unless an offset is given), a unix timestamp (`1762000000` or
//! `@1762000000`), or a duration back from the anchor (`30d`, `12h`, `1w2d`, `90m`, `45s`).
//! The anchor is "now" for a live database and the end of the recorded window for a snapshot or
//! the sample, so that `--since 1d` on a snapshot means its last day, whenever it is read.
//!
//! Row selection (the same rule in SQL for PostgreSQL and over frames for snapshots):
//! - a step with both times is inside when its interval overlaps `[since, until)`: it stopped at
//!   or after `since` and started before `until`;
//! - a running step (`busy` ≠ 0) missing a time is inside when it did not stop before `since`
//!   and did not start at or after `until`;
//! - a finished step missing a time (Hydra writes both times null for a step it never ran, such
//!   as a cached failure) has no interval of its own: it is inside when its build was queued
//!   inside the window;
//! - a build is inside when it was queued inside the window or owns a step inside it;
//! - step outputs follow their step; evaluations are inside by their timestamp; jobsets are all read.
//!
//! In SQL the step rule is three disjoint SELECTs, each served by an index upstream ships
//! (docs/read-only.md): steps with both times by the partial index on `stopTime`, running steps
//! by the partial index on `busy`, timeless steps by the primary key from the builds found by the
//! index on `timestamp`. Nothing indexes `startTime`, so a window that ended in the past bounds
//! `stopTime` from above by [`STEP_HORIZON_SECS`] after the window's end.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// One bound as the user wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSpec {
    /// Unix seconds.
    At(i64),
    /// Seconds before the anchor.
    Ago(i64),
}

impl TimeSpec {
    pub fn resolve(self, anchor: i64) -> i64 {
        match self {
            TimeSpec::At(t) => t,
            TimeSpec::Ago(d) => anchor.saturating_sub(d),
        }
    }
}

impl std::str::FromStr for TimeSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_time(s)
    }
}

/// The latest time a bound may name, unix seconds (2100-01-01): Hydra keeps its times in 32-bit
/// columns, which end in 2038, so a bound much past that is a typo, not a window of data.
pub const LATEST_TIME: i64 = 4_102_444_800;

/// Parses one bound; the error says what forms are accepted. A time before 1970 or after
/// [`LATEST_TIME`], or a duration reaching back before 1970 from now, is refused here, so that
/// no window arithmetic later overflows or measures centuries no data covers.
pub fn parse_time(input: &str) -> Result<TimeSpec, String> {
    let spec = parse_any_time(input)?;
    match spec {
        TimeSpec::At(t) if !(0..=LATEST_TIME).contains(&t) => Err(format!(
            "`{input}` lies outside the times any Hydra history can have (1970-01-01 to {})",
            fmt_time(LATEST_TIME)
        )),
        TimeSpec::Ago(d) if d > chrono::Utc::now().timestamp() => Err(format!(
            "`{input}` reaches back before 1970: no Hydra history is that old"
        )),
        _ => Ok(spec),
    }
}

fn parse_any_time(input: &str) -> Result<TimeSpec, String> {
    let s = input.trim();
    let bad = || {
        format!(
            "`{input}` is not a time: expected a date (2026-11-01), a date and time \
             (2026-11-01T12:00:00Z), a unix timestamp, or a duration such as 30d, 12h, 1w2d"
        )
    };
    if s.is_empty() {
        return Err(bad());
    }
    if let Some(ts) = s.strip_prefix('@') {
        return ts.parse::<i64>().map(TimeSpec::At).map_err(|_| bad());
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<i64>().map(TimeSpec::At).map_err(|_| bad());
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let dt = d.and_hms_opt(0, 0, 0).ok_or_else(bad)?;
        return Ok(TimeSpec::At(Utc.from_utc_datetime(&dt).timestamp()));
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Ok(TimeSpec::At(dt.timestamp()));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s.trim_end_matches('Z'), fmt) {
            return Ok(TimeSpec::At(Utc.from_utc_datetime(&dt).timestamp()));
        }
    }
    parse_duration(s).map(TimeSpec::Ago).ok_or_else(bad)
}

/// `1w2d3h4m5s` (any subset, in any order) → seconds. `None` on anything else or on overflow.
pub fn parse_duration(s: &str) -> Option<i64> {
    let mut total: i64 = 0;
    let mut num: Option<i64> = None;
    for c in s.chars() {
        if let Some(d) = c.to_digit(10) {
            num = Some(
                num.unwrap_or(0)
                    .checked_mul(10)?
                    .checked_add(i64::from(d))?,
            );
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return None,
        };
        total = total.checked_add(num.take()?.checked_mul(unit)?)?;
    }
    if num.is_some() || total == 0 {
        return None;
    }
    Some(total)
}

/// The bounds as given, before the anchor is known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowSpec {
    pub since: Option<TimeSpec>,
    pub until: Option<TimeSpec>,
}

impl WindowSpec {
    pub fn resolve(&self, anchor: i64) -> Result<Window, String> {
        let w = Window {
            since: self.since.map(|s| s.resolve(anchor)),
            until: self.until.map(|u| u.resolve(anchor)),
        };
        // A duration that [`parse_time`] let through can still reach before 1970 from an
        // anchor in the past (the end of an old snapshot).
        if w.since.into_iter().chain(w.until).any(|t| t < 0) {
            return Err(format!(
                "the window reaches back before 1970 from {}: no Hydra history is that old",
                fmt_time(anchor)
            ));
        }
        if let (Some(s), Some(u)) = (w.since, w.until)
            && s >= u
        {
            return Err(format!(
                "the window is empty: --since {} is not before --until {}",
                fmt_time(s),
                fmt_time(u)
            ));
        }
        Ok(w)
    }

    pub fn is_unbounded(&self) -> bool {
        self.since.is_none() && self.until.is_none()
    }
}

/// How long after a past window's end the database read looks for steps that ran across it.
/// Nothing indexes `startTime`, so without an upper bound on `stopTime` a window in the past
/// would scan every later step. Hydra's default build timeout is 10 h and hydra.nixos.org's is
/// 24 h (docs/read-only.md): twice the longer leaves room for copying outputs and clock skew.
/// A job may ask for more with `meta.timeout`, rarely; a step that ran longer than this and
/// crossed the window's end by more is missed, and the reader warns when the steps it did read
/// come within half of it (`source::chunked::ChunkedRead::commit`).
pub const STEP_HORIZON_SECS: i64 = 48 * 3600;

/// Which lower bounds of a window keep a step ([`Window::kept_from`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeptFrom {
    /// Every `since` at or before this time.
    Since(i64),
    /// Every `since`: a running step that has not stopped.
    Always,
    /// None: a timeless step whose build is not known.
    Never,
}

/// Absolute bounds, unix seconds; `None` is open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub since: Option<i64>,
    pub until: Option<i64>,
}

impl Window {
    /// The intersection of two windows (a narrower read of an already-windowed snapshot).
    pub fn within(self, outer: Window) -> Window {
        let max = |a: Option<i64>, b: Option<i64>| match (a, b) {
            (Some(x), Some(y)) => Some(x.max(y)),
            (x, y) => x.or(y),
        };
        let min = |a: Option<i64>, b: Option<i64>| match (a, b) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
        Window {
            since: max(self.since, outer.since),
            until: min(self.until, outer.until),
        }
    }

    /// The step rule as SQL conditions on `buildsteps` under alias `s`, one per disjoint part
    /// (see the module doc), to be combined with `UNION ALL`; `queued` is a subquery giving the
    /// ids of the builds queued inside the window. The bounds are integers we formatted
    /// ourselves, so splicing them is safe (COPY takes no parameters).
    ///
    /// Each condition repeats the predicate of the partial index it is meant for
    /// (`startTime IS NOT NULL AND stopTime IS NOT NULL`; `busy <> 0`), so that the planner can
    /// prove the index applies.
    pub fn step_sql_parts(&self, s: &str, queued: &str) -> Vec<String> {
        let both = format!("{s}.starttime IS NOT NULL AND {s}.stoptime IS NOT NULL");
        let mut finished = vec![both.clone()];
        let mut running = vec![format!("{s}.busy <> 0 AND NOT ({both})")];
        if let Some(x) = self.since {
            finished.push(format!("{s}.stoptime >= {x}"));
            running.push(format!("({s}.stoptime IS NULL OR {s}.stoptime >= {x})"));
        }
        if let Some(y) = self.until {
            finished.push(format!("{s}.starttime < {y}"));
            finished.push(format!(
                "{s}.stoptime < {}",
                y.saturating_add(STEP_HORIZON_SECS)
            ));
            running.push(format!("({s}.starttime IS NULL OR {s}.starttime < {y})"));
        }
        let timeless = format!("{s}.busy = 0 AND NOT ({both}) AND {s}.build IN ({queued})");
        vec![finished.join(" AND "), running.join(" AND "), timeless]
    }

    /// The SQL condition on a time column for rows inside `[since, until)`.
    pub fn time_sql(&self, column: &str) -> String {
        let mut conds = Vec::new();
        if let Some(s) = self.since {
            conds.push(format!("{column} >= {s}"));
        }
        if let Some(u) = self.until {
            conds.push(format!("{column} < {u}"));
        }
        and_all(conds)
    }

    /// The same step rule over a frame's `start_time`/`stop_time`/`busy` columns; `queued` is
    /// true for the steps whose build was queued inside the window. Unlike the SQL, no horizon:
    /// a frame holds every step already, however long it ran.
    pub fn step_expr(&self, queued: polars::prelude::Expr) -> polars::prelude::Expr {
        use polars::prelude::*;
        let both = col("start_time")
            .is_not_null()
            .and(col("stop_time").is_not_null());
        let mut overlaps = lit(true);
        if let Some(s) = self.since {
            overlaps = overlaps.and(
                col("stop_time")
                    .is_null()
                    .or(col("stop_time").gt_eq(lit(s))),
            );
        }
        if let Some(u) = self.until {
            overlaps = overlaps.and(col("start_time").is_null().or(col("start_time").lt(lit(u))));
        }
        let running = col("busy").neq(lit(0)).fill_null(lit(false));
        when(both.or(running)).then(overlaps).otherwise(queued)
    }

    /// The same rule for one step, seen from its start side: from which `since` on the step is
    /// still inside (with `until` unchanged). A step with both times, or a running one, is kept
    /// while its stop is at or after `since` (a running one without a stop always); a finished
    /// step without times while its build's queue time (`queued_at`) is. Used to place a cut
    /// among the steps (`model::latest_days`) by the rule [`Window::step_expr`] applies.
    pub fn kept_from(
        start: Option<i64>,
        stop: Option<i64>,
        busy: Option<i32>,
        queued_at: Option<i64>,
    ) -> KeptFrom {
        let running = busy.is_some_and(|b| b != 0);
        match (start, stop) {
            (Some(_), Some(stop)) => KeptFrom::Since(stop),
            (_, Some(stop)) if running => KeptFrom::Since(stop),
            (_, None) if running => KeptFrom::Always,
            _ => queued_at.map_or(KeptFrom::Never, KeptFrom::Since),
        }
    }

    /// The same `[since, until)` rule over one time column of a frame.
    pub fn time_expr(&self, column: &str) -> polars::prelude::Expr {
        use polars::prelude::*;
        let mut e = lit(true);
        if let Some(s) = self.since {
            e = e.and(col(column).gt_eq(lit(s)));
        }
        if let Some(u) = self.until {
            e = e.and(col(column).lt(lit(u)));
        }
        e
    }

    pub fn describe(&self) -> String {
        let bound = |t: Option<i64>| t.map(fmt_time).unwrap_or_else(|| "…".into());
        format!("{} to {}", bound(self.since), bound(self.until))
    }
}

fn and_all(conds: Vec<String>) -> String {
    if conds.is_empty() {
        "TRUE".into()
    } else {
        conds.join(" AND ")
    }
}

/// A unix time as `2026-11-01 12:00:00Z`.
pub fn fmt_time(t: i64) -> String {
    DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_else(|| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!(parse_time("30d"), Ok(TimeSpec::Ago(30 * 86_400)));
        assert_eq!(parse_time("1w2d"), Ok(TimeSpec::Ago(9 * 86_400)));
        assert_eq!(parse_time("90m"), Ok(TimeSpec::Ago(5400)));
        assert_eq!(parse_time("1762000000"), Ok(TimeSpec::At(1_762_000_000)));
        assert_eq!(parse_time("@5"), Ok(TimeSpec::At(5)));
        assert_eq!(parse_time("1970-01-02"), Ok(TimeSpec::At(86_400)));
        assert_eq!(parse_time("1970-01-01T01:00:00Z"), Ok(TimeSpec::At(3600)));
        assert_eq!(parse_time("1970-01-01T01:00:00+01:00"), Ok(TimeSpec::At(0)));
        assert_eq!(parse_time("1970-01-01 00:01"), Ok(TimeSpec::At(60)));
    }

    #[test]
    fn rejects_nonsense_without_panicking() {
        for s in [
            "",
            "d",
            "30",
            "x30d",
            "30x",
            "0d",
            "3d4",
            "2026-13-01",
            "99999999999999999999d",
            "106751991167300d",
            "@-5",
            "1900-01-01",
            "9999-01-01",
            "99999999999",
        ] {
            if s == "30" {
                continue; // a bare number is a timestamp
            }
            assert!(parse_time(s).is_err(), "{s} should be rejected");
        }
    }

    #[test]
    fn durations_resolve_against_the_anchor_and_empty_windows_are_refused() {
        let spec = WindowSpec {
            since: Some(TimeSpec::Ago(86_400)),
            until: None,
        };
        let w = spec.resolve(1_000_000).unwrap();
        assert_eq!(w.since, Some(1_000_000 - 86_400));
        let empty = WindowSpec {
            since: Some(TimeSpec::At(10)),
            until: Some(TimeSpec::At(10)),
        };
        assert!(empty.resolve(0).is_err());
    }

    /// The per-step form and the frame form of the rule keep the same steps.
    #[test]
    fn kept_from_agrees_with_the_frame_rule() {
        use polars::prelude::*;
        let start = [Some(10), None, None, None, Some(10), None, Some(10)];
        let stop = [Some(50), Some(50), None, None, None, Some(50), None];
        let busy = [
            Some(0),
            Some(30),
            Some(30),
            Some(0),
            Some(0),
            Some(0),
            Some(30),
        ];
        let queued_at = [Some(5), Some(5), Some(5), Some(40), Some(60), None, Some(5)];
        let df = df!(
            "start_time" => start, "stop_time" => stop, "busy" => busy,
            "queued_at" => queued_at
        )
        .unwrap();
        for since in [0, 40, 50, 51, 70] {
            let w = Window {
                since: Some(since),
                until: None,
            };
            let queued = col("queued_at").gt_eq(lit(since)).fill_null(lit(false));
            let kept = df
                .clone()
                .lazy()
                .select([w.step_expr(queued).alias("kept")])
                .collect()
                .unwrap();
            let kept: Vec<bool> = kept
                .column("kept")
                .unwrap()
                .bool()
                .unwrap()
                .iter()
                .map(|k| k.unwrap_or(false))
                .collect();
            for i in 0..start.len() {
                let by_step = match Window::kept_from(start[i], stop[i], busy[i], queued_at[i]) {
                    KeptFrom::Since(t) => since <= t,
                    KeptFrom::Always => true,
                    KeptFrom::Never => false,
                };
                assert_eq!(by_step, kept[i], "row {i}, since {since}");
            }
        }
    }

    #[test]
    fn sql_parts_repeat_the_index_predicates_and_bound_a_past_window() {
        let w = Window {
            since: Some(100),
            until: Some(200),
        };
        let parts = w.step_sql_parts("s", "SELECT 1");
        assert_eq!(parts.len(), 3);
        assert_eq!(
            parts[0],
            format!(
                "s.starttime IS NOT NULL AND s.stoptime IS NOT NULL AND s.stoptime >= 100 AND \
                 s.starttime < 200 AND s.stoptime < {}",
                200 + STEP_HORIZON_SECS
            )
        );
        assert!(parts[1].starts_with("s.busy <> 0 AND NOT (s.starttime IS NOT NULL"));
        assert!(parts[2].starts_with("s.busy = 0 AND NOT ("));
        assert!(parts[2].ends_with("s.build IN (SELECT 1)"));
        let inner = Window {
            since: Some(150),
            until: None,
        };
        assert!(!inner.step_sql_parts("s", "q")[0].contains("s.starttime <"));
        assert_eq!(
            inner.within(w),
            Window {
                since: Some(150),
                until: Some(200)
            }
        );
    }
}
