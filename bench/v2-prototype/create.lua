-- create (v2 prototype). KEYS: 1 q, 2 delayed, 3 stats
-- ARGV: 1 events channel, 2 task key prefix, then per task 8 values:
--   id, name, args, timeout_ms, max_retries, result_ttl, retry_backoff_ms, run_at_ms
local nt = (#ARGV - 2) / 8
if nt < 1 or nt > 64 or nt % 1 ~= 0 then return redis.error_reply('ERR create: 1..64 tasks') end
for j = 0, nt - 1 do
  local b = 3 + 8 * j
  if not valid_name(ARGV[b]) or not valid_name(ARGV[b + 1]) then return redis.error_reply('ERR create: bad id or name') end
  for i = 3, 7 do if ARGV[b + i] ~= '' and not whole(ARGV[b + i], 0, MAX_MS) then
    return redis.error_reply('ERR create: bad number') end end
end
local now = now_ms()
local nows = fmt(now)
local pre = ARGV[2]
local ids, out, ev, n = {}, {}, {}, 0
local delayed = {}
for j = 0, nt - 1 do
  local b = 3 + 8 * j
  local id = ARGV[b]
  local tk = pre .. id
  local st = redis.call('HGET', tk, 's')
  if st then
    out[j + 1] = {0, st}
  else
    local f = {'s', 'pending', 'n', ARGV[b + 1], 'c', nows}
    if ARGV[b + 2] ~= '' and ARGV[b + 2] ~= '\128' then f[#f + 1] = 'x'; f[#f + 1] = ARGV[b + 2] end
    local names = {'to', 'mr', 'rt', 'bo'}
    for i = 1, 4 do local v = ARGV[b + 2 + i]; if v ~= '' and v ~= '0' then f[#f + 1] = names[i]; f[#f + 1] = v end end
    local ra = tonumber(ARGV[b + 7]) or 0
    if ra > now then
      f[#f + 1] = 'ra'; f[#f + 1] = ARGV[b + 7]
      delayed[#delayed + 1] = ra; delayed[#delayed + 1] = id
    else
      ids[#ids + 1] = id
    end
    redis.call('HSET', tk, unpack(f))
    n = n + 1
    ev[#ev + 1] = id
    out[j + 1] = {1, now}
  end
end
if #ids > 0 then redis.call('LPUSH', KEYS[1], unpack(ids)) end
if #delayed > 0 then redis.call('ZADD', KEYS[2], unpack(delayed)) end
if n > 0 then
  redis.call('HINCRBY', KEYS[3], 'enqueued', n)
  redis.call('SPUBLISH', ARGV[1], cjson.encode({s = 'pending', at = now, ids = ev}))
end
return out
