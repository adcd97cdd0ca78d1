-- expire_running: the broker's timeout backstop. A running task past its
-- deadline plus a grace period, whose worker's heartbeat is older than the
-- heartbeat ttl (silent or gone), ends as timeout and gets its cancel flag.
-- A live worker enforces its own timeouts, so it is left alone.
-- KEYS: 1 task, 2 deadlines, 3 status:running, 4 status:timeout, 5 history,
--       6 cancel flag, 7 stats, 8 workers
-- ARGV: 1 id, 2 grace (ms), 3 heartbeat ttl (ms), 4 default result ttl (s),
--       5 history '1'/'0', 6 events channel, 7 task channel, 8 cancel channel
-- Reply: {'timeout'} | {'notyet'} | {'alive'} | {'gone', status}
local id = ARGV[1]
local h = redis.call('HMGET', KEYS[1], 'status', 'deadline', 'worker')
if h[1] ~= 'running' then
  redis.call('ZREM', KEYS[2], id)
  return {'gone', h[1] or ''}
end
local now = now_ms()
if now < (tonumber(h[2]) or 0) + tonumber(ARGV[2]) then return {'notyet'} end
local hb = h[3] and redis.call('ZSCORE', KEYS[8], h[3])
if hb and now - tonumber(hb) < tonumber(ARGV[3]) then return {'alive'} end
redis.call('ZREM', KEYS[2], id)
redis.call('ZREM', KEYS[3], id)
terminal(KEYS[1], id, 'timeout', now, tonumber(ARGV[4]), ARGV[5],
         {index = KEYS[4], history = KEYS[5], cancel = KEYS[6], stats = KEYS[7]},
         {events = ARGV[6], task = ARGV[7]},
         {'error_code', 'TIMEOUT', 'error_message',
          'deadline passed and worker ' .. (h[3] or '?') .. ' is silent'})
redis.call('SET', KEYS[6], fmt(now), 'PX', ARGV[3])
redis.call('PUBLISH', ARGV[8], id)
return {'timeout'}
