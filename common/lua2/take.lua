-- take: a worker's non-blocking pop round and its claim in one step: up to
-- n ids from the right of the queue (one RPOP), each claimed at once
-- (prelude's claim_one), then put on the left of the worker's processing
-- list in the order taken (one LPUSH): both lists end as an LMOVE per id
-- would leave them (the order BLMOVE keeps), less the ids that were not
-- pending, which are dropped. A worker that waits for work uses
-- BLMOVE and claim.lua instead: a script cannot block. Claims stop when
-- the queue is empty, the args returned reach the reply budget, or the
-- queue's limits (prelude's gate) allow no more claims now; the pop takes
-- no more ids than the limits allow, and any id popped but not reached
-- goes back to the right of the queue as it was (RPUSH).
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
-- One RPOP and one LPUSH per call instead of an LMOVE per task.
local count = n
if gate.on then count = math.min(n, gate_room(gate)) end
local ids = count > 0 and rcall('RPOP', kq, count) or {}
local moved, j = {}, 1
while j <= n do
  if bytes >= budget then break end
  if gate.on then
    local wait = gate_wait(gate)
    if wait > 0 then
      out[#out + 1] = {'limited', wait}
      break
    end
  end
  local id = ids[j]
  if not id then break end
  local e = claim_one(id, now, wid, deftmo, tpre, xpre, false, started, gate, names)
  if e[1] ~= 'skip' then moved[#moved + 1] = id end
  if e[7] then bytes = bytes + #e[7] end
  out[#out + 1] = e
  j = j + 1
end
if #moved > 0 then rcall('LPUSH', kp, unpack(moved)) end
if j <= #ids then
  local back = {}
  for k = #ids, j, -1 do back[#back + 1] = ids[k] end
  rcall('RPUSH', kq, unpack(back))
end
gate_close(gate)
if #started > 0 then
  publish(ARGV[3], {at = now, s = 'running', w = wid, t = started})
end
return out
