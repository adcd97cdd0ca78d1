-- v2 prelude (prototype): helpers shared by every v2 script.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function fmt(n) return string.format('%d', n) end
local function valid_name(s)
  return type(s) == 'string' and #s >= 1 and #s <= 128 and not string.find(s, '[^a-zA-Z0-9._:-]')
end
-- A whole number in [lo, hi] written in decimal digits, else nil.
local function whole(s, lo, hi)
  if type(s) ~= 'string' or #s == 0 or #s > 16 or string.find(s, '[^0-9]') then return nil end
  local n = tonumber(s)
  if n < lo or n > hi then return nil end
  return n
end
local MAX_MS = 253402300799999 -- 9999-12-31
