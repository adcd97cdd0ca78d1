#!/bin/sh
# protocols.sh - protocol 1 against protocol 2 in one session: rtq-bench runs
# alternating the two, their medians, and the table of both with the ratios.
#
#   bench/protocols.sh [BUILD_DIR [RUNS [RTQ_BENCH_ARGS...]]]
#       defaults: build 3 (rtq-bench with its default phases)
# Writes OUT/p{1,2}-run-I.json and OUT/p{1,2}-median.json, OUT being
# $RTQ_BENCH_OUT (default bench/results/proto), and prints the table
# (bench/tools/compare.py).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
[ $# -gt 0 ] && shift
runs=${1:-3}
[ $# -gt 0 ] && shift
out=${RTQ_BENCH_OUT:-$root/bench/results/proto}
mkdir -p "$out"
i=1
while [ "$i" -le "$runs" ]; do
  for p in 1 2; do
    echo "run $i, protocol $p, load $(cut -d' ' -f1 /proc/loadavg)" >&2
    "$build/bench/rtq-bench" --protocol "$p" --json --quiet "$@" >"$out/p$p-run-$i.json"
  done
  i=$((i + 1))
done
for p in 1 2; do
  files=""
  i=1
  while [ "$i" -le "$runs" ]; do files="$files $out/p$p-run-$i.json"; i=$((i + 1)); done
  # shellcheck disable=SC2086
  "$build/bench/rtq-bench" --median $files >"$out/p$p-median.json"
done
/usr/bin/python3 "$root/bench/tools/compare.py" "$out/p1-median.json" "$out/p2-median.json" \
  "protocol 1" "protocol 2"
