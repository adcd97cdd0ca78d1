-- promote: move due ids from the delayed set onto the back of the queue,
-- at most n per call; the broker calls again while a call moved n.
-- An entry that is not a valid id is left in place and reported, for the
-- broker to dead-letter (deadletter.lua with the delayed set as source).
-- KEYS: 1 delayed, 2 queue
-- ARGV: 1 n (1..100)
-- Reply: {moved, {bad entries}, next_due_ms or -1}
-- Prelude: now_ms fmt bad valid_name whole need_whole keys_tag check_keys
-- Prelude: need_type need_types
check_keys()
need_types({KEYS[1], 'zset', KEYS[2], 'list'})
local n = need_whole(ARGV[1], 1, 100, 'promote: n')
local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, n)
local ids, badl = {}, {}
for i = 1, #due do
  if valid_name(due[i]) then ids[#ids + 1] = due[i] else badl[#badl + 1] = due[i] end
end
if #ids > 0 then
  redis.call('ZREM', KEYS[1], unpack(ids))
  redis.call('LPUSH', KEYS[2], unpack(ids))
end
local nxt = -1
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if first[2] then nxt = tonumber(first[2]) end
return {#ids, badl, nxt}
