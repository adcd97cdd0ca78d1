-- claim: mark a task the worker has just moved into its processing list as
-- running. A task that is no longer pending (cancelled while it waited, or
-- a stale duplicate) is dropped from the processing list and not run.
-- KEYS: 1 task, 2 processing, 3 status:pending, 4 status:running, 5 deadlines
-- ARGV: 1 id, 2 envelope, 3 worker id, 4 default_timeout_ms, 5 events channel
-- Reply: {'ok', attempt, deadline_ms, timeout_ms}
--        {'skip', status}   dropped, not run
--        {'missing'}        no task hash: the caller dead-letters the envelope
local h = redis.call('HMGET', KEYS[1], 'status', 'timeout_ms', 'created_at')
local st = h[1]
if not st then return {'missing'} end
if st ~= 'pending' then
  redis.call('LREM', KEYS[2], 1, ARGV[2])
  return {'skip', st}
end
local now = now_ms()
local timeout = tonumber(h[2]) or 0
if timeout <= 0 then timeout = tonumber(ARGV[4]) end
local deadline = now + timeout
local attempt = redis.call('HINCRBY', KEYS[1], 'attempt', 1)
redis.call('HSET', KEYS[1], 'status', 'running', 'started_at', fmt(now),
           'worker', ARGV[3], 'deadline', fmt(deadline))
redis.call('HDEL', KEYS[1], 'retry_at', 'run_at')
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[4], tonumber(h[3]) or now, ARGV[1])
redis.call('ZADD', KEYS[5], deadline, ARGV[1])
event(ARGV[5], {id = ARGV[1], status = 'running', worker = ARGV[3], attempt = attempt, at = now})
return {'ok', attempt, deadline, timeout}
