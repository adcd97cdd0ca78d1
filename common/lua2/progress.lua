-- progress: record a running task's progress, fenced like finish, and
-- publish it. Workers coalesce calls to about 10 per second per task.
-- KEYS: 1 task
-- ARGV: 1 id, 2 worker id, 3 attempt, 4 progress (0..100), 5 message
--       ('' leaves it), 6 events channel, 7 side key prefix
-- Reply: 1 written, 0 fenced off
-- Prelude: limits now_ms fmt bad valid_name whole need_name need_whole
-- Prelude: keys_tag check_prefix check_keys need_type need_types side_hash
-- Prelude: publish split_big OUTCOME_FIELDS valid_utf8
check_keys()
need_types({KEYS[1], 'hash'})
local id = need_name(ARGV[1], 'progress: id')
local wid = need_name(ARGV[2], 'progress: worker id')
local att = need_whole(ARGV[3], 1, MAX_ATTEMPT, 'progress: attempt')
local p = need_whole(ARGV[4], 0, 100, 'progress: progress')
local msg = ARGV[5] or ''
if #msg > OUTCOME_FIELDS.pm then bad('progress: message is too long') end
if not valid_utf8(msg) then bad('progress: message is not UTF-8') end
local xpre = check_prefix(ARGV[7], 'side key')
check_prefix(ARGV[6], 'events channel')
local h = redis.call('HMGET', KEYS[1], 's', 'w', 'a')
if h[1] ~= 'running' or h[2] ~= wid or h[3] ~= fmt(att) then return 0 end
local inline, side = {'p', fmt(p)}, {}
if msg ~= '' then split_big('pm', msg, inline, side) end
if #side > 0 then
  redis.call('HSET', side_hash(xpre .. id), unpack(side))
  inline[#inline + 1] = 'xs'; inline[#inline + 1] = '1'
end
redis.call('HSET', KEYS[1], unpack(inline))
local e = {id = id, s = 'running', p = p}
if msg ~= '' then e.pm = msg end
publish(ARGV[6], {at = now_ms(), t = {e}})
return 1
