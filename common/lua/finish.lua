-- finish: the worker's completion step, fenced; one call writes a batch of
-- completions (1..256), each task checked on its own. A task is written
-- only while it is running under this worker id and attempt; otherwise the
-- late result is rejected ('stale') and only the worker's own processing
-- entry is removed. A failure with retries left goes to the delayed set
-- with an exponential backoff instead of ending: retry_backoff_ms (1000
-- when unset) doubled per attempt, plus the caller's jitter, capped at
-- 1 h. A task that ends cancelled or timeout gets the error_code
-- CANCELLED or TIMEOUT whatever the caller sent, and a message when it
-- sent none.
-- A task's own keys and channel (task hash, cancel flag, task channel) are
-- built here from the prefixes keys.c gives, so that a task costs 6
-- arguments in the common case; with the cluster option every rtq key
-- shares one hash slot.
-- KEYS: 1 processing, 2 status:running, 3 deadlines, 4 history, 5 stats,
--       6 status:pending, 7 delayed, 8 status:completed, 9 status:failed,
--       10 status:cancelled, 11 status:timeout
-- ARGV: 1 worker id, 2 default result ttl (s), 3 history '1'/'0',
--       4 events channel, 5 task key prefix ("<ns>:task:"), 6 cancel key
--       prefix ("<ns>:cancel:"), 7 task channel prefix ("<ns>:chan:task:"),
--       8 run-time key prefix ("<ns>:runtime:") (the four checked against
--       KEYS[2]), 9 g, the run-time groups (0..256), then g groups: queue,
--       sum of its runs (us, at most 15 digits), n (1..17), and n pairs of
--       bucket (0..16: le 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10
--       30 60 120 300 600 +Inf, in seconds) and count; the counts add up
--       to at most the tasks of the call,
--       then per task: id, envelope, attempt, final status (completed,
--       failed, cancelled or timeout), result (msgpack, '' = none), m, and
--       m name/value pairs among: error_code, error_message, error_details
--       (msgpack), error_traceback, progress, progress_message (an empty
--       value leaves the field as it is), jitter (ms, a whole number,
--       added to a retry's backoff)
-- The groups are the worker's handler runs in this call, aggregated by the
-- worker: P:runtime:<queue> gets one HINCRBY per touched bucket (the field
-- is the bucket's le) and one for 'sum_us', after the tasks and each
-- through pcall, so that a caller whose ACL predates P:runtime:* still
-- finishes its tasks (the histogram then stays empty).
-- Reply: one entry per task, in order:
--        {'ok', status} | {'retry', run_at_ms} | {'stale', status}
local index = {completed = KEYS[8], failed = KEYS[9], cancelled = KEYS[10], timeout = KEYS[11]}
local optional = {error_code = true, error_message = true, error_details = true,
                  error_traceback = true, progress = true, progress_message = true, jitter = true}
-- The codes and default messages of the outcomes a task does not choose.
local stop_code = {cancelled = 'CANCELLED', timeout = 'TIMEOUT'}
local stop_message = {cancelled = 'cancelled while running', timeout = 'exceeded its timeout'}
local MAX_BACKOFF_MS = 3600000
-- P:runtime:<queue>'s fields, by bucket index + 1 (common/runtime.c).
local RUN_LE = {'0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '30', '60', '120', '300', '600', '+Inf'}
-- A whole number as Redis reads one (no sign, no leading zero).
local function whole(s, digits)
  return s ~= nil and #s <= digits and (s == '0' or string.find(s, '^[1-9]%d*$') ~= nil)
end
-- Every check that could fail comes before the first write: Redis does
-- not undo a script's earlier writes when it errors half-way. groups[g]
-- is where run-time group g begins, starts[j] where task j's values do.
local nargs = #ARGV
if not tonumber(ARGV[2]) then return redis.error_reply('ERR finish: bad default result ttl') end
-- The prefixes must be this namespace's.
local ns = ns_of_running(KEYS[2])
if ARGV[5] ~= ns .. 'task:' or ARGV[6] ~= ns .. 'cancel:' or ARGV[7] ~= ns .. 'chan:task:' or
   ARGV[8] ~= ns .. 'runtime:' then
  return redis.error_reply('ERR finish: the key prefixes do not match the keys')
end
if not whole(ARGV[9], 3) or tonumber(ARGV[9]) > 256 then
  return redis.error_reply('ERR finish: expected 0..256 run-time groups')
end
local groups, runs, b = {}, 0, 10
for g = 1, tonumber(ARGV[9]) do
  local n = whole(ARGV[b + 2], 2) and tonumber(ARGV[b + 2])
  if not n or n < 1 or n > #RUN_LE or b + 2 + 2 * n > nargs then
    return redis.error_reply('ERR finish: each run-time group needs a queue, a sum, n and n buckets')
  end
  if not valid_name(ARGV[b]) then return redis.error_reply('ERR finish: bad run-time queue') end
  if not whole(ARGV[b + 1], 15) then
    return redis.error_reply('ERR finish: run-time sum must be a whole number of us')
  end
  for i = b + 3, b + 1 + 2 * n, 2 do
    if not whole(ARGV[i], 2) or not RUN_LE[tonumber(ARGV[i]) + 1] then
      return redis.error_reply('ERR finish: unknown run-time bucket ' .. ARGV[i])
    end
    if not whole(ARGV[i + 1], 3) then
      return redis.error_reply('ERR finish: run-time count must be a whole number')
    end
    runs = runs + tonumber(ARGV[i + 1])
  end
  groups[g] = b
  b = b + 3 + 2 * n
end
local starts = {}
while b <= nargs do
  if #starts == 256 then return redis.error_reply('ERR finish: more than 256 tasks') end
  local m = tonumber(ARGV[b + 5])
  if not m or m < 0 or m > 7 or m % 1 ~= 0 or b + 5 + 2 * m > nargs then
    return redis.error_reply('ERR finish: each task needs 6 values and m name/value pairs')
  end
  if not index[ARGV[b + 3]] then return redis.error_reply('ERR finish: bad final status ' .. ARGV[b + 3]) end
  if not string.find(ARGV[b + 2], '^%d+$') then
    return redis.error_reply('ERR finish: attempt must be a whole number')
  end
  if not valid_name(ARGV[b]) then
    return redis.error_reply('ERR finish: bad task id')
  end
  for i = b + 6, b + 4 + 2 * m, 2 do
    if not optional[ARGV[i]] then return redis.error_reply('ERR finish: unknown field ' .. ARGV[i]) end
    if ARGV[i] == 'jitter' and not string.find(ARGV[i + 1], '^%d+$') then
      return redis.error_reply('ERR finish: jitter must be a whole number')
    end
  end
  starts[#starts + 1] = b
  b = b + 6 + 2 * m
end
if #starts == 0 then return redis.error_reply('ERR finish: expected 1..256 tasks') end
if runs > #starts then return redis.error_reply('ERR finish: more runs than tasks') end
local now = now_ms()
local nows = fmt(now)
local wid, defttl, hist, chan = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local tpre, cpre, chpre = ARGV[5], ARGV[6], ARGV[7]
local out, bt = {}, batch_new()
-- Reused for every task: terminal() only reads them during its call.
local k = {history = KEYS[4], stats = KEYS[5]}
local chans = {events = chan}
local info = {}
for j = 1, #starts do
  b = starts[j]
  local id, env, attempt, final, result = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4]
  local tk = tpre .. id
  local h = redis.call('HMGET', tk, 'status', 'worker', 'attempt', 'max_retries',
                       'retry_backoff_ms', 'created_at', 'queue', 'result_ttl',
                       'cancel_requested')
  redis.call('LREM', KEYS[1], 1, env)
  if h[1] ~= 'running' or h[2] ~= wid or h[3] ~= attempt then
    out[j] = {'stale', h[1] or ''}
  else
    batch_put(bt.zrem, KEYS[3], id)
    batch_put(bt.zrem, KEYS[2], id)
    local fields, jitter, code, message = {}, 0, stop_code[final], nil
    for i = b + 6, b + 4 + 2 * tonumber(ARGV[b + 5]), 2 do
      local f, v = ARGV[i], ARGV[i + 1]
      if f == 'jitter' then
        jitter = tonumber(v)
      elseif v ~= '' and not (code and f == 'error_code') then
        if f == 'error_message' then message = v end
        fields[#fields + 1] = f
        fields[#fields + 1] = v
      end
    end
    if code then
      fields[#fields + 1] = 'error_code'
      fields[#fields + 1] = code
      if not message then
        fields[#fields + 1] = 'error_message'
        fields[#fields + 1] = stop_message[final]
      end
    end
    if result ~= '' then
      fields[#fields + 1] = 'result'
      fields[#fields + 1] = result
    end
    local att = tonumber(attempt)
    if final == 'failed' and att <= (tonumber(h[4]) or 0) then
      local base = tonumber(h[5]) or 1000
      -- The cap comes last, so that no retry waits longer than 1 h.
      local delay = math.min(base * 2 ^ (att - 1) + jitter, MAX_BACKOFF_MS)
      local run_at = fmt(now + delay)
      redis.call('HSET', tk, 'status', 'pending', 'retry_at', run_at, unpack(fields))
      redis.call('HDEL', tk, 'deadline')
      batch_put(bt.zadd, KEYS[6], tonumber(h[6]) and h[6] or nows, id)
      batch_put(bt.zadd, KEYS[7], run_at, env)
      if h[7] then batch_incr(bt, KEYS[5], h[7] .. '|retried', 1) end
      redis.call('PUBLISH', chan, '{"id":"' .. id .. '","status":"pending","retry_at":' .. run_at ..
                 ',"attempt":' .. fmt(att) .. ',"at":' .. nows .. '}')
      out[j] = {'retry', tonumber(run_at)}
    else
      k.index, k.cancel = index[final], cpre .. id
      chans.task = chpre .. id
      info.created, info.queue, info.ttl = h[6], h[7], h[8]
      info.cancel = h[9] or final == 'cancelled'
      terminal(tk, id, final, now, defttl, hist, k, chans, fields, info, bt)
      out[j] = {'ok', final}
    end
  end
end
flush(bt)
-- The counts go as the strings sent: Lua would print a large number in
-- exponent form.
for g = 1, #groups do
  b = groups[g]
  local rk = ARGV[8] .. ARGV[b]
  for i = b + 3, b + 1 + 2 * tonumber(ARGV[b + 2]), 2 do
    redis.pcall('HINCRBY', rk, RUN_LE[tonumber(ARGV[i]) + 1], ARGV[i + 1])
  end
  if ARGV[b + 1] ~= '0' then redis.pcall('HINCRBY', rk, 'sum_us', ARGV[b + 1]) end
end
return out
