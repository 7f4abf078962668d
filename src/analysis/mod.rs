//! Analysis: pure functions from a [`Dataset`] to typed, explained findings.
//!
//! Nothing here touches a database or a file; every function takes frames and returns values
//! that serialise to JSON, so findings are tested on small handcrafted datasets and reused by the
//! report. Each module owns one question:
//! - [`quality`]: odd rows, counted and excluded where they would distort figures;
//! - [`waiting`]: how long builds wait in the queue, and the backlog over time;
//! - [`utilization`]: concurrent steps per machine and system over time;
//! - [`waste`]: slot-hours spent on work that bought nothing;
//! - [`ledger`]: every slot-hour of the window in one bucket; [`dispatch_loss`] measures its
//!   two unrecorded buckets (held slots, dispatch loss) from the runner's series or the
//!   derivation graph, or bounds them from the history alone.

// The analyses walk several parallel column vectors of one step table by index; an index loop
// says that more plainly than a zip of five iterators.
#![allow(clippy::needless_range_loop)]

pub mod deps;
pub mod dispatch_loss;
pub mod dispatched;
pub mod fold;
pub mod graph;
pub mod ledger;
pub mod overhead;
pub mod quality;
pub mod table;
pub mod utilization;
pub mod waiting;
pub mod waste;

use polars::prelude::*;
use serde::Serialize;

use crate::dataset::Dataset;
use crate::dispatch::BuildStatus;
use crate::error::{Error, Result};

/// The step columns the analyses use, read by row index.
///
/// Sized for tens of millions of rows: the numeric columns and derivation paths are the
/// frame's own buffers (shared, not copied, when the frame is in one chunk, as a loaded
/// dataset is), and machine and system names are interned (a `u32` per row), so the table costs
/// about 8 bytes a step on top of the frame.
#[derive(Debug, Clone)]
pub struct Steps {
    build: Col<i32>,
    stepnr: Col<i32>,
    kind: Col<i32>,
    drv_path: StringChunked,
    status: Col<i32>,
    start: Col<i64>,
    stop: Col<i64>,
    machine: Interned,
    system: Interned,
    overhead_ms: Col<i64>,
    times_built: Col<i32>,
    propagated_from: Col<i32>,
}

/// One numeric column: the frame's array (its values and validity, shared).
#[derive(Debug, Clone)]
struct Col<T: polars_arrow::types::NativeType>(polars_arrow::array::PrimitiveArray<T>);

impl<T: polars_arrow::types::NativeType> Col<T> {
    fn of<P: PolarsNumericType<Native = T>>(ca: &ChunkedArray<P>) -> Col<T> {
        let ca = ca.rechunk();
        Col(match ca.downcast_iter().next() {
            Some(arr) => arr.clone(),
            None => polars_arrow::array::PrimitiveArray::from_vec(Vec::new()),
        })
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    #[inline]
    fn get(&self, i: usize) -> Option<T> {
        let valid = self.0.validity().is_none_or(|v| v.get_bit(i));
        valid.then(|| self.0.values()[i])
    }
}

/// How many distinct views [`Interned::of`] remembers: far more than the machines and
/// platforms of any farm, few enough (a megabyte or two) that a column of unshared values costs
/// little more than looking each up by its value.
const VIEWS_REMEMBERED: usize = 1 << 16;

/// A string column with few distinct values (machine and system names): an index per row into
/// the distinct values; a null reads as "".
#[derive(Debug, Clone, Default)]
struct Interned {
    ids: Vec<u32>,
    names: Vec<String>,
}

impl Interned {
    fn of(ca: &StringChunked) -> Interned {
        // Rows are matched by their 16-byte view first: where a column stores each distinct
        // value once (`dataset::share_repeated`), equal values have equal views, and a value
        // of up to 12 bytes is its view. Only a view not seen yet is looked up by its value.
        // Hashing each row's 35-byte machine URI instead was most of the data-quality checks'
        // time over ten million steps. polars' hasher: std's SipHash was a tenth of a finding.
        // A column left unread is all nulls: every row "" (over ten million steps, looking
        // each up took a second).
        if ca.null_count() == ca.len() {
            return Interned {
                ids: vec![0; ca.len()],
                names: vec![String::new()],
            };
        }
        let mut by_value: PlHashMap<&str, u32> = Default::default();
        let mut by_view: PlHashMap<u128, u32> = Default::default();
        let mut names: Vec<String> = Vec::new();
        let mut ids = Vec::with_capacity(ca.len());
        for arr in ca.downcast_iter() {
            for (i, view) in arr.views().iter().enumerate() {
                let valid = polars_arrow::array::Array::is_valid(arr, i);
                let key = view.as_u128();
                if valid && let Some(&id) = by_view.get(&key) {
                    ids.push(id);
                    continue;
                }
                let v = if valid { arr.value(i) } else { "" };
                let id = *by_value.entry(v).or_insert_with(|| {
                    names.push(v.to_string());
                    (names.len() - 1) as u32
                });
                // A column whose values are not shared would grow this map by a view a row.
                if valid && by_view.len() < VIEWS_REMEMBERED {
                    by_view.insert(key, id);
                }
                ids.push(id);
            }
        }
        Interned { ids, names }
    }

    fn get(&self, i: usize) -> &str {
        &self.names[self.ids[i] as usize]
    }
}

impl Steps {
    pub fn len(&self) -> usize {
        self.build.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The build the step is recorded under (0 when null).
    #[inline]
    pub fn build(&self, i: usize) -> i32 {
        self.build.get(i).unwrap_or(0)
    }

    /// The step's number within its build (0 when null).
    #[inline]
    pub fn stepnr(&self, i: usize) -> i32 {
        self.stepnr.get(i).unwrap_or(0)
    }

    /// 0 for a build, 1 for a substitution (0 when null).
    #[inline]
    pub fn kind(&self, i: usize) -> i32 {
        self.kind.get(i).unwrap_or(0)
    }

    /// The step's status (docs/hydra.md §2); `None` while it runs.
    #[inline]
    pub fn status(&self, i: usize) -> Option<BuildStatus> {
        self.status.get(i).map(BuildStatus::from_code)
    }

    #[inline]
    pub fn start(&self, i: usize) -> Option<i64> {
        self.start.get(i)
    }

    #[inline]
    pub fn stop(&self, i: usize) -> Option<i64> {
        self.stop.get(i)
    }

    #[inline]
    pub fn overhead_ms(&self, i: usize) -> Option<i64> {
        self.overhead_ms.get(i)
    }

    #[inline]
    pub fn times_built(&self, i: usize) -> Option<i32> {
        self.times_built.get(i)
    }

    /// The build whose failure this step row records (Hydra writes such rows with the machine
    /// but without times).
    #[inline]
    pub fn propagated_from(&self, i: usize) -> Option<i32> {
        self.propagated_from.get(i)
    }

    /// The machine that ran step `i` ("" when none is recorded).
    pub fn machine(&self, i: usize) -> &str {
        self.machine.get(i)
    }

    /// The platform of step `i` ("" when none is recorded).
    pub fn system(&self, i: usize) -> &str {
        self.system.get(i)
    }

    /// The derivation step `i` built, when recorded.
    pub fn drv_path(&self, i: usize) -> Option<&str> {
        self.drv_path.get(i)
    }

    pub fn from_frame(df: &DataFrame) -> Result<Steps> {
        let err = |e: PolarsError| Error::frame("steps", e);
        let i32s = |name: &str| -> Result<Col<i32>> {
            Ok(Col::of(df.column(name).map_err(err)?.i32().map_err(err)?))
        };
        let i64s = |name: &str| -> Result<Col<i64>> {
            Ok(Col::of(df.column(name).map_err(err)?.i64().map_err(err)?))
        };
        let strs = |name: &str| -> Result<StringChunked> {
            // One chunk, so that reading row `i` is an index, not a search through chunks.
            Ok(df
                .column(name)
                .map_err(err)?
                .str()
                .map_err(err)?
                .rechunk()
                .into_owned())
        };
        Ok(Steps {
            build: i32s("build")?,
            stepnr: i32s("stepnr")?,
            kind: i32s("type")?,
            drv_path: strs("drv_path")?,
            status: i32s("status")?,
            start: i64s("start_time")?,
            stop: i64s("stop_time")?,
            machine: Interned::of(&strs("machine")?),
            system: Interned::of(&strs("system")?),
            overhead_ms: i64s("overhead_ms")?,
            times_built: i32s("times_built")?,
            propagated_from: i32s("propagated_from")?,
        })
    }

    /// A lookup of rows by key `(build, stepnr)`. Every source gives the steps in key order,
    /// and then it searches the columns themselves and costs nothing; otherwise (steps made
    /// up in a test) it holds the rows' order, 4 bytes a row. A hashed map of the same keys
    /// held about 300 MB over ten million steps, and the ledger built two.
    pub fn by_key(&self) -> KeyIndex<'_> {
        let key = |i: usize| (self.build(i), self.stepnr(i));
        let in_order = (1..self.len()).all(|i| key(i - 1) < key(i));
        KeyIndex {
            steps: self,
            order: (!in_order).then(|| sorted_by(self.len(), key)),
        }
    }

    /// Seconds the step spent building, when both times are known and in order.
    pub fn duration(&self, i: usize) -> Option<i64> {
        match (self.start(i), self.stop(i)) {
            (Some(a), Some(b)) if b >= a => Some(b - a),
            _ => None,
        }
    }
}

/// The rows of [`Steps`] by key ([`Steps::by_key`]).
pub struct KeyIndex<'a> {
    steps: &'a Steps,
    /// The rows in key order where the steps are not in it themselves.
    order: Option<Vec<u32>>,
}

impl KeyIndex<'_> {
    /// The row of step `(build, stepnr)`, if there is one.
    pub fn get(&self, build: i32, stepnr: i32) -> Option<usize> {
        let s = self.steps;
        let key = (build, stepnr);
        let at = |i: usize| (s.build(i), s.stepnr(i));
        match &self.order {
            None => {
                let k = partition_point_rows(s.len(), |i| at(i) < key);
                (k < s.len() && at(k) == key).then_some(k)
            }
            Some(order) => {
                let k = order.partition_point(|&r| at(r as usize) < key);
                order.get(k).map(|&r| r as usize).filter(|&r| at(r) == key)
            }
        }
    }
}

/// The first row of `0..n` for which `before` is false, where it is true for every row before
/// it and false after: a binary search over row numbers without a slice of them.
fn partition_point_rows(n: usize, before: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if before(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Percentiles of a distribution of seconds, as the report shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Distribution {
    pub count: usize,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl Distribution {
    /// Nearest-rank percentiles over `values`, which are reordered. Each rank is found by
    /// selection in what lies above the one before, in linear time: sorting a million waits
    /// was a tenth of `analyze waiting`. The mean sums in the given order (the waits are whole
    /// seconds, whose sum in `f64` is exact in any order).
    pub fn of(values: &mut [f64]) -> Distribution {
        if values.is_empty() {
            return Distribution::default();
        }
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n as f64;
        let index = |p: f64| ((p * n as f64).ceil() as usize).clamp(1, n) - 1;
        // Ranks in ascending order: after selecting rank `k` in `values[lo..]`, every value at
        // or after `k` is at least the `k`-th, so the next rank is selected in `values[k..]`.
        let mut lo = 0;
        let mut rank = |k: usize| {
            let (_, v, _) = values[lo..].select_nth_unstable_by(k - lo, f64::total_cmp);
            let v = *v;
            lo = k;
            v
        };
        let (p50, p90, p99) = (rank(index(0.50)), rank(index(0.90)), rank(index(0.99)));
        Distribution {
            count: n,
            p50,
            p90,
            p99,
            max: rank(n - 1),
            mean,
        }
    }
}

/// The analysis window in seconds: the dataset's recorded window, or where it is open, the
/// extent of the step and build times ([`Dataset::extent`], the rule a window asked for is
/// narrowed by, so that an open bound and one beyond the data measure the same span).
pub fn span(ds: &Dataset) -> Result<Option<(i64, i64)>> {
    span_of(ds.meta.window, || {
        ds.extent(None)
            .map_err(|e| Error::frame("the data's extent", e))
    })
}

/// [`span`] of a window `w` and the data's unbounded extent (asked only where `w` is open).
pub fn span_of(
    w: crate::window::Window,
    extent: impl FnOnce() -> Result<(Option<i64>, Option<i64>)>,
) -> Result<Option<(i64, i64)>> {
    let (first, last) = match (w.since, w.until) {
        (Some(s), Some(u)) => (Some(s), Some(u)),
        _ => extent()?,
    };
    // The step that stopped last is inside `[lo, hi)`, as where a window asked for is narrowed.
    let last = last.map(|t| t.saturating_add(1));
    let (Some(lo), Some(hi)) = (w.since.or(first), w.until.or(last)) else {
        return Ok(None);
    };
    Ok((hi > lo).then_some((lo, hi)))
}

/// Steps made from rows, for the unit tests of the analysis modules.
#[cfg(test)]
pub(crate) mod test_steps {
    use polars::prelude::*;

    use super::Steps;

    /// A step: (build, stepnr, drv, status, start, stop, machine).
    pub(crate) type Row<'a> = (
        i32,
        i32,
        &'a str,
        Option<i32>,
        Option<i64>,
        Option<i64>,
        &'a str,
    );

    pub(crate) fn steps(rows: &[Row<'_>]) -> Steps {
        let df = df! {
            "build" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            "stepnr" => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            "type" => rows.iter().map(|_| 0).collect::<Vec<_>>(),
            "drv_path" => rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            "status" => rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            "start_time" => rows.iter().map(|r| r.4).collect::<Vec<_>>(),
            "stop_time" => rows.iter().map(|r| r.5).collect::<Vec<_>>(),
            "machine" => rows.iter().map(|r| r.6).collect::<Vec<_>>(),
            "system" => rows.iter().map(|_| "x86_64-linux").collect::<Vec<_>>(),
            "overhead_ms" => rows.iter().map(|_| None::<i64>).collect::<Vec<_>>(),
            "times_built" => rows.iter().map(|_| None::<i32>).collect::<Vec<_>>(),
            "propagated_from" => rows.iter().map(|_| None::<i32>).collect::<Vec<_>>(),
        }
        .unwrap();
        Steps::from_frame(&df).unwrap()
    }

    /// A window's description for such steps: the C++ runner's, whose steps' times are the
    /// build alone.
    pub(crate) fn meta() -> crate::dataset::DatasetMeta {
        crate::dataset::DatasetMeta {
            origin: crate::dataset::Origin::Postgres {
                conninfo: "test".into(),
            },
            schema_version: None,
            runner: crate::dataset::Runner::Cpp,
            runner_basis: "test".into(),
            runner_switch: None,
            window: crate::window::Window::default(),
            window_note: None,
            queue_runner: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_is_found_by_key_whether_the_rows_are_in_order_or_not() {
        use test_steps::steps;
        let row = |b, n| (b, n, "/nix/store/x.drv", Some(0), Some(0), Some(1), "m");
        let keys = [(1, 1), (1, 2), (2, 1), (5, 3), (9, 1)];
        let ordered = steps(&keys.map(|(b, n)| row(b, n)));
        let mut shuffled_keys = keys;
        shuffled_keys.reverse();
        shuffled_keys.swap(0, 2);
        let shuffled = steps(&shuffled_keys.map(|(b, n)| row(b, n)));
        for s in [&ordered, &shuffled] {
            let index = s.by_key();
            for (b, n) in keys {
                let i = index.get(b, n).unwrap();
                assert_eq!((s.build(i), s.stepnr(i)), (b, n));
            }
            for (b, n) in [(0, 1), (1, 3), (5, 2), (9, 2), (10, 1)] {
                assert_eq!(index.get(b, n), None, "({b}, {n})");
            }
        }
        assert!(ordered.by_key().order.is_none(), "in order: no order held");
        assert!(shuffled.by_key().order.is_some());
    }

    #[test]
    fn several_findings_leave_unread_only_what_none_of_them_reads() {
        let of = |f| Need::of(f);
        use table::Finding::*;
        let reads = |need: Need, truth: bool, col: (&str, &str)| {
            let omit = match truth {
                true => need.omit_with_truth().unwrap_or(need.omit()),
                false => need.omit(),
            };
            !omit.contains(&col)
        };
        for truth in [false, true] {
            // (The quality checks alone are part of every finding: with another, that one's.)
            for a in [Waiting, Utilization, Waste, Overhead, Ledger, Deps] {
                for b in [Waiting, Utilization, Waste, Overhead, Ledger, Deps] {
                    let both = of(a).and(of(b));
                    for def in crate::dataset::CORE_TABLES
                        .into_iter()
                        .chain(crate::dataset::TRUTH_TABLES)
                    {
                        for c in def.columns {
                            let col = (def.name, c.name);
                            // A column either finding reads is read for the two; and no
                            // column that neither reads.
                            let wanted = (reads(of(a), truth, col)
                                && (of(a).truth() || !def.name.starts_with("truth")))
                                || (reads(of(b), truth, col)
                                    && (of(b).truth() || !def.name.starts_with("truth")));
                            let got = reads(both, truth, col)
                                && (both.truth() || !def.name.starts_with("truth"));
                            assert_eq!(got, wanted, "{a:?} and {b:?}, truth {truth}: {col:?}");
                        }
                    }
                }
            }
        }
        // What the four of `benches/duckdb-compare.sh`'s together row leave unread.
        let four = [Waiting, Utilization, Waste, Overhead]
            .into_iter()
            .fold(Need::NONE, |n, f| n.and(of(f)));
        let omit = four.omit_with_truth().unwrap_or(four.omit());
        for col in [
            ("truth_deps", "build"),
            ("builds", "drv_path"),
            ("builds", "size"),
        ] {
            assert!(omit.contains(&col), "{col:?}");
        }
        for col in [
            ("steps", "drv_path"),
            ("builds", "job"),
            ("truth_steps", "output_nar_size"),
        ] {
            assert!(!omit.contains(&col), "{col:?}");
        }
    }

    #[test]
    fn interned_names_match_rows_by_view_and_by_value() {
        let long = "ssh://builder-17.example.org";
        // The same long value twice stored apart (two views), once shared, a short one, nulls.
        let values = [
            Some(long),
            None,
            Some("x86_64-linux"),
            Some(long),
            Some(""),
            None,
        ];
        let plain = StringChunked::from_iter_options("m".into(), values.into_iter());
        let shared = crate::strings::shared(&plain);
        for ca in [&plain, &shared] {
            let i = Interned::of(ca);
            let got: Vec<&str> = (0..values.len()).map(|r| i.get(r)).collect();
            assert_eq!(got, [long, "", "x86_64-linux", long, "", ""]);
            assert_eq!(i.ids[0], i.ids[3], "equal values, one number");
            assert_eq!(i.names.len(), 3, "{:?}", i.names);
        }
        let unread = StringChunked::full_null("m".into(), 4);
        let i = Interned::of(&unread);
        assert_eq!(
            (0..4).map(|r| i.get(r)).collect::<Vec<_>>(),
            ["", "", "", ""]
        );
    }

    #[test]
    fn nearest_rank_percentiles() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        let d = Distribution::of(&mut v);
        assert_eq!((d.p50, d.p90, d.p99, d.max), (50.0, 90.0, 99.0, 100.0));
        assert_eq!(d.mean, 50.5);
        assert_eq!(Distribution::of(&mut []).count, 0);
        let d = Distribution::of(&mut [7.0]);
        assert_eq!((d.p50, d.p99), (7.0, 7.0));
        // Unsorted, with ties, at sizes where the ranks coincide or not: the same as reading
        // the ranks off a sorted copy.
        for n in [1usize, 2, 3, 7, 10, 99, 100, 101, 1000, 1013] {
            let mut v: Vec<f64> = (0..n).map(|i| ((i * 7919) % 37) as f64).collect();
            let mut sorted = v.clone();
            sorted.sort_by(f64::total_cmp);
            let rank = |p: f64| sorted[((p * n as f64).ceil() as usize).clamp(1, n) - 1];
            let d = Distribution::of(&mut v);
            assert_eq!(
                (d.count, d.p50, d.p90, d.p99, d.max),
                (n, rank(0.5), rank(0.9), rank(0.99), sorted[n - 1]),
                "n = {n}"
            );
            assert_eq!(d.mean, sorted.iter().sum::<f64>() / n as f64);
        }
    }
}

/// Resolutions a timeline may have, seconds: round numbers people read on an axis.
const RESOLUTIONS: [i64; 9] = [
    60,
    300,
    900,
    1800,
    3600,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    86_400,
];
/// At most this many points per timeline: enough for a heatmap row a page wide, few enough that
/// a year of history stays a small frame.
const MAX_POINTS: i64 = 1000;

/// The finest round resolution that keeps a timeline over `span_s` seconds within
/// [`MAX_POINTS`] points.
pub fn resolution(span_s: i64) -> i64 {
    RESOLUTIONS
        .into_iter()
        .find(|r| span_s / r <= MAX_POINTS)
        .unwrap_or_else(|| (span_s / MAX_POINTS).max(86_400))
}

/// What [`analyze`] needs besides the dataset.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The machines file (`--machines`), for configured slot counts.
    pub machines: Option<Vec<crate::nix::BuildMachine>>,
    /// Leave the runner's series out even when the data has one (to see what the database
    /// alone gives).
    pub ignore_series: bool,
    /// Leave the derivation graph out even when the data has one.
    pub ignore_graph: bool,
    /// The dependency estimator's gap, seconds ([`deps::DEFAULT_GAP_S`] when `None`).
    pub gap_s: Option<i64>,
    /// Measured compression speeds (codec, MB/s per core), from `compress --format json`
    /// ([`crate::compress::codec_speeds`] reads them), to compare with the overhead's
    /// size-proportional part.
    pub codec_speeds: Vec<(String, f64)>,
    /// Which findings to compute; the others are left empty ([`Need::ALL`] by default).
    pub need: Need,
}

/// Which findings a caller needs. Each costs its own passes (the ledger, which needs the
/// dependency estimate or the derivation graph, costs most): `analyze waiting` need not pay for
/// the ledger. Findings not needed are left at their empty defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    pub ledger: bool,
    pub waiting: bool,
    pub utilization: bool,
    pub waste: bool,
    pub deps: bool,
    pub overhead: bool,
}

impl Default for Need {
    fn default() -> Self {
        Need::ALL
    }
}

// Builds' columns no finding but the ledger reads, and `$extra`.
macro_rules! and_builds {
    [$(($t:literal, $c:literal)),* $(,)?] => {
        crate::not_analysed_and![
            ("builds", "jobset_id"),
            ("builds", "start_time"),
            ("builds", "global_priority"),
            $(($t, $c)),*
        ]
    };
}
// And those only waiting reads (a build's end, whether it finished or was cached, its
// priority).
macro_rules! beside_waiting {
    [$(($t:literal, $c:literal)),* $(,)?] => {
        and_builds![
            ("builds", "stop_time"),
            ("builds", "finished"),
            ("builds", "is_cached_build"),
            ("builds", "priority"),
            $(($t, $c)),*
        ]
    };
}
/// What the overhead fit leaves unread, and `$extra`: the output sizes come from the sample's
/// truth, else from `Builds.size` of each build's top-level step (matched by derivation path).
macro_rules! omit_for_overhead {
    [$(($t:literal, $c:literal)),* $(,)?] => {
        beside_waiting![
            ("truth_steps", "send_lock_wait_ms"),
            ("truth_steps", "local_slot_wait_ms"),
            ("truth_deps", "build"),
            ("truth_deps", "stepnr"),
            ("truth_deps", "dep_build"),
            ("truth_deps", "dep_stepnr"),
            ("steps", "system"),
            ("steps", "times_built"),
            ("builds", "project"),
            ("builds", "jobset"),
            ("builds", "job"),
            ("builds", "system"),
            $(($t, $c)),*
        ]
    };
}
const OVERHEAD: crate::dataset::Omit = omit_for_overhead![];
const OVERHEAD_WITH_TRUTH: crate::dataset::Omit = omit_for_overhead![
    ("steps", "drv_path"),
    ("builds", "drv_path"),
    ("builds", "size"),
];

impl Need {
    pub const ALL: Need = Need {
        ledger: true,
        waiting: true,
        utilization: true,
        waste: true,
        deps: true,
        overhead: true,
    };
    /// None of the findings but the data-quality checks, which every finding rests on.
    pub const NONE: Need = Need {
        ledger: false,
        waiting: false,
        utilization: false,
        waste: false,
        deps: false,
        overhead: false,
    };

    /// What printing `finding` needs (the data-quality checks are always made: every finding
    /// rests on them).
    pub fn of(finding: table::Finding) -> Need {
        use table::Finding;
        match finding {
            Finding::All => Need::ALL,
            Finding::Ledger => Need {
                ledger: true,
                ..Need::NONE
            },
            Finding::Waiting => Need {
                waiting: true,
                ..Need::NONE
            },
            Finding::Utilization => Need {
                utilization: true,
                ..Need::NONE
            },
            Finding::Waste => Need {
                waste: true,
                ..Need::NONE
            },
            Finding::Quality => Need::NONE,
            Finding::Deps => Need {
                deps: true,
                ..Need::NONE
            },
            Finding::Overhead => Need {
                overhead: true,
                ..Need::NONE
            },
        }
    }

    /// What `self` and `other` need together: each finding of either (computed in one pass).
    pub fn and(self, other: Need) -> Need {
        Need {
            ledger: self.ledger || other.ledger,
            waiting: self.waiting || other.waiting,
            utilization: self.utilization || other.utilization,
            waste: self.waste || other.waste,
            deps: self.deps || other.deps,
            overhead: self.overhead || other.overhead,
        }
    }

    /// Whether the derivation graph and the runner's series are read: only the ledger uses
    /// them.
    pub fn graph_and_series(self) -> bool {
        self.ledger
    }

    /// Whether the sample's ground truth is read: the dependency estimate's accuracy, the
    /// ledger (held slots against the truth) and the overhead fit (the true output sizes) use it.
    pub fn truth(self) -> bool {
        self.ledger || self.deps || self.overhead
    }

    fn is_overhead_alone(self) -> bool {
        self == Need {
            overhead: true,
            ..Need::NONE
        }
    }

    /// What to leave unread instead of [`Need::omit`] where the source has the sample's ground
    /// truth: the overhead fit then takes every step's output size from it, and neither the
    /// derivation paths nor the builds' sizes that match them otherwise (at a million steps
    /// `analyze overhead` of the sample's snapshot read 388 MB and took 1.10 s with them,
    /// 223 MB and 0.86 s without).
    pub fn omit_with_truth(self) -> Option<crate::dataset::Omit> {
        let with = self.omit_of_each(true);
        (with != self.omit()).then_some(with)
    }

    /// What one finding leaves unread where the source has the sample's truth (`truth`), or
    /// where it has none: every column of the truth's tables too when the finding reads none
    /// of it, so that another finding's read of the truth does not keep them.
    fn omit_alone(self, truth: bool) -> Vec<(&'static str, &'static str)> {
        let mut omit = match self.is_overhead_alone() && truth {
            true => OVERHEAD_WITH_TRUTH,
            false => self.omit_single(),
        }
        .to_vec();
        if !self.truth() {
            for def in crate::dataset::TRUTH_TABLES {
                omit.extend(def.columns.iter().map(|c| (def.name, c.name)));
            }
        }
        omit
    }

    /// The columns none of the findings reads: each finding's own [`Need::omit_alone`],
    /// intersected. `analyze waiting utilization waste overhead` over a million steps read
    /// every column the analyses know before (the truth's dependencies, the builds'
    /// derivation paths and sizes, which none of the four reads). Computed once for every
    /// combination of findings, so that the answer is as `'static` as a single finding's.
    fn omit_of_each(self, truth: bool) -> crate::dataset::Omit {
        type Sets = Vec<Vec<(&'static str, &'static str)>>;
        static SETS: std::sync::LazyLock<[Sets; 2]> = std::sync::LazyLock::new(|| {
            [false, true].map(|truth| {
                (0..Need::COMBINATIONS)
                    .map(|bits| Need::from_bits(bits).intersected(truth))
                    .collect()
            })
        });
        SETS[usize::from(truth)][self.bits()].as_slice()
    }

    /// [`Need::omit_alone`] of each finding set, intersected (a single finding's own; no
    /// finding at all, the quality checks', which every finding reads).
    fn intersected(self, truth: bool) -> Vec<(&'static str, &'static str)> {
        let mut parts = self.parts();
        let Some(first) = parts.pop() else {
            return Need::NONE.omit_alone(truth);
        };
        let mut omit = first.omit_alone(truth);
        for part in parts {
            let other = part.omit_alone(truth);
            omit.retain(|c| other.contains(c));
        }
        omit
    }

    /// How many findings a `Need` names, and how many combinations of them there are.
    const FLAGS: usize = 6;
    const COMBINATIONS: usize = 1 << Need::FLAGS;

    fn flags(self) -> [bool; Need::FLAGS] {
        [
            self.ledger,
            self.waiting,
            self.utilization,
            self.waste,
            self.deps,
            self.overhead,
        ]
    }

    fn bits(self) -> usize {
        self.flags()
            .iter()
            .enumerate()
            .filter(|(_, on)| **on)
            .map(|(i, _)| 1 << i)
            .sum()
    }

    fn from_bits(bits: usize) -> Need {
        let on = |i: usize| bits & (1 << i) != 0;
        Need {
            ledger: on(0),
            waiting: on(1),
            utilization: on(2),
            waste: on(3),
            deps: on(4),
            overhead: on(5),
        }
    }

    /// Each finding set on its own.
    fn parts(self) -> Vec<Need> {
        let bits = self.bits();
        (0..Need::FLAGS)
            .filter(|&i| bits & (1 << i) != 0)
            .map(|i| Need::from_bits(1 << i))
            .collect()
    }

    /// The columns a source need not read for these findings: those no analysis reads, and
    /// those none of the findings asked for reads. Every finding reads what the data-quality
    /// checks read (`quality::check`: the steps' build, number, type, status, times, machine,
    /// propagation and overhead; the builds' id and queue time). Reading only these made
    /// `analyze utilization` a fifth faster at a million steps; tests/snapshot.rs holds each
    /// finding read this way, and several read together, to the same findings of
    /// `analyze all`.
    pub fn omit(self) -> crate::dataset::Omit {
        self.omit_of_each(false)
    }

    /// What a single finding (or none) leaves unread; anything else, what no analysis reads.
    fn omit_single(self) -> crate::dataset::Omit {
        const WAITING: crate::dataset::Omit = and_builds![
            ("steps", "drv_path"),
            ("steps", "system"),
            ("steps", "times_built"),
            ("builds", "job"),
            ("builds", "drv_path"),
            ("builds", "size"),
        ];
        const UTILIZATION: crate::dataset::Omit = beside_waiting![
            ("steps", "drv_path"),
            ("steps", "times_built"),
            ("builds", "project"),
            ("builds", "jobset"),
            ("builds", "job"),
            ("builds", "system"),
            ("builds", "drv_path"),
            ("builds", "size"),
        ];
        const WASTE: crate::dataset::Omit = beside_waiting![
            ("steps", "system"),
            ("builds", "system"),
            ("builds", "drv_path"),
            ("builds", "size"),
        ];
        let only = |n: Need| self == n;
        // The quality checks alone read least; utilization adds only the steps' system.
        if self == Need::NONE
            || only(Need {
                utilization: true,
                ..Need::NONE
            })
        {
            UTILIZATION
        } else if only(Need {
            waiting: true,
            ..Need::NONE
        }) {
            WAITING
        } else if only(Need {
            waste: true,
            ..Need::NONE
        }) {
            WASTE
        } else if self.is_overhead_alone() {
            OVERHEAD
        } else {
            crate::dataset::NOT_ANALYSED
        }
    }
}

/// How one measured codec compares with the overhead's growth with output size.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CodecComparison {
    pub codec: String,
    /// The codec's measured compression speed, MB/s per core.
    pub compress_mb_s_core: f64,
    /// Compressing alone at this speed would take this share of the size-proportional overhead
    /// (implied MB/s ÷ codec MB/s); above 1, the codec is slower than the overhead grows.
    pub share_of_size_overhead: Option<f64>,
}

/// The dependency estimate as reported.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Dependencies {
    pub estimator: &'static str,
    pub gap_s: i64,
    pub edges: usize,
    /// Against the sample's true graph, when the dataset has one.
    pub accuracy: Option<deps::Accuracy>,
}

/// The overhead fit as reported.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Overhead {
    pub definition: &'static str,
    /// Where the output sizes come from.
    pub sizes_from: String,
    pub fit: Option<overhead::Fit>,
    /// Measured codecs next to the fit (with `--compression`).
    pub codecs: Vec<CodecComparison>,
    /// Up to [`SCATTER_POINTS`] of the fitted `(size bytes, overhead ms)` points, evenly spaced
    /// in step order, for a scatter chart.
    pub sample: Vec<(f64, f64)>,
}

impl Overhead {
    /// The fit of `points` (`(size bytes, overhead ms)` in key order), whose sizes came from
    /// `sizes_from`, beside the measured codecs' speeds.
    pub fn of(sizes_from: String, points: &[(f64, f64)], codec_speeds: &[(String, f64)]) -> Self {
        let fit = overhead::fit(points);
        let implied = fit.and_then(|f| f.implied_mb_per_s);
        Overhead {
            definition: overhead::DEFINITION,
            sizes_from,
            fit,
            codecs: codec_speeds
                .iter()
                .map(|(codec, speed)| CodecComparison {
                    codec: codec.clone(),
                    compress_mb_s_core: *speed,
                    share_of_size_overhead: implied.filter(|_| *speed > 0.0).map(|i| i / speed),
                })
                .collect(),
            sample: spread(points, SCATTER_POINTS),
        }
    }
}

/// Points kept for the overhead scatter chart: enough to show the cloud's shape and its
/// outliers, few enough that an SVG of them stays small.
pub const SCATTER_POINTS: usize = 400;

/// Every `len / max`-th point, in order: a deterministic, evenly spread subset.
fn spread<T: Copy>(all: &[T], max: usize) -> Vec<T> {
    if all.len() <= max {
        return all.to_vec();
    }
    (0..max).map(|k| all[k * all.len() / max]).collect()
}

/// Every finding of one dataset.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Findings {
    pub origin: String,
    pub is_sample: bool,
    pub runner: crate::dataset::Runner,
    pub runner_basis: String,
    pub since: i64,
    pub until: i64,
    /// Set when the window asked for reached beyond the data (see [`crate::dataset::DatasetMeta`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_note: Option<String>,
    pub quality: quality::Quality,
    pub ledger: ledger::Ledger,
    pub overhead: Overhead,
    pub waiting: waiting::Waiting,
    pub utilization: utilization::Utilization,
    pub waste: waste::Waste,
    pub dependencies: Dependencies,
    /// Where the ledger's runnable times come from.
    pub runnable_basis: RunnableBasis,
}

/// Which dependencies the ledger takes to learn when each step became runnable: the derivation
/// graph when the data came with one (`--drv-store`, a snapshot's `store/`, the sample), else
/// the same-build estimate.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunnableBasis {
    /// The `.drv` files' input derivations joined with the steps ([`graph`]).
    Graph {
        coverage: graph::Coverage,
        edges: usize,
        /// Against the sample's true graph, when the dataset has one.
        accuracy: Option<deps::Accuracy>,
    },
    /// The same-build estimate ([`deps`]).
    Estimate { gap_s: i64, edges: usize },
}

impl RunnableBasis {
    /// One sentence saying where runnable times come from.
    pub fn describe(&self) -> String {
        match self {
            RunnableBasis::Graph { coverage: c, .. } => format!(
                "the derivation graph ({}): the .drv of {:.1} % of the steps found, {} of their \
                 {} input derivations built in the window, {} valid before it",
                c.source,
                100.0 * c.share_found,
                c.inputs_matched,
                c.inputs,
                c.inputs_before_window
            ),
            RunnableBasis::Estimate { gap_s, .. } => format!(
                "the same-build dependency estimate (gap {gap_s} s); no derivation graph was given"
            ),
        }
    }
}

pub const DEPS_ESTIMATOR: &str = "D is a dependency of S when both belong to the same build, D \
    finished successfully before S started, and S started within the gap of D finishing; the \
    latest-finishing such D is always taken";

/// Runs every analysis over `ds`.
/// `f()` where `needed`, its end marked in the debug log as the analysis' part `name`.
fn when<T>(needed: bool, name: &str, f: impl FnOnce() -> T) -> Option<T> {
    let out = needed.then(f);
    if out.is_some() {
        crate::progress::mark(&format!("analysis: {name}"));
    }
    out
}

pub fn analyze(ds: &Dataset, opts: &Options) -> Result<Findings> {
    let steps = Steps::from_frame(&ds.steps)?;
    let (quality, usable) = quality::check(ds, &steps)?;
    crate::progress::mark("analysis: steps and quality");
    let (lo, hi) = span(ds)?.unwrap_or((0, 0));
    let need = opts.need;
    // The ledger's slots fall back to each machine's observed peak: it needs utilization
    // first. Without the ledger, utilization is computed beside the other findings (below).
    let utilization_of = || utilization::utilization(&steps, &usable, lo, hi);
    let mut utilization = when(need.ledger, "utilization", utilization_of).unwrap_or_default();
    let gap_s = opts.gap_s.unwrap_or(deps::DEFAULT_GAP_S);
    // The derivation graph, when the data came with one, tells the ledger when each step became
    // runnable; the estimate otherwise.
    let joined = ds
        .drv_graph
        .as_ref()
        .filter(|_| !opts.ignore_graph && need.ledger)
        .map(|g| graph::join(g, &ds.meta, &steps, &usable));
    let edges = if need.deps || (need.ledger && joined.is_none()) {
        deps::estimate(&steps, &usable, gap_s)
    } else {
        Vec::new()
    };
    crate::progress::mark("analysis: graph and dependency estimate");
    let accuracy = match &ds.truth {
        Some(t) if need.deps => Some(deps::accuracy(&edges, &t.deps, gap_s)?),
        _ => None,
    };
    let runnable_basis = match &joined {
        Some(j) => RunnableBasis::Graph {
            coverage: j.coverage.clone(),
            edges: j.edges.len(),
            accuracy: match &ds.truth {
                Some(t) if need.deps || need.ledger => {
                    Some(deps::accuracy(&j.edges, &t.deps, gap_s)?)
                }
                _ => None,
            },
        },
        None => RunnableBasis::Estimate {
            gap_s,
            edges: edges.len(),
        },
    };
    let ledger = if !need.ledger {
        ledger::Ledger::default()
    } else {
        ledger::ledger(&ledger::Inputs {
            ds,
            steps: &steps,
            usable: &usable,
            machines: opts.machines.as_deref(),
            peaks: &utilization.peak_by_machine,
            edges: joined.as_ref().map_or(&edges, |j| &j.edges),
            runnable: match &joined {
                Some(j) => ledger::Runnable::Graph {
                    found: j.coverage.steps_found,
                    asked: j.coverage.steps,
                },
                None => ledger::Runnable::Estimate,
            },
            timeline: ds.timeline.as_ref().filter(|_| !opts.ignore_series),
            lo,
            hi,
        })?
    };
    crate::progress::mark("analysis: ledger");
    // The findings that read the frames and nothing of each other, side by side on the
    // threads there are (after the ledger, whose peak of memory is the analysis' largest, so
    // that theirs do not add to it). Over a million steps `analyze waiting utilization waste
    // overhead` spent 0.85 s in them one after another.
    let (utilization_later, (waiting, (waste, overhead))) = rayon::join(
        || {
            when(
                need.utilization && !need.ledger,
                "utilization",
                utilization_of,
            )
        },
        || {
            rayon::join(
                || {
                    when(need.waiting, "waiting", || {
                        waiting::waiting(ds, &steps, &usable)
                    })
                },
                || {
                    rayon::join(
                        || when(need.waste, "waste", || waste::waste(ds, &steps, &usable)),
                        || {
                            when(need.overhead, "overhead", || {
                                overhead_points(ds, &steps, &usable)
                            })
                        },
                    )
                },
            )
        },
    );
    if let Some(u) = utilization_later {
        utilization = u;
    }
    let waiting = waiting.transpose()?.unwrap_or_default();
    let waste = waste.transpose()?.unwrap_or_default();
    let (sizes_from, points) = overhead.transpose()?.unwrap_or_default();
    Ok(Findings {
        ledger,
        overhead: Overhead::of(sizes_from, &points, &opts.codec_speeds),
        waiting,
        utilization,
        waste,
        dependencies: Dependencies {
            estimator: DEPS_ESTIMATOR,
            gap_s,
            edges: edges.len(),
            accuracy,
        },
        runnable_basis,
        ..Findings::of(&ds.meta, lo, hi, quality, gap_s)
    })
}

impl Findings {
    /// The findings of data described by `meta` over `[lo, hi)` with its `quality`, every
    /// other finding empty (as when it is not asked for).
    fn of(
        meta: &crate::dataset::DatasetMeta,
        lo: i64,
        hi: i64,
        quality: quality::Quality,
        gap_s: i64,
    ) -> Findings {
        Findings {
            origin: meta.origin.describe(),
            is_sample: meta.origin.is_sample(),
            runner: meta.runner,
            runner_basis: meta.runner_basis.clone(),
            since: lo,
            until: hi,
            window_note: meta.window_note.clone(),
            quality,
            ledger: ledger::Ledger::default(),
            overhead: Overhead::default(),
            waiting: waiting::Waiting::default(),
            utilization: utilization::Utilization::default(),
            waste: waste::Waste::default(),
            dependencies: Dependencies {
                estimator: DEPS_ESTIMATOR,
                gap_s,
                edges: 0,
                accuracy: None,
            },
            runnable_basis: RunnableBasis::Estimate { gap_s, edges: 0 },
        }
    }
}

/// `(output size, overhead)` of steps whose output size is known: from the sample's truth, or
/// from `Builds.size` for each build's top-level step (the step building the build's own
/// derivation).
fn overhead_points(
    ds: &Dataset,
    steps: &Steps,
    usable: &[bool],
) -> Result<(String, Vec<(f64, f64)>)> {
    let (from, size) = step_sizes(ds, steps)?;
    let points = (0..steps.len())
        .filter_map(|i| {
            let o = overhead_of(steps, usable, i)?;
            Some((size[i]? as f64, o as f64))
        })
        .collect();
    Ok((from, points))
}

/// The overhead of step `i` where it is a point of the fit: a usable build step (not a
/// substitution) that succeeded and has its overhead recorded.
fn overhead_of(steps: &Steps, usable: &[bool], i: usize) -> Option<i64> {
    let point = usable[i] && steps.status(i) == Some(BuildStatus::Success) && steps.kind(i) == 0;
    point.then(|| steps.overhead_ms(i)).flatten()
}

/// Where the overhead fit's sizes come from, as the finding says.
const SIZES_FROM_TRUTH: &str = "the sample's ground truth (output NAR size of every step)";
const SIZES_FROM_BUILDS: &str = "Builds.size of each build's top-level step";

/// The overhead fit's points gathered a part at a time ([`fold`]): each point's step and
/// overhead as its part gives them, its size once every part is in (from the truth's steps or
/// the builds, [`step_sizes`]'s sources), then the points in key order, as [`overhead_points`]
/// gives them over the whole window: the fit draws its pairs by position.
#[derive(Debug, Default)]
pub struct OverheadPoints {
    points: Vec<OverheadPoint>,
}

/// 32 bytes a point.
#[derive(Debug, Clone, Copy)]
struct OverheadPoint {
    build: i32,
    stepnr: i32,
    overhead_ms: i64,
    /// Output NAR bytes, once found.
    size: Option<i64>,
    /// The step's derivation ([`waste::drv_key`]), matched against its build's.
    drv: u64,
}

impl OverheadPoints {
    /// Takes the points among `steps` (usable as `usable` says).
    pub fn add(&mut self, steps: &Steps, usable: &[bool]) {
        for i in 0..steps.len() {
            if let Some(o) = overhead_of(steps, usable, i) {
                self.points.push(OverheadPoint {
                    build: steps.build(i),
                    stepnr: steps.stepnr(i),
                    overhead_ms: o,
                    size: None,
                    drv: steps.drv_path(i).map_or(0, waste::drv_key),
                });
            }
        }
    }

    /// Puts the points in key order, once every part is in and before any size is given.
    pub fn in_key_order(&mut self) {
        self.points.sort_unstable_by_key(|p| (p.build, p.stepnr));
    }

    /// Sizes from some of the truth's steps (`build`, `stepnr`, `output_nar_size`).
    pub fn sizes_from_truth(&mut self, truth_steps: &DataFrame) -> Result<()> {
        let err = |e| Error::frame("truth_steps", e);
        let col = |name: &str| truth_steps.column(name).and_then(|c| c.i32().cloned());
        let (b, n) = (col("build").map_err(err)?, col("stepnr").map_err(err)?);
        let size = truth_steps
            .column("output_nar_size")
            .and_then(|c| c.i64().cloned())
            .map_err(err)?;
        for ((b, n), s) in b.iter().zip(n.iter()).zip(size.iter()) {
            let (Some(key), Some(s)) = (b.zip(n), s) else {
                continue;
            };
            if let Ok(k) = self
                .points
                .binary_search_by_key(&key, |p| (p.build, p.stepnr))
            {
                self.points[k].size = Some(s);
            }
        }
        Ok(())
    }

    /// Sizes from some builds (`id`, `drv_path`, `size`): each build's size goes to its
    /// top-level steps, those that built the build's own derivation.
    pub fn sizes_from_builds(&mut self, builds: &DataFrame) -> Result<()> {
        let err = |e| Error::frame("builds", e);
        let id = builds
            .column("id")
            .and_then(|c| c.i32().cloned())
            .map_err(err)?;
        let drv = builds.column("drv_path").map_err(err)?.str().map_err(err)?;
        let size = builds
            .column("size")
            .and_then(|c| c.i64().cloned())
            .map_err(err)?;
        for ((id, d), s) in id.iter().zip(drv.iter()).zip(size.iter()) {
            let (Some(id), Some(d), Some(s)) = (id, d, s) else {
                continue;
            };
            let d = waste::drv_key(d);
            let first = self.points.partition_point(|p| p.build < id);
            for p in self.points[first..]
                .iter_mut()
                .take_while(|p| p.build == id)
            {
                if p.drv == d && p.size.is_none() {
                    p.size = Some(s);
                }
            }
        }
        Ok(())
    }

    /// `(size bytes, overhead ms)` of every point whose size was found, in key order.
    pub fn finish(self) -> Vec<(f64, f64)> {
        self.points
            .into_iter()
            .filter_map(|p| Some((p.size? as f64, p.overhead_ms as f64)))
            .collect()
    }
}

/// Output NAR bytes of each step row (`None` where unknown), in the order of [`Steps`].
pub type StepSizes = Vec<Option<i64>>;

/// The output NAR size of every step whose size is known, and where the sizes come from: the
/// sample's ground truth, else `Builds.size` of each build's top-level step (Hydra records no
/// size for the other steps).
///
/// Both are found by binary search over the other table's rows in key order (the truth's row
/// of the same number first), not through a map keyed by build: over ten million steps such a
/// map held more than half a gigabyte.
pub fn step_sizes(ds: &Dataset, steps: &Steps) -> Result<(String, StepSizes)> {
    let err = |what: &'static str| move |e: PolarsError| Error::frame(what, e);
    let mut size: StepSizes = vec![None; steps.len()];
    let from = if let Some(t) = &ds.truth {
        // Read in place (one chunk each), not copied into vectors of options: that cost 48
        // bytes a step.
        let col = |name: &str| t.steps.column(name).map_err(err("truth_steps"));
        let b = col("build")?.i32().map_err(err("truth_steps"))?.rechunk();
        let n = col("stepnr")?.i32().map_err(err("truth_steps"))?.rechunk();
        let s = col("output_nar_size")?;
        let s = s.i64().map_err(err("truth_steps"))?.rechunk();
        let key = |i: usize| (Some(steps.build(i)), Some(steps.stepnr(i)));
        let at = |r: usize| (b.get(r), n.get(r));
        // The sample writes both tables in the same row order, and a snapshot keeps it: the
        // row of the same number is tried first, and the sort that finds any other row is
        // made only when one is out of place (a sixth of `analyze overhead` at a million
        // steps).
        let mut order: Option<Vec<u32>> = None;
        for (i, size) in size.iter_mut().enumerate() {
            let key = key(i);
            if i < b.len() && at(i) == key {
                *size = s.get(i);
                continue;
            }
            let order = order.get_or_insert_with(|| sorted_by(b.len(), at));
            if let Ok(k) = order.binary_search_by(|&r| at(r as usize).cmp(&key)) {
                *size = s.get(order[k] as usize);
            }
        }
        SIZES_FROM_TRUTH.to_string()
    } else {
        let df = &ds.builds;
        let ids = df.column("id").map_err(err("builds"))?;
        let ids = ids.i32().map_err(err("builds"))?.rechunk();
        let drv = df.column("drv_path").map_err(err("builds"))?;
        let drv = drv.str().map_err(err("builds"))?.rechunk();
        let sz = df.column("size").map_err(err("builds"))?;
        let sz = sz.i64().map_err(err("builds"))?.rechunk();
        // Builds come in key order, as `source::normalize` leaves them, and so do the steps:
        // one cursor walks the builds alongside the steps, searching again only where a step's
        // build is below the last one's (a binary search per step over ten million, with
        // each probe a look-up in a column, was a quarter of `analyze overhead` there).
        let order = if ids.iter().is_sorted() {
            (0..ids.len() as u32).collect()
        } else {
            sorted_by(ids.len(), |r| ids.get(r))
        };
        let id_at: Vec<Option<i32>> = order.iter().map(|&r| ids.get(r as usize)).collect();
        let (mut first, mut prev) = (0usize, None);
        for (i, size) in size.iter_mut().enumerate() {
            let Some(d) = steps.drv_path(i) else { continue };
            let id = Some(steps.build(i));
            if id < prev {
                first = id_at.partition_point(|&b| b < id);
            } else {
                while first < id_at.len() && id_at[first] < id {
                    first += 1;
                }
            }
            prev = id;
            // Hydra's ids are unique; the first of any duplicates whose path matches is taken.
            *size = (first..id_at.len())
                .take_while(|&k| id_at[k] == id)
                .map(|k| order[k] as usize)
                .find(|&r| drv.get(r) == Some(d))
                .and_then(|r| sz.get(r));
        }
        SIZES_FROM_BUILDS.to_string()
    };
    Ok((from, size))
}

/// The row numbers `0..n` in the order of `key` (4 bytes a row).
pub(super) fn sorted_by<K: Ord>(n: usize, key: impl Fn(usize) -> K) -> Vec<u32> {
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.sort_by_key(|&r| key(r as usize));
    order
}
