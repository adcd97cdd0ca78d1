-- claim: mark the tasks whose envelopes the worker has just moved into its
-- processing list as running; one call claims every envelope of a pop
-- round (1..256), each task checked on its own. A task that is no longer
-- pending (cancelled while it waited, or a stale duplicate) is dropped from
-- the processing list and not run.
-- KEYS: 1 processing, 2 status:pending, 3 status:running, 4 deadlines,
--       then per task: task
-- ARGV: 1 worker id, 2 default_timeout_ms, 3 events channel,
--       then per task 2 values: id, envelope
-- Reply: one entry per task, in order:
--        {'ok', attempt, deadline_ms, timeout_ms}
--        {'skip', status}   dropped, not run
--        {'missing'}        no task hash: the caller dead-letters the envelope
local n = #KEYS - 4
-- Checked before the first write: Redis does not undo a script's earlier
-- writes when it errors half-way.
if n < 1 or n > 256 or #ARGV ~= 3 + 2 * n or not tonumber(ARGV[2]) then
  return redis.error_reply('ERR claim: expected 1..256 tasks with 1 key and 2 values each')
end
local now = now_ms()
local nows = fmt(now)
local wid, deftmo, chan = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local out, bt = {}, batch_new()
local k = {pending = KEYS[2], running = KEYS[3], deadlines = KEYS[4]}
for j = 1, n do
  local tk, id, env = KEYS[4 + j], ARGV[2 + 2 * j], ARGV[3 + 2 * j]
  local h = redis.call('HMGET', tk, unpack(CLAIM_FIELDS))
  if not h[1] then
    out[j] = {'missing'}
  elseif h[1] ~= 'pending' then
    redis.call('LREM', KEYS[1], 1, env)
    out[j] = {'skip', h[1]}
  else
    local attempt, deadline, timeout = claim_task(tk, id, h, now, nows, wid, deftmo, chan, k, bt)
    out[j] = {'ok', attempt, deadline, timeout}
  end
end
flush(bt)
return out
