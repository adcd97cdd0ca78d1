-- take: a worker's non-blocking pop round and its claim in one step. Each
-- planned move takes an envelope from the right of a queue into the
-- processing list (LMOVE, as BRPOPLPUSH would) and, when the envelope's id
-- can be read, claims its task as claim.lua does. A worker that waits for
-- work uses BLMOVE and claim.lua instead: a script cannot block.
-- The id is read from the envelope's first bytes, in the fixed key order
-- that rtq's encoder writes (a map whose first keys are "v" and "id"). An
-- envelope in any other layout, or larger than the worker accepts, is moved
-- but not claimed ('raw'): the worker decodes it and claims it through
-- claim.lua or dead-letters it, as after a BLMOVE. The rest of a claimed
-- envelope (its version included) is checked by the worker's decoder; when
-- that fails, the worker dead-letters it and deadletter.lua fails the task,
-- which is running under that worker: the same end as for a pending one.
-- The task keys are built here from a prefix, since the ids are not known
-- before the moves; with the cluster option every rtq key shares one hash
-- slot.
-- A task that is not pending (cancelled while it waited, or a stale
-- duplicate) is not claimed here either: its envelope comes back 'raw', so
-- the worker decodes it (a bad one is dead-lettered, as after a BLMOVE)
-- and claim.lua drops it. A command that fails on a queue (a key of the
-- wrong type) fails only the moves on that queue: the step never stops
-- half-way with claims whose index writes are missing.
-- KEYS: 1 processing, 2 status:pending, 3 status:running, 4 deadlines,
--       5.. the worker's queues
-- ARGV: 1 worker id, 2 default_timeout_ms, 3 events channel, 4 task key
--       prefix ("<ns>:task:", checked against KEYS[3]), 5 largest envelope
--       to claim (bytes), 6 reply budget (bytes: once the envelopes moved
--       reach it, the remaining moves are not made), then per move
--       (1..256) the index of its queue among KEYS[5..] (1 = KEYS[5])
-- Reply: one entry per move, in order:
--        {'ok', envelope, id, attempt, deadline_ms, timeout_ms}  claimed: run it
--        {'raw', envelope}          moved, not claimed: decode, then claim.lua
--        {'missing', envelope, id}  moved; no task hash: dead-letter it
--        {'empty'}                  the queue had nothing (its later moves too)
--        {'error', message}         the move failed (its queue's later moves too)
--        {'later'}                  not made: the reply budget was reached
local nq, n = #KEYS - 4, #ARGV - 6
if nq < 1 or n < 1 or n > 256 or not tonumber(ARGV[2]) or not tonumber(ARGV[5]) or
   not tonumber(ARGV[6]) then
  return redis.error_reply('ERR take: expected 1..256 moves over at least one queue')
end
if ARGV[4] ~= ns_of_running(KEYS[3]) .. 'task:' then
  return redis.error_reply('ERR take: the task key prefix does not match the keys')
end
for j = 1, n do
  local q = tonumber(ARGV[6 + j])
  if not q or q < 1 or q > nq or q % 1 ~= 0 then
    return redis.error_reply('ERR take: a move names no queue of KEYS')
  end
end

-- The id of an envelope in rtq's layout, else nil: fixmap, "v", a
-- positive fixint, "id", then a str8 or fixstr holding a valid name.
local function envelope_id(env, max)
  if #env > max then return nil end
  local m, k1, k2, ver, k3, k4, k5, h = string.byte(env, 1, 8)
  if not h or m < 0x80 or m > 0x8f or k1 ~= 0xa1 or k2 ~= 0x76 or ver > 0x7f or k3 ~= 0xa2 or
     k4 ~= 0x69 or k5 ~= 0x64 then
    return nil
  end
  local from, len = 9, h - 0xa0
  if h == 0xd9 then from, len = 10, string.byte(env, 9) end
  if not len or (h ~= 0xd9 and h > 0xbf) then return nil end
  local id = string.sub(env, from, from + len - 1)
  if #id ~= len or not valid_name(id) then return nil end
  return id
end

local now = now_ms()
local nows = fmt(now)
local wid, deftmo, chan, prefix, max, budget = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4],
                                               tonumber(ARGV[5]), tonumber(ARGV[6])
local k = {pending = KEYS[2], running = KEYS[3], deadlines = KEYS[4]}
local out, bt, done, bytes = {}, batch_new(), {}, 0
for j = 1, n do
  local q = tonumber(ARGV[6 + j])
  if done[q] then
    out[j] = {done[q]}
  elseif bytes >= budget then
    out[j] = {'later'}
  else
    local env = redis.pcall('LMOVE', KEYS[4 + q], KEYS[1], 'RIGHT', 'LEFT')
    if type(env) == 'table' then
      done[q] = 'empty'
      out[j] = {'error', env.err or 'LMOVE failed'}
    elseif not env then
      done[q] = 'empty'
      out[j] = {'empty'}
    else
      bytes = bytes + #env
      local id = envelope_id(env, max)
      local tk = id and prefix .. id
      local h = id and redis.pcall('HMGET', tk, unpack(CLAIM_FIELDS))
      if not id or h.err or (h[1] and h[1] ~= 'pending') then
        out[j] = {'raw', env}
      elseif not h[1] then
        out[j] = {'missing', env, id}
      else
        local attempt, deadline, timeout = claim_task(tk, id, h, now, nows, wid, deftmo, chan, k, bt)
        out[j] = {'ok', env, id, attempt, deadline, timeout}
      end
    end
  end
end
flush(bt)
return out
