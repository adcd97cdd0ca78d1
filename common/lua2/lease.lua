-- lease: the broker leader lease. acquire takes a free lease (SET NX PX)
-- or renews one this owner holds; release drops it only if this owner
-- holds it.
-- KEYS: 1 lease
-- ARGV: 1 owner id, 2 ttl (ms), 3 'acquire' | 'release'
-- Reply: 1 held (or released), 0 held by someone else
-- Prelude: fmt bad valid_name whole need_name need_whole keys_tag
-- Prelude: check_keys need_type need_types
check_keys()
need_types({KEYS[1], 'string'})
local owner = need_name(ARGV[1], 'lease: owner')
local ttl = need_whole(ARGV[2], 100, 3600000, 'lease: ttl')
if ARGV[3] ~= 'acquire' and ARGV[3] ~= 'release' then bad('lease: mode must be acquire or release') end
local cur = redis.call('GET', KEYS[1])
if ARGV[3] == 'release' then
  if cur == owner then redis.call('DEL', KEYS[1]) return 1 end
  return 0
end
if cur and cur ~= owner then return 0 end
redis.call('SET', KEYS[1], owner, 'PX', ttl)
return 1
