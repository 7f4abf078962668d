#!/bin/sh
# Peak resident memory of `compress` on a NAR of several GiB (README: Performance).
#
#   benches/peak-memory.sh [GIB] [BINARY...]
#
# Makes a NAR of GIB GiB (default 3) with `nix-store --dump` of a tree that is two thirds real
# files of this machine (/usr/lib: machine code, libraries and text, compressible as package
# outputs are, and large enough that zstd and xz work at their real memory) and one third random
# bytes (incompressible, as the already-compressed files of many outputs are); then runs
#
#   /usr/bin/time -v BINARY compress --input BIG.nar --codecs zstd-3,xz-0 --format csv
#
# for each BINARY (default: target/release/hydra-bottleneck) and prints its peak resident
# memory, wall time and CPU time. zstd-3 and xz-0 are the fast ends of both families: on two
# cores the whole run takes a few minutes. Work files go to a new directory under $TMPDIR (else
# /var/tmp), which needs twice GIB free while the NAR is made, and are removed at the end.
set -eu

gib=${1:-3}
if [ $# -gt 0 ]; then shift; fi
if [ $# -eq 0 ]; then set -- target/release/hydra-bottleneck; fi

work=$(mktemp -d "${TMPDIR:-/var/tmp}/peak-memory.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
mkdir "$work/tree"
mib=$((gib * 1024))
# Real files in a fixed order, cut into 64 MiB files; unreadable ones are skipped.
find /usr/lib -type f -size +16k -print0 | sort -z | xargs -0 cat 2>/dev/null |
    head -c "$((mib * 2 / 3))M" | split -b 64M - "$work/tree/real."
head -c "$((mib - mib * 2 / 3))M" /dev/urandom | split -b 64M - "$work/tree/random."
nix-store --dump "$work/tree" >"$work/big.nar"
rm -rf "$work/tree"
echo "NAR: $(stat -c %s "$work/big.nar") bytes ($gib GiB asked)"

for bin in "$@"; do
    echo "== $bin"
    /usr/bin/time -v "$bin" compress --input "$work/big.nar" --codecs zstd-3,xz-0 \
        --format csv -q 2>"$work/time"
    grep -E 'Maximum resident set size|Elapsed \(wall clock\)|User time|System time|Exit status' \
        "$work/time"
done
