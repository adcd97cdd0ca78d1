#!/bin/sh
# slowlog2.sh - every Redis call of protocol 2 over a threshold (SLOWLOG):
# an rtq-bench run, a drain with the broker running, and broker sweeps over
# a large history (bench/tools/slowlog2.py says what it runs).
#
#   bench/slowlog2.sh [BUILD_DIR [N [US [WORKERS [RTQ_BENCH_ARGS...]]]]]
#       defaults: build 200000 500 4
# REDIS_NICE=-10 runs the redis-server at nice -10 (root).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
[ $# -gt 0 ] && shift
exec /usr/bin/python3 "$root/bench/tools/slowlog2.py" "$build" "$@"
