-- deadletter: take a bad entry out of where it waited (a worker's
-- processing list, or the delayed set when the broker could not promote
-- it), keep a record of it with the reason (prelude's keep_dead), and
-- fail its task where one exists and has not ended. Removing the entry
-- gates the step, so it is recorded once however many processes race.
-- A task is failed only while it is pending, or running under the worker
-- that dead-letters it: a stale duplicate of the id of a task running
-- elsewhere does not end that run.
-- KEYS: 1 dead list, 2 source (list or zset), 3 stats, 4 done:failed,
--       5 slots (a lease of the task is given back)
-- ARGV: 1 entry (bytes as they were), 2 code, 3 reason, 4 worker id,
--       5 queue name, 6 default result ttl (s), 7 history '1'/'0',
--       8 history cap, 9 events channel, 10 task key prefix, 11 side key
--       prefix, 12 waiter channel prefix, then 0 or 1 end signature
--       records (prelude's end_sigs: id, a, b, 'failed', "kid:hex"), the
--       worker's signature of the failure, stored with it when the hash
--       still holds that a and b
-- Reply: {'ok', failed_task (0/1)} | {'gone', 0} when the entry was no
--        longer there
-- Prelude: limits TERMINAL now_ms fmt fmtc bad valid_name whole opt_whole
-- Prelude: need_name need_whole keys_tag check_prefix check_keys need_type
-- Prelude: need_types side_hash publish end_sig end_task push_done
-- Prelude: split_big keep_dead
check_keys()
need_types({KEYS[1], 'list', KEYS[2], 'list|zset', KEYS[3], 'hash', KEYS[4], 'list', KEYS[5], 'zset'})
local entry = ARGV[1]
-- Any size Redis takes (proto-max-bulk-len, 512 MiB by default): a junk
-- entry of 10 MB must leave the list too; only 4096 bytes are kept.
if type(entry) ~= 'string' or #entry > 536870912 then bad('deadletter: entry over 512 MiB') end
local code = need_name(ARGV[2], 'deadletter: code')
if #ARGV[3] > 1024 then bad('deadletter: reason over 1024 bytes') end
local wid = need_name(ARGV[4], 'deadletter: worker id')
local queue = need_name(ARGV[5], 'deadletter: queue')
local defttl = need_whole(ARGV[6], 1, MAX_TTL_S, 'deadletter: default result ttl')
if ARGV[7] ~= '1' and ARGV[7] ~= '0' then bad('deadletter: history must be 1 or 0') end
local cap = need_whole(ARGV[8], 1, 10000000, 'deadletter: history cap')
local tpre = check_prefix(ARGV[10], 'task key')
local xpre = check_prefix(ARGV[11], 'side key')
local wpre = check_prefix(ARGV[12], 'waiter channel')
check_prefix(ARGV[9], 'events channel')
if #ARGV ~= 12 and #ARGV ~= 17 then bad('deadletter: expected 12 arguments, or 17 with a signature') end
local sigs = end_sigs(13, (#ARGV - 12) / 5, 'deadletter')
local kind = redis.call('TYPE', KEYS[2])['ok']
local removed = 0
if kind == 'list' then
  removed = redis.call('LREM', KEYS[2], 1, entry)
elseif kind == 'zset' then
  removed = redis.call('ZREM', KEYS[2], entry)
end
if removed == 0 then return {'gone', 0} end
local now = now_ms()
keep_dead(KEYS[1], KEYS[3], now, code, ARGV[3], wid, queue, entry)
if not valid_name(entry) then return {'ok', 0} end
redis.call('ZREM', KEYS[5], entry)
local id = entry
local t = tpre .. id
local h = redis.pcall('HMGET', t, 's', 'w', 'rt', 'wt', 'xs', 'a', 'b')
if h.err then return {'ok', 0} end
if not (h[1] == 'pending' or (h[1] == 'running' and h[2] == wid)) then return {'ok', 0} end
local ttl = opt_whole(h[3], 1, MAX_TTL_S, defttl) or defttl
local hist = ARGV[7] == '1'
if not hist and ttl > 60 then ttl = 60 end
local pushes = {}
local inline, side = {'ec', code}, {}
split_big('em', ARGV[3], inline, side)
end_sig(sigs, t, xpre .. id, h[5] ~= false, id, h[6], h[7], 'failed', inline)
end_task(t, xpre .. id, id, 'failed', now, inline, side, h[5] ~= false, ttl,
         hist and KEYS[4] or nil, pushes)
push_done(pushes, cap, tpre, xpre)
redis.call('HINCRBY', KEYS[3], 'failed', 1)
if h[4] then redis.call('SPUBLISH', wpre .. id, cjson.encode({id = id, s = 'failed', at = now})) end
publish(ARGV[9], {at = now, t = {{id = id, s = 'failed', ec = code}}})
return {'ok', 1}
