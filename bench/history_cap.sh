#!/bin/sh
# history_cap.sh - the history cap through a large drain, and Redis memory
# after it (bench/tools/history_cap.py says what it measures).
#
#   bench/history_cap.sh [BUILD_DIR [N [WORKERS [CAP]]]]
#       defaults: build 1000000 4 10000
# Needs Debian's python3-cffi (the Python binding) and a build with librtq.so.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
[ $# -gt 0 ] && shift
exec /usr/bin/python3 "$root/bench/tools/history_cap.py" "$build" "$@"
