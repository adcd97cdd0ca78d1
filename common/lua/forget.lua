-- forget: drop a terminal task from the indexes. 'trim' (history cap)
-- deletes the task too; 'expired' only cleans up after a task whose hash
-- has already expired, and leaves a live one alone.
-- KEYS: 1 task, 2 history, 3 status:completed, 4 status:failed,
--       5 status:cancelled, 6 status:timeout
-- ARGV: 1 id, 2 'trim' | 'expired'
-- Reply: 1 removed, 0 left alone
local id = ARGV[1]
if ARGV[2] == 'expired' then
  if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
else
  local st = redis.call('HGET', KEYS[1], 'status')
  if st == 'pending' or st == 'running' then
    redis.call('ZREM', KEYS[2], id)
    return 0
  end
  redis.call('DEL', KEYS[1])
end
for i = 2, 6 do redis.call('ZREM', KEYS[i], id) end
return 1
