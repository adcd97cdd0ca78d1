-- recover: deliver again what a dead worker held. One call takes 1..100
-- entries of the dead worker's processing list of one queue (as the
-- broker read them with LRANGE); LREM gates each one, so when several
-- brokers race on the same list each entry is recovered exactly once.
-- For each task that ran under the dead worker:
--   cancel requested (`cr`)          -> ends cancelled
--   past its deadline plus the grace -> ends timeout
--   delivered max times already      -> ends failed, WORKER_LOST
--   else                             -> pending, front of its queue
-- A pending task whose id was only in the list (the worker moved it and
-- died before its claim) goes back on its queue unless it waits in the
-- delayed set. An entry that is not a valid id, or has no task hash, is
-- dead-lettered.
-- KEYS: 1 processing (the dead worker's), 2 queue, 3 dead list, 4 stats,
--       5 delayed, 6 done:failed, 7 done:cancelled, 8 done:timeout, 9 slots
--       (the dead worker's concurrency leases are given back)
-- ARGV: 1 dead worker id, 2 max deliveries, 3 grace (ms), 4 default result
--       ttl (s), 5 history '1'/'0', 6 history cap, 7 events channel,
--       8 task key prefix, 9 side key prefix, 10 waiter channel prefix,
--       11 queue name, 12 n, then n (1..100) entries, then 0..300 end
--       signature records (prelude's end_sigs: id, a, b, status,
--       "kid:hex"), the broker's signatures of the ends it expects, each
--       stored with its end when the hash still holds that a and b
-- Reply: one entry per entry, in order:
--        {'gone'} another broker took it | {'requeued', attempt}
--        | {'failed'|'cancelled'|'timeout', attempt} | {'dropped', status}
--        | {'dead', code}
-- Prelude: limits TERMINAL now_ms fmt fmtc bad valid_name whole opt_whole
-- Prelude: need_name need_whole keys_tag check_prefix check_keys need_type
-- Prelude: need_types side_hash publish end_sig end_task push_done
-- Prelude: keep_dead
check_keys()
need_types({KEYS[1], 'list', KEYS[2], 'list', KEYS[3], 'list', KEYS[4], 'hash', KEYS[5], 'zset', KEYS[6], 'list', KEYS[7], 'list', KEYS[8], 'list', KEYS[9], 'zset'})
local wid = need_name(ARGV[1], 'recover: worker id')
local most = need_whole(ARGV[2], 1, MAX_ATTEMPT, 'recover: max deliveries')
local grace = need_whole(ARGV[3], 0, 86400000, 'recover: grace')
local defttl = need_whole(ARGV[4], 1, MAX_TTL_S, 'recover: default result ttl')
if ARGV[5] ~= '1' and ARGV[5] ~= '0' then bad('recover: history must be 1 or 0') end
local cap = need_whole(ARGV[6], 1, 10000000, 'recover: history cap')
local tpre = check_prefix(ARGV[8], 'task key')
local xpre = check_prefix(ARGV[9], 'side key')
local wpre = check_prefix(ARGV[10], 'waiter channel')
check_prefix(ARGV[7], 'events channel')
local queue = need_name(ARGV[11], 'recover: queue')
local n = need_whole(ARGV[12], 1, 100, 'recover: n')
if #ARGV < 12 + n or (#ARGV - 12 - n) % 5 ~= 0 or #ARGV > 12 + n + 1500 then
  bad('recover: expected n entries, then 0..300 signature records of 5')
end
for j = 1, n do
  if #ARGV[12 + j] > 536870912 then bad('recover: an entry is over 512 MiB') end
end
local sigs = end_sigs(13 + n, (#ARGV - 12 - n) / 5, 'recover')
local now = now_ms()
local hist = ARGV[5] == '1'
local DONE = {failed = KEYS[6], cancelled = KEYS[7], timeout = KEYS[8]}
local out, pushes, counts, ev = {}, {}, {}, {}
for j = 1, n do
  local entry = ARGV[12 + j]
  if redis.call('LREM', KEYS[1], 1, entry) == 0 then
    out[j] = {'gone'}
  elseif not valid_name(entry) then
    keep_dead(KEYS[3], KEYS[4], now, 'BAD_ID', 'not a valid task id', wid, queue, entry)
    out[j] = {'dead', 'BAD_ID'}
  else
    local id = entry
    local t = tpre .. id
    local h = redis.pcall('HMGET', t, 's', 'w', 'a', 'cr', 'dl', 'rt', 'wt', 'xs', 'b')
    if h.err then h = {'invalid'} end
    local a = opt_whole(h[3], 0, MAX_ATTEMPT, 0)
    local dl = opt_whole(h[5], 0, MAX_MS, 0)
    if not h[1] then
      keep_dead(KEYS[3], KEYS[4], now, 'NO_TASK_RECORD', 'no task hash for the id', wid, queue, entry)
      out[j] = {'dead', 'NO_TASK_RECORD'}
    elseif h[1] == 'pending' then
      if redis.call('ZSCORE', KEYS[5], id) then
        out[j] = {'dropped', 'pending'}
      else
        redis.call('RPUSH', KEYS[2], id)
        out[j] = {'requeued', a or 0}
      end
    elseif h[1] ~= 'running' or h[2] ~= wid then
      out[j] = {'dropped', h[1]}
    else
      redis.call('ZREM', KEYS[9], id)
      local final, code, msg
      if h[4] then
        final, code, msg = 'cancelled', 'CANCELLED', 'cancelled while its worker died'
      elseif dl and dl > 0 and now > dl + grace then
        final, code, msg = 'timeout', 'TIMEOUT', 'exceeded its timeout while its worker died'
      elseif not a or a >= most then
        final, code, msg = 'failed', 'WORKER_LOST', 'its worker died on the last delivery'
      end
      if final then
        local ttl = opt_whole(h[6], 1, MAX_TTL_S, defttl) or defttl
        if not hist and ttl > 60 then ttl = 60 end
        local fields = {'ec', code, 'em', msg}
        end_sig(sigs, t, xpre .. id, h[8] ~= false, id, h[3], h[9], final, fields)
        end_task(t, xpre .. id, id, final, now, fields, {}, h[8] ~= false, ttl,
                 hist and DONE[final] or nil, pushes)
        counts[final] = (counts[final] or 0) + 1
        if h[7] then redis.call('SPUBLISH', wpre .. id, cjson.encode({id = id, s = final, at = now})) end
        ev[#ev + 1] = {id = id, s = final, ec = code}
        out[j] = {final, a or 0}
      else
        redis.call('HSET', t, 's', 'pending')
        redis.call('HDEL', t, 'w', 'b', 'dl')
        redis.call('RPUSH', KEYS[2], id)
        counts.redelivered = (counts.redelivered or 0) + 1
        ev[#ev + 1] = {id = id, s = 'pending', redelivered = true}
        out[j] = {'requeued', a}
      end
    end
  end
end
push_done(pushes, cap, tpre, xpre)
for k, c in pairs(counts) do redis.call('HINCRBY', KEYS[4], k, c) end
if #ev > 0 then publish(ARGV[7], {at = now, t = ev}) end
return out
