-- create: write new tasks' hashes and put their envelopes on their queues
-- (or in the delayed set), atomically: one call creates a batch of one or
-- more tasks, all or nothing. An id that exists already is returned as it
-- is and nothing is enqueued for it (idempotent caller-supplied ids).
-- KEYS: 1 delayed, 2 status:pending, 3 queues, 4 stats,
--       then per task: task, queue
-- ARGV: 1 events channel, then per task 11 values: id, name, queue,
--       envelope, args (msgpack), timeout_ms, max_retries, result_ttl_s,
--       delay_ms, run_at_ms, retry_backoff_ms
-- Reply: one entry per task, in order: {1, created_at} created;
--        {0, status} already there.
local now = now_ms()
local nows = fmt(now)
local out, pending, per_queue = {}, {}, {}
local n = (#KEYS - 4) / 2
for j = 1, n do
  local tk, qk = KEYS[3 + 2 * j], KEYS[4 + 2 * j]
  local b = 2 + 11 * (j - 1)
  local id, name, queue, env = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  local st = redis.call('HGET', tk, 'status')
  if st then
    out[j] = {0, st}
  else
    local fields = {'name', name, 'queue', queue, 'status', 'pending', 'created_at', nows,
                    'args', ARGV[b + 4], 'attempt', '0'}
    local function opt(field, v)
      if v ~= '' and v ~= '0' then fields[#fields + 1] = field; fields[#fields + 1] = v end
    end
    opt('timeout_ms', ARGV[b + 5])
    opt('max_retries', ARGV[b + 6])
    opt('result_ttl', ARGV[b + 7])
    opt('retry_backoff_ms', ARGV[b + 10])
    local q = per_queue[qk]
    if not q then q = {name = queue, envs = {}, count = 0}; per_queue[qk] = q end
    q.count = q.count + 1
    local run_at = 0
    if tonumber(ARGV[b + 8]) > 0 then run_at = now + tonumber(ARGV[b + 8]) end
    if tonumber(ARGV[b + 9]) > 0 then run_at = tonumber(ARGV[b + 9]) end
    if run_at > now then
      fields[#fields + 1] = 'run_at'; fields[#fields + 1] = fmt(run_at)
      redis.call('ZADD', KEYS[1], run_at, env)
    else
      q.envs[#q.envs + 1] = env
    end
    redis.call('HSET', tk, unpack(fields))
    pending[#pending + 1] = nows; pending[#pending + 1] = id
    -- ids, names and queues are validated names: no quote or backslash.
    redis.call('PUBLISH', ARGV[1], '{"id":"' .. id .. '","status":"pending","name":"' .. name ..
               '","queue":"' .. queue .. '","at":' .. nows .. '}')
    out[j] = {1, now}
  end
end
for qk, q in pairs(per_queue) do
  if #q.envs > 0 then redis.call('LPUSH', qk, unpack(q.envs)) end
  redis.call('SADD', KEYS[3], q.name)
  redis.call('HINCRBY', KEYS[4], q.name .. '|enqueued', q.count)
end
if #pending > 0 then redis.call('ZADD', KEYS[2], unpack(pending)) end
return out
