#!/bin/sh
# demo.sh - rtq doing real work in about a minute, on one machine.
#
# As root on a fresh Debian it installs what is missing
# (scripts/install-deps.sh), builds into build/, then starts, in a temp dir:
# a private redis-server on a free loopback port (never 6379), the broker
# and two workers (with the example plugin and the demo handlers). It runs
# the three examples (file processing, bulk email, data export) plus one
# task that gets cancelled and one that times out, shows their progress
# live with `rtq watch`, prints the final table (`rtq list`) and stops
# everything it started, by PID, also on Ctrl-C.
#
# Exit status: 0 when the five tasks ended as expected (3 completed,
# 1 cancelled, 1 timeout); 1 otherwise; 2 for a bad option.
#
#   scripts/demo.sh [--build-dir DIR] [--keep]
#     --build-dir DIR   build there instead of build/
#     --keep            keep the temp dir (logs, exports) after the run
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build
keep=0
while [ $# -gt 0 ]; do
  case $1 in
    --build-dir) [ $# -ge 2 ] || { echo "demo.sh: --build-dir needs a value" >&2; exit 2; }
                 build=$2; shift ;;
    --keep) keep=1 ;;
    -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

say() { printf '\n== %s\n' "$*"; }

# ---- everything started is recorded here and stopped by PID ----------------
# Each background process runs under setsid, in a session of its own, so
# that Ctrl-C reaches only this script (and the foreground `rtq watch`):
# redis-server would otherwise shut down at once and leave the workers
# nowhere to hand their tasks back. The trap below stops them in order.
tmp=""
redis_pid=""
broker_pid=""
worker_pids=""
producer_pid=""
watch_pid=""

# Waits up to $2 tenths of a second for process $1 to exit; 0 when it did.
wait_gone() {
  n=0
  while kill -0 "$1" 2>/dev/null; do
    [ "$n" -ge "$2" ] && return 1
    sleep 0.1
    n=$((n + 1))
  done
  return 0
}

# SIGTERM, a grace period, then SIGKILL; reaps the child.
stop_pid() {
  [ -n "$1" ] || return 0
  if kill -0 "$1" 2>/dev/null; then
    kill -TERM "$1" 2>/dev/null || true
    wait_gone "$1" "$2" || kill -KILL "$1" 2>/dev/null || true
  fi
  wait "$1" 2>/dev/null || true
}

cleanup() {
  status=$?
  trap - EXIT INT TERM
  stop_pid "$watch_pid" 20
  stop_pid "$producer_pid" 20
  # A worker's first SIGTERM gives running tasks --shutdown-grace; a second
  # one skips what is left of it.
  for p in $worker_pids; do kill -TERM "$p" 2>/dev/null || true; done
  for p in $worker_pids; do wait_gone "$p" 30 || kill -TERM "$p" 2>/dev/null || true; done
  for p in $worker_pids; do stop_pid "$p" 30; done
  stop_pid "$broker_pid" 30
  stop_pid "$redis_pid" 50
  if [ -n "$tmp" ]; then
    if [ "$keep" = 1 ] || [ "$status" = 1 ]; then
      echo "demo.sh: logs kept in $tmp"
    else
      rm -rf "$tmp"
    fi
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'echo; echo "demo.sh: interrupted" >&2; exit 130' INT
trap 'exit 143' TERM

# ---- dependencies and build -------------------------------------------------
say "dependencies (scripts/install-deps.sh)"
"$root/scripts/install-deps.sh"
say "building into $build"
cmake -S "$root" -B "$build" >/dev/null
cmake --build "$build" -j"$(nproc 2>/dev/null || echo 2)" --target rtq_cli rtq-worker rtq-broker \
  rtq_examples rtq-example-producer >/dev/null
rtq=$build/client/rtq
for f in "$rtq" "$build/worker/rtq-worker" "$build/broker/rtq-broker" \
         "$build/examples/rtq-example-producer" "$build/examples/examples.so"; do
  [ -e "$f" ] || { echo "demo.sh: $f was not built" >&2; exit 1; }
done

# ---- a private redis-server -------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/rtq-demo.XXXXXX")
say "redis-server in $tmp"
# A random port in 20000..59999; when it is taken the server exits and the
# next one is tried. The server's process_id from INFO proves that PONG came
# from our server and not from one that was there before.
tries=0
while :; do
  tries=$((tries + 1))
  [ "$tries" -le 20 ] || { echo "demo.sh: no free port for redis-server" >&2; exit 1; }
  port=$(( $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000 + 20000 ))
  setsid redis-server --port "$port" --bind 127.0.0.1 --dir "$tmp" --save "" --appendonly no \
    --maxmemory-policy noeviction --logfile "$tmp/redis.log" --daemonize no &
  redis_pid=$!
  n=0
  while [ "$n" -lt 50 ] && kill -0 "$redis_pid" 2>/dev/null; do
    pid=$(redis-cli -p "$port" info server 2>/dev/null | sed -n 's/^process_id:\([0-9]*\).*/\1/p')
    [ "$pid" = "$redis_pid" ] && break
    sleep 0.1
    n=$((n + 1))
  done
  [ "${pid:-}" = "$redis_pid" ] && break
  stop_pid "$redis_pid" 20
  redis_pid=""
done
url=redis://127.0.0.1:$port/0
echo "redis-server pid $redis_pid on $url"

# ---- broker and two workers -------------------------------------------------
say "broker and two workers"
setsid "$build/broker/rtq-broker" --redis "$url" >"$tmp/broker.log" 2>&1 &
broker_pid=$!
for i in 1 2; do
  # TMPDIR: the data export writes its files into the temp dir.
  TMPDIR=$tmp setsid "$build/worker/rtq-worker" --redis "$url" --concurrency 4 --shutdown-grace 2s \
    --plugin "$build/examples/examples.so" --demo-handlers >"$tmp/worker$i.log" 2>&1 &
  worker_pids="$worker_pids $!"
done
echo "broker pid $broker_pid, worker pids$worker_pids"
n=0
until [ "$("$rtq" --redis "$url" workers 2>/dev/null | tail -n +2 | grep -c .)" -ge 2 ]; do
  [ "$n" -lt 100 ] || { echo "demo.sh: the workers did not come up (see $tmp/worker*.log)" >&2; exit 1; }
  sleep 0.1
  n=$((n + 1))
done
"$rtq" --redis "$url" workers

# ---- the tasks --------------------------------------------------------------
say "enqueueing: file processing, bulk email, data export, one to cancel, one to time out"
head -c 131072 /dev/urandom >"$tmp/sample.bin"
# The file exists before the producer starts: the background job's own
# redirection may not have created it yet when the loop below first reads it.
: >"$tmp/producer.out"
setsid "$build/examples/rtq-example-producer" --redis "$url" demo --file "$tmp/sample.bin" --timeout 50 \
  >>"$tmp/producer.out" 2>&1 &
producer_pid=$!
n=0
until [ "$(grep -c '^task ' "$tmp/producer.out")" -ge 5 ]; do
  if [ "$n" -ge 100 ] || ! kill -0 "$producer_pid" 2>/dev/null; then
    cat "$tmp/producer.out" >&2
    echo "demo.sh: the producer did not enqueue the tasks" >&2
    exit 1
  fi
  sleep 0.1
  n=$((n + 1))
done
ids=$(sed -n 's/^task \([^ ]*\) .*/\1/p' "$tmp/producer.out")
cat "$tmp/producer.out"

say "live progress (rtq watch)"
# Exit 1 is expected: two of the tasks do not complete. Bounded by --timeout.
# In the background with `wait`, so that a signal's trap runs at once.
# shellcheck disable=SC2086 # one word per id
"$rtq" --redis "$url" watch $ids --timeout 45 &
watch_pid=$!
wait "$watch_pid" || true
watch_pid=""

producer_rc=0
wait "$producer_pid" || producer_rc=$?
producer_pid=""
sed -n '/^$/,$p' "$tmp/producer.out"

say "final table (rtq list)"
"$rtq" --redis "$url" list

# ---- the verdict ------------------------------------------------------------
completed=0 cancelled=0 timedout=0
for id in $ids; do
  st=$("$rtq" --redis "$url" status "$id" | sed -n 's/^status: *//p')
  case $st in
    completed) completed=$((completed + 1)) ;;
    cancelled) cancelled=$((cancelled + 1)) ;;
    timeout) timedout=$((timedout + 1)) ;;
  esac
done
echo
echo "demo.sh: $completed completed, $cancelled cancelled, $timedout timeout (expected 3, 1, 1)"
if [ "$completed" = 3 ] && [ "$cancelled" = 1 ] && [ "$timedout" = 1 ] && [ "$producer_rc" = 0 ]; then
  echo "demo.sh: the demo went as expected"
  exit 0
fi
echo "demo.sh: the demo did NOT go as expected (producer exit $producer_rc)" >&2
exit 1
