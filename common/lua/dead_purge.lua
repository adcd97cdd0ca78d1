-- dead_purge: drop the oldest records of P:dead, at most ARGV[1] (1..1000)
-- per call, so a long list is emptied in bounded steps. Records pushed
-- meanwhile are the newest, at the other end, and stay.
-- KEYS: 1 dead list
-- ARGV: 1 most records to drop
-- Reply: {dropped, left}
local most = tonumber(ARGV[1])
if not most or most < 1 or most > 1000 then
  return redis.error_reply('dead_purge: most must be 1..1000')
end
local n = redis.call('LLEN', KEYS[1])
local k = math.min(n, most)
if k > 0 then redis.call('LTRIM', KEYS[1], 0, -(k + 1)) end
return {k, n - k}
