-- dead_requeue: an operator puts the task of a dead letter back on its
-- queue. The letter is one record of the queue's dead list (its exact
-- bytes, as read); removing it (LREM: at most the list's length, 10000
-- kept) is the first write, after every check, so a letter is requeued
-- once however many operators race, and a refused letter stays.
-- A dead letter is an entry of a list that was not a task to run: an
-- id whose task hash was missing or did not validate, or a task the
-- dead-lettering failed. What happens with each:
--   the record does not decode, names another queue, or has no id
--                                   -> {'bad', '', why}, kept
--   no task hash (expired, or never written: rtq keeps no envelope, so
--   there is nothing to enqueue)    -> {'notask', id}, kept
--   a hash that does not validate (not a hash, a bad name, status or
--   option)                         -> {'bad', id, why}, kept
--   failed, timeout or cancelled    -> pending again at the back of the
--                                      queue, outcome cleared, attempts
--                                      restarted (as retry); the letter
--                                      removed: {'ok', id}
--   pending, running or completed   -> {'state', id, status}, kept
-- KEYS: 1 dead list, 2 queue, 3 done:failed, 4 done:timeout,
--       5 done:cancelled
-- ARGV: 1 record, 2 queue name, 3 events channel, 4 task key prefix,
--       5 side key prefix
-- Reply: {'ok', id} | {'gone'} when the record was no longer there |
--        {'notask', id} | {'bad', id, why} | {'state', id, status}
-- Prelude: limits TERMINAL now_ms bad valid_name whole opt_whole need_name
-- Prelude: keys_tag check_prefix check_keys need_type need_types publish
check_keys()
need_types({KEYS[1], 'list', KEYS[2], 'list', KEYS[3], 'list', KEYS[4], 'list', KEYS[5], 'list'})
local rec = ARGV[1]
if type(rec) ~= 'string' or #rec == 0 or #rec > 65536 then bad('dead_requeue: record must be 1..65536 bytes') end
local queue = need_name(ARGV[2], 'dead_requeue: queue')
check_prefix(ARGV[3], 'events channel')
local tpre = check_prefix(ARGV[4], 'task key')
local xpre = check_prefix(ARGV[5], 'side key')
-- The record as deadletter writes it: a flat map of strings, whole
-- numbers and a bin (Redis's cmsgpack reads no bin, so it is read here).
-- Returns the map, or nil when the bytes are anything else.
local function be(s, i, n)
  local v = 0
  for j = i, i + n - 1 do v = v * 256 + string.byte(s, j) end
  return v
end
local function read_value(s, i)
  local b = string.byte(s, i)
  if not b then return nil end
  if b <= 0x7f then return b, i + 1 end
  if b >= 0xa0 and b <= 0xbf then return string.sub(s, i + 1, i + b - 0xa0), i + 1 + b - 0xa0 end
  local width = ({[0xcc] = 1, [0xcd] = 2, [0xce] = 4, [0xcf] = 8})[b]
  if width then
    if i + width > #s then return nil end
    return be(s, i + 1, width), i + 1 + width
  end
  width = ({[0xd9] = 1, [0xda] = 2, [0xdb] = 4, [0xc4] = 1, [0xc5] = 2, [0xc6] = 4})[b]
  if not width or i + width > #s then return nil end
  local n = be(s, i + 1, width)
  local from = i + 1 + width
  if from + n - 1 > #s then return nil end
  return string.sub(s, from, from + n - 1), from + n
end
local function read_record(s)
  local b = string.byte(s, 1)
  local n, i
  if b >= 0x80 and b <= 0x8f then n, i = b - 0x80, 2
  elseif b == 0xde and #s >= 3 then n, i = be(s, 2, 2), 4
  else return nil end
  local d = {}
  for _ = 1, n do
    local k, v
    k, i = read_value(s, i)
    if type(k) ~= 'string' then return nil end
    v, i = read_value(s, i)
    if v == nil then return nil end
    d[k] = v
  end
  if i ~= #s + 1 then return nil end
  return d
end

local d = read_record(rec)
if not d then return {'bad', '', 'the record does not decode'} end
if d.queue ~= queue then return {'bad', '', 'the record names another queue'} end
local id = d.id
if not valid_name(id) then return {'bad', '', 'the record has no task id'} end
local t = tpre .. id
local h = redis.pcall('HMGET', t, 's', 'n', 'xs', 'to', 'mr', 'rt', 'bo')
if h.err then return {'bad', id, 'the task key is not a hash'} end
if not h[1] then return {'notask', id} end
if not TERMINAL[h[1]] and h[1] ~= 'pending' and h[1] ~= 'running' then
  return {'bad', id, 'the task hash has no valid status'}
end
if not valid_name(h[2]) or not opt_whole(h[4], 1, MAX_TIMEOUT_MS, 1) or not opt_whole(h[5], 0, 1000, 0) or
   not opt_whole(h[6], 1, MAX_TTL_S, 1) or not opt_whole(h[7], 0, 86400000, 0) then
  return {'bad', id, 'the task hash does not validate'}
end
if h[1] ~= 'failed' and h[1] ~= 'timeout' and h[1] ~= 'cancelled' then return {'state', id, h[1]} end
if redis.call('LREM', KEYS[1], 1, rec) == 0 then return {'gone'} end
local now = now_ms()
redis.call('HDEL', t, 'e', 'r', 'ec', 'em', 'ed', 'et', 'p', 'pm', 'cr', 'ry', 'w', 'b', 'dl', 'wt', 'rs')
redis.call('HSET', t, 's', 'pending', 'a', '0')
redis.call('PERSIST', t)
if h[3] then
  redis.pcall('HDEL', xpre .. id, 'r', 'em', 'ed', 'et', 'pm')
  redis.call('PERSIST', xpre .. id)
end
local done = {failed = KEYS[3], timeout = KEYS[4], cancelled = KEYS[5]}
redis.call('LREM', done[h[1]], 1, id)
redis.call('LPUSH', KEYS[2], id)
publish(ARGV[3], {at = now, t = {{id = id, s = 'pending', n = h[2]}}})
return {'ok', id}
