-- take (v2 prototype). KEYS: 1 q, 2 p:<wid>, 3 running
-- ARGV: 1 worker id, 2 default timeout ms, 3 events channel, 4 task prefix, 5 moves (1..64)
local n = whole(ARGV[5], 1, 64)
if not n or not valid_name(ARGV[1]) or not whole(ARGV[2], 1, MAX_MS) then return redis.error_reply('ERR take: bad arguments') end
local now = now_ms()
local nows = fmt(now)
local wid, deftmo, pre = ARGV[1], tonumber(ARGV[2]), ARGV[4]
local out, run, ev = {}, {}, {}
for j = 1, n do
  local id = redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT')
  if not id then break end
  local tk = pre .. id
  local h = valid_name(id) and redis.call('HMGET', tk, 's', 'n', 'a', 'to', 'x') or {}
  if h[1] ~= 'pending' then
    out[#out + 1] = {'drop', id, h[1] or ''}
  else
    local a = whole(h[3] or '0', 0, 1000000)
    local to = h[4] and whole(h[4], 1, MAX_MS) or deftmo
    if not a or not to then
      out[#out + 1] = {'bad', id}
    else
      a = a + 1
      local dl = now + to
      redis.call('HSET', tk, 's', 'running', 'w', wid, 'a', a, 'b', nows, 'dl', dl)
      ev[#ev + 1] = id
      out[#out + 1] = {'ok', id, h[2], a, dl, to, h[5] or '\128'}
    end
  end
end
if #ev > 0 then
  redis.call('SPUBLISH', ARGV[3], cjson.encode({s = 'running', at = now, w = wid, ids = ev}))
end
return out
