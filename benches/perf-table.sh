#!/usr/bin/env bash
# Every performance target of design.md measured in one run, printed as the Markdown table the
# README and benches/README.md carry (with the date and the machine).
#
#   benches/perf-table.sh                 # criterion benches, codecs against the CLI tools, report
#   HB_BIG_SNAPSHOT=DIR HB_BIG_DB=CONNINFO benches/perf-table.sh
#                                         # also peak memory of `report` over a large history
#
# Needs a release build's toolchain, PostgreSQL (the ingest bench starts its own), nix-store,
# xz, zstd, python3 and GNU time. Criterion's medians are read from target/criterion.
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C
BIN=target/release/hydra-bottleneck
work=$(mktemp -d "${TMPDIR:-/var/tmp}/perf-table.XXXXXX")
trap 'rm -rf "$work"' EXIT
log() { echo "== $*" >&2; }

cargo build --release --quiet
median() { # seconds: the median of a criterion benchmark
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["median"]["point_estimate"]/1e9)' \
    "target/criterion/$1/new/estimates.json"
}
group() { # the one criterion group whose name starts with $1
  (cd target/criterion && ls -d "$1"* | head -1)
}
calc() { python3 -c "print($1)"; }
fmt() { python3 -c "import sys; print(format(eval(sys.argv[1]), sys.argv[2]))" "$1" "$2"; } # expression, format

log "criterion benches (ingest, nar, model, analysis)"
for b in ingest nar model analysis; do
  cargo bench --quiet --bench "$b" -- --noplot >"$work/bench-$b.log" 2>&1
done
ing=$(group ingest_steps_); raw=$(median "$ing/raw_copy_discard"); frame=$(median "$ing/copy_into_frame")
pack=$(median "nar/pack"); dump=$(median "nar/nix-store --dump")
mod=$(group model_); sim=$(median "$mod/simulate_cpp"); steps=${mod#model_}; steps=${steps%_steps}
ana=$(group analyze_); analysis=$(median "$ana/all_findings"); arows=${ana#analyze_}; arows=${arows%_steps}

log "codecs against the xz and zstd tools on the NAR of /usr/lib/python3*"
tree=$(ls -d /usr/lib/python3.* | head -1)
nix-store --dump "$tree" >"$work/t.nar"
size=$(stat -c %s "$work/t.nar")
cpu() { /usr/bin/time -f '%U %S' "$@" 2>&1 >/dev/null | tail -1 | awk '{print $1 + $2}'; }
# A codec's speed on this shared machine drifts by about 10 % from one run to the next, so the
# tools and ours take turns, HB_CODEC_RUNS times (3 unless set), and the medians are compared.
runs=${HB_CODEC_RUNS:-3}
for i in $(seq "$runs"); do
  echo "$(cpu xz -T1 -6 -c "$work/t.nar") $(cpu zstd -q -3 --single-thread -c "$work/t.nar")" \
    "$(cpu zstd -q -19 --single-thread -c "$work/t.nar")" >>"$work/cli.cpu"
  RAYON_NUM_THREADS=1 "$BIN" compress --input "$work/t.nar" --codecs xz-6,zstd-3,zstd-19 \
    --format json -q >"$work/codecs-$i.json"
done
ours() { # our median MB/s per core for codec $1
  python3 -c 'import json,sys,statistics
print(statistics.median(next(c["compress_mb_s_core"] for c in json.load(open(f))["codecs"]
  if c["codec"]==sys.argv[1]) for f in sys.argv[2:]))' "$1" "$work"/codecs-*.json
}
cli() { # the tool's median MB/s per core, from column $1 of cli.cpu
  python3 -c 'import sys,statistics
print(statistics.median(float(sys.argv[1]) / 1e6 / float(l.split()[int(sys.argv[2])])
  for l in open(sys.argv[3])))' "$size" "$1" "$work/cli.cpu"
}

log "report on the built-in sample (with its 16 MiB compression measurement and simulation)"
/usr/bin/time -f '%e %M' -o "$work/report.time" "$BIN" report --out "$work/report" -q >/dev/null
read -r rep_s rep_kb <"$work/report.time"

big() { # peak memory of `report` over a large history: "wall-s max-rss-kb steps"
  /usr/bin/time -f '%e %M' -o "$work/big.time" "$BIN" "$@" --out "$work/big" --no-compression \
    --no-png -q --format json >/dev/null
  rm -rf "$work/big"
  cat "$work/big.time"
}
big_rows=""
if [ -n "${HB_BIG_SNAPSHOT:-}" ]; then
  log "report over $HB_BIG_SNAPSHOT"
  n=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tables"]["steps"]["rows"])' \
    "$HB_BIG_SNAPSHOT/manifest.json")
  read -r s kb <<<"$(big report --snapshot "$HB_BIG_SNAPSHOT")"
  big_rows+="| report, ${n} steps from a snapshot | \`/usr/bin/time -v $BIN report --snapshot DIR --no-compression\` | $(fmt "$kb/1048576" .2f) GiB peak, $(fmt "$s" .0f) s | ≤ 4 GiB |"$'\n'
fi
if [ -n "${HB_BIG_DB:-}" ]; then
  log "report over the database"
  read -r s kb <<<"$(big report --db "$HB_BIG_DB")"
  big_rows+="| report, the same steps from PostgreSQL | \`/usr/bin/time -v $BIN report --db CONNINFO --no-compression\` | $(fmt "$kb/1048576" .2f) GiB peak, $(fmt "$s" .0f) s | ≤ 4 GiB |"$'\n'
fi

cores=$(nproc); mem=$(awk '/MemTotal/ {printf "%.0f", $2 / 1048576}' /proc/meminfo)
cat <<EOF
Measured $(date -u +%Y-%m-%d) on $(. /etc/os-release && echo "$PRETTY_NAME"), ${cores} cores, ${mem} GiB,
$(rustc --version | cut -d' ' -f1-2), release build; \`benches/perf-table.sh\`, one run.

| target (design.md) | command | measured | target |
|---|---|---|---|
| ingestion from PostgreSQL vs raw binary COPY | \`cargo bench --bench ingest\` | $(fmt "$raw" .2f) s raw, $(fmt "$frame" .2f) s into a frame: **$(fmt "$raw/$frame*100" .0f) %** of the raw rate | ≥ 70 % |
| NAR writing vs \`nix-store --dump\` | \`cargo bench --bench nar\` | $(fmt "$pack*1000" .2f) ms vs $(fmt "$dump*1000" .1f) ms: **$(fmt "$dump/$pack" .1f)×** as fast, byte-identical (tests/nar.rs) | ≥ 1× |
| xz-6 vs \`xz -T1 -6\` | \`compress --input T.nar\` vs \`/usr/bin/time xz\` ($(fmt "$size/1e6" .1f) MB NAR, median of ${runs} turns each) | $(fmt "$(ours xz-6)" .2f) vs $(fmt "$(cli 0)" .2f) MB/s per core: **$(fmt "$(ours xz-6)/$(cli 0)" .2f)** | within 5 % |
| zstd-3 vs \`zstd -3\` | same | $(fmt "$(ours zstd-3)" .0f) vs $(fmt "$(cli 1)" .0f) MB/s per core: **$(fmt "$(ours zstd-3)/$(cli 1)" .2f)** | within 5 % (or faster) |
| zstd-19 vs \`zstd -19\` | same | $(fmt "$(ours zstd-19)" .2f) vs $(fmt "$(cli 2)" .2f) MB/s per core: **$(fmt "$(ours zstd-19)/$(cli 2)" .2f)** | within 5 % (or faster) |
| simulation | \`cargo bench --bench model\` | ${steps} steps in **$(fmt "$sim" .2f) s** ($(fmt "$steps/$sim/1000" .0f) k steps/s) | ≥ 1 M steps in ≤ 10 s |
| analytics | \`cargo bench --bench analysis\` | ${arows} steps in **$(fmt "$analysis" .2f) s** | ≤ 10 s |
| report on the built-in sample | \`/usr/bin/time -v $BIN report\` | **$(fmt "$rep_s" .1f) s**, $(fmt "$rep_kb/1024" .0f) MiB peak | ≤ 60 s |
${big_rows}
EOF
