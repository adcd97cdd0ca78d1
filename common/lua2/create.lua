-- create: write new tasks' hashes and put their ids on the queue (or in
-- the delayed set), all or nothing: one call creates 1..64 tasks of one
-- queue. An id that exists already is returned as it is and nothing is
-- enqueued for it (idempotent caller-supplied ids).
-- Args up to 64 bytes stay in the task hash (`x`); 65..256 bytes stay
-- there too, cut into 64-byte chunks `x`, `x2`, `x3`, `x4`; longer ones go
-- to the task's side hash: args never take the task hash out of the
-- listpack encoding (Redis's default hash-max-listpack-value is 64).
-- KEYS: 1 queue, 2 delayed, 3 stats
-- ARGV: 1 events channel, 2 task key prefix, 3 side key prefix,
--       then per task 10 values: id, name, args (msgpack; '' = none),
--       timeout_ms, max_retries, result_ttl_s, retry_backoff_ms,
--       delay_ms, run_at_ms (0 = not given), signature ('' = none)
-- Reply: one entry per task, in order: {1, created_at} created;
--        {0, status} already there.
-- Type checks: the queue list's LPUSH is the call's first write (the
-- tasks' existence is read before it), so a list of another type fails
-- it before anything is written; the stats hash is checked, and the
-- delayed set when a task may wait. The options are '0' when not given,
-- which one comparison tells; a name is checked once per call.
-- Prelude: limits now_ms fmt bad valid_name whole need_name need_whole
-- Prelude: keys_tag check_prefix check_keys need_type publish

-- Held in locals: used per task (a local of the script body, not of the
-- prelude, whose every captured local costs each call).
local rcall, rpcall, find, sub = redis.call, redis.pcall, string.find, string.sub
local CHUNK = {'x2', 'x3', 'x4'}
local PER = 10
check_keys()
local tpre = check_prefix(ARGV[2], 'task key')
local xpre = check_prefix(ARGV[3], 'side key')
check_prefix(ARGV[1], 'events channel')
local nt = (#ARGV - 3) / PER
if nt < 1 or nt > MAX_TASKS or nt % 1 ~= 0 then
  bad('create: expected 1..64 tasks of 10 values each')
end
local bytes, waits, names = 0, false, nt > 1 and {} or nil
for j = 0, nt - 1 do
  local b = 4 + PER * j
  need_name(ARGV[b], 'create: id')
  local name = ARGV[b + 1]
  if not names then
    need_name(name, 'create: name')
  elseif not names[name] then
    names[name] = need_name(name, 'create: name')
  end
  bytes = bytes + #ARGV[b + 2]
  local v = ARGV[b + 3]
  if v ~= '0' then need_whole(v, 0, MAX_TIMEOUT_MS, 'create: timeout_ms') end
  v = ARGV[b + 4]
  if v ~= '0' then need_whole(v, 0, 1000, 'create: max_retries') end
  v = ARGV[b + 5]
  if v ~= '0' then need_whole(v, 0, MAX_TTL_S, 'create: result_ttl_s') end
  v = ARGV[b + 6]
  if v ~= '0' then need_whole(v, 0, 86400000, 'create: retry_backoff_ms') end
  v = ARGV[b + 7]
  if v ~= '0' then need_whole(v, 0, MAX_TIMEOUT_MS, 'create: delay_ms'); waits = true end
  v = ARGV[b + 8]
  if v ~= '0' then need_whole(v, 0, MAX_MS, 'create: run_at_ms'); waits = true end
  local sg = ARGV[b + 9]
  if sg ~= '' and (#sg > 200 or not find(sg, '^[A-Za-z0-9._-]+:[0-9a-f]+$')) then
    bad('create: signature must be "kid:hex"')
  end
end
if nt > 1 and bytes > MAX_CALL_BYTES then bad('create: more than 256 KiB of args in one call') end
need_type(KEYS[3], 'hash', 3)
if waits then need_type(KEYS[2], 'zset', 2) end

-- Reads first: which ids exist (an id given twice in the call is created
-- once), and where each new task goes. Few tables: each costs the call.
local now = now_ms()
local snow = fmt(now)
local ready, out, made, new = {}, {}, {}, {}
local later, run_ats = waits and {} or nil, waits and {} or nil
local seen = nt > 1 and {} or nil
for j = 0, nt - 1 do
  local b = 4 + PER * j
  local id = ARGV[b]
  local st = seen and seen[id] and 'pending' or rpcall('HGET', tpre .. id, 's')
  if type(st) == 'table' then st = st.err and 'invalid' end
  if st then
    out[j + 1] = {0, st}
  else
    if seen then seen[id] = true end
    new[#new + 1] = b
    local run_at = 0
    if waits then
      if ARGV[b + 7] ~= '0' then run_at = now + tonumber(ARGV[b + 7]) end
      if ARGV[b + 8] ~= '0' then run_at = tonumber(ARGV[b + 8]) end
    end
    if run_at > now then
      later[#later + 1] = run_at; later[#later + 1] = id
      run_ats[b] = run_at
    else
      ready[#ready + 1] = id
    end
    out[j + 1] = {1, now}
  end
end
if #ready > 0 then rcall('LPUSH', KEYS[1], unpack(ready)) end
if later and #later > 0 then rcall('ZADD', KEYS[2], unpack(later)) end
for j = 1, #new do
  local b = new[j]
  local id, name = ARGV[b], ARGV[b + 1]
  local f = {'s', 'pending', 'n', name, 'c', snow}
  local args = ARGV[b + 2]
  if #args > ARGS_INLINE_MAX then
    -- The side key is made a hash (side_hash) only when it is not one:
    -- a refused HSET wrote nothing.
    local x = xpre .. id
    if type(rpcall('HSET', x, 'x', args)) == 'table' then
      rcall('DEL', x)
      rcall('HSET', x, 'x', args)
    end
    f[7] = 'xs'; f[8] = '1'
  elseif #args > INLINE_MAX then
    f[7] = 'x'; f[8] = sub(args, 1, INLINE_MAX)
    for k = 1, 3 do
      local c = sub(args, k * INLINE_MAX + 1, (k + 1) * INLINE_MAX)
      if c == '' then break end
      f[#f + 1] = CHUNK[k]; f[#f + 1] = c
    end
  elseif args ~= '' then
    f[7] = 'x'; f[8] = args
  end
  local v = ARGV[b + 3]
  if v ~= '0' then f[#f + 1] = 'to'; f[#f + 1] = v end
  v = ARGV[b + 4]
  if v ~= '0' then f[#f + 1] = 'mr'; f[#f + 1] = v end
  v = ARGV[b + 5]
  if v ~= '0' then f[#f + 1] = 'rt'; f[#f + 1] = v end
  v = ARGV[b + 6]
  if v ~= '0' then f[#f + 1] = 'bo'; f[#f + 1] = v end
  v = ARGV[b + 9]
  if v ~= '' then f[#f + 1] = 'sg'; f[#f + 1] = v end
  if run_ats and run_ats[b] then f[#f + 1] = 'ra'; f[#f + 1] = run_ats[b] end
  rcall('HSET', tpre .. id, unpack(f))
  made[j] = {id = id, n = name}
end
if #made > 0 then
  rcall('HINCRBY', KEYS[3], 'enqueued', #made)
  publish(ARGV[1], {at = now, s = 'pending', t = made})
end
return out
