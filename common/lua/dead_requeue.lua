-- dead_requeue: an operator puts a dead-lettered envelope back on its
-- queue. The caller has read the record from P:dead and decoded its
-- payload as a whole task envelope (not cut short, valid); this step takes
-- the record out (the first equal one: equal records cannot be told
-- apart) and makes the task pending again:
--   no task hash (a NO_TASK_RECORD record, or a task expired since): the
--     hash is written from the envelope, as create writes it;
--   failed, timeout or cancelled: back to pending as retry does (outcome
--     cleared, attempt 0, out of the history, cancel flag dropped);
--   pending, running or completed: left alone and the record kept
--     ('state'): the task runs, waits or ran under another envelope.
-- A hash whose name or queue differ from the envelope's belongs to another
-- task ('mismatch'), also left alone. Nothing is written before these
-- checks pass; a record no longer in the list ('gone') writes nothing.
-- KEYS: 1 dead list, 2 task, 3 queue, 4 queues, 5 stats, 6 status:pending,
--       7 status:failed, 8 status:timeout, 9 status:cancelled,
--       10 history, 11 cancel flag
-- ARGV: 1 record, 2 envelope, 3 id, 4 name, 5 queue, 6 args (msgpack),
--       7 timeout_ms, 8 max_retries, 9 result_ttl_s, 10 events channel
-- Reply: {'ok', previous status ('' when the hash was written)} |
--        {'state', status} | {'mismatch', name, queue} | {'gone'}
local id, name, queue = ARGV[3], ARGV[4], ARGV[5]
if not (valid_name(id) and valid_name(name) and valid_name(queue)) then
  return redis.error_reply('dead_requeue: invalid id, name or queue')
end
local h = redis.call('HMGET', KEYS[2], 'status', 'name', 'queue')
local st = h[1]
local index = {failed = KEYS[7], timeout = KEYS[8], cancelled = KEYS[9]}
if st and not index[st] then return {'state', st} end
if st and (h[2] ~= name or h[3] ~= queue) then return {'mismatch', h[2] or '', h[3] or ''} end
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return {'gone'} end
local now = now_ms()
local nows = fmt(now)
if st then
  redis.call('HDEL', KEYS[2], 'completed_at', 'started_at', 'worker', 'deadline', 'result',
             'error_code', 'error_message', 'error_details', 'error_traceback',
             'progress', 'progress_message', 'cancel_requested', 'retry_at', 'run_at')
  redis.call('HSET', KEYS[2], 'status', 'pending', 'attempt', '0')
  redis.call('PERSIST', KEYS[2])
  redis.call('DEL', KEYS[11])
  redis.call('ZREM', index[st], id)
  redis.call('ZREM', KEYS[10], id)
else
  local fields = {'name', name, 'queue', queue, 'status', 'pending', 'created_at', nows,
                  'args', ARGV[6], 'attempt', '0'}
  local function opt(field, v)
    if v ~= '' and v ~= '0' then fields[#fields + 1] = field; fields[#fields + 1] = v end
  end
  opt('timeout_ms', ARGV[7])
  opt('max_retries', ARGV[8])
  opt('result_ttl', ARGV[9])
  redis.call('HSET', KEYS[2], unpack(fields))
  redis.call('SADD', KEYS[4], queue)
  redis.call('HINCRBY', KEYS[5], queue .. '|enqueued', 1)
end
redis.call('ZADD', KEYS[6], tonumber(redis.call('HGET', KEYS[2], 'created_at')) or now, id)
redis.call('LPUSH', KEYS[3], ARGV[2])
event(ARGV[10], {id = id, status = 'pending', name = name, queue = queue,
                 requeued_from_dead = true, at = now})
return {'ok', st or ''}
