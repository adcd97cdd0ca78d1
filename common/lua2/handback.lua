-- handback: a worker run with --unknown-task requeue has no handler for a
-- task's name and hands it back for another worker: the id leaves the
-- worker's processing list for the delayed set, due after the delay, the
-- task becomes pending again (the attempt is not counted) and its
-- handbacks `hb` go up by one. A task handed back the most times already
-- is left where it is ('exhausted'), as is one without a hash
-- ('missing'): the worker then dead-letters it as UNKNOWN_TASK. A task
-- that has ended or runs under another worker is only dropped from the
-- list; one that runs under this worker with another attempt keeps its
-- entry.
-- KEYS: 1 processing, 2 delayed, 3 slots (its concurrency lease is given back)
-- ARGV: 1 id, 2 worker id, 3 attempt, 4 delay (ms), 5 most handbacks,
--       6 events channel, 7 task key prefix
-- Reply: {'handed_back', handbacks, due_ms} | {'exhausted', handbacks}
--        | {'missing'} | {'dropped', status} | {'gone'}
-- Prelude: limits now_ms fmt bad valid_name whole opt_whole need_name
-- Prelude: need_whole keys_tag check_prefix check_keys need_type need_types
-- Prelude: publish
check_keys()
need_types({KEYS[1], 'list', KEYS[2], 'zset', KEYS[3], 'zset'})
local id = need_name(ARGV[1], 'handback: id')
local wid = need_name(ARGV[2], 'handback: worker id')
local att = need_whole(ARGV[3], 1, MAX_ATTEMPT, 'handback: attempt')
local delay = need_whole(ARGV[4], 0, 86400000, 'handback: delay')
local most = need_whole(ARGV[5], 0, 1000000, 'handback: most handbacks')
check_prefix(ARGV[6], 'events channel')
local t = check_prefix(ARGV[7], 'task key') .. id
local h = redis.pcall('HMGET', t, 's', 'w', 'a', 'hb')
if h.err then h = {'invalid'} end
if not h[1] then return {'missing'} end
if h[1] ~= 'running' or h[2] ~= wid or h[3] ~= fmt(att) then
  -- Under another attempt of this worker the entry stays (as in finish).
  if h[1] == 'running' and h[2] == wid then return {'dropped', h[1]} end
  if redis.call('LREM', KEYS[1], 1, id) == 0 then return {'gone'} end
  return {'dropped', h[1]}
end
local hb = opt_whole(h[4], 0, 1000000, 0) or most
if hb >= most then return {'exhausted', hb} end
if redis.call('LREM', KEYS[1], 1, id) == 0 then return {'gone'} end
local now = now_ms()
local due = now + delay
redis.call('HSET', t, 's', 'pending', 'a', att - 1, 'hb', hb + 1)
redis.call('HDEL', t, 'w', 'b', 'dl')
redis.call('ZADD', KEYS[2], due, id)
redis.call('ZREM', KEYS[3], id)
publish(ARGV[6], {at = now, t = {{id = id, s = 'pending', hb = hb + 1}}})
return {'handed_back', hb + 1, due}
