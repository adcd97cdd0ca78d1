-- finish (v2 prototype). KEYS: 1 p:<wid>, 2 running, 3 stats, 4 delayed,
--   5 done:completed, 6 done:failed, 7 done:cancelled, 8 done:timeout
-- ARGV: 1 wid, 2 default ttl s, 3 events channel, 4 task prefix, 5 waiter channel prefix,
--   then per task 4 values: id, attempt, final, result
local nt = (#ARGV - 5) / 4
if nt < 1 or nt > 64 or nt % 1 ~= 0 or not valid_name(ARGV[1]) or not whole(ARGV[2], 1, 315360000) then
  return redis.error_reply('ERR finish: bad arguments') end
local done = {completed = 5, failed = 6, cancelled = 7, timeout = 8}
for j = 0, nt - 1 do
  local b = 6 + 4 * j
  if not valid_name(ARGV[b]) or not whole(ARGV[b + 1], 1, 1000000) or not done[ARGV[b + 2]] then
    return redis.error_reply('ERR finish: bad task') end
end
local CAP = 10000
local now = now_ms()
local wid, defttl, pre, wpre = ARGV[1], tonumber(ARGV[2]), ARGV[4], ARGV[5]
local out, rem, add, cnt, ev = {}, {}, {}, {}, {}
for j = 0, nt - 1 do
  local b = 6 + 4 * j
  local id, att, final, res = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  local tk = pre .. id
  local h = redis.call('HMGET', tk, 's', 'w', 'a', 'rt', 'wt', 'x')
  redis.call('LREM', KEYS[1], 1, id)
  if h[1] ~= 'running' or h[2] ~= wid or h[3] ~= att then
    out[#out + 1] = {'stale', h[1] or ''}
  else
    local ttl = whole(h[4] or '', 1, 315360000) or defttl
    local exp = now + ttl * 1000
    if res ~= '' and res ~= '\192' then
      redis.call('HSET', tk, 's', final, 'e', now, 'r', res)
    else
      redis.call('HSET', tk, 's', final, 'e', now)
    end
    if h[6] and final == 'completed' then redis.call('HDEL', tk, 'x') end
    if h[4] then redis.call('PEXPIREAT', tk, exp) end
    local k = KEYS[done[final]]
    add[k] = add[k] or {}
    local l = add[k]; l[#l + 1] = id
    cnt[final] = (cnt[final] or 0) + 1
    ev[#ev + 1] = id
    if h[5] then redis.call('SPUBLISH', wpre .. id, cjson.encode({id = id, s = final, at = now})) end
    out[#out + 1] = {'ok', final}
  end
end
if #ev > 0 then
  for k, l in pairs(add) do
    local len = redis.call('LPUSH', k, unpack(l))
    if len > CAP then
      local old = redis.call('RPOP', k, len - CAP)
      for i = 1, #old do old[i] = pre .. old[i] end
      redis.call('DEL', unpack(old))
    end
  end
  for f, c in pairs(cnt) do redis.call('HINCRBY', KEYS[3], f, c) end
  redis.call('SPUBLISH', ARGV[3], cjson.encode({s = 'done', at = now, ids = ev}))
end
return out
