-- claim: after BLMOVE moved ids from the queue into the worker's
-- processing list, mark their tasks running (prelude's claim_one); one
-- call claims 1..64 ids, each checked on its own. An id the queue's limits
-- (prelude's gate) do not allow now goes back to the front of the queue.
-- KEYS: 1 queue, 2 processing, 3 limit, 4 bucket, 5 slots
-- ARGV: 1 worker id, 2 default timeout (ms), 3 events channel, 4 task key
--       prefix, 5 side key prefix, then 1..64 ids
-- Reply: one claim_one entry per id, in order, or {'limited', id,
--        wait_ms} for an id handed back
-- The limit and bucket are read before anything is written, and the
-- slots' first use is the call's first write (gate_open): only the two
-- lists need a type check.
-- Prelude: limits TERMINAL now_ms fmt fmtc bad valid_name whole opt_whole
-- Prelude: need_name need_whole keys_tag check_prefix check_keys need_type
-- Prelude: need_types publish gate claim_one

-- Held in locals: used per task (a local of the script body, not of the
-- prelude, whose every captured local costs each call).
local rcall = redis.call
check_keys()
need_types({KEYS[1], 'list', KEYS[2], 'list'})
local wid = need_name(ARGV[1], 'claim: worker id')
local deftmo = need_whole(ARGV[2], 1, MAX_TIMEOUT_MS, 'claim: default timeout')
local tpre = check_prefix(ARGV[4], 'task key')
local xpre = check_prefix(ARGV[5], 'side key')
check_prefix(ARGV[3], 'events channel')
local n = #ARGV - 5
if n < 1 or n > MAX_TASKS then bad('claim: expected 1..64 ids') end
local now = now_ms()
local out, started, names = {}, {}, {}
local gate = gate_open(KEYS[3], KEYS[4], KEYS[5], now)
for j = 1, n do
  local id, wait = ARGV[5 + j], gate.on and gate_wait(gate) or 0
  if wait > 0 and valid_name(id) and rcall('LREM', KEYS[2], 1, id) == 1 then
    rcall('RPUSH', KEYS[1], id)
    out[j] = {'limited', id, wait}
  else
    out[j] = claim_one(id, now, wid, deftmo, tpre, xpre, KEYS[2], started, gate, names)
  end
end
gate_close(gate)
if #started > 0 then
  publish(ARGV[3], {at = now, s = 'running', w = wid, t = started})
end
return out
