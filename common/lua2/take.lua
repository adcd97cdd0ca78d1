-- take: a worker's non-blocking pop round and its claim in one step: up to
-- n moves of an id from the right of the queue to the left of the
-- worker's processing list (LMOVE, as BLMOVE would), each claimed at once
-- (prelude's claim_one). A worker that waits for work uses BLMOVE and
-- claim.lua instead: a script cannot block. Moves stop when the queue is
-- empty, the args returned reach the reply budget, or the queue's limits
-- (prelude's gate) allow no more claims now.
-- KEYS: 1 queue, 2 processing, 3 limit, 4 bucket, 5 slots
-- ARGV: 1 worker id, 2 default timeout (ms), 3 events channel, 4 task key
--       prefix, 5 side key prefix, 6 moves (1..64), 7 reply budget (bytes)
-- Reply: one entry per move made, in order (claim_one's entries); fewer
--        entries than moves when the queue ran out or the budget was
--        reached; then {'limited', wait_ms} when a limit stopped the moves
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
local wid = need_name(ARGV[1], 'take: worker id')
local deftmo = need_whole(ARGV[2], 1, MAX_TIMEOUT_MS, 'take: default timeout')
local tpre = check_prefix(ARGV[4], 'task key')
local xpre = check_prefix(ARGV[5], 'side key')
check_prefix(ARGV[3], 'events channel')
local n = need_whole(ARGV[6], 1, MAX_TASKS, 'take: moves')
local budget = need_whole(ARGV[7], 1, 1073741824, 'take: reply budget')
local now = now_ms()
local out, started, names, bytes = {}, {}, {}, 0
local kq, kp = KEYS[1], KEYS[2]
local gate = gate_open(KEYS[3], KEYS[4], KEYS[5], now)
for j = 1, n do
  if bytes >= budget then break end
  if gate.on then
    local wait = gate_wait(gate)
    if wait > 0 then
      out[#out + 1] = {'limited', wait}
      break
    end
  end
  local id = rcall('LMOVE', kq, kp, 'RIGHT', 'LEFT')
  if not id then break end
  local e = claim_one(id, now, wid, deftmo, tpre, xpre, kp, started, gate, names)
  if e[7] then bytes = bytes + #e[7] end
  out[#out + 1] = e
end
gate_close(gate)
if #started > 0 then
  publish(ARGV[3], {at = now, s = 'running', w = wid, t = started})
end
return out
