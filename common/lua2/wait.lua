-- wait: a waiter registers on a task after it subscribed to the task's
-- waiter channel: finish, cancel, recover and deadletter publish there
-- only for a task whose `wt` is set. The reply is the task's status at
-- this moment, so a task that ended before the waiter registered is seen
-- here, and one that ends later is announced: no lost wake-up.
-- KEYS: 1 task
-- ARGV: none
-- Reply: the status, or nil when there is no such task (nothing written)
-- Prelude: bad keys_tag check_keys need_type need_types
check_keys()
need_types({KEYS[1], 'hash'})
if #ARGV ~= 0 then bad('wait: expected no arguments') end
local s = redis.call('HGET', KEYS[1], 's')
if not s then return false end
redis.call('HSET', KEYS[1], 'wt', '1')
return s
