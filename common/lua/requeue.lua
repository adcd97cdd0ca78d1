-- requeue: a worker shutting down hands back a task it claimed but will not
-- finish. Fenced like finish. The task goes back to the front of its queue
-- and the attempt is not counted, since no delivery failed.
-- KEYS: 1 task, 2 processing, 3 queue, 4 status:running, 5 status:pending,
--       6 deadlines
-- ARGV: 1 id, 2 envelope, 3 worker id, 4 attempt, 5 events channel
-- Reply: {'requeued'} | {'stale', status}
local h = redis.call('HMGET', KEYS[1], 'status', 'worker', 'attempt', 'created_at')
if redis.call('LREM', KEYS[2], 1, ARGV[2]) == 0 then return {'stale', h[1] or ''} end
if h[1] ~= 'running' or h[2] ~= ARGV[3] or h[3] ~= ARGV[4] then
  return {'stale', h[1] or ''}
end
local id, now = ARGV[1], now_ms()
redis.call('HSET', KEYS[1], 'status', 'pending')
redis.call('HINCRBY', KEYS[1], 'attempt', -1)
redis.call('HDEL', KEYS[1], 'deadline', 'started_at', 'worker', 'cancel_requested')
redis.call('ZREM', KEYS[4], id)
redis.call('ZREM', KEYS[6], id)
redis.call('ZADD', KEYS[5], tonumber(h[4]) or now, id)
redis.call('RPUSH', KEYS[3], ARGV[2])
event(ARGV[5], {id = id, status = 'pending', requeued = true, at = now})
return {'requeued'}
