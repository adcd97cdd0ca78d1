#!/usr/bin/python3
"""fill_history.py - writes N finished (completed) no-op tasks straight into
a namespace, as finish.lua leaves them: the task hash (with its TTL), its
P:history entry and its P:status:completed entry. Fast (a Lua call per
2,000 tasks), for benches that need a large history without draining it.

usage: fill_history.py PORT NAMESPACE N [TTL_S]   (TTL 86400)
"""
import sys

from resp import Redis

FILL = r"""
local ns, first, n, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local hist, idx = {}, {}
for i = first, first + n - 1 do
  local id = string.format('fill%08d', i)
  local at = string.format('%d', now - 1000000 + i)
  redis.call('HSET', ns .. ':task:' .. id, 'name', 'rtq.noop', 'queue', 'default',
             'status', 'completed', 'created_at', at, 'attempt', '1', 'worker', 'w-fill',
             'started_at', at, 'completed_at', at, 'result', '\192')
  redis.call('EXPIRE', ns .. ':task:' .. id, ttl)
  hist[#hist + 1] = at; hist[#hist + 1] = id
  idx[#idx + 1] = at; idx[#idx + 1] = id
end
redis.call('ZADD', ns .. ':history', unpack(hist))
redis.call('ZADD', ns .. ':status:completed', unpack(idx))
return n
"""
BATCH = 2000


def fill(r, ns, n, ttl=86400, start=0):
    done = 0
    while done < n:
        m = min(BATCH, n - done)
        r("EVAL", FILL, "0", ns, start + done, m, ttl)
        done += m
    return done


def main():
    if len(sys.argv) < 4:
        sys.stderr.write(__doc__)
        return 2
    r = Redis(int(sys.argv[1]))
    ttl = int(sys.argv[4]) if len(sys.argv) > 4 else 86400
    print(fill(r, sys.argv[2], int(sys.argv[3]), ttl))
    return 0


if __name__ == "__main__":
    sys.exit(main())
