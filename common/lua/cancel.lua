-- cancel: a pending task ends cancelled at once (a worker that later claims
-- its envelope drops it); a running task gets a cancel flag and a message
-- on the cancel channel, and its worker ends it.
-- KEYS: 1 task, 2 status:pending, 3 status:cancelled, 4 history, 5 cancel flag,
--       6 stats, 7 status:running
-- ARGV: 1 id, 2 default result ttl (s), 3 history '1'/'0', 4 events channel,
--       5 task channel, 6 cancel channel, 7 flag ttl (ms)
-- Reply: {'cancelled'} | {'requested'} | {'state', status} | {'notfound'}
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return {'notfound'} end
local id, now = ARGV[1], now_ms()
if st == 'pending' then
  redis.call('ZREM', KEYS[2], id)
  terminal(KEYS[1], id, 'cancelled', now, tonumber(ARGV[2]), ARGV[3],
           {index = KEYS[3], history = KEYS[4], cancel = KEYS[5], stats = KEYS[6]},
           {events = ARGV[4], task = ARGV[5]}, {'error_code', 'CANCELLED',
           'error_message', 'cancelled before it started'})
  return {'cancelled'}
end
if st == 'running' then
  redis.call('SET', KEYS[5], fmt(now), 'PX', ARGV[7])
  redis.call('HSET', KEYS[1], 'cancel_requested', fmt(now))
  redis.call('PUBLISH', ARGV[6], id)
  event(ARGV[4], {id = id, status = 'running', cancel_requested = true, at = now})
  return {'requested'}
end
return {'state', st}
