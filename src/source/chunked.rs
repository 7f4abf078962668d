//! Reading a window from PostgreSQL a chunk at a time, for every read of a database (the
//! analyses' `load` and `snapshot --db`), so that what is held at once is a chunk, not the
//! server's answer for the window: a year of a large Hydra is tens of millions of steps.
//!
//! Everything is read inside one `REPEATABLE READ READ ONLY` transaction
//! ([`super::postgres::begin`]), so the chunks are one state of the database. The chunks split
//! the window's SELECTs ([`super::postgres::Selects`], unsplit in [`super::postgres::queries`])
//! so that together they hold exactly their rows, each once:
//!
//! - the finished steps (the step rule's first part) by ranges of `stopTime`, which
//!   `IndexBuildStepsOnStopTime` serves (its predicate is the part's `startTime IS NOT NULL AND
//!   stopTime IS NOT NULL`); a range and the outputs of its steps are read one after the other;
//! - the builds queued in the window by ranges of `timestamp` (`IndexBuildsOnTimestamp`), and
//!   once the builds of the window's steps queued outside it;
//! - the running steps and those without times, the jobsets and the evaluations, whole: they
//!   are few, and no index upstream ships would split them.
//!
//! A range's width follows the rows the previous one held ([`Ranges::adapt`]), so that a quiet
//! week and a mass rebuild's day both come in ranges of about [`CHUNK_ROWS`]. A range can still
//! hold many more, since no range splits a second: an evaluation inserts thousands of builds a
//! second, and a burst after a quiet stretch overshoots the width before it narrows again (the
//! sample, which stamps an evaluation's builds with one second, gave ranges of 970,000 builds
//! and 1.2 million steps at scale 30). So a range's rows are handed to the caller in chunks of
//! at most about [`CHUNK_ROWS`], from the COPY as it streams ([`postgres::CopyRows`]): what is
//! held at once is a chunk, whatever the farm's bursts. Each chunk is handed over outside the
//! async runtime (the caller writes Parquet, which must not run on it), and nothing is read
//! from the server meanwhile.

use std::collections::VecDeque;

use polars::prelude::DataFrame;

use super::postgres::{self, Begun, ReadOptions, Selects};
use crate::conninfo::ConnParams;
use crate::dataset::{BUILDS, EVALS, JOBSETS, Runner, STEP_OUTPUTS, STEPS, TableDef};
use crate::error::Result;
use crate::window::Window;

/// The rows a range of steps or builds is sized to hold: about 40 MB of decoded steps (some
/// 160 bytes a row with its strings), a small share of the 4 GiB a year's snapshot may take,
/// and enough rows that a range's query (a few milliseconds of planning and index descent)
/// costs nothing beside its COPY. A year of hydra.nixos.org (30–40 M steps) is a few hundred
/// ranges.
pub const CHUNK_ROWS: usize = 200_000;

/// The first range's width: an hour, about what a large farm finishes in [`CHUNK_ROWS`] steps
/// at a busy time; the next ranges adapt.
const FIRST_WIDTH_S: i64 = 3600;

/// Bounds on a range's width. Below a minute the queries would outnumber what they save (a
/// single evaluation can queue a hundred thousand builds within one second, and no range can
/// split a second); above a week a sparse history's empty stretches are skipped in few steps
/// anyway.
const MIN_WIDTH_S: i64 = 60;
const MAX_WIDTH_S: i64 = 7 * 86_400;

/// A half-open span `[next, end)` of a time column read in ranges whose width adapts.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranges {
    next: i64,
    end: i64,
    width: i64,
}

impl Ranges {
    pub fn new(start: i64, end: i64) -> Ranges {
        Ranges {
            next: start,
            end,
            width: FIRST_WIDTH_S,
        }
    }

    /// The next range, `[a, b)`, or `None` once `end` is reached.
    pub fn take(&mut self) -> Option<(i64, i64)> {
        (self.next < self.end).then(|| {
            let a = self.next;
            let b = a.saturating_add(self.width).min(self.end);
            self.next = b;
            (a, b)
        })
    }

    /// Sizes the next range by the rows the last one held: the width that would have held
    /// [`CHUNK_ROWS`], changed at most fourfold at once (a burst's edge should not swing it
    /// from one bound to the other), within [`MIN_WIDTH_S`] and [`MAX_WIDTH_S`].
    pub fn adapt(&mut self, rows: usize) {
        let scaled = self.width as f64 * CHUNK_ROWS as f64 / rows.max(1) as f64;
        let w = scaled.clamp(self.width as f64 / 4.0, self.width as f64 * 4.0);
        self.width = (w as i64).clamp(MIN_WIDTH_S, MAX_WIDTH_S);
    }
}

/// The window read a chunk at a time. [`ChunkedRead::next`] gives each chunk; after the last,
/// [`ChunkedRead::commit`] ends the transaction.
pub struct ChunkedRead {
    begun: Begun,
    selects: Selects,
    /// Reads not split in ranges, in order.
    pending: VecDeque<(&'static TableDef, String)>,
    steps: Option<Ranges>,
    builds: Option<Ranges>,
    /// The COPY whose rows are being handed on, when one is.
    open: Option<Open>,
    /// The longest step read, for the horizon's warning.
    longest: Option<i64>,
}

/// A read under way: its rows go on in pieces of at most about [`CHUNK_ROWS`], whatever its
/// range holds (a range cannot split a second, and a second may hold an evaluation's builds).
struct Open {
    def: &'static TableDef,
    copy: postgres::CopyRows,
    /// Rows handed on so far.
    rows: usize,
    then: Then,
}

/// What the end of a read decides by the rows it held.
enum Then {
    Nothing,
    /// A range of steps: the next range's width, and the range's outputs, read next.
    Steps(Option<String>),
    /// A range of builds: the next range's width.
    Builds,
}

/// The smallest and largest value of a time column: from the ends of an index.
async fn bounds(b: &Begun, sql: &str, what: &str) -> Result<Option<(i64, i64)>> {
    let s = &b.session;
    let row = s
        .client
        .query_one(sql, &[])
        .await
        .map_err(|e| s.error(what, e))?;
    let lo: Option<i64> = row.get(0);
    let hi: Option<i64> = row.get(1);
    Ok(lo.zip(hi))
}

/// The SELECTs of the two bounds: the steps' first and last stop time, under the partial
/// index's own predicate so that both come from its two ends, and the builds' first and last
/// queue time.
fn bounds_sql(schema: &super::postgres::HydraSchema) -> [String; 2] {
    [
        format!(
            "SELECT min(s.stoptime)::int8, max(s.stoptime)::int8 FROM {} s \
             WHERE s.starttime IS NOT NULL AND s.stoptime IS NOT NULL",
            schema.qualify("buildsteps")
        ),
        format!(
            "SELECT min(b.timestamp)::int8, max(b.timestamp)::int8 FROM {} b",
            schema.qualify("builds")
        ),
    ]
}

/// The finished steps that stopped in `[a, b)`: the step rule's first part, narrowed.
fn stopped_in(q: &Selects, a: i64, b: i64) -> String {
    format!("{} AND s.stoptime >= {a} AND s.stoptime < {b}", q.parts[0])
}

/// The reads not split in ranges: jobsets, evaluations, the running steps and those without
/// times with their outputs, and the builds of the window's steps queued outside it.
fn fixed(q: &Selects) -> Vec<(&'static TableDef, String)> {
    let mut out = vec![(&JOBSETS, q.jobsets())];
    out.extend(q.evals().map(|e| (&EVALS, e)));
    for part in &q.parts[1..] {
        let part = std::slice::from_ref(part);
        out.push((&STEPS, q.steps_in(part)));
        out.extend(q.outputs_of(part).map(|o| (&STEP_OUTPUTS, o)));
    }
    out.extend(q.builds_queued_outside().map(|b| (&BUILDS, b)));
    out
}

/// Every kind of statement a chunked read of `w` runs, with the ranges `[a, b)` for steps' stop
/// times and builds' queue times: for the test that EXPLAINs them against upstream's indexes.
pub fn statements(
    info: &super::postgres::SchemaInfo,
    w: &Window,
    (a, b): (i64, i64),
) -> Vec<(&'static TableDef, String)> {
    let q = Selects::new(info, w, &[]);
    let mut out = fixed(&q);
    let [stops, queued] = bounds_sql(&info.schema);
    out.push((&STEPS, stops));
    out.push((&BUILDS, queued));
    let part = [stopped_in(&q, a, b)];
    out.push((&STEPS, q.steps_in(&part)));
    out.extend(q.outputs_of(&part).map(|o| (&STEP_OUTPUTS, o)));
    out.push((&BUILDS, q.builds_queued_in(a, b)));
    out
}

impl ChunkedRead {
    /// Connects, begins the read-only transaction and plans the chunks of `opts.window`.
    pub async fn open(params: &ConnParams, opts: &ReadOptions) -> Result<ChunkedRead> {
        let begun = postgres::begin(params, opts).await?;
        let w = begun.window;
        let selects = Selects::new(&begun.info, &w, opts.omit);
        let [stops_sql, queued_sql] = bounds_sql(&begun.info.schema);
        let stops = bounds(
            &begun,
            &stops_sql,
            "reading steps (the first and last stop time)",
        )
        .await?;
        let queued = bounds(
            &begun,
            &queued_sql,
            "reading builds (the first and last queue time)",
        )
        .await?;
        // The finished part asks `stoptime >= since` and `stoptime < until + horizon` itself;
        // the ranges only skip what lies outside.
        let steps = stops.map(|(lo, hi)| {
            let end = w.until.map_or(hi.saturating_add(1), |u| {
                u.saturating_add(crate::window::STEP_HORIZON_SECS)
                    .min(hi.saturating_add(1))
            });
            Ranges::new(w.since.map_or(lo, |s| s.max(lo)), end)
        });
        let builds = queued.map(|(lo, hi)| {
            let end = w
                .until
                .map_or(hi.saturating_add(1), |u| u.min(hi.saturating_add(1)));
            Ranges::new(w.since.map_or(lo, |s| s.max(lo)), end)
        });
        let pending = fixed(&selects).into();
        Ok(ChunkedRead {
            begun,
            selects,
            pending,
            steps,
            builds,
            open: None,
            longest: None,
        })
    }

    /// The window, resolved against the server's clock.
    pub fn window(&self) -> Window {
        self.begun.window
    }

    /// The hidden projects and jobsets, read in the transaction of the rows so that both are
    /// one state of the database (`snapshot --public`).
    pub async fn hidden(&self) -> Result<super::public::Hidden> {
        postgres::read_hidden(&self.begun.session).await
    }

    /// The schema's version and the schema's guess at the runner, with its basis.
    pub fn schema(&self) -> (Option<i32>, Runner, &str) {
        (
            self.begun.info.version,
            self.begun.runner,
            &self.begun.runner_basis,
        )
    }

    /// The next read to start: a table, its SELECT and what its end decides; `None` when
    /// everything was read.
    fn plan(&mut self) -> Option<(&'static TableDef, String, Then)> {
        if let Some((def, sql)) = self.pending.pop_front() {
            return Some((def, sql, Then::Nothing));
        }
        if let Some((a, b)) = self.steps.as_mut().and_then(Ranges::take) {
            let part = [stopped_in(&self.selects, a, b)];
            let outputs = self.selects.outputs_of(&part);
            return Some((&STEPS, self.selects.steps_in(&part), Then::Steps(outputs)));
        }
        let (a, b) = self.builds.as_mut().and_then(Ranges::take)?;
        Some((&BUILDS, self.selects.builds_queued_in(a, b), Then::Builds))
    }

    /// The next chunk: a table and some of its rows (at most about `opts.chunk_rows`,
    /// [`CHUNK_ROWS`] unless a test says otherwise), or `None` when everything was read.
    pub async fn next(
        &mut self,
        opts: &ReadOptions,
    ) -> Result<Option<(&'static TableDef, DataFrame)>> {
        if self.open.is_none() {
            let Some((def, sql, then)) = self.plan() else {
                return Ok(None);
            };
            let s = &self.begun.session;
            let copy = postgres::CopyRows::start(s, def, &sql, &opts.progress, opts.omit).await?;
            self.open = Some(Open {
                def,
                copy,
                rows: 0,
                then,
            });
        }
        let s = &self.begun.session;
        let Some(open) = self.open.as_mut() else {
            return Ok(None);
        };
        let (df, ended) = open.copy.next(s, opts.chunk_rows.max(1)).await?;
        open.rows += df.height();
        let def = open.def;
        if ended && let Some(Open { rows, then, .. }) = self.open.take() {
            match then {
                Then::Nothing => {}
                Then::Steps(outputs) => {
                    if let Some(r) = self.steps.as_mut() {
                        r.adapt(rows);
                    }
                    // The range's outputs next, while its steps are fresh in the server's
                    // cache; a range without steps has none.
                    if rows > 0
                        && let Some(o) = outputs
                    {
                        self.pending.push_back((&STEP_OUTPUTS, o));
                    }
                }
                Then::Builds => {
                    if let Some(r) = self.builds.as_mut() {
                        r.adapt(rows);
                    }
                }
            }
        }
        if def.name == STEPS.name {
            self.longest = self.longest.max(postgres::longest_step(&df));
        }
        Ok(Some((def, df)))
    }

    /// Ends the transaction, warning when the steps read come near the horizon's cut
    /// ([`crate::window::STEP_HORIZON_SECS`]).
    pub async fn commit(self) -> Result<()> {
        self.begun.commit(self.longest).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_the_span_once_whatever_the_rows() {
        for rows in [
            0usize,
            1,
            10_000,
            CHUNK_ROWS,
            10 * CHUNK_ROWS,
            usize::MAX / 2,
        ] {
            let mut r = Ranges::new(1_000, 1_000 + 30 * 86_400 + 17);
            let mut at = 1_000;
            while let Some((a, b)) = r.take() {
                assert_eq!(a, at, "ranges follow each other without a gap");
                assert!(b > a && b - a <= MAX_WIDTH_S);
                at = b;
                r.adapt(rows);
            }
            assert_eq!(at, 1_000 + 30 * 86_400 + 17, "and end at the span's end");
        }
        assert_eq!(Ranges::new(5, 5).take(), None);
    }

    #[test]
    fn a_range_widens_when_quiet_and_narrows_in_a_burst() {
        let mut r = Ranges::new(0, i64::MAX);
        r.adapt(CHUNK_ROWS / 2);
        assert_eq!(r.width, 2 * FIRST_WIDTH_S);
        r.adapt(CHUNK_ROWS * 100);
        assert_eq!(r.width, FIRST_WIDTH_S / 2, "at most fourfold at once");
        for _ in 0..20 {
            r.adapt(CHUNK_ROWS * 100);
        }
        assert_eq!(r.width, MIN_WIDTH_S);
        for _ in 0..20 {
            r.adapt(0);
        }
        assert_eq!(r.width, MAX_WIDTH_S);
    }
}
