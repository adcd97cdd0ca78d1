-- finish: the worker's completion step, fenced; one call writes 1..64
-- outcomes, each task checked on its own. A task is written only while it
-- runs under this worker id and attempt; otherwise the late outcome is
-- rejected ('stale') and only the worker's own processing entry goes
-- (kept while the task runs under this worker id with another attempt).
-- A failure with retries left goes to the delayed set instead of ending:
-- backoff `bo` (1000 ms when unset) doubled per attempt, plus the
-- caller's jitter, capped at 1 h. A task that ends cancelled or timeout
-- gets the code CANCELLED or TIMEOUT whatever the caller sent.
-- The run-time histogram arrives aggregated over the call's tasks (field,
-- increment pairs), so it costs one HINCRBY per touched bucket per call.
-- KEYS: 1 processing, 2 delayed, 3 stats, 4 done:completed, 5 done:failed,
--       6 done:cancelled, 7 done:timeout, 8 run-time histogram, 9 slots
--       (the queue's concurrency leases: each task's is given back)
-- ARGV: 1 worker id, 2 default result ttl (s), 3 history '1'/'0',
--       4 history cap, 5 events channel, 6 task key prefix, 7 side key
--       prefix, 8 waiter channel prefix, 9 h, then h histogram pairs
--       (field, increment), then per task: id, attempt, final status,
--       result (msgpack; '' = none), m, then m pairs among ec, em, ed
--       (msgpack), et, p, pm (an empty value leaves the field as it is),
--       j (jitter, ms), rs (the worker's signature of the outcome,
--       "kid:hex": stored with a terminal outcome, which then holds only
--       the error fields this call sent; not with a retry)
-- Reply: one entry per task, in order:
--        {'ok', status} | {'retry', run_at_ms} | {'stale', status}
-- Only the keys this call may write are type-checked: the delayed set
-- when a task fails, the done lists of the statuses given (with history
-- on), the histogram when pairs are given. Messages are built with
-- cjson.
-- Prelude: limits TERMINAL now_ms fmt fmtc bad valid_name whole opt_whole
-- Prelude: need_name need_whole keys_tag check_prefix check_keys need_type
-- Prelude: need_types side_hash publish end_task push_done split_big
-- Prelude: OUTCOME_FIELDS valid_utf8

-- Held in locals: used per task (a local of the script body, not of the
-- prelude, whose every captured local costs each call).
local rcall, rpcall, find = redis.call, redis.pcall, string.find
check_keys()
local DONE = {completed = 4, failed = 5, cancelled = 6, timeout = 7}
local STATUSES = {'completed', 'failed', 'cancelled', 'timeout'}
local STOP = {cancelled = {'CANCELLED', 'cancelled while running'},
              timeout = {'TIMEOUT', 'exceeded its timeout'}}
local MAX_BACKOFF_MS = 3600000
local wid = need_name(ARGV[1], 'finish: worker id')
local defttl = need_whole(ARGV[2], 1, MAX_TTL_S, 'finish: default result ttl')
if ARGV[3] ~= '1' and ARGV[3] ~= '0' then bad('finish: history must be 1 or 0') end
local cap = need_whole(ARGV[4], 1, 10000000, 'finish: history cap')
local tpre = check_prefix(ARGV[6], 'task key')
local xpre = check_prefix(ARGV[7], 'side key')
local wpre = check_prefix(ARGV[8], 'waiter channel')
check_prefix(ARGV[5], 'events channel')
local h = need_whole(ARGV[9], 0, 64, 'finish: histogram pairs')
local b = 10 + 2 * h
local nargv = #ARGV
if b > nargv + 1 then bad('finish: missing histogram pairs') end
for i = 10, b - 1, 2 do
  need_name(ARGV[i], 'finish: histogram field')
  need_whole(ARGV[i + 1], 0, 1000000000000, 'finish: histogram increment')
end
local starts, ms, finals, bytes = {}, {}, {}, 0
while b <= nargv do
  if #starts == MAX_TASKS then bad('finish: more than 64 tasks') end
  if b + 4 > nargv then bad('finish: each task needs 5 values and m pairs') end
  need_name(ARGV[b], 'finish: id')
  need_whole(ARGV[b + 1], 1, MAX_ATTEMPT, 'finish: attempt')
  local final = ARGV[b + 2]
  if not DONE[final] then bad('finish: final status must be a terminal status') end
  finals[final] = true
  bytes = bytes + #ARGV[b + 3]
  local m = ARGV[b + 4] == '0' and 0 or need_whole(ARGV[b + 4], 0, 8, 'finish: m')
  if b + 4 + 2 * m > nargv then bad('finish: missing outcome pairs') end
  for i = b + 5, b + 3 + 2 * m, 2 do
    local f, v = ARGV[i], ARGV[i + 1]
    if f == 'j' then
      need_whole(v, 0, 3600000, 'finish: jitter')
    elseif not OUTCOME_FIELDS[f] then
      bad('finish: unknown outcome field')
    elseif #v > OUTCOME_FIELDS[f] then
      bad('finish: ' .. f .. ' is too long')
    elseif f == 'p' and v ~= '' then
      need_whole(v, 0, 100, 'finish: progress')
    elseif f == 'rs' and v ~= '' and not find(v, '^[A-Za-z0-9._-]+:[0-9a-f]+$') then
      bad('finish: rs must be "kid:hex"')
    elseif (f == 'ec' or f == 'pm') and not valid_utf8(v) then
      bad('finish: ' .. f .. ' is not UTF-8')
    end
    bytes = bytes + #v
  end
  starts[#starts + 1] = b
  ms[#ms + 1] = m
  b = b + 5 + 2 * m
end
if #starts == 0 then bad('finish: expected 1..64 tasks') end
if #starts > 1 and bytes > MAX_CALL_BYTES then bad('finish: more than 256 KiB of outcomes in one call') end
local hist = ARGV[3] == '1'
local types = {KEYS[1], 'list', KEYS[3], 'hash', KEYS[9], 'zset'}
if finals.failed then types[#types + 1] = KEYS[2]; types[#types + 1] = 'zset' end
if hist then
  for _, st in ipairs(STATUSES) do
    if finals[st] then types[#types + 1] = KEYS[DONE[st]]; types[#types + 1] = 'list' end
  end
end
if h > 0 then types[#types + 1] = KEYS[8]; types[#types + 1] = 'hash' end
local have = need_types(types)

local now = now_ms()
local kp = KEYS[1]
local out, pushes, counts, ev, leases = {}, {}, {}, {}, {}
for j = 1, #starts do
  b = starts[j]
  local id, att, final, result = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  local t = tpre .. id
  local f = rpcall('HMGET', t, 's', 'w', 'a', 'mr', 'bo', 'rt', 'wt', 'xs')
  if f.err then f = {'invalid'} end
  -- A stale call drops the worker's entry, except while the task runs
  -- under this worker with another attempt: the entry is then that run's
  -- (a redelivery this worker id claimed again) or the attempt was
  -- rewritten under it, and the backstop or the recovery must still find
  -- it.
  local mine = f[1] == 'running' and f[2] == wid
  if not mine or f[3] == att then rcall('LREM', kp, '1', id) end
  if not mine or f[3] ~= att then
    out[j] = {'stale', f[1] or ''}
  else
    leases[#leases + 1] = id
    local inline, side, jitter, has_em, rs, ec, pm, p = {}, {}, 0, false, nil, nil, nil, nil
    local stop = STOP[final]
    for i = b + 5, b + 3 + 2 * ms[j], 2 do
      local k, v = ARGV[i], ARGV[i + 1]
      if k == 'j' then
        jitter = tonumber(v)
      elseif k == 'rs' then
        if v ~= '' then rs = v end
      elseif v ~= '' and not (stop and k == 'ec') then
        split_big(k, v, inline, side)
        if k == 'ec' then ec = v elseif k == 'pm' then pm = v elseif k == 'p' then p = tonumber(v) end
        if k == 'em' then has_em = true end
      end
    end
    if stop then
      split_big('ec', stop[1], inline, side)
      ec = stop[1]
      if not has_em then split_big('em', stop[2], inline, side) end
    end
    if result ~= '' then split_big('r', result, inline, side) end
    if f[8] and #inline > 0 then
      -- A value written short goes to the task hash, but readers take the
      -- side hash's value first: a long one an earlier attempt left there
      -- would hide it.
      local names = {}
      for i = 1, #inline, 2 do names[#names + 1] = inline[i] end
      redis.pcall('HDEL', xpre .. id, unpack(names))
    end
    local a = tonumber(att)
    local mr = opt_whole(f[4], 0, 1000, 0) or 0
    local e
    if final == 'failed' and a <= mr then
      local base = opt_whole(f[5], 0, 86400000, 1000) or 1000
      local run_at = now + math.min(base * 2 ^ (a - 1) + jitter, MAX_BACKOFF_MS)
      if #side > 0 then
        rcall('HSET', side_hash(xpre .. id), unpack(side))
        inline[#inline + 1] = 'xs'; inline[#inline + 1] = '1'
      end
      rcall('HSET', t, 's', 'pending', 'ry', run_at, unpack(inline))
      rcall('HDEL', t, 'dl', 'rs')
      rcall('ZADD', KEYS[2], run_at, id)
      counts.retried = (counts.retried or 0) + 1
      e = {id = id, s = 'pending', ry = run_at}
      out[j] = {'retry', run_at}
    else
      local ttl = opt_whole(f[6], 1, MAX_TTL_S, defttl) or defttl
      if not hist and ttl > 60 then ttl = 60 end
      if rs then
        -- A signed failure covers the error fields as this call wrote
        -- them: none is left over from an earlier attempt.
        if final ~= 'completed' then
          rcall('HDEL', t, 'ec', 'em', 'ed', 'et')
          if f[8] then rpcall('HDEL', xpre .. id, 'ec', 'em', 'ed', 'et') end
        end
        inline[#inline + 1] = 'rs'; inline[#inline + 1] = rs
      end
      end_task(t, xpre .. id, id, final, now, inline, side, f[8] ~= false, ttl,
               hist and KEYS[DONE[final]] or nil, pushes)
      counts[final] = (counts[final] or 0) + 1
      e = {id = id, s = final}
      if f[7] then rcall('SPUBLISH', wpre .. id, cjson.encode({id = id, s = final, at = now})) end
      out[j] = {'ok', final}
    end
    e.ec, e.pm, e.p = ec, pm, p
    ev[#ev + 1] = e
  end
end
push_done(pushes, cap, tpre, xpre)
-- A slots set that did not exist holds no lease to give back.
if #leases > 0 and have[KEYS[9]] ~= 'none' then rcall('ZREM', KEYS[9], unpack(leases)) end
for k, n in pairs(counts) do rcall('HINCRBY', KEYS[3], k, n) end
for i = 10, 9 + 2 * h, 2 do rcall('HINCRBY', KEYS[8], ARGV[i], tonumber(ARGV[i + 1])) end
if #ev > 0 then publish(ARGV[5], {at = now, t = ev}) end
return out
