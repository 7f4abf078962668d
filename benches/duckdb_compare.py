#!/usr/bin/env python3
"""The DuckDB side of benches/duckdb-compare.sh, and the comparison of both sides' answers.

Run it through benches/duckdb-compare.sh, which makes the private venv with the `duckdb`
package, times each side as its own process and calls this file's subcommands:

    duckdb_compare.py duckdb FINDING SNAPSHOT OUT.json   the SQL answer of one finding (timed)
    duckdb_compare.py ours FINDING OURS.json OUT.json    our `analyze FINDING --format json`,
                                                         put in the same form (not timed)
    duckdb_compare.py compare FINDING SNAPSHOT OURS DUCK compares two answers, prints one line
    duckdb_compare.py table RESULTS.tsv                  the Markdown table of a run

FINDING is one of: waiting, utilization, waste, overhead, ledger (the per-machine overhead
totals of the capacity ledger) and prune (DuckDB only: one day of steps read through the
`day=` partition, to show partition pruning).

What the SQL computes, by our definitions (src/analysis/*.rs):

- usable steps (quality.rs): a step is left out of every time-based figure when its stopTime is
  before its startTime; it runs (no status) without a startTime; it finished on a machine
  (status not 2, 8, 9, no propagatedFrom) without a startTime or stopTime; its overhead is
  negative or over a day; or it ran for more than a week. Null build/stepnr/type read as 0,
  null machine/system as "" (mod.rs, `Steps`).
- waiting (waiting.rs): per build with an id and a queue time, to_start = max(0, earliest start
  of the build's usable steps - Builds.timestamp), none for a cached build; to_finish =
  stopTime - timestamp for a finished build with stopTime >= timestamp. Count, nearest-rank
  p50/p90/p99 (DuckDB's quantile_disc is nearest-rank, as `Distribution::of` in mod.rs), max,
  mean, and the 1-2-5 histogram of to_start; overall, by Builds.system, by project:jobset, by
  priority, by UTC day queued; the cached-build count; the backlog series (builds queued at or
  before each grid time and not finished by then, on the grid of `analysis::resolution`).
  Compared: all of it.
- utilization (utilization.rs): over the analysis window (the manifest's window, else the
  data's extent as `analysis::span`), on buckets of `resolution(span)` seconds from
  floor(lo / res) * res, the overlap of each usable step's [start, stop) (stop > start, on a
  machine) with each bucket divided by the bucket length, summed per machine and per system;
  and per machine the most steps running at one instant (ends before starts at equal times),
  over all such steps, not clipped to the window. Compared: all of it (series are sparse in
  SQL, dense in ours: a missing bucket is 0).
- waste (waste.rs): over usable steps on a machine with both times (stop >= start), slot time =
  (stop - start) + max(overhead, 0) / 1000; categories by status (1, 6 failed; 7 timed out;
  10, 11 over a limit; 12 not deterministic; 3 aborted; 4 cancelled); a successful build
  (type 0, with a drvPath) of a derivation that already had a successful build earlier in
  (startTime, build, stepnr) order is "rebuilt"; a successful step with timesBuilt > 1 wastes
  (timesBuilt - 1) / timesBuilt of its build time. Compared: total and wasted slot-hours, the
  wasted overhead, steps and slot-hours per category, the top 10 jobsets and jobs (steps that
  wasted time, joined to Builds by id) and the 10 most rebuilt derivations (all type-0 steps of
  a drvPath in the set above, more than one).
- overhead (overhead.rs, mod.rs `overhead_points`): the points are usable successful type-0
  steps with an overhead and a known output size (the sample's truth_steps.output_nar_size
  when the snapshot has truth tables, else Builds.size where the build's drvPath is the
  step's). Ours fits Theil-Sen over 200,000 pairs drawn by a seeded ChaCha8 generator, which
  SQL cannot replay: DuckDB draws its own 200,000 pairs (random(), fixed seed). Compared: the
  number of points and the 400 scatter points (exact); our slope against DuckDB's sample of
  slopes (within tolerance: it must lie between the quantiles 0.5 -+ 4 * sqrt(2) / (2 *
  sqrt(m)) of DuckDB's m pair slopes, four standard deviations of the difference of two
  independent sample medians in rank terms); and, with our slope, the intercept, the median
  absolute residual and the size share, recomputed in SQL (an untimed check query).
- ledger (ledger.rs): only `overhead_h` per machine: the sum of max(overhead, 0) of usable
  steps on a machine whose stopTime lies in [lo, hi). Ours computes the whole ledger (graph,
  dispatch loss): its time is not that of this sum alone. Machines whose row was scaled down
  for over-commitment are skipped (counted in the line). Rows are keyed by the step's machine
  name, which is the ledger's key when no machine appears under two names (a C++ and a Rust
  runner's name of one host) and no machines file renames it.

Tolerances: counts, percentiles, maxima, keys and ordering exactly; sums and means of floats
relative 1e-9 (or absolute 1e-9 near zero), since both sides add in different orders. Our
JSON prints every float in full (serde_json, shortest round-trip), so nothing is rounded.
"""

import json
import math
import os
import re
import sys
import time

FINDINGS = ["waiting", "utilization", "waste", "overhead", "ledger", "prune"]

# The snapshot format versions whose columns this SQL was written against.
FORMAT_VERSIONS = (1, 2)

REL_TOL = 1e-9
ABS_TOL = 1e-9

# analysis::resolution and waiting::HISTOGRAM_EDGES_S
RESOLUTIONS = [60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400]
MAX_POINTS = 1000
HIST_EDGES = [0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5,
              2e5, 5e5, 1e6]
PAIRS = 200_000
SCATTER_POINTS = 400
TOP = 10

WASTE_ORDER = ["failed", "timed out", "over a limit", "not deterministic", "aborted",
               "cancelled", "rebuilt", "determinism rounds"]


def resolution_sql(span):
    """SQL for analysis::resolution(span): the finest round resolution with at most 1000
    points (integer division, as in Rust; span >= 0 here)."""
    whens = " ".join(f"WHEN ({span}) // {r} <= {MAX_POINTS} THEN {r}" for r in RESOLUTIONS)
    return f"(CASE {whens} ELSE greatest(({span}) // {MAX_POINTS}, 86400) END)"


# ---------------------------------------------------------------------------------------------
# The DuckDB side


def table_glob(snap, table):
    """The read_parquet glob of one table: `TABLE/day=.../part-0.parquet` for the tables
    partitioned by day, `TABLE/part-0.parquet` for the small ones (and for a partitioned table
    that was empty when written)."""
    d = os.path.join(snap, table)
    if any(e.startswith("day=") for e in os.listdir(d)):
        return os.path.join(d, "*", "*.parquet"), True
    return os.path.join(d, "*.parquet"), False


def connect(snap):
    import duckdb

    con = duckdb.connect()
    threads = int(os.environ.get("HB_THREADS", "2"))
    con.execute(f"SET threads = {threads}")
    # Results are ordered where order matters; without this DuckDB keeps rows in file order.
    con.execute("SET preserve_insertion_order = false")
    with open(os.path.join(snap, "manifest.json")) as f:
        manifest = json.load(f)
    # The SQL reads the columns of src/dataset.rs by name, as the snapshot's format version
    # (src/source/snapshot.rs FORMAT_VERSION) fixes them; a newer version may have changed them.
    version = manifest.get("format_version")
    if manifest.get("format") != "hydra-bottleneck-snapshot" or version not in FORMAT_VERSIONS:
        sys.exit(f"{snap}: a hydra-bottleneck snapshot of format version "
                 f"{', '.join(map(str, FORMAT_VERSIONS))} is needed; this one says "
                 f"{manifest.get('format')!r} version {version!r}")
    for table in manifest["tables"]:
        glob, hive = table_glob(snap, table)
        glob = glob.replace("'", "''")
        con.execute(
            f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{glob}', "
            f"hive_partitioning = {'true' if hive else 'false'})"
        )
    # The steps as mod.rs `Steps` reads them, and the data-quality mask of quality.rs.
    con.execute("""
        CREATE VIEW s AS
        SELECT coalesce(build, 0) AS build, coalesce(stepnr, 0) AS stepnr,
               coalesce(type, 0) AS kind, drv_path, status,
               start_time AS a, stop_time AS b,
               coalesce(machine, '') AS machine, coalesce(system, '') AS system,
               overhead_ms, times_built,
               CASE WHEN start_time IS NOT NULL AND stop_time >= start_time
                    THEN stop_time - start_time END AS dur,
               NOT (
                    coalesce(stop_time < start_time, false)
                 OR (status IS NULL AND start_time IS NULL)
                 OR (status IS NOT NULL AND status NOT IN (2, 8, 9)
                     AND propagated_from IS NULL AND coalesce(machine, '') <> ''
                     AND (start_time IS NULL OR stop_time IS NULL))
                 OR coalesce(overhead_ms < 0, false)
                 OR coalesce(overhead_ms > 86400000, false)
                 OR coalesce(stop_time - start_time > 604800, false)
               ) AS usable
        FROM steps
    """)
    return con, manifest


def span(con, manifest):
    """analysis::span: the manifest's window, else the data's extent (Dataset::extent; the
    last stop or start plus one second)."""
    w = manifest.get("window") or {}
    lo, hi = w.get("since"), w.get("until")
    if lo is None or hi is None:
        first, last = con.execute("""
            SELECT least((SELECT min(start_time) FROM steps), (SELECT min(timestamp) FROM builds)),
                   greatest((SELECT max(stop_time) FROM steps), (SELECT max(start_time) FROM steps))
        """).fetchone()
        lo = lo if lo is not None else first
        hi = hi if hi is not None else (None if last is None else last + 1)
    if lo is None or hi is None or hi <= lo:
        return 0, 0
    return lo, hi


def duck_waiting(con, manifest, out):
    con.execute("""
        CREATE TEMP TABLE w AS
        WITH fs AS (SELECT build, min(a) AS first FROM s
                    WHERE usable AND a IS NOT NULL GROUP BY build)
        SELECT coalesce(bl.system, '') AS system,
               coalesce(bl.project, '?') || ':' || coalesce(bl.jobset, '?') AS jobset,
               coalesce(bl.priority, 0) AS priority,
               strftime(epoch_ms(floor(bl.timestamp / 86400)::BIGINT * 86400000), '%Y-%m-%d') AS day,
               -- (greatest() skips NULLs in DuckDB: a build without a start stays NULL.)
               CASE WHEN bl.is_cached_build IS TRUE OR fs.first IS NULL THEN NULL
                    ELSE greatest(fs.first - bl.timestamp, 0) END AS to_start,
               CASE WHEN bl.finished IS TRUE AND bl.stop_time >= bl.timestamp
                    THEN bl.stop_time - bl.timestamp END AS to_finish,
               bl.is_cached_build IS TRUE AS cached
        FROM builds bl LEFT JOIN fs ON fs.build = bl.id
        WHERE bl.id IS NOT NULL AND bl.timestamp IS NOT NULL
    """)
    edges = HIST_EDGES
    bins = []
    for k, lo in enumerate(edges):
        hi = f" AND to_start < {edges[k + 1]}" if k + 1 < len(edges) else ""
        bins.append(f"count(*) FILTER (WHERE to_start >= {lo}{hi})")
    dist = lambda c: (f"count({c}), quantile_disc({c}, [0.5, 0.9, 0.99]), max({c}), avg({c})")
    rows = con.execute(f"""
        SELECT grouping(system), grouping(jobset), grouping(priority), grouping(day),
               system, jobset, priority, day,
               {dist('to_start')}, {dist('to_finish')}, {', '.join(bins)}
        FROM w
        GROUP BY GROUPING SETS ((), (system), (jobset), (priority), (day))
    """).fetchall()
    for r in rows:
        g = r[0:4]
        if g == (1, 1, 1, 1):
            scope, key = "all", "all"
        elif g[0] == 0:
            scope, key = "system", r[4]
        elif g[1] == 0:
            scope, key = "jobset", r[5]
        elif g[2] == 0:
            scope, key = "priority", str(r[6])
        else:
            scope, key = "day", r[7]
        p = f"waiting/{scope}/{key}"
        for name, (n, q, mx, mean) in (("to_start", r[8:12]), ("to_finish", r[12:16])):
            q = q or [0, 0, 0]
            out[f"{p}/{name}/count"] = n
            out[f"{p}/{name}/p50"] = q[0] or 0
            out[f"{p}/{name}/p90"] = q[1] or 0
            out[f"{p}/{name}/p99"] = q[2] or 0
            out[f"{p}/{name}/max"] = mx or 0
            out[f"{p}/{name}/mean"] = mean if mean is not None else 0.0
        out[f"{p}/to_start_histogram"] = list(r[16:16 + len(edges)])
    out["waiting/cached_builds"] = con.execute("SELECT count(*) FILTER (WHERE cached) FROM w").fetchone()[0]
    # The backlog (waiting.rs `backlog`): on the grid t0 + k * res up to hi, builds queued at
    # or before t, less those that left (finished: max(stop, queued)) at or before t.
    res_sql = resolution_sql("hi - lo")
    rows = con.execute(f"""
        WITH q AS (SELECT timestamp AS q,
                          CASE WHEN finished IS TRUE AND stop_time IS NOT NULL
                               THEN greatest(stop_time, timestamp) END AS l
                   FROM builds WHERE id IS NOT NULL AND timestamp IS NOT NULL),
        e AS (SELECT min(q) AS lo, greatest(max(q), coalesce(max(l), min(q))) AS hi FROM q),
        g AS (SELECT lo, hi, {res_sql} AS res FROM e),
        g2 AS (SELECT *, floor(lo / res)::BIGINT * res AS t0 FROM g),
        qk AS (SELECT (q.q - t0 + res - 1) // res AS k, count(*) AS n FROM q, g2 GROUP BY 1),
        lk AS (SELECT (q.l - t0 + res - 1) // res AS k, count(*) AS n FROM q, g2
               WHERE q.l IS NOT NULL GROUP BY 1),
        ks AS (SELECT unnest(range(0, (hi - t0) // res + 1)) AS k FROM g2)
        SELECT ks.k * res + t0 AS t, res,
               greatest(sum(coalesce(qk.n, 0)) OVER (ORDER BY ks.k)
                        - sum(coalesce(lk.n, 0)) OVER (ORDER BY ks.k), 0) AS queued
        FROM ks CROSS JOIN g2 LEFT JOIN qk ON qk.k = ks.k LEFT JOIN lk ON lk.k = ks.k
        ORDER BY t
    """).fetchall()
    out["waiting/backlog_resolution_s"] = rows[0][1] if rows else None
    out["waiting/backlog"] = [[t, int(n)] for t, _, n in rows]


def duck_utilization(con, manifest, out):
    lo, hi = span(con, manifest)
    con.execute(f"""
        CREATE TEMP TABLE g AS
        WITH r AS (SELECT {resolution_sql(f'{hi} - {lo}')} AS res)
        SELECT res, floor({lo} / res)::BIGINT * res AS t0,
               greatest(({hi} - floor({lo} / res)::BIGINT * res + res - 1) // res, 0) AS nb
        FROM r
    """)
    res, t0, nb = con.execute("SELECT res, t0, nb FROM g").fetchone()
    out["utilization/start"] = t0
    out["utilization/resolution_s"] = res
    out["utilization/buckets"] = nb
    end = t0 + nb * res
    con.execute("""
        CREATE TEMP TABLE u AS
        SELECT machine, system, a, b FROM s
        WHERE usable AND machine <> '' AND a IS NOT NULL AND b IS NOT NULL AND b > a
    """)
    # Each clipped interval cut at bucket edges: integer seconds per (key, bucket), divided by
    # the bucket's length at the end (ours adds the fractions; hence the tolerance).
    rows = con.execute(f"""
        WITH c AS (SELECT machine, system, greatest(a, {t0}) AS ca, least(b, {end}) AS cb
                   FROM u WHERE least(b, {end}) > greatest(a, {t0})),
        e AS (SELECT machine, system, ca, cb,
                     unnest(range((ca - {t0}) // {res}, (cb - 1 - {t0}) // {res} + 1)) AS k
              FROM c)
        SELECT grouping(machine) AS gm, machine, system, k,
               sum(least(cb, {t0} + (k + 1) * {res}) - greatest(ca, {t0} + k * {res})) AS sec
        FROM e GROUP BY GROUPING SETS ((machine, k), (system, k))
    """).fetchall()
    keys = {"machine": set(), "system": set()}
    for gm, machine, system, k, sec in rows:
        scope, key = ("machine", machine) if gm == 0 else ("system", system)
        keys[scope].add(key)
        out[f"utilization/{scope}/{key}/{k}"] = float(sec) / res
    for scope, ks in keys.items():
        out[f"utilization/keys/{scope}"] = sorted(ks)
    rows = con.execute("""
        WITH ev AS (SELECT machine, a AS t, 1 AS d FROM u UNION ALL SELECT machine, b, -1 FROM u)
        SELECT machine, greatest(max(lvl), 0) FROM (
            SELECT machine, sum(d) OVER (PARTITION BY machine ORDER BY t, d
                                         ROWS UNBOUNDED PRECEDING) AS lvl FROM ev)
        GROUP BY machine
    """).fetchall()
    for m, peak in rows:
        out[f"utilization/peak/{m}"] = int(peak)


def duck_waste(con, manifest, out):
    con.execute("""
        CREATE TEMP TABLE o AS
        SELECT build, stepnr, kind, drv_path, status, a, dur,
               greatest(coalesce(overhead_ms, 0), 0) AS oh_ms,
               greatest(coalesce(times_built, 1), 1) AS rounds
        FROM s WHERE usable AND machine <> '' AND dur IS NOT NULL
    """)
    # A successful build of a derivation that had a successful build earlier in time order.
    con.execute("""
        CREATE TEMP TABLE c AS
        WITH r AS (
            SELECT *,
                   kind = 0 AND drv_path IS NOT NULL AND status = 0
                   AND coalesce(sum((status = 0)::INT) OVER (
                           PARTITION BY drv_path, kind = 0 ORDER BY a, build, stepnr
                           ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) > 0 AS rebuilt
            FROM o)
        SELECT *,
               CASE WHEN status IN (1, 6) THEN 'failed'
                    WHEN status = 7 THEN 'timed out'
                    WHEN status IN (10, 11) THEN 'over a limit'
                    WHEN status = 12 THEN 'not deterministic'
                    WHEN status = 3 THEN 'aborted'
                    WHEN status = 4 THEN 'cancelled'
                    WHEN status = 0 AND rebuilt THEN 'rebuilt'
                    WHEN status = 0 AND rounds > 1 THEN 'determinism rounds'
                    ELSE 'useful' END AS cat,
               dur * 1000 + oh_ms AS slot_ms
        FROM r
    """)
    con.execute("""
        CREATE TEMP TABLE cw AS
        SELECT *,
               CASE cat WHEN 'useful' THEN 0.0
                        WHEN 'determinism rounds' THEN dur::DOUBLE * (rounds - 1) / rounds
                        ELSE slot_ms / 1000.0 END AS wasted_s
        FROM c
    """)
    total_ms, wasted_oh_ms = con.execute("""
        SELECT sum(slot_ms),
               coalesce(sum(oh_ms) FILTER (WHERE wasted_s > 0
                                           AND cat NOT IN ('determinism rounds', 'useful')), 0)
        FROM cw
    """).fetchone()
    out["waste/total_slot_hours"] = float(total_ms) / 3.6e6
    out["waste/wasted_overhead_slot_hours"] = float(wasted_oh_ms) / 3.6e6
    cats = dict.fromkeys(WASTE_ORDER, (0, 0.0))
    for cat, n, ms, det_s in con.execute("""
        SELECT cat, count(*), sum(slot_ms), sum(wasted_s) FROM cw GROUP BY cat
    """).fetchall():
        if cat in cats:
            secs = det_s if cat == "determinism rounds" else float(ms) / 1000.0
            cats[cat] = (n, secs / 3600.0)
    for name, (n, h) in cats.items():
        out[f"waste/category/{name}/steps"] = n
        out[f"waste/category/{name}/slot_hours"] = h
    out["waste/wasted_slot_hours"] = sum(h for _, h in cats.values())
    con.execute("""
        CREATE TEMP TABLE ow AS
        SELECT coalesce(b.project, '?') || ':' || coalesce(b.jobset, '?') AS jobset,
               coalesce(b.job, '?') AS job, cw.wasted_s, cw.cat, cw.slot_ms
        FROM cw JOIN builds b ON b.id = cw.build
        WHERE cw.wasted_s > 0
    """)
    # Hours of whole-slot categories from integer milliseconds; determinism rounds as doubles.
    hours = ("(coalesce(sum(slot_ms) FILTER (WHERE cat <> 'determinism rounds'), 0) / 3.6e6 "
             "+ coalesce(sum(wasted_s) FILTER (WHERE cat = 'determinism rounds'), 0) / 3600.0)")
    js = con.execute(f"""
        SELECT jobset, count(*), {hours} AS h FROM ow GROUP BY jobset
        ORDER BY h DESC, jobset LIMIT {TOP}
    """).fetchall()
    out["waste/by_jobset"] = [[j, n, h] for j, n, h in js]
    jobs = con.execute(f"""
        SELECT jobset, job, count(*), {hours} AS h FROM ow GROUP BY jobset, job
        ORDER BY h DESC, jobset, job LIMIT {TOP}
    """).fetchall()
    out["waste/top_jobs"] = [[j, job, n, h] for j, job, n, h in jobs]
    rb = con.execute(f"""
        SELECT drv_path, count(*) AS n, sum(dur * 1000 + oh_ms) AS ms FROM o
        WHERE kind = 0 AND drv_path IS NOT NULL
        GROUP BY drv_path HAVING count(*) > 1
        ORDER BY n DESC, ms DESC, drv_path LIMIT {TOP}
    """).fetchall()
    out["waste/most_rebuilt"] = [[d, n, float(ms) / 3.6e6] for d, n, ms in rb]


def overhead_points_sql(con, manifest):
    """The (size, overhead) points of mod.rs `overhead_points`, in step order, as table p."""
    truth = "truth_deps" in manifest["tables"] and "truth_steps" in manifest["tables"]
    if truth:
        size = ("LEFT JOIN (SELECT build, stepnr, any_value(output_nar_size) AS size "
                "FROM truth_steps GROUP BY build, stepnr) t "
                "ON t.build = s.build AND t.stepnr = s.stepnr")
    else:
        size = ("LEFT JOIN (SELECT id, drv_path, any_value(size) AS size FROM builds "
                "GROUP BY id, drv_path) t ON t.id = s.build AND t.drv_path = s.drv_path")
    con.execute(f"""
        CREATE TEMP TABLE p AS
        SELECT row_number() OVER (ORDER BY s.build, s.stepnr) - 1 AS i,
               t.size::DOUBLE AS x, s.overhead_ms::DOUBLE AS y
        FROM s {size}
        WHERE s.usable AND s.status = 0 AND s.kind = 0
          AND t.size IS NOT NULL AND s.overhead_ms IS NOT NULL
    """)
    return truth


def duck_overhead(con, manifest, out):
    overhead_points_sql(con, manifest)
    n = con.execute("SELECT count(*) FROM p").fetchone()[0]
    out["overhead/points"] = n
    if n < 2:
        return
    # DuckDB's own Theil-Sen over PAIRS random pairs (with replacement, as ours draws them).
    con.execute("SELECT setseed(0.5)")
    all_pairs = n * (n - 1) // 2
    if all_pairs <= PAIRS:
        pairs = "SELECT p1.i AS i, p2.i AS j FROM p p1 JOIN p p2 ON p2.i > p1.i"
    else:
        pairs = (f"SELECT floor(random() * {n})::BIGINT AS i, floor(random() * {n})::BIGINT AS j "
                 f"FROM range({PAIRS})")
    con.execute(f"""
        CREATE TEMP TABLE sl AS
        WITH pr AS ({pairs})
        SELECT (p2.y - p1.y) / (p2.x - p1.x) AS slope
        FROM pr JOIN p p1 ON p1.i = pr.i JOIN p p2 ON p2.i = pr.j
        WHERE p1.x <> p2.x
    """)
    m = con.execute("SELECT count(*) FROM sl").fetchone()[0]
    if m == 0:
        return
    d = 4 * math.sqrt(2) / (2 * math.sqrt(m))
    slope, lo_q, hi_q = con.execute(
        f"SELECT quantile_cont(slope, 0.5), quantile_disc(slope, {max(0.0, 0.5 - d)}), "
        f"quantile_disc(slope, {min(1.0, 0.5 + d)}) FROM sl").fetchone()
    out["overhead/slope_band"] = [lo_q, hi_q, m]
    out["overhead/fit"] = fit_rest(con, slope)
    out["overhead/sample"] = scatter(con, n)


def fit_rest(con, slope):
    """What overhead.rs `fit` derives from the slope: intercept, median absolute residual,
    size share (medians of an even count: the mean of the two middle values, as quantile_cont)."""
    fixed = con.execute(f"SELECT quantile_cont(y - {slope!r} * x, 0.5) FROM p").fetchone()[0]
    resid, total, from_size = con.execute(f"""
        SELECT quantile_cont(abs(y - {fixed!r} - {slope!r} * x), 0.5),
               sum(greatest(y, 0)), sum(greatest({slope!r} * x, 0)) FROM p
    """).fetchone()
    return {
        "fixed_ms": fixed,
        "ms_per_mib": slope * 1048576.0,
        "implied_mb_per_s": (1.0 / slope * 1000.0 / 1e6) if slope > 0 else None,
        "median_abs_residual_ms": resid,
        "size_share": min(from_size / total, 1.0) if total > 0 else 0.0,
    }


def scatter(con, n):
    """mod.rs `spread`: every n/400-th point in step order."""
    if n <= SCATTER_POINTS:
        rows = con.execute("SELECT x, y FROM p ORDER BY i").fetchall()
    else:
        rows = con.execute(f"""
            SELECT p.x, p.y FROM range({SCATTER_POINTS}) k(k) JOIN p ON p.i = k.k * {n} // {SCATTER_POINTS}
            ORDER BY k.k
        """).fetchall()
    return [[x, y] for x, y in rows]


def duck_ledger(con, manifest, out):
    lo, hi = span(con, manifest)
    rows = con.execute(f"""
        SELECT machine, sum(greatest(overhead_ms, 0)) FROM s
        WHERE usable AND machine <> '' AND overhead_ms IS NOT NULL
          AND b >= {lo} AND b < {hi}
        GROUP BY machine
    """).fetchall()
    for m, ms in rows:
        out[f"ledger/overhead_h/{m}"] = float(ms) / 3.6e6


def duck_prune(con, manifest, out, snap):
    """One day of steps through the `day=` partition (the busiest day), beside the same day
    found by start_time over every file without partition columns."""
    glob, hive = table_glob(snap, "steps")
    if not hive:
        out["prune/skipped"] = "steps are not partitioned by day"
        return
    days = sorted(e[4:] for e in os.listdir(os.path.join(snap, "steps"))
                  if e.startswith("day=") and e != "day=unknown")
    files = {d: os.path.join(snap, "steps", f"day={d}", "part-0.parquet") for d in days}
    day = max(days, key=lambda d: os.path.getsize(files[d]))
    q = ("SELECT count(*), coalesce(sum(stop_time - start_time), 0), count(DISTINCT machine) "
         "FROM read_parquet('{g}', hive_partitioning = {h}) WHERE {w}")
    esc = glob.replace("'", "''")
    pruned_sql = q.format(g=esc, h="true", w=f"day = '{day}'")
    t = time.perf_counter()
    pruned = con.execute(pruned_sql).fetchone()
    t_pruned = time.perf_counter() - t
    plan = "\n".join(r[1] for r in con.execute("EXPLAIN ANALYZE " + pruned_sql).fetchall())
    # The scan's box in the plan says how many of the table's files it opened.
    found = re.search(r"Total Files Read:\s*(\d+)", plan)
    read = int(found.group(1)) if found else None
    d0 = con.execute(f"SELECT epoch(DATE '{day}')::BIGINT").fetchone()[0]
    t = time.perf_counter()
    full = con.execute(q.format(g=esc, h="false",
                                w=f"start_time >= {d0} AND start_time < {d0 + 86400}")).fetchone()
    t_full = time.perf_counter() - t
    out["prune/day"] = day
    out["prune/files"] = len(days) + (1 if os.path.isdir(os.path.join(snap, "steps", "day=unknown")) else 0)
    out["prune/files_read"] = read
    out["prune/pruned"] = list(pruned)
    out["prune/full_scan"] = list(full)
    out["prune/seconds"] = [t_pruned, t_full]


def run_duckdb(finding, snap, path):
    con, manifest = connect(snap)
    out = {}
    if finding == "prune":
        duck_prune(con, manifest, out, snap)
    elif finding == "together":
        # The four in one process and one connection, as ours computes them in one run.
        for f in SUMMED:
            globals()[f"duck_{f}"](con, manifest, out)
    else:
        globals()[f"duck_{finding}"](con, manifest, out)
    with open(path, "w") as f:
        json.dump(out, f)


# ---------------------------------------------------------------------------------------------
# Our side, put in the same form


def ours(finding, src, path):
    with open(src) as f:
        j = json.load(f)
    out = {}
    if finding == "together":
        # `analyze waiting utilization waste overhead`: one object, each finding under its name.
        for f in SUMMED:
            out.update(ours_of(f, j[f]))
    else:
        out = ours_of(finding, j)
    with open(path, "w") as f:
        json.dump(out, f)


def ours_of(finding, j):
    out = {}
    if finding == "waiting":
        groups = [("all", [j["overall"]])] + [
            (scope, j[f"by_{scope}"]) for scope in ("system", "jobset", "priority", "day")]
        for scope, gs in groups:
            for g in gs:
                p = f"waiting/{scope}/{g['key']}"
                for name in ("to_start", "to_finish"):
                    for k in ("count", "p50", "p90", "p99", "max", "mean"):
                        out[f"{p}/{name}/{k}"] = g[name][k]
                out[f"{p}/to_start_histogram"] = g["to_start_histogram"]
        out["waiting/cached_builds"] = j["cached_builds"]
        out["waiting/backlog_resolution_s"] = j["backlog_resolution_s"]
        out["waiting/backlog"] = [[b["time"], b["queued"]] for b in j["backlog"]]
    elif finding == "utilization":
        tl = j["by_machine"]
        out["utilization/start"] = tl["start"]
        out["utilization/resolution_s"] = tl["resolution_s"]
        out["utilization/buckets"] = tl["buckets"]
        for scope in ("machine", "system"):
            t = j[f"by_{scope}"]
            out[f"utilization/keys/{scope}"] = sorted(t["series"])
            for key, series in t["series"].items():
                for k, v in enumerate(series):
                    if v != 0.0:
                        out[f"utilization/{scope}/{key}/{k}"] = v
        for m, peak in j["peak_by_machine"].items():
            out[f"utilization/peak/{m}"] = peak
    elif finding == "waste":
        out["waste/total_slot_hours"] = j["total_slot_hours"]
        out["waste/wasted_overhead_slot_hours"] = j["wasted_overhead_slot_hours"]
        out["waste/wasted_slot_hours"] = j["wasted_slot_hours"]
        for c in j["categories"]:
            out[f"waste/category/{c['name']}/steps"] = c["steps"]
            out[f"waste/category/{c['name']}/slot_hours"] = c["slot_hours"]
        out["waste/by_jobset"] = [[o["jobset"], o["steps"], o["slot_hours"]] for o in j["by_jobset"]]
        out["waste/top_jobs"] = [[o["jobset"], o["job"], o["steps"], o["slot_hours"]]
                                 for o in j["top_jobs"]]
        out["waste/most_rebuilt"] = [list(r) for r in j["most_rebuilt"]]
    elif finding == "overhead":
        fit = j.get("fit")
        out["overhead/points"] = fit["points"] if fit else 0
        if fit:
            out["overhead/fit"] = {k: fit[k] for k in ("fixed_ms", "ms_per_mib", "implied_mb_per_s",
                                                       "median_abs_residual_ms", "size_share")}
            out["overhead/sample"] = [list(p) for p in j["sample"]]
    elif finding == "ledger":
        skipped = 0
        for r in j["machines"]:
            if r["over_committed_h"] > 0:
                skipped += 1
                continue
            out[f"ledger/overhead_h/{r['key']}"] = r["overhead_h"]
        out["ledger/skipped_over_committed"] = skipped
    return out


# ---------------------------------------------------------------------------------------------
# The comparison


class Diff:
    def __init__(self):
        self.first = None
        self.inexact = 0  # floats that differ within tolerance
        self.max_rel = 0.0
        self.compared = 0

    def fail(self, what):
        if self.first is None:
            self.first = what

    def num(self, path, a, b, exact=False):
        """a: ours, b: DuckDB's."""
        self.compared += 1
        if a is None or b is None:
            if a is not b:
                self.fail(f"{path}: ours {a!r}, DuckDB {b!r}")
            return
        if a == b:
            return
        if exact or (isinstance(a, int) and isinstance(b, int)):
            self.fail(f"{path}: ours {a!r}, DuckDB {b!r}")
            return
        diff = abs(a - b)
        rel = diff / max(abs(a), abs(b))
        if diff <= ABS_TOL or rel <= REL_TOL:
            self.inexact += 1
            self.max_rel = max(self.max_rel, rel)
        else:
            self.fail(f"{path}: ours {a!r}, DuckDB {b!r} (relative difference {rel:.2e})")

    def value(self, path, a, b):
        if isinstance(a, list) or isinstance(b, list):
            if not (isinstance(a, list) and isinstance(b, list)) or len(a) != len(b):
                la = len(a) if isinstance(a, list) else a
                lb = len(b) if isinstance(b, list) else b
                self.fail(f"{path}: ours {la!r} items, DuckDB {lb!r}")
                return
            for k, (x, y) in enumerate(zip(a, b)):
                self.value(f"{path}[{k}]", x, y)
        elif isinstance(a, str) or isinstance(b, str):
            self.compared += 1
            if a != b:
                self.fail(f"{path}: ours {a!r}, DuckDB {b!r}")
        else:
            self.num(path, a, b)

    def status(self, extra=""):
        if self.first is not None:
            return f"DIFFER: {self.first}"
        if self.inexact:
            return (f"within tolerance ({self.compared} values; {self.inexact} differ by at most "
                    f"{self.max_rel:.1e} relative){extra}")
        return f"equal ({self.compared} values){extra}"


def compare(finding, snap, ours_path, duck_path):
    with open(ours_path) as f:
        a = json.load(f)
    with open(duck_path) as f:
        b = json.load(f)
    if finding == "together":
        # Each finding's answers compared as on its own row.
        parts = []
        for f in SUMMED:
            mine = lambda m: {k: v for k, v in m.items() if k.startswith(f + "/")}
            parts.append((f, compare_maps(f, snap, mine(a), mine(b))))
        bad = [f"{f}: {r}" for f, r in parts if r.startswith("DIFFER")]
        if bad:
            return "DIFFER: " + "; ".join(bad)
        return "; ".join(f"{f} {r.split(' (')[0]}" for f, r in parts)
    return compare_maps(finding, snap, a, b)


def compare_maps(finding, snap, a, b):
    d = Diff()
    extra = ""
    if finding == "prune":
        same = b.get("prune/pruned") == b.get("prune/full_scan")
        read, files = b.get("prune/files_read"), b.get("prune/files")
        if "prune/skipped" in b:
            return f"skipped: {b['prune/skipped']}"
        if not same:
            return (f"DIFFER: day {b['prune/day']} via day= {b['prune/pruned']}, by start_time "
                    f"{b['prune/full_scan']}")
        if read is not None and read != 1:
            return f"DIFFER: day {b['prune/day']} read {read} of {files} files, not 1"
        return (f"equal: day {b['prune/day']} via day= and by start_time over all files "
                f"({b['prune/pruned'][0]} steps); files read {read if read is not None else '?'} "
                f"of {files}")
    if finding == "overhead":
        d.num("overhead/points", a.get("overhead/points"), b.get("overhead/points"), exact=True)
        if "overhead/fit" in a and "overhead/fit" in b:
            slope_ours = a["overhead/fit"]["ms_per_mib"] / 1048576.0
            lo_q, hi_q, m = b["overhead/slope_band"]
            d.compared += 1
            if not (lo_q <= slope_ours <= hi_q):
                d.fail(f"overhead/slope: ours {slope_ours!r} outside DuckDB's band "
                       f"[{lo_q!r}, {hi_q!r}] of {m} pair slopes")
            # What the fit derives from the slope, recomputed in SQL with ours (not timed).
            con, manifest = connect(snap)
            overhead_points_sql(con, manifest)
            check = fit_rest(con, slope_ours)
            for k, v in check.items():
                d.num(f"overhead/fit/{k}", a["overhead/fit"][k], v)
            d.value("overhead/sample", a["overhead/sample"], b["overhead/sample"])
            rel = abs(slope_ours * 1048576.0 - b["overhead/fit"]["ms_per_mib"]) / abs(
                b["overhead/fit"]["ms_per_mib"])
            extra = (f"; slope {slope_ours * 1048576.0:.2f} ms/MiB, DuckDB's sample "
                     f"{b['overhead/fit']['ms_per_mib']:.2f} ({rel:.1e} apart; band "
                     f"{lo_q * 1048576.0:.2f}-{hi_q * 1048576.0:.2f})")
        return d.status(extra)
    if finding == "ledger":
        skipped = a.pop("ledger/skipped_over_committed", 0)
        keys = sorted(set(a) | set(b))
        for k in keys:
            # A machine of the ledger (machines file) with no step has no SQL row: 0.
            d.num(k, a.get(k, 0.0), b.get(k, 0.0))
        if skipped:
            extra = f"; {skipped} over-committed machines skipped"
        return d.status(extra)
    if finding == "utilization":
        for k in sorted(set(a) | set(b)):
            if k.startswith(("utilization/machine/", "utilization/system/")):
                # Sparse on both sides: a bucket missing on one side is 0.
                d.num(k, a.get(k, 0.0), b.get(k, 0.0))
            else:
                d.value(k, a.get(k), b.get(k))
        return d.status()
    for k in sorted(set(a) | set(b)):
        if k not in a or k not in b:
            d.fail(f"{k}: only {'ours' if k in a else 'DuckDB'} has it")
            continue
        d.value(k, a[k], b[k])
    return d.status()


# ---------------------------------------------------------------------------------------------
# The table


LABELS = {
    "baseline": "baseline (ours: read the snapshot, quality checks; DuckDB: start Python, "
                "import duckdb)",
    "waiting": "waiting: percentiles by system / jobset / priority / day, backlog",
    "utilization": "utilization: per machine and system per bucket, peaks",
    "waste": "waste: by category / jobset / job, rebuilt derivations",
    "overhead": "overhead: fit points, slope, intercept, share",
    "together": "the four above in one run (ours: `analyze waiting utilization waste overhead`; "
                "DuckDB: the four in one connection)",
    "ledger": "ledger: overhead totals per machine (ours: the whole ledger)",
    "prune": "prune: one day via the day= partition (DuckDB only)",
}
SUMMED = ("waiting", "utilization", "waste", "overhead")


def table(path):
    rows = []
    with open(path) as f:
        for line in f:
            rows.append(line.rstrip("\n").split("\t"))
    num = lambda x: None if x in ("", "-") else float(x)
    fmt = lambda x, p: "—" if num(x) is None else f"{num(x):.{p}f}"

    def ratio(x, y):
        x, y = num(x), num(y)
        return None if x is None or y is None or y == 0 else x / y

    show = lambda r: "—" if r is None else f"{r:.2f}"
    print("| finding | ours s | DuckDB s | ratio | ours MiB | DuckDB MiB | ratio | answers |")
    print("|---|---|---|---|---|---|---|---|")
    sums = [0.0, 0.0]
    together = None
    missed = []
    for finding, ot, dt, om, dm, answer in rows:
        if finding == "together":
            together = num(ot)
        tr, mr = (None, None) if finding == "baseline" else (ratio(ot, dt), ratio(om, dm))
        print(f"| {LABELS.get(finding, finding)} | {fmt(ot, 2)} | {fmt(dt, 2)} | {show(tr)} | "
              f"{fmt(om, 0)} | {fmt(dm, 0)} | {show(mr)} | {answer} |")
        if finding in SUMMED and num(ot) is not None and num(dt) is not None:
            sums[0] += num(ot)
            sums[1] += num(dt)
        if finding in SUMMED + ("ledger",):
            if tr is None or tr > 1.2:
                missed.append(f"{finding} time {show(tr)}x")
            if mr is None or mr > 1.5:
                missed.append(f"{finding} memory {show(mr)}x")
    print(f"| sum of {', '.join(SUMMED)} | {sums[0]:.2f} | {sums[1]:.2f} | "
          f"{show(ratio(str(sums[0]), str(sums[1])))} | | | | |")
    print()
    in_one = "" if together is None else f", {together:.2f} s in one run"
    print("Targets (issue): each finding <= 1.2x DuckDB's time and <= 1.5x its memory; "
          "all findings together over 1 M steps <= 1.5 s (ours here: "
          f"{sums[0]:.2f} s for {', '.join(SUMMED)} run one by one{in_one}). "
          + ("Ratios missed: " + "; ".join(missed) + "." if missed else "Every ratio met."))


def main(argv):
    if len(argv) >= 2 and argv[1] == "duckdb" and len(argv) == 5:
        run_duckdb(argv[2], argv[3], argv[4])
    elif len(argv) >= 2 and argv[1] == "ours" and len(argv) == 5:
        ours(argv[2], argv[3], argv[4])
    elif len(argv) >= 2 and argv[1] == "compare" and len(argv) == 6:
        print(compare(argv[2], argv[3], argv[4], argv[5]))
    elif len(argv) >= 2 and argv[1] == "table" and len(argv) == 3:
        table(argv[2])
    else:
        sys.exit(__doc__.split("\n\n")[1])


if __name__ == "__main__":
    main(sys.argv)
