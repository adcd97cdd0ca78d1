#!/bin/sh
# slowlog.sh - every Redis call over 1 ms (SLOWLOG) during an rtq-bench run
# and during broker sweeps over a large history (bench/tools/slowlog_check.py
# says what it runs).
#
#   bench/slowlog.sh [BUILD_DIR [N [RTQ_BENCH_ARGS...]]]
#       defaults: build 1000000 (rtq-bench with its default phases)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
[ $# -gt 0 ] && shift
exec /usr/bin/python3 "$root/bench/tools/slowlog_check.py" "$build" "$@"
