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
--       4 values per task: '3' or '10', 5 fresh ids: '1' the producer
--       made every id of the call just now (random, section 1), so none
--       is looked up, '0' each is; then per task 3 values: id, name,
--       args (msgpack; '' = none), or 10: those 3, then timeout_ms,
--       max_retries, result_ttl_s, retry_backoff_ms, delay_ms,
--       run_at_ms (0 = not given), signature ('' = none)
-- Reply: created_at (the call's time, ms), then one entry per task, in
--        order: 1 created; the status it has (a string) already there,
--        'invalid' when its key holds another type.
-- Fresh ids: a fresh id names no task (an id sent again, after a lost
-- connection, is not fresh; nor is one given twice in the call, which
-- is refused), so its task hash is written without the look-up; a key
-- of another type under it fails that HSET, which wrote nothing, and
-- the task is not enqueued ('invalid'), as the look-up would have told.
-- A hash that is there is written over: only a producer could have put
-- it there, and a producer may write any task hash (docs/SECURITY.md).
-- Type checks: with ids looked up, the queue list's LPUSH is the call's
-- first write (the tasks' existence is read before it), so a list of
-- another type fails it before anything is written; with fresh ids the
-- task hashes come first and the queue list is checked. The stats hash
-- is checked, and the delayed set when a task may wait.
-- A call whose tasks give no option sends 3 values per task, which
-- Redis reads and this script checks faster than 10; with 10, an option
-- is '0' when not given, which one comparison tells. A name is checked
-- once per call.
-- Prelude: limits now_ms fmt bad valid_name whole need_name need_whole
-- Prelude: keys_tag check_prefix check_keys need_type publish

-- Held in locals: used per task (a local of the script body, not of the
-- prelude, whose every captured local costs each call).
local rcall, rpcall, find, sub = redis.call, redis.pcall, string.find, string.sub
local CHUNK = {'x2', 'x3', 'x4'}
check_keys()
local tpre = check_prefix(ARGV[2], 'task key')
local xpre = check_prefix(ARGV[3], 'side key')
check_prefix(ARGV[1], 'events channel')
local PER = ARGV[4]
if PER ~= '3' and PER ~= '10' then bad('create: values per task must be 3 or 10') end
PER = tonumber(PER)
local opts = PER == 10
local fresh = ARGV[5]
if fresh ~= '0' and fresh ~= '1' then bad('create: fresh ids must be 0 or 1') end
fresh = fresh == '1'
local nt = (#ARGV - 5) / PER
if nt < 1 or nt > MAX_TASKS or nt % 1 ~= 0 then
  bad('create: expected 1..64 tasks of ' .. PER .. ' values each')
end
local bytes, waits, names = 0, false, nt > 1 and {} or nil
for j = 0, nt - 1 do
  local b = 6 + PER * j
  -- valid_name, inlined: an anchored pattern is one match attempt, where
  -- a search for a bad character starts one at every position.
  local id = ARGV[b]
  if #id > 128 or not find(id, '^[a-zA-Z0-9._:-]+$') then bad('create: id must be a valid name') end
  local name = ARGV[b + 1]
  if not names then
    need_name(name, 'create: name')
  elseif not names[name] then
    names[name] = need_name(name, 'create: name')
  end
  bytes = bytes + #ARGV[b + 2]
  if opts then
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
end
if nt > 1 and bytes > MAX_CALL_BYTES then bad('create: more than 256 KiB of args in one call') end
need_type(KEYS[3], 'hash', 3)
if waits then need_type(KEYS[2], 'zset', 2) end
if fresh then need_type(KEYS[1], 'list', 1) end

-- Reads first: which ids exist (an id given twice in the call is created
-- once), and where each new task goes. Few tables: each costs the call
-- (the reply is one flat array for that reason).
local now = now_ms()
local snow = fmt(now)
local ready, out, made, new = {}, {now}, {}, {}
local later, run_ats = waits and {} or nil, waits and {} or nil
local seen = nt > 1 and {} or nil
for j = 0, nt - 1 do
  local b = 6 + PER * j
  local id = ARGV[b]
  local st = seen and seen[id] and 'pending' or not fresh and rpcall('HGET', tpre .. id, 's')
  if type(st) == 'table' then st = st.err and 'invalid' end
  if st and fresh then bad('create: a fresh id is given twice') end
  if st then
    out[j + 2] = st
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
    out[j + 2] = 1
  end
end
if not fresh then
  if #ready > 0 then rcall('LPUSH', KEYS[1], unpack(ready)) end
  if later and #later > 0 then rcall('ZADD', KEYS[2], unpack(later)) end
end
local refused = nil -- fresh ids whose key holds another type
for j = 1, #new do
  local b = new[j]
  local id, name, args = ARGV[b], ARGV[b + 1], ARGV[b + 2]
  local side, w = #args > ARGS_INLINE_MAX, nil
  local chunked = not side and #args > INLINE_MAX
  if chunked and not opts then
    -- No options, args of 65..256 bytes: the chunks as arguments, with no
    -- table (2, 3 or 4 of them).
    local t, n = tpre .. id, #args
    local x, x2 = sub(args, 1, INLINE_MAX), sub(args, INLINE_MAX + 1, 2 * INLINE_MAX)
    if n <= 2 * INLINE_MAX then
      w = rpcall('HSET', t, 's', 'pending', 'n', name, 'c', snow, 'x', x, 'x2', x2)
    elseif n <= 3 * INLINE_MAX then
      w = rpcall('HSET', t, 's', 'pending', 'n', name, 'c', snow, 'x', x, 'x2', x2,
                 'x3', sub(args, 2 * INLINE_MAX + 1))
    else
      w = rpcall('HSET', t, 's', 'pending', 'n', name, 'c', snow, 'x', x, 'x2', x2,
                 'x3', sub(args, 2 * INLINE_MAX + 1, 3 * INLINE_MAX), 'x4', sub(args, 3 * INLINE_MAX + 1))
    end
  elseif opts or chunked then
    local f = {'s', 'pending', 'n', name, 'c', snow}
    if side then
      f[7] = 'xs'; f[8] = '1'
    elseif chunked then
      f[7] = 'x'; f[8] = sub(args, 1, INLINE_MAX)
      for k = 1, 3 do
        local c = sub(args, k * INLINE_MAX + 1, (k + 1) * INLINE_MAX)
        if c == '' then break end
        f[#f + 1] = CHUNK[k]; f[#f + 1] = c
      end
    elseif args ~= '' then
      f[7] = 'x'; f[8] = args
    end
    if opts then
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
    end
    w = rpcall('HSET', tpre .. id, unpack(f))
  elseif side then
    -- No options: the fields are written as they are, with no table.
    w = rpcall('HSET', tpre .. id, 's', 'pending', 'n', name, 'c', snow, 'xs', '1')
  elseif args ~= '' then
    w = rpcall('HSET', tpre .. id, 's', 'pending', 'n', name, 'c', snow, 'x', args)
  else
    w = rpcall('HSET', tpre .. id, 's', 'pending', 'n', name, 'c', snow)
  end
  if type(w) == 'table' then
    -- Only a fresh id's key can hold another type here (a looked-up one
    -- was found a hash or absent): nothing was written for it.
    refused = refused or {}
    refused[id] = true
    out[(b - 6) / PER + 2] = 'invalid'
  else
    if side then
      -- The side key is made a hash (side_hash) only when it is not one:
      -- a refused HSET wrote nothing.
      local x = xpre .. id
      if type(rpcall('HSET', x, 'x', args)) == 'table' then
        rcall('DEL', x)
        rcall('HSET', x, 'x', args)
      end
    end
    made[#made + 1] = {id = id, n = name}
  end
end
if fresh then
  if refused then
    local keep = {}
    for i = 1, #ready do
      if not refused[ready[i]] then keep[#keep + 1] = ready[i] end
    end
    ready = keep
    if later then
      keep = {}
      for i = 1, #later - 1, 2 do
        if not refused[later[i + 1]] then
          keep[#keep + 1] = later[i]; keep[#keep + 1] = later[i + 1]
        end
      end
      later = keep
    end
  end
  if #ready > 0 then rcall('LPUSH', KEYS[1], unpack(ready)) end
  if later and #later > 0 then rcall('ZADD', KEYS[2], unpack(later)) end
end
if #made > 0 then
  rcall('HINCRBY', KEYS[3], 'enqueued', #made)
  publish(ARGV[1], {at = now, s = 'pending', t = made})
end
return out
