-- deadletter: take a bad envelope out of where it waited (a worker's
-- processing list, or the delayed set when the broker could not promote
-- it), keep a record of it with the reason, and fail its task where one
-- exists and has not ended. Removing the envelope gates the step, so it is
-- recorded once however many processes race on it. Records are msgpack
-- maps (prelude's dead_record: the payload excerpt is a bin); the list
-- keeps the newest 10000.
-- A task is failed only while it is pending, or running under the worker
-- that dead-letters the envelope: a bad envelope that merely names the id
-- of a task running elsewhere does not end that run.
-- KEYS: 1 dead list, 2 source (list or zset), 3 stats, [4 task,
--       5 status:pending, 6 status:running, 7 status:failed, 8 history,
--       9 cancel flag, 10 deadlines]  (4.. only when the envelope's id
--       could be read)
-- ARGV: 1 envelope, 2 code, 3 reason, 4 worker id, 5 queue, 6 id ('' unknown),
--       7 default result ttl (s), 8 history '1'/'0', 9 events channel,
--       10 task channel
-- Reply: {'ok', failed_task (0/1)} | {'gone', 0} when the envelope was no
-- longer there (someone else dead-lettered or moved it already)
local kind = redis.call('TYPE', KEYS[2])['ok']
local removed = 0
if kind == 'list' then
  removed = redis.call('LREM', KEYS[2], 1, ARGV[1])
elseif kind == 'zset' then
  removed = redis.call('ZREM', KEYS[2], ARGV[1])
end
if removed == 0 then return {'gone', 0} end
local now = now_ms()
redis.call('LPUSH', KEYS[1], dead_record({'at', now, 'code', ARGV[2], 'reason', ARGV[3],
  'worker', ARGV[4], 'queue', ARGV[5], 'id', ARGV[6], 'size', #ARGV[1]}, ARGV[1]))
redis.call('LTRIM', KEYS[1], 0, 9999)
redis.call('HINCRBY', KEYS[3], ARGV[5] .. '|dead', 1)
if #KEYS < 10 then return {'ok', 0} end
local id = ARGV[6]
local h = redis.call('HMGET', KEYS[4], 'status', 'worker')
local st = h[1]
if st ~= 'pending' and not (st == 'running' and h[2] == ARGV[4]) then return {'ok', 0} end
redis.call('ZREM', KEYS[5], id)
redis.call('ZREM', KEYS[6], id)
redis.call('ZREM', KEYS[10], id)
terminal(KEYS[4], id, 'failed', now, tonumber(ARGV[7]), ARGV[8],
         {index = KEYS[7], history = KEYS[8], cancel = KEYS[9], stats = KEYS[3]},
         {events = ARGV[9], task = ARGV[10]},
         {'error_code', ARGV[2], 'error_message', ARGV[3]})
return {'ok', 1}
