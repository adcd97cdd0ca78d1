-- prune: drop from the old end of a done list the ids whose task has
-- expired already (its key TTL ran out), at most n per call. It stops at
-- the first id whose task still exists, so it never walks the list.
-- KEYS: 1 done list
-- ARGV: 1 task key prefix, 2 n (1..100)
-- Reply: ids dropped
-- Prelude: fmt bad valid_name whole need_whole keys_tag check_prefix
-- Prelude: check_keys need_type need_types
check_keys()
need_types({KEYS[1], 'list'})
local tpre = check_prefix(ARGV[1], 'task key')
local n = need_whole(ARGV[2], 1, 100, 'prune: n')
local dropped = 0
for i = 1, n do
  local id = redis.call('LINDEX', KEYS[1], -1)
  if not id then break end
  if valid_name(id) and redis.call('EXISTS', tpre .. id) == 1 then break end
  redis.call('RPOP', KEYS[1])
  dropped = dropped + 1
end
return dropped
