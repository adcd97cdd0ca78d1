-- claim: after BLMOVE moved ids from the queue into the worker's
-- processing list, mark their tasks running (prelude's claim_one); one
-- call claims 1..64 ids, each checked on its own.
-- KEYS: 1 queue, 2 processing
-- ARGV: 1 worker id, 2 default timeout (ms), 3 events channel, 4 task key
--       prefix, 5 side key prefix, then 1..64 ids
-- Reply: one claim_one entry per id, in order
check_keys()
need_types({KEYS[1], 'list', KEYS[2], 'list'})
local wid = need_name(ARGV[1], 'claim: worker id')
local deftmo = need_whole(ARGV[2], 1, MAX_TIMEOUT_MS, 'claim: default timeout')
local tpre = check_prefix(ARGV[4], 'task key')
local xpre = check_prefix(ARGV[5], 'side key')
local n = #ARGV - 5
if n < 1 or n > MAX_TASKS then bad('claim: expected 1..64 ids') end
local now = now_ms()
local out, started = {}, {}
for j = 1, n do
  out[j] = claim_one(ARGV[5 + j], now, wid, deftmo, tpre, xpre, KEYS[2], started)
end
if #started > 0 then publish(ARGV[3], {at = now, s = 'running', w = wid, t = started}) end
return out
