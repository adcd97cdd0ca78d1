-- retry: an operator re-runs a task that ended failed, timeout or cancelled.
-- The task becomes pending again with a fresh envelope; its previous
-- outcome is cleared, the attempt count restarts, and a cancel flag left by
-- the broker's timeout backstop is dropped so it cannot stop the new run.
-- KEYS: 1 task, 2 queue, 3 status:<current>, 4 status:pending, 5 history,
--       6 cancel flag
-- ARGV: 1 id, 2 envelope, 3 expected current status, 4 events channel
-- Reply: {'ok'} | {'state', status} | {'notfound'}
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return {'notfound'} end
if st ~= ARGV[3] or (st ~= 'failed' and st ~= 'timeout' and st ~= 'cancelled') then
  return {'state', st}
end
local id, now = ARGV[1], now_ms()
redis.call('HDEL', KEYS[1], 'completed_at', 'started_at', 'worker', 'deadline', 'result',
           'error_code', 'error_message', 'error_details', 'error_traceback',
           'progress', 'progress_message', 'cancel_requested', 'retry_at')
redis.call('HSET', KEYS[1], 'status', 'pending', 'attempt', '0')
redis.call('PERSIST', KEYS[1])
redis.call('DEL', KEYS[6])
redis.call('ZREM', KEYS[3], id)
redis.call('ZREM', KEYS[5], id)
redis.call('ZADD', KEYS[4], tonumber(redis.call('HGET', KEYS[1], 'created_at')) or now, id)
redis.call('LPUSH', KEYS[2], ARGV[2])
event(ARGV[4], {id = id, status = 'pending', retried = true, at = now})
return {'ok'}
