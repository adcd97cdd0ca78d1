-- recover: take one envelope out of a dead worker's processing list and
-- deliver it again. LREM gates the step, so when several brokers race on
-- the same list each envelope is recovered exactly once.
-- A task whose cancel flag is set was asked to stop while its worker died:
-- it ends cancelled here, in the same step, so no worker can claim it again.
-- KEYS: 1 processing, 2 task, 3 queue, 4 status:pending, 5 status:running,
--       6 deadlines, 7 status:failed, 8 history, 9 stats, 10 cancel flag,
--       11 dead list, 12 status:cancelled, 13 delayed
-- ARGV: 1 envelope, 2 id, 3 dead worker id, 4 max deliveries,
--       5 default result ttl (s), 6 history '1'/'0', 7 events channel,
--       8 task channel
-- Reply: {'gone'}       another broker took it
--        {'requeued', attempt} back on its queue, first in line
--        {'failed', attempt}   WORKER_LOST after max deliveries
--        {'cancelled', attempt} its cancel flag was set
--        {'dropped', status}   it had ended or runs elsewhere
--        {'missing'}           no task hash: dead-lettered
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return {'gone'} end
local id, now = ARGV[2], now_ms()
local h = redis.call('HMGET', KEYS[2], 'status', 'worker', 'attempt', 'created_at', 'queue')
local st = h[1]
if not st then
  redis.call('LPUSH', KEYS[11], dead_record({'at', now, 'code', 'NO_TASK_RECORD',
    'reason', 'recovered envelope has no task hash', 'worker', ARGV[3], 'id', id,
    'size', #ARGV[1]}, ARGV[1]))
  redis.call('LTRIM', KEYS[11], 0, 9999)
  return {'missing'}
end
local attempt = tonumber(h[3]) or 0
if st == 'pending' then
  -- Taken but never marked running. A task waiting in the delayed set
  -- (a delay or a retry backoff) has this very envelope there: this one is
  -- a leftover copy, and requeueing it would run the task early. The
  -- envelope is looked up itself, not run_at or retry_at: those stay on a
  -- task after it was promoted and claimed.
  if redis.call('ZSCORE', KEYS[13], ARGV[1]) then return {'dropped', st} end
  redis.call('RPUSH', KEYS[3], ARGV[1])
  return {'requeued', attempt}
end
if st ~= 'running' or h[2] ~= ARGV[3] then return {'dropped', st} end
redis.call('ZREM', KEYS[5], id)
redis.call('ZREM', KEYS[6], id)
local k = {index = KEYS[7], history = KEYS[8], cancel = KEYS[10], stats = KEYS[9]}
local chans = {events = ARGV[7], task = ARGV[8]}
if redis.call('EXISTS', KEYS[10]) == 1 then
  k.index = KEYS[12]
  terminal(KEYS[2], id, 'cancelled', now, tonumber(ARGV[5]), ARGV[6], k, chans,
           {'error_code', 'CANCELLED', 'error_message',
            'cancelled; its worker ' .. ARGV[3] .. ' was lost while stopping it'})
  return {'cancelled', attempt}
end
if attempt >= tonumber(ARGV[4]) then
  terminal(KEYS[2], id, 'failed', now, tonumber(ARGV[5]), ARGV[6], k, chans,
           {'error_code', 'WORKER_LOST', 'error_message',
            'worker ' .. ARGV[3] .. ' was lost; delivered ' .. attempt .. ' times'})
  return {'failed', attempt}
end
redis.call('HSET', KEYS[2], 'status', 'pending')
redis.call('HDEL', KEYS[2], 'deadline', 'started_at', 'cancel_requested')
redis.call('ZADD', KEYS[4], tonumber(h[4]) or now, id)
redis.call('RPUSH', KEYS[3], ARGV[1])
stat(KEYS[9], h[5], 'redelivered')
event(ARGV[7], {id = id, status = 'pending', redelivered = true, attempt = attempt, at = now})
return {'requeued', attempt}
