#!/bin/sh
# bench.sh - the figures of docs/PERFORMANCE.md: builds rtq in Release
# (build-bench/), runs rtq-bench several times (each run starts its own
# private redis-server on a free loopback port, persistence off), keeps
# every run and their element-wise median in bench/results/, and draws
# docs/drain_scaling.png with gnuplot.
#
#   scripts/bench.sh                  3 runs, N = 20000 (the documented figures)
#   scripts/bench.sh --runs 5         another number of runs
#   scripts/bench.sh --no-build       use build-bench/ as it is
#   scripts/bench.sh -- ARGS          pass ARGS on to rtq-bench (e.g. -- -n 5000)
#
# Needs: cmake, a C compiler, redis-server, gnuplot (Debian: gnuplot-nox).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-bench
results=$root/bench/results
runs=3
do_build=1

while [ $# -gt 0 ]; do
  case $1 in
    --runs) [ $# -ge 2 ] || { echo "bench.sh: --runs needs a value" >&2; exit 2; }; runs=$2; shift ;;
    --no-build) do_build=0 ;;
    --) shift; break ;;
    -h | --help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
case $runs in '' | *[!0-9]*) echo "bench.sh: --runs wants a number" >&2; exit 2 ;; esac
[ "$runs" -ge 1 ] || { echo "bench.sh: --runs wants at least 1" >&2; exit 2; }

if [ "$do_build" = 1 ]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DRTQ_BUILD_TESTS=OFF >/dev/null
  cmake --build "$build" -j"$(nproc)" --target rtq-bench rtq-worker >/dev/null
fi
bench=$build/bench/rtq-bench
[ -x "$bench" ] || { echo "bench.sh: $bench is missing (build first)" >&2; exit 1; }

mkdir -p "$results"
rm -f "$results"/run-*.json
i=1
while [ "$i" -le "$runs" ]; do
  echo "bench.sh: run $i of $runs" >&2
  "$bench" --json "$@" > "$results/run-$i.json"
  i=$((i + 1))
done

"$bench" --median "$results"/run-*.json > "$results/median.json"
"$bench" --table "$results/median.json" > "$results/median.txt"
"$bench" --scaling-dat "$results/median.json" > "$results/scaling-median.dat"
: > "$results/scaling-runs.dat"
for f in "$results"/run-*.json; do
  "$bench" --scaling-dat "$f" | grep -v '^#' >> "$results/scaling-runs.dat"
done

if command -v gnuplot >/dev/null 2>&1; then
  gnuplot -e "median='$results/scaling-median.dat'; runs='$results/scaling-runs.dat'; outfile='$root/docs/drain_scaling.png'" \
    "$root/bench/plot.gp"
  echo "bench.sh: wrote docs/drain_scaling.png" >&2
else
  echo "bench.sh: gnuplot not found; docs/drain_scaling.png not drawn" >&2
fi
cat "$results/median.txt"
