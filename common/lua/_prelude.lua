-- _prelude.lua: prepended to every rtq script by cmake/embed_lua.cmake.
-- Keys always arrive in KEYS, built by common/keys.c; the scripts never
-- build a key name. Times come from Redis TIME, in ms.

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function fmt(n)
  return string.format('%d', n)
end

local function event(chan, tbl)
  redis.call('PUBLISH', chan, cjson.encode(tbl))
end

-- Counter fields of P:stats are "<queue>|<counter>".
local function stat(stats, queue, counter)
  if queue then redis.call('HINCRBY', stats, queue .. '|' .. counter, 1) end
end

-- The one terminal write. The caller has checked that the task may end.
-- t: task key; id; status; now; ttl (s); hist ('1' keeps it in the history
-- and the status index); k: {index=, history=, cancel=, stats=};
-- chans: {events=, task=}; fields: extra field/value pairs to set.
-- Without history the task outlives the event by 60 s at most, long
-- enough for a waiter that got the event to read it.
local function terminal(t, id, status, now, ttl, hist, k, chans, fields)
  local h = redis.call('HMGET', t, 'created_at', 'queue', 'result_ttl')
  local created = tonumber(h[1]) or now
  local own_ttl = tonumber(h[3])
  if own_ttl and own_ttl > 0 then ttl = own_ttl end
  local args = {'status', status, 'completed_at', fmt(now)}
  for i = 1, #fields do args[#args + 1] = fields[i] end
  redis.call('HSET', t, unpack(args))
  redis.call('HDEL', t, 'deadline')
  if hist == '1' then
    redis.call('ZADD', k.index, created, id)
    redis.call('ZADD', k.history, now, id)
  elseif ttl > 60 then
    ttl = 60
  end
  redis.call('EXPIRE', t, ttl)
  redis.call('DEL', k.cancel)
  stat(k.stats, h[2], status)
  local ev = {id = id, status = status, at = now}
  for i = 1, #fields - 1, 2 do
    if fields[i] == 'progress' then ev.progress = tonumber(fields[i + 1])
    elseif fields[i] == 'progress_message' then ev.message = fields[i + 1]
    elseif fields[i] == 'error_code' then ev.error_code = fields[i + 1] end
  end
  event(chans.events, ev)
  event(chans.task, ev)
end
