#!/usr/bin/env bash
# broker_p99.sh - enqueue->start latency at 1 ms spacing with broker A, with
# broker B and with no broker, alternated in one run (PERFORMANCE.md 9.9).
#
#   bench/broker_p99.sh PEERS_DIR BUILD_DIR REPS BROKER_A BROKER_B [SLOWLOG_US]
#
# PEERS_DIR: a copy of the peers harness (its rtqbench producer and
# handler); BUILD_DIR: the rtq build whose librtq and rtq-worker run the
# producer and the worker. One private redis-server (PORT, 6437), 20,000
# tasks drained first (so the namespace holds what a drain leaves), then one
# idle worker stays up while each rep runs A, B and none in turn: the broker
# started, 2.5 s, 1000 tasks 1 ms apart, the broker stopped. Prints p50,
# p99 and max (ms) and the load average of each. With SLOWLOG_US, each
# rep's SLOWLOG at that threshold is summed per command of the broker's
# connections and of the rest (bench/tools/broker_calls.py, python3-redis)
# into the work directory.
set -euo pipefail
[ $# -ge 5 ] || { sed -n 2,16p "$0" >&2; exit 2; }
P=$(cd "$1" && pwd); B=$(cd "$2" && pwd); REPS=$3; BA=$4; BB=$5; SL=${6:-}
root=$(cd "$(dirname "$0")/.." && pwd)
PORT=${PORT:-6437}
OUT=$(mktemp -d /tmp/broker-p99.XXXXXX)
INC="-I$root/common/include -I$root/client/include -I$root/worker/include -I$B/include"
cc -O2 $INC "$P/rtqbench/producer.c" -L"$B/client" -lrtq -Wl,-rpath,"$B/client" -o "$OUT/producer"
cc -O2 -shared -fPIC $INC "$P/rtqbench/handler.c" -o "$OUT/bench.so"
export RTQ_REDIS_URL="redis://127.0.0.1:$PORT/0"
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no >"$OUT/redis.log" 2>&1 &
RP=$!; WP=; BP=
cleanup() {
  [ -n "$BP" ] && kill "$BP" 2>/dev/null
  [ -n "$WP" ] && kill "$WP" 2>/dev/null
  kill "$RP" 2>/dev/null
  wait 2>/dev/null || true
}
trap cleanup EXIT
R="redis-cli -p $PORT"
for _ in $(seq 50); do $R ping >/dev/null 2>&1 && break; sleep 0.1; done
"$OUT/producer" --mode bulk --n 20000 >/dev/null
LAT_FILE=$OUT/lat.txt "$B/worker/rtq-worker" --plugin "$OUT/bench.so" --log-level WARNING \
  --concurrency 50 >"$OUT/worker.log" 2>&1 &
WP=$!
"$BA" --log-level WARNING >"$OUT/broker.log" 2>&1 &
BP=$!
for _ in $(seq 600); do
  [ "$($R hget '{rtq:default}:stats' completed 2>/dev/null)" = 20000 ] && break
  sleep 0.1
done
kill "$BP"; wait "$BP" 2>/dev/null || true; BP=
pct() { sort -n | awk -v p="$1" '{a[NR]=$1} END{i=int(p/100*NR+0.5); if(i<1)i=1; if(i>NR)i=NR; printf "%.3f", a[i]/1000}'; }
for rep in $(seq "$REPS"); do
  for v in A B none; do
    case $v in A) BIN=$BA ;; B) BIN=$BB ;; none) BIN= ;; esac
    if [ -n "$BIN" ]; then "$BIN" --log-level WARNING >>"$OUT/broker.log" 2>&1 & BP=$!; fi
    sleep 2.5
    if [ -n "$SL" ]; then
      $R config set slowlog-max-len 1000000 >/dev/null
      $R config set slowlog-log-slower-than "$SL" >/dev/null
      $R slowlog reset >/dev/null
    fi
    : >"$OUT/lat.txt"
    load=$(cut -d' ' -f1 /proc/loadavg)
    "$OUT/producer" --mode latency --n 1000 --spacing-ms 1 >/dev/null
    for _ in $(seq 100); do [ "$(wc -l <"$OUT/lat.txt")" -ge 1000 ] && break; sleep 0.05; done
    if [ -n "$SL" ]; then
      /usr/bin/python3 "$root/bench/tools/broker_calls.py" "$PORT" "$BP" >"$OUT/slowlog.$rep.$v.txt"
      $R config set slowlog-log-slower-than 10000 >/dev/null
    fi
    echo "rep $rep $v p50 $(pct 50 <"$OUT/lat.txt") p99 $(pct 99 <"$OUT/lat.txt")" \
      "max $(pct 100 <"$OUT/lat.txt") n $(wc -l <"$OUT/lat.txt") load $load"
    cp "$OUT/lat.txt" "$OUT/lat.$rep.$v.txt"
    if [ -n "$BP" ]; then kill "$BP"; wait "$BP" 2>/dev/null || true; BP=; fi
  done
done
echo "work directory: $OUT" >&2
