-- create: write new tasks' hashes and put their ids on the queue (or in
-- the delayed set), all or nothing: one call creates 1..64 tasks of one
-- queue. An id that exists already is returned as it is and nothing is
-- enqueued for it (idempotent caller-supplied ids).
-- Args up to 64 bytes stay in the task hash (`x`); longer ones go to the
-- task's side hash, so that the task hash stays listpack-encoded.
-- KEYS: 1 queue, 2 delayed, 3 stats
-- ARGV: 1 events channel, 2 task key prefix, 3 side key prefix,
--       then per task 10 values: id, name, args (msgpack; '' = none),
--       timeout_ms, max_retries, result_ttl_s, retry_backoff_ms,
--       delay_ms, run_at_ms (0 = not given), signature ('' = none)
-- Reply: one entry per task, in order: {1, created_at} created;
--        {0, status} already there.
local PER = 10
check_keys()
need_types({KEYS[1], 'list', KEYS[2], 'zset', KEYS[3], 'hash'})
local tpre = check_prefix(ARGV[2], 'task key')
local xpre = check_prefix(ARGV[3], 'side key')
check_prefix(ARGV[1], 'events channel')
local nt = (#ARGV - 3) / PER
if nt < 1 or nt > MAX_TASKS or nt % 1 ~= 0 then
  bad('create: expected 1..64 tasks of 10 values each')
end
local bytes = 0
for j = 0, nt - 1 do
  local b = 4 + PER * j
  need_name(ARGV[b], 'create: id')
  need_name(ARGV[b + 1], 'create: name')
  bytes = bytes + #ARGV[b + 2]
  need_whole(ARGV[b + 3], 0, MAX_TIMEOUT_MS, 'create: timeout_ms')
  need_whole(ARGV[b + 4], 0, 1000, 'create: max_retries')
  need_whole(ARGV[b + 5], 0, MAX_TTL_S, 'create: result_ttl_s')
  need_whole(ARGV[b + 6], 0, 86400000, 'create: retry_backoff_ms')
  need_whole(ARGV[b + 7], 0, MAX_TIMEOUT_MS, 'create: delay_ms')
  need_whole(ARGV[b + 8], 0, MAX_MS, 'create: run_at_ms')
  local sg = ARGV[b + 9]
  if sg ~= '' and not string.find(sg, '^[A-Za-z0-9._-]+:[0-9a-f]+$') or #sg > 200 then
    bad('create: signature must be "kid:hex"')
  end
end
if nt > 1 and bytes > MAX_CALL_BYTES then bad('create: more than 256 KiB of args in one call') end

local now = now_ms()
local ready, later, out, made = {}, {}, {}, {}
local OPT = {'to', 'mr', 'rt', 'bo'}
for j = 0, nt - 1 do
  local b = 4 + PER * j
  local id = ARGV[b]
  local t = tpre .. id
  local st = redis.pcall('HGET', t, 's')
  if type(st) == 'table' then st = st.err and 'invalid' end
  if st then
    out[j + 1] = {0, st}
  else
    local f = {'s', 'pending', 'n', ARGV[b + 1], 'c', now}
    local args = ARGV[b + 2]
    if #args > INLINE_MAX then
      redis.call('HSET', side_hash(xpre .. id), 'x', args)
      f[#f + 1] = 'xs'; f[#f + 1] = '1'
    elseif args ~= '' then
      f[#f + 1] = 'x'; f[#f + 1] = args
    end
    for i = 1, 4 do
      local v = ARGV[b + 2 + i]
      if v ~= '0' then f[#f + 1] = OPT[i]; f[#f + 1] = v end
    end
    local run_at = 0
    if ARGV[b + 7] ~= '0' then run_at = now + tonumber(ARGV[b + 7]) end
    if ARGV[b + 8] ~= '0' then run_at = tonumber(ARGV[b + 8]) end
    if ARGV[b + 9] ~= '' then f[#f + 1] = 'sg'; f[#f + 1] = ARGV[b + 9] end
    if run_at > now then
      f[#f + 1] = 'ra'; f[#f + 1] = run_at
      later[#later + 1] = run_at; later[#later + 1] = id
    else
      ready[#ready + 1] = id
    end
    redis.call('HSET', t, unpack(f))
    made[#made + 1] = {id = id, n = ARGV[b + 1]}
    out[j + 1] = {1, now}
  end
end
if #ready > 0 then redis.call('LPUSH', KEYS[1], unpack(ready)) end
if #later > 0 then redis.call('ZADD', KEYS[2], unpack(later)) end
if #made > 0 then
  redis.call('HINCRBY', KEYS[3], 'enqueued', #made)
  publish(ARGV[1], {at = now, s = 'pending', t = made})
end
return out
