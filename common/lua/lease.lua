-- lease: the broker leader lease. acquire takes a free lease (SET NX PX) or
-- renews one this owner holds; release drops it only if this owner holds it.
-- KEYS: 1 lease
-- ARGV: 1 owner id, 2 ttl (ms), 3 'acquire' | 'release'
-- Reply: 1 held (or released), 0 held by someone else
local cur = redis.call('GET', KEYS[1])
if ARGV[3] == 'release' then
  if cur == ARGV[1] then redis.call('DEL', KEYS[1]); return 1 end
  return 0
end
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
