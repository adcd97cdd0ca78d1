-- handback: a worker run with --unknown-task requeue has no handler for a
-- task's name and hands the task back for another worker. The envelope
-- leaves the worker's processing list for the delayed set, due after the
-- delay (the broker then promotes it onto its queue), and the task's
-- handbacks count goes up by one. A task handed back the most times
-- already is left where it is ('exhausted'), as is one without a hash
-- ('missing'): the worker then dead-letters it as UNKNOWN_TASK. A task that
-- has ended or runs under another worker is only dropped from the list.
-- KEYS: 1 task, 2 processing, 3 delayed, 4 status:pending, 5 status:running,
--       6 deadlines
-- ARGV: 1 id, 2 envelope, 3 worker id, 4 delay (ms), 5 most handbacks,
--       6 events channel
-- Reply: {'handed_back', handbacks, due_ms} | {'exhausted', handbacks}
--        | {'missing'} | {'dropped', status} | {'gone'}
local delay, most = tonumber(ARGV[4]), tonumber(ARGV[5])
if not delay or delay < 0 or delay ~= math.floor(delay) or delay > 86400000 or
   not most or most < 0 or most ~= math.floor(most) then
  return redis.error_reply('ERR handback: delay (0..86400000 ms) and most handbacks must be whole numbers')
end
local id = ARGV[1]
local h = redis.call('HMGET', KEYS[1], 'status', 'worker', 'handbacks', 'created_at')
if not h[1] then return {'missing'} end
local n = tonumber(h[3]) or 0
local mine = h[1] == 'running' and h[2] == ARGV[3]
if h[1] ~= 'pending' and not mine then
  redis.call('LREM', KEYS[2], 1, ARGV[2])
  return {'dropped', h[1]}
end
if n >= most then return {'exhausted', n} end
if redis.call('LREM', KEYS[2], 1, ARGV[2]) == 0 then return {'gone'} end
local now = now_ms()
if mine then
  -- Claimed by take.lua before the worker read the name: undo the claim.
  redis.call('HINCRBY', KEYS[1], 'attempt', -1)
  redis.call('HDEL', KEYS[1], 'deadline', 'started_at', 'worker', 'cancel_requested')
  redis.call('ZREM', KEYS[5], id)
  redis.call('ZREM', KEYS[6], id)
  redis.call('ZADD', KEYS[4], tonumber(h[4]) or now, id)
end
local due = now + delay
redis.call('HSET', KEYS[1], 'status', 'pending', 'handbacks', n + 1)
redis.call('ZADD', KEYS[3], due, ARGV[2])
event(ARGV[6], {id = id, status = 'pending', handed_back = n + 1, at = now})
return {'handed_back', n + 1, due}
