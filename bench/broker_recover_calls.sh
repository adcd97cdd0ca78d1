#!/usr/bin/env bash
# broker_recover_calls.sh - what a dead worker's recovery costs Redis per
# call (PERFORMANCE.md 9.9).
#
#   bench/broker_recover_calls.sh BUILD_DIR BROKER [TASKS]
#
# A private redis-server (PORT, 6441); TASKS (200) rtq.sleep tasks of 30 s,
# taken by one rtq-worker --demo-handlers with as many slots, which is then
# killed with SIGKILL; after its heartbeat TTL (2 s) one `BROKER --once`
# sweep recovers its list. Prints the Redis time (µs, SLOWLOG at threshold
# 0) of every script call on the dead worker's list. Needs python3-redis.
set -euo pipefail
[ $# -ge 2 ] || { sed -n 2,12p "$0" >&2; exit 2; }
B=$(cd "$1" && pwd); BR=$2; N=${3:-200}; PORT=${PORT:-6441}
export RTQ_REDIS_URL="redis://127.0.0.1:$PORT/0"
redis-server --port "$PORT" --bind 127.0.0.1 --save '' >/dev/null 2>&1 &
RP=$!; WP=
trap '[ -n "$WP" ] && kill -9 "$WP" 2>/dev/null; kill "$RP" 2>/dev/null; wait 2>/dev/null || true' EXIT
R="redis-cli -p $PORT"
for _ in $(seq 50); do $R ping >/dev/null 2>&1 && break; sleep 0.1; done
for _ in $(seq "$N"); do "$B/client/rtq" enqueue rtq.sleep '{"seconds": 30}' >/dev/null; done
"$B/worker/rtq-worker" --demo-handlers --concurrency "$N" --heartbeat-ttl 2s \
  --heartbeat-interval 500ms --log-level WARNING >/dev/null 2>&1 &
WP=$!
for _ in $(seq 100); do [ "$($R llen '{rtq:default}:q')" = 0 ] && break; sleep 0.1; done
sleep 1
kill -9 "$WP"; wait "$WP" 2>/dev/null || true; WP=
sleep 3
$R config set slowlog-log-slower-than 0 >/dev/null
$R config set slowlog-max-len 100000 >/dev/null
$R slowlog reset >/dev/null
"$BR" --once --heartbeat-ttl 2s --log-level WARNING >/dev/null 2>&1
echo "back on the queue: $($R llen '{rtq:default}:q') of $N; load $(cut -d' ' -f1 /proc/loadavg)"
/usr/bin/python3 - "$PORT" <<'PY'
import sys
import redis
r = redis.Redis(port=int(sys.argv[1]))
raw = r.execute_command("SLOWLOG", "GET", -1, NEVER_DECODE=True)
us = sorted(int(e[2]) for e in raw
            if e[3][0].lower() in (b"evalsha", b"eval") and len(e[3]) > 3 and b":p:" in e[3][3])
if us:
    print(f"{len(us)} script calls on the dead list, µs: min {us[0]} median {us[len(us) // 2]} max {us[-1]}")
    print(" ".join(map(str, us)))
PY
