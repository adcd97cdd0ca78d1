#!/bin/sh
# audit_scan.sh - the broker's audit of processing lists over a large
# keyspace: sweeps until an orphaned list is found and recovered, one full
# walk's length, and each SCAN call's Redis time (bench/tools/audit_scan.py
# says what it measures).
#
#   bench/audit_scan.sh [BUILD_DIR [N [SWEEP [TTL]]]]
#       defaults: build 1000000 1s 5s
# REDIS_NICE=-10 runs the redis-server at nice -10 (root).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
[ $# -gt 0 ] && shift
exec /usr/bin/python3 "$root/bench/tools/audit_scan.py" "$build" "$@"
