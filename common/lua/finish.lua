-- finish: the worker's completion step, fenced; one call writes a batch of
-- completions (1..256), each task checked on its own. A task is written
-- only while it is running under this worker id and attempt; otherwise the
-- late result is rejected ('stale') and only the worker's own processing
-- entry is removed. A failure with retries left goes to the delayed set
-- with an exponential backoff instead of ending.
-- KEYS: 1 processing, 2 status:running, 3 deadlines, 4 history, 5 stats,
--       6 status:pending, 7 delayed, 8 status:completed, 9 status:failed,
--       10 status:cancelled, 11 status:timeout,
--       then per task 2 keys: task, cancel flag
-- ARGV: 1 worker id, 2 default result ttl (s), 3 history '1'/'0',
--       4 events channel,
--       then per task 13 values: id, envelope, attempt, final status
--       (completed, failed, cancelled or timeout), result (msgpack, '' =
--       none), error code, error message, error details (msgpack),
--       traceback, progress ('' = unchanged), progress message,
--       jitter (ms), task channel
-- Reply: one entry per task, in order:
--        {'ok', status} | {'retry', run_at_ms} | {'stale', status}
local index = {completed = KEYS[8], failed = KEYS[9], cancelled = KEYS[10], timeout = KEYS[11]}
local n = (#KEYS - 11) / 2
-- Every check that could fail comes before the first write: Redis does
-- not undo a script's earlier writes when it errors half-way.
if n < 1 or n > 256 or n % 1 ~= 0 or #ARGV ~= 4 + 13 * n or not tonumber(ARGV[2]) then
  return redis.error_reply('ERR finish: expected 1..256 tasks with 2 keys and 13 values each')
end
for j = 1, n do
  local b = 5 + 13 * (j - 1)
  local final = ARGV[b + 3]
  if not index[final] then return redis.error_reply('ERR finish: bad final status ' .. final) end
  if not tonumber(ARGV[b + 2]) or not tonumber(ARGV[b + 11]) then
    return redis.error_reply('ERR finish: attempt and jitter must be numbers')
  end
end
local now = now_ms()
local nows = fmt(now)
local wid, defttl, hist, chan = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local out, bt = {}, batch_new()
for j = 1, n do
  local tk, ck = KEYS[10 + 2 * j], KEYS[11 + 2 * j]
  local b = 5 + 13 * (j - 1)
  local id, env, attempt, final = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  local h = redis.call('HMGET', tk, 'status', 'worker', 'attempt', 'max_retries',
                       'retry_backoff_ms', 'created_at', 'queue', 'result_ttl',
                       'cancel_requested')
  redis.call('LREM', KEYS[1], 1, env)
  if h[1] ~= 'running' or h[2] ~= wid or h[3] ~= attempt then
    out[j] = {'stale', h[1] or ''}
  else
    batch_put(bt.zrem, KEYS[3], id)
    batch_put(bt.zrem, KEYS[2], id)
    local fields = {}
    local function put(name, v)
      if v ~= '' then fields[#fields + 1] = name; fields[#fields + 1] = v end
    end
    put('progress', ARGV[b + 9])
    put('progress_message', ARGV[b + 10])
    put('result', ARGV[b + 4])
    put('error_code', ARGV[b + 5])
    put('error_message', ARGV[b + 6])
    put('error_details', ARGV[b + 7])
    put('error_traceback', ARGV[b + 8])
    local att = tonumber(attempt)
    if final == 'failed' and att <= (tonumber(h[4]) or 0) then
      local base = tonumber(h[5]) or 1000
      local delay = math.min(base * 2 ^ (att - 1), 3600000) + tonumber(ARGV[b + 11])
      local run_at = fmt(now + delay)
      put('status', 'pending')
      put('retry_at', run_at)
      redis.call('HSET', tk, unpack(fields))
      redis.call('HDEL', tk, 'deadline')
      batch_put(bt.zadd, KEYS[6], tonumber(h[6]) and h[6] or nows, id)
      batch_put(bt.zadd, KEYS[7], run_at, env)
      if h[7] then batch_incr(bt, KEYS[5], h[7] .. '|retried', 1) end
      redis.call('PUBLISH', chan, '{"id":"' .. id .. '","status":"pending","retry_at":' .. run_at ..
                 ',"attempt":' .. fmt(att) .. ',"at":' .. nows .. '}')
      out[j] = {'retry', tonumber(run_at)}
    else
      terminal(tk, id, final, now, defttl, hist,
               {index = index[final], history = KEYS[4], cancel = ck, stats = KEYS[5]},
               {events = chan, task = ARGV[b + 12]}, fields,
               {created = h[6], queue = h[7], ttl = h[8],
                cancel = h[9] or final == 'cancelled'}, bt)
      out[j] = {'ok', final}
    end
  end
end
flush(bt)
return out
