-- _prelude.lua: prepended to every rtq script by cmake/embed_lua.cmake.
-- Keys arrive in KEYS, built by common/keys.c. The one exception is a
-- task's own keys in take.lua and finish.lua, which join a prefix from
-- keys.c (in ARGV) and the task id: take.lua learns the ids only from the
-- envelopes it moves, and finish.lua saves three arguments per task (and
-- builds P:runtime:<queue> the same way, for the queues of its call). With
-- the cluster option every rtq key shares one hash slot, so those keys are
-- in the slot of the declared ones. Times come from Redis TIME, in ms.

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function fmt(n)
  return string.format('%d', n)
end

-- A valid name (ids, queues, workers; errors.c's rtq_validate_name):
-- 1..128 of A-Z a-z 0-9 . _ : -
local function valid_name(s)
  return #s >= 1 and #s <= 128 and not string.find(s, '[^a-zA-Z0-9._:-]')
end

-- "<ns>:" from the key "<ns>:status:running", for the scripts that check
-- the key prefixes they are given (take, finish).
local function ns_of_running(key)
  return string.sub(key, 1, #key - #'status:running')
end

local function event(chan, tbl)
  redis.call('PUBLISH', chan, cjson.encode(tbl))
end

-- A dead-letter record for P:dead: a msgpack map of the pairs in kv (a
-- flat list: name, value, ...), then `payload`, the first 4096 bytes of
-- the bad envelope, as a msgpack bin. Those bytes are arbitrary, and
-- cmsgpack writes every Lua string as a str, which strict decoders refuse
-- when it is not UTF-8; so the map is laid out here. At most 15 pairs
-- (a fixmap).
local function dead_record(kv, envelope)
  local parts = {string.char(0x80 + #kv / 2 + 1)}
  for i = 1, #kv - 1, 2 do
    parts[#parts + 1] = cmsgpack.pack(kv[i])
    parts[#parts + 1] = cmsgpack.pack(kv[i + 1])
  end
  local p = string.sub(envelope, 1, 4096)
  parts[#parts + 1] = cmsgpack.pack('payload')
  if #p < 256 then
    parts[#parts + 1] = string.char(0xc4, #p)
  else
    parts[#parts + 1] = string.char(0xc5, math.floor(#p / 256), #p % 256)
  end
  parts[#parts + 1] = p
  return table.concat(parts)
end

-- Counter fields of P:stats are "<queue>|<counter>".
local function stat(stats, queue, counter)
  if queue then redis.call('HINCRBY', stats, queue .. '|' .. counter, 1) end
end

-- A batch gathers the writes to shared keys that a multi-task script makes
-- for each task, so that each key gets one command per call:
--   zadd[key] = {score, member, ...}   zrem[key] = {member, ...}
--   incr[key][field] = n
-- flush() writes them. A script adds to a key or removes from it, never
-- both, so the order of the commands does not matter. Lua's unpack is
-- bounded (about 8000 values): callers send at most 256 tasks per call.
local function batch_new()
  return {zadd = {}, zrem = {}, incr = {}}
end

local function batch_put(list, key, a, b)
  local l = list[key]
  if not l then l = {}; list[key] = l end
  l[#l + 1] = a
  if b ~= nil then l[#l + 1] = b end
end

local function batch_incr(bt, key, field, n)
  local f = bt.incr[key]
  if not f then f = {}; bt.incr[key] = f end
  f[field] = (f[field] or 0) + n
end

local function flush(bt)
  for key, l in pairs(bt.zrem) do redis.call('ZREM', key, unpack(l)) end
  for key, l in pairs(bt.zadd) do redis.call('ZADD', key, unpack(l)) end
  for key, f in pairs(bt.incr) do
    for field, n in pairs(f) do redis.call('HINCRBY', key, field, n) end
  end
end

-- Marks one pending task running under worker wid; h is its HMGET of
-- CLAIM_FIELDS. k: {pending=, running=, deadlines=}; the index writes go
-- into bt. Returns attempt, deadline (ms), timeout (ms). Used by claim and
-- take.
-- run_at and retry_at stay: they answer "when was this run due?" for as
-- long as the task is kept. Nothing reads them to decide whether a task
-- waits in P:delayed (recover.lua looks for the envelope itself).
local CLAIM_FIELDS = {'status', 'timeout_ms', 'created_at', 'attempt'}
local function claim_task(tk, id, h, now, nows, wid, deftmo, chan, k, bt)
  local timeout = tonumber(h[2]) or 0
  if timeout <= 0 then timeout = deftmo end
  local deadline = now + timeout
  local attempt = (tonumber(h[4]) or 0) + 1
  local ds, as = fmt(deadline), fmt(attempt)
  redis.call('HSET', tk, 'status', 'running', 'started_at', nows, 'worker', wid,
             'deadline', ds, 'attempt', as)
  batch_put(bt.zrem, k.pending, id)
  batch_put(bt.zadd, k.running, tonumber(h[3]) and h[3] or nows, id)
  batch_put(bt.zadd, k.deadlines, ds, id)
  -- ids and worker ids are validated names: no quote or backslash.
  redis.call('PUBLISH', chan, '{"id":"' .. id .. '","status":"running","worker":"' .. wid ..
             '","attempt":' .. as .. ',"at":' .. nows .. '}')
  return attempt, deadline, timeout
end

-- The one terminal write. The caller has checked that the task may end.
-- t: task key; id; status; now; ttl (s); hist ('1' keeps it in the history
-- and the status index); k: {index=, history=, cancel=, stats=};
-- chans: {events=, task=}; fields: extra field/value pairs to set.
-- info (optional): what the caller has read of the task already,
-- {created=, queue=, ttl=, cancel=} (created_at, queue, result_ttl,
-- cancel_requested); without it they are read here and the cancel flag is
-- always deleted. bt (optional): a batch to gather the index, history and
-- stats writes in, which the caller flushes; without it they are written
-- now.
-- 1. Without history the task outlives the event by 60 s at most, long
--    enough for a waiter that got the event to read it.
-- 2. A completed task drops its args: it cannot be retried, and without
--    them a finished task takes less memory (docs/PERFORMANCE.md).
-- 3. The cancel flag exists only while cancel_requested is set (cancel.lua
--    sets both), except after expire_running, which ends the task first,
--    and after requeue, which clears cancel_requested (finish then deletes
--    the flag of a task it ends cancelled); the flag has its own expiry.
local function terminal(t, id, status, now, ttl, hist, k, chans, fields, info, bt)
  local own = bt == nil
  if own then bt = batch_new() end
  if not info then
    local h = redis.call('HMGET', t, 'created_at', 'queue', 'result_ttl')
    info = {created = h[1], queue = h[2], ttl = h[3], cancel = true}
  end
  local nows = fmt(now)
  local own_ttl = tonumber(info.ttl)
  if own_ttl and own_ttl > 0 then ttl = own_ttl end
  redis.call('HSET', t, 'status', status, 'completed_at', nows, unpack(fields))
  if status == 'completed' then
    redis.call('HDEL', t, 'deadline', 'args')
  else
    redis.call('HDEL', t, 'deadline')
  end
  if hist == '1' then
    batch_put(bt.zadd, k.index, tonumber(info.created) and info.created or nows, id)
    batch_put(bt.zadd, k.history, nows, id)
  elseif ttl > 60 then
    ttl = 60
  end
  redis.call('EXPIRE', t, ttl)
  if info.cancel then redis.call('DEL', k.cancel) end
  if info.queue then batch_incr(bt, k.stats, info.queue .. '|' .. status, 1) end
  -- ids and statuses are validated names: no quote or backslash. Free
  -- text (messages, error codes) goes through cjson.
  local ev
  for i = 1, #fields - 1, 2 do
    local f = fields[i]
    if f == 'progress' or f == 'progress_message' or f == 'error_code' then
      ev = ev or {id = id, status = status, at = now}
      if f == 'progress' then ev.progress = tonumber(fields[i + 1])
      elseif f == 'progress_message' then ev.message = fields[i + 1]
      else ev.error_code = fields[i + 1] end
    end
  end
  if ev then
    ev = cjson.encode(ev)
  else
    ev = '{"id":"' .. id .. '","status":"' .. status .. '","at":' .. nows .. '}'
  end
  redis.call('PUBLISH', chans.events, ev)
  redis.call('PUBLISH', chans.task, ev)
  if own then flush(bt) end
end
