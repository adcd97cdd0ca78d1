-- purge: every pending task of the queue ends cancelled, in bounded steps:
-- one call takes at most n ids, oldest first, from the queue and then
-- from the delayed set; the caller calls again while `left` is not 0.
-- A task that is not pending is only dropped from the list (it ran or
-- ended elsewhere); an entry that is not a valid id is dead-lettered.
-- KEYS: 1 queue, 2 delayed, 3 stats, 4 done:cancelled, 5 dead list
-- ARGV: 1 n (1..100), 2 default result ttl (s), 3 history '1'/'0',
--       4 history cap, 5 events channel, 6 task key prefix, 7 side key
--       prefix, 8 waiter channel prefix, 9 queue name, then 0..200 end
--       signature records (prelude's end_sigs: id, a, b, 'cancelled',
--       "kid:hex"), the producer's signatures of the ends it may write,
--       each stored with its end when the hash still holds that a and b
-- Reply: {cancelled, dropped, left (entries still in the queue and the
--        delayed set)}
-- Prelude: limits TERMINAL now_ms fmt fmtc bad valid_name whole opt_whole
-- Prelude: need_name need_whole keys_tag check_prefix check_keys need_type
-- Prelude: need_types side_hash publish end_sig end_task push_done
-- Prelude: keep_dead
check_keys()
need_types({KEYS[1], 'list', KEYS[2], 'zset', KEYS[3], 'hash', KEYS[4], 'list', KEYS[5], 'list'})
local n = need_whole(ARGV[1], 1, 100, 'purge: n')
local defttl = need_whole(ARGV[2], 1, MAX_TTL_S, 'purge: default result ttl')
if ARGV[3] ~= '1' and ARGV[3] ~= '0' then bad('purge: history must be 1 or 0') end
local cap = need_whole(ARGV[4], 1, 10000000, 'purge: history cap')
local tpre = check_prefix(ARGV[6], 'task key')
local xpre = check_prefix(ARGV[7], 'side key')
local wpre = check_prefix(ARGV[8], 'waiter channel')
check_prefix(ARGV[5], 'events channel')
local queue = need_name(ARGV[9], 'purge: queue')
if (#ARGV - 9) % 5 ~= 0 or #ARGV > 1009 then bad('purge: expected 9 arguments, then 0..200 signature records of 5') end
local sigs = end_sigs(10, (#ARGV - 9) / 5, 'purge')
local now = now_ms()
local hist = ARGV[3] == '1'
local ids = redis.call('RPOP', KEYS[1], n) or {}
if #ids < n then
  local more = redis.call('ZRANGE', KEYS[2], 0, n - #ids - 1)
  if #more > 0 then redis.call('ZREM', KEYS[2], unpack(more)) end
  for i = 1, #more do ids[#ids + 1] = more[i] end
end
local pushes, ev, cancelled, dropped = {}, {}, 0, 0
for i = 1, #ids do
  local id = ids[i]
  if not valid_name(id) then
    keep_dead(KEYS[5], KEYS[3], now, 'BAD_ID', 'not a valid task id (found by purge)', 'purge', queue, id)
    dropped = dropped + 1
  else
    local t = tpre .. id
    local h = redis.pcall('HMGET', t, 's', 'rt', 'wt', 'xs', 'a', 'b')
    if h.err or h[1] ~= 'pending' then
      dropped = dropped + 1
    else
      local ttl = opt_whole(h[2], 1, MAX_TTL_S, defttl) or defttl
      if not hist and ttl > 60 then ttl = 60 end
      local fields = {'ec', 'CANCELLED', 'em', 'purged with its queue'}
      end_sig(sigs, t, xpre .. id, h[4] ~= false, id, h[5], h[6], 'cancelled', fields)
      end_task(t, xpre .. id, id, 'cancelled', now, fields, {}, h[4] ~= false, ttl, hist and KEYS[4] or nil, pushes)
      if h[3] then redis.call('SPUBLISH', wpre .. id, cjson.encode({id = id, s = 'cancelled', at = now})) end
      ev[#ev + 1] = {id = id, s = 'cancelled', ec = 'CANCELLED'}
      cancelled = cancelled + 1
    end
  end
end
push_done(pushes, cap, tpre, xpre)
if cancelled > 0 then
  redis.call('HINCRBY', KEYS[3], 'cancelled', cancelled)
  publish(ARGV[5], {at = now, t = ev})
end
return {cancelled, dropped, redis.call('LLEN', KEYS[1]) + redis.call('ZCARD', KEYS[2])}
