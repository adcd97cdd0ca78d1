-- heartbeat: refresh a worker's record and its place in the workers set.
-- The score is Redis time, so the broker judges liveness by one clock.
-- KEYS: 1 worker hash, 2 workers zset
-- ARGV: 1 worker id, 2 ttl (ms), 3.. field, value pairs
-- Reply: now (ms)
local now = now_ms()
local fields = {'last_seen', fmt(now)}
for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], now, ARGV[1])
return now
