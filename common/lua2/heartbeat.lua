-- heartbeat: refresh a worker's record and its place in the workers set.
-- The score is Redis time, so the broker judges liveness by one clock.
-- KEYS: 1 worker record, 2 workers
-- ARGV: 1 worker id, 2 ttl (ms), then 0..64 field, value pairs (fields
--       valid names, values up to 4096 bytes)
-- Reply: now (ms)
-- Prelude: now_ms fmt bad valid_name whole need_name need_whole keys_tag
-- Prelude: check_keys need_type need_types
check_keys()
need_types({KEYS[1], 'hash', KEYS[2], 'zset'})
need_name(ARGV[1], 'heartbeat: worker id')
local ttl = need_whole(ARGV[2], 100, 86400000, 'heartbeat: ttl')
local np = (#ARGV - 2) / 2
if np % 1 ~= 0 or np > 64 then bad('heartbeat: expected 0..64 field, value pairs') end
for i = 3, #ARGV, 2 do
  need_name(ARGV[i], 'heartbeat: field')
  if #ARGV[i + 1] > 4096 then bad('heartbeat: a value is over 4096 bytes') end
end
local now = now_ms()
if np > 0 then redis.call('HSET', KEYS[1], unpack(ARGV, 3)) end
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], now, ARGV[1])
return now
