#!/bin/sh
# builds.sh - two builds of rtq against each other in one session: rtq-bench
# runs alternating build A and build B (each with its own rtq-worker), their
# medians, and the table of both with the ratios B / A.
#
#   bench/builds.sh A_DIR B_DIR [RUNS [RTQ_BENCH_ARGS...]]
#       A_DIR, B_DIR: build directories (or copies holding bench/rtq-bench
#       and worker/rtq-worker); RUNS defaults to 3
# Writes OUT/{a,b}-run-I.json and OUT/{a,b}-median.json, OUT being
# $RTQ_BENCH_OUT (default bench/results/builds), and prints the table
# (bench/tools/compare.py). Keep a copy of the two binaries of the build
# before a change (cp build/bench/rtq-bench build/worker/rtq-worker) to
# compare it with the build after.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 2 ] || { sed -n '2,13p' "$0" >&2; exit 2; }
a=$1 b=$2
shift 2
runs=${1:-3}
[ $# -gt 0 ] && shift
out=${RTQ_BENCH_OUT:-$root/bench/results/builds}
mkdir -p "$out"
i=1
while [ "$i" -le "$runs" ]; do
  for side in a b; do
    if [ "$side" = a ]; then dir=$a; else dir=$b; fi
    echo "run $i, build $side ($dir), load $(cut -d' ' -f1 /proc/loadavg)" >&2
    "$dir/bench/rtq-bench" --worker "$dir/worker/rtq-worker" --json --quiet "$@" >"$out/$side-run-$i.json"
  done
  i=$((i + 1))
done
for side in a b; do
  files=""
  i=1
  while [ "$i" -le "$runs" ]; do files="$files $out/$side-run-$i.json"; i=$((i + 1)); done
  # shellcheck disable=SC2086
  "$b/bench/rtq-bench" --median $files >"$out/$side-median.json"
done
/usr/bin/python3 "$root/bench/tools/compare.py" "$out/a-median.json" "$out/b-median.json" \
  "${RTQ_BENCH_LABEL_A:-build A}" "${RTQ_BENCH_LABEL_B:-build B}"
