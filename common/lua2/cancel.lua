-- cancel: a pending task ends cancelled at once (a worker that later
-- takes its id drops it); a running task gets `cr` and a message on the
-- cancel channel, and its worker ends it.
-- KEYS: 1 task, 2 delayed, 3 stats, 4 done:cancelled
-- ARGV: 1 id, 2 default result ttl (s), 3 history '1'/'0', 4 history cap,
--       5 events channel, 6 waiter channel prefix, 7 cancel channel,
--       8 task key prefix, 9 side key prefix, then 0 or 1 end signature
--       records (prelude's end_sigs: id, a, b, 'cancelled', "kid:hex"),
--       the producer's signature of the end of a pending task, stored
--       with it when the hash still holds that a and b
-- Reply: {'cancelled'} | {'requested'} | {'state', status} | {'notfound'}
-- Prelude: limits TERMINAL now_ms fmt fmtc bad valid_name whole opt_whole
-- Prelude: need_name need_whole keys_tag check_prefix check_keys need_type
-- Prelude: need_types side_hash publish end_sig end_task push_done
check_keys()
need_types({KEYS[1], 'hash', KEYS[2], 'zset', KEYS[3], 'hash', KEYS[4], 'list'})
local id = need_name(ARGV[1], 'cancel: id')
local defttl = need_whole(ARGV[2], 1, MAX_TTL_S, 'cancel: default result ttl')
if ARGV[3] ~= '1' and ARGV[3] ~= '0' then bad('cancel: history must be 1 or 0') end
local cap = need_whole(ARGV[4], 1, 10000000, 'cancel: history cap')
local wpre = check_prefix(ARGV[6], 'waiter channel')
local tpre = check_prefix(ARGV[8], 'task key')
local xpre = check_prefix(ARGV[9], 'side key')
check_prefix(ARGV[5], 'events channel')
if KEYS[1] ~= tpre .. id then bad('cancel: KEYS[1] is not the task of the id') end
if #ARGV ~= 9 and #ARGV ~= 14 then bad('cancel: expected 9 arguments, or 14 with a signature') end
local sigs = end_sigs(10, (#ARGV - 9) / 5, 'cancel')
local h = redis.call('HMGET', KEYS[1], 's', 'rt', 'wt', 'xs', 'cr', 'a', 'b')
if not h[1] then return {'notfound'} end
local now = now_ms()
if h[1] == 'running' then
  if not h[5] then redis.call('HSET', KEYS[1], 'cr', now) end
  redis.call('PUBLISH', ARGV[7], id)
  publish(ARGV[5], {at = now, t = {{id = id, s = 'running', cr = now}}})
  return {'requested'}
end
if h[1] ~= 'pending' then return {'state', h[1]} end
redis.call('ZREM', KEYS[2], id)
local ttl = opt_whole(h[2], 1, MAX_TTL_S, defttl) or defttl
local hist = ARGV[3] == '1'
if not hist and ttl > 60 then ttl = 60 end
local pushes = {}
local fields = {'ec', 'CANCELLED', 'em', 'cancelled before it ran'}
end_sig(sigs, KEYS[1], xpre .. id, h[4] ~= false, id, h[6], h[7], 'cancelled', fields)
end_task(KEYS[1], xpre .. id, id, 'cancelled', now, fields, {}, h[4] ~= false, ttl,
         hist and KEYS[4] or nil, pushes)
push_done(pushes, cap, tpre, xpre)
redis.call('HINCRBY', KEYS[3], 'cancelled', 1)
if h[3] then redis.call('SPUBLISH', wpre .. id, cjson.encode({id = id, s = 'cancelled', at = now})) end
publish(ARGV[5], {at = now, t = {{id = id, s = 'cancelled', ec = 'CANCELLED'}}})
return {'cancelled'}
