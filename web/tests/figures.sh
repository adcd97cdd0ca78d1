#!/bin/bash
# web/tests/figures.sh [BUILD_DIR] - the rtq-web figures of
# docs/PERFORMANCE.md, on a private redis-server (unix socket):
#
#   1. 1,000,000 pending tasks stored: median and p99 of /api/stats,
#      /metrics and /api/tasks?limit=50 (500 sequential requests each on a
#      kept-alive connection, after 20 warm-up ones), and rtq-web's RSS
#   2. rtq-web's RSS with no stream and with 100 idle streams (every
#      event), before the drains: the floor and the cost per stream
#   3. a 20,000-task drain (rtq.noop, one rtq-worker with 50 slots) with no
#      SSE client, with 100 clients on ?ticks=1 (what the page's overview
#      opens) and with 100 clients on every event, alternating, ROUNDS
#      times (default 3): tasks per second from the worker's start to the
#      last completion, rtq-web's CPU seconds and RSS, streams dropped
#      (SKIP_1M=1 skips part 1)
# WEB_ARGS adds rtq-web flags (e.g. WEB_ARGS="--sse-buffer 1048576").
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
rounds=${ROUNDS:-3}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/rtq-web-figures.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

sock=$tmp/redis.sock
redis-server --port 0 --unixsocket "$sock" --save '' --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do redis-cli -s "$sock" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis="unix://$sock"
rtq() { "$build/client/rtq" --redis "$redis" "$@"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
# CPU seconds (user + system) a process has used so far.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }

# shellcheck disable=SC2086 # WEB_ARGS: extra rtq-web flags, split on spaces
"$build/web/rtq-web" --listen 127.0.0.1:0 --redis "$redis" ${WEB_ARGS:-} >"$tmp/web.log" 2>&1 &
web=$!
pids+=($web)
for _ in $(seq 100); do grep -q 'url=http' "$tmp/web.log" && break; sleep 0.1; done
url=$(sed -n 's/.*url=\(http:[^ ]*\).*/\1/p' "$tmp/web.log" | head -n 1)

if [ -z "${SKIP_1M:-}" ]; then
echo "== 1,000,000 tasks stored"
start=$(date +%s.%N)
"$build/web/rtq-web-fill" "$redis" 1000000
echo "filled in $(echo "$(date +%s.%N) - $start" | bc) s; used_memory $(redis-cli -s "$sock" info memory | sed -n 's/^used_memory_human://p')"
for path in /api/stats /metrics '/api/tasks?limit=50'; do
  echo "GET $path: $(node "$root/web/tests/figures.mjs" latency "${url%/}$path" 500)"
done
echo "rtq-web RSS: $(rss_kb "$web") KiB"
fi

echo "== rtq-web RSS: the floor and the cost per stream"
redis-cli -s "$sock" flushall >/dev/null
echo "no stream: $(rss_kb "$web") KiB, $(ls "/proc/$web/task" | wc -l) threads"
node "$root/web/tests/figures.mjs" sse "${url}api/events" 100 >/dev/null &
idle=$!
for _ in $(seq 100); do
  curl -s "${url}api/info" | grep -q '"clients":100,' && break
  sleep 0.1
done
echo "100 idle streams: $(rss_kb "$web") KiB, $(ls "/proc/$web/task" | wc -l) threads"
kill "$idle" 2>/dev/null || true
wait "$idle" 2>/dev/null || true
for _ in $(seq 100); do
  curl -s "${url}api/info" | grep -q '"clients":0,' && break
  sleep 0.1
done

echo "== 20,000-task drain: no SSE client, 100 on ?ticks=1, 100 on every event"
drain() {  # drain CLIENTS [QUERY] -> prints tasks/s
  redis-cli -s "$sock" flushall >/dev/null
  "$build/web/rtq-web-fill" "$redis" 20000
  local sse=""
  # The previous round's streams must be gone before this one counts its own.
  for _ in $(seq 100); do
    curl -s "${url}api/info" | grep -q '"clients":0,' && break
    sleep 0.1
  done
  if [ "$1" -gt 0 ]; then
    node "$root/web/tests/figures.mjs" sse "${url}api/events${2:-}" "$1" >"$tmp/sse.out" &
    sse=$!
    for _ in $(seq 100); do
      curl -s "${url}api/info" | grep -q "\"clients\":$1," && break
      sleep 0.1
    done
  fi
  local t0 t1 c0 c1 d0 d1
  d0=$(curl -s "${url}api/info" | sed -n 's/.*"dropped":\([0-9]*\).*/\1/p')
  c0=$(cpu_s "$web")
  t0=$(date +%s.%N)
  "$build/worker/rtq-worker" --redis "$redis" --demo-handlers --concurrency 50 >"$tmp/worker.log" 2>&1 &
  local w=$!
  until [ "$(rtq --json stats | sed -n 's/.*"completed":\([0-9]*\).*/\1/p')" = 20000 ]; do sleep 0.05; done
  t1=$(date +%s.%N)
  c1=$(cpu_s "$web")
  d1=$(curl -s "${url}api/info" | sed -n 's/.*"dropped":\([0-9]*\).*/\1/p')
  local clients_cpu=""
  [ -n "$sse" ] && clients_cpu="sse_clients_cpu_s=$(cpu_s "$sse" 2>/dev/null || echo gone)"
  local rss
  rss=$(rss_kb "$web")
  kill "$w" 2>/dev/null || true
  wait "$w" || true
  if [ -n "$sse" ]; then kill "$sse" 2>/dev/null || true; wait "$sse" || true; fi
  echo "clients=$1${2:+ stream=$2} tasks_per_s=$(echo "20000 / ($t1 - $t0)" | bc) rtq_web_cpu_s=$(echo "$c1 - $c0" | bc)" \
    "dropped=$((d1 - d0)) rtq_web_rss_kb=$rss $clients_cpu $(cat "$tmp/sse.out" 2>/dev/null || true)"
  rm -f "$tmp/sse.out"
}
for _ in $(seq "$rounds"); do
  drain 0
  drain 100 '?ticks=1'
  drain 100
done
