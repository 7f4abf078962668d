#!/bin/sh
# Side by side with DuckDB: each finding of `analyze` that SQL can express, answered by
# hydra-bottleneck and by DuckDB from the same snapshot, with the same thread count, the
# answers compared and the time and peak memory of each side printed as a Markdown table.
#
#   benches/duckdb-compare.sh SNAPSHOT_DIR
#
# What it measures: for each finding, `hydra-bottleneck analyze FINDING --snapshot DIR
# --format json` as one process, and `duckdb_compare.py duckdb FINDING DIR` (Python, the
# `duckdb` package, the SQL of that finding over the snapshot's Parquet read as a
# Hive-partitioned dataset) as another, both under GNU time (`/usr/bin/time -f '%e %M'`: wall
# seconds and peak resident KiB, the same way for both), each HB_RUNS times, interleaved; the
# table shows the medians. The DuckDB side's figures include starting Python and importing
# duckdb; the "baseline" row measures that alone, and beside it ours reading the snapshot and
# making the data-quality checks (`analyze quality`), which every finding pays. The findings:
#
#   waiting      queue-wait percentiles overall / by system / jobset / priority / day, the
#                histogram, the backlog series
#   utilization  concurrency per machine and per system on the window's buckets, peak per machine
#   waste        slot-hours by category, jobset and job; the most rebuilt derivations
#   overhead     the overhead fit's points and scatter sample; the Theil-Sen slope within the
#                band of DuckDB's own sampled median; intercept, residual and size share
#   together     the four above in one run each: `analyze waiting utilization waste overhead`
#                (one pass over the data for all four), and the four queries in one DuckDB
#                connection; each answer compared as on its own row
#   ledger       overhead totals per machine (ours computes the whole capacity ledger for them,
#                derivation graph included: minutes at 1 M steps, so its time is not that of
#                the sum; leave it out with HB_FINDINGS)
#   prune        DuckDB only: one day of steps read through the `day=` partition (files read,
#                and the answer against a filter on start_time over all files)
#
# duckdb_compare.py's top comment says, field by field, what each side computes, what is
# compared and with what tolerance. The script exits non-zero when an answer differs beyond
# tolerance (or a side fails).
#
# Needs: python3 with venv and pip (PyPI reachable the first time: `duckdb` is installed into a
# private venv, never system-wide), GNU time at /usr/bin/time, and a release build of
# hydra-bottleneck. Settings (environment):
#
#   HB_BIN       the binary (default: release/hydra-bottleneck under $CARGO_TARGET_DIR, else
#                under this checkout's target/)
#   HB_THREADS   threads on both sides (default 2): DuckDB `SET threads`, ours through
#                POLARS_MAX_THREADS and RAYON_NUM_THREADS
#   HB_RUNS      runs of each side per finding (default 3; the median is shown)
#   HB_FINDINGS  which findings, space-separated (default: waiting utilization waste overhead
#                together ledger prune)
#   HB_VENV      the venv (default: ${TMPDIR:-/var/tmp}/hydra-bottleneck-duckdb-venv, made on
#                first use and kept for the next run)
#   HB_DUCKDB_VERSION  a duckdb version to install (default: the newest)
#
# Snapshots: `hydra-bottleneck sample --out DIR --scale 10` (1.08 M steps) or `--scale 100`
# (10.4 M), or `hydra-bottleneck snapshot` of a real Hydra.
set -eu

if [ $# -ne 1 ]; then
    sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
snap=$1
if [ ! -f "$snap/manifest.json" ]; then
    echo "duckdb-compare: $snap is not a snapshot (no manifest.json)" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
bin=${HB_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/hydra-bottleneck}
runs=${HB_RUNS:-3}
threads=${HB_THREADS:-2}
findings=${HB_FINDINGS:-waiting utilization waste overhead together ledger prune}
venv=${HB_VENV:-${TMPDIR:-/var/tmp}/hydra-bottleneck-duckdb-venv}
timer=/usr/bin/time
if [ ! -x "$bin" ]; then
    echo "duckdb-compare: no binary at $bin (cargo build --release, or set HB_BIN)" >&2
    exit 2
fi
if ! "$timer" -f '%e %M' true 2>/dev/null; then
    echo "duckdb-compare: GNU time is needed at $timer" >&2
    exit 2
fi

# The private venv, with duckdb and nothing else.
if ! "$venv/bin/python" -c 'import duckdb' 2>/dev/null; then
    echo "installing duckdb into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        "duckdb${HB_DUCKDB_VERSION:+==$HB_DUCKDB_VERSION}"
fi
py=$venv/bin/python
compare="$here/duckdb_compare.py"

work=$(mktemp -d "${TMPDIR:-/var/tmp}/duckdb-compare.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

export HB_THREADS="$threads"

# The median of the numbers in file $1 (one a line).
median() {
    sort -n "$1" | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'
}

# Runs "$@" under GNU time, appending "seconds" to $1.s and "KiB" to $1.k; returns its status.
timed() {
    out=$1
    shift
    set +e
    "$timer" -f '%e %M' -o "$work/time" "$@"
    rc=$?
    set -e
    if [ "$rc" -eq 0 ]; then
        read -r s k <"$work/time"
        echo "$s" >>"$out.s"
        echo "$k" >>"$out.k"
    fi
    return "$rc"
}

steps=$("$py" -c 'import json,sys; m=json.load(open(sys.argv[1])); print(m["tables"]["steps"]["rows"])' \
    "$snap/manifest.json")
echo "# DuckDB side by side: $snap"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); $(uptime | sed 's/.*\(load average\)/\1/')"
echo "- machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
echo "- steps: $steps; threads: $threads on both sides; runs: $runs per side (medians)"
echo "- ours: $bin ($("$bin" --version))"
echo "- DuckDB: $("$py" -c 'import duckdb, platform; print(duckdb.__version__, "(Python", platform.python_version() + ")")')"
echo

results=$work/results.tsv
: >"$results"
status=0
for f in baseline $findings; do
    r=0
    while [ "$r" -lt "$runs" ]; do
        r=$((r + 1))
        case $f in
        baseline)
            # Ours: reading the snapshot and the data-quality checks, which every finding pays.
            timed "$work/ours-$f" env POLARS_MAX_THREADS="$threads" RAYON_NUM_THREADS="$threads" \
                "$bin" analyze quality --snapshot "$snap" --format json -q >/dev/null || true
            timed "$work/duck-$f" "$py" -c 'import duckdb; duckdb.connect().execute("SELECT 1")' || true
            ;;
        prune)
            timed "$work/duck-$f" "$py" "$compare" duckdb "$f" "$snap" "$work/duck-$f.json" ||
                echo "duckdb failed on $f" >"$work/fail-$f"
            ;;
        together)
            # The four findings SQL expresses, computed by each side in one run.
            if ! timed "$work/ours-$f" env POLARS_MAX_THREADS="$threads" RAYON_NUM_THREADS="$threads" \
                "$bin" analyze waiting utilization waste overhead --snapshot "$snap" \
                --format json -q >"$work/ours-$f.json"; then
                echo "ours failed on $f" >"$work/fail-$f"
            fi
            if ! timed "$work/duck-$f" "$py" "$compare" duckdb "$f" "$snap" "$work/duck-$f.json"; then
                echo "DuckDB failed on $f" >"$work/fail-$f"
            fi
            ;;
        *)
            if ! timed "$work/ours-$f" env POLARS_MAX_THREADS="$threads" RAYON_NUM_THREADS="$threads" \
                "$bin" analyze "$f" --snapshot "$snap" --format json -q >"$work/ours-$f.json"; then
                echo "ours failed on $f" >"$work/fail-$f"
            fi
            if ! timed "$work/duck-$f" "$py" "$compare" duckdb "$f" "$snap" "$work/duck-$f.json"; then
                echo "DuckDB failed on $f" >"$work/fail-$f"
            fi
            ;;
        esac
    done
    ot=-
    om=-
    if [ -s "$work/ours-$f.s" ]; then
        ot=$(median "$work/ours-$f.s")
        om=$(median "$work/ours-$f.k" | awk '{ print $1 / 1024 }')
    fi
    dt=-
    dm=-
    if [ -s "$work/duck-$f.s" ]; then
        dt=$(median "$work/duck-$f.s")
        dm=$(median "$work/duck-$f.k" | awk '{ print $1 / 1024 }')
    fi
    if [ -f "$work/fail-$f" ]; then
        answer="DIFFER: $(cat "$work/fail-$f")"
    elif [ "$f" = baseline ]; then
        answer="—"
    elif [ "$f" = prune ]; then
        echo '{}' >"$work/ours-n-$f.json"
        answer=$("$py" "$compare" compare "$f" "$snap" "$work/ours-n-$f.json" "$work/duck-$f.json")
    else
        "$py" "$compare" ours "$f" "$work/ours-$f.json" "$work/ours-n-$f.json"
        answer=$(HB_THREADS="$threads" "$py" "$compare" compare "$f" "$snap" \
            "$work/ours-n-$f.json" "$work/duck-$f.json")
    fi
    case $answer in DIFFER*) status=1 ;; esac
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$f" "$ot" "$dt" "$om" "$dm" "$answer" >>"$results"
    echo "$f: done" >&2
done

"$py" "$compare" table "$results"
echo
echo "Load at the end: $(uptime | sed 's/.*load average: //')."
exit "$status"
