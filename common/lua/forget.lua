-- forget: drop a terminal task whose hash has expired from the indexes
-- (the cleanup round); a task whose hash still exists is left alone.
-- KEYS: 1 task, 2 history, 3 status:completed, 4 status:failed,
--       5 status:cancelled, 6 status:timeout
-- ARGV: 1 id
-- Reply: 1 removed, 0 left alone
local id = ARGV[1]
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
for i = 2, 6 do redis.call('ZREM', KEYS[i], id) end
return 1
