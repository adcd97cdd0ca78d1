-- progress: record a running task's progress, fenced like finish, and
-- publish it. Workers coalesce calls to about 10 per second per task.
-- KEYS: 1 task
-- ARGV: 1 id, 2 worker id, 3 attempt, 4 progress (0..100), 5 message,
--       6 events channel
-- Reply: 1 written, 0 fenced off
local h = redis.call('HMGET', KEYS[1], 'status', 'worker', 'attempt')
if h[1] ~= 'running' or h[2] ~= ARGV[2] or h[3] ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], 'progress', ARGV[4], 'progress_message', ARGV[5])
event(ARGV[6], {id = ARGV[1], status = 'running', progress = tonumber(ARGV[4]),
                message = ARGV[5]})
return 1
