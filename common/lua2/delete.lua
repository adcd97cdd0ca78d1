-- delete: remove ended tasks of one terminal status from the old end of
-- their done list, at most n per call: those that ended at or before the
-- cutoff (0: all), with their side hash. The list is in the order tasks
-- ended, so the call stops at the first newer one; the caller calls again
-- while `more` is 1. Ids whose task is already gone are only dropped.
-- KEYS: 1 done:<status>
-- ARGV: 1 task key prefix, 2 side key prefix, 3 n (1..100), 4 cutoff
--       (ms since the epoch; 0 = no cutoff)
-- Reply: {deleted, dropped, more (1: stopped at n, call again)}
-- Prelude: limits TERMINAL fmt bad valid_name whole opt_whole need_whole
-- Prelude: keys_tag check_prefix check_keys need_type need_types
check_keys()
need_types({KEYS[1], 'list'})
local tpre = check_prefix(ARGV[1], 'task key')
local xpre = check_prefix(ARGV[2], 'side key')
local n = need_whole(ARGV[3], 1, 100, 'delete: n')
local cutoff = need_whole(ARGV[4], 0, MAX_MS, 'delete: cutoff')
local deleted, dropped = 0, 0
for i = 1, n do
  local id = redis.call('LINDEX', KEYS[1], -1)
  if not id then return {deleted, dropped, 0} end
  local h = valid_name(id) and redis.pcall('HMGET', tpre .. id, 's', 'e') or {}
  if h.err or not h[1] or not TERMINAL[h[1]] then
    dropped = dropped + 1 -- gone, retried (so not this list's any more) or not a task
  else
    local e = opt_whole(h[2], 0, MAX_MS, 0) or 0
    if cutoff > 0 and e > cutoff then return {deleted, dropped, 0} end
    redis.call('DEL', tpre .. id, xpre .. id)
    deleted = deleted + 1
  end
  redis.call('RPOP', KEYS[1])
end
return {deleted, dropped, 1}
