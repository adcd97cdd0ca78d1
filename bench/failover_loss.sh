#!/bin/sh
# failover_loss.sh - what a cluster failover loses, with and without
# wait_replicas: runs tests/cluster/test_cluster_failover2.c RUNS times per
# mode (3 primaries + 3 replicas, six queues over them, a producer, two
# workers and the broker, a primary serving two of the queues killed with
# SIGKILL mid-drain) and prints one line of figures per run.
# docs/OPERATIONS.md section 2.6 quotes them.
#
#   bench/failover_loss.sh [BUILD_DIR [RUNS]]     defaults: build 3
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
runs=${2:-3}
cmake --build "$build" -j2 --target test_cluster_failover2 rtq-worker rtq-broker >/dev/null
# The test program outside ctest (whose 180 s budget is for one run a mode).
RTQ_BIN_DIR=$build RTQ_SOURCE_DIR=$root RTQ_FAILOVER_RUNS=$runs \
  "$build/tests/test_cluster_failover2" 2>&1 | grep -E 'failover run|FAILED|ERROR|OK'
