-- trim: the history cap, one bounded step. While P:history holds more than
-- the cap, its oldest entries go with their tasks: at most `most` entries
-- per call, and no more once `budget` microseconds of Redis time have
-- passed (TIME is read every 8 entries), so that one call stays well under
-- a millisecond; the broker calls again until nothing is left over.
-- The entries leave P:history by rank (ZREMRANGEBYRANK), which lets Redis
-- shrink the set's table as it empties; each task then leaves its status
-- index with one ZREM per index (the two indexes hold the same ids). A
-- task that is pending or running again (re-created under the same id)
-- keeps its hash; only its history entry goes. A task whose hash has
-- expired, or whose status is not one of the four terminal ones, leaves
-- every terminal index; an entry that is not a valid id only leaves
-- P:history, since no key may be built from it.
-- Settling (most = 0): Redis 7.0 shrinks a zset's table by an
-- incremental rehash that moves one bucket per operation on the set, and
-- only deletions start one; after a large trim the five sets keep their
-- oversized tables until later operations step them along. A settling call
-- removes nothing: it looks up a missing member in each set, in rounds,
-- until `budget` microseconds have passed, each lookup one rehash step.
-- A task's key is built from the prefix keys.c gives (as in finish),
-- checked against KEYS[1]; with the cluster option every rtq key shares one
-- hash slot.
-- KEYS: 1 history, 2 status:completed, 3 status:failed, 4 status:cancelled,
--       5 status:timeout
-- ARGV: 1 cap (max_task_history), 2 most entries (1..1000; 0: settle),
--       3 budget (microseconds), 4 task key prefix ("<ns>:task:")
-- Reply: {removed, over} entries removed, and how many are still over the
--        cap; settling: {0, 0, rounds} (a round is one lookup in each set)
local cap, most, budget = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if not cap or cap < 0 or not most or most < 0 or most > 1000 or not budget or budget < 0 then
  return redis.error_reply('ERR trim: bad cap, count or budget')
end
local prefix = ARGV[4]
if prefix ~= string.sub(KEYS[1], 1, #KEYS[1] - #'history') .. 'task:' then
  return redis.error_reply('ERR trim: task key prefix does not match the history key')
end
local function usec()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local start = usec()
if most == 0 then
  local rounds = 0
  repeat
    for r = 1, 32 do
      for k = 1, 5 do redis.call('ZSCORE', KEYS[k], '') end
    end
    rounds = rounds + 32
  until usec() - start >= budget or rounds >= 100000
  return {0, 0, rounds}
end
local over = redis.call('ZCARD', KEYS[1]) - cap
if over <= 0 then return {0, 0} end
local n = over < most and over or most
local ids = redis.call('ZRANGE', KEYS[1], 0, n - 1)
local index = {completed = KEYS[2], failed = KEYS[3], cancelled = KEYS[4], timeout = KEYS[5]}
local rem = {}
local function drop(key, id)
  local l = rem[key]
  if not l then l = {}; rem[key] = l end
  l[#l + 1] = id
end
local done = 0
for i = 1, #ids do
  local id = ids[i]
  if valid_name(id) then
    local t = prefix .. id
    local st = redis.call('HGET', t, 'status')
    if st ~= 'pending' and st ~= 'running' then
      if st then redis.call('DEL', t) end
      if index[st] then
        drop(index[st], id)
      else
        for k = 2, 5 do drop(KEYS[k], id) end
      end
    end
  end
  done = i
  if i % 8 == 0 and i < #ids and usec() - start >= budget then break end
end
for key, l in pairs(rem) do redis.call('ZREM', key, unpack(l)) end
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, done - 1)
return {done, over - done}
