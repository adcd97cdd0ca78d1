-- floor2.lua - the commands protocol 2's create, take and finish run for
-- a drain's tasks, with no checks, no type tests and no JSON: what those
-- commands cost alone (bench/tools/script_cost.py, the floor under the
-- scripts). Not part of rtq; it trusts its input. Numbers are passed as
-- strings formatted once per call, as the scripts do.
-- KEYS: 1 queue, 2 delayed, 3 stats, 4 processing, 5 done:completed,
--       6 run-time histogram, 7 events channel
-- ARGV: 1 mode (create | take | finish), 2 task key prefix, 3 side key
--       prefix, then create: id, args pairs; take: moves; finish: ids.
-- The create is a bulk create's: fresh ids, which are not looked up.
-- Args of 65..256 bytes go to the task hash in 64-byte chunks and longer
-- ones to the side hash, as create does; take and finish touch the side
-- hash when the task has one (xs), as the scripts do.
local mode, tpre, xpre = ARGV[1], ARGV[2], ARGV[3]
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local snow, sdl, sexp = string.format('%d', now), string.format('%d', now + 300000),
  string.format('%d', now + 86400000)
local ids = {}
if mode == 'create' then
  for i = 4, #ARGV, 2 do
    local id = ARGV[i]
    local a = ARGV[i + 1]
    if #a > 256 then
      redis.call('HSET', xpre .. id, 'x', a)
      redis.call('HSET', tpre .. id, 's', 'pending', 'n', 'rtq.noop', 'c', snow, 'xs', '1')
    elseif #a > 64 then
      local f = {'s', 'pending', 'n', 'rtq.noop', 'c', snow, 'x', a:sub(1, 64)}
      for k = 2, 4 do
        local c = a:sub((k - 1) * 64 + 1, k * 64)
        if c ~= '' then f[#f + 1] = 'x' .. k; f[#f + 1] = c end
      end
      redis.call('HSET', tpre .. id, unpack(f))
    else
      redis.call('HSET', tpre .. id, 's', 'pending', 'n', 'rtq.noop', 'c', snow, 'x', ARGV[i + 1])
    end
    ids[#ids + 1] = id
  end
  redis.call('LPUSH', KEYS[1], unpack(ids))
  redis.call('HINCRBY', KEYS[3], 'enqueued', #ids)
elseif mode == 'take' then
  redis.call('HMGET', KEYS[1] .. ':limit', 'rate', 'burst', 'conc')
  for _, id in ipairs(redis.call('RPOP', KEYS[1], ARGV[4]) or {}) do
    local h = redis.call('HMGET', tpre .. id, 's', 'n', 'a', 'to', 'x', 'xs', 'sg', 'mr', 'rt', 'bo',
                         'x2', 'x3', 'x4')
    redis.call('HSET', tpre .. id, 's', 'running', 'w', 'w-bench-1', 'a', '1', 'b', snow, 'dl', sdl)
    if h[6] then redis.call('HGET', xpre .. id, 'x') end
    ids[#ids + 1] = id
  end
  if #ids > 0 then redis.call('LPUSH', KEYS[4], unpack(ids)) end
else
  for i = 4, #ARGV do
    local id = ARGV[i]
    local h = redis.call('HMGET', tpre .. id, 's', 'w', 'a', 'mr', 'bo', 'rt', 'wt', 'xs')
    redis.call('LREM', KEYS[4], '1', id)
    redis.call('HSET', tpre .. id, 's', 'completed', 'e', snow)
    redis.call('HDEL', tpre .. id, 'dl', 'rs', 'x', 'x2', 'x3', 'x4')
    redis.call('PEXPIREAT', tpre .. id, sexp)
    if h[8] then redis.call('DEL', xpre .. id) end
    ids[#ids + 1] = id
  end
  redis.call('LPUSH', KEYS[5], unpack(ids))
  redis.call('HINCRBY', KEYS[3], 'completed', #ids)
  redis.call('HINCRBY', KEYS[6], '0.005', #ids)
  redis.call('HINCRBY', KEYS[6], 'count', #ids)
  redis.call('HINCRBY', KEYS[6], 'sum_ms', 5)
end
if #ids > 0 then redis.call('SPUBLISH', KEYS[7], table.concat(ids, ',')) end
return #ids
