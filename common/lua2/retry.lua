-- retry: an operator runs again a task that ended failed, timeout or
-- cancelled (a completed task has dropped its args). It becomes pending
-- with its outcome cleared and its attempts restarted, leaves its done
-- list, and goes to the back of its queue.
-- KEYS: 1 task, 2 queue, 3 done:<current status>
-- ARGV: 1 id, 2 expected current status, 3 events channel, 4 side key
--       prefix
-- Reply: {'ok'} | {'state', status} | {'notfound'}
-- Prelude: now_ms bad valid_name need_name keys_tag check_prefix check_keys
-- Prelude: need_type need_types publish
check_keys()
need_types({KEYS[1], 'hash', KEYS[2], 'list', KEYS[3], 'list'})
local id = need_name(ARGV[1], 'retry: id')
local want = ARGV[2]
if want ~= 'failed' and want ~= 'timeout' and want ~= 'cancelled' then
  bad('retry: expected status must be failed, timeout or cancelled')
end
local xpre = check_prefix(ARGV[4], 'side key')
check_prefix(ARGV[3], 'events channel')
local h = redis.call('HMGET', KEYS[1], 's', 'xs')
if not h[1] then return {'notfound'} end
if h[1] ~= want then return {'state', h[1]} end
local now = now_ms()
redis.call('HDEL', KEYS[1], 'e', 'r', 'ec', 'em', 'ed', 'et', 'p', 'pm', 'cr', 'ry', 'w', 'b',
           'dl', 'wt', 'rs')
redis.call('HSET', KEYS[1], 's', 'pending', 'a', '0')
redis.call('PERSIST', KEYS[1])
if h[2] then
  redis.pcall('HDEL', xpre .. id, 'r', 'em', 'ed', 'et', 'pm')
  redis.call('PERSIST', xpre .. id)
end
redis.call('LREM', KEYS[3], 1, id)
redis.call('LPUSH', KEYS[2], id)
publish(ARGV[3], {at = now, t = {{id = id, s = 'pending', retried = true}}})
return {'ok'}
