-- requeue: a worker shutting down hands back a task it claimed but will
-- not finish. Fenced like finish, and like it keeps the entry of a run of
-- this worker under another attempt. The task goes back to the front of its
-- queue (the right end, where workers take from) and the attempt is not
-- counted, since no delivery failed.
-- KEYS: 1 queue, 2 processing, 3 slots (its concurrency lease is given back)
-- ARGV: 1 id, 2 worker id, 3 attempt, 4 events channel, 5 task key prefix
-- Reply: {'requeued'} | {'stale', status}
-- Prelude: limits now_ms fmt bad valid_name whole need_name need_whole
-- Prelude: keys_tag check_prefix check_keys need_type need_types publish
check_keys()
need_types({KEYS[1], 'list', KEYS[2], 'list', KEYS[3], 'zset'})
local id = need_name(ARGV[1], 'requeue: id')
local wid = need_name(ARGV[2], 'requeue: worker id')
local att = need_whole(ARGV[3], 1, MAX_ATTEMPT, 'requeue: attempt')
check_prefix(ARGV[4], 'events channel')
local t = check_prefix(ARGV[5], 'task key') .. id
local h = redis.pcall('HMGET', t, 's', 'w', 'a')
if h.err then h = {'invalid'} end
-- Stale: the entry goes, except under another attempt of this worker (as
-- in finish: that run's entry, found later by the backstop or recovery).
local mine = h[1] == 'running' and h[2] == wid
if not mine or h[3] == fmt(att) then redis.call('LREM', KEYS[2], 1, id) end
if not mine or h[3] ~= fmt(att) then return {'stale', h[1] or ''} end
redis.call('HSET', t, 's', 'pending', 'a', att - 1)
redis.call('HDEL', t, 'w', 'b', 'dl')
redis.call('RPUSH', KEYS[1], id)
redis.call('ZREM', KEYS[3], id)
publish(ARGV[4], {at = now_ms(), t = {{id = id, s = 'pending', requeued = true}}})
return {'requeued'}
