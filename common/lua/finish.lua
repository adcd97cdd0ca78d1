-- finish: the worker's completion step, fenced. It writes only while the
-- task is running under this worker id and attempt; otherwise the late
-- result is rejected ('stale') and only the worker's own processing entry
-- is removed. A failure with retries left goes to the delayed set with an
-- exponential backoff instead of ending.
-- KEYS: 1 task, 2 processing, 3 status:running, 4 status:<final>,
--       5 deadlines, 6 history, 7 cancel flag, 8 stats, 9 status:pending,
--       10 delayed
-- ARGV: 1 id, 2 envelope, 3 worker id, 4 attempt, 5 final status,
--       6 result (msgpack, '' = none), 7 error code, 8 error message,
--       9 error details (msgpack), 10 traceback, 11 default result ttl (s),
--       12 history '1'/'0', 13 events channel, 14 task channel,
--       15 progress ('' = unchanged), 16 progress message, 17 jitter (ms)
-- Reply: {'ok', status} | {'retry', run_at_ms} | {'stale', status}
local h = redis.call('HMGET', KEYS[1], 'status', 'worker', 'attempt',
                     'max_retries', 'retry_backoff_ms', 'created_at', 'queue')
redis.call('LREM', KEYS[2], 1, ARGV[2])
if h[1] ~= 'running' or h[2] ~= ARGV[3] or h[3] ~= ARGV[4] then
  return {'stale', h[1] or ''}
end
local id, now, final = ARGV[1], now_ms(), ARGV[5]
redis.call('ZREM', KEYS[5], id)
redis.call('ZREM', KEYS[3], id)
local fields = {}
local function put(name, v)
  if v ~= '' then fields[#fields + 1] = name; fields[#fields + 1] = v end
end
put('progress', ARGV[15])
put('progress_message', ARGV[16])
put('result', ARGV[6])
put('error_code', ARGV[7])
put('error_message', ARGV[8])
put('error_details', ARGV[9])
put('error_traceback', ARGV[10])
local attempt = tonumber(ARGV[4])
if final == 'failed' and attempt <= (tonumber(h[4]) or 0) then
  local base = tonumber(h[5]) or 1000
  local delay = math.min(base * 2 ^ (attempt - 1), 3600000) + tonumber(ARGV[17])
  local run_at = now + delay
  put('status', 'pending')
  put('retry_at', fmt(run_at))
  redis.call('HSET', KEYS[1], unpack(fields))
  redis.call('HDEL', KEYS[1], 'deadline')
  redis.call('ZADD', KEYS[9], tonumber(h[6]) or now, id)
  redis.call('ZADD', KEYS[10], run_at, ARGV[2])
  stat(KEYS[8], h[7], 'retried')
  event(ARGV[13], {id = id, status = 'pending', retry_at = run_at, attempt = attempt, at = now})
  return {'retry', run_at}
end
terminal(KEYS[1], id, final, now, tonumber(ARGV[11]), ARGV[12],
         {index = KEYS[4], history = KEYS[6], cancel = KEYS[7], stats = KEYS[8]},
         {events = ARGV[13], task = ARGV[14]}, fields)
return {'ok', final}
