-- backstop: the timeout backstop for a live worker. A worker enforces its
-- own timeouts; this catches a run it could not stop (a wedged handler
-- thread, a kill that did not land). One call reads up to n entries of the
-- worker's processing list of one queue, from an offset (the broker walks
-- the list over several calls and ticks), and ends `timeout` each task that
-- runs under that worker past its deadline plus the grace. A run whose
-- deadline `dl` is missing or is not a whole number of ms in range (a
-- rewritten hash: 'nan', 'inf', '', text) counts as overdue: a deadline
-- that cannot be read can never pass, and the run would stay `running`
-- for ever. It ends as an overdue run does, with the same fields, so the
-- broker's signature of that end fits it. An ended id leaves the list and
-- gives back its concurrency lease; the worker's late finish is then
-- stale. Every other entry is left alone:
-- a task moved but not yet claimed, a run of another worker, an entry that
-- is not a valid id (its worker dead-letters it). The broker publishes the
-- ended ids on {ns}:cancel itself, so the worker stops the handler (that
-- channel is not under this queue's tag).
-- KEYS: 1 processing (the live worker's), 2 stats, 3 done:timeout, 4 slots
-- ARGV: 1 worker id, 2 grace (ms), 3 default result ttl (s), 4 history
--       '1'/'0', 5 history cap, 6 events channel, 7 task key prefix, 8 side
--       key prefix, 9 waiter channel prefix, 10 offset (0..10000000),
--       11 n (1..100), then 0..100 end signature records (prelude's
--       end_sigs: id, a, b, 'timeout', "kid:hex"), the broker's
--       signatures of the ends it expects, each stored with its end when
--       the hash still holds that a and b
-- Reply: {read, {ended ids}}: read < n means the list ended here; the
--        next call's offset is offset + read - #ended
-- Prelude: limits TERMINAL now_ms fmt fmtc bad valid_name whole opt_whole
-- Prelude: need_name need_whole keys_tag check_prefix check_keys need_type
-- Prelude: need_types side_hash publish end_sig end_task push_done
check_keys()
need_types({KEYS[1], 'list', KEYS[2], 'hash', KEYS[3], 'list', KEYS[4], 'zset'})
local wid = need_name(ARGV[1], 'backstop: worker id')
local grace = need_whole(ARGV[2], 0, 86400000, 'backstop: grace')
local defttl = need_whole(ARGV[3], 1, MAX_TTL_S, 'backstop: default result ttl')
if ARGV[4] ~= '1' and ARGV[4] ~= '0' then bad('backstop: history must be 1 or 0') end
local cap = need_whole(ARGV[5], 1, 10000000, 'backstop: history cap')
check_prefix(ARGV[6], 'events channel')
local tpre = check_prefix(ARGV[7], 'task key')
local xpre = check_prefix(ARGV[8], 'side key')
local wpre = check_prefix(ARGV[9], 'waiter channel')
local off = need_whole(ARGV[10], 0, 10000000, 'backstop: offset')
local n = need_whole(ARGV[11], 1, 100, 'backstop: n')
if #ARGV < 11 or (#ARGV - 11) % 5 ~= 0 or #ARGV > 511 then
  bad('backstop: expected 11 arguments, then 0..100 signature records of 5')
end
local sigs = end_sigs(12, (#ARGV - 11) / 5, 'backstop')
local now = now_ms()
local hist = ARGV[4] == '1'
local entries = redis.call('LRANGE', KEYS[1], off, off + n - 1)
local ended, pushes, ev = {}, {}, {}
for i = 1, #entries do
  local id = entries[i]
  if valid_name(id) then
    local t = tpre .. id
    local h = redis.pcall('HMGET', t, 's', 'w', 'dl', 'rt', 'wt', 'xs', 'a', 'b')
    local mine = not h.err and h[1] == 'running' and h[2] == wid
    -- whole() gives nil for a missing field too: claim writes `dl` with
    -- `s` running, so a run without one was rewritten.
    local dl = mine and whole(h[3], 1, MAX_MS)
    if mine and (not dl or now > dl + grace) then
      redis.call('LREM', KEYS[1], 1, id)
      redis.call('ZREM', KEYS[4], id)
      local ttl = opt_whole(h[4], 1, MAX_TTL_S, defttl) or defttl
      if not hist and ttl > 60 then ttl = 60 end
      local fields = {'ec', 'TIMEOUT', 'em', 'exceeded its timeout; its worker did not stop it'}
      end_sig(sigs, t, xpre .. id, h[6] ~= false, id, h[7], h[8], 'timeout', fields)
      end_task(t, xpre .. id, id, 'timeout', now, fields, {}, h[6] ~= false, ttl,
               hist and KEYS[3] or nil, pushes)
      if h[5] then redis.call('SPUBLISH', wpre .. id, cjson.encode({id = id, s = 'timeout', at = now})) end
      ev[#ev + 1] = {id = id, s = 'timeout', ec = 'TIMEOUT'}
      ended[#ended + 1] = id
    end
  end
end
push_done(pushes, cap, tpre, xpre)
if #ended > 0 then
  redis.call('HINCRBY', KEYS[2], 'timeout', #ended)
  publish(ARGV[6], {at = now, t = ev})
end
return {#entries, ended}
