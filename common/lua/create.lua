-- create: write a new task's hash and put its envelope on its queue (or in
-- the delayed set), atomically. An id that exists already is returned as it
-- is and nothing is enqueued (idempotent caller-supplied ids).
-- KEYS: 1 task, 2 queue, 3 delayed, 4 status:pending, 5 queues, 6 stats
-- ARGV: 1 id, 2 name, 3 queue, 4 envelope, 5 args (msgpack), 6 timeout_ms,
--       7 max_retries, 8 result_ttl_s, 9 delay_ms, 10 run_at_ms,
--       11 retry_backoff_ms, 12 events channel
-- Reply: {1, created_at} created; {0, status} already there.
local st = redis.call('HGET', KEYS[1], 'status')
if st then return {0, st} end
local now = now_ms()
local fields = {'name', ARGV[2], 'queue', ARGV[3], 'status', 'pending',
                'created_at', fmt(now), 'args', ARGV[5], 'attempt', '0'}
local function opt(name, v)
  if v ~= '' and v ~= '0' then fields[#fields + 1] = name; fields[#fields + 1] = v end
end
opt('timeout_ms', ARGV[6])
opt('max_retries', ARGV[7])
opt('result_ttl', ARGV[8])
opt('retry_backoff_ms', ARGV[11])
local run_at = 0
if tonumber(ARGV[9]) > 0 then run_at = now + tonumber(ARGV[9]) end
if tonumber(ARGV[10]) > 0 then run_at = tonumber(ARGV[10]) end
if run_at > now then
  fields[#fields + 1] = 'run_at'; fields[#fields + 1] = fmt(run_at)
  redis.call('ZADD', KEYS[3], run_at, ARGV[4])
else
  redis.call('LPUSH', KEYS[2], ARGV[4])
end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('ZADD', KEYS[4], now, ARGV[1])
redis.call('SADD', KEYS[5], ARGV[3])
stat(KEYS[6], ARGV[3], 'enqueued')
event(ARGV[12], {id = ARGV[1], status = 'pending', name = ARGV[2], queue = ARGV[3], at = now})
return {1, now}
