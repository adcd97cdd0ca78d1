-- promote: move one due envelope from the delayed set onto its queue. ZREM
-- gates it, so a racing broker cannot push it twice.
-- KEYS: 1 delayed, 2 queue
-- ARGV: 1 envelope
-- Reply: 1 promoted, 0 someone else did
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('LPUSH', KEYS[2], ARGV[1])
  return 1
end
return 0
